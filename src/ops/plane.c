/* plane.c - see plane.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "ops/plane.h"

#define NOTIFY_MAX 512
#define EXPIRY_CHECK_MS 60000
#define ZG_WORKERS_MAX 1024 /* [gateway] workers at most */

void zg_ops_summary(const struct zg_gateway *gw, char *buf, size_t cap)
{
	const char *state = "serving";

	switch (atomic_load(&gw->fleet.state)) {
	case ZG_GW_DRAINING:
		state = "draining";
		break;
	case ZG_GW_STOPPING:
		state = "stopping";
		break;
	default:
		break;
	}
	snprintf(buf, cap, "%s: %u routes, %u workers, generation %llu, %u connections", state,
		 gw->fleet.current ? gw->fleet.current->n_routes : 0, gw->n_workers,
		 (unsigned long long)gw->generation, atomic_load(&gw->fleet.active_total));
}

/* Send @head ("READY=1", ...) with a STATUS= line describing @gw. */
static void notify_with_status(struct zg_ops *ops, const struct zg_gateway *gw, const char *head)
{
	char summary[200], msg[NOTIFY_MAX];

	zg_ops_summary(gw, summary, sizeof(summary));
	snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", head, *head ? "\n" : "", summary);
	zg_notify_send(&ops->notify, msg);
}

/* Read the expiry dates of what @gw's configuration names again, and its
 * thresholds, keeping the warnings already given for items that stay
 * (main thread). */
static void expiry_refresh(struct zg_ops *ops, struct zg_gateway *gw)
{
	struct zg_expiry_item fresh[ZG_EXPIRY_MAX];
	const struct zg_snapshot *s = gw->fleet.current;
	const struct zg_conf_admin *adm = &s->conf->admin;
	struct zg_expiry_table *t = &ops->expiry;
	unsigned n = zg_expiry_collect(s->conf, s->dir, fresh, ZG_EXPIRY_MAX);

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < t->n; j++)
			if (strcmp(fresh[i].kind, t->item[j].kind) == 0 &&
			    strcmp(fresh[i].name, t->item[j].name) == 0 &&
			    fresh[i].not_after == t->item[j].not_after)
				fresh[i].warned = zg_expiry_rewarn(t->item[j].warned, t->days, t->n_days,
								   adm->expiry_warn, adm->n_expiry_warn);
	memcpy(t->item, fresh, sizeof(fresh[0]) * n);
	t->n = n;
	memcpy(t->days, adm->expiry_warn, sizeof(t->days));
	t->n_days = adm->n_expiry_warn;
	pthread_mutex_unlock(&t->lock);
	ops->next_expiry_check_ms = 0; /* new dates: look at them on the next turn */
}

/* Warn (log line and audit record) about every item that crossed a
 * threshold not yet warned about; main thread, at most once a minute. */
static void expiry_check(struct zg_ops *ops, struct zg_gateway *gw)
{
	const unsigned *days = ops->expiry.days;
	int64_t now = (int64_t)time(NULL);
	char q[200];

	pthread_mutex_lock(&ops->expiry.lock);
	for (unsigned i = 0; i < ops->expiry.n; i++) {
		struct zg_expiry_item *it = &ops->expiry.item[i];
		int due = zg_expiry_due(it->not_after, now, days, ops->expiry.n_days,
					 it->warned);
		int64_t left = zg_expiry_days_left(it->not_after, now);
		struct zg_audit_event ev;

		if (due < 0)
			continue;
		it->warned |= (2u << due) - 1; /* this threshold and every farther one */
		zg_warn("event=expiry_warning kind=%s name=%s days_left=%lld threshold_days=%u",
			it->kind, zg_log_quote(q, sizeof(q), it->name), (long long)left, days[due]);
		memset(&ev, 0, sizeof(ev));
		ev.kind = ZG_AUDIT_EXPIRY_WARNING;
		snprintf(ev.detail, sizeof(ev.detail), "%s %.150s %s in %lld days (threshold %u days)",
			 it->kind, it->name, left < 0 ? "expired" : "expires", (long long)left, days[due]);
		if (gw->fleet.audit)
			(void)zg_audit_emit(gw->fleet.audit, &ev);
	}
	pthread_mutex_unlock(&ops->expiry.lock);
	ops->next_expiry_check_ms = zg_now_ms() + EXPIRY_CHECK_MS;
}

/* zg_plane_ops.start: listeners bound, workers running. */
static int on_start(void *ctx, struct zg_gateway *gw)
{
	struct zg_ops *ops = ctx;
	int failed;

	expiry_refresh(ops, gw);
	ops->ctl = zg_ctl_start(gw, &ops->overrides, &failed);
	if (failed)
		return -1;
	ops->metrics = zg_metrics_start(gw, &(struct zg_metrics_src){&ops->expiry, &ops->overrides,
									  &ops->started}, &failed);
	if (failed)
		return -1;
	atomic_store(&ops->started, 1);
	notify_with_status(ops, gw, "READY=1");
	return 0;
}

/* zg_plane_ops.reloading: systemd stays in "reloading" until READY=1. */
static void on_reloading(void *ctx, struct zg_gateway *gw)
{
	struct zg_ops *ops = ctx;
	struct timespec ts;
	char msg[96];

	(void)gw;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
	zg_notify_send(&ops->notify, msg);
}

/* zg_plane_ops.reloaded: READY=1 either way, else systemd waits on. */
static void on_reloaded(void *ctx, struct zg_gateway *gw, int ok, const struct zg_errlist *errs)
{
	struct zg_ops *ops = ctx;

	if (ok)
		expiry_refresh(ops, gw);
	zg_ctl_reloaded(ops->ctl, ok, errs, gw->generation);
	notify_with_status(ops, gw, "READY=1");
}

/* zg_plane_ops.draining */
static void on_draining(void *ctx, struct zg_gateway *gw)
{
	notify_with_status(ctx, gw, "STOPPING=1");
}

/* zg_plane_ops.tick: the watchdog, from the workers' heartbeats. */
static uint64_t on_tick(void *ctx, struct zg_gateway *gw, uint64_t now_ms)
{
	struct zg_ops *ops = ctx;
	uint64_t beats[ZG_WORKERS_MAX];
	unsigned n = gw->n_workers < ZG_WORKERS_MAX ? gw->n_workers : ZG_WORKERS_MAX;

	if (!atomic_load(&ops->started))
		return UINT64_MAX;
	if (now_ms >= ops->next_expiry_check_ms)
		expiry_check(ops, gw);
	for (unsigned i = 0; i < n; i++)
		beats[i] = atomic_load_explicit(&gw->workers[i].beat_ms, memory_order_relaxed);
	return zg_notify_watchdog(&ops->notify, beats, n, now_ms);
}

/* zg_plane_ops.stop: idempotent; also called when start never was. */
static void on_stop(void *ctx, struct zg_gateway *gw)
{
	struct zg_ops *ops = ctx;

	(void)gw;
	atomic_store(&ops->started, 0);
	zg_metrics_stop(ops->metrics);
	ops->metrics = NULL;
	zg_ctl_stop(ops->ctl);
	ops->ctl = NULL;
	zg_notify_close(&ops->notify);
}

static const struct zg_plane_ops plane_ops = {
	.start = on_start,
	.reloading = on_reloading,
	.reloaded = on_reloaded,
	.draining = on_draining,
	.tick = on_tick,
	.stop = on_stop,
};

void zg_ops_init(struct zg_ops *ops, struct zg_plane *plane)
{
	memset(ops, 0, sizeof(*ops));
	/* cannot fail with default attributes */
	(void)pthread_mutex_init(&ops->expiry.lock, NULL);
	(void)pthread_mutex_init(&ops->overrides.lock, NULL);
	(void)zg_notify_open(&ops->notify);
	plane->ops = &plane_ops;
	plane->ctx = ops;
}

void zg_ops_fini(struct zg_ops *ops)
{
	zg_notify_close(&ops->notify);
	pthread_mutex_destroy(&ops->expiry.lock);
	pthread_mutex_destroy(&ops->overrides.lock);
}
