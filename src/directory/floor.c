/* floor.c - see "Rollback across restarts" in directory.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hex.h"
#include "directory/directory.h"

#define FLOOR_FILE_MAX 256

/* "serial N\nsha256 HEX64\n" exactly, as zg_directory_floor_write writes it. */
static int parse_floor(const char *buf, struct zg_dir_floor *f)
{
	char *end;
	unsigned long long serial;

	if (strncmp(buf, "serial ", 7) != 0 || buf[7] < '1' || buf[7] > '9')
		return -1;
	errno = 0;
	serial = strtoull(buf + 7, &end, 10);
	if (errno || strncmp(end, "\nsha256 ", 8) != 0)
		return -1;
	end += 8;
	if (zg_hex_decode(end, 32, f->digest) < 0 || strcmp(end + 64, "\n") != 0)
		return -1;
	f->serial = serial;
	f->set = 1;
	return 0;
}

int zg_directory_floor_read(const char *path, struct zg_dir_floor *f, char *why, size_t cap)
{
	char buf[FLOOR_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd;

	memset(f, 0, sizeof(*f));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* first start with this state file */
		snprintf(why, cap, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		/* whoever can write the floor can lower it, and so re-open rollback */
		snprintf(why, cap, "%s must be a regular file writable only by its owner", path);
		close(fd);
		return -1;
	}
	n = read(fd, buf, FLOOR_FILE_MAX);
	close(fd);
	if (n < 0) {
		snprintf(why, cap, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	if (parse_floor(buf, f) < 0) {
		memset(f, 0, sizeof(*f));
		snprintf(why, cap, "%s: not a directory state file (expected 'serial N' and 'sha256 HEX')",
			 path);
		return -1;
	}
	return 0;
}

int zg_directory_floor_write(const char *path, const struct zg_directory *d, char *why, size_t cap)
{
	char tmp[ZG_DIR_PATH_MAX + 8], text[FLOOR_FILE_MAX];
	const uint8_t *dg = zg_directory_digest(d);
	int len, fd, rc = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(why, cap, "%s: path too long", path);
		return -1;
	}
	len = snprintf(text, sizeof(text), "serial %" PRIu64 "\nsha256 ", zg_directory_serial(d));
	zg_hex_encode(dg, 32, text + len);
	len += 64;
	text[len++] = '\n';
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(why, cap, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	/* written, synced, then renamed: a crash leaves the old floor or the new */
	if (write(fd, text, (size_t)len) != len || fsync(fd) < 0)
		snprintf(why, cap, "cannot write %s: %s", tmp, strerror(errno));
	else
		rc = 0;
	if (close(fd) < 0 && rc == 0) {
		snprintf(why, cap, "cannot write %s: %s", tmp, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && rename(tmp, path) < 0) {
		snprintf(why, cap, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		rc = -1;
	}
	if (rc < 0)
		unlink(tmp);
	return rc;
}

enum zg_reason zg_directory_check_floor(const struct zg_directory *d, const struct zg_dir_floor *f,
					char *why, size_t cap)
{
	uint64_t serial = zg_directory_serial(d);

	if (!f->set)
		return ZG_R_OK;
	if (serial < f->serial) {
		snprintf(why, cap, "directory_rollback: serial %" PRIu64 " is older than serial %" PRIu64
			 " accepted before this start (state_file); see docs/directory.md, 'Rollback'",
			 serial, f->serial);
		return ZG_R_DIR_ROLLBACK;
	}
	if (serial == f->serial && memcmp(zg_directory_digest(d), f->digest, 32) != 0) {
		snprintf(why, cap, "directory_rollback: serial %" PRIu64 " was accepted before with "
			 "different content; a new directory needs a new serial", serial);
		return ZG_R_DIR_ROLLBACK;
	}
	return ZG_R_OK;
}
