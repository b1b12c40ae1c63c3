/* clinical.h - clinical protocol inspection on a live connection: the I/O
 * half of proto/ (which parses and decides without I/O).
 *
 * inspect = dicom: after the client side is up (TLS handshake in, or the
 * accept of a wrap route) the connection is INSPECTING: it reads exactly
 * one PDU, at most ZG_RELAY_BUF bytes, into a buffer that later becomes
 * the relay's first client->upstream buffer. An A-ASSOCIATE-RQ that passes
 * zg_inspect_dicom() goes upstream; one that does not is answered with
 * A-ASSOCIATE-RJ, anything unreadable with A-ABORT, and the connection
 * closes with the reason. While relaying, every later client PDU's header
 * is checked as its bytes pass (zg_dul_frame_feed); nothing is buffered.
 */
#ifndef ZG_ENGINE_CLINICAL_H
#define ZG_ENGINE_CLINICAL_H

#include <stdint.h>

#include "proto/dicom_ul.h"
#include "proto/inspect.h"

struct zg_conn;

struct zg_clinical {
	uint8_t *held;               /* the first PDU, read while INSPECTING */
	uint32_t held_len;
	struct zg_dul_frame dul;     /* framing of the client's later PDUs */
	const char *why;             /* static text of the last framing error */
	char calling_ae[ZG_AE_TITLE_MAX], called_ae[ZG_AE_TITLE_MAX];
};

/* 1 if @c's route reads the start of the stream before going upstream. */
int zg_clinical_first(const struct zg_conn *c);

/* INSPECTING: read on towards a complete first PDU and judge it. 1 when
 * accepted (the caller connects upstream), 0 while waiting (c->down.want
 * set), -1 after closing @c (refused, malformed, failed). */
int zg_clinical_step(struct zg_conn *c);

/* Relaying starts: the held PDU becomes the relay's first client bytes and
 * the framing check is attached. Returns 0. */
int zg_clinical_relay(struct zg_conn *c);

/* The detail for a close with @r: the framing error's text for a protocol
 * reason, else NULL. */
const char *zg_clinical_detail(const struct zg_conn *c, enum zg_reason r);

/* Release what @k holds. */
void zg_clinical_free(struct zg_clinical *k);

#endif
