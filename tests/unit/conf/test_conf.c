/* test_conf.c - the configuration loader (conf.c).
 *
 * Error messages are checked as golden pairs: tests/conf/bad/NAME.conf is
 * parsed as "NAME.conf" (file checks off) and its errors must equal
 * tests/conf/bad/NAME.expected line for line. Checks that need real files
 * (key permissions, missing files, a writable config) use a temp dir.
 * ZG_SRCDIR (set by tests/meson.build) locates the golden files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static void conf_path(char *out, size_t cap, const char *rel)
{
	const char *src = getenv("ZG_SRCDIR");

	assert_non_null(src); /* tests/meson.build sets it */
	snprintf(out, cap, "%s/tests/conf/%s", src, rel);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* The errors as one string, one message per line. */
static void join_errors(const struct zg_errlist *el, char *out, size_t cap)
{
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < el->n && k < cap; i++) {
		int w = snprintf(out + k, cap - k, "%s\n", el->msg[i]);
		k = w < 0 ? cap : k + (size_t)w;
	}
}

static struct zg_conf *parse_pure(const char *text, struct zg_errlist *el)
{
	zg_errlist_init(el);
	return zg_conf_parse_flags(text, "t.conf", ZG_CONF_NO_FILE_CHECKS, el);
}

/* Parse @text (file checks off) and expect exactly the errors @want. */
static void expect_errors(const char *text, const char *want)
{
	static struct zg_errlist el;
	char got[8192];
	struct zg_conf *c = parse_pure(text, &el);

	join_errors(&el, got, sizeof(got));
	if (strcmp(got, want) != 0)
		print_error("want:\n%sgot:\n%s", want, got);
	assert_string_equal(got, want);
	assert_null(c);
}

/* ---- golden error files ------------------------------------------------- */

static int golden_one(const char *dir, const char *file)
{
	static struct zg_errlist el;
	char path[1024], got[16384];
	char *text, *want;
	struct zg_conf *c;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	text = read_text(path);
	snprintf(path + strlen(path) - strlen(".conf"), 16, ".expected");
	want = read_text(path);
	if (!text || !want) {
		print_error("%s: cannot read the .conf or its .expected\n", file);
		free(text);
		free(want);
		return 0;
	}
	zg_errlist_init(&el);
	c = zg_conf_parse_flags(text, file, ZG_CONF_NO_FILE_CHECKS, &el);
	join_errors(&el, got, sizeof(got));
	ok = c == NULL && el.n > 0 && strcmp(got, want) == 0;
	if (!ok)
		print_error("%s: want:\n%sgot:\n%s", file, want, got);
	zg_conf_free(c);
	free(text);
	free(want);
	return ok;
}

static void golden_bad_files(void **state)
{
	char dir[1024];
	DIR *d;
	struct dirent *e;
	unsigned n = 0, failed = 0;

	(void)state;
	conf_path(dir, sizeof(dir), "bad");
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".conf") != 0)
			continue;
		n++;
		failed += !golden_one(dir, e->d_name);
	}
	closedir(d);
	assert_int_equal(failed, 0);
	assert_true(n >= 30); /* the directory really was found and read */
}

/* ---- valid files --------------------------------------------------------- */

static struct zg_conf *parse_ok_file(const char *rel)
{
	static struct zg_errlist el;
	char path[1024];
	char *text;
	struct zg_conf *c;

	conf_path(path, sizeof(path), rel);
	text = read_text(path);
	assert_non_null(text);
	zg_errlist_init(&el);
	c = zg_conf_parse_flags(text, strrchr(rel, '/') + 1, ZG_CONF_NO_FILE_CHECKS, &el);
	free(text);
	if (!c)
		zg_errlist_print(&el, stderr);
	assert_non_null(c);
	assert_int_equal(el.n, 0);
	return c;
}

static void full_file_values(void **state)
{
	struct zg_conf *c = parse_ok_file("ok/full.conf");
	const struct zg_conf_route *r;
	char buf[64];

	(void)state;
	assert_string_equal(c->path, "full.conf");
	assert_string_equal(c->gw.name, "site-a");
	assert_int_equal(c->gw.workers, 2);
	assert_int_equal(c->gw.log_level, ZG_LOG_DEBUG);
	assert_int_equal(c->gw.max_connections, 5000);
	assert_int_equal(c->gw.drain_timeout_ms, 60000);
	assert_string_equal(c->gw.user, "zonegate");
	assert_int_equal(c->gw.handshake_timeout_ms, 15000);
	assert_int_equal(c->gw.idle_timeout_ms, 3600000);
	assert_int_equal(c->gw.connect_timeout_ms, 2500);

	assert_string_equal(c->tls.profile, "bcp195");
	assert_string_equal(c->tls.certificate, "/etc/zonegate/site-a.crt");
	assert_string_equal(c->tls.key, "/etc/zonegate/site-a.key");
	assert_string_equal(c->tls.chain, "/etc/zonegate/chain.pem");
	assert_string_equal(c->tls.trust_anchors, "/etc/zonegate/root.pem");
	assert_int_equal(c->tls.n_crl, 2);
	assert_string_equal(c->tls.crl[0], "/etc/zonegate/a.crl.pem");
	assert_string_equal(c->tls.crl[1], "/etc/zonegate/b.crl.pem");
	assert_int_equal(c->tls.verify_depth, 3);
	assert_int_equal(c->tls.session_cache, 0);
	assert_int_equal(c->tls.session_cache_size, 1000);
	assert_int_equal(c->tls.session_timeout_s, 120);
	assert_int_equal(c->tls.session_tickets, 1);
	assert_int_equal(c->tls.line_certificate, 14);
	assert_int_equal(c->tls.line_key, 15);
	assert_int_equal(c->tls.line_chain, 16);
	assert_int_equal(c->tls.line_trust_anchors, 17);
	assert_int_equal(c->tls.line_crl, 18);

	assert_int_equal(c->n_routes, 3);
	r = &c->routes[0];
	assert_string_equal(r->name, "pacs-out");
	assert_int_equal(r->mode, ZG_MODE_WRAP);
	assert_true(zg_route_tls_out(r) && !zg_route_tls_in(r));
	assert_string_equal(r->listen.host, "127.0.0.1");
	assert_string_equal(r->listen.port, "11112");
	assert_string_equal(r->connect.m[0].ep.host, "pacs.site-b.example");
	assert_string_equal(r->connect.m[0].ep.port, "2762");
	assert_string_equal(r->server_name, "pacs.site-b.example");
	assert_string_equal(r->profile, "bcp195"); /* from [tls] */
	assert_int_equal(r->n_allow_from, 3);
	zg_prefix_format(&r->allow_from[2], buf, sizeof(buf));
	assert_string_equal(buf, "10.20.0.0/16");
	assert_int_equal(r->max_connections, 100);
	assert_int_equal(r->handshake_timeout_ms, 5000);
	assert_int_equal(r->idle_timeout_ms, 1800000);
	assert_int_equal(r->connect_timeout_ms, 1000);
	assert_int_equal(r->line, 25);
	assert_int_equal(r->line_listen, 27);
	assert_int_equal(r->line_connect, 28);

	r = &c->routes[1];
	assert_string_equal(r->name, "pacs-in");
	assert_int_equal(r->mode, ZG_MODE_UNWRAP);
	assert_string_equal(r->listen.host, "::1");
	assert_string_equal(r->listen.port, "2762");
	assert_string_equal(r->profile, "cryptrec-high"); /* its own */
	assert_int_equal(r->n_allow_from, 0);
	/* unset route keys come from [gateway] */
	assert_int_equal(r->max_connections, 5000);
	assert_int_equal(r->handshake_timeout_ms, 15000);
	assert_int_equal(r->idle_timeout_ms, 3600000);
	assert_int_equal(r->connect_timeout_ms, 2500);

	r = &c->routes[2];
	assert_int_equal(r->mode, ZG_MODE_BRIDGE);
	assert_true(zg_route_tls_in(r) && zg_route_tls_out(r));
	assert_string_equal(r->listen.host, "*");
	assert_string_equal(r->connect.m[0].ep.host, "2001:db8::10");
	assert_string_equal(r->server_name, "urn:oid:1.2.392.200119.1");
	zg_conf_free(c);
}

static void defaults(void **state)
{
	struct zg_conf *c = parse_ok_file("ok/minimal.conf");
	const struct zg_conf_route *r = &c->routes[0];

	(void)state;
	assert_string_equal(c->gw.name, ""); /* zg_conf_load fills in the host name */
	assert_int_equal(c->gw.workers, 0);
	assert_int_equal(c->gw.log_level, ZG_LOG_INFO);
	assert_int_equal(c->gw.max_connections, 10000);
	assert_string_equal(c->gw.user, "");
	assert_int_equal(c->gw.drain_timeout_ms, 30000);
	assert_int_equal(c->gw.handshake_timeout_ms, 10000);
	assert_int_equal(c->gw.idle_timeout_ms, 120000); /* set after the route */
	assert_int_equal(c->gw.connect_timeout_ms, 5000);
	assert_string_equal(c->tls.profile, "cryptrec-high");
	assert_string_equal(c->tls.chain, "");
	assert_int_equal(c->tls.n_crl, 0);
	assert_int_equal(c->tls.line_chain, 0);
	assert_int_equal(c->tls.verify_depth, 4);
	assert_int_equal(c->tls.session_cache, 1);
	assert_int_equal(c->tls.session_cache_size, 20480);
	assert_int_equal(c->tls.session_timeout_s, 300);
	assert_int_equal(c->tls.session_tickets, 0);
	assert_int_equal(c->n_routes, 1);
	assert_string_equal(r->profile, "cryptrec-high");
	assert_int_equal(r->max_connections, 10000);
	assert_int_equal(r->handshake_timeout_ms, 10000);
	assert_int_equal(r->idle_timeout_ms, 120000); /* section order does not matter */
	assert_int_equal(r->connect_timeout_ms, 5000);
	zg_conf_free(c);
}

static char *print_to_string(const struct zg_conf *c)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	zg_conf_print(c, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void print_golden_and_round_trip(void **state)
{
	static struct zg_errlist el;
	struct zg_conf *c = parse_ok_file("ok/full.conf"), *c2;
	char path[1024];
	char *want, *got, *got2;

	(void)state;
	conf_path(path, sizeof(path), "ok/full.print");
	want = read_text(path);
	assert_non_null(want);
	got = print_to_string(c);
	assert_string_equal(got, want);
	/* the printed settings are a configuration file that means the same */
	zg_errlist_init(&el);
	c2 = zg_conf_parse_flags(got, "full.conf", ZG_CONF_NO_FILE_CHECKS, &el);
	assert_non_null(c2);
	got2 = print_to_string(c2);
	assert_string_equal(got2, got);
	zg_conf_free(c);
	zg_conf_free(c2);
	free(want);
	free(got);
	free(got2);
}

static const char base_tls[] = "[tls]\n"
			       "certificate = /etc/zonegate/a.crt\n"
			       "key = /etc/zonegate/a.key\n"
			       "trust_anchors = /etc/zonegate/root.pem\n";

static void syntax_variants(void **state)
{
	static struct zg_errlist el;
	struct zg_conf *c;
	char text[2048];

	(void)state;
	/* BOM, CRLF, indentation (never a continuation line), ':' separator,
	 * inline ; comments, # comments, case-insensitive booleans */
	snprintf(text, sizeof(text),
		 "\xef\xbb\xbf# comment\r\n%s"
		 "  session_tickets = TRUE ; inline comment\r\n"
		 "[route r1]\r\n"
		 "\tmode = unwrap\r\n"
		 "    listen: 127.0.0.1:2762\r\n"
		 "connect = 127.0.0.1:104\r\n",
		 base_tls);
	c = parse_pure(text, &el);
	zg_errlist_print(&el, stderr);
	assert_non_null(c);
	assert_int_equal(c->tls.session_tickets, 1);
	assert_string_equal(c->routes[0].listen.port, "2762");
	assert_string_equal(c->routes[0].connect.m[0].ep.port, "104");
	zg_conf_free(c);
}

static void durations_and_units(void **state)
{
	static struct zg_errlist el;
	struct zg_conf *c;
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text),
		 "[gateway]\ndrain_timeout = 0\nhandshake_timeout = 100ms\nidle_timeout = 24h\n"
		 "connect_timeout = 7\nworkers = auto\n%s"
		 "[route r]\nmode = unwrap\nlisten = [::]:1\nconnect = h:65535\n",
		 base_tls);
	c = parse_pure(text, &el);
	assert_non_null(c);
	assert_int_equal(c->gw.drain_timeout_ms, 0);
	assert_int_equal(c->gw.handshake_timeout_ms, 100);
	assert_int_equal(c->gw.idle_timeout_ms, 86400000);
	assert_int_equal(c->gw.connect_timeout_ms, 7000); /* bare number = seconds */
	assert_int_equal(c->gw.workers, 0);
	zg_conf_free(c);
}

/* [admin] expiry_warn: sorted far to near, defaults to 30d 7d 1d; zero,
 * duplicates, too many, no unit and out of range are errors at file:line. */
static void expiry_warn_thresholds(void **state)
{
	static struct zg_errlist el;
	struct zg_conf *c;
	char text[1024];
	const char *tail = "[route r]\nmode = unwrap\nlisten = [::]:1\nconnect = h:1\n";

	(void)state;
	snprintf(text, sizeof(text), "%s%s", base_tls, tail);
	c = parse_pure(text, &el);
	assert_non_null(c);
	assert_int_equal(c->admin.n_expiry_warn, 3);
	assert_int_equal(c->admin.expiry_warn[0], 30);
	assert_int_equal(c->admin.expiry_warn[2], 1);
	zg_conf_free(c);
	snprintf(text, sizeof(text), "%s[admin]\nexpiry_warn = 2d, 400d 14d\n%s", base_tls, tail);
	c = parse_pure(text, &el);
	assert_non_null(c);
	assert_int_equal(c->admin.n_expiry_warn, 3);
	assert_int_equal(c->admin.expiry_warn[0], 400);
	assert_int_equal(c->admin.expiry_warn[1], 14);
	assert_int_equal(c->admin.expiry_warn[2], 2);
	zg_conf_free(c);
	expect_errors("[admin]\nexpiry_warn = 30d 7d 30d\n",
		      "t.conf:2: expiry_warn: 30d given twice\n");
	expect_errors("[admin]\nexpiry_warn = 0d\n",
		      "t.conf:2: expiry_warn: 0d is out of range (1d..3650d)\n");
	expect_errors("[admin]\nexpiry_warn = 9d 8d 7d 6d 5d 4d 3d 2d 1d\n",
		      "t.conf:2: expiry_warn: more than 8 thresholds\n");
	expect_errors("[admin]\nexpiry_warn = 30\n",
		      "t.conf:2: expiry_warn: '30' is not a number of days (expected e.g. 30d)\n");
	expect_errors("[admin]\nexpiry_warn = -1d\n",
		      "t.conf:2: expiry_warn: '-1d' is not a number of days (expected e.g. 30d)\n");
}

/* [admin] tls = on needs a listener; identity and trust need tls = on and
 * name sections of the file. */
static void admin_tls_needs(void **state)
{
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text), "%s[admin]\ntls = on\n[route r]\nmode = unwrap\n"
		 "listen = [::]:1\nconnect = h:1\n", base_tls);
	expect_errors(text, "t.conf:6: tls: needs listen in [admin]\n");
	snprintf(text, sizeof(text), "%s[admin]\nlisten = 127.0.0.1:9\nidentity = x\ntrust = tls\n"
		 "[route r]\nmode = unwrap\nlisten = [::]:1\nconnect = h:1\n", base_tls);
	expect_errors(text, "t.conf:7: identity: needs tls = on in [admin]\n"
		      "t.conf:8: trust: needs tls = on in [admin]\n");
	snprintf(text, sizeof(text), "%s[admin]\nlisten = 127.0.0.1:9\ntls = on\ntrust = scrapers\n"
		 "[route r]\nmode = unwrap\nlisten = [::]:1\nconnect = h:1\n", base_tls);
	expect_errors(text, "t.conf:8: trust: [admin]: no [trust scrapers] in this file\n");
}

/* 0.0.0.0 takes only IPv4; [::] and * take both families; an IPv4-mapped
 * IPv6 address is the IPv4 address. */
static void listen_collisions(void **state)
{
	char text[2048];

	(void)state;
	snprintf(text, sizeof(text),
		 "%s"
		 "[route a]\nmode = unwrap\nlisten = 0.0.0.0:80\nconnect = h:1\n"
		 "[route b]\nmode = unwrap\nlisten = [::1]:80\nconnect = h:1\n"
		 "[route c]\nmode = unwrap\nlisten = 127.0.0.1:80\nconnect = h:1\n"
		 "[route d]\nmode = unwrap\nlisten = [::]:81\nconnect = h:1\n"
		 "[route e]\nmode = unwrap\nlisten = 127.0.0.1:81\nconnect = h:1\n"
		 "[route f]\nmode = unwrap\nlisten = 127.0.0.1:82\nconnect = h:1\n"
		 "[route g]\nmode = unwrap\nlisten = [::ffff:127.0.0.1]:82\nconnect = h:1\n"
		 "[route h]\nmode = unwrap\nlisten = 127.0.0.2:83\nconnect = h:1\n",
		 base_tls);
	expect_errors(text,
		      "t.conf:15: listen: 127.0.0.1:80 conflicts with listen = 0.0.0.0:80 of "
		      "[route a] (line 7)\n"
		      "t.conf:23: listen: 127.0.0.1:81 conflicts with listen = [::]:81 of "
		      "[route d] (line 19)\n"
		      "t.conf:31: listen: [::ffff:127.0.0.1]:82 conflicts with listen = "
		      "127.0.0.1:82 of [route f] (line 27)\n");
}

static void too_many_routes(void **state)
{
	size_t cap = (ZG_ROUTES_MAX + 2) * 80 + 512, k;
	char *text = malloc(cap);
	char want[256];

	(void)state;
	assert_non_null(text);
	k = (size_t)snprintf(text, cap, "%s", base_tls);
	for (int i = 0; i <= ZG_ROUTES_MAX; i++)
		k += (size_t)snprintf(text + k, cap - k,
				      "[route r%d]\nmode = unwrap\nlisten = *:%d\nconnect = h:1\n", i,
				      1000 + i);
	snprintf(want, sizeof(want), "t.conf:%d: [route r%d]: too many routes (max %d)\n",
		 5 + 4 * ZG_ROUTES_MAX, ZG_ROUTES_MAX, ZG_ROUTES_MAX);
	expect_errors(text, want);
	free(text);
}

static void many_errors_are_bounded(void **state)
{
	static struct zg_errlist el;
	size_t cap = 200 * 16, k = 0;
	char *text = malloc(cap);

	(void)state;
	assert_non_null(text);
	for (int i = 0; i < 200; i++)
		k += (size_t)snprintf(text + k, cap - k, "x%d = 1\n", i);
	assert_null(parse_pure(text, &el));
	assert_int_equal(el.n, ZG_ERRLIST_MAX);
	assert_true(el.dropped > 0);
	free(text);
}

static void path_too_long_after_resolving(void **state)
{
	static struct zg_errlist el;
	char name[600], text[1024], want[1024];
	struct zg_conf *c;

	(void)state;
	char rel[200];

	/* a 350-byte directory plus a 180-byte relative path overflow 511 */
	memset(name, 'd', 350);
	snprintf(name + 350, sizeof(name) - 350, "/z.conf");
	memset(rel, 'c', 180);
	rel[180] = '\0';
	snprintf(text, sizeof(text),
		 "[tls]\ncertificate = %s\nkey = /k\ntrust_anchors = /r\n"
		 "[route r]\nmode = unwrap\nlisten = *:1\nconnect = h:1\n", rel);
	zg_errlist_init(&el);
	c = zg_conf_parse_flags(text, name, ZG_CONF_NO_FILE_CHECKS, &el);
	assert_null(c);
	snprintf(want, sizeof(want), "%s:2: certificate: path too long (max 511 bytes after "
		 "resolving it against the directory of the configuration file)", name);
	assert_int_equal(el.n, 1);
	assert_string_equal(el.msg[0], want);
}

static void relative_paths_resolve(void **state)
{
	static struct zg_errlist el;
	struct zg_conf *c;

	(void)state;
	zg_errlist_init(&el);
	c = zg_conf_parse_flags("[tls]\ncertificate = a.crt\nkey = /abs/a.key\n"
				"trust_anchors = ca/root.pem\ncrl = x.crl, /y.crl\n"
				"[route r]\nmode = unwrap\nlisten = *:1\nconnect = h:1\n",
				"/etc/zonegate/zonegate.conf", ZG_CONF_NO_FILE_CHECKS, &el);
	assert_non_null(c);
	assert_string_equal(c->tls.certificate, "/etc/zonegate/a.crt");
	assert_string_equal(c->tls.key, "/abs/a.key");
	assert_string_equal(c->tls.trust_anchors, "/etc/zonegate/ca/root.pem");
	assert_string_equal(c->tls.crl[0], "/etc/zonegate/x.crl");
	assert_string_equal(c->tls.crl[1], "/y.crl");
	zg_conf_free(c);
}

struct doc_check {
	const char *doc;
	unsigned missing, keys;
};

/* The text of "## [SECTION..." up to the next "## " heading, or NULL. */
static const char *doc_section(const char *doc, const char *section, size_t *len)
{
	char head[64];
	const char *p, *end;

	snprintf(head, sizeof(head), "\n## [%s", section);
	p = strstr(doc, head);
	if (!p)
		return NULL;
	p++;
	end = strstr(p, "\n## ");
	*len = end ? (size_t)(end - p) : strlen(p);
	return p;
}

static void doc_has_key(const char *section, const char *key, void *arg)
{
	struct doc_check *dc = arg;
	char quoted[80];
	size_t len = 0;
	const char *text = doc_section(dc->doc, section, &len);
	const char *hit;

	dc->keys++;
	snprintf(quoted, sizeof(quoted), "`%s`", key);
	hit = text ? strstr(text, quoted) : NULL;
	if (!hit || hit >= text + len) {
		print_error("docs/configuration.md: no %s under '## [%s'\n", quoted, section);
		dc->missing++;
	}
}

/* Every keyword in the tables is documented in its section of
 * docs/configuration.md, so a new key cannot ship undocumented. */
static void every_key_documented(void **state)
{
	char path[1024];
	struct doc_check dc = {NULL, 0, 0};
	const char *src = getenv("ZG_SRCDIR");

	(void)state;
	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/docs/configuration.md", src);
	dc.doc = read_text(path);
	assert_non_null(dc.doc);
	zg_conf_each_key(doc_has_key, &dc);
	assert_true(dc.keys >= 30);
	assert_int_equal(dc.missing, 0);
	free((char *)dc.doc);
}

static void mode_names(void **state)
{
	(void)state;
	assert_string_equal(zg_mode_name(ZG_MODE_WRAP), "wrap");
	assert_string_equal(zg_mode_name(ZG_MODE_UNWRAP), "unwrap");
	assert_string_equal(zg_mode_name(ZG_MODE_BRIDGE), "bridge");
	assert_string_equal(zg_mode_name((enum zg_mode)42), "unknown");
}

/* ---- checks on real files -------------------------------------------------- */

struct tmp {
	char dir[256];
	char conf[300], crt[300], key[300], ca[300], crl[300];
};

static void tmp_setup(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/zg-test-conf-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->conf, sizeof(t->conf), "%s/zonegate.conf", t->dir);
	snprintf(t->crt, sizeof(t->crt), "%s/site.crt", t->dir);
	snprintf(t->key, sizeof(t->key), "%s/site.key", t->dir);
	snprintf(t->ca, sizeof(t->ca), "%s/root.pem", t->dir);
	snprintf(t->crl, sizeof(t->crl), "%s/a.crl.pem", t->dir);
	write_file(t->crt, "cert\n", 0644);
	write_file(t->key, "key\n", 0600);
	write_file(t->ca, "ca\n", 0644);
	write_file(t->crl, "crl\n", 0644);
}

static void tmp_teardown(struct tmp *t)
{
	const char *files[] = {t->conf, t->crt, t->key, t->ca, t->crl};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	assert_int_equal(rmdir(t->dir), 0);
}

/* A config naming the temp files (relative names: resolved against dir). */
static void tmp_conf(const struct tmp *t, const char *extra_tls, mode_t mode)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "[gateway]\nname = t\n"
		 "[tls]\ncertificate = site.crt\nkey = site.key\ntrust_anchors = root.pem\n%s"
		 "[route r]\nmode = unwrap\nlisten = 127.0.0.1:2762\nconnect = 127.0.0.1:104\n",
		 extra_tls);
	write_file(t->conf, text, mode);
}

static struct zg_conf *load(const struct tmp *t, struct zg_errlist *el, char *got, size_t cap)
{
	struct zg_conf *c;

	zg_errlist_init(el);
	c = zg_conf_load(t->conf, el);
	join_errors(el, got, cap);
	return c;
}

static void key_permissions(void **state)
{
	static struct zg_errlist el;
	struct tmp t;
	struct zg_conf *c;
	char got[2048], want[2048];

	(void)state;
	tmp_setup(&t);
	tmp_conf(&t, "", 0600);
	c = load(&t, &el, got, sizeof(got));
	assert_string_equal(got, "");
	assert_non_null(c);
	assert_string_equal(c->tls.key, t.key);
	zg_conf_free(c);

	assert_int_equal(chmod(t.key, 0640), 0); /* group ssl-cert style: allowed */
	c = load(&t, &el, got, sizeof(got));
	assert_non_null(c);
	zg_conf_free(c);

	assert_int_equal(chmod(t.key, 0644), 0);
	c = load(&t, &el, got, sizeof(got));
	assert_null(c);
	snprintf(want, sizeof(want),
		 "%s:5: key: %s is readable by every user (mode 0644); run 'chmod 600 %s'\n",
		 t.conf, t.key, t.key);
	assert_string_equal(got, want);

	assert_int_equal(chmod(t.key, 0602), 0);
	c = load(&t, &el, got, sizeof(got));
	assert_null(c);
	snprintf(want, sizeof(want),
		 "%s:5: key: %s is accessible by every user (mode 0602); run 'chmod 600 %s'\n",
		 t.conf, t.key, t.key);
	assert_string_equal(got, want);

	/* missing key file */
	assert_int_equal(unlink(t.key), 0);
	c = load(&t, &el, got, sizeof(got));
	assert_null(c);
	snprintf(want, sizeof(want), "%s:5: key: cannot read %s: No such file or directory\n",
		 t.conf, t.key);
	assert_string_equal(got, want);
	write_file(t.key, "key\n", 0600);
	tmp_teardown(&t);
}

static void named_files_must_exist(void **state)
{
	static struct zg_errlist el;
	struct tmp t;
	struct zg_conf *c;
	char got[4096], want[4096];

	(void)state;
	tmp_setup(&t);
	tmp_conf(&t, "chain = .\ncrl = a.crl.pem, gone.crl.pem\n", 0644);
	assert_int_equal(unlink(t.crt), 0);
	assert_int_equal(unlink(t.ca), 0);
	c = load(&t, &el, got, sizeof(got));
	assert_null(c);
	snprintf(want, sizeof(want),
		 "%s:4: certificate: cannot read %s: No such file or directory\n"
		 "%s:7: chain: %s/. is not a regular file\n"
		 "%s:6: trust_anchors: cannot read %s: No such file or directory\n"
		 "%s:8: crl: cannot read %s/gone.crl.pem: No such file or directory\n",
		 t.conf, t.crt, t.conf, t.dir, t.conf, t.ca, t.conf, t.dir);
	assert_string_equal(got, want);

	/* the same text parses when file checks are off (the fuzzer's mode) */
	write_file(t.crt, "cert\n", 0644);
	write_file(t.ca, "ca\n", 0644);
	tmp_teardown(&t);
}

static void config_file_permissions(void **state)
{
	static struct zg_errlist el;
	struct tmp t;
	struct zg_conf *c;
	char got[2048], want[2048];

	(void)state;
	tmp_setup(&t);
	tmp_conf(&t, "", 0664);
	c = load(&t, &el, got, sizeof(got));
	assert_null(c);
	snprintf(want, sizeof(want),
		 "%s: refusing a group- or world-writable configuration file (mode 0664); "
		 "run 'chmod go-w %s'\n", t.conf, t.conf);
	assert_string_equal(got, want);

	assert_int_equal(chmod(t.conf, 0646), 0);
	c = load(&t, &el, got, sizeof(got));
	assert_null(c);

	assert_int_equal(chmod(t.conf, 0644), 0);
	c = load(&t, &el, got, sizeof(got));
	assert_string_equal(got, "");
	assert_non_null(c);
	zg_conf_free(c);
	tmp_teardown(&t);
}

static void load_failures(void **state)
{
	static struct zg_errlist el;
	struct tmp t;
	struct zg_conf *c;
	char got[2048], want[2048];

	(void)state;
	tmp_setup(&t);
	c = load(&t, &el, got, sizeof(got)); /* no zonegate.conf yet */
	assert_null(c);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory\n", t.conf);
	assert_string_equal(got, want);

	write_file(t.conf, "[gateway]\n", 0644);
	assert_int_equal(truncate(t.conf, 20), 0); /* NUL bytes after the header */
	c = load(&t, &el, got, sizeof(got));
	assert_null(c);
	snprintf(want, sizeof(want), "%s: not a text file (contains a NUL byte)\n", t.conf);
	assert_string_equal(got, want);
	tmp_teardown(&t);
}

static void load_fills_host_name(void **state)
{
	static struct zg_errlist el;
	struct tmp t;
	struct zg_conf *c;
	char got[2048], host[256];
	char text[1024];

	(void)state;
	tmp_setup(&t);
	snprintf(text, sizeof(text),
		 "[tls]\ncertificate = %s\nkey = %s\ntrust_anchors = %s\n"
		 "[route r]\nmode = unwrap\nlisten = 127.0.0.1:2762\nconnect = h:1\n",
		 t.crt, t.key, t.ca);
	write_file(t.conf, text, 0600);
	c = load(&t, &el, got, sizeof(got));
	assert_string_equal(got, "");
	assert_non_null(c);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	if (strlen(host) < sizeof(c->gw.name))
		assert_string_equal(c->gw.name, host);
	zg_conf_free(c);
	tmp_teardown(&t);
}

/* A symlinked config file: relative paths follow the directory the
 * operator named, not the link target's; a file in / resolves to /x. */
static void load_resolves_against_named_dir(void **state)
{
	static struct zg_errlist el;
	struct tmp t;
	struct zg_conf *c;
	char got[2048], sub[280], link[300];

	(void)state;
	tmp_setup(&t);
	snprintf(sub, sizeof(sub), "%.256s/elsewhere", t.dir);
	snprintf(link, sizeof(link), "%s/link.conf", t.dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(unlink(t.crt), 0);
	tmp_conf(&t, "", 0644);
	assert_int_equal(rename(t.conf, t.crt), 0); /* the real file, away from the link */
	snprintf(t.conf, sizeof(t.conf), "%s/zonegate.conf", sub);
	assert_int_equal(rename(t.crt, t.conf), 0);
	assert_int_equal(symlink(t.conf, link), 0);
	write_file(t.crt, "cert\n", 0644);
	zg_errlist_init(&el);
	c = zg_conf_load(link, &el);
	join_errors(&el, got, sizeof(got));
	assert_string_equal(got, "");
	assert_non_null(c);
	assert_string_equal(c->tls.certificate, t.crt); /* next to the link */
	zg_conf_free(c);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(unlink(t.conf), 0);
	assert_int_equal(rmdir(sub), 0);
	tmp_teardown(&t);

	zg_errlist_init(&el);
	c = zg_conf_parse_flags("[tls]\ncertificate = a.crt\nkey = /k\ntrust_anchors = /r\n"
				"[route r]\nmode = unwrap\nlisten = *:1\nconnect = h:1\n",
				"/zonegate.conf", ZG_CONF_NO_FILE_CHECKS, &el);
	assert_non_null(c);
	assert_string_equal(c->tls.certificate, "/a.crt");
	zg_conf_free(c);
}

/* ---- trust domains ------------------------------------------------------- */

/* [identity] and [trust] parse with their defaults, [tls] becomes the
 * identity and store "tls", and each route side resolves to what it names. */
static void trust_domains_resolve(void **state)
{
	static struct zg_errlist el;
	static const char text[] =
		"[tls]\n"
		"certificate = /a.crt\n"
		"key = /a.key\n"
		"trust_anchors = /a-root.pem\n"
		"crl = /a.crl\n"
		"verify_depth = 2\n"
		"[identity b-client]\n"
		"certificate = /b-client.crt\n"
		"key = /b-client.key\n"
		"[trust b]\n"
		"trust_anchors = /b-root.pem\n"
		"crl = /b-root.crl, /b-int.crl\n"
		"[route in]\n"
		"mode = bridge\n"
		"listen = 127.0.0.1:1\n"
		"connect = 127.0.0.1:2\n"
		"server_name = b.example\n"
		"listen_identity = tls\n"
		"connect_identity = b-client\n"
		"connect_trust = b\n"
		"[crl b-int]\n"
		"url = http://crl.b.example/int.crl\n"
		"file = /b-int.crl\n";
	struct zg_conf *c = parse_pure(text, &el);
	const struct zg_conf_route *r;

	(void)state;
	assert_non_null(c);
	r = &c->routes[0];
	assert_int_equal(c->n_identities, 1);
	assert_int_equal(c->n_trusts, 1);
	assert_int_equal(c->trusts[0].verify_depth, 4);
	assert_int_equal(c->trusts[0].crl_stale_warn, 0);
	assert_int_equal(c->trusts[0].n_crl, 2);
	assert_int_equal(c->trusts[0].line, 10);
	assert_string_equal(c->tls_identity.name, "tls");
	assert_string_equal(c->tls_identity.certificate, "/a.crt");
	assert_int_equal(c->tls_identity.line_key, 3);
	assert_string_equal(c->tls_trust.trust_anchors, "/a-root.pem");
	assert_int_equal(c->tls_trust.verify_depth, 2);
	assert_int_equal(c->tls_trust.n_crl, 1);
	assert_ptr_equal(zg_route_identity(c, r, 0), &c->tls_identity);
	assert_ptr_equal(zg_route_identity(c, r, 1), &c->identities[0]);
	assert_ptr_equal(zg_route_trust(c, r, 0), &c->tls_trust);
	assert_ptr_equal(zg_route_trust(c, r, 1), &c->trusts[0]);
	assert_int_equal(zg_conf_trust_index(c, &c->tls_trust), 0);
	assert_int_equal(zg_conf_trust_index(c, &c->trusts[0]), 1);
	assert_true(zg_conf_identity_used(c, &c->identities[0]));
	assert_true(zg_conf_trust_used(c, &c->trusts[0]));
	assert_true(zg_conf_crl_loaded(c, "/b-int.crl"));
	assert_false(zg_conf_crl_loaded(c, "/c.crl"));
	zg_conf_free(c);
}

/* A file whose every TLS side names its own identity and store needs no
 * [tls] certificate, key or anchors; a side left on [tls] still does. */
static void trust_domains_tls_needs(void **state)
{
	static struct zg_errlist el;
	static const char head[] =
		"[identity srv]\n"
		"certificate = /s.crt\n"
		"key = /s.key\n"
		"[trust z]\n"
		"trust_anchors = /z.pem\n"
		"[route in]\n"
		"mode = unwrap\n"
		"listen = 127.0.0.1:1\n"
		"connect = 127.0.0.1:2\n"
		"listen_identity = srv\n";
	char text[1024];
	struct zg_conf *c;

	(void)state;
	snprintf(text, sizeof(text), "%slisten_trust = z\n", head);
	c = parse_pure(text, &el);
	assert_non_null(c);
	assert_ptr_equal(zg_route_identity(c, &c->routes[0], 0), &c->identities[0]);
	zg_conf_free(c);
	expect_errors(head, "t.conf:6: trust_anchors: required in [tls]: [route in] (mode unwrap) "
			    "verifies its TLS peers against them\n");
	/* nor can the audit sink borrow [tls]'s identity then */
	snprintf(text, sizeof(text), "%slisten_trust = z\n[audit]\nsyslog_target = 192.0.2.1:6514\n",
		 head);
	expect_errors(text, "t.conf:12: syslog_certificate: syslog over TLS needs syslog_certificate, "
			    "syslog_key and syslog_ca (or [tls] certificate, key and trust_anchors to "
			    "inherit)\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(golden_bad_files),
		cmocka_unit_test(full_file_values),
		cmocka_unit_test(defaults),
		cmocka_unit_test(print_golden_and_round_trip),
		cmocka_unit_test(syntax_variants),
		cmocka_unit_test(durations_and_units),
		cmocka_unit_test(expiry_warn_thresholds),
		cmocka_unit_test(admin_tls_needs),
		cmocka_unit_test(listen_collisions),
		cmocka_unit_test(too_many_routes),
		cmocka_unit_test(many_errors_are_bounded),
		cmocka_unit_test(path_too_long_after_resolving),
		cmocka_unit_test(relative_paths_resolve),
		cmocka_unit_test(mode_names),
		cmocka_unit_test(every_key_documented),
		cmocka_unit_test(key_permissions),
		cmocka_unit_test(named_files_must_exist),
		cmocka_unit_test(config_file_permissions),
		cmocka_unit_test(load_failures),
		cmocka_unit_test(load_fills_host_name),
		cmocka_unit_test(load_resolves_against_named_dir),
		cmocka_unit_test(trust_domains_resolve),
		cmocka_unit_test(trust_domains_tls_needs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
