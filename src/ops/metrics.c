/* metrics.c - see metrics.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/prefix.h"
#include "base/relax.h"
#include "engine/net.h"
#include "ops/loop.h"
#include "ops/metrics.h"
#include "tls/tls.h"

#define HTTP_REQ_MAX 4096
#define HTTP_CLIENTS_MAX 32
#define HTTP_IDLE_MS 5000
#define SEND_TIMEOUT_MS 5000

struct http_client {
	int fd;                      /* -1: free */
	char buf[HTTP_REQ_MAX];
	size_t len;
	uint64_t deadline_ms;
	/* [admin] tls = on: the scraper's TLS session, judged like a route's client */
	SSL *ssl;                    /* NULL: plain HTTP */
	struct zg_snapshot *snap;    /* one reference: its admin_tls made @ssl */
	struct zg_tls_verdict v;     /* what the verify callback found */
	int verified;                /* the handshake finished */
	int want_write;              /* the handshake waits to write */
	char peer[64];
};

struct zg_metrics {
	struct zg_gateway *gw;
	struct zg_metrics_src src;
	int64_t start_time;          /* Unix time the gateway started */
	int fd, stop_fd;
	pthread_t thread;
	int thread_started;
	struct http_client clients[HTTP_CLIENTS_MAX];
};

/* ---- exposition ----------------------------------------------------------- */

/* @s as a Prometheus label value: backslash, quote and newline escaped. */
static const char *label(const char *s, char *buf, size_t cap)
{
	size_t n = 0;

	for (; *s && n + 3 < cap; s++) {
		if (*s == '\\' || *s == '"') {
			buf[n++] = '\\';
			buf[n++] = *s;
		} else if (*s == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else {
			buf[n++] = *s;
		}
	}
	buf[n] = '\0';
	return buf;
}

static void head(struct zg_out *o, const char *name, const char *type, const char *help)
{
	zg_out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram summed over every worker's @field. */
static void histogram(struct zg_out *o, struct zg_gateway *gw, size_t field, const char *name,
		      const char *help)
{
	static const uint64_t bounds[ZG_HIST_N - 1] = ZG_HIST_BOUNDS_MS;
	uint64_t b[ZG_HIST_N] = {0}, sum_us = 0, count = 0, cum = 0;

	for (unsigned w = 0; w < gw->n_workers; w++) {
		const struct zg_hist *h =
			(const struct zg_hist *)((const char *)&gw->workers[w].ctr + field);
		for (unsigned i = 0; i < ZG_HIST_N; i++)
			b[i] += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		sum_us += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
		count += atomic_load_explicit(&h->count, memory_order_relaxed);
	}
	head(o, name, "histogram", help);
	for (unsigned i = 0; i < ZG_HIST_N - 1; i++) {
		cum += b[i];
		zg_out_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds[i] / 1000.0,
			      (unsigned long long)cum);
	}
	cum += b[ZG_HIST_N - 1];
	/* a scrape between a worker's bucket and count stores: +Inf is the count */
	if (count < cum)
		count = cum;
	zg_out_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
		      (unsigned long long)count, name, (double)sum_us / 1e6, name, (unsigned long long)count);
}

static void route_metrics(struct zg_out *o, struct zg_gateway *gw, const struct zg_snapshot *s)
{
	char l[200];

	head(o, "zonegate_route_connections_active", "gauge", "Live connections per route.");
	for (unsigned i = 0; i < s->n_routes; i++)
		if (s->routes[i].stats)
			zg_out_printf(o, "zonegate_route_connections_active{route=\"%s\"} %u\n",
				      label(s->routes[i].conf->name, l, sizeof(l)),
				      atomic_load(&s->routes[i].stats->active));
	head(o, "zonegate_route_connections_accepted_total", "counter",
	     "Connections admitted by the gate per route.");
	for (unsigned i = 0; i < s->n_routes; i++)
		if (s->routes[i].stats)
			zg_out_printf(o, "zonegate_route_connections_accepted_total{route=\"%s\"} %lu\n",
				      label(s->routes[i].conf->name, l, sizeof(l)),
				      atomic_load(&s->routes[i].stats->accepted));
	head(o, "zonegate_connections_ended_total", "counter",
	     "Connections ended per route and reason code (refusals included; docs/operations.md).");
	for (unsigned i = 0; i < s->n_routes; i++) {
		const struct zg_route_stats *st = s->routes[i].stats;
		if (!st)
			continue;
		label(s->routes[i].conf->name, l, sizeof(l));
		for (unsigned r = 0; r < ZG_R__COUNT; r++) {
			uint64_t v = 0;
			for (unsigned w = 0; w < gw->n_workers; w++)
				v += atomic_load_explicit(&gw->workers[w].ctr.ends[st->slot][r],
							  memory_order_relaxed);
			if (v)
				zg_out_printf(o,
					"zonegate_connections_ended_total{route=\"%s\",reason=\"%s\"} %llu\n",
					l, zg_reason_code((enum zg_reason)r), (unsigned long long)v);
		}
	}
}

static void participant_metrics(struct zg_out *o, const struct zg_snapshot *s)
{
	char l[200];
	size_t n = s->dir ? zg_directory_count(s->dir) : 0;

	if (!n || !s->dir_slots)
		return;
	head(o, "zonegate_participant_connections_active", "gauge",
	     "Live connections per directory participant.");
	for (size_t i = 0; i < n; i++) {
		const struct zg_participant *p = zg_directory_participant(s->dir, i);
		if (p && s->dir_slots[i])
			zg_out_printf(o, "zonegate_participant_connections_active{participant=\"%s\"} %u\n",
				      label(p->id, l, sizeof(l)), atomic_load(s->dir_slots[i]));
	}
}

/* One sample per pool member of every route, read from its shared health
 * (upstream/health.h) at scrape time. */
static void upstream_metric(struct zg_out *o, const struct zg_snapshot *s, const char *name,
			    const char *type, const char *help,
			    void (*one)(struct zg_out *o, const char *name, const char *labels,
					const struct zg_health_view *v))
{
	char r[200], e[400], labels[700];
	struct zg_health_view v;

	head(o, name, type, help);
	for (unsigned i = 0; i < s->n_routes; i++) {
		const struct zg_route_rt *rt = &s->routes[i];
		for (unsigned k = 0; rt->stats && k < rt->n_up; k++) {
			if (!rt->up[k].health)
				continue;
			zg_health_read(rt->up[k].health, &v);
			snprintf(labels, sizeof(labels), "route=\"%s\",endpoint=\"%s\"",
				 label(rt->conf->name, r, sizeof(r)), label(v.name, e, sizeof(e)));
			one(o, name, labels, &v);
		}
	}
}

static void up_one(struct zg_out *o, const char *name, const char *labels,
		   const struct zg_health_view *v)
{
	zg_out_printf(o, "%s{%s} %d\n", name, labels, !v->down);
}

static void active_one(struct zg_out *o, const char *name, const char *labels,
		       const struct zg_health_view *v)
{
	zg_out_printf(o, "%s{%s} %u\n", name, labels, v->conns_active);
}

static void total_one(struct zg_out *o, const char *name, const char *labels,
		      const struct zg_health_view *v)
{
	zg_out_printf(o, "%s{%s} %llu\n", name, labels, (unsigned long long)v->conns_total);
}

static void fails_one(struct zg_out *o, const char *name, const char *labels,
		      const struct zg_health_view *v)
{
	for (unsigned f = 0; f < ZG_FAIL__COUNT; f++)
		zg_out_printf(o, "%s{%s,kind=\"%s\"} %llu\n", name, labels,
			      zg_fail_kind_name((enum zg_fail_kind)f), (unsigned long long)v->fails[f]);
}

static void change_one(struct zg_out *o, const char *name, const char *labels,
		       const struct zg_health_view *v)
{
	zg_out_printf(o, "%s{%s} %lld\n", name, labels, (long long)v->last_change_s);
}

static void upstream_metrics(struct zg_out *o, const struct zg_snapshot *s)
{
	upstream_metric(o, s, "zonegate_upstream_up", "gauge",
			"1 while a pool member is up, 0 while it is held down (docs/operations.md).",
			up_one);
	upstream_metric(o, s, "zonegate_upstream_connections_active", "gauge",
			"Live connections on a pool member.", active_one);
	upstream_metric(o, s, "zonegate_upstream_connections_total", "counter",
			"Connections that tried a pool member.", total_one);
	upstream_metric(o, s, "zonegate_upstream_failures_total", "counter",
			"Failures of a pool member by kind: refused, timeout, reset, tls, identity, "
			"check.", fails_one);
	upstream_metric(o, s, "zonegate_upstream_last_change_timestamp_seconds", "gauge",
			"When a pool member last went down or up (Unix time; 0 never).", change_one);
}

static void audit_metrics(struct zg_out *o, struct zg_audit *a)
{
	struct zg_audit_stats st;

	if (!a)
		return;
	zg_audit_get_stats(a, &st);
	head(o, "zonegate_audit_records_emitted_total", "counter", "Audit records queued.");
	zg_out_printf(o, "zonegate_audit_records_emitted_total %llu\n", (unsigned long long)st.emitted);
	head(o, "zonegate_audit_queue_dropped_total", "counter", "Audit records refused: queue full.");
	zg_out_printf(o, "zonegate_audit_queue_dropped_total %llu\n", (unsigned long long)st.queue_dropped);
	head(o, "zonegate_audit_records_undelivered", "gauge",
	     "Audit records spooled and not yet confirmed by the collector.");
	zg_out_printf(o, "zonegate_audit_records_undelivered %llu\n",
		      (unsigned long long)(st.last_seq > st.delivered ? st.last_seq - st.delivered : 0));
	head(o, "zonegate_audit_last_delivered_sequence", "gauge",
	     "Sequence number of the last audit record the collector confirmed.");
	zg_out_printf(o, "zonegate_audit_last_delivered_sequence %llu\n", (unsigned long long)st.delivered);
	head(o, "zonegate_audit_spool_bytes", "gauge", "Bytes in the audit spool.");
	zg_out_printf(o, "zonegate_audit_spool_bytes %llu\n", (unsigned long long)st.spool_bytes);
	head(o, "zonegate_audit_spool_full", "gauge", "1 while the audit spool is full.");
	zg_out_printf(o, "zonegate_audit_spool_full %d\n", st.spool_full ? 1 : 0);
	head(o, "zonegate_audit_collector_up", "gauge", "1 while the audit collector is connected.");
	zg_out_printf(o, "zonegate_audit_collector_up %d\n", st.collector_up ? 1 : 0);
}

static void expiry_metrics(struct zg_out *o, struct zg_expiry_table *exp)
{
	char k[40], n[400];

	if (!exp)
		return;
	head(o, "zonegate_expiry_timestamp_seconds", "gauge",
	     "When a certificate (ours, chain, trust anchor) expires, a CRL's nextUpdate, the "
	     "directory's expires (Unix time).");
	pthread_mutex_lock(&exp->lock);
	for (unsigned i = 0; i < exp->n; i++)
		zg_out_printf(o, "zonegate_expiry_timestamp_seconds{kind=\"%s\",name=\"%s\"} %lld\n",
			      label(exp->item[i].kind, k, sizeof(k)), label(exp->item[i].name, n, sizeof(n)),
			      (long long)exp->item[i].not_after);
	pthread_mutex_unlock(&exp->lock);
}

#define CLASS_STATS_MAX (ZG_CLASSES_MAX * 2 + 1) /* struct zg_shape_table's cls[] */

/* One metric family of every class in @st (@n): @one prints its samples. */
static void class_family(struct zg_out *o, const struct zg_shape_stats *st, unsigned n,
			 const char *name, const char *type, const char *help,
			 void (*one)(struct zg_out *o, const char *name, const char *cls,
				     const struct zg_shape_stats *s))
{
	char l[80];

	head(o, name, type, help);
	for (unsigned i = 0; i < n; i++)
		one(o, name, label(st[i].name, l, sizeof(l)), &st[i]);
}

static void cls_active(struct zg_out *o, const char *name, const char *cls,
		       const struct zg_shape_stats *s)
{
	zg_out_printf(o, "%s{class=\"%s\"} %u\n", name, cls, s->active);
}

static void cls_conns(struct zg_out *o, const char *name, const char *cls,
		      const struct zg_shape_stats *s)
{
	zg_out_printf(o, "%s{class=\"%s\"} %llu\n", name, cls, (unsigned long long)s->connections);
}

static void cls_refused(struct zg_out *o, const char *name, const char *cls,
			const struct zg_shape_stats *s)
{
	zg_out_printf(o, "%s{class=\"%s\"} %llu\n", name, cls, (unsigned long long)s->refused);
}

static void cls_rate(struct zg_out *o, const char *name, const char *cls,
		     const struct zg_shape_stats *s)
{
	zg_out_printf(o, "%s{class=\"%s\"} %.3f\n", name, cls, (double)s->rate_bps / 8.0);
}

static void cls_ceil(struct zg_out *o, const char *name, const char *cls,
		     const struct zg_shape_stats *s)
{
	zg_out_printf(o, "%s{class=\"%s\"} %.3f\n", name, cls, (double)s->ceil_bps / 8.0);
}

static const char *const class_way[2] = {"to_upstream", "to_client"}; /* enum zg_shape_way */

static void cls_bytes(struct zg_out *o, const char *name, const char *cls,
		      const struct zg_shape_stats *s)
{
	for (int w = 0; w < 2; w++)
		zg_out_printf(o, "%s{class=\"%s\",direction=\"%s\"} %llu\n", name, cls, class_way[w],
			      (unsigned long long)s->bytes[w]);
}

static void cls_throttled(struct zg_out *o, const char *name, const char *cls,
			  const struct zg_shape_stats *s)
{
	for (int w = 0; w < 2; w++)
		zg_out_printf(o, "%s{class=\"%s\",direction=\"%s\"} %.3f\n", name, cls, class_way[w],
			      (double)s->throttled_ms[w] / 1000.0);
}

/* Per traffic class (shape/class.h): the shaping wing's own counters, read
 * with plain atomic loads at scrape time; the scrape writes nothing there. */
static void class_metrics(struct zg_out *o, const struct zg_shape_table *t)
{
	struct zg_shape_stats st[CLASS_STATS_MAX];
	unsigned n = 0, count = zg_shape_stats_count(t);

	while (n < count && n < CLASS_STATS_MAX && zg_shape_stats_read(t, n, &st[n]) == 0)
		n++;
	class_family(o, st, n, "zonegate_class_connections_active", "gauge",
		     "Live connections per traffic class.", cls_active);
	class_family(o, st, n, "zonegate_class_connections_total", "counter",
		     "Connections admitted per traffic class.", cls_conns);
	class_family(o, st, n, "zonegate_class_refused_total", "counter",
		     "Connections refused per traffic class (class_limit: its max_connections in use).",
		     cls_refused);
	class_family(o, st, n, "zonegate_class_bytes_total", "counter",
		     "Bytes relayed per traffic class and direction.", cls_bytes);
	class_family(o, st, n, "zonegate_class_throttled_seconds_total", "counter",
		     "Connection-time spent waiting for the class's tokens, per direction.",
		     cls_throttled);
	/* bytes, as Prometheus's base units want; the configuration says bit/s */
	class_family(o, st, n, "zonegate_class_rate_bytes_per_second", "gauge",
		     "Guaranteed rate in force per class, each direction (0: not shaped).", cls_rate);
	class_family(o, st, n, "zonegate_class_ceil_bytes_per_second", "gauge",
		     "Ceiling in force per class, each direction (0: not shaped).", cls_ceil);
}

/* Seconds left of the override of @route in @in_force at @now (0: none),
 * and its entry in *@e. */
static uint64_t override_left(const struct zg_overrides *in_force, const char *route, uint64_t now,
			      const struct zg_ovr_entry **e)
{
	*e = NULL;
	for (unsigned k = 0; k < in_force->n; k++)
		if (strcmp(in_force->e[k].route, route) == 0 && in_force->e[k].until_ms > now) {
			*e = &in_force->e[k];
			return (in_force->e[k].until_ms - now + 999) / 1000;
		}
	return 0;
}

/* Per route: whether an emergency override is in force, which checks it
 * relaxes (label) and the seconds it has left. */
static void override_metrics(struct zg_out *o, struct zg_ovr_board *b, const struct zg_snapshot *s)
{
	struct zg_overrides in_force;
	const struct zg_ovr_entry *e;
	uint64_t now = zg_now_ms();
	char l[200], rx[96];

	if (!b)
		return;
	zg_override_read(b, &in_force);
	head(o, "zonegate_override_active", "gauge",
	     "1 while an emergency override is in force on a route; relaxed: the checks it relaxes.");
	for (unsigned i = 0; i < s->n_routes; i++) {
		uint64_t left = override_left(&in_force, s->routes[i].conf->name, now, &e);
		zg_out_printf(o, "zonegate_override_active{route=\"%s\",relaxed=\"%s\"} %d\n",
			      label(s->routes[i].conf->name, l, sizeof(l)),
			      left ? zg_relax_format(e->relax, rx, sizeof(rx)) : "", left ? 1 : 0);
	}
	head(o, "zonegate_override_seconds_left", "gauge",
	     "Seconds left of a route's emergency override (0: none).");
	for (unsigned i = 0; i < s->n_routes; i++)
		zg_out_printf(o, "zonegate_override_seconds_left{route=\"%s\"} %llu\n",
			      label(s->routes[i].conf->name, l, sizeof(l)),
			      (unsigned long long)override_left(&in_force, s->routes[i].conf->name, now, &e));
}

void zg_metrics_render(struct zg_gateway *gw, const struct zg_metrics_src *src, int64_t start_time,
		       struct zg_out *o)
{
	struct zg_snapshot *s = zg_fleet_snapshot(&gw->fleet);
	uint64_t now = zg_now_ms();
	char v[200];

	head(o, "zonegate_build_info", "gauge", "Version of zonegate and of the OpenSSL it runs on.");
	zg_out_printf(o, "zonegate_build_info{version=\"%s\",openssl=\"%s\"} 1\n", ZG_VERSION,
		      label(OpenSSL_version(OPENSSL_VERSION), v, sizeof(v)));
	head(o, "zonegate_start_time_seconds", "gauge", "When the gateway started (Unix time).");
	zg_out_printf(o, "zonegate_start_time_seconds %lld\n", (long long)start_time);
	head(o, "zonegate_config_generation", "gauge", "Generation of the configuration in force.");
	zg_out_printf(o, "zonegate_config_generation %llu\n", (unsigned long long)s->generation);
	head(o, "zonegate_draining", "gauge", "1 once the drain (SIGTERM) began.");
	zg_out_printf(o, "zonegate_draining %d\n", atomic_load(&gw->fleet.state) != ZG_GW_RUNNING);
	head(o, "zonegate_connections_active", "gauge", "Live connections, all routes.");
	zg_out_printf(o, "zonegate_connections_active %u\n", atomic_load(&gw->fleet.active_total));
	head(o, "zonegate_worker_loop_age_seconds", "gauge",
	     "Time since each worker loop last turned (the watchdog's input).");
	for (unsigned w = 0; w < gw->n_workers; w++) {
		uint64_t beat = atomic_load_explicit(&gw->workers[w].beat_ms, memory_order_relaxed);
		zg_out_printf(o, "zonegate_worker_loop_age_seconds{worker=\"%u\"} %.3f\n", w,
			      beat && now > beat ? (double)(now - beat) / 1000.0 : 0.0);
	}
	route_metrics(o, gw, s);
	upstream_metrics(o, s);
	participant_metrics(o, s);
	histogram(o, gw, offsetof(struct zg_conn_counters, handshake_in),
		  "zonegate_handshake_in_duration_seconds", "Inbound TLS handshakes, accept to done.");
	histogram(o, gw, offsetof(struct zg_conn_counters, connect),
		  "zonegate_upstream_connect_duration_seconds", "TCP connects to an upstream address.");
	histogram(o, gw, offsetof(struct zg_conn_counters, handshake_out),
		  "zonegate_handshake_out_duration_seconds", "Outbound TLS handshakes.");
	class_metrics(o, &gw->shape);
	override_metrics(o, src->ovr, s);
	audit_metrics(o, gw->fleet.audit);
	expiry_metrics(o, src->exp);
	zg_snapshot_unref(s);
}

/* ---- HTTP ----------------------------------------------------------------- */

/* One write of at most @n bytes to @cl: bytes written, 0 to wait for
 * *@ev (POLLIN or POLLOUT), -1 on an error. */
static ssize_t write_some(struct http_client *cl, const char *p, size_t n, short *ev)
{
	ssize_t k;
	int r, err;

	*ev = POLLOUT;
	if (!cl->ssl) {
		k = send(cl->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		return k > 0 ? k : -1;
	}
	r = SSL_write(cl->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	err = SSL_get_error(cl->ssl, r);
	ERR_clear_error();
	if (err == SSL_ERROR_WANT_READ)
		*ev = POLLIN;
	return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Write all of @p to @cl within SEND_TIMEOUT_MS; a client that does not
 * read its answer loses it. */
static void send_all(struct http_client *cl, const char *p, size_t n)
{
	uint64_t deadline = zg_now_ms() + SEND_TIMEOUT_MS;

	while (n > 0) {
		struct pollfd pfd = {.fd = cl->fd};
		ssize_t k = write_some(cl, p, n, &pfd.events);
		uint64_t now;
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0)
			return;
		now = zg_now_ms();
		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) < 0)
			return;
	}
}

/* Close @cl and free its slot (TLS session and snapshot reference too). */
static void client_close(struct http_client *cl)
{
	if (cl->fd < 0)
		return;
	if (cl->ssl) {
		if (cl->verified)
			(void)SSL_shutdown(cl->ssl); /* close_notify, best effort: non-blocking */
		SSL_free(cl->ssl);
		ERR_clear_error();
	}
	zg_snapshot_unref(cl->snap);
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
	cl->ssl = NULL;
	cl->snap = NULL;
	cl->verified = 0;
	cl->want_write = 0;
}

static void reply(struct http_client *cl, int code, const char *ctype, const char *body, size_t n,
		  int with_body)
{
	char hdr[256];
	const char *text = code == 200 ? "OK" : code == 404 ? "Not Found" : code == 405 ? "Method Not Allowed"
			 : code == 503 ? "Service Unavailable" : "Bad Request";
	int k = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 code, text, ctype, n);

	send_all(cl, hdr, (size_t)k);
	if (with_body)
		send_all(cl, body, n);
	if (!cl->ssl)
		(void)shutdown(cl->fd, SHUT_WR);
	client_close(cl);
}

/* Why the gateway is not ready, or NULL when it is. */
static const char *not_ready(struct zg_metrics *m)
{
	if (!m->gw->fleet.current)
		return "no configuration";
	if (!atomic_load(m->src.started))
		return "listeners not bound yet";
	if (atomic_load(&m->gw->fleet.state) != ZG_GW_RUNNING)
		return "draining";
	if (m->gw->fleet.audit && !zg_audit_accepting(m->gw->fleet.audit))
		return "audit spool full: new connections are refused";
	return NULL;
}

/* A request head arrived on @cl: answer it. */
static void serve(struct zg_metrics *m, struct http_client *cl)
{
	static const char plain[] = "text/plain; charset=utf-8";
	char *sp1 = strchr(cl->buf, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL, *q;
	int get, headreq;

	if (!sp1 || !sp2) {
		reply(cl, 400, plain, "bad request\n", 12, 1);
		return;
	}
	*sp1 = *sp2 = '\0';
	if ((q = strchr(sp1 + 1, '?')) != NULL)
		*q = '\0';
	get = strcmp(cl->buf, "GET") == 0;
	headreq = strcmp(cl->buf, "HEAD") == 0;
	if (!get && !headreq) {
		reply(cl, 405, plain, "only GET\n", 9, 1);
	} else if (strcmp(sp1 + 1, "/metrics") == 0) {
		struct zg_out o = {0};
		zg_metrics_render(m->gw, &m->src, m->start_time, &o);
		reply(cl, o.p && !o.cut ? 200 : 503, "text/plain; version=0.0.4; charset=utf-8",
		      o.p ? o.p : "", o.p ? o.n : 0, get);
		zg_out_free(&o);
	} else if (strcmp(sp1 + 1, "/health") == 0) {
		reply(cl, 200, plain, "ok\n", 3, get);
	} else if (strcmp(sp1 + 1, "/ready") == 0) {
		const char *why = not_ready(m);
		char body[160];
		int k = snprintf(body, sizeof(body), "%s%s\n", why ? "not ready: " : "ready", why ? why : "");
		reply(cl, why ? 503 : 200, plain, body, (size_t)k, get);
	} else {
		reply(cl, 404, plain, "not found: /metrics, /health, /ready\n", 37, get);
	}
}

/* Move @cl's TLS handshake on. 1 once done, 0 to wait, -1 refused (logged,
 * closed): the client is judged as a route's would be, reason code and all. */
static int client_handshake(struct http_client *cl)
{
	char detail[200], q[240];
	enum zg_reason why;
	int r = SSL_do_handshake(cl->ssl), err;

	cl->want_write = 0;
	if (r == 1) {
		cl->verified = 1;
		return 1;
	}
	err = SSL_get_error(cl->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		cl->want_write = err == SSL_ERROR_WANT_WRITE;
		ERR_clear_error();
		return 0;
	}
	why = zg_tls_handshake_reason(cl->ssl, err, &cl->v, detail, sizeof(detail));
	zg_info("event=admin_refused peer=%s reason=%s detail=%s", cl->peer, zg_reason_code(why),
		zg_log_quote(q, sizeof(q), detail));
	client_close(cl);
	return -1;
}

/* Read what @cl sent: 1 with bytes added, 0 nothing yet, -1 closed. */
static int client_recv(struct http_client *cl)
{
	size_t cap = sizeof(cl->buf) - 1 - cl->len;
	ssize_t k;

	if (cl->ssl) {
		int r = SSL_read(cl->ssl, cl->buf + cl->len, (int)cap), err;
		if (r > 0) {
			k = r;
		} else {
			err = SSL_get_error(cl->ssl, r);
			ERR_clear_error();
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
				return 0;
			k = 0;
		}
	} else {
		k = recv(cl->fd, cl->buf + cl->len, cap, MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
	}
	if (k <= 0) {
		client_close(cl);
		return -1;
	}
	cl->len += (size_t)k;
	cl->buf[cl->len] = '\0';
	return 1;
}

static void client_read(struct zg_metrics *m, struct http_client *cl)
{
	if (cl->ssl && !cl->verified && client_handshake(cl) <= 0)
		return;
	if (client_recv(cl) <= 0)
		return;
	if (strstr(cl->buf, "\r\n\r\n") || strstr(cl->buf, "\n\n"))
		serve(m, cl);
	else if (cl->len == sizeof(cl->buf) - 1)
		reply(cl, 400, "text/plain", "request head too large\n", 23, 1);
}

/* [admin] tls = on: put a server TLS session of the configuration in
 * force on @cl. 0, or -1 (the caller closes). */
static int client_tls(struct zg_metrics *m, struct http_client *cl)
{
	struct zg_snapshot *s = zg_fleet_snapshot(&m->gw->fleet);

	if (!s->admin_tls) {
		zg_snapshot_unref(s);
		return 0;
	}
	memset(&cl->v, 0, sizeof(cl->v));
	cl->snap = s;
	cl->ssl = zg_tls_server_new(s->admin_tls, cl->fd, &cl->v);
	return cl->ssl ? 0 : -1;
}

static void accept_one(struct zg_metrics *m)
{
	struct zg_sockaddr peer = {.len = sizeof(peer.ss)};
	int fd = accept4(m->fd, (struct sockaddr *)&peer.ss, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (unsigned i = 0; i < HTTP_CLIENTS_MAX; i++) {
		struct http_client *cl = &m->clients[i];
		if (cl->fd >= 0)
			continue;
		cl->fd = fd;
		cl->len = 0;
		cl->deadline_ms = zg_now_ms() + HTTP_IDLE_MS;
		zg_sockaddr_format((const struct sockaddr *)&peer.ss, cl->peer, sizeof(cl->peer));
		if (client_tls(m, cl) < 0)
			client_close(cl);
		return;
	}
	close(fd); /* more scrapers than a loopback admin port should ever see */
}

_Static_assert(HTTP_CLIENTS_MAX <= ZG_OPS_LOOP_CLIENTS_MAX, "admin clients exceed the loop");

/* zg_ops_loop hooks: the HTTP clients' slots. */
static int http_watch(void *ctx, unsigned i, short *events)
{
	const struct http_client *cl = &((struct zg_metrics *)ctx)->clients[i];

	*events = cl->want_write ? POLLOUT : POLLIN;
	return cl->fd;
}

static void http_ready(void *ctx, unsigned i)
{
	client_read(ctx, &((struct zg_metrics *)ctx)->clients[i]);
}

/* A scraper that does not finish its request in time loses its slot. */
static void http_turn(void *ctx, uint64_t now)
{
	struct zg_metrics *m = ctx;

	for (unsigned i = 0; i < HTTP_CLIENTS_MAX; i++)
		if (m->clients[i].fd >= 0 && now >= m->clients[i].deadline_ms)
			client_close(&m->clients[i]);
}

static void http_accept(void *ctx)
{
	accept_one(ctx);
}

static void *metrics_main(void *arg)
{
	struct zg_metrics *m = arg;
	const struct zg_ops_loop l = {
		.stop_fd = m->stop_fd, .listen_fd = m->fd, .n_slots = HTTP_CLIENTS_MAX, .accepts = 8,
		.fail_event = "admin_failed", .ctx = m, .watch = http_watch, .ready = http_ready,
		.turn = http_turn, .accept = http_accept,
	};

	zg_ops_loop_run(&l);
	return NULL;
}

/* 1 if @a (16-byte form, IPv4 mapped) is ::1 or in 127.0.0.0/8. */
static int is_loopback(const uint8_t a[16])
{
	static const uint8_t v6[16] = {[15] = 1};
	static const uint8_t v4[12] = {[10] = 0xff, [11] = 0xff};

	return memcmp(a, v6, 16) == 0 || (memcmp(a, v4, 12) == 0 && a[12] == 127);
}

/* Resolve and bind [admin] listen; loopback only. The fd or -1 (logged). */
static int admin_listen(const struct zg_endpoint *ep)
{
	struct zg_sockaddr a;
	uint8_t addr[16];
	char why[160], shown[64];
	int fd;

	if (zg_resolve(ep, 1, &a, 1, why, sizeof(why)) != 1) {
		zg_err("event=admin_failed error=\"%s\"", why);
		return -1;
	}
	zg_sockaddr_format((const struct sockaddr *)&a.ss, shown, sizeof(shown));
	if (zg_prefix_addr_from_sockaddr((const struct sockaddr *)&a.ss, addr) < 0 ||
	    !is_loopback(addr)) {
		zg_err("event=admin_failed listen=%s error=\"[admin] listen must be a loopback address\"",
		       shown);
		return -1;
	}
	fd = zg_listen_socket(&a, "", 16, why, sizeof(why));
	if (fd < 0)
		zg_err("event=admin_failed listen=%s error=\"%s\"", shown, why);
	else
		zg_info("event=admin_listening listen=%s paths=/metrics,/health,/ready", shown);
	return fd;
}

struct zg_metrics *zg_metrics_start(struct zg_gateway *gw, const struct zg_metrics_src *src,
				    int *failed)
{
	const struct zg_endpoint *ep = &gw->fleet.current->conf->admin.listen;
	struct zg_metrics *m;

	*failed = 0;
	if (!ep->port[0])
		return NULL;
	*failed = 1;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->gw = gw;
	m->src = *src;
	m->start_time = (int64_t)time(NULL) - (int64_t)((zg_now_ms() - gw->started_ms) / 1000);
	m->stop_fd = -1;
	for (unsigned i = 0; i < HTTP_CLIENTS_MAX; i++)
		m->clients[i].fd = -1;
	m->fd = admin_listen(ep);
	m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->fd < 0 || m->stop_fd < 0 || pthread_create(&m->thread, NULL, metrics_main, m) != 0) {
		zg_metrics_stop(m);
		return NULL;
	}
	m->thread_started = 1;
	*failed = 0;
	return m;
}

void zg_metrics_stop(struct zg_metrics *m)
{
	uint64_t one = 1;

	if (!m)
		return;
	if (m->thread_started) {
		if (write(m->stop_fd, &one, sizeof(one)) < 0)
			zg_err("event=admin_failed error=%s", strerror(errno));
		pthread_join(m->thread, NULL);
	}
	for (unsigned i = 0; i < HTTP_CLIENTS_MAX; i++)
		client_close(&m->clients[i]);
	if (m->fd >= 0)
		close(m->fd);
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	free(m);
}
