/* crlfetch.h - keep CRL files fresh from their CA's HTTP(S) URLs.
 *
 * One thread beside the data path (never a worker) fetches each [crl NAME]
 * URL every interval with libcurl, bounded in time and size. A fetched CRL
 * replaces its file only when policy/crl.c's zg_crl_judge accepts it (signed
 * by a trusted CA, fresh, not older than the file's): written, synced and
 * renamed into place, then the gateway is asked to reload, which loads it
 * like any CRL. A failure keeps the old file, logs why and retries with
 * back-off; nothing a CA's web server sends can replace a CRL with one the
 * policy would not accept.
 */
#ifndef ZG_CRLFETCH_H
#define ZG_CRLFETCH_H

#include <openssl/x509.h>

#include "conf/conf.h"

struct zg_crlfetch;

/* Called on the fetch thread after a file was replaced. */
typedef void zg_crlfetch_changed_fn(void *arg);

/* Start fetching the [crl] sections of @c (nothing, NULL, when there are
 * none); each file's CRLs are judged against the anchors of the stores
 * that load it ([tls] or [trust]) and the intermediates of our identities'
 * chains those anchors issued. NULL with the reason logged on failure. */
struct zg_crlfetch *zg_crlfetch_start(const struct zg_conf *c, zg_crlfetch_changed_fn *changed,
				      void *arg);

/* Stop the thread (waits for a fetch in progress, at most its timeout) and
 * free everything; NULL is a no-op. */
void zg_crlfetch_stop(struct zg_crlfetch *f);

#endif
