/* net.h - socket plumbing: resolution, listeners, non-blocking connects. */
#ifndef ZG_NET_H
#define ZG_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"

struct zg_sockaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Resolve @ep into @out (at most @max addresses). @passive is for
 * listeners: "*" or "" means any address, dual stack. Blocking (getaddrinfo):
 * call from the main thread only, never from a worker. Returns the count,
 * or -1 with the resolver's message in @why. */
int zg_resolve(const struct zg_endpoint *ep, int passive, struct zg_sockaddr *out, unsigned max,
	       char *why, size_t cap);

/* A non-blocking, close-on-exec TCP socket bound to @a with SO_REUSEPORT
 * (one listener per worker shares the port), listening if @backlog > 0;
 * with a non-empty @ifname it takes only packets that arrived on that
 * interface (SO_BINDTODEVICE: the zone a route serves, e.g. a VPN tunnel).
 * Returns the fd, or -1 with errno set and its text in @why. */
int zg_listen_socket(const struct zg_sockaddr *a, const char *ifname, int backlog, char *why,
		     size_t cap);

/* Start a non-blocking connect to @a. Returns the fd (connection in
 * progress or done), or -1 with errno set. */
int zg_connect_start(const struct zg_sockaddr *a);

/* A non-blocking, close-on-exec TCP socket of address @family, with
 * TCP_NODELAY, for zg_connect_on(). Returns the fd, or -1 with errno set. */
int zg_stream_socket(int family);

/* Start a non-blocking connect of @fd (a zg_stream_socket() of @a's family)
 * to @a. 0 when in progress or done, -1 with errno set; @fd stays open
 * either way (the caller owns it). */
int zg_connect_on(int fd, const struct zg_sockaddr *a);

/* The address of @a alone ("1.2.3.4", "::1"; IPv4-mapped shown as IPv4)
 * into @ip, and its port into *@port. */
void zg_sockaddr_ip(const struct sockaddr *a, char *ip, size_t cap, uint16_t *port);

/* Format @a as "1.2.3.4:5" or "[::1]:5" (IPv4-mapped shown as IPv4). */
void zg_sockaddr_format(const struct sockaddr *a, char *out, size_t cap);

#endif
