/* fuzz_hl7.c - the MLLP framer, the MSH parser and the ACK builder over
 * arbitrary bytes.
 *
 * The input is a client's MLLP stream: every message header the framer
 * reports is parsed and answered with an AR ACK, which must itself frame
 * and parse again. The seeds are real mllp_send (python3-hl7) traffic and
 * variants with other separators and a broken frame end.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/hl7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The ACK we build must be one well-formed frame with a parseable MSH. */
static void check_ack(const struct zg_hl7_msh *msh)
{
	static uint8_t ack[ZG_HL7_ACK_MAX];
	static struct zg_mllp m;
	struct zg_hl7_msh back;
	enum zg_mllp_event ev;
	const char *why;
	size_t n = zg_hl7_build_ack(msh, "AR", 207, "not allowed", "20260101000000", "ZG1", ack,
				    sizeof(ack)), used;

	if (n == 0)
		__builtin_trap();
	memset(&m, 0, sizeof(m));
	used = zg_mllp_feed(&m, ack, n, 1u << 20, &ev, &why);
	if (ev != ZG_MLLP_EV_HEADER || zg_hl7_parse_msh(m.hdr, m.hdr_len, &back, &why) != ZG_HL7_OK ||
	    strcmp(back.control_id, "ZG1") != 0)
		__builtin_trap();
	while (used < n && ev != ZG_MLLP_EV_END && ev != ZG_MLLP_EV_BAD)
		used += zg_mllp_feed(&m, ack + used, n - used, 1u << 20, &ev, &why);
	if (ev != ZG_MLLP_EV_END || used != n)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zg_mllp m;
	struct zg_hl7_msh msh;
	enum zg_mllp_event ev;
	const char *why;
	size_t used = 0;

	memset(&m, 0, sizeof(m));
	while (used < size) {
		used += zg_mllp_feed(&m, data + used, size - used, 65536, &ev, &why);
		if (ev == ZG_MLLP_EV_BAD)
			break;
		if (ev == ZG_MLLP_EV_HEADER && zg_hl7_parse_msh(m.hdr, m.hdr_len, &msh, &why) == ZG_HL7_OK)
			check_ack(&msh);
	}
	return 0;
}
