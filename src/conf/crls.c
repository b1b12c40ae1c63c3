/* crls.c - [crl NAME] sections: the URL type, the add() of the section and
 * its cross-key rules (conf_int.h). Private to src/conf/. */
#include <stdio.h>
#include <string.h>

#include "conf/conf_int.h"

/* http:// or https://, then printable ASCII without blanks. */
static int parse_url(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
		     char *why, size_t cap)
{
	size_t n = strlen(val);

	(void)pc;
	if (strncmp(val, "http://", 7) != 0 && strncmp(val, "https://", 8) != 0) {
		snprintf(why, cap, "'%s' is not an http:// or https:// URL", conf_shown(kw, val));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (val[i] <= ' ' || val[i] >= 0x7f) {
			snprintf(why, cap, "a URL holds no blank, control or non-ASCII character");
			return -1;
		}
	}
	if (conf_copy_str(conf_field_of(obj, kw->off), kw->size, val, n) < 0) {
		snprintf(why, cap, "longer than %zu characters", kw->size - 1);
		return -1;
	}
	return 0;
}

static void print_url(const struct kw *kw, const void *obj, FILE *out)
{
	const char *s = conf_cfield_of(obj, kw->off);

	if (s[0])
		fprintf(out, "%s = %s\n", kw->name, s);
	else
		fprintf(out, "; %s not set\n", kw->name);
}

const struct kw_type T_URL = {parse_url, print_url};

int crl_add(struct pctx *pc, const char *arg, int line, unsigned *idx)
{
	struct zg_conf *c = pc->conf;
	char why[WHY_MAX];

	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *o = &pc->inst[i];
		if (o->def->add == crl_add && strcmp(o->arg, arg) == 0) {
			conf_perr(pc, line, NULL, "[crl %s]: name given twice (first at line %d)", arg,
				  o->line);
			return -1;
		}
	}
	if (conf_check_name(arg, ZG_NAME_MAX, why, sizeof(why)) < 0)
		conf_perr(pc, line, NULL, "[crl %s]: bad name: %s", arg, why);
	if (c->n_crl_fetch >= ZG_CRLS_MAX) {
		conf_perr(pc, line, NULL, "[crl %s]: too many [crl] sections (max %d)", arg, ZG_CRLS_MAX);
		return -1;
	}
	*idx = c->n_crl_fetch++;
	memset(&c->crl_fetch[*idx], 0, sizeof(c->crl_fetch[*idx]));
	snprintf(c->crl_fetch[*idx].name, sizeof(c->crl_fetch[*idx].name), "%s", arg);
	c->crl_fetch[*idx].line = line;
	return 0;
}

/* The fetched file must be one the gateway loads (else the fetch protects
 * nothing), and two fetches must not write one file. */
void conf_check_crl_fetch(const struct pctx *pc)
{
	const struct zg_conf *c = pc->conf;

	for (unsigned i = 0; i < c->n_crl_fetch; i++) {
		const struct zg_conf_crl *f = &c->crl_fetch[i];
		unsigned k;
		if (!f->file[0])
			continue;
		if (!zg_conf_crl_loaded(c, f->file))
			conf_perr(pc, f->line_file, "file",
				  "[crl %s]: %s is no crl of [tls] or of a [trust] "
				  "(the gateway would never load it)",
				  f->name, f->file);
		for (k = 0; k < i; k++)
			if (strcmp(c->crl_fetch[k].file, f->file) == 0)
				conf_perr(pc, f->line_file, "file", "[crl %s]: [crl %s] fetches into %s too",
					  f->name, c->crl_fetch[k].name, f->file);
	}
}
