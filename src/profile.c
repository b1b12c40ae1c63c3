/* profile.c - the profile tables; see profile.h. */
#include <string.h>

#include <openssl/err.h>

#include "profile.h"

/* TLS 1.3 suites, DICOM PS3.15 B.13 order (256-bit first). */
#define TLS13_HIGH                                                                 \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:" \
	"TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"
#define TLS13_RECOMMENDED                                                          \
	"TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256:"    \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* AEAD + forward secrecy only: ECDHE before DHE, 256-bit first. DHE uses
 * RFC 7919 groups of at least 2048 bits (dh_auto with security level 2). */
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

int zg_profile_apply(SSL_CTX *ctx, const struct zg_profile *p, char *why, size_t cap)
{
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
	if (!SSL_CTX_set_dh_auto(ctx, 1))
		return fail(why, cap, "DHE groups");
	/* Server order, no compression (CRIME), no renegotiation (CVE-2009-3555
	 * class and a DoS lever), no 0-RTT (replayable). */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_max_early_data(ctx, 0);
	return 0;
}
