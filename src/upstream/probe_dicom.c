/* probe_dicom.c - DICOM Verification (C-ECHO) as a health probe; see
 * probe.h. PS3.8 9.3 (upper layer PDUs, big-endian) and PS3.7 9.3.5
 * (C-ECHO command set, implicit VR little endian). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "upstream/probe.h"

#define APP_CONTEXT "1.2.840.10008.3.1.1.1"
#define VERIFICATION "1.2.840.10008.1.1"
#define IMPLICIT_LE "1.2.840.10008.1.2"
/* Implementation Class UID under the UUID-derived root 2.25 (PS3.5 B.2). */
#define IMPL_CLASS "2.25.329800735698586629295641978511506172918"
#define IMPL_VERSION "ZONEGATE"
#define PCID 1
#define MESSAGE_ID 1

#define PDU_ASSOC_RQ 0x01
#define PDU_ASSOC_AC 0x02
#define PDU_ASSOC_RJ 0x03
#define PDU_PDATA 0x04
#define PDU_RELEASE_RQ 0x05
#define PDU_RELEASE_RP 0x06
#define PDU_ABORT 0x07

/* A bounded writer: every put checks room; @bad latches. */
struct wr {
	uint8_t *p;
	size_t n, cap;
	int bad;
};

static void put(struct wr *w, const void *src, size_t n)
{
	if (w->bad || n > w->cap - w->n) {
		w->bad = 1;
		return;
	}
	memcpy(w->p + w->n, src, n);
	w->n += n;
}

static void put8(struct wr *w, unsigned v)
{
	uint8_t b = (uint8_t)v;
	put(w, &b, 1);
}

static void put16be(struct wr *w, unsigned v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 2);
}

static void put32be(struct wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 4);
}

static void put16le(struct wr *w, unsigned v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	put(w, b, 2);
}

static void put32le(struct wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put(w, b, 4);
}

/* Write the 16-bit length of what was put since @at - 2 at @at - 2. */
static void patch16be(struct wr *w, size_t at)
{
	size_t len = w->n - at;

	if (w->bad || at < 2 || len > 0xffff) {
		w->bad = 1;
		return;
	}
	w->p[at - 2] = (uint8_t)(len >> 8);
	w->p[at - 1] = (uint8_t)len;
}

/* Item: type, reserved, 16-bit length, value. */
static void put_item(struct wr *w, unsigned type, const char *value)
{
	size_t n = strlen(value);

	put8(w, type);
	put8(w, 0);
	put16be(w, (unsigned)n);
	put(w, value, n);
}

/* An AE title: 16 bytes, space padded (PS3.8 9.3.2). */
static void put_ae(struct wr *w, const char *ae)
{
	char buf[16];
	size_t n = strnlen(ae, sizeof(buf));

	memset(buf, ' ', sizeof(buf));
	memcpy(buf, ae, n);
	put(w, buf, sizeof(buf));
}

static void assoc_rq(struct wr *w, const char *calling, const char *called)
{
	static const uint8_t zero32[32];
	size_t body, pc, ui;

	put8(w, PDU_ASSOC_RQ);
	put8(w, 0);
	put32be(w, 0); /* patched below */
	body = w->n;
	put16be(w, 1); /* protocol version */
	put16be(w, 0);
	put_ae(w, called);
	put_ae(w, calling);
	put(w, zero32, sizeof(zero32));
	put_item(w, 0x10, APP_CONTEXT);
	put8(w, 0x20);
	put8(w, 0);
	put16be(w, 0);
	pc = w->n;
	put8(w, PCID);
	put8(w, 0);
	put8(w, 0);
	put8(w, 0);
	put_item(w, 0x30, VERIFICATION);
	put_item(w, 0x40, IMPLICIT_LE);
	patch16be(w, pc);
	put8(w, 0x50);
	put8(w, 0);
	put16be(w, 0);
	ui = w->n;
	put8(w, 0x51); /* maximum length we receive */
	put8(w, 0);
	put16be(w, 4);
	put32be(w, ZG_PROBE_BUF);
	put_item(w, 0x52, IMPL_CLASS);
	put_item(w, 0x55, IMPL_VERSION);
	patch16be(w, ui);
	if (!w->bad) {
		uint32_t len = (uint32_t)(w->n - body);
		w->p[2] = (uint8_t)(len >> 24);
		w->p[3] = (uint8_t)(len >> 16);
		w->p[4] = (uint8_t)(len >> 8);
		w->p[5] = (uint8_t)len;
	}
}

/* One command element, implicit VR little endian. */
static void put_elem16(struct wr *w, unsigned elem, unsigned v)
{
	put16le(w, 0);
	put16le(w, elem);
	put32le(w, 2);
	put16le(w, v);
}

static void echo_rq(struct wr *w)
{
	static const char uid[] = VERIFICATION; /* 17 characters: one NUL pads it */
	uint32_t group = (8 + 18) + 3 * (8 + 2);
	uint32_t pdv = 2 + 12 + group;

	put8(w, PDU_PDATA);
	put8(w, 0);
	put32be(w, 4 + pdv);
	put32be(w, pdv);
	put8(w, PCID);
	put8(w, 0x03); /* command, last fragment */
	put16le(w, 0); /* (0000,0000) CommandGroupLength UL */
	put16le(w, 0x0000);
	put32le(w, 4);
	put32le(w, group);
	put16le(w, 0); /* (0000,0002) AffectedSOPClassUID UI */
	put16le(w, 0x0002);
	put32le(w, 18);
	put(w, uid, 18);
	put_elem16(w, 0x0100, 0x0030); /* CommandField C-ECHO-RQ */
	put_elem16(w, 0x0110, MESSAGE_ID);
	put_elem16(w, 0x0800, 0x0101); /* CommandDataSetType: no data set */
}

size_t zg_dicom_request(enum zg_dicom_step step, const char *calling, const char *called,
			uint8_t *out, size_t cap)
{
	struct wr w = {out, 0, cap, 0};

	switch (step) {
	case ZG_DICOM_ASSOCIATE:
		assoc_rq(&w, calling, called);
		break;
	case ZG_DICOM_ECHO:
		echo_rq(&w);
		break;
	case ZG_DICOM_RELEASE:
		put8(&w, PDU_RELEASE_RQ);
		put8(&w, 0);
		put32be(&w, 4);
		put32be(&w, 0);
		break;
	default:
		return 0;
	}
	return w.bad ? 0 : w.n;
}

static uint32_t get32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned get16be(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static unsigned get16le(const uint8_t *p)
{
	return (unsigned)p[1] << 8 | p[0];
}

static uint32_t get32le(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Set the verdict @r with a formatted @detail; returns 1 (complete). */
static int verdict(enum zg_reason *v, enum zg_reason r, char *detail, size_t dcap, const char *fmt,
		   ...) __attribute__((format(printf, 5, 6)));

static int verdict(enum zg_reason *v, enum zg_reason r, char *detail, size_t dcap, const char *fmt,
		   ...)
{
	va_list ap;

	*v = r;
	va_start(ap, fmt);
	vsnprintf(detail, dcap, fmt, ap);
	va_end(ap);
	return 1;
}

/* A-ASSOCIATE-AC: our presentation context (PCID) must be accepted. */
static int judge_ac(const uint8_t *body, size_t n, enum zg_reason *v, char *d, size_t dc)
{
	size_t off = 68; /* version, reserved, AE titles, reserved */

	if (n < off)
		return verdict(v, ZG_R_CHECK_BAD_REPLY, d, dc, "A-ASSOCIATE-AC of %u bytes", (unsigned)n);
	while (off + 4 <= n) {
		unsigned type = body[off], len = get16be(body + off + 2);
		if (len > n - off - 4)
			return verdict(v, ZG_R_CHECK_BAD_REPLY, d, dc,
				       "A-ASSOCIATE-AC item 0x%02x overruns the PDU", type);
		if (type == 0x21 && len >= 4 && body[off + 4] == PCID) {
			unsigned result = body[off + 6];
			if (result == 0) {
				*v = ZG_R_OK;
				return 1;
			}
			return verdict(v, ZG_R_CHECK_REJECTED, d, dc,
				       "Verification not accepted (presentation context result %u)",
				       result);
		}
		off += 4 + len;
	}
	return verdict(v, ZG_R_CHECK_BAD_REPLY, d, dc, "A-ASSOCIATE-AC without our presentation context");
}

/* The C-ECHO-RSP command in one P-DATA-TF PDU: CommandField 0x8030 and
 * Status 0x0000. Commands split over several PDUs are not expected from a
 * reply this small and are a bad reply. */
static int judge_echo(const uint8_t *body, size_t n, enum zg_reason *v, char *d, size_t dc)
{
	unsigned field = 0, status = 0xffff;
	int have_field = 0, have_status = 0;
	uint32_t pdv;

	if (n < 6 || (pdv = get32be(body)) < 2 || pdv > n - 4)
		return verdict(v, ZG_R_CHECK_BAD_REPLY, d, dc, "P-DATA-TF without a whole PDV");
	if (!(body[5] & 0x01) || !(body[5] & 0x02))
		return verdict(v, ZG_R_CHECK_BAD_REPLY, d, dc,
			       "P-DATA-TF is not one whole command (header 0x%02x)", body[5]);
	for (size_t off = 6; off + 8 <= 4 + (size_t)pdv;) {
		unsigned group = get16le(body + off), elem = get16le(body + off + 2);
		uint32_t len = get32le(body + off + 4);
		if (len > 4 + (size_t)pdv - off - 8)
			return verdict(v, ZG_R_CHECK_BAD_REPLY, d, dc,
				       "command element (%04x,%04x) overruns the PDV", group, elem);
		if (group == 0 && elem == 0x0100 && len == 2) {
			field = get16le(body + off + 8);
			have_field = 1;
		} else if (group == 0 && elem == 0x0900 && len == 2) {
			status = get16le(body + off + 8);
			have_status = 1;
		}
		off += 8 + len;
	}
	if (!have_field || field != 0x8030 || !have_status)
		return verdict(v, ZG_R_CHECK_BAD_REPLY, d, dc,
			       "not a C-ECHO-RSP (command field 0x%04x)", field);
	if (status != 0)
		return verdict(v, ZG_R_CHECK_REJECTED, d, dc, "C-ECHO-RSP status 0x%04x", status);
	*v = ZG_R_OK;
	return 1;
}

int zg_dicom_reply(enum zg_dicom_step step, const uint8_t *buf, size_t len, size_t cap,
		   enum zg_reason *v, char *detail, size_t dcap)
{
	static const unsigned want[ZG_DICOM__STEPS] = {PDU_ASSOC_AC, PDU_PDATA, PDU_RELEASE_RP};
	uint32_t plen;
	unsigned type;

	if (len < 6)
		return 0;
	type = buf[0];
	plen = get32be(buf + 2);
	if (type < PDU_ASSOC_RQ || type > PDU_ABORT)
		return verdict(v, ZG_R_CHECK_BAD_REPLY, detail, dcap, "not a DICOM PDU (type 0x%02x)",
			       type);
	if ((size_t)plen > cap - 6)
		return verdict(v, ZG_R_CHECK_BAD_REPLY, detail, dcap,
			       "PDU of %u bytes, more than a check takes (%u)", plen, (unsigned)cap);
	if (len < 6 + (size_t)plen)
		return 0;
	if (type == PDU_ASSOC_RJ && plen >= 4)
		return verdict(v, ZG_R_CHECK_REJECTED, detail, dcap,
			       "A-ASSOCIATE-RJ result %u, source/reason 0x%04x", buf[7],
			       (unsigned)(buf[8] << 8 | buf[9]));
	if (type == PDU_ABORT && plen >= 4)
		return verdict(v, ZG_R_CHECK_REJECTED, detail, dcap, "A-ABORT source %u reason %u",
			       buf[8], buf[9]);
	if ((unsigned)step >= ZG_DICOM__STEPS || type != want[step])
		return verdict(v, ZG_R_CHECK_BAD_REPLY, detail, dcap, "unexpected PDU type 0x%02x",
			       type);
	switch (step) {
	case ZG_DICOM_ASSOCIATE:
		return judge_ac(buf + 6, plen, v, detail, dcap);
	case ZG_DICOM_ECHO:
		return judge_echo(buf + 6, plen, v, detail, dcap);
	default:
		*v = ZG_R_OK;
		return 1;
	}
}
