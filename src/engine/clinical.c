/* clinical.c - see clinical.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "engine/clinical.h"
#include "engine/conn.h"

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
	zg_conn_close(c, zg_inspect_dicom_status_reason(st), why);
	return -1;
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

/* Judge the complete request: accept, or answer A-ASSOCIATE-RJ and close. */
static int judge_rq(struct zg_conn *c, const struct zg_dul_rq *rq)
{
	struct zg_clinical *k = &c->clin;
	struct zg_inspect_verdict v;
	uint8_t rj[ZG_DUL_RJ_LEN];

	snprintf(k->calling_ae, sizeof(k->calling_ae), "%s", rq->calling_ae);
	snprintf(k->called_ae, sizeof(k->called_ae), "%s", rq->called_ae);
	if (zg_inspect_dicom(rq, c->participant, &c->route->conf->insp, &v) == ZG_R_OK)
		return 1;
	zg_dul_build_rj(rj, ZG_DUL_RJ_PERMANENT, v.rj_source, v.rj_reason);
	answer(c, rj, sizeof(rj));
	zg_conn_close(c, v.reason, v.detail);
	return -1;
}

int zg_clinical_step(struct zg_conn *c)
{
	struct zg_clinical *k = &c->clin;
	struct zg_dul_rq *rq;
	enum zg_dul_status st = ZG_DUL_NEED_MORE;
	const char *why = "";
	size_t used = 0;
	int rc;

	if (!k->held && !(k->held = malloc(ZG_RELAY_BUF))) {
		zg_conn_close(c, ZG_R_NO_MEMORY, NULL);
		return -1;
	}
	rq = malloc(sizeof(*rq));
	if (!rq) {
		zg_conn_close(c, ZG_R_NO_MEMORY, NULL);
		return -1;
	}
	while (st == ZG_DUL_NEED_MORE) {
		size_t want = missing(k);
		ssize_t n = want ? zg_side_read(&c->down, k->held + k->held_len, want) : 0;
		if (want && n == ZG_IO_BLOCKED) {
			c->down.want = c->down.rd_wait;
			free(rq);
			return 0;
		}
		if (want && n <= 0) {
			zg_conn_close(c, n == 0 ? ZG_R_CLIENT_CLOSED : ZG_R_CLIENT_RESET,
				      "before a complete A-ASSOCIATE-RQ");
			free(rq);
			return -1;
		}
		k->held_len += (uint32_t)n;
		st = zg_dul_parse_rq(k->held, k->held_len, ZG_RELAY_BUF - ZG_DUL_HDR, rq, &used, &why);
	}
	rc = st == ZG_DUL_OK ? judge_rq(c, rq) : refuse_abort(c, st, why);
	free(rq);
	return rc;
}

/* The relay's look at the client's later PDUs. */
static enum zg_reason check_d2u(void *arg, const uint8_t *p, size_t n)
{
	struct zg_conn *c = arg;
	uint64_t max = c->route->conf->insp.dicom_max_pdu;
	enum zg_dul_status st;

	st = zg_dul_frame_feed(&c->clin.dul, p, n, max > UINT32_MAX ? UINT32_MAX : (uint32_t)max,
			       &c->clin.why);
	return zg_inspect_dicom_status_reason(st);
}

int zg_clinical_relay(struct zg_conn *c)
{
	struct zg_clinical *k = &c->clin;

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
	c->relay.d2u_check = check_d2u;
	c->relay.d2u_arg = c;
	return 0;
}

const char *zg_clinical_detail(const struct zg_conn *c, enum zg_reason r)
{
	if (r == ZG_R_DICOM_MALFORMED || r == ZG_R_DICOM_UNEXPECTED_PDU || r == ZG_R_DICOM_PDU_TOO_LARGE)
		return c->clin.why;
	return NULL;
}

void zg_clinical_free(struct zg_clinical *k)
{
	free(k->held);
	k->held = NULL;
}
