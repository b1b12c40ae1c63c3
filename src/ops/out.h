/* out.h - a bounded, growing text buffer for the control plane's answers
 * (ctl.c) and the metrics exposition (metrics.c). */
#ifndef ZG_OUT_H
#define ZG_OUT_H

#include <stddef.h>

#define ZG_OUT_MAX (4u << 20) /* an answer larger than this is cut */

struct zg_out {
	char *p;   /* NUL-terminated text, malloc'd; NULL while empty */
	size_t n, cap;
	int cut;   /* something did not fit (ZG_OUT_MAX or out of memory) */
};

/* Append to @o like printf; at ZG_OUT_MAX or out of memory the text stops
 * there and o->cut is set. */
void zg_out_printf(struct zg_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Free the text; @o may be reused. */
void zg_out_free(struct zg_out *o);

#endif
