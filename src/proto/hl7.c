/* hl7.c - see hl7.h. The MSH segment is split on the separators the
 * message itself declares; every field copy is bounded by its buffer and
 * a field that does not fit is an error, never a silent truncation. */
#include <stdio.h>
#include <string.h>

#include "proto/hl7.h"

struct field {
	const uint8_t *p;
	size_t n;
};

/* A byte that may appear inside an MSH field: no control characters (the
 * segment and frame delimiters among them). Bytes >= 0x80 (Latin-1,
 * UTF-8 names) pass. */
static int field_byte(uint8_t c)
{
	return c >= 0x20 && c != 0x7f;
}

/* Copy @f into @out (@cap bytes with the NUL); -1 if it does not fit. */
static int copy_field(struct field f, char *out, size_t cap)
{
	if (f.n >= cap)
		return -1;
	memcpy(out, f.p, f.n);
	out[f.n] = '\0';
	return 0;
}

/* The first component of @f (up to the component separator @cs). */
static struct field first_component(struct field f, char cs)
{
	const uint8_t *e = memchr(f.p, (unsigned char)cs, f.n);

	if (e)
		f.n = (size_t)(e - f.p);
	return f;
}

/* MSH-1 and MSH-2: the field separator right after "MSH", then 4 or 5
 * encoding characters, all distinct, none alphanumeric or a control. */
static int get_separators(const uint8_t *p, size_t seg, struct zg_hl7_msh *out, size_t *pos)
{
	size_t i = 4, k = 0;

	if (seg < 4 || memcmp(p, "MSH", 3) != 0)
		return -1;
	out->fs = (char)p[3];
	for (; i < seg && p[i] != (uint8_t)out->fs; i++, k++) {
		if (k >= 5 || !field_byte(p[i]) || (p[i] >= '0' && p[i] <= '9') ||
		    ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'z') ||
		    memchr(out->enc, p[i], k) || p[i] == (uint8_t)out->fs)
			return -1;
		out->enc[k] = (char)p[i];
	}
	if (k < 4 || !field_byte((uint8_t)out->fs) || (out->fs >= '0' && out->fs <= '9') ||
	    ((out->fs | 0x20) >= 'a' && (out->fs | 0x20) <= 'z'))
		return -1;
	out->enc[k] = '\0';
	*pos = i;
	return 0;
}

/* Fields MSH-3.. of the segment @p[0..seg) starting at the separator at
 * @pos: field number (3 first) -> where it lands in @out. */
static int get_fields(const uint8_t *p, size_t seg, size_t pos, struct zg_hl7_msh *out,
		      const char **why)
{
	struct field f, code, trig;
	unsigned num = 2;

	while (pos < seg && num < 12) {
		const uint8_t *e;
		pos++; /* the separator */
		num++;
		f.p = p + pos;
		e = memchr(f.p, (unsigned char)out->fs, seg - pos);
		f.n = e ? (size_t)(e - f.p) : seg - pos;
		pos += f.n;
		for (size_t i = 0; i < f.n; i++)
			if (!field_byte(f.p[i]))
				return *why = "control character in MSH", -1;
		switch (num) {
		case 3: if (copy_field(f, out->sending_app, sizeof(out->sending_app)) < 0) goto too_long;
			break;
		case 4: if (copy_field(f, out->sending_facility, sizeof(out->sending_facility)) < 0 ||
			    copy_field(first_component(f, out->enc[0]), out->facility_ns,
				       sizeof(out->facility_ns)) < 0) goto too_long;
			break;
		case 5: if (copy_field(f, out->receiving_app, sizeof(out->receiving_app)) < 0) goto too_long;
			break;
		case 6: if (copy_field(f, out->receiving_facility, sizeof(out->receiving_facility)) < 0)
				goto too_long;
			break;
		case 9:
			code = first_component(f, out->enc[0]);
			trig.p = f.p + code.n + (code.n < f.n);
			trig.n = f.n - code.n - (code.n < f.n);
			trig = first_component(trig, out->enc[0]);
			if (code.n == 0 || code.n + trig.n + 1 > ZG_HL7_TYPE_MAX ||
			    copy_field(trig, out->trigger, sizeof(out->trigger)) < 0)
				return *why = "MSH-9 message type empty or too long", -1;
			memcpy(out->message_type, code.p, code.n);
			out->message_type[code.n] = '\0';
			if (trig.n) {
				out->message_type[code.n] = '^';
				memcpy(out->message_type + code.n + 1, trig.p, trig.n);
				out->message_type[code.n + 1 + trig.n] = '\0';
			}
			break;
		case 10: if (copy_field(f, out->control_id, sizeof(out->control_id)) < 0) goto too_long;
			break;
		case 11: if (copy_field(f, out->processing_id, sizeof(out->processing_id)) < 0) goto too_long;
			break;
		case 12: if (copy_field(first_component(f, out->enc[0]), out->version,
					 sizeof(out->version)) < 0) goto too_long;
			break;
		default:
			break;
		}
	}
	if (!out->message_type[0] || !out->control_id[0])
		return *why = "MSH-9 message type or MSH-10 control id missing", -1;
	return 0;
too_long:
	return *why = "MSH field longer than allowed", -1;
}

enum zg_hl7_status zg_hl7_parse_msh(const uint8_t *p, size_t n, struct zg_hl7_msh *out,
				    const char **why)
{
	size_t seg = 0, pos;

	*why = "";
	while (seg < n && seg < ZG_HL7_MSH_MAX && p[seg] != '\r' && p[seg] != '\n')
		seg++;
	if (seg == ZG_HL7_MSH_MAX)
		return *why = "MSH segment longer than the gateway holds", ZG_HL7_MALFORMED;
	if (seg == n)
		return n >= 3 && memcmp(p, "MSH", 3) != 0 ? (*why = "message does not start with MSH",
							      ZG_HL7_MALFORMED) : ZG_HL7_NEED_MORE;
	memset(out, 0, sizeof(*out));
	if (get_separators(p, seg, out, &pos) < 0)
		return *why = "MSH-1/MSH-2 separators invalid", ZG_HL7_MALFORMED;
	if (get_fields(p, seg, pos, out, why) < 0)
		return ZG_HL7_MALFORMED;
	return ZG_HL7_OK;
}

size_t zg_mllp_feed(struct zg_mllp *m, const uint8_t *p, size_t n, uint64_t max_msg,
		    enum zg_mllp_event *ev, const char **why)
{
	size_t i = 0;

	*ev = ZG_MLLP_EV_NONE;
	*why = "";
	while (i < n) {
		uint8_t c = p[i++];
		if (m->state == ZG_MLLP_OUTSIDE) {
			if (c != ZG_MLLP_SB)
				return *why = "byte outside an MLLP frame", *ev = ZG_MLLP_EV_BAD, i;
			m->state = ZG_MLLP_HEADER;
			m->hdr_len = 0;
			m->msg_len = 0;
			continue;
		}
		if (m->state == ZG_MLLP_END) {
			if (c != ZG_MLLP_CR)
				return *why = "0x1C not followed by 0x0D", *ev = ZG_MLLP_EV_BAD, i;
			m->state = ZG_MLLP_OUTSIDE;
			m->messages++;
			return *ev = ZG_MLLP_EV_END, i;
		}
		if (c == ZG_MLLP_SB)
			return *why = "start byte inside a message", *ev = ZG_MLLP_EV_BAD, i;
		if (c == ZG_MLLP_EB) {
			if (m->state == ZG_MLLP_HEADER)
				return *why = "message ended inside its MSH segment", *ev = ZG_MLLP_EV_BAD, i;
			m->state = ZG_MLLP_END;
			continue;
		}
		if (++m->msg_len > max_msg)
			return *why = "message longer than hl7_max_message", *ev = ZG_MLLP_EV_BAD, i;
		if (m->state == ZG_MLLP_BODY)
			continue;
		if (m->hdr_len == sizeof(m->hdr))
			return *why = "MSH segment longer than the gateway holds", *ev = ZG_MLLP_EV_BAD, i;
		m->hdr[m->hdr_len++] = c;
		if (c == '\r' || c == '\n') {
			m->state = ZG_MLLP_BODY;
			return *ev = ZG_MLLP_EV_HEADER, i;
		}
	}
	return i;
}

/* Append @s to @out at *@len (bounded by @cap); separator characters of
 * @msg and control characters in our own text become spaces. -1 if full. */
static int put(uint8_t *out, size_t cap, size_t *len, const char *s, const struct zg_hl7_msh *msg,
	       int clean)
{
	for (; *s; s++) {
		char c = *s;
		if (*len >= cap)
			return -1;
		if (clean && (c == msg->fs || strchr(msg->enc, c) || (unsigned char)c < 0x20))
			c = ' ';
		out[(*len)++] = (uint8_t)c;
	}
	return 0;
}

size_t zg_hl7_build_ack(const struct zg_hl7_msh *msg, const char *code, unsigned err_code,
			const char *text, const char *timestamp, const char *control_id, uint8_t *out,
			size_t cap)
{
	char fs[2] = {msg->fs, 0}, cs[2] = {msg->enc[0], 0}, num[16];
	size_t len = 0;
	int rc = 0;

	if (cap < 3)
		return 0;
	out[len++] = ZG_MLLP_SB;
	snprintf(num, sizeof(num), "%u", err_code);
	/* MSH: the receiver of the message answers, so sender and receiver swap */
	rc |= put(out, cap, &len, "MSH", msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, msg->enc, msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, msg->receiving_app, msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, msg->receiving_facility, msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, msg->sending_app, msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, msg->sending_facility, msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, timestamp, msg, 1) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, fs, msg, 0) | put(out, cap, &len, "ACK", msg, 0);
	if (msg->trigger[0])
		rc |= put(out, cap, &len, cs, msg, 0) | put(out, cap, &len, msg->trigger, msg, 0) |
		      put(out, cap, &len, cs, msg, 0) | put(out, cap, &len, "ACK", msg, 0);
	rc |= put(out, cap, &len, fs, msg, 0) | put(out, cap, &len, control_id, msg, 1);
	rc |= put(out, cap, &len, fs, msg, 0) | put(out, cap, &len, msg->processing_id, msg, 0);
	rc |= put(out, cap, &len, fs, msg, 0) | put(out, cap, &len, msg->version, msg, 0);
	rc |= put(out, cap, &len, "\rMSA", msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, code, msg, 1) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, msg->control_id, msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, text, msg, 1);
	/* ERR-3 (HL7 error code, table 0357), ERR-4 severity, ERR-8 user message */
	rc |= put(out, cap, &len, "\rERR", msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, fs, msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, num, msg, 1) | put(out, cap, &len, cs, msg, 0);
	rc |= put(out, cap, &len, text, msg, 1) | put(out, cap, &len, cs, msg, 0);
	rc |= put(out, cap, &len, "HL70357", msg, 0) | put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, "E", msg, 0);
	for (int i = 0; i < 4; i++)
		rc |= put(out, cap, &len, fs, msg, 0);
	rc |= put(out, cap, &len, text, msg, 1) | put(out, cap, &len, "\r\x1c\r", msg, 0);
	return rc ? 0 : len;
}

int zg_hl7_facility_is(const struct zg_hl7_msh *msg, const char *name)
{
	return name[0] && (strcmp(msg->sending_facility, name) == 0 || strcmp(msg->facility_ns, name) == 0);
}

int zg_hl7_type_matches(const struct zg_hl7_msh *msg, const char *pattern)
{
	size_t n = strlen(pattern);
	const char *caret = strchr(msg->message_type, '^');
	size_t code_len = caret ? (size_t)(caret - msg->message_type) : strlen(msg->message_type);

	if (strcmp(msg->message_type, pattern) == 0)
		return 1;
	if (n >= 2 && pattern[n - 1] == '*' && pattern[n - 2] == '^')
		n -= 2;
	else if (strchr(pattern, '^'))
		return 0;
	return n == code_len && memcmp(msg->message_type, pattern, n) == 0;
}
