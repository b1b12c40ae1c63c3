/* metrics.h - the admin listener: Prometheus text exposition at /metrics,
 * liveness at /health, readiness at /ready (configuration loaded, listeners
 * bound, audit sink accepting; 503 otherwise).
 *
 * Loopback only ([admin] listen); its own thread and poll loop. Counters
 * are the workers' own (struct zg_conn_counters), read relaxed and summed
 * at scrape time: the data path takes no lock and no locked instruction
 * for them.
 */
#ifndef ZG_METRICS_H
#define ZG_METRICS_H

#include "engine/gateway.h"
#include "ops/expiry.h"
#include "ops/out.h"
#include "ops/override.h"

struct zg_metrics;

/* What the exposition reads besides the gateway: the plane's (ops/plane.h). */
struct zg_metrics_src {
	struct zg_expiry_table *exp;  /* expiry dates */
	struct zg_ovr_board *ovr;     /* overrides in force */
	const atomic_int *started;    /* 1 once the gateway serves */
};

/* Bind [admin] listen of @gw and start serving (main thread). NULL when not
 * configured (*@failed 0) or on an error, logged (*@failed 1). @src is
 * copied; what it points to must outlive zg_metrics_stop. */
struct zg_metrics *zg_metrics_start(struct zg_gateway *gw, const struct zg_metrics_src *src,
				    int *failed);

/* The exposition text of @gw now (any thread). */
void zg_metrics_render(struct zg_gateway *gw, const struct zg_metrics_src *src, int64_t start_time,
		       struct zg_out *o);

/* Stop the thread and close the listener; NULL: nothing. */
void zg_metrics_stop(struct zg_metrics *m);

#endif
