/* values.c - parsing and printing of single configuration values (conf_int.h).
 *
 * One parser and one printer per value type (durations, numbers and words,
 * names, server_name, paths, endpoints, prefixes, TLS narrowing lists, peers,
 * the [audit] enums, byte counts, host:port), bound together in the kw_type
 * objects T_* that the keyword tables in tables.c point to. A parser reports
 * through its @why buffer, never to the error list: the reader adds the file,
 * line and key. Private to src/conf/.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf_int.h"
#include "policy/profile.h"
#include "policy/server_name.h"

/* ---- durations ---------------------------------------------------------- */

static int parse_duration(const char *s, unsigned long long *ms)
{
	size_t n = 0;
	unsigned long long v, mul;

	while (conf_is_digit(s[n]))
		n++;
	if (conf_parse_ull(s, n, &v) < 0)
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
			 "e.g. 500ms, 10s, 5m, 1h; a bare number is seconds)", conf_shown(kw, val));
		return -1;
	}
	if (*ms < kw->min || *ms > kw->max) {
		fmt_duration(kw->min, lo, sizeof(lo));
		fmt_duration(kw->max, hi, sizeof(hi));
		snprintf(why, cap, "%s is out of range (%s..%s)", conf_shown(kw, val), lo, hi);
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
	*(unsigned *)conf_field_of(obj, kw->off) = (unsigned)ms;
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
		snprintf(why, cap, "'%s' is not a whole number of seconds", conf_shown(kw, val));
		return -1;
	}
	*(unsigned *)conf_field_of(obj, kw->off) = (unsigned)(ms / 1000);
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

	fmt_duration(*(const unsigned *)conf_cfield_of(obj, kw->off), buf, sizeof(buf));
	print_kv(out, kw, buf);
}

static void print_dur_s(const struct kw *kw, const void *obj, FILE *out)
{
	char buf[32];

	fmt_duration(1000ull * *(const unsigned *)conf_cfield_of(obj, kw->off), buf, sizeof(buf));
	print_kv(out, kw, buf);
}

/* ---- numbers and words -------------------------------------------------- */

static int parse_uint(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	unsigned long long v;

	(void)pc;
	if (conf_parse_ull(val, strlen(val), &v) < 0) {
		snprintf(why, cap, "'%s' is not a whole number (expected %llu..%llu)", conf_shown(kw, val),
			 kw->min, kw->max);
		return -1;
	}
	if (v < kw->min || v > kw->max) {
		snprintf(why, cap, "%s is out of range (%llu..%llu)", conf_shown(kw, val), kw->min, kw->max);
		return -1;
	}
	*(unsigned *)conf_field_of(obj, kw->off) = (unsigned)v;
	return 0;
}

static void print_uint(const struct kw *kw, const void *obj, FILE *out)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%u", *(const unsigned *)conf_cfield_of(obj, kw->off));
	print_kv(out, kw, buf);
}

/* workers: a count, or "auto" (stored as 0) for one per online core. */
static int parse_workers(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			 char *why, size_t cap)
{
	unsigned long long v;

	(void)pc;
	if (strcmp(val, "auto") == 0) {
		*(unsigned *)conf_field_of(obj, kw->off) = 0;
		return 0;
	}
	if (conf_parse_ull(val, strlen(val), &v) < 0) {
		snprintf(why, cap, "'%s' is not a number of workers (expected auto or 0..%llu; "
			 "0 and auto mean one per CPU core)", conf_shown(kw, val), kw->max);
		return -1;
	}
	if (v > kw->max) {
		snprintf(why, cap, "%s is out of range (0..%llu, or auto)", conf_shown(kw, val), kw->max);
		return -1;
	}
	*(unsigned *)conf_field_of(obj, kw->off) = (unsigned)v;
	return 0;
}

static void print_workers(const struct kw *kw, const void *obj, FILE *out)
{
	unsigned v = *(const unsigned *)conf_cfield_of(obj, kw->off);

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
			*(int *)conf_field_of(obj, kw->off) = 1;
			return 0;
		}
		if (strcasecmp(val, no[i]) == 0) {
			*(int *)conf_field_of(obj, kw->off) = 0;
			return 0;
		}
	}
	snprintf(why, cap, "'%s' is not a boolean (expected on, off, yes, no, true, false, 1 or 0)",
		 conf_shown(kw, val));
	return -1;
}

static void print_bool(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const int *)conf_cfield_of(obj, kw->off) ? "on" : "off");
}

static int parse_mode(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	static const enum zg_mode modes[] = {ZG_MODE_WRAP, ZG_MODE_UNWRAP, ZG_MODE_BRIDGE};

	(void)pc;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(val, zg_mode_name(modes[i])) == 0) {
			*(enum zg_mode *)conf_field_of(obj, kw->off) = modes[i];
			return 0;
		}
	}
	snprintf(why, cap, "'%s' is not a mode (expected wrap, unwrap or bridge)", conf_shown(kw, val));
	return -1;
}

/* proxy_protocol = off | v2 (version 1, text, carries no TLS facts: not offered). */
static int parse_proxy(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		       char *why, size_t cap)
{
	int *v = conf_field_of(obj, kw->off);

	(void)pc;
	if (strcmp(val, "off") == 0 || strcmp(val, "v2") == 0) {
		*v = val[0] == 'v' ? 2 : 0;
		return 0;
	}
	snprintf(why, cap, "'%s' is not a PROXY protocol setting (expected off or v2)", conf_shown(kw, val));
	return -1;
}

static void print_proxy(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const int *)conf_cfield_of(obj, kw->off) ? "v2" : "off");
}

static void print_mode(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, zg_mode_name(*(const enum zg_mode *)conf_cfield_of(obj, kw->off)));
}

static int parse_loglevel(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			  char *why, size_t cap)
{
	(void)pc;
	if (zg_log_level_parse(val, (enum zg_log_level *)conf_field_of(obj, kw->off)) < 0) {
		snprintf(why, cap, "'%s' is not a log level (expected error, warn, info or debug)",
			 conf_shown(kw, val));
		return -1;
	}
	return 0;
}

static void print_loglevel(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, zg_log_level_name(*(const enum zg_log_level *)conf_cfield_of(obj, kw->off)));
}

static int parse_profile(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			 char *why, size_t cap)
{
	const struct zg_profile *all;
	size_t n, k;
	int w;

	(void)pc;
	if (zg_profile_find(val) && strlen(val) < kw->size) {
		conf_copy_str(conf_field_of(obj, kw->off), kw->size, val, strlen(val));
		return 0;
	}
	w = snprintf(why, cap, "unknown TLS profile '%s' (expected ", conf_shown(kw, val));
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
	const char *s = conf_cfield_of(obj, kw->off);

	if (*s)
		print_kv(out, kw, s);
	else
		fprintf(out, "; %s not set\n", kw->name);
}

static int parse_name(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	(void)pc;
	if (conf_check_name(val, kw->size, why, cap) < 0)
		return -1;
	return conf_copy_str(conf_field_of(obj, kw->off), kw->size, val, strlen(val));
}

/* server_name: a DNS name, or a URI ("scheme:rest") matched against URI
 * SANs, by the rule tls and policy follow too (policy/server_name.h). */
static int parse_server_name(const struct kw *kw, const char *val, void *obj,
			     const struct pctx *pc, char *why, size_t cap)
{
	size_t n = strlen(val);

	(void)pc;
	if (n >= kw->size) {
		snprintf(why, cap, "too long (max %zu characters)", kw->size - 1);
		return -1;
	}
	if (zg_server_name_kind(val) == ZG_SN_INVALID)
		goto bad;
	return conf_copy_str(conf_field_of(obj, kw->off), kw->size, val, n);
bad:
	snprintf(why, cap, "'%s' is neither a DNS name nor a URI (expected e.g. "
		 "pacs.site-b.example or urn:oid:1.2.3; no port; IP addresses are not matched)",
		 conf_shown(kw, val));
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
	return resolve_path(pc, val, strlen(val), conf_field_of(obj, kw->off), kw->size, why, cap);
}

/* Split @val at commas; call @fn on each item with blanks trimmed. An empty
 * item is an error. Stops at the first failure. */
static int each_item(const char *val, int (*fn)(const char *it, size_t n, void *arg), void *arg)
{
	const char *p = val;

	for (;;) {
		const char *e = strchr(p, ',');
		const char *end = e ? e : p + strlen(p);
		while (p < end && conf_is_blank(*p))
			p++;
		while (end > p && conf_is_blank(end[-1]))
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
	char (*paths)[ZG_PATH_MAX] = conf_field_of(la->obj, la->kw->off);

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

	*(unsigned *)conf_field_of(obj, kw->aux_off) = la.n;
	return rc;
}

static void print_paths(const struct kw *kw, const void *obj, FILE *out)
{
	const char *paths = conf_cfield_of(obj, kw->off);
	unsigned n = *(const unsigned *)conf_cfield_of(obj, kw->aux_off);

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
	snprintf(why, cap, "'%s': %s (expected %s with a port 1-65535)", conf_shown(kw, val), what,
		 (kw->flags & KW_LISTEN) ? "IPv4:PORT, [IPv6]:PORT or *:PORT"
					 : "HOST:PORT, IPv4:PORT or [IPv6]:PORT");
	return -1;
}

static int parse_endpoint(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			  char *why, size_t cap)
{
	struct zg_endpoint *ep = conf_field_of(obj, kw->off);
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
	if (conf_copy_str(ep->host, sizeof(ep->host), host, hl) < 0)
		return endpoint_bad(kw, val, "host too long", why, cap);
	if (conf_parse_ull(port, strlen(port), &pv) < 0 || pv < 1 || pv > 65535)
		return endpoint_bad(kw, val, "bad port", why, cap);
	snprintf(ep->port, sizeof(ep->port), "%llu", pv);
	if (val[0] == '[') {
		if (!conf_is_ipv6(ep->host))
			return endpoint_bad(kw, val, "not an IPv6 address in brackets", why, cap);
	} else if (strcmp(ep->host, "*") == 0) {
		if (!listen)
			return endpoint_bad(kw, val, "* is for listen only", why, cap);
	} else if (listen ? !conf_is_ipv4(ep->host) : !zg_is_hostname(ep->host, hl)) {
		return endpoint_bad(kw, val, listen ? "listen needs an IP address or *" : "bad host",
				    why, cap);
	}
	return 0;
}

void fmt_endpoint(const struct zg_endpoint *ep, char *out, size_t cap)
{
	if (strchr(ep->host, ':'))
		snprintf(out, cap, "[%s]:%s", ep->host, ep->port);
	else
		snprintf(out, cap, "%s:%s", ep->host[0] ? ep->host : "*", ep->port);
}

static void print_endpoint(const struct kw *kw, const void *obj, FILE *out)
{
	const struct zg_endpoint *ep = conf_cfield_of(obj, kw->off);
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
	struct zg_prefix *pfx = conf_field_of(la->obj, la->kw->off);
	char buf[64];
	const char *reason = "not an IP address";

	if (la->n >= la->kw->size) {
		snprintf(la->why, la->cap, "more than %zu prefixes", la->kw->size);
		return -1;
	}
	if (n == 0 || conf_copy_str(buf, sizeof(buf), it, n) < 0 ||
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

	*(unsigned *)conf_field_of(obj, kw->aux_off) = la.n;
	return rc;
}

static void print_prefixes(const struct kw *kw, const void *obj, FILE *out)
{
	const struct zg_prefix *pfx = conf_cfield_of(obj, kw->off);
	unsigned n = *(const unsigned *)conf_cfield_of(obj, kw->aux_off);
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
	if (conf_copy_str(conf_field_of(obj, kw->off), kw->size, val, strlen(val)) < 0) {
		snprintf(why, cap, "too long (max %zu characters)", kw->size - 1);
		return -1;
	}
	return 0;
}

static int parse_tls_version(const struct kw *kw, const char *val, void *obj,
			     const struct pctx *pc, char *why, size_t cap)
{
	(void)pc;
	if (!zg_profile_version_parse(val) || conf_copy_str(conf_field_of(obj, kw->off), kw->size, val,
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
	*(int *)conf_field_of(obj, kw->off) = strcmp(val, "warn") == 0;
	return 0;
}

static void print_crl_stale(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const int *)conf_cfield_of(obj, kw->off) ? "warn" : "reject");
}

/* ---- value types (the T_* of the keyword tables) ------------------------ */

const struct kw_type T_UINT = {parse_uint, print_uint};
const struct kw_type T_WORKERS = {parse_workers, print_workers};
const struct kw_type T_DUR_MS = {parse_dur_ms, print_dur_ms};
const struct kw_type T_DUR_S = {parse_dur_s, print_dur_s};
const struct kw_type T_BOOL = {parse_bool, print_bool};
const struct kw_type T_MODE = {parse_mode, print_mode};
const struct kw_type T_PROXY = {parse_proxy, print_proxy};
const struct kw_type T_LOGLEVEL = {parse_loglevel, print_loglevel};
const struct kw_type T_PROFILE = {parse_profile, print_str};
const struct kw_type T_NAME = {parse_name, print_str};
const struct kw_type T_SERVER_NAME = {parse_server_name, print_str};
const struct kw_type T_PATH = {parse_path, print_str};
const struct kw_type T_PATHS = {parse_paths, print_paths};
const struct kw_type T_ENDPOINT = {parse_endpoint, print_endpoint};
const struct kw_type T_PREFIXES = {parse_prefixes, print_prefixes};
const struct kw_type T_TLS_LIST = {parse_tls_list, print_str};
const struct kw_type T_TLS_VERSION = {parse_tls_version, print_str};
const struct kw_type T_CRL_STALE = {parse_crl_stale, print_crl_stale};

/* ---- [directory] and route peers ------------------------------------------ */

static int parse_peers(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		       char *why, size_t cap)
{
	const char *w = NULL;

	(void)pc;
	if (zg_peers_parse(val, conf_field_of(obj, kw->off), &w) < 0) {
		snprintf(why, cap, "%s (expected * or PARTICIPANT[, PARTICIPANT...])", w);
		return -1;
	}
	return 0;
}

static void print_peers(const struct kw *kw, const void *obj, FILE *out)
{
	const struct zg_peers *p = conf_cfield_of(obj, kw->off);

	fprintf(out, "%s = ", kw->name);
	if (p->any)
		fprintf(out, "*");
	for (unsigned i = 0; !p->any && i < p->n; i++)
		fprintf(out, "%s%s", i ? ", " : "", p->id[i]);
	fprintf(out, "\n");
}

const struct kw_type T_PEERS = {parse_peers, print_peers};

/* ---- [audit] (audit.h) ------------------------------------------------------ */

static int parse_audit_enum(const struct kw *kw, const char *val, void *obj, char *why, size_t cap,
			    int rc, const char *expected)
{
	(void)obj;
	if (rc != 0)
		snprintf(why, cap, "'%s' is not one of %s", conf_shown(kw, val), expected);
	return rc;
}

static int parse_audit_transport(const struct kw *kw, const char *val, void *obj,
				 const struct pctx *pc, char *why, size_t cap)
{
	(void)pc;
	return parse_audit_enum(kw, val, obj, why, cap,
				zg_audit_transport_parse(val, conf_field_of(obj, kw->off)), "tls, udp");
}

static void print_audit_transport(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const enum zg_audit_transport *)conf_cfield_of(obj, kw->off) == ZG_AUDIT_UDP
			      ? "udp" : "tls");
}

static int parse_audit_policy(const struct kw *kw, const char *val, void *obj,
			      const struct pctx *pc, char *why, size_t cap)
{
	(void)pc;
	return parse_audit_enum(kw, val, obj, why, cap,
				zg_audit_full_policy_parse(val, conf_field_of(obj, kw->off)),
				"refuse-new-connections, drop-oldest");
}

static void print_audit_policy(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const enum zg_audit_full_policy *)conf_cfield_of(obj, kw->off) ==
				  ZG_AUDIT_DROP_OLDEST ? "drop-oldest" : "refuse-new-connections");
}

static int parse_audit_verbosity(const struct kw *kw, const char *val, void *obj,
				 const struct pctx *pc, char *why, size_t cap)
{
	(void)pc;
	return parse_audit_enum(kw, val, obj, why, cap,
				zg_audit_verbosity_parse(val, conf_field_of(obj, kw->off)),
				"alerts, connections");
}

static void print_audit_verbosity(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, *(const enum zg_audit_verbosity *)conf_cfield_of(obj, kw->off) ==
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
	if (conf_parse_ull(val, n, &v) < 0 || v > kw->max / mul || v * mul < kw->min) {
		snprintf(why, cap, "'%s' is not a size in %llu..%llu bytes (suffix K, M or G allowed)",
			 conf_shown(kw, val), kw->min, kw->max);
		return -1;
	}
	*(uint64_t *)conf_field_of(obj, kw->off) = v * mul;
	return 0;
}

static void print_bytes(const struct kw *kw, const void *obj, FILE *out)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu",
		 (unsigned long long)*(const uint64_t *)conf_cfield_of(obj, kw->off));
	print_kv(out, kw, buf);
}

/* syslog_target: host:port, [v6]:port or host; checked fully when audit starts. */
static int parse_hostport(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			  char *why, size_t cap)
{
	(void)pc;
	for (const char *p = val; *p; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
			snprintf(why, cap, "'%s' is not host:port", conf_shown(kw, val));
			return -1;
		}
	}
	if (conf_copy_str(conf_field_of(obj, kw->off), kw->size, val, strlen(val)) < 0) {
		snprintf(why, cap, "too long (max %zu characters)", kw->size - 1);
		return -1;
	}
	return 0;
}

const struct kw_type T_AUDIT_TRANSPORT = {parse_audit_transport, print_audit_transport};
const struct kw_type T_AUDIT_POLICY = {parse_audit_policy, print_audit_policy};
const struct kw_type T_AUDIT_VERBOSITY = {parse_audit_verbosity, print_audit_verbosity};
const struct kw_type T_BYTES = {parse_bytes, print_bytes};
const struct kw_type T_HOSTPORT = {parse_hostport, print_str};

/* ---- clinical protocol inspection (docs/protocols.md) --------------------- */

static int parse_inspect(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			 char *why, size_t cap)
{
	static const enum zg_inspect kinds[] = {ZG_INSPECT_NONE, ZG_INSPECT_DICOM, ZG_INSPECT_HL7};

	(void)pc;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(val, zg_inspect_name(kinds[i])) == 0) {
			*(enum zg_inspect *)conf_field_of(obj, kw->off) = kinds[i];
			return 0;
		}
	}
	snprintf(why, cap, "'%s' is not an inspection (expected none, dicom or hl7-mllp)",
		 conf_shown(kw, val));
	return -1;
}

static void print_inspect(const struct kw *kw, const void *obj, FILE *out)
{
	print_kv(out, kw, zg_inspect_name(*(const enum zg_inspect *)conf_cfield_of(obj, kw->off)));
}

/* An AE title (PS3.5 VR AE): 1-16 characters of printable ASCII but the
 * backslash; leading/trailing spaces were trimmed by the list reader. */
static int valid_ae(const char *s, size_t n)
{
	if (n == 0 || n > ZG_AE_TITLE_MAX - 1)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '\\')
			return 0;
	return 1;
}

/* A UID: 1-64 of digits and dots, no empty component. */
static int valid_uid(const char *s, size_t n)
{
	if (n == 0 || n > ZG_UID_NAME_MAX - 1 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((s[i] != '.' && (s[i] < '0' || s[i] > '9')) || (s[i] == '.' && s[i + 1] == '.'))
			return 0;
	return 1;
}

/* An HL7 message type pattern: CODE, CODE^TRIGGER or CODE^*, letters,
 * digits and underscore. */
static int valid_hl7_type(const char *s, size_t n)
{
	size_t code = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");

	if (n == 0 || n > ZG_HL7_TYPE_NAME_MAX - 1 || code == 0 || code > n)
		return 0;
	if (code == n)
		return 1;
	if (s[code] != '^' || code + 1 == n)
		return 0;
	if (n - code - 1 == 1 && s[code + 1] == '*')
		return 1;
	return strspn(s + code + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n - code - 1;
}

/* A comma-separated list into a [kw->size][@elem] array with its count at
 * kw->aux_off; blanks around entries are trimmed (an AE title may hold
 * inner spaces). */
static int parse_word_list(const struct kw *kw, const char *val, void *obj, size_t elem,
			   int (*ok)(const char *, size_t), const char *what, char *why, size_t cap)
{
	char *arr = conf_field_of(obj, kw->off);
	unsigned *n = conf_field_of(obj, kw->aux_off);
	const char *p = val;

	*n = 0;
	for (;;) {
		size_t len = strcspn(p, ",");
		const char *e = p + len;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (*n >= kw->size) {
			snprintf(why, cap, "more than %zu entries", kw->size);
			return -1;
		}
		if (!ok(p, (size_t)(e - p))) {
			snprintf(why, cap, "'%.*s' is not %s", (int)(e - p), p, what);
			return -1;
		}
		memcpy(arr + (size_t)*n * elem, p, (size_t)(e - p));
		arr[(size_t)*n * elem + (size_t)(e - p)] = '\0';
		(*n)++;
		p += len;
		if (!*p)
			return 0;
		p++;
	}
}

static int parse_ae_list(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			 char *why, size_t cap)
{
	(void)pc;
	return parse_word_list(kw, val, obj, ZG_AE_TITLE_MAX, valid_ae,
			       "an AE title (1-16 printable characters, no backslash)", why, cap);
}

static int parse_uid_list(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			  char *why, size_t cap)
{
	(void)pc;
	return parse_word_list(kw, val, obj, ZG_UID_NAME_MAX, valid_uid, "a UID (digits and dots)", why,
			       cap);
}

static int parse_hl7_types(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			   char *why, size_t cap)
{
	(void)pc;
	return parse_word_list(kw, val, obj, ZG_HL7_TYPE_NAME_MAX, valid_hl7_type,
			       "a message type (ADT, ADT^A01 or ADT^*)", why, cap);
}

static void print_word_list(const struct kw *kw, const void *obj, size_t elem, FILE *out)
{
	const char *arr = conf_cfield_of(obj, kw->off);
	const unsigned *n = conf_cfield_of(obj, kw->aux_off);

	if (*n == 0) {
		fprintf(out, "; %s not set\n", kw->name);
		return;
	}
	fprintf(out, "%s = ", kw->name);
	for (unsigned i = 0; i < *n; i++)
		fprintf(out, "%s%s", i ? ", " : "", arr + (size_t)i * elem);
	fprintf(out, "\n");
}

static void print_ae_list(const struct kw *kw, const void *obj, FILE *out)
{
	print_word_list(kw, obj, ZG_AE_TITLE_MAX, out);
}

static void print_uid_list(const struct kw *kw, const void *obj, FILE *out)
{
	print_word_list(kw, obj, ZG_UID_NAME_MAX, out);
}

static void print_hl7_types(const struct kw *kw, const void *obj, FILE *out)
{
	print_word_list(kw, obj, ZG_HL7_TYPE_NAME_MAX, out);
}

const struct kw_type T_INSPECT = {parse_inspect, print_inspect};
const struct kw_type T_AE_LIST = {parse_ae_list, print_ae_list};
const struct kw_type T_UID_LIST = {parse_uid_list, print_uid_list};
const struct kw_type T_HL7_TYPES = {parse_hl7_types, print_hl7_types};
