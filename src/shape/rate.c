/* rate.c - rates, times of day, windows and DSCP names: pure parsers. */
#include <stdio.h>
#include <string.h>

#include "shape/shape.h"

static int fail(char *why, size_t cap, const char *msg)
{
	snprintf(why, cap, "%s", msg);
	return -1;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether the @n bytes at @s equal @word, ignoring ASCII case. */
static int word_is(const char *s, size_t n, const char *word)
{
	if (strlen(word) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower(s[i]) != lower(word[i]))
			return 0;
	return 1;
}

/* The multiplier of a unit ("kbit/s" -> 1000), 0 if it is none. Units are
 * bits: "k" and "M" are decimal as on every link datasheet. */
static uint64_t unit_of(const char *s, size_t n)
{
	static const struct {
		const char *name;
		uint64_t mul;
	} units[] = {{"bit/s", 1}, {"kbit/s", 1000}, {"mbit/s", 1000000}, {"gbit/s", 1000000000}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (word_is(s, n, units[i].name))
			return units[i].mul;
	return 0;
}

int zg_rate_parse(const char *s, size_t n, uint64_t *bps, char *why, size_t cap)
{
	uint64_t whole = 0, frac = 0, div = 1, mul;
	size_t i = 0;

	while (i < n && is_digit(s[i])) {
		if (whole > ZG_RATE_MAX)
			return fail(why, cap, "rate above 100Gbit/s");
		whole = whole * 10 + (uint64_t)(s[i++] - '0');
	}
	if (i == 0)
		return fail(why, cap, "expected a rate such as 20Mbit/s");
	if (i < n && s[i] == '.') {
		size_t start = ++i;
		while (i < n && is_digit(s[i]) && i - start < 3) {
			frac = frac * 10 + (uint64_t)(s[i++] - '0');
			div *= 10;
		}
		if (i == start || (i < n && is_digit(s[i])))
			return fail(why, cap, "at most three decimals in a rate");
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	mul = unit_of(s + i, n - i);
	if (!mul)
		return fail(why, cap, "rate needs a unit: bit/s, kbit/s, Mbit/s or Gbit/s");
	if (whole > ZG_RATE_MAX / mul)
		return fail(why, cap, "rate above 100Gbit/s");
	*bps = whole * mul + frac * mul / div;
	if (*bps > ZG_RATE_MAX)
		return fail(why, cap, "rate above 100Gbit/s");
	if (*bps < ZG_RATE_MIN)
		return fail(why, cap, "rate below 8kbit/s (0 is not a rate; omit the key instead)");
	return 0;
}

void zg_rate_format(uint64_t bps, char *out, size_t cap)
{
	if (bps % 1000000000 == 0)
		snprintf(out, cap, "%lluGbit/s", (unsigned long long)(bps / 1000000000));
	else if (bps % 1000000 == 0)
		snprintf(out, cap, "%lluMbit/s", (unsigned long long)(bps / 1000000));
	else if (bps % 1000 == 0)
		snprintf(out, cap, "%llukbit/s", (unsigned long long)(bps / 1000));
	else
		snprintf(out, cap, "%llubit/s", (unsigned long long)bps);
}

/* Two digits at @s into @v; -1 unless both are digits. */
static int two_digits(const char *s, unsigned *v)
{
	if (!is_digit(s[0]) || !is_digit(s[1]))
		return -1;
	*v = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	return 0;
}

int zg_tod_parse(const char *s, size_t n, uint32_t *secs, char *why, size_t cap)
{
	unsigned h, m, sec = 0;

	if ((n != 5 && n != 8) || s[2] != ':' || (n == 8 && s[5] != ':') || two_digits(s, &h) < 0 ||
	    two_digits(s + 3, &m) < 0 || (n == 8 && two_digits(s + 6, &sec) < 0))
		return fail(why, cap, "expected a time of day HH:MM or HH:MM:SS");
	if (h > 24 || m > 59 || sec > 59 || (h == 24 && (m || sec)))
		return fail(why, cap, "impossible time of day (00:00 to 24:00)");
	*secs = h * 3600u + m * 60u + sec;
	return 0;
}

/* The next blank-separated word of @s[*i..n) in @w/@wn; 0 if none is left. */
static int next_word(const char *s, size_t n, size_t *i, const char **w, size_t *wn)
{
	while (*i < n && (s[*i] == ' ' || s[*i] == '\t'))
		(*i)++;
	if (*i == n)
		return 0;
	*w = s + *i;
	while (*i < n && s[*i] != ' ' && s[*i] != '\t')
		(*i)++;
	*wn = (size_t)(s + *i - *w);
	return 1;
}

/* "HH:MM[:SS]-HH:MM[:SS]" into @w's start and end. */
static int parse_range(const char *s, size_t n, struct zg_shape_window *w, char *why, size_t cap)
{
	const char *dash = memchr(s, '-', n);

	if (!dash)
		return fail(why, cap, "expected a range HH:MM-HH:MM");
	if (zg_tod_parse(s, (size_t)(dash - s), &w->start_s, why, cap) < 0 ||
	    zg_tod_parse(dash + 1, n - (size_t)(dash - s) - 1, &w->end_s, why, cap) < 0)
		return -1;
	if (w->start_s == 24 * 3600u)
		return fail(why, cap, "a window cannot start at 24:00");
	if (w->end_s == 24 * 3600u)
		w->end_s = 0; /* until midnight */
	if (w->start_s == w->end_s)
		return fail(why, cap, "empty window (start equals end); for all day leave windows out");
	return 0;
}

/* One "rate=RATE" or "ceil=RATE" word into @w. */
static int parse_setting(const char *s, size_t n, struct zg_shape_window *w, char *why, size_t cap)
{
	const char *eq = memchr(s, '=', n);
	size_t kn = eq ? (size_t)(eq - s) : n;
	uint64_t *dst;

	if (eq && word_is(s, kn, "rate"))
		dst = &w->rate_bps;
	else if (eq && word_is(s, kn, "ceil"))
		dst = &w->ceil_bps;
	else
		return fail(why, cap, "expected rate=RATE or ceil=RATE after the time range");
	if (*dst)
		return fail(why, cap, "rate= or ceil= given twice in one window");
	return zg_rate_parse(eq + 1, n - kn - 1, dst, why, cap);
}

int zg_window_parse(const char *s, size_t n, struct zg_shape_window *w, char *why, size_t cap)
{
	const char *word;
	size_t wn, i = 0;

	memset(w, 0, sizeof(*w));
	if (!next_word(s, n, &i, &word, &wn))
		return fail(why, cap, "empty window");
	if (parse_range(word, wn, w, why, cap) < 0)
		return -1;
	while (next_word(s, n, &i, &word, &wn))
		if (parse_setting(word, wn, w, why, cap) < 0)
			return -1;
	if (!w->rate_bps)
		return fail(why, cap, "a window needs rate=RATE");
	if (w->ceil_bps && w->ceil_bps < w->rate_bps)
		return fail(why, cap, "window ceil below its rate");
	return 0;
}

int zg_window_contains(const struct zg_shape_window *w, uint32_t tod)
{
	if (w->start_s < w->end_s)
		return tod >= w->start_s && tod < w->end_s;
	return tod >= w->start_s || tod < w->end_s; /* wraps past midnight */
}

int zg_windows_overlap(const struct zg_shape_window *a, const struct zg_shape_window *b)
{
	/* Two ranges on a circle meet iff one contains the other's start. */
	return zg_window_contains(a, b->start_s) || zg_window_contains(b, a->start_s);
}

void zg_class_effective(const struct zg_conf_class *c, uint32_t tod, uint64_t *rate, uint64_t *ceil)
{
	uint64_t r = c->rate_bps, k = c->ceil_bps;

	for (unsigned i = 0; i < c->n_windows; i++) {
		if (zg_window_contains(&c->windows[i], tod % ZG_DAY_S)) {
			r = c->windows[i].rate_bps;
			k = c->windows[i].ceil_bps;
			break;
		}
	}
	*rate = r;
	*ceil = k > r ? k : r;
}

static const struct {
	const char *name;
	int dscp;
} dscp_names[] = {
	{"CS0", 0},   {"CS1", 8},   {"AF11", 10}, {"AF12", 12}, {"AF13", 14}, {"CS2", 16},
	{"AF21", 18}, {"AF22", 20}, {"AF23", 22}, {"CS3", 24},  {"AF31", 26}, {"AF32", 28},
	{"AF33", 30}, {"CS4", 32},  {"AF41", 34}, {"AF42", 36}, {"AF43", 38}, {"CS5", 40},
	{"EF", 46},   {"CS6", 48},  {"CS7", 56},  {"default", 0},
};

int zg_dscp_parse(const char *s, size_t n, int *dscp, char *why, size_t cap)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; i < sizeof(dscp_names) / sizeof(dscp_names[0]); i++) {
		if (word_is(s, n, dscp_names[i].name)) {
			*dscp = dscp_names[i].dscp;
			return 0;
		}
	}
	for (i = 0; i < n && i < 3 && is_digit(s[i]); i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (n == 0 || i != n || v > 63)
		return fail(why, cap, "expected a DSCP name (EF, AF11..AF43, CS0..CS7) or 0..63");
	*dscp = (int)v;
	return 0;
}

const char *zg_dscp_name(int dscp)
{
	for (size_t i = 0; i < sizeof(dscp_names) / sizeof(dscp_names[0]); i++)
		if (dscp_names[i].dscp == dscp)
			return dscp_names[i].name;
	return NULL;
}

int zg_dscp_default(unsigned priority)
{
	return priority <= 3 ? 34 /* AF41 */ : 8 /* CS1 */;
}
