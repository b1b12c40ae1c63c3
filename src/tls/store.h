/* store.h - binding a route's TLS sessions to the trust store that
 * verified them (trust domains, conf/identities.c).
 *
 * A server context's session cache, its session id context and its ticket
 * keys decide which earlier handshake a ClientHello may resume, and a
 * resumed handshake skips chain verification. So each is keyed by route
 * and store: a session verified against one store never resumes where
 * another store judges, even when shared ticket key files
 * (session_ticket_key) outlive a reload that moved the route to another
 * store. The chain cache is keyed by snapshot, route and side
 * (chaincache.h), and a side has exactly one store in a snapshot.
 */
#ifndef ZG_TLS_STORE_H
#define ZG_TLS_STORE_H

#include <stddef.h>

#include <openssl/ssl.h>

#define ZG_TLS_DOMAIN_LABEL_MAX 160 /* "route/store" with both names at their longest */

/* The label of sessions of route @route verified against store @store into
 * @out (@cap >= ZG_TLS_DOMAIN_LABEL_MAX): the route name alone for [tls]'s
 * store "tls" (what the ticket keys were derived from before trust domains,
 * so a pair of gateways keeps resuming across an upgrade), else
 * "route/store" ('/' never occurs in a name). */
void zg_tls_domain_label(const char *route, const char *store, char *out, size_t cap);

/* Set @ctx's session id context to SHA-256 of @label: OpenSSL resumes a
 * session id or ticket only under the context it was issued with, and a
 * digest keeps two long names from sharing a truncated prefix. 0, or -1 if
 * SHA-256 failed. */
int zg_tls_bind_sessions(SSL_CTX *ctx, const char *label);

#endif
