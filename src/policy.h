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

#include <time.h>

#include <openssl/x509.h>

#include "profile.h"
#include "reason.h"

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
	char detail[ZG_POLICY_DETAIL_MAX]; /* e.g. "RSA 1024 bits < 2048" */
};

struct zg_policy_verdict {
	unsigned n;                        /* findings; 0 = every rule passed */
	unsigned dropped;                  /* findings beyond the array */
	struct zg_policy_finding f[ZG_POLICY_MAX_FINDINGS];
};

struct zg_policy_params {
	const struct zg_profile *profile;
	enum zg_cert_role role;
	time_t now;
	unsigned clock_skew_s;             /* validity tolerance */
	unsigned max_depth;                /* certificates below the anchor */
};

/* Check every rule on @chain (leaf first, trust anchor last, as
 * X509_STORE_CTX_get0_chain() returns it after verification). Fills @v with
 * all failing rules. Returns 0 if none failed, -1 otherwise. */
int zg_policy_check_chain(STACK_OF(X509) *chain, const struct zg_policy_params *pp,
			  struct zg_policy_verdict *v);

/* The reason code for an X509_V_ERR_* from chain verification. */
enum zg_reason zg_policy_reason_from_x509(int x509_err);

#endif
