/* audit_spool.h - bounded on-disk spool of audit records awaiting delivery.
 *
 * A directory of append-only segment files NNNNNNNNNNNNNNNNNNNN.zgs (named by
 * the first sequence number they hold) and a "state" file holding the
 * highest sequence number confirmed delivered. Each record is framed
 *
 *   "ZGS1" | u32 len | u64 seq | i64 ts_ns | u32 crc | payload[len]
 *
 * (integers big-endian; crc = CRC-32C over len, seq, ts_ns and payload), so a
 * torn write at the end of a segment (crash mid-append) and a damaged record
 * anywhere are both detected. A damaged record is reported and skipped: the
 * reader resynchronises on the next "ZGS1" whose frame checks out, so the
 * records after it are kept. Only the audit thread touches a spool.
 */
#ifndef ZG_AUDIT_SPOOL_H
#define ZG_AUDIT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define ZG_SPOOL_MAGIC "ZGS1"
#define ZG_SPOOL_HDR 28
#define ZG_SPOOL_PAYLOAD_MAX 65536 /* a longer len field marks the frame damaged */
#define ZG_SPOOL_SEGS_MAX 64

struct zg_spool_rec {
	uint64_t seq;
	int64_t ts_ns;
	const uint8_t *payload; /* points into the parsed buffer */
	uint32_t len;
};

enum zg_spool_parse {
	ZG_SPOOL_OK,    /* *rec filled, *consumed = frame size */
	ZG_SPOOL_SHORT, /* the buffer ends inside a frame (at end of file: torn write) */
	ZG_SPOOL_BAD,   /* damaged: skip *consumed bytes to the next candidate frame */
};

/* CRC-32C (Castagnoli) of @n bytes, continuing from @crc (start with 0). */
uint32_t zg_crc32c(uint32_t crc, const void *p, size_t n);

/* Parse one frame at the start of @buf. Pure; safe on any input. On BAD,
 * *consumed >= 1 is the offset of the next "ZGS1" in @buf (or @len). */
enum zg_spool_parse zg_spool_parse(const uint8_t *buf, size_t len, struct zg_spool_rec *rec,
				   size_t *consumed);

/* Write the frame of one record into @out. Returns its size, 0 if @cap is
 * too small or @len > ZG_SPOOL_PAYLOAD_MAX. */
size_t zg_spool_frame(uint8_t *out, size_t cap, uint64_t seq, int64_t ts_ns, const void *payload,
		      uint32_t len);

struct zg_spool;

/* What zg_spool_open found; counted, and each damage logged as
 * event=audit_spool_corrupt with the file and offset. */
struct zg_spool_report {
	uint64_t records;   /* valid records on disk */
	uint64_t pending;   /* of those, not yet delivered */
	uint64_t corrupt;   /* damaged frames skipped */
	uint64_t torn;      /* bytes of a torn final record cut off */
	uint64_t delivered; /* from the state file */
	uint64_t last_seq;  /* highest sequence number on disk or delivered */
};

/* Open (creating) the spool in @dir with room for @max_bytes of segments.
 * Scans every segment, cuts a torn tail off the newest one and positions the
 * reader after the delivered mark. NULL with a message in @why on failure. */
struct zg_spool *zg_spool_open(const char *dir, uint64_t max_bytes, struct zg_spool_report *rep,
			       char *why, size_t cap);

void zg_spool_close(struct zg_spool *s);

/* For `zonegate check`: refuse the spool directory @dir and its state
 * file, if they exist, when anyone but root or us could change them (the
 * rule zg_spool_open applies). 0, or -1 with the reason in @why. */
int zg_spool_check(const char *dir, char *why, size_t cap);

/* 1 if a record of @len payload bytes does not fit in max_bytes. */
int zg_spool_full(const struct zg_spool *s, uint32_t len);

/* Append one record (not yet durable: call zg_spool_sync). Returns 0, or -1
 * if it does not fit (see zg_spool_drop_oldest) or on I/O error. */
int zg_spool_append(struct zg_spool *s, uint64_t seq, int64_t ts_ns, const void *payload,
		    uint32_t len);

/* The same, even beyond max_bytes: for the one record that states how
 * many records were lost, which must not be lost itself for lack of room
 * (one bounded record per loss episode). */
int zg_spool_append_over(struct zg_spool *s, uint64_t seq, int64_t ts_ns, const void *payload,
			 uint32_t len);

/* Make every appended record durable (fdatasync, and the directory when a
 * segment was created). 0 or -1. */
int zg_spool_sync(struct zg_spool *s);

/* Delete the oldest segment that is not being written, marking its records
 * delivered. Returns the number of undelivered records dropped, -1 if there
 * is no such segment. */
long zg_spool_drop_oldest(struct zg_spool *s);

/* Up to @max_recs undelivered records, oldest first, at most @max_bytes of
 * frames (always at least one record if any is pending). Owned by the
 * spool; valid until the next call on @s. */
struct zg_spool_batch {
	struct zg_spool_rec rec[256];
	size_t n;
	/* private: where each record and the batch end */
	unsigned after_seg[256];
	uint64_t after_off[256];
	unsigned end_seg;
	uint64_t end_off;
};

/* Fill @b from the delivered mark on. Returns b->n (0 = nothing pending) or
 * -1 on I/O error. Damaged records met on the way are skipped and counted. */
int zg_spool_peek(struct zg_spool *s, struct zg_spool_batch *b, size_t max_bytes, size_t max_recs);

/* Keep only the first @n (>= 1) records of @b, as if the peek had stopped
 * after them. Pure. */
void zg_spool_batch_cut(struct zg_spool_batch *b, size_t n);

/* Mark the first @n records of @b (from the last peek; @n <= b->n)
 * delivered: durable state file, segments wholly delivered removed. The
 * next peek starts after them. 0 or -1. */
int zg_spool_commit(struct zg_spool *s, const struct zg_spool_batch *b, size_t n);

/* Call @fn on every pending record with a sequence number above @after,
 * oldest first, without marking anything delivered: recovery, so the local
 * file catches up with records a crash left in the spool only. 0, or -1 on
 * I/O error, allocation failure or when @fn returns non-zero. */
int zg_spool_each_pending(struct zg_spool *s, uint64_t after,
			  int (*fn)(void *ctx, const struct zg_spool_rec *r), void *ctx);

uint64_t zg_spool_bytes(const struct zg_spool *s);
uint64_t zg_spool_delivered(const struct zg_spool *s);
uint64_t zg_spool_corrupt(const struct zg_spool *s);
/* 1 if records beyond the delivered mark exist. */
int zg_spool_pending(const struct zg_spool *s);

#endif
