/* proxy_header.h - the PROXY v2 header of one connection (route option
 * proxy_protocol = v2): what the client side established, handed to the
 * pure encoder in proto/proxy_v2.c, written to the upstream socket before
 * any other byte (before the TLS handshake on a bridge route). */
#ifndef ZG_PROXY_HEADER_H
#define ZG_PROXY_HEADER_H

#include <stddef.h>

#include "engine/conn.h"

/* Write @c's PROXY v2 header to its freshly connected upstream socket. The
 * header (at most ZG_PP2_MAX bytes) fits an empty send buffer, so one send
 * either takes it whole or the connection is failing: 0, or -1 with the
 * reason in @detail. */
int zg_proxy_header_send(const struct zg_conn *c, char *detail, size_t cap);

#endif
