/* test_policy.c - each certificate rule on certificates built in memory
 * (one property changed at a time), zg_policy_check_chain reporting every
 * failure, CRL handling and the X509 error mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "policy/crl.h"
#include "policy/policy.h"

#define DAY 86400L

struct pki {
	EVP_PKEY *root_key, *int_key, *p256, *p384, *rsa2048, *rsa1024, *k1, *ed;
	X509 *root, *inter;
	time_t now;
};

/* What a test certificate looks like; zero fields take the defaults (v3,
 * SHA-256, valid from yesterday for 30 days). */
struct spec {
	const char *cn;
	int v1;
	const char *md;     /* "SHA256" default; "none" for EdDSA issuers */
	long nb, na;        /* notBefore/notAfter offsets from now, seconds */
	const char *ext[8]; /* "name:value" pairs as for X509V3_EXT_conf */
};

static EVP_PKEY *ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	assert_non_null(k);
	return k;
}

static EVP_PKEY *rsa_key(size_t bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
	assert_non_null(k);
	return k;
}

static void add_ext(X509 *x, X509 *issuer, const char *nv)
{
	char name[64];
	const char *colon = strchr(nv, ':');
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	assert_non_null(colon);
	assert_true((size_t)(colon - nv) < sizeof(name));
	memcpy(name, nv, (size_t)(colon - nv));
	name[colon - nv] = '\0';
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf(NULL, &ctx, name, colon + 1);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

static X509 *mk(struct pki *k, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, const struct spec *s)
{
	static long serial = 1;
	X509 *x = X509_new();
	const char *md = s->md ? s->md : "SHA256";
	time_t t;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, s->v1 ? X509_VERSION_1 : X509_VERSION_3), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)s->cn, -1, -1, 0);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)), 1);
	t = k->now + (s->nb ? s->nb : -DAY);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &t));
	t = k->now + (s->na ? s->na : 30 * DAY);
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &t));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	for (size_t i = 0; i < 8 && s->ext[i]; i++)
		add_ext(x, issuer ? issuer : x, s->ext[i]);
	assert_true(X509_sign(x, ikey ? ikey : key, strcmp(md, "none") ? EVP_get_digestbyname(md) : NULL) > 0);
	return x;
}

#define CA_EXTS "basicConstraints:critical,CA:TRUE", "keyUsage:critical,keyCertSign,cRLSign", \
		"subjectKeyIdentifier:hash"
#define LEAF_EXTS "basicConstraints:critical,CA:FALSE", "keyUsage:critical,digitalSignature", \
		  "extendedKeyUsage:serverAuth,clientAuth", "subjectAltName:DNS:a.zonegate.test,URI:urn:zg:a"

static int setup(void **state)
{
	struct pki *k = calloc(1, sizeof(*k));
	struct spec root = {.cn = "root", .ext = {CA_EXTS}};
	struct spec inter = {.cn = "int", .ext = {CA_EXTS, "authorityKeyIdentifier:keyid"}};

	assert_non_null(k);
	k->now = time(NULL);
	k->root_key = ec_key("P-256");
	k->int_key = ec_key("P-256");
	k->p256 = ec_key("P-256");
	k->p384 = ec_key("P-384");
	k->k1 = ec_key("secp256k1");
	k->rsa2048 = rsa_key(2048);
	k->rsa1024 = rsa_key(1024);
	k->ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k->ed);
	k->root = mk(k, k->root_key, NULL, NULL, &root);
	k->inter = mk(k, k->int_key, k->root, k->root_key, &inter);
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	struct pki *k = *state;
	EVP_PKEY *keys[] = {k->root_key, k->int_key, k->p256, k->p384, k->rsa2048, k->rsa1024, k->k1, k->ed};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		EVP_PKEY_free(keys[i]);
	X509_free(k->root);
	X509_free(k->inter);
	free(k);
	return 0;
}

/* A leaf below the intermediate. */
static X509 *leaf(struct pki *k, EVP_PKEY *key, const struct spec *s)
{
	return mk(k, key, k->inter, k->int_key, s);
}

/* leaf, int, root (the leaf is consumed). */
static STACK_OF(X509) *chain3(struct pki *k, X509 *x)
{
	STACK_OF(X509) *c = sk_X509_new_null();

	assert_non_null(c);
	assert_true(sk_X509_push(c, x) > 0);
	assert_int_equal(X509_up_ref(k->inter), 1);
	assert_true(sk_X509_push(c, k->inter) > 0);
	assert_int_equal(X509_up_ref(k->root), 1);
	assert_true(sk_X509_push(c, k->root) > 0);
	return c;
}

static struct zg_policy_params params(struct pki *k, enum zg_cert_role role)
{
	struct zg_policy_params pp = {.profile = zg_profile_default(), .role = role, .now = k->now,
				      .max_depth = 4};
	return pp;
}

/* The reasons check_chain reports for a leaf built from @s with @key. */
static void verdict_of(struct pki *k, EVP_PKEY *key, const struct spec *s,
		       const struct zg_policy_params *pp, struct zg_policy_verdict *v)
{
	STACK_OF(X509) *c = chain3(k, leaf(k, key, s));

	zg_policy_check_chain(c, pp, v);
	sk_X509_pop_free(c, X509_free);
}

static void expect_only(struct pki *k, EVP_PKEY *key, const struct spec *s, enum zg_reason r)
{
	struct zg_policy_params pp = params(k, ZG_ROLE_CLIENT);
	struct zg_policy_verdict v;

	verdict_of(k, key, s, &pp, &v);
	if (r == ZG_R_OK) {
		if (v.n)
			print_error("unexpected %s: %s\n", zg_reason_code(v.f[0].reason), v.f[0].detail);
		assert_int_equal(v.n, 0);
		return;
	}
	if (v.n != 1 || v.f[0].reason != r)
		print_error("want only %s, got %u findings, first %s\n", zg_reason_code(r), v.n,
			    v.n ? zg_reason_code(v.f[0].reason) : "-");
	assert_int_equal(v.n, 1);
	assert_int_equal(v.f[0].reason, r);
	assert_true(v.f[0].detail[0] != '\0');
}

static void compliant_leaves_pass(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "ok", .ext = {LEAF_EXTS}};
	struct spec rsa = {.cn = "ok-rsa",
			   .ext = {"basicConstraints:critical,CA:FALSE",
				   "keyUsage:critical,digitalSignature,keyEncipherment",
				   "extendedKeyUsage:clientAuth"}};

	expect_only(k, k->p256, &s, ZG_R_OK);
	expect_only(k, k->p384, &s, ZG_R_OK);
	expect_only(k, k->ed, &s, ZG_R_OK);
	expect_only(k, k->rsa2048, &rsa, ZG_R_OK);
	s.md = "SHA384";
	expect_only(k, k->p256, &s, ZG_R_OK);
}

static void version_1_refused(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "v1", .v1 = 1};
	X509 *x = leaf(k, k->p256, &s);
	char d[ZG_POLICY_DETAIL_MAX];

	assert_int_equal(zg_rule_version(x, d, sizeof(d)), ZG_R_CERT_NOT_V3);
	assert_int_equal(zg_rule_version(k->inter, d, sizeof(d)), ZG_R_OK);
	assert_string_equal(d, "");
	X509_free(x);
}

static void weak_hashes_refused(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "sha1", .md = "SHA1", .ext = {LEAF_EXTS}};

	expect_only(k, k->p256, &s, ZG_R_CERT_WEAK_SIG_HASH);
	s.md = "SHA224";
	expect_only(k, k->p256, &s, ZG_R_CERT_WEAK_SIG_HASH);
	s.md = "SHA512";
	expect_only(k, k->p256, &s, ZG_R_OK);
}

/* The anchor's own signature is never verified, so its hash does not count;
 * an intermediate's does. */
static void anchor_self_signature_exempt(void **state)
{
	struct pki *k = *state;
	struct spec rs = {.cn = "root-sha1", .md = "SHA1", .ext = {CA_EXTS}};
	struct spec ls = {.cn = "leaf", .ext = {LEAF_EXTS}};
	struct zg_policy_params pp = params(k, ZG_ROLE_CLIENT);
	struct zg_policy_verdict v;
	X509 *root = mk(k, k->root_key, NULL, NULL, &rs);
	STACK_OF(X509) *c = chain3(k, leaf(k, k->p256, &ls));

	X509_free(sk_X509_pop(c));
	assert_true(sk_X509_push(c, root) > 0);
	assert_int_equal(zg_policy_check_chain(c, &pp, &v), 0);
	/* the same certificate in the middle of a chain is checked */
	assert_int_equal(zg_rule_signature_hash(root, v.f[0].detail, sizeof(v.f[0].detail)),
			 ZG_R_CERT_WEAK_SIG_HASH);
	sk_X509_pop_free(c, X509_free);
}

static void key_types_and_sizes(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "key", .ext = {LEAF_EXTS}};
	struct zg_profile no_ed = *zg_profile_default();
	struct zg_profile rsa3072 = *zg_profile_default();
	char d[ZG_POLICY_DETAIL_MAX];
	X509 *x;

	expect_only(k, k->rsa1024, &s, ZG_R_CERT_WEAK_RSA_KEY);
	expect_only(k, k->k1, &s, ZG_R_CERT_EC_CURVE);
	no_ed.allow_eddsa = 0;
	x = leaf(k, k->ed, &s);
	assert_int_equal(zg_rule_public_key(x, &no_ed, d, sizeof(d)), ZG_R_CERT_EDDSA);
	assert_int_equal(zg_rule_public_key(x, zg_profile_default(), d, sizeof(d)), ZG_R_OK);
	X509_free(x);
	rsa3072.min_rsa_bits = 3072;
	x = leaf(k, k->rsa2048, &s);
	assert_int_equal(zg_rule_public_key(x, &rsa3072, d, sizeof(d)), ZG_R_CERT_WEAK_RSA_KEY);
	assert_non_null(strstr(d, "2048"));
	X509_free(x);
}

static void issuer_self_signed_refused(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "direct", .ext = {LEAF_EXTS}};
	struct zg_policy_params pp = params(k, ZG_ROLE_CLIENT);
	struct zg_policy_verdict v;
	STACK_OF(X509) *c = sk_X509_new_null();
	char d[ZG_POLICY_DETAIL_MAX];

	assert_true(sk_X509_push(c, mk(k, k->p256, k->root, k->root_key, &s)) > 0);
	assert_int_equal(X509_up_ref(k->root), 1);
	assert_true(sk_X509_push(c, k->root) > 0);
	assert_int_equal(zg_policy_check_chain(c, &pp, &v), -1);
	assert_int_equal(v.n, 1);
	assert_int_equal(v.f[0].reason, ZG_R_CERT_ISSUER_SELF_SIGNED);
	/* a self-signed leaf alone */
	X509_free(sk_X509_pop(c));
	assert_int_equal(zg_rule_issuer_not_self_signed(c, d, sizeof(d)), ZG_R_CERT_ISSUER_SELF_SIGNED);
	sk_X509_pop_free(c, X509_free);
	assert_int_equal(zg_rule_issuer_not_self_signed(NULL, d, sizeof(d)), ZG_R_TLS_NO_PEER_CERT);
}

static void leaf_ca_refused(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "ca-leaf",
			 .ext = {"basicConstraints:critical,CA:TRUE", "keyUsage:critical,digitalSignature",
				 "extendedKeyUsage:clientAuth"}};
	struct spec no_bc = {.cn = "ku-ca", .ext = {"keyUsage:critical,digitalSignature,keyCertSign",
						    "extendedKeyUsage:clientAuth"}};
	X509 *x = leaf(k, k->p256, &no_bc);
	char d[ZG_POLICY_DETAIL_MAX];

	expect_only(k, k->p256, &s, ZG_R_CERT_LEAF_IS_CA);
	/* keyCertSign without basicConstraints makes OpenSSL treat it as a CA */
	assert_int_equal(zg_rule_leaf_not_ca(x, d, sizeof(d)), ZG_R_CERT_LEAF_IS_CA);
	X509_free(x);
}

static void eku_by_role(void **state)
{
	struct pki *k = *state;
	struct spec server = {.cn = "srv", .ext = {"extendedKeyUsage:serverAuth"}};
	struct spec any = {.cn = "any", .ext = {"extendedKeyUsage:anyExtendedKeyUsage"}};
	struct spec none = {.cn = "none", .ext = {"keyUsage:critical,digitalSignature"}};
	X509 *xs = leaf(k, k->p256, &server), *xa = leaf(k, k->p256, &any), *xn = leaf(k, k->p256, &none);
	char d[ZG_POLICY_DETAIL_MAX];

	assert_int_equal(zg_rule_eku(xs, ZG_ROLE_SERVER, d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_eku(xs, ZG_ROLE_CLIENT, d, sizeof(d)), ZG_R_CERT_EKU_MISSING);
	assert_non_null(strstr(d, "clientAuth"));
	assert_int_equal(zg_rule_eku(xa, ZG_ROLE_CLIENT, d, sizeof(d)), ZG_R_CERT_EKU_MISSING);
	assert_int_equal(zg_rule_eku(xn, ZG_ROLE_SERVER, d, sizeof(d)), ZG_R_CERT_EKU_MISSING);
	X509_free(xs);
	X509_free(xa);
	X509_free(xn);
}

static void key_usage_consistency(void **state)
{
	struct pki *k = *state;
	struct {
		EVP_PKEY **key;
		const char *ku;
		int is_ca;
		enum zg_reason want;
	} cases[] = {
		{&k->p256, "keyUsage:critical,digitalSignature,keyEncipherment", 0, ZG_R_CERT_KEY_USAGE},
		{&k->p256, "keyUsage:critical,keyAgreement", 0, ZG_R_CERT_KEY_USAGE},
		{&k->rsa2048, "keyUsage:critical,digitalSignature,keyAgreement", 0, ZG_R_CERT_KEY_USAGE},
		{&k->rsa2048, "keyUsage:critical,digitalSignature,keyEncipherment", 0, ZG_R_OK},
		{&k->p256, "keyUsage:critical,digitalSignature,cRLSign", 0, ZG_R_CERT_KEY_USAGE},
		{&k->p256, "keyUsage:critical,digitalSignature", 1, ZG_R_CERT_KEY_USAGE},
		{&k->p256, "keyUsage:critical,keyCertSign,cRLSign", 1, ZG_R_OK},
		{&k->ed, "keyUsage:critical,digitalSignature", 0, ZG_R_OK},
		{&k->ed, "keyUsage:critical,digitalSignature,keyEncipherment", 0, ZG_R_CERT_KEY_USAGE},
	};
	struct spec none = {.cn = "no-ku"};
	char d[ZG_POLICY_DETAIL_MAX];
	X509 *x;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spec s = {.cn = "ku", .ext = {cases[i].ku}};
		x = leaf(k, *cases[i].key, &s);
		if (zg_rule_key_usage(x, cases[i].is_ca, d, sizeof(d)) != cases[i].want)
			print_error("case %zu: %s\n", i, cases[i].ku);
		assert_int_equal(zg_rule_key_usage(x, cases[i].is_ca, d, sizeof(d)), cases[i].want);
		X509_free(x);
	}
	x = leaf(k, k->p256, &none);
	assert_int_equal(zg_rule_key_usage(x, 0, d, sizeof(d)), ZG_R_OK);
	X509_free(x);
}

static void validity_with_skew(void **state)
{
	struct pki *k = *state;
	struct spec expired = {.cn = "exp", .nb = -10 * DAY, .na = -60};
	struct spec notyet = {.cn = "ny", .nb = 60, .na = 10 * DAY};
	X509 *xe = leaf(k, k->p256, &expired), *xn = leaf(k, k->p256, &notyet);
	char d[ZG_POLICY_DETAIL_MAX];

	assert_int_equal(zg_rule_validity(xe, k->now, 0, d, sizeof(d)), ZG_R_TLS_CERT_EXPIRED);
	assert_int_equal(zg_rule_validity(xe, k->now, 600, d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_validity(xn, k->now, 0, d, sizeof(d)), ZG_R_TLS_CERT_NOT_YET_VALID);
	assert_int_equal(zg_rule_validity(xn, k->now, 600, d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_validity(xn, k->now + 3600, 0, d, sizeof(d)), ZG_R_OK);
	X509_free(xe);
	X509_free(xn);
}

static void chain_depth_limit(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "d", .ext = {LEAF_EXTS}};
	STACK_OF(X509) *c = chain3(k, leaf(k, k->p256, &s));
	char d[ZG_POLICY_DETAIL_MAX];

	assert_int_equal(zg_rule_chain_depth(c, 2, d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_chain_depth(c, 1, d, sizeof(d)), ZG_R_CERT_CHAIN_TOO_DEEP);
	assert_int_equal(zg_rule_chain_depth(c, 0, d, sizeof(d)), ZG_R_OK); /* 0 = default 4 */
	/* without the root (a chain as presented), both certificates count */
	X509_free(sk_X509_pop(c));
	assert_int_equal(zg_rule_chain_depth(c, 2, d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_chain_depth(c, 1, d, sizeof(d)), ZG_R_CERT_CHAIN_TOO_DEEP);
	assert_int_equal(X509_up_ref(k->root), 1);
	assert_true(sk_X509_push(c, k->root) > 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(X509_up_ref(k->inter), 1);
		assert_true(sk_X509_insert(c, k->inter, 1) > 0);
	}
	assert_int_equal(zg_rule_chain_depth(c, 0, d, sizeof(d)), ZG_R_CERT_CHAIN_TOO_DEEP);
	sk_X509_pop_free(c, X509_free);
}

/* A CRL by @issuer (signed with @key) listing @revoked (may be NULL). */
static X509_CRL *crl(struct pki *k, X509 *issuer, EVP_PKEY *key, X509 *revoked, long next)
{
	X509_CRL *c = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	time_t tt;

	assert_non_null(c);
	assert_non_null(t);
	assert_int_equal(X509_CRL_set_version(c, 1), 1);
	assert_int_equal(X509_CRL_set_issuer_name(c, X509_get_subject_name(issuer)), 1);
	tt = k->now - DAY;
	assert_non_null(X509_time_adj_ex(t, 0, 0, &tt));
	assert_int_equal(X509_CRL_set1_lastUpdate(c, t), 1);
	tt = k->now + next;
	assert_non_null(X509_time_adj_ex(t, 0, 0, &tt));
	assert_int_equal(X509_CRL_set1_nextUpdate(c, t), 1);
	if (revoked) {
		X509_REVOKED *r = X509_REVOKED_new();
		assert_non_null(r);
		assert_int_equal(X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked)), 1);
		assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
		assert_int_equal(X509_CRL_add0_revoked(c, r), 1);
	}
	assert_int_equal(X509_CRL_sort(c), 1);
	assert_true(X509_CRL_sign(c, key, EVP_sha256()) > 0);
	ASN1_TIME_free(t);
	return c;
}

static void revocation_rules(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "r", .ext = {LEAF_EXTS}};
	struct spec cdp = {.cn = "cdp", .ext = {LEAF_EXTS, "crlDistributionPoints:URI:http://crl.test/x"}};
	X509 *x = leaf(k, k->p256, &s), *other = leaf(k, k->p256, &s), *xc = leaf(k, k->p256, &cdp);
	struct zg_policy_params pp = params(k, ZG_ROLE_CLIENT);
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	char d[ZG_POLICY_DETAIL_MAX];

	assert_non_null(crls);
	/* no CRLs configured: the rule does not run */
	assert_int_equal(zg_rule_revocation(x, k->inter, &pp, d, sizeof(d)), ZG_R_OK);
	pp.crls = crls;
	/* configured, none for this issuer: only required ones fail */
	assert_int_equal(zg_rule_revocation(x, k->inter, &pp, d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_revocation(xc, k->inter, &pp, d, sizeof(d)), ZG_R_CRL_MISSING);
	pp.crl_require_all = 1;
	assert_int_equal(zg_rule_revocation(x, k->inter, &pp, d, sizeof(d)), ZG_R_CRL_MISSING);
	/* a CRL with the issuer's name but another key */
	assert_true(sk_X509_CRL_push(crls, crl(k, k->inter, k->p384, NULL, DAY)) > 0);
	assert_int_equal(zg_rule_revocation(x, k->inter, &pp, d, sizeof(d)), ZG_R_CRL_INVALID);
	/* the real one, revoking x */
	assert_true(sk_X509_CRL_push(crls, crl(k, k->inter, k->int_key, x, DAY)) > 0);
	assert_int_equal(zg_rule_revocation(x, k->inter, &pp, d, sizeof(d)), ZG_R_TLS_CERT_REVOKED);
	assert_int_equal(zg_rule_revocation(other, k->inter, &pp, d, sizeof(d)), ZG_R_OK);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	/* stale: past nextUpdate; a revoked serial still wins */
	crls = sk_X509_CRL_new_null();
	assert_true(sk_X509_CRL_push(crls, crl(k, k->inter, k->int_key, x, -60)) > 0);
	pp.crls = crls;
	assert_int_equal(zg_rule_revocation(other, k->inter, &pp, d, sizeof(d)), ZG_R_CRL_STALE);
	assert_int_equal(zg_rule_revocation(x, k->inter, &pp, d, sizeof(d)), ZG_R_TLS_CERT_REVOKED);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	X509_free(x);
	X509_free(other);
	X509_free(xc);
}

static void crl_stale_warn_mode(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "w", .ext = {LEAF_EXTS}};
	struct zg_policy_params pp = params(k, ZG_ROLE_CLIENT);
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	STACK_OF(X509) *c = chain3(k, leaf(k, k->p256, &s));
	struct zg_policy_verdict v;

	assert_true(sk_X509_CRL_push(crls, crl(k, k->inter, k->int_key, NULL, -60)) > 0);
	assert_true(sk_X509_CRL_push(crls, crl(k, k->root, k->root_key, NULL, DAY)) > 0);
	pp.crls = crls;
	assert_int_equal(zg_policy_check_chain(c, &pp, &v), -1);
	assert_true(zg_policy_verdict_has(&v, ZG_R_CRL_STALE));
	pp.crl_stale_warn = 1;
	assert_int_equal(zg_policy_check_chain(c, &pp, &v), 0);
	assert_int_equal(v.n, 1);
	assert_int_equal(v.failed, 0);
	assert_true(v.f[0].warn);
	assert_false(zg_policy_verdict_has(&v, ZG_R_CRL_STALE));
	assert_null(zg_policy_first_failure(&v));
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	sk_X509_pop_free(c, X509_free);
}

/* A temporary file holding @text (if not NULL) then @crls in PEM. */
static void write_tmp(char *path, const char *text, X509_CRL **crls, size_t n)
{
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	if (text)
		assert_true(fputs(text, f) >= 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(PEM_write_X509_CRL(f, crls[i]), 1);
	assert_int_equal(fclose(f), 0);
}

static void crl_files(void **state)
{
	struct pki *k = *state;
	X509_CRL *c[2] = {crl(k, k->inter, k->int_key, NULL, -60), crl(k, k->root, k->root_key, NULL, DAY)};
	STACK_OF(X509_CRL) *crls = zg_crl_new();
	char two[] = "/tmp/zg-crl-XXXXXX", none[] = "/tmp/zg-crl-XXXXXX", bad[] = "/tmp/zg-crl-XXXXXX";
	char why[512];
	X509_STORE *st = X509_STORE_new();

	assert_non_null(crls);
	write_tmp(two, "# two CRLs\n", c, 2);
	write_tmp(none, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", NULL, 0);
	write_tmp(bad, "-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n", NULL, 0);
	assert_int_equal(zg_crl_load_file(crls, two, why, sizeof(why)), 2);
	assert_int_equal(sk_X509_CRL_num(crls), 2);
	/* failures leave the stack as it was and say why */
	assert_int_equal(zg_crl_load_file(crls, "/nonexistent/zg.crl", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "/nonexistent/zg.crl"));
	assert_int_equal(zg_crl_load_file(crls, none, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no CRL"));
	assert_int_equal(zg_crl_load_file(crls, bad, why, sizeof(why)), -1);
	assert_int_equal(sk_X509_CRL_num(crls), 2);
	/* the stale one is found, the fresh one is not */
	assert_int_equal(zg_crl_next_stale(crls, 0, k->now), 0);
	assert_int_equal(zg_crl_next_stale(crls, 1, k->now), -1);
	assert_non_null(st);
	assert_int_equal(zg_crl_add_to_store(st, crls), 0);
	X509_STORE_free(st);
	zg_crl_free(crls);
	zg_crl_free(NULL);
	unlink(two);
	unlink(none);
	unlink(bad);
	X509_CRL_free(c[0]);
	X509_CRL_free(c[1]);
}

static void server_names(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "name.zonegate.test",
			 .ext = {"subjectAltName:DNS:a.zonegate.test,DNS:*.wild.test,URI:urn:oid:1.2.3"}};
	X509 *x = leaf(k, k->p256, &s);
	char d[ZG_POLICY_DETAIL_MAX];

	assert_int_equal(zg_rule_server_name(x, "a.zonegate.test", d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_server_name(x, "b.wild.test", d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_server_name(x, "a.b.wild.test", d, sizeof(d)), ZG_R_TLS_NAME_MISMATCH);
	/* never the CN */
	assert_int_equal(zg_rule_server_name(x, "name.zonegate.test", d, sizeof(d)),
			 ZG_R_TLS_NAME_MISMATCH);
	/* a URI by the one rule conf and tls use too (issue 10 item 10): it
	 * matches the URI SAN, where this rule alone used to want "://" */
	assert_int_equal(zg_rule_server_name(x, "urn:oid:1.2.3", d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_server_name(x, "urn:oid:1.2.4", d, sizeof(d)), ZG_R_TLS_NAME_MISMATCH);
	X509_free(x);
}

#define LEAF_EXTS_NO_SAN "basicConstraints:critical,CA:FALSE", "keyUsage:critical,digitalSignature", \
			 "extendedKeyUsage:serverAuth,clientAuth"

/* @x with one more SAN of @type holding the @n bytes at @v, re-signed. */
static void add_raw_san(struct pki *k, X509 *x, int type, const char *v, int n)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *str = ASN1_IA5STRING_new();

	assert_non_null(gens);
	assert_non_null(gn);
	assert_non_null(str);
	assert_int_equal(ASN1_STRING_set(str, v, n), 1);
	GENERAL_NAME_set0_value(gn, type, str);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
	GENERAL_NAMES_free(gens);
	assert_true(X509_sign(x, k->int_key, EVP_sha256()) > 0);
}

static void verdict_of_x(struct pki *k, X509 *x, struct zg_policy_verdict *v)
{
	struct zg_policy_params pp = params(k, ZG_ROLE_CLIENT);
	STACK_OF(X509) *c = chain3(k, x);

	zg_policy_check_chain(c, &pp, v);
	sk_X509_pop_free(c, X509_free);
}

/* Issue 15 item 3: NUL or control characters in a name, and oversized
 * certificates, each named by its own rule; clean ones pass both. */
static void names_and_size(void **state)
{
	struct pki *k = *state;
	struct spec clean = {.cn = "caf\xc3\xa9.zonegate.test", .ext = {LEAF_EXTS_NO_SAN}};
	struct spec ctl = {.cn = "a\x01" "b", .ext = {LEAF_EXTS}};
	struct spec c1 = {.cn = "a\xc2\x85" "b", .ext = {LEAF_EXTS}}; /* U+0085 NEL */
	char big[9000 + 16] = "nsComment:";
	struct spec large = {.cn = "large", .ext = {LEAF_EXTS, big}};
	struct zg_policy_verdict v;
	char d[ZG_POLICY_DETAIL_MAX];
	X509 *x;

	(void)state;
	x = leaf(k, k->p256, &clean);
	add_raw_san(k, x, GEN_DNS, "a.zonegate.test", 15);
	assert_int_equal(zg_rule_names(x, d, sizeof(d)), ZG_R_OK);
	assert_int_equal(zg_rule_der_size(x, d, sizeof(d)), ZG_R_OK);
	X509_free(x);

	/* the NUL-prefix trick: "evil.test\0.zonegate.test" */
	x = leaf(k, k->p256, &clean);
	add_raw_san(k, x, GEN_DNS, "evil.test\0.zonegate.test", 25);
	verdict_of_x(k, x, &v);
	assert_int_equal(v.n, 1);
	assert_int_equal(v.f[0].reason, ZG_R_CERT_NAME_CONTROL);
	assert_string_equal(v.f[0].detail, "DNS SAN #1 holds a control character");

	x = leaf(k, k->p256, &clean);
	add_raw_san(k, x, GEN_URI, "urn:zg:a\nInjected: yes", 23);
	assert_int_equal(zg_rule_names(x, d, sizeof(d)), ZG_R_CERT_NAME_CONTROL);
	X509_free(x);

	expect_only(k, k->p256, &ctl, ZG_R_CERT_NAME_CONTROL);
	expect_only(k, k->p256, &c1, ZG_R_CERT_NAME_CONTROL);

	memset(big + 10, 'x', 9000);
	big[9010] = '\0';
	expect_only(k, k->p256, &large, ZG_R_CERT_TOO_LARGE);
}

/* @c with CRL number @n, re-signed by @key. */
static X509_CRL *numbered(X509_CRL *c, EVP_PKEY *key, long n)
{
	ASN1_INTEGER *num = ASN1_INTEGER_new();

	assert_non_null(num);
	assert_int_equal(ASN1_INTEGER_set(num, n), 1);
	assert_int_equal(X509_CRL_add1_ext_i2d(c, NID_crl_number, num, 0, X509V3_ADD_REPLACE), 1);
	ASN1_INTEGER_free(num);
	assert_true(X509_CRL_sign(c, key, EVP_sha256()) > 0);
	return c;
}

/* Issue 15 item 4: what a fetched CRL must be before it replaces the file. */
static void crl_judge(void **state)
{
	struct pki *k = *state;
	STACK_OF(X509) *cas = sk_X509_new_null();
	X509_CRL *one = numbered(crl(k, k->inter, k->int_key, NULL, DAY), k->int_key, 1);
	X509_CRL *two = numbered(crl(k, k->inter, k->int_key, NULL, DAY), k->int_key, 2);
	X509_CRL *stale = numbered(crl(k, k->inter, k->int_key, NULL, -60), k->int_key, 3);
	X509_CRL *forged = numbered(crl(k, k->inter, k->root_key, NULL, DAY), k->root_key, 4);
	char why[128];

	(void)state;
	assert_non_null(cas);
	assert_true(sk_X509_push(cas, k->root) > 0);
	assert_true(sk_X509_push(cas, k->inter) > 0);
	assert_int_equal(zg_crl_judge(two, NULL, cas, k->now, why, sizeof(why)), 0);
	assert_int_equal(zg_crl_judge(two, one, cas, k->now, why, sizeof(why)), 0);
	assert_int_equal(zg_crl_judge(two, two, cas, k->now, why, sizeof(why)), 1);
	assert_int_equal(zg_crl_judge(one, two, cas, k->now, why, sizeof(why)), -1);
	assert_string_equal(why, "older than the CRL in force (a replayed CRL)");
	assert_int_equal(zg_crl_judge(stale, one, cas, k->now, why, sizeof(why)), -1);
	assert_string_equal(why, "already past its nextUpdate");
	/* the intermediate's name, the root's signature */
	assert_int_equal(zg_crl_judge(forged, one, cas, k->now, why, sizeof(why)), -1);
	assert_string_equal(why, "not signed by a CA we trust for its issuer");
	sk_X509_free(cas); /* the certificates are the fixture's */
	X509_CRL_free(one);
	X509_CRL_free(two);
	X509_CRL_free(stale);
	X509_CRL_free(forged);
}

/* Every failing rule is reported, not just the first. */
static void all_failures_reported(void **state)
{
	struct pki *k = *state;
	struct spec s = {.cn = "bad", .md = "SHA1", .na = -60, .ext = {"basicConstraints:CA:TRUE"}};
	struct zg_policy_params pp = params(k, ZG_ROLE_SERVER);
	struct zg_policy_verdict v;
	STACK_OF(X509) *c = chain3(k, leaf(k, k->rsa1024, &s));
	enum zg_reason want[] = {ZG_R_CERT_WEAK_SIG_HASH, ZG_R_CERT_WEAK_RSA_KEY, ZG_R_TLS_CERT_EXPIRED,
				 ZG_R_CERT_LEAF_IS_CA, ZG_R_CERT_EKU_MISSING};

	assert_int_equal(zg_policy_check_chain(c, &pp, &v), -1);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!zg_policy_verdict_has(&v, want[i]))
			print_error("missing %s\n", zg_reason_code(want[i]));
		assert_true(zg_policy_verdict_has(&v, want[i]));
	}
	assert_int_equal(v.failed, v.n);
	assert_int_equal(v.dropped, 0);
	/* the same bad certificate many times overflows the array, counted */
	for (int i = 0; i < 6; i++) {
		assert_int_equal(X509_up_ref(sk_X509_value(c, 0)), 1);
		assert_true(sk_X509_unshift(c, sk_X509_value(c, 0)) > 0);
	}
	assert_int_equal(zg_policy_check_chain(c, &pp, &v), -1);
	assert_int_equal(v.n, ZG_POLICY_MAX_FINDINGS);
	assert_true(v.dropped > 0);
	assert_int_equal(v.failed, v.n + v.dropped);
	sk_X509_pop_free(c, X509_free);
}

static void empty_chain(void **state)
{
	struct pki *k = *state;
	struct zg_policy_params pp = params(k, ZG_ROLE_CLIENT);
	struct zg_policy_verdict v;
	STACK_OF(X509) *c = sk_X509_new_null();

	assert_int_equal(zg_policy_check_chain(NULL, &pp, &v), -1);
	assert_int_equal(v.f[0].reason, ZG_R_TLS_NO_PEER_CERT);
	assert_int_equal(zg_policy_check_chain(c, &pp, &v), -1);
	assert_int_equal(v.f[0].reason, ZG_R_TLS_NO_PEER_CERT);
	sk_X509_free(c);
}

static void x509_error_mapping(void **state)
{
	(void)state;
	assert_int_equal(zg_policy_reason_from_x509(X509_V_OK), ZG_R_OK);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_CERT_HAS_EXPIRED), ZG_R_TLS_CERT_EXPIRED);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_CERT_NOT_YET_VALID),
			 ZG_R_TLS_CERT_NOT_YET_VALID);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_CERT_REVOKED), ZG_R_TLS_CERT_REVOKED);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_CRL_HAS_EXPIRED), ZG_R_CRL_STALE);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_UNABLE_TO_GET_CRL), ZG_R_CRL_MISSING);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_CRL_SIGNATURE_FAILURE), ZG_R_CRL_INVALID);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_CERT_CHAIN_TOO_LONG),
			 ZG_R_CERT_CHAIN_TOO_DEEP);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_INVALID_PURPOSE), ZG_R_CERT_EKU_MISSING);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_CA_MD_TOO_WEAK), ZG_R_CERT_WEAK_SIG_HASH);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_EE_KEY_TOO_SMALL), ZG_R_CERT_WEAK_RSA_KEY);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_HOSTNAME_MISMATCH), ZG_R_TLS_NAME_MISMATCH);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
			 ZG_R_TLS_UNTRUSTED);
	assert_int_equal(zg_policy_reason_from_x509(X509_V_ERR_CERT_SIGNATURE_FAILURE), ZG_R_TLS_UNTRUSTED);
	assert_int_equal(zg_policy_reason_from_x509(-12345), ZG_R_TLS_UNTRUSTED);
}

/* Every reason a rule names is a real code of the certificate-policy or TLS
 * group, and every rule has at least one. */
static void rule_table_consistent(void **state)
{
	size_t n;
	const struct zg_policy_rule *r = zg_policy_rules(&n);

	(void)state;
	assert_true(n >= 12);
	for (size_t i = 0; i < n; i++) {
		assert_true(r[i].reasons[0] != ZG_R_OK);
		for (size_t j = 0; j < 6 && r[i].reasons[j] != ZG_R_OK; j++)
			assert_int_equal(zg_reason_class(r[i].reasons[j]), ZG_CL_ALERT);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(compliant_leaves_pass),
		cmocka_unit_test(version_1_refused),
		cmocka_unit_test(weak_hashes_refused),
		cmocka_unit_test(anchor_self_signature_exempt),
		cmocka_unit_test(key_types_and_sizes),
		cmocka_unit_test(issuer_self_signed_refused),
		cmocka_unit_test(leaf_ca_refused),
		cmocka_unit_test(eku_by_role),
		cmocka_unit_test(key_usage_consistency),
		cmocka_unit_test(validity_with_skew),
		cmocka_unit_test(chain_depth_limit),
		cmocka_unit_test(revocation_rules),
		cmocka_unit_test(crl_stale_warn_mode),
		cmocka_unit_test(crl_files),
		cmocka_unit_test(server_names),
		cmocka_unit_test(names_and_size),
		cmocka_unit_test(crl_judge),
		cmocka_unit_test(all_failures_reported),
		cmocka_unit_test(empty_chain),
		cmocka_unit_test(x509_error_mapping),
		cmocka_unit_test(rule_table_consistent),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
