/* test_ocsp.c - the OCSP verdicts (policy/ocsp.c) on responses built in
 * memory: good, revoked and unknown from the CA itself and from a delegated
 * responder; responses that do not count (another certificate, a stranger's
 * signature, a delegate without id-kp-OCSPSigning, stale, from the future,
 * not "successful", garbage) are cert_ocsp_unavailable; and what each fail
 * mode makes of every verdict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "policy/ocsp.h"

#define DAY 86400L

struct pki {
	EVP_PKEY *ca_key, *leaf_key, *resp_key, *other_key;
	X509 *ca, *leaf, *other_leaf, *delegate, *bad_delegate, *stranger;
	time_t now;
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

/* @cn for @key below @issuer (NULL: self-signed), with @eku or none. */
static X509 *mk(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, int ca, const char *eku)
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
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -2 * DAY));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 365 * DAY));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	ext(x, is, "basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	if (eku)
		ext(x, is, "extendedKeyUsage", eku);
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
	k->ca_key = p256();
	k->leaf_key = p256();
	k->resp_key = p256();
	k->other_key = p256();
	k->ca = mk("ca", k->ca_key, NULL, NULL, 1, NULL);
	k->leaf = mk("leaf", k->leaf_key, k->ca, k->ca_key, 0, "clientAuth");
	k->other_leaf = mk("other", k->leaf_key, k->ca, k->ca_key, 0, "clientAuth");
	k->delegate = mk("responder", k->resp_key, k->ca, k->ca_key, 0, "OCSPSigning");
	k->bad_delegate = mk("not-a-responder", k->resp_key, k->ca, k->ca_key, 0, "clientAuth");
	k->stranger = mk("stranger", k->other_key, NULL, NULL, 1, NULL);
	k->now = time(NULL);
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	struct pki *k = *state;

	X509_free(k->ca);
	X509_free(k->leaf);
	X509_free(k->other_leaf);
	X509_free(k->delegate);
	X509_free(k->bad_delegate);
	X509_free(k->stranger);
	EVP_PKEY_free(k->ca_key);
	EVP_PKEY_free(k->leaf_key);
	EVP_PKEY_free(k->resp_key);
	EVP_PKEY_free(k->other_key);
	free(k);
	return 0;
}

/* A DER response about @about (issued by the CA) with @status, valid from
 * @this_off to @next_off seconds around now (next_off 0: no nextUpdate),
 * signed by @signer with @skey. Caller frees *der. */
static size_t respond(struct pki *k, X509 *about, int status, long this_off, long next_off,
		      X509 *signer, EVP_PKEY *skey, unsigned char **der)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, about, k->ca);
	ASN1_TIME *thisupd = X509_gmtime_adj(NULL, this_off);
	ASN1_TIME *nextupd = next_off ? X509_gmtime_adj(NULL, next_off) : NULL;
	ASN1_TIME *rev = X509_gmtime_adj(NULL, -DAY);
	OCSP_RESPONSE *resp;
	int n;

	assert_non_null(bs);
	assert_non_null(id);
	assert_non_null(OCSP_basic_add1_status(bs, id, status,
					       status == V_OCSP_CERTSTATUS_REVOKED ?
						       OCSP_REVOKED_STATUS_KEYCOMPROMISE : -1,
					       status == V_OCSP_CERTSTATUS_REVOKED ? rev : NULL,
					       thisupd, nextupd));
	assert_int_equal(OCSP_basic_sign(bs, signer, skey, EVP_sha256(), NULL, 0), 1);
	resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	assert_non_null(resp);
	*der = NULL;
	n = i2d_OCSP_RESPONSE(resp, der);
	assert_true(n > 0);
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	ASN1_TIME_free(thisupd);
	ASN1_TIME_free(nextupd);
	ASN1_TIME_free(rev);
	return (size_t)n;
}

static enum zg_reason judge(struct pki *k, X509 *about, int status, long this_off, long next_off,
			    X509 *signer, EVP_PKEY *skey, time_t *next)
{
	unsigned char *der;
	size_t n = respond(k, about, status, this_off, next_off, signer, skey, &der);
	char detail[160];
	enum zg_reason r = zg_ocsp_judge(der, n, k->leaf, k->ca, k->now, next, detail, sizeof(detail));

	OPENSSL_free(der);
	return r;
}

static void statuses_from_the_ca_and_a_delegate(void **state)
{
	struct pki *k = *state;
	time_t next = 0;

	assert_int_equal(judge(k, k->leaf, V_OCSP_CERTSTATUS_GOOD, -60, DAY, k->ca, k->ca_key, &next),
			 ZG_R_OK);
	assert_true(next > k->now + DAY - 120 && next < k->now + DAY + 120);
	assert_int_equal(judge(k, k->leaf, V_OCSP_CERTSTATUS_REVOKED, -60, DAY, k->ca, k->ca_key,
			       &next),
			 ZG_R_CERT_OCSP_REVOKED);
	assert_int_equal(judge(k, k->leaf, V_OCSP_CERTSTATUS_UNKNOWN, -60, DAY, k->ca, k->ca_key,
			       &next),
			 ZG_R_CERT_OCSP_UNKNOWN);
	assert_int_equal(judge(k, k->leaf, V_OCSP_CERTSTATUS_GOOD, -60, DAY, k->delegate,
			       k->resp_key, &next),
			 ZG_R_OK);
	assert_int_equal(judge(k, k->leaf, V_OCSP_CERTSTATUS_REVOKED, -60, 0, k->delegate,
			       k->resp_key, &next),
			 ZG_R_CERT_OCSP_REVOKED);
	assert_int_equal(next, 0); /* no nextUpdate given */
}

static void responses_that_do_not_count(void **state)
{
	struct pki *k = *state;
	time_t next = 1;
	unsigned char junk[] = {0x30, 0x03, 0x0a, 0x01, 0x00};
	unsigned char *der;
	OCSP_RESPONSE *r;
	char detail[160];
	int n;

	/* about another certificate */
	assert_int_equal(judge(k, k->other_leaf, V_OCSP_CERTSTATUS_GOOD, -60, DAY, k->ca, k->ca_key,
			       &next),
			 ZG_R_CERT_OCSP_UNAVAILABLE);
	/* signed by a CA that did not issue the certificate */
	assert_int_equal(judge(k, k->leaf, V_OCSP_CERTSTATUS_GOOD, -60, DAY, k->stranger,
			       k->other_key, &next),
			 ZG_R_CERT_OCSP_UNAVAILABLE);
	/* a certificate of the CA, but not delegated to answer OCSP */
	assert_int_equal(judge(k, k->leaf, V_OCSP_CERTSTATUS_REVOKED, -60, DAY, k->bad_delegate,
			       k->resp_key, &next),
			 ZG_R_CERT_OCSP_UNAVAILABLE);
	/* stale, and from the future */
	assert_int_equal(judge(k, k->leaf, V_OCSP_CERTSTATUS_GOOD, -3 * DAY, -DAY, k->ca, k->ca_key,
			       &next),
			 ZG_R_CERT_OCSP_UNAVAILABLE);
	assert_int_equal(judge(k, k->leaf, V_OCSP_CERTSTATUS_GOOD, DAY, 2 * DAY, k->ca, k->ca_key,
			       &next),
			 ZG_R_CERT_OCSP_UNAVAILABLE);
	assert_int_equal(next, 0);
	/* "tryLater", garbage, nothing */
	r = OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL);
	der = NULL;
	n = i2d_OCSP_RESPONSE(r, &der);
	assert_true(n > 0);
	assert_int_equal(zg_ocsp_judge(der, (size_t)n, k->leaf, k->ca, k->now, &next, detail,
				       sizeof(detail)),
			 ZG_R_CERT_OCSP_UNAVAILABLE);
	assert_non_null(strstr(detail, "trylater"));
	OPENSSL_free(der);
	OCSP_RESPONSE_free(r);
	assert_int_equal(zg_ocsp_judge(junk, sizeof(junk), k->leaf, k->ca, k->now, &next, detail,
				       sizeof(detail)),
			 ZG_R_CERT_OCSP_UNAVAILABLE);
	assert_int_equal(zg_ocsp_judge(NULL, 0, k->leaf, k->ca, k->now, &next, detail, sizeof(detail)),
			 ZG_R_CERT_OCSP_UNAVAILABLE);
}

static void fail_modes(void **state)
{
	int soft = 7;

	(void)state;
	assert_int_equal(zg_ocsp_decide(ZG_OCSP_OFF, ZG_R_CERT_OCSP_REVOKED, &soft), ZG_R_OK);
	assert_int_equal(soft, 0);
	for (int m = ZG_OCSP_SOFT; m <= ZG_OCSP_HARD; m++) {
		assert_int_equal(zg_ocsp_decide(m, ZG_R_OK, &soft), ZG_R_OK);
		assert_int_equal(zg_ocsp_decide(m, ZG_R_CERT_OCSP_REVOKED, &soft), ZG_R_CERT_OCSP_REVOKED);
		assert_int_equal(zg_ocsp_decide(m, ZG_R_CERT_OCSP_UNKNOWN, &soft), ZG_R_CERT_OCSP_UNKNOWN);
		assert_int_equal(soft, 0);
	}
	assert_int_equal(zg_ocsp_decide(ZG_OCSP_HARD, ZG_R_CERT_OCSP_UNAVAILABLE, &soft),
			 ZG_R_CERT_OCSP_UNAVAILABLE);
	assert_int_equal(soft, 0);
	assert_int_equal(zg_ocsp_decide(ZG_OCSP_SOFT, ZG_R_CERT_OCSP_UNAVAILABLE, &soft), ZG_R_OK);
	assert_int_equal(soft, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(statuses_from_the_ca_and_a_delegate),
		cmocka_unit_test(responses_that_do_not_count),
		cmocka_unit_test(fail_modes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
