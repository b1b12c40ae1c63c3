/* util.c - the configuration loader's small helpers (conf_int.h): error
 * reporting, field access, ASCII character classes, decimal numbers, names,
 * host names and address literals. Private to src/conf/.
 */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "conf/conf_int.h"

void conf_perr(const struct pctx *pc, int line, const char *key, const char *fmt, ...)
{
	char msg[ZG_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zg_errlist_add(pc->errs, pc->file, line, key, "%s", msg);
}

void *conf_field_of(void *obj, size_t off)
{
	return (char *)obj + off;
}

const void *conf_cfield_of(const void *obj, size_t off)
{
	return (const char *)obj + off;
}

/* The value as it may appear in a message. */
const char *conf_shown(const struct kw *kw, const char *val)
{
	return (kw->flags & KW_SENSITIVE) ? "(hidden)" : val;
}

int conf_copy_str(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		return -1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

int conf_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int conf_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int conf_is_alnum(char c)
{
	return conf_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

char conf_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Decimal digits only (no sign, no blanks); saturates at ULLONG_MAX so that
 * a huge number is reported as out of range, not as malformed. */
int conf_parse_ull(const char *s, size_t n, unsigned long long *out)
{
	unsigned long long v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d;
		if (!conf_is_digit(s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		v = v > (ULLONG_MAX - d) / 10 ? ULLONG_MAX : v * 10 + d;
	}
	*out = v;
	return 0;
}

/* [A-Za-z0-9._-]{1,cap-1}: route and gateway names. */
int conf_check_name(const char *s, size_t cap, char *why, size_t wcap)
{
	size_t n = strlen(s);

	if (n == 0) {
		snprintf(why, wcap, "empty name (expected 1-%zu characters of A-Z a-z 0-9 . _ -)",
			 cap - 1);
		return -1;
	}
	if (n >= cap) {
		snprintf(why, wcap, "too long (max %zu characters)", cap - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!conf_is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') {
			snprintf(why, wcap, "'%s' has a character other than A-Z a-z 0-9 . _ -", s);
			return -1;
		}
	}
	return 0;
}

int conf_is_ipv4(const char *s)
{
	struct in_addr a;
	return inet_pton(AF_INET, s, &a) == 1;
}

int conf_is_ipv6(const char *s)
{
	struct in6_addr a;
	return inet_pton(AF_INET6, s, &a) == 1;
}
