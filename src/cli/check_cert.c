/* cmd_check_cert.c - `zonegate check-cert`: every certificate rule on a chain
 * from files, with pass/fail per rule; exit 1 if any rule fails. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "policy/certcheck.h"
#include "cli/cli.h"
#include "conf/conf.h"
#include "policy/crl.h"
#include "policy/policy.h"
#include "policy/profile.h"

#define MAX_CRL_FILES 16

struct opts {
	const char *profile;
	enum zg_cert_role role;
	const char *ca;
	const char *crl[MAX_CRL_FILES];
	unsigned n_crl;
	int crl_stale_warn;
	int crl_cdp_only;
	unsigned skew;
	unsigned depth;
	const char *name;
	int json;
	const char *cert;
	const char *chain;
	/* --conf FILE --route NAME [--side listen|connect]: the route side's store */
	const char *conf;
	const char *route;
	const char *side;
	const char *trust;            /* the store's name, once taken from the file */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zonegate check-cert [--profile P] [--role client|server] --ca FILE\n"
		"                           [--crl FILE]... [--crl-stale reject|warn] [--crl-cdp-only]\n"
		"                           [--clock-skew SECONDS] [--max-depth N] [--name NAME]\n"
		"                           [--json] CERT [CHAIN]\n"
		"       zonegate check-cert --conf FILE --route NAME [--side listen|connect]\n"
		"                           [--name NAME] [--json] CERT [CHAIN]\n"
		"Checks CERT (PEM; intermediates may follow it, or come in CHAIN) against the\n"
		"trust anchors in --ca and every rule of the profile (default cryptrec-high).\n"
		"With --crl, every CA in the chain must have a CRL, as in the gateway;\n"
		"--crl-cdp-only requires one only where a certificate names a CRL\n"
		"distribution point. With --conf and --route, CERT is checked as the peer\n"
		"of that route's side (default: listen for unwrap and bridge, connect for\n"
		"wrap) would be: against the side's trust store ([trust] or [tls]: anchors,\n"
		"CRLs, depth, crl_stale), the route's profile, as a client certificate on a\n"
		"listen side and a server certificate (named server_name) on a connect side.\n"
		"Exit 0 compliant, 1 a rule failed, 2 usage, 4 a file could not be read.\n");
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Options that take a value; returns 1 if @a was one, -1 on a bad value. */
static int value_opt(struct opts *o, const char *a, const char *v)
{
	if (strcmp(a, "--profile") == 0)
		o->profile = v;
	else if (strcmp(a, "--ca") == 0)
		o->ca = v;
	else if (strcmp(a, "--name") == 0)
		o->name = v;
	else if (strcmp(a, "--conf") == 0)
		o->conf = v;
	else if (strcmp(a, "--route") == 0)
		o->route = v;
	else if (strcmp(a, "--side") == 0) {
		if (strcmp(v, "listen") != 0 && strcmp(v, "connect") != 0)
			return -1;
		o->side = v;
	}
	else if (strcmp(a, "--role") == 0) {
		if (strcmp(v, "client") != 0 && strcmp(v, "server") != 0)
			return -1;
		o->role = strcmp(v, "client") == 0 ? ZG_ROLE_CLIENT : ZG_ROLE_SERVER;
	} else if (strcmp(a, "--crl") == 0) {
		if (o->n_crl >= MAX_CRL_FILES)
			return -1;
		o->crl[o->n_crl++] = v;
	} else if (strcmp(a, "--crl-stale") == 0) {
		if (strcmp(v, "warn") != 0 && strcmp(v, "reject") != 0)
			return -1;
		o->crl_stale_warn = strcmp(v, "warn") == 0;
	} else if (strcmp(a, "--clock-skew") == 0)
		return parse_uint(v, 86400, &o->skew) < 0 ? -1 : 1;
	else if (strcmp(a, "--max-depth") == 0)
		return parse_uint(v, 32, &o->depth) < 0 || o->depth == 0 ? -1 : 1;
	else
		return 0;
	return 1;
}

static int parse(struct opts *o, int argc, char **argv)
{
	int pos = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int r;
		if (strcmp(a, "--json") == 0) {
			o->json = 1;
			continue;
		}
		if (strcmp(a, "--crl-cdp-only") == 0) {
			o->crl_cdp_only = 1;
			continue;
		}
		if (a[0] == '-' && a[1] == '-') {
			if (i + 1 >= argc)
				return -1;
			r = value_opt(o, a, argv[i + 1]);
			if (r <= 0) {
				fprintf(stderr, "check-cert: bad option %s %s\n", a, argv[i + 1]);
				return -1;
			}
			i++;
			continue;
		}
		if (pos == 0)
			o->cert = a;
		else if (pos == 1)
			o->chain = a;
		else
			return -1;
		pos++;
	}
	if (!o->conf != !o->route || (o->side && !o->conf) || (o->conf && o->ca))
		return -1;
	return o->cert && (o->ca || o->conf) ? 0 : -1;
}

/* --conf/--route: take store, profile, role and name from the route side
 * of @c, as the gateway would judge that side's peer. -1 with a message if
 * the route is not in @c or speaks plain TCP on that side. */
static int from_route(struct opts *o, const struct zg_conf *c)
{
	const struct zg_conf_route *r = NULL;
	const struct zg_conf_trust *t;
	int outbound;

	for (unsigned i = 0; i < c->n_routes && !r; i++)
		if (strcmp(c->routes[i].name, o->route) == 0)
			r = &c->routes[i];
	if (!r) {
		fprintf(stderr, "check-cert: %s has no [route %s]\n", o->conf, o->route);
		return -1;
	}
	outbound = o->side ? strcmp(o->side, "connect") == 0 : r->mode == ZG_MODE_WRAP;
	if (outbound ? !zg_route_tls_out(r) : !zg_route_tls_in(r)) {
		fprintf(stderr, "check-cert: route %s (mode %s) speaks plain TCP on its %s side\n",
			r->name, zg_mode_name(r->mode), outbound ? "connect" : "listen");
		return -1;
	}
	t = zg_route_trust(c, r, outbound);
	o->side = outbound ? "connect" : "listen";
	o->trust = t->name;
	o->profile = r->profile;
	o->role = outbound ? ZG_ROLE_SERVER : ZG_ROLE_CLIENT;
	o->ca = t->trust_anchors;
	o->n_crl = t->n_crl;
	for (unsigned i = 0; i < t->n_crl; i++)
		o->crl[i] = t->crl[i];
	o->crl_stale_warn = t->crl_stale_warn;
	o->depth = t->verify_depth;
	o->skew = c->tls.clock_skew_s;
	if (outbound && !o->name && r->server_name[0])
		o->name = r->server_name;
	return 0;
}

struct inputs {
	STACK_OF(X509) *certs;
	STACK_OF(X509_CRL) *crls;
	X509_STORE *store;
};

static int load(const struct opts *o, struct inputs *in)
{
	char why[ZG_PATH_MAX + 64]; /* a path and what failed with it */

	in->certs = sk_X509_new_null();
	in->store = X509_STORE_new();
	if (!in->certs || !in->store)
		return -1;
	if (zg_certcheck_load_pem(in->certs, o->cert, why, sizeof(why)) < 0 ||
	    (o->chain && zg_certcheck_load_pem(in->certs, o->chain, why, sizeof(why)) < 0))
		goto fail;
	if (X509_STORE_load_file(in->store, o->ca) != 1) {
		snprintf(why, sizeof(why), "%s: cannot load trust anchors", o->ca);
		goto fail;
	}
	if (o->n_crl) {
		in->crls = zg_crl_new();
		if (!in->crls)
			return -1;
		for (unsigned i = 0; i < o->n_crl; i++)
			if (zg_crl_load_file(in->crls, o->crl[i], why, sizeof(why)) < 0)
				goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "check-cert: %s\n", why);
	return -1;
}

static int report(const struct opts *o, struct zg_certcheck *c)
{
	json_t *j;

	if (!o->json) {
		if (o->trust)
			printf("route %s %s side: trust %s (%s), profile %s, as %s certificate\n", o->route,
			       o->side, o->trust, o->ca, o->profile,
			       o->role == ZG_ROLE_CLIENT ? "client" : "server");
		zg_certcheck_print(c, stdout);
		return 0;
	}
	j = zg_certcheck_json(c);
	if (j && o->trust &&
	    (json_object_set_new(j, "route", json_string(o->route)) ||
	     json_object_set_new(j, "side", json_string(o->side)) ||
	     json_object_set_new(j, "trust", json_string(o->trust)))) {
		json_decref(j);
		return -1;
	}
	if (!j || json_object_set_new(j, "certificate", json_string(o->cert)) ||
	    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0) {
		json_decref(j);
		return -1;
	}
	fputc('\n', stdout);
	json_decref(j);
	return 0;
}

int zg_cmd_check_cert(int argc, char **argv)
{
	struct opts o = {.profile = "cryptrec-high", .role = ZG_ROLE_CLIENT};
	struct inputs in = {0};
	struct zg_policy_params pp = {0};
	struct zg_certcheck c = {0};
	STACK_OF(X509) *untrusted = NULL;
	struct zg_conf *conf = NULL;
	int rc = ZG_EXIT_RUNTIME, r;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return ZG_EXIT_OK;
	}
	if (parse(&o, argc, argv) < 0) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	if (o.conf) {
		static struct zg_errlist errs; /* large; one per process */
		zg_errlist_init(&errs);
		if (!(conf = zg_conf_load(o.conf, &errs))) {
			zg_errlist_print(&errs, stderr);
			return ZG_EXIT_CONFIG;
		}
		if (from_route(&o, conf) < 0) {
			zg_conf_free(conf);
			return ZG_EXIT_USAGE;
		}
	}
	pp.profile = zg_profile_find(o.profile);
	if (!pp.profile) {
		fprintf(stderr, "check-cert: unknown profile %s (see zonegate profiles)\n", o.profile);
		zg_conf_free(conf);
		return ZG_EXIT_USAGE;
	}
	if (load(&o, &in) < 0)
		goto out;
	pp.role = o.role;
	pp.now = time(NULL);
	pp.clock_skew_s = o.skew;
	pp.max_depth = o.depth;
	pp.crls = in.crls;
	pp.crl_stale_warn = o.crl_stale_warn;
	pp.crl_require_all = !o.crl_cdp_only;
	untrusted = sk_X509_dup(in.certs);
	if (!untrusted)
		goto out;
	(void)sk_X509_shift(untrusted);
	r = zg_certcheck_run(sk_X509_value(in.certs, 0), untrusted, in.store, &pp, o.name, &c);
	if (r < 0 || report(&o, &c) < 0)
		goto out;
	rc = r ? ZG_EXIT_FAIL : ZG_EXIT_OK;
out:
	zg_certcheck_clear(&c);
	sk_X509_free(untrusted);
	sk_X509_pop_free(in.certs, X509_free);
	zg_crl_free(in.crls);
	X509_STORE_free(in.store);
	zg_conf_free(conf);
	return rc;
}
