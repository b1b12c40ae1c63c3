/* prefix.h - IPv4/IPv6 address prefixes ("10.0.0.0/8", "2001:db8::/32").
 *
 * Every address is held as 16 bytes: IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d, RFC 4291 2.5.5.2) with the prefix length raised by 96,
 * so one matcher serves both families and an IPv4 client reaching an IPv6
 * dual-stack listener matches its IPv4 prefix.
 */
#ifndef ZG_PREFIX_H
#define ZG_PREFIX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct zg_prefix {
	uint8_t addr[16]; /* host bits beyond len are zero */
	uint8_t len;      /* 0..128, in the mapped space */
};

/* Parse "ADDR" or "ADDR/LEN". A bare address is a host prefix. Host bits set
 * beyond LEN are an error (a typo such as 10.1.2.3/8 is refused, not
 * silently widened). Returns 0, or -1 with a reason in @why. */
int zg_prefix_parse(const char *s, struct zg_prefix *out, const char **why);

/* Map a socket address to the 16-byte form; returns -1 for other families. */
int zg_prefix_addr_from_sockaddr(const struct sockaddr *sa, uint8_t out[16]);

/* 1 if @addr (16-byte form) lies inside @p. */
int zg_prefix_contains(const struct zg_prefix *p, const uint8_t addr[16]);

/* Write @p as text ("10.0.0.0/8", "2001:db8::/32") into @out. */
void zg_prefix_format(const struct zg_prefix *p, char *out, size_t cap);

#endif
