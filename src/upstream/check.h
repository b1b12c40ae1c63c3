/* check.h - active health checks, in their own thread with their own epoll.
 *
 * The main thread hands the checker a plan (what to probe, built from the
 * snapshot in force) after every publish; the checker probes each target
 * every health_interval (+ jitter), never touching a worker or a client
 * connection, and writes each result into the target's shared struct
 * zg_health (zg_health_check_result), logging and auditing every state
 * change. A probe is bounded in time (health_timeout, all steps together)
 * and in memory (ZG_PROBE_BUF per direction); a slow, silent, huge or
 * garbage reply fails that probe only.
 *
 *   IDLE --due--> CONNECT --> [HANDSHAKE] --> SEND <--> RECV --> IDLE
 *   (tcp ends at CONNECT, tls at HANDSHAKE; dicom loops SEND/RECV per step)
 */
#ifndef ZG_CHECK_H
#define ZG_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "upstream/health.h"

struct zg_audit;
struct zg_directory;
struct zg_peers;

/* One endpoint to probe. Pointers point into data the plan's owner keeps
 * alive until the plan is released. */
struct zg_check_target {
	const char *route;                 /* route name, for logs and audit */
	const struct zg_conf_check *check; /* what to probe and how often */
	struct zg_health *health;          /* where results go (gateway-owned) */
	struct sockaddr_storage addr;      /* the member's first address */
	socklen_t addr_len;                /* 0: it does not resolve now */
	const char *host;                  /* HTTP Host: */
	const char *server_name;           /* TLS: the name the member must carry */
	SSL_CTX *tls;                      /* the route's outbound context; NULL: plain TCP */
	const struct zg_directory *dir;    /* identity binding under TLS; NULL: none */
	const struct zg_peers *peers;      /* wrap: the remote site's participants */
	const char *hl7;                   /* hl7: the message (unframed); NULL: built-in */
	size_t hl7_len;
};

/* Everything to probe; @release(@owner) is called once the checker is done
 * with it (the owner is the snapshot the targets point into). */
struct zg_check_plan {
	struct zg_check_target *t;
	unsigned n;
	char *hl7_store;                   /* owned: the messages read from files */
	void *owner;
	void (*release)(void *owner);
};

struct zg_checker;

/* Free @p and release its owner. NULL is fine. */
void zg_check_plan_free(struct zg_check_plan *p);

/* Start the checker thread. @audit (may be NULL) receives the state
 * changes. NULL on failure (logged). */
struct zg_checker *zg_checker_start(struct zg_audit *audit);

/* Hand the checker @plan (taking ownership; NULL or empty: probe nothing).
 * Probes under way on the previous plan are abandoned; the health each
 * endpoint has is kept (it lives in the gateway's table). */
void zg_checker_update(struct zg_checker *ck, struct zg_check_plan *plan);

/* Stop the thread, abandon its probes and free everything. NULL is fine. */
void zg_checker_stop(struct zg_checker *ck);

#endif
