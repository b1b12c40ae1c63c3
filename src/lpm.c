/* lpm.c - see lpm.h. */
#include <stdlib.h>
#include <string.h>

#include "lpm.h"

/* Keys are held as two host-order 64-bit words, most significant first, so
 * masking and bit tests are a few integer operations instead of byte loops. */
struct lpm_node {
	uint64_t k[2];     /* prefix bits; bits beyond len are zero */
	uint32_t child[2]; /* next node by the bit at position len, or NONE */
	uint32_t value;    /* ZG_LPM_NONE for a pure branching node */
	uint8_t len;       /* 0..128 */
};

struct zg_lpm {
	struct lpm_node *nodes;
	uint32_t n_nodes, cap;
	uint32_t root;
	size_t n_prefixes;
};

static void key_load(const uint8_t a[16], uint64_t k[2])
{
	k[0] = k[1] = 0;
	for (int i = 0; i < 8; i++) {
		k[0] = (k[0] << 8) | a[i];
		k[1] = (k[1] << 8) | a[8 + i];
	}
}

/* Mask of the first @len bits that fall in word @w. */
static uint64_t word_mask(unsigned len, unsigned w)
{
	unsigned bits = len > 64 * w ? len - 64 * w : 0;

	if (bits >= 64)
		return ~(uint64_t)0;
	return bits ? ~(uint64_t)0 << (64 - bits) : 0;
}

static void key_truncate(uint64_t k[2], unsigned len)
{
	k[0] &= word_mask(len, 0);
	k[1] &= word_mask(len, 1);
}

static int key_within(const struct lpm_node *n, const uint64_t a[2])
{
	return ((a[0] ^ n->k[0]) & word_mask(n->len, 0)) == 0 &&
	       ((a[1] ^ n->k[1]) & word_mask(n->len, 1)) == 0;
}

/* Bit @pos (0 = most significant) of @k; @pos < 128. */
static unsigned key_bit(const uint64_t k[2], unsigned pos)
{
	return pos < 64 ? (unsigned)(k[0] >> (63 - pos)) & 1u : (unsigned)(k[1] >> (127 - pos)) & 1u;
}

/* Number of leading bits @a and @b share, at most @max. */
static unsigned key_common(const uint64_t a[2], const uint64_t b[2], unsigned max)
{
	uint64_t x = a[0] ^ b[0];
	unsigned n;

	if (x)
		n = (unsigned)__builtin_clzll(x);
	else if ((x = a[1] ^ b[1]) != 0)
		n = 64 + (unsigned)__builtin_clzll(x);
	else
		n = 128;
	return n < max ? n : max;
}

struct zg_lpm *zg_lpm_new(void)
{
	struct zg_lpm *t = calloc(1, sizeof(*t));

	if (t)
		t->root = ZG_LPM_NONE;
	return t;
}

void zg_lpm_free(struct zg_lpm *t)
{
	if (!t)
		return;
	free(t->nodes);
	free(t);
}

static int reserve(struct zg_lpm *t, uint32_t more)
{
	uint32_t want;
	struct lpm_node *n;

	if (t->cap - t->n_nodes >= more)
		return 0;
	if (t->cap > (UINT32_MAX - 2) / 2)
		return -1;
	want = t->cap ? t->cap * 2 : 64;
	n = realloc(t->nodes, (size_t)want * sizeof(*n));
	if (!n)
		return -1;
	t->nodes = n;
	t->cap = want;
	return 0;
}

static uint32_t node_add(struct zg_lpm *t, const uint64_t k[2], unsigned len, uint32_t value)
{
	struct lpm_node *n = &t->nodes[t->n_nodes];

	n->k[0] = k[0];
	n->k[1] = k[1];
	key_truncate(n->k, len);
	n->len = (uint8_t)len;
	n->child[0] = n->child[1] = ZG_LPM_NONE;
	n->value = value;
	return t->n_nodes++;
}

/* The link that points at the current node: the root or a parent's child. */
static uint32_t *link_of(struct zg_lpm *t, uint32_t parent, unsigned side)
{
	return parent == ZG_LPM_NONE ? &t->root : &t->nodes[parent].child[side];
}

int zg_lpm_insert(struct zg_lpm *t, const struct zg_prefix *p, uint32_t value, uint32_t *existing)
{
	uint64_t k[2];
	unsigned len = p->len > 128 ? 128 : p->len, side = 0;
	uint32_t parent = ZG_LPM_NONE, cur;

	/* At most two nodes are added, reserved up front so that no realloc
	 * happens while we hold a link into the array. */
	if (value == ZG_LPM_NONE || reserve(t, 2) < 0)
		return -1;
	key_load(p->addr, k);
	key_truncate(k, len);
	while ((cur = *link_of(t, parent, side)) != ZG_LPM_NONE) {
		struct lpm_node *n = &t->nodes[cur];
		unsigned common = key_common(k, n->k, len < n->len ? len : n->len);

		if (common == n->len && common == len) {
			if (n->value != ZG_LPM_NONE) {
				if (existing)
					*existing = n->value;
				return 1;
			}
			n->value = value;
			t->n_prefixes++;
			return 0;
		}
		if (common == n->len) {
			parent = cur;
			side = key_bit(k, n->len);
			continue;
		}
		/* The new prefix parts from n at bit `common`: put a node there
		 * (the new prefix itself if it ends there, else a branch). */
		uint64_t nk[2] = {n->k[0], n->k[1]};
		uint32_t mid;
		if (common == len) {
			mid = node_add(t, k, len, value);
			t->nodes[mid].child[key_bit(nk, len)] = cur;
		} else {
			uint32_t leaf = node_add(t, k, len, value);
			mid = node_add(t, k, common, ZG_LPM_NONE);
			t->nodes[mid].child[key_bit(nk, common)] = cur;
			t->nodes[mid].child[key_bit(k, common)] = leaf;
		}
		*link_of(t, parent, side) = mid;
		t->n_prefixes++;
		return 0;
	}
	*link_of(t, parent, side) = node_add(t, k, len, value);
	t->n_prefixes++;
	return 0;
}

uint32_t zg_lpm_lookup(const struct zg_lpm *t, const uint8_t addr[16], unsigned *len)
{
	uint64_t a[2];
	uint32_t cur = t->root, best = ZG_LPM_NONE;
	unsigned best_len = 0;

	key_load(addr, a);
	while (cur != ZG_LPM_NONE) {
		const struct lpm_node *n = &t->nodes[cur];

		if (!key_within(n, a))
			break;
		if (n->value != ZG_LPM_NONE) {
			best = n->value;
			best_len = n->len;
		}
		if (n->len >= 128)
			break;
		cur = n->child[key_bit(a, n->len)];
	}
	if (len)
		*len = best_len;
	return best;
}

void zg_lpm_shrink(struct zg_lpm *t)
{
	struct lpm_node *n;

	if (t->n_nodes == 0 || t->n_nodes == t->cap)
		return;
	n = realloc(t->nodes, (size_t)t->n_nodes * sizeof(*n));
	if (!n)
		return; /* keeping the larger block is harmless */
	t->nodes = n;
	t->cap = t->n_nodes;
}

size_t zg_lpm_count(const struct zg_lpm *t)
{
	return t->n_prefixes;
}

size_t zg_lpm_memory(const struct zg_lpm *t)
{
	return sizeof(*t) + (size_t)t->cap * sizeof(struct lpm_node);
}
