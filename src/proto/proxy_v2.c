/* proxy_v2.c - see proxy_v2.h. */
#include <netinet/in.h>
#include <string.h>

#include "proto/proxy_v2.h"

#define TLV_VALUE_MAX 255

static const uint8_t signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A bounded writer: every put checks room, one failure sticks. */
struct out {
	uint8_t *p;
	size_t len, cap;
	int overflow;
};

static void put(struct out *o, const void *data, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->p + o->len, data, n);
	o->len += n;
}

static void put_u8(struct out *o, unsigned v)
{
	uint8_t b = (uint8_t)v;

	put(o, &b, 1);
}

static void put_u16(struct out *o, size_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	put(o, b, 2);
}

/* One TLV whose value is @s cut at TLV_VALUE_MAX bytes; nothing for NULL/"". */
static void put_tlv_str(struct out *o, unsigned type, const char *s)
{
	size_t n;

	if (!s || !*s)
		return;
	n = strnlen(s, TLV_VALUE_MAX);
	put_u8(o, type);
	put_u16(o, n);
	put(o, s, n);
}

/* The 16-byte IPv6 form and port of @sa; IPv4 becomes ::ffff:a.b.c.d. */
static int addr6(const struct sockaddr *sa, uint8_t a[16], uint16_t *port_be)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		memcpy(a, &s6->sin6_addr, 16);
		*port_be = s6->sin6_port;
		return 0;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &s4->sin_addr, 4);
		*port_be = s4->sin_port;
		return 0;
	}
	return -1;
}

/* Source and destination: family byte then the address block. */
static int put_addresses(struct out *o, const struct sockaddr *src, const struct sockaddr *dst)
{
	uint8_t s[16], d[16];
	uint16_t sp, dp;

	if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
		const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;
		put_u8(o, 0x11); /* TCP over IPv4 */
		put_u16(o, 0);   /* length, filled in at the end */
		put(o, &s4->sin_addr, 4);
		put(o, &d4->sin_addr, 4);
		put(o, &s4->sin_port, 2);
		put(o, &d4->sin_port, 2);
		return 0;
	}
	if (addr6(src, s, &sp) < 0 || addr6(dst, d, &dp) < 0)
		return -1;
	put_u8(o, 0x21); /* TCP over IPv6 */
	put_u16(o, 0);
	put(o, s, 16);
	put(o, d, 16);
	put(o, &sp, 2);
	put(o, &dp, 2);
	return 0;
}

/* PP2_TYPE_SSL with its sub-TLVs; its length is known only after them. */
static void put_ssl(struct out *o, const struct zg_pp2_info *in)
{
	size_t at, body;
	uint8_t client = ZG_PP2_CLIENT_SSL;
	uint8_t verify[4] = {0, 0, 0, 0}; /* 0: the client certificate was verified */

	if (in->cert_verified)
		client |= in->resumed ? ZG_PP2_CLIENT_CERT_SESS : ZG_PP2_CLIENT_CERT_CONN;
	else
		verify[3] = 1; /* no verified certificate */
	put_u8(o, ZG_PP2_TYPE_SSL);
	at = o->len;
	put_u16(o, 0);
	put_u8(o, client);
	put(o, verify, sizeof(verify));
	put_tlv_str(o, ZG_PP2_SUBTYPE_SSL_VERSION, in->tls_version);
	put_tlv_str(o, ZG_PP2_SUBTYPE_SSL_CN, in->cn);
	put_tlv_str(o, ZG_PP2_SUBTYPE_SSL_CIPHER, in->cipher);
	put_tlv_str(o, ZG_PP2_SUBTYPE_SSL_SIG_ALG, in->sig_alg);
	put_tlv_str(o, ZG_PP2_SUBTYPE_SSL_KEY_ALG, in->key_alg);
	if (o->overflow)
		return;
	body = o->len - at - 2;
	o->p[at] = (uint8_t)(body >> 8);
	o->p[at + 1] = (uint8_t)body;
}

int zg_pp2_encode(const struct zg_pp2_info *in, uint8_t *out, size_t cap)
{
	struct out o = {.p = out, .cap = cap};
	size_t len_at = sizeof(signature) + 2, body;

	put(&o, signature, sizeof(signature));
	put_u8(&o, 0x21); /* version 2, command PROXY */
	if (put_addresses(&o, in->src, in->dst) < 0)
		return -1;
	put_tlv_str(&o, ZG_PP2_TYPE_AUTHORITY, in->authority);
	put_tlv_str(&o, ZG_PP2_TYPE_UNIQUE_ID, in->unique_id);
	if (in->tls)
		put_ssl(&o, in);
	put_tlv_str(&o, ZG_PP2_TYPE_ZG_PARTICIPANT, in->participant);
	put_tlv_str(&o, ZG_PP2_TYPE_ZG_SUBJECT, in->subject);
	put_tlv_str(&o, ZG_PP2_TYPE_ZG_SANS, in->sans);
	if (o.overflow)
		return -1;
	body = o.len - 16;
	out[len_at] = (uint8_t)(body >> 8);
	out[len_at + 1] = (uint8_t)body;
	return (int)o.len;
}
