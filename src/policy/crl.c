/* crl.c - see crl.h. */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/filemode.h"
#include "policy/crl.h"

STACK_OF(X509_CRL) *zg_crl_new(void)
{
	return sk_X509_CRL_new_null();
}

void zg_crl_free(STACK_OF(X509_CRL) *crls)
{
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
}

/* Read every PEM block of @f; anything but a CRL, or a damaged block, fails. */
static int read_all(FILE *f, STACK_OF(X509_CRL) *tmp, char *why, size_t cap, const char *path)
{
	for (;;) {
		X509_CRL *c = PEM_read_X509_CRL(f, NULL, NULL, NULL);
		if (!c)
			break;
		if (!sk_X509_CRL_push(tmp, c)) {
			X509_CRL_free(c);
			snprintf(why, cap, "%s: out of memory", path);
			return -1;
		}
	}
	/* End of file shows as PEM_R_NO_START_LINE; anything else is damage. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE ||
	    sk_X509_CRL_num(tmp) == 0) {
		snprintf(why, cap, "%s: %s", path,
			 sk_X509_CRL_num(tmp) ? "damaged PEM block after the CRLs" : "no CRL in file");
		return -1;
	}
	return 0;
}

/* @path opened for reading, refused (NULL, reason in @why) when anyone but
 * root or us could change it: a CRL decides who is let through. Judged on
 * the descriptor that is then read. */
static FILE *open_trusted(const char *path, char *why, size_t cap)
{
	struct stat st;
	FILE *f;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(why, cap, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (zg_file_mode_check(&st, geteuid(), path, why, cap) < 0)
		goto fail;
	if (!(f = fdopen(fd, "r"))) {
		snprintf(why, cap, "%s: %s", path, strerror(errno));
		goto fail;
	}
	return f;
fail:
	if (fd >= 0)
		close(fd);
	return NULL;
}

int zg_crl_load_file(STACK_OF(X509_CRL) *crls, const char *path, char *why, size_t cap)
{
	STACK_OF(X509_CRL) *tmp = sk_X509_CRL_new_null();
	FILE *f = NULL;
	int n = -1;

	if (!tmp) {
		snprintf(why, cap, "%s: out of memory", path);
		goto out;
	}
	if (!(f = open_trusted(path, why, cap)))
		goto out;
	ERR_clear_error();
	if (read_all(f, tmp, why, cap, path) < 0)
		goto out;
	n = sk_X509_CRL_num(tmp);
	if (!sk_X509_CRL_reserve(crls, sk_X509_CRL_num(crls) + n)) {
		snprintf(why, cap, "%s: out of memory", path);
		n = -1;
		goto out;
	}
	while (sk_X509_CRL_num(tmp) > 0)
		sk_X509_CRL_push(crls, sk_X509_CRL_shift(tmp));
out:
	ERR_clear_error();
	if (f)
		fclose(f);
	zg_crl_free(tmp);
	return n;
}

int zg_crl_next_stale(STACK_OF(X509_CRL) *crls, int from, time_t now)
{
	for (int i = from < 0 ? 0 : from; i < sk_X509_CRL_num(crls); i++) {
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(sk_X509_CRL_value(crls, i));
		if (next && X509_cmp_time(next, &now) <= 0)
			return i;
	}
	return -1;
}

int zg_crl_add_to_store(X509_STORE *store, STACK_OF(X509_CRL) *crls)
{
	for (int i = 0; i < sk_X509_CRL_num(crls); i++)
		if (!X509_STORE_add_crl(store, sk_X509_CRL_value(crls, i)))
			return -1;
	return 0;
}

#define CRL_SKEW_S 300 /* a CA's clock a little ahead of ours is not an attack */

/* The CA of @cas that signed @crl, or NULL. */
static X509 *crl_signer(X509_CRL *crl, STACK_OF(X509) *cas)
{
	for (int i = 0; i < sk_X509_num(cas); i++) {
		X509 *ca = sk_X509_value(cas, i);
		EVP_PKEY *pk = X509_get0_pubkey(ca);
		if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 && pk &&
		    X509_CRL_verify(crl, pk) == 1)
			return ca;
	}
	return NULL;
}

#define NO_NUMBER 2

/* -1, 0, 1 as @a's CRL number is below, equal to, above @b's; NO_NUMBER if
 * either has none (then thisUpdate decides). */
static int number_cmp(X509_CRL *a, X509_CRL *b)
{
	ASN1_INTEGER *na = X509_CRL_get_ext_d2i(a, NID_crl_number, NULL, NULL);
	ASN1_INTEGER *nb = X509_CRL_get_ext_d2i(b, NID_crl_number, NULL, NULL);
	int r = NO_NUMBER;

	if (na && nb) {
		r = ASN1_INTEGER_cmp(na, nb);
		r = r < 0 ? -1 : r > 0 ? 1 : 0;
	}
	ASN1_INTEGER_free(na);
	ASN1_INTEGER_free(nb);
	return r;
}

int zg_crl_judge(X509_CRL *crl, X509_CRL *old, STACK_OF(X509) *cas, time_t now, char *why,
		 size_t cap)
{
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	time_t ahead = now + CRL_SKEW_S;
	int order;

	if (!crl_signer(crl, cas)) {
		snprintf(why, cap, "not signed by a CA we trust for its issuer");
		return -1;
	}
	if (X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &ahead) >= 0) {
		snprintf(why, cap, "thisUpdate lies in the future");
		return -1;
	}
	if (!next || X509_cmp_time(next, &now) <= 0) {
		snprintf(why, cap, "already past its nextUpdate");
		return -1;
	}
	if (!old)
		return 0;
	order = number_cmp(crl, old);
	if (order == NO_NUMBER)
		order = ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_lastUpdate(old));
	if (order < 0) {
		snprintf(why, cap, "older than the CRL in force (a replayed CRL)");
		return -1;
	}
	/* X509_CRL_match compares the encodings' digests: the very same CRL */
	return order == 0 && X509_CRL_match(crl, old) == 0 ? 1 : 0;
}

X509_CRL *zg_crl_parse(const unsigned char *buf, size_t len)
{
	const unsigned char *p = buf;
	X509_CRL *crl = NULL;
	BIO *b;

	if (len > 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
		if ((b = BIO_new_mem_buf(buf, (int)len)) != NULL) {
			crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
			BIO_free(b);
		}
		return crl;
	}
	if (len > (size_t)INT32_MAX)
		return NULL;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	if (crl && p != buf + len) { /* trailing bytes: not one clean DER object */
		X509_CRL_free(crl);
		crl = NULL;
	}
	return crl;
}
