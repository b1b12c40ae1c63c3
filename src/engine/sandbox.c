/* sandbox.c - see sandbox.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "base/exit.h"
#include "engine/sandbox.h"

/* What a worker may call. Grouped by why it needs them. */
static const int allowed[] = {
	/* the event loop and connections */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(accept4),
	SCMP_SYS(accept), SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(close),
	SCMP_SYS(shutdown), SCMP_SYS(fcntl), SCMP_SYS(ioctl),
	/* upstream connects and listeners re-opened on a reload */
	SCMP_SYS(socket), SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(setsockopt),
	SCMP_SYS(getsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
	/* the key process's socket, the reserve descriptor (/dev/null) */
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(openat), SCMP_SYS(newfstatat), SCMP_SYS(fstat),
	SCMP_SYS(lseek),
	/* memory, time, threads, randomness */
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
	SCMP_SYS(brk), SCMP_SYS(futex), SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(getrandom), SCMP_SYS(sched_yield),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getrlimit), SCMP_SYS(prlimit64),
	/* signals and the thread's end */
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(tgkill),
	SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
	/* [gateway] user: glibc makes every thread, sandboxed workers too, run
	 * the switch itself (engine/privs.h). Harmless to allow: before it the
	 * process is root anyway, after it the kernel refuses any way back. */
	SCMP_SYS(setgroups), SCMP_SYS(setresgid), SCMP_SYS(setresuid),
};

/* Append the decimal digits of @v to @buf at *@o (async-signal-safe). */
static void put_num(char *buf, size_t cap, size_t *o, long v)
{
	char d[24];
	int n = 0;

	if (v < 0)
		v = -v;
	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < (int)sizeof(d));
	while (n > 0 && *o < cap)
		buf[(*o)++] = d[--n];
}

/* Append @s at *@o (async-signal-safe). */
static void put_str(char *buf, size_t cap, size_t *o, const char *s)
{
	while (*s && *o < cap)
		buf[(*o)++] = *s++;
}

/* SIGSYS from the filter: one log line, then the process ends. Only
 * async-signal-safe calls. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char line[200];
	size_t o = 0;

	(void)sig;
	(void)uc;
	put_str(line, sizeof(line), &o, "level=crit event=sandbox_violation syscall=");
	put_num(line, sizeof(line), &o, si->si_syscall);
	put_str(line, sizeof(line), &o, " msg=\"a worker made a system call outside its seccomp filter: "
					 "process stopped\"\n");
	(void)!write(STDERR_FILENO, line, o);
	_exit(ZG_EXIT_RUNTIME);
}

int zg_sandbox_prepare(char *why, size_t cap)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(why, cap, "sigaction(SIGSYS): %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int seccomp_thread(int landlocked, char *why, size_t cap);

/* The file-system rights Landlock ABI @abi knows (each version adds). */
static uint64_t fs_rights(int abi)
{
	uint64_t r = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
		     LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		     LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
		     LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
		     LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		     LANDLOCK_ACCESS_FS_MAKE_SYM;

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= 1ULL << 14; /* LANDLOCK_ACCESS_FS_TRUNCATE: Debian 12's headers stop at ABI 2 */
	return r;
}

/* Landlock on the calling thread: no file may be opened but /dev/null
 * (the descriptor reserve). Files the gateway needs later (reload, audit)
 * are opened by the main and audit threads, which are not restricted.
 * 1 if applied, 0 if the kernel has no Landlock, -1 with why. */
static int landlock_thread(char *why, size_t cap)
{
	struct landlock_ruleset_attr attr;
	struct landlock_path_beneath_attr rule;
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	int rs, rc = -1;

	if (abi < 1)
		return 0; /* ENOSYS, EOPNOTSUPP: not in this kernel or disabled */
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = fs_rights((int)abi);
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rs < 0) {
		snprintf(why, cap, "landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	memset(&rule, 0, sizeof(rule));
	rule.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE;
	rule.parent_fd = open("/dev/null", O_PATH | O_CLOEXEC);
	if (rule.parent_fd < 0 ||
	    syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		snprintf(why, cap, "landlock: %s", strerror(errno));
	else
		rc = 1;
	if (rule.parent_fd >= 0)
		close(rule.parent_fd);
	close(rs);
	return rc;
}

int zg_sandbox_worker(char *why, size_t cap)
{
	int ll = landlock_thread(why, cap);

	if (ll < 0)
		return -1;
	return seccomp_thread(ll, why, cap);
}

/* The seccomp filter on the calling thread (after Landlock: the filter
 * does not allow its calls). 0, or -1 with why. */
static int seccomp_thread(int landlocked, char *why, size_t cap)
{
	/* SCMP_ACT_TRAP: SIGSYS to this thread, so the handler can say what
	 * was called before the process ends; no TSYNC: this thread only */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int rc = -1, e = 0;

	if (!ctx) {
		snprintf(why, cap, "seccomp_init failed");
		return -1;
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && e == 0; i++)
		if (allowed[i] >= 0) /* a call this architecture does not have */
			e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	if (e == 0)
		e = seccomp_load(ctx);
	if (e != 0)
		snprintf(why, cap, "seccomp: %s", strerror(-e));
	else
		rc = 0;
	if (rc == 0)
		snprintf(why, cap, "seccomp=on landlock=%s", landlocked ? "on" : "unavailable");
	seccomp_release(ctx);
	return rc;
}
