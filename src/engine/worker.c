/* worker.c - see worker.h. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/hook.h"
#include "base/log.h"
#include "engine/sandbox.h"
#include "engine/record.h"
#include "engine/worker.h"

#define EVENTS_PER_WAIT 256
#define ACCEPTS_PER_EVENT 64
#define TICK_MS 200 /* granularity of timeouts */
#define LISTEN_BACKLOG 1024

/* The worker that embeds @h (every zg_conn_host is a worker's). */
static struct zg_worker *worker_of(struct zg_conn_host *h)
{
	return (struct zg_worker *)((char *)h - offsetof(struct zg_worker, host));
}

struct zg_snapshot *zg_fleet_snapshot(struct zg_fleet *f)
{
	struct zg_snapshot *s;

	pthread_mutex_lock(&f->snap_lock);
	s = zg_snapshot_ref(f->current);
	pthread_mutex_unlock(&f->snap_lock);
	return s;
}

void zg_fleet_ring(struct zg_fleet *f)
{
	uint64_t one = 1;

	if (write(f->main_wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		zg_err("event=wake_failed worker=main error=%s", strerror(errno));
}

/* zg_conn_host_ops.watch: epoll interest for one side of a connection. */
static int host_watch(struct zg_conn_host *h, struct zg_side *side, uint32_t events)
{
	struct zg_worker *w = worker_of(h);
	struct epoll_event ev = {.events = events, .data.ptr = side};

	/* A side that waits for nothing leaves the set: epoll reports
	 * EPOLLERR and EPOLLHUP whatever the interest, so a reset or a
	 * finished socket that stayed registered would wake us forever. */
	if (events == 0) {
		if (side->registered && epoll_ctl(w->epfd, EPOLL_CTL_DEL, side->fd, NULL) < 0)
			zg_err("event=epoll_failed op=del error=%s", strerror(errno));
		side->registered = 0;
		side->interest = 0;
		return 0;
	}
	if (side->registered && side->interest == events)
		return 0;
	if (epoll_ctl(w->epfd, side->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, side->fd, &ev) < 0) {
		zg_err("event=epoll_failed op=%s error=%s", side->registered ? "mod" : "add",
		       strerror(errno));
		return -1;
	}
	side->registered = 1;
	side->interest = events;
	return 0;
}

/* zg_conn_host_ops.closed: unlink @c and queue it for freeing after the batch. */
static void host_closed(struct zg_conn_host *h, struct zg_conn *c)
{
	struct zg_worker *w = worker_of(h);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->host.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->host.n_conns--;
	if (c->deferred) {
		struct zg_conn **pp = &w->ready;
		while (*pp && *pp != c)
			pp = &(*pp)->ready_next;
		if (*pp)
			*pp = c->ready_next;
		c->deferred = 0;
	}
	if (c->throttled) {
		struct zg_conn **pp = &w->throttled;
		while (*pp && *pp != c)
			pp = &(*pp)->throttled_next;
		if (*pp)
			*pp = c->throttled_next;
		c->throttled = 0;
	}
	c->prev = NULL;
	c->next = w->closed;
	w->closed = c;
}

/* zg_conn_host_ops.defer: step @c again after this batch of events. */
static void host_defer(struct zg_conn_host *h, struct zg_conn *c)
{
	struct zg_worker *w = worker_of(h);
	if (c->deferred)
		return;
	c->deferred = 1;
	c->ready_next = w->ready;
	w->ready = c;
}

/* zg_conn_host_ops.throttle: step @c again at c->wake_ns (see run_throttled). */
static void host_throttle(struct zg_conn_host *h, struct zg_conn *c)
{
	struct zg_worker *w = worker_of(h);

	if (c->throttled)
		return;
	c->throttled = 1;
	c->throttled_next = w->throttled;
	w->throttled = c;
}

/* zg_conn_host_ops.want_resolve: ring the main thread once per request. */
static void host_want_resolve(struct zg_conn_host *h)
{
	struct zg_worker *w = worker_of(h);

	if (atomic_exchange(&w->fleet->resolve_wanted, 1) == 0)
		zg_fleet_ring(w->fleet);
}

static const struct zg_conn_host_ops host_ops = {
	.watch = host_watch,
	.defer = host_defer,
	.closed = host_closed,
	.want_resolve = host_want_resolve,
	.throttle = host_throttle,
};

/* Step the connections whose class tokens are due at @now_ns; drop from
 * the list those no longer waiting. Returns the earliest wake time left,
 * including that of connections which ran out again (0: none). The list
 * holds only connections out of tokens right now and is walked once per
 * wake-up: no timerfd, no sleeping, no busy loop. */
static uint64_t run_throttled(struct zg_worker *w, uint64_t now_ns)
{
	struct zg_conn *due = NULL, **pp = &w->throttled;
	uint64_t next = 0;

	while (*pp) {
		struct zg_conn *c = *pp;
		if (c->wake_ns > now_ns) {
			pp = &c->throttled_next;
			continue;
		}
		*pp = c->throttled_next;
		c->throttled = 0;
		if (c->wake_ns) {
			c->throttled_next = due;
			due = c;
		}
	}
	while (due) {
		struct zg_conn *c = due;
		due = c->throttled_next;
		c->throttled_next = NULL;
		zg_conn_wake(c);
	}
	for (struct zg_conn *c = w->throttled; c; c = c->throttled_next)
		if (c->wake_ns && (!next || c->wake_ns < next))
			next = c->wake_ns;
	return next;
}

/* The epoll_wait timeout: at once with deferred steps, by the next token
 * wake-up (rounded up to a whole millisecond) or the tick. */
static int wait_ms(const struct zg_worker *w, uint64_t next_wake_ns)
{
	uint64_t now_ns;

	if (w->ready)
		return 0;
	if (!next_wake_ns)
		return TICK_MS;
	now_ns = zg_shape_now();
	if (next_wake_ns <= now_ns)
		return 0;
	if (next_wake_ns - now_ns >= (uint64_t)TICK_MS * 1000000u)
		return TICK_MS;
	return (int)((next_wake_ns - now_ns + 999999u) / 1000000u);
}

/* Step the connections that yielded: they go to the back of the line,
 * behind the events of the next wait, which therefore does not block. */
static void run_deferred(struct zg_worker *w)
{
	struct zg_conn *list = w->ready;

	w->ready = NULL;
	while (list) {
		struct zg_conn *c = list;
		list = c->ready_next;
		c->ready_next = NULL;
		zg_conn_resume(c);
	}
}

static void free_closed(struct zg_worker *w)
{
	while (w->closed) {
		struct zg_conn *c = w->closed;
		w->closed = c->next;
		zg_conn_free(c);
	}
}

static int listener_open(struct zg_worker *w, struct zg_listener *l, const struct zg_route_rt *rt)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
	char why[128], a[64];

	l->magic = ZG_LISTENER_MAGIC;
	l->addr = rt->listen;
	snprintf(l->ifname, sizeof(l->ifname), "%s", rt->conf->interface);
	l->route = rt;
	l->keep = 1;
	l->fd = zg_listen_socket(&rt->listen, rt->conf->interface, LISTEN_BACKLOG, why, sizeof(why));
	zg_sockaddr_format((const struct sockaddr *)&rt->listen.ss, a, sizeof(a));
	if (l->fd < 0) {
		zg_err("event=listen_failed route=%s addr=%s worker=%u error=%s", rt->conf->name, a,
		       w->host.index, why);
		return -1;
	}
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
		zg_err("event=listen_failed route=%s addr=%s worker=%u error=%s", rt->conf->name, a,
		       w->host.index, strerror(errno));
		close(l->fd);
		l->fd = -1;
		return -1;
	}
	zg_debug("event=listening route=%s addr=%s worker=%u", rt->conf->name, a, w->host.index);
	return 0;
}

static struct zg_listener *listener_find(struct zg_worker *w, const struct zg_sockaddr *a,
					  const char *ifname)
{
	for (unsigned i = 0; i < w->n_listeners; i++) {
		struct zg_listener *l = &w->listeners[i];
		if (!l->keep && l->fd >= 0 && l->addr.len == a->len &&
		    memcmp(&l->addr.ss, &a->ss, a->len) == 0 && strcmp(l->ifname, ifname) == 0)
			return l;
	}
	return NULL;
}

/* Close listener @l's socket, leaving the epoll set first: the entry
 * belongs to the open file, and a key process being forked holds a
 * duplicate until its exec, which would report events for a freed
 * listener. */
static void listener_close(struct zg_worker *w, struct zg_listener *l)
{
	if (l->fd < 0)
		return;
	(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	close(l->fd);
	l->fd = -1;
}

static void listeners_close_all(struct zg_worker *w)
{
	for (unsigned i = 0; i < w->n_listeners; i++)
		listener_close(w, &w->listeners[i]);
	free(w->listeners);
	w->listeners = NULL;
	w->n_listeners = 0;
}

/* Whether `zonegate ctl drain` holds route @name closed on @w. */
static int route_drained(const struct zg_worker *w, const char *name)
{
	for (unsigned i = 0; i < w->n_drained; i++)
		if (strcmp(w->drained[i], name) == 0)
			return 1;
	return 0;
}

/* Make the listeners match @snap: keep the sockets whose address stays (so
 * connections queued in them are not reset), open new ones, close the rest
 * (and those of drained routes). */
static int listeners_reconcile(struct zg_worker *w, struct zg_snapshot *snap)
{
	struct zg_listener *next = calloc(snap->n_routes ? snap->n_routes : 1, sizeof(*next));
	unsigned n = 0;
	int rc = 0;

	if (!next) {
		zg_err("event=reload_worker_failed worker=%u reason=no_memory", w->host.index);
		return -1;
	}
	for (unsigned i = 0; i < w->n_listeners; i++)
		w->listeners[i].keep = 0;
	for (unsigned i = 0; i < snap->n_routes; i++) {
		const struct zg_route_rt *rt = &snap->routes[i];
		struct zg_listener *old;
		if (route_drained(w, rt->conf->name))
			continue;
		old = listener_find(w, &rt->listen, rt->conf->interface);
		if (old) {
			old->keep = 1;
			next[n] = *old;
			next[n].route = rt;
		} else if (listener_open(w, &next[n], rt) < 0) {
			rc = -1;
			continue;
		}
		n++;
	}
	for (unsigned i = 0; i < w->n_listeners; i++)
		if (!w->listeners[i].keep)
			listener_close(w, &w->listeners[i]);
	/* epoll data points at listener structs: re-point the kept ones. */
	for (unsigned i = 0; i < n; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &next[i]};
		if (next[i].paused)
			continue; /* re-added by listeners_resume() with its new address */
		if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, next[i].fd, &ev) < 0)
			zg_err("event=epoll_failed op=mod error=%s", strerror(errno));
	}
	free(w->listeners);
	w->listeners = next;
	w->n_listeners = n;
	return rc;
}

int zg_worker_init(struct zg_worker *w, unsigned index, struct zg_fleet *fleet,
		   struct zg_snapshot *snap)
{
	struct epoll_event ev = {.events = EPOLLIN};

	pthread_condattr_t ca;

	memset(w, 0, sizeof(*w));
	w->epfd = w->wake_fd = -1;
	if (pthread_mutex_init(&w->ask_lock, NULL) != 0 || pthread_condattr_init(&ca) != 0) {
		zg_err("event=worker_failed worker=%u error=mutex", index);
		return -1;
	}
	/* a question's deadline is on the monotonic clock, like everything else */
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&w->ask_done, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		zg_err("event=worker_failed worker=%u error=condvar", index);
		return -1;
	}
	pthread_condattr_destroy(&ca);
	w->ask_ready = 1;
	w->host.ops = &host_ops;
	w->host.index = index;
	w->host.active_total = &fleet->active_total;
	w->host.audit = fleet->audit;
	w->host.shape = fleet->shape;
	w->host.ocsp = fleet->ocsp;
	w->host.chains = &w->chains;
	zg_agg_init(&w->log_fold, ZG_LOG_FOLD_MS, ZG_LOG_FOLD_BURST);
	w->host.log_fold = &w->log_fold;
	w->host.out_sessions = w->out_sessions;
	w->host.ctr = &w->ctr;
	w->host.spares = &w->spares;
	w->host.overrides = w->overrides;
	w->ctr.ends = calloc(ZG_ROUTE_SLOTS, sizeof(*w->ctr.ends));
	if (!w->ctr.ends) {
		zg_err("event=worker_failed worker=%u reason=no_memory", index);
		return -1;
	}
	w->fleet = fleet;
	w->wake_magic = ZG_WAKE_MAGIC;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* -1: pause instead */
	if (w->epfd < 0 || w->wake_fd < 0) {
		zg_err("event=worker_failed worker=%u error=%s", index, strerror(errno));
		return -1;
	}
	ev.data.ptr = &w->wake_magic;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0) {
		zg_err("event=worker_failed worker=%u error=%s", index, strerror(errno));
		return -1;
	}
	if (zg_chaincache_init(&w->chains) < 0) {
		zg_err("event=worker_failed worker=%u error=\"no SHA-256\"", index);
		return -1;
	}
	w->host.snap = zg_snapshot_ref(snap);
	w->host.now_ms = zg_now_ms();
	atomic_store_explicit(&w->beat_ms, w->host.now_ms, memory_order_relaxed);
	return listeners_reconcile(w, snap);
}

void zg_worker_wake(struct zg_worker *w)
{
	uint64_t one = 1;

	if (write(w->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		zg_err("event=wake_failed worker=%u error=%s", w->host.index, strerror(errno));
}

/* Out of descriptors or memory: the pending connection stays queued and a
 * level-triggered listener would wake us forever. Stop watching it until
 * the next tick, when closed connections may have freed what it needs. */
static void listener_pause(struct zg_worker *w, struct zg_listener *l)
{
	if (epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL) == 0) {
		l->paused = 1;
		w->paused = 1;
	}
	zg_warn("event=accept_paused route=%s worker=%u error=%s", l->route->conf->name, w->host.index,
		strerror(errno));
}

static void listeners_resume(struct zg_worker *w)
{
	for (unsigned i = 0; i < w->n_listeners; i++) {
		struct zg_listener *l = &w->listeners[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
		if (l->paused && l->fd >= 0 && epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0)
			l->paused = 0;
	}
	w->paused = 0;
}

/* accept() failed for want of a descriptor (@err): give the reserve back,
 * accept the waiting client and refuse it at once, naming our own limit,
 * so it learns now instead of timing out in the backlog; then take the
 * reserve again (another worker may win the slot: then we pause until a
 * tick gets it back). 1 if a client was refused, 0 if none was waiting,
 * -1 if the listener must pause. */
static int refuse_for_fds(struct zg_worker *w, struct zg_listener *l, int err)
{
	struct zg_sockaddr peer = {.len = sizeof(peer.ss)};
	int fd, e;

	if (w->reserve_fd < 0)
		return -1;
	close(w->reserve_fd);
	fd = accept4(l->fd, (struct sockaddr *)&peer.ss, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	e = errno;
	if (fd >= 0)
		zg_conn_refuse(&w->host, l->route, fd, &peer, ZG_R_LOCAL_FD_EXHAUSTED, strerror(err));
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return 1;
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED ? 0 : -1;
}

static void accept_some(struct zg_worker *w, struct zg_listener *l)
{
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		struct zg_sockaddr peer = {.len = sizeof(peer.ss)};
		int fd = accept4(l->fd, (struct sockaddr *)&peer.ss, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int rc, e = errno;

			if ((e == EMFILE || e == ENFILE) && (rc = refuse_for_fds(w, l, e)) >= 0) {
				if (rc == 0)
					return;
				continue;
			}
			errno = e;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				listener_pause(w, l);
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				 errno != ECONNABORTED)
				zg_warn("event=accept_failed route=%s error=%s", l->route->conf->name,
					strerror(errno));
			return;
		}
		/* Draining: the listener closes when this worker is woken, but
		 * a connection accepted in between is not served. */
		if (atomic_load_explicit(&w->fleet->state, memory_order_relaxed) != ZG_GW_RUNNING) {
			zg_conn_refuse(&w->host, l->route, fd, &peer, ZG_R_SHUTDOWN, "gateway is draining");
			continue;
		}
		/* No record, no connection: with a full spool under
		 * refuse-new-connections, refuse before any TLS work. */
		if (w->fleet->audit && !zg_audit_accepting(w->fleet->audit)) {
			zg_conn_refuse(&w->host, l->route, fd, &peer, ZG_R_AUDIT_SPOOL_FULL, NULL);
			continue;
		}
		zg_conn_start(&w->host, w->host.snap, l->route, fd, &peer);
	}
}

static void drain_start(struct zg_worker *w)
{
	w->draining = 1;
	listeners_close_all(w);
}

/* Close every connection; they are freed by the loop's next free_closed(),
 * after any event of the current batch that still points at them. */
static void close_all(struct zg_worker *w, enum zg_reason why)
{
	while (w->host.conns)
		zg_conn_close(w->host.conns, why, NULL);
}

/* ZG_ASK_CONNS: describe @c for the control plane. */
static void conn_info(const struct zg_worker *w, const struct zg_conn *c, struct zg_conn_info *out)
{
	memset(out, 0, sizeof(*out));
	out->worker = w->host.index;
	out->id = c->id;
	snprintf(out->route, sizeof(out->route), "%s", c->route->conf->name);
	out->state = zg_conn_state_name(c->state);
	zg_sockaddr_format((const struct sockaddr *)&c->peer.ss, out->peer, sizeof(out->peer));
	snprintf(out->subject, sizeof(out->subject), "%s", c->subject);
	if (c->participant)
		snprintf(out->participant, sizeof(out->participant), "%s", c->participant->id);
	out->bytes_in = c->relay.d2u.bytes;
	out->bytes_out = c->relay.u2d.bytes;
	out->age_ms = w->host.now_ms - c->started_ms;
}

/* ZG_ASK_DRAIN: hold route @name closed on this worker from now on. */
static int drain_route(struct zg_worker *w, const char *name)
{
	if (!route_drained(w, name)) {
		if (w->n_drained == ZG_DRAINED_MAX)
			return 0;
		snprintf(w->drained[w->n_drained++], ZG_NAME_MAX, "%s", name);
	}
	if (!w->draining && listeners_reconcile(w, w->host.snap) < 0)
		zg_err("event=drain_route worker=%u result=partial", w->host.index);
	return 1;
}

/* Answer the control plane's question, if it still waits for one. */
static void answer_ask(struct zg_worker *w)
{
	struct zg_ask *a;

	pthread_mutex_lock(&w->ask_lock);
	a = w->ask;
	if (a && !a->answered) {
		a->n = a->more = 0;
		a->found = 0;
		for (struct zg_conn *c = w->host.conns; c; c = c->next) {
			if (c->state == ZG_CS_CLOSED)
				continue;
			if (a->kind == ZG_ASK_KILL && c->id == a->id) {
				zg_conn_close(c, ZG_R_OPERATOR_CLOSED, a->detail);
				a->found = 1;
				break;
			}
			if (a->kind != ZG_ASK_CONNS ||
			    (a->route[0] && strcmp(a->route, c->route->conf->name) != 0))
				continue;
			if (a->n < a->cap)
				conn_info(w, c, &a->out[a->n++]);
			else
				a->more++;
		}
		if (a->kind == ZG_ASK_DRAIN)
			a->found = drain_route(w, a->route);
		if (a->kind == ZG_ASK_OVERRIDES) {
			unsigned n = a->n_overrides < ZG_OVERRIDES_MAX ? a->n_overrides : ZG_OVERRIDES_MAX;
			memcpy(w->overrides, a->overrides, sizeof(w->overrides[0]) * n);
			w->host.n_overrides = n;
			a->found = 1;
		}
		a->answered = 1;
		pthread_cond_signal(&w->ask_done);
	}
	pthread_mutex_unlock(&w->ask_lock);
}

int zg_worker_ask(struct zg_worker *w, struct zg_ask *a, unsigned timeout_ms)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->ask_lock);
	a->answered = 0;
	w->ask = a;
	atomic_store(&w->ask_pending, 1);
	zg_worker_wake(w);
	while (!a->answered && rc == 0)
		rc = pthread_cond_timedwait(&w->ask_done, &w->ask_lock, &until);
	w->ask = NULL; /* answered or not, the worker no longer sees @a */
	pthread_mutex_unlock(&w->ask_lock);
	return a->answered ? 0 : -1;
}

/* The gateway woke us: a new snapshot, a drain or a stop, or a question. */
static void on_wake(struct zg_worker *w)
{
	uint64_t v;
	struct zg_snapshot *s;
	int state = atomic_load(&w->fleet->state);

	if (read(w->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		zg_err("event=wake_failed worker=%u error=%s", w->host.index, strerror(errno));
	if (atomic_exchange(&w->ask_pending, 0))
		answer_ask(w);
	if (state == ZG_GW_STOPPING) {
		listeners_close_all(w);
		close_all(w, ZG_R_SHUTDOWN);
		return;
	}
	if (state == ZG_GW_DRAINING) {
		if (!w->draining)
			drain_start(w);
		return;
	}
	s = zg_fleet_snapshot(w->fleet);
	if (s->generation == w->host.snap->generation) {
		zg_snapshot_unref(s);
		return;
	}
	if (listeners_reconcile(w, s) < 0)
		zg_err("event=reload_listeners worker=%u result=partial msg=\"a listener could not be "
		       "opened; its route is not served by this worker\"", w->host.index);
	/* New rules (directory, CRLs): live connections must still be allowed. */
	for (struct zg_conn *c = w->host.conns; c; c = c->next)
		zg_conn_recheck(c, s, s->conf->dir.grace_ms);
	zg_snapshot_unref(w->host.snap);
	w->host.snap = s;
}

static void tick(struct zg_worker *w)
{
	struct zg_conn *c = w->host.conns, *next;

	for (; c; c = next) {
		next = c->next;
		zg_conn_check_deadline(c, w->host.now_ms);
	}
	if (w->reserve_fd < 0)
		w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (w->paused)
		listeners_resume(w);
	if (w->draining && w->host.now_ms >= atomic_load(&w->fleet->drain_deadline_ms))
		close_all(w, ZG_R_DRAIN_DEADLINE);
	zg_record_refusals_due(&w->host, 0);
}

/* @magic was read from the event's object before the batch's wake-up was
 * handled. @woke: listener structs may have been freed since: skip their
 * events without touching them (level-triggered, they come again at the
 * next wait, on the new listeners). */
static void dispatch(struct zg_worker *w, struct epoll_event *ev, uint32_t magic, int woke)
{
	if (magic == ZG_SIDE_MAGIC) {
		struct zg_side *s = ev->data.ptr;
		if (s->conn->magic == ZG_CONN_MAGIC)
			zg_conn_event(s->conn, s, ev->events);
	} else if (magic == ZG_LISTENER_MAGIC && !woke) {
		accept_some(w, ev->data.ptr);
	}
}

/* What each event of the batch points at, read while every object is
 * alive; 1 if the gateway's wake-up is among them. */
static int batch_kinds(const struct epoll_event *evs, int n, uint32_t *kinds)
{
	int wake = 0;

	for (int i = 0; i < n; i++) {
		kinds[i] = *(const uint32_t *)evs[i].data.ptr;
		wake |= kinds[i] == ZG_WAKE_MAGIC;
	}
	return wake;
}

void *zg_worker_main(void *arg)
{
	struct zg_worker *w = arg;
	struct epoll_event evs[EVENTS_PER_WAIT];
	uint32_t kinds[EVENTS_PER_WAIT];
	uint64_t next_tick = zg_now_ms() + TICK_MS, next_wake_ns = 0;
	char why[128];

	/* before the first peer byte: a worker that cannot filter itself
	 * stops the gateway rather than serve unfiltered */
	if (w->fleet->sandbox && zg_sandbox_worker(why, sizeof(why)) < 0) {
		zg_err("event=sandbox_failed worker=%u error=\"%s\"", w->host.index, why);
		atomic_store(&w->fleet->state, ZG_GW_STOPPING);
	} else if (w->fleet->sandbox) {
		zg_info("event=sandbox worker=%u %s", w->host.index, why);
	}
	for (;;) {
		int woke, n = epoll_wait(w->epfd, evs, EVENTS_PER_WAIT, wait_ms(w, next_wake_ns));
		if (n < 0 && errno != EINTR) {
			zg_err("event=epoll_failed op=wait worker=%u error=%s", w->host.index,
			       strerror(errno));
			break;
		}
		w->host.now_ms = zg_now_ms();
		atomic_store_explicit(&w->beat_ms, w->host.now_ms, memory_order_relaxed);
		zg_hook_worker_turn(w->host.index);
		/* News first: a connection accepted after a reload has been
		 * published must get the new snapshot, not the old one. */
		woke = batch_kinds(evs, n, kinds);
		if (woke)
			on_wake(w);
		for (int i = 0; i < n; i++)
			dispatch(w, &evs[i], kinds[i], woke);
		/* Only now, with no handler on the stack and no event of this
		 * batch left to look at them, are closed connections freed. */
		free_closed(w);
		run_deferred(w);
		free_closed(w);
		next_wake_ns = w->throttled ? run_throttled(w, zg_shape_now()) : 0;
		free_closed(w);
		if (w->host.now_ms >= next_tick) {
			tick(w);
			free_closed(w);
			next_tick = w->host.now_ms + TICK_MS;
		}
		if (atomic_load(&w->fleet->state) == ZG_GW_STOPPING && !w->host.conns)
			break;
		if (w->draining && !w->host.conns)
			break;
	}
	listeners_close_all(w);
	close_all(w, ZG_R_SHUTDOWN);
	free_closed(w);
	zg_record_refusals_due(&w->host, 1);
	atomic_store_explicit(&w->beat_ms, 0, memory_order_relaxed); /* ended: not watched */
	atomic_fetch_sub(&w->fleet->workers_running, 1);
	zg_fleet_ring(w->fleet);
	return NULL;
}

void zg_worker_fini(struct zg_worker *w)
{
	free(w->ctr.ends);
	w->ctr.ends = NULL;
	if (w->ask_ready) {
		pthread_cond_destroy(&w->ask_done);
		pthread_mutex_destroy(&w->ask_lock);
		w->ask_ready = 0;
	}
	listeners_close_all(w);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->reserve_fd >= 0)
		close(w->reserve_fd);
	w->reserve_fd = -1;
	zg_snapshot_unref(w->host.snap);
	w->host.snap = NULL;
	zg_chaincache_fini(&w->chains);
	zg_relay_spares_free(&w->spares);
	for (unsigned i = 0; i < ZG_ROUTES_MAX; i++)
		zg_tls_session_slot_clear(&w->out_sessions[i]);
}
