/* audit_file.h - the local append-only audit file, hash-chained.
 *
 * One record per line:  HASH SP SEQ SP TIME SP XML LF
 * where HASH is the lowercase hex SHA-256 of (the previous record's HASH as
 * 32 raw bytes || "SEQ SP TIME SP XML"), and the first record of a file
 * chains from 32 zero bytes. Changing, inserting, removing or reordering any
 * record breaks the chain at that record; `zonegate audit verify FILE` names
 * the first broken one. The chain shows tampering, it does not prevent a
 * writer with access to the file from rewriting it entirely: ship the
 * records off-host too (syslog) and keep the last hash elsewhere if that
 * matters. Only the audit thread writes; verify runs on any file.
 */
#ifndef ZG_AUDIT_FILE_H
#define ZG_AUDIT_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ZG_AUDIT_HASH_LEN 32
#define ZG_AUDIT_LINE_MAX (1u << 20) /* verify rejects longer lines */

struct zg_audit_file;

/* Open (creating, mode 0600) @path for appending. Reads the newest record to
 * continue the chain and sets *last_seq (0 for an empty file); a torn last
 * line (crash mid-write) is cut off and logged. NULL with @why on failure,
 * including when the newest record cannot be parsed. */
struct zg_audit_file *zg_audit_file_open(const char *path, uint64_t *last_seq, char *why,
					 size_t cap);

/* Append one record. @xml must hold no LF (audit_msg output never does).
 * Not durable until zg_audit_file_sync. 0, or -1 on I/O error. */
int zg_audit_file_append(struct zg_audit_file *f, uint64_t seq, int64_t ts_ns, const char *xml,
			 size_t len);

int zg_audit_file_sync(struct zg_audit_file *f);

void zg_audit_file_close(struct zg_audit_file *f);

/* The chain hash of one record body. 0 or -1 (OpenSSL failure). */
int zg_audit_chain_hash(const uint8_t prev[ZG_AUDIT_HASH_LEN], const char *body, size_t n,
			uint8_t out[ZG_AUDIT_HASH_LEN]);

struct zg_audit_verify_result {
	uint64_t records;       /* intact records before the first broken one (or all) */
	uint64_t broken_line;   /* 1-based line of the first broken record; 0 = intact */
	uint64_t broken_seq;    /* its sequence number if readable, else 0 */
	char why[160];          /* "hash mismatch", "malformed record", ... */
	uint64_t gaps;          /* sequence numbers skipped with the chain intact */
	uint64_t first_gap_after; /* the sequence number before the first gap */
};

/* Check the whole chain of @in. Returns 0 if intact, 1 if broken (the first
 * broken record described in @res), -1 on a read error. Skipped sequence
 * numbers with an intact chain are counted in res->gaps, not a break:
 * records the file never received (crash between spool and file write). */
int zg_audit_file_verify(FILE *in, struct zg_audit_verify_result *res);

#endif
