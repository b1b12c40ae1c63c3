/* pool.c - the values and rules of upstream pools and health checks
 * (conf_int.h): `connect` as a pool, `balance`, `health_check`, DICOM AE
 * titles and the HTTP check path, and the whole-file rules that need the
 * route's mode. Private to src/conf/.
 *
 * connect = HOST:PORT [backup] [weight=N] [sni=NAME] [, HOST:PORT ...]
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_int.h"

#define UP(f) offsetof(struct zg_upstream_conf, f)

/* ---- connect: the pool ---------------------------------------------------- */

/* The endpoint and server_name parsers of values.c, aimed at a member. */
static const struct kw ep_kw = {"connect", &T_ENDPOINT, UP(ep), 0, NO_OFF, NO_OFF, 0, 0, NULL, 0};
static const struct kw sni_kw = {"sni", &T_SERVER_NAME, UP(server_name), ZG_HOST_MAX, NO_OFF,
				 NO_OFF, 0, 0, NULL, 0};

/* One option word after a member's HOST:PORT. 0, or -1 with @why. */
static int member_option(struct zg_upstream_conf *m, const char *w, const struct pctx *pc, char *why,
			 size_t cap)
{
	unsigned long long v;

	if (strcmp(w, "backup") == 0) {
		m->backup = 1;
		return 0;
	}
	if (strncmp(w, "weight=", 7) == 0) {
		if (conf_parse_ull(w + 7, strlen(w + 7), &v) < 0 || v < 1 || v > ZG_WEIGHT_MAX) {
			snprintf(why, cap, "'%s': weight must be 1..%u", w, ZG_WEIGHT_MAX);
			return -1;
		}
		m->weight = (unsigned)v;
		return 0;
	}
	if (strncmp(w, "sni=", 4) == 0) {
		char inner[WHY_MAX];
		if (sni_kw.type->parse(&sni_kw, w + 4, m, pc, inner, sizeof(inner)) == 0)
			return 0;
		snprintf(why, cap, "sni: %.300s", inner);
		return -1;
	}
	snprintf(why, cap, "'%.100s' is not a member option (expected backup, weight=N or sni=NAME)", w);
	return -1;
}

/* Parse one comma-separated member "HOST:PORT [option...]" of @n bytes. */
static int parse_member(const char *it, size_t n, struct zg_upstream_conf *m, const struct pctx *pc,
			char *why, size_t cap)
{
	char buf[ZG_HOST_MAX * 2 + 64], *save = NULL, *w;
	int first = 1;

	if (n == 0) {
		snprintf(why, cap, "empty item in the list (expected HOST:PORT[, HOST:PORT...])");
		return -1;
	}
	if (conf_copy_str(buf, sizeof(buf), it, n) < 0) {
		snprintf(why, cap, "member too long");
		return -1;
	}
	memset(m, 0, sizeof(*m));
	m->weight = 1;
	for (w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (first) {
			if (ep_kw.type->parse(&ep_kw, w, m, pc, why, cap) < 0)
				return -1;
			first = 0;
		} else if (member_option(m, w, pc, why, cap) < 0) {
			return -1;
		}
	}
	return 0;
}

static int same_endpoint(const struct zg_endpoint *a, const struct zg_endpoint *b)
{
	return strcasecmp(a->host, b->host) == 0 && strcmp(a->port, b->port) == 0;
}

static int parse_pool(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		      char *why, size_t cap)
{
	struct zg_pool_conf *p = conf_field_of(obj, kw->off);
	const char *s = val;
	unsigned primaries = 0;

	p->n = 0;
	for (;;) {
		const char *e = strchr(s, ',');
		const char *end = e ? e : s + strlen(s);
		while (s < end && conf_is_blank(*s))
			s++;
		while (end > s && conf_is_blank(end[-1]))
			end--;
		if (p->n == ZG_POOL_MAX) {
			snprintf(why, cap, "more than %u upstream endpoints", ZG_POOL_MAX);
			return -1;
		}
		if (parse_member(s, (size_t)(end - s), &p->m[p->n], pc, why, cap) < 0)
			return -1;
		for (unsigned i = 0; i < p->n; i++) {
			if (same_endpoint(&p->m[i].ep, &p->m[p->n].ep)) {
				char t[ZG_HOST_MAX + 16];
				fmt_endpoint(&p->m[i].ep, t, sizeof(t));
				snprintf(why, cap, "%s is listed twice", t);
				return -1;
			}
		}
		primaries += !p->m[p->n].backup;
		p->n++;
		if (!e)
			break;
		s = e + 1;
	}
	if (primaries == 0) {
		snprintf(why, cap, "every endpoint is a backup: nothing would carry traffic while they "
			 "are all up (drop 'backup' from the one to use first)");
		return -1;
	}
	return 0;
}

void zg_upstream_format(const struct zg_upstream_conf *m, char *out, size_t cap)
{
	char ep[ZG_HOST_MAX + 16], w[24] = "";

	fmt_endpoint(&m->ep, ep, sizeof(ep));
	if (m->weight > 1)
		snprintf(w, sizeof(w), " weight=%u", m->weight);
	snprintf(out, cap, "%s%s%s%s%s", ep, m->backup ? " backup" : "", w,
		 m->server_name[0] ? " sni=" : "", m->server_name);
}

static void print_pool(const struct kw *kw, const void *obj, FILE *out)
{
	const struct zg_pool_conf *p = conf_cfield_of(obj, kw->off);
	char buf[ZG_HOST_MAX * 2 + 64];

	if (p->n == 0) {
		fprintf(out, "; %s not set\n", kw->name);
		return;
	}
	fprintf(out, "%s = ", kw->name);
	for (unsigned i = 0; i < p->n; i++) {
		zg_upstream_format(&p->m[i], buf, sizeof(buf));
		fprintf(out, "%s%s", i ? ", " : "", buf);
	}
	fprintf(out, "\n");
}

/* ---- words: balance, health_check ------------------------------------------ */

static const char *const balance_names[] = {
	[ZG_BALANCE_FIRST] = "first",
	[ZG_BALANCE_ROUND_ROBIN] = "round-robin",
	[ZG_BALANCE_LEAST_CONN] = "least-connections",
};

static const char *const check_names[] = {
	[ZG_CHECK_NONE] = "none", [ZG_CHECK_TCP] = "tcp",   [ZG_CHECK_TLS] = "tls",
	[ZG_CHECK_DICOM] = "dicom", [ZG_CHECK_HL7] = "hl7", [ZG_CHECK_HTTP] = "http",
};

const char *zg_balance_name(enum zg_balance b)
{
	return (unsigned)b < N_KWS(balance_names) ? balance_names[b] : "unknown";
}

const char *zg_check_name(enum zg_check_kind k)
{
	return (unsigned)k < N_KWS(check_names) ? check_names[k] : "unknown";
}

/* @val as the index of @names into the int-sized enum field of @kw. */
static int parse_word(const struct kw *kw, const char *val, void *obj, const char *const *names,
		      size_t n, char *why, size_t cap)
{
	size_t used = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(val, names[i]) == 0) {
			*(int *)conf_field_of(obj, kw->off) = (int)i;
			return 0;
		}
	}
	used = (size_t)snprintf(why, cap, "'%.100s' is not one of ", val);
	for (size_t i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(why + used, cap - used, "%s%s", i ? ", " : "", names[i]);
	return -1;
}

static int parse_balance(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			 char *why, size_t cap)
{
	(void)pc;
	return parse_word(kw, val, obj, balance_names, N_KWS(balance_names), why, cap);
}

static void print_balance(const struct kw *kw, const void *obj, FILE *out)
{
	fprintf(out, "%s = %s\n", kw->name, zg_balance_name(*(const int *)conf_cfield_of(obj, kw->off)));
}

static int parse_check(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		       char *why, size_t cap)
{
	(void)pc;
	return parse_word(kw, val, obj, check_names, N_KWS(check_names), why, cap);
}

static void print_check(const struct kw *kw, const void *obj, FILE *out)
{
	fprintf(out, "%s = %s\n", kw->name, zg_check_name(*(const int *)conf_cfield_of(obj, kw->off)));
}

_Static_assert(sizeof(enum zg_balance) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(enum zg_check_kind) == sizeof(int), "enum fields are written as int");

/* ---- DICOM AE titles and the HTTP path -------------------------------------- */

/* PS3.5 6.2 AE: 1-16 characters of the default repertoire without
 * backslash or control characters, not all spaces. */
static int parse_ae(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		    char *why, size_t cap)
{
	size_t n = strlen(val);

	(void)pc;
	if (n == 0 || n >= ZG_AE_MAX || n > kw->size - 1)
		goto bad;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)val[i] < 0x20 || (unsigned char)val[i] >= 0x7f || val[i] == '\\')
			goto bad;
	return conf_copy_str(conf_field_of(obj, kw->off), kw->size, val, n);
bad:
	snprintf(why, cap, "'%.100s' is not an AE title (1-16 printable ASCII characters, no "
		 "backslash)", val);
	return -1;
}

/* An absolute path of printable ASCII without blanks: it goes on the
 * request line as written. */
static int parse_http_path(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			   char *why, size_t cap)
{
	size_t n = strlen(val);

	(void)pc;
	if (val[0] != '/' || n >= kw->size)
		goto bad;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)val[i] <= 0x20 || (unsigned char)val[i] >= 0x7f)
			goto bad;
	return conf_copy_str(conf_field_of(obj, kw->off), kw->size, val, n);
bad:
	snprintf(why, cap, "'%.100s' is not an HTTP path (starts with /, printable ASCII, no blanks, "
		 "at most %zu characters)", val, kw->size - 1);
	return -1;
}

static void print_text(const struct kw *kw, const void *obj, FILE *out)
{
	const char *s = conf_cfield_of(obj, kw->off);

	if (s[0])
		fprintf(out, "%s = %s\n", kw->name, s);
	else
		fprintf(out, "; %s not set\n", kw->name);
}

const struct kw_type T_POOL = {parse_pool, print_pool};
const struct kw_type T_BALANCE = {parse_balance, print_balance};
const struct kw_type T_CHECK = {parse_check, print_check};
const struct kw_type T_AE_TITLE = {parse_ae, print_text};
const struct kw_type T_HTTP_PATH = {parse_http_path, print_text};

/* ---- whole-file rules -------------------------------------------------------- */

int conf_pool_all_sni(const struct zg_pool_conf *p)
{
	for (unsigned i = 0; i < p->n; i++)
		if (!p->m[i].server_name[0])
			return 0;
	return p->n > 0;
}

void conf_check_pools(const struct pctx *pc)
{
	const struct zg_conf *c = pc->conf;

	for (unsigned i = 0; i < c->n_routes; i++) {
		const struct zg_conf_route *r = &c->routes[i];
		int tls_out = zg_route_tls_out(r);
		for (unsigned k = 0; !tls_out && k < r->connect.n; k++) {
			if (r->connect.m[k].server_name[0]) {
				conf_perr(pc, r->line_connect, "connect",
					  "[route %s]: sni= names the TLS identity of an upstream, "
					  "but mode %s speaks plain TCP upstream", r->name,
					  zg_mode_name(r->mode));
				break;
			}
		}
		if (!tls_out && r->check.kind == ZG_CHECK_TLS)
			conf_perr(pc, r->check.line, "health_check",
				  "[route %s]: tls checks a TLS upstream, but mode %s speaks plain TCP "
				  "upstream (use tcp, dicom, hl7 or http)", r->name, zg_mode_name(r->mode));
	}
}
