/* record.c - what a connection leaves behind: its log line and its audit
 * records. Called from conn.c's refusal and close paths, once each. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "audit/agg.h"
#include "audit/audit.h"
#include "base/log.h"
#include "base/relax.h"
#include "engine/record.h"

static void audit_fill(struct zg_audit_event *ev, enum zg_audit_kind kind,
		       const struct zg_route_rt *route, const struct zg_sockaddr *peer, enum zg_reason reason,
		       const char *detail)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->reason = reason;
	snprintf(ev->route, sizeof(ev->route), "%.*s", (int)sizeof(ev->route) - 1, route->conf->name);
	zg_sockaddr_ip((const struct sockaddr *)&peer->ss, ev->peer_ip, sizeof(ev->peer_ip),
		       &ev->peer_port);
	if (detail)
		snprintf(ev->detail, sizeof(ev->detail), "%s", detail);
}

/* The parties of @c as DICOM PS3.15 A.5 names them, each hop with its own
 * identity: the source is whoever connected to us (by certificate on
 * unwrap and bridge, by address on wrap), the destination the upstream (by
 * certificate on wrap and bridge, by address on unwrap) once one was
 * chosen. The address of each is its own (NetworkAccessPointID). */
static void fill_parties(struct zg_audit_event *ev, const struct zg_conn *c)
{
	snprintf(ev->subject, sizeof(ev->subject), "%s", c->subject);
	snprintf(ev->san, sizeof(ev->san), "%s", c->sans);
	if (c->participant)
		snprintf(ev->participant, sizeof(ev->participant), "%s", c->participant->id);
	if (!c->upstream_addr.len)
		return;
	zg_sockaddr_ip((const struct sockaddr *)&c->upstream_addr.ss, ev->dest_ip, sizeof(ev->dest_ip),
		       &ev->dest_port);
	snprintf(ev->dest_subject, sizeof(ev->dest_subject), "%s", c->up_subject);
	snprintf(ev->dest_san, sizeof(ev->dest_san), "%s", c->up_sans);
}

/* ATNA: a refusal is a node-authentication failure (110113/110126) naming
 * the rule. Returns what zg_audit_emit returned. */
static int audit_refusal(struct zg_conn_host *h, const struct zg_route_rt *route,
			 const struct zg_sockaddr *peer, enum zg_reason reason, const char *detail,
			 const struct zg_conn *c)
{
	struct zg_audit_event ev;

	if (!h->audit)
		return 0;
	audit_fill(&ev, ZG_AUDIT_NODE_AUTH_FAILURE, route, peer, reason, detail);
	if (c)
		fill_parties(&ev, c);
	return zg_audit_emit(h->audit, &ev);
}

/* The gateway's own address on the connection, for the record's
 * NetworkAccessPoint (only asked for when an audit trail is kept). */
static void local_addr(const struct zg_conn *c, struct zg_audit_event *ev)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (c->down.fd >= 0 && getsockname(c->down.fd, (struct sockaddr *)&ss, &sl) == 0)
		zg_sockaddr_ip((struct sockaddr *)&ss, ev->local_ip, sizeof(ev->local_ip), &ev->local_port);
}

/* The checks an emergency override relaxed to admit @c (0: none). */
static unsigned relaxed_of(const struct zg_conn *c)
{
	return c->relaxed | c->verdict_in.relaxed | c->verdict_out.relaxed;
}

static const char *clinical_fields(const struct zg_conn *c, char *out, size_t cap);

/* ATNA network entry (110108): attach when relaying starts, detach with
 * bytes and duration at close. A connection admitted only because of an
 * emergency override says so in both. */
static int audit_entry(const struct zg_conn *c, enum zg_audit_kind kind, enum zg_reason reason)
{
	struct zg_audit_event ev;
	char k[176];

	if (!c->h->audit)
		return 0;
	audit_fill(&ev, kind, c->route, &c->peer, reason, NULL);
	local_addr(c, &ev);
	fill_parties(&ev, c);
	/* the AE titles or the HL7 facility inspection read belong to the
	 * record of the connection they were read on */
	if (relaxed_of(c)) {
		char rx[96];
		snprintf(ev.detail, sizeof(ev.detail),
			 "connection %u.%llu%s admitted by emergency override (relaxed: %s)", c->h->index,
			 (unsigned long long)c->id, clinical_fields(c, k, sizeof(k)),
			 zg_relax_format(relaxed_of(c), rx, sizeof(rx)));
	} else if (c->ocsp_soft) {
		snprintf(ev.detail, sizeof(ev.detail),
			 "connection %u.%llu%s admitted without an OCSP answer (ocsp = soft)",
			 c->h->index, (unsigned long long)c->id, clinical_fields(c, k, sizeof(k)));
	} else {
		snprintf(ev.detail, sizeof(ev.detail), "connection %u.%llu%s", c->h->index,
			 (unsigned long long)c->id, clinical_fields(c, k, sizeof(k)));
	}
	ev.bytes_in = c->relay.d2u.bytes;
	ev.bytes_out = c->relay.u2d.bytes;
	ev.duration_ms = c->h->now_ms - c->started_ms;
	return zg_audit_emit(c->h->audit, &ev);
}

/* The `event=refused` line, unless @h's log fold says that the same route,
 * source address and reason have already been logged often enough this
 * interval: a flood then costs a line per key and interval, not per
 * connect (zg_record_refusals_due writes the counts). */
static void log_refusal(struct zg_conn_host *h, const struct zg_route_rt *route, uint64_t id,
			const struct zg_sockaddr *peer, enum zg_reason reason, const char *detail)
{
	char p[64], d[256];
	struct zg_audit_event key;

	audit_fill(&key, ZG_AUDIT_NODE_AUTH_FAILURE, route, peer, reason, NULL);
	if (h->log_fold && zg_agg_note(h->log_fold, &key, (int64_t)h->now_ms, 1) == ZG_AGG_FOLDED)
		return;
	zg_sockaddr_format((const struct sockaddr *)&peer->ss, p, sizeof(p));
	zg_info("event=refused route=%s id=%u.%llu peer=%s reason=%s detail=%s", route->conf->name,
		h->index, (unsigned long long)id, p, zg_reason_code(reason),
		zg_log_quote(d, sizeof(d), detail && *detail ? detail : zg_reason_text(reason)));
}

void zg_record_refusals_due(struct zg_conn_host *h, int all)
{
	struct zg_audit_event out[8];
	size_t n;

	if (!h->log_fold)
		return;
	do {
		n = zg_agg_due(h->log_fold, (int64_t)h->now_ms, all, out, sizeof(out) / sizeof(out[0]));
		for (size_t i = 0; i < n; i++)
			zg_info("event=refused_repeated route=%s peer=%s reason=%s count=%llu "
				"seconds=%llu", out[i].route[0] ? out[i].route : "-",
				out[i].peer_ip[0] ? out[i].peer_ip : "-", zg_reason_code(out[i].reason),
				(unsigned long long)out[i].count,
				(unsigned long long)(out[i].duration_ms / 1000));
	} while (n == sizeof(out) / sizeof(out[0]));
}

/* How the peer's chain was judged: "verified" in full, "cached" (a chain
 * verified before under the same snapshot), "resumed" (no chain sent). */
static const char *chain_source(const struct zg_conn *c, SSL *tls)
{
	const struct zg_tls_verdict *v = c->down.ssl ? &c->verdict_in : &c->verdict_out;

	if (!tls)
		return "-";
	if (v->chain_cached)
		return "cached";
	return SSL_session_reused(tls) ? "resumed" : "verified";
}

/* The clinical identities inspection read (proto/): " calling_ae=.. called_ae=..",
 * " hl7_facility=.. hl7_type=.." (the last message), or "" on a route that
 * does not inspect. */
static const char *clinical_fields(const struct zg_conn *c, char *out, size_t cap)
{
	char a[80], b[48];

	if (c->clin.msg_type[0]) {
		snprintf(out, cap, " hl7_facility=%s hl7_type=%s",
			 zg_log_quote(a, sizeof(a), c->clin.facility[0] ? c->clin.facility : "-"),
			 zg_log_quote(b, sizeof(b), c->clin.msg_type));
		return out;
	}
	if (!c->clin.calling_ae[0])
		return "";
	snprintf(out, cap, " calling_ae=%s called_ae=%s", zg_log_quote(a, sizeof(a), c->clin.calling_ae),
		 zg_log_quote(b, sizeof(b), c->clin.called_ae));
	return out;
}

/* A bridge route's second certificate: the upstream's, after the
 * client's subject and SANs. "" on other routes. */
static const char *bridge_upstream(const struct zg_conn *c, char *out, size_t cap)
{
	char subj[ZG_IDENT_MAX + 8], san[ZG_IDENT_MAX + 8];

	out[0] = '\0';
	if (c->route->conf->mode == ZG_MODE_BRIDGE)
		snprintf(out, cap, " upstream_subject=%s upstream_san=%s",
			 zg_log_quote(subj, sizeof(subj), c->up_subject[0] ? c->up_subject : "-"),
			 zg_log_quote(san, sizeof(san), c->up_sans[0] ? c->up_sans : "-"));
	return out;
}

/* subject/san name the certificate of the hop that has one first: the
 * client's on unwrap and bridge, the upstream's on wrap. */
static void log_close(const struct zg_conn *c, enum zg_reason reason, const char *detail)
{
	char p[64], u[64], subj[ZG_IDENT_MAX + 8], san[ZG_IDENT_MAX + 8], d[256], rx[112] = "";
	char up[2 * ZG_IDENT_MAX + 64], k[176];
	SSL *tls = c->down.ssl ? c->down.ssl : c->up.ssl;
	const char *s = c->down.ssl ? c->subject : c->up_subject;
	const char *n = c->down.ssl ? c->sans : c->up_sans;

	if (relaxed_of(c)) {
		char list[96];
		snprintf(rx, sizeof(rx), " override=%s", zg_relax_format(relaxed_of(c), list, sizeof(list)));
	} else if (c->ocsp_soft) {
		snprintf(rx, sizeof(rx), " ocsp=soft_fail");
	}

	zg_sockaddr_format((const struct sockaddr *)&c->peer.ss, p, sizeof(p));
	if (c->upstream_addr.len)
		zg_sockaddr_format((const struct sockaddr *)&c->upstream_addr.ss, u, sizeof(u));
	else
		snprintf(u, sizeof(u), "-");
	zg_info("event=conn_close route=%s id=%u.%llu peer=%s upstream=%s tls=%s cipher=%s resumed=%d "
		"chain=%s subject=%s san=%s%s bytes_in=%llu bytes_out=%llu duration_ms=%llu%s "
		"reason=%s%s%s%s",
		c->route->conf->name, c->h->index, (unsigned long long)c->id, p, u,
		tls ? SSL_get_version(tls) : "-", tls ? SSL_get_cipher_name(tls) : "-",
		tls ? SSL_session_reused(tls) : 0, chain_source(c, tls),
		zg_log_quote(subj, sizeof(subj), s[0] ? s : "-"),
		zg_log_quote(san, sizeof(san), n[0] ? n : "-"),
		bridge_upstream(c, up, sizeof(up)),
		(unsigned long long)c->relay.d2u.bytes, (unsigned long long)c->relay.u2d.bytes,
		(unsigned long long)(c->h->now_ms - c->started_ms), clinical_fields(c, k, sizeof(k)),
		zg_reason_code(reason),
		detail ? " detail=" : "", detail ? zg_log_quote(d, sizeof(d), detail) : "", rx);
}


void zg_record_refusal(struct zg_conn_host *h, const struct zg_route_rt *route, uint64_t id,
		       const struct zg_sockaddr *peer, enum zg_reason reason, const char *detail,
		       const struct zg_conn *c)
{
	log_refusal(h, route, id, peer, reason, detail);
	(void)audit_refusal(h, route, peer, reason, detail, c);
}

int zg_record_attach(const struct zg_conn *c)
{
	return audit_entry(c, ZG_AUDIT_CONN_ATTACH, ZG_R_OK);
}

void zg_record_message_refusal(const struct zg_conn *c, enum zg_reason reason, const char *detail)
{
	char p[64], d[256], k[176];

	zg_sockaddr_format((const struct sockaddr *)&c->peer.ss, p, sizeof(p));
	zg_info("event=message_refused route=%s id=%u.%llu peer=%s%s reason=%s detail=%s",
		c->route->conf->name, c->h->index, (unsigned long long)c->id, p,
		clinical_fields(c, k, sizeof(k)), zg_reason_code(reason),
		zg_log_quote(d, sizeof(d), detail && *detail ? detail : zg_reason_text(reason)));
	(void)audit_refusal(c->h, c->route, &c->peer, reason, detail, c);
}

void zg_record_close(const struct zg_conn *c, enum zg_reason reason, const char *detail)
{
	if (c->state != ZG_CS_RELAYING && !c->attached) {
		zg_record_refusal(c->h, c->route, c->id, &c->peer, reason, detail, c);
		return;
	}
	log_close(c, reason, detail);
	(void)audit_entry(c, ZG_AUDIT_CONN_DETACH, reason);
}
