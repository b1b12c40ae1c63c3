/* net.c - see net.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/net.h"

int zg_resolve(const struct zg_endpoint *ep, int passive, struct zg_sockaddr *out, unsigned max,
	       char *why, size_t cap)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
	struct addrinfo *res = NULL, *ai;
	const char *host = ep->host;
	unsigned n = 0;
	int rc;

	if (passive && (host[0] == '\0' || strcmp(host, "*") == 0)) {
		struct sockaddr_in6 *any = (struct sockaddr_in6 *)&out[0].ss;
		char *end;
		unsigned long port = strtoul(ep->port, &end, 10);
		if (max == 0 || *end || port > 65535) {
			snprintf(why, cap, "bad port %s", ep->port);
			return -1;
		}
		memset(&out[0], 0, sizeof(out[0]));
		any->sin6_family = AF_INET6;
		any->sin6_addr = in6addr_any;
		any->sin6_port = htons((uint16_t)port);
		out[0].len = sizeof(*any);
		return 1;
	}
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, ep->port, &hints, &res);
	if (rc != 0) {
		snprintf(why, cap, "%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[n].ss))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	if (n == 0) {
		snprintf(why, cap, "no address");
		return -1;
	}
	return (int)n;
}

int zg_listen_socket(const struct zg_sockaddr *a, const char *ifname, int backlog, char *why,
		     size_t cap)
{
	int one = 1, zero = 0;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	/* Accepted sockets inherit it: without it a TLS 1.3 server's second
	 * flight (after the client's Finished) met the client's delayed ACK,
	 * 40 ms per connection. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		goto fail;
	/* "*" binds :: and must take IPv4 clients too. */
	if (a->ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr) &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
		goto fail;
	if (ifname && ifname[0] &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		goto fail;
	if (backlog > 0 && listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	{
		int e = errno;
		snprintf(why, cap, "%s", strerror(e));
		if (fd >= 0)
			close(fd);
		errno = e; /* callers tell EADDRINUSE apart */
	}
	return -1;
}

int zg_stream_socket(int family)
{
	int one = 1;
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* Small DICOM/HL7 exchanges are latency-bound; relay.c writes whole
	 * buffers, so Nagle would only add delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int zg_connect_on(int fd, const struct zg_sockaddr *a)
{
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS)
		return -1;
	return 0;
}

int zg_connect_start(const struct zg_sockaddr *a)
{
	int fd = zg_stream_socket(a->ss.ss_family);

	if (fd < 0)
		return -1;
	if (zg_connect_on(fd, a) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void zg_sockaddr_ip(const struct sockaddr *a, char *ip, size_t cap, uint16_t *port)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)a;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;

	*port = 0;
	if (cap)
		ip[0] = '\0';
	if (a->sa_family == AF_INET) {
		inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)cap);
		*port = ntohs(in->sin_port);
	} else if (a->sa_family == AF_INET6) {
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, (socklen_t)cap);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)cap);
		*port = ntohs(in6->sin6_port);
	}
}

void zg_sockaddr_format(const struct sockaddr *a, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)a;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, cap, "%s:%u", host, ntohs(in->sin_port));
	} else if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
			snprintf(out, cap, "%s:%u", host, ntohs(in6->sin6_port));
		} else {
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			snprintf(out, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
		}
	} else {
		snprintf(out, cap, "?");
	}
}
