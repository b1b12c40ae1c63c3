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

static int parse_staple_url(const struct kw *kw, const char *val, void *obj,
			    const struct pctx *pc, char *why, size_t cap)
{
	if (strcmp(val, "aia") == 0)
		return conf_copy_str(conf_field_of(obj, kw->off), kw->size, val, 3);
	return parse_url(kw, val, obj, pc, why, cap);
}

const struct kw_type T_STAPLE_URL = {parse_staple_url, print_url};

static const char *const ocsp_modes[] = {[ZG_OCSP_OFF] = "off", [ZG_OCSP_SOFT] = "soft",
					 [ZG_OCSP_HARD] = "hard"};

static int parse_ocsp_mode(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			   char *why, size_t cap)
{
	(void)pc;
	for (unsigned i = 0; i < sizeof(ocsp_modes) / sizeof(ocsp_modes[0]); i++) {
		if (strcmp(val, ocsp_modes[i]) == 0) {
			*(enum zg_ocsp_mode *)conf_field_of(obj, kw->off) = (enum zg_ocsp_mode)i;
			return 0;
		}
	}
	snprintf(why, cap, "'%s': expected off, soft or hard", conf_shown(kw, val));
	return -1;
}

static void print_ocsp_mode(const struct kw *kw, const void *obj, FILE *out)
{
	enum zg_ocsp_mode m = *(const enum zg_ocsp_mode *)conf_cfield_of(obj, kw->off);

	fprintf(out, "%s = %s\n", kw->name, m <= ZG_OCSP_HARD ? ocsp_modes[m] : "?");
}

const struct kw_type T_OCSP_MODE = {parse_ocsp_mode, print_ocsp_mode};

void conf_check_ocsp(const struct pctx *pc)
{
	const struct zg_conf_tls *t = &pc->conf->tls;

	if (t->ocsp_staple_url[0] && !t->ocsp_staple_file[0])
		conf_perr(pc, t->line_ocsp_staple_url, "ocsp_staple_url",
			  "needs ocsp_staple_file in [tls] (where the fetched response is kept)");
	for (unsigned i = 0; i < pc->conf->n_identities; i++) {
		const struct zg_conf_identity *id = &pc->conf->identities[i];
		if (id->ocsp_staple_url[0] && !id->ocsp_staple_file[0])
			conf_perr(pc, id->line_ocsp_staple_url, "ocsp_staple_url",
				  "needs ocsp_staple_file in [identity %s] (where the fetched "
				  "response is kept)", id->name);
	}
}

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
