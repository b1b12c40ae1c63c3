/* server_name.h - what a route's `server_name` means: the one rule that
 * conf (accepting the key), tls (setting up the outbound check) and policy
 * (matching a certificate, also for `zonegate check-cert`) all follow.
 */
#ifndef ZG_SERVER_NAME_H
#define ZG_SERVER_NAME_H

#include <stddef.h>

enum zg_server_name_kind {
	ZG_SN_INVALID, /* neither: refused by conf, never matched */
	ZG_SN_DNS,     /* a host name, matched against DNS SANs only (never the CN) */
	ZG_SN_URI,     /* "scheme:rest" (RFC 3986 scheme), equal to a URI SAN byte for byte */
};

/* Classify @name. A URI has an RFC 3986 scheme (a letter, then letters,
 * digits, '+', '-', '.'), a colon and a non-empty rest of printable ASCII
 * without spaces; a rest of digits only is "host:port", which is refused,
 * not taken for a URI that no certificate would carry. A DNS name is a
 * host name of at most 253 characters (labels of 1-63) that is not an IPv4
 * literal (addresses are not matched). Anything else is ZG_SN_INVALID. */
enum zg_server_name_kind zg_server_name_kind(const char *name);

/* Whether the @n bytes at @s are an RFC 1123 host name: dot-separated
 * labels of letters, digits, '-' and '_', each 1-63 long and neither
 * starting nor ending with '-', at most 253 in all. */
int zg_is_hostname(const char *s, size_t n);

#endif
