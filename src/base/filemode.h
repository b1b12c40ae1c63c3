/* filemode.h - may a file decide whom the gateway trusts?
 *
 * Trust anchors, CRLs, the directory and its operator's public key, and the
 * audit spool decide what the gateway lets through and what it records. A
 * user who can rewrite one of them can change that without touching the
 * configuration, so they are held to the configuration's rule: owned by
 * root or by the gateway's own user, and writable by nobody else. Callers
 * fstat() the descriptor they then read from (never the path, which could
 * be swapped in between) and pass the result here.
 */
#ifndef ZG_FILEMODE_H
#define ZG_FILEMODE_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Judge @st for a process running as @euid: 0 if only root or @euid can
 * change it, else -1 with the reason and the fix for @path in @why, e.g.
 * "/etc/zg/ca.pem is group-writable (mode 0664); run 'chmod go-w
 * /etc/zg/ca.pem'" or "... is owned by uid 1000, not by root or uid 0 (the
 * gateway's user); run 'chown root ...'". Pure: no I/O. */
int zg_file_mode_check(const struct stat *st, uid_t euid, const char *path, char *why, size_t cap);

#endif
