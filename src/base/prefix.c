/* prefix.c - see prefix.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/prefix.h"

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int is_v4mapped(const uint8_t a[16])
{
	return memcmp(a, v4mapped, 12) == 0;
}

static int parse_len(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int zg_prefix_parse(const char *s, struct zg_prefix *out, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	unsigned len;
	struct in_addr a4;
	struct in6_addr a6;

	memset(out, 0, sizeof(*out));
	if (hl == 0 || hl >= sizeof(host)) {
		*why = "not an IP address";
		return -1;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &a4) == 1) {
		memcpy(out->addr, v4mapped, 12);
		memcpy(out->addr + 12, &a4, 4);
		if (slash && parse_len(slash + 1, 32, &len) < 0) {
			*why = "IPv4 prefix length must be 0..32";
			return -1;
		}
		out->len = (uint8_t)((slash ? len : 32) + 96);
	} else if (inet_pton(AF_INET6, host, &a6) == 1) {
		memcpy(out->addr, &a6, 16);
		if (slash && parse_len(slash + 1, 128, &len) < 0) {
			*why = "IPv6 prefix length must be 0..128";
			return -1;
		}
		out->len = (uint8_t)(slash ? len : 128);
	} else {
		*why = "not an IP address";
		return -1;
	}
	for (unsigned bit = out->len; bit < 128; bit++) {
		if (out->addr[bit / 8] & (0x80u >> (bit % 8))) {
			*why = "address has bits set beyond the prefix length";
			return -1;
		}
	}
	return 0;
}

int zg_prefix_addr_from_sockaddr(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memcpy(out, v4mapped, 12);
		memcpy(out + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(out, &in6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

int zg_prefix_contains(const struct zg_prefix *p, const uint8_t addr[16])
{
	unsigned full = p->len / 8, rest = p->len % 8;

	if (memcmp(p->addr, addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((p->addr[full] ^ addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

void zg_prefix_format(const struct zg_prefix *p, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (is_v4mapped(p->addr) && p->len >= 96) {
		inet_ntop(AF_INET, p->addr + 12, host, sizeof(host));
		snprintf(out, cap, "%s/%u", host, p->len - 96u);
	} else {
		inet_ntop(AF_INET6, p->addr, host, sizeof(host));
		snprintf(out, cap, "%s/%u", host, (unsigned)p->len);
	}
}
