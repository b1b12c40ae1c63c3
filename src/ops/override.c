/* override.c - see override.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/relax.h"
#include "ops/override.h"

int zg_override_parse_duration(const char *s, unsigned *secs)
{
	unsigned long v, mul = 1;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno)
		return -1;
	if (strcmp(end, "m") == 0)
		mul = 60;
	else if (strcmp(end, "h") == 0)
		mul = 3600;
	else if (*end && strcmp(end, "s") != 0)
		return -1;
	if (v == 0 || v > 366ul * 86400 / mul)
		return -1;
	*secs = (unsigned)(v * mul);
	return 0;
}

/* Index of @route's override, or -1. */
static int find(const struct zg_overrides *o, const char *route)
{
	for (unsigned i = 0; i < o->n; i++)
		if (strcmp(o->e[i].route, route) == 0)
			return (int)i;
	return -1;
}

int zg_override_start(struct zg_overrides *o, const struct zg_ovr_entry *want, unsigned max_s,
		      char *why, size_t cap)
{
	int i;

	if (!want->route[0] || !want->relax || (want->relax & ~ZG_RELAX_ALL)) {
		snprintf(why, cap, "an override needs a route and the checks it relaxes");
		return -1;
	}
	if (want->duration_s == 0 || want->duration_s > max_s) {
		snprintf(why, cap, "--for must be between 1s and [override] max_duration (%us)", max_s);
		return -1;
	}
	if (!want->reason[0]) {
		snprintf(why, cap, "an override needs --reason (it goes into the audit trail)");
		return -1;
	}
	i = find(o, want->route);
	if (i < 0) {
		if (o->n == ZG_OVERRIDES_MAX) {
			snprintf(why, cap, "already %u overrides in force", ZG_OVERRIDES_MAX);
			return -1;
		}
		i = (int)o->n++;
	}
	o->e[i] = *want;
	return 0;
}

/* Move entry @i into @ended[*n]. */
static void take(struct zg_overrides *o, unsigned i, struct zg_ovr_entry *ended, unsigned *n)
{
	ended[(*n)++] = o->e[i];
	o->e[i] = o->e[--o->n];
}

unsigned zg_override_stop(struct zg_overrides *o, const char *route, struct zg_ovr_entry *ended)
{
	unsigned n = 0;

	for (unsigned i = o->n; i-- > 0;)
		if (!route || !route[0] || strcmp(o->e[i].route, route) == 0)
			take(o, i, ended, &n);
	return n;
}

unsigned zg_override_expire(struct zg_overrides *o, uint64_t now_ms, struct zg_ovr_entry *ended)
{
	unsigned n = 0;

	for (unsigned i = o->n; i-- > 0;)
		if (now_ms >= o->e[i].until_ms)
			take(o, i, ended, &n);
	return n;
}

unsigned zg_override_table(const struct zg_overrides *o, struct zg_override *out)
{
	for (unsigned i = 0; i < o->n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		snprintf(out[i].route, sizeof(out[i].route), "%s", o->e[i].route);
		out[i].relax = o->e[i].relax;
		out[i].until_ms = o->e[i].until_ms;
		out[i].cert_expired_max_s = o->e[i].cert_expired_max_s;
	}
	return o->n;
}

void zg_override_publish(struct zg_ovr_board *b, const struct zg_overrides *o)
{
	pthread_mutex_lock(&b->lock);
	b->in_force = *o;
	pthread_mutex_unlock(&b->lock);
}

void zg_override_read(struct zg_ovr_board *b, struct zg_overrides *out)
{
	pthread_mutex_lock(&b->lock);
	*out = b->in_force;
	pthread_mutex_unlock(&b->lock);
}
