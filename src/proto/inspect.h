/* inspect.h - the inspection verdict: a parsed DICOM association request
 * or HL7 message header, the participant the certificate and address
 * identified, and the route's settings -> accept, or refuse with a
 * zonegate reason and the answer a clinical node would give.
 *
 * Pure functions, no I/O (docs/protocols.md says what is checked and why).
 */
#ifndef ZG_PROTO_INSPECT_H
#define ZG_PROTO_INSPECT_H

#include <stdint.h>

#include "base/reason.h"
#include "directory/directory.h"
#include "proto/dicom_ul.h"
#include "proto/hl7.h"

#define ZG_INSPECT_DETAIL_MAX 160
#define ZG_INSPECT_LIST_MAX 32  /* entries of each inspection allowlist */
#define ZG_AE_TITLE_MAX 17      /* DICOM AE title, 16 characters + NUL */
#define ZG_UID_NAME_MAX 65      /* DICOM UID, 64 characters + NUL */
#define ZG_HL7_TYPE_NAME_MAX 33 /* HL7 message type pattern "ADT^A01", + NUL */

/* Route option `inspect`: which clinical protocol the route reads. */
enum zg_inspect {
	ZG_INSPECT_NONE,  /* bytes relayed blind */
	ZG_INSPECT_DICOM, /* DICOM upper layer: A-ASSOCIATE-RQ checked, later PDUs framed */
	ZG_INSPECT_HL7,   /* HL7 v2 over MLLP: every message's MSH checked */
};

/* A route's inspection settings (the configuration's `inspect`, `dicom_*`
 * and `hl7_*` keys, parsed by conf/); empty lists unless given. */
struct zg_inspect_conf {
	enum zg_inspect kind;                                   /* default none */
	char called_ae[ZG_INSPECT_LIST_MAX][ZG_AE_TITLE_MAX];   /* dicom_called_ae: served AE titles */
	unsigned n_called_ae;
	char abstract_syntaxes[ZG_INSPECT_LIST_MAX][ZG_UID_NAME_MAX]; /* empty = any */
	unsigned n_abstract_syntaxes;
	char hl7_types[ZG_INSPECT_LIST_MAX][ZG_HL7_TYPE_NAME_MAX];    /* empty = any */
	unsigned n_hl7_types;
	uint64_t dicom_max_pdu;                                 /* PDU length bound; default 16M */
	uint64_t hl7_max_message;                               /* MLLP message bound; default 1M */
};

/* DICOM application context name (PS3.7 A.2.1): the only one there is. */
#define ZG_DICOM_APP_CONTEXT "1.2.840.10008.3.1.1.1"

struct zg_inspect_verdict {
	enum zg_reason reason;      /* ZG_R_OK to accept */
	uint8_t rj_source, rj_reason; /* DICOM refusal: A-ASSOCIATE-RJ (permanent) with these */
	unsigned hl7_error;         /* HL7 refusal: ERR-3 code (table 0357) */
	/* DICOM acceptance with some presentation contexts refused (their
	 * abstract syntax is outside the allowlist): their ids, ascending;
	 * detail then lists the refused abstract syntaxes. */
	uint8_t refused_pc[ZG_DUL_PC_MAX];
	unsigned n_refused_pc;
	char detail[ZG_INSPECT_DETAIL_MAX];
};

/* Judge association request @rq on route @r. @who is the participant the
 * connection was bound to (NULL on a route without one, e.g. wrap, where
 * the calling AE is not checked). Order: protocol version, application
 * context, called AE in r->called_ae, calling AE among who's
 * dicom_ae_titles, every abstract syntax in r->abstract_syntaxes
 * (when given): a request none of whose contexts is allowed is refused;
 * one with some allowed is accepted with the others in v->refused_pc, for
 * the caller to remove from the request and answer as rejected in the
 * A-ASSOCIATE-AC (PS3.8 9.3.3.2, PS3.7 D.3.3.2). Fills @v and returns
 * v->reason. */
enum zg_reason zg_inspect_dicom(const struct zg_dul_rq *rq, const struct zg_participant *who,
				const struct zg_inspect_conf *r, struct zg_inspect_verdict *v);

/* Judge HL7 message header @msh on route @r: sending facility (MSH-4 or
 * MSH-4.1) among who's hl7_facilities when @who is known, message type in
 * r->hl7_types when given. Fills @v and returns v->reason. */
enum zg_reason zg_inspect_hl7(const struct zg_hl7_msh *msh, const struct zg_participant *who,
			      const struct zg_inspect_conf *r, struct zg_inspect_verdict *v);

/* "none", "dicom" or "hl7-mllp". */
const char *zg_inspect_name(enum zg_inspect k);

/* The zonegate reason for a failed DICOM parse or framing status. */
enum zg_reason zg_inspect_dicom_status_reason(enum zg_dul_status st);

#endif
