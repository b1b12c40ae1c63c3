/* test_gate.c - the address gate and the connection limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "engine/gate.h"

static void add_prefix(struct zg_conf_route *r, const char *s)
{
	const char *why;

	assert_int_equal(zg_prefix_parse(s, &r->allow_from[r->n_allow_from++], &why), 0);
}

static const uint8_t *addr(const char *s)
{
	static struct zg_prefix p;
	const char *why;

	assert_int_equal(zg_prefix_parse(s, &p, &why), 0);
	return p.addr;
}

static void wrap_without_prefixes_refuses_everyone(void **state)
{
	struct zg_conf_route r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.mode = ZG_MODE_WRAP;
	assert_int_equal(zg_gate_source(&r, addr("127.0.0.1")), ZG_R_ADDR_NOT_ALLOWED);
}

static void unwrap_without_prefixes_defers(void **state)
{
	struct zg_conf_route r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.mode = ZG_MODE_UNWRAP;
	assert_int_equal(zg_gate_source(&r, addr("203.0.113.7")), ZG_R_OK);
}

static void prefixes_decide(void **state)
{
	struct zg_conf_route r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.mode = ZG_MODE_WRAP;
	add_prefix(&r, "10.1.0.0/16");
	add_prefix(&r, "2001:db8:1::/48");
	assert_int_equal(zg_gate_source(&r, addr("10.1.200.3")), ZG_R_OK);
	assert_int_equal(zg_gate_source(&r, addr("10.2.0.1")), ZG_R_ADDR_NOT_ALLOWED);
	assert_int_equal(zg_gate_source(&r, addr("2001:db8:1:ff::1")), ZG_R_OK);
	assert_int_equal(zg_gate_source(&r, addr("2001:db8:2::1")), ZG_R_ADDR_NOT_ALLOWED);
	assert_int_equal(zg_gate_source(&r, addr("::ffff:10.1.0.9")), ZG_R_OK);
	r.mode = ZG_MODE_BRIDGE;
	assert_int_equal(zg_gate_source(&r, addr("192.0.2.1")), ZG_R_ADDR_NOT_ALLOWED);
}

static void limits(void **state)
{
	(void)state;
	assert_int_equal(zg_gate_admit(0, 1, 0, 1), ZG_R_OK);
	assert_int_equal(zg_gate_admit(1, 1, 1, 10), ZG_R_ROUTE_LIMIT);
	assert_int_equal(zg_gate_admit(0, 5, 10, 10), ZG_R_GLOBAL_LIMIT);
	/* both exhausted: the gateway-wide limit is named */
	assert_int_equal(zg_gate_admit(5, 5, 10, 10), ZG_R_GLOBAL_LIMIT);
	assert_int_equal(zg_gate_admit(4, 5, 9, 10), ZG_R_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wrap_without_prefixes_refuses_everyone),
		cmocka_unit_test(unwrap_without_prefixes_defers),
		cmocka_unit_test(prefixes_decide),
		cmocka_unit_test(limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
