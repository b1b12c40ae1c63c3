/* conf.h - the parsed configuration file: types and the loader's contract.
 *
 * The loader turns an INI file into a struct zg_conf, checking syntax, types,
 * ranges and cross-key invariants that need no OpenSSL and no sockets (those
 * happen when a snapshot is built from it, see snapshot.h). A zg_conf is
 * immutable once returned and owned by whoever holds it (usually one
 * snapshot); strings live in fixed buffers, so it is freed in one call.
 *
 * The loader lives in src/conf/: read.c (the reader and zg_conf_parse*,
 * zg_conf_load, zg_conf_free), values.c (value parsers and printers),
 * tables.c (keyword and section tables), rules.c (whole-file checks and
 * defaults), print.c (zg_conf_print, zg_conf_each_key, zg_mode_name) and
 * util.c (small helpers), sharing the private header conf_int.h.
 */
#ifndef ZG_CONF_H
#define ZG_CONF_H

#include <stdint.h>
#include <stdio.h>

#include "audit/audit.h"
#include "directory/directory.h"
#include "policy/ocsp.h"
#include "base/errlist.h"
#include "base/log.h"
#include "base/prefix.h"
#include "proto/inspect.h"
#include "shape/shape.h"

#define ZG_NAME_MAX 64         /* route names, profile names, gateway name */
#define ZG_HOST_MAX 256        /* host names and server_name (DNS or URI) */
#define ZG_PATH_MAX 512        /* file paths */
#define ZG_PORT_MAX 8          /* "65535" */
#define ZG_ROUTES_MAX 256      /* [route] sections per file */
#define ZG_PREFIXES_MAX 64     /* allow_from entries per route */
#define ZG_CRLS_MAX 16         /* crl files */
#define ZG_TICKET_KEYS_MAX 4   /* session_ticket_key files: the sealing key and three older ones */
#define ZG_TLS_LIST_MAX 1024   /* route narrowing lists (tls13_suites, ...) */
#define ZG_POOL_MAX 8          /* upstream endpoints in one route's connect */
#define ZG_WEIGHT_MAX 100      /* weight=N of a pool member */
#define ZG_AE_MAX 17           /* DICOM AE title: 16 characters and the NUL */
#define ZG_HTTP_PATH_MAX 256   /* health_http_path */
#define ZG_IDENTITIES_MAX 8    /* [identity NAME] sections */
#define ZG_TRUSTS_MAX 8        /* [trust NAME] sections */

enum zg_mode {
	ZG_MODE_WRAP,   /* plain in, mTLS out */
	ZG_MODE_UNWRAP, /* mTLS in, plain out */
	ZG_MODE_BRIDGE, /* mTLS in, mTLS out */
};

/* "host:port", "[v6]:port" or "*:port" as written, split. */
struct zg_endpoint {
	char host[ZG_HOST_MAX]; /* without brackets; "*" or "" = any address */
	char port[ZG_PORT_MAX];
};

/* One upstream endpoint of a route's pool, as written in `connect`:
 * "HOST:PORT [backup] [weight=N] [sni=NAME]". */
struct zg_upstream_conf {
	struct zg_endpoint ep;
	char server_name[ZG_HOST_MAX];   /* sni=: this site's expected name; "" = the route's */
	unsigned weight;                 /* weight=: 1..ZG_WEIGHT_MAX, default 1 */
	int backup;                      /* carries traffic only while every primary is down */
};

/* `connect`: the upstream pool, in the order written (the `first` order). */
struct zg_pool_conf {
	struct zg_upstream_conf m[ZG_POOL_MAX];
	unsigned n;                      /* 1..ZG_POOL_MAX once parsed */
};

enum zg_balance {
	ZG_BALANCE_FIRST,       /* the first usable member in written order */
	ZG_BALANCE_ROUND_ROBIN, /* usable primaries in turn, by weight */
	ZG_BALANCE_LEAST_CONN,  /* the usable primary with the fewest connections per weight */
};

/* Active health check of every pool member (upstream/check.c). */
enum zg_check_kind {
	ZG_CHECK_NONE,  /* passive detection only */
	ZG_CHECK_TCP,   /* TCP connect */
	ZG_CHECK_TLS,   /* TCP + TLS handshake under the route's policy (wrap, bridge) */
	ZG_CHECK_DICOM, /* DICOM C-ECHO (over TLS on wrap and bridge routes) */
	ZG_CHECK_HL7,   /* HL7 v2 message over MLLP, ACK expected (likewise) */
	ZG_CHECK_HTTP,  /* HTTP GET, status expected (HTTPS on wrap and bridge) */
};

struct zg_conf_check {
	enum zg_check_kind kind;         /* health_check, default none */
	unsigned interval_ms;            /* health_interval, default 2s */
	unsigned timeout_ms;             /* health_timeout, default 1s */
	unsigned jitter_ms;              /* health_jitter: up to this much later, default 0 */
	unsigned rise, fall;             /* health_rise 2, health_fall 3 */
	char calling_ae[ZG_AE_MAX];      /* health_calling_ae, default ZONEGATE */
	char called_ae[ZG_AE_MAX];       /* health_called_ae, default ANY-SCP */
	char hl7_message[ZG_PATH_MAX];   /* health_hl7_message file; "" = built-in */
	char http_path[ZG_HTTP_PATH_MAX]; /* health_http_path, default / */
	unsigned http_status;            /* health_http_status, default 200 */
	int line;                        /* line of health_check; 0 = not given */
};

struct zg_conf_gateway {
	char name[ZG_NAME_MAX];          /* audit source id; default: host name */
	unsigned workers;                /* 0 = one per online core */
	enum zg_log_level log_level;     /* default info */
	unsigned max_connections;        /* whole process; default 10000 */
	unsigned drain_timeout_ms;       /* SIGTERM grace; default 30 s */
	unsigned handshake_timeout_ms;   /* route default; default 10 s */
	unsigned idle_timeout_ms;        /* route default; default 600 s */
	unsigned connect_timeout_ms;     /* route default; default 5 s */
	int sandbox;                     /* bool, default 0: workers seccomp + Landlock */
	char user[ZG_NAME_MAX];          /* run as this user after start-up; "" = stay */
};

struct zg_conf_tls {
	char profile[ZG_NAME_MAX];       /* default "cryptrec-high" */
	char certificate[ZG_PATH_MAX];   /* PEM, leaf first; intermediates may follow */
	char key[ZG_PATH_MAX];           /* PEM private key, mode 0600 or stricter */
	char chain[ZG_PATH_MAX];         /* optional PEM intermediates */
	char trust_anchors[ZG_PATH_MAX]; /* PEM CA bundle peers must chain to */
	char crl[ZG_CRLS_MAX][ZG_PATH_MAX];
	unsigned n_crl;
	unsigned verify_depth;           /* default 4 */
	int session_cache;               /* bool, default 1 */
	unsigned session_cache_size;     /* default 20480 */
	unsigned session_timeout_s;      /* default 300 */
	int session_tickets;             /* bool, default 0 */
	/* shared ticket keys (80-byte files, nginx format), first seals; none = a
	 * ring of random keys rotated every session_timeout */
	char ticket_key[ZG_TICKET_KEYS_MAX][ZG_PATH_MAX];
	unsigned n_ticket_key;
	int crl_stale_warn;              /* crl_stale = warn (default reject) */
	unsigned clock_skew_s;           /* certificate validity tolerance; default 0 */
	int key_process;                 /* bool, default 1: keys in the key process (keys/) */
	/* OCSP stapling of our certificate (tls/ocsp.c): a DER response file,
	 * re-read on reload, kept fresh from ocsp_staple_url when set */
	char ocsp_staple_file[ZG_PATH_MAX];
	char ocsp_staple_url[ZG_PATH_MAX]; /* http(s) URL, "aia", or "" = the file alone */
	unsigned ocsp_staple_interval_s;   /* default 1 h */
	int line_ocsp_staple_file, line_ocsp_staple_url;
	enum zg_ocsp_mode ocsp;            /* the "tls" store's OCSP checks */
	char ocsp_responder[ZG_PATH_MAX];
	/* lines of keys that later stages (snapshot) report errors on */
	int line_certificate, line_key, line_chain, line_trust_anchors, line_crl, line_ticket_key;
};

struct zg_conf_route {
	char name[ZG_NAME_MAX];
	enum zg_mode mode;
	struct zg_endpoint listen;
	struct zg_pool_conf connect;     /* one or more upstream endpoints */
	enum zg_balance balance;         /* default first */
	unsigned hold_down_ms;           /* passive back-off base; default 5s */
	struct zg_conf_check check;
	char server_name[ZG_HOST_MAX];   /* wrap/bridge: expected DNS or URI SAN */
	char profile[ZG_NAME_MAX];       /* "" = the [tls] profile */
	/* Narrowing of the profile (profile.h zg_profile_overrides); "" =
	 * inherit. Checked against the profile when the TLS contexts are built. */
	char min_version[8];             /* "1.2" | "1.3" */
	char max_version[8];
	char tls13_suites[ZG_TLS_LIST_MAX];
	char tls12_ciphers[ZG_TLS_LIST_MAX];
	char groups[ZG_TLS_LIST_MAX];
	char sigalgs[ZG_TLS_LIST_MAX];
	struct zg_prefix allow_from[ZG_PREFIXES_MAX];
	unsigned n_allow_from;           /* wrap: required; others: optional */
	unsigned max_connections;        /* default: gateway max_connections */
	unsigned handshake_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned connect_timeout_ms;
	int line;                        /* line of the [route NAME] header */
	int line_listen, line_connect;
	struct zg_peers peers;           /* [directory] participants admitted; default "*" */
	int proxy_protocol;              /* 2: send a PROXY v2 header upstream (unwrap, bridge); 0: off */
	char interface[ZG_NAME_MAX];     /* listen only on packets arriving on this interface; "" = any */
	int line_interface;
	int line_peers;                  /* 0: peers not given */
	char class_name[ZG_NAME_MAX];    /* traffic class; "" = the default class */
	int line_class;
	struct zg_inspect_conf insp;     /* inspect and its dicom_ / hl7_ keys (proto/inspect.h) */
	int line_inspect;
	/* trust domains (conf/identities.c): the [identity] presented and the
	 * [trust] store peers are verified against, on the listen side (we are
	 * the TLS server) and the connect side (we are the client); "" = [tls] */
	char listen_identity[ZG_NAME_MAX], connect_identity[ZG_NAME_MAX];
	char listen_trust[ZG_NAME_MAX], connect_trust[ZG_NAME_MAX];
	int line_listen_identity, line_connect_identity, line_listen_trust, line_connect_trust;
};

/* [identity NAME]: a certificate, its key and chain, presented by the
 * routes that name it. The [tls] section's own certificate, key and chain
 * are the identity "tls" (zg_conf.tls_identity). */
struct zg_conf_identity {
	char name[ZG_NAME_MAX];          /* first: the printer names the section by it */
	char certificate[ZG_PATH_MAX];   /* PEM, leaf first; intermediates may follow */
	char key[ZG_PATH_MAX];           /* PEM private key */
	char chain[ZG_PATH_MAX];         /* optional PEM intermediates */
	/* OCSP stapling of this certificate (tls/ocsp.c): a DER response file,
	 * re-read on reload, kept fresh from ocsp_staple_url when set */
	char ocsp_staple_file[ZG_PATH_MAX];
	char ocsp_staple_url[ZG_PATH_MAX]; /* http(s) URL, "aia", or "" = the file alone */
	unsigned ocsp_staple_interval_s;   /* default 1 h */
	int line, line_certificate, line_key, line_chain;
	int line_ocsp_staple_file, line_ocsp_staple_url;
};

/* [trust NAME]: a trust store (anchors, CRLs, depth, CRL policy) the routes
 * that name it verify their peers against. [tls]'s are the store "tls"
 * (zg_conf.tls_trust). */
struct zg_conf_trust {
	char name[ZG_NAME_MAX];          /* first: the printer names the section by it */
	char trust_anchors[ZG_PATH_MAX];
	char crl[ZG_CRLS_MAX][ZG_PATH_MAX];
	unsigned n_crl;
	unsigned verify_depth;           /* default 4 */
	int crl_stale_warn;              /* crl_stale = warn (default reject) */
	enum zg_ocsp_mode ocsp;          /* OCSP check of the peers it judges; default off */
	char ocsp_responder[ZG_PATH_MAX]; /* "" = the peer certificate's AIA */
	int line, line_trust_anchors, line_crl;
};

/* [directory]: struct zg_conf_directory is defined in directory.h, whose
 * loader takes it; its paths must hold what every other path here holds. */
_Static_assert(ZG_DIR_PATH_MAX == ZG_PATH_MAX, "directory.h's ZG_DIR_PATH_MAX must equal ZG_PATH_MAX");
/* [class NAME] and [link]: struct zg_conf_class and zg_conf_link are
 * defined in shape/shape.h, which the data path shares. */
_Static_assert(ZG_CLASS_NAME_MAX == ZG_NAME_MAX, "shape.h's ZG_CLASS_NAME_MAX must equal ZG_NAME_MAX");

/* [crl NAME]: fetch one CA's CRL over HTTP(S) into a [tls] crl file
 * (tls/crlfetch.c). */
struct zg_conf_crl {
	char name[ZG_NAME_MAX];          /* first: the printer names the section by it */
	char url[ZG_PATH_MAX];           /* http:// or https:// */
	char file[ZG_PATH_MAX];          /* one of [tls] crl */
	unsigned interval_ms;            /* default 1 h */
	unsigned timeout_ms;             /* default 10 s */
	int line, line_url, line_file;
};

#define ZG_CTL_PATH_MAX 108        /* sizeof(struct sockaddr_un.sun_path) */

/* [control]: the operator's control socket (ops/ctl.c). Read at start only. */
struct zg_conf_control {
	char socket[ZG_CTL_PATH_MAX];    /* "" : no control socket */
	char group[ZG_NAME_MAX];         /* "" : the gateway's own group */
};

#define ZG_EXPIRY_WARN_MAX 8        /* thresholds in expiry_warn; a bit each in a mask */
#define ZG_EXPIRY_WARN_DAYS_MAX 3650

/* [admin]: the metrics and health listener (ops/metrics.c), read at start
 * only, and the expiry warning thresholds (ops/expiry.c), read at each load. */
struct zg_conf_admin {
	struct zg_endpoint listen;       /* port "" : no admin listener; loopback only */
	int tls;                         /* mutual TLS, judged as an unwrap route's clients */
	char identity[ZG_NAME_MAX];      /* tls = on: the [identity] presented; "": [tls]'s */
	char trust[ZG_NAME_MAX];         /* tls = on: the [trust] clients chain to; "": [tls]'s */
	int line_tls, line_identity, line_trust;
	unsigned expiry_warn[ZG_EXPIRY_WARN_MAX]; /* days before, far to near; default 30 7 1 */
	unsigned n_expiry_warn;
};

/* [override]: the limits of an emergency override (ops/override.c). */
struct zg_conf_override {
	unsigned max_duration_s;         /* the longest `ctl override start --for`; default 4 h */
	unsigned cert_expired_max_s;     /* cert_expired relaxed only this long past notAfter; 7 d */
};

struct zg_conf {
	char path[ZG_PATH_MAX];          /* file it came from, for messages */
	struct zg_conf_gateway gw;
	struct zg_conf_tls tls;
	struct zg_conf_route *routes;    /* n_routes entries, owned */
	unsigned n_routes;
	struct zg_conf_directory dir;    /* [directory] */
	struct zg_audit_conf audit;      /* [audit]; see audit.h */
	struct zg_conf_crl crl_fetch[ZG_CRLS_MAX]; /* [crl NAME] sections */
	unsigned n_crl_fetch;
	struct zg_conf_class classes[ZG_CLASSES_MAX]; /* [class NAME], n_classes used */
	unsigned n_classes;
	struct zg_conf_link link;        /* [link]; zero: no link budget */
	struct zg_conf_control ctl;      /* [control] */
	struct zg_conf_admin admin;      /* [admin] */
	struct zg_conf_override ovr;     /* [override] */
	struct zg_conf_identity identities[ZG_IDENTITIES_MAX]; /* [identity NAME] */
	unsigned n_identities;
	struct zg_conf_trust trusts[ZG_TRUSTS_MAX];  /* [trust NAME] */
	unsigned n_trusts;
	/* [tls]'s certificate/key/chain and anchors/CRLs/depth/crl_stale as the
	 * identity and store named "tls", filled in once the file is read */
	struct zg_conf_identity tls_identity;
	struct zg_conf_trust tls_trust;
};

/* Read and parse @path. On any error returns NULL with every problem found
 * appended to @errs as "path:line: key: message"; the file is also refused if
 * it is group- or world-writable. Relative paths in it are resolved against
 * the real directory of @path; an unset gateway name becomes the host name.
 * Caller frees the result with zg_conf_free. */
struct zg_conf *zg_conf_load(const char *path, struct zg_errlist *errs);

/* Parse configuration text already in memory; @name stands for the file in
 * messages. Does no I/O except the checks on files the config names (key
 * file readable, not world-readable). Same result contract as
 * zg_conf_load. */
struct zg_conf *zg_conf_parse(const char *text, const char *name, struct zg_errlist *errs);

/* Flags for zg_conf_parse_flags(). */
#define ZG_CONF_NO_FILE_CHECKS 0x1u /* skip every check on named files: pure, for fuzzing */

/* zg_conf_parse with @flags. Relative paths in @text are resolved against
 * the directory part of @name. The gateway name stays "" when not given
 * (zg_conf_load fills in the host name). */
struct zg_conf *zg_conf_parse_flags(const char *text, const char *name, unsigned flags,
				    struct zg_errlist *errs);

void zg_conf_free(struct zg_conf *conf);

/* Print the effective settings (defaults filled in) of the gateway, the TLS
 * section and each route, as `zonegate check` shows them. Never prints key
 * material (the key path is shown, not its content). */
void zg_conf_print(const struct zg_conf *conf, FILE *out);

const char *zg_mode_name(enum zg_mode m);

/* "first", "round-robin", "least-connections" / "none", "tcp", "tls",
 * "dicom", "hl7", "http"; "unknown" out of range. */
const char *zg_balance_name(enum zg_balance b);
const char *zg_check_name(enum zg_check_kind k);

/* Pool member @m as written in `connect` ("[::1]:104 backup weight=2") into
 * @out of @cap bytes, truncating if need be. */
void zg_upstream_format(const struct zg_upstream_conf *m, char *out, size_t cap);

/* The name a member's TLS peer must carry: its sni=, else the route's
 * server_name. */
static inline const char *zg_upstream_server_name(const struct zg_conf_route *r,
						  const struct zg_upstream_conf *m)
{
	return m->server_name[0] ? m->server_name : r->server_name;
}

/* Call @fn once for every keyword of every section, in table order;
 * @section is the header word ("gateway", "tls", "route", ...). For checks
 * such as "every keyword is documented"; the strings are static. */
void zg_conf_each_key(void (*fn)(const char *section, const char *key, void *arg), void *arg);

/* Route @r needs TLS towards its clients (unwrap, bridge) / its upstream
 * (wrap, bridge). */
static inline int zg_route_tls_in(const struct zg_conf_route *r)
{
	return r->mode != ZG_MODE_WRAP;
}
static inline int zg_route_tls_out(const struct zg_conf_route *r)
{
	return r->mode != ZG_MODE_UNWRAP;
}

/* The identity route @r presents on its listen side (@outbound 0: we are
 * the TLS server) or its connect side (1: the client): the [identity] it
 * names, else [tls]'s (c->tls_identity). For a parsed configuration, whose
 * names all resolve. */
const struct zg_conf_identity *zg_route_identity(const struct zg_conf *c,
						 const struct zg_conf_route *r, int outbound);

/* The store route @r verifies its clients (@outbound 0) or its upstream
 * (1) against: the [trust] it names, else [tls]'s (c->tls_trust). */
const struct zg_conf_trust *zg_route_trust(const struct zg_conf *c, const struct zg_conf_route *r,
					   int outbound);

/* What [admin] tls = on presents and verifies its clients against: the
 * [identity] / [trust] [admin] names, else [tls]'s. */
const struct zg_conf_identity *zg_admin_identity(const struct zg_conf *c);
const struct zg_conf_trust *zg_admin_trust(const struct zg_conf *c);

/* The index of store @t: 0 for [tls]'s, 1 + its position for a [trust]
 * section (so ZG_TRUSTS_MAX + 1 indexes in all). */
unsigned zg_conf_trust_index(const struct zg_conf *c, const struct zg_conf_trust *t);

/* Whether any TLS side of any route, or [admin] tls = on, uses identity
 * @id / store @t. */
int zg_conf_identity_used(const struct zg_conf *c, const struct zg_conf_identity *id);
int zg_conf_trust_used(const struct zg_conf *c, const struct zg_conf_trust *t);

/* For each TLS side of each route, one comment line: "# route NAME listen:
 * profile P, identity I (CERT, as server), trust T (ANCHORS[, with CRLs])"
 * (`check`, `profiles --conf`). */
void zg_conf_print_domains(const struct zg_conf *c, FILE *out);

/* Whether @file is one of the crl files of [tls] or of a [trust] section. */
int zg_conf_crl_loaded(const struct zg_conf *c, const char *file);

#endif
