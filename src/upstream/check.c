/* check.c - the health-check thread; see check.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/prefix.h"
#include "tls/tls.h"
#include "upstream/check.h"
#include "upstream/probe.h"

#define PROBE_MAGIC 0x7a677072u /* "zgpr" */
#define EVENTS_MAX 64

enum phase { P_IDLE, P_CONNECT, P_HANDSHAKE, P_SEND, P_RECV };

/* The checker's own state of one target: never shared. */
struct probe {
	uint32_t magic;
	const struct zg_check_target *t;
	enum phase phase;
	int fd;
	SSL *ssl;
	uint32_t events;                 /* epoll interest registered */
	int step;                        /* dicom: enum zg_dicom_step */
	uint64_t due_ms, deadline_ms;
	uint8_t *out, *in;               /* ZG_PROBE_BUF each, while a probe runs */
	size_t out_len, out_off, in_len;
	struct zg_tls_verdict verdict;
	uint8_t addr16[16];
};

struct zg_checker {
	pthread_t thread;
	int epfd, wake_fd;
	struct zg_audit *audit;
	pthread_mutex_t lock;            /* guards pending, have_pending, stop */
	struct zg_check_plan *pending;
	int have_pending, stop;
	/* the thread's own */
	struct zg_check_plan *plan;
	struct probe *probes;
	uint64_t seq;
	uint32_t rnd;
};

void zg_check_plan_free(struct zg_check_plan *p)
{
	if (!p)
		return;
	if (p->release)
		p->release(p->owner);
	free(p->t);
	free(p->hl7_store);
	free(p);
}

/* xorshift32: jitter only, no security meaning. */
static uint32_t next_rand(struct zg_checker *ck)
{
	uint32_t x = ck->rnd ? ck->rnd : 2463534242u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return ck->rnd = x;
}

static int uses_tls(const struct zg_check_target *t)
{
	return t->tls && t->check->kind != ZG_CHECK_TCP;
}

/* Epoll interest of @p becomes @ev (0: none). */
static void watch(struct zg_checker *ck, struct probe *p, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = p};

	if (p->fd < 0 || ev == p->events)
		return;
	if (epoll_ctl(ck->epfd, p->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &e) < 0)
		zg_err("event=health_check_failed error=epoll_ctl:%s", strerror(errno));
	p->events = ev;
}

/* End the probe of @p with @r: release its socket and buffers, record the
 * result, report a state change, schedule the next probe. */
static void finish(struct zg_checker *ck, struct probe *p, enum zg_reason r, const char *detail,
		   uint64_t now)
{
	const struct zg_conf_check *cc = p->t->check;
	int change;

	if (p->ssl && r == ZG_R_OK)
		(void)SSL_shutdown(p->ssl); /* best effort close_notify; no wait */
	ERR_clear_error();
	SSL_free(p->ssl);
	p->ssl = NULL;
	if (p->fd >= 0) {
		/* leave the set first: a key process being forked holds a
		 * duplicate until its exec, and the entry follows the file */
		(void)epoll_ctl(ck->epfd, EPOLL_CTL_DEL, p->fd, NULL);
		close(p->fd);
	}
	p->fd = -1;
	p->events = 0;
	free(p->out);
	free(p->in);
	p->out = p->in = NULL;
	p->phase = P_IDLE;
	zg_debug("event=health_check route=%s endpoint=%s result=%s detail=%s", p->t->route,
		 p->t->health->name, zg_reason_code(r), detail && *detail ? detail : "-");
	change = zg_health_check_result(p->t->health, r, cc->rise, cc->fall);
	if (change)
		zg_health_report(ck->audit, p->t->route, p->t->health, change < 0, r, "check", 0,
				 detail && *detail ? detail : NULL);
	p->due_ms = now + cc->interval_ms + (cc->jitter_ms ? next_rand(ck) % (cc->jitter_ms + 1) : 0);
}

/* The first request of the application protocol into p->out. 0, or -1. */
static int build_request(struct zg_checker *ck, struct probe *p)
{
	const struct zg_check_target *t = p->t;

	p->out_off = 0;
	switch (t->check->kind) {
	case ZG_CHECK_DICOM:
		p->out_len = zg_dicom_request((enum zg_dicom_step)p->step, t->check->calling_ae,
					      t->check->called_ae, p->out, ZG_PROBE_BUF);
		break;
	case ZG_CHECK_HL7:
		if (t->hl7) {
			p->out_len = zg_hl7_frame(t->hl7, t->hl7_len, p->out, ZG_PROBE_BUF);
		} else {
			char ts[32], id[32], msg[512];
			time_t now = time(NULL);
			struct tm tm;
			size_t n;
			if (!gmtime_r(&now, &tm) || strftime(ts, sizeof(ts), "%Y%m%d%H%M%S", &tm) == 0)
				return -1;
			snprintf(id, sizeof(id), "ZGHC%llu", (unsigned long long)++ck->seq);
			n = zg_hl7_default_message(ts, id, msg, sizeof(msg));
			p->out_len = n ? zg_hl7_frame(msg, n, p->out, ZG_PROBE_BUF) : 0;
		}
		break;
	case ZG_CHECK_HTTP:
		p->out_len = zg_http_request(t->check->http_path, t->host, p->out, ZG_PROBE_BUF);
		break;
	default:
		return -1;
	}
	return p->out_len ? 0 : -1;
}

/* The transport is up: tcp and tls checks pass here, the others send. */
static void transport_up(struct zg_checker *ck, struct probe *p, uint64_t now)
{
	enum zg_check_kind k = p->t->check->kind;

	if (k == ZG_CHECK_TCP || k == ZG_CHECK_TLS) {
		finish(ck, p, ZG_R_OK, NULL, now);
		return;
	}
	p->out = malloc(ZG_PROBE_BUF);
	p->in = malloc(ZG_PROBE_BUF);
	p->step = 0;
	p->in_len = 0;
	if (!p->out || !p->in || build_request(ck, p) < 0) {
		finish(ck, p, ZG_R_NO_MEMORY, "cannot build the request", now);
		return;
	}
	p->phase = P_SEND;
}

/* Begin a probe of @p: a non-blocking connect to the target. */
static void start(struct zg_checker *ck, struct probe *p, uint64_t now)
{
	const struct zg_check_target *t = p->t;
	int one = 1;

	p->deadline_ms = now + t->check->timeout_ms;
	if (!t->addr_len) {
		finish(ck, p, ZG_R_UPSTREAM_UNRESOLVED, "the endpoint does not resolve now", now);
		return;
	}
	p->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		finish(ck, p, ZG_R_NO_MEMORY, strerror(errno), now);
		return;
	}
	(void)setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(p->fd, (const struct sockaddr *)&t->addr, t->addr_len) < 0 &&
	    errno != EINPROGRESS) {
		finish(ck, p, ZG_R_CONNECT_FAILED, strerror(errno), now);
		return;
	}
	p->phase = P_CONNECT;
	watch(ck, p, EPOLLOUT);
}

static void connected(struct zg_checker *ck, struct probe *p, uint64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	if (err) {
		finish(ck, p, err == ECONNRESET ? ZG_R_UPSTREAM_RESET : ZG_R_CONNECT_FAILED,
		       strerror(err), now);
		return;
	}
	if (!uses_tls(p->t)) {
		transport_up(ck, p, now);
		return;
	}
	memset(&p->verdict, 0, sizeof(p->verdict));
	if (zg_prefix_addr_from_sockaddr((const struct sockaddr *)&p->t->addr, p->addr16) < 0)
		memset(p->addr16, 0, sizeof(p->addr16));
	p->verdict.dir = p->t->dir;
	p->verdict.addr = p->addr16;
	p->verdict.peers = p->t->peers;
	p->ssl = zg_tls_client_new(p->t->tls, p->fd, p->t->server_name, &p->verdict);
	if (!p->ssl) {
		finish(ck, p, ZG_R_NO_MEMORY, "cannot start TLS", now);
		return;
	}
	p->phase = P_HANDSHAKE;
}

/* One step of I/O: >0 bytes, 0 end of stream, -1 would block (epoll
 * interest set), -2 error (the reason in *@r). */
static ssize_t io(struct zg_checker *ck, struct probe *p, int writing, uint8_t *buf, size_t n,
		  enum zg_reason *r)
{
	ssize_t k;

	if (p->ssl) {
		size_t done = 0;
		int rc = writing ? SSL_write_ex(p->ssl, buf, n, &done) : SSL_read_ex(p->ssl, buf, n, &done);
		int e;
		if (rc == 1)
			return (ssize_t)done;
		e = SSL_get_error(p->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			watch(ck, p, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
			return -1;
		}
		ERR_clear_error();
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		*r = ZG_R_UPSTREAM_RESET;
		return writing || e != SSL_ERROR_SSL ? -2 : 0;
	}
	k = writing ? send(p->fd, buf, n, MSG_NOSIGNAL) : recv(p->fd, buf, n, 0);
	if (k >= 0)
		return k;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		watch(ck, p, writing ? EPOLLOUT : EPOLLIN);
		return -1;
	}
	*r = ZG_R_UPSTREAM_RESET;
	return -2;
}

/* Judge what p->in holds so far. 1 with @v when complete. */
static int judge(struct probe *p, enum zg_reason *v, char *detail, size_t cap)
{
	switch (p->t->check->kind) {
	case ZG_CHECK_DICOM:
		return zg_dicom_reply((enum zg_dicom_step)p->step, p->in, p->in_len, ZG_PROBE_BUF, v,
				      detail, cap);
	case ZG_CHECK_HL7:
		return zg_hl7_reply(p->in, p->in_len, ZG_PROBE_BUF, v, detail, cap);
	case ZG_CHECK_HTTP:
		return zg_http_reply(p->in, p->in_len, ZG_PROBE_BUF, p->t->check->http_status, v,
				     detail, cap);
	default:
		*v = ZG_R_CHECK_BAD_REPLY;
		return 1;
	}
}

/* Read the reply; judge it; go on to the next DICOM step or finish. */
static void receive(struct zg_checker *ck, struct probe *p, uint64_t now)
{
	char detail[ZG_PROBE_DETAIL] = "";
	enum zg_reason v = ZG_R_CHECK_BAD_REPLY;

	for (;;) {
		ssize_t k;
		if (p->in_len == ZG_PROBE_BUF) {
			finish(ck, p, ZG_R_CHECK_BAD_REPLY, "reply larger than a check takes", now);
			return;
		}
		k = io(ck, p, 0, p->in + p->in_len, ZG_PROBE_BUF - p->in_len, &v);
		if (k == -1)
			return;
		if (k == -2 || k == 0) {
			finish(ck, p, k == 0 ? ZG_R_CHECK_BAD_REPLY : v,
			       k == 0 ? "closed before a complete reply" : "reset while replying", now);
			return;
		}
		p->in_len += (size_t)k;
		if (judge(p, &v, detail, sizeof(detail)))
			break;
	}
	if (v == ZG_R_OK && p->t->check->kind == ZG_CHECK_DICOM && p->step + 1 < ZG_DICOM__STEPS) {
		p->step++;
		p->in_len = 0;
		if (build_request(ck, p) < 0) {
			finish(ck, p, ZG_R_NO_MEMORY, "cannot build the request", now);
			return;
		}
		p->phase = P_SEND;
		return;
	}
	finish(ck, p, v, detail, now);
}

/* Advance @p as far as it can go without blocking. */
static void advance(struct zg_checker *ck, struct probe *p, uint64_t now)
{
	for (;;) {
		enum phase before = p->phase;
		enum zg_reason r = ZG_R_OK;
		char detail[160] = "";
		int rc;
		ssize_t k;

		switch (p->phase) {
		case P_CONNECT:
			connected(ck, p, now);
			break;
		case P_HANDSHAKE:
			ERR_clear_error();
			rc = SSL_do_handshake(p->ssl);
			if (rc == 1) {
				transport_up(ck, p, now);
				break;
			}
			rc = SSL_get_error(p->ssl, rc);
			if (rc == SSL_ERROR_WANT_READ || rc == SSL_ERROR_WANT_WRITE) {
				watch(ck, p, rc == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			r = zg_tls_handshake_reason(p->ssl, rc, &p->verdict, detail, sizeof(detail));
			finish(ck, p, r, detail, now);
			break;
		case P_SEND:
			k = io(ck, p, 1, p->out + p->out_off, p->out_len - p->out_off, &r);
			if (k == -1)
				return;
			if (k <= 0) {
				finish(ck, p, r == ZG_R_OK ? ZG_R_UPSTREAM_RESET : r, "closed while sending",
				       now);
				break;
			}
			p->out_off += (size_t)k;
			if (p->out_off == p->out_len)
				p->phase = P_RECV;
			break;
		case P_RECV:
			receive(ck, p, now);
			if (p->phase == P_RECV)
				return;
			break;
		case P_IDLE:
			return;
		}
		if (p->phase == before && p->phase != P_SEND)
			return;
	}
}

/* Take a new plan: abandon the old one's probes, spread the new ones over
 * their first interval so that a hundred endpoints are not probed at once. */
static void take_plan(struct zg_checker *ck, struct zg_check_plan *plan, uint64_t now)
{
	for (unsigned i = 0; ck->probes && ck->plan && i < ck->plan->n; i++) {
		struct probe *p = &ck->probes[i];
		SSL_free(p->ssl);
		if (p->fd >= 0) {
			(void)epoll_ctl(ck->epfd, EPOLL_CTL_DEL, p->fd, NULL);
			close(p->fd);
		}
		free(p->out);
		free(p->in);
		p->magic = 0;
	}
	free(ck->probes);
	ck->probes = NULL;
	zg_check_plan_free(ck->plan);
	ck->plan = plan;
	if (!plan || plan->n == 0)
		return;
	ck->probes = calloc(plan->n, sizeof(*ck->probes));
	if (!ck->probes) {
		zg_err("event=health_check_failed error=no_memory targets=%u", plan->n);
		return;
	}
	for (unsigned i = 0; i < plan->n; i++) {
		struct probe *p = &ck->probes[i];
		p->magic = PROBE_MAGIC;
		p->t = &plan->t[i];
		p->fd = -1;
		p->due_ms = now + next_rand(ck) % (plan->t[i].check->interval_ms + 1);
	}
	zg_info("event=health_checks targets=%u", plan->n);
}

/* Start what is due, time out what is late; the wait until the next such
 * moment, in ms (-1: nothing scheduled). */
static int tick(struct zg_checker *ck, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; ck->probes && i < ck->plan->n; i++) {
		struct probe *p = &ck->probes[i];
		if (p->phase == P_IDLE && now >= p->due_ms) {
			start(ck, p, now);
			if (p->phase != P_IDLE)
				advance(ck, p, now);
		} else if (p->phase != P_IDLE && now >= p->deadline_ms) {
			finish(ck, p, ZG_R_CHECK_TIMEOUT, "no complete reply within health_timeout", now);
		}
		uint64_t at = p->phase == P_IDLE ? p->due_ms : p->deadline_ms;
		if (at < next)
			next = at;
	}
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

/* A wake-up: a new plan, or stop. 1 to stop. */
static int on_wake(struct zg_checker *ck, uint64_t now)
{
	uint64_t v;
	struct zg_check_plan *plan = NULL;
	int stop, have;

	if (read(ck->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		zg_err("event=wake_failed worker=checker error=%s", strerror(errno));
	pthread_mutex_lock(&ck->lock);
	stop = ck->stop;
	have = ck->have_pending;
	plan = ck->pending;
	ck->pending = NULL;
	ck->have_pending = 0;
	pthread_mutex_unlock(&ck->lock);
	if (have)
		take_plan(ck, plan, now);
	return stop;
}

static void *checker_main(void *arg)
{
	struct zg_checker *ck = arg;
	struct epoll_event ev[EVENTS_MAX];
	int timeout = -1;

	for (;;) {
		int n = epoll_wait(ck->epfd, ev, EVENTS_MAX, timeout);
		uint64_t now = zg_now_ms();
		if (n < 0 && errno != EINTR) {
			zg_err("event=health_check_failed error=epoll_wait:%s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct probe *p = ev[i].data.ptr;
			if (!p) {
				if (on_wake(ck, now))
					goto out;
				break; /* the probes of this batch may be gone with the old plan */
			}
			if (p->magic == PROBE_MAGIC && p->phase != P_IDLE)
				advance(ck, p, now);
		}
		timeout = tick(ck, zg_now_ms());
	}
out:
	take_plan(ck, NULL, zg_now_ms());
	return NULL;
}

struct zg_checker *zg_checker_start(struct zg_audit *audit)
{
	struct zg_checker *ck = calloc(1, sizeof(*ck));
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};

	if (!ck)
		goto fail;
	ck->epfd = ck->wake_fd = -1;
	ck->audit = audit;
	ck->rnd = (uint32_t)zg_now_ms() | 1u;
	if (pthread_mutex_init(&ck->lock, NULL) != 0) {
		free(ck);
		ck = NULL;
		goto fail;
	}
	if ((ck->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (ck->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    epoll_ctl(ck->epfd, EPOLL_CTL_ADD, ck->wake_fd, &e) < 0 ||
	    pthread_create(&ck->thread, NULL, checker_main, ck) != 0)
		goto fail;
	return ck;
fail:
	zg_err("event=health_check_failed error=cannot start the checker thread");
	if (ck) {
		if (ck->epfd >= 0)
			close(ck->epfd);
		if (ck->wake_fd >= 0)
			close(ck->wake_fd);
		pthread_mutex_destroy(&ck->lock);
		free(ck);
	}
	return NULL;
}

static void wake(struct zg_checker *ck)
{
	uint64_t one = 1;

	if (write(ck->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		zg_err("event=wake_failed worker=checker error=%s", strerror(errno));
}

void zg_checker_update(struct zg_checker *ck, struct zg_check_plan *plan)
{
	struct zg_check_plan *old;

	if (!ck) {
		zg_check_plan_free(plan);
		return;
	}
	pthread_mutex_lock(&ck->lock);
	old = ck->pending;
	ck->pending = plan;
	ck->have_pending = 1;
	pthread_mutex_unlock(&ck->lock);
	zg_check_plan_free(old); /* never taken: superseded */
	wake(ck);
}

void zg_checker_stop(struct zg_checker *ck)
{
	if (!ck)
		return;
	pthread_mutex_lock(&ck->lock);
	ck->stop = 1;
	pthread_mutex_unlock(&ck->lock);
	wake(ck);
	pthread_join(ck->thread, NULL);
	zg_check_plan_free(ck->pending);
	close(ck->epfd);
	close(ck->wake_fd);
	pthread_mutex_destroy(&ck->lock);
	free(ck);
}
