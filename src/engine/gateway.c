/* gateway.c - see gateway.h. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/clock.h"
#include "base/exit.h"
#include "base/log.h"
#include "base/reason.h"
#include "engine/gateway.h"
#include "engine/privs.h"
#include "engine/sandbox.h"
#include "keys/keys.h"
#include "tls/crlfetch.h"
#include "tls/ocsp.h"

#define RESOLVE_MIN_INTERVAL_MS 1000
#define MAIN_TICK_MS 500 /* the main loop turns at least this often */

static struct zg_route_stats *stats_lookup(void *ctx, const char *name)
{
	struct zg_gateway *gw = ctx;

	for (unsigned i = 0; i < gw->n_stats; i++)
		if (strcmp(gw->stats[i].name, name) == 0)
			return &gw->stats[i];
	if (gw->n_stats == sizeof(gw->stats) / sizeof(gw->stats[0]))
		return NULL;
	snprintf(gw->stats[gw->n_stats].name, sizeof(gw->stats[0].name), "%s", name);
	gw->stats[gw->n_stats].slot = gw->n_stats;
	return &gw->stats[gw->n_stats++];
}

/* 1 if route @r admits peers differently in @now than in @old: its
 * allowlist (allow_from, peers) or its TLS settings (docs/audit.md: those
 * are security configuration). A route that is new or gone is not: adding
 * or removing a listener is network configuration. */
static int route_security_changed(const struct zg_conf *old, const struct zg_conf_route *r)
{
	for (unsigned i = 0; i < old->n_routes; i++) {
		const struct zg_conf_route *o = &old->routes[i];
		if (strcmp(o->name, r->name) != 0)
			continue;
		return o->mode != r->mode || strcmp(o->server_name, r->server_name) != 0 ||
		       strcmp(o->profile, r->profile) != 0 ||
		       strcmp(o->min_version, r->min_version) != 0 ||
		       strcmp(o->max_version, r->max_version) != 0 ||
		       strcmp(o->tls13_suites, r->tls13_suites) != 0 ||
		       strcmp(o->tls12_ciphers, r->tls12_ciphers) != 0 ||
		       strcmp(o->groups, r->groups) != 0 || strcmp(o->sigalgs, r->sigalgs) != 0 ||
		       o->n_allow_from != r->n_allow_from ||
		       memcmp(o->allow_from, r->allow_from,
			      r->n_allow_from * sizeof(r->allow_from[0])) != 0 ||
		       o->peers.any != r->peers.any || o->peers.n != r->peers.n ||
		       memcmp(o->peers.id, r->peers.id, r->peers.n * sizeof(r->peers.id[0])) != 0;
	}
	return 0;
}

/* The audit record of a successful reload: 110129 Security Configuration
 * when [tls], [directory] or a route's allowlist or TLS settings changed,
 * else 110128 Network Configuration (docs/audit.md). */
static void audit_reload(struct zg_gateway *gw, const struct zg_conf *old, const struct zg_conf *now,
			 uint64_t generation)
{
	struct zg_audit_event ev;
	const char *route = NULL;
	int n;
	int security = memcmp(&old->tls, &now->tls, sizeof(old->tls)) != 0 ||
		       memcmp(&old->dir, &now->dir, sizeof(old->dir)) != 0;

	for (unsigned i = 0; i < now->n_routes && !route; i++)
		if (route_security_changed(old, &now->routes[i]))
			route = now->routes[i].name;
	if (!gw->fleet.audit)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = security || route ? ZG_AUDIT_CONFIG_CHANGE_SECURITY : ZG_AUDIT_CONFIG_CHANGE_NETWORK;
	n = snprintf(ev.detail, sizeof(ev.detail), "reload of %.120s: generation %llu, %u routes (was %u)%s",
		     now->path, (unsigned long long)generation, now->n_routes, old->n_routes,
		     security ? ", TLS/trust/directory settings changed" : "");
	if (route && n > 0 && (size_t)n < sizeof(ev.detail))
		(void)snprintf(ev.detail + n, sizeof(ev.detail) - (size_t)n,
			       ", route %s allowlist or TLS settings changed", route);
	(void)zg_audit_emit(gw->fleet.audit, &ev);
}

static void wake_workers(struct zg_gateway *gw)
{
	for (unsigned i = 0; i < gw->n_workers; i++)
		zg_worker_wake(&gw->workers[i]);
}

/* Give the health checker the checks of @s, starting it the first time a
 * route has any. */
static void update_checks(struct zg_gateway *gw, struct zg_snapshot *s)
{
	struct zg_check_plan *plan = zg_snapshot_check_plan(s);

	if (!plan && !gw->checker)
		return;
	if (!gw->checker && !(gw->checker = zg_checker_start(gw->fleet.audit))) {
		zg_check_plan_free(plan);
		return;
	}
	zg_checker_update(gw->checker, plan);
}

/* Swap in @s (taking over its reference) and tell the workers. */
static void publish(struct zg_gateway *gw, struct zg_snapshot *s)
{
	struct zg_snapshot *old;

	pthread_mutex_lock(&gw->fleet.snap_lock);
	old = gw->fleet.current;
	gw->fleet.current = s;
	pthread_mutex_unlock(&gw->fleet.snap_lock);
	zg_snapshot_unref(old);
	wake_workers(gw);
	update_checks(gw, s);
}

static void log_errors(const struct zg_errlist *errs)
{
	char q[ZG_ERRMSG_MAX + 16];

	for (size_t i = 0; i < errs->n; i++)
		zg_err("event=config_error msg=%s", zg_log_quote(q, sizeof(q), errs->msg[i]));
	if (errs->dropped)
		zg_err("event=config_error msg=\"%zu more errors\"", errs->dropped);
}

/* Give @s the gateway's per-participant counters (main thread, before
 * publishing): counts follow a participant id across directory reloads. */
static int bind_participants(struct zg_gateway *gw, struct zg_snapshot *s, struct zg_errlist *errs)
{
	if (!s->dir || zg_directory_count(s->dir) == 0)
		return 0;
	s->dir_slots = zg_dir_counters_bind(gw->dir_counters, s->dir);
	if (!s->dir_slots) {
		zg_errlist_add(errs, s->conf->path, 0, NULL, "directory: out of memory for counters");
		return -1;
	}
	return 0;
}

/* Keep the accepted directory's serial in [directory] state_file, so a
 * restart cannot bring back an older one. A failure is logged, not fatal:
 * the floor is a second line behind the signature and the serial check. */
static void remember_directory(const struct zg_snapshot *s)
{
	const char *path = s->conf->dir.state_file;
	char why[ZG_PATH_MAX + 200];

	if (!s->dir || !path[0])
		return;
	if (zg_directory_floor_write(path, s->dir, why, sizeof(why)) < 0)
		zg_warn("event=directory_state result=failed error=\"%s\"", why);
}

/* Seconds since local midnight: time windows are local clinic hours. */
static uint32_t local_tod(void)
{
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm))
		return 0;
	return (uint32_t)(tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
}

/* Make the classes of @s the ones in force (main thread, before
 * publishing @s). -1 with an error in @errs if the table is full. */
static int apply_classes(struct zg_gateway *gw, const struct zg_snapshot *s, struct zg_errlist *errs)
{
	const struct zg_conf *c = s->conf;

	if (zg_shape_apply(&gw->shape, c->classes, c->n_classes, &c->link, local_tod()) == 0)
		return 0;
	zg_errlist_add(errs, c->path, 0, NULL,
		       "class: more distinct class names than one process can hold (%d); restart",
		       ZG_CLASSES_MAX * 2);
	return -1;
}

/* [tls], every [identity] and the audit collector's key at once */
_Static_assert(ZG_KEYS_MAX >= ZG_IDENTITIES_MAX + 2, "the key process must hold every key");

/* Whether the audit trail sends over TLS and so signs with a client key. */
static int audit_uses_key(const struct zg_conf *conf)
{
	return conf->audit.syslog_target[0] && conf->audit.transport == ZG_AUDIT_TLS &&
	       conf->audit.key[0] && conf->audit.certificate[0];
}

/* Every distinct key file of @conf into @paths (at most ZG_KEYS_MAX): [tls]
 * key, then each [identity]'s, in file order, then the audit collector's
 * client key, so key ids stay put across a reload that changes nothing.
 * The count. */
static unsigned key_paths(const struct zg_conf *conf, char **paths)
{
	unsigned n = 0;

	for (unsigned i = 0; i <= conf->n_identities + 1; i++) {
		const char *k = i == conf->n_identities + 1 ? (audit_uses_key(conf) ? conf->audit.key : "")
				: i ? conf->identities[i - 1].key : conf->tls.key;
		unsigned j = 0;
		while (j < n && strcmp(paths[j], k) != 0)
			j++;
		if (k[0] && j == n && n < ZG_KEYS_MAX)
			paths[n++] = (char *)k;
	}
	return n;
}

/* Start the key process with the key files @conf names ([tls] key and every
 * [identity]'s: workers never map any of them), first load, so before any
 * worker exists or any peer's byte is read; or on a reload start one that
 * re-reads them (renewed keys), swapped in by zg_keys_commit() once the
 * snapshot is built. 0, or -1 with the reason in @errs. */
static int keys_prepare(struct zg_gateway *gw, const struct zg_conf *conf, struct zg_errlist *errs)
{
	char *paths[ZG_KEYS_MAX];
	char why[ZG_PATH_MAX + 200];
	int first = gw->fleet.current == NULL, rc;
	unsigned n = key_paths(conf, paths);

	if (!first && !conf->tls.key_process != !zg_keys_active())
		zg_warn("event=reload_note msg=\"[tls] key_process changes take effect on restart\"");
	if (!n || (first && !conf->tls.key_process) || (!first && !zg_keys_active()))
		return 0;
	rc = first ? zg_keys_start(paths, n, why, sizeof(why)) : zg_keys_refresh(paths, n, why, sizeof(why));
	if (rc < 0)
		zg_errlist_add(errs, conf->path, conf->tls.line_key, "key", "key process: %s", why);
	return rc;
}

/* Parse @path and build a snapshot from it; NULL with errors logged. */
static struct zg_snapshot *load(struct zg_gateway *gw, const char *path, struct zg_errlist *errs)
{
	struct zg_conf *conf = zg_conf_load(path, errs);

	struct zg_snapshot *s;

	if (!conf)
		return NULL;
	if (keys_prepare(gw, conf, errs) < 0) {
		zg_conf_free(conf);
		return NULL;
	}
	s = zg_snapshot_build(conf, gw->fleet.current, gw->generation + 1, stats_lookup, gw, errs);
	if (s && (bind_participants(gw, s, errs) < 0 || apply_classes(gw, s, errs) < 0)) {
		zg_snapshot_unref(s);
		s = NULL;
	}
	zg_keys_commit(s != NULL);
	if (s)
		remember_directory(s);
	return s;
}

/* Tell the control plane how a reload ended (@errs may be NULL). */
static void plane_reloaded(struct zg_gateway *gw, int ok, const struct zg_errlist *errs)
{
	if (gw->plane->ops && gw->plane->ops->reloaded)
		gw->plane->ops->reloaded(gw->plane->ctx, gw, ok, errs);
}

/* Tell the control plane of a turn in the process's life (@fn may be NULL). */
static void plane_event(struct zg_gateway *gw, void (*fn)(void *, struct zg_gateway *))
{
	if (fn)
		fn(gw->plane->ctx, gw);
}

/* The fetch thread replaced a CRL file: load it like a SIGHUP would. */
static void crl_fetched(void *arg)
{
	zg_gateway_want_reload(arg);
}

/* The OCSP thread replaced the staple file: load it like a SIGHUP would. */
static void staple_fetched(void *arg)
{
	zg_gateway_want_reload(arg);
}

/* Start, or after a reload restart, the [crl] fetch thread when what it
 * fetches or judges with changed. Stopping waits for a fetch in progress
 * (about a second: the transfer in progress is aborted): the main
 * thread, never a worker. */
static void crlfetch_follow(struct zg_gateway *gw, const struct zg_conf *old,
			    const struct zg_conf *now)
{
	if (old && old->n_crl_fetch == now->n_crl_fetch &&
	    memcmp(old->crl_fetch, now->crl_fetch, sizeof(now->crl_fetch)) == 0 &&
	    strcmp(old->tls.trust_anchors, now->tls.trust_anchors) == 0 &&
	    strcmp(old->tls.chain, now->tls.chain) == 0 && old->n_trusts == now->n_trusts &&
	    memcmp(old->trusts, now->trusts, sizeof(now->trusts)) == 0 &&
	    old->n_identities == now->n_identities &&
	    memcmp(old->identities, now->identities, sizeof(now->identities)) == 0)
		return;
	zg_crlfetch_stop(gw->crlfetch);
	gw->crlfetch = zg_crlfetch_start(now, crl_fetched, gw);
}

/* SIGHUP: all or nothing. A refused file leaves the old snapshot serving.
 * The directory's file stamp is taken before the load and kept only when
 * the load succeeds, so a directory change whose reload failed (for any
 * reason: the directory, or the configuration around it) is tried again
 * at the next poll. 0 on success, -1 if refused. */
static int reload(struct zg_gateway *gw)
{
	struct zg_errlist *errs = malloc(sizeof(*errs));
	struct zg_snapshot *s;
	struct zg_dir_stamp stamp;

	if (gw->plane->ops)
		plane_event(gw, gw->plane->ops->reloading);
	if (!errs) {
		zg_err("event=reload result=refused reason=no_memory");
		plane_reloaded(gw, 0, NULL);
		return -1;
	}
	zg_errlist_init(errs);
	(void)zg_directory_stamp(&gw->fleet.current->conf->dir, NULL, &stamp);
	s = load(gw, gw->conf_path, errs);
	if (!s) {
		log_errors(errs);
		zg_err("event=reload result=refused reason=%s errors=%zu generation=%llu",
		       zg_reason_code(ZG_R_CONF_SYNTAX), errs->n + errs->dropped,
		       (unsigned long long)gw->generation);
		plane_reloaded(gw, 0, errs);
		free(errs);
		return -1;
	}
	free(errs);
	/* the new file may name another directory: stamp the one now in force */
	if (strcmp(s->conf->dir.file, gw->fleet.current->conf->dir.file) != 0 ||
	    strcmp(s->conf->dir.signature, gw->fleet.current->conf->dir.signature) != 0)
		(void)zg_directory_stamp(&s->conf->dir, NULL, &stamp);
	gw->dir_stamp = stamp;
	audit_reload(gw, gw->fleet.current->conf, s->conf, s->generation);
	if (strcmp(gw->fleet.current->conf->gw.user, s->conf->gw.user) != 0)
		zg_warn("event=reload_note msg=\"[gateway] user changes take effect on restart\"");
	if (memcmp(&gw->fleet.current->conf->audit, &s->conf->audit, sizeof(s->conf->audit)) != 0)
		zg_warn("event=reload_note msg=\"[audit] changes take effect on restart\"");
	gw->generation = s->generation;
	crlfetch_follow(gw, gw->fleet.current->conf, s->conf);
	zg_ocsp_configure(gw->fleet.ocsp, s->conf);
	zg_log_set_level(s->conf->gw.log_level);
	if (s->conf->gw.workers && s->conf->gw.workers != gw->n_workers)
		zg_warn("event=reload_note msg=\"workers changes on restart only\"");
	publish(gw, s);
	zg_info("event=reload result=ok generation=%llu routes=%u", (unsigned long long)s->generation,
		s->n_routes);
	plane_reloaded(gw, 1, NULL);
	return 0;
}

void zg_gateway_want_reload(struct zg_gateway *gw)
{
	if (atomic_exchange(&gw->reload_wanted, 1) == 0)
		zg_fleet_ring(&gw->fleet);
}


static void reresolve(struct zg_gateway *gw)
{
	uint64_t now = zg_now_ms();
	struct zg_snapshot *cur, *s;
	int changed = 0;

	if (now - gw->last_resolve_ms < RESOLVE_MIN_INTERVAL_MS)
		return; /* the flag stays set: retried on the next wake-up or tick */
	atomic_store(&gw->fleet.resolve_wanted, 0);
	gw->last_resolve_ms = now;
	cur = zg_fleet_snapshot(&gw->fleet);
	s = zg_snapshot_reresolve(cur, gw->generation + 1, &changed);
	zg_snapshot_unref(cur);
	if (s && !changed) {
		/* same addresses: nothing to publish, no worker to wake */
		zg_snapshot_unref(s);
		zg_info("event=resolve result=unchanged generation=%llu",
			(unsigned long long)gw->generation);
		return;
	}
	if (s && s->dir && zg_directory_count(s->dir) &&
	    !(s->dir_slots = zg_dir_counters_bind(gw->dir_counters, s->dir))) {
		zg_snapshot_unref(s);
		s = NULL;
	}
	if (!s) {
		zg_err("event=resolve result=failed reason=no_memory");
		return;
	}
	gw->generation = s->generation;
	publish(gw, s);
	zg_info("event=resolve result=ok generation=%llu", (unsigned long long)s->generation);
}

static void dir_poll(struct zg_gateway *gw)
{
	const struct zg_conf_directory *d = &gw->fleet.current->conf->dir;
	uint64_t now = zg_now_ms();
	struct zg_dir_stamp stamp;

	if (!d->file[0] || !d->reload_interval_ms || now < gw->next_dir_poll_ms)
		return;
	gw->next_dir_poll_ms = now + d->reload_interval_ms;
	/* a change means a newly published directory, or a half-written one
	 * that fails its signature: reload() keeps the stamp only on success,
	 * so a failed reload is retried at the next poll */
	if (!zg_directory_stamp(d, &gw->dir_stamp, &stamp))
		return;
	zg_info("event=directory_changed file=%s", d->file);
	(void)reload(gw);
}

static void on_signal(struct zg_gateway *gw, int signo)
{
	int state = atomic_load(&gw->fleet.state);

	if (signo == SIGHUP) {
		if (state == ZG_GW_RUNNING)
			(void)reload(gw);
		return;
	}
	if (state == ZG_GW_RUNNING) {
		unsigned ms = gw->fleet.current->conf->gw.drain_timeout_ms;
		atomic_store(&gw->fleet.drain_deadline_ms, zg_now_ms() + ms);
		atomic_store(&gw->fleet.state, ZG_GW_DRAINING);
		zg_info("event=draining signal=%s deadline_ms=%u active=%u", signo == SIGINT ? "INT" : "TERM",
			ms, atomic_load(&gw->fleet.active_total));
		if (gw->plane->ops)
			plane_event(gw, gw->plane->ops->draining);
	} else {
		atomic_store(&gw->fleet.state, ZG_GW_STOPPING);
		zg_info("event=stopping signal=%s active=%u", signo == SIGINT ? "INT" : "TERM",
			atomic_load(&gw->fleet.active_total));
	}
	wake_workers(gw);
}

static int signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	/* Writes to a reset peer return EPIPE; relay.c uses MSG_NOSIGNAL and
	 * OpenSSL writes through it, but ignore SIGPIPE for any other path. */
	signal(SIGPIPE, SIG_IGN);
	return pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* The control plane's turn; the ms the loop may sleep before the next. */
static int plane_tick(struct zg_gateway *gw)
{
	uint64_t want;

	if (!gw->plane->ops || !gw->plane->ops->tick)
		return MAIN_TICK_MS;
	want = gw->plane->ops->tick(gw->plane->ctx, gw, zg_now_ms());
	return want < MAIN_TICK_MS ? (int)want : MAIN_TICK_MS;
}

static void main_loop(struct zg_gateway *gw, int sigfd)
{
	struct pollfd pfd[2] = {{.fd = sigfd, .events = POLLIN},
				{.fd = gw->fleet.main_wake_fd, .events = POLLIN}};

	while (atomic_load(&gw->fleet.workers_running) > 0) {
		int n = poll(pfd, 2, plane_tick(gw));
		if (n < 0 && errno != EINTR) {
			zg_err("event=poll_failed error=%s", strerror(errno));
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				on_signal(gw, (int)si.ssi_signo);
		}
		if (n > 0 && (pfd[1].revents & POLLIN)) {
			uint64_t v;
			if (read(gw->fleet.main_wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				zg_err("event=wake_failed worker=main error=%s", strerror(errno));
		}
		zg_keys_tick(zg_now_ms());
		if (atomic_exchange(&gw->reload_wanted, 0) && atomic_load(&gw->fleet.state) == ZG_GW_RUNNING)
			(void)reload(gw);
		if (atomic_load(&gw->fleet.resolve_wanted) && atomic_load(&gw->fleet.state) == ZG_GW_RUNNING)
			reresolve(gw);
		if (atomic_load(&gw->fleet.state) == ZG_GW_RUNNING) {
			const struct zg_conf *c;
			dir_poll(gw); /* may reload: read the configuration in force after it */
			c = gw->fleet.current->conf;
			(void)zg_shape_tick(&gw->shape, c->classes, c->n_classes, local_tod());
		}
	}
}

static unsigned worker_count(const struct zg_conf *c, unsigned override)
{
	long n;

	if (override)
		return override;
	if (c->gw.workers)
		return c->gw.workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* Each relayed connection holds two descriptors: take every descriptor the
 * hard limit allows, so max_connections, not the soft limit, decides. */
static void raise_fd_limit(unsigned max_connections)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < 2ull * max_connections + 64)
		zg_warn("event=fd_limit limit=%llu needed=%llu msg=\"raise LimitNOFILE\"",
			(unsigned long long)rl.rlim_cur, 2ull * max_connections + 64);
}

static int start_workers(struct zg_gateway *gw, unsigned n)
{
	gw->workers = calloc(n, sizeof(*gw->workers));
	if (!gw->workers)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		gw->workers[i].epfd = gw->workers[i].wake_fd = gw->workers[i].reserve_fd = -1;
		if (zg_worker_init(&gw->workers[i], i, &gw->fleet, gw->fleet.current) < 0) {
			gw->n_workers = i + 1;
			return -1;
		}
		gw->n_workers = i + 1;
	}
	for (unsigned i = 0; i < n; i++) {
		atomic_fetch_add(&gw->fleet.workers_running, 1);
		if (pthread_create(&gw->workers[i].thread, NULL, zg_worker_main, &gw->workers[i]) != 0) {
			atomic_fetch_sub(&gw->fleet.workers_running, 1);
			zg_err("event=worker_failed worker=%u error=pthread_create", i);
			gw->n_workers = i;
			return -1;
		}
	}
	return 0;
}

/* The audit collector's TLS client key as a key-process handle in @out, so
 * that with the key process on the gateway maps no private key at all;
 * NULL when there is no key process or no TLS collector (the sink then
 * reads the file). 0, or -1 with the reason in @errs. */
static int audit_client_key(const struct zg_conf *c, EVP_PKEY **out, struct zg_errlist *errs)
{
	char why[ZG_PATH_MAX + 200];
	X509 *cert = NULL;
	FILE *f;

	*out = NULL;
	if (!zg_keys_active() || !audit_uses_key(c))
		return 0;
	if ((f = fopen(c->audit.certificate, "re"))) {
		cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!cert) {
		zg_errlist_add(errs, c->path, 0, "syslog_certificate", "%s: no PEM certificate",
			       c->audit.certificate);
		return -1;
	}
	*out = zg_keys_pkey(c->audit.key, X509_get0_pubkey(cert), why, sizeof(why));
	X509_free(cert);
	if (!*out) {
		zg_errlist_add(errs, c->path, 0, "syslog_key", "key process: %s", why);
		return -1;
	}
	return 0;
}

/* The audit trail starts before the first connection and stops after the
 * last, so that every connection's records are in it. */
static int audit_start(struct zg_gateway *gw, struct zg_errlist *errs)
{
	const struct zg_conf *c = gw->fleet.current->conf;
	EVP_PKEY *key;

	if (!c->audit.syslog_target[0] && !c->audit.file[0]) {
		zg_warn("event=audit_disabled detail=\"no [audit] syslog_target or file: no audit "
			"trail is kept\"");
		return 0;
	}
	if (audit_client_key(c, &key, errs) == 0) {
		gw->fleet.audit = zg_audit_start(&c->audit, c->gw.name, key, errs);
		EVP_PKEY_free(key); /* the sink's SSL_CTX holds its own reference */
	}
	if (!gw->fleet.audit) {
		zg_errlist_print(errs, stderr);
		zg_err("event=start result=refused reason=audit errors=%zu", errs->n + errs->dropped);
		return -1;
	}
	return 0;
}

static void stop_workers(struct zg_gateway *gw, unsigned started)
{
	atomic_store(&gw->fleet.state, ZG_GW_STOPPING);
	wake_workers(gw);
	for (unsigned i = 0; i < started; i++)
		pthread_join(gw->workers[i].thread, NULL);
	for (unsigned i = 0; i < gw->n_workers; i++)
		zg_worker_fini(&gw->workers[i]);
	free(gw->workers);
}

/* [gateway] user: look the user up before anything starts (a missing user
 * refuses the start, rather than a gateway that would keep running as root).
 * 0, 1 with @p filled when there is a user to become, -1 refused. */
static int user_lookup(const struct zg_conf *c, struct zg_privs *p)
{
	char why[ZG_NAME_MAX + 64];

	if (!c->gw.user[0])
		return 0;
	if (zg_privs_lookup(c->gw.user, p, why, sizeof(why)) == 0)
		return 1;
	zg_err("event=start result=refused reason=user error=\"%s\"", why);
	return -1;
}

/* Become the configured user, every thread, once the listeners, control
 * sockets, audit trail and key process exist. -1 if the switch failed: the
 * process stops, rather than run half changed. */
static int user_switch(const struct zg_conf *c, const struct zg_privs *p)
{
	char why[128];

	if (zg_privs_drop(p, why, sizeof(why)) < 0) {
		zg_err("event=start result=failed reason=user user=%s error=\"%s\"", c->gw.user, why);
		return -1;
	}
	zg_info("event=user user=%s uid=%u gid=%u groups=%d", c->gw.user, (unsigned)p->uid,
		(unsigned)p->gid, p->n_groups);
	return 0;
}

/* Start the control plane once the workers serve. -1 if it refused. */
static int plane_start(struct zg_gateway *gw)
{
	if (!gw->plane->ops || !gw->plane->ops->start)
		return 0;
	return gw->plane->ops->start(gw->plane->ctx, gw);
}

int zg_gateway_run(const char *conf_path, unsigned workers_override, const struct zg_plane *plane)
{
	static const struct zg_plane no_plane;
	struct zg_gateway *gw = calloc(1, sizeof(*gw));
	struct zg_errlist *errs = malloc(sizeof(*errs));
	sigset_t set;
	struct zg_privs privs;
	char why[128];
	int sigfd = -1, rc = ZG_EXIT_RUNTIME, switch_user;
	unsigned n;

	if (!gw || !errs)
		goto out;
	snprintf(gw->conf_path, sizeof(gw->conf_path), "%s", conf_path);
	gw->plane = plane ? plane : &no_plane;
	if (pthread_mutex_init(&gw->fleet.snap_lock, NULL) != 0) {
		free(errs);
		free(gw);
		return ZG_EXIT_RUNTIME;
	}
	gw->fleet.main_wake_fd = -1;
	zg_shape_init(&gw->shape);
	gw->fleet.shape = &gw->shape;
	zg_errlist_init(errs);
	if (!(gw->dir_counters = zg_dir_counters_new()))
		goto out;
	gw->fleet.current = load(gw, conf_path, errs);
	if (!gw->fleet.current) {
		zg_errlist_print(errs, stderr);
		zg_err("event=start result=refused reason=%s errors=%zu", zg_reason_code(ZG_R_CONF_SYNTAX),
		       errs->n + errs->dropped);
		rc = ZG_EXIT_CONFIG;
		goto out;
	}
	if ((switch_user = user_lookup(gw->fleet.current->conf, &privs)) < 0) {
		rc = ZG_EXIT_CONFIG;
		goto out;
	}
	gw->generation = gw->fleet.current->generation;
	zg_log_set_level(gw->fleet.current->conf->gw.log_level);
	(void)zg_directory_stamp(&gw->fleet.current->conf->dir, NULL, &gw->dir_stamp);
	if (signals_block(&set) != 0 || (sigfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0 ||
	    (gw->fleet.main_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		zg_err("event=start result=failed error=%s", strerror(errno));
		goto out;
	}
	if (audit_start(gw, errs) < 0) {
		rc = ZG_EXIT_CONFIG;
		goto out;
	}
	gw->fleet.sandbox = gw->fleet.current->conf->gw.sandbox;
	if (gw->fleet.sandbox && zg_sandbox_prepare(why, sizeof(why)) < 0) {
		zg_err("event=start result=failed reason=sandbox error=\"%s\"", why);
		goto out;
	}
	/* the workers ask it for peers' OCSP answers: it exists before them */
	if (!(gw->fleet.ocsp = zg_ocsp_start(staple_fetched, gw)))
		goto out;
	raise_fd_limit(gw->fleet.current->conf->gw.max_connections);
	n = worker_count(gw->fleet.current->conf, workers_override);
	if (start_workers(gw, n) < 0) {
		zg_err("event=start result=failed reason=listeners");
		stop_workers(gw, atomic_load(&gw->fleet.workers_running));
		goto out;
	}
	gw->started_ms = zg_now_ms();
	zg_info("event=ready routes=%u workers=%u generation=%llu name=%s", gw->fleet.current->n_routes, n,
		(unsigned long long)gw->generation, gw->fleet.current->conf->gw.name);
	if (plane_start(gw) < 0) {
		zg_err("event=start result=failed reason=control_plane");
		plane_event(gw, gw->plane->ops->stop);
		stop_workers(gw, gw->n_workers);
		goto out;
	}
	if (switch_user && user_switch(gw->fleet.current->conf, &privs) < 0) {
		plane_event(gw, gw->plane->ops ? gw->plane->ops->stop : NULL);
		stop_workers(gw, gw->n_workers);
		goto out;
	}
	update_checks(gw, gw->fleet.current);
	crlfetch_follow(gw, NULL, gw->fleet.current->conf);
	zg_ocsp_configure(gw->fleet.ocsp, gw->fleet.current->conf);
	main_loop(gw, sigfd);
	zg_checker_stop(gw->checker);
	gw->checker = NULL;
	/* the plane reads the workers: it stops before they are freed */
	plane_event(gw, gw->plane->ops ? gw->plane->ops->stop : NULL);
	stop_workers(gw, gw->n_workers);
	zg_audit_stop(gw->fleet.audit);
	gw->fleet.audit = NULL;
	zg_info("event=stopped");
	rc = ZG_EXIT_OK;
out:
	if (sigfd >= 0)
		close(sigfd);
	if (gw && gw->plane && gw->plane->ops) /* a plane that never started: a no-op */
		plane_event(gw, gw->plane->ops->stop);
	if (gw) {
		zg_checker_stop(gw->checker);
		zg_crlfetch_stop(gw->crlfetch);
		zg_ocsp_stop(gw->fleet.ocsp); /* after the workers, who ask it */
		zg_audit_stop(gw->fleet.audit);
		if (gw->fleet.main_wake_fd >= 0)
			close(gw->fleet.main_wake_fd);
		zg_snapshot_unref(gw->fleet.current);
		zg_dir_counters_free(gw->dir_counters);
		zg_keys_stop(); /* after every SSL_CTX that signs through it */
		pthread_mutex_destroy(&gw->fleet.snap_lock);
	}
	free(errs);
	free(gw);
	return rc;
}
