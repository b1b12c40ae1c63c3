/* probe_hl7.c - HL7 v2 over MLLP as a health probe; see probe.h.
 * MLLP frame: 0x0B, message, 0x1C 0x0D. The ACK's MSA-1 decides; the
 * field separator is the reply's own MSH-1, never assumed. */
#include <stdio.h>
#include <string.h>

#include "upstream/probe.h"

#define SB 0x0b
#define EB 0x1c
#define CR 0x0d

size_t zg_hl7_frame(const char *msg, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0;

	if (n < 4 || memcmp(msg, "MSH", 3) != 0 || cap < 3)
		return 0;
	out[o++] = SB;
	for (size_t i = 0; i < n; i++) {
		char ch = msg[i];
		if (ch == '\r' && i + 1 < n && msg[i + 1] == '\n')
			continue; /* CRLF: the LF becomes the CR */
		if (ch == SB || ch == EB)
			return 0; /* would break the framing */
		if (o + 3 > cap)
			return 0;
		out[o++] = (uint8_t)(ch == '\n' ? '\r' : ch);
	}
	if (out[o - 1] != CR)
		out[o++] = CR; /* a segment ends with CR */
	out[o++] = EB;
	out[o++] = CR;
	return o;
}

size_t zg_hl7_default_message(const char *ts, const char *id, char *out, size_t cap)
{
	int n = snprintf(out, cap, "MSH|^~\\&|ZONEGATE|ZONEGATE|||%s||NMQ^N01^NMQ_N01|%s|P|2.5\r"
				   "NCK|%s\r", ts, id, ts);

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static int bad(enum zg_reason *v, char *detail, size_t dcap, const char *why)
{
	*v = ZG_R_CHECK_BAD_REPLY;
	snprintf(detail, dcap, "%s", why);
	return 1;
}

/* Field 1 of the MSA segment in @msg (@n bytes, segments split by CR)
 * with separator @sep into @code; 0, or -1 if there is no MSA. */
static int msa1(const uint8_t *msg, size_t n, uint8_t sep, char *code, size_t cap)
{
	for (size_t s = 0; s < n;) {
		const uint8_t *end = memchr(msg + s, CR, n - s);
		size_t seg = end ? (size_t)(end - (msg + s)) : n - s;
		if (seg >= 4 && memcmp(msg + s, "MSA", 3) == 0 && msg[s + 3] == sep) {
			size_t f = s + 4, k = 0;
			while (f < s + seg && msg[f] != sep && k + 1 < cap)
				code[k++] = (char)msg[f++];
			code[k] = '\0';
			return 0;
		}
		s += seg + 1;
	}
	return -1;
}

int zg_hl7_reply(const uint8_t *buf, size_t len, size_t cap, enum zg_reason *v, char *detail,
		 size_t dcap)
{
	const uint8_t *eb;
	char code[8];
	size_t n;

	if (len == 0)
		return 0;
	if (buf[0] != SB)
		return bad(v, detail, dcap, "not an MLLP frame (no start block 0x0B)");
	eb = memchr(buf + 1, EB, len - 1);
	if (!eb) {
		if (len >= cap)
			return bad(v, detail, dcap, "ACK larger than a check takes");
		return 0;
	}
	if ((size_t)(eb - buf) + 1 >= len)
		return 0; /* the CR after the end block is still to come */
	if (eb[1] != CR)
		return bad(v, detail, dcap, "MLLP end block not followed by CR");
	n = (size_t)(eb - (buf + 1));
	if (n < 8 || memcmp(buf + 1, "MSH", 3) != 0)
		return bad(v, detail, dcap, "reply is not an HL7 message (no MSH)");
	if (msa1(buf + 1, n, buf[4], code, sizeof(code)) < 0)
		return bad(v, detail, dcap, "reply has no MSA segment");
	if (strcmp(code, "AA") == 0 || strcmp(code, "CA") == 0) {
		*v = ZG_R_OK;
		return 1;
	}
	if (strcmp(code, "AE") == 0 || strcmp(code, "AR") == 0 || strcmp(code, "CE") == 0 ||
	    strcmp(code, "CR") == 0) {
		*v = ZG_R_CHECK_REJECTED;
		snprintf(detail, dcap, "ACK code %s", code);
		return 1;
	}
	return bad(v, detail, dcap, "MSA-1 is not an acknowledgment code");
}
