/* test_rate.c - rates, times of day, windows and DSCP names (shape/rate.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "shape/shape.h"

static uint64_t rate_of(const char *s)
{
	uint64_t bps = 0;
	char why[128] = "";

	assert_int_equal(zg_rate_parse(s, strlen(s), &bps, why, sizeof(why)), 0);
	return bps;
}

static void rates(void **state)
{
	(void)state;
	assert_int_equal(rate_of("20Mbit/s"), 20000000);
	assert_int_equal(rate_of("512kbit/s"), 512000);
	assert_int_equal(rate_of("1.5Gbit/s"), 1500000000);
	assert_int_equal(rate_of("64000bit/s"), 64000);
	assert_int_equal(rate_of("4 mbit/s"), 4000000);
	assert_int_equal(rate_of("100Gbit/s"), 100000000000ull);
	assert_int_equal(rate_of("0.125Mbit/s"), 125000);
}

static void bad_rates(void **state)
{
	const char *bad[] = {"", "0Mbit/s", "0", "20", "20Mbps", "20 MB/s", "100.001Gbit/s",
			     "101Gbit/s", "1.2345Mbit/s", "-1Mbit/s", "7kbit/s", "99999999999999999999Gbit/s",
			     "Mbit/s", "1.Mbit/s"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t bps = 0;
		char why[128] = "";
		if (zg_rate_parse(bad[i], strlen(bad[i]), &bps, why, sizeof(why)) != -1)
			fail_msg("'%s' parsed as %llu", bad[i], (unsigned long long)bps);
		assert_true(why[0] != '\0');
	}
}

static void rate_format(void **state)
{
	char b[32];

	(void)state;
	zg_rate_format(20000000, b, sizeof(b));
	assert_string_equal(b, "20Mbit/s");
	zg_rate_format(1500000000, b, sizeof(b));
	assert_string_equal(b, "1500Mbit/s");
	zg_rate_format(125000, b, sizeof(b));
	assert_string_equal(b, "125kbit/s");
	zg_rate_format(8001, b, sizeof(b));
	assert_string_equal(b, "8001bit/s");
}

static void times_of_day(void **state)
{
	const char *bad[] = {"25:00", "24:01", "12:60", "12:00:60", "1:00", "12-00", "aa:bb", "12:00:0"};
	uint32_t s = 0;
	char why[128];

	(void)state;
	assert_int_equal(zg_tod_parse("08:30", 5, &s, why, sizeof(why)), 0);
	assert_int_equal(s, 8 * 3600 + 30 * 60);
	assert_int_equal(zg_tod_parse("23:59:59", 8, &s, why, sizeof(why)), 0);
	assert_int_equal(s, 86399);
	assert_int_equal(zg_tod_parse("24:00", 5, &s, why, sizeof(why)), 0);
	assert_int_equal(s, 86400);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(zg_tod_parse(bad[i], strlen(bad[i]), &s, why, sizeof(why)), -1);
}

static struct zg_shape_window window_of(const char *s)
{
	struct zg_shape_window w;
	char why[128] = "";

	if (zg_window_parse(s, strlen(s), &w, why, sizeof(why)) != 0)
		fail_msg("'%s': %s", s, why);
	return w;
}

static void windows(void **state)
{
	struct zg_shape_window a = window_of("08:00-18:00 rate=20Mbit/s ceil=50Mbit/s");
	struct zg_shape_window night = window_of("22:00-06:00 rate=100Mbit/s");
	struct zg_shape_window b = window_of("18:00-22:00 rate=1Mbit/s");
	struct zg_shape_window c = window_of("05:00-08:00:01 rate=1Mbit/s");
	struct zg_shape_window end = window_of("20:00-24:00 rate=1Mbit/s");
	const char *bad[] = {"", "08:00 rate=1Mbit/s", "08:00-08:00 rate=1Mbit/s", "08:00-09:00",
			     "08:00-09:00 rate=2Mbit/s ceil=1Mbit/s", "08:00-09:00 speed=1Mbit/s",
			     "24:00-01:00 rate=1Mbit/s", "08:00-09:00 rate=1Mbit/s rate=2Mbit/s",
			     "07:61-09:00 rate=1Mbit/s"};

	(void)state;
	assert_int_equal(a.start_s, 8 * 3600);
	assert_int_equal(a.end_s, 18 * 3600);
	assert_int_equal(a.rate_bps, 20000000);
	assert_int_equal(a.ceil_bps, 50000000);
	assert_int_equal(end.end_s, 0); /* 24:00: until midnight */
	assert_true(zg_window_contains(&night, 23 * 3600));
	assert_true(zg_window_contains(&night, 3600));
	assert_false(zg_window_contains(&night, 6 * 3600)); /* end is exclusive */
	assert_true(zg_window_contains(&end, 86399));
	assert_false(zg_window_contains(&end, 0));
	assert_false(zg_windows_overlap(&a, &night));
	assert_false(zg_windows_overlap(&a, &b)); /* 18:00 ends one and starts the other */
	assert_true(zg_windows_overlap(&night, &c));
	assert_true(zg_windows_overlap(&c, &a)); /* one second in common */
	assert_true(zg_windows_overlap(&b, &end));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct zg_shape_window w;
		char why[128] = "";
		if (zg_window_parse(bad[i], strlen(bad[i]), &w, why, sizeof(why)) != -1)
			fail_msg("'%s' accepted", bad[i]);
	}
}

static void effective(void **state)
{
	struct zg_conf_class c = {.rate_bps = 5000000, .ceil_bps = 8000000, .n_windows = 2};
	uint64_t r, k;

	(void)state;
	c.windows[0] = window_of("08:00-18:00 rate=2Mbit/s");
	c.windows[1] = window_of("22:00-06:00 rate=50Mbit/s ceil=90Mbit/s");
	zg_class_effective(&c, 12 * 3600, &r, &k);
	assert_int_equal(r, 2000000);
	assert_int_equal(k, 2000000); /* a window without ceil: ceil = its rate */
	zg_class_effective(&c, 20 * 3600, &r, &k);
	assert_int_equal(r, 5000000);
	assert_int_equal(k, 8000000);
	zg_class_effective(&c, 2 * 3600, &r, &k);
	assert_int_equal(r, 50000000);
	assert_int_equal(k, 90000000);
}

static void dscp(void **state)
{
	int d = -2;
	char why[128];

	(void)state;
	assert_int_equal(zg_dscp_parse("AF41", 4, &d, why, sizeof(why)), 0);
	assert_int_equal(d, 34);
	assert_int_equal(zg_dscp_parse("cs1", 3, &d, why, sizeof(why)), 0);
	assert_int_equal(d, 8);
	assert_int_equal(zg_dscp_parse("EF", 2, &d, why, sizeof(why)), 0);
	assert_int_equal(d, 46);
	assert_int_equal(zg_dscp_parse("63", 2, &d, why, sizeof(why)), 0);
	assert_int_equal(d, 63);
	assert_int_equal(zg_dscp_parse("64", 2, &d, why, sizeof(why)), -1);
	assert_int_equal(zg_dscp_parse("AF44", 4, &d, why, sizeof(why)), -1);
	assert_int_equal(zg_dscp_parse("", 0, &d, why, sizeof(why)), -1);
	assert_string_equal(zg_dscp_name(34), "AF41");
	assert_null(zg_dscp_name(63));
	assert_int_equal(zg_dscp_default(0), 34);
	assert_int_equal(zg_dscp_default(7), 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rates),       cmocka_unit_test(bad_rates), cmocka_unit_test(rate_format),
		cmocka_unit_test(times_of_day), cmocka_unit_test(windows),  cmocka_unit_test(effective),
		cmocka_unit_test(dscp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
