/* policy.h - certificate rules: pure functions over chains OpenSSL already
 * parsed and verified, each failing rule named by a stable reason code.
 *
 * The TLS room (tls.c) calls zg_policy_check_chain() from its verify
 * callback at depth 0, so a certificate that breaks a rule fails the
 * handshake itself with an alert. The same entry point serves
 * `zonegate check-cert`, the start-up check of our own certificate and the
 * fuzzer. No function here does I/O or keeps state.
 */
#ifndef ZG_POLICY_H
#define ZG_POLICY_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "policy/profile.h"
#include "base/reason.h"

/* What the certificate being checked is used for. */
enum zg_cert_role {
	ZG_ROLE_CLIENT, /* a peer authenticating to us as TLS client */
	ZG_ROLE_SERVER, /* a remote TLS server we connect to, or our own server cert */
};

#define ZG_POLICY_MAX_FINDINGS 16
#define ZG_POLICY_DETAIL_MAX 160

struct zg_policy_finding {
	enum zg_reason reason;             /* the rule broken */
	int depth;                         /* 0 = end entity */
	int warn;                          /* 1 = reported only (crl_stale = warn) */
	char detail[ZG_POLICY_DETAIL_MAX]; /* e.g. "RSA 1024 bits < 2048" */
};

struct zg_policy_verdict {
	unsigned n;                        /* findings; 0 = every rule passed */
	unsigned dropped;                  /* findings beyond the array */
	unsigned failed;                   /* findings that are not warnings */
	struct zg_policy_finding f[ZG_POLICY_MAX_FINDINGS];
};

struct zg_policy_params {
	const struct zg_profile *profile;
	enum zg_cert_role role;
	time_t now;
	unsigned clock_skew_s;             /* validity tolerance */
	unsigned max_depth;                /* certificates below the anchor */
	/* Revocation: NULL = no CRLs configured, no revocation rules run.
	 * Otherwise a certificate whose issuer has no CRL in the stack fails
	 * crl_missing if it names a CRL distribution point or crl_require_all
	 * is set; a CRL past nextUpdate fails crl_stale (or warns). */
	STACK_OF(X509_CRL) *crls;
	int crl_require_all;               /* every CA in the chain must have a CRL */
	int crl_stale_warn;                /* crl_stale = warn instead of reject */
};

/* Check every rule on @chain (leaf first, trust anchor last, as
 * X509_STORE_CTX_get0_chain() returns it after verification). Fills @v with
 * all failing rules. Returns 0 if none failed, -1 otherwise. */
int zg_policy_check_chain(STACK_OF(X509) *chain, const struct zg_policy_params *pp,
			  struct zg_policy_verdict *v);

/* The reason code for an X509_V_ERR_* from chain verification. */
enum zg_reason zg_policy_reason_from_x509(int x509_err);

/* 1 if @v holds a failing (non-warning) finding with reason @r. */
int zg_policy_verdict_has(const struct zg_policy_verdict *v, enum zg_reason r);

/* The first failing finding of @v (the one a handshake refusal names), or
 * NULL if none failed. */
const struct zg_policy_finding *zg_policy_first_failure(const struct zg_policy_verdict *v);

/* The individual rules. Each is pure: it reads only its arguments, returns
 * ZG_R_OK when the rule holds, else the reason with a one-line explanation
 * in @detail (always NUL-terminated, truncated to @cap). */

/* X.509 v3 (version field value 2). */
enum zg_reason zg_rule_version(X509 *x, char *detail, size_t cap);

/* Signature hash SHA-256 or stronger (SHA-2 family, SHA-3, or an EdDSA
 * signature, which has no separate hash). Callers skip the anchor's
 * self-signature, which nobody verifies. */
enum zg_reason zg_rule_signature_hash(X509 *x, char *detail, size_t cap);

/* Key type and size against @p: RSA (and RSA-PSS) >= min_rsa_bits, EC on
 * P-256/P-384/P-521 only with at least min_ec_bits, EdDSA if allow_eddsa;
 * any other key type fails cert_key_type_not_allowed. */
enum zg_reason zg_rule_public_key(X509 *x, const struct zg_profile *p, char *detail, size_t cap);

/* notBefore - skew <= now <= notAfter + skew. */
enum zg_reason zg_rule_validity(X509 *x, time_t now, unsigned skew_s, char *detail, size_t cap);

/* The end-entity certificate is not a CA (basicConstraints cA false or absent
 * and no keyCertSign). */
enum zg_reason zg_rule_leaf_not_ca(X509 *leaf, char *detail, size_t cap);

/* The end-entity certificate carries an extendedKeyUsage with clientAuth
 * (ZG_ROLE_CLIENT) or serverAuth (ZG_ROLE_SERVER); anyExtendedKeyUsage does
 * not count, and an absent extension fails. */
enum zg_reason zg_rule_eku(X509 *leaf, enum zg_cert_role role, char *detail, size_t cap);

/* keyUsage, when present, fits the key type and position: an end entity
 * needs digitalSignature and must not have keyEncipherment on a non-RSA key
 * nor keyCertSign/cRLSign; a CA (@is_ca) needs keyCertSign. */
enum zg_reason zg_rule_key_usage(X509 *x, int is_ca, char *detail, size_t cap);

/* The issuer of the end entity (@chain[1]) is not self-signed, so the leaf
 * hangs below an intermediate, not directly below a root; a chain of one
 * (self-signed leaf) fails too. */
enum zg_reason zg_rule_issuer_not_self_signed(STACK_OF(X509) *chain, char *detail, size_t cap);

/* At most @max_depth (0: 4) certificates below the trust anchor; a chain
 * whose last certificate is not self-signed is taken to stop below it. */
enum zg_reason zg_rule_chain_depth(STACK_OF(X509) *chain, unsigned max_depth, char *detail,
				   size_t cap);

/* Revocation of @x issued by @issuer against @crls (see zg_policy_params):
 * cert_revoked, crl_stale, crl_missing or crl_invalid. A stale CRL is still
 * searched, so a revoked serial is cert_revoked whatever crl_stale says. */
enum zg_reason zg_rule_revocation(X509 *x, X509 *issuer, const struct zg_policy_params *pp,
				  char *detail, size_t cap);

/* Largest DER certificate the policy accepts. Real ones are 1-2 KiB (an
 * RSA-4096 leaf with a few SANs); a larger one is a parser attack or a
 * mistake, and the bound also sizes what a handshake may carry. */
#define ZG_POLICY_CERT_DER_MAX 8192

/* Every subject attribute and every DNS, URI, e-mail SAN value is free of
 * NUL and other control characters (C0, DEL, C1): such a value makes the
 * name one thing to a C string and another to the peer (the CVE-2009-2408
 * NUL-prefix trick), and would break our log lines and audit records. */
enum zg_reason zg_rule_names(X509 *x, char *detail, size_t cap);

/* The DER encoding of @x is at most ZG_POLICY_CERT_DER_MAX bytes. */
enum zg_reason zg_rule_der_size(X509 *x, char *detail, size_t cap);

/* A server certificate names @name as a DNS SAN (exact or a full-label
 * wildcard) or, if @name contains "://", as a URI SAN (exact). No CN
 * fallback. */
enum zg_reason zg_rule_server_name(X509 *leaf, const char *name, char *detail, size_t cap);

/* The rules as `zonegate check-cert` lists them: a name and the reasons
 * that count as that rule failing (ZG_R_OK-terminated). */
struct zg_policy_rule {
	const char *name;
	const char *what;
	enum zg_reason reasons[6];
};
const struct zg_policy_rule *zg_policy_rules(size_t *n);

#endif
