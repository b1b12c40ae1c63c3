/* bucket.h - HTB-like token buckets as pure functions over (now, state).
 *
 * Each bucket is a GCRA ("virtual scheduling", ITU-T I.371): its whole state
 * is one number, the theoretical arrival time `tat` in nanoseconds on the
 * monotonic clock. Sending n bytes at rate R moves tat to max(tat, now) +
 * n*8/R seconds; the bucket has tokens while tat <= now + tau. Refilling is
 * clock arithmetic -- nothing runs to add tokens -- which is what lets the
 * class state be one shared atomic per bucket (class.c): any worker can
 * compute the same verdict from the same two numbers.
 *
 * A direction of a class has three buckets and the connection one more:
 *   own   the class's guaranteed rate
 *   ceil  everything the class sends, at its ceil
 *   link  everything every class sends in that direction, at the link budget
 *   conn  the connection's per_connection cap (private to its worker)
 * A read is allowed as the class's own if own, ceil and conn have tokens;
 * else as borrowed if ceil and conn have tokens and the link's backlog is
 * under the threshold of the class's priority. Priority 0 may borrow while
 * the link is far behind, priority 7 only when it is nearly idle, so while
 * a higher priority keeps the link busy a lower one gets only its rate:
 * spare capacity goes by priority, guarantees are kept whatever happens.
 */
#ifndef ZG_BUCKET_H
#define ZG_BUCKET_H

#include <stdint.h>

#define ZG_SHAPE_NS 1000000000ull
#define ZG_SHAPE_TAU_NS 40000000ull      /* 40 ms of burst per bucket */
#define ZG_SHAPE_REFILL_NS 20000000ull   /* a throttled flow waits for 20 ms of tokens (bucket.c) */
#define ZG_SHAPE_PRIO_STEP_NS 10000000ull /* link backlog between two priorities (at least) */
#define ZG_SHAPE_LEASE 16384u            /* most bytes one read may take: one relay buffer */
#define ZG_SHAPE_PRIORITIES 8

enum zg_shape_verdict {
	ZG_SHAPE_WAIT,   /* no tokens: do not read until *wake */
	ZG_SHAPE_OWN,    /* within the class's guaranteed rate */
	ZG_SHAPE_BORROW, /* spare link capacity, up to ceil */
};

/* What a direction is limited by, in bit/s; 0 = no such limit (an unshaped
 * class has rate 0 and ceil 0 and is never made to wait). */
struct zg_shape_limits {
	uint64_t rate_bps, ceil_bps, link_bps, conn_bps;
	unsigned priority; /* 0..7 */
};

/* The tats of the four buckets, as loaded (ns, monotonic). */
struct zg_shape_tats {
	uint64_t own, ceil, link, conn;
};

/* Nanoseconds @bytes take at @bps (@bps > 0), rounded up; saturates. */
uint64_t zg_shape_cost_ns(uint64_t bytes, uint64_t bps);

/* The bucket's tat after charging @cost at @now: max(tat, now) + cost,
 * never more than @now + @max_debt (so a burst over the budget is paid off
 * within max_debt, not carried forever). */
uint64_t zg_shape_charge(uint64_t tat, uint64_t now, uint64_t cost, uint64_t max_debt);

/* How far behind the link may be for a class of @priority to still borrow
 * from a link of @link_bps: (8 - priority) steps, each at least one lease. */
uint64_t zg_shape_borrow_threshold(uint64_t link_bps, unsigned priority);

/* The most the link may fall behind (the cap on its debt). */
uint64_t zg_shape_link_max_debt(uint64_t link_bps);

/* The verdict for one more read of at most a lease at @now. On
 * ZG_SHAPE_WAIT, *@wake (> @now) is when to ask again: once the blocking
 * bucket has drained half its slack (at most ZG_SHAPE_REFILL_NS), not as
 * soon as one lease fits, so that one wake-up takes several. Pure. */
enum zg_shape_verdict zg_shape_decide(const struct zg_shape_limits *l, const struct zg_shape_tats *t,
				      uint64_t now, uint64_t *wake);

#endif
