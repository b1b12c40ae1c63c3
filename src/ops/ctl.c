/* ctl.c - see ctl.h. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/clock.h"
#include "base/log.h"
#include "ops/ctl.h"
#include "ops/loop.h"
#include "ops/out.h"
#include "ops/override.h"
#include "audit/audit.h"
#include "base/relax.h"

#define CONNS_MAX 4096           /* connections one `conns` lists */
#define ASK_TIMEOUT_MS 2000      /* a worker that does not answer in this is reported */
#define RELOAD_TIMEOUT_MS 120000
#define SEND_TIMEOUT_MS 2000     /* a client that does not read its answer is dropped */
#define RELOAD_ERRS_MAX 4096
#define ARGS_MAX 64 /* an override's --reason is the rest of the line */

struct client {
	int fd;                      /* -1: free slot */
	char buf[ZG_CTL_REQ_MAX];
	size_t len;
	uint64_t deadline_ms;
	struct ucred cred;
	char user[64];
};

struct zg_ctl {
	struct zg_gateway *gw;
	char path[ZG_CTL_PATH_MAX];
	int fd, stop_fd;
	pthread_t thread;
	int thread_started;
	struct client clients[ZG_CTL_CLIENTS_MAX];
	/* a reload's outcome, from the main thread (zg_ctl_reloaded) */
	pthread_mutex_t lock;
	pthread_cond_t reloaded;
	uint64_t reload_seq;
	int stopping;                /* zg_ctl_stop: a waiting reload gives up */
	int reload_ok;
	uint64_t reload_gen;
	char reload_errs[RELOAD_ERRS_MAX];
	size_t reload_n_errs;
	/* routes this plane drained (the workers hold them closed) */
	char drained[ZG_DRAINED_MAX][ZG_NAME_MAX];
	unsigned n_drained;
	/* emergency overrides in force: this thread's; workers get copies */
	struct zg_overrides ovr;
	struct zg_ovr_board *board;  /* where ovr is published for the metrics */
};

/* ---- the answer to each command ----------------------------------------- */

/* What a command handler gets: the parsed request and where to answer. */
struct req {
	struct zg_ctl *ctl;
	const struct client *cl;
	int json;
	int argc;
	char *argv[ARGS_MAX];
	int ok;                      /* the status line: ok or error */
	struct zg_out text;             /* the answer (text mode) */
	json_t *obj;                 /* the answer (json mode) */
};

/* Fail @r with @msg (both modes). */
static void __attribute__((format(printf, 2, 3))) fail(struct req *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->ok = 0;
	if (r->json) {
		json_decref(r->obj);
		r->obj = json_pack("{s:s}", "error", msg);
	} else {
		zg_out_printf(&r->text, "error: %s\n", msg);
	}
}

static const char *state_name(int state)
{
	return state == ZG_GW_RUNNING ? "serving" : state == ZG_GW_DRAINING ? "draining" : "stopping";
}

static int is_drained(const struct zg_ctl *ctl, const char *route)
{
	for (unsigned i = 0; i < ctl->n_drained; i++)
		if (strcmp(ctl->drained[i], route) == 0)
			return 1;
	return 0;
}

/* Seconds left of override @e now. */
static unsigned long long left_s(const struct zg_ovr_entry *e)
{
	uint64_t now = zg_now_ms();

	return e->until_ms > now ? (unsigned long long)((e->until_ms - now + 999) / 1000) : 0;
}

static json_t *overrides_json(const struct zg_ctl *ctl)
{
	json_t *arr = json_array();
	char rx[96];

	for (unsigned i = 0; arr && i < ctl->ovr.n; i++) {
		const struct zg_ovr_entry *e = &ctl->ovr.e[i];
		json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,s:s,s:I,s:s}", "route", e->route,
			"relaxed", zg_relax_format(e->relax, rx, sizeof(rx)), "seconds_left",
			(json_int_t)left_s(e), "seconds", (json_int_t)e->duration_s, "user", e->user, "uid",
			(json_int_t)e->uid, "reason", e->reason));
	}
	return arr ? arr : json_array();
}

static void overrides_text(const struct zg_ctl *ctl, struct zg_out *o)
{
	char rx[96];

	for (unsigned i = 0; i < ctl->ovr.n; i++) {
		const struct zg_ovr_entry *e = &ctl->ovr.e[i];
		zg_out_printf(o, "%sEMERGENCY OVERRIDE on route %s: relaxing %s, %llus left of %us, by %s "
			      "(uid %u): %s\n", i ? "" : "\n", e->route,
			      zg_relax_format(e->relax, rx, sizeof(rx)), left_s(e), e->duration_s, e->user,
			      e->uid, e->reason);
	}
}

/* status: version, generation, uptime, workers, connections, routes. */
static void cmd_status(struct req *r)
{
	struct zg_gateway *gw = r->ctl->gw;
	struct zg_snapshot *s = zg_fleet_snapshot(&gw->fleet);
	uint64_t up = (zg_now_ms() - gw->started_ms) / 1000;
	int state = atomic_load(&gw->fleet.state);
	unsigned active = atomic_load(&gw->fleet.active_total);
	json_t *routes = json_array();

	if (!r->json)
		zg_out_printf(&r->text,
			   "zonegate %s, name %s, pid %ld\n%s: generation %llu, up %llus, %u workers, "
			   "%u connections\n\n%-20s %-7s %-22s %7s %9s %9s  %s\n",
			   ZG_VERSION, s->conf->gw.name, (long)getpid(), state_name(state),
			   (unsigned long long)s->generation, (unsigned long long)up, gw->n_workers, active,
			   "ROUTE", "MODE", "LISTEN", "ACTIVE", "ACCEPTED", "REFUSED", "STATE");
	for (unsigned i = 0; i < s->n_routes; i++) {
		const struct zg_route_rt *rt = &s->routes[i];
		char a[64];
		unsigned act = rt->stats ? atomic_load(&rt->stats->active) : 0;
		unsigned long acc = rt->stats ? atomic_load(&rt->stats->accepted) : 0;
		unsigned long ref = rt->stats ? atomic_load(&rt->stats->refused) : 0;
		const char *rs = is_drained(r->ctl, rt->conf->name) ? "drained" : "serving";

		zg_sockaddr_format((const struct sockaddr *)&rt->listen.ss, a, sizeof(a));
		if (r->json && routes)
			json_array_append_new(routes, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s}",
				"name", rt->conf->name, "mode", zg_mode_name(rt->conf->mode), "listen", a,
				"active", (json_int_t)act, "accepted", (json_int_t)acc, "refused",
				(json_int_t)ref, "state", rs));
		else if (!r->json)
			zg_out_printf(&r->text, "%-20s %-7s %-22s %7u %9lu %9lu  %s\n", rt->conf->name,
				   zg_mode_name(rt->conf->mode), a, act, acc, ref, rs);
	}
	if (r->json) {
		r->obj = json_pack("{s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:o,s:o}", "version", ZG_VERSION,
				   "name", s->conf->gw.name, "pid", (json_int_t)getpid(), "state",
				   state_name(state), "generation", (json_int_t)s->generation, "uptime_s",
				   (json_int_t)up, "workers", (json_int_t)gw->n_workers, "connections",
				   (json_int_t)active, "routes", routes ? routes : json_array(), "overrides",
				   overrides_json(r->ctl));
	} else {
		json_decref(routes);
		overrides_text(r->ctl, &r->text);
	}
	zg_snapshot_unref(s);
}

static void conn_text(struct zg_out *o, const struct zg_conn_info *c)
{
	char id[48];

	snprintf(id, sizeof(id), "%u.%llu", c->worker, (unsigned long long)c->id);
	zg_out_printf(o, "%-10s %-16s %-13s %-22s %-16s %10llu %10llu %7.1f  %s\n", id, c->route, c->state,
		   c->peer, c->participant[0] ? c->participant : "-", (unsigned long long)c->bytes_in,
		   (unsigned long long)c->bytes_out, (double)c->age_ms / 1000.0,
		   c->subject[0] ? c->subject : "-");
}

static json_t *conn_json(const struct zg_conn_info *c)
{
	char id[48];

	snprintf(id, sizeof(id), "%u.%llu", c->worker, (unsigned long long)c->id);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "id", id, "route", c->route, "state",
			 c->state, "peer", c->peer, "participant", c->participant, "subject", c->subject,
			 "bytes_in", (json_int_t)c->bytes_in, "bytes_out", (json_int_t)c->bytes_out,
			 "age_ms", (json_int_t)c->age_ms);
}

/* conns [--route R]: every worker lists its own connections. */
static void cmd_conns(struct req *r)
{
	struct zg_gateway *gw = r->ctl->gw;
	struct zg_conn_info *all = calloc(CONNS_MAX, sizeof(*all));
	unsigned n = 0, more = 0, silent = 0;
	struct zg_ask a;
	json_t *arr = NULL;

	if (!all) {
		fail(r, "out of memory");
		return;
	}
	memset(&a, 0, sizeof(a));
	a.kind = ZG_ASK_CONNS;
	if (r->argc == 3 && strcmp(r->argv[1], "--route") == 0) {
		snprintf(a.route, sizeof(a.route), "%s", r->argv[2]);
	} else if (r->argc != 1) {
		fail(r, "usage: conns [--route ROUTE]");
		goto out;
	}
	for (unsigned i = 0; i < gw->n_workers; i++) {
		a.out = all + n;
		a.cap = CONNS_MAX - n;
		if (zg_worker_ask(&gw->workers[i], &a, ASK_TIMEOUT_MS) < 0) {
			silent++;
			continue;
		}
		n += a.n;
		more += a.more;
	}
	if (r->json) {
		arr = json_array();
		for (unsigned i = 0; arr && i < n; i++)
			json_array_append_new(arr, conn_json(&all[i]));
		r->obj = json_pack("{s:o,s:I,s:I}", "connections", arr ? arr : json_array(), "not_listed",
				   (json_int_t)more, "workers_not_answering", (json_int_t)silent);
		goto out;
	}
	zg_out_printf(&r->text, "%-10s %-16s %-13s %-22s %-16s %10s %10s %7s  %s\n", "ID", "ROUTE", "STATE",
		   "PEER", "PARTICIPANT", "BYTES_IN", "BYTES_OUT", "AGE_S", "SUBJECT");
	for (unsigned i = 0; i < n; i++)
		conn_text(&r->text, &all[i]);
	zg_out_printf(&r->text, "%u connections", n);
	if (more)
		zg_out_printf(&r->text, " (%u more not listed)", more);
	if (silent)
		zg_out_printf(&r->text, "; %u workers did not answer within %u ms", silent, ASK_TIMEOUT_MS);
	zg_out_printf(&r->text, "\n");
out:
	free(all);
}

/* kill W.N: the worker that owns the connection closes it. */
static void cmd_kill(struct req *r)
{
	struct zg_gateway *gw = r->ctl->gw;
	unsigned long wi;
	unsigned long long id;
	char *end;
	struct zg_ask a;

	if (r->argc != 2) {
		fail(r, "usage: kill ID (as `conns` shows it, WORKER.NUMBER)");
		return;
	}
	errno = 0;
	wi = strtoul(r->argv[1], &end, 10);
	if (errno || end == r->argv[1] || *end != '.' || wi >= gw->n_workers) {
		fail(r, "bad connection id '%.64s' (WORKER.NUMBER, as `conns` shows it)", r->argv[1]);
		return;
	}
	id = strtoull(end + 1, &end, 10);
	if (errno || *end || id == 0) {
		fail(r, "bad connection id '%.64s' (WORKER.NUMBER, as `conns` shows it)", r->argv[1]);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.kind = ZG_ASK_KILL;
	a.id = id;
	snprintf(a.detail, sizeof(a.detail), "zonegate ctl kill by uid %u (%s)", (unsigned)r->cl->cred.uid,
		 r->cl->user);
	if (zg_worker_ask(&gw->workers[wi], &a, ASK_TIMEOUT_MS) < 0) {
		fail(r, "worker %lu did not answer within %u ms", wi, ASK_TIMEOUT_MS);
		return;
	}
	if (!a.found) {
		fail(r, "no live connection %lu.%llu", wi, id);
		return;
	}
	if (r->json)
		r->obj = json_pack("{s:s,s:s}", "closed", r->argv[1], "reason", "operator_closed");
	else
		zg_out_printf(&r->text, "closed %lu.%llu (reason=operator_closed)\n", wi, id);
}

/* drain ROUTE: every worker closes the route's listeners and keeps them
 * closed (also across reloads); its live connections go on. */
static void cmd_drain(struct req *r)
{
	struct zg_ctl *ctl = r->ctl;
	struct zg_gateway *gw = ctl->gw;
	struct zg_snapshot *s;
	unsigned silent = 0;
	struct zg_ask a;
	int known;

	if (r->argc != 2) {
		fail(r, "usage: drain ROUTE");
		return;
	}
	s = zg_fleet_snapshot(&gw->fleet);
	known = zg_snapshot_route(s, r->argv[1]) != NULL;
	zg_snapshot_unref(s);
	if (!known) {
		fail(r, "no route '%.64s'", r->argv[1]);
		return;
	}
	if (!is_drained(ctl, r->argv[1]) && ctl->n_drained == ZG_DRAINED_MAX) {
		fail(r, "already %u routes drained (the most there can be)", ZG_DRAINED_MAX);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.kind = ZG_ASK_DRAIN;
	snprintf(a.route, sizeof(a.route), "%s", r->argv[1]);
	for (unsigned i = 0; i < gw->n_workers; i++)
		if (zg_worker_ask(&gw->workers[i], &a, ASK_TIMEOUT_MS) < 0)
			silent++;
	if (!is_drained(ctl, r->argv[1]))
		snprintf(ctl->drained[ctl->n_drained++], ZG_NAME_MAX, "%s", r->argv[1]);
	zg_warn("event=route_drained route=%s uid=%u user=%s", r->argv[1], (unsigned)r->cl->cred.uid,
		r->cl->user);
	if (silent) {
		fail(r, "route %.64s drained on %u of %u workers; %u did not answer", r->argv[1],
		     gw->n_workers - silent, gw->n_workers, silent);
		return;
	}
	if (r->json)
		r->obj = json_pack("{s:s,s:s}", "route", r->argv[1], "state", "drained");
	else
		zg_out_printf(&r->text,
			   "route %s drained: no new connections (until restart); live connections go on\n",
			   r->argv[1]);
}

/* The answer to a refused reload: every error (ctl->lock held). */
static void reload_refused(struct req *r)
{
	struct zg_ctl *ctl = r->ctl;
	json_t *arr;
	char *save = NULL, *copy;

	r->ok = 0;
	if (!r->json) {
		zg_out_printf(&r->text,
			      "error: reload refused, %zu errors; generation %llu keeps serving\n%s\n",
			   ctl->reload_n_errs, (unsigned long long)ctl->reload_gen, ctl->reload_errs);
		return;
	}
	arr = json_array();
	copy = strdup(ctl->reload_errs);
	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l && arr; l = strtok_r(NULL, "\n", &save))
		json_array_append_new(arr, json_string(l));
	free(copy);
	r->obj = json_pack("{s:s,s:I,s:I,s:o}", "error", "reload refused", "generation",
			   (json_int_t)ctl->reload_gen, "error_count", (json_int_t)ctl->reload_n_errs,
			   "errors", arr ? arr : json_array());
}

/* reload: as SIGHUP, answered with the result and every error. */
static void cmd_reload(struct req *r)
{
	struct zg_ctl *ctl = r->ctl;
	struct timespec until;
	uint64_t seq;
	int rc = 0;

	if (r->argc != 1) {
		fail(r, "usage: reload");
		return;
	}
	if (atomic_load(&ctl->gw->fleet.state) != ZG_GW_RUNNING) {
		fail(r, "the gateway is %s: no reload", state_name(atomic_load(&ctl->gw->fleet.state)));
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += RELOAD_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&ctl->lock);
	seq = ctl->reload_seq;
	zg_gateway_want_reload(ctl->gw);
	while (ctl->reload_seq == seq && !ctl->stopping && rc == 0)
		rc = pthread_cond_timedwait(&ctl->reloaded, &ctl->lock, &until);
	if (ctl->reload_seq == seq && !ctl->stopping) {
		pthread_mutex_unlock(&ctl->lock);
		fail(r, "no reload result within %u s", RELOAD_TIMEOUT_MS / 1000);
		return;
	}
	if (ctl->reload_seq == seq) {
		pthread_mutex_unlock(&ctl->lock);
		fail(r, "the gateway stopped before the reload");
		return;
	}
	if (!ctl->reload_ok) {
		reload_refused(r);
	} else if (r->json) {
		r->obj = json_pack("{s:s,s:I}", "reload", "ok", "generation", (json_int_t)ctl->reload_gen);
	} else {
		zg_out_printf(&r->text, "reload ok: generation %llu\n", (unsigned long long)ctl->reload_gen);
	}
	pthread_mutex_unlock(&ctl->lock);
}

/* ---- emergency override --------------------------------------------------- */

/* Give every worker the table of overrides in force, and the metrics a
 * copy. The number of workers that did not take it (hung or ending). */
static unsigned push_overrides(struct zg_ctl *ctl)
{
	struct zg_override table[ZG_OVERRIDES_MAX];
	struct zg_ask a;
	unsigned silent = 0;

	memset(&a, 0, sizeof(a));
	a.kind = ZG_ASK_OVERRIDES;
	a.overrides = table;
	a.n_overrides = zg_override_table(&ctl->ovr, table);
	zg_override_publish(ctl->board, &ctl->ovr);
	for (unsigned i = 0; i < ctl->gw->n_workers; i++)
		if (zg_worker_ask(&ctl->gw->workers[i], &a, ASK_TIMEOUT_MS) < 0)
			silent++;
	return silent;
}

/* Format @ev's detail; a long reason is cut at the record's limit. */
static void __attribute__((format(printf, 2, 3))) detailf(struct zg_audit_event *ev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ev->detail, sizeof(ev->detail), fmt, ap);
	va_end(ap);
}

/* The log line and the audit record (110113 / 110127 or 110138) of @e
 * starting or ending; @how says who ended it, or how. */
static void override_record(struct zg_ctl *ctl, const struct zg_ovr_entry *e, int start, const char *how)
{
	struct zg_audit_event ev;
	char rx[96], q[ZG_OVR_REASON_MAX + 8];
	int64_t ran = (int64_t)time(NULL) - e->started_at;

	zg_relax_format(e->relax, rx, sizeof(rx));
	if (start)
		zg_warn("event=override_started route=%s checks=%s for_s=%u uid=%u user=%s reason=%s",
			e->route, rx, e->duration_s, e->uid, e->user, zg_log_quote(q, sizeof(q), e->reason));
	else
		zg_warn("event=override_stopped route=%s checks=%s by=%s after_s=%lld", e->route, rx, how,
			(long long)ran);
	if (!ctl->gw->fleet.audit)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = start ? ZG_AUDIT_EMERGENCY_OVERRIDE_START : ZG_AUDIT_EMERGENCY_OVERRIDE_STOP;
	snprintf(ev.route, sizeof(ev.route), "%.*s", (int)sizeof(ev.route) - 1, e->route);
	if (start)
		detailf(&ev, "uid=%u user=%s route=%s checks=%s for=%us reason=%s", e->uid, e->user, e->route,
			rx, e->duration_s, e->reason);
	else
		detailf(&ev, "route=%s checks=%s ended by %s after %llds (started by uid=%u user=%s for %us)",
			e->route, rx, how, (long long)ran, e->uid, e->user, e->duration_s);
	(void)zg_audit_emit(ctl->gw->fleet.audit, &ev);
}

/* The option @name's value among @r's words from @from, or NULL. */
static const char *opt(const struct req *r, int from, const char *name)
{
	for (int i = from; i + 1 < r->argc; i++)
		if (strcmp(r->argv[i], name) == 0)
			return r->argv[i + 1];
	return NULL;
}

/* override start: parse, check against [override], record, push. */
static void override_start(struct req *r)
{
	struct zg_ctl *ctl = r->ctl;
	struct zg_snapshot *s = zg_fleet_snapshot(&ctl->gw->fleet);
	const char *route = opt(r, 2, "--route"), *relax = opt(r, 2, "--relax"), *dur = opt(r, 2, "--for");
	struct zg_ovr_entry e;
	unsigned max_s = s->conf->ovr.max_duration_s;
	char why[256], rx[96];
	int known = route && zg_snapshot_route(s, route) != NULL;
	size_t n = 0;

	memset(&e, 0, sizeof(e));
	e.cert_expired_max_s = s->conf->ovr.cert_expired_max_s;
	zg_snapshot_unref(s);
	if (!route || !relax || !dur) {
		fail(r, "usage: override start --route ROUTE --relax CHECKS --for DURATION --reason TEXT");
		return;
	}
	if (!known) {
		fail(r, "no route '%.64s'", route);
		return;
	}
	if (zg_relax_parse(relax, &e.relax, why, sizeof(why)) < 0) {
		fail(r, "%s", why);
		return;
	}
	if (zg_override_parse_duration(dur, &e.duration_s) < 0) {
		fail(r, "--for '%.32s' is not a duration (90s, 30m, 2h)", dur);
		return;
	}
	for (int i = 2; i + 1 < r->argc; i++) /* --reason takes the rest of the line */
		if (strcmp(r->argv[i], "--reason") == 0) {
			for (int k = i + 1; k < r->argc; k++) {
				int w = snprintf(e.reason + n, sizeof(e.reason) - n, "%s%s", n ? " " : "",
						 r->argv[k]);
				if (w < 0 || (size_t)w >= sizeof(e.reason) - n)
					break; /* cut at the record's limit */
				n += (size_t)w;
			}
			break;
		}
	snprintf(e.route, sizeof(e.route), "%s", route);
	e.started_at = (int64_t)time(NULL);
	e.until_ms = zg_now_ms() + (uint64_t)e.duration_s * 1000u;
	e.uid = (unsigned)r->cl->cred.uid;
	snprintf(e.user, sizeof(e.user), "%s", r->cl->user);
	if (zg_override_start(&ctl->ovr, &e, max_s, why, sizeof(why)) < 0) {
		fail(r, "%s", why);
		return;
	}
	override_record(ctl, &e, 1, NULL);
	if (push_overrides(ctl)) {
		fail(r, "override recorded but some workers did not take it within %u ms", ASK_TIMEOUT_MS);
		return;
	}
	zg_relax_format(e.relax, rx, sizeof(rx));
	if (r->json)
		r->obj = json_pack("{s:s,s:s,s:I}", "override", e.route, "relaxed", rx, "seconds",
				   (json_int_t)e.duration_s);
	else
		zg_out_printf(&r->text, "emergency override on route %s: relaxing %s for %us (audited)\n",
			      e.route, rx, e.duration_s);
}

/* override stop [--route ROUTE]: end one, or all. */
static void override_stop(struct req *r)
{
	struct zg_ctl *ctl = r->ctl;
	struct zg_ovr_entry ended[ZG_OVERRIDES_MAX];
	const char *route = opt(r, 2, "--route");
	char how[96];
	unsigned n;

	if (r->argc != 2 && !(r->argc == 4 && route)) {
		fail(r, "usage: override stop [--route ROUTE]");
		return;
	}
	n = zg_override_stop(&ctl->ovr, route, ended);
	if (!n) {
		fail(r, "no emergency override in force%s%.64s", route ? " on route " : "",
		     route ? route : "");
		return;
	}
	snprintf(how, sizeof(how), "uid=%u user=%s", (unsigned)r->cl->cred.uid, r->cl->user);
	for (unsigned i = 0; i < n; i++)
		override_record(ctl, &ended[i], 0, how);
	(void)push_overrides(ctl);
	if (r->json)
		r->obj = json_pack("{s:I}", "stopped", (json_int_t)n);
	else
		zg_out_printf(&r->text, "%u emergency override%s stopped\n", n, n == 1 ? "" : "s");
}

static void cmd_override(struct req *r)
{
	if (r->argc >= 2 && strcmp(r->argv[1], "start") == 0)
		override_start(r);
	else if (r->argc >= 2 && strcmp(r->argv[1], "stop") == 0)
		override_stop(r);
	else
		fail(r, "usage: override start --route R --relax CHECKS --for DURATION --reason TEXT | "
		     "override stop [--route R]");
}

/* Overrides whose time is up end by themselves (control thread, each turn). */
static void overrides_expire(struct zg_ctl *ctl)
{
	struct zg_ovr_entry ended[ZG_OVERRIDES_MAX];
	unsigned n = ctl->ovr.n ? zg_override_expire(&ctl->ovr, zg_now_ms(), ended) : 0;

	for (unsigned i = 0; i < n; i++)
		override_record(ctl, &ended[i], 0, "expiry");
	if (n)
		(void)push_overrides(ctl);
}

struct command {
	const char *name;
	void (*fn)(struct req *r);
};

static const struct command commands[] = {
	{"status", cmd_status}, {"conns", cmd_conns}, {"kill", cmd_kill},
	{"drain", cmd_drain},   {"reload", cmd_reload}, {"override", cmd_override},
};

/* Split the request line into words; 0, or -1 for too many. */
static int split(char *line, struct req *r)
{
	char *save = NULL;

	r->argc = 0;
	for (char *w = strtok_r(line, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (r->argc == ARGS_MAX)
			return -1;
		r->argv[r->argc++] = w;
	}
	return 0;
}

/* Run one request line @line (NUL-terminated, no newline) from @cl. */
static void run(struct zg_ctl *ctl, const struct client *cl, char *line, struct req *r)
{
	char q[96];

	memset(r, 0, sizeof(*r));
	r->ctl = ctl;
	r->cl = cl;
	r->ok = 1;
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t') {
			fail(r, "request has a control byte (one line of words, then a newline)");
			return;
		}
	if (split(line, r) < 0) {
		fail(r, "too many words in the request (at most %d)", ARGS_MAX);
		return;
	}
	if (r->argc > 0 && strcmp(r->argv[0], "json") == 0) {
		r->json = 1;
		memmove(r->argv, r->argv + 1, sizeof(r->argv[0]) * (size_t)--r->argc);
	}
	if (r->argc == 0) {
		fail(r, "empty request (commands: status, conns, kill, drain, reload, override)");
		return;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(r->argv[0], commands[i].name) == 0) {
			commands[i].fn(r);
			zg_info("event=ctl_command uid=%u pid=%d user=%s command=%s result=%s",
				(unsigned)cl->cred.uid, (int)cl->cred.pid, cl->user,
				zg_log_quote(q, sizeof(q), r->argv[0]), r->ok ? "ok" : "error");
			return;
		}
	fail(r, "unknown command '%.32s' (commands: status, conns, kill, drain, reload, override)",
	     r->argv[0]);
}

/* ---- sockets -------------------------------------------------------------- */

/* Write all of @p to @fd within SEND_TIMEOUT_MS; a client that does not
 * read is given up on. */
static void send_all(int fd, const char *p, size_t n)
{
	uint64_t deadline = zg_now_ms() + SEND_TIMEOUT_MS;

	while (n > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		uint64_t now;
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return;
		now = zg_now_ms();
		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) < 0)
			return;
	}
}

/* Close @cl after its answer. Unread input would make close() send a
 * reset that can destroy the answer before the client reads it (an
 * oversized request), so what already arrived is read and dropped first. */
static void client_close(struct client *cl)
{
	char sink[4096];

	if (cl->fd >= 0) {
		(void)shutdown(cl->fd, SHUT_WR);
		for (int i = 0; i < 16 && recv(cl->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
			;
		close(cl->fd);
	}
	cl->fd = -1;
	cl->len = 0;
}

/* Answer @cl with an error and close it. */
static void client_refuse(struct client *cl, const char *msg)
{
	char buf[256];
	int k = snprintf(buf, sizeof(buf), "error\nerror: %s\n", msg);

	send_all(cl->fd, buf, (size_t)k);
	zg_warn("event=ctl_refused uid=%u pid=%d error=\"%s\"", (unsigned)cl->cred.uid, (int)cl->cred.pid,
		msg);
	client_close(cl);
}

/* A whole line came from @cl: run it, answer, close. */
static void client_answer(struct zg_ctl *ctl, struct client *cl, char *line)
{
	struct req r;
	char *js = NULL;

	run(ctl, cl, line, &r);
	send_all(cl->fd, r.ok ? "ok\n" : "error\n", r.ok ? 3 : 6);
	if (r.json) {
		js = r.obj ? json_dumps(r.obj, JSON_COMPACT) : NULL;
		if (js) {
			send_all(cl->fd, js, strlen(js));
			send_all(cl->fd, "\n", 1);
		} else {
			send_all(cl->fd, "{\"error\":\"out of memory\"}\n", 26);
		}
	} else if (r.text.p) {
		send_all(cl->fd, r.text.p, r.text.n);
		if (r.text.cut)
			send_all(cl->fd, "(answer cut: too long)\n", 23);
	}
	free(js);
	json_decref(r.obj);
	zg_out_free(&r.text);
	client_close(cl);
}

/* Read what @cl sent; answer once a line is complete. */
static void client_read(struct zg_ctl *ctl, struct client *cl)
{
	ssize_t k = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len, MSG_DONTWAIT);
	char *nl;

	if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (k <= 0) {
		if (cl->len > 0)
			client_refuse(cl, "truncated request: the connection ended before a newline");
		else
			client_close(cl);
		return;
	}
	cl->len += (size_t)k;
	cl->buf[cl->len] = '\0';
	nl = memchr(cl->buf, '\n', cl->len);
	if (nl) {
		*nl = '\0';
		if (nl > cl->buf && nl[-1] == '\r')
			nl[-1] = '\0';
		if (memchr(cl->buf, '\0', (size_t)(nl - cl->buf)))
			client_refuse(cl, "request has a NUL byte");
		else
			client_answer(ctl, cl, cl->buf);
		return;
	}
	if (cl->len == sizeof(cl->buf) - 1)
		client_refuse(cl, "request too long (one line of at most 1023 bytes)");
}

static void user_name(uid_t uid, char *out, size_t cap)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out, cap, "%s", res->pw_name);
	else
		snprintf(out, cap, "uid-%u", (unsigned)uid);
}

static void accept_one(struct zg_ctl *ctl)
{
	struct client tmp, *slot = NULL;
	socklen_t len = sizeof(tmp.cred);
	int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	memset(&tmp, 0, sizeof(tmp));
	tmp.fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &tmp.cred, &len) < 0) {
		client_refuse(&tmp, "cannot identify the caller (SO_PEERCRED)");
		return;
	}
	user_name(tmp.cred.uid, tmp.user, sizeof(tmp.user));
	for (unsigned i = 0; i < ZG_CTL_CLIENTS_MAX && !slot; i++)
		if (ctl->clients[i].fd < 0)
			slot = &ctl->clients[i];
	if (!slot) {
		client_refuse(&tmp, "busy: too many control clients at once, try again");
		return;
	}
	tmp.deadline_ms = zg_now_ms() + ZG_CTL_IDLE_MS;
	*slot = tmp;
}

_Static_assert(ZG_CTL_CLIENTS_MAX <= ZG_OPS_LOOP_CLIENTS_MAX, "ctl clients exceed the loop");

/* zg_ops_loop hooks: the control clients' slots. */
static int ctl_watch(void *ctx, unsigned i, short *events)
{
	*events = POLLIN;
	return ((struct zg_ctl *)ctx)->clients[i].fd;
}

static void ctl_ready(void *ctx, unsigned i)
{
	client_read(ctx, &((struct zg_ctl *)ctx)->clients[i]);
}

/* Overrides whose time is up end; a client silent too long is refused. */
static void ctl_turn(void *ctx, uint64_t now)
{
	struct zg_ctl *ctl = ctx;

	overrides_expire(ctl);
	for (unsigned i = 0; i < ZG_CTL_CLIENTS_MAX; i++)
		if (ctl->clients[i].fd >= 0 && now >= ctl->clients[i].deadline_ms)
			client_refuse(&ctl->clients[i], "timeout: no complete request within 5 s");
}

static void ctl_accept(void *ctx)
{
	accept_one(ctx);
}

/* The thread: one poll over the socket, the clients and the stop bell. */
static void *ctl_main(void *arg)
{
	struct zg_ctl *ctl = arg;
	const struct zg_ops_loop l = {
		.stop_fd = ctl->stop_fd, .listen_fd = ctl->fd, .n_slots = ZG_CTL_CLIENTS_MAX,
		.accepts = 16, .fail_event = "ctl_failed", .ctx = ctl, .watch = ctl_watch,
		.ready = ctl_ready, .turn = ctl_turn, .accept = ctl_accept,
	};

	zg_ops_loop_run(&l);
	return NULL;
}

/* Bind @path, replacing a stale socket left by a crash but never another
 * kind of file or a socket someone still listens on. Returns the fd or -1. */
static int ctl_listen(const char *path, gid_t gid, int chgrp)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		zg_err("event=ctl_failed socket=%s error=\"path too long\"", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		int probe;
		if (!S_ISSOCK(st.st_mode)) {
			zg_err("event=ctl_failed socket=%s error=\"exists and is not a socket\"", path);
			return -1;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			zg_err("event=ctl_failed socket=%s error=\"another process serves it\"", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(path) < 0) {
			zg_err("event=ctl_failed socket=%s error=%s", path, strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	/* mode and group are set before listen(): until then a connect is refused */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	if (chmod(path, 0660) < 0 || (chgrp && chown(path, (uid_t)-1, gid) < 0) ||
	    listen(fd, ZG_CTL_BACKLOG) < 0)
		goto fail_bound;
	return fd;
fail_bound:
	zg_err("event=ctl_failed socket=%s error=%s", path, strerror(errno));
	unlink(path);
	close(fd);
	return -1;
fail:
	zg_err("event=ctl_failed socket=%s error=%s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The gid of group @name into *@gid; 0, or -1 (logged) if there is none. */
static int group_id(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res) {
		zg_err("event=ctl_failed error=\"no group %s\"", name);
		return -1;
	}
	*gid = res->gr_gid;
	return 0;
}

struct zg_ctl *zg_ctl_start(struct zg_gateway *gw, struct zg_ovr_board *board, int *failed)
{
	const struct zg_conf_control *cc = &gw->fleet.current->conf->ctl;
	struct zg_ctl *ctl;
	gid_t gid = 0;

	*failed = 0;
	if (!cc->socket[0])
		return NULL;
	*failed = 1;
	if (cc->group[0] && group_id(cc->group, &gid) < 0)
		return NULL;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return NULL;
	ctl->gw = gw;
	ctl->board = board;
	ctl->stop_fd = -1;
	for (unsigned i = 0; i < ZG_CTL_CLIENTS_MAX; i++)
		ctl->clients[i].fd = -1;
	snprintf(ctl->path, sizeof(ctl->path), "%s", cc->socket);
	if (pthread_mutex_init(&ctl->lock, NULL) != 0) {
		free(ctl);
		return NULL;
	}
	{
		pthread_condattr_t ca;
		if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
		    pthread_cond_init(&ctl->reloaded, &ca) != 0) {
			pthread_mutex_destroy(&ctl->lock);
			free(ctl);
			return NULL;
		}
		pthread_condattr_destroy(&ca);
	}
	ctl->fd = ctl_listen(ctl->path, gid, cc->group[0] != 0);
	ctl->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctl->fd < 0 || ctl->stop_fd < 0 || pthread_create(&ctl->thread, NULL, ctl_main, ctl) != 0) {
		zg_ctl_stop(ctl);
		return NULL;
	}
	ctl->thread_started = 1;
	*failed = 0;
	zg_info("event=ctl_listening socket=%s group=%s mode=0660", ctl->path,
		cc->group[0] ? cc->group : "(own)");
	return ctl;
}

void zg_ctl_reloaded(struct zg_ctl *ctl, int ok, const struct zg_errlist *errs, uint64_t generation)
{
	size_t n = 0;

	if (!ctl)
		return;
	pthread_mutex_lock(&ctl->lock);
	ctl->reload_ok = ok;
	ctl->reload_gen = generation;
	ctl->reload_errs[0] = '\0';
	ctl->reload_n_errs = errs ? errs->n + errs->dropped : 0;
	for (size_t i = 0; errs && i < errs->n && n + 1 < sizeof(ctl->reload_errs); i++) {
		int k = snprintf(ctl->reload_errs + n, sizeof(ctl->reload_errs) - n, "%s%s", i ? "\n" : "",
				 errs->msg[i]);
		if (k < 0)
			break;
		n += (size_t)k;
		if (n >= sizeof(ctl->reload_errs))
			n = sizeof(ctl->reload_errs) - 1;
	}
	ctl->reload_seq++;
	pthread_cond_broadcast(&ctl->reloaded);
	pthread_mutex_unlock(&ctl->lock);
}

void zg_ctl_stop(struct zg_ctl *ctl)
{
	uint64_t one = 1;

	if (!ctl)
		return;
	pthread_mutex_lock(&ctl->lock);
	ctl->stopping = 1;
	pthread_cond_broadcast(&ctl->reloaded);
	pthread_mutex_unlock(&ctl->lock);
	if (ctl->thread_started) {
		if (write(ctl->stop_fd, &one, sizeof(one)) < 0)
			zg_err("event=ctl_failed error=%s", strerror(errno));
		pthread_join(ctl->thread, NULL);
	}
	for (unsigned i = 0; i < ZG_CTL_CLIENTS_MAX; i++)
		client_close(&ctl->clients[i]);
	if (ctl->fd >= 0) {
		close(ctl->fd);
		unlink(ctl->path);
	}
	if (ctl->stop_fd >= 0)
		close(ctl->stop_fd);
	pthread_cond_destroy(&ctl->reloaded);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
}
