/* identities.c - trust domains: [identity NAME] and [trust NAME] sections,
 * the route keys that name them, their cross-key rules and the lookups the
 * TLS wing uses (conf.h, conf_int.h). Private helpers come from conf_int.h.
 *
 * [tls] stays the default identity and store, so a file without these
 * sections means what it meant before; its certificate/key/chain and
 * anchors/CRLs/depth/crl_stale are copied into zg_conf.tls_identity and
 * tls_trust once the whole file is read, so every later stage asks one
 * question ("which identity, which store?") and gets one kind of answer.
 */
#include <stdio.h>
#include <string.h>

#include "conf/conf_int.h"

#define DEFAULT_NAME "tls" /* how routes and messages name [tls]'s identity and store */

/* A new named section @kind ("identity" or "trust") called @arg: refuse a
 * second one of that name, a bad name, the reserved "tls" and one too many.
 * 0, or -1 once reported. */
static int domain_add(struct pctx *pc, int (*add)(struct pctx *, const char *, int, unsigned *),
		      const char *kind, const char *arg, int line, unsigned n, unsigned max)
{
	char why[WHY_MAX];

	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *o = &pc->inst[i];
		if (o->def->add == add && strcmp(o->arg, arg) == 0) {
			conf_perr(pc, line, NULL, "[%s %s]: name given twice (first at line %d)", kind,
				  arg, o->line);
			return -1;
		}
	}
	if (conf_check_name(arg, ZG_NAME_MAX, why, sizeof(why)) < 0)
		conf_perr(pc, line, NULL, "[%s %s]: bad name: %s", kind, arg, why);
	if (strcmp(arg, DEFAULT_NAME) == 0)
		conf_perr(pc, line, NULL, "[%s %s]: the name %s stands for the [tls] section's own %s",
			  kind, arg, DEFAULT_NAME, kind);
	if (n >= max) {
		conf_perr(pc, line, NULL, "[%s %s]: too many [%s] sections (max %u)", kind, arg, kind,
			  max);
		return -1;
	}
	return 0;
}

int identity_add(struct pctx *pc, const char *arg, int line, unsigned *idx)
{
	struct zg_conf *c = pc->conf;
	struct zg_conf_identity *id;

	if (domain_add(pc, identity_add, "identity", arg, line, c->n_identities,
		       ZG_IDENTITIES_MAX) < 0)
		return -1;
	*idx = c->n_identities++;
	id = &c->identities[*idx];
	memset(id, 0, sizeof(*id));
	snprintf(id->name, sizeof(id->name), "%s", arg);
	id->line = line;
	return 0;
}

int trust_add(struct pctx *pc, const char *arg, int line, unsigned *idx)
{
	struct zg_conf *c = pc->conf;
	struct zg_conf_trust *t;

	if (domain_add(pc, trust_add, "trust", arg, line, c->n_trusts, ZG_TRUSTS_MAX) < 0)
		return -1;
	*idx = c->n_trusts++;
	t = &c->trusts[*idx];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", arg);
	t->line = line;
	return 0;
}

/* The [identity] called @name, [tls]'s for "" or "tls", NULL if none. */
static const struct zg_conf_identity *identity_named(const struct zg_conf *c, const char *name)
{
	if (!name[0] || strcmp(name, DEFAULT_NAME) == 0)
		return &c->tls_identity;
	for (unsigned i = 0; i < c->n_identities; i++)
		if (strcmp(c->identities[i].name, name) == 0)
			return &c->identities[i];
	return NULL;
}

/* The [trust] called @name, [tls]'s for "" or "tls", NULL if none. */
static const struct zg_conf_trust *trust_named(const struct zg_conf *c, const char *name)
{
	if (!name[0] || strcmp(name, DEFAULT_NAME) == 0)
		return &c->tls_trust;
	for (unsigned i = 0; i < c->n_trusts; i++)
		if (strcmp(c->trusts[i].name, name) == 0)
			return &c->trusts[i];
	return NULL;
}

const struct zg_conf_identity *zg_route_identity(const struct zg_conf *c,
						 const struct zg_conf_route *r, int outbound)
{
	const struct zg_conf_identity *id =
		identity_named(c, outbound ? r->connect_identity : r->listen_identity);

	return id ? id : &c->tls_identity; /* only for a file the loader refused */
}

const struct zg_conf_trust *zg_route_trust(const struct zg_conf *c, const struct zg_conf_route *r,
					   int outbound)
{
	const struct zg_conf_trust *t = trust_named(c, outbound ? r->connect_trust : r->listen_trust);

	return t ? t : &c->tls_trust;
}

const struct zg_conf_identity *zg_admin_identity(const struct zg_conf *c)
{
	const struct zg_conf_identity *id = identity_named(c, c->admin.identity);

	return id ? id : &c->tls_identity;
}

const struct zg_conf_trust *zg_admin_trust(const struct zg_conf *c)
{
	const struct zg_conf_trust *t = trust_named(c, c->admin.trust);

	return t ? t : &c->tls_trust;
}

unsigned zg_conf_trust_index(const struct zg_conf *c, const struct zg_conf_trust *t)
{
	for (unsigned i = 0; i < c->n_trusts; i++)
		if (t == &c->trusts[i])
			return i + 1;
	return 0;
}

int zg_conf_identity_used(const struct zg_conf *c, const struct zg_conf_identity *id)
{
	for (unsigned i = 0; i < c->n_routes; i++) {
		const struct zg_conf_route *r = &c->routes[i];
		if ((zg_route_tls_in(r) && zg_route_identity(c, r, 0) == id) ||
		    (zg_route_tls_out(r) && zg_route_identity(c, r, 1) == id))
			return 1;
	}
	return c->admin.tls && zg_admin_identity(c) == id;
}

int zg_conf_trust_used(const struct zg_conf *c, const struct zg_conf_trust *t)
{
	for (unsigned i = 0; i < c->n_routes; i++) {
		const struct zg_conf_route *r = &c->routes[i];
		if ((zg_route_tls_in(r) && zg_route_trust(c, r, 0) == t) ||
		    (zg_route_tls_out(r) && zg_route_trust(c, r, 1) == t))
			return 1;
	}
	return c->admin.tls && zg_admin_trust(c) == t;
}

int conf_route_uses_tls_default(const struct zg_conf_route *r, int trust)
{
	const char *in = trust ? r->listen_trust : r->listen_identity;
	const char *out = trust ? r->connect_trust : r->connect_identity;

	return (zg_route_tls_in(r) && (!in[0] || strcmp(in, DEFAULT_NAME) == 0)) ||
	       (zg_route_tls_out(r) && (!out[0] || strcmp(out, DEFAULT_NAME) == 0));
}

/* One route key naming an identity (@trust 0) or a store (1): it must
 * name a section of the file, on a side where the route speaks TLS. */
static void check_ref(const struct pctx *pc, const struct zg_conf_route *r, const char *key,
		      const char *val, int line, int trust, int side_tls)
{
	const char *kind = trust ? "trust" : "identity";
	const char *names[ZG_IDENTITIES_MAX + ZG_TRUSTS_MAX];
	const char *hint;
	size_t n = 0;

	if (!val[0])
		return;
	if (!side_tls) {
		conf_perr(pc, line, key, "[route %s]: mode %s speaks plain TCP on its %s side "
			  "(no certificate to present or verify there)", r->name, zg_mode_name(r->mode),
			  strncmp(key, "listen", 6) == 0 ? "listen" : "connect");
		return;
	}
	if (trust ? trust_named(pc->conf, val) != NULL : identity_named(pc->conf, val) != NULL)
		return;
	for (unsigned i = 0; !trust && i < pc->conf->n_identities; i++)
		names[n++] = pc->conf->identities[i].name;
	for (unsigned i = 0; trust && i < pc->conf->n_trusts; i++)
		names[n++] = pc->conf->trusts[i].name;
	hint = conf_closest(val, names, n);
	if (hint)
		conf_perr(pc, line, key, "[route %s]: no [%s %s] in this file; did you mean '%s'?",
			  r->name, kind, val, hint);
	else
		conf_perr(pc, line, key, "[route %s]: no [%s %s] in this file", r->name, kind, val);
}

void conf_check_domains(const struct pctx *pc)
{
	const struct zg_conf *c = pc->conf;

	for (unsigned i = 0; i < c->n_routes; i++) {
		const struct zg_conf_route *r = &c->routes[i];
		check_ref(pc, r, "listen_identity", r->listen_identity, r->line_listen_identity, 0,
			  zg_route_tls_in(r));
		check_ref(pc, r, "connect_identity", r->connect_identity, r->line_connect_identity, 0,
			  zg_route_tls_out(r));
		check_ref(pc, r, "listen_trust", r->listen_trust, r->line_listen_trust, 1,
			  zg_route_tls_in(r));
		check_ref(pc, r, "connect_trust", r->connect_trust, r->line_connect_trust, 1,
			  zg_route_tls_out(r));
	}
}

/* [admin] identity and trust: only with tls = on, and naming sections of
 * the file. */
void conf_check_admin_domain(const struct pctx *pc)
{
	const struct zg_conf_admin *a = &pc->conf->admin;

	if (a->identity[0] && !a->tls)
		conf_perr(pc, a->line_identity, "identity", "needs tls = on in [admin]");
	else if (a->identity[0] && !identity_named(pc->conf, a->identity))
		conf_perr(pc, a->line_identity, "identity", "[admin]: no [identity %s] in this file",
			  a->identity);
	if (a->trust[0] && !a->tls)
		conf_perr(pc, a->line_trust, "trust", "needs tls = on in [admin]");
	else if (a->trust[0] && !trust_named(pc->conf, a->trust))
		conf_perr(pc, a->line_trust, "trust", "[admin]: no [trust %s] in this file", a->trust);
}

void conf_fill_tls_domain(struct zg_conf *c)
{
	struct zg_conf_identity *id = &c->tls_identity;
	struct zg_conf_trust *t = &c->tls_trust;

	memset(id, 0, sizeof(*id));
	snprintf(id->name, sizeof(id->name), "%s", DEFAULT_NAME);
	memcpy(id->certificate, c->tls.certificate, sizeof(id->certificate));
	memcpy(id->key, c->tls.key, sizeof(id->key));
	memcpy(id->chain, c->tls.chain, sizeof(id->chain));
	id->line_certificate = c->tls.line_certificate;
	id->line_key = c->tls.line_key;
	id->line_chain = c->tls.line_chain;
	memcpy(id->ocsp_staple_file, c->tls.ocsp_staple_file, sizeof(id->ocsp_staple_file));
	memcpy(id->ocsp_staple_url, c->tls.ocsp_staple_url, sizeof(id->ocsp_staple_url));
	id->ocsp_staple_interval_s = c->tls.ocsp_staple_interval_s;
	id->line_ocsp_staple_file = c->tls.line_ocsp_staple_file;
	id->line_ocsp_staple_url = c->tls.line_ocsp_staple_url;
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", DEFAULT_NAME);
	memcpy(t->trust_anchors, c->tls.trust_anchors, sizeof(t->trust_anchors));
	memcpy(t->crl, c->tls.crl, sizeof(t->crl));
	t->n_crl = c->tls.n_crl;
	t->verify_depth = c->tls.verify_depth;
	t->crl_stale_warn = c->tls.crl_stale_warn;
	t->ocsp = c->tls.ocsp;
	memcpy(t->ocsp_responder, c->tls.ocsp_responder, sizeof(t->ocsp_responder));
	t->line_trust_anchors = c->tls.line_trust_anchors;
	t->line_crl = c->tls.line_crl;
}

int zg_conf_crl_loaded(const struct zg_conf *c, const char *file)
{
	for (unsigned k = 0; k < c->tls.n_crl; k++)
		if (strcmp(c->tls.crl[k], file) == 0)
			return 1;
	for (unsigned i = 0; i < c->n_trusts; i++)
		for (unsigned k = 0; k < c->trusts[i].n_crl; k++)
			if (strcmp(c->trusts[i].crl[k], file) == 0)
				return 1;
	return 0;
}

/* One TLS side of @r: what it presents and what it verifies against. */
static void print_side(const struct zg_conf *c, const struct zg_conf_route *r, int outbound,
		       FILE *out)
{
	const struct zg_conf_identity *id = zg_route_identity(c, r, outbound);
	const struct zg_conf_trust *t = zg_route_trust(c, r, outbound);

	fprintf(out, "# route %s %s: profile %s, identity %s (%s, as %s), trust %s (%s%s)\n",
		r->name, outbound ? "connect" : "listen", r->profile, id->name, id->certificate,
		outbound ? "client" : "server", t->name, t->trust_anchors,
		t->n_crl ? ", with CRLs" : "");
}

void zg_conf_print_domains(const struct zg_conf *c, FILE *out)
{
	for (unsigned i = 0; i < c->n_routes; i++) {
		if (zg_route_tls_in(&c->routes[i]))
			print_side(c, &c->routes[i], 0, out);
		if (zg_route_tls_out(&c->routes[i]))
			print_side(c, &c->routes[i], 1, out);
	}
}
