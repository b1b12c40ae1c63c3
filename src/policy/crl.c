/* crl.c - see crl.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

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
