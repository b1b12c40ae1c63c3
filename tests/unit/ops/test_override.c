/* test_override.c - what an override may relax, its limits and its end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/relax.h"
#include "ops/override.h"

static void only_freshness_and_availability(void **state)
{
	unsigned m;
	char why[256], buf[96];

	(void)state;
	assert_int_equal(zg_relax_parse("crl_stale,cert_expired", &m, why, sizeof(why)), 0);
	assert_int_equal(m, ZG_RELAX_CRL_STALE | ZG_RELAX_CERT_EXPIRED);
	assert_string_equal(zg_relax_format(m, buf, sizeof(buf)), "crl_stale,cert_expired");
	assert_int_equal(zg_relax_parse("directory_stale,directory_participant_limit", &m, why, sizeof(why)),
			 0);
	assert_int_equal(m, ZG_RELAX_DIRECTORY_STALE | ZG_RELAX_PARTICIPANT_LIMIT);
	static const char *never[] = {"cert_revoked", "tls_untrusted_chain", "tls_no_client_certificate",
				      "directory_identity_mismatch", "tls_version", "crl_stale,cert_revoked",
				      "", ",", "crl_stale,"};
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		assert_int_equal(zg_relax_parse(never[i], &m, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "cannot be relaxed"));
}

static void durations(void **state)
{
	unsigned s;

	(void)state;
	assert_int_equal(zg_override_parse_duration("90s", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(zg_override_parse_duration("30m", &s), 0);
	assert_int_equal(s, 1800);
	assert_int_equal(zg_override_parse_duration("2h", &s), 0);
	assert_int_equal(s, 7200);
	assert_int_equal(zg_override_parse_duration("45", &s), 0);
	assert_int_equal(s, 45);
	assert_int_equal(zg_override_parse_duration("0s", &s), -1);
	assert_int_equal(zg_override_parse_duration("-5m", &s), -1);
	assert_int_equal(zg_override_parse_duration("5d", &s), -1);
	assert_int_equal(zg_override_parse_duration("", &s), -1);
}

static struct zg_ovr_entry entry(const char *route, unsigned secs, uint64_t until)
{
	struct zg_ovr_entry e;

	memset(&e, 0, sizeof(e));
	snprintf(e.route, sizeof(e.route), "%s", route);
	e.relax = ZG_RELAX_CRL_STALE;
	e.duration_s = secs;
	e.until_ms = until;
	snprintf(e.reason, sizeof(e.reason), "CA down");
	return e;
}

static void start_replace_stop_expire(void **state)
{
	struct zg_overrides o = {0};
	struct zg_ovr_entry e = entry("in", 60, 1000), ended[ZG_OVERRIDES_MAX];
	struct zg_override table[ZG_OVERRIDES_MAX];
	char why[256];

	(void)state;
	assert_int_equal(zg_override_start(&o, &e, 30, why, sizeof(why)), -1); /* over max */
	e.reason[0] = '\0';
	assert_int_equal(zg_override_start(&o, &e, 3600, why, sizeof(why)), -1); /* no reason */
	e = entry("in", 60, 1000);
	assert_int_equal(zg_override_start(&o, &e, 3600, why, sizeof(why)), 0);
	e = entry("in", 60, 5000); /* the same route: replaced, not added */
	assert_int_equal(zg_override_start(&o, &e, 3600, why, sizeof(why)), 0);
	assert_int_equal(o.n, 1);
	e = entry("out", 60, 2000);
	assert_int_equal(zg_override_start(&o, &e, 3600, why, sizeof(why)), 0);
	assert_int_equal(zg_override_table(&o, table), 2);
	assert_int_equal(zg_override_expire(&o, 1999, ended), 0);
	assert_int_equal(zg_override_expire(&o, 2000, ended), 1);
	assert_string_equal(ended[0].route, "out");
	assert_int_equal(zg_override_stop(&o, "nope", ended), 0);
	assert_int_equal(zg_override_stop(&o, "in", ended), 1);
	assert_int_equal(o.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(only_freshness_and_availability),
		cmocka_unit_test(durations),
		cmocka_unit_test(start_replace_stop_expire),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
