/* pool.c - see pool.h. */
#include <string.h>

#include "upstream/pool.h"

/* Rotate @idx (@k entries) so that the member owning position @pos of the
 * weighted wheel (every member's weight in a row) comes first. */
static void rotate_by_weight(const struct zg_pool_cand *c, unsigned *idx, unsigned k, uint64_t pos)
{
	unsigned tmp[ZG_POOL_MAX], start = 0;
	uint64_t total = 0;

	for (unsigned i = 0; i < k; i++)
		total += c[idx[i]].weight;
	if (k < 2 || total == 0)
		return;
	pos %= total;
	for (unsigned i = 0; i < k; i++) {
		if (pos < c[idx[i]].weight) {
			start = i;
			break;
		}
		pos -= c[idx[i]].weight;
	}
	for (unsigned i = 0; i < k; i++)
		tmp[i] = idx[(start + i) % k];
	memcpy(idx, tmp, k * sizeof(*idx));
}

/* a before b for least-connections: fewer connections per weight first
 * (cross-multiplied: no division), then the rotation already applied. */
static int fewer(const struct zg_pool_cand *a, const struct zg_pool_cand *b)
{
	return (uint64_t)a->active * b->weight < (uint64_t)b->active * a->weight;
}

/* Order @idx (@k members of one tier) under @balance. */
static void order_tier(const struct zg_pool_cand *c, unsigned *idx, unsigned k,
		       enum zg_balance balance, uint64_t ticket)
{
	switch (balance) {
	case ZG_BALANCE_FIRST:
		return;
	case ZG_BALANCE_ROUND_ROBIN:
		rotate_by_weight(c, idx, k, ticket);
		return;
	case ZG_BALANCE_LEAST_CONN:
		/* rotate first so that ties spread, then a stable insertion sort */
		rotate_by_weight(c, idx, k, ticket);
		for (unsigned i = 1; i < k; i++) {
			unsigned v = idx[i], j = i;
			while (j > 0 && fewer(&c[v], &c[idx[j - 1]])) {
				idx[j] = idx[j - 1];
				j--;
			}
			idx[j] = v;
		}
		return;
	}
}

/* Rule 3: nothing usable; by hold-down end, primaries first on a tie. */
static unsigned order_last_resort(const struct zg_pool_cand *c, unsigned n, unsigned *order)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned v = i, j = i;
		while (j > 0 && (c[v].held_until_ms < c[order[j - 1]].held_until_ms ||
				 (c[v].held_until_ms == c[order[j - 1]].held_until_ms &&
				  !c[v].backup && c[order[j - 1]].backup))) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = v;
	}
	return n;
}

unsigned zg_pool_order(const struct zg_pool_cand *c, unsigned n, enum zg_balance balance,
		       uint64_t ticket, unsigned *order)
{
	unsigned k = 0;

	if (n > ZG_POOL_MAX)
		n = ZG_POOL_MAX;
	for (int tier = 0; tier < 2; tier++) {
		unsigned start = k;
		for (unsigned i = 0; i < n; i++)
			if (c[i].usable && c[i].backup == tier)
				order[k++] = i;
		order_tier(c, order + start, k - start, balance, ticket);
	}
	if (k == 0)
		return order_last_resort(c, n, order);
	/* the members not usable now follow, as a last resort for this one
	 * connection, in written order */
	for (unsigned i = 0; i < n; i++)
		if (!c[i].usable)
			order[k++] = i;
	return k;
}
