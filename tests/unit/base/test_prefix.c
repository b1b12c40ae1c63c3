/* test_prefix.c - prefix parsing and matching, IPv4, IPv6 and mapped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "base/prefix.h"

static int contains(const char *prefix, const char *addr)
{
	struct zg_prefix p, a;
	const char *why = NULL;

	assert_int_equal(zg_prefix_parse(prefix, &p, &why), 0);
	assert_int_equal(zg_prefix_parse(addr, &a, &why), 0);
	return zg_prefix_contains(&p, a.addr);
}

static void parse_errors(void **state)
{
	struct zg_prefix p;
	const char *why = NULL;
	const char *bad[] = {"", "10.0.0.0/33", "10.1.2.3/8", "::1/129", "host.example",
			     "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "1.2.3.4.5", "::/a"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(zg_prefix_parse(bad[i], &p, &why), -1);
		assert_non_null(why);
	}
}

static void v4_matching(void **state)
{
	(void)state;
	assert_true(contains("10.0.0.0/8", "10.255.1.2"));
	assert_false(contains("10.0.0.0/8", "11.0.0.1"));
	assert_true(contains("192.168.1.0/25", "192.168.1.127"));
	assert_false(contains("192.168.1.0/25", "192.168.1.128"));
	assert_true(contains("0.0.0.0/0", "203.0.113.9"));
	assert_false(contains("0.0.0.0/0", "2001:db8::1"));
	assert_true(contains("127.0.0.1", "127.0.0.1"));
	assert_false(contains("127.0.0.1/32", "127.0.0.2"));
}

static void v6_matching(void **state)
{
	(void)state;
	assert_true(contains("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(contains("2001:db8::/32", "2001:db9::1"));
	assert_true(contains("::/0", "10.0.0.1")); /* mapped space is inside ::/0 */
	assert_true(contains("::1/128", "::1"));
	/* an IPv4-mapped client address matches its IPv4 prefix */
	assert_true(contains("10.0.0.0/8", "::ffff:10.1.1.1"));
}

static void sockaddr_mapping(void **state)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_un_like {
		sa_family_t f;
	} other = {AF_UNIX};
	uint8_t a[16];
	struct zg_prefix p;
	const char *why;

	(void)state;
	inet_pton(AF_INET, "172.16.5.4", &in.sin_addr);
	assert_int_equal(zg_prefix_addr_from_sockaddr((struct sockaddr *)&in, a), 0);
	assert_int_equal(zg_prefix_parse("172.16.0.0/12", &p, &why), 0);
	assert_true(zg_prefix_contains(&p, a));
	assert_int_equal(zg_prefix_addr_from_sockaddr((struct sockaddr *)&other, a), -1);
}

static void formatting(void **state)
{
	struct zg_prefix p;
	const char *why;
	char out[64];

	(void)state;
	assert_int_equal(zg_prefix_parse("10.0.0.0/8", &p, &why), 0);
	zg_prefix_format(&p, out, sizeof(out));
	assert_string_equal(out, "10.0.0.0/8");
	assert_int_equal(zg_prefix_parse("2001:db8::/32", &p, &why), 0);
	zg_prefix_format(&p, out, sizeof(out));
	assert_string_equal(out, "2001:db8::/32");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_errors),
		cmocka_unit_test(v4_matching),
		cmocka_unit_test(v6_matching),
		cmocka_unit_test(sockaddr_mapping),
		cmocka_unit_test(formatting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
