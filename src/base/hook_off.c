/* hook_off.c - hook.h for release builds: no hook does anything. */
#include "base/hook.h"

int zg_hooks_built(void)
{
	return 0;
}

void zg_hook_worker_turn(unsigned index)
{
	(void)index;
}

int zg_hook_keys_restart_held(void)
{
	return 0;
}
