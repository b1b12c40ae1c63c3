/* ocsp.h - OCSP at run time: stapling our certificate's status, checking
 * peers' certificates with their CA's responder.
 *
 * Stapling: ocsp_staple_file of [tls] or of an [identity] holds a DER
 * OCSPResponse for that certificate. Each snapshot reads it when the server
 * contexts of the routes presenting the identity are built
 * and staples it only if policy/ocsp.h's judge accepts it (for our
 * certificate, signed by its CA or a delegated responder, fresh); a bad or
 * stale file is logged and nothing is stapled. With ocsp_staple_url the
 * fetch thread below asks the responder (the URL, or the certificate's AIA
 * with "aia") every ocsp_staple_interval, earlier as nextUpdate nears, and
 * with back-off after failures; an accepted answer is written to the file
 * (synced, renamed) and the gateway reloads, as for fetched CRLs.
 *
 * Peer checks (ocsp = soft | hard on [tls] or a [trust] store, for the
 * peers that store judges): once a peer's chain verified, the
 * worker asks zg_ocsp_check_peer. An upstream's stapled response is judged
 * on the spot. Otherwise the answer comes from one process-wide cache, keyed
 * by the certificate's OCSP CertID, held until the answer's nextUpdate (at
 * most an hour; five minutes without nextUpdate; a failed query ten
 * seconds). A miss queues a query for the fetch thread and returns
 * "pending": the worker never waits on the network, it parks the
 * connection (no epoll interest) and asks again at its next tick (200 ms),
 * bounded by the handshake timeout. Queries are POSTs with libcurl,
 * ZG_OCSP_TIMEOUT_MS each, one at a time. The cache's lock is held only for
 * a lookup or an update, never across I/O.
 */
#ifndef ZG_TLS_OCSP_H
#define ZG_TLS_OCSP_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "base/errlist.h"
#include "base/reason.h"
#include "conf/conf.h"
#include "policy/ocsp.h"

#define ZG_OCSP_TIMEOUT_MS 3000u /* one responder query, connect included */
#define ZG_OCSP_CACHE_MAX 4096u  /* certificates whose answers are kept */

struct zg_ocsp;

/* Called on the fetch thread after the staple file was replaced. */
typedef void zg_ocsp_changed_fn(void *arg);

/* The cache and its fetch thread; NULL with the reason logged. Main
 * thread, before the workers start. */
struct zg_ocsp *zg_ocsp_start(zg_ocsp_changed_fn *changed, void *arg);

/* Follow @c's stapling settings (after start and each reload): the staple
 * fetch starts, changes or stops. Main thread. */
void zg_ocsp_configure(struct zg_ocsp *o, const struct zg_conf *c);

/* Stop the thread (waits for a query in progress, at most its timeout) and
 * free everything; NULL is a no-op. */
void zg_ocsp_stop(struct zg_ocsp *o);

/* Server context @ctx of route @r of @c: staple the response in the
 * ocsp_staple_file of the identity the route presents there, if it is good
 * for that certificate now (else log why and staple nothing). 0, or -1 on
 * allocation failure (in @errs). */
int zg_ocsp_staple_attach(SSL_CTX *ctx, const struct zg_conf *c, const struct zg_conf_route *r,
			  struct zg_errlist *errs);

/* Client context @ctx verifying upstreams against store @t: ask them to
 * staple (status_request) when the store checks them. */
void zg_ocsp_client_ctx(SSL_CTX *ctx, const struct zg_conf_trust *t);

/* The verdict on the peer of @ssl (handshake complete, chain verified)
 * under the ocsp mode of store @r, the one that judged the peer.
 * 1 decided: *@reason is ZG_R_OK to go on (with *@soft_failed set when soft
 * fail admitted a peer without an answer) or the refusal; 0 pending: ask
 * again later. @o NULL: no cache (unavailable). Why in @detail. Workers. */
int zg_ocsp_check_peer(struct zg_ocsp *o, SSL *ssl, const struct zg_conf_trust *r,
		       enum zg_reason *reason, int *soft_failed, char *detail, size_t cap);

#endif
