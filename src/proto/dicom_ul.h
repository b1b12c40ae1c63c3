/* dicom_ul.h - the DICOM upper layer (PS3.8 section 9.3), as far as a
 * gateway needs it: parse the A-ASSOCIATE-RQ that opens an association,
 * check the framing of the PDUs that follow, and build the A-ASSOCIATE-RJ
 * and A-ABORT a refusing node sends.
 *
 * Everything here is pure: byte buffers in, structs and verdicts out, no
 * I/O, no allocation, no global state. All integers on the wire are
 * big-endian. A PDU is type(1) reserved(1) length(4) then `length` bytes.
 */
#ifndef ZG_PROTO_DICOM_UL_H
#define ZG_PROTO_DICOM_UL_H

#include <stddef.h>
#include <stdint.h>

#define ZG_DUL_HDR 6             /* type, reserved, 4-byte length */
#define ZG_DUL_AE_MAX 16         /* AE title bytes on the wire (PS3.5 VR AE) */
#define ZG_DUL_UID_MAX 64        /* UID characters (PS3.5 VR UI) */
#define ZG_DUL_PC_MAX 128        /* presentation context ids are odd 1..255 */
#define ZG_DUL_USER_MAX 64       /* user identity primary field kept (type 1/2) */
#define ZG_DUL_RQ_FIXED 68       /* A-ASSOCIATE-RQ body bytes before the items */

enum zg_dul_pdu {
	ZG_DUL_ASSOCIATE_RQ = 0x01,
	ZG_DUL_ASSOCIATE_AC = 0x02,
	ZG_DUL_ASSOCIATE_RJ = 0x03,
	ZG_DUL_P_DATA = 0x04,
	ZG_DUL_RELEASE_RQ = 0x05,
	ZG_DUL_RELEASE_RP = 0x06,
	ZG_DUL_ABORT = 0x07,
};

/* What a parse or framing check concluded. */
enum zg_dul_status {
	ZG_DUL_OK,           /* complete and valid */
	ZG_DUL_NEED_MORE,    /* valid so far; more bytes are needed */
	ZG_DUL_BAD_TYPE,     /* a PDU type not valid in this state (A-ABORT reason 2) */
	ZG_DUL_UNRECOGNIZED, /* no such PDU type (A-ABORT reason 1) */
	ZG_DUL_TOO_LARGE,    /* length field over the caller's bound */
	ZG_DUL_MALFORMED,    /* bounds, counts or values wrong (A-ABORT reason 6) */
};

/* A-ASSOCIATE-RJ result / source / reason (PS3.8 9.3.4). */
#define ZG_DUL_RJ_PERMANENT 1
#define ZG_DUL_RJ_TRANSIENT 2
#define ZG_DUL_RJ_SRC_USER 1           /* reasons 1 none, 2 app context, 3 calling AE, 7 called AE */
#define ZG_DUL_RJ_SRC_ACSE 2           /* reasons 1 none, 2 protocol version */
#define ZG_DUL_RJ_SRC_PRESENTATION 3   /* reasons 1 congestion, 2 local limit */
#define ZG_DUL_RJ_USER_NO_REASON 1
#define ZG_DUL_RJ_USER_APP_CONTEXT 2
#define ZG_DUL_RJ_USER_CALLING_AE 3
#define ZG_DUL_RJ_USER_CALLED_AE 7
#define ZG_DUL_RJ_ACSE_VERSION 2

/* A-ABORT source / reason (PS3.8 9.3.8). */
#define ZG_DUL_AB_SRC_USER 0
#define ZG_DUL_AB_SRC_PROVIDER 2
#define ZG_DUL_AB_NOT_SPECIFIED 0
#define ZG_DUL_AB_UNRECOGNIZED_PDU 1
#define ZG_DUL_AB_UNEXPECTED_PDU 2
#define ZG_DUL_AB_INVALID_PARAM 6

struct zg_dul_pc {
	uint8_t id;                           /* odd, 1..255 */
	char abstract_syntax[ZG_DUL_UID_MAX + 1];
	unsigned n_transfer;                  /* transfer syntaxes offered (>= 1) */
};

struct zg_dul_rq {
	uint16_t protocol_version;            /* bit 0 must be set */
	char called_ae[ZG_DUL_AE_MAX + 1];    /* padding removed, NUL-terminated */
	char calling_ae[ZG_DUL_AE_MAX + 1];
	char app_context[ZG_DUL_UID_MAX + 1];
	unsigned n_pc;
	struct zg_dul_pc pc[ZG_DUL_PC_MAX];
	uint32_t max_pdu;                     /* 0x51: what the requestor receives; 0 = no limit */
	char impl_class_uid[ZG_DUL_UID_MAX + 1];
	char impl_version[ZG_DUL_AE_MAX + 1];
	uint8_t user_identity_type;           /* 0x58: 0 = none, 1 user, 2 user+pass, 3..5 tokens */
	char user[ZG_DUL_USER_MAX + 1];       /* type 1/2 user name, printable, maybe truncated */
};

/* Read a PDU header from the first 6 of @len bytes at @p: 0 with *@type and
 * *@length set, -1 if fewer than 6 bytes are there. */
int zg_dul_header(const uint8_t *p, size_t len, uint8_t *type, uint32_t *length);

/* Parse the A-ASSOCIATE-RQ at the start of @p (@len bytes read so far).
 * ZG_DUL_NEED_MORE while the PDU is incomplete and its length field at most
 * @max_len; ZG_DUL_BAD_TYPE (or ZG_DUL_UNRECOGNIZED) if the first PDU is another type;
 * ZG_DUL_TOO_LARGE if its length exceeds @max_len; ZG_DUL_MALFORMED with a
 * static explanation in *@why; ZG_DUL_OK with @out filled and *@pdu_len the
 * PDU's total size (header included). Only the one PDU is read. */
enum zg_dul_status zg_dul_parse_rq(const uint8_t *p, size_t len, uint32_t max_len,
				   struct zg_dul_rq *out, size_t *pdu_len, const char **why);

/* 1 if @s (NUL-terminated) is a valid AE title once padding is removed:
 * 1..16 characters of the default repertoire, no control characters, no
 * backslash; else 0. */
int zg_dul_valid_ae(const char *s);

/* Framing of the PDUs a requestor sends after its A-ASSOCIATE-RQ, followed
 * byte by byte without buffering a PDU body. Zero-initialise, then feed. */
struct zg_dul_frame {
	uint8_t hdr[ZG_DUL_HDR];
	unsigned have;        /* header bytes collected */
	uint64_t remaining;   /* body bytes of the current PDU still to pass */
	uint64_t pdus;        /* complete PDUs seen */
	uint8_t type;         /* current PDU type */
	unsigned released : 1; /* A-RELEASE-RQ or A-ABORT sent: nothing may follow but RP */
};

/* Follow @n bytes of the requestor's stream after the A-ASSOCIATE-RQ:
 * P-DATA-TF of at most @max_pdu body bytes, A-RELEASE-RQ/RP and A-ABORT of
 * exactly 4. ZG_DUL_OK (all consumed), or ZG_DUL_BAD_TYPE / ZG_DUL_UNRECOGNIZED /
 * ZG_DUL_TOO_LARGE /
 * ZG_DUL_MALFORMED with *@why, after which the stream must be aborted. */
enum zg_dul_status zg_dul_frame_feed(struct zg_dul_frame *f, const uint8_t *p, size_t n,
				     uint32_t max_pdu, const char **why);

/* A presentation context the gateway refused itself (PS3.8 9.3.3.2): an
 * A-ASSOCIATE-AC item 0x21 with result 3, "abstract-syntax-not-supported
 * (provider rejection)", and the one transfer syntax sub-item the AC item
 * must carry; its value is "not significant" for a rejection, so it names
 * Implicit VR Little Endian, the default every node knows. */
#define ZG_DUL_PC_ABSTRACT_NOT_SUPPORTED 3
#define ZG_DUL_DEFAULT_TS "1.2.840.10008.1.2"
#define ZG_DUL_AC_REJECTED_ITEM (4 + 4 + 4 + 17) /* item, id..reserved, sub-item, UID */

/* Remove from the complete A-ASSOCIATE-RQ at @p (@len bytes, one PDU) the
 * presentation context items whose id has @drop[id] set, in place: later
 * items move down and the PDU length shrinks. The whole PDU is walked with
 * bounds checks (items in RQ order: 0x10, 0x20..., one 0x50 last) before a
 * byte moves; item contents are the parser's business. 0 with *@out_len the new size; -1
 * (@p untouched) if it is not one well-formed RQ of exactly @len bytes, or
 * if no presentation context would remain. */
int zg_dul_rq_drop_pcs(uint8_t *p, size_t len, const uint8_t drop[256], size_t *out_len);

/* Write into @out (@cap bytes) the A-ASSOCIATE-AC at @p (@len bytes, one
 * PDU) with a rejected item (above) for each of the @n ids in @ids
 * (ascending, odd, distinct), merged so that the items stay in id order
 * when the upstream's were. 0 with *@out_len; -1 if the AC is malformed
 * (bounds, items not 0x10, 0x21..., one 0x50 last, even or short 0x21),
 * already answers one of @ids, or the result does not fit @cap. */
int zg_dul_ac_add_rejected(const uint8_t *p, size_t len, const uint8_t *ids, unsigned n,
			   uint8_t *out, size_t cap, size_t *out_len);

#define ZG_DUL_RJ_LEN 10
#define ZG_DUL_ABORT_LEN 10

/* Write an A-ASSOCIATE-RJ PDU into @out. */
void zg_dul_build_rj(uint8_t out[ZG_DUL_RJ_LEN], uint8_t result, uint8_t source, uint8_t reason);

/* Write an A-ABORT PDU into @out. */
void zg_dul_build_abort(uint8_t out[ZG_DUL_ABORT_LEN], uint8_t source, uint8_t reason);

/* The A-ABORT reason for a failed parse or framing status. */
uint8_t zg_dul_abort_reason(enum zg_dul_status st);

#endif
