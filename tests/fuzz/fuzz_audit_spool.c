/* fuzz_audit_spool.c - the audit spool reader and its record parser.
 *
 * Targets:
 * - the real reader: the input, written as the one segment of a spool
 *   directory (its size chooses the delivered mark in the state file),
 *   opened with zg_spool_open (the start-up scan, torn-tail cut and
 *   delivered position), then drained with zg_spool_peek/zg_spool_commit
 *   and walked with zg_spool_each_pending: every record handed out must be
 *   whole, and a drained spool must have nothing pending;
 * - zg_spool_parse() walked over the whole input the way the scan walks a
 *   segment (OK -> next frame, BAD -> resynchronise, SHORT -> stop),
 *   zg_spool_frame() re-framing every record found (the result must parse
 *   back to the same record), zg_audit_xml_escape() on each payload
 *   (the result must fit and hold no raw '<' or control byte), and
 *   zg_syslog_sendable(): a record it accepts must format as a syslog
 *   message.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/msg.h"
#include "audit/spool.h"
#include "audit/syslog.h"
#include "base/log.h"

static void check_escape(const uint8_t *p, size_t n)
{
	char in[512], out[512 * 6 + 1];
	size_t m = n < sizeof(in) - 1 ? n : sizeof(in) - 1;
	int k;

	memcpy(in, p, m);
	in[m] = '\0';
	k = zg_audit_xml_escape(out, sizeof(out), in);
	if (k < 0 || (size_t)k != strlen(out))
		abort();
	for (int i = 0; i < k; i++)
		if (out[i] == '<' || (unsigned char)out[i] < 0x20)
			abort();
}

static void check_reframe(const struct zg_spool_rec *r)
{
	static uint8_t buf[ZG_SPOOL_HDR + ZG_SPOOL_PAYLOAD_MAX];
	struct zg_spool_rec back;
	size_t used, n = zg_spool_frame(buf, sizeof(buf), r->seq, r->ts_ns, r->payload, r->len);

	if (n != ZG_SPOOL_HDR + (size_t)r->len)
		abort();
	if (zg_spool_parse(buf, n, &back, &used) != ZG_SPOOL_OK || used != n ||
	    back.seq != r->seq || back.ts_ns != r->ts_ns || back.len != r->len ||
	    memcmp(back.payload, r->payload, r->len) != 0)
		abort();
}

/* What the delivery thread calls sendable, the syslog formatter must carry
 * (with the longest hostname): else a record would be retried forever. */
static void check_sendable(const struct zg_spool_rec *r)
{
	static char out[ZG_AUDIT_XML_MAX + 512];
	char host[256];

	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (zg_syslog_sendable(r) &&
	    zg_syslog_format(out, sizeof(out), r->ts_ns, host, 4294967295u, r->seq,
			     (const char *)r->payload, r->len) < 0)
		abort();
}

static char spool_path[64];

/* Remove every file of the spool directory. */
static void empty_dir(void)
{
	DIR *d;
	struct dirent *e;

	d = opendir(spool_path);
	if (!d)
		abort();
	while ((e = readdir(d)) != NULL) {
		char p[sizeof(spool_path) + 256 + 2];
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", spool_path, e->d_name);
		if (unlink(p) != 0)
			abort();
	}
	closedir(d);
}

static void remove_dir(void)
{
	empty_dir();
	(void)rmdir(spool_path);
}

/* One spool directory per process, emptied before each input and removed
 * at exit. */
static const char *spool_dir(void)
{
	if (!spool_path[0]) {
		snprintf(spool_path, sizeof(spool_path), "/tmp/zg-fuzz-spool.XXXXXX");
		if (!mkdtemp(spool_path) || atexit(remove_dir) != 0)
			abort();
		zg_log_set_level(ZG_LOG_ERROR); /* damage is expected: no warn lines */
	}
	empty_dir();
	return spool_path;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n) || close(fd) != 0)
		abort();
}

static int count_pending(void *ctx, const struct zg_spool_rec *r)
{
	if (r->len > ZG_SPOOL_PAYLOAD_MAX)
		abort();
	++*(unsigned long *)ctx;
	return 0;
}

/* The input as a spool on disk, read by the real reader. */
static void reader(const uint8_t *data, size_t size)
{
	static struct zg_spool_batch b;
	struct zg_spool_report rep;
	const char *dir = spool_dir();
	char why[256], state[32];
	unsigned long pending = 0;
	struct zg_spool *s;

	/* the delivered mark (none, 1..4) follows from the size, so every input
	 * is a whole segment and corpus files stay plain spool segments */
	if (size % 5) {
		int n = snprintf(state, sizeof(state), "delivered %zu\n", size % 5);
		write_file(dir, "state", state, (size_t)n);
	}
	write_file(dir, "00000000000000000001.zgs", data, size);
	s = zg_spool_open(dir, 1u << 24, &rep, why, sizeof(why));
	if (!s)
		return;
	if (zg_spool_each_pending(s, 0, count_pending, &pending) < 0)
		abort();
	for (int i = 0; i < 10000; i++) {
		int n = zg_spool_peek(s, &b, 1u << 20, 256);
		if (n < 0)
			abort();
		if (n == 0)
			break;
		for (size_t k = 0; k < b.n; k++)
			if (b.rec[k].len > ZG_SPOOL_PAYLOAD_MAX || (b.rec[k].len && !b.rec[k].payload))
				abort();
		if (zg_spool_commit(s, &b, b.n) != 0)
			abort();
	}
	if (zg_spool_pending(s))
		abort(); /* drained, yet something is left */
	zg_spool_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	reader(data, size);

	while (off < size) {
		struct zg_spool_rec r;
		size_t used = 0;
		enum zg_spool_parse v = zg_spool_parse(data + off, size - off, &r, &used);

		if (v == ZG_SPOOL_SHORT)
			break;
		if (used == 0 || used > size - off)
			abort(); /* the reader would loop or overrun */
		if (v == ZG_SPOOL_OK) {
			if (r.payload != data + off + ZG_SPOOL_HDR || r.len > ZG_SPOOL_PAYLOAD_MAX)
				abort();
			check_reframe(&r);
			check_escape(r.payload, r.len);
			check_sendable(&r);
		}
		off += used;
	}
	return 0;
}
