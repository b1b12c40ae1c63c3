/* test_profile.c - profile lookup, narrowing (narrow yes, widen never),
 * applying to a real SSL_CTX, and the golden snapshot of the printed
 * effective settings (tests/snapshots/profiles.txt). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "policy/profile.h"

static void lookup(void **state)
{
	size_t n;
	const struct zg_profile *all = zg_profile_all(&n);

	(void)state;
	assert_int_equal(n, 3);
	assert_string_equal(zg_profile_default()->name, "cryptrec-high");
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(zg_profile_find(all[i].name), &all[i]);
		assert_int_equal(all[i].min_version, TLS1_2_VERSION);
		assert_true(all[i].min_rsa_bits >= 2048);
	}
	assert_null(zg_profile_find("tls10-legacy"));
	assert_null(zg_profile_find(""));
}

static void versions(void **state)
{
	(void)state;
	assert_int_equal(zg_profile_version_parse("1.2"), TLS1_2_VERSION);
	assert_int_equal(zg_profile_version_parse("TLSv1.3"), TLS1_3_VERSION);
	assert_int_equal(zg_profile_version_parse("1.1"), 0);
	assert_int_equal(zg_profile_version_parse("TLSv1.0"), 0);
	assert_int_equal(zg_profile_version_parse(""), 0);
	assert_string_equal(zg_profile_version_name(TLS1_3_VERSION), "TLSv1.3");
	assert_string_equal(zg_profile_version_name(TLS1_1_VERSION), "?");
}

static void narrowing_allowed(void **state)
{
	const struct zg_profile *base = zg_profile_find("cryptrec-high");
	struct zg_profile_overrides o = {
		.min_version = TLS1_3_VERSION,
		.tls13_suites = "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384",
		.groups = "secp384r1:X25519",
		.sigalgs = "ECDSA+SHA384",
		.min_rsa_bits = 3072,
		.no_eddsa = 1,
	};
	struct zg_profile_narrowed *nw = calloc(1, sizeof(*nw));
	char why[256] = "";

	(void)state;
	assert_non_null(nw);
	assert_int_equal(zg_profile_narrow(base, &o, nw, why, sizeof(why)), 0);
	assert_int_equal(nw->p.min_version, TLS1_3_VERSION);
	assert_int_equal(nw->p.max_version, TLS1_3_VERSION);
	assert_string_equal(nw->p.tls13_suites, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
	assert_string_equal(nw->p.tls12_ciphers, base->tls12_ciphers); /* inherited */
	assert_string_equal(nw->p.groups, "P-384:X25519");             /* canonical names */
	assert_string_equal(nw->p.sigalgs, "ECDSA+SHA384");
	assert_int_equal(nw->p.min_rsa_bits, 3072);
	assert_int_equal(nw->p.allow_eddsa, 0);
	assert_string_equal(nw->p.name, "cryptrec-high");
	/* an empty override inherits everything */
	memset(&o, 0, sizeof(o));
	assert_int_equal(zg_profile_narrow(base, &o, nw, why, sizeof(why)), 0);
	assert_string_equal(nw->p.tls13_suites, base->tls13_suites);
	assert_int_equal(nw->p.min_version, base->min_version);
	free(nw);
}

static void widening_refused(void **state)
{
	const struct zg_profile *high = zg_profile_find("cryptrec-high");
	const struct zg_profile *bcp = zg_profile_find("bcp195");
	struct {
		const struct zg_profile *base;
		struct zg_profile_overrides o;
		const char *why;
	} cases[] = {
		{high, {.min_version = TLS1_1_VERSION}, "min_version"},
		{high, {.max_version = TLS1_1_VERSION}, "max_version"},
		{high, {.min_version = TLS1_3_VERSION, .max_version = TLS1_2_VERSION}, "above"},
		{high, {.tls13_suites = "TLS_AES_256_GCM_SHA384:TLS_FAKE"}, "TLS_FAKE"},
		{high, {.tls12_ciphers = "AES128-SHA"}, "AES128-SHA"},
		{high, {.tls12_ciphers = "ALL"}, "ALL"},
		{high, {.tls12_ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:!aNULL"}, "!aNULL"},
		{bcp, {.tls12_ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305"}, "bcp195"},
		{high, {.groups = "secp256k1"}, "secp256k1"},
		{high, {.groups = "ffdhe2048"}, "ffdhe2048"},
		{high, {.sigalgs = "RSA+SHA1"}, "RSA+SHA1"},
		{high, {.min_rsa_bits = 1024}, "min_rsa_bits"},
	};
	struct zg_profile_narrowed *nw = calloc(1, sizeof(*nw));
	char why[256];

	(void)state;
	assert_non_null(nw);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		assert_int_equal(zg_profile_narrow(cases[i].base, &cases[i].o, nw, why, sizeof(why)), -1);
		if (!strstr(why, cases[i].why))
			print_error("case %zu: '%s' lacks '%s'\n", i, why, cases[i].why);
		assert_non_null(strstr(why, cases[i].why));
	}
	free(nw);
}

/* Every profile, and a narrowed one, is accepted by OpenSSL as it stands. */
static void apply_to_ctx(void **state)
{
	size_t n;
	const struct zg_profile *all = zg_profile_all(&n);
	struct zg_profile_overrides o = {.tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256",
					 .groups = "P-256"};
	struct zg_profile_narrowed *nw = calloc(1, sizeof(*nw));
	struct zg_profile bad = *zg_profile_default();
	FILE *devnull;
	char why[256];

	(void)state;
	assert_non_null(nw);
	for (size_t i = 0; i < n; i++) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
		assert_non_null(ctx);
		assert_int_equal(zg_profile_apply(ctx, &all[i], why, sizeof(why)), 0);
		assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
		assert_true(SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE);
		assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
		SSL_CTX_free(ctx);
	}
	assert_int_equal(zg_profile_narrow(zg_profile_default(), &o, nw, why, sizeof(why)), 0);
	devnull = fopen("/dev/null", "w");
	assert_non_null(devnull);
	assert_int_equal(zg_profile_print(&nw->p, devnull, why, sizeof(why)), 0);
	fclose(devnull);
	/* a list OpenSSL does not know is refused with OpenSSL's reason */
	bad.tls12_ciphers = "NO-SUCH-CIPHER";
	{
		SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
		assert_int_equal(zg_profile_apply(ctx, &bad, why, sizeof(why)), -1);
		assert_non_null(strstr(why, "TLS 1.2 ciphers"));
		SSL_CTX_free(ctx);
	}
	free(nw);
}

static char *print_all(size_t *len)
{
	size_t n;
	const struct zg_profile *all = zg_profile_all(&n);
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	char why[256];

	assert_non_null(f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc('\n', f);
		assert_int_equal(zg_profile_print(&all[i], f, why, sizeof(why)), 0);
	}
	assert_int_equal(fclose(f), 0);
	return buf;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* The printed settings equal the committed golden file, so neither our code
 * nor an OpenSSL update changes a profile unnoticed. On purpose changes:
 * `zonegate profiles > tests/snapshots/profiles.txt` and review the diff. */
static void golden_snapshot(void **state)
{
	const char *src = getenv("ZG_SRCDIR");
	char path[1024];
	size_t glen = 0, olen = 0, line = 1;
	char *golden, *out;

	(void)state;
	if (!src)
		skip();
	snprintf(path, sizeof(path), "%s/tests/snapshots/profiles.txt", src);
	golden = read_file(path, &glen);
	assert_non_null(golden);
	out = print_all(&olen);
	for (size_t i = 0; i < glen && i < olen && golden[i] == out[i]; i++)
		if (golden[i] == '\n')
			line++;
	if (glen != olen || memcmp(golden, out, glen) != 0)
		print_error("profiles differ from %s at line %zu; run `zonegate profiles | diff %s -`\n",
			    path, line, path);
	assert_int_equal(glen, olen);
	assert_memory_equal(golden, out, glen);
	free(golden);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lookup),
		cmocka_unit_test(versions),
		cmocka_unit_test(narrowing_allowed),
		cmocka_unit_test(widening_refused),
		cmocka_unit_test(apply_to_ctx),
		cmocka_unit_test(golden_snapshot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
