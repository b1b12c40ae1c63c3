/* ticket.c - see ticket.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls/ticket.h"

struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char mac[32];
	time_t born;
};

/* Shared by every worker using the context: the mutex guards the two keys
 * while a ticket is sealed or opened (a few hundred nanoseconds). */
struct ticket_ring {
	pthread_mutex_t lock;
	unsigned period_s;
	struct ticket_key cur, prev;
	/* shared keys from files: fixed[0] seals, every one opens; n_fixed > 0
	 * turns rotation off (the operator rotates the files) */
	struct ticket_key fixed[4];
	unsigned n_fixed;
};

static int ring_index = -1;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;

static void ring_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct ticket_ring *r = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	OPENSSL_clear_free(r, sizeof(*r)); /* the keys are secrets */
}

static void ring_index_init(void)
{
	ring_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ring_free);
}

static int key_new(struct ticket_key *k)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_priv_bytes(k->mac, sizeof(k->mac)) != 1)
		return -1;
	k->born = time(NULL);
	return 0;
}

static int key_use(const struct ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
		   EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->mac, sizeof(k->mac)),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	if (!EVP_MAC_CTX_set_params(hctx, params))
		return -1;
	return EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) == 1 ? 0 : -1;
}

/* A key seals tickets only during its first period (sealing rotates a key
 * that is older), so a ticket it sealed is at least (age - period) old:
 * refusing keys older than two periods keeps every ticket under two, even
 * when no handshake came along to rotate. */
static int fresh(const struct ticket_key *k, unsigned period_s)
{
	return time(NULL) - k->born < 2 * (time_t)period_s;
}

/* ticket_cb for shared keys: no lock (they never change while the context
 * lives). Seal with the first; open with any, asking for a new ticket when
 * it was not the first. */
static int fixed_cb(const struct ticket_ring *r, unsigned char name[16], unsigned char *iv,
		    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	if (enc) {
		memcpy(name, r->fixed[0].name, 16);
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 || key_use(&r->fixed[0], iv, cctx, hctx, 1) < 0)
			return -1;
		return 1;
	}
	for (unsigned i = 0; i < r->n_fixed; i++)
		if (memcmp(name, r->fixed[i].name, 16) == 0)
			return key_use(&r->fixed[i], iv, cctx, hctx, 0) < 0 ? -1 : (i == 0 ? 1 : 2);
	return 0;
}

/* OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb):
 * enc=1 seal with the current key (rotating it first when due); enc=0 find
 * the key by name: 1 current, 2 previous (accept and issue a new ticket),
 * 0 unknown (full handshake), -1 error. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	struct ticket_ring *r = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_index);
	struct ticket_key k;
	int rc = 0;

	if (!r)
		return enc ? -1 : 0;
	if (r->n_fixed)
		return fixed_cb(r, name, iv, cctx, hctx, enc);
	pthread_mutex_lock(&r->lock);
	if (enc && time(NULL) - r->cur.born >= (time_t)r->period_s) {
		struct ticket_key fresh;
		if (key_new(&fresh) == 0) {
			r->prev = r->cur;
			r->cur = fresh;
		}
		OPENSSL_cleanse(&fresh, sizeof(fresh));
	}
	if (enc) {
		k = r->cur;
		rc = 1;
	} else if (memcmp(name, r->cur.name, 16) == 0 && fresh(&r->cur, r->period_s)) {
		k = r->cur;
		rc = 1;
	} else if (r->prev.born && memcmp(name, r->prev.name, 16) == 0 && fresh(&r->prev, r->period_s)) {
		k = r->prev;
		rc = 2;
	}
	pthread_mutex_unlock(&r->lock);
	if (rc == 0)
		return 0;
	if (enc) {
		memcpy(name, k.name, 16);
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
			rc = -1;
	}
	if (rc > 0 && key_use(&k, iv, cctx, hctx, enc) < 0)
		rc = -1;
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

int zg_ticket_keys_attach(SSL_CTX *ctx, unsigned period_s)
{
	struct ticket_ring *r;

	pthread_once(&ring_once, ring_index_init);
	if (ring_index < 0 || !(r = OPENSSL_zalloc(sizeof(*r))))
		return -1;
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		OPENSSL_free(r);
		return -1;
	}
	r->period_s = period_s ? period_s : 1;
	if (key_new(&r->cur) < 0 || !SSL_CTX_set_ex_data(ctx, ring_index, r)) {
		ring_free(NULL, r, NULL, 0, 0, NULL);
		return -1;
	}
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	return 0;
}

/* Read exactly ZG_TICKET_KEY_FILE_LEN bytes from @path into @out. */
static int read_key_file(const char *path, unsigned char out[ZG_TICKET_KEY_FILE_LEN], char *why,
			 size_t cap)
{
	unsigned char extra;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc = -1;

	if (fd < 0) {
		snprintf(why, cap, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while (got < ZG_TICKET_KEY_FILE_LEN) {
		ssize_t n = read(fd, out + got, ZG_TICKET_KEY_FILE_LEN - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != ZG_TICKET_KEY_FILE_LEN || read(fd, &extra, 1) != 0)
		snprintf(why, cap, "%s: a ticket key file holds exactly %d bytes (make one with "
			 "'openssl rand 80 > FILE')", path, ZG_TICKET_KEY_FILE_LEN);
	else
		rc = 0;
	close(fd);
	return rc;
}

/* One HMAC-SHA256 of "zonegate ticket @what @route" under the file key. */
static int derive(const unsigned char *fk, const char *what, const char *route, unsigned char *out,
		  size_t len)
{
	unsigned char md[32];
	char label[128];
	size_t mdlen = 0;
	int n = snprintf(label, sizeof(label), "zonegate ticket %s %s", what, route);

	if (n < 0 || (size_t)n >= sizeof(label) ||
	    !EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, fk, ZG_TICKET_KEY_FILE_LEN,
		       (const unsigned char *)label,
		       (size_t)n, md, sizeof(md), &mdlen) || mdlen != sizeof(md))
		return -1;
	memcpy(out, md, len);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

int zg_ticket_keys_attach_files(SSL_CTX *ctx, const char *const *paths, unsigned n, const char *route,
				char *why, size_t cap)
{
	unsigned char fk[ZG_TICKET_KEY_FILE_LEN];
	struct ticket_ring *r;

	pthread_once(&ring_once, ring_index_init);
	if (n == 0 || n > sizeof(r->fixed) / sizeof(r->fixed[0])) {
		snprintf(why, cap, "between 1 and 4 ticket key files");
		return -1;
	}
	if (ring_index < 0 || !(r = OPENSSL_zalloc(sizeof(*r)))) {
		snprintf(why, cap, "out of memory");
		return -1;
	}
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		OPENSSL_free(r);
		snprintf(why, cap, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct ticket_key *k = &r->fixed[i];
		if (read_key_file(paths[i], fk, why, cap) < 0)
			goto fail;
		if (derive(fk, "name", route, k->name, sizeof(k->name)) < 0 ||
		    derive(fk, "aes", route, k->aes, sizeof(k->aes)) < 0 ||
		    derive(fk, "mac", route, k->mac, sizeof(k->mac)) < 0) {
			snprintf(why, cap, "%s: cannot derive the ticket keys", paths[i]);
			goto fail;
		}
		r->n_fixed++;
	}
	OPENSSL_cleanse(fk, sizeof(fk));
	if (!SSL_CTX_set_ex_data(ctx, ring_index, r)) {
		snprintf(why, cap, "out of memory");
		ring_free(NULL, r, NULL, 0, 0, NULL);
		return -1;
	}
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	return 0;
fail:
	OPENSSL_cleanse(fk, sizeof(fk));
	ring_free(NULL, r, NULL, 0, 0, NULL);
	return -1;
}
