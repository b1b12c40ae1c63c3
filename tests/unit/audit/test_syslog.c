/* test_syslog.c - the RFC 5424 message zg_syslog_format() builds for each
 * audit record (audit/syslog.c), byte for byte: what rsyslog and any ATNA
 * repository parse, and what tests/integration/audit_util.py's SYSLOG_RE
 * expects on the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "audit/syslog.h"

/* 2026-11-25T23:59:59.123Z */
#define TS_NS 1795651199123456789LL
#define BOM "\xef\xbb\xbf"
#define XML "<?xml version=\"1.0\"?><AuditMessage/>"

static void test_exact_message(void **state)
{
	char out[512];
	int n;

	(void)state;
	n = zg_syslog_format(out, sizeof(out), TS_NS, "gw-a.example", 4242, 7, XML, strlen(XML));
	assert_string_equal(out, "<85>1 2026-11-25T23:59:59.123Z gw-a.example zonegate 4242 "
				 "IHE+RFC-3881 [meta sequenceId=\"7\"] " BOM XML);
	assert_int_equal(n, (int)strlen(out));
}

/* RFC 5424 6.2.4: HOSTNAME is PRINTUSASCII without spaces, NILVALUE if
 * unknown: cut at the first byte that is not, "-" if nothing is left. */
static void test_hostname_cut_or_nil(void **state)
{
	char out[512];

	(void)state;
	assert_true(zg_syslog_format(out, sizeof(out), TS_NS, "gw a", 1, 1, "x", 1) > 0);
	assert_non_null(strstr(out, "Z gw zonegate 1 "));
	assert_true(zg_syslog_format(out, sizeof(out), TS_NS, "", 1, 1, "x", 1) > 0);
	assert_non_null(strstr(out, "Z - zonegate 1 "));
	assert_true(zg_syslog_format(out, sizeof(out), TS_NS, "\x01gw", 1, 1, "x", 1) > 0);
	assert_non_null(strstr(out, "Z - zonegate 1 "));
}

/* RFC 5424 7.3.1: sequenceId runs 1..2147483647, then starts again at 1. */
static void test_sequence_id_wraps(void **state)
{
	char out[512];

	(void)state;
	assert_true(zg_syslog_format(out, sizeof(out), TS_NS, "h", 1, 2147483647u, "x", 1) > 0);
	assert_non_null(strstr(out, "sequenceId=\"2147483647\""));
	assert_true(zg_syslog_format(out, sizeof(out), TS_NS, "h", 1, 2147483648u, "x", 1) > 0);
	assert_non_null(strstr(out, "sequenceId=\"1\""));
	assert_true(zg_syslog_format(out, sizeof(out), TS_NS, "h", 1, 2ull * 2147483647ull + 5, "x", 1) >
		    0);
	assert_non_null(strstr(out, "sequenceId=\"5\""));
}

/* The message is copied as given (length, not NUL, bounded: the XML may
 * hold anything), and a buffer one byte short is refused, never cut. */
static void test_length_and_capacity(void **state)
{
	char out[512], msg[] = {'a', '\0', 'b'};
	int n, need;

	(void)state;
	n = zg_syslog_format(out, sizeof(out), TS_NS, "h", 1, 1, msg, sizeof(msg));
	assert_true(n > 3);
	assert_memory_equal(out + n - 3, msg, 3);
	need = n + 1; /* and the NUL */
	assert_int_equal(zg_syslog_format(out, (size_t)need, TS_NS, "h", 1, 1, msg, sizeof(msg)), n);
	assert_int_equal(zg_syslog_format(out, (size_t)need - 1, TS_NS, "h", 1, 1, msg, sizeof(msg)),
			 -1);
	assert_int_equal(zg_syslog_format(out, 10, TS_NS, "h", 1, 1, msg, sizeof(msg)), -1);
}

/* A time before 1970 has no RFC 3339 rendering here: refused. */
static void test_bad_time_refused(void **state)
{
	char out[512];

	(void)state;
	assert_int_equal(zg_syslog_format(out, sizeof(out), -1, "h", 1, 1, "x", 1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_message),
		cmocka_unit_test(test_hostname_cut_or_nil),
		cmocka_unit_test(test_sequence_id_wraps),
		cmocka_unit_test(test_length_and_capacity),
		cmocka_unit_test(test_bad_time_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
