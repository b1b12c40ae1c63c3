/* probe.h - the application health probes: requests built and replies
 * judged as pure functions over byte buffers, so every bound is testable
 * without a socket. The checker (check.c) moves the bytes.
 *
 * A reply judge is called with everything received so far. It returns 0
 * while the reply is incomplete, or 1 with the verdict in *@v: ZG_R_OK,
 * ZG_R_CHECK_REJECTED (a well-formed refusal) or ZG_R_CHECK_BAD_REPLY
 * (malformed, of another protocol, or larger than the caller's buffer:
 * a judge never asks for more than @cap bytes in all), with a short
 * @detail. Nothing is read beyond @len.
 */
#ifndef ZG_PROBE_H
#define ZG_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "base/reason.h"

#define ZG_PROBE_BUF 16384       /* most a probe reply may take, per step */
#define ZG_PROBE_DETAIL 120

/* ---- DICOM C-ECHO (probe_dicom.c) ------------------------------------------ */

/* The steps of a Verification association, in order. */
enum zg_dicom_step {
	ZG_DICOM_ASSOCIATE, /* A-ASSOCIATE-RQ  -> A-ASSOCIATE-AC accepting the context */
	ZG_DICOM_ECHO,      /* P-DATA C-ECHO-RQ -> C-ECHO-RSP status 0x0000 */
	ZG_DICOM_RELEASE,   /* A-RELEASE-RQ    -> A-RELEASE-RP */
	ZG_DICOM__STEPS
};

/* The request of @step into @out (@cap bytes) from AE titles @calling and
 * @called (1-16 characters each). Returns its length, or 0 if it does not
 * fit. */
size_t zg_dicom_request(enum zg_dicom_step step, const char *calling, const char *called,
			uint8_t *out, size_t cap);

/* Judge the reply to @step in @buf (@len bytes received, buffer of @cap). */
int zg_dicom_reply(enum zg_dicom_step step, const uint8_t *buf, size_t len, size_t cap,
		   enum zg_reason *v, char *detail, size_t dcap);

/* ---- HL7 v2 over MLLP (probe_hl7.c) --------------------------------------------- */

/* Frame @msg (@n bytes, segments separated by CR, LF or CRLF, which become
 * CR) for MLLP into @out. Returns the length, or 0 if it does not fit or
 * the message is not an HL7 message (no MSH segment first). */
size_t zg_hl7_frame(const char *msg, size_t n, uint8_t *out, size_t cap);

/* The built-in check message (an NMQ^N01 network-management query) with
 * timestamp @ts ("YYYYMMDDHHMMSS") and control id @id, unframed, into
 * @out. Returns its length, or 0 if it does not fit. */
size_t zg_hl7_default_message(const char *ts, const char *id, char *out, size_t cap);

/* Judge an MLLP-framed ACK: MSA-1 AA or CA passes, AE AR CE CR are
 * refusals, anything else is a bad reply. */
int zg_hl7_reply(const uint8_t *buf, size_t len, size_t cap, enum zg_reason *v, char *detail,
		 size_t dcap);

/* ---- HTTP GET (probe_http.c) ---------------------------------------------------- */

/* "GET @path HTTP/1.1" for @host into @out. Returns the length or 0. */
size_t zg_http_request(const char *path, const char *host, uint8_t *out, size_t cap);

/* Judge the status line: @want passes, any other status is a refusal. */
int zg_http_reply(const uint8_t *buf, size_t len, size_t cap, unsigned want, enum zg_reason *v,
		  char *detail, size_t dcap);

#endif
