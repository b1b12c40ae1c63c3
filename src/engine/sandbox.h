/* sandbox.h - the worker threads' sandbox: Landlock and seccomp.
 *
 * With [gateway] sandbox = on each worker thread, once started, restricts
 * itself (both are per-thread): Landlock, where the kernel has it, lets it
 * open no file but /dev/null, so not the key file; then a seccomp filter
 * (libseccomp) allows only what the data path does: epoll, accept,
 * read/write/send/recv, connect and the socket options of upstream
 * connects, listeners re-opened on a reload, memory, time, futexes and the
 * key process's socket. Anything else (execve, ptrace, open of a new file
 * other than the few reads below, fork...) raises SIGSYS, whose handler
 * writes `event=sandbox_violation syscall=N` to stderr and ends the whole
 * process: a worker that tried is not trusted to keep running. The main,
 * audit and health-check threads are not filtered (they reload files,
 * resolve names, fork the key process).
 */
#ifndef ZG_SANDBOX_H
#define ZG_SANDBOX_H

#include <stddef.h>

/* The SIGSYS handler, process-wide (main thread, before the workers). */
int zg_sandbox_prepare(char *why, size_t cap);

/* Sandbox the calling worker thread. 0 with what was applied in @why
 * ("seccomp=on landlock=on|unavailable"), or -1 with why. */
int zg_sandbox_worker(char *why, size_t cap);

#endif
