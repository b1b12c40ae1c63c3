/* clinical.c - see clinical.h. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "engine/clinical.h"
#include "engine/conn.h"
#include "engine/record.h"

/* Give up on @c: the caller (conn.c) closes it with @r and @detail. -1. */
static int end(struct zg_conn *c, enum zg_reason r, const char *detail)
{
	c->clin.end = r;
	snprintf(c->clin.end_detail, sizeof(c->clin.end_detail), "%s", detail ? detail : "");
	return -1;
}

int zg_clinical_first(const struct zg_conn *c)
{
	return c->route->conf->insp.kind == ZG_INSPECT_DICOM;
}

/* Best effort: a refusal is one small PDU on a socket we have not written
 * to yet, so it fits the send buffer; if it does not, the close alone
 * still tells the client. */
static void answer(struct zg_conn *c, const uint8_t *pdu, size_t n)
{
	char sink[4096];

	(void)zg_side_write(&c->down, pdu, n);
	/* Closing a socket with unread input sends a reset, and a reset can
	 * overtake the answer in the client's stack: discard what has already
	 * arrived (bounded) so the close is a FIN after our PDU. */
	for (int i = 0; i < 16 && zg_side_read(&c->down, sink, sizeof(sink)) > 0; i++)
		;
}

static int refuse_abort(struct zg_conn *c, enum zg_dul_status st, const char *why)
{
	uint8_t ab[ZG_DUL_ABORT_LEN];

	zg_dul_build_abort(ab, ZG_DUL_AB_SRC_PROVIDER, zg_dul_abort_reason(st));
	answer(c, ab, sizeof(ab));
	return end(c, zg_inspect_dicom_status_reason(st), why);
}

/* Bytes still missing for a complete first PDU: its header, then its body
 * as the header announces (bounded by the buffer; the parser says why a
 * longer one is refused). */
static size_t missing(const struct zg_clinical *k)
{
	uint8_t type;
	uint32_t len;

	if (zg_dul_header(k->held, k->held_len, &type, &len) < 0)
		return ZG_DUL_HDR - k->held_len;
	if (len > ZG_RELAY_BUF - ZG_DUL_HDR)
		return 0;
	return ZG_DUL_HDR + (size_t)len - k->held_len;
}

/* Accepted with contexts refused: take them out of the held request (the
 * upstream never sees them) and record the refusal, once for all of them. */
static int drop_contexts(struct zg_conn *c, const struct zg_inspect_verdict *v)
{
	struct zg_clinical *k = &c->clin;
	uint8_t drop[256] = {0};
	size_t len;

	for (unsigned i = 0; i < v->n_refused_pc; i++)
		drop[v->refused_pc[i]] = 1;
	if (zg_dul_rq_drop_pcs(k->held, k->held_len, drop, &len) < 0) {
		/* the parser accepted this very PDU: cannot happen */
		return refuse_abort(c, ZG_DUL_MALFORMED, "A-ASSOCIATE-RQ could not be rewritten");
	}
	k->held_len = (uint32_t)len;
	memcpy(k->refused_pc, v->refused_pc, v->n_refused_pc);
	k->n_refused_pc = v->n_refused_pc;
	zg_record_message_refusal(c, ZG_R_DICOM_ABSTRACT_SYNTAX, v->detail);
	return 1;
}

/* Judge the complete request: accept, or answer A-ASSOCIATE-RJ and close. */
static int judge_rq(struct zg_conn *c, const struct zg_dul_rq *rq)
{
	struct zg_clinical *k = &c->clin;
	struct zg_inspect_verdict v;
	uint8_t rj[ZG_DUL_RJ_LEN];

	snprintf(k->calling_ae, sizeof(k->calling_ae), "%s", rq->calling_ae);
	snprintf(k->called_ae, sizeof(k->called_ae), "%s", rq->called_ae);
	if (zg_inspect_dicom(rq, c->participant, &c->route->conf->insp, &v) == ZG_R_OK)
		return v.n_refused_pc ? drop_contexts(c, &v) : 1;
	zg_dul_build_rj(rj, ZG_DUL_RJ_PERMANENT, v.rj_source, v.rj_reason);
	answer(c, rj, sizeof(rj));
	return end(c, v.reason, v.detail);
}

int zg_clinical_step(struct zg_conn *c)
{
	struct zg_clinical *k = &c->clin;
	struct zg_dul_rq *rq;
	enum zg_dul_status st = ZG_DUL_NEED_MORE;
	const char *why = "";
	size_t used = 0;
	int rc;

	if (!k->held && !(k->held = malloc(ZG_RELAY_BUF)))
		return end(c, ZG_R_NO_MEMORY, NULL);
	if (!(rq = malloc(sizeof(*rq))))
		return end(c, ZG_R_NO_MEMORY, NULL);
	while (st == ZG_DUL_NEED_MORE) {
		size_t want = missing(k);
		ssize_t n = want ? zg_side_read(&c->down, k->held + k->held_len, want) : 0;
		if (want && n == ZG_IO_BLOCKED) {
			c->down.want = c->down.rd_wait;
			free(rq);
			return 0;
		}
		if (want && n <= 0) {
			free(rq);
			return end(c, n == 0 ? ZG_R_CLIENT_CLOSED : ZG_R_CLIENT_RESET,
				   "before a complete A-ASSOCIATE-RQ");
		}
		k->held_len += (uint32_t)n;
		st = zg_dul_parse_rq(k->held, k->held_len, ZG_RELAY_BUF - ZG_DUL_HDR, rq, &used, &why);
	}
	rc = st == ZG_DUL_OK ? judge_rq(c, rq) : refuse_abort(c, st, why);
	free(rq);
	return rc;
}

/* The relay's look at the client's later PDUs: bytes pass unchanged
 * (headroom 0, @out == @in). */
static enum zg_reason dicom_d2u(void *arg, const uint8_t *in, size_t n, uint8_t *out, size_t *produced)
{
	struct zg_conn *c = arg;
	uint64_t max = c->route->conf->insp.dicom_max_pdu;
	enum zg_dul_status st;

	(void)out;
	*produced = n;
	st = zg_dul_frame_feed(&c->clin.dul, in, n, max > UINT32_MAX ? UINT32_MAX : (uint32_t)max,
			       &c->clin.why);
	return zg_inspect_dicom_status_reason(st);
}

/* Up to the filter's headroom of what waits for the client, at @out. */
static size_t ac_emit(struct zg_dicom_ac *a, uint8_t *out)
{
	size_t k = a->out_len - a->out_off;

	if (k > ZG_DICOM_AC_HEADROOM)
		k = ZG_DICOM_AC_HEADROOM;
	memcpy(out, a->out + a->out_off, k);
	a->out_off += k;
	if (a->out_off == a->out_len)
		a->out_off = a->out_len = 0;
	return k;
}

/* The upstream's first PDU is complete in a->in (@pdu of a->held bytes):
 * queue it, an AC with the refused contexts added, then what followed. */
static enum zg_reason ac_rewrite(struct zg_conn *c, struct zg_dicom_ac *a, size_t pdu)
{
	size_t n = pdu, rest = a->held - pdu;

	if (a->in[0] == ZG_DUL_ASSOCIATE_AC) {
		if (zg_dul_ac_add_rejected(a->in, pdu, a->ids, a->n_ids, a->out, sizeof(a->out), &n) < 0)
			return c->clin.why = "upstream's A-ASSOCIATE-AC malformed or answers a removed one",
			       ZG_R_DICOM_MALFORMED;
	} else if (a->in[0] == ZG_DUL_ASSOCIATE_RJ || a->in[0] == ZG_DUL_ABORT) {
		memcpy(a->out, a->in, pdu);
	} else {
		return c->clin.why = "upstream's first PDU is not an A-ASSOCIATE-AC, -RJ or A-ABORT",
		       ZG_R_DICOM_UNEXPECTED_PDU;
	}
	memcpy(a->out + n, a->in + pdu, rest); /* out holds in + the added items */
	a->out_len = n + rest;
	a->out_off = 0;
	a->passing = 1;
	return ZG_R_OK;
}

/* The upstream's stream on an association with refused contexts: its
 * first PDU is held and rewritten (struct zg_dicom_ac), then bytes pass.
 * The relay hands input only when nothing is pending (it flushes first). */
static enum zg_reason dicom_u2d(void *arg, const uint8_t *in, size_t n, uint8_t *out, size_t *produced)
{
	struct zg_conn *c = arg;
	struct zg_dicom_ac *a = c->clin.ac;
	enum zg_reason rc;
	uint8_t type;
	uint32_t len;

	*produced = 0;
	if (a->passing && !a->out_len) {
		if (n)
			memmove(out, in, n);
		*produced = n;
		return ZG_R_OK;
	}
	if (n && (a->passing || n > sizeof(a->in) - a->held))
		return c->clin.why = a->passing ? "relay fed input with output pending"
						: "upstream's first PDU longer than the gateway holds",
		       ZG_R_DICOM_PDU_TOO_LARGE;
	if (n)
		memcpy(a->in + a->held, in, n);
	a->held += (uint32_t)n;
	if (!a->passing && zg_dul_header(a->in, a->held, &type, &len) == 0) {
		if (len > sizeof(a->in) - ZG_DUL_HDR)
			return c->clin.why = "upstream's first PDU longer than the gateway holds",
			       ZG_R_DICOM_PDU_TOO_LARGE;
		if (a->held >= ZG_DUL_HDR + (size_t)len &&
		    (rc = ac_rewrite(c, a, ZG_DUL_HDR + (size_t)len)) != ZG_R_OK)
			return rc;
	}
	if (a->out_len)
		*produced = ac_emit(a, out);
	return ZG_R_OK;
}

/* A refused message: queue its AR ACK (MSH-10 "ZG" + connection id + count)
 * and record the refusal. ZG_R_OK, or the refusal's reason when the queue
 * is full (a client sending refused messages without reading the answers). */
static enum zg_reason hl7_refuse(struct zg_conn *c, const struct zg_hl7_msh *msh,
				 const struct zg_inspect_verdict *v)
{
	struct zg_hl7_conn *h = c->clin.hl7;
	char ts[32] = "", ctl[64];
	struct tm tm;
	time_t now = time(NULL);
	size_t n;

	if (gmtime_r(&now, &tm))
		(void)strftime(ts, sizeof(ts), "%Y%m%d%H%M%S", &tm);
	snprintf(ctl, sizeof(ctl), "ZG%u.%llu.%llu", c->h->index, (unsigned long long)c->id,
		 (unsigned long long)++h->refused);
	n = zg_hl7_build_ack(msh, "AR", v->hl7_error, v->detail, ts, ctl, h->acks + h->acks_len,
			     sizeof(h->acks) - h->acks_len);
	if (n == 0) {
		c->clin.why = "refused messages sent faster than their answers are read";
		return v->reason;
	}
	h->acks_len += n;
	h->drop = 1;
	zg_record_message_refusal(c, v->reason, v->detail);
	return ZG_R_OK;
}

/* A message's MSH is complete: forward it (the start byte and the held
 * segment, written at @out + *@w) or refuse it. */
static enum zg_reason hl7_judge(struct zg_conn *c, uint8_t *out, size_t *w)
{
	struct zg_hl7_conn *h = c->clin.hl7;
	struct zg_inspect_verdict v;
	struct zg_hl7_msh msh;

	if (zg_hl7_parse_msh(h->in.hdr, h->in.hdr_len, &msh, &c->clin.why) != ZG_HL7_OK)
		return ZG_R_HL7_MALFORMED;
	snprintf(c->clin.facility, sizeof(c->clin.facility), "%.63s", msh.sending_facility);
	snprintf(c->clin.msg_type, sizeof(c->clin.msg_type), "%s", msh.message_type);
	if (zg_inspect_hl7(&msh, c->participant, &c->route->conf->insp, &v) != ZG_R_OK)
		return hl7_refuse(c, &msh, &v);
	h->drop = 0;
	out[(*w)++] = ZG_MLLP_SB;
	memcpy(out + *w, h->in.hdr, h->in.hdr_len);
	*w += h->in.hdr_len;
	return ZG_R_OK;
}

/* The client's stream, message by message (see clinical.h). Bytes of the
 * MSH segment are held in h->in.hdr and emitted with the decision; body
 * bytes pass unless their message was refused. */
static enum zg_reason hl7_d2u(void *arg, const uint8_t *in, size_t n, uint8_t *out, size_t *produced)
{
	struct zg_conn *c = arg;
	struct zg_hl7_conn *h = c->clin.hl7;
	uint64_t max = c->route->conf->insp.hl7_max_message;
	size_t i = 0, w = 0;
	enum zg_reason rc;

	while (i < n) {
		enum zg_mllp_state before = h->in.state;
		enum zg_mllp_event ev;
		size_t k = zg_mllp_feed(&h->in, in + i, n - i, max, &ev, &c->clin.why);

		if (ev == ZG_MLLP_EV_BAD)
			return h->in.msg_len > max ? ZG_R_HL7_TOO_LARGE : ZG_R_HL7_MALFORMED;
		if ((before == ZG_MLLP_BODY || before == ZG_MLLP_END) && !h->drop) {
			memmove(out + w, in + i, k); /* out + w <= in + i: the headroom */
			w += k;
		}
		i += k;
		if (ev == ZG_MLLP_EV_HEADER && (rc = hl7_judge(c, out, &w)) != ZG_R_OK)
			return rc;
		if (ev == ZG_MLLP_EV_END)
			h->drop = 0;
	}
	*produced = w;
	return ZG_R_OK;
}

static void hl7_emit_acks(struct zg_hl7_conn *h, uint8_t *out, size_t *w)
{
	memcpy(out + *w, h->acks, h->acks_len);
	*w += h->acks_len;
	h->acks_len = 0;
}

/* The upstream's stream passes unchanged; our AR ACKs go in between its
 * frames, never inside one. */
static enum zg_reason hl7_u2d(void *arg, const uint8_t *in, size_t n, uint8_t *out, size_t *produced)
{
	struct zg_hl7_conn *h = ((struct zg_conn *)arg)->clin.hl7;
	size_t w = 0;

	if (n == 0 && h->up_state == 0 && h->acks_len)
		hl7_emit_acks(h, out, &w);
	for (size_t i = 0; i < n; i++) {
		uint8_t b = in[i];
		out[w++] = b;
		if (h->up_state == 0)
			h->up_state = b == ZG_MLLP_SB;
		else if (h->up_state == 1)
			h->up_state = b == ZG_MLLP_EB ? 2 : 1;
		else
			h->up_state = b == ZG_MLLP_CR ? 0 : b == ZG_MLLP_EB ? 2 : 1;
		if (h->up_state == 0 && b == ZG_MLLP_CR && h->acks_len)
			hl7_emit_acks(h, out, &w);
	}
	*produced = w;
	return ZG_R_OK;
}

int zg_clinical_relay(struct zg_conn *c)
{
	struct zg_clinical *k = &c->clin;

	if (c->route->conf->insp.kind == ZG_INSPECT_HL7) {
		/* relaying may start twice: a pool retries the next member when
		 * the first failed before any byte was delivered */
		if (!k->hl7 && !(k->hl7 = calloc(1, sizeof(*k->hl7))))
			return -1;
		c->relay.f_d2u = (struct zg_relay_filter){hl7_d2u, c, ZG_HL7_MSH_MAX + 1, NULL};
		c->relay.f_u2d = (struct zg_relay_filter){hl7_u2d, c, sizeof(k->hl7->acks),
							  &k->hl7->acks_len};
		return 0;
	}
	if (c->route->conf->insp.kind != ZG_INSPECT_DICOM)
		return 0;
	if (k->held_len) {
		/* the request read while inspecting goes first, from the very
		 * buffer it was read into (both are ZG_RELAY_BUF bytes) */
		c->relay.d2u.buf = (char *)k->held;
		c->relay.d2u.head = 0;
		c->relay.d2u.tail = k->held_len;
		k->held = NULL;
		k->held_len = 0;
	}
	c->relay.f_d2u = (struct zg_relay_filter){dicom_d2u, c, 0, NULL};
	if (!k->n_refused_pc)
		return 0;
	if (!k->ac && !(k->ac = malloc(sizeof(*k->ac))))
		return -1;
	memset(k->ac, 0, offsetof(struct zg_dicom_ac, in)); /* a retry starts over */
	memcpy(k->ac->ids, k->refused_pc, k->n_refused_pc);
	k->ac->n_ids = k->n_refused_pc;
	c->relay.f_u2d = (struct zg_relay_filter){dicom_u2d, c, ZG_DICOM_AC_HEADROOM, &k->ac->out_len};
	return 0;
}

const char *zg_clinical_detail(const struct zg_conn *c, enum zg_reason r)
{
	if (r == ZG_R_DICOM_MALFORMED || r == ZG_R_DICOM_UNEXPECTED_PDU || r == ZG_R_DICOM_PDU_TOO_LARGE ||
	    r == ZG_R_HL7_MALFORMED || r == ZG_R_HL7_TOO_LARGE || r == ZG_R_HL7_FACILITY ||
	    r == ZG_R_HL7_MESSAGE_TYPE)
		return c->clin.why;
	return NULL;
}

void zg_clinical_free(struct zg_clinical *k)
{
	free(k->held);
	free(k->hl7);
	free(k->ac);
	k->ac = NULL;
	k->held = NULL;
	k->hl7 = NULL;
}
