/* agg.h - aggregation of refusal records, as syslog folds repeats.
 *
 * A peer refused before (or during) TLS costs the gateway next to nothing,
 * but each refusal record costs ~1.6 KB of spool; a flood of refusals
 * would fill the spool and then make the gateway refuse authenticated
 * clinical traffic (issue 10, item 2). So refusals are folded: per (route,
 * source address, reason) the first refusal of an interval is recorded
 * as it comes, and every further one only counted; when the interval ends
 * the count becomes one summary record ("repeated N times") and a new
 * interval starts at once, so a steady flood costs one record per source,
 * reason and interval. A key quiet for a whole interval is forgotten. A
 * full table folds further sources into one overflow count per table.
 *
 * Pure: no clock, no locks, no I/O (the caller passes the time and holds
 * whatever lock protects the table), so the unit tests drive it directly.
 */
#ifndef ZG_AUDIT_AGG_H
#define ZG_AUDIT_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"

#define ZG_AGG_SLOTS 256
#define ZG_AGG_INTERVAL_MS 60000 /* one summary per key and minute */

struct zg_agg_entry {
	char route[ZG_AUDIT_NAME_MAX];
	char peer_ip[ZG_AUDIT_IP_MAX];
	enum zg_reason reason;
	uint64_t count;    /* refusals not recorded one by one this interval */
	unsigned recorded; /* recorded one by one since the key was created */
	int64_t since_ms;  /* start of the interval */
	int used;
};

struct zg_agg {
	struct zg_agg_entry e[ZG_AGG_SLOTS];
	int64_t interval_ms;
	unsigned burst;             /* refusals of a key recorded one by one before folding */
	uint64_t overflow;          /* refusals of keys the full table had no slot for */
	enum zg_reason overflow_reason; /* the first of them */
	int64_t overflow_since;
};

enum zg_agg_verdict {
	ZG_AGG_RECORD, /* the first of its key this interval: record it as it is */
	ZG_AGG_FOLDED, /* counted; a later summary stands for it */
};

/* Empty @g with intervals of @interval_ms (> 0). The first @burst (>= 1)
 * refusals of a new key are recorded one by one, every later one counted
 * until the key has been quiet for a whole interval (the audit trail
 * records 1; the log shows a few more, so an operator sees their details). */
void zg_agg_init(struct zg_agg *g, int64_t interval_ms, unsigned burst);

/* Note the refusal @ev at @now_ms. @may_record = 0 when there is no room
 * to record it now (queue or spool share used up): it is then folded into
 * the count, never lost. */
enum zg_agg_verdict zg_agg_note(struct zg_agg *g, const struct zg_audit_event *ev, int64_t now_ms,
				int may_record);

/* Give back a refusal (or summary of @ev->count > 1 refusals) that could
 * not be written after all: folded into its key's count again. */
void zg_agg_refold(struct zg_agg *g, const struct zg_audit_event *ev, int64_t now_ms);

/* Move up to @max due summaries into @out: keys whose interval ended by
 * @now_ms (all keys with a count if @all), each a NODE_AUTH_FAILURE event
 * with count and a detail saying what it stands for; ts_ns is left 0.
 * Keys with nothing counted in an ended interval are forgotten. Returns the
 * number written to @out. */
size_t zg_agg_due(struct zg_agg *g, int64_t now_ms, int all, struct zg_audit_event *out,
		  size_t max);

/* Fold everything still counted into one summary without a source in
 * @out (for a last record when there is room for one only) and empty the
 * table. Returns 1 if there was anything, 0 if not. */
int zg_agg_collapse(struct zg_agg *g, int64_t now_ms, struct zg_audit_event *out);

/* Milliseconds from @now_ms until the next summary falls due (0 = now),
 * -1 if nothing is held. */
int64_t zg_agg_next_ms(const struct zg_agg *g, int64_t now_ms);

/* Refusals counted and not yet handed out by zg_agg_due. */
uint64_t zg_agg_pending(const struct zg_agg *g);

#endif
