/* snapshot.h - the immutable, reference-counted configuration in force.
 *
 * A snapshot is everything a worker needs to serve: the parsed file, one
 * SSL_CTX per route and direction, the resolved listen and upstream
 * addresses. It is built whole by the main thread (reload is all or
 * nothing), published with zg_snapshot_ref(), and never changed afterwards:
 * workers and connections read it without locks and drop their reference
 * when done, so a connection lives out its life on the snapshot it began on.
 */
#ifndef ZG_SNAPSHOT_H
#define ZG_SNAPSHOT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "directory/directory.h"
#include "base/errlist.h"

#include "engine/net.h"
#include "upstream/check.h"
#include "upstream/health.h"

#define ZG_MEMBER_ADDRS_MAX 4  /* addresses tried per pool member */
#define ZG_HEALTH_SLOTS (ZG_POOL_MAX * 2) /* endpoints remembered per route name */

/* Counters that outlive snapshots: one per route name, kept by the gateway,
 * updated by workers with atomics. The health of each upstream endpoint
 * the route has named lives here too, keyed by "host:port", so that a
 * reload keeps what the checks and failures learnt (a metrics reader walks
 * health[0..n_health) and zg_health_read()s each). */
#define ZG_ROUTE_SLOTS (ZG_ROUTES_MAX * 2) /* route names a process counts, over all reloads */

struct zg_route_stats {
	char name[ZG_NAME_MAX];
	unsigned slot;                   /* index among the process's route names (metrics) */
	atomic_uint active;
	atomic_ulong accepted, refused;
	atomic_ullong ticket;             /* pool selection: one per connection */
	struct zg_health health[ZG_HEALTH_SLOTS];
	atomic_uint n_health;             /* written by the main thread only */
};

/* One member of a route's upstream pool, resolved. */
struct zg_upstream_rt {
	const struct zg_upstream_conf *conf; /* inside the snapshot's conf */
	struct zg_sockaddr addr[ZG_MEMBER_ADDRS_MAX];
	unsigned n_addr;                  /* 0: does not resolve now */
	struct zg_health *health;         /* in the route's stats; NULL in check mode */
};

struct zg_route_rt {
	const struct zg_conf_route *conf;
	SSL_CTX *tls_in;                  /* unwrap, bridge */
	SSL_CTX *tls_out;                 /* wrap, bridge */
	struct zg_sockaddr listen;
	struct zg_upstream_rt up[ZG_POOL_MAX]; /* conf->connect, in written order */
	unsigned n_up;
	struct zg_route_stats *stats;
};

struct zg_snapshot {
	atomic_uint refs;
	uint64_t generation;
	uint64_t tls_generation;          /* generation whose SSL_CTXs these are: a
	                                     re-resolution keeps it, so verified-chain
	                                     cache entries and sessions stay valid */
	struct zg_conf *conf;             /* owned */
	struct zg_route_rt *routes;       /* conf->n_routes entries */
	unsigned n_routes;
	struct zg_directory *dir;         /* one reference; NULL: no [directory] */
	_Atomic unsigned **dir_slots;     /* per-participant connection counters by
	                                     participant index (owned array; the
	                                     counters belong to the gateway) */
	SSL_CTX *admin_tls;               /* [admin] tls = on; NULL: plain HTTP */
};

/* Find or add the stats slot for route @name. Called from the main thread
 * only. NULL if no slot is left. */
typedef struct zg_route_stats *(*zg_stats_lookup_fn)(void *ctx, const char *name);

/* Build a snapshot from @conf (taking ownership, also on failure): create
 * SSL_CTXs, load and verify the participant directory (not older than the
 * one in @prev, which may be NULL), resolve addresses, test that every
 * listen address can be bound. Returns NULL with every error in @errs.
 * @stats may be NULL (check mode). */
struct zg_snapshot *zg_snapshot_build(struct zg_conf *conf, const struct zg_snapshot *prev,
				      uint64_t generation, zg_stats_lookup_fn stats, void *stats_ctx,
				      struct zg_errlist *errs);

/* A copy of @old sharing its SSL_CTXs, with the upstream host names of every
 * route resolved again (after a connect failure). NULL on allocation failure.
 * *@changed says whether any route's addresses differ from @old's. */
struct zg_snapshot *zg_snapshot_reresolve(const struct zg_snapshot *old, uint64_t generation,
					  int *changed);

/* The health slot of endpoint @name in @st: the one it had, else a fresh
 * one (reusing a slot no member of @pool names once all are taken). Main
 * thread only. */
struct zg_health *zg_route_stats_health(struct zg_route_stats *st, const char *name,
					const struct zg_pool_conf *pool);

/* The active health checks of @s as a plan for the checker
 * (upstream/check.h), holding a reference to @s; NULL when no route has
 * health_check set (or on allocation failure, logged). Main thread: it
 * reads the health_hl7_message files. */
struct zg_check_plan *zg_snapshot_check_plan(struct zg_snapshot *s);

/* Take / drop a reference. The last unref frees everything. */
struct zg_snapshot *zg_snapshot_ref(struct zg_snapshot *s);
void zg_snapshot_unref(struct zg_snapshot *s);

/* The route called @name, or NULL. */
const struct zg_route_rt *zg_snapshot_route(const struct zg_snapshot *s, const char *name);

#endif
