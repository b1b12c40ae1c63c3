/* chaincache.c - see chaincache.h. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "tls/chaincache.h"

int zg_chaincache_init(struct zg_chaincache *cc)
{
	memset(cc, 0, sizeof(*cc));
	cc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	return cc->sha256 ? 0 : -1;
}

static void entry_clear(struct zg_chaincache_entry *e)
{
	sk_X509_pop_free(e->chain, X509_free);
	memset(e, 0, sizeof(*e));
}

void zg_chaincache_fini(struct zg_chaincache *cc)
{
	for (unsigned i = 0; i < ZG_CHAINCACHE_SLOTS; i++)
		if (cc->slot[i].tag)
			entry_clear(&cc->slot[i]);
	EVP_MD_free(cc->sha256);
	cc->sha256 = NULL;
}

/* SHA-256 over the SHA-256 of each certificate the peer sent (X509_digest
 * reuses the DER OpenSSL kept from parsing). 0, or -1. */
static int chain_key(const struct zg_chaincache *cc, X509_STORE_CTX *xs, uint8_t key[32])
{
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs);
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl, kl;
	int n = sent ? sk_X509_num(sent) : 0, rc = -1;

	if (!md || !leaf || EVP_DigestInit_ex(md, cc->sha256, NULL) != 1)
		goto out;
	if (X509_digest(leaf, cc->sha256, d, &dl) != 1 || EVP_DigestUpdate(md, d, dl) != 1)
		goto out;
	for (int i = 0; i < n; i++) {
		X509 *x = sk_X509_value(sent, i);
		if (x == leaf)
			continue;
		if (X509_digest(x, cc->sha256, d, &dl) != 1 || EVP_DigestUpdate(md, d, dl) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(md, key, &kl) == 1 && kl == 32)
		rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

static time_t asn1_time(const ASN1_TIME *t, time_t fallback)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return fallback;
	return timegm(&tm);
}

/* The window in which the verdict on @chain holds without looking again:
 * inside every certificate's validity and before any CRL's nextUpdate. */
static void window(X509_STORE_CTX *xs, STACK_OF(X509) *chain, time_t *from, time_t *until)
{
	X509_STORE *store = X509_STORE_CTX_get0_store(xs);
	STACK_OF(X509_OBJECT) *objs;

	*from = 0;
	*until = (time_t)INT64_MAX;
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		time_t nb = asn1_time(X509_get0_notBefore(x), *until);
		time_t na = asn1_time(X509_get0_notAfter(x), 0);
		if (nb > *from)
			*from = nb;
		if (na < *until)
			*until = na;
	}
	/* other workers' lookups sort this stack in place under the lock */
	if (!X509_STORE_lock(store))
		return;
	objs = X509_STORE_get0_objects(store);
	for (int i = 0; objs && i < sk_X509_OBJECT_num(objs); i++) {
		X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
		if (crl) {
			time_t nu = asn1_time(X509_CRL_get0_nextUpdate(crl), *until);
			if (nu < *until)
				*until = nu;
		}
	}
	X509_STORE_unlock(store);
}

/* On a hit the certificates @xs holds as sent are, byte for byte, members
 * of the cached @chain (the key is over their digests). Put the cached,
 * already parsed objects in their place, so every connection and cached
 * session of one returning peer shares one parse instead of holding its
 * own (about 9 KiB per connection for a leaf and an intermediate, see
 * docs/performance.md). libssl keeps the stack it passed as untrusted as
 * the session's peer chain and takes the leaf from its first element
 * after verification, so the swap is what the connection keeps. An
 * element that matches nothing stays as parsed. */
static void share_parsed(X509_STORE_CTX *xs, STACK_OF(X509) *chain)
{
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs);
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);

	for (int i = 0; sent && i < sk_X509_num(sent); i++) {
		X509 *x = sk_X509_value(sent, i);
		for (int j = 0; j < sk_X509_num(chain); j++) {
			X509 *y = sk_X509_value(chain, j);
			if (y == x || X509_cmp(x, y) != 0)
				continue;
			if (!X509_up_ref(y))
				return;
			(void)sk_X509_set(sent, i, y);
			if (x == leaf)
				X509_STORE_CTX_set_cert(xs, y);
			X509_free(x);
			break;
		}
	}
}

int zg_chaincache_verify(struct zg_chaincache *cc, uint64_t tag, X509_STORE_CTX *xs, int *cached)
{
	struct zg_chaincache_entry *e;
	STACK_OF(X509) *chain;
	uint8_t key[32];
	time_t now = time(NULL);
	int ok;

	if (!cc || !tag || chain_key(cc, xs, key) < 0)
		return X509_verify_cert(xs) > 0;
	/* the tag takes part in the slot, so one client using two routes (or
	 * both directions) keeps an entry for each instead of evicting one */
	e = &cc->slot[(((uint64_t)key[0] | (uint64_t)key[1] << 8 | (uint64_t)key[2] << 16) ^
		       (tag * 0x9e3779b97f4a7c15ull >> 40)) %
		      ZG_CHAINCACHE_SLOTS];
	if (e->tag == tag && memcmp(e->key, key, sizeof(key)) == 0 && now >= e->valid_from &&
	    now < e->valid_until) {
		chain = X509_chain_up_ref(e->chain);
		if (chain) {
			cc->hits++;
			if (cached)
				*cached = 1;
			X509_STORE_CTX_set0_verified_chain(xs, chain);
			X509_STORE_CTX_set_error(xs, X509_V_OK);
			share_parsed(xs, chain);
			return 1;
		}
	}
	cc->misses++;
	ok = X509_verify_cert(xs) > 0;
	if (!ok || !(chain = X509_STORE_CTX_get1_chain(xs)))
		return ok;
	if (e->tag)
		entry_clear(e);
	memcpy(e->key, key, sizeof(key));
	e->tag = tag;
	e->chain = chain;
	window(xs, chain, &e->valid_from, &e->valid_until);
	return 1;
}
