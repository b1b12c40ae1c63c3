/* test_audit_msg.c - XML escaping, time format and the AuditMessage of each
 * event kind (codes, element order, worst-case size, unterminated fields). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "audit/msg.h"

#define SET(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

static void escape_entities(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(zg_audit_xml_escape(out, sizeof(out), "a<b>&\"c'"), 28);
	assert_string_equal(out, "a&lt;b&gt;&amp;&quot;c&apos;");
	zg_audit_xml_escape(out, sizeof(out), "l1\nl2\tx\r");
	assert_string_equal(out, "l1&#10;l2&#9;x&#13;");
	zg_audit_xml_escape(out, sizeof(out), "bell\x07" "del\x7f");
	assert_string_equal(out, "bell?del?");
}

static void escape_utf8(void **state)
{
	char out[64];

	(void)state;
	/* valid 2-, 3- and 4-byte sequences pass through */
	zg_audit_xml_escape(out, sizeof(out), "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x94\x92");
	assert_string_equal(out, "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x94\x92");
	/* overlong '/', lone continuation, surrogate, truncated sequence, > U+10FFFF */
	zg_audit_xml_escape(out, sizeof(out), "\xc0\xaf|\x80|\xed\xa0\x80|\xe6\x97|\xf4\x90\x80\x80");
	assert_string_equal(out, "??|?|???|??|????");
}

static void escape_too_small(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(zg_audit_xml_escape(out, sizeof(out), "&&&&"), -1);
	assert_true(strlen(out) < sizeof(out));
	assert_int_equal(zg_audit_xml_escape(out, 0, "x"), -1);
	assert_int_equal(zg_audit_xml_escape(out, sizeof(out), "1234567"), 7);
	assert_int_equal(zg_audit_xml_escape(out, sizeof(out), "12345678"), -1);
}

static void time_format(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(zg_audit_fmt_time(1795651199123456789LL, out, sizeof(out)), 24);
	assert_string_equal(out, "2026-11-25T23:59:59.123Z");
	assert_int_equal(zg_audit_fmt_time(0, out, sizeof(out)), 24);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	assert_int_equal(zg_audit_fmt_time(-1, out, sizeof(out)), -1);
	assert_int_equal(zg_audit_fmt_time(0, out, 24), -1);
}

static void conn_event(struct zg_audit_event *ev, enum zg_audit_kind k)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = k;
	ev->ts_ns = 1795651199123000000LL;
	SET(ev->route, "pacs-out");
	SET(ev->peer_ip, "192.0.2.7");
	ev->peer_port = 40001;
	SET(ev->local_ip, "198.51.100.1");
	ev->local_port = 2762;
	SET(ev->subject, "CN=modality-1,O=Hospital A");
	SET(ev->san, "DNS:modality-1.a.example,URI:urn:oid:1.2.3");
	SET(ev->participant, "hospital-a");
	ev->reason = ZG_R_CLIENT_CLOSED;
	ev->bytes_in = 1234;
	ev->bytes_out = 5678;
	ev->duration_ms = 42;
	SET(ev->detail, "id=0.17");
}

static const char *find_after(const char *hay, const char *prev, const char *needle)
{
	const char *p = strstr(prev ? prev : hay, needle);
	assert_non_null(p);
	return p;
}

static void detach_message(void **state)
{
	struct zg_audit_event ev;
	char out[ZG_AUDIT_XML_MAX];
	const char *p;
	int n;

	(void)state;
	conn_event(&ev, ZG_AUDIT_CONN_DETACH);
	n = zg_audit_msg_render(&ev, "site-a", out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(out));
	assert_null(strchr(out, '\n'));
	/* A.5.1 order: event, participants, source, object */
	p = find_after(out, NULL, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><AuditMessage>");
	p = find_after(out, p, "<EventIdentification EventActionCode=\"E\" "
			       "EventDateTime=\"2026-11-25T23:59:59.123Z\" EventOutcomeIndicator=\"0\">");
	p = find_after(out, p, "<EventID csd-code=\"110108\" codeSystemName=\"DCM\"");
	p = find_after(out, p, "<EventTypeCode csd-code=\"110125\"");
	p = find_after(out, p, "<EventOutcomeDescription>client_closed: id=0.17</EventOutcomeDescription>");
	p = find_after(out, p, "<ActiveParticipant UserID=\"CN=modality-1,O=Hospital A\" "
			       "AlternativeUserID=\"hospital-a\"");
	p = find_after(out, p, "NetworkAccessPointID=\"192.0.2.7\" NetworkAccessPointTypeCode=\"2\"");
	p = find_after(out, p, "csd-code=\"110153\"");
	p = find_after(out, p, "<ActiveParticipant UserID=\"site-a\" AlternativeUserID=\"pacs-out\"");
	p = find_after(out, p, "csd-code=\"110152\"");
	p = find_after(out, p, "<AuditSourceIdentification AuditEnterpriseSiteID=\"site-a\" "
			       "AuditSourceID=\"site-a\">");
	p = find_after(out, p, "<ParticipantObjectIdentification ParticipantObjectID=\"pacs-out\"");
	/* "1234" and "5678" in base64 */
	p = find_after(out, p, "type=\"bytes_in\" value=\"MTIzNA==\"");
	p = find_after(out, p, "type=\"bytes_out\" value=\"NTY3OA==\"");
	p = find_after(out, p, "</AuditMessage>");
	assert_string_equal(p, "</AuditMessage>");
}

static void codes_per_kind(void **state)
{
	static const struct {
		enum zg_audit_kind k;
		const char *id, *type;
		const char *outcome;
	} rows[] = {
		{ZG_AUDIT_APP_START, "110100", "110120", "0"},
		{ZG_AUDIT_APP_STOP, "110100", "110121", "0"},
		{ZG_AUDIT_CONN_ATTACH, "110108", "110124", "0"},
		{ZG_AUDIT_NODE_AUTH_FAILURE, "110113", "110126", "4"},
		{ZG_AUDIT_CONFIG_CHANGE_NETWORK, "110113", "110128", "0"},
		{ZG_AUDIT_CONFIG_CHANGE_SECURITY, "110113", "110129", "0"},
		{ZG_AUDIT_AUDIT_STARTED, "110113", "110134", "0"},
		{ZG_AUDIT_AUDIT_STOPPED, "110113", "110133", "0"},
		{ZG_AUDIT_EMERGENCY_OVERRIDE_START, "110113", "110127", "0"},
		{ZG_AUDIT_EMERGENCY_OVERRIDE_STOP, "110113", "110138", "0"},
	};
	char out[ZG_AUDIT_XML_MAX], want[128];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct zg_audit_event ev;
		conn_event(&ev, rows[i].k);
		if (rows[i].k == ZG_AUDIT_NODE_AUTH_FAILURE)
			ev.reason = ZG_R_TLS_UNTRUSTED;
		assert_true(zg_audit_msg_render(&ev, "gw", out, sizeof(out)) > 0);
		snprintf(want, sizeof(want), "<EventID csd-code=\"%s\"", rows[i].id);
		assert_non_null(strstr(out, want));
		snprintf(want, sizeof(want), "<EventTypeCode csd-code=\"%s\"", rows[i].type);
		assert_non_null(strstr(out, want));
		snprintf(want, sizeof(want), "EventOutcomeIndicator=\"%s\"", rows[i].outcome);
		assert_non_null(strstr(out, want));
		assert_non_null(strstr(out, "<AuditSourceIdentification"));
	}
}

static void auth_failure_carries_reason(void **state)
{
	struct zg_audit_event ev;
	char out[ZG_AUDIT_XML_MAX];

	(void)state;
	conn_event(&ev, ZG_AUDIT_NODE_AUTH_FAILURE);
	ev.reason = ZG_R_TLS_CERT_REVOKED;
	ev.subject[0] = '\0';
	ev.san[0] = '\0';
	assert_true(zg_audit_msg_render(&ev, "gw", out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "<EventOutcomeDescription>cert_revoked"));
	/* no certificate subject: the peer is named by address */
	assert_non_null(strstr(out, "UserID=\"192.0.2.7:40001\""));
	assert_non_null(strstr(out, "csd-code=\"110182\""));
	/* "cert_revoked" in base64 */
	assert_non_null(strstr(out, "type=\"reason\" value=\"Y2VydF9yZXZva2Vk\""));
}

/* Issue 10 item 7: source and destination each by their own identity and
 * address, the gateway as the application between them; a certificate
 * with an empty subject is named by its SANs, not by someone else's. */
static void parties_per_hop(void **state)
{
	struct zg_audit_event ev;
	char out[ZG_AUDIT_XML_MAX];
	const char *p;

	(void)state;
	conn_event(&ev, ZG_AUDIT_CONN_ATTACH); /* a wrap route: the client has no certificate */
	ev.subject[0] = ev.san[0] = ev.participant[0] = '\0';
	SET(ev.dest_ip, "203.0.113.9");
	ev.dest_port = 2762;
	SET(ev.dest_subject, "CN=zgw.site-b.example");
	SET(ev.dest_san, "DNS:zgw.site-b.example");
	assert_true(zg_audit_msg_render(&ev, "gw", out, sizeof(out)) > 0);
	p = find_after(out, NULL, "<ActiveParticipant UserID=\"192.0.2.7:40001\" UserIsRequestor=\"true\" "
				  "NetworkAccessPointID=\"192.0.2.7\" NetworkAccessPointTypeCode=\"2\">"
				  "<RoleIDCode csd-code=\"110153\"");
	p = find_after(out, p, "<ActiveParticipant UserID=\"CN=zgw.site-b.example\" "
			       "UserName=\"DNS:zgw.site-b.example\" UserIsRequestor=\"false\" "
			       "NetworkAccessPointID=\"203.0.113.9\" NetworkAccessPointTypeCode=\"2\">"
			       "<RoleIDCode csd-code=\"110152\"");
	p = find_after(out, p, "<ActiveParticipant UserID=\"gw\" AlternativeUserID=\"pacs-out\" "
			       "UserIsRequestor=\"false\" NetworkAccessPointID=\"198.51.100.1\"");
	p = find_after(out, p, "csd-code=\"110150\"");
	(void)find_after(out, p, "type=\"upstream_port\" value=\"Mjc2Mg==\"");

	conn_event(&ev, ZG_AUDIT_CONN_ATTACH); /* a bridge client without a subject */
	ev.subject[0] = '\0';
	SET(ev.dest_ip, "203.0.113.9");
	SET(ev.dest_subject, "CN=zgw.site-b.example");
	assert_true(zg_audit_msg_render(&ev, "gw", out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "<ActiveParticipant UserID=\"DNS:modality-1.a.example,URI:urn:oid:1.2.3\" "
				    "AlternativeUserID=\"hospital-a\""));

	ev.kind = ZG_AUDIT_NODE_AUTH_FAILURE; /* the upstream's certificate was refused */
	ev.reason = ZG_R_TLS_CERT_REVOKED;
	assert_true(zg_audit_msg_render(&ev, "gw", out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "<ParticipantObjectIdentification ParticipantObjectID=\"203.0.113.9\""));
}

static void worst_case_fits(void **state)
{
	struct zg_audit_event ev;
	char out[ZG_AUDIT_XML_MAX];

	(void)state;
	memset(&ev, '"', sizeof(ev)); /* every string full of the widest escape, no NUL */
	ev.kind = ZG_AUDIT_CONN_DETACH;
	ev.ts_ns = 1;
	ev.reason = ZG_R_OK;
	ev.peer_port = 65535;
	ev.local_port = 65535;
	ev.dest_port = 65535;
	ev.bytes_in = ev.bytes_out = ev.duration_ms = UINT64_MAX;
	assert_true(zg_audit_msg_render(&ev, "gw", out, sizeof(out)) > 0);
	ev.kind = ZG_AUDIT_NODE_AUTH_FAILURE;
	assert_true(zg_audit_msg_render(&ev, "gw", out, sizeof(out)) > 0);
}

static void rejects(void **state)
{
	struct zg_audit_event ev;
	char out[ZG_AUDIT_XML_MAX];

	(void)state;
	conn_event(&ev, ZG_AUDIT_CONN_ATTACH);
	ev.kind = ZG_AUDIT__KIND_COUNT;
	assert_int_equal(zg_audit_msg_render(&ev, "gw", out, sizeof(out)), -1);
	ev.kind = ZG_AUDIT_CONN_ATTACH;
	assert_int_equal(zg_audit_msg_render(&ev, "gw", out, 200), -1);
	ev.ts_ns = -5;
	assert_int_equal(zg_audit_msg_render(&ev, "gw", out, sizeof(out)), -1);
	assert_string_equal(zg_audit_kind_name(ZG_AUDIT__KIND_COUNT), "unknown");
	assert_string_equal(zg_audit_kind_name(ZG_AUDIT_CONN_DETACH), "conn_detach");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escape_entities),
		cmocka_unit_test(escape_utf8),
		cmocka_unit_test(escape_too_small),
		cmocka_unit_test(time_format),
		cmocka_unit_test(detach_message),
		cmocka_unit_test(codes_per_kind),
		cmocka_unit_test(auth_failure_carries_reason),
		cmocka_unit_test(parties_per_hop),
		cmocka_unit_test(worst_case_fits),
		cmocka_unit_test(rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
