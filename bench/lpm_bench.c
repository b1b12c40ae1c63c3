/* lpm_bench.c - lookups/s and memory of the directory's longest-prefix match.
 *
 * usage: lpm_bench [N_PREFIXES [N_LOOKUPS]]   (defaults 100000, 10000000)
 * Builds a table of N random prefixes shaped like a directory's (60% IPv4
 * /16../32, 40% IPv6 /32../64, nested at random), then times lookups of
 * addresses of which about half fall inside a stored prefix. Addresses are
 * generated before the clock starts, so only zg_lpm_lookup is timed.
 * A linear scan over the same prefixes is timed on a sample for contrast.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "directory/lpm.h"
#include "base/prefix.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic runs, no libc rand state */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void random_prefix(struct zg_prefix *p)
{
	uint64_t r = rng();

	memset(p, 0, sizeof(*p));
	if (r % 10 < 6) {
		p->addr[10] = p->addr[11] = 0xff;
		for (int i = 12; i < 16; i++)
			p->addr[i] = (uint8_t)(rng() >> 24);
		p->len = (uint8_t)(96 + 16 + (r >> 8) % 17);
	} else {
		p->addr[0] = 0x20;
		p->addr[1] = 0x01;
		for (int i = 2; i < 16; i++)
			p->addr[i] = (uint8_t)(rng() >> 24);
		p->len = (uint8_t)(32 + (r >> 8) % 33);
	}
	for (unsigned b = p->len; b < 128; b++)
		p->addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long arg(int argc, char **argv, int i, unsigned long def)
{
	char *end;
	unsigned long v;

	if (argc <= i)
		return def;
	v = strtoul(argv[i], &end, 10);
	if (*end || v == 0) {
		fprintf(stderr, "usage: lpm_bench [N_PREFIXES [N_LOOKUPS]]\n");
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	size_t n = arg(argc, argv, 1, 100000), q = arg(argc, argv, 2, 10000000), hits = 0;
	struct zg_prefix *ps = calloc(n, sizeof(*ps));
	uint8_t(*qs)[16] = calloc(q, 16);
	struct zg_lpm *t = zg_lpm_new();
	uint32_t sink = 0;
	double t0, t1;

	if (!ps || !qs || !t) {
		fprintf(stderr, "lpm_bench: out of memory\n");
		return 1;
	}
	t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		random_prefix(&ps[i]);
		if (zg_lpm_insert(t, &ps[i], (uint32_t)i, NULL) < 0) {
			fprintf(stderr, "lpm_bench: insert failed\n");
			return 1;
		}
	}
	zg_lpm_shrink(t);
	t1 = now_s();
	printf("build: %zu prefixes (%zu distinct) in %.1f ms\n", n, zg_lpm_count(t), (t1 - t0) * 1e3);
	printf("memory: %zu bytes, %.1f bytes/prefix\n", zg_lpm_memory(t),
	       (double)zg_lpm_memory(t) / (double)zg_lpm_count(t));

	for (size_t i = 0; i < q; i++) {
		if (rng() & 1) {
			/* inside a stored prefix: its start with random host bits */
			const struct zg_prefix *p = &ps[rng() % n];
			memcpy(qs[i], p->addr, 16);
			for (unsigned b = p->len; b < 128; b++)
				if (rng() & 1)
					qs[i][b / 8] |= (uint8_t)(0x80u >> (b % 8));
		} else {
			struct zg_prefix p;
			random_prefix(&p);
			for (int k = 0; k < 16; k++)
				p.addr[k] ^= (uint8_t)rng();
			memcpy(qs[i], p.addr, 16);
		}
	}
	t0 = now_s();
	for (size_t i = 0; i < q; i++) {
		uint32_t v = zg_lpm_lookup(t, qs[i], NULL);
		hits += v != ZG_LPM_NONE;
		sink ^= v;
	}
	t1 = now_s();
	printf("lpm lookup: %zu lookups in %.3f s = %.2f M/s, %.0f ns each, %zu hits [%u]\n", q, t1 - t0,
	       (double)q / (t1 - t0) / 1e6, (t1 - t0) / (double)q * 1e9, hits, sink & 1);

	size_t lq = q < 2000 ? q : 2000;
	t0 = now_s();
	for (size_t i = 0; i < lq; i++) {
		int best = -1;
		for (size_t j = 0; j < n; j++)
			if ((int)ps[j].len > best && zg_prefix_contains(&ps[j], qs[i]))
				best = ps[j].len;
		sink ^= (uint32_t)best;
	}
	t1 = now_s();
	printf("linear scan (contrast): %.3f M/s [%u]\n", (double)lq / (t1 - t0) / 1e6, sink & 1);
	zg_lpm_free(t);
	free(ps);
	free(qs);
	return 0;
}
