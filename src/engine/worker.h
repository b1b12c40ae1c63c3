/* worker.h - one thread, one epoll loop, its own SO_REUSEPORT listeners.
 *
 * Workers share nothing mutable: each owns its listeners and connections
 * and reads the configuration only through its reference to the current
 * snapshot, which it swaps when the gateway wakes it after a reload.
 */
#ifndef ZG_WORKER_H
#define ZG_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "tls/chaincache.h"
#include "engine/conn.h"
#include "engine/snapshot.h"

#define ZG_LISTENER_MAGIC 0x7a676c69u /* "zgli" */
#define ZG_WAKE_MAGIC 0x7a67776bu     /* "zgwk" */

struct zg_gateway;

struct zg_listener {
	uint32_t magic;
	int fd;
	struct zg_sockaddr addr;
	const struct zg_route_rt *route; /* inside the worker's snapshot */
	int keep;                        /* reconcile mark */
	int paused;                      /* out of fds: not in epoll until the next tick */
};

struct zg_worker {
	unsigned index;
	struct zg_gateway *gw;
	pthread_t thread;
	int epfd;
	uint32_t wake_magic;             /* epoll data for wake_fd */
	int wake_fd;                     /* eventfd: the gateway has news */
	struct zg_snapshot *snap;        /* one reference */
	struct zg_listener *listeners;
	unsigned n_listeners;
	struct zg_conn *conns;           /* live */
	struct zg_conn *closed;          /* to free after this batch */
	struct zg_conn *ready;           /* to step again after this batch (fairness) */
	unsigned n_conns;
	uint64_t now_ms;                 /* monotonic, refreshed per wake-up */
	struct zg_chaincache chains;     /* verified chains, this worker's only */
	struct zg_tls_session_slot out_sessions[ZG_ROUTES_MAX]; /* by route index */
	uint64_t next_id;
	int draining;
	int paused;                      /* some listener is paused */
	int listen_failed;
};

/* Create @w's epoll and wake fd, take a reference on @snap and open its
 * listeners. Returns 0, or -1 (logged) if a listener could not be bound. */
int zg_worker_init(struct zg_worker *w, unsigned index, struct zg_gateway *gw,
		   struct zg_snapshot *snap);

/* Thread body: run until the gateway stops or drains to zero connections. */
void *zg_worker_main(void *arg);

/* Wake @w so it looks at the gateway's state and snapshot. Any thread. */
void zg_worker_wake(struct zg_worker *w);

/* Release what zg_worker_init acquired (after the thread ended). */
void zg_worker_fini(struct zg_worker *w);

/* Register, change or drop epoll interest for @side to @events (0 takes it
 * out of the set). 0, or -1 if epoll refused (logged): the caller must
 * close, a side it cannot watch would wait for nothing. */
int zg_worker_watch(struct zg_worker *w, struct zg_side *side, uint32_t events);

/* Step @c again after the current batch of events, before waiting. */
void zg_worker_defer(struct zg_worker *w, struct zg_conn *c);

/* Called by conn.c: @c has closed; unlink it and queue it for freeing. */
void zg_worker_conn_closed(struct zg_worker *w, struct zg_conn *c);

#endif
