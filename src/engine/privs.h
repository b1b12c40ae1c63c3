/* privs.h - the unprivileged user the gateway runs as after start-up.
 *
 * With [gateway] user = NAME the gateway starts as root (to bind low ports,
 * read the key, open the audit trail, fork the key process), then, once all
 * of that is done and before the first connection is judged, becomes NAME:
 * supplementary groups, then group, then user, real, effective and saved
 * alike, so there is no way back. glibc applies setgroups/setresgid/
 * setresuid to every thread of the process (it signals each one), so the
 * worker, audit and health-check threads change too.
 */
#ifndef ZG_PRIVS_H
#define ZG_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

#define ZG_PRIVS_GROUPS_MAX 64

/* Who to become: looked up once, before anything is started. */
struct zg_privs {
	uid_t uid;
	gid_t gid;
	gid_t groups[ZG_PRIVS_GROUPS_MAX]; /* the user's supplementary groups */
	int n_groups;
};

/* Look @user up in the user database into @p: its uid, primary group and
 * supplementary groups. 0, or -1 with why (no such user, too many groups). */
int zg_privs_lookup(const char *user, struct zg_privs *p, char *why, size_t cap);

/* Become @p for good, every thread: setgroups, setresgid, setresuid, then
 * check that the change holds and that uid 0 cannot be taken back. 0, or -1
 * with why (the process must then stop: it is half changed). */
int zg_privs_drop(const struct zg_privs *p, char *why, size_t cap);

#endif
