/* agg.c - see audit_agg.h. */
#include <stdio.h>
#include <string.h>

#include "audit/agg.h"

void zg_agg_init(struct zg_agg *g, int64_t interval_ms, unsigned burst)
{
	memset(g, 0, sizeof(*g));
	g->interval_ms = interval_ms > 0 ? interval_ms : ZG_AGG_INTERVAL_MS;
	g->burst = burst > 0 ? burst : 1;
}

/* The event's strings may lack their NUL (fixed buffers from a caller):
 * compare and copy within the buffer only. */
static int same_key(const struct zg_agg_entry *e, const struct zg_audit_event *ev)
{
	return e->used && e->reason == ev->reason &&
	       strncmp(e->route, ev->route, sizeof(e->route)) == 0 &&
	       strncmp(e->peer_ip, ev->peer_ip, sizeof(e->peer_ip)) == 0;
}

/* The entry of @ev's key, created at @now_ms if there is a free slot;
 * NULL when the table is full. */
static struct zg_agg_entry *find(struct zg_agg *g, const struct zg_audit_event *ev, int64_t now_ms,
				 int *created)
{
	struct zg_agg_entry *free_slot = NULL;

	*created = 0;
	for (size_t i = 0; i < ZG_AGG_SLOTS; i++) {
		if (same_key(&g->e[i], ev))
			return &g->e[i];
		if (!g->e[i].used && !free_slot)
			free_slot = &g->e[i];
	}
	if (!free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	/* whole buffers, terminated or not, so same_key matches them again */
	memcpy(free_slot->route, ev->route, sizeof(free_slot->route));
	memcpy(free_slot->peer_ip, ev->peer_ip, sizeof(free_slot->peer_ip));
	free_slot->reason = ev->reason;
	free_slot->since_ms = now_ms;
	free_slot->used = 1;
	*created = 1;
	return free_slot;
}

static void overflow_add(struct zg_agg *g, enum zg_reason reason, uint64_t n, int64_t now_ms)
{
	if (g->overflow == 0) {
		g->overflow_reason = reason;
		g->overflow_since = now_ms;
	}
	g->overflow += n;
}

enum zg_agg_verdict zg_agg_note(struct zg_agg *g, const struct zg_audit_event *ev, int64_t now_ms,
				int may_record)
{
	int created;
	struct zg_agg_entry *e = find(g, ev, now_ms, &created);

	if (!e) {
		overflow_add(g, ev->reason, 1, now_ms);
		return ZG_AGG_FOLDED;
	}
	/* nothing folded yet: a later record must not overtake a counted one */
	if (may_record && e->count == 0 && e->recorded < g->burst) {
		e->recorded++;
		return ZG_AGG_RECORD;
	}
	e->count++;
	return ZG_AGG_FOLDED;
}

void zg_agg_refold(struct zg_agg *g, const struct zg_audit_event *ev, int64_t now_ms)
{
	uint64_t n = ev->count ? ev->count : 1;
	int created;
	struct zg_agg_entry *e = ev->peer_ip[0] ? find(g, ev, now_ms, &created) : NULL;

	if (!e) {
		overflow_add(g, ev->reason, n, now_ms);
		return;
	}
	e->count += n;
}

static void summary(struct zg_audit_event *out, const char *route, const char *ip,
		    enum zg_reason reason, uint64_t count, int64_t span_ms)
{
	memset(out, 0, sizeof(*out));
	out->kind = ZG_AUDIT_NODE_AUTH_FAILURE;
	out->reason = reason;
	out->count = count;
	out->duration_ms = span_ms > 0 ? (uint64_t)span_ms : 0; /* the interval summed up */
	snprintf(out->route, sizeof(out->route), "%.*s", (int)sizeof(out->route) - 1, route);
	snprintf(out->peer_ip, sizeof(out->peer_ip), "%.*s", (int)sizeof(out->peer_ip) - 1, ip);
	snprintf(out->detail, sizeof(out->detail), "%llu refusals %s in %lld s, aggregated",
		 (unsigned long long)count,
		 out->peer_ip[0] ? "from this source for this reason"
				 : "from sources beyond the aggregation table",
		 (long long)(span_ms / 1000));
}

size_t zg_agg_due(struct zg_agg *g, int64_t now_ms, int all, struct zg_audit_event *out,
		  size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ZG_AGG_SLOTS && n < max; i++) {
		struct zg_agg_entry *e = &g->e[i];
		if (!e->used || (!all && now_ms - e->since_ms < g->interval_ms))
			continue;
		if (e->count > 0)
			summary(&out[n++], e->route, e->peer_ip, e->reason, e->count, now_ms - e->since_ms);
		/* a key still refused keeps its slot: its next interval starts now */
		e->used = !all && e->count > 0;
		e->count = 0;
		e->since_ms = now_ms;
	}
	if (n < max && g->overflow > 0 && (all || now_ms - g->overflow_since >= g->interval_ms)) {
		summary(&out[n++], "", "", g->overflow_reason, g->overflow, now_ms - g->overflow_since);
		g->overflow = 0;
	}
	return n;
}

int zg_agg_collapse(struct zg_agg *g, int64_t now_ms, struct zg_audit_event *out)
{
	uint64_t n = zg_agg_pending(g);
	int64_t since = g->overflow ? g->overflow_since : now_ms;
	enum zg_reason reason = g->overflow_reason;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < ZG_AGG_SLOTS; i++) {
		const struct zg_agg_entry *e = &g->e[i];
		if (!e->used || e->count == 0)
			continue;
		if (e->since_ms < since || (g->overflow == 0 && reason == ZG_R_OK)) {
			since = e->since_ms;
			reason = e->reason;
		}
	}
	summary(out, "", "", reason, n, now_ms - since);
	snprintf(out->detail, sizeof(out->detail), "%llu refusals from any source in %lld s, "
		 "aggregated (the first reason given)", (unsigned long long)n,
		 (long long)((now_ms - since) / 1000));
	zg_agg_init(g, g->interval_ms, g->burst);
	return 1;
}

int64_t zg_agg_next_ms(const struct zg_agg *g, int64_t now_ms)
{
	int64_t next = -1;

	for (size_t i = 0; i < ZG_AGG_SLOTS; i++) {
		int64_t left;
		if (!g->e[i].used)
			continue;
		left = g->e[i].since_ms + g->interval_ms - now_ms;
		if (left < 0)
			left = 0;
		if (next < 0 || left < next)
			next = left;
	}
	if (g->overflow > 0) {
		int64_t left = g->overflow_since + g->interval_ms - now_ms;
		if (left < 0)
			left = 0;
		if (next < 0 || left < next)
			next = left;
	}
	return next;
}

uint64_t zg_agg_pending(const struct zg_agg *g)
{
	uint64_t n = g->overflow;

	for (size_t i = 0; i < ZG_AGG_SLOTS; i++)
		if (g->e[i].used)
			n += g->e[i].count;
	return n;
}
