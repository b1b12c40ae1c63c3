/* inspect.c - see inspect.h. */
#include <stdio.h>
#include <string.h>

#include "proto/inspect.h"

static enum zg_reason refuse(struct zg_inspect_verdict *v, enum zg_reason r, uint8_t source,
			     uint8_t reason, const char *detail)
{
	v->reason = r;
	v->rj_source = source;
	v->rj_reason = reason;
	snprintf(v->detail, sizeof(v->detail), "%s", detail);
	return r;
}

static int in_names(char *const *names, unsigned n, const char *s)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return 1;
	return 0;
}

static int called_served(const struct zg_inspect_conf *r, const char *ae)
{
	for (unsigned i = 0; i < r->n_called_ae; i++)
		if (strcmp(r->called_ae[i], ae) == 0)
			return 1;
	return 0;
}

/* The first proposed abstract syntax outside the route's allowlist, or
 * NULL when all are in it (or there is no allowlist). */
static const char *syntax_refused(const struct zg_dul_rq *rq, const struct zg_inspect_conf *r)
{
	for (unsigned i = 0; r->n_abstract_syntaxes && i < rq->n_pc; i++) {
		unsigned k = 0;
		while (k < r->n_abstract_syntaxes &&
		       strcmp(r->abstract_syntaxes[k], rq->pc[i].abstract_syntax) != 0)
			k++;
		if (k == r->n_abstract_syntaxes)
			return rq->pc[i].abstract_syntax;
	}
	return NULL;
}

enum zg_reason zg_inspect_dicom(const struct zg_dul_rq *rq, const struct zg_participant *who,
				const struct zg_inspect_conf *r, struct zg_inspect_verdict *v)
{
	char d[ZG_INSPECT_DETAIL_MAX];
	const char *uid;

	memset(v, 0, sizeof(*v));
	if (!(rq->protocol_version & 1))
		return refuse(v, ZG_R_DICOM_PROTOCOL_VERSION, ZG_DUL_RJ_SRC_ACSE, ZG_DUL_RJ_ACSE_VERSION,
			      "protocol version 1 not offered");
	if (strcmp(rq->app_context, ZG_DICOM_APP_CONTEXT) != 0) {
		snprintf(d, sizeof(d), "application context %s", rq->app_context);
		return refuse(v, ZG_R_DICOM_APP_CONTEXT, ZG_DUL_RJ_SRC_USER, ZG_DUL_RJ_USER_APP_CONTEXT, d);
	}
	if (!called_served(r, rq->called_ae)) {
		snprintf(d, sizeof(d), "called AE '%s' is not served by this route", rq->called_ae);
		return refuse(v, ZG_R_DICOM_CALLED_AE, ZG_DUL_RJ_SRC_USER, ZG_DUL_RJ_USER_CALLED_AE, d);
	}
	/* The certificate and the address named the participant; the AE title
	 * it claims must be one the directory gives that participant. */
	if (who && !in_names(who->dicom_ae, who->n_dicom_ae, rq->calling_ae)) {
		snprintf(d, sizeof(d), "calling AE '%s' is not one of participant %.63s's", rq->calling_ae,
			 who->id);
		return refuse(v, ZG_R_DICOM_CALLING_AE, ZG_DUL_RJ_SRC_USER, ZG_DUL_RJ_USER_CALLING_AE, d);
	}
	if ((uid = syntax_refused(rq, r)) != NULL) {
		snprintf(d, sizeof(d), "abstract syntax %s is not allowed", uid);
		return refuse(v, ZG_R_DICOM_ABSTRACT_SYNTAX, ZG_DUL_RJ_SRC_USER, ZG_DUL_RJ_USER_NO_REASON, d);
	}
	return ZG_R_OK;
}

enum zg_reason zg_inspect_hl7(const struct zg_hl7_msh *msh, const struct zg_participant *who,
			      const struct zg_inspect_conf *r, struct zg_inspect_verdict *v)
{
	unsigned k = 0;

	memset(v, 0, sizeof(*v));
	if (who) {
		while (k < who->n_hl7_facilities && !zg_hl7_facility_is(msh, who->hl7_facilities[k]))
			k++;
		if (k == who->n_hl7_facilities) {
			v->hl7_error = 207; /* application internal error: no closer code in 0357 */
			snprintf(v->detail, sizeof(v->detail),
				 "sending facility '%.60s' is not one of participant %.48s's",
				 msh->sending_facility, who->id);
			return v->reason = ZG_R_HL7_FACILITY;
		}
	}
	for (k = 0; k < r->n_hl7_types; k++)
		if (zg_hl7_type_matches(msh, r->hl7_types[k]))
			break;
	if (r->n_hl7_types && k == r->n_hl7_types) {
		v->hl7_error = 200; /* unsupported message type */
		snprintf(v->detail, sizeof(v->detail), "message type %s is not allowed on this route",
			 msh->message_type);
		return v->reason = ZG_R_HL7_MESSAGE_TYPE;
	}
	return ZG_R_OK;
}

enum zg_reason zg_inspect_dicom_status_reason(enum zg_dul_status st)
{
	switch (st) {
	case ZG_DUL_BAD_TYPE:
	case ZG_DUL_UNRECOGNIZED:
		return ZG_R_DICOM_UNEXPECTED_PDU;
	case ZG_DUL_TOO_LARGE:
		return ZG_R_DICOM_PDU_TOO_LARGE;
	case ZG_DUL_MALFORMED:
		return ZG_R_DICOM_MALFORMED;
	case ZG_DUL_OK:
	case ZG_DUL_NEED_MORE:
		break;
	}
	return ZG_R_OK;
}

const char *zg_inspect_name(enum zg_inspect k)
{
	switch (k) {
	case ZG_INSPECT_NONE:
		return "none";
	case ZG_INSPECT_DICOM:
		return "dicom";
	case ZG_INSPECT_HL7:
		return "hl7-mllp";
	}
	return "unknown";
}
