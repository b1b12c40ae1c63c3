/* hook_on.c - hook.h for test builds (-Dtest_hooks=true). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hook.h"

#define HANG_POLL_NS 50000000L

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
