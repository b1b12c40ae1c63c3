/* fuzz_conf.c - fuzz target: zg_conf_parse_flags() with
 * ZG_CONF_NO_FILE_CHECKS (no I/O), zg_conf_print() and zg_conf_free().
 *
 * Besides memory safety it checks one property: a configuration that
 * parses prints as a file that parses again and prints identically, so
 * `zonegate check` output can always be pasted back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print_conf(const struct zg_conf *c)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (!f)
		abort();
	zg_conf_print(c, f);
	if (fclose(f) != 0)
		abort();
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zg_errlist *el;
	struct zg_conf *c, *c2;
	char *text, *p1, *p2;

	if (size > 256 * 1024)
		return 0;
	el = malloc(sizeof(*el));
	text = malloc(size + 1);
	if (!el || !text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0'; /* the loader refuses NUL bytes before parsing */
	zg_errlist_init(el);
	c = zg_conf_parse_flags(text, "fuzz.conf", ZG_CONF_NO_FILE_CHECKS, el);
	if ((c == NULL) != (el->n > 0))
		abort(); /* success exactly when no error was reported */
	if (c) {
		p1 = print_conf(c);
		zg_errlist_init(el);
		c2 = zg_conf_parse_flags(p1, "fuzz.conf", ZG_CONF_NO_FILE_CHECKS, el);
		if (!c2) {
			fprintf(stderr, "printed configuration does not parse:\n%s\n", p1);
			zg_errlist_print(el, stderr);
			abort();
		}
		p2 = print_conf(c2);
		if (strcmp(p1, p2) != 0) {
			fprintf(stderr, "print is not stable:\n%s\n---\n%s\n", p1, p2);
			abort();
		}
		free(p2);
		free(p1);
		zg_conf_free(c2);
	}
	zg_conf_free(c);
	free(text);
	free(el);
	return 0;
}
