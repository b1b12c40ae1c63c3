/* cmd_audit.c - `zonegate audit verify FILE`: check a local audit file's
 * hash chain and name the first broken record. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "audit_file.h"
#include "cli.h"

static int usage(FILE *out, int rc)
{
	fprintf(out, "usage: zonegate audit verify FILE\n\n"
		     "Checks the SHA-256 hash chain of a zonegate audit file. Exit 0 and\n"
		     "\"FILE: N records, chain intact\" if every record verifies; exit 1 naming\n"
		     "the first broken record (line and sequence number) otherwise.\n");
	return rc;
}

static int verify(const char *path)
{
	struct zg_audit_verify_result res;
	FILE *f = fopen(path, "r");
	int rc;

	if (!f) {
		fprintf(stderr, "zonegate audit verify: %s: %s\n", path, strerror(errno));
		return ZG_EXIT_RUNTIME;
	}
	rc = zg_audit_file_verify(f, &res);
	fclose(f);
	if (rc < 0) {
		fprintf(stderr, "zonegate audit verify: %s: read error\n", path);
		return ZG_EXIT_RUNTIME;
	}
	if (rc == 0) {
		printf("%s: %" PRIu64 " records, chain intact\n", path, res.records);
		return ZG_EXIT_OK;
	}
	printf("%s: first broken record at line %" PRIu64 " (seq %" PRIu64 "): %s; "
	       "%" PRIu64 " records before it verify\n",
	       path, res.broken_line, res.broken_seq, res.why, res.records);
	return ZG_EXIT_FAIL;
}

int zg_cmd_audit(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
		return usage(stdout, ZG_EXIT_OK);
	if (argc != 3 || strcmp(argv[1], "verify") != 0)
		return usage(stderr, ZG_EXIT_USAGE);
	return verify(argv[2]);
}
