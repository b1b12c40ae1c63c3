/* test_dicom_ul.c - the A-ASSOCIATE-RQ parser, the framing checker and the
 * RJ/A-ABORT builders, over requests built here item by item and over the
 * recorded DCMTK requests of the fuzz corpus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/dicom_ul.h"

#define VERIFICATION "1.2.840.10008.1.1"
#define CT_STORAGE "1.2.840.10008.5.1.4.1.1.2"
#define APP_CTX "1.2.840.10008.3.1.1.1"
#define IVRLE "1.2.840.10008.1.2"

struct pdu {
	uint8_t b[8192];
	size_t n;
};

static void put(struct pdu *p, const void *v, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, v, n);
	p->n += n;
}

static void put_item(struct pdu *p, uint8_t type, const void *v, size_t n)
{
	uint8_t h[4] = {type, 0, (uint8_t)(n >> 8), (uint8_t)n};

	put(p, h, 4);
	put(p, v, n);
}

/* @p = the 6-byte PDU header @head (type set) with @body's length, then @body. */
static void pdu_finish(struct pdu *p, uint8_t head[6], const struct pdu *body)
{
	head[4] = (uint8_t)(body->n >> 8);
	head[5] = (uint8_t)body->n;
	p->n = 0;
	put(p, head, 6);
	put(p, body->b, body->n);
}

/* Items after the fixed fields, written into @p; returns nothing. */
static void items(struct pdu *p, const char *abstract, const uint8_t *user_identity, size_t ui_len)
{
	struct pdu pc = {{0}, 0}, ui = {{0}, 0};
	uint8_t id[4] = {1, 0, 0, 0}, maxlen[4] = {0, 0, 0x40, 0};

	put_item(p, 0x10, APP_CTX, strlen(APP_CTX));
	put(&pc, id, 4);
	put_item(&pc, 0x30, abstract, strlen(abstract));
	put_item(&pc, 0x40, IVRLE, strlen(IVRLE));
	put_item(p, 0x20, pc.b, pc.n);
	put_item(&ui, 0x51, maxlen, 4);
	put_item(&ui, 0x52, "1.2.3.4", 7);
	if (user_identity)
		put_item(&ui, 0x58, user_identity, ui_len);
	put_item(p, 0x50, ui.b, ui.n);
}

/* A whole A-ASSOCIATE-RQ from @calling to @called (16-byte fields as
 * given, so padding can be tested). */
static void build_rq(struct pdu *p, const char called[16], const char calling[16], const char *abstract,
		     const uint8_t *ui, size_t ui_len)
{
	struct pdu body = {{0}, 0};
	uint8_t head[6] = {1, 0, 0, 0, 0, 0}, ver[4] = {0, 1, 0, 0}, zero[32] = {0};

	put(&body, ver, 4);
	put(&body, called, 16);
	put(&body, calling, 16);
	put(&body, zero, 32);
	items(&body, abstract, ui, ui_len);
	pdu_finish(p, head, &body);
}

static void parses_a_request(void **state)
{
	static struct zg_dul_rq rq;
	struct pdu p;
	const char *why;
	size_t used = 0;

	(void)state;
	build_rq(&p, "  PACS          ", "MODALITY1       ", CT_STORAGE, NULL, 0);
	assert_int_equal(zg_dul_parse_rq(p.b, p.n, 65536, &rq, &used, &why), ZG_DUL_OK);
	assert_int_equal(used, p.n);
	assert_string_equal(rq.called_ae, "PACS");
	assert_string_equal(rq.calling_ae, "MODALITY1");
	assert_string_equal(rq.app_context, APP_CTX);
	assert_int_equal(rq.n_pc, 1);
	assert_string_equal(rq.pc[0].abstract_syntax, CT_STORAGE);
	assert_int_equal(rq.max_pdu, 0x4000);
	assert_int_equal(rq.user_identity_type, 0);
}

static void every_prefix_needs_more(void **state)
{
	static struct zg_dul_rq rq;
	struct pdu p;
	const char *why;
	size_t used;

	(void)state;
	build_rq(&p, "PACS            ", "MOD             ", VERIFICATION, NULL, 0);
	for (size_t n = 0; n < p.n; n++)
		assert_int_equal(zg_dul_parse_rq(p.b, n, 65536, &rq, &used, &why), ZG_DUL_NEED_MORE);
}

static void user_identity_is_read_and_passcode_not_kept(void **state)
{
	static struct zg_dul_rq rq;
	static const uint8_t ui[] = {2, 0, 0, 5, 'a', 'l', 'i', 'c', 'e', 0, 6, 's', 'e', 'c', 'r', 'e', 't'};
	struct pdu p;
	const char *why;
	size_t used;

	(void)state;
	build_rq(&p, "PACS            ", "MOD             ", VERIFICATION, ui, sizeof(ui));
	assert_int_equal(zg_dul_parse_rq(p.b, p.n, 65536, &rq, &used, &why), ZG_DUL_OK);
	assert_int_equal(rq.user_identity_type, 2);
	assert_string_equal(rq.user, "alice");
	assert_null(memmem(&rq, sizeof(rq), "secret", 6));
}

static void user_identity_overrun_is_malformed(void **state)
{
	static struct zg_dul_rq rq;
	static const uint8_t ui[] = {1, 0, 0, 9, 'a', 'l', 'i', 'c', 'e', 0, 0};
	struct pdu p;
	const char *why;
	size_t used;

	(void)state;
	build_rq(&p, "PACS            ", "MOD             ", VERIFICATION, ui, sizeof(ui));
	assert_int_equal(zg_dul_parse_rq(p.b, p.n, 65536, &rq, &used, &why), ZG_DUL_MALFORMED);
}

static void bad_ae_titles_are_malformed(void **state)
{
	static struct zg_dul_rq rq;
	struct pdu p;
	const char *why;
	size_t used;

	(void)state;
	build_rq(&p, "                ", "MOD             ", VERIFICATION, NULL, 0);
	assert_int_equal(zg_dul_parse_rq(p.b, p.n, 65536, &rq, &used, &why), ZG_DUL_MALFORMED);
	build_rq(&p, "PACS\\X          ", "MOD             ", VERIFICATION, NULL, 0);
	assert_int_equal(zg_dul_parse_rq(p.b, p.n, 65536, &rq, &used, &why), ZG_DUL_MALFORMED);
	build_rq(&p, "PACS\0           ", "MOD             ", VERIFICATION, NULL, 0);
	assert_int_equal(zg_dul_parse_rq(p.b, p.n, 65536, &rq, &used, &why), ZG_DUL_MALFORMED);
	build_rq(&p, "PACS            ", "MOD\n            ", VERIFICATION, NULL, 0);
	assert_int_equal(zg_dul_parse_rq(p.b, p.n, 65536, &rq, &used, &why), ZG_DUL_MALFORMED);
}

static void lengths_are_bounded(void **state)
{
	static struct zg_dul_rq rq;
	struct pdu p;
	const char *why;
	size_t used;
	uint8_t huge[6] = {1, 0, 0xff, 0xff, 0xff, 0xff}, tiny[6] = {1, 0, 0, 0, 0, 10}, other[1] = {4};
	uint8_t junk[1] = {0x42};

	(void)state;
	assert_int_equal(zg_dul_parse_rq(huge, 6, 65536, &rq, &used, &why), ZG_DUL_TOO_LARGE);
	assert_int_equal(zg_dul_parse_rq(tiny, 6, 65536, &rq, &used, &why), ZG_DUL_MALFORMED);
	assert_int_equal(zg_dul_parse_rq(other, 1, 65536, &rq, &used, &why), ZG_DUL_BAD_TYPE);
	assert_int_equal(zg_dul_parse_rq(junk, 1, 65536, &rq, &used, &why), ZG_DUL_UNRECOGNIZED);
	/* an item length one past the PDU's end */
	build_rq(&p, "PACS            ", "MOD             ", VERIFICATION, NULL, 0);
	p.b[6 + 68 + 3] += 1;
	assert_int_equal(zg_dul_parse_rq(p.b, p.n, 65536, &rq, &used, &why), ZG_DUL_MALFORMED);
	/* the PDU one byte shorter than its items */
	build_rq(&p, "PACS            ", "MOD             ", VERIFICATION, NULL, 0);
	{
		unsigned len = ((unsigned)p.b[4] << 8 | p.b[5]) - 1;
		p.b[4] = (uint8_t)(len >> 8);
		p.b[5] = (uint8_t)len;
	}
	assert_int_equal(zg_dul_parse_rq(p.b, p.n - 1, 65536, &rq, &used, &why), ZG_DUL_MALFORMED);
}

static size_t read_corpus(const char *name, uint8_t *buf, size_t cap)
{
	char path[1024];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/dicom_ul/%s",
		 getenv("ZG_SRCDIR") ? getenv("ZG_SRCDIR") : ".", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void dcmtk_storescu_association_parses_and_frames(void **state)
{
	static struct zg_dul_rq rq;
	static uint8_t buf[65536];
	struct zg_dul_frame f;
	size_t n = read_corpus("dcmtk_store_all", buf, sizeof(buf)), used = 0;
	const char *why;

	(void)state;
	assert_int_equal(zg_dul_parse_rq(buf, n, 65536, &rq, &used, &why), ZG_DUL_OK);
	assert_string_equal(rq.calling_ae, "ZGTEST");
	assert_string_equal(rq.called_ae, "STORESCP");
	assert_true(rq.n_pc > 100); /* storescu proposes every storage class */
	memset(&f, 0, sizeof(f));
	/* the rest, a byte at a time: P-DATA-TF then A-RELEASE-RQ */
	for (size_t i = used; i < n; i++)
		assert_int_equal(zg_dul_frame_feed(&f, buf + i, 1, 16384, &why), ZG_DUL_OK);
	assert_true(f.pdus >= 2);
	assert_int_equal(f.remaining, 0);
	assert_int_equal(f.type, ZG_DUL_RELEASE_RQ);
}

static void framing_refuses_what_a_requestor_may_not_send(void **state)
{
	struct zg_dul_frame f;
	const char *why;
	uint8_t again[6] = {1, 0, 0, 0, 0, 80}, big[6] = {4, 0, 0, 1, 0, 0}, max[6] = {4, 0, 0xff, 0xff, 0xff, 0xff};
	uint8_t rel_bad[6] = {5, 0, 0, 0, 0, 5}, unknown[6] = {9, 0, 0, 0, 0, 4};
	uint8_t rel[10] = {5, 0, 0, 0, 0, 4, 0, 0, 0, 0}, data[12] = {4, 0, 0, 0, 0, 6, 0, 0, 0, 2, 1, 3};

	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(zg_dul_frame_feed(&f, again, 6, 16384, &why), ZG_DUL_BAD_TYPE);
	memset(&f, 0, sizeof(f));
	assert_int_equal(zg_dul_frame_feed(&f, big, 6, 16384, &why), ZG_DUL_TOO_LARGE);
	memset(&f, 0, sizeof(f));
	assert_int_equal(zg_dul_frame_feed(&f, max, 6, 16384, &why), ZG_DUL_TOO_LARGE);
	memset(&f, 0, sizeof(f));
	assert_int_equal(zg_dul_frame_feed(&f, rel_bad, 6, 16384, &why), ZG_DUL_MALFORMED);
	memset(&f, 0, sizeof(f));
	assert_int_equal(zg_dul_frame_feed(&f, unknown, 6, 16384, &why), ZG_DUL_UNRECOGNIZED);
	memset(&f, 0, sizeof(f));
	assert_int_equal(zg_dul_frame_feed(&f, data, 12, 16384, &why), ZG_DUL_OK);
	assert_int_equal(zg_dul_frame_feed(&f, rel, 10, 16384, &why), ZG_DUL_OK);
	assert_int_equal(zg_dul_frame_feed(&f, data, 12, 16384, &why), ZG_DUL_BAD_TYPE);
}

static void builders_write_ps38_layouts(void **state)
{
	uint8_t rj[ZG_DUL_RJ_LEN], ab[ZG_DUL_ABORT_LEN];
	static const uint8_t want_rj[] = {3, 0, 0, 0, 0, 4, 0, 1, 1, 3};
	static const uint8_t want_ab[] = {7, 0, 0, 0, 0, 4, 0, 0, 2, 6};

	(void)state;
	zg_dul_build_rj(rj, ZG_DUL_RJ_PERMANENT, ZG_DUL_RJ_SRC_USER, ZG_DUL_RJ_USER_CALLING_AE);
	assert_memory_equal(rj, want_rj, sizeof(rj));
	zg_dul_build_abort(ab, ZG_DUL_AB_SRC_PROVIDER, zg_dul_abort_reason(ZG_DUL_MALFORMED));
	assert_memory_equal(ab, want_ab, sizeof(ab));
	assert_int_equal(zg_dul_abort_reason(ZG_DUL_UNRECOGNIZED), 1);
	assert_int_equal(zg_dul_abort_reason(ZG_DUL_BAD_TYPE), 2);
}

/* An A-ASSOCIATE-RQ proposing one context per syntax in @sops, ids 1, 3,
 * 5...; its user information carries a maximum length of 0x4000. */
static void build_multi_rq(struct pdu *p, const char *const *sops, unsigned n)
{
	struct pdu body = {{0}, 0}, ui = {{0}, 0};
	uint8_t head[6] = {1, 0, 0, 0, 0, 0}, ver[4] = {0, 1, 0, 0}, zero[32] = {0};
	uint8_t maxlen[4] = {0, 0, 0x40, 0};

	put(&body, ver, 4);
	put(&body, "PACS            ", 16);
	put(&body, "MODALITY1       ", 16);
	put(&body, zero, 32);
	put_item(&body, 0x10, APP_CTX, strlen(APP_CTX));
	for (unsigned i = 0; i < n; i++) {
		struct pdu pc = {{0}, 0};
		uint8_t id[4] = {(uint8_t)(2 * i + 1), 0, 0, 0};
		put(&pc, id, 4);
		put_item(&pc, 0x30, sops[i], strlen(sops[i]));
		put_item(&pc, 0x40, IVRLE, strlen(IVRLE));
		put_item(&body, 0x20, pc.b, pc.n);
	}
	put_item(&ui, 0x51, maxlen, 4);
	put_item(&ui, 0x52, "1.2.3.4", 7);
	put_item(&body, 0x50, ui.b, ui.n);
	pdu_finish(p, head, &body);
}

static void set_len(struct pdu *p, size_t body)
{
	p->b[2] = (uint8_t)(body >> 24);
	p->b[3] = (uint8_t)(body >> 16);
	p->b[4] = (uint8_t)(body >> 8);
	p->b[5] = (uint8_t)body;
}

static void rq_drop_leaves_a_valid_request(void **state)
{
	static const char *const sops[3] = {CT_STORAGE, VERIFICATION, "1.2.840.10008.5.1.4.1.1.4"};
	static struct zg_dul_rq rq;
	uint8_t drop[256] = {0};
	struct pdu p, orig;
	const char *why;
	size_t used = 0, len = 0;

	(void)state;
	build_multi_rq(&p, sops, 3);
	orig = p;
	/* nothing to drop: the same bytes */
	assert_int_equal(zg_dul_rq_drop_pcs(p.b, p.n, drop, &len), 0);
	assert_int_equal(len, p.n);
	assert_memory_equal(p.b, orig.b, p.n);
	drop[3] = 1;
	assert_int_equal(zg_dul_rq_drop_pcs(p.b, p.n, drop, &len), 0);
	/* the context item: header 4, id 4, abstract 4 + 17, transfer 4 + 17 */
	assert_int_equal(len, orig.n - (4 + 4 + 4 + strlen(VERIFICATION) + 4 + strlen(IVRLE)));
	assert_int_equal(zg_dul_parse_rq(p.b, len, 65536, &rq, &used, &why), ZG_DUL_OK);
	assert_int_equal(used, len);
	assert_int_equal(rq.n_pc, 2);
	assert_int_equal(rq.pc[0].id, 1);
	assert_int_equal(rq.pc[1].id, 5);
	assert_string_equal(rq.pc[1].abstract_syntax, sops[2]);
	assert_int_equal(rq.max_pdu, 0x4000);
	assert_string_equal(rq.impl_class_uid, "1.2.3.4");
	/* dropping every context is refused, and leaves the PDU as it was */
	p = orig;
	drop[1] = drop[5] = 1;
	assert_int_equal(zg_dul_rq_drop_pcs(p.b, p.n, drop, &len), -1);
	assert_memory_equal(p.b, orig.b, p.n);
}

static void rq_drop_refuses_malformed_input(void **state)
{
	static const char *const sops[2] = {CT_STORAGE, VERIFICATION};
	uint8_t drop[256] = {0};
	struct pdu p, orig;
	size_t len = 0;

	(void)state;
	drop[3] = 1;
	build_multi_rq(&p, sops, 2);
	orig = p;
	/* every shorter length, with the header's length field left or made to match */
	for (size_t n = 0; n < orig.n; n++) {
		p = orig;
		assert_int_equal(zg_dul_rq_drop_pcs(p.b, n, drop, &len), -1);
		if (n >= 6) {
			set_len(&p, n - 6);
			assert_int_equal(zg_dul_rq_drop_pcs(p.b, n, drop, &len), -1);
		}
	}
	/* a length field over the bytes there, up to 2^32-1 */
	p = orig;
	set_len(&p, 0xffffffffu);
	assert_int_equal(zg_dul_rq_drop_pcs(p.b, p.n, drop, &len), -1);
	/* another PDU type */
	p = orig;
	p.b[0] = ZG_DUL_ASSOCIATE_AC;
	assert_int_equal(zg_dul_rq_drop_pcs(p.b, p.n, drop, &len), -1);
	/* an item whose length runs past the PDU: the first context item */
	p = orig;
	p.b[6 + ZG_DUL_RQ_FIXED + 4 + strlen(APP_CTX) + 2] = 0xff;
	assert_int_equal(zg_dul_rq_drop_pcs(p.b, p.n, drop, &len), -1);
	assert_memory_equal(p.b + 6 + ZG_DUL_RQ_FIXED + 4 + strlen(APP_CTX) + 3,
			    orig.b + 6 + ZG_DUL_RQ_FIXED + 4 + strlen(APP_CTX) + 3,
			    orig.n - (6 + ZG_DUL_RQ_FIXED + 4 + strlen(APP_CTX) + 3));
}

static void rq_drop_on_dcmtk_storescu_request(void **state)
{
	static struct zg_dul_rq rq, out;
	static uint8_t buf[65536];
	uint8_t drop[256] = {0};
	size_t n = read_corpus("dcmtk_store_all", buf, sizeof(buf)), used = 0, len = 0;
	const char *why;

	(void)state;
	assert_int_equal(zg_dul_parse_rq(buf, n, 65536, &rq, &used, &why), ZG_DUL_OK);
	for (unsigned i = 1; i < rq.n_pc; i++) /* all but the first */
		drop[rq.pc[i].id] = 1;
	assert_int_equal(zg_dul_rq_drop_pcs(buf, used, drop, &len), 0);
	assert_true(len < used);
	assert_int_equal(zg_dul_parse_rq(buf, len, 65536, &out, &used, &why), ZG_DUL_OK);
	assert_int_equal(used, len);
	assert_int_equal(out.n_pc, 1);
	assert_string_equal(out.pc[0].abstract_syntax, rq.pc[0].abstract_syntax);
	assert_string_equal(out.calling_ae, rq.calling_ae);
	assert_int_equal(out.max_pdu, rq.max_pdu);
}

/* An A-ASSOCIATE-AC accepting the contexts @ids (@n of them). */
static void build_ac(struct pdu *p, const uint8_t *ids, unsigned n)
{
	struct pdu body = {{0}, 0}, ui = {{0}, 0};
	uint8_t head[6] = {2, 0, 0, 0, 0, 0}, ver[4] = {0, 1, 0, 0}, zero[64] = {0};
	uint8_t maxlen[4] = {0, 0, 0x40, 0};

	put(&body, ver, 4);
	put(&body, zero, 64);
	put_item(&body, 0x10, APP_CTX, strlen(APP_CTX));
	for (unsigned i = 0; i < n; i++) {
		struct pdu pc = {{0}, 0};
		uint8_t id[4] = {ids[i], 0, 0, 0};
		put(&pc, id, 4);
		put_item(&pc, 0x40, IVRLE, strlen(IVRLE));
		put_item(&body, 0x21, pc.b, pc.n);
	}
	put_item(&ui, 0x51, maxlen, 4);
	put_item(&body, 0x50, ui.b, ui.n);
	pdu_finish(p, head, &body);
}

/* The presentation context items of AC @b (@n bytes): ids into @ids and
 * results into @res; returns their count. Fails the test on bad bounds. */
static unsigned ac_contexts(const uint8_t *b, size_t n, uint8_t *ids, uint8_t *res)
{
	size_t at = 6 + ZG_DUL_RQ_FIXED;
	unsigned k = 0;

	assert_int_equal(((size_t)b[2] << 24 | (size_t)b[3] << 16 | (size_t)b[4] << 8 | b[5]), n - 6);
	while (at < n) {
		size_t len = (size_t)b[at + 2] << 8 | b[at + 3];
		assert_true(at + 4 + len <= n);
		if (b[at] == 0x21) {
			/* id, reserved, result, reserved, then one transfer syntax sub-item */
			assert_int_equal(b[at + 8], 0x40);
			assert_int_equal(4 + 4 + ((size_t)b[at + 10] << 8 | b[at + 11]), len);
			ids[k] = b[at + 4];
			res[k++] = b[at + 6];
		}
		at += 4 + len;
	}
	assert_int_equal(at, n);
	return k;
}

static void ac_gets_rejected_items_in_id_order(void **state)
{
	static const uint8_t acc[2] = {1, 5}, rej[3] = {3, 7, 9};
	static uint8_t out[8192];
	uint8_t ids[16], res[16];
	struct pdu p;
	size_t len = 0;

	(void)state;
	build_ac(&p, acc, 2);
	assert_int_equal(zg_dul_ac_add_rejected(p.b, p.n, rej, 3, out, sizeof(out), &len), 0);
	assert_int_equal(len, p.n + 3 * ZG_DUL_AC_REJECTED_ITEM);
	assert_int_equal(ac_contexts(out, len, ids, res), 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(ids[i], 2 * i + 1);
		assert_int_equal(res[i], ids[i] == 1 || ids[i] == 5 ? 0 : ZG_DUL_PC_ABSTRACT_NOT_SUPPORTED);
	}
	/* the fixed fields are kept, the user information still comes last */
	assert_memory_equal(out + 6, p.b + 6, ZG_DUL_RQ_FIXED);
	assert_memory_equal(out + len - 12, p.b + p.n - 12, 12);
	/* every output size short of what is needed fails */
	for (size_t cap = 0; cap < len; cap++)
		assert_int_equal(zg_dul_ac_add_rejected(p.b, p.n, rej, 3, out, cap, &len), -1);
	/* no ids: the same PDU */
	assert_int_equal(zg_dul_ac_add_rejected(p.b, p.n, rej, 0, out, sizeof(out), &len), 0);
	assert_int_equal(len, p.n);
	assert_memory_equal(out, p.b, p.n);
}

static void ac_rewrite_refuses_malformed_input(void **state)
{
	static const uint8_t acc[2] = {1, 5}, rej[1] = {3}, dup[1] = {5};
	static uint8_t out[8192], all[ZG_DUL_PC_MAX];
	struct pdu p, orig;
	size_t len = 0;

	(void)state;
	build_ac(&p, acc, 2);
	orig = p;
	for (size_t n = 0; n < orig.n; n++) {
		p = orig;
		assert_int_equal(zg_dul_ac_add_rejected(p.b, n, rej, 1, out, sizeof(out), &len), -1);
		if (n >= 6) {
			set_len(&p, n - 6);
			assert_int_equal(zg_dul_ac_add_rejected(p.b, n, rej, 1, out, sizeof(out), &len), -1);
		}
	}
	p = orig;
	set_len(&p, 0xffffffffu);
	assert_int_equal(zg_dul_ac_add_rejected(p.b, p.n, rej, 1, out, sizeof(out), &len), -1);
	/* an RQ, an RJ: not an AC */
	p = orig;
	p.b[0] = ZG_DUL_ASSOCIATE_RQ;
	assert_int_equal(zg_dul_ac_add_rejected(p.b, p.n, rej, 1, out, sizeof(out), &len), -1);
	/* the upstream answering a context it was never asked about */
	assert_int_equal(zg_dul_ac_add_rejected(orig.b, orig.n, dup, 1, out, sizeof(out), &len), -1);
	/* an even context id, an unknown item */
	p = orig;
	p.b[6 + ZG_DUL_RQ_FIXED + 4 + strlen(APP_CTX) + 4] = 2;
	assert_int_equal(zg_dul_ac_add_rejected(p.b, p.n, rej, 1, out, sizeof(out), &len), -1);
	p = orig;
	p.b[6 + ZG_DUL_RQ_FIXED + 4 + strlen(APP_CTX)] = 0x22;
	assert_int_equal(zg_dul_ac_add_rejected(p.b, p.n, rej, 1, out, sizeof(out), &len), -1);
	/* the most contexts a request can carry fit the engine's buffer size */
	build_ac(&p, acc, 0);
	for (unsigned i = 0; i < ZG_DUL_PC_MAX; i++)
		all[i] = (uint8_t)(2 * i + 1);
	assert_int_equal(zg_dul_ac_add_rejected(p.b, p.n, all, ZG_DUL_PC_MAX, out, sizeof(out), &len), 0);
	assert_int_equal(len, p.n + ZG_DUL_PC_MAX * ZG_DUL_AC_REJECTED_ITEM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_a_request),
		cmocka_unit_test(every_prefix_needs_more),
		cmocka_unit_test(user_identity_is_read_and_passcode_not_kept),
		cmocka_unit_test(user_identity_overrun_is_malformed),
		cmocka_unit_test(bad_ae_titles_are_malformed),
		cmocka_unit_test(lengths_are_bounded),
		cmocka_unit_test(dcmtk_storescu_association_parses_and_frames),
		cmocka_unit_test(framing_refuses_what_a_requestor_may_not_send),
		cmocka_unit_test(builders_write_ps38_layouts),
		cmocka_unit_test(rq_drop_leaves_a_valid_request),
		cmocka_unit_test(rq_drop_refuses_malformed_input),
		cmocka_unit_test(rq_drop_on_dcmtk_storescu_request),
		cmocka_unit_test(ac_gets_rejected_items_in_id_order),
		cmocka_unit_test(ac_rewrite_refuses_malformed_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
