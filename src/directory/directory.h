/* directory.h - the participant directory: a signed list binding each
 * participant's certificate identities to the addresses it connects from.
 *
 * The network operator publishes one JSON file (format in docs/directory.md)
 * with a detached Ed25519 signature. A gateway loads it whole, verifies the
 * signature before parsing a byte of it, refuses an expired, not yet valid
 * or rolled-back (older serial) file, and builds a longest-prefix-match table
 * over every participant's prefixes.
 *
 * A loaded directory is immutable and reference counted: the configuration
 * snapshot holds one reference, workers read it without locks, and the
 * participant pointers it hands out stay valid while a reference is held.
 *
 * The checks a connection goes through (see docs/directory.md):
 *   accept:    source address -> participant (LPM), participant in the
 *              route's peers                     zg_directory_check_addr()
 *   handshake: leaf certificate -> the same participant, still allowed
 *                                                zg_directory_check_peer()
 *   reload:    zg_directory_check_peer() again against the new directory
 * Outbound (wrap, bridge) uses the same two calls with the upstream address
 * and the server certificate.
 */
#ifndef ZG_DIRECTORY_H
#define ZG_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>

#include "base/prefix.h"
#include "base/reason.h"

#define ZG_DIR_FORMAT 1                 /* the "format" this code reads */
#define ZG_DIR_ID_MAX 64                /* participant id, with the NUL */
#define ZG_DIR_NAME_MAX 128             /* display name, with the NUL */
#define ZG_DIR_ISSUER_MAX 256
#define ZG_DIR_FILE_MAX (64u << 20)     /* bytes of JSON */
#define ZG_DIR_PARTICIPANTS_MAX 100000
#define ZG_DIR_PREFIXES_MAX 1000000     /* over all participants */
#define ZG_DIR_IDENTITIES_MAX 256       /* per participant, each kind */
#define ZG_DIR_SKEW_S 300               /* issued_at may be this far ahead of our clock */
#define ZG_DIR_SIG_LEN 64               /* Ed25519 */
#define ZG_PEERS_MAX 64                 /* ids in a route's peers list */

struct zg_participant {
	char id[ZG_DIR_ID_MAX];             /* [A-Za-z0-9._-]+, unique */
	char name[ZG_DIR_NAME_MAX];         /* display name, printable UTF-8 */
	char **dns;                         /* DNS SANs, lower case, unique in the directory */
	char **uri;                         /* URI SANs, exact, unique in the directory */
	uint8_t (*spki)[32];                /* SHA-256 of DER SubjectPublicKeyInfo */
	struct zg_prefix *prefixes;
	unsigned n_dns, n_uri, n_spki, n_prefixes;
	char **dicom_ae;                    /* DICOM AE titles it calls from, exact, unique */
	char **hl7_facilities;              /* HL7 MSH-4 sending facilities, exact, unique */
	unsigned n_dicom_ae, n_hl7_facilities;
	unsigned max_connections;           /* 0 = no per-participant limit */
	unsigned index;                     /* position in the file, from 0 */
};

struct zg_directory;

/* A route's `peers` setting: "*" (any participant) or a list of ids. */
struct zg_peers {
	int any;
	unsigned n;
	char id[ZG_PEERS_MAX][ZG_DIR_ID_MAX];
};

/* Load @json_path, verify it against the detached signature @sig_path
 * (64 raw bytes or their base64) with the Ed25519 public key in PEM file
 * @pubkey_path, parse it and check it is valid at @now. If @previous is
 * non-NULL the serial must not be lower than its serial, and an equal serial
 * must carry identical content. Returns a directory with one reference
 * (drop it with zg_directory_unref), or NULL with "code: detail" in @why,
 * code being a reason code of reason.h (directory_unsigned, ...). */
struct zg_directory *zg_directory_load(const char *json_path, const char *sig_path,
				       const char *pubkey_path, const struct zg_directory *previous,
				       time_t now, char *why, size_t cap);

/* As zg_directory_load; also stores the reason code in @reason if non-NULL
 * (ZG_R_OK on success). */
struct zg_directory *zg_directory_load_ex(const char *json_path, const char *sig_path,
					  const char *pubkey_path,
					  const struct zg_directory *previous, time_t now,
					  enum zg_reason *reason, char *why, size_t cap);

/* Parse @len bytes of directory JSON with no signature or time check (the
 * fuzz target; also `directory show`). Same result contract as
 * zg_directory_load, @reason being ZG_R_DIR_MALFORMED on any error. */
struct zg_directory *zg_directory_parse(const char *json, size_t len, enum zg_reason *reason,
					char *why, size_t cap);

/* Check @d's validity period at @now and its serial against @previous
 * (may be NULL). ZG_R_OK, or the reason with a detail in @why. */
enum zg_reason zg_directory_check_fresh(const struct zg_directory *d,
					const struct zg_directory *previous, time_t now,
					char *why, size_t cap);

/* Verify the Ed25519 @sig over @data with @pub. 0 if it verifies, -1 (with
 * @why) if it does not or @pub is not an Ed25519 key. */
int zg_directory_verify_sig(const void *data, size_t len, const uint8_t *sig, size_t siglen,
			    EVP_PKEY *pub, char *why, size_t cap);

/* Sign @data with the Ed25519 private key @key into @sig. 0 or -1. */
int zg_directory_sign(const void *data, size_t len, EVP_PKEY *key,
		      uint8_t sig[ZG_DIR_SIG_LEN], char *why, size_t cap);

/* Decode a signature file's content: exactly 64 raw bytes, or base64 of
 * them with optional surrounding white space. 0 or -1. */
int zg_directory_decode_sig(const uint8_t *buf, size_t len, uint8_t sig[ZG_DIR_SIG_LEN]);

/* Read a whole file of at most @max bytes into a new NUL-terminated buffer
 * (caller frees). NULL with @why if missing, unreadable or too big. */
char *zg_directory_read_file(const char *path, size_t max, size_t *len, char *why, size_t cap);

/* Take / drop a reference; the last unref frees the directory. Both accept
 * NULL. Safe from any thread. */
struct zg_directory *zg_directory_ref(const struct zg_directory *d);
void zg_directory_unref(const struct zg_directory *d);

/* Header fields and participants of a loaded directory. */
uint64_t zg_directory_serial(const struct zg_directory *d);
const char *zg_directory_issuer(const struct zg_directory *d);
time_t zg_directory_issued_at(const struct zg_directory *d);
time_t zg_directory_expires(const struct zg_directory *d);
const uint8_t *zg_directory_digest(const struct zg_directory *d); /* SHA-256 of the JSON */
size_t zg_directory_count(const struct zg_directory *d);
size_t zg_directory_prefix_count(const struct zg_directory *d);
size_t zg_directory_lpm_memory(const struct zg_directory *d);
const struct zg_participant *zg_directory_participant(const struct zg_directory *d, size_t i);

/* The participant with id @id, or NULL. */
const struct zg_participant *zg_directory_find_id(const struct zg_directory *d, const char *id);

/* The participant owning the longest prefix that contains @addr (16-byte
 * form of prefix.h), or NULL. */
const struct zg_participant *zg_directory_lookup_addr(const struct zg_directory *d,
						      const uint8_t addr[16]);

/* As zg_directory_lookup_addr; also writes the matching prefix to @match. */
const struct zg_participant *zg_directory_lookup_prefix(const struct zg_directory *d,
							const uint8_t addr[16],
							struct zg_prefix *match);

/* 1 if @leaf (already verified by TLS) belongs to @p: one of its DNS or URI
 * SANs equals one of p's names (DNS case-insensitively) when p lists names,
 * AND its SPKI SHA-256 equals one of p's pins when p lists pins. 0 if not,
 * -1 on an OpenSSL error. */
int zg_directory_cert_matches(const struct zg_directory *d, const struct zg_participant *p,
			      X509 *leaf);

/* The one participant @leaf belongs to, or NULL if none; if it would match
 * more than one, NULL with *@ambiguous set to 1. */
const struct zg_participant *zg_directory_find_by_cert(const struct zg_directory *d, X509 *leaf,
						       int *ambiguous);

/* Parse a `peers` value: "*" or ids separated by commas and/or spaces.
 * Each id must be a valid participant id syntax; duplicates are refused.
 * 0, or -1 with a message in @why. */
int zg_peers_parse(const char *s, struct zg_peers *out, const char **why);

/* 1 if @peers admits participant id @id. */
int zg_peers_allows(const struct zg_peers *peers, const char *id);

/* The pure decision. @by_addr: participant of the connection's remote
 * address (NULL = none); @by_cert: participant of the remote certificate
 * (NULL = none), only looked at if @cert_checked; @peers: the route's peers
 * (NULL = "*"). Returns ZG_R_OK or DIR_UNKNOWN_ADDR / DIR_IDENTITY_MISMATCH /
 * DIR_PEER_NOT_ALLOWED with a detail naming the participants in @detail. */
enum zg_reason zg_directory_decide(const struct zg_participant *by_addr,
				   const struct zg_participant *by_cert, int cert_checked,
				   const struct zg_peers *peers, char *detail, size_t cap);

/* Accept-time check, before any TLS byte: @d still valid at @now
 * (DIR_STALE), then the address and peers rules of zg_directory_decide.
 * The address's participant (or NULL) goes to @out if non-NULL. */
enum zg_reason zg_directory_check_addr(const struct zg_directory *d, time_t now,
				       const uint8_t addr[16], const struct zg_peers *peers,
				       const struct zg_participant **out, char *detail, size_t cap);

/* Full check after the handshake, and again on every reload for each live
 * connection: zg_directory_check_addr plus the certificate rule on @leaf. */
enum zg_reason zg_directory_check_peer(const struct zg_directory *d, time_t now,
				       const uint8_t addr[16], X509 *leaf,
				       const struct zg_peers *peers, char *detail, size_t cap);

/* SHA-256 over the DER SubjectPublicKeyInfo of @leaf (the value of a pin).
 * 0 or -1. */
int zg_directory_spki_sha256(X509 *leaf, uint8_t out[32]);

/* Per-participant connection counts for max_connections. They must survive
 * reloads (a connection decrements the counter it incremented, whichever
 * directory is in force by then), so they live in the gateway, keyed by
 * participant id, and each snapshot binds its directory's participants to
 * them by index. Counters are never freed before the table. */
struct zg_dir_counters;

/* An empty table; NULL if out of memory. Main thread only. */
struct zg_dir_counters *zg_dir_counters_new(void);
void zg_dir_counters_free(struct zg_dir_counters *t);

/* An array of zg_directory_count(@d) counter pointers, element i for
 * participant index i, creating counters for ids not seen before. The
 * caller (the snapshot) frees the array with free(), never the counters.
 * NULL if out of memory (or @d has no participants). Main thread only. */
_Atomic unsigned **zg_dir_counters_bind(struct zg_dir_counters *t, const struct zg_directory *d);

/* Count one more connection of @p on @slot unless p's max_connections is
 * reached: ZG_R_OK (counted; release it with zg_directory_release) or
 * ZG_R_DIR_PARTICIPANT_LIMIT with a detail. Safe from any thread. */
enum zg_reason zg_directory_admit(const struct zg_participant *p, _Atomic unsigned *slot,
				  char *detail, size_t cap);
void zg_directory_release(_Atomic unsigned *slot);

#define ZG_DIR_PATH_MAX 512             /* file paths; conf.h's ZG_PATH_MAX */

/* [directory]: the signed participant directory (see docs/directory.md), as
 * conf.c parses it from the configuration file. With no file, no directory
 * checks are made. Defined here so this wing needs nothing of conf/. */
struct zg_conf_directory {
	char file[ZG_DIR_PATH_MAX];       /* directory JSON; "" = none */
	char signature[ZG_DIR_PATH_MAX];  /* detached signature; default: file + ".sig" */
	char public_key[ZG_DIR_PATH_MAX]; /* PEM Ed25519 public key of the operator */
	unsigned reload_interval_ms;      /* poll the files for changes; 0 = SIGHUP only; default 30 s */
	unsigned grace_ms;                /* a live connection a new directory disallows is closed
	                                     after this; default 30 s */
	char state_file[ZG_DIR_PATH_MAX]; /* where the newest accepted serial is kept; "" = none */
	int line_file, line_public_key, line_state_file;
};

/* ---- Rollback across restarts --------------------------------------------
 * A gateway refuses a directory older than the one in force, but after a
 * restart there is none in force: an attacker who can replace the files
 * could bring back an older, still valid directory (a participant since
 * removed). With [directory] state_file the newest accepted serial and its
 * digest are kept on disk and checked at start, as the directory in force
 * is on a reload. */
struct zg_dir_floor {
	uint64_t serial;
	uint8_t digest[32];
	int set; /* 0: no state yet (first start): nothing to check */
};

/* Read the state at @path into @f; a missing file is an empty floor. 0, or
 * -1 with the reason in @why (unreadable, malformed, writable by others). */
int zg_directory_floor_read(const char *path, struct zg_dir_floor *f, char *why, size_t cap);

/* Record @d as the floor at @path: written, fsynced, renamed into place.
 * 0, or -1 with the reason in @why. */
int zg_directory_floor_write(const char *path, const struct zg_directory *d, char *why, size_t cap);

/* ZG_R_OK if @d is not older than @f (the same serial needs the same
 * content), else ZG_R_DIR_ROLLBACK with the reason in @why. */
enum zg_reason zg_directory_check_floor(const struct zg_directory *d, const struct zg_dir_floor *f,
					char *why, size_t cap);

struct zg_errlist;

/* For snapshot building: load the directory a [directory] section names,
 * as zg_directory_load. Returns NULL both when @cd names no file (nothing to
 * do) and on refusal; on refusal one "CONF_PATH:LINE: file: CODE: detail"
 * error is appended to @errs. @previous is the directory in force (NULL at
 * start). */
struct zg_directory *zg_directory_load_conf(const struct zg_conf_directory *cd,
					    const char *conf_path,
					    const struct zg_directory *previous, time_t now,
					    struct zg_errlist *errs);

/* What the file watch compares: identity, size and mtime of the directory
 * and signature files (all zero for a missing file). */
struct zg_dir_stamp {
	struct {
		uint64_t dev, ino, size;
		int64_t mtime_ns;
	} f[2];
};

/* Take the stamp of @cd's files into @out. Returns 1 if it differs from
 * @prev (or @prev is NULL), else 0. Cheap (two stat calls); for polling
 * every reload_interval from the main thread. */
int zg_directory_stamp(const struct zg_conf_directory *cd, const struct zg_dir_stamp *prev,
		       struct zg_dir_stamp *out);

/* Parse "YYYY-MM-DDTHH:MM:SSZ" (UTC, exactly that shape). 0 or -1. */
int zg_directory_parse_time(const char *s, time_t *out);

/* "2026-11-25T23:59:59Z" for @t into @out (cap >= 21). */
void zg_directory_format_time(time_t t, char *out, size_t cap);

#endif
