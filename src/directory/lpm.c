/* lpm.c - see lpm.h. */
#include <stdlib.h>
#include <string.h>

#include "directory/lpm.h"

/* Keys are held as two host-order 64-bit words, most significant first, so
 * masking and bit tests are a few integer operations instead of byte loops. */
struct lpm_node {
	uint64_t k[2];     /* prefix bits; bits beyond len are zero */
	uint32_t child[2]; /* next node by the bit at position len, or NONE */
	uint32_t value;    /* ZG_LPM_NONE for a pure branching node */
	uint8_t len;       /* 0..128 */
};

/* Where a lookup may start instead of the root: the trie walked as far as
 * the first 16 bits of the address (IPv6) or of the IPv4 address (mapped
 * space) decide. @node is the first node still to be checked, or with
 * @descend the last node already checked whose child the next address bit
 * picks. Saves the top levels of every lookup in a large table. */
struct lpm_jump {
	uint32_t node;
	uint32_t best;
	uint8_t best_len;
	uint8_t descend;
};

#define JUMP_BITS 16
#define JUMP_MIN 256 /* below this many prefixes the tables cost more than they save */

struct zg_lpm {
	struct lpm_node *nodes;
	uint32_t n_nodes, cap;
	uint32_t root;
	size_t n_prefixes;
	struct lpm_jump *j6; /* by address bits 0..15 */
	struct lpm_jump *j4; /* IPv4-mapped: by address bits 96..111 */
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
	free(t->j6);
	free(t->j4);
	free(t);
}

static void drop_jumps(struct zg_lpm *t)
{
	free(t->j6);
	free(t->j4);
	t->j6 = t->j4 = NULL;
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
	drop_jumps(t);
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
	if (t->j6) {
		const struct lpm_jump *j = (a[0] == 0 && (a[1] >> 32) == 0xffff)
						   ? &t->j4[(a[1] >> 16) & 0xffff]
						   : &t->j6[a[0] >> (64 - JUMP_BITS)];
		best = j->best;
		best_len = j->best_len;
		cur = j->node;
		if (cur != ZG_LPM_NONE && j->descend)
			cur = t->nodes[cur].child[key_bit(a, t->nodes[cur].len)];
	}
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

/* Walk from the root with the bits of @a before @stop (the rest of @a is
 * zero and never looked at) and record where a lookup continues. */
static void jump_fill(const struct zg_lpm *t, const uint64_t a[2], unsigned stop, struct lpm_jump *j)
{
	uint32_t cur = t->root;

	j->node = ZG_LPM_NONE;
	j->best = ZG_LPM_NONE;
	j->best_len = 0;
	j->descend = 0;
	while (cur != ZG_LPM_NONE) {
		const struct lpm_node *n = &t->nodes[cur];
		if (n->len > stop) {
			j->node = cur; /* decided by bits we do not know yet */
			return;
		}
		if (!key_within(n, a))
			return;
		if (n->value != ZG_LPM_NONE) {
			j->best = n->value;
			j->best_len = n->len;
		}
		if (n->len == stop) {
			j->node = cur;
			j->descend = 1;
			return;
		}
		cur = n->child[key_bit(a, n->len)];
	}
}

static void build_jumps(struct zg_lpm *t)
{
	size_t n = (size_t)1 << JUMP_BITS;

	drop_jumps(t);
	if (t->n_prefixes < JUMP_MIN)
		return;
	t->j6 = malloc(n * sizeof(*t->j6));
	t->j4 = malloc(n * sizeof(*t->j4));
	if (!t->j6 || !t->j4) {
		drop_jumps(t); /* lookups work without them, only slower */
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t a6[2] = {(uint64_t)i << (64 - JUMP_BITS), 0};
		uint64_t a4[2] = {0, ((uint64_t)0xffff << 32) | ((uint64_t)i << 16)};
		jump_fill(t, a6, JUMP_BITS, &t->j6[i]);
		jump_fill(t, a4, 96 + JUMP_BITS, &t->j4[i]);
	}
}

void zg_lpm_shrink(struct zg_lpm *t)
{
	struct lpm_node *n;

	if (t->n_nodes != 0 && t->n_nodes != t->cap) {
		n = realloc(t->nodes, (size_t)t->n_nodes * sizeof(*n));
		if (n) { /* else keeping the larger block is harmless */
			t->nodes = n;
			t->cap = t->n_nodes;
		}
	}
	build_jumps(t);
}

size_t zg_lpm_count(const struct zg_lpm *t)
{
	return t->n_prefixes;
}

size_t zg_lpm_memory(const struct zg_lpm *t)
{
	return sizeof(*t) + (size_t)t->cap * sizeof(struct lpm_node) +
	       (t->j6 ? 2 * ((size_t)1 << JUMP_BITS) * sizeof(struct lpm_jump) : 0);
}
