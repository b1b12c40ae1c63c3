/* health.h - the health of one upstream endpoint, shared lock-free.
 *
 * One struct zg_health per route and pool member lives in a table the
 * gateway owns (struct zg_route_stats), keyed by the member's "host:port",
 * so it survives reloads like the participant counters. Workers write it
 * with atomics when a connection to the endpoint fails or succeeds (passive
 * detection); the checker thread writes it with each probe's result (active
 * checks); a metrics reader sums it at scrape time. No lock anywhere.
 *
 *        passive failure (hold-down, doubling), or fall failed checks
 *     UP ---------------------------------------------------------> DOWN
 *      ^  a connection gets through, or rise checks pass in a row    |
 *      +-------------------------------------------------------------+
 *
 * An endpoint is *usable* when the checks do not hold it down and its
 * passive hold-down has passed; a DOWN endpoint whose hold-down passed is
 * tried again by the next connection (a success brings it UP). Every change
 * of the reported state is returned to the caller exactly once (the atomic
 * exchange decides), who logs and audits it with zg_health_report().
 */
#ifndef ZG_HEALTH_H
#define ZG_HEALTH_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/reason.h"

#define ZG_HEALTH_NAME_MAX 272   /* "host:port" or "[v6]:port" */
#define ZG_HOLD_DOWN_DOUBLINGS 3 /* the back-off grows to hold_down x 8 at most */

struct zg_audit;

/* Failure kinds an endpoint's counters are kept by. */
enum zg_fail_kind {
	ZG_FAIL_REFUSED,  /* connect refused or unreachable */
	ZG_FAIL_TIMEOUT,  /* connect or handshake timed out */
	ZG_FAIL_RESET,    /* reset or closed before the first byte */
	ZG_FAIL_TLS,      /* TLS handshake failed */
	ZG_FAIL_IDENTITY, /* certificate refused by policy or the directory */
	ZG_FAIL_CHECK,    /* an active check's reply was wrong */
	ZG_FAIL__COUNT
};

struct zg_health {
	char name[ZG_HEALTH_NAME_MAX];  /* set by the main thread before publishing */
	atomic_uint down;               /* the reported state: 0 up, 1 down */
	atomic_uint check_down;         /* the active checks hold it down */
	atomic_uint check_ok_run;       /* consecutive good checks (checker only) */
	atomic_uint check_fail_run;     /* consecutive failed checks (checker only) */
	atomic_uint passive_fails;      /* consecutive passive failures: back-off exponent */
	atomic_ullong held_until_ms;    /* passive hold-down end, monotonic; 0 none */
	atomic_uint last_reason;        /* enum zg_reason of the last failure */
	atomic_llong last_change_s;     /* wall clock of the last state change; 0 never */
	atomic_uint conns_active;       /* connections on it now */
	atomic_ullong conns_total;      /* connections that reached it */
	atomic_ullong fails[ZG_FAIL__COUNT];
};

/* A consistent-enough copy of one endpoint's counters, for metrics. */
struct zg_health_view {
	char name[ZG_HEALTH_NAME_MAX];
	int down;                       /* reported state */
	int check_down;                 /* held down by the checks */
	uint64_t held_until_ms;         /* passive hold-down end (monotonic), 0 none */
	enum zg_reason last_reason;
	int64_t last_change_s;
	unsigned conns_active;
	uint64_t conns_total;
	uint64_t fails[ZG_FAIL__COUNT];
};

/* Stable names of the failure kinds ("refused", ...); "unknown" out of range. */
const char *zg_fail_kind_name(enum zg_fail_kind k);

/* Which counter a failure with reason @r goes to. */
enum zg_fail_kind zg_fail_kind_of(enum zg_reason r);

/* Name a fresh slot @h (main thread, before any worker sees it). */
void zg_health_init(struct zg_health *h, const char *name);

/* May a connection be sent to @h at @now_ms? 1 or 0. */
int zg_health_usable(const struct zg_health *h, uint64_t now_ms);

/* The hold-down after @fails consecutive failures (>= 1): @base_ms
 * doubled per failure after the first, at most ZG_HOLD_DOWN_DOUBLINGS times. */
uint64_t zg_health_backoff_ms(unsigned base_ms, unsigned fails);

/* A connection to @h failed with @r before any payload went through: hold
 * it down for the back-off (written to *@hold_ms). 1 if this call turned
 * the reported state to down (the caller reports it), else 0. */
int zg_health_passive_fail(struct zg_health *h, enum zg_reason r, unsigned base_ms, uint64_t now_ms,
			   uint64_t *hold_ms);

/* A connection to @h got through (connected, and handshaken if TLS): the
 * back-off starts over. 1 if this call turned the reported state to up. */
int zg_health_passive_ok(struct zg_health *h);

/* An active check of @h ended with @r (ZG_R_OK: passed). Only the checker
 * calls it. +1 if the state turned up (@rise passes in a row; also ends
 * any passive hold-down), -1 if it turned down (@fall failures in a row),
 * 0 if the reported state did not change. */
int zg_health_check_result(struct zg_health *h, enum zg_reason r, unsigned rise, unsigned fall);

/* Count a connection onto / off @h (least-connections reads the count). */
void zg_health_conn_begin(struct zg_health *h);
void zg_health_conn_end(struct zg_health *h);

/* Copy @h's counters into @v. */
void zg_health_read(const struct zg_health *h, struct zg_health_view *v);

/* The log line (event=upstream_down / upstream_up) and the audit record
 * (upstream_state: 110113 Security Alert / 110128 Network Configuration) of
 * a state change of endpoint @h of route @route. @source is "passive" or
 * "check"; @r and @detail say why it went down. @audit may be NULL. */
void zg_health_report(struct zg_audit *audit, const char *route, const struct zg_health *h, int down,
		      enum zg_reason r, const char *source, uint64_t hold_ms, const char *detail);

#endif
