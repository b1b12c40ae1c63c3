/* test_audit_spool.c - spool framing, replay after a "crash", torn and
 * damaged records, full spool and drop-oldest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/spool.h"

static void rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[600];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	char *dir = malloc(64);

	snprintf(dir, 64, "/tmp/zg-spool-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	*state = dir;
	return 0;
}

static int teardown(void **state)
{
	rm_rf(*state);
	free(*state);
	return 0;
}

static struct zg_spool *open_spool(const char *dir, uint64_t max, struct zg_spool_report *rep)
{
	char why[256] = "";
	struct zg_spool *s = zg_spool_open(dir, max, rep, why, sizeof(why));

	if (!s)
		fail_msg("open: %s", why);
	return s;
}

static void payload(char *buf, size_t cap, uint64_t seq)
{
	snprintf(buf, cap, "<AuditMessage>record %llu %s</AuditMessage>", (unsigned long long)seq,
		 "padding padding padding padding padding padding padding padding padding");
}

static void append_n(struct zg_spool *s, uint64_t from, uint64_t n)
{
	char p[256];

	for (uint64_t i = from; i < from + n; i++) {
		payload(p, sizeof(p), i);
		assert_int_equal(zg_spool_append(s, i, (int64_t)i * 1000, p, (uint32_t)strlen(p)), 0);
	}
	assert_int_equal(zg_spool_sync(s), 0);
}

/* Peek and commit everything; check the sequence numbers come in order
 * from @first, skipping those in @skip (0-terminated). Returns the count. */
static uint64_t drain(struct zg_spool *s, uint64_t first, const uint64_t *skip)
{
	struct zg_spool_batch *b = malloc(sizeof(*b));
	uint64_t want = first, got = 0;
	char p[256];
	int n;

	while ((n = zg_spool_peek(s, b, 4096, 10)) > 0) {
		for (int i = 0; i < n; i++) {
			while (skip && *skip && *skip == want) {
				skip++;
				want++;
			}
			assert_int_equal(b->rec[i].seq, want);
			assert_int_equal(b->rec[i].ts_ns, (int64_t)want * 1000);
			payload(p, sizeof(p), want);
			assert_int_equal(b->rec[i].len, strlen(p));
			assert_memory_equal(b->rec[i].payload, p, b->rec[i].len);
			want++;
			got++;
		}
		assert_int_equal(zg_spool_commit(s, b, b->n), 0);
	}
	assert_int_equal(n, 0);
	free(b);
	return got;
}

static void frame_roundtrip(void **state)
{
	uint8_t buf[256];
	struct zg_spool_rec r;
	size_t used, n;

	(void)state;
	n = zg_spool_frame(buf, sizeof(buf), 7, -3, "hello", 5);
	assert_int_equal(n, ZG_SPOOL_HDR + 5);
	assert_int_equal(zg_spool_parse(buf, n, &r, &used), ZG_SPOOL_OK);
	assert_int_equal(used, n);
	assert_int_equal(r.seq, 7);
	assert_int_equal(r.ts_ns, -3);
	assert_memory_equal(r.payload, "hello", 5);
	/* every proper prefix is SHORT, never OK or a crash */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(zg_spool_parse(buf, k, &r, &used), ZG_SPOOL_SHORT);
	/* every single flipped bit is detected */
	for (size_t k = 0; k < n * 8; k++) {
		buf[k / 8] ^= (uint8_t)(1u << (k % 8));
		assert_int_not_equal(zg_spool_parse(buf, n, &r, &used), ZG_SPOOL_OK);
		buf[k / 8] ^= (uint8_t)(1u << (k % 8));
	}
	assert_int_equal(zg_spool_frame(buf, 10, 1, 1, "x", 1), 0);
	/* CRC-32C check value */
	assert_int_equal(zg_crc32c(0, "123456789", 9), 0xe3069283u);
}

static void parse_resyncs(void **state)
{
	uint8_t buf[512];
	struct zg_spool_rec r;
	size_t used, a, b;

	(void)state;
	a = zg_spool_frame(buf, sizeof(buf), 1, 1, "first", 5);
	b = zg_spool_frame(buf + a, sizeof(buf) - a, 2, 2, "second", 6);
	buf[ZG_SPOOL_HDR + 1] ^= 0xff; /* damage the first payload */
	assert_int_equal(zg_spool_parse(buf, a + b, &r, &used), ZG_SPOOL_BAD);
	assert_int_equal(used, a);
	assert_int_equal(zg_spool_parse(buf + used, a + b - used, &r, &used), ZG_SPOOL_OK);
	assert_int_equal(r.seq, 2);
	/* an absurd length is damage, not a request to wait for 4 GB */
	memcpy(buf, "ZGS1\xff\xff\xff\xff", 8);
	assert_int_equal(zg_spool_parse(buf, a + b, &r, &used), ZG_SPOOL_BAD);
	/* garbage with no magic at all is skipped whole */
	memset(buf, 'x', 100);
	assert_int_equal(zg_spool_parse(buf, 100, &r, &used), ZG_SPOOL_BAD);
	assert_int_equal(used, 100);
}

static void replay_after_crash(void **state)
{
	struct zg_spool_report rep;
	struct zg_spool *s = open_spool(*state, 1 << 20, &rep);
	struct zg_spool_batch *b = malloc(sizeof(*b));

	assert_int_equal(rep.records, 0);
	append_n(s, 1, 50);
	/* deliver the first 10, then "crash" (close without further commits) */
	assert_int_equal(zg_spool_peek(s, b, 1 << 20, 10), 10);
	assert_int_equal(zg_spool_commit(s, b, b->n), 0);
	/* a batch of 8 of which the collector confirmed the first 3 */
	assert_int_equal(zg_spool_peek(s, b, 1 << 20, 8), 8);
	assert_int_equal(b->rec[0].seq, 11);
	assert_int_equal(zg_spool_commit(s, b, 3), 0);
	assert_int_equal(zg_spool_delivered(s), 13);
	assert_int_equal(zg_spool_commit(s, b, 9), -1);
	assert_int_equal(zg_spool_peek(s, b, 1 << 20, 5), 5); /* sent, never confirmed */
	assert_int_equal(b->rec[0].seq, 14);
	zg_spool_close(s);
	free(b);

	s = open_spool(*state, 1 << 20, &rep);
	assert_int_equal(rep.delivered, 13);
	assert_int_equal(rep.pending, 37);
	assert_int_equal(rep.last_seq, 50);
	assert_int_equal(drain(s, 14, NULL), 37);
	assert_false(zg_spool_pending(s));
	zg_spool_close(s);

	s = open_spool(*state, 1 << 20, &rep);
	assert_int_equal(rep.pending, 0);
	assert_int_equal(rep.last_seq, 50);
	zg_spool_close(s);
}

static char *newest_segment(const char *dir, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char best[256] = "";

	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".zgs") && strcmp(e->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", e->d_name);
	closedir(d);
	snprintf(out, cap, "%s/%s", dir, best);
	return out;
}

static void torn_tail_cut(void **state)
{
	struct zg_spool_report rep;
	struct zg_spool *s = open_spool(*state, 1 << 20, &rep);
	char path[600];
	int fd;

	append_n(s, 1, 20);
	zg_spool_close(s);
	/* a crash in the middle of the 21st append */
	fd = open(newest_segment(*state, path, sizeof(path)), O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "ZGS1\0\0\0\x40\0\0\0", 11), 11);
	close(fd);

	s = open_spool(*state, 1 << 20, &rep);
	assert_int_equal(rep.torn, 11);
	assert_int_equal(rep.corrupt, 0);
	assert_int_equal(rep.pending, 20);
	append_n(s, 21, 5); /* appends continue on a frame boundary */
	assert_int_equal(drain(s, 1, NULL), 25);
	zg_spool_close(s);
}

static void damaged_record_skipped(void **state)
{
	struct zg_spool_report rep;
	struct zg_spool *s = open_spool(*state, 1 << 20, &rep);
	static const uint64_t skip[] = {6, 0};
	char path[600], p[256];
	long off = 0;
	int fd;

	append_n(s, 1, 12);
	zg_spool_close(s);
	/* flip one payload byte of record 6 */
	for (uint64_t i = 1; i < 6; i++) {
		payload(p, sizeof(p), i);
		off += ZG_SPOOL_HDR + (long)strlen(p);
	}
	fd = open(newest_segment(*state, path, sizeof(path)), O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "#", 1, off + ZG_SPOOL_HDR + 3), 1);
	close(fd);

	s = open_spool(*state, 1 << 20, &rep);
	assert_int_equal(rep.corrupt, 1);
	assert_int_equal(rep.pending, 11);
	assert_int_equal(drain(s, 1, skip), 11);
	assert_int_equal(zg_spool_corrupt(s), 2); /* once at open, once when read */
	zg_spool_close(s);
}

/* Records at or below the delivered mark beyond the reader (a restored
 * segment, a foreign spool): once the reader has passed the deliverable
 * ones, nothing is pending - or the delivery thread would wake for them
 * forever and find nothing to send (issue 10, item 12). */
static void delivered_beyond_cursor_not_pending(void **state)
{
	struct zg_spool_report rep;
	struct zg_spool_batch *b = malloc(sizeof(*b));
	struct zg_spool *s = open_spool(*state, 1 << 20, &rep);
	char path[600];
	FILE *st;

	append_n(s, 11, 1);
	append_n(s, 3, 2);
	zg_spool_close(s);
	snprintf(path, sizeof(path), "%s/state", (char *)*state);
	st = fopen(path, "w");
	assert_non_null(st);
	fprintf(st, "delivered 10\n");
	fclose(st);

	s = open_spool(*state, 1 << 20, &rep);
	assert_int_equal(rep.pending, 1);
	/* a full batch ends right after 11, before the stale records */
	assert_int_equal(zg_spool_peek(s, b, 4096, 1), 1);
	assert_int_equal(b->rec[0].seq, 11);
	assert_int_equal(zg_spool_commit(s, b, 1), 0);
	assert_int_equal(zg_spool_peek(s, b, 4096, 10), 0);
	assert_false(zg_spool_pending(s));
	zg_spool_close(s);
	free(b);
}

static void full_refuses_then_drop_oldest(void **state)
{
	struct zg_spool_report rep;
	const uint64_t max = 256 * 1024; /* segments of 64 KiB */
	struct zg_spool *s = open_spool(*state, max, &rep);
	char p[256];
	uint64_t seq = 1;
	long dropped;

	payload(p, sizeof(p), 1);
	while (!zg_spool_full(s, (uint32_t)strlen(p)))
		append_n(s, seq++, 1);
	assert_true(zg_spool_bytes(s) <= max);
	payload(p, sizeof(p), seq);
	assert_int_equal(zg_spool_append(s, seq, 0, p, (uint32_t)strlen(p)), -1);
	dropped = zg_spool_drop_oldest(s);
	assert_true(dropped > 100);
	assert_int_equal(zg_spool_delivered(s), (uint64_t)dropped);
	assert_false(zg_spool_full(s, (uint32_t)strlen(p)));
	append_n(s, seq, 1);
	/* what is left comes out in order, starting after the dropped ones */
	assert_int_equal(drain(s, (uint64_t)dropped + 1, NULL), seq - (uint64_t)dropped);
	assert_true(zg_spool_bytes(s) < 70 * 1024);
	zg_spool_close(s);
}

static void bad_dir(void **state)
{
	struct zg_spool_report rep;
	char why[256] = "";

	(void)state;
	assert_null(zg_spool_open("/proc/nonexistent/spool", 1 << 20, &rep, why, sizeof(why)));
	assert_true(why[0] != '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frame_roundtrip),
		cmocka_unit_test(parse_resyncs),
		cmocka_unit_test_setup_teardown(replay_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(torn_tail_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_record_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(full_refuses_then_drop_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(delivered_beyond_cursor_not_pending, setup, teardown),
		cmocka_unit_test(bad_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
