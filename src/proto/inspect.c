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

/* 1 if @uid is in the route's allowlist, or there is none. */
static int syntax_allowed(const struct zg_inspect_conf *r, const char *uid)
{
	for (unsigned k = 0; k < r->n_abstract_syntaxes; k++)
		if (strcmp(r->abstract_syntaxes[k], uid) == 0)
			return 1;
	return r->n_abstract_syntaxes == 0;
}

/* room kept in the detail for the count put in front of the list */
#define REFUSED_PREFIX "nnn of nnn contexts refused, abstract syntaxes:"

/* Append the abstract syntax of @rq's context @i to the refused list in
 * @v->detail unless an earlier refused context named it already: one
 * line, each syntax once, ending in "..." when the rest does not fit. */
static void list_refused(struct zg_inspect_verdict *v, const struct zg_dul_rq *rq, unsigned i)
{
	const char *uid = rq->pc[i].abstract_syntax;
	size_t used = strlen(v->detail);

	for (unsigned j = 0; j < i; j++)
		if (strcmp(rq->pc[j].abstract_syntax, uid) == 0)
			return; /* same syntax, so refused too and listed */
	if (used + 1 + strlen(uid) + 4 >= sizeof(v->detail)) {
		if (strcmp(v->detail + used - 3, "...") != 0)
			snprintf(v->detail + used, sizeof(v->detail) - used, " ...");
		return;
	}
	snprintf(v->detail + used, sizeof(v->detail) - used, " %s", uid);
}

/* Sort the refused ids ascending: the A-ASSOCIATE-AC answers in id order. */
static void sort_ids(uint8_t *ids, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
			uint8_t t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
}

/* Sort @rq's contexts by the allowlist: the refused ones' ids into @v,
 * their syntaxes into v->detail. The number of allowed contexts. */
static unsigned split_contexts(const struct zg_dul_rq *rq, const struct zg_inspect_conf *r,
			       struct zg_inspect_verdict *v)
{
	unsigned allowed = 0;

	snprintf(v->detail, sizeof(v->detail), "%s", REFUSED_PREFIX);
	for (unsigned i = 0; i < rq->n_pc; i++) {
		if (syntax_allowed(r, rq->pc[i].abstract_syntax)) {
			allowed++;
			continue;
		}
		v->refused_pc[v->n_refused_pc++] = rq->pc[i].id;
		list_refused(v, rq, i);
	}
	sort_ids(v->refused_pc, v->n_refused_pc);
	if (!v->n_refused_pc) {
		v->detail[0] = '\0';
	} else {
		/* the count first (the list may not fit); it takes no more room
		 * than the placeholder, as counts have at most 3 digits */
		char head[sizeof(REFUSED_PREFIX)];
		size_t room = strlen(REFUSED_PREFIX);
		int h = snprintf(head, sizeof(head), "%u of %u contexts refused, abstract syntaxes:",
				 v->n_refused_pc, rq->n_pc);
		if (h > 0 && (size_t)h <= room) {
			memmove(v->detail + h, v->detail + room, strlen(v->detail + room) + 1);
			memcpy(v->detail, head, (size_t)h);
		}
	}
	return allowed;
}

enum zg_reason zg_inspect_dicom(const struct zg_dul_rq *rq, const struct zg_participant *who,
				const struct zg_inspect_conf *r, struct zg_inspect_verdict *v)
{
	char d[ZG_INSPECT_DETAIL_MAX];

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
	/* PS3.8 9.3.2.2: an association needs one usable context; the others
	 * a node may reject one by one in its A-ASSOCIATE-AC. */
	if (split_contexts(rq, r, v) == 0) {
		v->n_refused_pc = 0;
		snprintf(d, sizeof(d), "abstract syntax %s is not allowed", rq->pc[0].abstract_syntax);
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
