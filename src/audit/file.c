/* audit_file.c - see audit_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/hex.h"
#include "audit/file.h"
#include "audit/msg.h"
#include "base/log.h"

#define TAIL_READ (64u * 1024u) /* > the longest record we write */

struct zg_audit_file {
	int fd;
	uint8_t prev[ZG_AUDIT_HASH_LEN];
	char *line; /* scratch for one record */
	size_t line_cap;
};

int zg_audit_chain_hash(const uint8_t prev[ZG_AUDIT_HASH_LEN], const char *body, size_t n,
			uint8_t out[ZG_AUDIT_HASH_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned len = 0;
	int ok;

	if (!ctx)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, prev, ZG_AUDIT_HASH_LEN) == 1 &&
	     EVP_DigestUpdate(ctx, body, n) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1 &&
	     len == ZG_AUDIT_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* Split a record line (without LF) into hash and body and read its seq. */
static int parse_line(const char *line, size_t n, uint8_t hash[ZG_AUDIT_HASH_LEN], uint64_t *seq,
		      const char **body, size_t *body_len)
{
	uint64_t v = 0;
	size_t i = 2 * ZG_AUDIT_HASH_LEN + 1;

	if (n < i + 2 || line[i - 1] != ' ' || zg_hex_decode(line, ZG_AUDIT_HASH_LEN, hash) != 0)
		return -1;
	*body = line + i;
	*body_len = n - i;
	if (line[i] < '0' || line[i] > '9')
		return -1;
	for (; i < n && line[i] >= '0' && line[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	if (i >= n || line[i] != ' ')
		return -1;
	*seq = v;
	return 0;
}

/* Read the tail of the file: cut a torn last line, load the chain head. */
static int load_head(struct zg_audit_file *f, const char *path, uint64_t *last_seq, char *why,
		     size_t cap)
{
	struct stat st;
	char *buf = NULL;
	size_t n, end, start;
	off_t base;
	const char *body;
	size_t body_len;
	int rc = -1;

	if (fstat(f->fd, &st) != 0)
		goto io;
	if (st.st_size == 0)
		return 0;
	n = (size_t)(st.st_size < (off_t)TAIL_READ ? st.st_size : (off_t)TAIL_READ);
	base = st.st_size - (off_t)n;
	buf = malloc(n);
	if (!buf || pread(f->fd, buf, n, base) != (ssize_t)n)
		goto io;
	end = n;
	while (end > 0 && buf[end - 1] != '\n')
		end--;
	if (end < n) {
		if (end == 0 && base > 0) {
			snprintf(why, cap, "%s: last line longer than %u bytes", path, TAIL_READ);
			goto out;
		}
		if (ftruncate(f->fd, base + (off_t)end) != 0)
			goto io;
		zg_warn("event=audit_file_torn file=%s bytes=%zu action=truncated", path, n - end);
	}
	if (end == 0) {
		rc = 0;
		goto out;
	}
	start = end - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if ((start == 0 && base > 0) ||
	    parse_line(buf + start, end - 1 - start, f->prev, last_seq, &body, &body_len) != 0) {
		snprintf(why, cap,
			 "%s: last record unreadable; run `zonegate audit verify` and move the file away",
			 path);
		goto out;
	}
	rc = 0;
	goto out;
io:
	snprintf(why, cap, "%s: %s", path, strerror(errno ? errno : EIO));
out:
	free(buf);
	return rc;
}

struct zg_audit_file *zg_audit_file_open(const char *path, uint64_t *last_seq, char *why,
					 size_t cap)
{
	struct zg_audit_file *f = calloc(1, sizeof(*f));

	*last_seq = 0;
	if (!f) {
		snprintf(why, cap, "out of memory");
		return NULL;
	}
	f->line_cap = ZG_AUDIT_XML_MAX + 256;
	f->line = malloc(f->line_cap);
	f->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (!f->line || f->fd < 0) {
		snprintf(why, cap, "%s: %s", path, strerror(errno));
		goto fail;
	}
	/* one writer per file: two would break the hash chain */
	if (flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(why, cap, "%s: %s", path, errno == EWOULDBLOCK ?
			 "in use by another zonegate process (a running gateway?); the audit "
			 "file has one writer" : strerror(errno));
		goto fail;
	}
	if (load_head(f, path, last_seq, why, cap) != 0)
		goto fail;
	return f;
fail:
	zg_audit_file_close(f);
	return NULL;
}

int zg_audit_file_append(struct zg_audit_file *f, uint64_t seq, int64_t ts_ns, const char *xml,
			 size_t len)
{
	char ts[32];
	size_t hdr = 2 * ZG_AUDIT_HASH_LEN + 1, n, done = 0;
	uint8_t h[ZG_AUDIT_HASH_LEN];
	off_t end;
	int k;

	if (zg_audit_fmt_time(ts_ns, ts, sizeof(ts)) < 0 || memchr(xml, '\n', len))
		return -1;
	k = snprintf(f->line + hdr, f->line_cap - hdr, "%" PRIu64 " %s ", seq, ts);
	if (k < 0 || hdr + (size_t)k + len + 1 > f->line_cap)
		return -1;
	n = hdr + (size_t)k;
	memcpy(f->line + n, xml, len);
	n += len;
	if (zg_audit_chain_hash(f->prev, f->line + hdr, n - hdr, h) != 0)
		return -1;
	zg_hex_encode(h, ZG_AUDIT_HASH_LEN, f->line);
	f->line[hdr - 1] = ' ';
	f->line[n++] = '\n';
	end = lseek(f->fd, 0, SEEK_END);
	while (done < n) {
		ssize_t w = write(f->fd, f->line + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			/* no half line for the next record to follow: the chain stays
			 * verifiable (the record itself is lost from this file) */
			if (end >= 0 && ftruncate(f->fd, end) != 0)
				zg_err("event=audit_file_error op=truncate errno=%d", errno);
			return -1;
		}
		done += (size_t)w;
	}
	memcpy(f->prev, h, sizeof(h));
	return 0;
}

int zg_audit_file_sync(struct zg_audit_file *f)
{
	return fdatasync(f->fd);
}

void zg_audit_file_close(struct zg_audit_file *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f->line);
	free(f);
}

static int broken(struct zg_audit_verify_result *res, uint64_t line, uint64_t seq, const char *why)
{
	res->broken_line = line;
	res->broken_seq = seq;
	snprintf(res->why, sizeof(res->why), "%s", why);
	return 1;
}

int zg_audit_file_verify(FILE *in, struct zg_audit_verify_result *res)
{
	uint8_t prev[ZG_AUDIT_HASH_LEN] = {0}, stored[ZG_AUDIT_HASH_LEN], calc[ZG_AUDIT_HASH_LEN];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t lineno = 0, seq = 0, prev_seq = 0;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	while ((n = getline(&line, &cap, in)) > 0) {
		const char *body;
		size_t body_len;
		char why[96];

		lineno++;
		if ((size_t)n > ZG_AUDIT_LINE_MAX) {
			rc = broken(res, lineno, 0, "line too long");
			break;
		}
		if (line[n - 1] != '\n') {
			rc = broken(res, lineno, 0, "truncated record (no end of line)");
			break;
		}
		if (parse_line(line, (size_t)n - 1, stored, &seq, &body, &body_len) != 0) {
			rc = broken(res, lineno, 0, "malformed record");
			break;
		}
		if (zg_audit_chain_hash(prev, body, body_len, calc) != 0) {
			rc = -1;
			break;
		}
		if (memcmp(calc, stored, sizeof(calc)) != 0) {
			rc = broken(res, lineno, seq, "hash mismatch (record or its predecessor altered)");
			break;
		}
		if (lineno > 1 && seq <= prev_seq) {
			snprintf(why, sizeof(why), "sequence goes back: %" PRIu64 " after %" PRIu64, seq,
				 prev_seq);
			rc = broken(res, lineno, seq, why);
			break;
		}
		/* A gap with an intact chain is a record the file never got (a
		 * crash between the spool write and the file write): not tampering,
		 * which the chain would show, but worth telling. */
		if (lineno > 1 && seq != prev_seq + 1 && res->gaps++ == 0)
			res->first_gap_after = prev_seq;
		memcpy(prev, stored, sizeof(prev));
		prev_seq = seq;
		res->records++;
	}
	if (rc == 0 && ferror(in))
		rc = -1;
	free(line);
	return rc;
}
