/* proxy_v2.h - the PROXY protocol version 2 header an unwrap or bridge route
 * writes to its upstream before any other byte, so the system behind the
 * gateway can log who really connected (haproxy.org proxy-protocol.txt,
 * section 2.2). Pure: builds bytes, touches no socket.
 *
 * What it carries: the client's address and port (source) and the address it
 * connected to (destination); PP2_TYPE_UNIQUE_ID with zonegate's connection
 * id, so the upstream's log lines meet ours; PP2_TYPE_AUTHORITY with the SNI
 * the client sent; PP2_TYPE_SSL with the TLS version, cipher, the verified
 * client certificate's CN, signature and key algorithm; and in the range
 * reserved for applications, the verified certificate's subject (0xE1), its
 * SAN identities (0xE2) and the directory participant id (0xE0).
 */
#ifndef ZG_PROXY_V2_H
#define ZG_PROXY_V2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ZG_PP2_MAX 2048 /* a header never grows past this (every TLV value is capped) */

/* TLV types zonegate sends (0x01..0x25 from the specification). */
enum {
	ZG_PP2_TYPE_AUTHORITY = 0x02,
	ZG_PP2_TYPE_UNIQUE_ID = 0x05,
	ZG_PP2_TYPE_SSL = 0x20,
	ZG_PP2_SUBTYPE_SSL_VERSION = 0x21,
	ZG_PP2_SUBTYPE_SSL_CN = 0x22,
	ZG_PP2_SUBTYPE_SSL_CIPHER = 0x23,
	ZG_PP2_SUBTYPE_SSL_SIG_ALG = 0x24,
	ZG_PP2_SUBTYPE_SSL_KEY_ALG = 0x25,
	ZG_PP2_TYPE_ZG_PARTICIPANT = 0xE0, /* directory participant id */
	ZG_PP2_TYPE_ZG_SUBJECT = 0xE1,     /* verified client certificate subject (RFC 2253) */
	ZG_PP2_TYPE_ZG_SANS = 0xE2,        /* its SAN identities, as zonegate logs them */
};

/* PP2_TYPE_SSL client bits. */
#define ZG_PP2_CLIENT_SSL 0x01u
#define ZG_PP2_CLIENT_CERT_CONN 0x02u
#define ZG_PP2_CLIENT_CERT_SESS 0x04u

/* What one header says. Strings may be NULL or "" (then their TLV is
 * left out); each is cut at 255 bytes. @tls 0 leaves PP2_TYPE_SSL out. */
struct zg_pp2_info {
	const struct sockaddr *src, *dst; /* AF_INET or AF_INET6 each */
	int tls;                          /* the client side spoke TLS */
	int cert_verified;                /* a client certificate was verified */
	int resumed;                      /* ... in an earlier handshake (resumption) */
	const char *tls_version, *cipher, *cn, *sig_alg, *key_alg;
	const char *authority;            /* SNI the client sent */
	const char *unique_id;
	const char *participant, *subject, *sans;
};

/* Encode @in as a PROXY v2 header (command PROXY, TCP over IPv4 or IPv6; a
 * mix of families is sent as IPv6 with the IPv4 address mapped) into @out.
 * Returns the header's length, or -1 if an address family is neither IPv4
 * nor IPv6 or @cap is too small (ZG_PP2_MAX always suffices). */
int zg_pp2_encode(const struct zg_pp2_info *in, uint8_t *out, size_t cap);

#endif
