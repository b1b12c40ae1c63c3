/* test_filemode.c - the owner/mode rule for files that decide trust (issue
 * 10 item 11), as a table over struct stat: no file needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/filemode.h"

static void table(void **state)
{
	static const struct {
		uid_t owner, euid;
		mode_t mode;
		int ok;
		const char *why;
	} rows[] = {
		{0, 0, S_IFREG | 0644, 0, ""},
		{0, 998, S_IFREG | 0640, 0, ""},          /* root:zonegate 0640, run as zonegate */
		{998, 998, S_IFREG | 0600, 0, ""},        /* the gateway's own file */
		{0, 0, S_IFDIR | 0700, 0, ""},
		{0, 0, S_IFREG | 0664, -1, "/f is group-writable (mode 0664)"},
		{0, 0, S_IFREG | 0646, -1, "/f is world-writable (mode 0646)"},
		{0, 0, S_IFDIR | 01777, -1, "/f is world-writable (mode 1777)"},
		{1000, 0, S_IFREG | 0644, -1, "/f is owned by uid 1000, not by root or uid 0"},
		{1000, 998, S_IFREG | 0600, -1, "run 'chown root /f'"},
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct stat st;

		memset(&st, 0, sizeof(st));
		st.st_uid = rows[i].owner;
		st.st_mode = rows[i].mode;
		why[0] = '\0';
		if (zg_file_mode_check(&st, rows[i].euid, "/f", why, sizeof(why)) != rows[i].ok ||
		    !strstr(why, rows[i].why))
			fail_msg("row %zu: '%s'", i, why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
