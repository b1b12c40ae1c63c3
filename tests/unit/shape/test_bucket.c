/* test_bucket.c - token buckets, borrowing and priority (shape/bucket.c,
 * shape/class.c), on a simulated clock: flows read one lease at a time
 * whenever the shaper lets them, as the relay does, and the bytes each
 * class moved over ten simulated seconds are compared with its rates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "shape/class.h"

#define MBIT 1000000ull
#define MS 1000000ull
#define SIM_MS 10000u

static struct zg_shape_table table;

struct sim_flow {
	struct zg_shape_flow f;
	int busy;      /* 1: always has data to read */
	uint64_t wake; /* 0: may try now */
	uint64_t bytes;
};

static void setup_classes(const struct zg_conf_class *cs, unsigned n, uint64_t link_bps)
{
	struct zg_conf_link link = {.to_client_bps = link_bps, .to_upstream_bps = link_bps};

	zg_shape_init(&table);
	assert_int_equal(zg_shape_apply(&table, cs, n, &link, 0), 0);
}

static void flow_in(struct sim_flow *s, const char *cls, int busy)
{
	struct zg_shape_class *c = zg_shape_find(&table, cls);

	assert_non_null(c);
	memset(s, 0, sizeof(*s));
	zg_shape_flow_init(&s->f, &table, c, ZG_TO_CLIENT);
	s->busy = busy;
}

/* Run @n flows for @ms simulated milliseconds starting at @t0; each flow
 * reads one lease whenever it may, at most 64 a millisecond (a fast peer).
 * The order of flows rotates so that none is always first. */
static uint64_t run(struct sim_flow *fl, unsigned n, uint64_t t0, unsigned ms)
{
	uint64_t now = t0;

	for (unsigned t = 0; t < ms; t++, now += MS) {
		for (unsigned k = 0; k < n; k++) {
			struct sim_flow *s = &fl[(k + t) % n];
			for (int reads = 0; s->busy && reads < 64; reads++) {
				uint64_t wake = 0;
				if (s->wake > now)
					break;
				if (!zg_shape_may_read(&s->f, now, &wake)) {
					assert_true(wake > now); /* never a busy loop */
					s->wake = wake;
					break;
				}
				zg_shape_charge_flow(&s->f, ZG_SHAPE_LEASE, now);
				s->bytes += ZG_SHAPE_LEASE;
			}
		}
	}
	return now;
}

/* bytes over @ms as Mbit/s */
static double mbits(uint64_t bytes, unsigned ms)
{
	return (double)bytes * 8.0 / ((double)ms / 1000.0) / 1e6;
}

static void assert_near(double got, double want, double tol)
{
	if (got < want * (1 - tol) || got > want * (1 + tol))
		fail_msg("got %.3f Mbit/s, want %.3f +- %.0f%%", got, want, tol * 100);
}

static struct zg_conf_class klass(const char *name, uint64_t rate, uint64_t ceil, unsigned prio)
{
	struct zg_conf_class c;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.rate_bps = rate;
	c.ceil_bps = ceil;
	c.priority = prio;
	c.dscp = ZG_DSCP_UNSET;
	return c;
}

static void cost_and_charge(void **state)
{
	(void)state;
	assert_int_equal(zg_shape_cost_ns(1000, 8000), 1000000000ull);
	assert_int_equal(zg_shape_cost_ns(16384, 100000000000ull), 1311); /* rounded up */
	assert_int_equal(zg_shape_charge(0, 5000, 100, 1000), 5100);
	assert_int_equal(zg_shape_charge(6000, 5000, 100, 10000), 6100);
	assert_int_equal(zg_shape_charge(6000, 5000, 100, 500), 5500); /* debt capped */
	assert_true(zg_shape_borrow_threshold(16 * MBIT, 0) > zg_shape_borrow_threshold(16 * MBIT, 7));
	assert_true(zg_shape_link_max_debt(16 * MBIT) > zg_shape_borrow_threshold(16 * MBIT, 0));
}

static void decide_is_pure(void **state)
{
	struct zg_shape_limits l = {.rate_bps = 4 * MBIT, .ceil_bps = 4 * MBIT};
	struct zg_shape_tats t = {.own = 100 * MS, .ceil = 100 * MS};
	uint64_t wake = 0;

	(void)state;
	assert_int_equal(zg_shape_decide(&l, &t, 100 * MS, &wake), ZG_SHAPE_OWN);
	assert_int_equal(zg_shape_decide(&l, &t, 50 * MS, &wake), ZG_SHAPE_WAIT);
	assert_int_equal(wake, 100 * MS - ZG_SHAPE_TAU_NS + ZG_SHAPE_TAU_NS / 2);
	/* unshaped: no limits, never waits */
	memset(&l, 0, sizeof(l));
	t.own = t.ceil = t.link = UINT64_MAX / 4;
	assert_int_equal(zg_shape_decide(&l, &t, 0, &wake), ZG_SHAPE_OWN);
}

/* One busy class alone holds its rate, whatever the number of flows. */
static void rate_holds(void **state)
{
	struct zg_conf_class cs[] = {klass("bulk", 4 * MBIT, 4 * MBIT, 7)};
	struct sim_flow fl[8];

	(void)state;
	setup_classes(cs, 1, 0);
	for (unsigned i = 0; i < 8; i++)
		flow_in(&fl[i], "bulk", 1);
	run(fl, 8, 1000 * MS, SIM_MS);
	{
		uint64_t sum = 0;
		for (unsigned i = 0; i < 8; i++)
			sum += fl[i].bytes;
		assert_near(mbits(sum, SIM_MS), 4.0, 0.02);
		/* and the flows share it: none gets less than half its share */
		for (unsigned i = 0; i < 8; i++)
			assert_true(fl[i].bytes * 16 > sum);
	}
}

/* Clinical idle: bulk borrows the link up to its ceil. */
static void borrowing(void **state)
{
	struct zg_conf_class cs[] = {klass("clinical", 4 * MBIT, 16 * MBIT, 0),
				     klass("bulk", 4 * MBIT, 12 * MBIT, 7)};
	struct sim_flow fl[2];

	(void)state;
	setup_classes(cs, 2, 16 * MBIT);
	flow_in(&fl[0], "clinical", 0);
	flow_in(&fl[1], "bulk", 1);
	run(fl, 2, 1000 * MS, SIM_MS);
	assert_near(mbits(fl[1].bytes, SIM_MS), 12.0, 0.03); /* its ceil */
}

/* Kernel pacing: only flows that wait for tokens are paced, each at its
 * share of the class's ceil (capped by the link), so that together they
 * leave at no more than the ceil; a flow whose source ran dry leaves the
 * count and the others' share grows back. */
static void throttled_flows_share_the_ceil_as_pacing(void **state)
{
	struct zg_conf_class cs[] = {klass("updates", 50 * MBIT, 150 * MBIT, 7),
				     klass("wide", 50 * MBIT, 400 * MBIT, 7)};
	struct sim_flow fl[4];

	(void)state;
	setup_classes(cs, 2, 200 * MBIT);
	for (int i = 0; i < 3; i++)
		flow_in(&fl[i], "updates", 1);
	flow_in(&fl[3], "updates", 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(zg_shape_pace_bps(&fl[i].f), 0); /* nobody waited yet */
	run(fl, 4, 1000 * MS, 200);
	for (int i = 0; i < 3; i++)
		assert_int_equal(zg_shape_pace_bps(&fl[i].f), 150 * MBIT / 3);
	assert_int_equal(zg_shape_pace_bps(&fl[3].f), 0); /* never asked: never paced */
	zg_shape_flow_idle(&fl[2].f);
	assert_int_equal(zg_shape_pace_bps(&fl[2].f), 0);
	assert_int_equal(zg_shape_pace_bps(&fl[0].f), 150 * MBIT / 2);
	zg_shape_flow_idle(&fl[2].f); /* twice is once */
	assert_int_equal(zg_shape_pace_bps(&fl[1].f), 150 * MBIT / 2);
	/* a paced socket whose source ran dry keeps the share it would have
	 * if it waited again, never set free (its queued bytes would leave in
	 * one burst); alone, that is the ceil */
	fl[0].f.paced_bps = 150 * MBIT / 2;
	zg_shape_flow_idle(&fl[0].f);
	assert_int_equal(zg_shape_pace_bps(&fl[0].f), 150 * MBIT / 2);
	zg_shape_flow_idle(&fl[1].f);
	assert_int_equal(zg_shape_pace_bps(&fl[0].f), 150 * MBIT);
	/* a ceil above the link is paced at the link */
	flow_in(&fl[0], "wide", 1);
	run(fl, 1, 2000 * MS, 200);
	assert_int_equal(zg_shape_pace_bps(&fl[0].f), 200 * MBIT);
	zg_shape_flow_idle(&fl[0].f);
}

/* Both busy: each keeps its guarantee and the spare goes to priority 0. */
static void priority(void **state)
{
	struct zg_conf_class cs[] = {klass("clinical", 4 * MBIT, 16 * MBIT, 0),
				     klass("bulk", 4 * MBIT, 16 * MBIT, 7)};
	struct sim_flow fl[5];

	(void)state;
	setup_classes(cs, 2, 16 * MBIT);
	flow_in(&fl[0], "clinical", 1);
	for (unsigned i = 1; i < 5; i++)
		flow_in(&fl[i], "bulk", 1);
	run(fl, 5, 1000 * MS, SIM_MS);
	{
		uint64_t bulk = fl[1].bytes + fl[2].bytes + fl[3].bytes + fl[4].bytes;
		assert_near(mbits(fl[0].bytes, SIM_MS), 12.0, 0.05);
		assert_near(mbits(bulk, SIM_MS), 4.0, 0.1);
		assert_near(mbits(fl[0].bytes + bulk, SIM_MS), 16.0, 0.03); /* the link */
	}
}

/* The worker's view of a throttled class: each due flow reads one lease
 * per round while the shaper allows, then the worker sleeps until the
 * earliest wake (epoll_wait: whole milliseconds). Woken as soon as one
 * lease fits, 8 flows at 150 Mbit/s woke it every millisecond here
 * (10,000 wake-ups in 10 s; the real worker ~1,100 a second) and each
 * wake-up also woke the peers (docs/performance.md). Waking once half a
 * bucket's slack is back gives 1,115: the priority-7 borrowing threshold
 * on the link (10 ms, so 5 ms of refill) binds before the ceil's 20 ms.
 * The rate must not suffer. */
static void throttled_class_wakes_rarely(void **state)
{
	struct zg_conf_class cs[] = {klass("updates", 50 * MBIT, 150 * MBIT, 7)};
	struct sim_flow fl[8];
	uint64_t now = 1000 * MS, end = now + SIM_MS * MS, sum = 0;
	unsigned wakeups = 0;

	(void)state;
	setup_classes(cs, 1, 200 * MBIT);
	for (unsigned i = 0; i < 8; i++)
		flow_in(&fl[i], "updates", 1);
	while (now < end) {
		uint64_t next = UINT64_MAX;
		for (int progress = 1; progress;) {
			progress = 0;
			for (unsigned i = 0; i < 8; i++) {
				struct sim_flow *s = &fl[i];
				uint64_t wake = 0;
				if (s->wake > now)
					continue;
				if (!zg_shape_may_read(&s->f, now, &wake)) {
					assert_true(wake > now);
					s->wake = wake;
					continue;
				}
				zg_shape_charge_flow(&s->f, ZG_SHAPE_LEASE, now);
				s->bytes += ZG_SHAPE_LEASE;
				progress = 1;
			}
		}
		for (unsigned i = 0; i < 8; i++)
			next = fl[i].wake < next ? fl[i].wake : next;
		now = (next + MS - 1) / MS * MS;
		wakeups++;
	}
	for (unsigned i = 0; i < 8; i++)
		sum += fl[i].bytes;
	print_message("throttled class: %u wake-ups in %u ms, %.2f Mbit/s\n", wakeups, SIM_MS,
		      mbits(sum, SIM_MS));
	assert_near(mbits(sum, SIM_MS), 150.0, 0.02);
	assert_true(wakeups <= SIM_MS * 3 / 20); /* at most 150 a second */
}

/* The unshaped default class takes what it wants (today's behaviour), and
 * counts against the link: bulk gets its guarantee and borrows nothing. */
static void default_class_first(void **state)
{
	struct zg_conf_class cs[] = {klass("bulk", 4 * MBIT, 16 * MBIT, 7)};
	struct sim_flow fl[2];

	(void)state;
	setup_classes(cs, 1, 16 * MBIT);
	flow_in(&fl[0], "", 1);
	flow_in(&fl[1], "bulk", 1);
	run(fl, 2, 1000 * MS, SIM_MS);
	assert_true(mbits(fl[0].bytes, SIM_MS) > 1000.0); /* never made to wait */
	assert_near(mbits(fl[1].bytes, SIM_MS), 4.0, 0.05);
}

/* per_connection caps one connection, not the class. */
static void per_connection_cap(void **state)
{
	struct zg_conf_class cs[] = {klass("bulk", 8 * MBIT, 8 * MBIT, 7)};
	struct sim_flow fl[1];

	(void)state;
	cs[0].per_connection_bps = 2 * MBIT;
	setup_classes(cs, 1, 0);
	flow_in(&fl[0], "bulk", 1);
	run(fl, 1, 1000 * MS, SIM_MS);
	assert_near(mbits(fl[0].bytes, SIM_MS), 2.0, 0.03);
}

/* A new rate applied while flows run (reload, window) takes effect at once,
 * and counters, connections and refusals stay with the class. */
static void reapply_and_counters(void **state)
{
	struct zg_conf_class cs[] = {klass("bulk", 4 * MBIT, 4 * MBIT, 7)};
	struct zg_conf_link none = {0};
	struct zg_shape_stats st;
	struct sim_flow fl[1];
	struct zg_shape_class *c;
	uint64_t now, before;

	(void)state;
	cs[0].max_connections = 1;
	setup_classes(cs, 1, 0);
	c = zg_shape_find(&table, "bulk");
	assert_int_equal(zg_shape_admit(c), ZG_R_OK);
	assert_int_equal(zg_shape_admit(c), ZG_R_CLASS_LIMIT);
	flow_in(&fl[0], "bulk", 1);
	now = run(fl, 1, 1000 * MS, SIM_MS);
	before = fl[0].bytes;
	cs[0].rate_bps = cs[0].ceil_bps = 8 * MBIT;
	assert_int_equal(zg_shape_apply(&table, cs, 1, &none, 0), 0);
	run(fl, 1, now, SIM_MS);
	assert_near(mbits(fl[0].bytes - before, SIM_MS), 8.0, 0.03);
	assert_ptr_equal(zg_shape_find(&table, "bulk"), c);
	assert_true(zg_shape_stats_count(&table) == 2);
	assert_int_equal(zg_shape_stats_read(&table, 1, &st), 0);
	assert_string_equal(st.name, "bulk");
	assert_int_equal(st.active, 1);
	assert_int_equal(st.connections, 1);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.bytes[ZG_TO_CLIENT], fl[0].bytes);
	assert_true(st.throttled_ms[ZG_TO_CLIENT] > 0 || fl[0].f.throttled_since);
	assert_int_equal(st.rate_bps, 8 * MBIT);
	assert_int_equal(zg_shape_stats_read(&table, 2, &st), -1);
	zg_shape_release(c);
	/* a class removed by a reload is no longer found for new connections */
	assert_int_equal(zg_shape_apply(&table, cs, 0, &none, 0), 0);
	assert_null(zg_shape_find(&table, "bulk"));
	assert_non_null(zg_shape_find(&table, "default"));
}

/* A window switches the rate in force when the tick reaches it. */
static void window_tick(void **state)
{
	struct zg_conf_class cs[] = {klass("bulk", 4 * MBIT, 4 * MBIT, 7)};
	struct zg_conf_link none = {0};
	struct zg_shape_class *c;

	(void)state;
	cs[0].n_windows = 1;
	cs[0].windows[0] = (struct zg_shape_window){.start_s = 3600, .end_s = 7200, .rate_bps = MBIT};
	zg_shape_init(&table);
	assert_int_equal(zg_shape_apply(&table, cs, 1, &none, 0), 0);
	c = zg_shape_find(&table, "bulk");
	assert_int_equal(atomic_load(&c->rate_bps), 4 * MBIT);
	assert_int_equal(zg_shape_tick(&table, cs, 1, 100), 0);
	assert_int_equal(zg_shape_tick(&table, cs, 1, 3600), 1);
	assert_int_equal(atomic_load(&c->rate_bps), MBIT);
	assert_int_equal(zg_shape_tick(&table, cs, 1, 7200), 1);
	assert_int_equal(atomic_load(&c->rate_bps), 4 * MBIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cost_and_charge),   cmocka_unit_test(decide_is_pure),
		cmocka_unit_test(rate_holds),        cmocka_unit_test(borrowing),
		cmocka_unit_test(priority),          cmocka_unit_test(default_class_first),
		cmocka_unit_test(per_connection_cap), cmocka_unit_test(reapply_and_counters),
		cmocka_unit_test(window_tick),       cmocka_unit_test(throttled_class_wakes_rarely),
		cmocka_unit_test(throttled_flows_share_the_ceil_as_pacing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
