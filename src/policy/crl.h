/* crl.h - certificate revocation lists from PEM files, for the policy's
 * revocation rule and for the X509_STORE of each TLS context.
 *
 * CRLs are loaded whole at start-up and on every reload (SIGHUP builds new
 * contexts with freshly loaded CRLs). Fetching them (tls/crlfetch.c) only
 * replaces files, after zg_crl_judge accepted what it fetched.
 */
#ifndef ZG_CRL_H
#define ZG_CRL_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

/* An empty stack to load CRLs into; NULL on allocation failure. Free with
 * zg_crl_free. */
STACK_OF(X509_CRL) *zg_crl_new(void);

/* Append every "X509 CRL" PEM block of the file @path to @crls (blocks of
 * other types are skipped). A file that cannot be read, has a damaged block
 * or holds no CRL at all is refused: returns -1 with the reason in @why and
 * @crls unchanged; else the number of CRLs added. */
int zg_crl_load_file(STACK_OF(X509_CRL) *crls, const char *path, char *why, size_t cap);

/* Free @crls and every CRL in it; NULL is a no-op. */
void zg_crl_free(STACK_OF(X509_CRL) *crls);

/* Index of the first CRL in @crls at or after @from whose nextUpdate is at or
 * before @now (stale), or -1. For start-up and reload warnings. */
int zg_crl_next_stale(STACK_OF(X509_CRL) *crls, int from, time_t now);

/* Judge a fetched CRL before it may replace the one in force (crl fetching,
 * tls/crlfetch.c): signed by one of @cas whose subject is its issuer,
 * thisUpdate not ahead of @now by more than a few minutes, nextUpdate still
 * ahead, and, against @old (the CRL of the same issuer in force, or NULL),
 * not older: its CRL number (or, without numbers, thisUpdate) must not go
 * back. 0 = newer, 1 = the same CRL again, -1 refused with the reason in
 * @why. Pure: no I/O. */
int zg_crl_judge(X509_CRL *crl, X509_CRL *old, STACK_OF(X509) *cas, time_t now, char *why,
		 size_t cap);

/* Parse one CRL from @len bytes at @buf, PEM or DER; NULL if it is neither. */
X509_CRL *zg_crl_parse(const unsigned char *buf, size_t len);

/* Add every CRL of @crls to @store (each gains a reference). Returns 0 or -1.
 * Revocation flags are the caller's choice; see docs/policy.md. */
int zg_crl_add_to_store(X509_STORE *store, STACK_OF(X509_CRL) *crls);

#endif
