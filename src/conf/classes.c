/* classes.c - [class NAME] and [link]: their value types, the add() of
 * class sections, the cross-key rules and defaults (conf_int.h). The
 * values themselves are parsed by shape/rate.c, which the data path and
 * its tests share. Private to src/conf/.
 */
#include <stdio.h>
#include <string.h>

#include "conf/conf_int.h"

/* ---- value types ---------------------------------------------------------- */

/* A rate with its unit into a uint64_t of bit/s (shape/rate.c). */
static int parse_rate(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	(void)pc;
	return zg_rate_parse(val, strlen(val), (uint64_t *)conf_field_of(obj, kw->off), why, cap);
}

static void print_rate(const struct kw *kw, const void *obj, FILE *out)
{
	uint64_t bps = *(const uint64_t *)conf_cfield_of(obj, kw->off);
	char buf[32];

	if (!bps) {
		fprintf(out, "; %s not set\n", kw->name);
		return;
	}
	zg_rate_format(bps, buf, sizeof(buf));
	fprintf(out, "%s = %s\n", kw->name, buf);
}

/* A DSCP name or number into an int (ZG_DSCP_UNSET until given). */
static int parse_dscp(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	(void)pc;
	return zg_dscp_parse(val, strlen(val), (int *)conf_field_of(obj, kw->off), why, cap);
}

static void print_dscp(const struct kw *kw, const void *obj, FILE *out)
{
	int d = *(const int *)conf_cfield_of(obj, kw->off);
	const char *name = zg_dscp_name(d);

	if (d == ZG_DSCP_UNSET)
		fprintf(out, "; %s not set (by priority)\n", kw->name);
	else if (name && strcmp(name, "default") != 0)
		fprintf(out, "%s = %s\n", kw->name, name);
	else
		fprintf(out, "%s = %d\n", kw->name, d);
}

/* windows: one or more "HH:MM-HH:MM rate=R [ceil=R]" separated by commas,
 * none overlapping another. */
static int parse_windows(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			 char *why, size_t cap)
{
	struct zg_conf_class *c = obj;
	const char *p = val;

	(void)kw;
	(void)pc;
	c->n_windows = 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		struct zg_shape_window w;
		if (c->n_windows == ZG_WINDOWS_MAX) {
			snprintf(why, cap, "more than %d windows", ZG_WINDOWS_MAX);
			return -1;
		}
		if (zg_window_parse(p, n, &w, why, cap) < 0)
			return -1;
		for (unsigned i = 0; i < c->n_windows; i++) {
			if (zg_windows_overlap(&c->windows[i], &w)) {
				snprintf(why, cap, "window %u overlaps window %u", c->n_windows + 1, i + 1);
				return -1;
			}
		}
		c->windows[c->n_windows++] = w;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* "HH:MM[:SS]" of @s seconds since midnight. */
static void fmt_tod(uint32_t s, char *out, size_t cap)
{
	if (s % 60)
		snprintf(out, cap, "%02u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(out, cap, "%02u:%02u", s / 3600, s / 60 % 60);
}

static void print_windows(const struct kw *kw, const void *obj, FILE *out)
{
	const struct zg_conf_class *c = obj;

	if (!c->n_windows) {
		fprintf(out, "; %s not set\n", kw->name);
		return;
	}
	fprintf(out, "%s = ", kw->name);
	for (unsigned i = 0; i < c->n_windows; i++) {
		const struct zg_shape_window *w = &c->windows[i];
		char a[16], b[16], r[32], k[32];
		fmt_tod(w->start_s, a, sizeof(a));
		fmt_tod(w->end_s, b, sizeof(b));
		zg_rate_format(w->rate_bps, r, sizeof(r));
		fprintf(out, "%s%s-%s rate=%s", i ? ", " : "", a, b, r);
		if (w->ceil_bps) {
			zg_rate_format(w->ceil_bps, k, sizeof(k));
			fprintf(out, " ceil=%s", k);
		}
	}
	fputc('\n', out);
}

const struct kw_type T_RATE = {parse_rate, print_rate};
const struct kw_type T_DSCP = {parse_dscp, print_dscp};
const struct kw_type T_WINDOWS = {parse_windows, print_windows};

/* ---- sections ------------------------------------------------------------- */

int class_add(struct pctx *pc, const char *arg, int line, unsigned *idx)
{
	struct zg_conf *c = pc->conf;
	char why[WHY_MAX];

	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *o = &pc->inst[i];
		if (o->def->add == class_add && strcmp(o->arg, arg) == 0) {
			conf_perr(pc, line, NULL, "[class %s]: class name given twice (first at line %d)",
				  arg, o->line);
			return -1;
		}
	}
	if (conf_check_name(arg, ZG_NAME_MAX, why, sizeof(why)) < 0)
		conf_perr(pc, line, NULL, "[class %s]: bad class name: %s", arg, why);
	if (c->n_classes >= ZG_CLASSES_MAX) {
		conf_perr(pc, line, NULL, "[class %s]: too many classes (max %d)", arg, ZG_CLASSES_MAX);
		return -1;
	}
	*idx = c->n_classes++;
	memset(&c->classes[*idx], 0, sizeof(c->classes[*idx]));
	snprintf(c->classes[*idx].name, sizeof(c->classes[*idx].name), "%s", arg);
	c->classes[*idx].line = line;
	c->classes[*idx].dscp = ZG_DSCP_UNSET;
	return 0;
}

/* ---- rules ---------------------------------------------------------------- */

/* The class called @name in @c, or NULL. */
static const struct zg_conf_class *class_named(const struct zg_conf *c, const char *name)
{
	for (unsigned i = 0; i < c->n_classes; i++)
		if (strcmp(c->classes[i].name, name) == 0)
			return &c->classes[i];
	return NULL;
}

/* The sum of the guaranteed rates in force at second @tod. */
static uint64_t guaranteed_at(const struct zg_conf *c, uint32_t tod)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < c->n_classes; i++) {
		uint64_t rate, ceil;
		zg_class_effective(&c->classes[i], tod, &rate, &ceil);
		sum += rate;
	}
	return sum;
}

/* Guarantees must fit the link at every second of the day. The sum only
 * changes where a window starts or ends, so checking those instants (and
 * midnight) covers the whole day. */
static void check_guarantees(const struct pctx *pc, uint64_t link, int line, const char *key)
{
	const struct zg_conf *c = pc->conf;

	if (!link)
		return;
	for (unsigned i = 0; i <= c->n_classes; i++) {
		const struct zg_conf_class *k = i < c->n_classes ? &c->classes[i] : NULL;
		for (unsigned j = 0; j <= (k ? 2 * k->n_windows : 0); j++) {
			uint32_t tod = !k || j == 0 ? 0
				       : j % 2 ? k->windows[j / 2].start_s : k->windows[j / 2 - 1].end_s;
			uint64_t sum = guaranteed_at(c, tod);
			char s[32], l[32];
			if (sum <= link)
				continue;
			zg_rate_format(sum, s, sizeof(s));
			zg_rate_format(link, l, sizeof(l));
			conf_perr(pc, line, key,
				  "the classes guarantee %s at %02u:%02u:%02u, more than the link's %s", s,
				  tod / 3600, tod / 60 % 60, tod % 60, l);
			return;
		}
	}
}

void conf_check_classes(const struct pctx *pc)
{
	const struct zg_conf *c = pc->conf;

	for (unsigned i = 0; i < c->n_classes; i++) {
		const struct zg_conf_class *k = &c->classes[i];
		if (k->ceil_bps && k->rate_bps && k->ceil_bps < k->rate_bps)
			conf_perr(pc, k->line_ceil, "ceil", "[class %s]: ceil below rate", k->name);
	}
	for (unsigned i = 0; i < c->n_routes; i++) {
		const struct zg_conf_route *r = &c->routes[i];
		const char *names[ZG_CLASSES_MAX], *hint;
		if (!r->class_name[0] || strcmp(r->class_name, ZG_CLASS_DEFAULT) == 0 ||
		    class_named(c, r->class_name))
			continue;
		for (unsigned k = 0; k < c->n_classes; k++)
			names[k] = c->classes[k].name;
		hint = conf_closest(r->class_name, names, c->n_classes);
		conf_perr(pc, r->line_class, "class", "[route %s]: no [class %s] in this file%s%s%s",
			  r->name, r->class_name, hint ? "; did you mean '" : "", hint ? hint : "",
			  hint ? "'?" : "");
	}
	check_guarantees(pc, c->link.to_client_bps, c->link.line_to_client, "to_client");
	check_guarantees(pc, c->link.to_upstream_bps, c->link.line_to_upstream, "to_upstream");
}

void conf_fill_class_defaults(struct zg_conf *c)
{
	for (unsigned i = 0; i < c->n_classes; i++)
		if (!c->classes[i].ceil_bps)
			c->classes[i].ceil_bps = c->classes[i].rate_bps;
}
