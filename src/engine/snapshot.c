/* snapshot.c - see snapshot.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "engine/snapshot.h"
#include "tls/tls.h"

/* Resolve every pool member of @rt. A name that does not resolve now may
 * resolve later: the member is skipped (the route refuses its connections
 * only while no member resolves). Returns how many members failed; the
 * first failure's text goes to @why. */
static unsigned resolve_upstream(struct zg_route_rt *rt, int quiet, char *why, size_t cap)
{
	unsigned failed = 0;

	rt->n_up = rt->conf->connect.n;
	for (unsigned k = 0; k < rt->n_up; k++) {
		struct zg_upstream_rt *u = &rt->up[k];
		char w[256];
		int n;

		u->conf = &rt->conf->connect.m[k];
		n = zg_resolve(&u->conf->ep, 0, u->addr, ZG_MEMBER_ADDRS_MAX, w, sizeof(w));
		if (n >= 0) {
			u->n_addr = (unsigned)n;
			continue;
		}
		u->n_addr = 0;
		if (!failed++)
			snprintf(why, cap, "%.120s:%.8s: %.100s", u->conf->ep.host, u->conf->ep.port, w);
		if (!quiet)
			zg_warn("event=resolve_failed route=%s host=%s port=%s reason=%s", rt->conf->name,
				u->conf->ep.host, u->conf->ep.port, w);
	}
	return failed;
}

struct zg_health *zg_route_stats_health(struct zg_route_stats *st, const char *name,
					const struct zg_pool_conf *pool)
{
	unsigned n = atomic_load(&st->n_health);
	char t[ZG_HEALTH_NAME_MAX];

	for (unsigned i = 0; i < n; i++)
		if (strcmp(st->health[i].name, name) == 0)
			return &st->health[i];
	if (n < ZG_HEALTH_SLOTS) {
		zg_health_init(&st->health[n], name);
		atomic_store(&st->n_health, n + 1);
		return &st->health[n];
	}
	/* every slot taken by endpoints this route once named: reuse one it
	 * no longer names (a connection of an older snapshot still on it
	 * skews that slot's active count until it ends) */
	for (unsigned i = 0; i < n; i++) {
		int named = 0;
		for (unsigned k = 0; k < pool->n && !named; k++) {
			zg_upstream_format(&(struct zg_upstream_conf){.ep = pool->m[k].ep}, t, sizeof(t));
			named = strcmp(st->health[i].name, t) == 0;
		}
		if (!named) {
			zg_health_init(&st->health[i], name);
			return &st->health[i];
		}
	}
	return &st->health[0]; /* unreachable: a pool has at most half the slots */
}

/* Give every member of @rt its health slot in @st (main thread). */
static void bind_health(struct zg_route_rt *rt, struct zg_route_stats *st)
{
	char name[ZG_HEALTH_NAME_MAX];

	for (unsigned k = 0; k < rt->n_up; k++) {
		zg_upstream_format(&(struct zg_upstream_conf){.ep = rt->up[k].conf->ep}, name,
				   sizeof(name));
		rt->up[k].health = zg_route_stats_health(st, name, &rt->conf->connect);
	}
}

/* Does @prev already listen on @rt's address and interface? Its workers
 * keep that socket on a reload, so there is nothing to prove; and after a
 * switch to [gateway] user a probe could not share the root-owned socket's
 * port (SO_REUSEPORT asks for the same user). */
static int listen_served(const struct zg_snapshot *prev, const struct zg_route_rt *rt)
{
	for (unsigned k = 0; prev && k < prev->n_routes; k++) {
		const struct zg_route_rt *o = &prev->routes[k];
		if (o->listen.len == rt->listen.len &&
		    memcmp(&o->listen.ss, &rt->listen.ss, rt->listen.len) == 0 &&
		    strcmp(o->conf->interface, rt->conf->interface) == 0)
			return 1;
	}
	return 0;
}

/* The loaded store route @r verifies its peers against on one side
 * (@outbound), from @trusts (indexed like zg_conf_trust_index), or NULL if
 * it did not load. */
static const struct zg_tls_trust *side_trust(const struct zg_conf *c, const struct zg_conf_route *r,
					     struct zg_tls_trust *const *trusts, int outbound)
{
	return trusts[zg_conf_trust_index(c, zg_route_trust(c, r, outbound))];
}

static int build_route(struct zg_snapshot *s, const struct zg_snapshot *prev, unsigned i,
		       struct zg_tls_trust *const *trusts, zg_stats_lookup_fn stats, void *sctx,
		       struct zg_errlist *errs)
{
	const struct zg_conf *c = s->conf;
	const struct zg_conf_route *r = &c->routes[i];
	struct zg_route_rt *rt = &s->routes[i];
	const struct zg_tls_trust *tin = side_trust(c, r, trusts, 0);
	const struct zg_tls_trust *tout = side_trust(c, r, trusts, 1);
	char why[256];
	int fd, bad = 0;

	rt->conf = r;
	if (zg_route_tls_in(r) && (!tin || !(rt->tls_in = zg_tls_server_ctx(c, r, tin, errs))))
		bad = 1;
	if (zg_route_tls_out(r) && (!tout || !(rt->tls_out = zg_tls_client_ctx(c, r, tout, errs))))
		bad = 1;
	if (zg_resolve(&r->listen, 1, &rt->listen, 1, why, sizeof(why)) < 0) {
		zg_errlist_add(errs, c->path, r->line_listen, "listen", "route %s: %s:%s: %s", r->name,
			       r->listen.host, r->listen.port, why);
		return -1;
	}
	/* Bind once to prove the address is ours to take; the workers bind
	 * their own SO_REUSEPORT sockets next to it. */
	if (!listen_served(prev, rt)) {
		fd = zg_listen_socket(&rt->listen, r->interface, 0, why, sizeof(why));
		if (fd < 0) {
			zg_errlist_add(errs, c->path, r->line_listen, "listen",
				       "route %s: cannot bind %s:%s: %s", r->name, r->listen.host,
				       r->listen.port, why);
			return -1;
		}
		close(fd);
	}
	/* `check` names what does not resolve now; `run` serves the route and
	 * tries the name again after failures (DNS may come back). */
	if (resolve_upstream(rt, !stats, why, sizeof(why)) && !stats) {
		zg_errlist_add(errs, c->path, r->line_connect, "connect",
			       "route %s: %s (the endpoint does not resolve now)", r->name, why);
		bad = 1;
	}
	if (stats && !(rt->stats = stats(sctx, r->name))) {
		zg_errlist_add(errs, c->path, r->line, NULL, "route %s: too many routes", r->name);
		return -1;
	}
	if (rt->stats)
		bind_health(rt, rt->stats);
	return bad ? -1 : 0;
}

/* [admin] tls = on: a server context built exactly as an unwrap route's
 * (the identity [admin] names, a client certificate required and judged by
 * the anchors, CRLs and profile rules of the store it names; [tls]'s by
 * default), named "admin" in messages and keeping its sessions apart from
 * every route's. 0, or -1 reported. */
static int build_admin_tls(struct zg_snapshot *s, struct zg_tls_trust *const *trusts,
			   struct zg_errlist *errs)
{
	const struct zg_conf *c = s->conf;
	const struct zg_tls_trust *trust = trusts[zg_conf_trust_index(c, zg_admin_trust(c))];
	struct zg_conf_route *r;

	if (!c->admin.tls)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r) {
		zg_errlist_add(errs, c->path, c->admin.line_tls, "tls", "out of memory");
		return -1;
	}
	snprintf(r->name, sizeof(r->name), "admin");
	r->mode = ZG_MODE_UNWRAP;
	r->line = c->admin.line_tls;
	memcpy(r->listen_identity, c->admin.identity, sizeof(r->listen_identity));
	memcpy(r->listen_trust, c->admin.trust, sizeof(r->listen_trust));
	s->admin_tls = trust ? zg_tls_server_ctx(c, r, trust, errs) : NULL;
	free(r);
	return s->admin_tls ? 0 : -1;
}

static void snapshot_free(struct zg_snapshot *s)
{
	SSL_CTX_free(s->admin_tls);
	for (unsigned i = 0; s->routes && i < s->n_routes; i++) {
		SSL_CTX_free(s->routes[i].tls_in);
		SSL_CTX_free(s->routes[i].tls_out);
	}
	free(s->routes);
	free(s->dir_slots);
	zg_directory_unref(s->dir);
	zg_conf_free(s->conf);
	free(s);
}

/* The directory is part of the snapshot: a file that fails verification
 * refuses the whole reload, so the last good directory stays in force. */
static int load_directory(struct zg_snapshot *s, const struct zg_snapshot *prev,
			  struct zg_errlist *errs)
{
	const struct zg_conf_directory *cd = &s->conf->dir;
	struct zg_dir_floor floor;
	char why[ZG_DIR_PATH_MAX + 200];

	if (!cd->file[0])
		return 0;
	s->dir = zg_directory_load_conf(cd, s->conf->path, prev ? prev->dir : NULL, time(NULL), errs);
	if (!s->dir || !cd->state_file[0] || (prev && prev->dir))
		return s->dir ? 0 : -1;
	/* no directory in force (a start): the state file stands in for it */
	if (zg_directory_floor_read(cd->state_file, &floor, why, sizeof(why)) < 0 ||
	    zg_directory_check_floor(s->dir, &floor, why, sizeof(why)) != ZG_R_OK) {
		zg_errlist_add(errs, s->conf->path, cd->line_file, "file", "%s", why);
		return -1;
	}
	return 0;
}

/* Load every store some route side of @c uses into @trusts (indexed like
 * zg_conf_trust_index; unused ones stay NULL), each once, so every route
 * naming a store shares its X509_STORE and no other route sees it. An
 * identity or store no route uses is named in the log: a leftover
 * definition is more often a typo in a route than an intention. */
static void load_trusts(const struct zg_conf *c, struct zg_tls_trust **trusts,
			struct zg_errlist *errs)
{
	for (unsigned i = 0; i <= c->n_trusts; i++) {
		const struct zg_conf_trust *ct = i ? &c->trusts[i - 1] : &c->tls_trust;
		if (zg_conf_trust_used(c, ct))
			trusts[i] = zg_tls_trust_load(c, ct, errs);
		else if (i)
			zg_warn("event=conf_unused section=\"[trust %s]\" line=%d msg=\"no route uses "
				"this trust store\"", ct->name, ct->line);
	}
	for (unsigned i = 0; i < c->n_identities; i++)
		if (!zg_conf_identity_used(c, &c->identities[i]))
			zg_warn("event=conf_unused section=\"[identity %s]\" line=%d msg=\"no route "
				"presents this identity\"", c->identities[i].name, c->identities[i].line);
}

struct zg_snapshot *zg_snapshot_build(struct zg_conf *conf, const struct zg_snapshot *prev,
				      uint64_t generation, zg_stats_lookup_fn stats, void *stats_ctx,
				      struct zg_errlist *errs)
{
	struct zg_snapshot *s = calloc(1, sizeof(*s));
	size_t before = errs->n + errs->dropped;
	struct zg_tls_trust *trusts[ZG_TRUSTS_MAX + 1] = {0};

	if (!s) {
		zg_conf_free(conf);
		zg_errlist_add(errs, NULL, 0, NULL, "out of memory");
		return NULL;
	}
	s->conf = conf;
	s->generation = generation;
	s->tls_generation = generation;
	s->n_routes = conf->n_routes;
	s->routes = calloc(conf->n_routes ? conf->n_routes : 1, sizeof(*s->routes));
	if (!s->routes) {
		zg_errlist_add(errs, conf->path, 0, NULL, "out of memory");
		goto fail;
	}
	(void)load_directory(s, prev, errs);
	load_trusts(conf, trusts, errs);
	for (unsigned i = 0; i < conf->n_routes; i++)
		(void)build_route(s, prev, i, trusts, stats, stats_ctx, errs);
	(void)build_admin_tls(s, trusts, errs);
	for (unsigned i = 0; i <= ZG_TRUSTS_MAX; i++)
		zg_tls_trust_free(trusts[i]);
	if (errs->n + errs->dropped != before)
		goto fail;
	atomic_init(&s->refs, 1);
	return s;
fail:
	snapshot_free(s);
	return NULL;
}

static struct zg_conf *conf_dup(const struct zg_conf *c)
{
	struct zg_conf *d = malloc(sizeof(*d));

	if (!d)
		return NULL;
	*d = *c;
	d->routes = malloc((c->n_routes ? c->n_routes : 1) * sizeof(*d->routes));
	if (!d->routes) {
		free(d);
		return NULL;
	}
	memcpy(d->routes, c->routes, c->n_routes * sizeof(*d->routes));
	return d;
}

struct zg_snapshot *zg_snapshot_reresolve(const struct zg_snapshot *old, uint64_t generation,
					  int *changed)
{
	struct zg_snapshot *s = calloc(1, sizeof(*s));
	char why[256];

	if (!s)
		return NULL;
	s->conf = conf_dup(old->conf);
	s->routes = calloc(old->n_routes ? old->n_routes : 1, sizeof(*s->routes));
	if (!s->conf || !s->routes) {
		if (s->conf)
			zg_conf_free(s->conf);
		free(s->routes);
		free(s);
		return NULL;
	}
	s->generation = generation;
	s->tls_generation = old->tls_generation;
	s->n_routes = old->n_routes;
	s->dir = old->dir ? zg_directory_ref(old->dir) : NULL;
	s->admin_tls = old->admin_tls;
	if (s->admin_tls)
		SSL_CTX_up_ref(s->admin_tls);
	*changed = 0;
	for (unsigned i = 0; i < s->n_routes; i++) {
		struct zg_route_rt *rt = &s->routes[i];
		*rt = old->routes[i];
		rt->conf = &s->conf->routes[i];
		if (rt->tls_in)
			SSL_CTX_up_ref(rt->tls_in);
		if (rt->tls_out)
			SSL_CTX_up_ref(rt->tls_out);
		(void)resolve_upstream(rt, 0, why, sizeof(why));
		for (unsigned k = 0; k < rt->n_up; k++)
			if (rt->up[k].n_addr != old->routes[i].up[k].n_addr ||
			    memcmp(rt->up[k].addr, old->routes[i].up[k].addr,
				   rt->up[k].n_addr * sizeof(rt->up[k].addr[0])))
				*changed = 1;
	}
	atomic_init(&s->refs, 1);
	return s;
}

struct zg_snapshot *zg_snapshot_ref(struct zg_snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void zg_snapshot_unref(struct zg_snapshot *s)
{
	if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		snapshot_free(s);
}

const struct zg_route_rt *zg_snapshot_route(const struct zg_snapshot *s, const char *name)
{
	for (unsigned i = 0; i < s->n_routes; i++)
		if (strcmp(s->routes[i].conf->name, name) == 0)
			return &s->routes[i];
	return NULL;
}

static void plan_release(void *owner)
{
	zg_snapshot_unref(owner);
}

/* The hl7 check message of route @r into @store at *@used (room @cap):
 * the file's text, bounded, or NULL for the built-in one. Main thread. */
static const char *hl7_message(const struct zg_conf_route *r, char *store, size_t *used, size_t cap,
			       size_t *len)
{
	FILE *f;
	size_t n;

	*len = 0;
	if (r->check.kind != ZG_CHECK_HL7 || !r->check.hl7_message[0] || *used >= cap)
		return NULL;
	f = fopen(r->check.hl7_message, "re");
	if (!f) {
		zg_warn("event=health_check_note route=%s msg=\"cannot read health_hl7_message %s; "
			"using the built-in message\"", r->name, r->check.hl7_message);
		return NULL;
	}
	n = fread(store + *used, 1, cap - *used, f);
	fclose(f);
	*len = n;
	*used += n;
	return store + *used - n;
}

#define HL7_FILE_MAX (64 * 1024)

struct zg_check_plan *zg_snapshot_check_plan(struct zg_snapshot *s)
{
	struct zg_check_plan *p = calloc(1, sizeof(*p));
	unsigned n = 0, hl7_routes = 0;
	size_t used = 0;

	for (unsigned i = 0; i < s->n_routes; i++) {
		if (s->routes[i].conf->check.kind == ZG_CHECK_NONE || !s->routes[i].stats)
			continue;
		n += s->routes[i].n_up;
		hl7_routes += s->routes[i].conf->check.kind == ZG_CHECK_HL7;
	}
	if (!p || n == 0) {
		free(p);
		return NULL;
	}
	p->t = calloc(n, sizeof(*p->t));
	p->hl7_store = hl7_routes ? malloc((size_t)hl7_routes * HL7_FILE_MAX) : NULL;
	if (!p->t || (hl7_routes && !p->hl7_store)) {
		zg_err("event=health_check_failed error=no_memory");
		zg_check_plan_free(p);
		return NULL;
	}
	for (unsigned i = 0; i < s->n_routes; i++) {
		const struct zg_route_rt *rt = &s->routes[i];
		const struct zg_conf_route *r = rt->conf;
		size_t hl7_len = 0;
		const char *hl7;
		if (r->check.kind == ZG_CHECK_NONE || !rt->stats)
			continue;
		hl7 = hl7_message(r, p->hl7_store, &used, (size_t)hl7_routes * HL7_FILE_MAX, &hl7_len);
		for (unsigned k = 0; k < rt->n_up; k++) {
			struct zg_check_target *t = &p->t[p->n++];
			const struct zg_upstream_rt *u = &rt->up[k];
			t->route = r->name;
			t->check = &r->check;
			t->health = u->health;
			if (u->n_addr) {
				memcpy(&t->addr, &u->addr[0].ss, u->addr[0].len);
				t->addr_len = u->addr[0].len;
			}
			t->host = u->conf->ep.host;
			t->server_name = zg_upstream_server_name(r, u->conf);
			t->tls = rt->tls_out;
			t->dir = s->dir;
			t->peers = r->mode == ZG_MODE_WRAP ? &r->peers : NULL;
			t->hl7 = hl7;
			t->hl7_len = hl7_len;
		}
	}
	p->owner = zg_snapshot_ref(s);
	p->release = plan_release;
	return p;
}
