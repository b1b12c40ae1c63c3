/* test_expiry.c - expiry thresholds: once each, the nearest crossed decides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ops/expiry.h"

#define DAY 86400

static const unsigned days[3] = {30, 7, 1};

static void nothing_due_far_away(void **state)
{
	(void)state;
	assert_int_equal(zg_expiry_due(100 * DAY, 0, days, 3, 0), -1);
	assert_int_equal(zg_expiry_due(30 * DAY + 1, 0, days, 3, 0), -1);
}

static void each_threshold_once(void **state)
{
	(void)state;
	assert_int_equal(zg_expiry_due(30 * DAY, 0, days, 3, 0), 0);
	assert_int_equal(zg_expiry_due(30 * DAY, 0, days, 3, 1u), -1);
	assert_int_equal(zg_expiry_due(7 * DAY, 0, days, 3, 1u), 1);
	assert_int_equal(zg_expiry_due(7 * DAY, 0, days, 3, 3u), -1);
	assert_int_equal(zg_expiry_due(DAY, 0, days, 3, 3u), 2);
	assert_int_equal(zg_expiry_due(-DAY, 0, days, 3, 7u), -1); /* expired: already told */
}

static void the_nearest_crossed_decides(void **state)
{
	(void)state;
	/* first seen 5 days before: the 7-day warning, not the 30-day one */
	assert_int_equal(zg_expiry_due(5 * DAY, 0, days, 3, 0), 1);
	assert_int_equal(zg_expiry_due(-10, 0, days, 3, 0), 2);
}

/* A reload that changes expiry_warn keeps what was said: a warning at D
 * days covers every new threshold of D days or more, not the nearer ones. */
static void rewarn_across_threshold_changes(void **state)
{
	static const unsigned wide[4] = {400, 30, 7, 1};
	static const unsigned one[1] = {2};

	(void)state;
	assert_int_equal(zg_expiry_rewarn(0, days, 3, wide, 4), 0);
	assert_int_equal(zg_expiry_rewarn(1u, days, 3, wide, 4), 3u); /* 30d told: 400d, 30d */
	assert_int_equal(zg_expiry_rewarn(3u, days, 3, wide, 4), 7u);
	assert_int_equal(zg_expiry_rewarn(1u, wide, 4, days, 3), 0);  /* 400d told: 30d not yet */
	assert_int_equal(zg_expiry_rewarn(3u, days, 3, one, 1), 0);   /* 7d told: 2d still to come */
	assert_int_equal(zg_expiry_rewarn(7u, days, 3, one, 1), 1u);  /* 1d told covers 2d */
	assert_int_equal(zg_expiry_rewarn(1u, one, 1, days, 3), 3u);  /* 2d told: 30d, 7d; not 1d */
}

static void days_left_rounds_down(void **state)
{
	(void)state;
	assert_int_equal(zg_expiry_days_left(5 * DAY, 0), 5);
	assert_int_equal(zg_expiry_days_left(5 * DAY - 1, 0), 4);
	assert_int_equal(zg_expiry_days_left(0, 0), 0);
	assert_int_equal(zg_expiry_days_left(-1, 0), -1);
	assert_int_equal(zg_expiry_days_left(-DAY - 1, 0), -2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nothing_due_far_away),
		cmocka_unit_test(each_threshold_once),
		cmocka_unit_test(the_nearest_crossed_decides),
		cmocka_unit_test(rewarn_across_threshold_changes),
		cmocka_unit_test(days_left_rounds_down),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
