/* load.c - reading a directory from its files: the JSON, the detached
 * Ed25519 signature (checked before the parser sees a byte) and the public
 * key; loading from a [directory] section and the file stamps that drive
 * reloads. The model itself is model.c. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "directory/directory.h"
#include "base/errlist.h"
#include "base/filemode.h"
#include "directory/model_int.h"

/* ---- signatures and files ---------------------------------------------- */

/* zg_directory_read_file; with @trusted, also refused when anyone but root
 * or us could change the file (the loader's files decide who may connect),
 * judged on the descriptor that is then read. */
static char *read_file(const char *path, size_t max, size_t *len, int trusted, char *why, size_t cap)
{
	char ebuf[128];
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		goto fail_errno;
	if (fstat(fd, &st) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		snprintf(why, cap, "%s: not a regular file of at most %zu bytes", path, max);
		goto fail;
	}
	if (trusted && zg_file_mode_check(&st, geteuid(), path, why, cap) < 0)
		goto fail;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(why, cap, "%s: out of memory", path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail_errno;
		if (n == 0)
			break; /* shrank while reading: use what is there */
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	*len = got;
	return buf;
fail_errno:
	snprintf(why, cap, "%s: %s", path, strerror_r(errno, ebuf, sizeof(ebuf)));
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

char *zg_directory_read_file(const char *path, size_t max, size_t *len, char *why, size_t cap)
{
	return read_file(path, max, len, 0, why, cap);
}

int zg_directory_decode_sig(const uint8_t *buf, size_t len, uint8_t sig[ZG_DIR_SIG_LEN])
{
	size_t a = 0, b = len;

	/* 64 bytes can only be the raw form: the base64 form is 88 */
	if (len == ZG_DIR_SIG_LEN) {
		memcpy(sig, buf, ZG_DIR_SIG_LEN);
		return 0;
	}
	while (a < b && isspace(buf[a]))
		a++;
	while (b > a && isspace(buf[b - 1]))
		b--;
	return zg_b64_decode_exact((const char *)buf + a, b - a, sig, ZG_DIR_SIG_LEN);
}

int zg_directory_verify_sig(const void *data, size_t len, const uint8_t *sig, size_t siglen,
			    EVP_PKEY *pub, char *why, size_t cap)
{
	EVP_MD_CTX *ctx = NULL;
	int rc = -1;

	if (!EVP_PKEY_is_a(pub, "ED25519")) {
		snprintf(why, cap, "public key is not an Ed25519 key");
		return -1;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) != 1) {
		snprintf(why, cap, "cannot set up Ed25519 verification");
		goto out;
	}
	if (EVP_DigestVerify(ctx, sig, siglen, data, len) != 1) {
		snprintf(why, cap, "signature does not match the directory and the public key");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int zg_directory_sign(const void *data, size_t len, EVP_PKEY *key, uint8_t sig[ZG_DIR_SIG_LEN],
		      char *why, size_t cap)
{
	EVP_MD_CTX *ctx = NULL;
	size_t siglen = ZG_DIR_SIG_LEN;
	int rc = -1;

	if (!EVP_PKEY_is_a(key, "ED25519")) {
		snprintf(why, cap, "signing key is not an Ed25519 key");
		return -1;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, data, len) != 1 || siglen != ZG_DIR_SIG_LEN) {
		snprintf(why, cap, "Ed25519 signing failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static EVP_PKEY *read_pubkey(const char *path, char *why, size_t cap)
{
	EVP_PKEY *pk = NULL;
	size_t len = 0;
	char *pem = read_file(path, 4096, &len, 1, why, cap);
	BIO *bio = pem ? BIO_new_mem_buf(pem, (int)len) : NULL;

	if (!bio) {
		if (pem)
			snprintf(why, cap, "%s: out of memory", path);
		free(pem);
		return NULL;
	}
	pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	free(pem);
	if (!pk)
		snprintf(why, cap, "%s: not a PEM public key", path);
	else if (!EVP_PKEY_is_a(pk, "ED25519")) {
		snprintf(why, cap, "%s: not an Ed25519 public key", path);
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

static enum zg_reason read_sig(const char *path, uint8_t sig[ZG_DIR_SIG_LEN], char *detail, size_t cap)
{
	size_t len = 0;
	char *buf;

	if (!path || !*path) {
		snprintf(detail, cap, "no signature file configured");
		return ZG_R_DIR_UNSIGNED;
	}
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		snprintf(detail, cap, "%s: signature file does not exist", path);
		return ZG_R_DIR_UNSIGNED;
	}
	buf = read_file(path, 4096, &len, 1, detail, cap);
	if (!buf)
		return ZG_R_DIR_UNREADABLE;
	if (len == 0) {
		free(buf);
		snprintf(detail, cap, "%s: signature file is empty", path);
		return ZG_R_DIR_UNSIGNED;
	}
	if (zg_directory_decode_sig((const uint8_t *)buf, len, sig) < 0) {
		free(buf);
		snprintf(detail, cap, "%s: not a 64-byte Ed25519 signature (raw or base64)", path);
		return ZG_R_DIR_BAD_SIGNATURE;
	}
	free(buf);
	return ZG_R_OK;
}

struct zg_directory *zg_directory_load_ex(const char *json_path, const char *sig_path,
					  const char *pubkey_path,
					  const struct zg_directory *previous, time_t now,
					  enum zg_reason *reason, char *why, size_t cap)
{
	char detail[400] = "";
	uint8_t sig[ZG_DIR_SIG_LEN];
	struct zg_directory *d = NULL;
	EVP_PKEY *pub = NULL;
	size_t len = 0;
	char *json;
	enum zg_reason r = ZG_R_DIR_UNREADABLE;

	json = read_file(json_path, ZG_DIR_FILE_MAX, &len, 1, detail, sizeof(detail));
	if (!json)
		goto out;
	r = read_sig(sig_path, sig, detail, sizeof(detail));
	if (r != ZG_R_OK)
		goto out;
	r = ZG_R_DIR_UNREADABLE;
	pub = read_pubkey(pubkey_path, detail, sizeof(detail));
	if (!pub)
		goto out;
	/* the signature is checked before the parser sees a byte */
	r = ZG_R_DIR_BAD_SIGNATURE;
	if (zg_directory_verify_sig(json, len, sig, sizeof(sig), pub, detail, sizeof(detail)) < 0) {
		size_t k = strlen(detail);
		snprintf(detail + k, sizeof(detail) - k, " (%s)", json_path);
		goto out;
	}
	d = zg_directory_parse(json, len, &r, why, cap);
	if (!d)
		goto out_why_set;
	r = zg_directory_check_fresh(d, previous, now, why, cap);
	if (r != ZG_R_OK) {
		zg_directory_unref(d);
		d = NULL;
		goto out_why_set;
	}
	goto out_why_set;
out:
	dir_set_why(why, cap, r, detail);
out_why_set:
	free(json);
	EVP_PKEY_free(pub);
	if (reason)
		*reason = r;
	return d;
}

struct zg_directory *zg_directory_load(const char *json_path, const char *sig_path,
				       const char *pubkey_path, const struct zg_directory *previous,
				       time_t now, char *why, size_t cap)
{
	return zg_directory_load_ex(json_path, sig_path, pubkey_path, previous, now, NULL, why, cap);
}

struct zg_directory *zg_directory_load_conf(const struct zg_conf_directory *cd,
					    const char *conf_path,
					    const struct zg_directory *previous, time_t now,
					    struct zg_errlist *errs)
{
	char why[600];
	struct zg_directory *d;

	if (!cd->file[0])
		return NULL;
	d = zg_directory_load(cd->file, cd->signature, cd->public_key, previous, now, why, sizeof(why));
	if (!d)
		zg_errlist_add(errs, conf_path, cd->line_file, "file", "%s", why);
	return d;
}

static void stamp_file(const char *path, uint64_t *dev, uint64_t *ino, uint64_t *size, int64_t *mtime)
{
	struct stat st;

	*dev = *ino = *size = 0;
	*mtime = 0;
	if (!path || !*path || stat(path, &st) < 0)
		return;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	*size = (uint64_t)st.st_size;
	*mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

int zg_directory_stamp(const struct zg_conf_directory *cd, const struct zg_dir_stamp *prev,
		       struct zg_dir_stamp *out)
{
	const char *paths[2] = {cd->file, cd->signature};

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 2; i++)
		stamp_file(paths[i], &out->f[i].dev, &out->f[i].ino, &out->f[i].size, &out->f[i].mtime_ns);
	return !prev || memcmp(prev, out, sizeof(*out)) != 0;
}
