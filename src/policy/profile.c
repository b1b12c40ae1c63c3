/* profile.c - the profile tables; see profile.h. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "policy/profile.h"

/* TLS 1.3 suites, DICOM PS3.15 B.13 order (256-bit first). */
#define TLS13_HIGH                                                                 \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:" \
	"TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"
#define TLS13_RECOMMENDED                                                          \
	"TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256:"    \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* AEAD + forward secrecy only: ECDHE before DHE, 256-bit first. DHE uses
 * RFC 7919 ffdhe3072 (ZG_PROFILE_DHE_GROUP, set in zg_profile_apply). */
#define TLS12_HIGH                                                                  \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                  \
	"ECDHE-ECDSA-AES256-CCM8:ECDHE-ECDSA-AES256-CCM:"                             \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                  \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                  \
	"ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-CCM:"                             \
	"DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-CCM8:DHE-RSA-AES256-CCM:"           \
	"DHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-CCM8:"    \
	"DHE-RSA-AES128-CCM"
#define TLS12_RECOMMENDED                                                           \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                  \
	"ECDHE-ECDSA-AES128-CCM:ECDHE-ECDSA-AES128-CCM8:"                             \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                  \
	"ECDHE-ECDSA-AES256-CCM:ECDHE-ECDSA-AES256-CCM8:"                             \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                  \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-CCM:DHE-RSA-AES128-CCM8:"           \
	"DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-CCM:DHE-RSA-AES256-CCM8:"           \
	"DHE-RSA-CHACHA20-POLY1305"
#define TLS12_BCP195                                                                \
	"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:"                  \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384"

#define GROUPS_ALL "X25519:P-256:P-384:P-521:X448"

/* No SHA-1 and no MD5 anywhere; RSA-PSS before PKCS#1 v1.5. */
#define SIGALGS_STRONG                                                              \
	"ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:ed25519:ed448:"                       \
	"rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"                \
	"rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:"                   \
	"RSA+SHA256:RSA+SHA384:RSA+SHA512"

static const struct zg_profile profiles[] = {
	{
		.name = "cryptrec-high",
		.summary = "CRYPTREC GL-3001 high security; MHLW guideline 6.0 (default)",
		.min_version = TLS1_2_VERSION,
		.max_version = TLS1_3_VERSION,
		.tls13_suites = TLS13_HIGH,
		.tls12_ciphers = TLS12_HIGH,
		.groups = GROUPS_ALL,
		.sigalgs = SIGALGS_STRONG,
		.security_level = 2,
		.min_rsa_bits = 2048,
		.min_ec_bits = 256,
		.allow_eddsa = 1,
	},
	{
		.name = "cryptrec-recommended",
		.summary = "CRYPTREC GL-3001 recommended security (128-bit suites first)",
		.min_version = TLS1_2_VERSION,
		.max_version = TLS1_3_VERSION,
		.tls13_suites = TLS13_RECOMMENDED,
		.tls12_ciphers = TLS12_RECOMMENDED,
		.groups = GROUPS_ALL,
		.sigalgs = SIGALGS_STRONG,
		.security_level = 2,
		.min_rsa_bits = 2048,
		.min_ec_bits = 256,
		.allow_eddsa = 1,
	},
	{
		.name = "bcp195",
		.summary = "DICOM PS3.15 B.12 / IHE ATNA: BCP 195 (RFC 9325), TLS 1.2 floor",
		.min_version = TLS1_2_VERSION,
		.max_version = TLS1_3_VERSION,
		.tls13_suites = TLS13_HIGH,
		.tls12_ciphers = TLS12_BCP195,
		.groups = GROUPS_ALL,
		.sigalgs = SIGALGS_STRONG,
		.security_level = 2,
		.min_rsa_bits = 2048,
		.min_ec_bits = 256,
		.allow_eddsa = 1,
	},
};

#define N_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

const struct zg_profile *zg_profile_find(const char *name)
{
	for (size_t i = 0; i < N_PROFILES; i++)
		if (strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	return NULL;
}

const struct zg_profile *zg_profile_all(size_t *n)
{
	*n = N_PROFILES;
	return profiles;
}

const struct zg_profile *zg_profile_default(void)
{
	return &profiles[0];
}

static int fail(char *why, size_t cap, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(why, cap, "%s: %s", what, e ? buf : "rejected");
	ERR_clear_error();
	return -1;
}

/* The RFC 7919 group's parameters for TLS 1.2 DHE, or NULL. OpenSSL 3.0's
 * dh_auto would send RFC 3526 MODP primes sized to the certificate, not
 * the RFC 7919 groups our documentation and policy name. */
static EVP_PKEY *ffdhe_params(const char *group)
{
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
		OSSL_PARAM_END,
	};
	EVP_PKEY *pkey = NULL;

	if (!pctx || EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_KEY_PARAMETERS, params) <= 0) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(pctx);
	return pkey;
}

int zg_profile_apply(SSL_CTX *ctx, const struct zg_profile *p, char *why, size_t cap)
{
	EVP_PKEY *dh;

	if (!SSL_CTX_set_min_proto_version(ctx, p->min_version) ||
	    !SSL_CTX_set_max_proto_version(ctx, p->max_version))
		return fail(why, cap, "protocol versions");
	if (!SSL_CTX_set_ciphersuites(ctx, p->tls13_suites))
		return fail(why, cap, "TLS 1.3 suites");
	if (!SSL_CTX_set_cipher_list(ctx, p->tls12_ciphers))
		return fail(why, cap, "TLS 1.2 ciphers");
	if (!SSL_CTX_set1_groups_list(ctx, p->groups))
		return fail(why, cap, "groups");
	if (!SSL_CTX_set1_sigalgs_list(ctx, p->sigalgs) ||
	    !SSL_CTX_set1_client_sigalgs_list(ctx, p->sigalgs))
		return fail(why, cap, "signature algorithms");
	SSL_CTX_set_security_level(ctx, p->security_level);
	dh = ffdhe_params(ZG_PROFILE_DHE_GROUP);
	if (!dh || !SSL_CTX_set0_tmp_dh_pkey(ctx, dh)) {
		EVP_PKEY_free(dh); /* not taken on failure */
		return fail(why, cap, "DHE group " ZG_PROFILE_DHE_GROUP);
	}
	/* Server order, no compression (CRIME), no renegotiation (CVE-2009-3555
	 * class and a DoS lever), no 0-RTT (replayable). */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_max_early_data(ctx, 0);
	return 0;
}

/* ------------------------------------------------------------ narrowing */

int zg_profile_version_parse(const char *s)
{
	if (strncmp(s, "TLSv", 4) == 0)
		s += 4;
	if (strcmp(s, "1.2") == 0)
		return TLS1_2_VERSION;
	if (strcmp(s, "1.3") == 0)
		return TLS1_3_VERSION;
	return 0;
}

const char *zg_profile_version_name(int version)
{
	switch (version) {
	case TLS1_2_VERSION:
		return "TLSv1.2";
	case TLS1_3_VERSION:
		return "TLSv1.3";
	default:
		return "?";
	}
}

/* OpenSSL accepts several names for one group; compare canonical ones. */
static const char *canon_group(const char *g)
{
	static const char *const alias[][2] = {
		{"secp256r1", "P-256"}, {"prime256v1", "P-256"}, {"secp384r1", "P-384"},
		{"secp521r1", "P-521"}, {"x25519", "X25519"},    {"x448", "X448"},
	};

	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (strcasecmp(g, alias[i][0]) == 0)
			return alias[i][1];
	return g;
}

typedef int same_fn(const char *a, const char *b);

static int same_name(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static int same_group(const char *a, const char *b)
{
	return strcasecmp(canon_group(a), canon_group(b)) == 0;
}

/* The next element of a ':' / ',' / blank separated list into @tok; 0 at the
 * end, -1 if an element does not fit. */
static int next_token(const char **s, char *tok, size_t cap)
{
	const char *p = *s;
	size_t n;

	p += strspn(p, ":, \t");
	if (!*p)
		return 0;
	n = strcspn(p, ":, \t");
	if (n >= cap)
		return -1;
	memcpy(tok, p, n);
	tok[n] = '\0';
	*s = p + n;
	return 1;
}

static int in_list(const char *list, const char *tok, same_fn *same)
{
	char t[128];
	int r;

	while ((r = next_token(&list, t, sizeof(t))) > 0)
		if (same(t, tok))
			return 1;
	return 0;
}

static int append_tok(char *buf, size_t cap, const char *tok)
{
	size_t len = strlen(buf);
	int k = snprintf(buf + len, cap - len, "%s%s", len ? ":" : "", tok);

	return k < 0 || (size_t)k >= cap - len ? -1 : 0;
}

/* @buf = @over checked element by element against @base, or @base if @over
 * is empty. */
static int narrow_list(const char *key, const char *pname, const char *base, const char *over,
		       same_fn *same, char *buf, size_t bufcap, char *why, size_t cap)
{
	char tok[128];
	int r;

	buf[0] = '\0';
	if (!over || !*over) {
		if ((size_t)snprintf(buf, bufcap, "%s", base) >= bufcap)
			goto too_long;
		return 0;
	}
	while ((r = next_token(&over, tok, sizeof(tok))) > 0) {
		if (!in_list(base, tok, same)) {
			snprintf(why, cap, "%s: %s is not in profile %s (a route may only narrow it)", key,
				 tok, pname);
			return -1;
		}
		if (append_tok(buf, bufcap, same == same_group ? canon_group(tok) : tok) < 0)
			goto too_long;
	}
	if (r < 0)
		goto too_long;
	return 0;
too_long:
	snprintf(why, cap, "%s: list too long", key);
	return -1;
}

static int narrow_versions(const struct zg_profile *b, const struct zg_profile_overrides *o,
			   struct zg_profile *p, char *why, size_t cap)
{
	p->min_version = o->min_version ? o->min_version : b->min_version;
	p->max_version = o->max_version ? o->max_version : b->max_version;
	if (p->min_version < b->min_version || p->min_version > b->max_version) {
		snprintf(why, cap, "min_version: %s is outside profile %s (%s..%s)",
			 zg_profile_version_name(p->min_version), b->name,
			 zg_profile_version_name(b->min_version), zg_profile_version_name(b->max_version));
		return -1;
	}
	if (p->max_version > b->max_version || p->max_version < b->min_version) {
		snprintf(why, cap, "max_version: %s is outside profile %s (%s..%s)",
			 zg_profile_version_name(p->max_version), b->name,
			 zg_profile_version_name(b->min_version), zg_profile_version_name(b->max_version));
		return -1;
	}
	if (p->min_version > p->max_version) {
		snprintf(why, cap, "min_version: %s is above max_version %s",
			 zg_profile_version_name(p->min_version), zg_profile_version_name(p->max_version));
		return -1;
	}
	return 0;
}

int zg_profile_narrow(const struct zg_profile *base, const struct zg_profile_overrides *o,
		      struct zg_profile_narrowed *out, char *why, size_t cap)
{
	struct zg_profile *p = &out->p;

	*p = *base;
	if (narrow_versions(base, o, p, why, cap) < 0 ||
	    narrow_list("tls13_suites", base->name, base->tls13_suites, o->tls13_suites, same_name,
			out->tls13_suites, sizeof(out->tls13_suites), why, cap) < 0 ||
	    narrow_list("tls12_ciphers", base->name, base->tls12_ciphers, o->tls12_ciphers, same_name,
			out->tls12_ciphers, sizeof(out->tls12_ciphers), why, cap) < 0 ||
	    narrow_list("groups", base->name, base->groups, o->groups, same_group, out->groups,
			sizeof(out->groups), why, cap) < 0 ||
	    narrow_list("sigalgs", base->name, base->sigalgs, o->sigalgs, same_name, out->sigalgs,
			sizeof(out->sigalgs), why, cap) < 0)
		return -1;
	if (o->min_rsa_bits && o->min_rsa_bits < base->min_rsa_bits) {
		snprintf(why, cap, "min_rsa_bits: %u is below profile %s's %u", o->min_rsa_bits,
			 base->name, base->min_rsa_bits);
		return -1;
	}
	if (o->min_rsa_bits)
		p->min_rsa_bits = o->min_rsa_bits;
	if (o->no_eddsa)
		p->allow_eddsa = 0;
	p->tls13_suites = out->tls13_suites;
	p->tls12_ciphers = out->tls12_ciphers;
	p->groups = out->groups;
	p->sigalgs = out->sigalgs;
	p->summary = "narrowed for a route";
	return 0;
}

/* ------------------------------------------------------------ printing */

static const char *group_name(unsigned code)
{
	switch (code) {
	case 23: return "secp256r1";
	case 24: return "secp384r1";
	case 25: return "secp521r1";
	case 29: return "x25519";
	case 30: return "x448";
	case 256: return "ffdhe2048";
	case 257: return "ffdhe3072";
	case 258: return "ffdhe4096";
	case 259: return "ffdhe6144";
	case 260: return "ffdhe8192";
	default: return NULL;
	}
}

/* TLS SignatureScheme names (RFC 8446 4.2.3). */
static const char *sigalg_name(unsigned code)
{
	static const struct {
		unsigned code;
		const char *name;
	} t[] = {
		{0x0401, "rsa_pkcs1_sha256"},       {0x0501, "rsa_pkcs1_sha384"},
		{0x0601, "rsa_pkcs1_sha512"},       {0x0403, "ecdsa_secp256r1_sha256"},
		{0x0503, "ecdsa_secp384r1_sha384"}, {0x0603, "ecdsa_secp521r1_sha512"},
		{0x0804, "rsa_pss_rsae_sha256"},    {0x0805, "rsa_pss_rsae_sha384"},
		{0x0806, "rsa_pss_rsae_sha512"},    {0x0807, "ed25519"},
		{0x0808, "ed448"},                  {0x0809, "rsa_pss_pss_sha256"},
		{0x080a, "rsa_pss_pss_sha384"},     {0x080b, "rsa_pss_pss_sha512"},
		{0x0201, "rsa_pkcs1_sha1"},         {0x0203, "ecdsa_sha1"},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].code == code)
			return t[i].name;
	return NULL;
}

struct hello {
	int seen;
	unsigned char versions[64], groups[128], sigalgs[128], ciphers[512];
	size_t n_versions, n_groups, n_sigalgs, n_ciphers;
};

/* Copy extension @type's body past its @lenbytes-byte length prefix. */
static void grab_ext(SSL *s, unsigned type, size_t lenbytes, unsigned char *dst, size_t dcap,
		     size_t *n)
{
	const unsigned char *p;
	size_t len;

	*n = 0;
	if (!SSL_client_hello_get0_ext(s, type, &p, &len) || len < lenbytes)
		return;
	len -= lenbytes;
	*n = len < dcap ? len : dcap;
	memcpy(dst, p + lenbytes, *n);
}

/* Record what the client offered, then end the handshake: nothing else is
 * needed from it. */
static int capture_hello(SSL *s, int *al, void *arg)
{
	struct hello *h = arg;
	const unsigned char *c;
	size_t n = SSL_client_hello_get0_ciphers(s, &c);

	h->n_ciphers = n < sizeof(h->ciphers) ? n : sizeof(h->ciphers);
	memcpy(h->ciphers, c, h->n_ciphers);
	grab_ext(s, TLSEXT_TYPE_supported_versions, 1, h->versions, sizeof(h->versions),
		 &h->n_versions);
	grab_ext(s, TLSEXT_TYPE_supported_groups, 2, h->groups, sizeof(h->groups), &h->n_groups);
	grab_ext(s, TLSEXT_TYPE_signature_algorithms, 2, h->sigalgs, sizeof(h->sigalgs),
		 &h->n_sigalgs);
	h->seen = 1;
	*al = SSL_AD_HANDSHAKE_FAILURE;
	return SSL_CLIENT_HELLO_ERROR;
}

/* Run a client with profile @p against a capturing server, in memory. */
static int client_hello_of(const struct zg_profile *p, struct hello *h, char *why, size_t cap)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL *c = NULL, *s = NULL;
	BIO *cb = NULL, *sb = NULL;
	int rc = -1;

	memset(h, 0, sizeof(*h));
	if (!cctx || !sctx || zg_profile_apply(cctx, p, why, cap) < 0)
		goto out;
	SSL_CTX_set_client_hello_cb(sctx, capture_hello, h);
	c = SSL_new(cctx);
	s = SSL_new(sctx);
	if (!c || !s || !BIO_new_bio_pair(&cb, 0, &sb, 0))
		goto out;
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	(void)SSL_do_handshake(c);
	(void)SSL_do_handshake(s);
	rc = h->seen ? 0 : -1;
	if (rc < 0)
		snprintf(why, cap, "no ClientHello captured");
out:
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	return rc;
}

static unsigned u16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void print_codes(FILE *out, const char *label, const unsigned char *b, size_t n,
			const char *(*name)(unsigned))
{
	fprintf(out, "    %-10s", label);
	for (size_t i = 0; i + 1 < n; i += 2) {
		const char *nm = name(u16(b + i));
		if (nm)
			fprintf(out, " %s", nm);
		else
			fprintf(out, " 0x%04x", u16(b + i));
	}
	fputc('\n', out);
}

static const char *tls_version_code(unsigned v)
{
	switch (v) {
	case 0x0304: return "TLSv1.3";
	case 0x0303: return "TLSv1.2";
	case 0x0302: return "TLSv1.1";
	case 0x0301: return "TLSv1.0";
	default: return NULL;
	}
}

static void print_hello(FILE *out, const struct hello *h)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;

	fprintf(out, "  client hello (wrap and bridge routes offer):\n");
	print_codes(out, "versions", h->versions, h->n_versions, tls_version_code);
	fprintf(out, "    suites\n");
	for (size_t i = 0; i + 1 < h->n_ciphers; i += 2) {
		const SSL_CIPHER *c = ssl ? SSL_CIPHER_find(ssl, h->ciphers + i) : NULL;
		if (c)
			fprintf(out, "      %s\n", SSL_CIPHER_get_name(c));
		else
			fprintf(out, "      0x%04x\n", u16(h->ciphers + i));
	}
	print_codes(out, "groups", h->groups, h->n_groups, group_name);
	print_codes(out, "sigalgs", h->sigalgs, h->n_sigalgs, sigalg_name);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

/* The suites a server SSL of @ctx would accept, per version, in order. */
static int print_server_suites(SSL_CTX *ctx, FILE *out)
{
	static const char *const versions[] = {"TLSv1.3", "TLSv1.2"};
	SSL *ssl = SSL_new(ctx);
	STACK_OF(SSL_CIPHER) *sk = ssl ? SSL_get1_supported_ciphers(ssl) : NULL;

	if (!sk) {
		SSL_free(ssl);
		return -1;
	}
	fprintf(out, "  server suites (preference order):\n");
	for (size_t v = 0; v < 2; v++) {
		for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
			const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
			if (strcmp(SSL_CIPHER_get_version(c), versions[v]) != 0)
				continue;
			fprintf(out, "    %s  %-30s %s\n", versions[v], SSL_CIPHER_get_name(c),
				SSL_CIPHER_standard_name(c));
		}
	}
	sk_SSL_CIPHER_free(sk);
	SSL_free(ssl);
	return 0;
}

static void print_settings(SSL_CTX *ctx, const struct zg_profile *p, FILE *out)
{
	uint64_t op = SSL_CTX_get_options(ctx);

	fprintf(out, "profile %s\n", p->name);
	fprintf(out, "  summary            %s\n", p->summary);
	fprintf(out, "  versions           %s .. %s\n",
		zg_profile_version_name((int)SSL_CTX_get_min_proto_version(ctx)),
		zg_profile_version_name((int)SSL_CTX_get_max_proto_version(ctx)));
	fprintf(out, "  security_level     %d\n", SSL_CTX_get_security_level(ctx));
	fprintf(out, "  server_preference  %s\n", op & SSL_OP_CIPHER_SERVER_PREFERENCE ? "on" : "off");
	fprintf(out, "  compression        %s\n", op & SSL_OP_NO_COMPRESSION ? "off" : "on");
	fprintf(out, "  renegotiation      %s\n", op & SSL_OP_NO_RENEGOTIATION ? "off" : "on");
	fprintf(out, "  early_data         %u\n", (unsigned)SSL_CTX_get_max_early_data(ctx));
	fprintf(out, "  dhe_groups         %s (RFC 7919), TLS 1.2 DHE suites\n", ZG_PROFILE_DHE_GROUP);
	fprintf(out, "  certificates       RSA >= %u bits; EC P-256, P-384, P-521 (>= %u bits); "
		     "EdDSA %s; signature hash >= SHA-256\n",
		p->min_rsa_bits, p->min_ec_bits, p->allow_eddsa ? "allowed" : "refused");
}

int zg_profile_print(const struct zg_profile *p, FILE *out, char *why, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	struct hello h;
	int rc = -1;

	if (!ctx) {
		snprintf(why, cap, "out of memory");
		return -1;
	}
	if (zg_profile_apply(ctx, p, why, cap) < 0 || client_hello_of(p, &h, why, cap) < 0)
		goto out;
	print_settings(ctx, p, out);
	if (print_server_suites(ctx, out) < 0) {
		snprintf(why, cap, "cannot list the enabled suites");
		goto out;
	}
	print_hello(out, &h);
	rc = 0;
out:
	SSL_CTX_free(ctx);
	return rc;
}
