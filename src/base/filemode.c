/* filemode.c - see filemode.h. */
#include <stdio.h>

#include "base/filemode.h"

int zg_file_mode_check(const struct stat *st, uid_t euid, const char *path, char *why, size_t cap)
{
	const char *who = (st->st_mode & S_IWOTH) ? "world" : "group";

	if (st->st_uid != 0 && st->st_uid != euid) {
		snprintf(why, cap, "%s is owned by uid %u, not by root or uid %u (the gateway's user): "
			 "its owner can change it; run 'chown root %s'",
			 path, (unsigned)st->st_uid, (unsigned)euid, path);
		return -1;
	}
	/* a sticky directory (/tmp) still lets others add entries */
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, cap, "%s is %s-writable (mode %04o): others can change it; run 'chmod go-w %s'",
			 path, who, (unsigned)(st->st_mode & 07777), path);
		return -1;
	}
	return 0;
}
