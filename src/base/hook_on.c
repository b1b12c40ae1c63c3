/* hook_on.c - hook.h for test builds (-Dtest_hooks=true). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/hook.h"

#define HANG_POLL_NS 50000000L

/* workers that tried $ZG_TEST_SANDBOX_OPEN once (test builds only) */
static _Atomic unsigned open_tried;

int zg_hooks_built(void)
{
	return 1;
}

/* Whether the hang file exists and names worker @index. */
static int hang_wanted(const char *path, unsigned index)
{
	char buf[16] = "";
	FILE *f = fopen(path, "r");
	char *end;
	unsigned long want;

	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	want = strtoul(buf, &end, 10);
	return want == index;
}

void zg_hook_worker_turn(unsigned index)
{
	const char *path = getenv("ZG_TEST_HANG_FILE");
	struct timespec ts = {.tv_sec = 0, .tv_nsec = HANG_POLL_NS};

	const char *probe = getenv("ZG_TEST_SANDBOX_PROBE");
	const char *open_path = getenv("ZG_TEST_SANDBOX_OPEN");
	struct stat st;
	int fd;

	/* stat, not open: Landlock governs opening files, not looking */
	if (probe && *probe && stat(probe, &st) == 0)
		(void)syscall(SYS_getppid);
	if (open_path && *open_path && !(open_tried & (1u << (index & 31)))) {
		open_tried |= 1u << (index & 31);
		fd = open(open_path, O_RDONLY | O_CLOEXEC);
		fprintf(stderr, "event=hook_open worker=%u result=%s\n", index,
			fd >= 0 ? "opened" : strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (!path || !*path)
		return;
	while (hang_wanted(path, index))
		nanosleep(&ts, NULL);
}

int zg_hook_keys_restart_held(void)
{
	const char *path = getenv("ZG_TEST_KEYS_HOLD");
	FILE *f;

	if (!path || !*path || !(f = fopen(path, "r")))
		return 0;
	fclose(f);
	return 1;
}
