/* errlist.c - see errlist.h. */
#include <stdarg.h>
#include <string.h>

#include "base/errlist.h"

void zg_errlist_init(struct zg_errlist *el)
{
	el->n = 0;
	el->dropped = 0;
}

void zg_errlist_add(struct zg_errlist *el, const char *file, int line, const char *key,
		    const char *fmt, ...)
{
	char *m;
	size_t cap = ZG_ERRMSG_MAX;
	int k;
	va_list ap;

	if (el->n >= ZG_ERRLIST_MAX) {
		el->dropped++;
		return;
	}
	m = el->msg[el->n++];
	if (line > 0)
		k = snprintf(m, cap, "%s:%d: ", file ? file : "-", line);
	else
		k = snprintf(m, cap, "%s: ", file ? file : "-");
	if (k < 0 || (size_t)k >= cap)
		return;
	m += k;
	cap -= (size_t)k;
	if (key && *key) {
		k = snprintf(m, cap, "%s: ", key);
		if (k < 0 || (size_t)k >= cap)
			return;
		m += k;
		cap -= (size_t)k;
	}
	va_start(ap, fmt);
	vsnprintf(m, cap, fmt, ap);
	va_end(ap);
}

void zg_errlist_print(const struct zg_errlist *el, FILE *out)
{
	for (size_t i = 0; i < el->n; i++)
		fprintf(out, "%s\n", el->msg[i]);
	if (el->dropped)
		fprintf(out, "(%zu more errors not shown)\n", el->dropped);
}
