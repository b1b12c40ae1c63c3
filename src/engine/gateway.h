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

struct zg_gateway {
	char conf_path[ZG_PATH_MAX];
	struct zg_fleet fleet;          /* what the workers share: state, snapshot, counters */
	uint64_t generation;            /* main thread only */
	struct zg_worker *workers;
	unsigned n_workers;
	uint64_t last_resolve_ms;
	uint64_t next_dir_poll_ms;      /* directory file watch */
	struct zg_dir_stamp dir_stamp;  /* the directory files as last loaded */
	struct zg_dir_counters *dir_counters; /* live connections per participant id */
	struct zg_route_stats stats[ZG_ROUTES_MAX * 2];
	unsigned n_stats;               /* main thread only */
};

/* Load @conf_path, start the workers and serve until stopped. Returns a
 * process exit code (cli.h). */
int zg_gateway_run(const char *conf_path, unsigned workers_override);

#endif
