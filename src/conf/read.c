/* read.c - the configuration reader: INI text to struct zg_conf (conf.h).
 *
 * libinih tokenizes; the rest is table-driven (conf_int.h lists the pieces).
 * This file is the reader: it feeds inih one line at a time, turns section
 * headers into section instances and keys into parsed values (values.c,
 * through the tables of tables.c), then runs the whole-file checks of
 * rules.c. It holds the public zg_conf_parse*, zg_conf_load and zg_conf_free.
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
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "conf/conf_int.h"

#define CONF_FILE_MAX (1024 * 1024)     /* a larger file is surely a mistake */
#define INIH_SECTION_MAX 49             /* inih MAX_SECTION - 1 */
#define SENTINEL "\x02"
#define MARKER "\x01"

/* ---- sections ----------------------------------------------------------- */

int route_add(struct pctx *pc, const char *arg, int line, unsigned *idx)
{
	struct zg_conf *c = pc->conf;
	char why[WHY_MAX];

	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *o = &pc->inst[i];
		if (o->def->add == route_add && strcmp(o->arg, arg) == 0) {
			conf_perr(pc, line, NULL, "[route %s]: route name given twice (first at line %d)",
				  arg, o->line);
			return -1;
		}
	}
	if (conf_check_name(arg, ZG_NAME_MAX, why, sizeof(why)) < 0)
		conf_perr(pc, line, NULL, "[route %s]: bad route name: %s", arg, why);
	if (c->n_routes >= ZG_ROUTES_MAX) {
		conf_perr(pc, line, NULL, "[route %s]: too many routes (max %d)", arg, ZG_ROUTES_MAX);
		return -1;
	}
	if (c->n_routes == pc->routes_cap) {
		size_t cap = pc->routes_cap ? pc->routes_cap * 2 : 4;
		struct zg_conf_route *r;
		if (cap > ZG_ROUTES_MAX)
			cap = ZG_ROUTES_MAX;
		r = realloc(c->routes, cap * sizeof(*r));
		if (!r) {
			conf_perr(pc, line, NULL, "[route %s]: out of memory", arg);
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
		conf_perr(pc, pc->lineno, NULL, "[%s...]: section header too long (at most %d characters "
			  "between [ and ])", sec, INIH_SECTION_MAX);
		return 0;
	}
	for (p = pc->line + sl + 2; p < pc->line + pc->len && conf_is_blank(*p); p++)
		;
	if (p < pc->line + pc->len && *p != ';' && *p != '#') {
		conf_perr(pc, pc->lineno, NULL, "[%s]: unexpected text after ']'", sec);
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
				 i == 0 ? "" : i + 1 == N_SECTIONS ? " or " : ", ", conf_sections[i].name,
				 conf_sections[i].conf_off == NO_OFF ? " NAME" : "");
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
		names[i] = conf_sections[i].name;
	hint = conf_closest(word, names, N_SECTIONS);
	if (!hint) {
		section_list(list, sizeof(list));
		conf_perr(pc, pc->lineno, NULL, "[%s%s%s]: unknown section (expected %s)", word,
			  *arg ? " " : "", arg, list);
		return;
	}
	d = section_named(hint);
	conf_perr(pc, pc->lineno, NULL, "[%s%s%s]: unknown section; did you mean [%s%s%s]?", word,
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
	for (word = buf; conf_is_blank(*word); word++)
		;
	for (arg = word; *arg && !conf_is_blank(*arg); arg++)
		;
	if (*arg)
		*arg++ = '\0';
	while (conf_is_blank(*arg))
		arg++;
	for (end = arg + strlen(arg); end > arg && conf_is_blank(end[-1]); end--)
		;
	*end = '\0';
	def = section_named(word);
	if (!def) {
		unknown_section(pc, word, arg);
		return;
	}
	if (def->conf_off != NO_OFF && *arg) {
		conf_perr(pc, pc->lineno, NULL, "[%s %s]: [%s] takes no name", word, arg, word);
		return;
	}
	if (def->conf_off == NO_OFF && !*arg) {
		conf_perr(pc, pc->lineno, NULL, "[%s]: missing name (expected [%s NAME])", word, word);
		return;
	}
	if (def->conf_off != NO_OFF && (prev = inst_of(pc, def)) != NULL) {
		conf_perr(pc, pc->lineno, NULL, "[%s]: section given twice (first at line %d)", word,
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
		conf_apply_defaults(pc, def, def->elem(pc->conf, in->idx));
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
		conf_perr(pc, pc->lineno, key, "key outside any section (put it under %s)", list);
		return;
	}
	i = kw_index(in->def, key);
	if (i < 0) {
		conf_unknown_key(pc, in, key);
		return;
	}
	kw = &in->def->kws[i];
	first = in->key_line[i];
	if (first) {
		conf_perr(pc, pc->lineno, key, "given twice in %s (first at line %d)", in->label,
			  first < 0 ? -first : first);
		return;
	}
	obj = inst_obj(pc, in);
	if (val[0] == ';') {
		/* inih keeps "k =;x" as ";x", but "k = ;x" is a comment: refuse the
		 * value so that what we print always reads back the same */
		conf_perr(pc, pc->lineno, key, "a value may not start with ';' (it reads as a comment)");
		in->key_line[i] = -pc->lineno;
		return;
	}
	if (kw->type->parse(kw, val, obj, pc, why, sizeof(why)) < 0) {
		conf_perr(pc, pc->lineno, key, "%s", why);
		in->key_line[i] = -pc->lineno;
		return;
	}
	in->key_line[i] = pc->lineno;
	if (kw->line_off != NO_OFF)
		*(int *)conf_field_of(obj, kw->line_off) = pc->lineno;
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
	while (n > 0 && conf_is_blank(*p)) {
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
		conf_perr(pc, pc->lineno, NULL, "line too long (max %zu characters)", max);
		return 0;
	}
	for (size_t i = 0; i < pc->len; i++) {
		unsigned char c = (unsigned char)pc->line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			conf_perr(pc, pc->lineno, NULL, "control character 0x%02x in line", c);
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
	if (conf_copy_str(pc->basedir, sizeof(pc->basedir), basedir, strlen(basedir)) < 0 ||
	    conf_copy_str(conf->path, sizeof(conf->path), name, strlen(name)) < 0) {
		zg_errlist_add(errs, name, 0, NULL, "file name too long (max %d bytes)",
			       ZG_PATH_MAX - 1);
		goto fail;
	}
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (conf_sections[i].conf_off != NO_OFF)
			conf_apply_defaults(pc, &conf_sections[i],
					    conf_field_of(conf, conf_sections[i].conf_off));
	pc->next = strncmp(text, "\xef\xbb\xbf", 3) == 0 ? text + 3 : text; /* UTF-8 BOM */
	while (next_line(pc)) {
		int rc;
		pc->step = 0;
		rc = ini_parse_stream(reader, pc, on_pair, pc);
		if (rc > 0 && pc->line[0] == '[') {
			/* keys below a broken header must not land in the section above it */
			pc->cur = NULL;
			pc->seen_header = 1;
			conf_perr(pc, pc->lineno, NULL, "syntax error: section header without ']'");
		} else if (rc > 0) {
			conf_perr(pc, pc->lineno, NULL, "syntax error (expected [SECTION], KEY = VALUE, or "
				  "a comment starting with ; or #)");
		}
		else if (rc < 0)
			conf_perr(pc, pc->lineno, NULL, "INI parser failed (%d)", rc);
	}
	conf_check_required(pc);
	conf_check_routes(pc);
	conf_check_pools(pc);
	conf_check_tls_needs(pc);
	conf_check_ticket_keys(pc);
	conf_check_ocsp(pc);
	conf_check_admin_tls(pc);
	conf_check_directory(pc);
	conf_check_domains(pc);
	conf_check_admin_domain(pc);
	conf_check_crl_fetch(pc);
	conf_check_classes(pc);
	if (conf->n_routes == 0 && errs->n + errs->dropped == before)
		zg_errlist_add(errs, name, 0, NULL, "no [route NAME] section: nothing to serve");
	conf_fill_route_defaults(conf);
	conf_fill_tls_domain(conf);
	conf_fill_audit_defaults(conf);
	conf_check_audit_identity(pc);
	conf_fill_directory_defaults(conf);
	conf_fill_class_defaults(conf);
	if (!(flags & ZG_CONF_NO_FILE_CHECKS))
		conf_check_files(pc);
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
	if (conf_check_name(host, sizeof(conf->gw.name), why, sizeof(why)) < 0) {
		zg_errlist_add(errs, conf->path, 0, "name", "not set and the host name cannot "
			       "stand in: %s; set name in [gateway]", why);
		return -1;
	}
	return conf_copy_str(conf->gw.name, sizeof(conf->gw.name), host, strlen(host));
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
