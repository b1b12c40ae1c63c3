/* test_inspect.c - the inspection verdicts: which DICOM request or HL7
 * header a route accepts for a participant, and what a refusal answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proto/inspect.h"

static char ae_mod[] = "MODALITY1", ae_ct[] = "CT 2", fac_a[] = "SITEA";
static char *aes[] = {ae_mod, ae_ct}, *facs[] = {fac_a};

static void participant(struct zg_participant *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", "site-a");
	p->dicom_ae = aes;
	p->n_dicom_ae = 2;
	p->hl7_facilities = facs;
	p->n_hl7_facilities = 1;
}

static void request(struct zg_dul_rq *rq, const char *calling, const char *called, const char *sop)
{
	memset(rq, 0, sizeof(*rq));
	rq->protocol_version = 1;
	snprintf(rq->calling_ae, sizeof(rq->calling_ae), "%s", calling);
	snprintf(rq->called_ae, sizeof(rq->called_ae), "%s", called);
	snprintf(rq->app_context, sizeof(rq->app_context), "%s", ZG_DICOM_APP_CONTEXT);
	rq->n_pc = 1;
	rq->pc[0].id = 1;
	snprintf(rq->pc[0].abstract_syntax, sizeof(rq->pc[0].abstract_syntax), "%s", sop);
	rq->pc[0].n_transfer = 1;
}

static void route(struct zg_inspect_conf *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = ZG_INSPECT_DICOM;
	snprintf(r->called_ae[0], sizeof(r->called_ae[0]), "%s", "PACS");
	r->n_called_ae = 1;
}

static void dicom_verdicts(void **state)
{
	static struct zg_dul_rq rq;
	struct zg_participant p;
	struct zg_inspect_conf r;
	struct zg_inspect_verdict v;

	(void)state;
	participant(&p);
	route(&r);
	request(&rq, "MODALITY1", "PACS", "1.2.840.10008.1.1");
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_OK);
	request(&rq, "CT 2", "PACS", "1.2.840.10008.1.1");
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_OK);
	/* another participant's AE, or a case variant: calling AE not recognized */
	request(&rq, "modality1", "PACS", "1.2.840.10008.1.1");
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_DICOM_CALLING_AE);
	assert_int_equal(v.rj_source, ZG_DUL_RJ_SRC_USER);
	assert_int_equal(v.rj_reason, ZG_DUL_RJ_USER_CALLING_AE);
	assert_non_null(strstr(v.detail, "site-a"));
	/* without a participant (wrap route) the calling AE is not judged */
	assert_int_equal(zg_inspect_dicom(&rq, NULL, &r, &v), ZG_R_OK);
	request(&rq, "MODALITY1", "ARCHIVE", "1.2.840.10008.1.1");
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_DICOM_CALLED_AE);
	assert_int_equal(v.rj_reason, ZG_DUL_RJ_USER_CALLED_AE);
	/* the allowlist, when given */
	request(&rq, "MODALITY1", "PACS", "1.2.840.10008.5.1.4.1.1.2");
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_OK);
	snprintf(r.abstract_syntaxes[0], sizeof(r.abstract_syntaxes[0]), "%s", "1.2.840.10008.1.1");
	r.n_abstract_syntaxes = 1;
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_DICOM_ABSTRACT_SYNTAX);
	assert_int_equal(v.rj_reason, ZG_DUL_RJ_USER_NO_REASON);
	assert_int_equal(v.n_refused_pc, 0);
	/* one allowed context among refused ones: accepted, the others listed
	 * once each, ids ascending */
	rq.n_pc = 4;
	rq.pc[0].id = 7;
	for (unsigned i = 1; i < 4; i++) {
		rq.pc[i] = rq.pc[0];
		rq.pc[i].id = (uint8_t)(7 - 2 * i);
	}
	snprintf(rq.pc[2].abstract_syntax, sizeof(rq.pc[2].abstract_syntax), "%s", "1.2.840.10008.1.1");
	snprintf(rq.pc[3].abstract_syntax, sizeof(rq.pc[3].abstract_syntax), "%s", "1.2.840.10008.5.1.4.1.1.4");
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_OK);
	assert_int_equal(v.n_refused_pc, 3);
	assert_int_equal(v.refused_pc[0], 1);
	assert_int_equal(v.refused_pc[1], 5);
	assert_int_equal(v.refused_pc[2], 7);
	assert_string_equal(v.detail,
			    "3 of 4 contexts refused, abstract syntaxes: 1.2.840.10008.5.1.4.1.1.2 "
			    "1.2.840.10008.5.1.4.1.1.4");
	/* a long list ends in "..." within the detail */
	rq.n_pc = ZG_DUL_PC_MAX;
	for (unsigned i = 4; i < ZG_DUL_PC_MAX; i++) {
		rq.pc[i] = rq.pc[0];
		rq.pc[i].id = (uint8_t)(2 * i + 1);
		snprintf(rq.pc[i].abstract_syntax, sizeof(rq.pc[i].abstract_syntax), "1.2.840.10008.5.1.4.1.1.%u", i);
	}
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_OK);
	assert_int_equal(v.n_refused_pc, ZG_DUL_PC_MAX - 1);
	assert_true(strlen(v.detail) < sizeof(v.detail));
	assert_string_equal(v.detail + strlen(v.detail) - 4, " ...");
	assert_memory_equal(v.detail, "127 of 128 contexts refused,", 28);
	rq.n_pc = 1;
	rq.pc[0].id = 1;
	/* protocol and application context come first */
	rq.protocol_version = 2;
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_DICOM_PROTOCOL_VERSION);
	assert_int_equal(v.rj_source, ZG_DUL_RJ_SRC_ACSE);
	rq.protocol_version = 1;
	snprintf(rq.app_context, sizeof(rq.app_context), "%s", "1.2.3");
	assert_int_equal(zg_inspect_dicom(&rq, &p, &r, &v), ZG_R_DICOM_APP_CONTEXT);
}

static void hl7_verdicts(void **state)
{
	static const char *const msg = "MSH|^~\\&|LAB|SITEA^1.2^ISO|ADT|B|2026||ORU^R01|7|P|2.5\r";
	static const char *const foreign = "MSH|^~\\&|LAB|SITEZ|ADT|B|2026||ORU^R01|7|P|2.5\r";
	struct zg_participant p;
	struct zg_inspect_conf r;
	struct zg_inspect_verdict v;
	struct zg_hl7_msh m;
	const char *why;

	(void)state;
	participant(&p);
	memset(&r, 0, sizeof(r));
	r.kind = ZG_INSPECT_HL7;
	assert_int_equal(zg_hl7_parse_msh((const uint8_t *)msg, strlen(msg), &m, &why), ZG_HL7_OK);
	assert_int_equal(zg_inspect_hl7(&m, &p, &r, &v), ZG_R_OK);
	snprintf(r.hl7_types[0], sizeof(r.hl7_types[0]), "%s", "ADT^*");
	r.n_hl7_types = 1;
	assert_int_equal(zg_inspect_hl7(&m, &p, &r, &v), ZG_R_HL7_MESSAGE_TYPE);
	assert_int_equal(v.hl7_error, 200);
	assert_int_equal(zg_hl7_parse_msh((const uint8_t *)foreign, strlen(foreign), &m, &why), ZG_HL7_OK);
	assert_int_equal(zg_inspect_hl7(&m, &p, &r, &v), ZG_R_HL7_FACILITY);
	assert_non_null(strstr(v.detail, "SITEZ"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dicom_verdicts),
		cmocka_unit_test(hl7_verdicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
