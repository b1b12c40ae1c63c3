/* plane.h - the operator's control plane as one object: systemd
 * notification and watchdog, the control socket, the metrics listener and
 * expiry tracking, driven by the gateway's main thread through
 * struct zg_plane (engine/gateway.h).
 *
 * Nothing here runs on a worker: workers are only read (their heartbeat)
 * or asked through their wake fds, so the data path never waits for the
 * operator.
 */
#ifndef ZG_PLANE_H
#define ZG_PLANE_H

#include "engine/gateway.h"
#include "ops/ctl.h"
#include "ops/expiry.h"
#include "ops/metrics.h"
#include "ops/notify.h"

struct zg_ops {
	struct zg_notify notify;
	struct zg_ctl *ctl;           /* NULL: no [control] socket */
	struct zg_metrics *metrics;   /* NULL: no [admin] listener */
	struct zg_expiry_table expiry; /* filled at start and after each reload */
	struct zg_ovr_board overrides; /* the control thread's, for the metrics */
	uint64_t next_expiry_check_ms; /* monotonic; main thread */
	atomic_int started;           /* the gateway serves (for /ready) */
};

/* Release what zg_ops_init took (after zg_gateway_run returned). */
void zg_ops_fini(struct zg_ops *ops);

/* Prepare @ops (reads $NOTIFY_SOCKET and $WATCHDOG_USEC) and fill @plane
 * to drive it; pass @plane to zg_gateway_run. */
void zg_ops_init(struct zg_ops *ops, struct zg_plane *plane);

/* One line for STATUS= and `ctl status`: what the gateway serves now.
 * Main thread. */
void zg_ops_summary(const struct zg_gateway *gw, char *buf, size_t cap);

#endif
