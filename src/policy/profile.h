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
#include <stdio.h>

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

/* The one group of TLS 1.2 DHE suites in every profile: RFC 7919's 3072-bit
 * group (128-bit security, like P-256 and AES-128), set explicitly. */
#define ZG_PROFILE_DHE_GROUP "ffdhe3072"

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

/* What a route may change about its profile: every field left empty (NULL,
 * "" or 0) inherits the base profile. Lists are names separated by ':' or
 * ',' (OpenSSL names: "TLS_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384",
 * "P-256", "ECDSA+SHA256"). */
struct zg_profile_overrides {
	int min_version;           /* may only rise */
	int max_version;           /* may only fall */
	const char *tls13_suites;  /* a subset of the base's, any order */
	const char *tls12_ciphers; /* a subset of the base's, any order */
	const char *groups;        /* a subset of the base's, any order */
	const char *sigalgs;       /* a subset of the base's, any order */
	unsigned min_rsa_bits;     /* may only rise */
	int no_eddsa;              /* 1: refuse EdDSA certificates */
};

#define ZG_PROFILE_LIST_MAX 1024

/* A profile narrowed for one route. p's strings point into the buffers of
 * the same object: do not copy it by value, use it in place. */
struct zg_profile_narrowed {
	struct zg_profile p;
	char tls13_suites[ZG_PROFILE_LIST_MAX];
	char tls12_ciphers[ZG_PROFILE_LIST_MAX];
	char groups[256];
	char sigalgs[ZG_PROFILE_LIST_MAX];
};

/* Build in @out the profile @base narrowed by @o. A route may narrow its
 * profile but never widen it: a version outside the base's range, a suite,
 * cipher, group or signature algorithm the base does not list, a lower RSA
 * minimum, or a result that leaves an enabled version without suites is
 * refused: returns -1 with the reason in @why ("tls13_suites: X is not in
 * profile cryptrec-high"). Returns 0 on success. */
int zg_profile_narrow(const struct zg_profile *base, const struct zg_profile_overrides *o,
		      struct zg_profile_narrowed *out, char *why, size_t cap);

/* "1.2", "1.3", "TLSv1.2" or "TLSv1.3" to TLS1_2_VERSION / TLS1_3_VERSION;
 * 0 for anything else (older versions are never allowed). */
int zg_profile_version_parse(const char *s);

/* "TLSv1.2" for TLS1_2_VERSION etc.; "?" for others. */
const char *zg_profile_version_name(int version);

/* Print @p's effective settings as OpenSSL applies them: build a server and
 * a client SSL_CTX with zg_profile_apply, list the enabled suites per
 * version in server preference order, and the versions, groups and
 * signature algorithms our own ClientHello offers (captured from a real
 * handshake in memory). A change in OpenSSL's behaviour therefore shows in
 * the output. Returns 0, or -1 with @why if OpenSSL refuses the profile. */
int zg_profile_print(const struct zg_profile *p, FILE *out, char *why, size_t cap);

#endif
