/* policy.c - the certificate rules; see policy.h and docs/policy.md.
 *
 * Every rule reads what OpenSSL already decoded (X509_get_signature_info,
 * X509_get0_pubkey, X509_get_extension_flags, ...). Nothing here parses DER
 * itself, so the rules cannot disagree with what the TLS stack verified.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "policy/policy.h"
#include "policy/server_name.h"

#define DEFAULT_MAX_DEPTH 4

static enum zg_reason say(enum zg_reason r, char *detail, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum zg_reason say(enum zg_reason r, char *detail, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (!detail || cap == 0)
		return r;
	va_start(ap, fmt);
	if (vsnprintf(detail, cap, fmt, ap) < 0)
		detail[0] = '\0';
	va_end(ap);
	return r;
}

static enum zg_reason pass(char *detail, size_t cap)
{
	if (detail && cap)
		detail[0] = '\0';
	return ZG_R_OK;
}

static int is_self_signed(X509 *x)
{
	return (X509_get_extension_flags(x) & EXFLAG_SS) != 0;
}

enum zg_reason zg_rule_version(X509 *x, char *detail, size_t cap)
{
	long v = X509_get_version(x);

	if (v != X509_VERSION_3)
		return say(ZG_R_CERT_NOT_V3, detail, cap, "version %ld, want 3", v + 1);
	return pass(detail, cap);
}

/* SHA-224 and the SHA-512/224 truncation stay out: under 128-bit collision
 * strength, which CRYPTREC and the Carequality rules put at SHA-256. */
static int strong_hash(int mdnid)
{
	switch (mdnid) {
	case NID_sha256:
	case NID_sha384:
	case NID_sha512:
	case NID_sha512_256:
	case NID_sha3_256:
	case NID_sha3_384:
	case NID_sha3_512:
		return 1;
	default:
		return 0;
	}
}

enum zg_reason zg_rule_signature_hash(X509 *x, char *detail, size_t cap)
{
	int mdnid = NID_undef, pknid = NID_undef;

	if (!X509_get_signature_info(x, &mdnid, &pknid, NULL, NULL))
		return say(ZG_R_CERT_WEAK_SIG_HASH, detail, cap, "unknown signature algorithm");
	/* EdDSA signs the message itself; there is no separate digest. */
	if (mdnid == NID_undef && (pknid == NID_ED25519 || pknid == NID_ED448))
		return pass(detail, cap);
	if (!strong_hash(mdnid))
		return say(ZG_R_CERT_WEAK_SIG_HASH, detail, cap, "signature hash %s",
			   mdnid == NID_undef ? "unknown" : OBJ_nid2sn(mdnid));
	return pass(detail, cap);
}

static enum zg_reason check_ec(EVP_PKEY *pk, const struct zg_profile *p, char *detail, size_t cap)
{
	static const char *const curves[] = {"prime256v1", "secp384r1", "secp521r1"};
	char group[64];
	size_t len = 0;
	int bits = EVP_PKEY_get_bits(pk);

	/* Explicit curve parameters have no group name: refused (CVE-2020-0601
	 * forged a CA this way). */
	if (!EVP_PKEY_get_group_name(pk, group, sizeof(group), &len))
		return say(ZG_R_CERT_EC_CURVE, detail, cap, "EC key with explicit or unnamed curve");
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		if (strcmp(group, curves[i]) != 0)
			continue;
		if (bits < 0 || (unsigned)bits < p->min_ec_bits)
			return say(ZG_R_CERT_EC_CURVE, detail, cap, "EC %s %d bits < %u", group,
				   bits, p->min_ec_bits);
		return pass(detail, cap);
	}
	return say(ZG_R_CERT_EC_CURVE, detail, cap, "EC curve %s not in P-256, P-384, P-521",
		   group);
}

enum zg_reason zg_rule_public_key(X509 *x, const struct zg_profile *p, char *detail, size_t cap)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	int bits;

	if (!pk)
		return say(ZG_R_CERT_KEY_TYPE, detail, cap, "public key unreadable");
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		bits = EVP_PKEY_get_bits(pk);
		if (bits < 0 || (unsigned)bits < p->min_rsa_bits)
			return say(ZG_R_CERT_WEAK_RSA_KEY, detail, cap, "RSA %d bits < %u", bits,
				   p->min_rsa_bits);
		return pass(detail, cap);
	case EVP_PKEY_EC:
		return check_ec(pk, p, detail, cap);
	case EVP_PKEY_ED25519:
	case EVP_PKEY_ED448:
		if (!p->allow_eddsa)
			return say(ZG_R_CERT_EDDSA, detail, cap, "%s key; profile %s allows no EdDSA",
				   EVP_PKEY_get0_type_name(pk), p->name);
		return pass(detail, cap);
	default:
		return say(ZG_R_CERT_KEY_TYPE, detail, cap, "%s key",
			   EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "unknown");
	}
}

enum zg_reason zg_rule_validity(X509 *x, time_t now, unsigned skew_s, char *detail, size_t cap)
{
	time_t early = now - (time_t)skew_s;
	time_t late = now + (time_t)skew_s;
	int c;

	/* X509_cmp_time: -1 if the field is at or before the time, 1 after, 0 on
	 * a malformed field, which we treat as failing. */
	c = X509_cmp_time(X509_get0_notBefore(x), &late);
	if (c >= 0)
		return say(ZG_R_TLS_CERT_NOT_YET_VALID, detail, cap,
			   c == 0 ? "notBefore unreadable" : "notBefore is in the future");
	c = X509_cmp_time(X509_get0_notAfter(x), &early);
	if (c <= 0)
		return say(ZG_R_TLS_CERT_EXPIRED, detail, cap,
			   c == 0 ? "notAfter unreadable" : "notAfter has passed");
	return pass(detail, cap);
}

enum zg_reason zg_rule_leaf_not_ca(X509 *leaf, char *detail, size_t cap)
{
	/* X509_check_ca() answers "may this sign certificates", which a keyUsage
	 * without keyCertSign denies; the rule is about what the certificate
	 * claims to be, so cA=TRUE alone fails it. */
	if (X509_get_extension_flags(leaf) & EXFLAG_CA)
		return say(ZG_R_CERT_LEAF_IS_CA, detail, cap, "basicConstraints cA=TRUE");
	switch (X509_check_ca(leaf)) {
	case 0:
		return pass(detail, cap);
	case 1:
		return say(ZG_R_CERT_LEAF_IS_CA, detail, cap, "basicConstraints cA=TRUE");
	case 3:
		return say(ZG_R_CERT_LEAF_IS_CA, detail, cap, "self-signed version 1 certificate");
	case 4:
		return say(ZG_R_CERT_LEAF_IS_CA, detail, cap, "keyCertSign without basicConstraints");
	default:
		return say(ZG_R_CERT_LEAF_IS_CA, detail, cap, "CA by Netscape certificate type");
	}
}

enum zg_reason zg_rule_eku(X509 *leaf, enum zg_cert_role role, char *detail, size_t cap)
{
	uint32_t want = role == ZG_ROLE_CLIENT ? XKU_SSL_CLIENT : XKU_SSL_SERVER;
	const char *name = role == ZG_ROLE_CLIENT ? "clientAuth" : "serverAuth";

	if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE))
		return say(ZG_R_CERT_EKU_MISSING, detail, cap, "no extendedKeyUsage; want %s", name);
	if (!(X509_get_extended_key_usage(leaf) & want))
		return say(ZG_R_CERT_EKU_MISSING, detail, cap, "extendedKeyUsage lacks %s", name);
	return pass(detail, cap);
}

static int is_rsa(EVP_PKEY *pk)
{
	int id = pk ? EVP_PKEY_get_base_id(pk) : EVP_PKEY_NONE;

	return id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS;
}

enum zg_reason zg_rule_key_usage(X509 *x, int is_ca, char *detail, size_t cap)
{
	uint32_t ku;
	int rsa = is_rsa(X509_get0_pubkey(x));

	if (!(X509_get_extension_flags(x) & EXFLAG_KUSAGE))
		return pass(detail, cap);
	ku = X509_get_key_usage(x);
	/* keyEncipherment means RSA key transport; an EC or EdDSA key cannot do it. */
	if ((ku & KU_KEY_ENCIPHERMENT) && !rsa)
		return say(ZG_R_CERT_KEY_USAGE, detail, cap, "keyEncipherment on a non-RSA key");
	if ((ku & KU_KEY_AGREEMENT) && rsa)
		return say(ZG_R_CERT_KEY_USAGE, detail, cap, "keyAgreement on an RSA key");
	if (is_ca) {
		if (!(ku & KU_KEY_CERT_SIGN))
			return say(ZG_R_CERT_KEY_USAGE, detail, cap, "CA without keyCertSign");
		return pass(detail, cap);
	}
	/* Every suite a profile allows authenticates by signature (ECDHE/DHE,
	 * TLS 1.3 CertificateVerify). */
	if (!(ku & KU_DIGITAL_SIGNATURE))
		return say(ZG_R_CERT_KEY_USAGE, detail, cap, "end entity without digitalSignature");
	if (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN))
		return say(ZG_R_CERT_KEY_USAGE, detail, cap, "end entity with keyCertSign or cRLSign");
	return pass(detail, cap);
}

enum zg_reason zg_rule_issuer_not_self_signed(STACK_OF(X509) *chain, char *detail, size_t cap)
{
	int n = chain ? sk_X509_num(chain) : 0;

	if (n < 1)
		return say(ZG_R_TLS_NO_PEER_CERT, detail, cap, "empty chain");
	if (n == 1)
		return say(ZG_R_CERT_ISSUER_SELF_SIGNED, detail, cap,
			   is_self_signed(sk_X509_value(chain, 0)) ? "self-signed end entity"
								   : "issuer not in the chain");
	if (is_self_signed(sk_X509_value(chain, 1)))
		return say(ZG_R_CERT_ISSUER_SELF_SIGNED, detail, cap,
			   "issued directly by a self-signed root; want an intermediate CA");
	return pass(detail, cap);
}

enum zg_reason zg_rule_chain_depth(STACK_OF(X509) *chain, unsigned max_depth, char *detail,
				   size_t cap)
{
	int n = chain ? sk_X509_num(chain) : 0;
	/* A chain as presented (our own, at start-up) usually stops below the
	 * root: then every certificate in it is below the anchor. */
	unsigned below = n > 0 && !is_self_signed(sk_X509_value(chain, n - 1)) ? (unsigned)n
		       : n > 1							 ? (unsigned)n - 1
										 : 0;

	if (max_depth == 0)
		max_depth = DEFAULT_MAX_DEPTH;
	if (below > max_depth)
		return say(ZG_R_CERT_CHAIN_TOO_DEEP, detail, cap, "%u certificates below the anchor > %u",
			   below, max_depth);
	return pass(detail, cap);
}

static int crl_required(X509 *x, const struct zg_policy_params *pp)
{
	return pp->crl_require_all || X509_get_ext_by_NID(x, NID_crl_distribution_points, -1) >= 0;
}

/* The newest CRL in @crls issued by @issuer whose signature verifies. *@named
 * tells whether any CRL at least carried the issuer's name. */
static X509_CRL *find_crl(STACK_OF(X509_CRL) *crls, X509 *issuer, int *named)
{
	X509_NAME *iname = X509_get_subject_name(issuer);
	EVP_PKEY *ikey = X509_get0_pubkey(issuer);
	X509_CRL *best = NULL;

	*named = 0;
	for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
		X509_CRL *c = sk_X509_CRL_value(crls, i);
		if (X509_NAME_cmp(X509_CRL_get_issuer(c), iname) != 0)
			continue;
		*named = 1;
		if (!ikey || X509_CRL_verify(c, ikey) != 1)
			continue;
		if (!best || ASN1_TIME_compare(X509_CRL_get0_lastUpdate(c),
					       X509_CRL_get0_lastUpdate(best)) > 0)
			best = c;
	}
	return best;
}

enum zg_reason zg_rule_revocation(X509 *x, X509 *issuer, const struct zg_policy_params *pp,
				  char *detail, size_t cap)
{
	X509_REVOKED *rev = NULL;
	const ASN1_TIME *next;
	X509_CRL *crl;
	time_t now = pp->now;
	int named = 0;

	if (!pp->crls)
		return pass(detail, cap);
	crl = find_crl(pp->crls, issuer, &named);
	if (!crl) {
		if (named)
			return say(ZG_R_CRL_INVALID, detail, cap,
				   "CRL for the issuer does not verify with its key");
		if (crl_required(x, pp))
			return say(ZG_R_CRL_MISSING, detail, cap, "no CRL loaded for the issuer");
		return pass(detail, cap);
	}
	if (X509_CRL_get0_by_cert(crl, &rev, x) == 1)
		return say(ZG_R_TLS_CERT_REVOKED, detail, cap, "serial listed in the issuer's CRL");
	next = X509_CRL_get0_nextUpdate(crl);
	if (next && X509_cmp_time(next, &now) <= 0)
		return say(ZG_R_CRL_STALE, detail, cap, "issuer's CRL is past its nextUpdate");
	return pass(detail, cap);
}

enum zg_reason zg_rule_server_name(X509 *leaf, const char *name, char *detail, size_t cap)
{
	GENERAL_NAMES *sans;
	int found = 0;

	if (zg_server_name_kind(name) != ZG_SN_URI) {
		if (X509_check_host(leaf, name, 0,
				    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
					    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
				    NULL) == 1)
			return pass(detail, cap);
		return say(ZG_R_TLS_NAME_MISMATCH, detail, cap, "no DNS SAN matches %s", name);
	}
	sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && !found; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *u;
		if (g->type != GEN_URI)
			continue;
		u = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		found = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier) == strlen(name) &&
			memcmp(u, name, strlen(name)) == 0;
	}
	GENERAL_NAMES_free(sans);
	if (!found)
		return say(ZG_R_TLS_NAME_MISMATCH, detail, cap, "no URI SAN equals %s", name);
	return pass(detail, cap);
}

static void add(struct zg_policy_verdict *v, enum zg_reason r, int depth, int warn,
		const char *detail)
{
	struct zg_policy_finding *f;

	if (r == ZG_R_OK)
		return;
	if (!warn)
		v->failed++;
	if (v->n >= ZG_POLICY_MAX_FINDINGS) {
		v->dropped++;
		return;
	}
	f = &v->f[v->n++];
	f->reason = r;
	f->depth = depth;
	f->warn = warn;
	snprintf(f->detail, sizeof(f->detail), "%s", detail);
}

/* The first control character in @s (@n bytes, UTF-8), or -1. UTF-8 C1
 * controls are U+0080..U+009F: 0xC2 then 0x80..0x9F. */
static int control_at(const unsigned char *s, int n)
{
	for (int i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return i;
		if (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
			return i;
	}
	return -1;
}

/* Check one ASN1 string (any type: converted to UTF-8 first, so BMPString
 * zero bytes are not mistaken for NUL). 1 clean, 0 control, -1 unreadable. */
static int string_clean(const ASN1_STRING *a)
{
	unsigned char *u = NULL;
	int n = ASN1_STRING_to_UTF8(&u, a), rc;

	if (n < 0)
		return -1;
	rc = control_at(u, n) < 0;
	OPENSSL_free(u);
	return rc;
}

static enum zg_reason subject_names(X509 *x, char *detail, size_t cap)
{
	const X509_NAME *nm = X509_get_subject_name(x);

	for (int i = 0; nm && i < X509_NAME_entry_count(nm); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(nm, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		int c = string_clean(X509_NAME_ENTRY_get_data(e));
		if (c <= 0)
			return say(ZG_R_CERT_NAME_CONTROL, detail, cap, "subject %s %s",
				   nid != NID_undef ? OBJ_nid2sn(nid) : "attribute",
				   c < 0 ? "is not a readable string" : "holds a control character");
	}
	return ZG_R_OK;
}

enum zg_reason zg_rule_names(X509 *x, char *detail, size_t cap)
{
	GENERAL_NAMES *sans;
	enum zg_reason r = subject_names(x, detail, cap);

	if (r != ZG_R_OK)
		return r;
	sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const ASN1_IA5STRING *s = NULL;
		const char *kind = gn->type == GEN_DNS ? "DNS" : gn->type == GEN_URI ? "URI" : "email";
		if (gn->type == GEN_DNS || gn->type == GEN_URI || gn->type == GEN_EMAIL)
			s = gn->d.ia5;
		if (s && control_at(ASN1_STRING_get0_data(s), ASN1_STRING_length(s)) >= 0) {
			r = say(ZG_R_CERT_NAME_CONTROL, detail, cap, "%s SAN #%d holds a control character",
				kind, i + 1);
			break;
		}
	}
	GENERAL_NAMES_free(sans);
	return r == ZG_R_OK ? pass(detail, cap) : r;
}

enum zg_reason zg_rule_der_size(X509 *x, char *detail, size_t cap)
{
	int n = i2d_X509(x, NULL);

	if (n < 0 || n > ZG_POLICY_CERT_DER_MAX)
		return say(ZG_R_CERT_TOO_LARGE, detail, cap, "%d bytes DER (at most %d)", n,
			   ZG_POLICY_CERT_DER_MAX);
	return pass(detail, cap);
}

/* Rules that every certificate of the chain must pass. */
static void check_one(STACK_OF(X509) *chain, int i, const struct zg_policy_params *pp,
		      struct zg_policy_verdict *v)
{
	X509 *x = sk_X509_value(chain, i);
	int last = i == sk_X509_num(chain) - 1;
	char d[ZG_POLICY_DETAIL_MAX];
	enum zg_reason r;

	add(v, zg_rule_version(x, d, sizeof(d)), i, 0, d);
	add(v, zg_rule_der_size(x, d, sizeof(d)), i, 0, d);
	add(v, zg_rule_names(x, d, sizeof(d)), i, 0, d);
	/* Nobody verifies a trust anchor's self-signature; its hash is moot. */
	if (!(last && is_self_signed(x)))
		add(v, zg_rule_signature_hash(x, d, sizeof(d)), i, 0, d);
	add(v, zg_rule_public_key(x, pp->profile, d, sizeof(d)), i, 0, d);
	add(v, zg_rule_validity(x, pp->now, pp->clock_skew_s, d, sizeof(d)), i, 0, d);
	add(v, zg_rule_key_usage(x, i > 0, d, sizeof(d)), i, 0, d);
	if (!last) {
		r = zg_rule_revocation(x, sk_X509_value(chain, i + 1), pp, d, sizeof(d));
		add(v, r, i, r == ZG_R_CRL_STALE && pp->crl_stale_warn, d);
	}
}

int zg_policy_check_chain(STACK_OF(X509) *chain, const struct zg_policy_params *pp,
			  struct zg_policy_verdict *v)
{
	const struct zg_profile *saved = pp->profile;
	struct zg_policy_params p = *pp;
	char d[ZG_POLICY_DETAIL_MAX];
	X509 *leaf;

	memset(v, 0, sizeof(*v));
	if (!saved)
		p.profile = zg_profile_default();
	if (!chain || sk_X509_num(chain) < 1) {
		add(v, ZG_R_TLS_NO_PEER_CERT, 0, 0, "no certificate");
		return -1;
	}
	leaf = sk_X509_value(chain, 0);
	for (int i = 0; i < sk_X509_num(chain); i++)
		check_one(chain, i, &p, v);
	add(v, zg_rule_leaf_not_ca(leaf, d, sizeof(d)), 0, 0, d);
	add(v, zg_rule_eku(leaf, p.role, d, sizeof(d)), 0, 0, d);
	add(v, zg_rule_issuer_not_self_signed(chain, d, sizeof(d)), 1, 0, d);
	add(v, zg_rule_chain_depth(chain, p.max_depth, d, sizeof(d)), 0, 0, d);
	return v->failed ? -1 : 0;
}

int zg_policy_verdict_has(const struct zg_policy_verdict *v, enum zg_reason r)
{
	for (unsigned i = 0; i < v->n; i++)
		if (v->f[i].reason == r && !v->f[i].warn)
			return 1;
	return 0;
}

const struct zg_policy_finding *zg_policy_first_failure(const struct zg_policy_verdict *v)
{
	for (unsigned i = 0; i < v->n; i++)
		if (!v->f[i].warn)
			return &v->f[i];
	return NULL;
}

enum zg_reason zg_policy_reason_from_x509(int e)
{
	switch (e) {
	case X509_V_OK:
		return ZG_R_OK;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
		return ZG_R_TLS_CERT_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
		return ZG_R_TLS_CERT_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED:
		return ZG_R_TLS_CERT_REVOKED;
	case X509_V_ERR_CRL_HAS_EXPIRED:
		return ZG_R_CRL_STALE;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		return ZG_R_CRL_MISSING;
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
		return ZG_R_CRL_INVALID;
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		return ZG_R_CERT_CHAIN_TOO_DEEP;
	case X509_V_ERR_INVALID_PURPOSE:
		return ZG_R_CERT_EKU_MISSING;
	case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
	case X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE:
		return ZG_R_CERT_KEY_USAGE;
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
		return ZG_R_CERT_WEAK_RSA_KEY;
	case X509_V_ERR_CA_MD_TOO_WEAK:
		return ZG_R_CERT_WEAK_SIG_HASH;
	case X509_V_ERR_EC_KEY_EXPLICIT_PARAMS:
		return ZG_R_CERT_EC_CURVE;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
	case X509_V_ERR_EMAIL_MISMATCH:
		return ZG_R_TLS_NAME_MISMATCH;
	default:
		return ZG_R_TLS_UNTRUSTED;
	}
}

static const struct zg_policy_rule rules[] = {
	{"chain_trusted", "chain verifies to a configured trust anchor", {ZG_R_TLS_UNTRUSTED}},
	{"x509_v3", "every certificate is X.509 v3", {ZG_R_CERT_NOT_V3}},
	{"signature_hash", "SHA-256 or stronger below the anchor", {ZG_R_CERT_WEAK_SIG_HASH}},
	{"public_key", "RSA >= minimum, EC on P-256/384/521, EdDSA as the profile says",
	 {ZG_R_CERT_WEAK_RSA_KEY, ZG_R_CERT_EC_CURVE, ZG_R_CERT_EDDSA, ZG_R_CERT_KEY_TYPE}},
	{"validity", "inside notBefore..notAfter (with clock skew)",
	 {ZG_R_TLS_CERT_EXPIRED, ZG_R_TLS_CERT_NOT_YET_VALID}},
	{"issuer_not_self_signed", "end entity issued by an intermediate, not a root",
	 {ZG_R_CERT_ISSUER_SELF_SIGNED}},
	{"leaf_not_ca", "end entity is not a CA", {ZG_R_CERT_LEAF_IS_CA}},
	{"eku", "extendedKeyUsage has clientAuth/serverAuth for the role", {ZG_R_CERT_EKU_MISSING}},
	{"key_usage", "keyUsage consistent with key type and position", {ZG_R_CERT_KEY_USAGE}},
	{"names", "no NUL or other control character in a subject or SAN value",
	 {ZG_R_CERT_NAME_CONTROL}},
	{"size", "every certificate at most 8 KiB DER", {ZG_R_CERT_TOO_LARGE}},
	{"chain_depth", "at most verify_depth certificates below the anchor",
	 {ZG_R_CERT_CHAIN_TOO_DEEP}},
	{"revocation", "not revoked; issuer CRL present, valid and fresh",
	 {ZG_R_TLS_CERT_REVOKED, ZG_R_CRL_STALE, ZG_R_CRL_MISSING, ZG_R_CRL_INVALID}},
	{"server_name", "a DNS or URI SAN matches the expected server name",
	 {ZG_R_TLS_NAME_MISMATCH}},
};

const struct zg_policy_rule *zg_policy_rules(size_t *n)
{
	*n = sizeof(rules) / sizeof(rules[0]);
	return rules;
}
