/* expiry.c - see expiry.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ops/expiry.h"

int64_t zg_expiry_days_left(int64_t not_after, int64_t now)
{
	int64_t d = not_after - now;

	return d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
}

int zg_expiry_due(int64_t not_after, int64_t now, const unsigned *days, unsigned n_days,
		  unsigned warned)
{
	int due = -1;

	/* the nearest threshold crossed decides; thresholds are far to near */
	for (unsigned i = 0; i < n_days; i++)
		if (not_after - now <= (int64_t)days[i] * 86400)
			due = (int)i;
	if (due < 0 || (warned & (1u << due)))
		return -1;
	return due;
}

unsigned zg_expiry_rewarn(unsigned warned, const unsigned *old_days, unsigned n_old,
			  const unsigned *new_days, unsigned n_new)
{
	unsigned nearest = 0, out = 0; /* 0: nothing warned yet */

	for (unsigned i = 0; i < n_old && i < 32; i++)
		if ((warned & (1u << i)) && (nearest == 0 || old_days[i] < nearest))
			nearest = old_days[i];
	if (nearest == 0)
		return 0;
	for (unsigned i = 0; i < n_new && i < 32; i++)
		if (new_days[i] >= nearest)
			out |= 1u << i;
	return out;
}

/* ASN1 time to Unix time; 0 if it does not convert. */
static int64_t asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

static void add(struct zg_expiry_item *out, unsigned cap, unsigned *n, const char *kind,
		const char *name, int64_t when)
{
	if (*n >= cap || when == 0)
		return;
	/* a file two trust domains share is one expiry, warned once */
	for (unsigned i = 0; i < *n; i++)
		if (out[i].not_after == when && strcmp(out[i].kind, kind) == 0 &&
		    strncmp(out[i].name, name, sizeof(out[i].name) - 1) == 0)
			return;
	memset(&out[*n], 0, sizeof(out[*n]));
	snprintf(out[*n].kind, sizeof(out[*n].kind), "%s", kind);
	snprintf(out[*n].name, sizeof(out[*n].name), "%s", name);
	out[*n].not_after = when;
	(*n)++;
}

/* Every certificate of PEM file @path, as @kind (the first as @first_kind). */
static void certs_of(const char *path, const char *first_kind, const char *kind,
		     struct zg_expiry_item *out, unsigned cap, unsigned *n)
{
	FILE *f = path[0] ? fopen(path, "r") : NULL;
	X509 *x;
	int first = 1;

	if (!f)
		return;
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		char subj[160] = "";
		X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
		add(out, cap, n, first ? first_kind : kind, subj, asn1_unix(X509_get0_notAfter(x)));
		first = 0;
		X509_free(x);
	}
	fclose(f);
}

/* Every CRL of PEM file @path: its nextUpdate. */
static void crls_of(const char *path, struct zg_expiry_item *out, unsigned cap, unsigned *n)
{
	FILE *f = fopen(path, "r");
	X509_CRL *crl;

	if (!f)
		return;
	while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
		char iss[160] = "";
		X509_NAME_oneline(X509_CRL_get_issuer(crl), iss, sizeof(iss));
		add(out, cap, n, "crl", iss, asn1_unix(X509_CRL_get0_nextUpdate(crl)));
		X509_CRL_free(crl);
	}
	fclose(f);
}

unsigned zg_expiry_collect(const struct zg_conf *c, const struct zg_directory *d,
			   struct zg_expiry_item *out, unsigned cap)
{
	unsigned n = 0;

	/* [tls]'s identity and store, then every [identity] and [trust] */
	for (unsigned i = 0; i <= c->n_identities; i++) {
		const struct zg_conf_identity *id = i ? &c->identities[i - 1] : &c->tls_identity;
		certs_of(id->certificate, "certificate", "chain", out, cap, &n);
		certs_of(id->chain, "chain", "chain", out, cap, &n);
	}
	for (unsigned i = 0; i <= c->n_trusts; i++) {
		const struct zg_conf_trust *t = i ? &c->trusts[i - 1] : &c->tls_trust;
		certs_of(t->trust_anchors, "trust_anchor", "trust_anchor", out, cap, &n);
		for (unsigned k = 0; k < t->n_crl; k++)
			crls_of(t->crl[k], out, cap, &n);
	}
	if (d)
		add(out, cap, &n, "directory", c->dir.file, (int64_t)zg_directory_expires(d));
	ERR_clear_error();
	return n;
}
