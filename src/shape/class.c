/* class.c - see class.h: the shared class table and the per-flow data path. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "shape/class.h"

#define N_CLS(t) (sizeof((t)->cls) / sizeof((t)->cls[0]))

void zg_shape_init(struct zg_shape_table *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->cls[0].name, sizeof(t->cls[0].name), "%s", ZG_CLASS_DEFAULT);
	t->cls[0].builtin = 1;
	atomic_store(&t->cls[0].dscp, ZG_DSCP_UNSET);
	atomic_store(&t->cls[0].defined, 1);
	atomic_store(&t->n, 1);
}

/* The entry named @name among the published ones, or NULL. Index 0 is the
 * implicit default, which a [class default] section replaces. */
static struct zg_shape_class *lookup(struct zg_shape_table *t, const char *name)
{
	unsigned n = atomic_load_explicit(&t->n, memory_order_acquire);

	for (unsigned i = 1; i < n; i++)
		if (strcmp(t->cls[i].name, name) == 0)
			return &t->cls[i];
	return NULL;
}

/* Main thread: the entry for @name, appended (and published) if new. */
static struct zg_shape_class *lookup_or_add(struct zg_shape_table *t, const char *name)
{
	struct zg_shape_class *c = lookup(t, name);
	unsigned n = atomic_load(&t->n);

	if (c)
		return c;
	if (n >= N_CLS(t))
		return NULL;
	c = &t->cls[n];
	snprintf(c->name, sizeof(c->name), "%s", name);
	atomic_store(&c->dscp, ZG_DSCP_UNSET);
	/* The name is complete before any worker can see the entry. */
	atomic_store_explicit(&t->n, n + 1, memory_order_release);
	return c;
}

/* Store @cc's settings in force at @tod into @c; 1 if rate or ceil changed. */
static int set_class(struct zg_shape_class *c, const struct zg_conf_class *cc, uint32_t tod)
{
	uint64_t rate, ceil;
	int changed;

	zg_class_effective(cc, tod, &rate, &ceil);
	changed = atomic_load(&c->rate_bps) != rate || atomic_load(&c->ceil_bps) != ceil;
	atomic_store(&c->rate_bps, rate);
	atomic_store(&c->ceil_bps, ceil);
	atomic_store(&c->conn_bps, cc->per_connection_bps);
	atomic_store(&c->priority, cc->priority);
	atomic_store(&c->max_connections, cc->max_connections);
	atomic_store(&c->dscp, cc->dscp == ZG_DSCP_UNSET ? zg_dscp_default(cc->priority) : cc->dscp);
	atomic_store(&c->defined, 1);
	return changed;
}

int zg_shape_apply(struct zg_shape_table *t, const struct zg_conf_class *classes, unsigned n,
		   const struct zg_conf_link *link, uint32_t tod)
{
	struct zg_shape_class *found[ZG_CLASSES_MAX], *user_default;
	unsigned total = atomic_load(&t->n);

	if (n > ZG_CLASSES_MAX)
		return -1;
	/* Find every entry first, so that a full table changes nothing. */
	for (unsigned i = 0; i < n; i++)
		if (!(found[i] = lookup_or_add(t, classes[i].name)))
			return -1;
	for (unsigned i = 1; i < total; i++)
		atomic_store(&t->cls[i].defined, 0);
	for (unsigned i = 0; i < n; i++)
		(void)set_class(found[i], &classes[i], tod);
	/* The implicit default serves unclassed routes unless [class default] does. */
	user_default = lookup(t, ZG_CLASS_DEFAULT);
	atomic_store(&t->cls[0].defined, !user_default || !atomic_load(&user_default->defined));
	atomic_store(&t->link[ZG_TO_CLIENT].bps, link->to_client_bps);
	atomic_store(&t->link[ZG_TO_UPSTREAM].bps, link->to_upstream_bps);
	return 0;
}

unsigned zg_shape_tick(struct zg_shape_table *t, const struct zg_conf_class *classes, unsigned n,
		       uint32_t tod)
{
	unsigned changed = 0;

	for (unsigned i = 0; i < n; i++) {
		struct zg_shape_class *c = lookup(t, classes[i].name);
		char r[32], k[32];
		if (!c || !classes[i].n_windows || !set_class(c, &classes[i], tod))
			continue;
		changed++;
		zg_rate_format(atomic_load(&c->rate_bps), r, sizeof(r));
		zg_rate_format(atomic_load(&c->ceil_bps), k, sizeof(k));
		zg_info("event=class_window class=%s rate=%s ceil=%s", c->name, r, k);
	}
	return changed;
}

struct zg_shape_class *zg_shape_find(struct zg_shape_table *t, const char *name)
{
	struct zg_shape_class *c;

	if (!name[0])
		name = ZG_CLASS_DEFAULT;
	c = lookup(t, name);
	if (c && atomic_load(&c->defined))
		return c;
	return strcmp(name, ZG_CLASS_DEFAULT) == 0 ? &t->cls[0] : NULL;
}

enum zg_reason zg_shape_admit(struct zg_shape_class *c)
{
	unsigned max = atomic_load_explicit(&c->max_connections, memory_order_relaxed);
	unsigned before = atomic_fetch_add(&c->active, 1);

	if (max && before >= max) {
		atomic_fetch_sub(&c->active, 1);
		atomic_fetch_add(&c->refused, 1);
		return ZG_R_CLASS_LIMIT;
	}
	atomic_fetch_add_explicit(&c->connections, 1, memory_order_relaxed);
	return ZG_R_OK;
}

void zg_shape_release(struct zg_shape_class *c)
{
	atomic_fetch_sub(&c->active, 1);
}

void zg_shape_flow_init(struct zg_shape_flow *f, struct zg_shape_table *t, struct zg_shape_class *c,
			enum zg_shape_way way)
{
	memset(f, 0, sizeof(*f));
	f->cls = c;
	f->dir = &c->dir[way];
	f->link = &t->link[way];
}

/* The limits of @f in force now (the main thread may change them at any
 * time; a read sees either the old or the new value of each). */
static void limits_of(const struct zg_shape_flow *f, struct zg_shape_limits *l)
{
	const struct zg_shape_class *c = f->cls;

	l->rate_bps = c->builtin ? 0 : atomic_load_explicit(&c->rate_bps, memory_order_relaxed);
	l->ceil_bps = c->builtin ? 0 : atomic_load_explicit(&c->ceil_bps, memory_order_relaxed);
	l->conn_bps = c->builtin ? 0 : atomic_load_explicit(&c->conn_bps, memory_order_relaxed);
	l->priority = atomic_load_explicit(&c->priority, memory_order_relaxed);
	l->link_bps = atomic_load_explicit(&f->link->bps, memory_order_relaxed);
}

int zg_shape_may_read(struct zg_shape_flow *f, uint64_t now, uint64_t *wake)
{
	struct zg_shape_limits l;
	struct zg_shape_tats tats;

	limits_of(f, &l);
	tats.own = atomic_load_explicit(&f->dir->own_tat, memory_order_relaxed);
	tats.ceil = atomic_load_explicit(&f->dir->ceil_tat, memory_order_relaxed);
	tats.link = atomic_load_explicit(&f->link->tat, memory_order_relaxed);
	tats.conn = f->conn_tat;
	f->granted = zg_shape_decide(&l, &tats, now, wake);
	if (f->granted == ZG_SHAPE_WAIT) {
		if (!f->throttled_since)
			f->throttled_since = now;
		if (!f->pacing && !f->cls->builtin) {
			atomic_fetch_add_explicit(&f->dir->pacing, 1, memory_order_relaxed);
			f->pacing = 1;
		}
		return 0;
	}
	zg_shape_flow_end(f, now);
	return 1;
}

/* Charge @cost to the shared bucket @tat: a CAS loop, since max() is not
 * an atomic primitive. Contention is one retry per concurrent lease. */
static void charge_shared(_Atomic uint64_t *tat, uint64_t now, uint64_t cost, uint64_t max_debt)
{
	uint64_t old = atomic_load_explicit(tat, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(tat, &old, zg_shape_charge(old, now, cost, max_debt),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

void zg_shape_charge_flow(struct zg_shape_flow *f, uint64_t bytes, uint64_t now)
{
	struct zg_shape_limits l;
	uint64_t own_debt = ZG_SHAPE_TAU_NS + zg_shape_cost_ns(ZG_SHAPE_LEASE, ZG_RATE_MIN) * 2;

	limits_of(f, &l);
	atomic_fetch_add_explicit(&f->dir->bytes, bytes, memory_order_relaxed);
	/* the default class's reads come without the time: only a bucket needs it */
	if (!now && (l.rate_bps || l.ceil_bps || l.link_bps || l.conn_bps))
		now = zg_shape_now();
	if (f->granted == ZG_SHAPE_OWN && l.rate_bps)
		charge_shared(&f->dir->own_tat, now, zg_shape_cost_ns(bytes, l.rate_bps), own_debt);
	if (l.ceil_bps)
		charge_shared(&f->dir->ceil_tat, now, zg_shape_cost_ns(bytes, l.ceil_bps), own_debt);
	/* Every byte of every class counts against the link, the default
	 * class's too: borrowers get only what is really spare. */
	if (l.link_bps)
		charge_shared(&f->link->tat, now, zg_shape_cost_ns(bytes, l.link_bps),
			      zg_shape_link_max_debt(l.link_bps));
	if (l.conn_bps)
		f->conn_tat = zg_shape_charge(f->conn_tat, now, zg_shape_cost_ns(bytes, l.conn_bps),
					      own_debt);
}

void zg_shape_flow_end(struct zg_shape_flow *f, uint64_t now)
{
	if (!f->throttled_since || !f->dir)
		return;
	if (now > f->throttled_since)
		atomic_fetch_add_explicit(&f->dir->throttled_ns, now - f->throttled_since,
					  memory_order_relaxed);
	f->throttled_since = 0;
}

uint64_t zg_shape_pace_bps(const struct zg_shape_flow *f)
{
	uint64_t ceil, link;
	unsigned n;

	if (!f->pacing && !f->paced_bps)
		return 0;
	ceil = atomic_load_explicit(&f->cls->ceil_bps, memory_order_relaxed);
	if (!ceil)
		ceil = atomic_load_explicit(&f->cls->rate_bps, memory_order_relaxed);
	link = atomic_load_explicit(&f->link->bps, memory_order_relaxed);
	if (link && link < ceil)
		ceil = link;
	n = atomic_load_explicit(&f->dir->pacing, memory_order_relaxed);
	if (!f->pacing)
		return ceil / (n + 1); /* as if it were one more of them */
	return n ? ceil / n : ceil;
}

void zg_shape_flow_idle(struct zg_shape_flow *f)
{
	if (!f->pacing)
		return;
	atomic_fetch_sub_explicit(&f->dir->pacing, 1, memory_order_relaxed);
	f->pacing = 0;
}

int zg_shape_pace_socket(int fd, uint64_t bps)
{
	/* bytes per second; ~0U is "unpaced" and also caps what an unsigned
	 * int says (34 Gbit/s, far above any class) */
	unsigned rate = bps == 0 || bps / 8 >= 0xffffffffu ? 0xffffffffu : (unsigned)(bps / 8);

	return setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, sizeof(rate));
}

int zg_shape_mark(int fd, int dscp)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int tos;

	if (dscp < 0 || dscp > 63)
		return 0; /* ZG_DSCP_UNSET: the OS default stays */
	tos = dscp << 2; /* DSCP is the upper six bits of the TOS / traffic class octet */
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos)) < 0)
			return -1;
		/* An IPv4-mapped peer on an IPv6 socket sends IPv4 packets: IP_TOS
		 * marks those; on a v6-only path the call may fail harmlessly. */
		(void)setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
		return 0;
	}
	return setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
}

unsigned zg_shape_stats_count(const struct zg_shape_table *t)
{
	return atomic_load_explicit(&t->n, memory_order_acquire);
}

int zg_shape_stats_read(const struct zg_shape_table *t, unsigned i, struct zg_shape_stats *out)
{
	const struct zg_shape_class *c;

	if (i >= zg_shape_stats_count(t))
		return -1;
	c = &t->cls[i];
	memset(out, 0, sizeof(*out));
	memcpy(out->name, c->name, sizeof(out->name));
	out->defined = atomic_load(&c->defined);
	out->rate_bps = c->builtin ? 0 : atomic_load(&c->rate_bps);
	out->ceil_bps = c->builtin ? 0 : atomic_load(&c->ceil_bps);
	out->priority = atomic_load(&c->priority);
	out->active = atomic_load(&c->active);
	out->connections = atomic_load(&c->connections);
	out->refused = atomic_load(&c->refused);
	for (int w = 0; w < 2; w++) {
		out->bytes[w] = atomic_load(&c->dir[w].bytes);
		out->throttled_ms[w] = atomic_load(&c->dir[w].throttled_ns) / 1000000u;
	}
	return 0;
}
