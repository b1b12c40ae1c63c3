/* cmd_profiles.c - `zonegate profiles [NAME]`: the effective settings of
 * each TLS profile, as OpenSSL applies them (tests/snapshots/profiles.txt is
 * the committed golden copy of the full output). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "policy/profile.h"

static int print_one(const struct zg_profile *p)
{
	char why[256];

	if (zg_profile_print(p, stdout, why, sizeof(why)) < 0) {
		fprintf(stderr, "profiles: %s: %s\n", p->name, why);
		return -1;
	}
	return 0;
}

/* `profiles --conf FILE`: which profile, identity and trust store each TLS
 * side of each route uses, then the settings of every profile in use. */
static int print_conf(const char *path)
{
	static struct zg_errlist errs; /* large; one per process */
	struct zg_conf *c;
	int rc = ZG_EXIT_OK;

	zg_errlist_init(&errs);
	if (!(c = zg_conf_load(path, &errs))) {
		zg_errlist_print(&errs, stderr);
		return ZG_EXIT_CONFIG;
	}
	zg_conf_print_domains(c, stdout);
	for (unsigned i = 0; i < c->n_routes && rc == ZG_EXIT_OK; i++) {
		unsigned k = 0;
		while (k < i && strcmp(c->routes[k].profile, c->routes[i].profile) != 0)
			k++;
		if (k < i)
			continue; /* printed already */
		fputc('\n', stdout);
		if (print_one(zg_profile_find(c->routes[i].profile)) < 0)
			rc = ZG_EXIT_RUNTIME;
	}
	zg_conf_free(c);
	return rc;
}

int zg_cmd_profiles(int argc, char **argv)
{
	const struct zg_profile *all, *p;
	size_t n;

	if (argc == 3 && strcmp(argv[1], "--conf") == 0)
		return print_conf(argv[2]);
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		int help = argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
		fprintf(help ? stdout : stderr,
			"usage: zonegate profiles [NAME]\n"
			"       zonegate profiles --conf FILE\n"
			"Prints the effective settings of every TLS profile, or of NAME; with\n"
			"--conf, which profile, identity and trust store each TLS side of each\n"
			"route of FILE uses, then the profiles in use.\n");
		return help ? ZG_EXIT_OK : ZG_EXIT_USAGE;
	}
	all = zg_profile_all(&n);
	if (argc == 2) {
		p = zg_profile_find(argv[1]);
		if (!p) {
			fprintf(stderr, "profiles: unknown profile %s; known:", argv[1]);
			for (size_t i = 0; i < n; i++)
				fprintf(stderr, " %s", all[i].name);
			fputc('\n', stderr);
			return ZG_EXIT_USAGE;
		}
		return print_one(p) < 0 ? ZG_EXIT_RUNTIME : ZG_EXIT_OK;
	}
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc('\n', stdout);
		if (print_one(&all[i]) < 0)
			return ZG_EXIT_RUNTIME;
	}
	return ZG_EXIT_OK;
}
