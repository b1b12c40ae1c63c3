/* model_int.h - private to src/directory/: the inside of a loaded directory
 * and the helpers model.c, load.c and match.c share. Nothing outside
 * src/directory/ may include it; the public contract is directory.h.
 */
#ifndef ZG_DIRECTORY_MODEL_INT_H
#define ZG_DIRECTORY_MODEL_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base64.h"
#include "directory/directory.h"

struct zg_lpm;

enum ident_kind { ID_DNS, ID_URI, ID_SPKI, ID_AE, ID_HL7 };

/* One identity of one participant, in a table sorted by (kind, value) so
 * that duplicates are neighbours at load and a certificate's SANs are found
 * by binary search at handshake time. */
struct ident {
	enum ident_kind kind;
	uint32_t owner;    /* participant index */
	const void *value; /* NUL-terminated string, or 32 bytes for ID_SPKI */
};

struct zg_directory {
	atomic_uint refs;
	uint64_t serial;
	time_t issued_at, expires;
	char issuer[ZG_DIR_ISSUER_MAX];
	uint8_t digest[32];
	struct zg_participant *parts;
	size_t n_parts, n_prefixes;
	struct ident *idx;
	size_t n_idx;
	int has_pins;
	struct zg_lpm *lpm;
};

/* "CODE: detail" into @why (of @cap bytes, nothing if 0), CODE being the
 * reason code of @r. */
void dir_set_why(char *why, size_t cap, enum zg_reason r, const char *detail);

/* 1 if @s is a valid participant id: 1..ZG_DIR_ID_MAX-1 characters of
 * A-Z a-z 0-9 . _ -; else 0. */
int dir_valid_id(const char *s);

/* Lower-case the NUL-terminated @s in place (ASCII only, as DNS names are
 * compared). */
void dir_lower(char *s);

/* qsort/bsearch order of struct ident: by kind, then value (strcmp, or
 * memcmp of 32 bytes for ID_SPKI). */
int dir_ident_cmp(const void *pa, const void *pb);

#endif
