/* lpm.h - longest-prefix match over the 16-byte addresses of prefix.h.
 *
 * A path-compressed binary trie (PATRICIA): every node holds a prefix, a
 * node exists only where a stored prefix ends or two stored prefixes part,
 * so a table of N prefixes has fewer than 2N nodes and a lookup visits at
 * most one node per stored prefix length on its path (at most 129).
 * Nodes live in one array addressed by index, so the structure is a single
 * allocation that is cheap to free and has no pointers to fix up.
 *
 * Built once (zg_lpm_insert) and then read only: lookups on a finished table
 * never write, so any number of threads may share it without locks.
 */
#ifndef ZG_LPM_H
#define ZG_LPM_H

#include <stddef.h>
#include <stdint.h>

#include "base/prefix.h"

#define ZG_LPM_NONE UINT32_MAX /* "no value": never a valid stored value */

struct zg_lpm;

/* An empty table; NULL if out of memory. Free with zg_lpm_free. */
struct zg_lpm *zg_lpm_new(void);

void zg_lpm_free(struct zg_lpm *t);

/* Store @value (anything but ZG_LPM_NONE) for prefix @p. Returns 0 if
 * stored, 1 if @p is already stored (nothing changed; its value goes to
 * @existing if non-NULL), -1 if out of memory or @value is ZG_LPM_NONE.
 * Host bits of @p beyond its length are ignored. Not thread-safe. */
int zg_lpm_insert(struct zg_lpm *t, const struct zg_prefix *p, uint32_t value, uint32_t *existing);

/* The value of the longest stored prefix containing @addr, or ZG_LPM_NONE.
 * If @len is non-NULL it receives that prefix's length (0..128). */
uint32_t zg_lpm_lookup(const struct zg_lpm *t, const uint8_t addr[16], unsigned *len);

/* Finish the table once all inserts are done: release unused capacity and,
 * for tables of 256 prefixes or more, build the start tables (1.5 MiB) that
 * let a lookup skip the first 16 bits of IPv6 or IPv4. A later insert drops
 * them again (lookups stay correct, only slower, until the next call). */
void zg_lpm_shrink(struct zg_lpm *t);

/* Stored prefixes / bytes of heap the table holds. */
size_t zg_lpm_count(const struct zg_lpm *t);
size_t zg_lpm_memory(const struct zg_lpm *t);

#endif
