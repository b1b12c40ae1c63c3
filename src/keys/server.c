/* server.c - the key process: see keys.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base/exit.h"
#include "base/log.h"
#include "keys/keys.h"

int zg_keys_table_load(struct zg_keys_table *t, char *const *paths, unsigned n, char *why, size_t cap)
{
	memset(t, 0, sizeof(*t));
	if (n > ZG_KEYS_MAX) {
		snprintf(why, cap, "more than %d keys", ZG_KEYS_MAX);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		FILE *f = fopen(paths[i], "r");
		if (!f) {
			snprintf(why, cap, "%s: %s", paths[i], strerror(errno));
			goto fail;
		}
		t->key[i] = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		t->n = i + 1;
		if (!t->key[i]) {
			char e[160];
			ERR_error_string_n(ERR_get_error(), e, sizeof(e));
			ERR_clear_error();
			snprintf(why, cap, "%s: %s", paths[i], e);
			goto fail;
		}
	}
	return 0;
fail:
	zg_keys_table_free(t);
	return -1;
}

void zg_keys_table_free(struct zg_keys_table *t)
{
	for (unsigned i = 0; i < t->n; i++)
		EVP_PKEY_free(t->key[i]); /* OpenSSL wipes the private parts */
	memset(t, 0, sizeof(*t));
}

/* The digest of @md, or NULL for a value outside the protocol. */
static const EVP_MD *md_of(uint32_t md)
{
	switch (md) {
	case ZG_KEYS_MD_SHA256:
		return EVP_sha256();
	case ZG_KEYS_MD_SHA384:
		return EVP_sha384();
	case ZG_KEYS_MD_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* Whether @q is a request the key process may act on: right magic and
 * operation, a known key, and for a signature a padding the key's type
 * supports and a digest of exactly the digest's size. */
static enum zg_keys_status judge(const struct zg_keys_table *t, const struct zg_keys_req *q)
{
	const EVP_MD *md;
	int rsa;

	if (q->magic != ZG_KEYS_MAGIC || (q->op != ZG_KEYS_OP_SIGN && q->op != ZG_KEYS_OP_PUBKEY))
		return ZG_KEYS_ST_MALFORMED;
	if (q->key_id >= t->n || !t->key[q->key_id])
		return ZG_KEYS_ST_UNKNOWN_KEY;
	if (q->op == ZG_KEYS_OP_PUBKEY)
		return ZG_KEYS_ST_OK;
	md = md_of(q->md);
	if (!md || q->digest_len != (uint32_t)EVP_MD_get_size(md))
		return ZG_KEYS_ST_MALFORMED;
	rsa = EVP_PKEY_is_a(t->key[q->key_id], "RSA");
	if (q->pad == ZG_KEYS_PAD_ECDSA)
		return EVP_PKEY_is_a(t->key[q->key_id], "EC") ? ZG_KEYS_ST_OK : ZG_KEYS_ST_MALFORMED;
	if (q->pad == ZG_KEYS_PAD_PKCS1)
		return rsa ? ZG_KEYS_ST_OK : ZG_KEYS_ST_MALFORMED;
	if (q->pad == ZG_KEYS_PAD_PSS && rsa && q->saltlen >= -1 && q->saltlen <= ZG_KEYS_DIGEST_MAX)
		return ZG_KEYS_ST_OK;
	return ZG_KEYS_ST_MALFORMED;
}

/* Sign the judged request @q into @resp. */
static enum zg_keys_status sign(const struct zg_keys_table *t, const struct zg_keys_req *q,
				struct zg_keys_resp *resp)
{
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, t->key[q->key_id], NULL);
	size_t len = sizeof(resp->data);
	enum zg_keys_status st = ZG_KEYS_ST_FAILED;

	if (!pctx || EVP_PKEY_sign_init(pctx) <= 0 || EVP_PKEY_CTX_set_signature_md(pctx, md_of(q->md)) <= 0)
		goto out;
	if (q->pad == ZG_KEYS_PAD_PKCS1 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
		goto out;
	if (q->pad == ZG_KEYS_PAD_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md_of(q->md)) <= 0 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, q->saltlen) <= 0))
		goto out;
	if (EVP_PKEY_sign(pctx, resp->data, &len, q->digest, q->digest_len) <= 0)
		goto out;
	resp->len = (uint32_t)len;
	st = ZG_KEYS_ST_OK;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(pctx);
	return st;
}

/* The public half of key @id as DER SubjectPublicKeyInfo into @resp. */
static enum zg_keys_status pubkey(const struct zg_keys_table *t, uint32_t id, struct zg_keys_resp *resp)
{
	int n = i2d_PUBKEY(t->key[id], NULL);
	unsigned char *p = resp->data;

	if (n <= 0 || (size_t)n > sizeof(resp->data) || i2d_PUBKEY(t->key[id], &p) != n) {
		ERR_clear_error();
		return ZG_KEYS_ST_FAILED;
	}
	resp->len = (uint32_t)n;
	return ZG_KEYS_ST_OK;
}

void zg_keys_handle(const struct zg_keys_table *t, const void *req, size_t len, struct zg_keys_resp *resp)
{
	struct zg_keys_req q;

	memset(resp, 0, sizeof(*resp));
	resp->magic = ZG_KEYS_MAGIC;
	if (len != sizeof(q)) {
		resp->status = ZG_KEYS_ST_MALFORMED;
		return;
	}
	memcpy(&q, req, sizeof(q));
	resp->status = judge(t, &q);
	if (resp->status != ZG_KEYS_ST_OK)
		return;
	resp->status = q.op == ZG_KEYS_OP_SIGN ? sign(t, &q, resp) : pubkey(t, q.key_id, resp);
}

/* Send @resp on @fd; -1 if the gateway is gone. */
static int reply(int fd, const struct zg_keys_resp *resp)
{
	ssize_t w;

	do
		w = send(fd, resp, sizeof(*resp), MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w == (ssize_t)sizeof(*resp) ? 0 : -1;
}

/* Answer requests until the gateway closes @fd. */
static int serve_loop(int fd, const struct zg_keys_table *t, struct zg_keys_resp *resp)
{
	union {
		struct zg_keys_req q;
		unsigned char raw[sizeof(struct zg_keys_req) + 1];
	} in;

	for (;;) {
		/* MSG_TRUNC: the message's real length, so an oversized one is
		 * refused, not read as its first bytes */
		ssize_t r = recv(fd, in.raw, sizeof(in.raw), MSG_TRUNC);
		if (r == 0)
			return ZG_EXIT_OK;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ZG_EXIT_RUNTIME;
		zg_keys_handle(t, in.raw, (size_t)r > sizeof(in.raw) ? 0 : (size_t)r, resp);
		OPENSSL_cleanse(in.raw, sizeof(in.raw));
		if (reply(fd, resp) < 0)
			return ZG_EXIT_OK;
	}
}

int zg_keys_serve(int fd, char *const *paths, unsigned n)
{
	struct zg_keys_table t;
	struct zg_keys_resp *resp = calloc(1, sizeof(*resp));
	char why[ZG_KEYS_DATA_MAX - 1];
	int rc = ZG_EXIT_RUNTIME;

	/* no core dump, no ptrace by the gateway's uid: the keys stay here */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (!resp)
		return rc;
	resp->magic = ZG_KEYS_MAGIC;
	if (zg_keys_table_load(&t, paths, n, why, sizeof(why)) < 0) {
		resp->status = ZG_KEYS_ST_LOAD;
		resp->len = (uint32_t)snprintf((char *)resp->data, sizeof(resp->data), "%s", why);
		(void)reply(fd, resp);
		free(resp);
		return ZG_EXIT_CONFIG;
	}
	resp->status = ZG_KEYS_ST_OK;
	if (reply(fd, resp) == 0)
		rc = serve_loop(fd, &t, resp);
	zg_keys_table_free(&t);
	free(resp);
	return rc;
}

int zg_cmd_key_process(int argc, char **argv)
{
	char *end;
	long fd;

	if (argc < 2 || argc - 2 > ZG_KEYS_MAX) {
		fprintf(stderr, "zonegate: __key-process is started by `zonegate run` only\n");
		return ZG_EXIT_USAGE;
	}
	fd = strtol(argv[1], &end, 10);
	if (*end || fd < 0 || fd > 1024)
		return ZG_EXIT_USAGE;
	return zg_keys_serve((int)fd, argv + 2, (unsigned)(argc - 2));
}
