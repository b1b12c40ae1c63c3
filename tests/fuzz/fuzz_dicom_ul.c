/* fuzz_dicom_ul.c - the DICOM upper-layer parser over arbitrary bytes.
 *
 * Targets: zg_dul_parse_rq() on the input (bounded by a 64 KiB association
 * request), then zg_dul_frame_feed() over the bytes after it in chunks of
 * a size taken from the input, and the RJ/A-ABORT builders. The seeds are
 * the client side of real DCMTK associations (echoscu, findscu, storescu
 * with and without -R) recorded through a TCP proxy.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/dicom_ul.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zg_dul_rq rq;
	struct zg_dul_frame f;
	uint8_t out[ZG_DUL_RJ_LEN];
	size_t used = 0, chunk;
	const char *why;
	enum zg_dul_status st;

	st = zg_dul_parse_rq(data, size, 65536, &rq, &used, &why);
	if (st != ZG_DUL_OK) {
		zg_dul_build_abort(out, ZG_DUL_AB_SRC_PROVIDER, zg_dul_abort_reason(st));
		return 0;
	}
	if (strlen(rq.calling_ae) > ZG_DUL_AE_MAX || !zg_dul_valid_ae(rq.called_ae))
		__builtin_trap();
	zg_dul_build_rj(out, ZG_DUL_RJ_PERMANENT, ZG_DUL_RJ_SRC_USER, ZG_DUL_RJ_USER_CALLING_AE);
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
