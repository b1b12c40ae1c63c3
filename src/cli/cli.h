/* cli.h - one entry point per `zonegate SUBCOMMAND`, each in its own file.
 *
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand itself) and returns the process exit code (see exit codes in
 * docs/cli.md): 0 success, 1 the thing checked failed, 2 usage error,
 * 3 configuration error, 4 runtime failure.
 */
#ifndef ZG_CLI_H
#define ZG_CLI_H

#include "base/exit.h"

int zg_cmd_run(int argc, char **argv);   /* cmd_run.c */
int zg_cmd_check(int argc, char **argv); /* cmd_run.c */
int zg_cmd_check_cert(int argc, char **argv); /* cmd_check_cert.c */
int zg_cmd_directory(int argc, char **argv);  /* cmd_directory.c */
int zg_cmd_profiles(int argc, char **argv);   /* cmd_profiles.c */
int zg_cmd_probe(int argc, char **argv);      /* cmd_probe.c */
int zg_cmd_audit(int argc, char **argv); /* cmd_audit.c */
int zg_cmd_ctl(int argc, char **argv);   /* ctl.c */

#endif
