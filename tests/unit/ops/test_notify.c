/* test_notify.c - the systemd notification protocol's pure parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ops/notify.h"

static void path_and_abstract_addresses(void **state)
{
	struct sockaddr_un sa;
	socklen_t len;

	(void)state;
	assert_int_equal(zg_notify_addr("/run/systemd/notify", &sa, &len), 0);
	assert_string_equal(sa.sun_path, "/run/systemd/notify");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
	assert_int_equal(zg_notify_addr("@sd-notify", &sa, &len), 0);
	assert_int_equal(sa.sun_path[0], '\0');
	assert_memory_equal(sa.sun_path + 1, "sd-notify", 9);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("@sd-notify"));
}

static void bad_addresses_refused(void **state)
{
	struct sockaddr_un sa;
	socklen_t len;
	char big[200];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(zg_notify_addr(NULL, &sa, &len), -1);
	assert_int_equal(zg_notify_addr("", &sa, &len), -1);
	assert_int_equal(zg_notify_addr("relative/sock", &sa, &len), -1);
	assert_int_equal(zg_notify_addr("@", &sa, &len), -1);
	assert_int_equal(zg_notify_addr(big, &sa, &len), -1);
}

static void watchdog_interval_is_half_the_timeout(void **state)
{
	(void)state;
	assert_int_equal(zg_notify_ping_ms("10000000", NULL, 42), 5000);
	assert_int_equal(zg_notify_ping_ms("10000000", "42", 42), 5000);
	assert_int_equal(zg_notify_ping_ms("10000000", "43", 42), 0); /* another process's */
	assert_int_equal(zg_notify_ping_ms(NULL, NULL, 42), 0);
	assert_int_equal(zg_notify_ping_ms("10s", NULL, 42), 0);
	assert_int_equal(zg_notify_ping_ms("1000", NULL, 42), 0);
	assert_int_equal(zg_notify_ping_ms("10000000", "x", 42), 0);
}

static void a_stale_heartbeat_is_found(void **state)
{
	uint64_t beats[3] = {10000, 9500, 0};

	(void)state;
	assert_int_equal(zg_notify_stalled(beats, 3, 10200, 1000), -1);
	assert_int_equal(zg_notify_stalled(beats, 3, 10600, 1000), 1);
	beats[1] = 10600; /* turning again; the ended loop (0) is never stale */
	assert_int_equal(zg_notify_stalled(beats, 3, 10600, 1000), -1);
	assert_int_equal(zg_notify_stalled(beats, 0, 99999, 1000), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(path_and_abstract_addresses),
		cmocka_unit_test(bad_addresses_refused),
		cmocka_unit_test(watchdog_interval_is_half_the_timeout),
		cmocka_unit_test(a_stale_heartbeat_is_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
