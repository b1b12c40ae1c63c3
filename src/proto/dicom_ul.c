/* dicom_ul.c - see dicom_ul.h. Every read goes through struct span, whose
 * take() refuses to step past the end: no length field read from the wire
 * is trusted before it is checked against the bytes that hold it. */
#include <string.h>

#include "proto/dicom_ul.h"

struct span {
	const uint8_t *p;
	size_t n;
};

/* Split @n bytes off the front of @s into @out; -1 if @s is shorter. */
static int take(struct span *s, size_t n, struct span *out)
{
	if (s->n < n)
		return -1;
	out->p = s->p;
	out->n = n;
	s->p += n;
	s->n -= n;
	return 0;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* One item or sub-item: type(1) reserved(1) length(2) value. -1 if the
 * header or the value does not fit in @s. */
static int next_item(struct span *s, uint8_t *type, struct span *value)
{
	struct span h;

	if (take(s, 4, &h) < 0)
		return -1;
	*type = h.p[0];
	return take(s, be16(h.p + 2), value);
}

int zg_dul_header(const uint8_t *p, size_t len, uint8_t *type, uint32_t *length)
{
	if (len < ZG_DUL_HDR)
		return -1;
	*type = p[0];
	*length = be32(p + 2);
	return 0;
}

int zg_dul_valid_ae(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ZG_DUL_AE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '\\')
			return 0;
	return 1;
}

/* A 16-byte AE field: leading and trailing spaces are not significant
 * (PS3.5 VR AE); what remains must be a valid AE title. */
static int get_ae(const uint8_t *f, char out[ZG_DUL_AE_MAX + 1])
{
	size_t a = 0, b = ZG_DUL_AE_MAX;

	while (a < b && f[a] == ' ')
		a++;
	while (b > a && f[b - 1] == ' ')
		b--;
	memcpy(out, f + a, b - a);
	out[b - a] = '\0';
	return zg_dul_valid_ae(out) && strlen(out) == b - a ? 0 : -1;
}

/* A UID item value: 1..64 of digits and dots, no empty component; one
 * trailing NUL (even-length padding, PS3.5) is dropped. */
static int get_uid(struct span v, char out[ZG_DUL_UID_MAX + 1])
{
	if (v.n > 0 && v.p[v.n - 1] == '\0')
		v.n--;
	if (v.n == 0 || v.n > ZG_DUL_UID_MAX || v.p[0] == '.' || v.p[v.n - 1] == '.')
		return -1;
	for (size_t i = 0; i < v.n; i++) {
		if (v.p[i] == '.' && i + 1 < v.n && v.p[i + 1] == '.')
			return -1;
		if (v.p[i] != '.' && (v.p[i] < '0' || v.p[i] > '9'))
			return -1;
	}
	memcpy(out, v.p, v.n);
	out[v.n] = '\0';
	return 0;
}

/* Printable ASCII copied and truncated into @out of @cap bytes; -1 if @v is
 * empty or holds anything else. */
static int get_text(struct span v, char *out, size_t cap)
{
	size_t k = v.n < cap - 1 ? v.n : cap - 1;

	if (v.n == 0)
		return -1;
	for (size_t i = 0; i < v.n; i++)
		if (v.p[i] < 0x20 || v.p[i] > 0x7e)
			return -1;
	memcpy(out, v.p, k);
	out[k] = '\0';
	return 0;
}

/* 0x20 Presentation Context: id, 3 reserved, then exactly one 0x30
 * Abstract Syntax and at least one 0x40 Transfer Syntax. */
static int get_pc(struct span v, struct zg_dul_rq *rq, const char **why)
{
	struct zg_dul_pc *pc;
	struct span head, sub;
	char ts[ZG_DUL_UID_MAX + 1];
	uint8_t t;

	if (rq->n_pc >= ZG_DUL_PC_MAX || take(&v, 4, &head) < 0)
		return *why = "presentation context count or length", -1;
	pc = &rq->pc[rq->n_pc];
	memset(pc, 0, sizeof(*pc));
	pc->id = head.p[0];
	if (!(pc->id & 1))
		return *why = "presentation context id not odd", -1;
	for (unsigned i = 0; i < rq->n_pc; i++)
		if (rq->pc[i].id == pc->id)
			return *why = "presentation context id used twice", -1;
	while (v.n) {
		if (next_item(&v, &t, &sub) < 0)
			return *why = "presentation context sub-item overruns", -1;
		if (t == 0x30 && !pc->abstract_syntax[0]) {
			if (get_uid(sub, pc->abstract_syntax) < 0)
				return *why = "abstract syntax is not a UID", -1;
		} else if (t == 0x40 && pc->abstract_syntax[0]) {
			if (get_uid(sub, ts) < 0)
				return *why = "transfer syntax is not a UID", -1;
			pc->n_transfer++;
		} else {
			return *why = "unexpected presentation context sub-item", -1;
		}
	}
	if (!pc->n_transfer)
		return *why = "presentation context without transfer syntax", -1;
	rq->n_pc++;
	return 0;
}

/* 0x58 User Identity: type, positive-response flag, primary field, and a
 * secondary field (the passcode of type 2) that is bounds-checked and
 * never copied. */
static int get_identity(struct span v, struct zg_dul_rq *rq, const char **why)
{
	struct span head, len, primary, secondary;

	if (take(&v, 2, &head) < 0 || take(&v, 2, &len) < 0 || take(&v, be16(len.p), &primary) < 0 ||
	    take(&v, 2, &len) < 0 || take(&v, be16(len.p), &secondary) < 0 || v.n != 0)
		return *why = "user identity fields overrun", -1;
	if (head.p[0] < 1 || head.p[0] > 5 || primary.n == 0)
		return *why = "user identity type or primary field invalid", -1;
	if ((head.p[0] == 2) != (secondary.n > 0))
		return *why = "user identity passcode present iff type 2", -1;
	rq->user_identity_type = head.p[0];
	if (head.p[0] <= 2 && get_text(primary, rq->user, sizeof(rq->user)) < 0)
		return *why = "user identity name not printable", -1;
	return 0;
}

/* 0x50 User Information: sub-items 0x51 max length, 0x52 implementation
 * class UID, 0x55 version name, 0x58 user identity; the other negotiation
 * sub-items (0x53, 0x54, 0x56, 0x57) are bounds-checked and skipped. */
static int get_user_info(struct span v, struct zg_dul_rq *rq, const char **why)
{
	struct span sub;
	uint8_t t;

	while (v.n) {
		if (next_item(&v, &t, &sub) < 0)
			return *why = "user information sub-item overruns", -1;
		switch (t) {
		case 0x51:
			if (sub.n != 4)
				return *why = "maximum length sub-item not 4 bytes", -1;
			rq->max_pdu = be32(sub.p);
			break;
		case 0x52:
			if (get_uid(sub, rq->impl_class_uid) < 0)
				return *why = "implementation class is not a UID", -1;
			break;
		case 0x55:
			if (sub.n > ZG_DUL_AE_MAX ||
			    get_text(sub, rq->impl_version, sizeof(rq->impl_version)) < 0)
				return *why = "implementation version name invalid", -1;
			break;
		case 0x58:
			if (rq->user_identity_type || get_identity(sub, rq, why) < 0)
				return *why = rq->user_identity_type ? *why : "user identity twice", -1;
			break;
		case 0x53: case 0x54: case 0x56: case 0x57:
			break;
		default:
			return *why = "unrecognized user information sub-item", -1;
		}
	}
	return 0;
}

/* The variable items: one 0x10 Application Context first, then 0x20
 * Presentation Contexts, then one 0x50 User Information. */
static int get_items(struct span v, struct zg_dul_rq *rq, const char **why)
{
	struct span val;
	int user = 0;
	uint8_t t;

	if (next_item(&v, &t, &val) < 0 || t != 0x10 || get_uid(val, rq->app_context) < 0)
		return *why = "application context item missing or invalid", -1;
	while (v.n) {
		if (next_item(&v, &t, &val) < 0)
			return *why = "item overruns the PDU", -1;
		if (t == 0x20 && !user) {
			if (get_pc(val, rq, why) < 0)
				return -1;
		} else if (t == 0x50 && !user) {
			if (get_user_info(val, rq, why) < 0)
				return -1;
			user = 1;
		} else {
			return *why = "unexpected item", -1;
		}
	}
	if (!rq->n_pc || !user)
		return *why = "no presentation context or no user information", -1;
	return 0;
}

static enum zg_dul_status type_status(uint8_t type)
{
	if (type >= ZG_DUL_ASSOCIATE_RQ && type <= ZG_DUL_ABORT)
		return ZG_DUL_BAD_TYPE;
	return ZG_DUL_UNRECOGNIZED;
}

enum zg_dul_status zg_dul_parse_rq(const uint8_t *p, size_t len, uint32_t max_len,
				   struct zg_dul_rq *out, size_t *pdu_len, const char **why)
{
	struct span body;
	uint32_t length;
	uint8_t type;

	*why = "";
	if (len >= 1 && p[0] != ZG_DUL_ASSOCIATE_RQ)
		return *why = "first PDU is not an A-ASSOCIATE-RQ", type_status(p[0]);
	if (zg_dul_header(p, len, &type, &length) < 0)
		return ZG_DUL_NEED_MORE;
	if (length > max_len)
		return *why = "A-ASSOCIATE-RQ longer than the route allows", ZG_DUL_TOO_LARGE;
	if (length < ZG_DUL_RQ_FIXED)
		return *why = "A-ASSOCIATE-RQ shorter than its fixed fields", ZG_DUL_MALFORMED;
	if (len - ZG_DUL_HDR < length)
		return ZG_DUL_NEED_MORE;
	memset(out, 0, sizeof(*out));
	body.p = p + ZG_DUL_HDR;
	body.n = length;
	out->protocol_version = be16(body.p);
	if (get_ae(body.p + 4, out->called_ae) < 0 || get_ae(body.p + 20, out->calling_ae) < 0)
		return *why = "AE title empty or not of the AE character set", ZG_DUL_MALFORMED;
	body.p += ZG_DUL_RQ_FIXED;
	body.n -= ZG_DUL_RQ_FIXED;
	if (get_items(body, out, why) < 0)
		return ZG_DUL_MALFORMED;
	*pdu_len = ZG_DUL_HDR + (size_t)length;
	return ZG_DUL_OK;
}

/* A complete header in f->hdr: is this PDU allowed here and of a sane
 * length? Sets f->remaining. */
static enum zg_dul_status frame_header(struct zg_dul_frame *f, uint32_t max_pdu, const char **why)
{
	uint32_t length = be32(f->hdr + 2);

	f->type = f->hdr[0];
	f->remaining = length;
	switch (f->type) {
	case ZG_DUL_P_DATA:
		if (f->released)
			return *why = "P-DATA-TF after A-RELEASE-RQ or A-ABORT", ZG_DUL_BAD_TYPE;
		if (length > max_pdu)
			return *why = "P-DATA-TF longer than dicom_max_pdu", ZG_DUL_TOO_LARGE;
		if (length < 6) /* one PDV item: length(4), context id, control header */
			return *why = "P-DATA-TF without a PDV item", ZG_DUL_MALFORMED;
		return ZG_DUL_OK;
	case ZG_DUL_RELEASE_RQ:
	case ZG_DUL_RELEASE_RP:
	case ZG_DUL_ABORT:
		if (f->released == 1 && f->type == ZG_DUL_RELEASE_RQ)
			return *why = "second A-RELEASE-RQ", ZG_DUL_BAD_TYPE;
		if (length != 4)
			return *why = "release or abort PDU not 4 bytes long", ZG_DUL_MALFORMED;
		f->released = 1;
		return ZG_DUL_OK;
	default:
		*why = f->type <= ZG_DUL_ABORT ? "PDU not valid after the association request"
					       : "unrecognized PDU type";
		return type_status(f->type);
	}
}

enum zg_dul_status zg_dul_frame_feed(struct zg_dul_frame *f, const uint8_t *p, size_t n,
				     uint32_t max_pdu, const char **why)
{
	enum zg_dul_status st;

	*why = "";
	while (n) {
		if (f->remaining) {
			size_t k = f->remaining < n ? (size_t)f->remaining : n;
			p += k;
			n -= k;
			f->remaining -= k;
			if (!f->remaining)
				f->pdus++;
			continue;
		}
		f->hdr[f->have++] = *p++;
		n--;
		if (f->have < ZG_DUL_HDR)
			continue;
		f->have = 0;
		if ((st = frame_header(f, max_pdu, why)) != ZG_DUL_OK)
			return st;
		if (!f->remaining)
			f->pdus++;
	}
	return ZG_DUL_OK;
}

static void put_be16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	put_be16(p + 2, v);
}

/* The items of the one PDU of type @type filling exactly @len bytes at
 * @p, after the fixed fields; -1 if the header says otherwise. */
static int pdu_items(const uint8_t *p, size_t len, uint8_t type, struct span *items)
{
	uint32_t length;
	uint8_t t;

	if (zg_dul_header(p, len, &t, &length) < 0 || t != type || length != len - ZG_DUL_HDR ||
	    length < ZG_DUL_RQ_FIXED)
		return -1;
	items->p = p + ZG_DUL_HDR + ZG_DUL_RQ_FIXED;
	items->n = length - ZG_DUL_RQ_FIXED;
	return 0;
}

/* Walk the RQ's items: how many presentation contexts stay; -1 if an item
 * overruns, a context item is too short to hold its id, or the sequence is
 * not application context, contexts, user information (once, last). */
static int rq_count_kept(struct span items, const uint8_t drop[256])
{
	struct span v = {NULL, 0};
	uint8_t t = 0;
	int kept = 0, user = 0;

	if (next_item(&items, &t, &v) < 0 || t != 0x10)
		return -1;
	while (items.n) {
		if (user || next_item(&items, &t, &v) < 0 || (t != 0x20 && t != 0x50) ||
		    (t == 0x20 && v.n < 4))
			return -1;
		user = t == 0x50;
		if (t == 0x20 && !drop[v.p[0]])
			kept++;
	}
	return user ? kept : -1;
}

int zg_dul_rq_drop_pcs(uint8_t *p, size_t len, const uint8_t drop[256], size_t *out_len)
{
	struct span items, v = {NULL, 0};
	uint8_t *w;
	uint8_t t = 0;

	if (pdu_items(p, len, ZG_DUL_ASSOCIATE_RQ, &items) < 0 || rq_count_kept(items, drop) <= 0)
		return -1;
	/* The write position never passes the read position, so each kept
	 * item moves down over bytes already read. */
	w = (uint8_t *)items.p;
	while (items.n) { /* the application context item is kept like any other */
		const uint8_t *item = items.p;
		if (next_item(&items, &t, &v) < 0)
			return -1; /* rq_count_kept walked these very bytes: cannot happen */
		if (t == 0x20 && drop[v.p[0]])
			continue;
		memmove(w, item, 4 + v.n);
		w += 4 + v.n;
	}
	*out_len = (size_t)(w - p);
	put_be32(p + 2, *out_len - ZG_DUL_HDR);
	return 0;
}

/* Append @n bytes to the output, -1 when they do not fit. */
static int emit(uint8_t *out, size_t cap, size_t *w, const void *v, size_t n)
{
	if (cap - *w < n)
		return -1;
	memcpy(out + *w, v, n);
	*w += n;
	return 0;
}

/* The rejected items for every id in @ids[*@next..@n) below @below. */
static int emit_rejected(uint8_t *out, size_t cap, size_t *w, const uint8_t *ids, unsigned n,
			 unsigned *next, unsigned below)
{
	uint8_t item[ZG_DUL_AC_REJECTED_ITEM] = {0x21, 0, 0, ZG_DUL_AC_REJECTED_ITEM - 4, 0, 0,
						 ZG_DUL_PC_ABSTRACT_NOT_SUPPORTED, 0, 0x40, 0, 0,
						 sizeof(ZG_DUL_DEFAULT_TS) - 1};

	memcpy(item + 12, ZG_DUL_DEFAULT_TS, sizeof(ZG_DUL_DEFAULT_TS) - 1);
	for (; *next < n && ids[*next] < below; (*next)++) {
		item[4] = ids[*next];
		if (emit(out, cap, w, item, sizeof(item)) < 0)
			return -1;
	}
	return 0;
}

/* 1 if @id is among the @n @ids. */
static int id_listed(const uint8_t *ids, unsigned n, uint8_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

int zg_dul_ac_add_rejected(const uint8_t *p, size_t len, const uint8_t *ids, unsigned n,
			   uint8_t *out, size_t cap, size_t *out_len)
{
	struct span items, v = {NULL, 0};
	size_t w = 0;
	unsigned next = 0;
	int user = 0;
	uint8_t t = 0;

	if (pdu_items(p, len, ZG_DUL_ASSOCIATE_AC, &items) < 0 ||
	    emit(out, cap, &w, p, ZG_DUL_HDR + ZG_DUL_RQ_FIXED) < 0)
		return -1;
	if (next_item(&items, &t, &v) < 0 || t != 0x10 || emit(out, cap, &w, v.p - 4, v.n + 4) < 0)
		return -1;
	while (items.n) {
		if (user || next_item(&items, &t, &v) < 0 || (t != 0x21 && t != 0x50))
			return -1;
		user = t == 0x50;
		if (t == 0x21 && (v.n < 4 || !(v.p[0] & 1) || id_listed(ids, n, v.p[0])))
			return -1;
		if (emit_rejected(out, cap, &w, ids, n, &next, t == 0x21 ? v.p[0] : 256) < 0 ||
		    emit(out, cap, &w, v.p - 4, v.n + 4) < 0)
			return -1;
	}
	if (!user || emit_rejected(out, cap, &w, ids, n, &next, 256) < 0 || w - ZG_DUL_HDR > UINT32_MAX)
		return -1;
	put_be32(out + 2, w - ZG_DUL_HDR);
	*out_len = w;
	return 0;
}

void zg_dul_build_rj(uint8_t out[ZG_DUL_RJ_LEN], uint8_t result, uint8_t source, uint8_t reason)
{
	static const uint8_t head[6] = {ZG_DUL_ASSOCIATE_RJ, 0, 0, 0, 0, 4};

	memcpy(out, head, sizeof(head));
	out[6] = 0;
	out[7] = result;
	out[8] = source;
	out[9] = reason;
}

void zg_dul_build_abort(uint8_t out[ZG_DUL_ABORT_LEN], uint8_t source, uint8_t reason)
{
	static const uint8_t head[6] = {ZG_DUL_ABORT, 0, 0, 0, 0, 4};

	memcpy(out, head, sizeof(head));
	out[6] = 0;
	out[7] = 0;
	out[8] = source;
	out[9] = reason;
}

uint8_t zg_dul_abort_reason(enum zg_dul_status st)
{
	switch (st) {
	case ZG_DUL_UNRECOGNIZED:
		return ZG_DUL_AB_UNRECOGNIZED_PDU;
	case ZG_DUL_BAD_TYPE:
		return ZG_DUL_AB_UNEXPECTED_PDU;
	case ZG_DUL_MALFORMED:
	case ZG_DUL_TOO_LARGE:
		return ZG_DUL_AB_INVALID_PARAM;
	case ZG_DUL_OK:
	case ZG_DUL_NEED_MORE:
		break;
	}
	return ZG_DUL_AB_NOT_SPECIFIED;
}
