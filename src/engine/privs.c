/* privs.c - see privs.h. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/privs.h"

int zg_privs_lookup(const char *user, struct zg_privs *p, char *why, size_t cap)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n = ZG_PRIVS_GROUPS_MAX, rc;

	memset(p, 0, sizeof(*p));
	rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (rc != 0 || !res) {
		snprintf(why, cap, "user %s: %s", user, rc ? strerror(rc) : "no such user");
		return -1;
	}
	if (pw.pw_uid == 0) {
		/* a switch to root would say "dropped" and drop nothing */
		snprintf(why, cap, "user %s has uid 0", user);
		return -1;
	}
	p->uid = pw.pw_uid;
	p->gid = pw.pw_gid;
	if (getgrouplist(user, pw.pw_gid, p->groups, &n) < 0) {
		snprintf(why, cap, "user %s: more than %d groups", user, ZG_PRIVS_GROUPS_MAX);
		return -1;
	}
	p->n_groups = n;
	return 0;
}

int zg_privs_drop(const struct zg_privs *p, char *why, size_t cap)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	/* groups first: once the uid is not 0, they could not be changed */
	if (setgroups((size_t)p->n_groups, p->groups) < 0) {
		snprintf(why, cap, "setgroups: %s", strerror(errno));
		return -1;
	}
	if (setresgid(p->gid, p->gid, p->gid) < 0) {
		snprintf(why, cap, "setresgid(%u): %s", (unsigned)p->gid, strerror(errno));
		return -1;
	}
	if (setresuid(p->uid, p->uid, p->uid) < 0) {
		snprintf(why, cap, "setresuid(%u): %s", (unsigned)p->uid, strerror(errno));
		return -1;
	}
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != p->uid ||
	    eu != p->uid || su != p->uid || rg != p->gid || eg != p->gid || sg != p->gid) {
		snprintf(why, cap, "the user or group did not change");
		return -1;
	}
	/* a saved uid 0 would let a compromised worker take root back; the raw
	 * call tries on this thread alone (glibc's setuid would ask them all) */
	if (syscall(SYS_setuid, 0) == 0) {
		snprintf(why, cap, "uid 0 could be taken back");
		return -1;
	}
	return 0;
}
