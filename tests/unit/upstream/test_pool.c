/* test_pool.c - pool selection order (upstream/pool.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/pool.h"

#define P(w) {(w), 0, 1, 0, 0}
#define B(w) {(w), 1, 1, 0, 0}

static unsigned order_of(const struct zg_pool_cand *c, unsigned n, enum zg_balance b, uint64_t t,
			 unsigned *o)
{
	unsigned k = zg_pool_order(c, n, b, t, o);
	assert_int_equal(k, n); /* every member appears once */
	return k;
}

/* first: primaries in written order, then backups; a backup never leads
 * while a primary is usable. */
static void first_keeps_written_order(void **state)
{
	struct zg_pool_cand c[] = {P(1), B(1), P(1)};
	unsigned o[ZG_POOL_MAX];

	(void)state;
	for (uint64_t t = 0; t < 5; t++) {
		order_of(c, 3, ZG_BALANCE_FIRST, t, o);
		assert_int_equal(o[0], 0);
		assert_int_equal(o[1], 2);
		assert_int_equal(o[2], 1);
	}
}

/* A failing primary moves behind the usable members; with every primary
 * failing the backup leads. */
static void failing_members_go_last(void **state)
{
	struct zg_pool_cand c[] = {P(1), P(1), B(1)};
	unsigned o[ZG_POOL_MAX];

	(void)state;
	c[0].usable = 0;
	order_of(c, 3, ZG_BALANCE_FIRST, 0, o);
	assert_int_equal(o[0], 1);
	assert_int_equal(o[1], 2);
	assert_int_equal(o[2], 0);
	c[1].usable = 0;
	order_of(c, 3, ZG_BALANCE_FIRST, 0, o);
	assert_int_equal(o[0], 2);
}

/* Nothing usable: every member still tried, the earliest hold-down end
 * first, primaries before backups on a tie. */
static void nothing_usable_is_last_resort(void **state)
{
	struct zg_pool_cand c[] = {P(1), B(1), P(1)};
	unsigned o[ZG_POOL_MAX];

	(void)state;
	for (int i = 0; i < 3; i++)
		c[i].usable = 0;
	c[0].held_until_ms = 500;
	c[1].held_until_ms = 100;
	c[2].held_until_ms = 100;
	order_of(c, 3, ZG_BALANCE_FIRST, 0, o);
	assert_int_equal(o[0], 2);
	assert_int_equal(o[1], 1);
	assert_int_equal(o[2], 0);
}

/* round-robin by weight: over one turn of the wheel each primary leads in
 * proportion to its weight; backups never lead. */
static void round_robin_follows_weights(void **state)
{
	struct zg_pool_cand c[] = {P(3), P(1), B(5)};
	unsigned o[ZG_POOL_MAX], led[3] = {0, 0, 0};

	(void)state;
	for (uint64_t t = 0; t < 400; t++) {
		order_of(c, 3, ZG_BALANCE_ROUND_ROBIN, t, o);
		led[o[0]]++;
		assert_int_equal(o[2], 2);
	}
	assert_int_equal(led[0], 300);
	assert_int_equal(led[1], 100);
	assert_int_equal(led[2], 0);
}

/* least-connections: fewest connections per weight leads; ties rotate. */
static void least_connections_per_weight(void **state)
{
	struct zg_pool_cand c[] = {P(1), P(2), P(1)};
	unsigned o[ZG_POOL_MAX], led[3] = {0, 0, 0};

	(void)state;
	c[0].active = 4;
	c[1].active = 6; /* 3 per weight */
	c[2].active = 5;
	order_of(c, 3, ZG_BALANCE_LEAST_CONN, 7, o);
	assert_int_equal(o[0], 1);
	assert_int_equal(o[1], 0);
	assert_int_equal(o[2], 2);
	c[0].active = c[1].active = c[2].active = 0;
	c[1].weight = 1;
	for (uint64_t t = 0; t < 30; t++) {
		order_of(c, 3, ZG_BALANCE_LEAST_CONN, t, o);
		led[o[0]]++;
	}
	assert_int_equal(led[0], 10);
	assert_int_equal(led[1], 10);
	assert_int_equal(led[2], 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_keeps_written_order),
		cmocka_unit_test(failing_members_go_last),
		cmocka_unit_test(nothing_usable_is_last_resort),
		cmocka_unit_test(round_robin_follows_weights),
		cmocka_unit_test(least_connections_per_weight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
