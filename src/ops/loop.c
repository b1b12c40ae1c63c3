/* loop.c - see loop.h. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "ops/loop.h"

/* Fill @pfd with the bell, the listener and every busy slot (their slot
 * numbers in @slot). Returns how many entries. */
static unsigned fill(const struct zg_ops_loop *l, struct pollfd *pfd, unsigned *slot)
{
	unsigned n = 2;

	pfd[0] = (struct pollfd){.fd = l->stop_fd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = l->listen_fd, .events = POLLIN};
	for (unsigned i = 0; i < l->n_slots && i < ZG_OPS_LOOP_CLIENTS_MAX; i++) {
		short ev = POLLIN;
		int fd = l->watch(l->ctx, i, &ev);
		if (fd < 0)
			continue;
		slot[n] = i;
		pfd[n++] = (struct pollfd){.fd = fd, .events = ev};
	}
	return n;
}

void zg_ops_loop_run(const struct zg_ops_loop *l)
{
	struct pollfd pfd[ZG_OPS_LOOP_CLIENTS_MAX + 2];
	unsigned slot[ZG_OPS_LOOP_CLIENTS_MAX + 2];

	for (;;) {
		unsigned n = fill(l, pfd, slot);
		if (poll(pfd, n, ZG_OPS_LOOP_TICK_MS) < 0 && errno != EINTR) {
			zg_err("event=%s error=%s", l->fail_event, strerror(errno));
			return;
		}
		if (pfd[0].revents)
			return;
		for (unsigned i = 2; i < n; i++) {
			short ev;
			/* a slot closed by an earlier one's turn is not read */
			if (pfd[i].revents && l->watch(l->ctx, slot[i], &ev) == pfd[i].fd)
				l->ready(l->ctx, slot[i]);
		}
		l->turn(l->ctx, zg_now_ms());
		if (pfd[1].revents & POLLIN)
			for (unsigned k = 0; k < l->accepts; k++)
				l->accept(l->ctx);
	}
}
