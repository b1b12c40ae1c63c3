/* fuzz_dicom_ul.c - the DICOM upper-layer parser over arbitrary bytes.
 *
 * Targets: zg_dul_parse_rq() on the input (bounded by a 64 KiB association
 * request), then zg_dul_frame_feed() over the bytes after it in chunks of
 * a size taken from the input, and the RJ/A-ABORT builders. A request that
 * parses also goes through the gateway's rewrite: contexts chosen by the
 * input's bytes are removed (the result must parse again, with the others
 * in order); and the input read as the upstream's A-ASSOCIATE-AC gets
 * rejected items added (seeds ac_storescp*: storescp's answers to the
 * dcmtk_store_all and dcmtk_store_req requests). The seeds are
 * the client side of real DCMTK associations (echoscu, findscu, storescu
 * with and without -R) recorded through a TCP proxy.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/dicom_ul.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The rewrite path on request @p (@n bytes) that parsed into @rq. */
static void rewrite(const uint8_t *p, size_t n, const struct zg_dul_rq *rq)
{
	static uint8_t buf[65536];
	static struct zg_dul_rq again;
	uint8_t drop[256] = {0};
	unsigned k = 0;
	size_t len = 0, used = 0;
	const char *why;

	for (unsigned i = 0; i < 256; i += 2)
		if (p[(i * 7) % n] & 1)
			drop[i + 1] = 1; /* the odd ids: those a context may have */
	memcpy(buf, p, n);
	if (zg_dul_rq_drop_pcs(buf, n, drop, &len) == 0) {
		if (len > n || zg_dul_parse_rq(buf, len, 65536, &again, &used, &why) != ZG_DUL_OK)
			__builtin_trap();
		for (unsigned i = 0; i < rq->n_pc; i++)
			if (!drop[rq->pc[i].id] && again.pc[k++].id != rq->pc[i].id)
				__builtin_trap();
		if (k != again.n_pc)
			__builtin_trap();
	}
}

/* The input as the upstream's A-ASSOCIATE-AC, with rejected items for the
 * odd ids its last byte's bits pick among 129..143 (above those the seeds
 * answer, so the merge runs; lower ones are the fuzzer's to find). */
static void ac_rewrite(const uint8_t *p, size_t n)
{
	static uint8_t ac[65536 + ZG_DUL_PC_MAX * ZG_DUL_AC_REJECTED_ITEM];
	uint8_t ids[8];
	unsigned n_ids = 0;
	size_t len = 0;

	if (n == 0 || n > 65536)
		return;
	for (unsigned b = 0; b < 8; b++)
		if (p[n - 1] >> b & 1)
			ids[n_ids++] = (uint8_t)(129 + 2 * b);
	if (zg_dul_ac_add_rejected(p, n, ids, n_ids, ac, sizeof(ac), &len) == 0 &&
	    len != n + n_ids * ZG_DUL_AC_REJECTED_ITEM)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zg_dul_rq rq;
	struct zg_dul_frame f;
	uint8_t out[ZG_DUL_RJ_LEN];
	size_t used = 0, chunk;
	const char *why;
	enum zg_dul_status st;

	ac_rewrite(data, size);
	st = zg_dul_parse_rq(data, size, 65536, &rq, &used, &why);
	if (st != ZG_DUL_OK) {
		zg_dul_build_abort(out, ZG_DUL_AB_SRC_PROVIDER, zg_dul_abort_reason(st));
		return 0;
	}
	if (strlen(rq.calling_ae) > ZG_DUL_AE_MAX || !zg_dul_valid_ae(rq.called_ae))
		__builtin_trap();
	zg_dul_build_rj(out, ZG_DUL_RJ_PERMANENT, ZG_DUL_RJ_SRC_USER, ZG_DUL_RJ_USER_CALLING_AE);
	rewrite(data, used, &rq);
	memset(&f, 0, sizeof(f));
	chunk = size > used ? 1 + data[used] % 64 : 1;
	while (used < size) {
		size_t k = size - used < chunk ? size - used : chunk;
		if (zg_dul_frame_feed(&f, data + used, k, 16384, &why) != ZG_DUL_OK)
			break;
		used += k;
	}
	return 0;
}
