/* fuzz_audit_spool.c - the audit spool record parser.
 *
 * Targets: zg_spool_parse() walked over the whole input the way the spool
 * reader walks a segment (OK -> next frame, BAD -> resynchronise, SHORT ->
 * stop), zg_spool_frame() re-framing every record found (the result must
 * parse back to the same record), and zg_audit_xml_escape() on each payload
 * (the result must fit and hold no raw '<' or control byte), and
 * zg_syslog_sendable(): a record it accepts must format as a syslog message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/msg.h"
#include "audit/spool.h"
#include "audit/syslog.h"

static void check_escape(const uint8_t *p, size_t n)
{
	char in[512], out[512 * 6 + 1];
	size_t m = n < sizeof(in) - 1 ? n : sizeof(in) - 1;
	int k;

	memcpy(in, p, m);
	in[m] = '\0';
	k = zg_audit_xml_escape(out, sizeof(out), in);
	if (k < 0 || (size_t)k != strlen(out))
		abort();
	for (int i = 0; i < k; i++)
		if (out[i] == '<' || (unsigned char)out[i] < 0x20)
			abort();
}

static void check_reframe(const struct zg_spool_rec *r)
{
	static uint8_t buf[ZG_SPOOL_HDR + ZG_SPOOL_PAYLOAD_MAX];
	struct zg_spool_rec back;
	size_t used, n = zg_spool_frame(buf, sizeof(buf), r->seq, r->ts_ns, r->payload, r->len);

	if (n != ZG_SPOOL_HDR + (size_t)r->len)
		abort();
	if (zg_spool_parse(buf, n, &back, &used) != ZG_SPOOL_OK || used != n ||
	    back.seq != r->seq || back.ts_ns != r->ts_ns || back.len != r->len ||
	    memcmp(back.payload, r->payload, r->len) != 0)
		abort();
}

/* What the delivery thread calls sendable, the syslog formatter must carry
 * (with the longest hostname): else a record would be retried forever. */
static void check_sendable(const struct zg_spool_rec *r)
{
	static char out[ZG_AUDIT_XML_MAX + 512];
	char host[256];

	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (zg_syslog_sendable(r) &&
	    zg_syslog_format(out, sizeof(out), r->ts_ns, host, 4294967295u, r->seq,
			     (const char *)r->payload, r->len) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct zg_spool_rec r;
		size_t used = 0;
		enum zg_spool_parse v = zg_spool_parse(data + off, size - off, &r, &used);

		if (v == ZG_SPOOL_SHORT)
			break;
		if (used == 0 || used > size - off)
			abort(); /* the reader would loop or overrun */
		if (v == ZG_SPOOL_OK) {
			if (r.payload != data + off + ZG_SPOOL_HDR || r.len > ZG_SPOOL_PAYLOAD_MAX)
				abort();
			check_reframe(&r);
			check_escape(r.payload, r.len);
			check_sendable(&r);
		}
		off += used;
	}
	return 0;
}
