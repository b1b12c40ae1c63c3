/* test_probe.c - health probe requests and strict reply judges
 * (upstream/probe_dicom.c, probe_hl7.c, probe_http.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/probe.h"

static enum zg_reason v;
static char d[ZG_PROBE_DETAIL];

static int dicom(enum zg_dicom_step s, const uint8_t *b, size_t n)
{
	v = ZG_R__COUNT;
	d[0] = '\0';
	return zg_dicom_reply(s, b, n, ZG_PROBE_BUF, &v, d, sizeof(d));
}

/* The A-ASSOCIATE-RQ: PDU length matches, AE titles space padded, the
 * Verification SOP class proposed. */
static void dicom_associate_request(void **state)
{
	uint8_t out[1024];
	size_t n = zg_dicom_request(ZG_DICOM_ASSOCIATE, "ZONEGATE", "PACS", out, sizeof(out));

	(void)state;
	assert_true(n > 74);
	assert_int_equal(out[0], 0x01);
	assert_int_equal((size_t)out[2] << 24 | out[3] << 16 | out[4] << 8 | out[5], n - 6);
	assert_memory_equal(out + 10, "PACS            ", 16);
	assert_memory_equal(out + 26, "ZONEGATE        ", 16);
	assert_non_null(memmem(out, n, "1.2.840.10008.1.1", 17));
	assert_non_null(memmem(out, n, "1.2.840.10008.3.1.1.1", 21));
	assert_int_equal(zg_dicom_request(ZG_DICOM_ASSOCIATE, "A", "B", out, 40), 0); /* no room */
	n = zg_dicom_request(ZG_DICOM_ECHO, "A", "B", out, sizeof(out));
	assert_int_equal(n, 80);
	assert_int_equal(out[0], 0x04);
	assert_int_equal(out[11], 0x03); /* command, last fragment */
	n = zg_dicom_request(ZG_DICOM_RELEASE, "A", "B", out, sizeof(out));
	assert_int_equal(n, 10);
	assert_int_equal(out[0], 0x05);
}

/* An AC with our presentation context accepted; then refused; then an
 * item whose length runs past the PDU. */
static void dicom_associate_replies(void **state)
{
	uint8_t ac[6 + 68 + 8] = {0x02, 0, 0, 0, 0, 68 + 8};

	(void)state;
	ac[6 + 68] = 0x21;
	ac[6 + 68 + 3] = 4;
	ac[6 + 68 + 4] = 1; /* PCID */
	assert_int_equal(dicom(ZG_DICOM_ASSOCIATE, ac, 10), 0); /* incomplete */
	assert_int_equal(dicom(ZG_DICOM_ASSOCIATE, ac, sizeof(ac)), 1);
	assert_int_equal(v, ZG_R_OK);
	ac[6 + 68 + 6] = 3; /* abstract syntax not supported */
	assert_int_equal(dicom(ZG_DICOM_ASSOCIATE, ac, sizeof(ac)), 1);
	assert_int_equal(v, ZG_R_CHECK_REJECTED);
	ac[6 + 68 + 3] = 200;
	assert_int_equal(dicom(ZG_DICOM_ASSOCIATE, ac, sizeof(ac)), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	assert_non_null(strstr(d, "overruns"));
}

/* RJ and A-ABORT are refusals; an unknown type, an oversized PDU and the
 * wrong PDU for the step are bad replies. */
static void dicom_refusals_and_garbage(void **state)
{
	const uint8_t rj[] = {0x03, 0, 0, 0, 0, 4, 0, 1, 1, 7};
	const uint8_t ab[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 2, 1};
	const uint8_t big[] = {0x04, 0, 0x7f, 0xff, 0xff, 0xff};
	const uint8_t junk[] = "GET / HTTP/1.1\r\n";
	const uint8_t rp[] = {0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0};

	(void)state;
	assert_int_equal(dicom(ZG_DICOM_ASSOCIATE, rj, sizeof(rj)), 1);
	assert_int_equal(v, ZG_R_CHECK_REJECTED);
	assert_non_null(strstr(d, "A-ASSOCIATE-RJ result 1"));
	assert_int_equal(dicom(ZG_DICOM_ECHO, ab, sizeof(ab)), 1);
	assert_int_equal(v, ZG_R_CHECK_REJECTED);
	assert_int_equal(dicom(ZG_DICOM_ECHO, big, sizeof(big)), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	assert_int_equal(dicom(ZG_DICOM_ASSOCIATE, junk, sizeof(junk) - 1), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	assert_int_equal(dicom(ZG_DICOM_ASSOCIATE, rp, sizeof(rp)), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	assert_int_equal(dicom(ZG_DICOM_RELEASE, rp, sizeof(rp)), 1);
	assert_int_equal(v, ZG_R_OK);
}

/* C-ECHO-RSP: status 0000 passes, another status is a refusal, an element
 * running past its PDV is a bad reply. */
static void dicom_echo_replies(void **state)
{
	uint8_t rsp[] = {0x04, 0, 0, 0, 0, 4 + 2 + 20,
			 0, 0, 0, 2 + 20, 1, 0x03,
			 0, 0, 0x00, 0x01, 2, 0, 0, 0, 0x30, 0x80, /* (0000,0100) 8030 */
			 0, 0, 0x00, 0x09, 2, 0, 0, 0, 0x00, 0x00}; /* (0000,0900) 0000 */

	(void)state;
	assert_int_equal(dicom(ZG_DICOM_ECHO, rsp, sizeof(rsp)), 1);
	assert_int_equal(v, ZG_R_OK);
	rsp[sizeof(rsp) - 2] = 0x10;
	rsp[sizeof(rsp) - 1] = 0xa7; /* 0xa710: refused */
	assert_int_equal(dicom(ZG_DICOM_ECHO, rsp, sizeof(rsp)), 1);
	assert_int_equal(v, ZG_R_CHECK_REJECTED);
	assert_non_null(strstr(d, "0xa710"));
	rsp[26] = 0xff; /* status element length */
	assert_int_equal(dicom(ZG_DICOM_ECHO, rsp, sizeof(rsp)), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	rsp[26] = 2;
	rsp[20] = 0x01; /* command field 8001: not a C-ECHO-RSP */
	rsp[sizeof(rsp) - 2] = rsp[sizeof(rsp) - 1] = 0;
	assert_int_equal(dicom(ZG_DICOM_ECHO, rsp, sizeof(rsp)), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
}

static int hl7(const char *b, size_t n)
{
	v = ZG_R__COUNT;
	return zg_hl7_reply((const uint8_t *)b, n, ZG_PROBE_BUF, &v, d, sizeof(d));
}

#define HL7(s) hl7(s, sizeof(s) - 1)

static void hl7_frames_and_acks(void **state)
{
	uint8_t out[256];
	char msg[256];
	static const char m[] = "MSH|^~\\&|A\r\nPID|1\nX|2";
	size_t n = zg_hl7_frame(m, sizeof(m) - 1, out, sizeof(out));

	(void)state;
	assert_int_equal(n, 24);
	assert_memory_equal(out, "\x0bMSH|^~\\&|A\rPID|1\rX|2\r\x1c\r", 24);
	assert_int_equal(zg_hl7_frame("PID|1", 5, out, sizeof(out)), 0);
	assert_int_equal(zg_hl7_frame("MSH|\x1c", 5, out, sizeof(out)), 0);
	n = zg_hl7_default_message("20260101000000", "ZGHC1", msg, sizeof(msg));
	assert_true(n > 0 && strncmp(msg, "MSH|^~\\&|ZONEGATE", 17) == 0);
	assert_int_equal(HL7("\x0bMSH|^~\\&|X\rMSA|AA|1\r\x1c\r"), 1);
	assert_int_equal(v, ZG_R_OK);
	assert_int_equal(HL7("\x0bMSH#^~\\&#X\rMSA#CA#1\r\x1c\r"), 1); /* MSH-1 is '#' */
	assert_int_equal(v, ZG_R_OK);
	assert_int_equal(HL7("\x0bMSH|^~\\&|X\rMSA|AR|1|busy\r\x1c\r"), 1);
	assert_int_equal(v, ZG_R_CHECK_REJECTED);
	assert_int_equal(HL7("\x0bMSH|^~\\&|X\rMSA|AA|1\r"), 0); /* incomplete */
	assert_int_equal(HL7("\x0bMSH|^~\\&|X\rMSA|AA|1\r\x1c"), 0);
	assert_int_equal(HL7("\x0bMSH|^~\\&|X\rMSA|AA|1\r\x1cX"), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	assert_int_equal(HL7("\x0bMSH|^~\\&|X\rERR|1\r\x1c\r"), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	assert_int_equal(HL7("\x0bMSH|^~\\&|X\rMSA|ZZ\r\x1c\r"), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	assert_int_equal(HL7("HTTP/1.1 200 OK\r\n"), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	memset(msg, 'x', sizeof(msg));
	msg[0] = 0x0b;
	assert_int_equal(zg_hl7_reply((const uint8_t *)msg, sizeof(msg), sizeof(msg), &v, d,
				      sizeof(d)), 1); /* fills the buffer without an end */
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
}

static int http(const char *b, unsigned want)
{
	v = ZG_R__COUNT;
	return zg_http_reply((const uint8_t *)b, strlen(b), ZG_PROBE_BUF, want, &v, d, sizeof(d));
}

static void http_status_line(void **state)
{
	uint8_t out[512];
	size_t n = zg_http_request("/health", "pacs-a", out, sizeof(out));
	char junk[1100];

	(void)state;
	assert_true(n > 0);
	assert_memory_equal(out, "GET /health HTTP/1.1\r\nHost: pacs-a\r\n", 36);
	assert_int_equal(http("HTTP/1.1 200 OK\r\n", 200), 1);
	assert_int_equal(v, ZG_R_OK);
	assert_int_equal(http("HTTP/1.0 204\r\n", 204), 1);
	assert_int_equal(v, ZG_R_OK);
	assert_int_equal(http("HTTP/1.1 503 Busy\r\n", 200), 1);
	assert_int_equal(v, ZG_R_CHECK_REJECTED);
	assert_int_equal(http("HTTP/1.1 20", 200), 0); /* incomplete */
	assert_int_equal(http("HTTP/1.1 2x0 OK\r\n", 200), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	assert_int_equal(http("SSH-2.0-OpenSSH\r\n", 200), 1);
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
	memset(junk, 'a', sizeof(junk) - 1);
	memcpy(junk, "HTTP/1.1 ", 9);
	junk[sizeof(junk) - 1] = '\0';
	assert_int_equal(http(junk, 200), 1); /* a status line that never ends */
	assert_int_equal(v, ZG_R_CHECK_BAD_REPLY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dicom_associate_request),
		cmocka_unit_test(dicom_associate_replies),
		cmocka_unit_test(dicom_refusals_and_garbage),
		cmocka_unit_test(dicom_echo_replies),
		cmocka_unit_test(hl7_frames_and_acks),
		cmocka_unit_test(http_status_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
