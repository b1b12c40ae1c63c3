/* conn.h - one relayed connection: its state machine and its one close path.
 *
 *   ACCEPTED -gate-> HANDSHAKE_IN --> CONNECTING --> HANDSHAKE_OUT --> RELAYING --> CLOSED
 *      | (unwrap,     (TLS from        (TCP to         (TLS to          (bytes both
 *      |  bridge)      the client)      upstream)       upstream:        ways, half-
 *      |                                                wrap, bridge)    close, shaping)
 *      +-- wrap: straight to CONNECTING;  unwrap: CONNECTING then RELAYING.
 *   inspect = dicom: INSPECTING (the first PDU, clinical.h) between the
 *   client side being up (HANDSHAKE_IN done, or accepted on wrap) and CONNECTING.
 *   Any state --error, timeout, refusal, drain deadline--> CLOSED
 *
 * Each state has one deadline (handshake_timeout, connect_timeout, or
 * idle_timeout renewed by traffic). A handler never frees a connection: it
 * calls zg_conn_close(), which logs once, closes both sockets and hands the
 * object to its worker to free after the current batch of events.
 */
#ifndef ZG_CONN_H
#define ZG_CONN_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "engine/clinical.h"
#include "engine/net.h"
#include "base/reason.h"
#include "engine/relay.h"
#include "engine/snapshot.h"
#include "tls/tls.h"

#define ZG_CONN_MAGIC 0x7a67636fu /* "zgco" */
#define ZG_SIDE_MAGIC 0x7a677364u /* "zgsd" */

enum zg_conn_state {
	ZG_CS_ACCEPTED,     /* admitted by the gate, nothing started yet */
	ZG_CS_HANDSHAKE_IN,
	ZG_CS_INSPECTING,   /* reading the first PDU of an inspecting route (clinical.h) */
	ZG_CS_CONNECTING,
	ZG_CS_HANDSHAKE_OUT,
	ZG_CS_RELAYING,
	ZG_CS_CLOSED,
};

struct zg_audit;
struct zg_chaincache;
struct zg_conn;
struct zg_conn_host;

/* What a connection may ask of the loop that runs it. The worker implements
 * these; conn.c and record.c see only struct zg_conn_host, never the worker
 * or the gateway, so the engine's arrows run gateway -> worker -> conn. */
struct zg_conn_host_ops {
	/* Register, change or drop (@events 0) epoll interest for @side. 0, or
	 * -1 (logged): the caller must close, a side it cannot watch waits for nothing. */
	int (*watch)(struct zg_conn_host *h, struct zg_side *side, uint32_t events);
	/* Step @c again after the current batch of events, before waiting. */
	void (*defer)(struct zg_conn_host *h, struct zg_conn *c);
	/* @c has closed: unlink it from h->conns and free it after this batch. */
	void (*closed)(struct zg_conn_host *h, struct zg_conn *c);
	/* An upstream failed: ask the main thread to resolve upstream names again. */
	void (*want_resolve)(struct zg_conn_host *h);
	/* @c's traffic class is out of tokens: step it again at c->wake_ns
	 * (monotonic ns), not before, with no epoll event needed. */
	void (*throttle)(struct zg_conn_host *h, struct zg_conn *c);
};

/* Latency histogram buckets, upper bounds in ms (the last is +Inf). */
#define ZG_HIST_BOUNDS_MS {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
#define ZG_HIST_N 12

struct zg_hist {
	_Atomic uint64_t bucket[ZG_HIST_N]; /* not cumulative; the exporter sums */
	_Atomic uint64_t sum_us, count;
};

/* What a worker counts for the metrics (ops/metrics.c): one writer, the
 * worker, which adds with relaxed load + store (no locked instruction, no
 * shared cache line); the exporter reads relaxed at scrape time and sums
 * over workers. */
struct zg_conn_counters {
	_Atomic uint64_t (*ends)[ZG_R__COUNT]; /* [route slot][reason]: every end, refusals too */
	struct zg_hist handshake_in;            /* accept to inbound handshake done */
	struct zg_hist connect;                 /* TCP connect to an upstream address */
	struct zg_hist handshake_out;           /* outbound handshake */
};

/* Add @v to counter @c that only the calling thread writes. */
static inline void zg_ctr_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

/* Count one duration of @ms in @h (its only writer calls this). */
void zg_hist_observe(struct zg_hist *h, uint64_t ms);

/* An emergency override in force on one route (ops/override.c sets them,
 * each worker keeps its own copy). */
struct zg_override {
	char route[ZG_NAME_MAX];
	unsigned relax;                   /* ZG_RELAX_* (base/relax.h) */
	uint64_t until_ms;                /* monotonic; ends by itself then */
	int64_t cert_expired_max_s;
};
#define ZG_OVERRIDES_MAX 16

/* The part of a worker its connections use: the loop's clock and identity,
 * the snapshot in force, the caches this loop owns, and where records go.
 * Owned and filled in by the worker; connections read it and link
 * themselves into @conns. */
struct zg_conn_host {
	const struct zg_conn_host_ops *ops;
	unsigned index;                  /* worker number: first half of connection ids */
	uint64_t now_ms;                 /* monotonic, refreshed per wake-up */
	uint64_t next_id;                /* second half of connection ids */
	struct zg_snapshot *snap;        /* the loop's snapshot in force (the loop's reference) */
	_Atomic unsigned *active_total;  /* live connections of the whole process */
	struct zg_audit *audit;          /* the audit trail, or NULL when none is configured */
	struct zg_chaincache *chains;    /* verified chains, this loop's only */
	struct zg_tls_session_slot *out_sessions; /* ZG_ROUTES_MAX, by route index */
	struct zg_conn_counters *ctr;    /* this loop's metrics counters (never NULL) */
	const struct zg_override *overrides; /* this loop's copy; n_overrides of them */
	unsigned n_overrides;
	struct zg_conn *conns;           /* live connections, linked by zg_conn_start */
	unsigned n_conns;
	struct zg_shape_table *shape;    /* traffic classes, shared by every loop (gateway's) */
	struct zg_agg *log_fold;         /* refusal log lines folded per key; this loop's, or NULL */
	struct zg_ocsp *ocsp;            /* OCSP answers, shared by every loop (gateway's), or NULL */
	struct zg_relay_spares *spares;  /* this loop's spare relay buffers, or NULL */
};

struct zg_conn {
	uint32_t magic;
	enum zg_conn_state state;
	struct zg_conn *prev, *next;      /* worker's list of live connections */
	struct zg_conn *ready_next;       /* worker's list of deferred steps */
	int deferred;                     /* on that list */
	struct zg_conn *throttled_next;   /* worker's list of connections waiting for tokens */
	int throttled;                    /* on that list */
	uint64_t wake_ns;                 /* step again then (monotonic ns); 0: no wait */
	struct zg_shape_class *cls;       /* traffic class, counted in; in the shared table */
	struct zg_conn_host *h;           /* the loop that runs it */
	uint64_t id;
	struct zg_snapshot *snap;         /* one reference, dropped at free */
	const struct zg_route_rt *route;  /* inside snap */
	struct zg_side down;              /* the client that connected to us */
	struct zg_side up;                /* the upstream we connected to */
	struct zg_relay relay;
	unsigned order[ZG_POOL_MAX];      /* pool members to try, best first (upstream/pool.h) */
	unsigned n_order, tried;          /* members in order / begun */
	const struct zg_upstream_rt *member; /* the member tried or in use; NULL before */
	unsigned addr_next;               /* next address of member to try */
	int member_counted;               /* counted in member->health's connections */
	unsigned busy_steps;              /* relay steps that moved bytes since the last tick */
	int buffers_kept;                 /* busy: OpenSSL keeps its record buffers (conn.c) */
	int attached;                     /* the attach record is written */
	enum zg_reason fail_reason;       /* why the last attempt failed (closing reason) */
	char fail_detail[160];
	struct zg_clinical clin;          /* protocol inspection (inspect = dicom) */
	int spare_fd;                     /* upstream socket made at accept, or -1 */
	int spare_family;                 /* its address family */
	uint64_t started_ms, deadline_ms; /* monotonic */
	uint64_t step_ms;                 /* monotonic: the current handshake or connect began */
	struct zg_sockaddr peer, upstream_addr;
	uint8_t peer16[16];               /* peer address, 16-byte form (prefix.h) */
	uint8_t upstream16[16];           /* upstream address, same form */
	const struct zg_participant *participant; /* by address; inside snap->dir */
	_Atomic unsigned *participant_slot; /* counted in; released at close */
	unsigned relax;                   /* ZG_RELAX_* an override allows for it (0: none) */
	int64_t relax_expired_s;          /* cert_expired: how long past notAfter */
	unsigned relaxed;                 /* ZG_RELAX_* checks an override relaxed to admit it */
	int ocsp_wait;                    /* handshake done, waiting for an OCSP answer */
	int ocsp_soft;                    /* admitted by ocsp = soft without an answer */
	uint64_t revoke_at_ms;            /* a reload disallowed us: close then (0 = never) */
	enum zg_reason revoke_reason;
	struct zg_tls_verdict verdict_in, verdict_out;
	/* certificate identities, one per hop, never mixed: the client's
	 * (unwrap, bridge) and the upstream's (wrap, bridge); "" if none.
	 * Heap copies at their length (an idle connection holds them all
	 * its life; four fixed 256-byte arrays were 1 KiB of it), or the
	 * static "" (never freed) */
	const char *subject, *sans;
	const char *up_subject, *up_sans;
};

/* Take ownership of accepted socket @fd from @peer on @route and start its
 * state machine. On refusal (address gate) or failure the connection is
 * closed with its reason and logged; either way the caller keeps no
 * reference. */
void zg_conn_start(struct zg_conn_host *h, struct zg_snapshot *snap, const struct zg_route_rt *route,
		   int fd, const struct zg_sockaddr *peer);

/* Refuse accepted socket @fd before any state is made: log and audit the
 * refusal with @reason, then close @fd. */
void zg_conn_refuse(struct zg_conn_host *h, const struct zg_route_rt *route, int fd,
		    const struct zg_sockaddr *peer, enum zg_reason reason, const char *detail);

/* Step @c again because its traffic class has tokens again (the worker's
 * throttled list); unlike zg_conn_resume it leaves the deferred list alone. */
void zg_conn_wake(struct zg_conn *c);

/* Advance @c after epoll reported @events on @side. */
void zg_conn_resume(struct zg_conn *c);

/* (zg_conn_resume: step @c again, as deferred by the worker.) */
void zg_conn_event(struct zg_conn *c, struct zg_side *side, uint32_t events);

/* Close @c once: log the close (or refusal) line with @reason, close both
 * sockets, hand @c to its worker for freeing. Later calls are no-ops. */
void zg_conn_close(struct zg_conn *c, enum zg_reason reason, const char *detail);

/* After a reload: check @c against the directory and the CRLs of @snap (the
 * route of the same name there, if any, decides the peers and the CRLs). A
 * connection no longer allowed is closed @grace_ms later with the reason,
 * and logged now; one allowed again is reprieved. */
void zg_conn_recheck(struct zg_conn *c, const struct zg_snapshot *snap, unsigned grace_ms);

/* Called by the worker's timer scan: close @c if its deadline passed. */
void zg_conn_check_deadline(struct zg_conn *c, uint64_t now_ms);

/* Free a closed connection (worker only, outside any handler). */
void zg_conn_free(struct zg_conn *c);

const char *zg_conn_state_name(enum zg_conn_state s);

#endif
