/* bucket.c - see bucket.h. Pure: no clock, no atomics, no state. */
#include "shape/bucket.h"

/* bytes * 8e9 needs more than 64 bits at 100 Gbit/s-sized counts. */
__extension__ typedef unsigned __int128 u128;

uint64_t zg_shape_cost_ns(uint64_t bytes, uint64_t bps)
{
	u128 ns = (u128)bytes * 8u * ZG_SHAPE_NS;

	ns = (ns + bps - 1) / bps;
	return ns > UINT64_MAX / 2 ? UINT64_MAX / 2 : (uint64_t)ns;
}

uint64_t zg_shape_charge(uint64_t tat, uint64_t now, uint64_t cost, uint64_t max_debt)
{
	uint64_t base = tat > now ? tat : now;
	uint64_t next = base + cost;

	return next - now > max_debt ? now + max_debt : next;
}

/* One priority step for a link of @link_bps: long enough that one lease
 * charged by a higher priority cannot cross it. */
static uint64_t prio_step(uint64_t link_bps)
{
	uint64_t lease = zg_shape_cost_ns(ZG_SHAPE_LEASE, link_bps);

	return lease > ZG_SHAPE_PRIO_STEP_NS ? lease : ZG_SHAPE_PRIO_STEP_NS;
}

uint64_t zg_shape_borrow_threshold(uint64_t link_bps, unsigned priority)
{
	unsigned p = priority < ZG_SHAPE_PRIORITIES ? priority : ZG_SHAPE_PRIORITIES - 1;

	return prio_step(link_bps) * (ZG_SHAPE_PRIORITIES - p);
}

uint64_t zg_shape_link_max_debt(uint64_t link_bps)
{
	return prio_step(link_bps) * (ZG_SHAPE_PRIORITIES + 2);
}

/* How much of a bucket's slack @tau a throttled flow lets drain before it
 * is tried again: half of it, at most ZG_SHAPE_REFILL_NS. Waking when the
 * very next lease fits cost one worker wake-up (and one wake-up of each
 * peer process) per lease, ~1,000 a second per busy class; waking at half
 * the slack lets one wake-up take several leases, while the bucket still
 * holds tau/2 of backlog, so a wake-up that comes late by less than that
 * loses no tokens and the rate holds. */
static uint64_t refill_ns(uint64_t tau)
{
	return tau / 2 < ZG_SHAPE_REFILL_NS ? tau / 2 : ZG_SHAPE_REFILL_NS;
}

/* Whether a bucket whose tat is @tat may send at @now with slack @tau; if
 * not, when to try again (folded into *@when as a maximum). */
static int has_tokens(uint64_t tat, uint64_t now, uint64_t tau, uint64_t *when)
{
	if (tat <= now + tau)
		return 1;
	if (tat - tau + refill_ns(tau) > *when)
		*when = tat - tau + refill_ns(tau);
	return 0;
}

enum zg_shape_verdict zg_shape_decide(const struct zg_shape_limits *l, const struct zg_shape_tats *t,
				      uint64_t now, uint64_t *wake)
{
	uint64_t common = now, own_at, borrow_at;
	int ok = 1, own, borrow;

	if (l->conn_bps)
		ok &= has_tokens(t->conn, now, ZG_SHAPE_TAU_NS, &common);
	if (l->ceil_bps)
		ok &= has_tokens(t->ceil, now, ZG_SHAPE_TAU_NS, &common);
	own_at = borrow_at = common;
	own = !l->rate_bps || has_tokens(t->own, now, ZG_SHAPE_TAU_NS, &own_at);
	if (ok && own)
		return ZG_SHAPE_OWN;
	/* Borrowing: only a class with a ceil above its rate, and only from
	 * what the link has spare (no link budget: up to the ceil). */
	borrow = l->ceil_bps > l->rate_bps;
	if (borrow && l->link_bps)
		borrow = has_tokens(t->link, now, zg_shape_borrow_threshold(l->link_bps, l->priority),
				    &borrow_at);
	if (ok && borrow)
		return ZG_SHAPE_BORROW;
	if (l->ceil_bps > l->rate_bps && borrow_at < own_at)
		own_at = borrow_at;
	*wake = own_at > now ? own_at : now + 1;
	return ZG_SHAPE_WAIT;
}
