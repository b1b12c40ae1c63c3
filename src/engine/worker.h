/* worker.h - one thread, one epoll loop, its own SO_REUSEPORT listeners.
 *
 * Workers share nothing mutable: each owns its listeners and connections
 * and reads the configuration only through its reference to the current
 * snapshot, which it swaps when the gateway wakes it after a reload.
 */
#ifndef ZG_WORKER_H
#define ZG_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "audit/agg.h"
#include "tls/chaincache.h"
#include "tls/tls.h"
#include "engine/conn.h"
#include "engine/snapshot.h"

#define ZG_LISTENER_MAGIC 0x7a676c69u /* "zgli" */
#define ZG_WAKE_MAGIC 0x7a67776bu     /* "zgwk" */

enum zg_gw_state { ZG_GW_RUNNING, ZG_GW_DRAINING, ZG_GW_STOPPING };

/* What the gateway shares with its workers, and all that workers see of it:
 * the process state, the snapshot in force, process-wide counters and a bell
 * that wakes the main thread. The gateway embeds one and fills it in before
 * the first worker starts; workers never reach the gateway itself. */
struct zg_fleet {
	atomic_int state;               /* enum zg_gw_state */
	atomic_uint active_total;       /* live connections, all workers */
	atomic_uint workers_running;
	atomic_int resolve_wanted;      /* a worker saw an upstream fail */
	_Atomic uint64_t drain_deadline_ms; /* monotonic; set before draining */
	int main_wake_fd;               /* eventfd: wakes the main thread */
	pthread_mutex_t snap_lock;      /* guards `current` only */
	struct zg_snapshot *current;
	struct zg_audit *audit;         /* NULL: no [audit] sink; set before workers start */
	struct zg_shape_table *shape;   /* traffic classes (the gateway's); set before workers start */
	int sandbox;                    /* workers sandbox themselves; set before they start */
	struct zg_ocsp *ocsp;           /* OCSP cache and fetch thread; set before workers start */
};

/* A new reference on the snapshot in force. Any thread. */
struct zg_snapshot *zg_fleet_snapshot(struct zg_fleet *f);

/* Wake the main thread so it looks at the fleet's flags. Any thread. */
void zg_fleet_ring(struct zg_fleet *f);

#define ZG_DRAINED_MAX 32 /* routes `zonegate ctl drain` can hold closed at once */

/* One live connection as the control plane lists it (`zonegate ctl conns`). */
struct zg_conn_info {
	unsigned worker;
	uint64_t id;                      /* shown as WORKER.ID, like the log's id= */
	char route[ZG_NAME_MAX];
	const char *state;                /* static string */
	char peer[64];
	char subject[ZG_IDENT_MAX];
	char participant[64];             /* directory participant id, "" if none */
	uint64_t bytes_in, bytes_out;     /* client to upstream, upstream to client */
	uint64_t age_ms;
};

enum zg_ask_kind {
	ZG_ASK_CONNS, /* fill out[] with the worker's connections (of @route, if set) */
	ZG_ASK_KILL,  /* close connection @id, if it is this worker's */
	ZG_ASK_DRAIN, /* close the listeners of @route and keep them closed */
	ZG_ASK_OVERRIDES, /* take @overrides (n_overrides) as the emergency overrides in force */
};

/* A question the control plane puts to a worker through its wake fd; the
 * worker answers on its own thread, so nothing of it is ever locked on the
 * data path. Filled by the asker; @n, @more, @found by the worker. */
struct zg_ask {
	enum zg_ask_kind kind;
	char route[ZG_NAME_MAX];
	uint64_t id;
	char detail[128];                 /* KILL: the close's detail (who asked) */
	struct zg_conn_info *out;
	unsigned cap, n, more;
	const struct zg_override *overrides;
	unsigned n_overrides;
	int found;                        /* KILL: closed; DRAIN: listeners closed */
	int answered;
};

struct zg_listener {
	uint32_t magic;
	int fd;
	struct zg_sockaddr addr;
	char ifname[ZG_NAME_MAX];        /* SO_BINDTODEVICE, "" = none: part of the listener's identity */
	const struct zg_route_rt *route; /* inside the worker's snapshot */
	int keep;                        /* reconcile mark */
	int paused;                      /* out of fds: not in epoll until the next tick */
};

struct zg_worker {
	struct zg_conn_host host;        /* index, clock, snapshot, live connections */
	struct zg_fleet *fleet;
	pthread_t thread;
	int epfd;
	uint32_t wake_magic;             /* epoll data for wake_fd */
	int wake_fd;                     /* eventfd: the gateway has news */
	int reserve_fd;                  /* /dev/null held open: spent to refuse when out of fds */
	struct zg_listener *listeners;
	unsigned n_listeners;
	struct zg_conn *closed;          /* to free after this batch */
	struct zg_conn *ready;           /* to step again after this batch (fairness) */
	struct zg_conn *throttled;       /* waiting for their class's tokens (c->wake_ns) */
	struct zg_chaincache chains;     /* verified chains, this worker's only */
	struct zg_agg log_fold;          /* refusal log lines per route, source, reason */
	struct zg_tls_session_slot out_sessions[ZG_ROUTES_MAX]; /* by route index */
	int draining;
	int paused;                      /* some listener is paused */
	int listen_failed;
	/* Monotonic ms of the loop's last turn, 0 once the loop has ended:
	 * the systemd watchdog (ops/) pings only while every loop turns.
	 * Written by this worker alone, read relaxed by the main thread. */
	_Atomic uint64_t beat_ms;
	struct zg_conn_counters ctr;     /* metrics; host.ctr points here */
	struct zg_relay_spares spares;   /* drained relay buffers for reuse; host.spares points here */
	/* The control plane's question, if any: set and read under ask_lock,
	 * which the worker takes only when ask_pending says there is one. */
	pthread_mutex_t ask_lock;
	pthread_cond_t ask_done;
	struct zg_ask *ask;
	atomic_int ask_pending;
	int ask_ready;                   /* ask_lock and ask_done initialised */
	char drained[ZG_DRAINED_MAX][ZG_NAME_MAX]; /* routes held closed (ctl drain) */
	struct zg_override overrides[ZG_OVERRIDES_MAX]; /* this worker's copy; host.overrides */
	unsigned n_drained;
};

/* Create @w's epoll and wake fd, take a reference on @snap (held in
 * w->host.snap) and open its listeners. Returns 0, or -1 (logged) if a
 * listener could not be bound. */
int zg_worker_init(struct zg_worker *w, unsigned index, struct zg_fleet *fleet,
		   struct zg_snapshot *snap);

/* Thread body: run until the gateway stops or drains to zero connections. */
void *zg_worker_main(void *arg);

/* Wake @w so it looks at the gateway's state and snapshot. Any thread. */
void zg_worker_wake(struct zg_worker *w);

/* Put @a to @w and wait up to @timeout_ms for the answer. 0 when answered,
 * -1 when the worker did not answer in time (it no longer sees @a). Any
 * thread but @w's own; one question per worker at a time. */
int zg_worker_ask(struct zg_worker *w, struct zg_ask *a, unsigned timeout_ms);

/* Release what zg_worker_init acquired (after the thread ended). */
void zg_worker_fini(struct zg_worker *w);

#endif
