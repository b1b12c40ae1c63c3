/* pool.h - which pool member a new connection tries first, and then which.
 *
 * Pure functions: the caller describes each member (weight, backup, usable
 * now, connections now, hold-down end) and gets back the order to try
 * them in. The same client connection walks that order as long as no byte
 * of its payload went upstream (conn.c), so the order also says where a
 * failure moves to:
 *
 *   1. usable primaries, by the route's balance rule
 *   2. usable backups, by the same rule (so backups carry traffic only
 *      while every primary is down or failing)
 *   3. the members not usable now, in written order: a last resort for
 *      this one connection rather than a refusal
 *   When nothing is usable at all, every member is tried, the one whose
 *   hold-down ends first leading (primaries before backups on a tie), so a
 *   pool marked down by stale evidence is still tried rather than refused.
 */
#ifndef ZG_POOL_H
#define ZG_POOL_H

#include <stdint.h>

#include "conf/conf.h"

/* One member as the selection sees it. */
struct zg_pool_cand {
	unsigned weight;        /* 1..ZG_WEIGHT_MAX */
	int backup;
	int usable;             /* zg_health_usable() now */
	unsigned active;        /* connections on it now */
	uint64_t held_until_ms; /* passive hold-down end, for rule 3 */
};

/* Fill @order (room for @n) with the indices of the @n members of @c, in the
 * order to try them under @balance. @ticket is a per-route counter the
 * caller increments per connection (round-robin position, tie-breaks).
 * Returns the count (every member appears once; @n when @n <= ZG_POOL_MAX). */
unsigned zg_pool_order(const struct zg_pool_cand *c, unsigned n, enum zg_balance balance,
		       uint64_t ticket, unsigned *order);

#endif
