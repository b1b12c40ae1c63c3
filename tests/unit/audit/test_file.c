/* test_audit_file.c - the hash-chained local file: continuation across
 * reopen, torn last line, and verify naming the first broken record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/file.h"

static int setup(void **state)
{
	char *path = malloc(64);
	int fd;

	snprintf(path, 64, "/tmp/zg-afile-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	*state = path;
	return 0;
}

static int teardown(void **state)
{
	unlink(*state);
	free(*state);
	return 0;
}

static void write_records(const char *path, uint64_t first, uint64_t n)
{
	char why[256] = "", xml[128];
	uint64_t last;
	struct zg_audit_file *f = zg_audit_file_open(path, &last, why, sizeof(why));

	if (!f)
		fail_msg("open: %s", why);
	assert_int_equal(last, first - 1);
	for (uint64_t i = first; i < first + n; i++) {
		snprintf(xml, sizeof(xml), "<AuditMessage>n=%llu</AuditMessage>", (unsigned long long)i);
		assert_int_equal(zg_audit_file_append(f, i, (int64_t)i * 1000000000, xml, strlen(xml)), 0);
	}
	assert_int_equal(zg_audit_file_sync(f), 0);
	zg_audit_file_close(f);
}

/* Reopen (expecting @last) and append @n records from @first. */
static void write_records2(const char *path, uint64_t last, uint64_t first, uint64_t n)
{
	char why[256] = "", xml[128];
	uint64_t got;
	struct zg_audit_file *f = zg_audit_file_open(path, &got, why, sizeof(why));

	assert_non_null(f);
	assert_int_equal(got, last);
	for (uint64_t i = first; i < first + n; i++) {
		snprintf(xml, sizeof(xml), "<AuditMessage>n=%llu</AuditMessage>", (unsigned long long)i);
		assert_int_equal(zg_audit_file_append(f, i, 1, xml, strlen(xml)), 0);
	}
	zg_audit_file_close(f);
}

static int verify(const char *path, struct zg_audit_verify_result *res)
{
	FILE *in = fopen(path, "r");
	int rc;

	assert_non_null(in);
	rc = zg_audit_file_verify(in, res);
	fclose(in);
	return rc;
}

/* Read the file, let @edit change it, write it back. */
static void rewrite(const char *path, void (*edit)(char *buf, size_t *len))
{
	char buf[8192];
	size_t n;
	FILE *f = fopen(path, "r");

	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	edit(buf, &n);
	f = fopen(path, "w");
	assert_int_equal(fwrite(buf, 1, n, f), n);
	fclose(f);
}

static char *line_start(char *buf, int line)
{
	char *p = buf;

	for (int i = 1; i < line; i++)
		p = strchr(p, '\n') + 1;
	return p;
}

static void intact_and_continued(void **state)
{
	struct zg_audit_verify_result res;

	write_records(*state, 1, 5);
	assert_int_equal(verify(*state, &res), 0);
	assert_int_equal(res.records, 5);
	write_records(*state, 6, 3); /* reopen continues the chain */
	assert_int_equal(verify(*state, &res), 0);
	assert_int_equal(res.records, 8);
}

static void flip_in_xml(char *buf, size_t *len)
{
	char *p = strstr(line_start(buf, 3), "n=3");
	(void)len;
	p[2] = '4';
}

static void flipped_byte_found(void **state)
{
	struct zg_audit_verify_result res;

	write_records(*state, 1, 6);
	rewrite(*state, flip_in_xml);
	assert_int_equal(verify(*state, &res), 1);
	assert_int_equal(res.broken_line, 3);
	assert_int_equal(res.broken_seq, 3);
	assert_int_equal(res.records, 2);
	assert_non_null(strstr(res.why, "hash mismatch"));
}

static void flip_in_hash(char *buf, size_t *len)
{
	char *p = line_start(buf, 4);
	(void)len;
	p[10] = p[10] == '0' ? '1' : '0';
}

static void flipped_hash_found(void **state)
{
	struct zg_audit_verify_result res;

	write_records(*state, 1, 6);
	rewrite(*state, flip_in_hash);
	assert_int_equal(verify(*state, &res), 1);
	assert_int_equal(res.broken_line, 4);
}

static void drop_line_2(char *buf, size_t *len)
{
	char *a = line_start(buf, 2), *b = line_start(buf, 3);
	memmove(a, b, (size_t)(buf + *len - b));
	*len -= (size_t)(b - a);
}

static void removed_record_found(void **state)
{
	struct zg_audit_verify_result res;

	write_records(*state, 1, 4);
	rewrite(*state, drop_line_2);
	assert_int_equal(verify(*state, &res), 1);
	assert_int_equal(res.broken_line, 2);
	assert_int_equal(res.broken_seq, 3);
}

static void gap_is_noted_not_broken(void **state)
{
	struct zg_audit_verify_result res;

	write_records(*state, 1, 3);
	write_records2(*state, 3, 5, 2); /* seq 4 never reached the file */
	assert_int_equal(verify(*state, &res), 0);
	assert_int_equal(res.records, 5);
	assert_int_equal(res.gaps, 1);
	assert_int_equal(res.first_gap_after, 3);
}

static void torn_tail(char *buf, size_t *len)
{
	(void)buf;
	*len -= 10; /* cut inside the last record */
}

static void torn_last_line_cut_on_open(void **state)
{
	struct zg_audit_verify_result res;

	write_records(*state, 1, 4);
	rewrite(*state, torn_tail);
	assert_int_equal(verify(*state, &res), 1); /* verify reports it as it is */
	assert_int_equal(res.broken_line, 4);
	write_records(*state, 4, 2); /* open cuts it; seq 4 is written again */
	assert_int_equal(verify(*state, &res), 0);
	assert_int_equal(res.records, 5);
}

static void garbage(char *buf, size_t *len)
{
	memcpy(line_start(buf, 2), "not a record\n", 13);
	(void)len;
}

static void malformed_found(void **state)
{
	struct zg_audit_verify_result res;
	char why[256];
	uint64_t last;
	struct zg_audit_file *f;

	write_records(*state, 1, 3);
	rewrite(*state, garbage);
	assert_int_equal(verify(*state, &res), 1);
	assert_int_equal(res.broken_line, 2);
	/* appending with LF inside the XML is refused */
	f = zg_audit_file_open(*state, &last, why, sizeof(why));
	assert_non_null(f);
	assert_int_equal(zg_audit_file_append(f, 9, 0, "a\nb", 3), -1);
	zg_audit_file_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(intact_and_continued, setup, teardown),
		cmocka_unit_test_setup_teardown(flipped_byte_found, setup, teardown),
		cmocka_unit_test_setup_teardown(flipped_hash_found, setup, teardown),
		cmocka_unit_test_setup_teardown(removed_record_found, setup, teardown),
		cmocka_unit_test_setup_teardown(torn_last_line_cut_on_open, setup, teardown),
		cmocka_unit_test_setup_teardown(gap_is_noted_not_broken, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_found, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
