/* out.c - see out.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/out.h"

/* Grow @o's buffer (doubling, up to ZG_OUT_MAX). 0, or -1 if it cannot. */
static int grow(struct zg_out *o)
{
	size_t cap = o->cap ? o->cap * 2 : 4096;
	char *p;

	if (o->cap >= ZG_OUT_MAX)
		return -1;
	p = realloc(o->p, cap);
	if (!p)
		return -1;
	o->p = p;
	o->cap = cap;
	return 0;
}

void zg_out_printf(struct zg_out *o, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (o->cut)
		return;
	for (;;) {
		size_t room = o->cap - o->n;
		if (o->p) {
			va_start(ap, fmt);
			k = vsnprintf(o->p + o->n, room, fmt, ap);
			va_end(ap);
			if (k < 0)
				break;
			if ((size_t)k < room) {
				o->n += (size_t)k;
				return;
			}
			o->p[o->n] = '\0'; /* drop the partial line */
		}
		if (grow(o) < 0)
			break;
	}
	o->cut = 1;
	if (o->p)
		o->p[o->n] = '\0';
}

void zg_out_free(struct zg_out *o)
{
	free(o->p);
	o->p = NULL;
	o->n = o->cap = 0;
	o->cut = 0;
}
