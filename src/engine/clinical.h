/* clinical.h - clinical protocol inspection on a live connection: the I/O
 * half of proto/ (which parses and decides without I/O).
 *
 * inspect = dicom: after the client side is up (TLS handshake in, or the
 * accept of a wrap route) the connection is INSPECTING: it reads exactly
 * one PDU, at most ZG_RELAY_BUF bytes, into a buffer that later becomes
 * the relay's first client->upstream buffer. An A-ASSOCIATE-RQ that passes
 * zg_inspect_dicom() goes upstream; one that does not is answered with
 * A-ASSOCIATE-RJ, anything unreadable with A-ABORT, and the connection
 * closes with the reason. A request accepted with some contexts refused
 * goes on without them, and the upstream's A-ASSOCIATE-AC comes back with
 * those answered as rejected (struct zg_dicom_ac). While relaying, every later client PDU's header
 * is checked as its bytes pass (zg_dul_frame_feed); nothing is buffered.
 *
 * inspect = hl7-mllp: the relay filters the client's stream message by
 * message. Only a message's MSH segment is held (at most ZG_HL7_MSH_MAX
 * bytes); an accepted message flows on at once, a refused one is dropped
 * up to its frame end and answered with an AR ACK, injected into the
 * upstream's stream at the next frame boundary. The connection stays up
 * unless the framing breaks.
 */
#ifndef ZG_ENGINE_CLINICAL_H
#define ZG_ENGINE_CLINICAL_H

#include <stdint.h>

#include "proto/dicom_ul.h"
#include "proto/hl7.h"
#include "proto/inspect.h"

struct zg_conn;

#define ZG_DICOM_AC_HOLD (16 * 1024)
#define ZG_DICOM_AC_HEADROOM 4096 /* bytes of the rewritten AC emitted per filter call */

/* Per-connection HL7 state, allocated when an hl7-mllp route relays. */
struct zg_hl7_conn {
	struct zg_mllp in;          /* the client's frames */
	int drop;                   /* the current message was refused */
	unsigned up_state;          /* upstream frames: 0 between, 1 inside, 2 after 0x1C */
	uint64_t refused;           /* messages answered AR */
	size_t acks_len;            /* AR ACKs waiting for a boundary of the upstream's stream */
	uint8_t acks[2 * ZG_HL7_ACK_MAX];
};

/* The upstream's answer to a request the gateway removed presentation
 * contexts from: its first PDU is held (at most ZG_RELAY_BUF bytes) and,
 * when it is an A-ASSOCIATE-AC, goes on with a rejected item for each
 * removed context; an RJ or A-ABORT goes on unchanged. Allocated when
 * relaying starts, on such associations only. */
struct zg_dicom_ac {
	uint8_t ids[ZG_DUL_PC_MAX];  /* the removed contexts, ascending */
	unsigned n_ids;
	int passing;                 /* the first PDU went on: bytes pass as read */
	uint32_t held;
	size_t out_len, out_off;     /* what still waits to go to the client */
	uint8_t in[ZG_DICOM_AC_HOLD];
	uint8_t out[ZG_DICOM_AC_HOLD + ZG_DUL_PC_MAX * ZG_DUL_AC_REJECTED_ITEM];
};

struct zg_clinical {
	uint8_t *held;               /* the first PDU, read while INSPECTING */
	uint32_t held_len;
	struct zg_dul_frame dul;     /* framing of the client's later PDUs */
	const char *why;             /* static text of the last framing error */
	char calling_ae[ZG_AE_TITLE_MAX], called_ae[ZG_AE_TITLE_MAX];
	struct zg_hl7_conn *hl7;     /* hl7-mllp routes while relaying */
	uint8_t refused_pc[ZG_DUL_PC_MAX]; /* contexts removed from the request */
	unsigned n_refused_pc;
	struct zg_dicom_ac *ac;      /* their answer, while relaying */
	char facility[64];           /* MSH-4 of the last message, for the close line */
	char msg_type[ZG_HL7_TYPE_MAX + 1]; /* its MSH-9 */
	enum zg_reason end;          /* why zg_clinical_step gave up (-1) */
	char end_detail[ZG_INSPECT_DETAIL_MAX]; /* and its detail, "" for none */
};

/* 1 if @c's route reads the start of the stream before going upstream. */
int zg_clinical_first(const struct zg_conn *c);

/* INSPECTING: read on towards a complete first PDU and judge it. 1 when
 * accepted (the caller connects upstream), 0 while waiting (c->down.want
 * set), -1 when @c must close (refused and answered, malformed, failed)
 * with c->clin.end and end_detail: the caller closes, so this room never
 * calls back into conn.c. */
int zg_clinical_step(struct zg_conn *c);

/* Relaying starts: the held PDU becomes the relay's first client bytes and
 * the DICOM framing check, or the HL7 message filter, is attached. 0, or
 * -1 when out of memory. */
int zg_clinical_relay(struct zg_conn *c);

/* The detail for a close with @r: the framing error's text for a protocol
 * reason, else NULL. */
const char *zg_clinical_detail(const struct zg_conn *c, enum zg_reason r);

/* Release what @k holds. */
void zg_clinical_free(struct zg_clinical *k);

#endif
