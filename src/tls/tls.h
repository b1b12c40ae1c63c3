/* tls.h - the one room that talks to OpenSSL's SSL layer.
 *
 * Builds the per-route SSL_CTXs from the configuration and a profile,
 * records why a handshake failed (with a reason code from reason.h, set by
 * the verify callback or derived from OpenSSL's error queue), and extracts
 * the peer's identity for logs and identity binding. Everything else in
 * zonegate sees SSL objects only through conn.c and relay.c.
 */
#ifndef ZG_TLS_H
#define ZG_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "base/errlist.h"
#include "base/reason.h"
#include "policy/policy.h"

#define ZG_IDENT_MAX 256

/* The certificate size rule: no legitimate certificate is larger than
 * 8 KiB DER (an RSA-8192 certificate with a dozen SANs is under 3 KiB).
 * From it, the largest handshake messages a peer may send, so that a slow
 * peer cannot make the gateway hold OpenSSL's defaults (100 KiB for a
 * Certificate message, 128 KiB for a ClientHello) per connection: a
 * Certificate message holds the leaf, at most verify_depth CAs and maybe
 * the root; a ClientHello at most a session ticket carrying one
 * certificate, plus key shares and extensions. */
#define ZG_CERT_DER_MAX ZG_POLICY_CERT_DER_MAX /* the size rule (policy.h) */
#define ZG_TLS_CERT_LIST_MAX(verify_depth) (((size_t)(verify_depth) + 2) * ZG_CERT_DER_MAX)
#define ZG_TLS_CLIENT_HELLO_MAX (2 * ZG_CERT_DER_MAX)

/* Per-connection TLS verdict, attached to each SSL with zg_tls_attach().
 * The verify callback writes the first failing rule here, so the handshake
 * fails with an alert and the close path can log the rule. */
struct zg_chaincache;
struct zg_directory;
struct zg_peers;

struct zg_tls_verdict {
	enum zg_reason reason;      /* ZG_R_OK until a rule fails */
	char detail[160];
	const char *expect_uri;     /* outbound: URI SAN the server must carry, or NULL */
	struct zg_chaincache *cache; /* the worker's verified-chain cache, or NULL */
	uint64_t cache_tag;         /* zg_chaincache_tag() of this SSL's context */
	int chain_cached;           /* the chain was a verified-chain cache hit */
	struct zg_tls_session_slot *resume; /* outbound: the worker's session for this route */
	/* identity binding, checked with the chain so a mismatch is a TLS alert */
	const struct zg_directory *dir;     /* NULL: no directory */
	const uint8_t *addr;                /* the peer's address, 16-byte form */
	const struct zg_peers *peers;       /* the route's admitted participants */
	/* inbound: the first bytes of the stream, until the ClientHello's
	 * announced length is known (record header + handshake header) */
	unsigned char hello[9];
	unsigned hello_len;
	/* emergency override (base/relax.h): what may be relaxed for this
	 * connection, and what verification actually relaxed */
	unsigned relax;                     /* ZG_RELAX_* bits in force */
	int64_t relax_expired_s;            /* cert_expired: at most this long past notAfter */
	unsigned relaxed;                   /* ZG_RELAX_* bits that admitted this peer */
};

/* One remembered client session per worker and outbound route, so the next
 * connection to the same remote site resumes instead of paying a full
 * handshake on both ends. Tagged like the chain cache: a reload (new trust,
 * new server_name) never resumes an old session. */
struct zg_tls_session_slot {
	uint64_t tag;
	SSL_SESSION *sess;          /* one reference, or NULL */
};

/* Drop the session held in @slot. */
void zg_tls_session_slot_clear(struct zg_tls_session_slot *slot);

/* The verdict attached to @ssl by zg_tls_server_new/zg_tls_client_new. */
struct zg_tls_verdict *zg_tls_verdict_of(SSL *ssl);

/* One trust store's anchors and CRLs in one snapshot, read once (the files
 * judged on their descriptors by base/filemode.h) and shared by the
 * contexts of every route side that names the store, so that no two of
 * them can hold different CRLs or anchors. A build-time object: each context keeps its own
 * reference to the store, and the trust is freed once they are built. */
struct zg_tls_trust {
	const struct zg_conf_trust *conf; /* the store as configured ([tls] or [trust NAME]) */
	X509_STORE *store;              /* anchors + CRLs, revocation and strict flags set */
	STACK_OF(X509_NAME) *ca_names;  /* the anchors' subjects, for CertificateRequest */
};

/* Read the trust_anchors and every crl of store @ct (of @c, named in
 * messages); a stale CRL is named in the log once. NULL with the reasons
 * in @errs. The result refers to @ct, which must outlive it. */
struct zg_tls_trust *zg_tls_trust_load(const struct zg_conf *c, const struct zg_conf_trust *ct,
				       struct zg_errlist *errs);

/* Free @t (NULL is a no-op); contexts built from it keep their store. */
void zg_tls_trust_free(struct zg_tls_trust *t);

/* Server-side context for route @r (unwrap, bridge): the route's listen
 * identity, a client certificate required and verified against @t's
 * anchors (+ CRLs; @t is the route's listen store), server-side session
 * cache, session context and ticket keys bound to route and store. NULL on error, with the
 * reasons appended to @errs naming the config line. */
SSL_CTX *zg_tls_server_ctx(const struct zg_conf *c, const struct zg_conf_route *r,
			   const struct zg_tls_trust *t, struct zg_errlist *errs);

/* Client-side context for route @r (wrap, bridge): the route's connect
 * identity as client certificate, the server's chain verified against @t's
 * anchors (the route's connect store).
 * The expected name is set per connection by zg_tls_client_new(). */
SSL_CTX *zg_tls_client_ctx(const struct zg_conf *c, const struct zg_conf_route *r,
			   const struct zg_tls_trust *t, struct zg_errlist *errs);

/* A new server SSL on @fd with @v attached. NULL on allocation failure. */
SSL *zg_tls_server_new(SSL_CTX *ctx, int fd, struct zg_tls_verdict *v);

/* A new client SSL on @fd expecting @server_name (a DNS name, checked
 * against DNS SANs only, never the CN; or a URI such as urn:oid:..., checked
 * against URI SANs). NULL on failure. */
SSL *zg_tls_client_new(SSL_CTX *ctx, int fd, const char *server_name, struct zg_tls_verdict *v);

/* After a failed SSL_do_handshake: the reason for the failure, taken from
 * @v if the verify callback set one, else from OpenSSL's error queue (which
 * is cleared). A short description goes to @detail. */
enum zg_reason zg_tls_handshake_reason(SSL *ssl, int ssl_err, const struct zg_tls_verdict *v,
				       char *detail, size_t cap);

/* Is a certificate the peer of @ssl presented (its verified chain, or the
 * leaf alone for a resumed session) revoked by a CRL loaded in @ctx? For
 * live connections after a reload brought new CRLs. 1 with the serial and
 * issuer in @detail, else 0. */
int zg_tls_peer_revoked(SSL *ssl, SSL_CTX *ctx, char *detail, size_t cap);

/* @ssl's handshake finished under one snapshot while a reload put @ctx's
 * (the same route and direction in the new snapshot) in force: verify the
 * peer's chain again against @ctx's trust anchors and CRLs and run every
 * certificate rule of @ctx's profile, and for an upstream the route's
 * @server_name (NULL for a client). A resumed session is judged with the
 * chain its ticket kept. ZG_R_OK, or the first failing rule with @detail. */
enum zg_reason zg_tls_rejudge(SSL *ssl, SSL_CTX *ctx, const char *server_name, char *detail,
			      size_t cap);

/* Write the peer certificate's subject (RFC 2253) and SANs ("DNS:a,URI:b")
 * into the buffers; empty strings if there is no peer certificate. */
void zg_tls_peer_identity(SSL *ssl, char *subject, size_t scap, char *sans, size_t ncap);

#endif
