/* notify.h - the systemd notification protocol, spoken directly.
 *
 * One datagram per message to the AF_UNIX socket named by $NOTIFY_SOCKET
 * (a leading '@' is the abstract namespace), as sd_notify(3) describes it.
 * We do not link libsystemd for this: the protocol is a sendto() of a few
 * bytes, and a security daemon should not pull a large library (and its
 * compression and crypto dependencies) into its address space for it; the
 * same code also runs, and is tested, without systemd.
 *
 * WATCHDOG=1 is sent only while every worker's loop is turning: each worker
 * stamps a heartbeat on every turn, and a stamp older than the ping interval
 * withholds the ping, so systemd restarts a gateway whose worker hangs.
 */
#ifndef ZG_NOTIFY_H
#define ZG_NOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

struct zg_notify {
	int fd;                       /* -1: no $NOTIFY_SOCKET, every send is a no-op */
	struct sockaddr_un addr;
	socklen_t addr_len;
	uint64_t ping_ms;             /* half of $WATCHDOG_USEC; 0: no watchdog */
	uint64_t next_ping_ms;        /* monotonic */
	int withheld;                 /* pings withheld for a stalled worker (logged once) */
};

/* Fill @sa from the value of $NOTIFY_SOCKET: an absolute path, or '@name'
 * for the abstract namespace. 0, or -1 for an empty, relative or too long
 * value. Pure. */
int zg_notify_addr(const char *value, struct sockaddr_un *sa, socklen_t *len);

/* The watchdog ping interval in ms for $WATCHDOG_USEC @usec and
 * $WATCHDOG_PID @pid (either may be NULL) in process @self: half the
 * timeout, as sd_watchdog_enabled(3) advises; 0 when there is no watchdog,
 * it is meant for another process, or a value does not parse. Pure. */
uint64_t zg_notify_ping_ms(const char *usec, const char *pid, pid_t self);

/* Index of the first of @n heartbeats (monotonic ms, 0 = that loop has
 * ended and is not watched) older than @stale_ms at @now_ms, or -1 when
 * every loop is turning. Pure. */
int zg_notify_stalled(const uint64_t *beats, unsigned n, uint64_t now_ms, uint64_t stale_ms);

/* Read the environment and open the socket (main thread, before workers
 * start). 0, also when not under systemd; -1 (logged) if $NOTIFY_SOCKET is
 * set but unusable: the caller goes on, systemd will time the start out. */
int zg_notify_open(struct zg_notify *n);

/* Send one message ("READY=1", "STATUS=...", several lines joined by '\n').
 * Never blocks; a failure is logged and otherwise ignored. */
void zg_notify_send(struct zg_notify *n, const char *msg);

/* The watchdog's turn at @now_ms: if a ping is due and no loop in @beats
 * has stalled, send WATCHDOG=1. Returns ms until the next check. */
uint64_t zg_notify_watchdog(struct zg_notify *n, const uint64_t *beats, unsigned n_beats,
			    uint64_t now_ms);

void zg_notify_close(struct zg_notify *n);

#endif
