/* hl7.h - HL7 v2 over MLLP, as far as a gateway needs it: follow the MLLP
 * frames of a stream (0x0B message 0x1C 0x0D) without buffering a message,
 * parse the MSH segment that opens each message, and build the ACK with
 * MSA-1 "AR" a refusing node answers with.
 *
 * Pure: byte buffers in, structs and verdicts out, no I/O, no allocation.
 * The field separator and the encoding characters come from MSH-1 and
 * MSH-2 of each message; "|^~\&" is never assumed.
 */
#ifndef ZG_PROTO_HL7_H
#define ZG_PROTO_HL7_H

#include <stddef.h>
#include <stdint.h>

#define ZG_MLLP_SB 0x0b
#define ZG_MLLP_EB 0x1c
#define ZG_MLLP_CR 0x0d
#define ZG_HL7_MSH_MAX 2048      /* bytes of the MSH segment a gateway holds */
#define ZG_HL7_NAME_MAX 227      /* MSH-3..6 (HD: 20 + 199 + 6 + separators) */
#define ZG_HL7_TYPE_MAX 32       /* MSH-9 code^trigger */
#define ZG_HL7_ID_MAX 199        /* MSH-10 */
#define ZG_HL7_SHORT_MAX 16      /* MSH-11, MSH-12 */
#define ZG_HL7_ACK_MAX (4 * ZG_HL7_NAME_MAX + 2 * ZG_HL7_ID_MAX + 512)

struct zg_hl7_msh {
	char fs;                              /* MSH-1 */
	char enc[6];                          /* MSH-2: component, repetition, escape, sub[, truncation] */
	char sending_app[ZG_HL7_NAME_MAX + 1];      /* MSH-3, as written */
	char sending_facility[ZG_HL7_NAME_MAX + 1]; /* MSH-4, as written */
	char receiving_app[ZG_HL7_NAME_MAX + 1];    /* MSH-5 */
	char receiving_facility[ZG_HL7_NAME_MAX + 1]; /* MSH-6 */
	char facility_ns[ZG_HL7_NAME_MAX + 1];  /* MSH-4.1 (namespace id) */
	char message_type[ZG_HL7_TYPE_MAX + 1]; /* MSH-9.1 "^" MSH-9.2, e.g. "ADT^A01" */
	char trigger[ZG_HL7_SHORT_MAX + 1];     /* MSH-9.2 */
	char control_id[ZG_HL7_ID_MAX + 1];     /* MSH-10 */
	char processing_id[ZG_HL7_SHORT_MAX + 1]; /* MSH-11 */
	char version[ZG_HL7_SHORT_MAX + 1];     /* MSH-12 */
};

enum zg_hl7_status {
	ZG_HL7_OK,
	ZG_HL7_NEED_MORE,  /* no segment end yet within ZG_HL7_MSH_MAX */
	ZG_HL7_MALFORMED,  /* *why says what */
};

/* Parse the MSH segment at the start of the message @p (@n bytes, the
 * MLLP start byte already removed). The segment ends at CR (or LF).
 * ZG_HL7_NEED_MORE if no end is in @n bytes and @n < ZG_HL7_MSH_MAX. */
enum zg_hl7_status zg_hl7_parse_msh(const uint8_t *p, size_t n, struct zg_hl7_msh *out,
				    const char **why);

/* The MLLP framer of one direction of a stream. Zero-initialise. */
enum zg_mllp_state {
	ZG_MLLP_OUTSIDE,   /* between messages: only a start byte may come */
	ZG_MLLP_HEADER,    /* collecting the MSH segment into hdr */
	ZG_MLLP_BODY,      /* passing the rest of the message */
	ZG_MLLP_END,       /* 0x1C seen, 0x0D must follow */
};

enum zg_mllp_event {
	ZG_MLLP_EV_NONE,   /* all input consumed, nothing to decide */
	ZG_MLLP_EV_HEADER, /* hdr[0..hdr_len) holds the MSH segment and its end: decide */
	ZG_MLLP_EV_END,    /* a message ended (its 0x0D consumed) */
	ZG_MLLP_EV_BAD,    /* framing broken or message too large: *why; close the stream */
};

struct zg_mllp {
	enum zg_mllp_state state;
	uint8_t hdr[ZG_HL7_MSH_MAX];
	size_t hdr_len;
	uint64_t msg_len;     /* bytes of the current message so far */
	uint64_t messages;    /* complete messages seen */
};

/* Follow up to @n bytes at @p; stop after the first event. Returns how many
 * bytes were consumed (the bytes of the event included) and the event in
 * *@ev. A message over @max_msg bytes, bytes outside a frame, or a missing
 * 0x0D after 0x1C is ZG_MLLP_EV_BAD. */
size_t zg_mllp_feed(struct zg_mllp *m, const uint8_t *p, size_t n, uint64_t max_msg,
		    enum zg_mllp_event *ev, const char **why);

/* Build, into @out of @cap bytes, an MLLP-framed ACK to @msg: MSH with the
 * message's own separators (sender and receiver swapped, MSH-7 @timestamp,
 * MSH-9 ACK^trigger^ACK, MSH-10 @control_id, MSH-11/12 copied), MSA with
 * @code ("AR") and MSH-10 of @msg and @text, and an ERR segment with HL7
 * error code @err_code (table 0357) and @text. @text, @timestamp and
 * @control_id are ours; separator characters in them become spaces.
 * Returns the length, or 0 if @cap is too small. */
size_t zg_hl7_build_ack(const struct zg_hl7_msh *msg, const char *code, unsigned err_code,
			const char *text, const char *timestamp, const char *control_id, uint8_t *out,
			size_t cap);

/* 1 if @msg's sending facility is @name: the whole MSH-4 as written, or its
 * namespace id (MSH-4.1); else 0. */
int zg_hl7_facility_is(const struct zg_hl7_msh *msg, const char *name);

/* 1 if @msg's type matches allowlist entry @pattern: "ADT^A01" exactly,
 * "ADT" or "ADT^*" for every trigger of ADT; else 0. */
int zg_hl7_type_matches(const struct zg_hl7_msh *msg, const char *pattern);

#endif
