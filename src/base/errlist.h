/* errlist.h - a bounded list of "file:line: key: message" errors.
 *
 * Configuration loading reports every error it finds, not just the first,
 * so each stage appends here and the caller prints the whole list.
 */
#ifndef ZG_ERRLIST_H
#define ZG_ERRLIST_H

#include <stddef.h>
#include <stdio.h>

#define ZG_ERRLIST_MAX 64
#define ZG_ERRMSG_MAX 512

struct zg_errlist {
	size_t n;       /* messages stored */
	size_t dropped; /* messages beyond ZG_ERRLIST_MAX, counted only */
	char msg[ZG_ERRLIST_MAX][ZG_ERRMSG_MAX];
};

void zg_errlist_init(struct zg_errlist *el);

/* Append "FILE:LINE: KEY: message". @line <= 0 omits the line, a NULL or
 * empty @key omits the key. */
void zg_errlist_add(struct zg_errlist *el, const char *file, int line, const char *key,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Print every message, one per line, then "N error(s)" if any were dropped. */
void zg_errlist_print(const struct zg_errlist *el, FILE *out);

#endif
