/* cmd_run.c - `zonegate run` and `zonegate check`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "audit/audit.h"
#include "engine/gateway.h"
#include "engine/snapshot.h"
#include "ops/expiry.h"
#include "ops/plane.h"

struct run_opts {
	const char *conf;
	unsigned workers;
};

/* Parse "-c FILE" (and --workers N for run). 0 ok, 1 help shown, -1 bad. */
static int parse_opts(int argc, char **argv, const char *usage, int allow_workers, struct run_opts *o)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"workers", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:w:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 'w': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!allow_workers || *end || v == 0 || v > 256) {
				fprintf(stderr, "%s", usage);
				return -1;
			}
			o->workers = (unsigned)v;
			break;
		}
		case 'h':
			printf("%s", usage);
			return 1;
		default:
			fprintf(stderr, "%s", usage);
			return -1;
		}
	}
	if (!o->conf || optind != argc) {
		fprintf(stderr, "%s", usage);
		return -1;
	}
	return 0;
}

int zg_cmd_run(int argc, char **argv)
{
	static const char usage[] =
		"usage: zonegate run -c FILE [--workers N]\n"
		"  Serve the routes of FILE until SIGTERM/SIGINT (drain; a second one stops at once).\n"
		"  SIGHUP reloads FILE all-or-nothing. Logs go to stderr, one key=value line per event.\n"
		"  -c, --config FILE   configuration file (see docs/configuration.md)\n"
		"  -w, --workers N     worker threads (default: [gateway] workers, else one per core)\n"
		"exit: 0 stopped cleanly, 2 usage, 3 configuration refused, 4 could not start\n";
	struct run_opts o;
	struct zg_ops ops;
	struct zg_plane plane;
	int rc = parse_opts(argc, argv, usage, 1, &o);

	if (rc)
		return rc > 0 ? ZG_EXIT_OK : ZG_EXIT_USAGE;
	zg_ops_init(&ops, &plane);
	rc = zg_gateway_run(o.conf, o.workers, &plane);
	zg_ops_fini(&ops);
	return rc;
}

/* The pool of every route as `check` shows it: each member, its role and
 * weight, the name its TLS peer must carry, and the addresses it resolves to. */
static void print_route_addresses(const struct zg_snapshot *s)
{
	for (unsigned i = 0; i < s->n_routes; i++) {
		const struct zg_route_rt *rt = &s->routes[i];
		printf("# route %s: pool of %u, balance %s, health_check %s\n", rt->conf->name, rt->n_up,
		       zg_balance_name(rt->conf->balance), zg_check_name(rt->conf->check.kind));
		for (unsigned k = 0; k < rt->n_up; k++) {
			const struct zg_upstream_rt *u = &rt->up[k];
			char a[64];
			printf("#   upstream %s:%s %s weight %u", u->conf->ep.host, u->conf->ep.port,
			       u->conf->backup ? "backup" : "primary", u->conf->weight);
			if (zg_route_tls_out(rt->conf))
				printf(" server_name %s", zg_upstream_server_name(rt->conf, u->conf));
			printf(" resolves to");
			for (unsigned j = 0; j < u->n_addr; j++) {
				zg_sockaddr_format((const struct sockaddr *)&u->addr[j].ss, a, sizeof(a));
				printf(" %s", a);
			}
			printf("%s\n", u->n_addr ? "" : " nothing");
		}
	}
}

/* `check`: days left for everything the configuration's trust rests on,
 * and the nearest [admin] expiry_warn threshold each has crossed. */
static void print_expiry(const struct zg_snapshot *s)
{
	struct zg_expiry_item items[ZG_EXPIRY_MAX];
	const struct zg_conf_admin *adm = &s->conf->admin;
	unsigned n = zg_expiry_collect(s->conf, s->dir, items, ZG_EXPIRY_MAX);
	time_t now = time(NULL);

	for (unsigned i = 0; i < n; i++) {
		time_t t = (time_t)items[i].not_after;
		struct tm tm;
		char when[32] = "?", crossed[48] = "";
		long long left = (long long)zg_expiry_days_left(items[i].not_after, (int64_t)now);
		int due = zg_expiry_due(items[i].not_after, (int64_t)now, adm->expiry_warn,
					adm->n_expiry_warn, 0);

		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (due >= 0)
			snprintf(crossed, sizeof(crossed), " (past the %ud warning)", adm->expiry_warn[due]);
		printf("# expiry: %s %s: %s, %s %lld days%s\n", items[i].kind, items[i].name, when,
		       left < 0 ? "expired" : "in", left < 0 ? -left : left, crossed);
	}
}

int zg_cmd_check(int argc, char **argv)
{
	static const char usage[] =
		"usage: zonegate check -c FILE\n"
		"  Validate FILE as `run` would (syntax, files, keys, certificates, profiles,\n"
		"  listen addresses) without serving, and print the effective settings.\n"
		"exit: 0 valid, 2 usage, 3 configuration refused\n"
		"      (every error printed as file:line: key: message)\n";
	struct zg_errlist *errs = malloc(sizeof(*errs));
	struct zg_snapshot *s = NULL;
	struct zg_conf *conf;
	struct run_opts o;
	int rc = parse_opts(argc, argv, usage, 0, &o);

	if (rc || !errs) {
		free(errs);
		return rc > 0 ? ZG_EXIT_OK : rc < 0 ? ZG_EXIT_USAGE : ZG_EXIT_RUNTIME;
	}
	zg_errlist_init(errs);
	conf = zg_conf_load(o.conf, errs);
	if (conf)
		s = zg_snapshot_build(conf, NULL, 1, NULL, NULL, errs);
	/* the audit sinks as `run` would open them: a missing spool or log
	 * directory must fail here, not at start-up */
	if (s && (s->conf->audit.syslog_target[0] || s->conf->audit.file[0]) &&
	    zg_audit_conf_check(&s->conf->audit, errs) < 0) {
		zg_snapshot_unref(s);
		s = NULL;
	}
	if (!s) {
		zg_errlist_print(errs, stderr);
		fprintf(stderr, "%s: configuration refused (%zu error%s)\n", o.conf, errs->n + errs->dropped,
			errs->n + errs->dropped == 1 ? "" : "s");
		free(errs);
		return ZG_EXIT_CONFIG;
	}
	zg_conf_print(s->conf, stdout);
	print_route_addresses(s);
	zg_conf_print_domains(s->conf, stdout);
	print_expiry(s);
	printf("# %s: configuration OK\n", o.conf);
	zg_snapshot_unref(s);
	free(errs);
	return ZG_EXIT_OK;
}
