/* test_relay.c - the relay over plain socketpairs: delivery, half-close in
 * both directions, backpressure with bounded memory, reset handling,
 * shaping, and the per-direction filters protocol inspection uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/relay.h"

struct rig {
	int client, upstream;   /* the far ends, driven by the test */
	struct zg_side down, up;
	struct zg_relay r;
};

static void rig_open(struct rig *g)
{
	int a[2], b[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	memset(g, 0, sizeof(*g));
	g->client = a[0];
	g->upstream = b[0];
	g->down.fd = a[1];
	g->up.fd = b[1];
	assert_int_equal(fcntl(a[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(b[1], F_SETFL, O_NONBLOCK), 0);
}

static void rig_close(struct rig *g)
{
	zg_relay_free(&g->r);
	close(g->client);
	close(g->upstream);
	close(g->down.fd);
	close(g->up.fd);
}

/* What the worker does on an epoll event: tell each side what its socket
 * is ready for now (poll() stands in for epoll), then step. */
static void ready(struct zg_side *s)
{
	struct pollfd p = {.fd = s->fd, .events = POLLIN | POLLOUT};
	unsigned r = 0;

	if (poll(&p, 1, 0) == 1) {
		if (p.revents & (POLLIN | POLLERR | POLLHUP))
			r |= ZG_WANT_READ;
		if (p.revents & (POLLOUT | POLLERR | POLLHUP))
			r |= ZG_WANT_WRITE;
	}
	zg_relay_ready(s, r);
}

/* Let the relay run as the worker would over a few epoll rounds: each
 * round reports readiness afresh (the relay may stop after a short read
 * and wait for epoll, as it does for a socket it believes drained). */
static enum zg_reason step(struct rig *g)
{
	enum zg_reason r = ZG_R_OK;

	for (int round = 0; round < 4 && r == ZG_R_OK; round++) {
		ready(&g->down);
		ready(&g->up);
		r = zg_relay_step(&g->r, &g->down, &g->up, 1);
	}
	return r;
}

static void delivers_both_ways(void **state)
{
	struct rig g;
	char buf[16];

	(void)state;
	rig_open(&g);
	assert_int_equal(write(g.client, "A-ASSOC", 7), 7);
	assert_int_equal(write(g.upstream, "ACK", 3), 3);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(read(g.upstream, buf, sizeof(buf)), 7);
	assert_memory_equal(buf, "A-ASSOC", 7);
	assert_int_equal(read(g.client, buf, sizeof(buf)), 3);
	assert_int_equal(g.r.d2u.bytes, 7);
	assert_int_equal(g.r.u2d.bytes, 3);
	/* idle: both sides wait to read, no buffer is held */
	assert_int_equal(g.down.want, ZG_WANT_READ);
	assert_int_equal(g.up.want, ZG_WANT_READ);
	assert_null(g.r.d2u.buf);
	assert_null(g.r.u2d.buf);
	rig_close(&g);
}

/* A drained buffer goes to the worker's spares and the next message is
 * read into it: a request/response exchange allocates nothing per
 * message, an idle connection still holds no buffer, and the spares are
 * bounded. */
static void drained_buffers_are_reused(void **state)
{
	struct zg_relay_spares sp = {.n = 0};
	struct rig g;
	char buf[16], *first;

	(void)state;
	rig_open(&g);
	g.r.spares = &sp;
	assert_int_equal(write(g.client, "REQ1", 4), 4);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(read(g.upstream, buf, sizeof(buf)), 4);
	assert_null(g.r.d2u.buf);
	assert_int_equal(sp.n, 1);
	first = sp.buf[0];
	/* the answer is read into that very buffer, which comes back again */
	assert_int_equal(write(g.upstream, "RSP1", 4), 4);
	ready(&g.up);
	assert_int_equal(zg_relay_step(&g.r, &g.down, &g.up, 1), ZG_R_OK);
	assert_int_equal(read(g.client, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "RSP1", 4);
	assert_null(g.r.u2d.buf);
	assert_int_equal(sp.n, 1);
	assert_ptr_equal(sp.buf[0], first);
	/* a full set of spares frees what comes back beyond it */
	while (sp.n < ZG_RELAY_SPARES_MAX)
		sp.buf[sp.n++] = malloc(ZG_RELAY_BUF);
	assert_int_equal(write(g.client, "REQ2", 4), 4);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(read(g.upstream, buf, sizeof(buf)), 4);
	assert_int_equal(sp.n, ZG_RELAY_SPARES_MAX);
	rig_close(&g);
	zg_relay_spares_free(&sp);
	assert_int_equal(sp.n, 0);
}

static void client_half_close_still_gets_reply(void **state)
{
	struct rig g;
	char buf[16];

	(void)state;
	rig_open(&g);
	assert_int_equal(write(g.client, "query", 5), 5);
	assert_int_equal(shutdown(g.client, SHUT_WR), 0);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(read(g.upstream, buf, sizeof(buf)), 5);
	assert_int_equal(read(g.upstream, buf, sizeof(buf)), 0); /* FIN passed on */
	assert_true(g.up.shut);
	assert_int_equal(write(g.upstream, "reply", 5), 5);
	assert_int_equal(close(g.upstream), 0);
	g.upstream = -1;
	assert_int_equal(step(&g), ZG_R_CLIENT_CLOSED); /* both done; client ended first */
	assert_int_equal(read(g.client, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "reply", 5);
	assert_int_equal(read(g.client, buf, sizeof(buf)), 0);
	rig_close(&g);
}

static void upstream_half_close_still_gets_data(void **state)
{
	struct rig g;
	char buf[16];

	(void)state;
	rig_open(&g);
	assert_int_equal(shutdown(g.upstream, SHUT_WR), 0);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(read(g.client, buf, sizeof(buf)), 0);
	assert_int_equal(write(g.client, "late", 4), 4);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(read(g.upstream, buf, sizeof(buf)), 4);
	assert_int_equal(shutdown(g.client, SHUT_WR), 0);
	assert_int_equal(step(&g), ZG_R_UPSTREAM_CLOSED);
	rig_close(&g);
}

static void backpressure_bounds_memory(void **state)
{
	struct rig g;
	char chunk[4096];
	size_t written = 0, got = 0;
	ssize_t n;

	(void)state;
	rig_open(&g);
	memset(chunk, 'x', sizeof(chunk));
	assert_int_equal(fcntl(g.client, F_SETFL, O_NONBLOCK), 0);
	/* the upstream never reads: fill everything in between */
	for (int round = 0; round < 64; round++) {
		while ((n = write(g.client, chunk, sizeof(chunk))) > 0)
			written += (size_t)n;
		assert_int_equal(step(&g), ZG_R_OK);
	}
	/* the relay holds at most one buffer and has stopped reading the client */
	assert_non_null(g.r.d2u.buf);
	assert_true(g.r.d2u.tail - g.r.d2u.head <= ZG_RELAY_BUF);
	assert_int_equal(g.down.want & ZG_WANT_READ, 0);
	assert_int_equal(g.up.want, ZG_WANT_WRITE | ZG_WANT_READ);
	/* draining the upstream lets everything through, in order */
	assert_int_equal(fcntl(g.upstream, F_SETFL, O_NONBLOCK), 0);
	for (int round = 0; round < 100000 && got < written; round++) {
		char in[8192];
		while ((n = read(g.upstream, in, sizeof(in))) > 0) {
			for (ssize_t i = 0; i < n; i++)
				assert_int_equal(in[i], 'x');
			got += (size_t)n;
		}
		assert_int_equal(step(&g), ZG_R_OK);
	}
	assert_int_equal(got, written);
	assert_int_equal(g.r.d2u.bytes, written);
	rig_close(&g);
}

static void reset_is_an_error_of_that_side(void **state)
{
	struct rig g;

	(void)state;
	rig_open(&g);
	close(g.down.fd);
	g.down.fd = socket(AF_INET, SOCK_STREAM, 0); /* never connected: every I/O fails */
	assert_true(g.down.fd >= 0);
	assert_int_equal(write(g.upstream, "x", 1), 1);
	assert_int_equal(step(&g), ZG_R_CLIENT_RESET);
	rig_close(&g);
}

/* A shaped direction out of tokens is not read and not watched (no
 * EPOLLIN wanted on its source) until the time the relay names; the other
 * direction flows; one lease at most per step. */
static void throttled_direction_is_not_read(void **state)
{
	static struct zg_shape_table t;
	struct zg_conf_class cls = {.name = "bulk", .rate_bps = 8000, .ceil_bps = 8000, .priority = 7};
	struct zg_conf_link none = {0};
	struct rig g;
	char big[3 * ZG_SHAPE_LEASE], out[sizeof(big)];
	ssize_t n;

	(void)state;
	cls.dscp = ZG_DSCP_UNSET;
	zg_shape_init(&t);
	assert_int_equal(zg_shape_apply(&t, &cls, 1, &none, 0), 0);
	rig_open(&g);
	zg_shape_flow_init(&g.r.u2d.flow, &t, zg_shape_find(&t, "bulk"), ZG_TO_CLIENT);
	memset(big, 'u', sizeof(big));
	assert_int_equal(write(g.upstream, big, sizeof(big)), (ssize_t)sizeof(big));
	assert_int_equal(write(g.client, "req", 3), 3);
	assert_int_equal(step(&g), ZG_R_OK);
	/* one lease went through, then the class (8 kbit/s) ran dry */
	n = read(g.client, out, sizeof(out));
	assert_true(n > 0 && n <= (ssize_t)ZG_SHAPE_LEASE);
	assert_true(g.r.u2d.throttled);
	assert_true(g.r.wake_ns > zg_shape_now());
	assert_false(g.up.want & ZG_WANT_READ);
	/* the unshaped direction was delivered */
	n = read(g.upstream, out, sizeof(out));
	assert_int_equal(n, 3);
	rig_close(&g);
}

/* The default class is granted without reading the clock, and is still
 * counted, and charged to a link budget at the real time: a link charged
 * at time 0 would be left with no debt at all. */
static void default_class_counts_and_charges_the_link(void **state)
{
	static struct zg_shape_table t;
	struct zg_conf_link link = {.to_client_bps = 8000000, .to_upstream_bps = 8000000};
	struct zg_shape_flow *f;
	uint64_t before;
	struct rig g;
	char buf[16];

	(void)state;
	zg_shape_init(&t);
	assert_int_equal(zg_shape_apply(&t, NULL, 0, &link, 0), 0);
	rig_open(&g);
	f = &g.r.d2u.flow;
	zg_shape_flow_init(f, &t, zg_shape_find(&t, ""), ZG_TO_UPSTREAM);
	assert_true(f->cls->builtin);
	before = zg_shape_now();
	assert_int_equal(write(g.client, "0123456789", 10), 10);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(read(g.upstream, buf, sizeof(buf)), 10);
	assert_int_equal(atomic_load(&f->dir->bytes), 10);
	/* 10 bytes at 8 Mbit/s: 10 us of the link, charged from now on */
	assert_true(atomic_load(&f->link->tat) >= before + 10000);
	assert_false(g.r.d2u.throttled);
	rig_close(&g);
}

/* A filter in the style of the HL7 one: the client's 'x' bytes are dropped
 * and each becomes an answer ("R") the upstream's filter injects. */
struct drop_x {
	size_t pending;
};

static enum zg_reason drop_x_d2u(void *arg, const uint8_t *in, size_t n, uint8_t *out, size_t *produced)
{
	struct drop_x *f = arg;
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == 'x')
			f->pending++;
		else
			out[w++] = in[i]; /* out + w <= in + i: written front to back */
	}
	*produced = w;
	return ZG_R_OK;
}

static enum zg_reason inject_u2d(void *arg, const uint8_t *in, size_t n, uint8_t *out, size_t *produced)
{
	struct drop_x *f = arg;
	size_t w = 0;

	for (; f->pending > 0 && w < 64; f->pending--)
		out[w++] = 'R';
	if (n) /* a flush passes in = NULL, n = 0 */
		memmove(out + w, in, n);
	*produced = w + n;
	return ZG_R_OK;
}

/* Filters with headroom: what one direction drops the other answers, on an
 * otherwise idle upstream (the flush before a read), and bytes that pass
 * keep their order. */
/* A direction that waited for tokens has its destination socket paced by
 * the kernel at its share of the ceil (one flow: all of it), so the next
 * step's lease leaves spread out, not in one burst at the router. */
static void throttled_destination_is_paced(void **state)
{
	static struct zg_shape_table t;
	struct zg_conf_class cls = {.name = "bulk", .rate_bps = 8000000, .ceil_bps = 8000000, .priority = 7};
	struct zg_conf_link none = {0};
	struct rig g;
	char big[8 * ZG_SHAPE_LEASE], out[sizeof(big)];
	unsigned rate = 0;
	socklen_t len = sizeof(rate);
	struct timespec ts;

	(void)state;
	cls.dscp = ZG_DSCP_UNSET;
	zg_shape_init(&t);
	assert_int_equal(zg_shape_apply(&t, &cls, 1, &none, 0), 0);
	rig_open(&g);
	zg_shape_flow_init(&g.r.u2d.flow, &t, zg_shape_find(&t, "bulk"), ZG_TO_CLIENT);
	memset(big, 'u', sizeof(big));
	assert_int_equal(write(g.upstream, big, sizeof(big)), (ssize_t)sizeof(big));
	/* the burst allowance goes, then the class waits: not paced yet */
	for (int i = 0; i < 16 && !g.r.u2d.throttled; i++)
		assert_int_equal(step(&g), ZG_R_OK);
	assert_true(g.r.u2d.throttled);
	assert_int_equal(getsockopt(g.down.fd, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, &len), 0);
	assert_int_equal(rate, 0xffffffffu);
	/* its tokens back, the next lease paces the client's socket */
	ts.tv_sec = (time_t)(g.r.wake_ns / 1000000000u);
	ts.tv_nsec = (long)(g.r.wake_ns % 1000000000u);
	assert_int_equal(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL), 0);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(getsockopt(g.down.fd, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, &len), 0);
	assert_int_equal(rate, 8000000 / 8);
	assert_true(read(g.client, out, sizeof(out)) > 0);
	rig_close(&g);
}

static void filters_drop_and_inject(void **state)
{
	struct drop_x f = {0};
	struct rig g;
	char buf[64];

	(void)state;
	rig_open(&g);
	g.r.f_d2u = (struct zg_relay_filter){drop_x_d2u, &f, 0, NULL};
	g.r.f_u2d = (struct zg_relay_filter){inject_u2d, &f, 64, &f.pending};
	assert_int_equal(write(g.client, "axbxxc", 6), 6);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(read(g.upstream, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(read(g.client, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "RRR", 3);
	assert_int_equal(write(g.upstream, "ok", 2), 2);
	assert_int_equal(step(&g), ZG_R_OK);
	assert_int_equal(read(g.client, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "ok", 2);
	assert_int_equal(f.pending, 0);
	assert_null(g.r.u2d.buf);
	rig_close(&g);
}

/* A filtered direction is shaped like any other: the class is charged the
 * bytes read, and out of tokens it is throttled with its filter intact. */
static void filtered_direction_is_still_shaped(void **state)
{
	static struct zg_shape_table t;
	struct zg_conf_class cls = {.name = "bulk", .rate_bps = 8000, .ceil_bps = 8000, .priority = 7};
	struct zg_conf_link none = {0};
	struct drop_x f = {0};
	struct rig g;
	char big[3 * ZG_SHAPE_LEASE], out[sizeof(big)];
	ssize_t n;

	(void)state;
	cls.dscp = ZG_DSCP_UNSET;
	zg_shape_init(&t);
	assert_int_equal(zg_shape_apply(&t, &cls, 1, &none, 0), 0);
	rig_open(&g);
	zg_shape_flow_init(&g.r.u2d.flow, &t, zg_shape_find(&t, "bulk"), ZG_TO_CLIENT);
	g.r.f_u2d = (struct zg_relay_filter){inject_u2d, &f, 64, &f.pending};
	memset(big, 'u', sizeof(big));
	assert_int_equal(write(g.upstream, big, sizeof(big)), (ssize_t)sizeof(big));
	assert_int_equal(step(&g), ZG_R_OK);
	n = read(g.client, out, sizeof(out));
	assert_true(n > 0 && n <= (ssize_t)ZG_SHAPE_LEASE);
	assert_true(g.r.u2d.throttled);
	assert_false(g.up.want & ZG_WANT_READ);
	rig_close(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(delivers_both_ways),
		cmocka_unit_test(drained_buffers_are_reused),
		cmocka_unit_test(client_half_close_still_gets_reply),
		cmocka_unit_test(upstream_half_close_still_gets_data),
		cmocka_unit_test(backpressure_bounds_memory),
		cmocka_unit_test(reset_is_an_error_of_that_side),
		cmocka_unit_test(throttled_direction_is_not_read),
		cmocka_unit_test(throttled_destination_is_paced),
		cmocka_unit_test(default_class_counts_and_charges_the_link),
		cmocka_unit_test(filters_drop_and_inject),
		cmocka_unit_test(filtered_direction_is_still_shaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
