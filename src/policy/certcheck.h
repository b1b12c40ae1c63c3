/* certcheck.h - a certificate chain checked outside a handshake: chain
 * verification to the trust anchors plus every policy rule, and the report
 * `zonegate check-cert` and `zonegate probe` print (text or JSON).
 *
 * Inside a handshake tls.c does the same in its verify callback; this module
 * exists so that the CLI reports every rule, not only the first failure.
 */
#ifndef ZG_CERTCHECK_H
#define ZG_CERTCHECK_H

#include <stdio.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "policy/policy.h"

struct zg_certcheck {
	STACK_OF(X509) *chain;       /* leaf first, as verified (or as presented); owned */
	int verified;                /* 1 if verification against anchors ran */
	int x509_err;                /* first verification error, X509_V_OK if none */
	int x509_depth;              /* where it happened */
	const char *server_name;     /* checked against the leaf if not NULL */
	struct zg_policy_params pp;  /* as used */
	struct zg_policy_verdict v;  /* verification error first, then the rules */
};

/* Load every certificate of the PEM file @path into @out (appended, each a
 * new reference). Returns the number added, or -1 with @why if the file
 * cannot be read or holds no certificate. */
int zg_certcheck_load_pem(STACK_OF(X509) *out, const char *path, char *why, size_t cap);

/* Verify @leaf with intermediates @untrusted against @anchors (NULL: no
 * verification, the chain is taken as presented) and run every rule with
 * @pp; @server_name (may be NULL) is checked against the leaf. Time and
 * revocation are judged by the rules (clock skew, crl_stale), not by the
 * verifier. Fills @c, which the caller clears with zg_certcheck_clear.
 * Returns 0 if nothing failed, 1 if a rule failed, -1 on allocation failure. */
int zg_certcheck_run(X509 *leaf, STACK_OF(X509) *untrusted, X509_STORE *anchors,
		     const struct zg_policy_params *pp, const char *server_name,
		     struct zg_certcheck *c);

void zg_certcheck_clear(struct zg_certcheck *c);

/* One line per rule ("PASS rule", "FAIL rule reason=... depth=N detail"),
 * then the chain and a result line, on @out. */
void zg_certcheck_print(const struct zg_certcheck *c, FILE *out);

/* The same as a JSON object (new reference), or NULL on allocation failure. */
json_t *zg_certcheck_json(const struct zg_certcheck *c);

#endif
