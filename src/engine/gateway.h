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

enum zg_gw_state { ZG_GW_RUNNING, ZG_GW_DRAINING, ZG_GW_STOPPING };

struct zg_gateway {
	char conf_path[ZG_PATH_MAX];
	pthread_mutex_t snap_lock;      /* guards `current` only */
	struct zg_snapshot *current;
	uint64_t generation;            /* main thread only */
	struct zg_worker *workers;
	unsigned n_workers;
	atomic_int state;               /* enum zg_gw_state */
	atomic_uint active_total;       /* live connections, all workers */
	atomic_uint workers_running;
	atomic_int resolve_wanted;      /* a worker saw an upstream fail */
	int main_wake_fd;               /* eventfd workers use to ask */
	_Atomic uint64_t drain_deadline_ms; /* monotonic; set before draining */
	uint64_t last_resolve_ms;
	uint64_t next_dir_poll_ms;      /* directory file watch */
	struct zg_dir_stamp dir_stamp;  /* the directory files as last loaded */
	struct zg_audit *audit;         /* NULL: no [audit] sink; set before workers start */
	struct zg_dir_counters *dir_counters; /* live connections per participant id */
	struct zg_route_stats stats[ZG_ROUTES_MAX * 2];
	unsigned n_stats;               /* main thread only */
};

/* Load @conf_path, start the workers and serve until stopped. Returns a
 * process exit code (cli.h). */
int zg_gateway_run(const char *conf_path, unsigned workers_override);

/* A new reference on the snapshot in force (workers, when woken). */
struct zg_snapshot *zg_gateway_snapshot(struct zg_gateway *gw);

/* A worker asks the main thread to resolve upstream names again. */
void zg_gateway_want_resolve(struct zg_gateway *gw);

/* Queue audit event @ev if an audit trail is configured. Returns -1 only
 * when the trail cannot take it and its policy is to refuse new
 * connections. Any thread; never blocks. */
int zg_gateway_audit(struct zg_gateway *gw, const struct zg_audit_event *ev);

/* A worker thread is about to end. */
void zg_gateway_worker_exited(struct zg_gateway *gw);

/* Milliseconds on the monotonic clock. */
uint64_t zg_now_ms(void);

#endif
