/* main.c - command line: argv to a subcommand; no logic lives here. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include "base/hook.h"
#include "cli/cli.h"
#include "keys/keys.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static int cmd_version(int argc, char **argv);

static const struct command commands[] = {
	{"run", zg_cmd_run, "serve the routes of a configuration file"},
	{"check", zg_cmd_check, "validate a configuration file and print its effective settings"},
	{"check-cert", zg_cmd_check_cert, "check a certificate chain against every policy rule"},
	{"directory", zg_cmd_directory, "participant directory: keygen, sign, verify, show, lookup, entry"},
	{"audit", zg_cmd_audit, "audit trail tools: verify FILE checks a local audit file's hash chain"},
	{"ctl", zg_cmd_ctl, "ask a running gateway: status, conns, kill, drain, reload"},
	{"probe", zg_cmd_probe, "check a remote TLS endpoint against a profile"},
	{"profiles", zg_cmd_profiles, "print the effective settings of the TLS profiles"},
	{"version", cmd_version, "print the version and the OpenSSL it runs on"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: zonegate COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nzonegate COMMAND --help shows the options of each command.\n");
}

static int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: zonegate version\n");
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? ZG_EXIT_OK : ZG_EXIT_USAGE;
	}
	printf("zonegate %s\n%s (built against %s)\n", ZG_VERSION, OpenSSL_version(OPENSSL_VERSION),
	       OPENSSL_VERSION_TEXT);
	if (zg_hooks_built())
		printf("test hooks: on (a test build: not for production)\n");
	return ZG_EXIT_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return ZG_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(1, argv + 1);
	/* not in the table: the gateway execs it, an operator never does */
	if (strcmp(argv[1], "__key-process") == 0)
		return zg_cmd_key_process(argc - 1, argv + 1);
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "zonegate: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return ZG_EXIT_USAGE;
}
