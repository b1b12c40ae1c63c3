/* test_health.c - endpoint health transitions (upstream/health.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/health.h"

static struct zg_health h;

static int setup(void **state)
{
	(void)state;
	zg_health_init(&h, "pacs-a:104");
	return 0;
}

/* The hold-down doubles per consecutive failure, at most 8x. */
static void backoff_doubles_and_caps(void **state)
{
	(void)state;
	assert_int_equal(zg_health_backoff_ms(1000, 1), 1000);
	assert_int_equal(zg_health_backoff_ms(1000, 2), 2000);
	assert_int_equal(zg_health_backoff_ms(1000, 4), 8000);
	assert_int_equal(zg_health_backoff_ms(1000, 40), 8000);
	assert_int_equal(zg_health_backoff_ms(1000, 0), 1000);
}

/* A passive failure holds the endpoint down until the hold-down passes;
 * the change is reported once, however many workers see failures. */
static void passive_failure_holds_down_once(void **state)
{
	uint64_t hold = 0;

	(void)state;
	assert_true(zg_health_usable(&h, 0));
	assert_int_equal(zg_health_passive_fail(&h, ZG_R_CONNECT_FAILED, 1000, 5000, &hold), 1);
	assert_int_equal(hold, 1000);
	assert_false(zg_health_usable(&h, 5999));
	assert_true(zg_health_usable(&h, 6000));
	assert_int_equal(zg_health_passive_fail(&h, ZG_R_CONNECT_FAILED, 1000, 6000, &hold), 0);
	assert_int_equal(hold, 2000);
	assert_int_equal(atomic_load(&h.fails[ZG_FAIL_REFUSED]), 2);
	assert_int_equal(atomic_load(&h.last_reason), ZG_R_CONNECT_FAILED);
	/* a connection that gets through brings it up, once */
	assert_int_equal(zg_health_passive_ok(&h), 1);
	assert_int_equal(zg_health_passive_ok(&h), 0);
	assert_true(zg_health_usable(&h, 6001));
	assert_int_equal(atomic_load(&h.passive_fails), 0);
}

/* Checks: down after `fall` failures in a row, up after `rise` passes in a
 * row; a pass in between starts the count again. */
static void checks_rise_and_fall(void **state)
{
	(void)state;
	assert_int_equal(zg_health_check_result(&h, ZG_R_CHECK_TIMEOUT, 2, 3), 0);
	assert_int_equal(zg_health_check_result(&h, ZG_R_CHECK_TIMEOUT, 2, 3), 0);
	assert_int_equal(zg_health_check_result(&h, ZG_R_OK, 2, 3), 0);
	assert_int_equal(zg_health_check_result(&h, ZG_R_CHECK_TIMEOUT, 2, 3), 0);
	assert_int_equal(zg_health_check_result(&h, ZG_R_CHECK_REJECTED, 2, 3), 0);
	assert_true(zg_health_usable(&h, 0));
	assert_int_equal(zg_health_check_result(&h, ZG_R_CHECK_BAD_REPLY, 2, 3), -1);
	assert_false(zg_health_usable(&h, UINT64_MAX));
	/* a connection getting through does not overrule the checks */
	assert_int_equal(zg_health_passive_ok(&h), 0);
	assert_int_equal(zg_health_check_result(&h, ZG_R_OK, 2, 3), 0);
	assert_int_equal(zg_health_check_result(&h, ZG_R_OK, 2, 3), 1);
	assert_true(zg_health_usable(&h, 0));
	assert_int_equal(atomic_load(&h.fails[ZG_FAIL_TIMEOUT]), 3);
	assert_int_equal(atomic_load(&h.fails[ZG_FAIL_CHECK]), 2);
}

/* Checks passing end a passive hold-down only when they bring the
 * endpoint up; the read API copies what metrics need. */
static void rise_clears_hold_down_and_view(void **state)
{
	struct zg_health_view v;
	uint64_t hold;

	(void)state;
	assert_int_equal(zg_health_passive_fail(&h, ZG_R_TLS_NAME_MISMATCH, 1000, 0, &hold), 1);
	for (int i = 0; i < 3; i++)
		(void)zg_health_check_result(&h, ZG_R_CHECK_TIMEOUT, 2, 3);
	assert_int_equal(zg_health_check_result(&h, ZG_R_OK, 2, 3), 0);
	assert_int_equal(zg_health_check_result(&h, ZG_R_OK, 2, 3), 1);
	assert_true(zg_health_usable(&h, 1));
	zg_health_conn_begin(&h);
	zg_health_read(&h, &v);
	assert_string_equal(v.name, "pacs-a:104");
	assert_int_equal(v.down, 0);
	assert_int_equal(v.conns_active, 1);
	assert_int_equal(v.conns_total, 1);
	assert_int_equal(v.fails[ZG_FAIL_IDENTITY], 1);
	assert_true(v.last_change_s > 0);
	zg_health_conn_end(&h);
	assert_string_equal(zg_fail_kind_name(ZG_FAIL_IDENTITY), "identity");
	assert_int_equal(zg_fail_kind_of(ZG_R_DIR_IDENTITY_MISMATCH), ZG_FAIL_IDENTITY);
	assert_int_equal(zg_fail_kind_of(ZG_R_HANDSHAKE_TIMEOUT), ZG_FAIL_TIMEOUT);
	assert_int_equal(zg_fail_kind_of(ZG_R_TLS_PEER_ALERT), ZG_FAIL_TLS);
	assert_int_equal(zg_fail_kind_of(ZG_R_UPSTREAM_RESET), ZG_FAIL_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_doubles_and_caps),
		cmocka_unit_test_setup(passive_failure_holds_down_once, setup),
		cmocka_unit_test_setup(checks_rise_and_fall, setup),
		cmocka_unit_test_setup(rise_clears_hold_down_and_view, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
