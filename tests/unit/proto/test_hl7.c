/* test_hl7.c - the MLLP framer, the MSH parser and the ACK builder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proto/hl7.h"

#define ADT "MSH|^~\\&|LABSYS|SITEA^1.2.3^ISO|ADT|HOSPB|20261206021500||ADT^A01^ADT_A01|MSG00001|P|2.5\r" \
	    "EVN|A01|20261206021500\rPID|1||12345^^^SITEA^MR\r"

static void parses_msh(void **state)
{
	struct zg_hl7_msh m;
	const char *why;

	(void)state;
	assert_int_equal(zg_hl7_parse_msh((const uint8_t *)ADT, strlen(ADT), &m, &why), ZG_HL7_OK);
	assert_int_equal(m.fs, '|');
	assert_string_equal(m.enc, "^~\\&");
	assert_string_equal(m.sending_app, "LABSYS");
	assert_string_equal(m.sending_facility, "SITEA^1.2.3^ISO");
	assert_string_equal(m.facility_ns, "SITEA");
	assert_string_equal(m.message_type, "ADT^A01");
	assert_string_equal(m.control_id, "MSG00001");
	assert_string_equal(m.version, "2.5");
	assert_true(zg_hl7_facility_is(&m, "SITEA"));
	assert_true(zg_hl7_facility_is(&m, "SITEA^1.2.3^ISO"));
	assert_false(zg_hl7_facility_is(&m, "SITEB"));
	assert_true(zg_hl7_type_matches(&m, "ADT^A01"));
	assert_true(zg_hl7_type_matches(&m, "ADT"));
	assert_true(zg_hl7_type_matches(&m, "ADT^*"));
	assert_false(zg_hl7_type_matches(&m, "ADT^A04"));
	assert_false(zg_hl7_type_matches(&m, "AD"));
	assert_false(zg_hl7_type_matches(&m, "ORU"));
}

static void separators_come_from_the_message(void **state)
{
	static const char msg[] = "MSH#$%/*#LAB#FAC$X#RCV#RFAC#2026##ORU$R01#C1#T#2.3\rOBX#1\r";
	struct zg_hl7_msh m;
	const char *why;

	(void)state;
	assert_int_equal(zg_hl7_parse_msh((const uint8_t *)msg, strlen(msg), &m, &why), ZG_HL7_OK);
	assert_string_equal(m.facility_ns, "FAC");
	assert_string_equal(m.message_type, "ORU^R01");
}

static void bad_msh_is_malformed(void **state)
{
	static const char *const bad[] = {
		"PID|1\r",                                 /* not MSH */
		"MSH|^~|LAB|FAC|||||ADT^A01|1|P|2.5\r",    /* two encoding characters */
		"MSH|^^\\&|LAB|FAC|||||ADT^A01|1|P|2.5\r", /* repeated */
		"MSHa^~\\&aLABaFAC\r",                     /* alphanumeric separator */
		"MSH|^~\\&|LAB|FAC|||||ADT^A01||P|2.5\r",  /* no control id */
		"MSH|^~\\&|LAB|FAC||||||1|P|2.5\r",        /* no message type */
		"MSH|^~\\&|LA\x01|FAC|||||ADT^A01|1|P\r",  /* control character */
	};
	struct zg_hl7_msh m;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(zg_hl7_parse_msh((const uint8_t *)bad[i], strlen(bad[i]), &m, &why),
				 ZG_HL7_MALFORMED);
	assert_int_equal(zg_hl7_parse_msh((const uint8_t *)"MSH|^~\\&|LAB", 12, &m, &why), ZG_HL7_NEED_MORE);
}

static void long_fields_are_refused_not_truncated(void **state)
{
	static char msg[4096];
	struct zg_hl7_msh m;
	const char *why;

	(void)state;
	memset(msg, 0, sizeof(msg));
	memcpy(msg, "MSH|^~\\&|LAB|", 13);
	memset(msg + 13, 'F', ZG_HL7_NAME_MAX + 1);
	memcpy(msg + 13 + ZG_HL7_NAME_MAX + 1, "|||||ADT^A01|1|P|2.5\r", 21);
	assert_int_equal(zg_hl7_parse_msh((const uint8_t *)msg, strlen(msg), &m, &why), ZG_HL7_MALFORMED);
	memset(msg, 'X', sizeof(msg));
	memcpy(msg, "MSH|^~\\&|", 9);
	assert_int_equal(zg_hl7_parse_msh((const uint8_t *)msg, sizeof(msg), &m, &why), ZG_HL7_MALFORMED);
}

/* Feed @s in chunks of @chunk; count the events. */
static void feed_all(struct zg_mllp *m, const char *s, size_t n, size_t chunk, unsigned *headers,
		     unsigned *ends, unsigned *bad)
{
	size_t used = 0;

	while (used < n) {
		enum zg_mllp_event ev;
		const char *why;
		size_t k = n - used < chunk ? n - used : chunk;
		size_t got = zg_mllp_feed(m, (const uint8_t *)s + used, k, 100000, &ev, &why);
		used += got;
		*headers += ev == ZG_MLLP_EV_HEADER;
		*ends += ev == ZG_MLLP_EV_END;
		if (ev == ZG_MLLP_EV_BAD) {
			(*bad)++;
			return;
		}
	}
}

static void frames_are_followed_in_any_chunking(void **state)
{
	static const char two[] = "\x0b" ADT "\x1c\r\x0b" ADT "\x1c\r";
	static struct zg_mllp m;

	(void)state;
	for (size_t chunk = 1; chunk < sizeof(two); chunk++) {
		unsigned h = 0, e = 0, b = 0;
		memset(&m, 0, sizeof(m));
		feed_all(&m, two, sizeof(two) - 1, chunk, &h, &e, &b);
		assert_int_equal(h, 2);
		assert_int_equal(e, 2);
		assert_int_equal(b, 0);
		assert_int_equal(m.state, ZG_MLLP_OUTSIDE);
	}
}

static void broken_frames_are_bad(void **state)
{
	static const char *const bad[] = {
		"X\x0bMSH|^~\\&|\r\x1c\r",       /* byte before the start */
		"\x0bMSH|^~\\&\x1c\r",           /* ends inside MSH */
		"\x0bMSH|^~\\&|\rPID\x1cX",      /* no CR after 0x1C */
		"\x0bMSH|^~\\&|\rPID\x0bMSH\r",  /* start inside a message */
	};
	static struct zg_mllp m;
	unsigned h, e, b;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h = e = b = 0;
		memset(&m, 0, sizeof(m));
		feed_all(&m, bad[i], strlen(bad[i]), 3, &h, &e, &b);
		assert_int_equal(b, 1);
	}
}

static void oversized_message_is_bad(void **state)
{
	static char big[200000];
	static struct zg_mllp m;
	unsigned h = 0, e = 0, b = 0;

	(void)state;
	memset(big, 'x', sizeof(big));
	memcpy(big, "\x0b" "MSH|^~\\&|\r", 11);
	memset(&m, 0, sizeof(m));
	feed_all(&m, big, sizeof(big), 4096, &h, &e, &b);
	assert_int_equal(h, 1);
	assert_int_equal(b, 1);
}

static void ack_uses_the_messages_separators(void **state)
{
	static const char msg[] = "MSH#$%/*#LAB#FAC$X#RCV#RFAC#2026##ORU$R01#C1#T#2.3\r";
	static const char want[] = "\x0bMSH#$%/*#RCV#RFAC#LAB#FAC$X#20261206000000##ACK$R01$ACK#ZG7#T#2.3\r"
				   "MSA#AR#C1#facility FAC not allowed   x\r"
				   "ERR###207$facility FAC not allowed   x$HL70357#E####facility FAC not allowed   x\r"
				   "\x1c\r";
	uint8_t out[ZG_HL7_ACK_MAX];
	struct zg_hl7_msh m;
	const char *why;
	size_t n;

	(void)state;
	assert_int_equal(zg_hl7_parse_msh((const uint8_t *)msg, strlen(msg), &m, &why), ZG_HL7_OK);
	n = zg_hl7_build_ack(&m, "AR", 207, "facility FAC not allowed #$x", "20261206000000", "ZG7", out,
			     sizeof(out));
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	assert_int_equal(zg_hl7_build_ack(&m, "AR", 207, "t", "1", "2", out, 20), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_msh),
		cmocka_unit_test(separators_come_from_the_message),
		cmocka_unit_test(bad_msh_is_malformed),
		cmocka_unit_test(long_fields_are_refused_not_truncated),
		cmocka_unit_test(frames_are_followed_in_any_chunking),
		cmocka_unit_test(broken_frames_are_bad),
		cmocka_unit_test(oversized_message_is_bad),
		cmocka_unit_test(ack_uses_the_messages_separators),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
