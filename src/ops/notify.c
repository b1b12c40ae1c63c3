/* notify.c - see notify.h. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "ops/notify.h"

#define STALE_MIN_MS 1000 /* a loop wakes at least every 200 ms; allow a busy batch */

int zg_notify_addr(const char *value, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n;

	if (!value || (value[0] != '/' && value[0] != '@'))
		return -1;
	n = strlen(value);
	if (n < 2 || n >= sizeof(sa->sun_path))
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, value, n);
	if (value[0] == '@') /* abstract: a leading NUL, and no trailing one */
		sa->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (value[0] == '/'));
	return 0;
}

uint64_t zg_notify_ping_ms(const char *usec, const char *pid, pid_t self)
{
	unsigned long long us;
	char *end;

	if (!usec || !*usec)
		return 0;
	if (pid && *pid) {
		unsigned long p;
		errno = 0;
		p = strtoul(pid, &end, 10);
		if (errno || *end || p != (unsigned long)self)
			return 0;
	}
	errno = 0;
	us = strtoull(usec, &end, 10);
	if (errno || *end || us < 2000)
		return 0;
	return us / 2000;
}

int zg_notify_stalled(const uint64_t *beats, unsigned n, uint64_t now_ms, uint64_t stale_ms)
{
	for (unsigned i = 0; i < n; i++)
		if (beats[i] && now_ms > beats[i] && now_ms - beats[i] > stale_ms)
			return (int)i;
	return -1;
}

int zg_notify_open(struct zg_notify *n)
{
	const char *sock = getenv("NOTIFY_SOCKET");

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	if (!sock)
		return 0;
	if (zg_notify_addr(sock, &n->addr, &n->addr_len) < 0) {
		zg_err("event=notify_failed error=\"NOTIFY_SOCKET is not an absolute path or @name\"");
		return -1;
	}
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0) {
		zg_err("event=notify_failed error=%s", strerror(errno));
		return -1;
	}
	n->ping_ms = zg_notify_ping_ms(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid());
	zg_info("event=notify socket=%s watchdog_ping_ms=%llu", sock, (unsigned long long)n->ping_ms);
	return 0;
}

void zg_notify_send(struct zg_notify *n, const char *msg)
{
	if (n->fd < 0)
		return;
	if (sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (const struct sockaddr *)&n->addr,
		   n->addr_len) < 0)
		zg_warn("event=notify_failed error=%s", strerror(errno));
}

uint64_t zg_notify_watchdog(struct zg_notify *n, const uint64_t *beats, unsigned n_beats,
			    uint64_t now_ms)
{
	uint64_t stale = n->ping_ms > STALE_MIN_MS ? n->ping_ms : STALE_MIN_MS;
	int stalled;

	if (n->fd < 0 || !n->ping_ms)
		return UINT64_MAX;
	if (now_ms < n->next_ping_ms)
		return n->next_ping_ms - now_ms;
	stalled = zg_notify_stalled(beats, n_beats, now_ms, stale);
	if (stalled >= 0) {
		if (!n->withheld)
			zg_err("event=watchdog_withheld worker=%d stalled_ms=%llu msg=\"a worker loop "
			       "stopped turning; systemd will restart the gateway\"",
			       stalled, (unsigned long long)(now_ms - beats[stalled]));
		n->withheld = 1;
		return 100;
	}
	if (n->withheld)
		zg_warn("event=watchdog_resumed msg=\"every worker loop turns again\"");
	n->withheld = 0;
	zg_notify_send(n, "WATCHDOG=1");
	n->next_ping_ms = now_ms + n->ping_ms;
	return n->ping_ms;
}

void zg_notify_close(struct zg_notify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
