/* audit_msg.c - see audit_msg.h. Element and attribute order follows the
 * DICOM PS3.15 A.5.1 schema: EventIdentification, ActiveParticipant+,
 * AuditSourceIdentification, ParticipantObjectIdentification*. Coded values
 * use the schema's csd-code / codeSystemName / originalText attributes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit/msg.h"

struct kind_row {
	const char *name;
	unsigned event_id;
	const char *event_text;
	unsigned type_code;
	const char *type_text;
};

static const struct kind_row kinds[ZG_AUDIT__KIND_COUNT] = {
	[ZG_AUDIT_APP_START] = {"app_start", 110100, "Application Activity", 110120, "Application Start"},
	[ZG_AUDIT_APP_STOP] = {"app_stop", 110100, "Application Activity", 110121, "Application Stop"},
	[ZG_AUDIT_CONN_ATTACH] = {"conn_attach", 110108, "Network Entry", 110124, "Attach"},
	[ZG_AUDIT_CONN_DETACH] = {"conn_detach", 110108, "Network Entry", 110125, "Detach"},
	[ZG_AUDIT_NODE_AUTH_FAILURE] = {"node_auth_failure", 110113, "Security Alert", 110126,
					"Node Authentication"},
	[ZG_AUDIT_CONFIG_CHANGE_NETWORK] = {"config_change_network", 110113, "Security Alert", 110128,
					    "Network Configuration"},
	[ZG_AUDIT_CONFIG_CHANGE_SECURITY] = {"config_change_security", 110113, "Security Alert", 110129,
					     "Security Configuration"},
	[ZG_AUDIT_AUDIT_STARTED] = {"audit_started", 110113, "Security Alert", 110134,
				    "Audit Recording Started"},
	[ZG_AUDIT_AUDIT_STOPPED] = {"audit_stopped", 110113, "Security Alert", 110133,
				    "Audit Recording Stopped"},
	[ZG_AUDIT_EMERGENCY_OVERRIDE_START] = {"emergency_override_start", 110113, "Security Alert",
					       110127, "Emergency Override Started"},
	[ZG_AUDIT_EMERGENCY_OVERRIDE_STOP] = {"emergency_override_stop", 110113, "Security Alert",
					      110138, "Emergency Override Stopped"},
	[ZG_AUDIT_UPSTREAM_STATE] = {"upstream_state", 110113, "Security Alert", 110128,
				     "Network Configuration"},
	/* DICOM has no code for "records lost": the trail stopped recording
	 * those events, so Audit Recording Stopped, with a serious-failure
	 * outcome and the count (docs/audit.md, "No silent loss") */
	[ZG_AUDIT_RECORDS_LOST] = {"audit_records_lost", 110113, "Security Alert", 110133,
				   "Audit Recording Stopped"},
	[ZG_AUDIT_EXPIRY_WARNING] = {"expiry_warning", 110113, "Security Alert", 110129,
				     "Security Configuration"},
};

const char *zg_audit_kind_name(enum zg_audit_kind k)
{
	return (unsigned)k < ZG_AUDIT__KIND_COUNT ? kinds[k].name : "unknown";
}

unsigned zg_audit_event_id(enum zg_audit_kind k)
{
	return (unsigned)k < ZG_AUDIT__KIND_COUNT ? kinds[k].event_id : 0;
}

unsigned zg_audit_event_type(enum zg_audit_kind k)
{
	return (unsigned)k < ZG_AUDIT__KIND_COUNT ? kinds[k].type_code : 0;
}

/* Length of a valid UTF-8 sequence at @p (at most @n bytes), 0 if invalid:
 * rejects overlong forms, surrogates and code points above U+10FFFF, which
 * XML 1.0 does not allow either. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return len;
}

static const char *xml_entity(unsigned char c)
{
	switch (c) {
	case '&': return "&amp;";
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '"': return "&quot;";
	case '\'': return "&apos;";
	case '\t': return "&#9;";
	case '\n': return "&#10;";
	case '\r': return "&#13;";
	default: return NULL;
	}
}

/* Escape the first @n bytes of @s (stopping at a NUL). */
static int escape_n(char *out, size_t cap, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, i = 0;

	if (cap == 0)
		return -1;
	while (i < n && p[i]) {
		const char *ent = xml_entity(p[i]);
		size_t len = 1, w;
		const char *src;

		if (ent) {
			src = ent;
			w = strlen(ent);
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			src = "?";
			w = 1;
		} else {
			len = utf8_len(p + i, n - i);
			if (len == 0) {
				len = 1;
				src = "?";
				w = 1;
			} else {
				src = (const char *)p + i;
				w = len;
			}
		}
		if (o + w >= cap) {
			out[o] = '\0';
			return -1;
		}
		memcpy(out + o, src, w);
		o += w;
		i += len;
	}
	out[o] = '\0';
	return (int)o;
}

int zg_audit_xml_escape(char *out, size_t cap, const char *s)
{
	return escape_n(out, cap, s, strlen(s));
}

int zg_audit_fmt_time(int64_t ts_ns, char *out, size_t cap)
{
	struct tm tm;
	time_t sec;
	long ms;
	int k;

	if (cap < 25 || ts_ns < 0)
		return -1;
	sec = (time_t)(ts_ns / 1000000000);
	ms = (long)((ts_ns / 1000000) % 1000);
	if (!gmtime_r(&sec, &tm) || tm.tm_year + 1900 > 9999)
		return -1;
	k = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	return k > 0 && (size_t)k < cap ? k : -1;
}

/* Output under construction; the first failure sticks in @bad. */
struct sb {
	char *p;
	size_t cap, len;
	int bad;
};

static void put(struct sb *b, const char *s)
{
	size_t n = strlen(s);

	if (b->bad || b->len + n >= b->cap) {
		b->bad = 1;
		return;
	}
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

static void putf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (b->bad)
		return;
	va_start(ap, fmt);
	k = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= b->cap - b->len) {
		b->bad = 1;
		return;
	}
	b->len += (size_t)k;
}

/* Escaped value of a fixed-size field (@n bytes at most). */
static void put_esc(struct sb *b, const char *s, size_t n)
{
	int k;

	if (b->bad)
		return;
	k = escape_n(b->p + b->len, b->cap - b->len, s, n);
	if (k < 0) {
		b->bad = 1;
		return;
	}
	b->len += (size_t)k;
}

#define FIELD(ev, f) (ev)->f, sizeof((ev)->f)

static int has(const char *s, size_t n)
{
	return n > 0 && s[0] != '\0';
}

static void put_attr(struct sb *b, const char *name, const char *v, size_t n)
{
	putf(b, " %s=\"", name);
	put_esc(b, v, n);
	put(b, "\"");
}

static void put_code(struct sb *b, const char *elem, unsigned code, const char *text)
{
	putf(b, "<%s csd-code=\"%u\" codeSystemName=\"DCM\" originalText=\"%s\"/>", elem, code, text);
}

/* ParticipantObjectDetail values are xs:base64Binary. */
static void put_detail(struct sb *b, const char *type, const char *v, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strnlen(v, n);
	const unsigned char *p = (const unsigned char *)v;
	char q[5];

	putf(b, "<ParticipantObjectDetail type=\"%s\" value=\"", type);
	for (size_t i = 0; i < len; i += 3) {
		unsigned x = (unsigned)p[i] << 16;
		if (i + 1 < len)
			x |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			x |= p[i + 2];
		q[0] = tab[(x >> 18) & 63];
		q[1] = tab[(x >> 12) & 63];
		q[2] = i + 1 < len ? tab[(x >> 6) & 63] : '=';
		q[3] = i + 2 < len ? tab[x & 63] : '=';
		q[4] = '\0';
		put(b, q);
	}
	put(b, "\"/>");
}

static void put_detail_u64(struct sb *b, const char *type, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	put_detail(b, type, num, sizeof(num));
}

static int outcome(const struct zg_audit_event *ev)
{
	switch (ev->kind) {
	case ZG_AUDIT_NODE_AUTH_FAILURE:
		return 4; /* refused: "mitigation effective" (specs.md 3) */
	case ZG_AUDIT_UPSTREAM_STATE:
		return ev->reason == ZG_R_OK ? 0 : 4; /* down: failure, mitigated by failover */
	case ZG_AUDIT_RECORDS_LOST:
		return 8; /* serious failure: records are missing from the trail */
	case ZG_AUDIT_CONN_DETACH: {
		enum zg_class c = zg_reason_class(ev->reason);
		return c == ZG_CL_OK || c == ZG_CL_CLOSED ? 0 : 4;
	}
	default:
		return 0;
	}
}

static int is_conn(enum zg_audit_kind k)
{
	return k == ZG_AUDIT_CONN_ATTACH || k == ZG_AUDIT_CONN_DETACH;
}

static void put_event(struct sb *b, const struct zg_audit_event *ev)
{
	const struct kind_row *r = &kinds[ev->kind];
	char ts[32];

	if (zg_audit_fmt_time(ev->ts_ns, ts, sizeof(ts)) < 0) {
		b->bad = 1;
		return;
	}
	putf(b, "<EventIdentification EventActionCode=\"E\" EventDateTime=\"%s\" "
		"EventOutcomeIndicator=\"%d\">", ts, outcome(ev));
	put_code(b, "EventID", r->event_id, r->event_text);
	put_code(b, "EventTypeCode", r->type_code, r->type_text);
	if (ev->reason != ZG_R_OK || has(FIELD(ev, detail))) {
		put(b, "<EventOutcomeDescription>");
		if (ev->reason != ZG_R_OK)
			put(b, zg_reason_code(ev->reason));
		if (ev->reason != ZG_R_OK && has(FIELD(ev, detail)))
			put(b, ": ");
		if (has(FIELD(ev, detail)))
			put_esc(b, FIELD(ev, detail));
		put(b, "</EventOutcomeDescription>");
	}
	put(b, "</EventIdentification>");
}

/* One end of a connection (DICOM PS3.15 A.5, specs.md 3): UserID is its
 * certificate subject, or its SANs when the subject is empty, or its
 * address when it presented no certificate; its own address is its
 * NetworkAccessPointID. */
struct party {
	const char *ip, *subject, *san, *participant;
	size_t ip_n, subject_n, san_n, participant_n;
	unsigned port;
};

static void put_party(struct sb *b, const struct party *p, int requestor, unsigned role,
		      const char *role_text)
{
	char hp[ZG_AUDIT_IP_MAX + 8];

	put(b, "<ActiveParticipant");
	if (has(p->subject, p->subject_n)) {
		put_attr(b, "UserID", p->subject, p->subject_n);
	} else if (has(p->san, p->san_n)) {
		put_attr(b, "UserID", p->san, p->san_n);
	} else {
		snprintf(hp, sizeof(hp), "%.*s:%u", (int)strnlen(p->ip, p->ip_n), p->ip, p->port);
		put_attr(b, "UserID", hp, sizeof(hp));
	}
	if (p->participant && has(p->participant, p->participant_n))
		put_attr(b, "AlternativeUserID", p->participant, p->participant_n);
	if (has(p->san, p->san_n))
		put_attr(b, "UserName", p->san, p->san_n);
	putf(b, " UserIsRequestor=\"%s\"", requestor ? "true" : "false");
	if (has(p->ip, p->ip_n)) {
		put_attr(b, "NetworkAccessPointID", p->ip, p->ip_n);
		put(b, " NetworkAccessPointTypeCode=\"2\"");
	}
	put(b, ">");
	put_code(b, "RoleIDCode", role, role_text);
	put(b, "</ActiveParticipant>");
}

/* The source: whoever connected to the gateway, the requestor. */
static void put_peer(struct sb *b, const struct zg_audit_event *ev)
{
	const struct party p = {ev->peer_ip, ev->subject, ev->san, ev->participant,
				sizeof(ev->peer_ip), sizeof(ev->subject), sizeof(ev->san),
				sizeof(ev->participant), ev->peer_port};

	if (!has(FIELD(ev, peer_ip)) && !has(FIELD(ev, subject)))
		return;
	put_party(b, &p, 1, 110153, "Source Role ID");
}

/* The destination: the upstream the gateway connected to, if any. */
static void put_dest(struct sb *b, const struct zg_audit_event *ev)
{
	const struct party p = {ev->dest_ip, ev->dest_subject, ev->dest_san, NULL,
				sizeof(ev->dest_ip), sizeof(ev->dest_subject), sizeof(ev->dest_san),
				0, ev->dest_port};

	if (has(FIELD(ev, dest_ip)))
		put_party(b, &p, 0, 110152, "Destination Role ID");
}

/* The gateway itself: the destination of a connection refused before an
 * upstream was reached, else the application (the relay between a source
 * and a destination, or the one reporting app/audit events). */
static void put_self(struct sb *b, const struct zg_audit_event *ev, const char *source_id)
{
	int conn = (is_conn(ev->kind) || ev->kind == ZG_AUDIT_NODE_AUTH_FAILURE) &&
		   !has(FIELD(ev, dest_ip));

	put(b, "<ActiveParticipant");
	put_attr(b, "UserID", source_id, ZG_AUDIT_NAME_MAX);
	if (has(FIELD(ev, route)))
		put_attr(b, "AlternativeUserID", FIELD(ev, route));
	put(b, " UserIsRequestor=\"false\"");
	if (has(FIELD(ev, local_ip))) {
		put_attr(b, "NetworkAccessPointID", FIELD(ev, local_ip));
		put(b, " NetworkAccessPointTypeCode=\"2\"");
	}
	put(b, ">");
	if (conn)
		put_code(b, "RoleIDCode", 110152, "Destination Role ID");
	else
		put_code(b, "RoleIDCode", 110150, "Application");
	put(b, "</ActiveParticipant>");
}

static void put_source(struct sb *b, const char *source_id)
{
	put(b, "<AuditSourceIdentification");
	put_attr(b, "AuditEnterpriseSiteID", source_id, ZG_AUDIT_NAME_MAX);
	put_attr(b, "AuditSourceID", source_id, ZG_AUDIT_NAME_MAX);
	put(b, "><AuditSourceTypeCode csd-code=\"4\" codeSystemName=\"DCM\" "
	       "originalText=\"Application Server\"/></AuditSourceIdentification>");
}

static void put_object_details(struct sb *b, const struct zg_audit_event *ev)
{
	char port[8];

	if (ev->reason != ZG_R_OK || ev->kind == ZG_AUDIT_CONN_DETACH)
		put_detail(b, "reason", zg_reason_code(ev->reason), 64);
	if (has(FIELD(ev, route)))
		put_detail(b, "route", FIELD(ev, route));
	if (ev->peer_port) {
		snprintf(port, sizeof(port), "%u", ev->peer_port);
		put_detail(b, "peer_port", port, sizeof(port));
	}
	if (ev->local_port) {
		snprintf(port, sizeof(port), "%u", ev->local_port);
		put_detail(b, "local_port", port, sizeof(port));
	}
	if (ev->dest_port) {
		snprintf(port, sizeof(port), "%u", ev->dest_port);
		put_detail(b, "upstream_port", port, sizeof(port));
	}
	if (ev->kind == ZG_AUDIT_CONN_DETACH) {
		put_detail_u64(b, "bytes_in", ev->bytes_in);
		put_detail_u64(b, "bytes_out", ev->bytes_out);
		put_detail_u64(b, "duration_ms", ev->duration_ms);
	}
	if (ev->count > 0)
		put_detail_u64(b, ev->kind == ZG_AUDIT_RECORDS_LOST ? "lost" : "count", ev->count);
	if (has(FIELD(ev, detail)))
		put_detail(b, "detail", FIELD(ev, detail));
	if (ev->test)
		put_detail(b, "test", "true", 5);
}

/* Connections: the route is the object. Security alerts: the node the
 * alert is about (the upstream once one was reached, else the peer, else
 * this gateway). Application activity has
 * no object. */
static void put_object(struct sb *b, const struct zg_audit_event *ev, const char *source_id)
{
	if (ev->kind == ZG_AUDIT_APP_START || ev->kind == ZG_AUDIT_APP_STOP)
		return;
	put(b, "<ParticipantObjectIdentification");
	if (is_conn(ev->kind)) {
		put_attr(b, "ParticipantObjectID", has(FIELD(ev, route)) ? ev->route : "-",
			 sizeof(ev->route));
		put(b, " ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"23\">"
		       "<ParticipantObjectIDTypeCode csd-code=\"route\" codeSystemName=\"zonegate\" "
		       "originalText=\"Route\"/>");
	} else {
		if (has(FIELD(ev, dest_ip)))
			put_attr(b, "ParticipantObjectID", FIELD(ev, dest_ip));
		else if (has(FIELD(ev, peer_ip)))
			put_attr(b, "ParticipantObjectID", FIELD(ev, peer_ip));
		else
			put_attr(b, "ParticipantObjectID", source_id, ZG_AUDIT_NAME_MAX);
		put(b, " ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"13\">");
		put_code(b, "ParticipantObjectIDTypeCode", 110182, "Node ID");
	}
	put_object_details(b, ev);
	put(b, "</ParticipantObjectIdentification>");
}

int zg_audit_msg_render(const struct zg_audit_event *ev, const char *source_id, char *out,
			size_t cap)
{
	struct sb b = {out, cap, 0, 0};

	if ((unsigned)ev->kind >= ZG_AUDIT__KIND_COUNT || cap == 0)
		return -1;
	out[0] = '\0';
	put(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><AuditMessage>");
	put_event(&b, ev);
	if (ev->kind != ZG_AUDIT_APP_START && ev->kind != ZG_AUDIT_APP_STOP &&
	    ev->kind != ZG_AUDIT_AUDIT_STARTED && ev->kind != ZG_AUDIT_AUDIT_STOPPED)
		put_peer(&b, ev);
	if (is_conn(ev->kind) || ev->kind == ZG_AUDIT_NODE_AUTH_FAILURE)
		put_dest(&b, ev);
	put_self(&b, ev, source_id);
	put_source(&b, source_id);
	put_object(&b, ev, source_id);
	put(&b, "</AuditMessage>");
	return b.bad ? -1 : (int)b.len;
}
