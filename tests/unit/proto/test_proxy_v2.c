/* test_proxy_v2.c - the PROXY v2 encoder: exact bytes for IPv4, IPv6 and a
 * mix of families, TLV lengths, value caps and the too-small buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proto/proxy_v2.h"

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

	assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return a;
}

static void ipv4_no_tlv(void **state)
{
	struct sockaddr_in s = v4("192.0.2.7", 40000), d = v4("10.0.0.5", 2762);
	struct zg_pp2_info in = {.src = (struct sockaddr *)&s, .dst = (struct sockaddr *)&d};
	static const uint8_t want[28] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
					 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 7, 10, 0,
					 0, 5, 0x9c, 0x40, 0x0a, 0xca};
	uint8_t out[ZG_PP2_MAX];

	(void)state;
	assert_int_equal(zg_pp2_encode(&in, out, sizeof(out)), 28);
	assert_memory_equal(out, want, sizeof(want));
}

static void mixed_families_become_ipv6(void **state)
{
	struct sockaddr_in s = v4("192.0.2.7", 1);
	struct sockaddr_in6 d = v6("2001:db8::5", 2);
	struct zg_pp2_info in = {.src = (struct sockaddr *)&s, .dst = (struct sockaddr *)&d};
	uint8_t out[ZG_PP2_MAX];
	static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7};

	(void)state;
	assert_int_equal(zg_pp2_encode(&in, out, sizeof(out)), 16 + 36);
	assert_int_equal(out[13], 0x21);
	assert_int_equal(out[15], 36);
	assert_memory_equal(out + 16, mapped, 16);
	assert_memory_equal(out + 32, &d.sin6_addr, 16);
}

/* Walk the TLVs after the address block; returns the value of @type. */
static const uint8_t *tlv(const uint8_t *h, int len, unsigned type, unsigned *vlen)
{
	int at = 16 + 12;

	while (at + 3 <= len) {
		unsigned n = (unsigned)h[at + 1] << 8 | h[at + 2];
		if (h[at] == type) {
			*vlen = n;
			return h + at + 3;
		}
		at += 3 + (int)n;
	}
	return NULL;
}

static void tlvs_and_caps(void **state)
{
	struct sockaddr_in s = v4("127.0.0.1", 1), d = v4("127.0.0.1", 2);
	char long_subject[600];
	struct zg_pp2_info in = {.src = (struct sockaddr *)&s, .dst = (struct sockaddr *)&d,
				 .tls = 1, .cert_verified = 1, .tls_version = "TLSv1.3",
				 .cipher = "TLS_AES_128_GCM_SHA256", .cn = "site-a",
				 .authority = "site-b.example", .unique_id = "gw/0.1",
				 .participant = "hospital-a", .subject = long_subject, .sans = ""};
	uint8_t out[ZG_PP2_MAX];
	const uint8_t *v;
	unsigned n = 0;
	int len;

	(void)state;
	memset(long_subject, 'x', sizeof(long_subject) - 1);
	long_subject[sizeof(long_subject) - 1] = '\0';
	len = zg_pp2_encode(&in, out, sizeof(out));
	assert_true(len > 28);
	assert_int_equal(((unsigned)out[14] << 8 | out[15]) + 16, (unsigned)len);
	v = tlv(out, len, ZG_PP2_TYPE_AUTHORITY, &n);
	assert_non_null(v);
	assert_int_equal(n, 14);
	assert_memory_equal(v, "site-b.example", 14);
	v = tlv(out, len, ZG_PP2_TYPE_ZG_SUBJECT, &n);
	assert_non_null(v);
	assert_int_equal(n, 255); /* capped */
	assert_null(tlv(out, len, ZG_PP2_TYPE_ZG_SANS, &n)); /* "" is left out */
	v = tlv(out, len, ZG_PP2_TYPE_SSL, &n);
	assert_non_null(v);
	assert_int_equal(v[0], ZG_PP2_CLIENT_SSL | ZG_PP2_CLIENT_CERT_CONN);
	assert_int_equal(v[1] | v[2] | v[3] | v[4], 0);     /* verified */
	assert_int_equal(v[5], ZG_PP2_SUBTYPE_SSL_VERSION); /* first sub-TLV */
	/* every byte of the buffer is accounted for: too small fails cleanly */
	assert_int_equal(zg_pp2_encode(&in, out, (size_t)len - 1), -1);
	assert_int_equal(zg_pp2_encode(&in, out, (size_t)len), len);
}

static void unknown_family(void **state)
{
	struct sockaddr_in s = v4("127.0.0.1", 1);
	struct sockaddr un = {.sa_family = AF_UNIX};
	struct zg_pp2_info in = {.src = (struct sockaddr *)&s, .dst = &un};
	uint8_t out[ZG_PP2_MAX];

	(void)state;
	assert_int_equal(zg_pp2_encode(&in, out, sizeof(out)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ipv4_no_tlv),
		cmocka_unit_test(mixed_families_become_ipv6),
		cmocka_unit_test(tlvs_and_caps),
		cmocka_unit_test(unknown_family),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
