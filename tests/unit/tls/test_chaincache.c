/* test_chaincache.c - the per-worker cache of verified chains (tls/
 * chaincache.c) on chains built in memory: a chain is verified in full once
 * and then served from the cache only for the same bytes, under the same
 * tag (snapshot generation, route, direction) and inside its validity
 * window; a refused chain is never stored. The clock the cache reads is
 * moved by the test (linked with -Wl,--wrap=time); OpenSSL keeps the real
 * one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/chaincache.h"

#define DAY 86400L

static time_t skew;
time_t __real_time(time_t *t);
time_t __wrap_time(time_t *t);

time_t __wrap_time(time_t *t)
{
	time_t now = __real_time(NULL) + skew;

	if (t)
		*t = now;
	return now;
}

struct pki {
	EVP_PKEY *root_key, *int_key, *leaf_key;
	X509 *root, *inter, *leaf, *other_leaf;
	X509_STORE *store, *empty_store;
	struct zg_chaincache cc;
};

static void ext(X509 *x, X509 *issuer, const char *name, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf(NULL, &ctx, name, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for @key named @cn, issued by @issuer (NULL: self-signed),
 * valid from a day ago for @days days. */
static X509 *mk(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, int ca, long days)
{
	static long serial = 1;
	X509 *x = X509_new();

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -DAY));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), days * DAY));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	ext(x, issuer ? issuer : x, "basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	ext(x, issuer ? issuer : x, "keyUsage",
	    ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static EVP_PKEY *p256(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	return k;
}

static int setup(void **state)
{
	struct pki *k = calloc(1, sizeof(*k));

	assert_non_null(k);
	skew = 0;
	k->root_key = p256();
	k->int_key = p256();
	k->leaf_key = p256();
	k->root = mk("root", k->root_key, NULL, NULL, 1, 3650);
	k->inter = mk("int", k->int_key, k->root, k->root_key, 1, 365);
	k->leaf = mk("leaf", k->leaf_key, k->inter, k->int_key, 0, 30);
	k->other_leaf = mk("other", k->leaf_key, k->inter, k->int_key, 0, 30);
	k->store = X509_STORE_new();
	k->empty_store = X509_STORE_new();
	assert_non_null(k->store);
	assert_non_null(k->empty_store);
	assert_int_equal(X509_STORE_add_cert(k->store, k->root), 1);
	assert_int_equal(zg_chaincache_init(&k->cc), 0);
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	struct pki *k = *state;

	zg_chaincache_fini(&k->cc);
	X509_STORE_free(k->store);
	X509_STORE_free(k->empty_store);
	X509_free(k->root);
	X509_free(k->inter);
	X509_free(k->leaf);
	X509_free(k->other_leaf);
	EVP_PKEY_free(k->root_key);
	EVP_PKEY_free(k->int_key);
	EVP_PKEY_free(k->leaf_key);
	free(k);
	return 0;
}

/* One verification of @leaf + intermediate against @store through the
 * cache, as a handshake would: returns 1 verified or 0; *cached says
 * whether the cache answered, *depth is the verified chain's length. */
static int verify(struct pki *k, X509_STORE *store, X509 *leaf, uint64_t tag, int *cached,
		  int *depth)
{
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	STACK_OF(X509) *sent = sk_X509_new_null();
	int ok;

	assert_non_null(xs);
	assert_non_null(sent);
	assert_true(sk_X509_push(sent, leaf) > 0);
	assert_true(sk_X509_push(sent, k->inter) > 0);
	assert_int_equal(X509_STORE_CTX_init(xs, store, leaf, sent), 1);
	*cached = 0;
	ok = zg_chaincache_verify(&k->cc, tag, xs, cached);
	*depth = X509_STORE_CTX_get0_chain(xs) ? sk_X509_num(X509_STORE_CTX_get0_chain(xs)) : 0;
	X509_STORE_CTX_free(xs);
	sk_X509_free(sent);
	return ok;
}

static void test_second_verification_is_a_hit_with_the_full_chain(void **state)
{
	struct pki *k = *state;
	uint64_t tag = zg_chaincache_tag(1, 0, 0);
	int cached, depth;

	assert_int_equal(verify(k, k->store, k->leaf, tag, &cached, &depth), 1);
	assert_int_equal(cached, 0);
	assert_int_equal(depth, 3);
	assert_int_equal(verify(k, k->store, k->leaf, tag, &cached, &depth), 1);
	assert_int_equal(cached, 1);
	assert_int_equal(depth, 3); /* the rules downstream see leaf, int and root */
	assert_true(k->cc.hits == 1 && k->cc.misses == 1);
}

/* A fresh parse of @x, owned by the caller, as libssl makes one from the
 * bytes a peer sent. */
static X509 *reparse(X509 *x)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int n = i2d_X509(x, &der);
	X509 *copy;

	assert_true(n > 0);
	p = der;
	copy = d2i_X509(NULL, &p, n);
	OPENSSL_free(der);
	assert_non_null(copy);
	return copy;
}

/* On a hit the connection keeps the cache's parsed certificates, not its
 * own copies (one parse per returning peer, not per connection: the idle
 * memory of issue 17); the copies are released and the references stay
 * balanced (ASan: no leak, no double free). */
static void test_hit_hands_over_the_cached_parse(void **state)
{
	struct pki *k = *state;
	uint64_t tag = zg_chaincache_tag(1, 0, 0);
	int cached, depth;
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	STACK_OF(X509) *sent = sk_X509_new_null();
	X509 *leaf = reparse(k->leaf);

	assert_int_equal(verify(k, k->store, k->leaf, tag, &cached, &depth), 1);
	assert_non_null(xs);
	assert_non_null(sent);
	assert_true(sk_X509_push(sent, leaf) > 0);
	assert_true(sk_X509_push(sent, reparse(k->inter)) > 0);
	assert_int_equal(X509_STORE_CTX_init(xs, k->store, leaf, sent), 1);
	assert_int_equal(zg_chaincache_verify(&k->cc, tag, xs, &cached), 1);
	assert_int_equal(cached, 1);
	assert_ptr_equal(sk_X509_value(sent, 0), k->leaf);
	assert_ptr_equal(sk_X509_value(sent, 1), k->inter);
	assert_ptr_equal(X509_STORE_CTX_get0_cert(xs), k->leaf);
	X509_STORE_CTX_free(xs);
	sk_X509_pop_free(sent, X509_free);
}

/* A reload (new generation), another route or the other direction each
 * have their own tag: what was verified under one proves nothing under
 * another (new trust anchors, CRLs, policy). */
static void test_other_tag_misses(void **state)
{
	struct pki *k = *state;
	int cached, depth;

	assert_int_equal(verify(k, k->store, k->leaf, zg_chaincache_tag(1, 0, 0), &cached, &depth),
			 1);
	assert_int_equal(verify(k, k->store, k->leaf, zg_chaincache_tag(2, 0, 0), &cached, &depth),
			 1);
	assert_int_equal(cached, 0);
	assert_int_equal(verify(k, k->store, k->leaf, zg_chaincache_tag(1, 1, 0), &cached, &depth),
			 1);
	assert_int_equal(cached, 0);
	assert_int_equal(verify(k, k->store, k->leaf, zg_chaincache_tag(1, 0, 1), &cached, &depth),
			 1);
	assert_int_equal(cached, 0);
}

/* The slot is chosen from key and tag, so two tags usually land apart; a
 * generation whose tag shares the slot checks the tag comparison itself. */
static void test_other_tag_in_the_same_slot_misses(void **state)
{
	struct pki *k = *state;
	uint64_t t1 = zg_chaincache_tag(1, 0, 0), t2 = 0;
	int cached, depth;

	for (uint64_t g = 2; g < 1u << 24 && !t2; g++) {
		uint64_t t = zg_chaincache_tag(g, 0, 0);
		if (((t * 0x9e3779b97f4a7c15ull >> 40) ^ (t1 * 0x9e3779b97f4a7c15ull >> 40)) %
			    ZG_CHAINCACHE_SLOTS ==
		    0)
			t2 = t;
	}
	assert_true(t2 != 0);
	assert_int_equal(verify(k, k->store, k->leaf, t1, &cached, &depth), 1);
	assert_int_equal(verify(k, k->store, k->leaf, t2, &cached, &depth), 1);
	assert_int_equal(cached, 0);
	assert_true(k->cc.misses == 2);
}

/* Other certificate bytes under the same tag: a miss. */
static void test_other_chain_misses(void **state)
{
	struct pki *k = *state;
	uint64_t tag = zg_chaincache_tag(1, 0, 0);
	int cached, depth;

	assert_int_equal(verify(k, k->store, k->leaf, tag, &cached, &depth), 1);
	assert_int_equal(verify(k, k->store, k->other_leaf, tag, &cached, &depth), 1);
	assert_int_equal(cached, 0);
}

/* A chain that fails is not stored: the same bytes are verified in full
 * (and refused) every time, even under a tag that once saw them pass. */
static void test_refused_chain_is_never_cached(void **state)
{
	struct pki *k = *state;
	uint64_t tag = zg_chaincache_tag(1, 0, 0);
	int cached, depth;

	assert_int_equal(verify(k, k->empty_store, k->leaf, tag, &cached, &depth), 0);
	assert_int_equal(verify(k, k->empty_store, k->leaf, tag, &cached, &depth), 0);
	assert_int_equal(cached, 0);
	assert_true(k->cc.hits == 0 && k->cc.misses == 2);
}

/* Tag 0 (no cache for this context) always verifies in full. */
static void test_tag_zero_bypasses(void **state)
{
	struct pki *k = *state;
	int cached, depth;

	assert_int_equal(verify(k, k->store, k->leaf, 0, &cached, &depth), 1);
	assert_int_equal(verify(k, k->store, k->leaf, 0, &cached, &depth), 1);
	assert_int_equal(cached, 0);
	assert_true(k->cc.hits == 0);
}

/* Once the clock passes a certificate's notAfter, the entry no longer
 * answers: the full verification runs again (with OpenSSL's clock, which
 * the test does not move, so it passes and is stored anew). */
static void test_entry_ends_with_the_chain_validity(void **state)
{
	struct pki *k = *state;
	uint64_t tag = zg_chaincache_tag(1, 0, 0);
	int cached, depth;

	assert_int_equal(verify(k, k->store, k->leaf, tag, &cached, &depth), 1);
	skew = 29 * DAY;
	assert_int_equal(verify(k, k->store, k->leaf, tag, &cached, &depth), 1);
	assert_int_equal(cached, 1); /* still inside the leaf's 30 days */
	skew = 31 * DAY;
	assert_int_equal(verify(k, k->store, k->leaf, tag, &cached, &depth), 1);
	assert_int_equal(cached, 0);
	skew = -2 * DAY; /* before notBefore */
	assert_int_equal(verify(k, k->store, k->leaf, tag, &cached, &depth), 1);
	assert_int_equal(cached, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_second_verification_is_a_hit_with_the_full_chain,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_hit_hands_over_the_cached_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_tag_misses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_tag_in_the_same_slot_misses, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_other_chain_misses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_chain_is_never_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tag_zero_bypasses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_ends_with_the_chain_validity, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
