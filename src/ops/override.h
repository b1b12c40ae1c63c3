/* override.h - the emergency override (break-glass): for a bounded time, a
 * route admits connections that only a freshness or availability check
 * refused (base/relax.h), every one of them flagged in its log line and its
 * audit records, the override itself audited as 110113 / 110127 Emergency
 * Override Started and 110138 Emergency Override Stopped.
 *
 * This file is the bookkeeping, pure: the control thread (ctl.c) owns one
 * struct zg_overrides, changes it with these functions, and hands each
 * worker a copy of the table (zg_override_table) through its wake fd.
 */
#ifndef ZG_OVERRIDE_H
#define ZG_OVERRIDE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/conn.h"

#define ZG_OVR_REASON_MAX 256

struct zg_ovr_entry {
	char route[ZG_NAME_MAX];
	unsigned relax;                   /* ZG_RELAX_* */
	uint64_t until_ms;                /* monotonic end */
	int64_t started_at;               /* Unix time */
	unsigned duration_s;
	int64_t cert_expired_max_s;
	unsigned uid;
	char user[64];
	char reason[ZG_OVR_REASON_MAX];
};

struct zg_overrides {
	struct zg_ovr_entry e[ZG_OVERRIDES_MAX];
	unsigned n;
};

/* The overrides in force as the metrics thread sees them: the control
 * thread publishes a copy after every change (zg_override_publish), the
 * metrics thread copies it out under @lock. Neither is on the data path. */
struct zg_ovr_board {
	pthread_mutex_t lock;
	struct zg_overrides in_force;
};

/* Copy @o into @b (control thread). */
void zg_override_publish(struct zg_ovr_board *b, const struct zg_overrides *o);

/* A copy of what @b holds into @out (any thread). */
void zg_override_read(struct zg_ovr_board *b, struct zg_overrides *out);

/* "90s", "30m", "2h" or a bare number of seconds into *@secs; -1 if not. */
int zg_override_parse_duration(const char *s, unsigned *secs);

/* Start (or replace, for the same route) the override @want, whose
 * duration_s must be 1..@max_s and whose reason must not be empty. 0, or
 * -1 with @why. */
int zg_override_start(struct zg_overrides *o, const struct zg_ovr_entry *want, unsigned max_s,
		      char *why, size_t cap);

/* Remove the override of @route (NULL or "": all) into @ended (room for
 * ZG_OVERRIDES_MAX). Returns how many ended. */
unsigned zg_override_stop(struct zg_overrides *o, const char *route, struct zg_ovr_entry *ended);

/* Remove every override whose time is up at @now_ms into @ended. Returns
 * how many ended. */
unsigned zg_override_expire(struct zg_overrides *o, uint64_t now_ms, struct zg_ovr_entry *ended);

/* The table the workers use (route, relax, end, limit). Returns o->n. */
unsigned zg_override_table(const struct zg_overrides *o, struct zg_override *out);

#endif
