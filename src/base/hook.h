/* hook.h - fault hooks for tests, compiled into test builds only.
 *
 * `meson setup -Dtest_hooks=true` links hook_on.c, every other build links
 * hook_off.c, whose functions do nothing: this is the one place a test can
 * make the daemon misbehave, and it does not exist in a release binary.
 *
 * hook_on.c: while the file named by $ZG_TEST_HANG_FILE exists and holds
 * the worker's index (an empty file means worker 0), that worker's loop
 * stops turning, as a worker stuck in a bug would. While the file named by
 * $ZG_TEST_KEYS_HOLD exists, the main thread does not restart a lost key
 * process, so a test sees handshakes fail closed before it comes back.
 * While the file named by $ZG_TEST_SANDBOX_PROBE exists, each worker turn
 * makes a system call no worker needs (getppid), which the seccomp filter
 * ([gateway] sandbox = on) must answer by stopping the process. Each
 * worker tries once to open the file named by $ZG_TEST_SANDBOX_OPEN (the
 * key file, say) and writes `event=hook_open worker=N result=opened|why`
 * to stderr: under Landlock it must be refused.
 */
#ifndef ZG_HOOK_H
#define ZG_HOOK_H

/* 1 in a build with test hooks, 0 in a release build. */
int zg_hooks_built(void);

/* A worker's loop turns (called once per turn, worker @index's thread). */
void zg_hook_worker_turn(unsigned index);

/* Whether a lost key process's restart is held back (main thread). */
int zg_hook_keys_restart_held(void);

#endif
