/* conf.c - the configuration loader: INI text to struct zg_conf (conf.h).
 *
 * libinih tokenizes; the rest is table-driven. Each section has a keyword
 * table (name, type, field, range, default, flags) and each value type one
 * parser and one printer. Adding a section such as [audit] means adding its
 * struct to struct zg_conf, a keyword table here and one row in `sections`.
 *
 * What Debian's inih really is (libinih1 55-1, checked against the shared
 * library): ini_max_line = 200 with the line buffer on the stack, handler
 * without line numbers, no callback on section headers
 * (INI_CALL_HANDLER_ON_NEW_SECTION 0), multi-line continuation on, only the
 * first error line returned, section names cut at 49 bytes (MAX_SECTION 50)
 * and an over-long line silently split in two. So we never hand inih a
 * whole file: the driver gives it one physical line per ini_parse_stream()
 * call through our own reader, framed by a sentinel header and a marker key:
 *
 *     [\x02]   sentinel: the section before the line is "\x02"
 *     LINE     the operator's line, leading blanks removed (so no line is
 *              ever a continuation), or an empty line if we refused it
 *     \x01=    marker: the handler sees the section after the line
 *
 * A marker in a section other than the sentinel means LINE was a section
 * header (even an empty or repeated section is seen), a non-zero return
 * means LINE was malformed, and the reader knows the line number, so every
 * error is reported at its line. The reader refuses control bytes, so no
 * operator line can forge either frame. inih's globals are left untouched.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <ini.h>

#include "conf/conf.h"
#include "policy/profile.h"

#define KW_REQUIRED 0x01u    /* the section is incomplete without it */
#define KW_SENSITIVE 0x02u   /* the value is secret: never echoed nor printed */
#define KW_LISTEN 0x04u      /* an endpoint we bind: IP literal or "*" */
#define KW_FILE 0x08u        /* names file(s) that must exist and be readable */
#define KW_SECRET_FILE 0x10u /* names a file holding key material */

#define KW_MAX 32                       /* keywords per section */
#define NO_OFF ((size_t)-1)
#define WHY_MAX 400
#define CONF_FILE_MAX (1024 * 1024)     /* a larger file is surely a mistake */
#define INIH_SECTION_MAX 49             /* inih MAX_SECTION - 1 */
#define SENTINEL "\x02"
#define MARKER "\x01"
#define N_INST (ZG_ROUTES_MAX + 8)

struct pctx;
struct kw;

/* Parse @val into the field of @kw inside section struct @obj. Returns 0, or
 * -1 with the message (without file, line and key) in @why. */
typedef int kw_parse_fn(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			char *why, size_t cap);
/* Print "key = value" for @kw of @obj, or a comment line if it is unset. */
typedef void kw_print_fn(const struct kw *kw, const void *obj, FILE *out);

struct kw_type {
	kw_parse_fn *parse;
	kw_print_fn *print;
};

struct kw {
	const char *name;
	const struct kw_type *type;
	size_t off;                  /* the field in the section struct */
	size_t size;                 /* string buffer size, or list capacity */
	size_t aux_off;              /* list length field, or NO_OFF */
	size_t line_off;             /* int field that gets the line, or NO_OFF */
	unsigned long long min, max; /* range; durations in milliseconds */
	const char *def;             /* default as an operator writes it; NULL: none */
	unsigned flags;
};

/* A section kind. Singletons live at conf_off inside struct zg_conf; named
 * sections ([route NAME]) are array elements made by add(). */
struct section_def {
	const char *name;
	const struct kw *kws;
	size_t n_kws;
	size_t conf_off; /* singleton; NO_OFF for named sections */
	int (*add)(struct pctx *pc, const char *arg, int line, unsigned *idx);
	unsigned (*count)(const struct zg_conf *c);
	void *(*elem)(const struct zg_conf *c, unsigned idx);
};

/* One section as it appears in the file. */
struct inst {
	const struct section_def *def;
	char label[ZG_NAME_MAX + 16]; /* "[route NAME]" for messages */
	char arg[ZG_NAME_MAX];
	unsigned idx;                 /* named sections: element index */
	int line;                     /* header line */
	int key_line[KW_MAX];         /* >0 set there; <0 given there, bad value */
};

struct pctx {
	struct zg_conf *conf;
	struct zg_errlist *errs;
	const char *file;
	char basedir[ZG_PATH_MAX]; /* "" = relative paths stay as written */
	unsigned flags;
	/* reader */
	const char *next;    /* start of the next physical line */
	const char *line;    /* the current line, leading blanks skipped */
	size_t len;          /* its length, line end excluded */
	size_t raw_len;      /* its length with leading blanks, for the limit */
	int lineno;
	int step;
	/* handler */
	struct inst *cur;    /* where keys go; NULL: ignore them */
	int seen_header;
	size_t routes_cap;
	unsigned n_inst;
	struct inst inst[N_INST];
};

static void perr(const struct pctx *pc, int line, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void perr(const struct pctx *pc, int line, const char *key, const char *fmt, ...)
{
	char msg[ZG_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zg_errlist_add(pc->errs, pc->file, line, key, "%s", msg);
}

static void *field_of(void *obj, size_t off)
{
	return (char *)obj + off;
}

static const void *cfield_of(const void *obj, size_t off)
{
	return (const char *)obj + off;
}

/* The value as it may appear in a message. */
static const char *shown(const struct kw *kw, const char *val)
{
	return (kw->flags & KW_SENSITIVE) ? "(hidden)" : val;
}

static int copy_str(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		return -1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Decimal digits only (no sign, no blanks); saturates at ULLONG_MAX so that
 * a huge number is reported as out of range, not as malformed. */
static int parse_ull(const char *s, size_t n, unsigned long long *out)
{
	unsigned long long v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d;
		if (!is_digit(s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		v = v > (ULLONG_MAX - d) / 10 ? ULLONG_MAX : v * 10 + d;
	}
	*out = v;
	return 0;
}

/* [A-Za-z0-9._-]{1,cap-1}: route and gateway names. */
static int check_name(const char *s, size_t cap, char *why, size_t wcap)
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
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') {
			snprintf(why, wcap, "'%s' has a character other than A-Z a-z 0-9 . _ -", s);
			return -1;
		}
	}
	return 0;
}

/* A DNS host name: labels of [A-Za-z0-9_-], 1-63 each, 253 in all. */
static int is_hostname(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
		if (label == 0 && s[i] == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

static int is_ipv4(const char *s)
{
	struct in_addr a;
	return inet_pton(AF_INET, s, &a) == 1;
}

static int is_ipv6(const char *s)
{
	struct in6_addr a;
	return inet_pton(AF_INET6, s, &a) == 1;
}

/* ---- durations ---------------------------------------------------------- */

static int parse_duration(const char *s, unsigned long long *ms)
{
	size_t n = 0;
	unsigned long long v, mul;

	while (is_digit(s[n]))
		n++;
	if (parse_ull(s, n, &v) < 0)
		return -1;
	if (strcmp(s + n, "") == 0 || strcmp(s + n, "s") == 0)
		mul = 1000;
	else if (strcmp(s + n, "ms") == 0)
		mul = 1;
	else if (strcmp(s + n, "m") == 0)
		mul = 60000;
	else if (strcmp(s + n, "h") == 0)
		mul = 3600000;
	else
		return -1;
	*ms = v > ULLONG_MAX / mul ? ULLONG_MAX : v * mul;
	return 0;
}

/* The largest unit that states @ms exactly: 1h, 5m, 30s, 1500ms. */
static void fmt_duration(unsigned long long ms, char *out, size_t cap)
{
	if (ms == 0)
		snprintf(out, cap, "0s");
	else if (ms % 3600000 == 0)
		snprintf(out, cap, "%lluh", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(out, cap, "%llum", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(out, cap, "%llus", ms / 1000);
	else
		snprintf(out, cap, "%llums", ms);
}

static int duration_value(const struct kw *kw, const char *val, unsigned long long *ms, char *why,
			  size_t cap)
{
	char lo[32], hi[32];

	if (parse_duration(val, ms) < 0) {
		snprintf(why, cap, "'%s' is not a duration (expected a number with ms, s, m or h, "
			 "e.g. 500ms, 10s, 5m, 1h; a bare number is seconds)", shown(kw, val));
		return -1;
	}
	if (*ms < kw->min || *ms > kw->max) {
		fmt_duration(kw->min, lo, sizeof(lo));
		fmt_duration(kw->max, hi, sizeof(hi));
		snprintf(why, cap, "%s is out of range (%s..%s)", shown(kw, val), lo, hi);
		return -1;
	}
	return 0;
}

static int parse_dur_ms(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			char *why, size_t cap)
{
	unsigned long long ms;

	(void)pc;
	if (duration_value(kw, val, &ms, why, cap) < 0)
		return -1;
	*(unsigned *)field_of(obj, kw->off) = (unsigned)ms;
	return 0;
}

static int parse_dur_s(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		       char *why, size_t cap)
{
	unsigned long long ms;

	(void)pc;
	if (duration_value(kw, val, &ms, why, cap) < 0)
		return -1;
	if (ms % 1000) {
		snprintf(why, cap, "'%s' is not a whole number of seconds", shown(kw, val));
		return -1;
	}
	*(unsigned *)field_of(obj, kw->off) = (unsigned)(ms / 1000);
	return 0;
}

static void print_kv(FILE *out, const struct kw *kw, const char *val)
{
	if (kw->flags & KW_SENSITIVE)
		fprintf(out, "; %s = (hidden)\n", kw->name);
	else
		fprintf(out, "%s = %s\n", kw->name, val);
}

static void print_dur_ms(const struct kw *kw, const void *obj, FILE *out)
{
	char buf[32];

	fmt_duration(*(const unsigned *)cfield_of(obj, kw->off), buf, sizeof(buf));
	print_kv(out, kw, buf);
}

static void print_dur_s(const struct kw *kw, const void *obj, FILE *out)
{
	char buf[32];

	fmt_duration(1000ull * *(const unsigned *)cfield_of(obj, kw->off), buf, sizeof(buf));
	print_kv(out, kw, buf);
}

/* ---- numbers and words -------------------------------------------------- */

static int parse_uint(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	unsigned long long v;

	(void)pc;
	if (parse_ull(val, strlen(val), &v) < 0) {
		snprintf(why, cap, "'%s' is not a whole number (expected %llu..%llu)", shown(kw, val),
			 kw->min, kw->max);
		return -1;
	}
	if (v < kw->min || v > kw->max) {
		snprintf(why, cap, "%s is out of range (%llu..%llu)", shown(kw, val), kw->min, kw->max);
		return -1;
	}
	*(unsigned *)field_of(obj, kw->off) = (unsigned)v;
	return 0;
}

static void print_uint(const struct kw *kw, const void *obj, FILE *out)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%u", *(const unsigned *)cfield_of(obj, kw->off));
	print_kv(out, kw, buf);
}

/* workers: a count, or "auto" (stored as 0) for one per online core. */
static int parse_workers(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			 char *why, size_t cap)
{
	unsigned long long v;

	(void)pc;
	if (strcmp(val, "auto") == 0) {
		*(unsigned *)field_of(obj, kw->off) = 0;
		return 0;
	}
	if (parse_ull(val, strlen(val), &v) < 0) {
		snprintf(why, cap, "'%s' is not a number of workers (expected auto or 0..%llu; "
			 "0 and auto mean one per CPU core)", shown(kw, val), kw->max);
		return -1;
	}
	if (v > kw->max) {
		snprintf(why, cap, "%s is out of range (0..%llu, or auto)", shown(kw, val), kw->max);
		return -1;
	}
	*(unsigned *)field_of(obj, kw->off) = (unsigned)v;
	return 0;
}

static void print_workers(const struct kw *kw, const void *obj, FILE *out)
{
	unsigned v = *(const unsigned *)cfield_of(obj, kw->off);

	if (v == 0)
		print_kv(out, kw, "auto");
	else
		print_uint(kw, obj, out);
}

static int parse_bool(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	static const char *const yes[] = {"on", "yes", "true", "1"};
	static const char *const no[] = {"off", "no", "false", "0"};

	(void)pc;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(val, yes[i]) == 0) {
			*(int *)field_of(obj, kw->off) = 1;
			return 0;
		}
		if (strcasecmp(val, no[i]) == 0) {
			*(int *)field_of(obj, kw->off) = 0;
			return 0;
		}
	}
	snprintf(why, cap, "'%s' is not a boolean (expected on, off, yes, no, true, false, 1 or 0)",
		 shown(kw, val));
	return -1;
}

static void print_bool(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const int *)cfield_of(obj, kw->off) ? "on" : "off");
}

static int parse_mode(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	static const enum zg_mode modes[] = {ZG_MODE_WRAP, ZG_MODE_UNWRAP, ZG_MODE_BRIDGE};

	(void)pc;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(val, zg_mode_name(modes[i])) == 0) {
			*(enum zg_mode *)field_of(obj, kw->off) = modes[i];
			return 0;
		}
	}
	snprintf(why, cap, "'%s' is not a mode (expected wrap, unwrap or bridge)", shown(kw, val));
	return -1;
}

static void print_mode(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, zg_mode_name(*(const enum zg_mode *)cfield_of(obj, kw->off)));
}

static int parse_loglevel(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			  char *why, size_t cap)
{
	(void)pc;
	if (zg_log_level_parse(val, (enum zg_log_level *)field_of(obj, kw->off)) < 0) {
		snprintf(why, cap, "'%s' is not a log level (expected error, warn, info or debug)",
			 shown(kw, val));
		return -1;
	}
	return 0;
}

static void print_loglevel(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, zg_log_level_name(*(const enum zg_log_level *)cfield_of(obj, kw->off)));
}

static int parse_profile(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			 char *why, size_t cap)
{
	const struct zg_profile *all;
	size_t n, k;
	int w;

	(void)pc;
	if (zg_profile_find(val) && strlen(val) < kw->size) {
		copy_str(field_of(obj, kw->off), kw->size, val, strlen(val));
		return 0;
	}
	w = snprintf(why, cap, "unknown TLS profile '%s' (expected ", shown(kw, val));
	k = w < 0 ? cap : (size_t)w;
	all = zg_profile_all(&n);
	for (size_t i = 0; i < n && k < cap; i++) {
		w = snprintf(why + k, cap - k, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
			     all[i].name);
		k = w < 0 ? cap : k + (size_t)w;
	}
	if (k < cap)
		snprintf(why + k, cap - k, ")");
	return -1;
}

static void print_str(const struct kw *kw, const void *obj, FILE *out)
{
	const char *s = cfield_of(obj, kw->off);

	if (*s)
		print_kv(out, kw, s);
	else
		fprintf(out, "; %s not set\n", kw->name);
}

static int parse_name(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	(void)pc;
	if (check_name(val, kw->size, why, cap) < 0)
		return -1;
	return copy_str(field_of(obj, kw->off), kw->size, val, strlen(val));
}

/* server_name: a DNS name, or a URI ("scheme:rest") matched against URI SANs. */
static int parse_server_name(const struct kw *kw, const char *val, void *obj,
			     const struct pctx *pc, char *why, size_t cap)
{
	size_t n = strlen(val), i = 0;

	(void)pc;
	if (n >= kw->size) {
		snprintf(why, cap, "too long (max %zu characters)", kw->size - 1);
		return -1;
	}
	if (strchr(val, ':')) {
		while (is_alnum(val[i]) || (i > 0 && val[i] && strchr("+.-", val[i])))
			i++;
		if (i == 0 || val[i] != ':' || !is_alnum(val[0]) || val[i + 1] == '\0')
			goto bad;
		for (; i < n; i++)
			if ((unsigned char)val[i] <= ' ' || (unsigned char)val[i] >= 0x7f)
				goto bad;
	} else if (is_ipv4(val) || !is_hostname(val, n)) {
		goto bad;
	}
	return copy_str(field_of(obj, kw->off), kw->size, val, n);
bad:
	snprintf(why, cap, "'%s' is neither a DNS name nor a URI (expected e.g. "
		 "pacs.site-b.example or urn:oid:1.2.3; IP addresses are not matched)",
		 shown(kw, val));
	return -1;
}

/* ---- paths -------------------------------------------------------------- */

/* Resolve @p (length @n) against the config file's directory. */
static int resolve_path(const struct pctx *pc, const char *p, size_t n, char *out, size_t cap,
			char *why, size_t wcap)
{
	int w;

	if (n == 0) {
		snprintf(why, wcap, "empty path");
		return -1;
	}
	if (p[0] == '/' || pc->basedir[0] == '\0')
		w = snprintf(out, cap, "%.*s", (int)n, p);
	else
		w = snprintf(out, cap, "%s%s%.*s", pc->basedir,
			     pc->basedir[strlen(pc->basedir) - 1] == '/' ? "" : "/", (int)n, p);
	if (w < 0 || (size_t)w >= cap) {
		snprintf(why, wcap, "path too long (max %zu bytes after resolving it against the "
			 "directory of the configuration file)", cap - 1);
		return -1;
	}
	return 0;
}

static int parse_path(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	return resolve_path(pc, val, strlen(val), field_of(obj, kw->off), kw->size, why, cap);
}

/* Split @val at commas; call @fn on each item with blanks trimmed. An empty
 * item is an error. Stops at the first failure. */
static int each_item(const char *val, int (*fn)(const char *it, size_t n, void *arg), void *arg)
{
	const char *p = val;

	for (;;) {
		const char *e = strchr(p, ',');
		const char *end = e ? e : p + strlen(p);
		while (p < end && is_blank(*p))
			p++;
		while (end > p && is_blank(end[-1]))
			end--;
		if (fn(p, (size_t)(end - p), arg) < 0)
			return -1;
		if (!e)
			return 0;
		p = e + 1;
	}
}

struct list_arg {
	const struct kw *kw;
	const struct pctx *pc;
	void *obj;
	unsigned n;
	char *why;
	size_t cap;
};

static int add_path_item(const char *it, size_t n, void *arg)
{
	struct list_arg *la = arg;
	char (*paths)[ZG_PATH_MAX] = field_of(la->obj, la->kw->off);

	if (la->n >= la->kw->size) {
		snprintf(la->why, la->cap, "more than %zu files", la->kw->size);
		return -1;
	}
	if (n == 0) {
		snprintf(la->why, la->cap, "empty item in the list (expected PATH[, PATH...])");
		return -1;
	}
	return resolve_path(la->pc, it, n, paths[la->n++], ZG_PATH_MAX, la->why, la->cap);
}

static int parse_paths(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		       char *why, size_t cap)
{
	struct list_arg la = {kw, pc, obj, 0, why, cap};
	int rc = each_item(val, add_path_item, &la);

	*(unsigned *)field_of(obj, kw->aux_off) = la.n;
	return rc;
}

static void print_paths(const struct kw *kw, const void *obj, FILE *out)
{
	const char *paths = cfield_of(obj, kw->off);
	unsigned n = *(const unsigned *)cfield_of(obj, kw->aux_off);

	if (n == 0) {
		fprintf(out, "; %s not set\n", kw->name);
		return;
	}
	fprintf(out, "%s = ", kw->name);
	for (unsigned i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : "", paths + (size_t)i * ZG_PATH_MAX);
	fprintf(out, "\n");
}

/* ---- endpoints and prefixes ---------------------------------------------- */

static int endpoint_bad(const struct kw *kw, const char *val, const char *what, char *why,
			size_t cap)
{
	snprintf(why, cap, "'%s': %s (expected %s with a port 1-65535)", shown(kw, val), what,
		 (kw->flags & KW_LISTEN) ? "IPv4:PORT, [IPv6]:PORT or *:PORT"
					 : "HOST:PORT, IPv4:PORT or [IPv6]:PORT");
	return -1;
}

static int parse_endpoint(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			  char *why, size_t cap)
{
	struct zg_endpoint *ep = field_of(obj, kw->off);
	const char *host, *port;
	size_t hl;
	unsigned long long pv;
	int listen = (kw->flags & KW_LISTEN) != 0;

	(void)pc;
	if (val[0] == '[') {
		const char *close = strchr(val, ']');
		if (!close || close[1] != ':')
			return endpoint_bad(kw, val, "no ]:PORT after the IPv6 address", why, cap);
		host = val + 1;
		hl = (size_t)(close - host);
		port = close + 2;
	} else {
		const char *colon = strrchr(val, ':');
		if (!colon)
			return endpoint_bad(kw, val, "no :PORT", why, cap);
		host = val;
		hl = (size_t)(colon - val);
		port = colon + 1;
		if (memchr(val, ':', hl))
			return endpoint_bad(kw, val, "an IPv6 address must be in brackets", why, cap);
	}
	if (copy_str(ep->host, sizeof(ep->host), host, hl) < 0)
		return endpoint_bad(kw, val, "host too long", why, cap);
	if (parse_ull(port, strlen(port), &pv) < 0 || pv < 1 || pv > 65535)
		return endpoint_bad(kw, val, "bad port", why, cap);
	snprintf(ep->port, sizeof(ep->port), "%llu", pv);
	if (val[0] == '[') {
		if (!is_ipv6(ep->host))
			return endpoint_bad(kw, val, "not an IPv6 address in brackets", why, cap);
	} else if (strcmp(ep->host, "*") == 0) {
		if (!listen)
			return endpoint_bad(kw, val, "* is for listen only", why, cap);
	} else if (listen ? !is_ipv4(ep->host) : !is_hostname(ep->host, hl)) {
		return endpoint_bad(kw, val, listen ? "listen needs an IP address or *" : "bad host",
				    why, cap);
	}
	return 0;
}

static void fmt_endpoint(const struct zg_endpoint *ep, char *out, size_t cap)
{
	if (strchr(ep->host, ':'))
		snprintf(out, cap, "[%s]:%s", ep->host, ep->port);
	else
		snprintf(out, cap, "%s:%s", ep->host[0] ? ep->host : "*", ep->port);
}

static void print_endpoint(const struct kw *kw, const void *obj, FILE *out)
{
	const struct zg_endpoint *ep = cfield_of(obj, kw->off);
	char buf[ZG_HOST_MAX + ZG_PORT_MAX + 4];

	if (!ep->port[0]) {
		fprintf(out, "; %s not set\n", kw->name);
		return;
	}
	fmt_endpoint(ep, buf, sizeof(buf));
	print_kv(out, kw, buf);
}

static int add_prefix_item(const char *it, size_t n, void *arg)
{
	struct list_arg *la = arg;
	struct zg_prefix *pfx = field_of(la->obj, la->kw->off);
	char buf[64];
	const char *reason = "not an IP address";

	if (la->n >= la->kw->size) {
		snprintf(la->why, la->cap, "more than %zu prefixes", la->kw->size);
		return -1;
	}
	if (n == 0 || copy_str(buf, sizeof(buf), it, n) < 0 ||
	    zg_prefix_parse(buf, &pfx[la->n], &reason) < 0) {
		snprintf(la->why, la->cap, "'%.*s': %s (expected comma-separated addresses or "
			 "prefixes, e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)",
			 (int)n, it, n ? reason : "empty item");
		return -1;
	}
	la->n++;
	return 0;
}

static int parse_prefixes(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			  char *why, size_t cap)
{
	struct list_arg la = {kw, pc, obj, 0, why, cap};
	int rc = each_item(val, add_prefix_item, &la);

	*(unsigned *)field_of(obj, kw->aux_off) = la.n;
	return rc;
}

static void print_prefixes(const struct kw *kw, const void *obj, FILE *out)
{
	const struct zg_prefix *pfx = cfield_of(obj, kw->off);
	unsigned n = *(const unsigned *)cfield_of(obj, kw->aux_off);
	char buf[64];

	if (n == 0) {
		fprintf(out, "; %s not set\n", kw->name);
		return;
	}
	fprintf(out, "%s = ", kw->name);
	for (unsigned i = 0; i < n; i++) {
		zg_prefix_format(&pfx[i], buf, sizeof(buf));
		fprintf(out, "%s%s", i ? ", " : "", buf);
	}
	fprintf(out, "\n");
}

/* ---- TLS profile narrowing (policy) ------------------------------------- */

/* A route's list of OpenSSL names (suites, groups, sigalgs), separated by
 * ':' or ','. Membership in the profile is checked by zg_profile_narrow()
 * when the TLS contexts are built; here only the characters. */
static int parse_tls_list(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			  char *why, size_t cap)
{
	(void)pc;
	if (val[strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-:, ")]) {
		snprintf(why, cap, "'%s': expected OpenSSL names separated by ':' or ','", val);
		return -1;
	}
	if (copy_str(field_of(obj, kw->off), kw->size, val, strlen(val)) < 0) {
		snprintf(why, cap, "too long (max %zu characters)", kw->size - 1);
		return -1;
	}
	return 0;
}

static int parse_tls_version(const struct kw *kw, const char *val, void *obj,
			     const struct pctx *pc, char *why, size_t cap)
{
	(void)pc;
	if (!zg_profile_version_parse(val) || copy_str(field_of(obj, kw->off), kw->size, val,
						       strlen(val)) < 0) {
		snprintf(why, cap, "'%s': expected 1.2 or 1.3", val);
		return -1;
	}
	return 0;
}

static int parse_crl_stale(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			   char *why, size_t cap)
{
	(void)pc;
	if (strcmp(val, "reject") != 0 && strcmp(val, "warn") != 0) {
		snprintf(why, cap, "'%s': expected reject or warn", val);
		return -1;
	}
	*(int *)field_of(obj, kw->off) = strcmp(val, "warn") == 0;
	return 0;
}

static void print_crl_stale(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const int *)cfield_of(obj, kw->off) ? "warn" : "reject");
}

/* ---- keyword tables ------------------------------------------------------ */

static const struct kw_type T_UINT = {parse_uint, print_uint};
static const struct kw_type T_WORKERS = {parse_workers, print_workers};
static const struct kw_type T_DUR_MS = {parse_dur_ms, print_dur_ms};
static const struct kw_type T_DUR_S = {parse_dur_s, print_dur_s};
static const struct kw_type T_BOOL = {parse_bool, print_bool};
static const struct kw_type T_MODE = {parse_mode, print_mode};
static const struct kw_type T_LOGLEVEL = {parse_loglevel, print_loglevel};
static const struct kw_type T_PROFILE = {parse_profile, print_str};
static const struct kw_type T_NAME = {parse_name, print_str};
static const struct kw_type T_SERVER_NAME = {parse_server_name, print_str};
static const struct kw_type T_PATH = {parse_path, print_str};
static const struct kw_type T_PATHS = {parse_paths, print_paths};
static const struct kw_type T_ENDPOINT = {parse_endpoint, print_endpoint};
static const struct kw_type T_PREFIXES = {parse_prefixes, print_prefixes};
static const struct kw_type T_TLS_LIST = {parse_tls_list, print_str};
static const struct kw_type T_TLS_VERSION = {parse_tls_version, print_str};
static const struct kw_type T_CRL_STALE = {parse_crl_stale, print_crl_stale};

/* ---- [directory] and route peers ------------------------------------------ */

static int parse_peers(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		       char *why, size_t cap)
{
	const char *w = NULL;

	(void)pc;
	if (zg_peers_parse(val, field_of(obj, kw->off), &w) < 0) {
		snprintf(why, cap, "%s (expected * or PARTICIPANT[, PARTICIPANT...])", w);
		return -1;
	}
	return 0;
}

static void print_peers(const struct kw *kw, const void *obj, FILE *out)
{
	const struct zg_peers *p = cfield_of(obj, kw->off);

	fprintf(out, "%s = ", kw->name);
	if (p->any)
		fprintf(out, "*");
	for (unsigned i = 0; !p->any && i < p->n; i++)
		fprintf(out, "%s%s", i ? ", " : "", p->id[i]);
	fprintf(out, "\n");
}

static const struct kw_type T_PEERS = {parse_peers, print_peers};

/* ---- [audit] (audit.h) ------------------------------------------------------ */

static int parse_audit_enum(const struct kw *kw, const char *val, void *obj, char *why, size_t cap,
			    int rc, const char *expected)
{
	(void)obj;
	if (rc != 0)
		snprintf(why, cap, "'%s' is not one of %s", shown(kw, val), expected);
	return rc;
}

static int parse_audit_transport(const struct kw *kw, const char *val, void *obj,
				 const struct pctx *pc, char *why, size_t cap)
{
	(void)pc;
	return parse_audit_enum(kw, val, obj, why, cap,
				zg_audit_transport_parse(val, field_of(obj, kw->off)), "tls, udp");
}

static void print_audit_transport(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const enum zg_audit_transport *)cfield_of(obj, kw->off) == ZG_AUDIT_UDP
			      ? "udp" : "tls");
}

static int parse_audit_policy(const struct kw *kw, const char *val, void *obj,
			      const struct pctx *pc, char *why, size_t cap)
{
	(void)pc;
	return parse_audit_enum(kw, val, obj, why, cap,
				zg_audit_full_policy_parse(val, field_of(obj, kw->off)),
				"refuse-new-connections, drop-oldest");
}

static void print_audit_policy(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const enum zg_audit_full_policy *)cfield_of(obj, kw->off) ==
				  ZG_AUDIT_DROP_OLDEST ? "drop-oldest" : "refuse-new-connections");
}

static int parse_audit_verbosity(const struct kw *kw, const char *val, void *obj,
				 const struct pctx *pc, char *why, size_t cap)
{
	(void)pc;
	return parse_audit_enum(kw, val, obj, why, cap,
				zg_audit_verbosity_parse(val, field_of(obj, kw->off)),
				"alerts, connections");
}

static void print_audit_verbosity(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const enum zg_audit_verbosity *)cfield_of(obj, kw->off) ==
				  ZG_AUDIT_V_ALERTS ? "alerts" : "connections");
}

/* A byte count with an optional K, M or G suffix (powers of 1024), into a uint64_t. */
static int parse_bytes(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		       char *why, size_t cap)
{
	size_t n = strlen(val);
	unsigned long long v, mul = 1;

	(void)pc;
	if (n > 0 && strchr("KMG", val[n - 1])) {
		mul = val[n - 1] == 'K' ? 1ull << 10 : val[n - 1] == 'M' ? 1ull << 20 : 1ull << 30;
		n--;
	}
	if (parse_ull(val, n, &v) < 0 || v > kw->max / mul || v * mul < kw->min) {
		snprintf(why, cap, "'%s' is not a size in %llu..%llu bytes (suffix K, M or G allowed)",
			 shown(kw, val), kw->min, kw->max);
		return -1;
	}
	*(uint64_t *)field_of(obj, kw->off) = v * mul;
	return 0;
}

static void print_bytes(const struct kw *kw, const void *obj, FILE *out)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu",
		 (unsigned long long)*(const uint64_t *)cfield_of(obj, kw->off));
	print_kv(out, kw, buf);
}

/* syslog_target: host:port, [v6]:port or host; checked fully when audit starts. */
static int parse_hostport(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			  char *why, size_t cap)
{
	(void)pc;
	for (const char *p = val; *p; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
			snprintf(why, cap, "'%s' is not host:port", shown(kw, val));
			return -1;
		}
	}
	if (copy_str(field_of(obj, kw->off), kw->size, val, strlen(val)) < 0) {
		snprintf(why, cap, "too long (max %zu characters)", kw->size - 1);
		return -1;
	}
	return 0;
}

static const struct kw_type T_AUDIT_TRANSPORT = {parse_audit_transport, print_audit_transport};
static const struct kw_type T_AUDIT_POLICY = {parse_audit_policy, print_audit_policy};
static const struct kw_type T_AUDIT_VERBOSITY = {parse_audit_verbosity, print_audit_verbosity};
static const struct kw_type T_BYTES = {parse_bytes, print_bytes};
static const struct kw_type T_HOSTPORT = {parse_hostport, print_str};

#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define CONN_MAX 1000000ull

#define GW(f) offsetof(struct zg_conf_gateway, f)
#define TLS(f) offsetof(struct zg_conf_tls, f)
#define RT(f) offsetof(struct zg_conf_route, f)
#define STR(s, f) sizeof(((s *)0)->f)

/* name, type, field, size, list length, line field, min, max, default, flags */
static const struct kw gateway_kws[] = {
	{"name", &T_NAME, GW(name), STR(struct zg_conf_gateway, name), NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"workers", &T_WORKERS, GW(workers), 0, NO_OFF, NO_OFF, 0, 1024, "auto", 0},
	{"log_level", &T_LOGLEVEL, GW(log_level), 0, NO_OFF, NO_OFF, 0, 0, "info", 0},
	{"max_connections", &T_UINT, GW(max_connections), 0, NO_OFF, NO_OFF, 1, CONN_MAX, "10000", 0},
	{"drain_timeout", &T_DUR_MS, GW(drain_timeout_ms), 0, NO_OFF, NO_OFF, 0, HOUR, "30s", 0},
	{"handshake_timeout", &T_DUR_MS, GW(handshake_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN,
	 "10s", 0},
	{"idle_timeout", &T_DUR_MS, GW(idle_timeout_ms), 0, NO_OFF, NO_OFF, SEC, 24 * HOUR, "600s", 0},
	{"connect_timeout", &T_DUR_MS, GW(connect_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN, "5s",
	 0},
};

static const struct kw tls_kws[] = {
	{"profile", &T_PROFILE, TLS(profile), STR(struct zg_conf_tls, profile), NO_OFF, NO_OFF, 0, 0,
	 "cryptrec-high", 0},
	{"certificate", &T_PATH, TLS(certificate), ZG_PATH_MAX, NO_OFF, TLS(line_certificate), 0, 0,
	 NULL, KW_FILE},
	{"key", &T_PATH, TLS(key), ZG_PATH_MAX, NO_OFF, TLS(line_key), 0, 0, NULL, KW_SECRET_FILE},
	{"chain", &T_PATH, TLS(chain), ZG_PATH_MAX, NO_OFF, TLS(line_chain), 0, 0, NULL, KW_FILE},
	{"trust_anchors", &T_PATH, TLS(trust_anchors), ZG_PATH_MAX, NO_OFF, TLS(line_trust_anchors), 0,
	 0, NULL, KW_FILE},
	{"crl", &T_PATHS, TLS(crl), ZG_CRLS_MAX, TLS(n_crl), TLS(line_crl), 0, 0, NULL, KW_FILE},
	{"verify_depth", &T_UINT, TLS(verify_depth), 0, NO_OFF, NO_OFF, 1, 10, "4", 0},
	{"session_cache", &T_BOOL, TLS(session_cache), 0, NO_OFF, NO_OFF, 0, 0, "on", 0},
	{"session_cache_size", &T_UINT, TLS(session_cache_size), 0, NO_OFF, NO_OFF, 1, CONN_MAX,
	 "20480", 0},
	{"session_timeout", &T_DUR_S, TLS(session_timeout_s), 0, NO_OFF, NO_OFF, SEC, 24 * HOUR,
	 "300s", 0},
	{"session_tickets", &T_BOOL, TLS(session_tickets), 0, NO_OFF, NO_OFF, 0, 0, "off", 0},
	{"crl_stale", &T_CRL_STALE, TLS(crl_stale_warn), 0, NO_OFF, NO_OFF, 0, 0, "reject", 0},
	{"clock_skew", &T_DUR_S, TLS(clock_skew_s), 0, NO_OFF, NO_OFF, 0, HOUR, "0s", 0},
};

/* Keys without a default take theirs from [gateway] / [tls] once the whole
 * file is read (fill_route_defaults), so section order does not matter. */
static const struct kw route_kws[] = {
	{"mode", &T_MODE, RT(mode), 0, NO_OFF, NO_OFF, 0, 0, NULL, KW_REQUIRED},
	{"listen", &T_ENDPOINT, RT(listen), 0, NO_OFF, RT(line_listen), 0, 0, NULL,
	 KW_REQUIRED | KW_LISTEN},
	{"connect", &T_ENDPOINT, RT(connect), 0, NO_OFF, RT(line_connect), 0, 0, NULL, KW_REQUIRED},
	{"server_name", &T_SERVER_NAME, RT(server_name), STR(struct zg_conf_route, server_name),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"profile", &T_PROFILE, RT(profile), STR(struct zg_conf_route, profile), NO_OFF, NO_OFF, 0, 0,
	 NULL, 0},
	{"allow_from", &T_PREFIXES, RT(allow_from), ZG_PREFIXES_MAX, RT(n_allow_from), NO_OFF, 0, 0,
	 NULL, 0},
	{"max_connections", &T_UINT, RT(max_connections), 0, NO_OFF, NO_OFF, 1, CONN_MAX, NULL, 0},
	{"handshake_timeout", &T_DUR_MS, RT(handshake_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN,
	 NULL, 0},
	{"idle_timeout", &T_DUR_MS, RT(idle_timeout_ms), 0, NO_OFF, NO_OFF, SEC, 24 * HOUR, NULL, 0},
	{"connect_timeout", &T_DUR_MS, RT(connect_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN, NULL,
	 0},
	{"peers", &T_PEERS, RT(peers), 0, NO_OFF, RT(line_peers), 0, 0, NULL, 0},
	{"min_version", &T_TLS_VERSION, RT(min_version), STR(struct zg_conf_route, min_version),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"max_version", &T_TLS_VERSION, RT(max_version), STR(struct zg_conf_route, max_version),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"tls13_suites", &T_TLS_LIST, RT(tls13_suites), ZG_TLS_LIST_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"tls12_ciphers", &T_TLS_LIST, RT(tls12_ciphers), ZG_TLS_LIST_MAX, NO_OFF, NO_OFF, 0, 0, NULL,
	 0},
	{"groups", &T_TLS_LIST, RT(groups), ZG_TLS_LIST_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"sigalgs", &T_TLS_LIST, RT(sigalgs), ZG_TLS_LIST_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
};

#define AU(f) offsetof(struct zg_audit_conf, f)

/* certificate, key, ca and profile default to the [tls] ones when the audit
 * thread starts (zg_audit_conf_inherit), not here. */
static const struct kw audit_kws[] = {
	{"syslog_target", &T_HOSTPORT, AU(syslog_target), STR(struct zg_audit_conf, syslog_target),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"syslog_transport", &T_AUDIT_TRANSPORT, AU(transport), 0, NO_OFF, NO_OFF, 0, 0, "tls", 0},
	{"syslog_certificate", &T_PATH, AU(certificate), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL,
	 KW_FILE},
	{"syslog_key", &T_PATH, AU(key), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL,
	 KW_SECRET_FILE},
	{"syslog_ca", &T_PATH, AU(ca), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, KW_FILE},
	{"syslog_profile", &T_PROFILE, AU(profile), STR(struct zg_audit_conf, profile), NO_OFF, NO_OFF,
	 0, 0, NULL, 0},
	{"syslog_server_name", &T_HOSTPORT, AU(server_name), STR(struct zg_audit_conf, server_name),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"file", &T_PATH, AU(file), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"spool_dir", &T_PATH, AU(spool_dir), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"spool_max_bytes", &T_BYTES, AU(spool_max_bytes), 0, NO_OFF, NO_OFF, 256ull << 10, 1ull << 40,
	 "64M", 0},
	{"full_policy", &T_AUDIT_POLICY, AU(full_policy), 0, NO_OFF, NO_OFF, 0, 0,
	 "refuse-new-connections", 0},
	{"verbosity", &T_AUDIT_VERBOSITY, AU(verbosity), 0, NO_OFF, NO_OFF, 0, 0, "connections", 0},
	{"queue_length", &T_UINT, AU(queue_len), 0, NO_OFF, NO_OFF, 16, 1u << 20, "4096", 0},
	{"retry_max", &T_DUR_MS, AU(retry_max_ms), 0, NO_OFF, NO_OFF, 250, HOUR, "30s", 0},
	{"io_timeout", &T_DUR_MS, AU(io_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN, "5s", 0},
	{"ack_timeout", &T_DUR_MS, AU(ack_timeout_ms), 0, NO_OFF, NO_OFF, 100, HOUR, "60s", 0},
};

#define DIR(f) offsetof(struct zg_conf_directory, f)

static const struct kw directory_kws[] = {
	{"file", &T_PATH, DIR(file), ZG_PATH_MAX, NO_OFF, DIR(line_file), 0, 0, NULL, KW_FILE},
	/* not KW_FILE: a missing signature is the loader's directory_unsigned */
	{"signature", &T_PATH, DIR(signature), ZG_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"public_key", &T_PATH, DIR(public_key), ZG_PATH_MAX, NO_OFF, DIR(line_public_key), 0, 0,
	 NULL, KW_FILE},
	{"reload_interval", &T_DUR_MS, DIR(reload_interval_ms), 0, NO_OFF, NO_OFF, 0, HOUR, "30s", 0},
	{"grace_period", &T_DUR_MS, DIR(grace_ms), 0, NO_OFF, NO_OFF, 0, HOUR, "30s", 0},
};

#define N_KWS(t) (sizeof(t) / sizeof((t)[0]))
_Static_assert(N_KWS(gateway_kws) <= KW_MAX, "gateway_kws too long");
_Static_assert(N_KWS(tls_kws) <= KW_MAX, "tls_kws too long");
_Static_assert(N_KWS(route_kws) <= KW_MAX, "route_kws too long");

static int route_add(struct pctx *pc, const char *arg, int line, unsigned *idx);

static unsigned route_count(const struct zg_conf *c)
{
	return c->n_routes;
}

static void *route_elem(const struct zg_conf *c, unsigned idx)
{
	return &c->routes[idx];
}

static const struct section_def sections[] = {
	{"gateway", gateway_kws, N_KWS(gateway_kws), offsetof(struct zg_conf, gw), NULL, NULL, NULL},
	{"tls", tls_kws, N_KWS(tls_kws), offsetof(struct zg_conf, tls), NULL, NULL, NULL},
	{"route", route_kws, N_KWS(route_kws), NO_OFF, route_add, route_count, route_elem},
	{"directory", directory_kws, N_KWS(directory_kws), offsetof(struct zg_conf, dir), NULL, NULL,
	 NULL},
	{"audit", audit_kws, N_KWS(audit_kws), offsetof(struct zg_conf, audit), NULL, NULL, NULL},
};
#define N_SECTIONS N_KWS(sections)
_Static_assert(N_INST >= ZG_ROUTES_MAX + N_SECTIONS, "N_INST too small");

static const struct section_def *section_named(const char *name)
{
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (strcmp(sections[i].name, name) == 0)
			return &sections[i];
	return NULL;
}

static int kw_index(const struct section_def *def, const char *name)
{
	for (size_t i = 0; i < def->n_kws; i++)
		if (strcmp(def->kws[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void *inst_obj(const struct pctx *pc, const struct inst *in)
{
	if (in->def->conf_off != NO_OFF)
		return field_of(pc->conf, in->def->conf_off);
	return in->def->elem(pc->conf, in->idx);
}

static const struct inst *inst_of(const struct pctx *pc, const struct section_def *def)
{
	for (unsigned i = 0; i < pc->n_inst; i++)
		if (pc->inst[i].def == def)
			return &pc->inst[i];
	return NULL;
}

static void apply_defaults(const struct pctx *pc, const struct section_def *def, void *obj)
{
	char why[WHY_MAX];

	for (size_t i = 0; i < def->n_kws; i++) {
		const struct kw *kw = &def->kws[i];
		int rc;
		if (!kw->def)
			continue;
		rc = kw->type->parse(kw, kw->def, obj, pc, why, sizeof(why));
		/* checksrc: invariant (compiled-in table data, never input) */
		assert(rc == 0 && "a keyword table default does not parse");
		(void)rc;
	}
}

/* ---- suggestions --------------------------------------------------------- */

/* Case-insensitive Levenshtein distance; UINT_MAX for long strings. */
static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[33];

	if (la > 32 || lb > 32)
		return UINT_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned prev = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned cur = row[j];
			unsigned best = prev + (lower(a[i - 1]) != lower(b[j - 1]));
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

/* The candidate closest to @word if it is a plausible typo, else NULL. */
static const char *closest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	unsigned bd = 3; /* at most two edits */

	for (size_t i = 0; i < n; i++) {
		unsigned d = edit_distance(word, cands[i]);
		if (d < bd && d < strlen(cands[i])) {
			bd = d;
			best = cands[i];
		}
	}
	return best;
}

static const char *closest_kw(const struct section_def *def, const char *word)
{
	const char *names[KW_MAX];

	for (size_t i = 0; i < def->n_kws; i++)
		names[i] = def->kws[i].name;
	return closest(word, names, def->n_kws);
}

static void unknown_key(const struct pctx *pc, const struct inst *in, const char *key)
{
	const char *hint = closest_kw(in->def, key);

	if (hint) {
		perr(pc, pc->lineno, key, "unknown key in %s; did you mean '%s'?", in->label, hint);
		return;
	}
	for (size_t i = 0; i < N_SECTIONS; i++) {
		if (&sections[i] != in->def && kw_index(&sections[i], key) >= 0) {
			perr(pc, pc->lineno, key, "unknown key in %s; it belongs in [%s%s]", in->label,
			     sections[i].name, sections[i].conf_off == NO_OFF ? " NAME" : "");
			return;
		}
	}
	perr(pc, pc->lineno, key, "unknown key in %s", in->label);
}

/* ---- sections ----------------------------------------------------------- */

static int route_add(struct pctx *pc, const char *arg, int line, unsigned *idx)
{
	struct zg_conf *c = pc->conf;
	char why[WHY_MAX];

	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *o = &pc->inst[i];
		if (o->def->add == route_add && strcmp(o->arg, arg) == 0) {
			perr(pc, line, NULL, "[route %s]: route name given twice (first at line %d)", arg,
			     o->line);
			return -1;
		}
	}
	if (check_name(arg, ZG_NAME_MAX, why, sizeof(why)) < 0)
		perr(pc, line, NULL, "[route %s]: bad route name: %s", arg, why);
	if (c->n_routes >= ZG_ROUTES_MAX) {
		perr(pc, line, NULL, "[route %s]: too many routes (max %d)", arg, ZG_ROUTES_MAX);
		return -1;
	}
	if (c->n_routes == pc->routes_cap) {
		size_t cap = pc->routes_cap ? pc->routes_cap * 2 : 4;
		struct zg_conf_route *r;
		if (cap > ZG_ROUTES_MAX)
			cap = ZG_ROUTES_MAX;
		r = realloc(c->routes, cap * sizeof(*r));
		if (!r) {
			perr(pc, line, NULL, "[route %s]: out of memory", arg);
			return -1;
		}
		c->routes = r;
		pc->routes_cap = cap;
	}
	*idx = c->n_routes++;
	memset(&c->routes[*idx], 0, sizeof(c->routes[*idx]));
	/* an over-long name was reported above; keep a cut copy for messages */
	snprintf(c->routes[*idx].name, sizeof(c->routes[*idx].name), "%s", arg);
	c->routes[*idx].line = line;
	return 0;
}

/* inih keeps at most 49 bytes of a section name and ignores text after the
 * ']'; catch both, since either would silently change the meaning. */
static int header_ok(const struct pctx *pc, const char *sec)
{
	size_t sl = strlen(sec);
	const char *p;

	if (pc->len < sl + 2 || pc->line[sl + 1] != ']') {
		perr(pc, pc->lineno, NULL, "[%s...]: section header too long (at most %d characters "
		     "between [ and ])", sec, INIH_SECTION_MAX);
		return 0;
	}
	for (p = pc->line + sl + 2; p < pc->line + pc->len && is_blank(*p); p++)
		;
	if (p < pc->line + pc->len && *p != ';' && *p != '#') {
		perr(pc, pc->lineno, NULL, "[%s]: unexpected text after ']'", sec);
		return 0;
	}
	return 1;
}

/* "[gateway], [tls], [route NAME] or [audit]", from the section table. */
static void section_list(char *out, size_t cap)
{
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < N_SECTIONS && k < cap; i++) {
		int w = snprintf(out + k, cap - k, "%s[%s%s]",
				 i == 0 ? "" : i + 1 == N_SECTIONS ? " or " : ", ", sections[i].name,
				 sections[i].conf_off == NO_OFF ? " NAME" : "");
		k = w < 0 ? cap : k + (size_t)w;
	}
}

static void unknown_section(const struct pctx *pc, const char *word, const char *arg)
{
	char list[256];
	const char *names[N_SECTIONS];
	const char *hint;
	const struct section_def *d;

	for (size_t i = 0; i < N_SECTIONS; i++)
		names[i] = sections[i].name;
	hint = closest(word, names, N_SECTIONS);
	if (!hint) {
		section_list(list, sizeof(list));
		perr(pc, pc->lineno, NULL, "[%s%s%s]: unknown section (expected %s)", word,
		     *arg ? " " : "", arg, list);
		return;
	}
	d = section_named(hint);
	perr(pc, pc->lineno, NULL, "[%s%s%s]: unknown section; did you mean [%s%s%s]?", word,
	     *arg ? " " : "", arg, hint, d->conf_off == NO_OFF ? " " : "",
	     d->conf_off == NO_OFF ? (*arg ? arg : "NAME") : "");
}

static void on_header(struct pctx *pc, const char *sec)
{
	char buf[INIH_SECTION_MAX + 1], *word, *arg, *end;
	const struct section_def *def;
	const struct inst *prev;
	struct inst *in;

	pc->seen_header = 1;
	pc->cur = NULL;
	if (!header_ok(pc, sec))
		return;
	snprintf(buf, sizeof(buf), "%s", sec);
	for (word = buf; is_blank(*word); word++)
		;
	for (arg = word; *arg && !is_blank(*arg); arg++)
		;
	if (*arg)
		*arg++ = '\0';
	while (is_blank(*arg))
		arg++;
	for (end = arg + strlen(arg); end > arg && is_blank(end[-1]); end--)
		;
	*end = '\0';
	def = section_named(word);
	if (!def) {
		unknown_section(pc, word, arg);
		return;
	}
	if (def->conf_off != NO_OFF && *arg) {
		perr(pc, pc->lineno, NULL, "[%s %s]: [%s] takes no name", word, arg, word);
		return;
	}
	if (def->conf_off == NO_OFF && !*arg) {
		perr(pc, pc->lineno, NULL, "[%s]: missing name (expected [%s NAME])", word, word);
		return;
	}
	if (def->conf_off != NO_OFF && (prev = inst_of(pc, def)) != NULL) {
		perr(pc, pc->lineno, NULL, "[%s]: section given twice (first at line %d)", word,
		     prev->line);
		return;
	}
	if (pc->n_inst >= N_INST)
		return; /* only reachable past ZG_ROUTES_MAX, which route_add reports */
	in = &pc->inst[pc->n_inst];
	memset(in, 0, sizeof(*in));
	in->def = def;
	in->line = pc->lineno;
	snprintf(in->arg, sizeof(in->arg), "%s", arg);
	/* a label cut short only shortens messages; the section header length
	 * was checked when it was read */
	if (snprintf(in->label, sizeof(in->label), "[%s%s%s]", word, *arg ? " " : "", arg) < 0)
		in->label[0] = '\0';
	if (def->add && def->add(pc, arg, pc->lineno, &in->idx) < 0)
		return;
	if (def->add)
		apply_defaults(pc, def, def->elem(pc->conf, in->idx));
	pc->n_inst++;
	pc->cur = in;
}

static void on_key(struct pctx *pc, const char *key, const char *val)
{
	struct inst *in = pc->cur;
	const struct kw *kw;
	char why[WHY_MAX], list[256];
	void *obj;
	int i, first;

	if (!in) {
		if (pc->seen_header)
			return; /* below a refused header, which was reported */
		section_list(list, sizeof(list));
		perr(pc, pc->lineno, key, "key outside any section (put it under %s)", list);
		return;
	}
	i = kw_index(in->def, key);
	if (i < 0) {
		unknown_key(pc, in, key);
		return;
	}
	kw = &in->def->kws[i];
	first = in->key_line[i];
	if (first) {
		perr(pc, pc->lineno, key, "given twice in %s (first at line %d)", in->label,
		     first < 0 ? -first : first);
		return;
	}
	obj = inst_obj(pc, in);
	if (val[0] == ';') {
		/* inih keeps "k =;x" as ";x", but "k = ;x" is a comment: refuse the
		 * value so that what we print always reads back the same */
		perr(pc, pc->lineno, key, "a value may not start with ';' (it reads as a comment)");
		in->key_line[i] = -pc->lineno;
		return;
	}
	if (kw->type->parse(kw, val, obj, pc, why, sizeof(why)) < 0) {
		perr(pc, pc->lineno, key, "%s", why);
		in->key_line[i] = -pc->lineno;
		return;
	}
	in->key_line[i] = pc->lineno;
	if (kw->line_off != NO_OFF)
		*(int *)field_of(obj, kw->line_off) = pc->lineno;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct pctx *pc = user;

	if (strcmp(name, MARKER) == 0) {
		if (strcmp(section, SENTINEL) != 0)
			on_header(pc, section);
		return 1;
	}
	on_key(pc, name, value);
	return 1;
}

/* ---- reader -------------------------------------------------------------- */

/* Take the next physical line from the text; 0 at the end. */
static int next_line(struct pctx *pc)
{
	const char *p = pc->next, *nl;
	size_t n;

	if (!*p)
		return 0;
	nl = strchr(p, '\n');
	n = nl ? (size_t)(nl - p) : strlen(p);
	pc->next = nl ? nl + 1 : p + n;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	pc->raw_len = n;
	pc->lineno++;
	while (n > 0 && is_blank(*p)) {
		p++;
		n--;
	}
	pc->line = p;
	pc->len = n;
	return 1;
}

static int line_acceptable(const struct pctx *pc, int num)
{
	size_t max = num > 3 ? (size_t)num - 3 : 0; /* inih needs room for \r\n\0 */

	if (pc->raw_len > max) {
		perr(pc, pc->lineno, NULL, "line too long (max %zu characters)", max);
		return 0;
	}
	for (size_t i = 0; i < pc->len; i++) {
		unsigned char c = (unsigned char)pc->line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			perr(pc, pc->lineno, NULL, "control character 0x%02x in line", c);
			return 0;
		}
	}
	return 1;
}

static char *reader(char *str, int num, void *stream)
{
	struct pctx *pc = stream;
	const char *s;
	size_t n;

	switch (pc->step++) {
	case 0:
		s = "[" SENTINEL "]\n";
		n = strlen(s);
		break;
	case 1:
		if (!line_acceptable(pc, num)) {
			s = "\n";
			n = 1;
			break;
		}
		memcpy(str, pc->line, pc->len);
		str[pc->len] = '\n';
		str[pc->len + 1] = '\0';
		return str;
	case 2:
		s = MARKER "=\n";
		n = strlen(s);
		break;
	default:
		return NULL;
	}
	if (num < 0 || n + 1 > (size_t)num)
		return NULL;
	memcpy(str, s, n + 1);
	return str;
}

/* ---- whole-file checks -------------------------------------------------- */

#define M_WRAP (1u << ZG_MODE_WRAP)
#define M_UNWRAP (1u << ZG_MODE_UNWRAP)
#define M_BRIDGE (1u << ZG_MODE_BRIDGE)
#define M_ALL (M_WRAP | M_UNWRAP | M_BRIDGE)

struct need {
	const char *key;
	unsigned modes;
	const char *why; /* tls needs: what the route does with it */
};

static const struct need route_needs[] = {
	{"server_name", M_WRAP | M_BRIDGE, NULL},
	{"allow_from", M_WRAP, NULL},
};

/* Every mode speaks TLS on one side at least: wrap and bridge present the
 * certificate as a client and verify the upstream, unwrap and bridge present
 * it as a server and verify their clients. */
static const struct need tls_needs[] = {
	{"certificate", M_ALL, "presents it to its TLS peers"},
	{"key", M_ALL, "signs its TLS handshakes with it"},
	{"trust_anchors", M_ALL, "verifies its TLS peers against them"},
};

static int route_mode(const struct pctx *pc, const struct inst *in, unsigned *mask)
{
	int i = kw_index(in->def, "mode");

	if (i < 0 || in->key_line[i] <= 0)
		return -1;
	*mask = 1u << pc->conf->routes[in->idx].mode;
	return 0;
}

static void check_required(const struct pctx *pc)
{
	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *in = &pc->inst[i];
		for (size_t k = 0; k < in->def->n_kws; k++)
			if ((in->def->kws[k].flags & KW_REQUIRED) && in->key_line[k] == 0)
				perr(pc, in->line, in->def->kws[k].name, "required in %s", in->label);
	}
}

static int same_addr(const char *a, const char *b)
{
	struct zg_prefix pa, pb;
	const char *why;

	if (zg_prefix_parse(a, &pa, &why) < 0 || zg_prefix_parse(b, &pb, &why) < 0)
		return strcasecmp(a, b) == 0;
	return memcmp(pa.addr, pb.addr, sizeof(pa.addr)) == 0;
}

/* Listen host kinds: "*" and [::] take every address (dual stack),
 * 0.0.0.0 every IPv4 one (also in IPv4-mapped form). */
enum host_kind { H_ANY, H_ANY4, H_V4, H_V6 };

static enum host_kind host_kind(const char *host)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	struct zg_prefix p;
	const char *why;

	if (!host[0] || strcmp(host, "*") == 0)
		return H_ANY;
	if (zg_prefix_parse(host, &p, &why) < 0)
		return H_V6; /* cannot happen for a parsed listen host */
	if (memcmp(p.addr, mapped, 12) != 0) {
		static const uint8_t zero[16];
		return memcmp(p.addr, zero, 16) == 0 ? H_ANY : H_V6;
	}
	return memcmp(p.addr + 12, "\0\0\0\0", 4) == 0 ? H_ANY4 : H_V4;
}

/* Whether two listeners on the same port would collide. */
static int hosts_collide(const char *a, const char *b)
{
	enum host_kind ka = host_kind(a), kb = host_kind(b);

	if (ka == H_ANY || kb == H_ANY)
		return 1;
	if (ka == H_ANY4 || kb == H_ANY4)
		return ka != H_V6 && kb != H_V6;
	return same_addr(a, b);
}

/* Report and return 1 if route @b's listen endpoint collides with @a's. */
static int check_listen(const struct pctx *pc, const struct inst *a, const struct inst *b)
{
	int li = kw_index(a->def, "listen");
	const struct zg_endpoint *ea, *eb;
	char ta[ZG_HOST_MAX + 16], tb[ZG_HOST_MAX + 16];

	if (li < 0 || a->key_line[li] <= 0 || b->key_line[li] <= 0)
		return 0;
	ea = &pc->conf->routes[a->idx].listen;
	eb = &pc->conf->routes[b->idx].listen;
	if (strcmp(ea->port, eb->port) != 0 || !hosts_collide(ea->host, eb->host))
		return 0;
	fmt_endpoint(ea, ta, sizeof(ta));
	fmt_endpoint(eb, tb, sizeof(tb));
	perr(pc, b->key_line[li], "listen", "%s conflicts with listen = %s of [route %s] (line %d)",
	     tb, ta, a->arg, a->key_line[li]);
	return 1;
}

static void check_routes(const struct pctx *pc)
{
	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *in = &pc->inst[i];
		unsigned mask;
		if (in->def->add != route_add)
			continue;
		for (unsigned j = 0; j < i; j++)
			if (pc->inst[j].def == in->def && check_listen(pc, &pc->inst[j], in))
				break; /* one conflict per route is enough to act on */
		if (route_mode(pc, in, &mask) < 0)
			continue;
		for (size_t k = 0; k < N_KWS(route_needs); k++) {
			int ki = kw_index(in->def, route_needs[k].key);
			if ((route_needs[k].modes & mask) && ki >= 0 && in->key_line[ki] == 0)
				perr(pc, in->line, route_needs[k].key, "required in %s for mode %s",
				     in->label, zg_mode_name(pc->conf->routes[in->idx].mode));
		}
	}
}

static void check_tls_needs(const struct pctx *pc)
{
	const struct section_def *tdef = section_named("tls");
	const struct inst *tls = inst_of(pc, tdef);

	for (size_t k = 0; k < N_KWS(tls_needs); k++) {
		int ki = kw_index(tdef, tls_needs[k].key);
		if (ki < 0 || (tls && tls->key_line[ki] != 0))
			continue;
		for (unsigned i = 0; i < pc->n_inst; i++) {
			const struct inst *in = &pc->inst[i];
			unsigned mask;
			if (in->def->add != route_add || route_mode(pc, in, &mask) < 0 ||
			    !(tls_needs[k].modes & mask))
				continue;
			perr(pc, tls ? tls->line : in->line, tls_needs[k].key,
			     "required in [tls]: [route %s] (mode %s) %s", in->arg,
			     zg_mode_name(pc->conf->routes[in->idx].mode), tls_needs[k].why);
			break;
		}
	}
}

/* A directory needs its key; peers mean nothing without a directory. */
static void check_directory(const struct pctx *pc)
{
	const struct inst *in = inst_of(pc, section_named("directory"));
	const struct zg_conf *c = pc->conf;

	if (c->dir.file[0] && !c->dir.public_key[0])
		perr(pc, c->dir.line_file, "public_key",
		     "required in [directory]: the directory's signature is checked with it");
	if (!c->dir.file[0] && in && c->dir.public_key[0])
		perr(pc, c->dir.line_public_key, "file", "required in [directory] when public_key is set");
	for (unsigned i = 0; i < c->n_routes; i++)
		if (c->routes[i].line_peers && !c->routes[i].peers.any && !c->dir.file[0])
			perr(pc, c->routes[i].line_peers, "peers",
			     "[route %s]: peers needs a [directory] file to look participants up in",
			     c->routes[i].name);
}

static void fill_directory_defaults(struct zg_conf *c)
{
	size_t n = strlen(c->dir.file);

	if (c->dir.file[0] && !c->dir.signature[0] && n + 4 < sizeof(c->dir.signature) &&
	    snprintf(c->dir.signature, sizeof(c->dir.signature), "%s.sig", c->dir.file) < 0)
		c->dir.signature[0] = '\0';
	for (unsigned i = 0; i < c->n_routes; i++)
		if (!c->routes[i].line_peers)
			c->routes[i].peers.any = 1;
}

/* [audit] syslog over TLS authenticates with the gateway's own [tls]
 * certificate and trust anchors unless told otherwise. */
static void fill_audit_defaults(struct zg_conf *c)
{
	if (c->audit.syslog_target[0] && c->audit.transport == ZG_AUDIT_TLS)
		zg_audit_conf_inherit(&c->audit, c->tls.certificate, c->tls.chain, c->tls.key,
				      c->tls.trust_anchors, c->tls.profile);
}

static void fill_route_defaults(struct zg_conf *c)
{
	for (unsigned i = 0; i < c->n_routes; i++) {
		struct zg_conf_route *r = &c->routes[i];
		if (!r->max_connections)
			r->max_connections = c->gw.max_connections;
		if (!r->handshake_timeout_ms)
			r->handshake_timeout_ms = c->gw.handshake_timeout_ms;
		if (!r->idle_timeout_ms)
			r->idle_timeout_ms = c->gw.idle_timeout_ms;
		if (!r->connect_timeout_ms)
			r->connect_timeout_ms = c->gw.connect_timeout_ms;
		if (!r->profile[0])
			snprintf(r->profile, sizeof(r->profile), "%s", c->tls.profile);
	}
}

/* ---- checks on the files the configuration names ------------------------ */

static void check_file(const struct pctx *pc, const struct kw *kw, int line, const char *path)
{
	char ebuf[128];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		perr(pc, line, kw->name, "cannot read %s: %s", path,
		     strerror_r(errno, ebuf, sizeof(ebuf)));
		return;
	}
	if (fstat(fd, &st) < 0) {
		perr(pc, line, kw->name, "cannot stat %s: %s", path,
		     strerror_r(errno, ebuf, sizeof(ebuf)));
	} else if (!S_ISREG(st.st_mode)) {
		perr(pc, line, kw->name, "%s is not a regular file", path);
	} else if ((kw->flags & KW_SECRET_FILE) && (st.st_mode & S_IRWXO)) {
		/* a private key others can read is compromised; refuse to run with it */
		perr(pc, line, kw->name, "%s is %s by every user (mode %04o); run 'chmod 600 %s'",
		     path, (st.st_mode & S_IROTH) ? "readable" : "accessible",
		     (unsigned)(st.st_mode & 07777), path);
	}
	close(fd);
}

static void check_files(const struct pctx *pc)
{
	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *in = &pc->inst[i];
		const void *obj = inst_obj(pc, in);
		for (size_t k = 0; k < in->def->n_kws; k++) {
			const struct kw *kw = &in->def->kws[k];
			if (!(kw->flags & (KW_FILE | KW_SECRET_FILE)) || in->key_line[k] <= 0)
				continue;
			if (kw->aux_off == NO_OFF) {
				check_file(pc, kw, in->key_line[k], cfield_of(obj, kw->off));
				continue;
			}
			const char *paths = cfield_of(obj, kw->off);
			unsigned n = *(const unsigned *)cfield_of(obj, kw->aux_off);
			for (unsigned j = 0; j < n; j++)
				check_file(pc, kw, in->key_line[k], paths + (size_t)j * ZG_PATH_MAX);
		}
	}
}

/* ---- public -------------------------------------------------------------- */

static struct zg_conf *conf_parse(const char *text, const char *name, const char *basedir,
				  unsigned flags, struct zg_errlist *errs)
{
	size_t before = errs->n + errs->dropped;
	struct zg_conf *conf = calloc(1, sizeof(*conf));
	struct pctx *pc = calloc(1, sizeof(*pc));

	if (!conf || !pc) {
		zg_errlist_add(errs, name, 0, NULL, "out of memory");
		goto fail;
	}
	pc->conf = conf;
	pc->errs = errs;
	pc->file = name;
	pc->flags = flags;
	if (copy_str(pc->basedir, sizeof(pc->basedir), basedir, strlen(basedir)) < 0 ||
	    copy_str(conf->path, sizeof(conf->path), name, strlen(name)) < 0) {
		zg_errlist_add(errs, name, 0, NULL, "file name too long (max %d bytes)",
			       ZG_PATH_MAX - 1);
		goto fail;
	}
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (sections[i].conf_off != NO_OFF)
			apply_defaults(pc, &sections[i], field_of(conf, sections[i].conf_off));
	pc->next = strncmp(text, "\xef\xbb\xbf", 3) == 0 ? text + 3 : text; /* UTF-8 BOM */
	while (next_line(pc)) {
		int rc;
		pc->step = 0;
		rc = ini_parse_stream(reader, pc, on_pair, pc);
		if (rc > 0 && pc->line[0] == '[') {
			/* keys below a broken header must not land in the section above it */
			pc->cur = NULL;
			pc->seen_header = 1;
			perr(pc, pc->lineno, NULL, "syntax error: section header without ']'");
		} else if (rc > 0) {
			perr(pc, pc->lineno, NULL, "syntax error (expected [SECTION], KEY = VALUE, or "
			     "a comment starting with ; or #)");
		}
		else if (rc < 0)
			perr(pc, pc->lineno, NULL, "INI parser failed (%d)", rc);
	}
	check_required(pc);
	check_routes(pc);
	check_tls_needs(pc);
	check_directory(pc);
	if (conf->n_routes == 0 && errs->n + errs->dropped == before)
		zg_errlist_add(errs, name, 0, NULL, "no [route NAME] section: nothing to serve");
	fill_route_defaults(conf);
	fill_audit_defaults(conf);
	fill_directory_defaults(conf);
	if (!(flags & ZG_CONF_NO_FILE_CHECKS))
		check_files(pc);
	if (errs->n + errs->dropped != before)
		goto fail;
	free(pc);
	return conf;
fail:
	free(pc);
	zg_conf_free(conf);
	return NULL;
}

/* The directory part of @name ("" if none), for resolving relative paths. */
static void dir_of(const char *name, char *out, size_t cap)
{
	const char *slash = strrchr(name, '/');

	if (!slash)
		snprintf(out, cap, "%s", "");
	else if (slash == name)
		snprintf(out, cap, "%s", "/");
	else
		snprintf(out, cap, "%.*s", (int)(slash - name), name);
}

struct zg_conf *zg_conf_parse_flags(const char *text, const char *name, unsigned flags,
				    struct zg_errlist *errs)
{
	char dir[ZG_PATH_MAX];

	dir_of(name, dir, sizeof(dir));
	return conf_parse(text, name, dir, flags, errs);
}

struct zg_conf *zg_conf_parse(const char *text, const char *name, struct zg_errlist *errs)
{
	return zg_conf_parse_flags(text, name, 0, errs);
}

/* Read the whole file into a NUL-terminated buffer; refuses a config that
 * others could rewrite (they would control every route and trust anchor). */
static char *read_conf(const char *path, struct zg_errlist *errs)
{
	char ebuf[128], *buf = NULL;
	struct stat st;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), ok = 0;

	if (fd < 0) {
		zg_errlist_add(errs, path, 0, NULL, "cannot open: %s",
			       strerror_r(errno, ebuf, sizeof(ebuf)));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		zg_errlist_add(errs, path, 0, NULL, "not a regular file");
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		zg_errlist_add(errs, path, 0, NULL, "refusing a group- or world-writable "
			       "configuration file (mode %04o); run 'chmod go-w %s'",
			       (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size > CONF_FILE_MAX) {
		zg_errlist_add(errs, path, 0, NULL, "file too large (max %d bytes)", CONF_FILE_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		zg_errlist_add(errs, path, 0, NULL, "out of memory");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			zg_errlist_add(errs, path, 0, NULL, "cannot read: %s",
				       r < 0 ? strerror_r(errno, ebuf, sizeof(ebuf)) : "file shrank");
			goto out;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	if (memchr(buf, '\0', got)) {
		zg_errlist_add(errs, path, 0, NULL, "not a text file (contains a NUL byte)");
		goto out;
	}
	ok = 1;
out:
	close(fd);
	if (!ok) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int default_name(struct zg_conf *conf, struct zg_errlist *errs)
{
	char host[256], why[WHY_MAX];

	if (conf->gw.name[0])
		return 0;
	if (gethostname(host, sizeof(host)) < 0) {
		zg_errlist_add(errs, conf->path, 0, "name", "not set and the host name is "
			       "unavailable; set name in [gateway]");
		return -1;
	}
	host[sizeof(host) - 1] = '\0';
	if (check_name(host, sizeof(conf->gw.name), why, sizeof(why)) < 0) {
		zg_errlist_add(errs, conf->path, 0, "name", "not set and the host name cannot "
			       "stand in: %s; set name in [gateway]", why);
		return -1;
	}
	return copy_str(conf->gw.name, sizeof(conf->gw.name), host, strlen(host));
}

struct zg_conf *zg_conf_load(const char *path, struct zg_errlist *errs)
{
	char dir[ZG_PATH_MAX], *real, *text = read_conf(path, errs);
	struct zg_conf *conf = NULL;

	if (!text)
		return NULL;
	/* resolve relative paths against the absolute form of the directory
	 * the operator named (not the target of a symlinked file), so the
	 * printed settings stay right whatever the working directory is */
	dir_of(path, dir, sizeof(dir));
	real = realpath(dir[0] ? dir : ".", NULL);
	if (real && strlen(real) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%s", real);
	free(real);
	conf = conf_parse(text, path, dir, 0, errs);
	free(text);
	if (conf && default_name(conf, errs) < 0) {
		zg_conf_free(conf);
		return NULL;
	}
	return conf;
}

void zg_conf_free(struct zg_conf *conf)
{
	if (!conf)
		return;
	free(conf->routes);
	free(conf);
}

static void print_section(const struct section_def *def, const void *obj, FILE *out)
{
	for (size_t i = 0; i < def->n_kws; i++)
		def->kws[i].type->print(&def->kws[i], obj, out);
}

void zg_conf_print(const struct zg_conf *conf, FILE *out)
{
	fprintf(out, "; effective configuration of %s\n", conf->path);
	for (size_t i = 0; i < N_SECTIONS; i++) {
		const struct section_def *def = &sections[i];
		if (def->conf_off != NO_OFF) {
			fprintf(out, "\n[%s]\n", def->name);
			print_section(def, cfield_of(conf, def->conf_off), out);
			continue;
		}
		for (unsigned k = 0; k < def->count(conf); k++) {
			const struct zg_conf_route *r = def->elem(conf, k);
			fprintf(out, "\n[%s %s]\n", def->name, r->name);
			print_section(def, r, out);
		}
	}
}

void zg_conf_each_key(void (*fn)(const char *section, const char *key, void *arg), void *arg)
{
	for (size_t i = 0; i < N_SECTIONS; i++)
		for (size_t k = 0; k < sections[i].n_kws; k++)
			fn(sections[i].name, sections[i].kws[k].name, arg);
}

const char *zg_mode_name(enum zg_mode m)
{
	switch (m) {
	case ZG_MODE_WRAP:
		return "wrap";
	case ZG_MODE_UNWRAP:
		return "unwrap";
	case ZG_MODE_BRIDGE:
		return "bridge";
	}
	return "unknown";
}
