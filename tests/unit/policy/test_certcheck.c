/* test_certcheck.c - the chain check behind `zonegate check-cert` and
 * `zonegate probe` (policy/certcheck.c) on chains built in memory: a good
 * chain passes every rule; a chain that breaks several rules reports each
 * of them, not only the first (what makes the CLI worth running); an
 * unverifiable chain names the verifier's failure first; the text and JSON
 * reports say the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "policy/certcheck.h"

#define DAY 86400L

struct pki {
	EVP_PKEY *root_key, *int_key, *leaf_key;
	X509 *root, *inter;
	X509_STORE *anchors;
	STACK_OF(X509) *untrusted;
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

/* @cn for @key below @issuer (NULL: self-signed), valid @from..@to days
 * from now; CA or leaf extensions, the leaf with @eku and DNS SAN @san. */
static X509 *mk(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, int ca, long from,
		long to, const char *eku, const char *san)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509 *is = issuer ? issuer : x;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(is)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from * DAY));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to * DAY));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	ext(x, is, "basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	ext(x, is, "keyUsage", ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	ext(x, is, "subjectKeyIdentifier", "hash");
	if (issuer)
		ext(x, is, "authorityKeyIdentifier", "keyid");
	if (eku)
		ext(x, is, "extendedKeyUsage", eku);
	if (san)
		ext(x, is, "subjectAltName", san);
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
	k->root_key = p256();
	k->int_key = p256();
	k->leaf_key = p256();
	k->root = mk("root", k->root_key, NULL, NULL, 1, -2, 3650, NULL, NULL);
	k->inter = mk("int", k->int_key, k->root, k->root_key, 1, -2, 365, NULL, NULL);
	k->anchors = X509_STORE_new();
	k->untrusted = sk_X509_new_null();
	assert_non_null(k->anchors);
	assert_non_null(k->untrusted);
	assert_int_equal(X509_STORE_add_cert(k->anchors, k->root), 1);
	assert_true(sk_X509_push(k->untrusted, k->inter) > 0);
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	struct pki *k = *state;

	sk_X509_free(k->untrusted);
	X509_STORE_free(k->anchors);
	X509_free(k->root);
	X509_free(k->inter);
	EVP_PKEY_free(k->root_key);
	EVP_PKEY_free(k->int_key);
	EVP_PKEY_free(k->leaf_key);
	free(k);
	return 0;
}

static struct zg_policy_params params(void)
{
	struct zg_policy_params pp = {.profile = zg_profile_default(), .role = ZG_ROLE_SERVER,
				      .now = time(NULL), .max_depth = 4};
	return pp;
}

/* The findings of @c as "code@depth" joined by spaces. */
static const char *findings(const struct zg_certcheck *c, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < c->v.n && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s@%d", i ? " " : "",
				      zg_reason_code(c->v.f[i].reason), c->v.f[i].depth);
	return buf;
}

/* The text report of @c, NUL-terminated, in @buf. */
static void text_report(const struct zg_certcheck *c, char *buf, size_t cap)
{
	FILE *f = fmemopen(buf, cap, "w");

	assert_non_null(f);
	zg_certcheck_print(c, f);
	assert_int_equal(fclose(f), 0);
}

static void test_good_chain_passes_every_rule(void **state)
{
	struct pki *k = *state;
	X509 *leaf = mk("srv", k->leaf_key, k->inter, k->int_key, 0, -1, 30, "serverAuth",
			"DNS:srv.zonegate.test");
	struct zg_policy_params pp = params();
	struct zg_certcheck c;
	char f[512], text[8192];

	assert_int_equal(zg_certcheck_run(leaf, k->untrusted, k->anchors, &pp, "srv.zonegate.test",
					  &c), 0);
	assert_int_equal(c.verified, 1);
	assert_int_equal(c.x509_err, X509_V_OK);
	assert_int_equal(c.v.n, 0);
	assert_int_equal(sk_X509_num(c.chain), 3); /* leaf, int, root */
	text_report(&c, text, sizeof(text));
	assert_null(strstr(text, "fail "));
	assert_non_null(strstr(text, "pass validity"));
	assert_non_null(strstr(text, "result: compliant (0 failed)"));
	assert_string_equal(findings(&c, f, sizeof(f)), "");
	zg_certcheck_clear(&c);
	X509_free(leaf);
}

/* An expired leaf without serverAuth, for another name: three rules
 * broken, three findings, each with its code and depth. */
static void test_every_broken_rule_is_reported(void **state)
{
	struct pki *k = *state;
	X509 *leaf = mk("srv", k->leaf_key, k->inter, k->int_key, 0, -40, -10, "emailProtection",
			"DNS:srv.zonegate.test");
	struct zg_policy_params pp = params();
	struct zg_certcheck c;
	char f[512], text[8192];
	json_t *j;

	assert_int_equal(zg_certcheck_run(leaf, k->untrusted, k->anchors, &pp, "other.zonegate.test",
					  &c), 1);
	(void)findings(&c, f, sizeof(f));
	assert_non_null(strstr(f, "cert_expired@0"));
	assert_non_null(strstr(f, "cert_eku_missing@0"));
	assert_non_null(strstr(f, "tls_server_name_mismatch@0"));
	assert_true(c.v.failed >= 3);
	text_report(&c, text, sizeof(text));
	assert_non_null(strstr(text, "fail validity"));
	assert_non_null(strstr(text, "result: refused"));
	assert_non_null(strstr(text, "reason=cert_expired depth=0"));
	assert_non_null(strstr(text, "reason=cert_eku_missing depth=0"));
	assert_non_null(strstr(text, "reason=tls_server_name_mismatch depth=0"));
	j = zg_certcheck_json(&c);
	assert_non_null(j);
	{
		char *dump = json_dumps(j, JSON_COMPACT);
		assert_non_null(dump);
		assert_non_null(strstr(dump, "cert_expired"));
		assert_non_null(strstr(dump, "cert_eku_missing"));
		assert_non_null(strstr(dump, "tls_server_name_mismatch"));
		free(dump);
	}
	json_decref(j);
	zg_certcheck_clear(&c);
	X509_free(leaf);
}

/* Without the intermediate the chain cannot be built: the verifier's
 * failure is the first finding. */
static void test_unverifiable_chain_is_untrusted_first(void **state)
{
	struct pki *k = *state;
	X509 *leaf = mk("srv", k->leaf_key, k->inter, k->int_key, 0, -1, 30, "serverAuth",
			"DNS:srv.zonegate.test");
	STACK_OF(X509) *none = sk_X509_new_null();
	struct zg_policy_params pp = params();
	struct zg_certcheck c;

	assert_non_null(none);
	assert_int_equal(zg_certcheck_run(leaf, none, k->anchors, &pp, NULL, &c), 1);
	assert_int_not_equal(c.x509_err, X509_V_OK);
	assert_true(c.v.n >= 1);
	assert_int_equal(c.v.f[0].reason, ZG_R_TLS_UNTRUSTED);
	zg_certcheck_clear(&c);
	sk_X509_free(none);
	X509_free(leaf);
}

/* A client certificate (role client) needs clientAuth: serverAuth alone
 * is the EKU rule's failure. */
static void test_role_decides_the_eku(void **state)
{
	struct pki *k = *state;
	X509 *leaf = mk("cli", k->leaf_key, k->inter, k->int_key, 0, -1, 30, "serverAuth", NULL);
	struct zg_policy_params pp = params();
	struct zg_certcheck c;
	char f[512];

	assert_int_equal(zg_certcheck_run(leaf, k->untrusted, k->anchors, &pp, NULL, &c), 0);
	zg_certcheck_clear(&c);
	pp.role = ZG_ROLE_CLIENT;
	assert_int_equal(zg_certcheck_run(leaf, k->untrusted, k->anchors, &pp, NULL, &c), 1);
	assert_string_equal(findings(&c, f, sizeof(f)), "cert_eku_missing@0");
	zg_certcheck_clear(&c);
	X509_free(leaf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_chain_passes_every_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_broken_rule_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unverifiable_chain_is_untrusted_first, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_role_decides_the_eku, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
