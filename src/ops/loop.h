/* loop.h - the poll loop of the control plane's small servers (ctl.c,
 * metrics.c): a stop bell, a listening socket and up to
 * ZG_OPS_LOOP_CLIENTS_MAX clients, one thread, no timer but poll's.
 *
 * Each turn: poll everything (at most ZG_OPS_LOOP_TICK_MS), stop when the
 * bell rings, hand every client with events to ready(), call turn() (the
 * server's deadlines and housekeeping), then accept up to @accepts new
 * clients. Client state stays the server's; the loop sees slots only.
 */
#ifndef ZG_OPS_LOOP_H
#define ZG_OPS_LOOP_H

#include <stdint.h>

#define ZG_OPS_LOOP_CLIENTS_MAX 128
#define ZG_OPS_LOOP_TICK_MS 250

struct zg_ops_loop {
	int stop_fd;                 /* readable: return */
	int listen_fd;
	unsigned n_slots;            /* client slots, at most ZG_OPS_LOOP_CLIENTS_MAX */
	unsigned accepts;            /* accept() calls per readable listener turn */
	const char *fail_event;      /* "ctl_failed": logged if poll fails */
	void *ctx;
	/* the fd of slot @i and the events to wait for there; -1: slot free */
	int (*watch)(void *ctx, unsigned i, short *events);
	void (*ready)(void *ctx, unsigned i);     /* slot @i has events */
	void (*turn)(void *ctx, uint64_t now_ms); /* after each poll */
	void (*accept)(void *ctx);                /* take one new client */
};

/* Run @l until its stop bell rings or poll fails (logged). Returns then. */
void zg_ops_loop_run(const struct zg_ops_loop *l);

#endif
