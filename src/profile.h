/* profile.h - named TLS profiles: versions, suites, groups, signature
 * algorithms and certificate minimums, each a table row in profile.c.
 *
 * A profile is the most a route may allow; routes may only narrow it.
 * Sources: ../shared/specs.md section 2 (CRYPTREC GL-3001-3.0.1, DICOM
 * PS3.15 B.12/B.13, BCP 195).
 */
#ifndef ZG_PROFILE_H
#define ZG_PROFILE_H

#include <stddef.h>

#include <openssl/ssl.h>

struct zg_profile {
	const char *name;
	const char *summary;
	int min_version;          /* TLS1_2_VERSION ... */
	int max_version;          /* TLS1_3_VERSION */
	const char *tls13_suites; /* OpenSSL ciphersuites string, preference order */
	const char *tls12_ciphers;/* OpenSSL cipher list, preference order */
	const char *groups;       /* key-exchange groups, preference order */
	const char *sigalgs;      /* signature algorithms accepted and used */
	int security_level;       /* OpenSSL security level floor */
	unsigned min_rsa_bits;    /* certificate RSA modulus minimum */
	unsigned min_ec_bits;     /* certificate EC field size minimum */
	int allow_eddsa;          /* Ed25519/Ed448 certificates */
};

/* The profile called @name, or NULL. */
const struct zg_profile *zg_profile_find(const char *name);

/* The profiles in definition order; sets *n. */
const struct zg_profile *zg_profile_all(size_t *n);

/* The default profile, "cryptrec-high". */
const struct zg_profile *zg_profile_default(void);

/* Configure @ctx with exactly @p's versions, suites, groups and signature
 * algorithms, server preference on, compression, renegotiation and 0-RTT
 * off. Returns 0, or -1 with the OpenSSL reason in @why. */
int zg_profile_apply(SSL_CTX *ctx, const struct zg_profile *p, char *why, size_t cap);

#endif
