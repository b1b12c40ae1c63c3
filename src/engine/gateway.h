/* gateway.h - the process: main thread, signals, reload, drain, workers.
 *
 * The main thread never touches a connection. It builds snapshots (at start,
 * on SIGHUP, and when a worker asks for host names to be resolved again),
 * publishes them under a lock that workers take only when woken, and turns
 * SIGTERM/SIGINT into a drain (a second one stops at once).
 */
#ifndef ZG_GATEWAY_H
#define ZG_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "audit/audit.h"
#include "engine/snapshot.h"
#include "engine/worker.h"

struct zg_gateway;

/* The operator's control plane (src/ops/) as the main thread drives it: the
 * engine knows only these calls, so the arrows still run ops -> engine.
 * Every call is made on the main thread; any member may be NULL. */
struct zg_plane_ops {
	/* Listeners bound, workers running: start serving the operator.
	 * -1 (logged) stops the gateway. */
	int (*start)(void *ctx, struct zg_gateway *gw);
	/* A reload begins. */
	void (*reloading)(void *ctx, struct zg_gateway *gw);
	/* A reload ended: @ok when it took effect; otherwise the old
	 * configuration keeps serving and @errs (may be NULL) says why. */
	void (*reloaded)(void *ctx, struct zg_gateway *gw, int ok, const struct zg_errlist *errs);
	/* The drain begins (SIGTERM, SIGINT). */
	void (*draining)(void *ctx, struct zg_gateway *gw);
	/* Each turn of the main loop; returns how many ms until it wants the
	 * next turn (the loop turns at least every 500 ms anyway). */
	uint64_t (*tick)(void *ctx, struct zg_gateway *gw, uint64_t now_ms);
	/* The workers have ended (or never started): stop and release. */
	void (*stop)(void *ctx, struct zg_gateway *gw);
};

struct zg_plane {
	const struct zg_plane_ops *ops;
	void *ctx;
};

struct zg_crlfetch;

struct zg_gateway {
	char conf_path[ZG_PATH_MAX];
	const struct zg_plane *plane;   /* never NULL (an empty one without ops/) */
	atomic_int reload_wanted;       /* the control plane asked for a reload */
	struct zg_crlfetch *crlfetch;   /* [crl] fetch thread, or NULL (main thread only) */
	uint64_t started_ms;            /* monotonic, when the workers started */
	struct zg_fleet fleet;          /* what the workers share: state, snapshot, counters */
	uint64_t generation;            /* main thread only */
	struct zg_worker *workers;
	unsigned n_workers;
	uint64_t last_resolve_ms;
	uint64_t next_dir_poll_ms;      /* directory file watch */
	struct zg_dir_stamp dir_stamp;  /* the directory files as last loaded */
	struct zg_dir_counters *dir_counters; /* live connections per participant id */
	struct zg_route_stats stats[ZG_ROUTE_SLOTS];
	unsigned n_stats;               /* main thread only */
	struct zg_checker *checker;     /* active health checks; NULL until a route has one */
	struct zg_shape_table shape;    /* traffic classes: settings written here, read by workers */
};

/* Load @conf_path, start the workers and serve until stopped, telling
 * @plane (NULL: none) what happens. Returns a process exit code (cli.h). */
int zg_gateway_run(const char *conf_path, unsigned workers_override, const struct zg_plane *plane);

/* Ask the main thread to reload the configuration file, as SIGHUP does;
 * the result reaches the plane's `reloaded`. Any thread. */
void zg_gateway_want_reload(struct zg_gateway *gw);

#endif
