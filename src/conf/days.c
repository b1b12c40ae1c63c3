/* days.c - the value type of [admin] expiry_warn (conf_int.h): a list of
 * day counts ("30d 7d 1d"), each 1d..ZG_EXPIRY_WARN_DAYS_MAX, no duplicate,
 * at most kw->size of them, stored far to near whatever order they are
 * written in (ops/expiry.c walks them that way). Private to src/conf/.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf_int.h"

/* One "Nd" token of @n bytes at @s into @days. Returns 0, or -1 with why. */
static int parse_one_day(const char *s, size_t n, unsigned *days, char *why, size_t cap)
{
	unsigned long long v;

	if (n < 2 || s[n - 1] != 'd' || conf_parse_ull(s, n - 1, &v) < 0) {
		snprintf(why, cap, "'%.*s' is not a number of days (expected e.g. 30d)", (int)n, s);
		return -1;
	}
	if (v < 1 || v > ZG_EXPIRY_WARN_DAYS_MAX) {
		snprintf(why, cap, "%.*s is out of range (1d..%ud)", (int)n, s, ZG_EXPIRY_WARN_DAYS_MAX);
		return -1;
	}
	*days = (unsigned)v;
	return 0;
}

/* Insert @d into the descending @arr of @n; -1 if it is already there. */
static int insert_desc(unsigned *arr, unsigned n, unsigned d)
{
	unsigned i = n;

	for (unsigned k = 0; k < n; k++)
		if (arr[k] == d)
			return -1;
	while (i > 0 && arr[i - 1] < d) {
		arr[i] = arr[i - 1];
		i--;
	}
	arr[i] = d;
	return 0;
}

/* expiry_warn: blank- or comma-separated day counts into kw->off (an
 * unsigned[kw->size]) with the count at kw->aux_off; all or nothing. */
static int parse_days_list(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			   char *why, size_t cap)
{
	unsigned tmp[ZG_EXPIRY_WARN_MAX], n = 0;
	const char *p = val;

	(void)pc;
	for (;;) {
		size_t len;
		unsigned d;
		p += strspn(p, " \t,");
		if (!*p)
			break;
		len = strcspn(p, " \t,");
		if (parse_one_day(p, len, &d, why, cap) < 0)
			return -1;
		if (n >= kw->size || n >= ZG_EXPIRY_WARN_MAX) {
			snprintf(why, cap, "more than %zu thresholds", kw->size);
			return -1;
		}
		if (insert_desc(tmp, n, d) < 0) {
			snprintf(why, cap, "%ud given twice", d);
			return -1;
		}
		n++;
		p += len;
	}
	if (n == 0) {
		snprintf(why, cap, "no threshold (expected e.g. 30d 7d 1d)");
		return -1;
	}
	memcpy(conf_field_of(obj, kw->off), tmp, n * sizeof(tmp[0]));
	*(unsigned *)conf_field_of(obj, kw->aux_off) = n;
	return 0;
}

static void print_days_list(const struct kw *kw, const void *obj, FILE *out)
{
	const unsigned *arr = conf_cfield_of(obj, kw->off);
	unsigned n = *(const unsigned *)conf_cfield_of(obj, kw->aux_off);

	fprintf(out, "%s =", kw->name);
	for (unsigned i = 0; i < n; i++)
		fprintf(out, " %ud", arr[i]);
	fprintf(out, "\n");
}

const struct kw_type T_DAYS_LIST = {parse_days_list, print_days_list};
