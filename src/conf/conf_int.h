/* conf_int.h - private to src/conf/: the loader's shared types and helpers.
 *
 * Nothing outside src/conf/ includes this file; the public contract is
 * conf.h. The loader is table-driven: each section has a keyword table
 * (name, type, field, range, default, flags) and each value type one parser
 * and one printer. The pieces:
 *
 *   util.c    small helpers: error reporting, field access, character
 *             classes, numbers and names
 *   values.c  parsing and printing of single values, and the kw_type objects
 *   tables.c  the keyword tables and the section table, defaults, lookups
 *             and typo suggestions
 *   read.c    the reader (inih framing, headers, keys) and the public
 *             zg_conf_parse*, zg_conf_load and zg_conf_free
 *   rules.c   whole-file cross-key checks, checks on the files named, and
 *             the defaults filled in once the whole file is read
 *   print.c   zg_conf_print, zg_conf_each_key and zg_mode_name
 *   identities.c  [identity NAME], [trust NAME] and the route keys naming them
 *
 * Adding a section such as [audit] means adding its struct to struct
 * zg_conf, a keyword table in tables.c and one row in conf_sections.
 */
#ifndef ZG_CONF_INT_H
#define ZG_CONF_INT_H

#include <stddef.h>
#include <stdio.h>

#include "conf/conf.h"

#define KW_REQUIRED 0x01u    /* the section is incomplete without it */
#define KW_SENSITIVE 0x02u   /* the value is secret: never echoed nor printed */
#define KW_LISTEN 0x04u      /* an endpoint we bind: IP literal or "*" */
#define KW_FILE 0x08u        /* names file(s) that must exist and be readable */
#define KW_SECRET_FILE 0x10u /* names a file holding key material */
#define KW_TRUST_FILE 0x20u  /* names file(s) deciding trust: only root or we may change them */

#define KW_MAX 48                       /* keywords per section */
#define NO_OFF ((size_t)-1)
#define WHY_MAX 400
#define N_INST (ZG_ROUTES_MAX + ZG_CRLS_MAX + ZG_CLASSES_MAX + ZG_IDENTITIES_MAX + ZG_TRUSTS_MAX + 14)
#define N_SECTIONS 13                    /* rows of conf_sections (tables.c) */
#define N_KWS(t) (sizeof(t) / sizeof((t)[0]))

struct pctx;
struct kw;

/* Parse @val into the field of @kw inside section struct @obj. Returns 0, or
 * -1 with the message (without file, line and key) in @why. */
typedef int kw_parse_fn(const struct kw *kw, const char *val, void *obj, const struct pctx *pc,
			char *why, size_t cap);
/* Print "key = value" for @kw of @obj, or a comment line if it is unset. */
typedef void kw_print_fn(const struct kw *kw, const void *obj, FILE *out);

struct kw_type {
	kw_parse_fn *parse;
	kw_print_fn *print;
};

struct kw {
	const char *name;
	const struct kw_type *type;
	size_t off;                  /* the field in the section struct */
	size_t size;                 /* string buffer size, or list capacity */
	size_t aux_off;              /* list length field, or NO_OFF */
	size_t line_off;             /* int field that gets the line, or NO_OFF */
	unsigned long long min, max; /* range; durations in milliseconds */
	const char *def;             /* default as an operator writes it; NULL: none */
	unsigned flags;
};

/* A section kind. Singletons live at conf_off inside struct zg_conf; named
 * sections ([route NAME]) are array elements made by add(). */
struct section_def {
	const char *name;
	const struct kw *kws;
	size_t n_kws;
	size_t conf_off; /* singleton; NO_OFF for named sections */
	int (*add)(struct pctx *pc, const char *arg, int line, unsigned *idx);
	unsigned (*count)(const struct zg_conf *c);
	void *(*elem)(const struct zg_conf *c, unsigned idx);
};

/* One section as it appears in the file. */
struct inst {
	const struct section_def *def;
	char label[ZG_NAME_MAX + 16]; /* "[route NAME]" for messages */
	char arg[ZG_NAME_MAX];
	unsigned idx;                 /* named sections: element index */
	int line;                     /* header line */
	int key_line[KW_MAX];         /* >0 set there; <0 given there, bad value */
};

struct pctx {
	struct zg_conf *conf;
	struct zg_errlist *errs;
	const char *file;
	char basedir[ZG_PATH_MAX]; /* "" = relative paths stay as written */
	unsigned flags;
	/* reader */
	const char *next;    /* start of the next physical line */
	const char *line;    /* the current line, leading blanks skipped */
	size_t len;          /* its length, line end excluded */
	size_t raw_len;      /* its length with leading blanks, for the limit */
	int lineno;
	int step;
	/* handler */
	struct inst *cur;    /* where keys go; NULL: ignore them */
	int seen_header;
	size_t routes_cap;
	unsigned n_inst;
	struct inst inst[N_INST];
};

/* ---- util.c -------------------------------------------------------------- */

/* Add "@fmt ..." to the error list at @line of the file being read, for @key
 * (NULL: the line as a whole). */
void conf_perr(const struct pctx *pc, int line, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The field at byte offset @off inside a section struct @obj; the second is
 * the read-only twin. */
void *conf_field_of(void *obj, size_t off);
const void *conf_cfield_of(const void *obj, size_t off);

/* The value as it may appear in a message: @val, or "(hidden)" for a
 * KW_SENSITIVE keyword. */
const char *conf_shown(const struct kw *kw, const char *val);

/* Copy @n bytes of @src into @dst and NUL-terminate it. Returns 0, or -1
 * (and leaves @dst alone) if they do not fit in @cap. */
int conf_copy_str(char *dst, size_t cap, const char *src, size_t n);

/* ASCII character classes, locale-independent: blank is space or tab. conf_lower
 * maps A-Z to a-z and leaves any other byte alone. */
int conf_is_blank(char c);
int conf_is_digit(char c);
int conf_is_alnum(char c);
char conf_lower(char c);

/* Parse the @n decimal digits at @s into @out. Returns -1 on anything else
 * (empty, sign, blank); saturates at ULLONG_MAX instead of failing. */
int conf_parse_ull(const char *s, size_t n, unsigned long long *out);

/* Whether @s is a name of 1..@cap-1 characters of A-Z a-z 0-9 . _ - (routes,
 * gateway). Returns 0, or -1 with the reason in @why. */
int conf_check_name(const char *s, size_t cap, char *why, size_t wcap);

/* Whether the @n bytes at @s are a DNS host name (labels of A-Z a-z 0-9 _ -,
 * 1-63 each, 253 in all). Returns 1 or 0. */

/* Whether the NUL-terminated @s is an IPv4 / IPv6 address literal (as
 * inet_pton reads it). Returns 1 or 0. */
int conf_is_ipv4(const char *s);
int conf_is_ipv6(const char *s);

/* ---- values.c ------------------------------------------------------------ */

/* The value types of the keyword tables: one parser and one printer each;
 * the parser checks what the keyword's min, max and size allow. */
extern const struct kw_type T_UINT, T_WORKERS, T_DUR_MS, T_DUR_S, T_BOOL, T_MODE, T_LOGLEVEL;
extern const struct kw_type T_PROXY;
extern const struct kw_type T_PROFILE, T_NAME, T_SERVER_NAME, T_PATH, T_PATHS, T_ENDPOINT;
extern const struct kw_type T_PREFIXES, T_TLS_LIST, T_TLS_VERSION, T_CRL_STALE, T_PEERS;
extern const struct kw_type T_AUDIT_TRANSPORT, T_AUDIT_POLICY, T_AUDIT_VERBOSITY, T_BYTES;
extern const struct kw_type T_HOSTPORT;
/* pool.c: connect as a pool, balance, health_check, AE titles, HTTP path */
extern const struct kw_type T_POOL, T_BALANCE, T_CHECK, T_AE_TITLE, T_HTTP_PATH;
extern const struct kw_type T_INSPECT, T_AE_LIST, T_UID_LIST, T_HL7_TYPES;

/* ---- days.c --------------------------------------------------------------- */

/* [admin] expiry_warn: day counts ("30d 7d 1d"), no duplicates, stored far
 * to near in an unsigned[kw->size] with the count at kw->aux_off. */
extern const struct kw_type T_DAYS_LIST;

/* ---- classes.c ------------------------------------------------------------ */

/* [class NAME] and [link] value types: a rate with its unit (bit/s in a
 * uint64_t), a DSCP (int), the time windows of a class (whole class struct). */
extern const struct kw_type T_RATE, T_DSCP, T_WINDOWS;

/* The add() of [class NAME]: a new class named @arg (header at @line) in
 * pc->conf, its index in @idx. Returns 0, or -1 once reported. */
int class_add(struct pctx *pc, const char *arg, int line, unsigned *idx);

/* Report ceil below rate, routes naming a class the file does not define,
 * and guarantees above the [link] budget at any second of the day. */
void conf_check_classes(const struct pctx *pc);

/* Give classes without a ceil their rate as ceil (no borrowing). */
void conf_fill_class_defaults(struct zg_conf *c);

/* Format @ep as the operator would write it ("host:port", "[v6]:port",
 * "*:port") into @out of @cap bytes, truncating if need be. */
void fmt_endpoint(const struct zg_endpoint *ep, char *out, size_t cap);

/* ---- identities.c -------------------------------------------------------- */

/* The add() of [identity NAME] / [trust NAME]: a new zeroed section named
 * @arg (header at @line), its index in @idx. 0, or -1 once reported. */
int identity_add(struct pctx *pc, const char *arg, int line, unsigned *idx);
int trust_add(struct pctx *pc, const char *arg, int line, unsigned *idx);

/* Report route keys naming an identity or store the file does not define,
 * or naming one on a side where the route speaks plain TCP. */
void conf_check_domains(const struct pctx *pc);

/* [admin] identity / trust without tls = on, or naming no section. */
void conf_check_admin_domain(const struct pctx *pc);

/* Whether route @r uses [tls]'s store (@trust 1) or identity (0) on a side
 * where it speaks TLS (then [tls] must provide it). */
int conf_route_uses_tls_default(const struct zg_conf_route *r, int trust);

/* rules.c: once [audit] inherited from [tls], a TLS syslog sink without a
 * certificate, key or CA is an error (a file whose routes all name their
 * own identities may leave [tls] without one). */
void conf_check_audit_identity(const struct pctx *pc);

/* Copy [tls]'s identity and store keys into c->tls_identity, c->tls_trust. */
void conf_fill_tls_domain(struct zg_conf *c);

/* ---- tables.c ------------------------------------------------------------ */

/* Every section kind, in the order they are listed and printed; N_SECTIONS
 * rows (a mismatch is a compile error). */
extern const struct section_def conf_sections[N_SECTIONS];

/* The section kind called @name, or NULL if there is none. */
const struct section_def *section_named(const char *name);

/* The index of keyword @name in @def's table, or -1 if it has none. */
int kw_index(const struct section_def *def, const char *name);

/* The struct that holds the keys of section instance @in: a singleton inside
 * pc->conf, or the element of a named section. */
void *inst_obj(const struct pctx *pc, const struct inst *in);

/* The first instance of section kind @def read so far, or NULL if none. */
const struct inst *inst_of(const struct pctx *pc, const struct section_def *def);

/* Parse every compiled-in default of @def's keywords into @obj. The table
 * defaults always parse (asserted: it is table data, not input). */
void conf_apply_defaults(const struct pctx *pc, const struct section_def *def, void *obj);

/* The candidate among @cands (@n) closest to @word if it is a plausible
 * typo (at most two edits, case-insensitive), else NULL. */
const char *conf_closest(const char *word, const char *const *cands, size_t n);

/* Report @key as unknown in section @in at the current line, suggesting a
 * keyword it may be a typo of or the section it belongs in. */
void conf_unknown_key(const struct pctx *pc, const struct inst *in, const char *key);

/* ---- read.c -------------------------------------------------------------- */

/* The add() of [route NAME]: a new zeroed route named @arg (header at
 * @line) in pc->conf, its index in @idx. Returns 0, or -1 once reported. */
int route_add(struct pctx *pc, const char *arg, int line, unsigned *idx);

/* ---- rules.c ------------------------------------------------------------- */

/* Whole-file checks, run by the reader once every line is read, in this
 * order; each reports what it finds through conf_perr and returns nothing. */

/* Report every KW_REQUIRED keyword missing from a section that appears,
 * at the section's header line. */
void conf_check_required(const struct pctx *pc);

/* Report listen collisions between routes (one per route) and the keys a
 * route needs for its mode (server_name, allow_from). */
void conf_check_routes(const struct pctx *pc);

/* Report the [tls] keys (certificate, key, trust_anchors) missing while a
 * route's mode needs them, once per key. */
void conf_check_tls_needs(const struct pctx *pc);

/* [admin] tls = on without listen is an error. */
void conf_check_admin_tls(const struct pctx *pc);

/* session_ticket_key without session_tickets = on is an error. */
void conf_check_ticket_keys(const struct pctx *pc);

/* Report a [directory] file without public_key or the other way round, and
 * route peers lists with no directory to look them up in. */
void conf_check_directory(const struct pctx *pc);

/* pool.c: report pool and health-check settings the route's mode cannot
 * use (sni= or health_check = tls on a plain-TCP upstream). */
void conf_check_pools(const struct pctx *pc);

/* pool.c: whether every member of @p names its own sni= (then the route
 * needs no server_name). */
int conf_pool_all_sni(const struct zg_pool_conf *p);

/* Give routes the [gateway] / [tls] values they did not set (limits,
 * timeouts, profile). Run after the checks above. */
void conf_fill_route_defaults(struct zg_conf *c);

/* Let [audit] syslog over TLS inherit the [tls] certificate, chain, key,
 * trust anchors and profile it did not set. */
void conf_fill_audit_defaults(struct zg_conf *c);

/* Default the [directory] signature to FILE.sig and give routes without
 * peers the "any" peer set. */
void conf_fill_directory_defaults(struct zg_conf *c);

/* Report each file a KW_FILE or KW_SECRET_FILE keyword names that cannot be
 * read, is not a regular file or (key material) is open to other users. */
void conf_check_files(const struct pctx *pc);

/* ---- crls.c ---------------------------------------------------------------- */

/* The value type of a [crl] url: http:// or https://, no blanks or controls. */
extern const struct kw_type T_URL;

/* [tls] ocsp_staple_url: a URL as T_URL, or "aia" (the certificate's own);
 * route ocsp: off, soft or hard. */
extern const struct kw_type T_STAPLE_URL, T_OCSP_MODE;

/* ocsp_staple_url needs ocsp_staple_file, where fetched responses are kept. */
void conf_check_ocsp(const struct pctx *pc);

/* The add() of [crl NAME]: a new fetch named @arg (header at @line) in
 * pc->conf->crl_fetch; -1 (reported) on a bad or duplicate name, or too many. */
int crl_add(struct pctx *pc, const char *arg, int line, unsigned *idx);

/* Report a [crl] whose file is not one of [tls] crl, or two fetching into
 * one file. */
void conf_check_crl_fetch(const struct pctx *pc);

#endif /* ZG_CONF_INT_H */
