/* test_lpm.c - longest-prefix match: edge lengths, nesting, families, and a
 * randomised comparison against a linear scan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "directory/lpm.h"
#include "base/prefix.h"

static struct zg_prefix pfx(const char *s)
{
	struct zg_prefix p;
	const char *why = NULL;

	assert_int_equal(zg_prefix_parse(s, &p, &why), 0);
	return p;
}

static void add(struct zg_lpm *t, const char *s, uint32_t v)
{
	struct zg_prefix p = pfx(s);
	assert_int_equal(zg_lpm_insert(t, &p, v, NULL), 0);
}

static uint32_t look(const struct zg_lpm *t, const char *addr, unsigned *len)
{
	struct zg_prefix a = pfx(addr);
	return zg_lpm_lookup(t, a.addr, len);
}

static void empty_table(void **state)
{
	struct zg_lpm *t = zg_lpm_new();
	(void)state;
	assert_non_null(t);
	assert_int_equal(look(t, "10.0.0.1", NULL), ZG_LPM_NONE);
	assert_int_equal(look(t, "::", NULL), ZG_LPM_NONE);
	assert_int_equal(zg_lpm_count(t), 0);
	zg_lpm_free(t);
}

static void default_routes(void **state)
{
	struct zg_lpm *t = zg_lpm_new();
	unsigned len = 99;
	(void)state;
	add(t, "0.0.0.0/0", 4);
	assert_int_equal(look(t, "203.0.113.1", &len), 4);
	assert_int_equal(len, 96);
	/* IPv4 /0 is ::ffff:0:0/96, so it must not cover native IPv6 */
	assert_int_equal(look(t, "2001:db8::1", NULL), ZG_LPM_NONE);
	add(t, "::/0", 6);
	assert_int_equal(look(t, "2001:db8::1", &len), 6);
	assert_int_equal(len, 0);
	assert_int_equal(look(t, "203.0.113.1", NULL), 4);
	zg_lpm_free(t);
}

static void host_prefixes(void **state)
{
	struct zg_lpm *t = zg_lpm_new();
	unsigned len = 0;
	(void)state;
	add(t, "192.0.2.7/32", 1);
	add(t, "2001:db8::7/128", 2);
	add(t, "2001:db8::6/128", 3);
	assert_int_equal(look(t, "192.0.2.7", &len), 1);
	assert_int_equal(len, 128);
	assert_int_equal(look(t, "192.0.2.6", NULL), ZG_LPM_NONE);
	assert_int_equal(look(t, "192.0.2.8", NULL), ZG_LPM_NONE);
	assert_int_equal(look(t, "2001:db8::7", NULL), 2);
	assert_int_equal(look(t, "2001:db8::6", NULL), 3);
	assert_int_equal(look(t, "2001:db8::5", NULL), ZG_LPM_NONE);
	/* the IPv4-mapped form of a client address finds its IPv4 prefix */
	assert_int_equal(look(t, "::ffff:192.0.2.7", NULL), 1);
	zg_lpm_free(t);
}

static void nested_and_overlapping(void **state)
{
	struct zg_lpm *t = zg_lpm_new();
	unsigned len;
	(void)state;
	/* insert the narrow one first so the split path is exercised */
	add(t, "10.1.2.0/24", 2);
	add(t, "10.0.0.0/8", 1);
	add(t, "10.1.2.128/25", 3);
	add(t, "10.1.0.0/16", 4);
	add(t, "10.1.2.129/32", 5);
	assert_int_equal(look(t, "10.9.9.9", &len), 1);
	assert_int_equal(len, 104);
	assert_int_equal(look(t, "10.1.9.9", NULL), 4);
	assert_int_equal(look(t, "10.1.2.1", NULL), 2);
	assert_int_equal(look(t, "10.1.2.200", NULL), 3);
	assert_int_equal(look(t, "10.1.2.129", NULL), 5);
	assert_int_equal(look(t, "10.1.2.128", NULL), 3);
	assert_int_equal(look(t, "11.0.0.0", NULL), ZG_LPM_NONE);
	assert_int_equal(look(t, "9.255.255.255", NULL), ZG_LPM_NONE);
	assert_int_equal(zg_lpm_count(t), 5);
	zg_lpm_free(t);
}

static void siblings_split(void **state)
{
	struct zg_lpm *t = zg_lpm_new();
	(void)state;
	add(t, "2001:db8:1::/48", 1);
	add(t, "2001:db8:2::/48", 2); /* forces a branch node at /46 */
	add(t, "2001:db8::/32", 3);   /* lands above the branch */
	assert_int_equal(look(t, "2001:db8:1::9", NULL), 1);
	assert_int_equal(look(t, "2001:db8:2::9", NULL), 2);
	assert_int_equal(look(t, "2001:db8:3::9", NULL), 3);
	assert_int_equal(look(t, "2001:db9::", NULL), ZG_LPM_NONE);
	zg_lpm_free(t);
}

static void duplicates(void **state)
{
	struct zg_lpm *t = zg_lpm_new();
	struct zg_prefix p = pfx("10.0.0.0/8"), q = pfx("10.0.0.0/16");
	uint32_t ex = 0;
	(void)state;
	assert_int_equal(zg_lpm_insert(t, &q, 1, NULL), 0);
	assert_int_equal(zg_lpm_insert(t, &p, 7, NULL), 0);
	assert_int_equal(zg_lpm_insert(t, &p, 8, &ex), 1);
	assert_int_equal(ex, 7);
	assert_int_equal(look(t, "10.200.0.0", NULL), 7);
	/* a branch node created implicitly can later receive a value */
	add(t, "10.128.0.0/9", 9);
	add(t, "10.0.0.0/9", 10);
	assert_int_equal(look(t, "10.200.0.0", NULL), 9);
	assert_int_equal(look(t, "10.0.0.1", NULL), 1);
	assert_int_equal(look(t, "10.1.0.1", NULL), 10);
	assert_int_equal(zg_lpm_insert(t, &p, ZG_LPM_NONE, NULL), -1);
	zg_lpm_free(t);
}

/* Random prefixes drawn close together so that nesting is frequent. */
static void random_prefix(struct zg_prefix *p, unsigned *seed)
{
	memset(p, 0, sizeof(*p));
	if (rand_r(seed) & 1) {
		p->addr[10] = p->addr[11] = 0xff;
		p->addr[12] = (uint8_t)(10 + rand_r(seed) % 2);
		p->addr[13] = (uint8_t)(rand_r(seed) % 4);
		p->addr[14] = (uint8_t)rand_r(seed);
		p->addr[15] = (uint8_t)rand_r(seed);
		p->len = (uint8_t)(96 + 8 + rand_r(seed) % 25);
	} else {
		p->addr[0] = 0x20;
		p->addr[1] = 0x01;
		p->addr[2] = 0x0d;
		p->addr[3] = 0xb8;
		p->addr[4] = (uint8_t)(rand_r(seed) % 4);
		for (int i = 5; i < 16; i++)
			p->addr[i] = (uint8_t)rand_r(seed);
		p->len = (uint8_t)(32 + rand_r(seed) % 97);
	}
	for (unsigned b = p->len; b < 128; b++)
		p->addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
}

static void against_linear_scan(void **state)
{
	enum { N = 3000, Q = 20000 };
	struct zg_prefix *ps = calloc(N, sizeof(*ps));
	struct zg_lpm *t = zg_lpm_new();
	unsigned seed = 12345, stored = 0;
	(void)state;
	assert_non_null(ps);
	for (unsigned i = 0; i < N; i++) {
		random_prefix(&ps[i], &seed);
		int rc = zg_lpm_insert(t, &ps[i], i, NULL);
		assert_true(rc == 0 || rc == 1);
		if (rc == 1)
			ps[i].len = 255; /* duplicate: the first value stays */
		else
			stored++;
	}
	assert_int_equal(zg_lpm_count(t), stored);
	zg_lpm_shrink(t);
	for (unsigned q = 0; q < Q; q++) {
		struct zg_prefix a;
		uint32_t want = ZG_LPM_NONE;
		int best = -1;
		unsigned len;
		random_prefix(&a, &seed);
		for (int i = 0; i < 16; i += 1 + (int)(rand_r(&seed) % 7))
			a.addr[i] ^= (uint8_t)(rand_r(&seed) % 2 ? 0 : rand_r(&seed));
		for (unsigned i = 0; i < N; i++) {
			if (ps[i].len <= 128 && (int)ps[i].len > best && zg_prefix_contains(&ps[i], a.addr)) {
				best = ps[i].len;
				want = i;
			}
		}
		assert_int_equal(zg_lpm_lookup(t, a.addr, &len), want);
		if (want != ZG_LPM_NONE)
			assert_int_equal(len, (unsigned)best);
	}
	free(ps);
	zg_lpm_free(t);
}

/* The start tables (built by zg_lpm_shrink at 256+ prefixes) must not
 * change a single answer: compare every lookup before and after, with
 * prefixes ending before, at and after the 16-bit stride of both spaces. */
static void start_tables_change_nothing(void **state)
{
	const char *edges[] = {"::/0", "0.0.0.0/0", "2000::/3", "2001::/16", "2001:db8::/32",
			       "2001:8000::/17", "10.0.0.0/8", "11.0.0.0/16", "11.1.0.0/17",
			       "12.0.0.0/15", "::ff00:0:0/88", "::/16", "::1/128", "8000::/1"};
	enum { N = 2000, Q = 50000 };
	struct zg_lpm *t = zg_lpm_new();
	uint32_t *before = calloc(Q, sizeof(*before));
	unsigned *blen = calloc(Q, sizeof(*blen));
	uint8_t(*qs)[16] = calloc(Q, 16);
	unsigned seed = 777, len;
	struct zg_prefix p;
	(void)state;

	assert_non_null(before);
	assert_non_null(blen);
	assert_non_null(qs);
	for (unsigned i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		add(t, edges[i], 100000 + i);
	for (unsigned i = 0; i < N; i++) {
		random_prefix(&p, &seed);
		assert_true(zg_lpm_insert(t, &p, i, NULL) >= 0);
	}
	for (unsigned q = 0; q < Q; q++) {
		random_prefix(&p, &seed);
		for (int i = 0; i < 16; i++)
			if (rand_r(&seed) % 5 == 0)
				p.addr[i] = (uint8_t)rand_r(&seed);
		memcpy(qs[q], p.addr, 16);
		before[q] = zg_lpm_lookup(t, qs[q], &blen[q]);
	}
	zg_lpm_shrink(t);
	assert_true(zg_lpm_memory(t) > (size_t)1 << 20); /* the tables exist */
	for (unsigned q = 0; q < Q; q++) {
		assert_int_equal(zg_lpm_lookup(t, qs[q], &len), before[q]);
		assert_int_equal(len, blen[q]);
	}
	/* an insert after finishing drops the tables; answers stay right
	 * (spot checks only use addresses outside the random prefixes) */
	add(t, "12.1.2.0/24", 555);
	assert_int_equal(look(t, "12.1.2.3", NULL), 555);
	assert_int_equal(look(t, "12.1.3.3", NULL), 100000 + 9);
	zg_lpm_shrink(t);
	assert_int_equal(look(t, "12.1.2.3", NULL), 555);
	assert_int_equal(look(t, "12.1.3.3", NULL), 100000 + 9);
	assert_int_equal(look(t, "13.0.0.1", NULL), 100000 + 1);
	assert_int_equal(look(t, "2001:8000::1", NULL), 100000 + 5);
	assert_int_equal(look(t, "2001:db9::1", NULL), 100000 + 3);
	assert_int_equal(look(t, "2002::1", NULL), 100000 + 2);
	assert_int_equal(look(t, "::2", NULL), 100000 + 11);
	assert_int_equal(look(t, "::1", NULL), 100000 + 12);
	assert_int_equal(look(t, "::ff00:1:2", NULL), 100000 + 10);
	assert_int_equal(look(t, "ffff::1", NULL), 100000 + 13);
	assert_int_equal(look(t, "4000::1", NULL), 100000 + 0);
	free(before);
	free(blen);
	free(qs);
	zg_lpm_free(t);
}

/* Measured, not asserted: 100,000 prefixes, lookups/s and bytes. */
static void measure_100k(void **state)
{
	enum { N = 100000, Q = 2000000 };
	struct zg_lpm *t = zg_lpm_new();
	struct zg_prefix p;
	unsigned seed = 99;
	uint32_t sink = 0;
	struct timespec t0, t1;
	(void)state;
	for (unsigned i = 0; i < N; i++) {
		random_prefix(&p, &seed);
		assert_true(zg_lpm_insert(t, &p, i, NULL) >= 0);
	}
	zg_lpm_shrink(t);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned q = 0; q < Q; q++) {
		random_prefix(&p, &seed);
		sink ^= zg_lpm_lookup(t, p.addr, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("lpm: %zu prefixes, %zu bytes (%.1f B/prefix), %.2f M lookups/s (incl. key gen) [%u]\n",
	       zg_lpm_count(t), zg_lpm_memory(t), (double)zg_lpm_memory(t) / (double)zg_lpm_count(t),
	       Q / s / 1e6, sink & 1);
	zg_lpm_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_table),
		cmocka_unit_test(default_routes),
		cmocka_unit_test(host_prefixes),
		cmocka_unit_test(nested_and_overlapping),
		cmocka_unit_test(siblings_split),
		cmocka_unit_test(duplicates),
		cmocka_unit_test(against_linear_scan),
		cmocka_unit_test(start_tables_change_nothing),
		cmocka_unit_test(measure_100k),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
