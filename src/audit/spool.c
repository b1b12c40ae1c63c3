/* audit_spool.c - see audit_spool.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/spool.h"
#include "base/filemode.h"
#include "base/log.h"

#define RBUF_SIZE (512u * 1024u)
#define SEG_NAME_LEN 24 /* 20 digits + ".zgs" */

struct seg {
	uint64_t first; /* sequence number in the name */
	uint64_t size;
	int fd;
};

struct zg_spool {
	char dir[512];
	int dirfd;
	uint64_t max_bytes, seg_max, total;
	struct seg segs[ZG_SPOOL_SEGS_MAX];
	unsigned nseg;
	unsigned cur_seg;  /* reader: first byte not yet delivered */
	uint64_t cur_off;
	uint64_t delivered;
	uint64_t corrupt;
	int dir_dirty;     /* a segment was created or removed since the last sync */
	uint8_t *rbuf;
};

uint32_t zg_crc32c(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;

	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= b[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

size_t zg_spool_frame(uint8_t *out, size_t cap, uint64_t seq, int64_t ts_ns, const void *payload,
		      uint32_t len)
{
	size_t n = ZG_SPOOL_HDR + (size_t)len;
	uint32_t crc;

	if (len > ZG_SPOOL_PAYLOAD_MAX || cap < n)
		return 0;
	memcpy(out, ZG_SPOOL_MAGIC, 4);
	put32(out + 4, len);
	put64(out + 8, seq);
	put64(out + 16, (uint64_t)ts_ns);
	crc = zg_crc32c(0, out + 4, 20);
	crc = zg_crc32c(crc, payload, len);
	put32(out + 24, crc);
	memcpy(out + ZG_SPOOL_HDR, payload, len);
	return n;
}

static size_t next_magic(const uint8_t *buf, size_t len, size_t from)
{
	for (size_t i = from; i + 4 <= len; i++)
		if (memcmp(buf + i, ZG_SPOOL_MAGIC, 4) == 0)
			return i;
	/* a magic cut by the end of the buffer may still start in its last 3 bytes */
	for (size_t i = len > 3 && len - 3 > from ? len - 3 : from; i < len; i++)
		if (memcmp(buf + i, ZG_SPOOL_MAGIC, len - i) == 0)
			return i;
	return len;
}

enum zg_spool_parse zg_spool_parse(const uint8_t *buf, size_t len, struct zg_spool_rec *rec,
				   size_t *consumed)
{
	uint32_t n, crc;

	*consumed = 0;
	if (len < 4 && memcmp(buf, ZG_SPOOL_MAGIC, len) == 0)
		return ZG_SPOOL_SHORT;
	if (len < 4 || memcmp(buf, ZG_SPOOL_MAGIC, 4) != 0)
		goto bad;
	if (len < ZG_SPOOL_HDR)
		return ZG_SPOOL_SHORT;
	n = get32(buf + 4);
	if (n > ZG_SPOOL_PAYLOAD_MAX)
		goto bad;
	if (len < ZG_SPOOL_HDR + (size_t)n)
		return ZG_SPOOL_SHORT;
	crc = zg_crc32c(0, buf + 4, 20);
	crc = zg_crc32c(crc, buf + ZG_SPOOL_HDR, n);
	if (crc != get32(buf + 24))
		goto bad;
	rec->len = n;
	rec->seq = get64(buf + 8);
	rec->ts_ns = (int64_t)get64(buf + 16);
	rec->payload = buf + ZG_SPOOL_HDR;
	*consumed = ZG_SPOOL_HDR + (size_t)n;
	return ZG_SPOOL_OK;
bad:
	*consumed = next_magic(buf, len, 1);
	return ZG_SPOOL_BAD;
}

static void seg_name(char *out, size_t cap, uint64_t first)
{
	snprintf(out, cap, "%020" PRIu64 ".zgs", first);
}

static int parse_seg_name(const char *name, uint64_t *first)
{
	char *end;

	if (strlen(name) != SEG_NAME_LEN || strcmp(name + 20, ".zgs") != 0)
		return -1;
	for (int i = 0; i < 20; i++)
		if (name[i] < '0' || name[i] > '9')
			return -1;
	errno = 0;
	*first = strtoull(name, &end, 10);
	return errno || end != name + 20 ? -1 : 0;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

static int write_state(struct zg_spool *s)
{
	char text[64];
	int fd, k, rc = -1;

	k = snprintf(text, sizeof(text), "delivered %" PRIu64 "\n", s->delivered);
	fd = openat(s->dirfd, "state.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, text, (size_t)k) != k || fdatasync(fd) != 0)
		goto out;
	if (renameat(s->dirfd, "state.tmp", s->dirfd, "state") != 0 || fsync(s->dirfd) != 0)
		goto out;
	rc = 0;
out:
	close(fd);
	return rc;
}

static int read_state(struct zg_spool *s)
{
	char text[64];
	ssize_t n;
	int fd = openat(s->dirfd, "state", O_RDONLY | O_CLOEXEC);
	char *end;

	s->delivered = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -1;
	text[n] = '\0';
	if (strncmp(text, "delivered ", 10) != 0)
		return -1;
	errno = 0;
	s->delivered = strtoull(text + 10, &end, 10);
	return errno || (*end != '\n' && *end != '\0') ? -1 : 0;
}

static int list_segments(struct zg_spool *s)
{
	DIR *d = fdopendir(dup(s->dirfd));
	struct dirent *e;
	uint64_t first;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (parse_seg_name(e->d_name, &first) != 0)
			continue;
		if (s->nseg == ZG_SPOOL_SEGS_MAX) {
			closedir(d);
			errno = EMFILE;
			return -1;
		}
		s->segs[s->nseg].first = first;
		s->segs[s->nseg].fd = -1;
		s->nseg++;
	}
	closedir(d);
	qsort(s->segs, s->nseg, sizeof(s->segs[0]), cmp_seg);
	return 0;
}

static int open_seg(struct zg_spool *s, struct seg *g, int create)
{
	char name[32];
	struct stat st;

	seg_name(name, sizeof(name), g->first);
	g->fd = openat(s->dirfd, name, O_RDWR | O_APPEND | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0),
		       0600);
	if (g->fd < 0 || fstat(g->fd, &st) != 0)
		return -1;
	g->size = (uint64_t)st.st_size;
	return 0;
}

static void remove_seg(struct zg_spool *s, unsigned i)
{
	char name[32];

	seg_name(name, sizeof(name), s->segs[i].first);
	if (s->segs[i].fd >= 0)
		close(s->segs[i].fd);
	if (unlinkat(s->dirfd, name, 0) != 0)
		zg_warn("event=audit_spool_error op=unlink file=%s/%s errno=%d", s->dir, name, errno);
	s->total -= s->segs[i].size;
	memmove(&s->segs[i], &s->segs[i + 1], (s->nseg - i - 1) * sizeof(s->segs[0]));
	s->nseg--;
	if (s->cur_seg > i)
		s->cur_seg--;
	else if (s->cur_seg == i)
		s->cur_off = 0;
	s->dir_dirty = 1;
}

static int read_full(int fd, uint8_t *buf, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, buf + got, n - got, (off_t)(off + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

/* Read the frame at @off into @buf: the header, then exactly the payload
 * it announces; the whole window *@win (for resynchronising) when the header
 * does not look right. Sets *@win to the bytes read. */
static int read_frame(int fd, uint8_t *buf, size_t *win, uint64_t off)
{
	size_t h = *win < ZG_SPOOL_HDR ? *win : ZG_SPOOL_HDR;
	uint32_t len;

	if (read_full(fd, buf, h, off) != 0)
		return -1;
	if (h == ZG_SPOOL_HDR && memcmp(buf, ZG_SPOOL_MAGIC, 4) == 0) {
		len = get32(buf + 4);
		if (len <= ZG_SPOOL_PAYLOAD_MAX && ZG_SPOOL_HDR + (size_t)len <= *win) {
			*win = ZG_SPOOL_HDR + (size_t)len;
			return read_full(fd, buf + h, len, off + h);
		}
	}
	return read_full(fd, buf + h, *win - h, off + h);
}

static void report_corrupt(struct zg_spool *s, const struct seg *g, uint64_t off, uint64_t n)
{
	char name[32];

	seg_name(name, sizeof(name), g->first);
	s->corrupt++;
	zg_err("event=audit_spool_corrupt file=%s/%s offset=%" PRIu64 " bytes=%" PRIu64
	       " action=skipped", s->dir, name, off, n);
}

/* Scan segment @i whole: count records, report damage, and place the reader
 * at the first record after the delivered mark. Cuts a torn tail off the
 * newest segment so that appends start on a frame boundary. */
static int scan_seg(struct zg_spool *s, unsigned i, struct zg_spool_report *rep, int *placed)
{
	struct seg *g = &s->segs[i];
	uint64_t off = 0;

	while (off < g->size) {
		size_t win = (size_t)(g->size - off < RBUF_SIZE ? g->size - off : RBUF_SIZE);
		size_t p = 0, used;
		struct zg_spool_rec r;
		int at_eof = off + win == g->size;

		if (read_full(g->fd, s->rbuf, win, off) != 0)
			return -1;
		while (p < win) {
			enum zg_spool_parse v = zg_spool_parse(s->rbuf + p, win - p, &r, &used);
			if (v == ZG_SPOOL_SHORT)
				break;
			if (v == ZG_SPOOL_BAD) {
				report_corrupt(s, g, off + p, used);
				rep->corrupt++;
				p += used;
				continue;
			}
			rep->records++;
			if (r.seq > rep->last_seq)
				rep->last_seq = r.seq;
			if (r.seq > s->delivered) {
				rep->pending++;
				if (!*placed) {
					s->cur_seg = i;
					s->cur_off = off + p;
					*placed = 1;
				}
			}
			p += used;
		}
		if (p < win && at_eof) {
			uint64_t tail = win - p;
			if (i + 1 == s->nseg) {
				if (ftruncate(g->fd, (off_t)(off + p)) != 0)
					return -1;
				s->total -= tail;
				g->size = off + p;
				rep->torn += tail;
				zg_warn("event=audit_spool_torn bytes=%" PRIu64 " action=truncated", tail);
			} else {
				report_corrupt(s, g, off + p, tail);
				rep->corrupt++;
			}
			break;
		}
		if (p == 0) /* one frame larger than the window cannot happen: len is bounded */
			return -1;
		off += p;
	}
	return 0;
}

static int spool_scan(struct zg_spool *s, struct zg_spool_report *rep)
{
	int placed = 0;

	for (unsigned i = 0; i < s->nseg; i++) {
		if (open_seg(s, &s->segs[i], 0) != 0)
			return -1;
		s->total += s->segs[i].size;
	}
	for (unsigned i = 0; i < s->nseg; i++)
		if (scan_seg(s, i, rep, &placed) != 0)
			return -1;
	if (!placed) {
		s->cur_seg = s->nseg ? s->nseg - 1 : 0;
		s->cur_off = s->nseg ? s->segs[s->cur_seg].size : 0;
	}
	/* segments wholly before the reader hold only delivered records */
	while (s->cur_seg > 0)
		remove_seg(s, 0);
	return 0;
}

/* The spool directory (open as @dirfd) and its state file may be changed
 * by root or us only: anyone else who can write there can plant CRC-valid
 * records that the backfill appends to the hash chain, or move the
 * delivery cursor. Once the directory is ours alone nobody else can swap
 * the state file between this check and its read. 0, or -1 with @why. */
static int check_modes(int dirfd, const char *dir, char *why, size_t cap)
{
	char path[512 + 8];
	struct stat st;
	int fd, rc = -1;

	if (fstat(dirfd, &st) != 0) {
		snprintf(why, cap, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (zg_file_mode_check(&st, geteuid(), dir, why, cap) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/state", dir);
	fd = openat(dirfd, "state", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, cap, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0)
		snprintf(why, cap, "%s: %s", path, strerror(errno));
	else if (zg_file_mode_check(&st, geteuid(), path, why, cap) == 0)
		rc = 0;
	close(fd);
	return rc;
}

int zg_spool_check(const char *dir, char *why, size_t cap)
{
	int rc, fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, cap, "%s: %s", dir, strerror(errno));
		return -1;
	}
	rc = check_modes(fd, dir, why, cap);
	close(fd);
	return rc;
}

struct zg_spool *zg_spool_open(const char *dir, uint64_t max_bytes, struct zg_spool_report *rep,
			       char *why, size_t cap)
{
	struct zg_spool *s = calloc(1, sizeof(*s));

	memset(rep, 0, sizeof(*rep));
	if (!s || !(s->rbuf = malloc(RBUF_SIZE))) {
		snprintf(why, cap, "out of memory");
		goto fail;
	}
	s->dirfd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->max_bytes = max_bytes;
	s->seg_max = max_bytes / 16 < 65536 ? 65536 : max_bytes / 16;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(why, cap, "%s: cannot create: %s", dir, strerror(errno));
		goto fail;
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd >= 0 && check_modes(s->dirfd, dir, why, cap) < 0)
		goto fail;
	/* one writer per spool: a second one (another gateway, `audit test
	 * --trail` on a live configuration) would interleave frames and
	 * sequence numbers; the lock goes with the descriptor */
	if (s->dirfd >= 0 && flock(s->dirfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(why, cap, "%s: %s", dir, errno == EWOULDBLOCK ?
			 "in use by another zonegate process (a running gateway?); a spool "
			 "has one writer" : strerror(errno));
		goto fail;
	}
	if (s->dirfd < 0 || read_state(s) != 0 || list_segments(s) != 0 || spool_scan(s, rep) != 0) {
		snprintf(why, cap, "%s: cannot open spool: %s", dir, strerror(errno ? errno : EIO));
		goto fail;
	}
	rep->delivered = s->delivered;
	if (rep->last_seq < s->delivered)
		rep->last_seq = s->delivered;
	return s;
fail:
	zg_spool_close(s);
	return NULL;
}

void zg_spool_close(struct zg_spool *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->nseg; i++)
		if (s->segs[i].fd >= 0)
			close(s->segs[i].fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->rbuf);
	free(s);
}

int zg_spool_full(const struct zg_spool *s, uint32_t len)
{
	return s->total + ZG_SPOOL_HDR + len > s->max_bytes;
}

static int new_segment(struct zg_spool *s, uint64_t first)
{
	struct seg *g;

	if (s->nseg == ZG_SPOOL_SEGS_MAX)
		return -1;
	g = &s->segs[s->nseg];
	g->first = first;
	if (open_seg(s, g, 1) != 0) {
		if (g->fd >= 0)
			close(g->fd);
		return -1;
	}
	s->nseg++;
	s->dir_dirty = 1;
	return 0;
}

/* Append one frame; @over = 1 lets it pass max_bytes (see
 * zg_spool_append_over). */
static int append(struct zg_spool *s, uint64_t seq, int64_t ts_ns, const void *payload,
		  uint32_t len, int over)
{
	uint8_t frame[ZG_SPOOL_HDR + 20000];
	size_t n, done = 0;
	struct seg *g;

	if (len > sizeof(frame) - ZG_SPOOL_HDR || (!over && zg_spool_full(s, len)))
		return -1;
	n = zg_spool_frame(frame, sizeof(frame), seq, ts_ns, payload, len);
	if (s->nseg == 0 || s->segs[s->nseg - 1].size + n > s->seg_max) {
		if (new_segment(s, seq) != 0)
			return -1;
	}
	g = &s->segs[s->nseg - 1];
	while (done < n) {
		ssize_t k = write(g->fd, frame + done, n - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			/* leave no half frame behind for the next append to follow */
			if (ftruncate(g->fd, (off_t)g->size) != 0)
				zg_err("event=audit_spool_error op=truncate errno=%d", errno);
			return -1;
		}
		done += (size_t)k;
	}
	g->size += n;
	s->total += n;
	return 0;
}

int zg_spool_append(struct zg_spool *s, uint64_t seq, int64_t ts_ns, const void *payload,
		    uint32_t len)
{
	return append(s, seq, ts_ns, payload, len, 0);
}

int zg_spool_append_over(struct zg_spool *s, uint64_t seq, int64_t ts_ns, const void *payload,
			 uint32_t len)
{
	return append(s, seq, ts_ns, payload, len, 1);
}

int zg_spool_sync(struct zg_spool *s)
{
	if (s->nseg && fdatasync(s->segs[s->nseg - 1].fd) != 0)
		return -1;
	if (s->dir_dirty) {
		if (fsync(s->dirfd) != 0)
			return -1;
		s->dir_dirty = 0;
	}
	return 0;
}

/* Count the records of segment @i from @off on that are beyond the
 * delivered mark; *last gets the highest sequence number seen. Reads
 * headers only: the segment is about to go, its payloads do not matter. */
static long count_pending(struct zg_spool *s, unsigned i, uint64_t off, uint64_t *last)
{
	const struct seg *g = &s->segs[i];
	uint8_t h[ZG_SPOOL_HDR];
	long n = 0;

	while (off + ZG_SPOOL_HDR <= g->size) {
		uint64_t seq;
		if (read_full(g->fd, h, sizeof(h), off) != 0 || memcmp(h, ZG_SPOOL_MAGIC, 4) != 0)
			break; /* damaged: what follows cannot be counted cheaply */
		seq = get64(h + 8);
		if (seq > s->delivered)
			n++;
		if (seq > *last)
			*last = seq;
		off += ZG_SPOOL_HDR + (uint64_t)get32(h + 4);
	}
	return n;
}

long zg_spool_drop_oldest(struct zg_spool *s)
{
	uint64_t last = 0;
	long dropped;

	if (s->nseg < 2 || s->cur_seg > 0)
		return -1;
	dropped = count_pending(s, 0, s->cur_off, &last);
	if (last > s->delivered)
		s->delivered = last;
	s->cur_seg = 1;
	s->cur_off = 0;
	remove_seg(s, 0);
	if (write_state(s) != 0)
		return -1;
	return dropped;
}

/* Step past the end of a segment that is not the newest. */
static void normalize(struct zg_spool *s, unsigned *seg, uint64_t *off)
{
	while (*seg + 1 < s->nseg && *off >= s->segs[*seg].size) {
		(*seg)++;
		*off = 0;
	}
}

int zg_spool_peek(struct zg_spool *s, struct zg_spool_batch *b, size_t max_bytes, size_t max_recs)
{
	size_t used_buf = 0;
	unsigned seg = s->cur_seg;
	uint64_t off = s->cur_off;

	b->n = 0;
	if (max_recs > sizeof(b->rec) / sizeof(b->rec[0]))
		max_recs = sizeof(b->rec) / sizeof(b->rec[0]);
	if (max_bytes > RBUF_SIZE - ZG_SPOOL_HDR - ZG_SPOOL_PAYLOAD_MAX)
		max_bytes = RBUF_SIZE - ZG_SPOOL_HDR - ZG_SPOOL_PAYLOAD_MAX;
	for (;;) {
		struct seg *g;
		size_t win, used;
		struct zg_spool_rec r;
		enum zg_spool_parse v;

		normalize(s, &seg, &off);
		if (seg >= s->nseg || off >= s->segs[seg].size || b->n >= max_recs ||
		    used_buf >= max_bytes)
			break;
		g = &s->segs[seg];
		win = (size_t)(g->size - off);
		if (win > ZG_SPOOL_HDR + ZG_SPOOL_PAYLOAD_MAX)
			win = ZG_SPOOL_HDR + ZG_SPOOL_PAYLOAD_MAX;
		if (read_frame(g->fd, s->rbuf + used_buf, &win, off) != 0)
			return -1;
		v = zg_spool_parse(s->rbuf + used_buf, win, &r, &used);
		if (v == ZG_SPOOL_SHORT) {
			/* only a segment whose tail was torn by an earlier crash */
			used = (size_t)(g->size - off);
			v = ZG_SPOOL_BAD;
		}
		if (v == ZG_SPOOL_BAD) {
			if (b->n > 0)
				break; /* end the batch before it; the next peek skips it */
			report_corrupt(s, g, off, used);
			off += used;
			s->cur_seg = seg;
			s->cur_off = off;
			continue;
		}
		off += used;
		if (r.seq <= s->delivered) {
			/* dropped by drop_oldest accounting, or a stale duplicate: at the
			 * head, the reader passes it, so it never counts as pending */
			if (b->n == 0) {
				s->cur_seg = seg;
				s->cur_off = off;
			}
			continue;
		}
		b->after_seg[b->n] = seg;
		b->after_off[b->n] = off;
		b->rec[b->n++] = r;
		used_buf += used;
	}
	b->end_seg = seg;
	b->end_off = off;
	return (int)b->n;
}

int zg_spool_each_pending(struct zg_spool *s, uint64_t after,
			  int (*fn)(void *ctx, const struct zg_spool_rec *r), void *ctx)
{
	struct zg_spool_batch *b = malloc(sizeof(*b));
	unsigned seg = s->cur_seg;
	uint64_t off = s->cur_off;
	int rc = 0, n;

	if (!b)
		return -1;
	/* walk with the reader's cursor, then put it back: nothing delivered */
	while (rc == 0 && (n = zg_spool_peek(s, b, SIZE_MAX, 256)) != 0) {
		if (n < 0) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < b->n && rc == 0; i++)
			if (b->rec[i].seq > after && fn(ctx, &b->rec[i]) != 0)
				rc = -1;
		s->cur_seg = b->end_seg;
		s->cur_off = b->end_off;
	}
	s->cur_seg = seg;
	s->cur_off = off;
	free(b);
	return rc;
}

void zg_spool_batch_cut(struct zg_spool_batch *b, size_t n)
{
	if (n == 0 || n >= b->n)
		return;
	b->n = n;
	b->end_seg = b->after_seg[n - 1];
	b->end_off = b->after_off[n - 1];
}

int zg_spool_commit(struct zg_spool *s, const struct zg_spool_batch *b, size_t n)
{
	if (n == 0 || n > b->n)
		return n == 0 ? 0 : -1;
	s->cur_seg = n == b->n ? b->end_seg : b->after_seg[n - 1];
	s->cur_off = n == b->n ? b->end_off : b->after_off[n - 1];
	s->delivered = b->rec[n - 1].seq;
	if (write_state(s) != 0)
		return -1;
	normalize(s, &s->cur_seg, &s->cur_off);
	while (s->cur_seg > 0)
		remove_seg(s, 0);
	return 0;
}

uint64_t zg_spool_bytes(const struct zg_spool *s)
{
	return s->total;
}

uint64_t zg_spool_delivered(const struct zg_spool *s)
{
	return s->delivered;
}

uint64_t zg_spool_corrupt(const struct zg_spool *s)
{
	return s->corrupt;
}

int zg_spool_pending(const struct zg_spool *s)
{
	unsigned seg = s->cur_seg;

	for (; seg < s->nseg; seg++)
		if ((seg == s->cur_seg ? s->cur_off : 0) < s->segs[seg].size)
			return 1;
	return 0;
}
