/* exit.h - the process exit codes of every command (docs/cli.md), shared by
 * the cli wing and the engine, which returns them from zg_gateway_run. */
#ifndef ZG_EXIT_H
#define ZG_EXIT_H

enum zg_exit {
	ZG_EXIT_OK = 0,
	ZG_EXIT_FAIL = 1,   /* a check failed (certificate, signature, chain) */
	ZG_EXIT_USAGE = 2,  /* bad command line */
	ZG_EXIT_CONFIG = 3, /* configuration refused */
	ZG_EXIT_RUNTIME = 4 /* could not start or serve */
};

#endif
