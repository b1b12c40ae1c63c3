/* tls.c - SSL_CTX construction, handshake verdicts, peer identity. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/filemode.h"
#include "base/log.h"
#include "keys/keys.h"
#include "tls/chaincache.h"
#include "tls/ocsp.h"
#include "policy/certcheck.h"
#include "policy/crl.h"
#include "directory/directory.h"
#include "policy/policy.h"
#include "policy/profile.h"
#include "policy/server_name.h"
#include "tls/store.h"
#include "tls/ticket.h"
#include "base/relax.h"
#include "tls/tls.h"

static int verdict_index = -1;
static int policy_index = -1; /* SSL_CTX ex_data: struct tls_policy, owned */
static pthread_once_t verdict_once = PTHREAD_ONCE_INIT;

/* The ex_data slot is process-wide but written once, before any worker
 * starts; afterwards it is a constant. */
/* What the verify callback needs of its route; one per SSL_CTX, freed with
 * it. The narrowed profile lives here, so its lists outlive every SSL. */
struct tls_policy {
	struct zg_profile_narrowed prof;
	unsigned clock_skew_s;
	int crl_stale_warn;
};

static void free_policy(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	OPENSSL_free(ptr);
}

static void verdict_index_init(void)
{
	verdict_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	policy_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_policy);
}

static int ctx_policy_index(void)
{
	pthread_once(&verdict_once, verdict_index_init);
	return policy_index;
}

static int tls_index(void)
{
	pthread_once(&verdict_once, verdict_index_init);
	return verdict_index;
}

struct zg_tls_verdict *zg_tls_verdict_of(SSL *ssl)
{
	return SSL_get_ex_data(ssl, tls_index());
}

static void openssl_error(char *out, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, out, cap);
	else
		snprintf(out, cap, "unknown OpenSSL error");
	ERR_clear_error();
}

static void set_verdict(struct zg_tls_verdict *v, enum zg_reason r, const char *what, const char *arg)
{
	size_t n, m;

	if (v->reason != ZG_R_OK)
		return; /* keep the first failing rule */
	v->reason = r;
	/* the detail is for the log; a long one is cut, never overflowed */
	n = strnlen(what, sizeof(v->detail) - 1);
	memcpy(v->detail, what, n);
	m = strnlen(arg, sizeof(v->detail) - 1 - n);
	memcpy(v->detail + n, arg, m);
	v->detail[n + m] = '\0';
}

static int has_uri_san(X509 *cert, const char *uri)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !found; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type != GEN_URI)
			continue;
		const ASN1_IA5STRING *s = gn->d.uniformResourceIdentifier;
		found = (size_t)s->length == strlen(uri) && memcmp(s->data, uri, (size_t)s->length) == 0;
	}
	GENERAL_NAMES_free(names);
	return found;
}

/* Every certificate-policy rule (policy.h) on the chain OpenSSL just
 * verified; the first failing rule becomes the verdict. The peer is a
 * client on a server SSL and a server on a client SSL. */
/* What an emergency override already relaxed in OpenSSL's verification
 * (tolerated()) the rules let pass too: the leaf's expiry, a stale CRL.
 * Every other finding stands. */
static void relax_findings(struct zg_policy_verdict *pv, const struct zg_tls_verdict *v)
{
	for (unsigned i = 0; i < pv->n; i++) {
		struct zg_policy_finding *f = &pv->f[i];
		if ((f->reason == ZG_R_TLS_CERT_EXPIRED && f->depth == 0 &&
		     (v->relaxed & ZG_RELAX_CERT_EXPIRED)) ||
		    (f->reason == ZG_R_CRL_STALE && (v->relaxed & ZG_RELAX_CRL_STALE)))
			f->warn = 1;
	}
}

static int policy_ok(SSL *ssl, X509_STORE_CTX *xs, struct zg_tls_verdict *v)
{
	struct zg_policy_params pp = {0};
	struct zg_policy_verdict pv;
	const struct zg_policy_finding *f;

	const struct tls_policy *tp = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_policy_index());

	if (!tp)
		return 0;
	pp.profile = &tp->prof.p;
	pp.role = SSL_is_server(ssl) ? ZG_ROLE_CLIENT : ZG_ROLE_SERVER;
	pp.now = time(NULL);
	pp.clock_skew_s = tp->clock_skew_s;
	pp.max_depth = (unsigned)SSL_get_verify_depth(ssl);
	/* Revocation stays with OpenSSL (CRL_CHECK_ALL on the store). */
	if (zg_policy_check_chain(X509_STORE_CTX_get0_chain(xs), &pp, &pv) == 0)
		return 1;
	relax_findings(&pv, v);
	f = zg_policy_first_failure(&pv);
	if (!f)
		return 1;
	set_verdict(v, f ? f->reason : ZG_R_TLS_UNTRUSTED, "", f ? f->detail : "policy");
	X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

/* OpenSSL errors the configuration tolerates: a validity window missed by
 * less than clock_skew (the policy's validity rule re-judges every
 * certificate at depth 0), and a stale CRL under crl_stale = warn (the CRL is
 * still searched, so a revoked serial still fails). */
/* An emergency override in force for @v relaxes @err: a stale CRL, or the
 * peer's own certificate (depth 0) expired less than relax_expired_s ago.
 * Marks what it relaxed in v->relaxed. Nothing else is ever relaxed. */
static int relaxed_by_override(X509_STORE_CTX *xs, int err, struct zg_tls_verdict *v)
{
	int days = 0, secs = 0;

	if (err == X509_V_ERR_CRL_HAS_EXPIRED && (v->relax & ZG_RELAX_CRL_STALE)) {
		v->relaxed |= ZG_RELAX_CRL_STALE;
		return 1;
	}
	if (err == X509_V_ERR_CERT_HAS_EXPIRED && (v->relax & ZG_RELAX_CERT_EXPIRED) &&
	    X509_STORE_CTX_get_error_depth(xs) == 0 &&
	    ASN1_TIME_diff(&days, &secs, X509_get0_notAfter(X509_STORE_CTX_get_current_cert(xs)), NULL) &&
	    (int64_t)days * 86400 + secs <= v->relax_expired_s) {
		v->relaxed |= ZG_RELAX_CERT_EXPIRED;
		return 1;
	}
	return 0;
}

static int tolerated(SSL *ssl, X509_STORE_CTX *xs, int err, struct zg_tls_verdict *v)
{
	const struct tls_policy *tp = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_policy_index());
	char d[ZG_POLICY_DETAIL_MAX];

	if (!tp)
		return 0;
	if ((err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID) &&
	    tp->clock_skew_s &&
	    zg_rule_validity(X509_STORE_CTX_get_current_cert(xs), time(NULL), tp->clock_skew_s, d,
			     sizeof(d)) == ZG_R_OK)
		return 1;
	if (err == X509_V_ERR_CRL_HAS_EXPIRED && tp->crl_stale_warn) {
		X509_CRL *crl = X509_STORE_CTX_get0_current_crl(xs);
		char issuer[256] = "?", q[300];
		BIO *b = BIO_new(BIO_s_mem());
		int n;

		if (b && crl && X509_NAME_print_ex(b, X509_CRL_get_issuer(crl), 0, XN_FLAG_RFC2253) >= 0 &&
		    (n = BIO_read(b, issuer, (int)sizeof(issuer) - 1)) > 0)
			issuer[n] = '\0';
		BIO_free(b);
		zg_warn("event=crl_stale issuer=%s "
			"detail=\"CRL past nextUpdate accepted (crl_stale = warn)\"",
			zg_log_quote(q, sizeof(q), issuer));
		return 1;
	}
	return relaxed_by_override(xs, err, v);
}

/* Runs for every certificate of the peer's chain, anchor first. OpenSSL's
 * own checks (signature, validity, CRL, host name) arrive as !ok; our rules
 * run once the whole chain verified, at depth 0. Returning 0 fails the
 * handshake with an alert, so a refused peer learns nothing more. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct zg_tls_verdict *v = ssl ? SSL_get_ex_data(ssl, tls_index()) : NULL;
	X509 *leaf;

	if (!v)
		return 0;
	if (!ok) {
		int err = X509_STORE_CTX_get_error(xs);
		enum zg_reason r = zg_policy_reason_from_x509(err);
		if (tolerated(ssl, xs, err, v))
			return 1;
		/* A v1 certificate has no SAN, so OpenSSL's host check fails it
		 * before our rules run; name what the rules would (x509_v3 comes
		 * before server_name, docs/policy.md): reissue it as v3. */
		if (r == ZG_R_TLS_NAME_MISMATCH &&
		    X509_get_version(X509_STORE_CTX_get_current_cert(xs)) != X509_VERSION_3) {
			set_verdict(v, ZG_R_CERT_NOT_V3, "", "not X.509 version 3");
			return 0;
		}
		set_verdict(v, r, "", X509_verify_cert_error_string(err));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) != 0)
		return 1;
	leaf = X509_STORE_CTX_get_current_cert(xs);
	if (v->expect_uri && !has_uri_san(leaf, v->expect_uri)) {
		set_verdict(v, ZG_R_TLS_NAME_MISMATCH, "no URI SAN ", v->expect_uri);
		X509_STORE_CTX_set_error(xs, X509_V_ERR_HOSTNAME_MISMATCH);
		return 0;
	}
	return policy_ok(ssl, xs, v);
}

/* A cached session must not outlive the certificate it authenticated:
 * cap its lifetime at the peer's notAfter, so an expired certificate cannot
 * come back by resumption. Revocation needs no cap: a CRL reload builds
 * new SSL_CTXs, whose session caches start empty. Returns 0: the internal
 * cache keeps the session, we take no reference. */
static int cap_session_lifetime(SSL *ssl, SSL_SESSION *sess)
{
	X509 *peer = SSL_SESSION_get0_peer(sess);
	time_t now = time(NULL);
	int days = 0, secs = 0;
	long left;

	(void)ssl;
	if (!peer || !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(peer)))
		return 0;
	/* The timeout counts from the session's creation time. */
	left = (long)days * 86400 + secs + (long)(now - SSL_SESSION_get_time(sess));
	if (left < SSL_SESSION_get_timeout(sess))
		SSL_SESSION_set_timeout(sess, left > 1 ? left : 1);
	return 0;
}

/* The CRLs of store @ct into @store (through crl.c, which refuses a
 * damaged or empty file), with revocation checked on every certificate of
 * a chain. A CRL already past its nextUpdate is named in the log now, not
 * first at the handshake it would refuse (crl_stale = reject) or let
 * through (warn). */
static int load_crls(X509_STORE *store, const struct zg_conf *c, const struct zg_conf_trust *ct,
		     struct zg_errlist *errs)
{
	STACK_OF(X509_CRL) *crls;
	char why[256];
	int rc = 0;

	if (!ct->n_crl)
		return 0;
	if (!(crls = zg_crl_new())) {
		zg_errlist_add(errs, c->path, ct->line_crl, "crl", "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < ct->n_crl; i++) {
		if (zg_crl_load_file(crls, ct->crl[i], why, sizeof(why)) < 0) {
			zg_errlist_add(errs, c->path, ct->line_crl, "crl", "%s: %s", ct->crl[i], why);
			rc = -1;
		}
	}
	for (int i = zg_crl_next_stale(crls, 0, time(NULL)); rc == 0 && i >= 0;
	     i = zg_crl_next_stale(crls, i + 1, time(NULL))) {
		char issuer[256];
		X509_NAME_oneline(X509_CRL_get_issuer(sk_X509_CRL_value(crls, i)), issuer, sizeof(issuer));
		zg_warn("event=crl_stale issuer=\"%s\" trust=%s crl_stale=%s msg=\"CRL past its nextUpdate\"",
			issuer, ct->name, ct->crl_stale_warn ? "warn" : "reject");
	}
	if (rc == 0 && zg_crl_add_to_store(store, crls) < 0) {
		zg_errlist_add(errs, c->path, ct->line_crl, "crl",
			       "cannot add the CRLs to the trust store");
		rc = -1;
	}
	zg_crl_free(crls);
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	return rc;
}

/* Every certificate of the trust_anchors file into @t's store, and its
 * subject into the CA names a server sends in its CertificateRequest. The
 * file is read from the descriptor whose owner and mode were judged, so
 * what was checked is what is trusted. */
static int load_anchors(struct zg_tls_trust *t, const struct zg_conf *c, struct zg_errlist *errs)
{
	const char *path = t->conf->trust_anchors;
	char why[2 * ZG_PATH_MAX + 128];
	struct stat st;
	BIO *b = NULL;
	X509 *x;
	int n = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (zg_file_mode_check(&st, geteuid(), path, why, sizeof(why)) < 0)
		goto fail;
	if (!(b = BIO_new_fd(fd, BIO_CLOSE))) {
		snprintf(why, sizeof(why), "%s: out of memory", path);
		goto fail;
	}
	fd = -1;
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		X509_NAME *name = X509_NAME_dup(X509_get_subject_name(x));
		int ok = X509_STORE_add_cert(t->store, x) == 1 && name &&
			 sk_X509_NAME_push(t->ca_names, name) > 0;
		X509_free(x);
		if (!ok) {
			X509_NAME_free(name);
			snprintf(why, sizeof(why), "%s: cannot add certificate %d to the store", path, n + 1);
			goto fail;
		}
		n++;
	}
	if (n == 0 || ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		snprintf(why, sizeof(why), "%s: %s", path,
			 n ? "damaged PEM block after the certificates" : "no PEM certificate");
		goto fail;
	}
	ERR_clear_error();
	BIO_free(b);
	return 0;
fail:
	ERR_clear_error();
	BIO_free(b);
	if (fd >= 0)
		close(fd);
	zg_errlist_add(errs, c->path, t->conf->line_trust_anchors, "trust_anchors", "%s", why);
	return -1;
}

struct zg_tls_trust *zg_tls_trust_load(const struct zg_conf *c, const struct zg_conf_trust *ct,
				       struct zg_errlist *errs)
{
	struct zg_tls_trust *t = OPENSSL_zalloc(sizeof(*t));

	if (!t || !(t->store = X509_STORE_new()) || !(t->ca_names = sk_X509_NAME_new_null())) {
		zg_errlist_add(errs, c->path, 0, NULL, "out of memory for the trust store");
		goto fail;
	}
	t->conf = ct;
	X509_STORE_set_flags(t->store, X509_V_FLAG_X509_STRICT);
	/* `|`, not `||`: the CRLs' errors are reported even when the anchors fail */
	if ((ct->trust_anchors[0] && load_anchors(t, c, errs) < 0) |
	    (load_crls(t->store, c, ct, errs) < 0))
		goto fail;
	return t;
fail:
	zg_tls_trust_free(t);
	return NULL;
}

void zg_tls_trust_free(struct zg_tls_trust *t)
{
	if (!t)
		return;
	X509_STORE_free(t->store);
	sk_X509_NAME_pop_free(t->ca_names, X509_NAME_free);
	OPENSSL_free(t);
}

/* The identity's chain file (intermediates we send after the leaf). */
static int load_chain_file(SSL_CTX *ctx, const struct zg_conf *c, const struct zg_conf_identity *id,
			   struct zg_errlist *errs)
{
	BIO *b;
	X509 *x;
	char why[256];

	if (!id->chain[0])
		return 0;
	b = BIO_new_file(id->chain, "r");
	if (!b) {
		openssl_error(why, sizeof(why));
		zg_errlist_add(errs, c->path, id->line_chain, "chain", "%s: %s", id->chain, why);
		return -1;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!SSL_CTX_add0_chain_cert(ctx, x)) {
			X509_free(x);
			BIO_free(b);
			openssl_error(why, sizeof(why));
			zg_errlist_add(errs, c->path, id->line_chain, "chain", "%s: %s", id->chain, why);
			return -1;
		}
	}
	ERR_clear_error();
	BIO_free(b);
	return 0;
}

/* The route's profile narrowed by its overrides, attached to @ctx (which
 * then owns it). NULL with @why if the route widens its profile. */
static const struct tls_policy *route_policy(SSL_CTX *ctx, const struct zg_conf *c,
					     const struct zg_conf_route *r, const struct zg_profile *p,
					     const struct zg_conf_trust *ct, char *why, size_t cap)
{
	struct zg_profile_overrides o = {
		.min_version = r->min_version[0] ? zg_profile_version_parse(r->min_version) : 0,
		.max_version = r->max_version[0] ? zg_profile_version_parse(r->max_version) : 0,
		.tls13_suites = r->tls13_suites,
		.tls12_ciphers = r->tls12_ciphers,
		.groups = r->groups,
		.sigalgs = r->sigalgs,
	};
	struct tls_policy *tp = OPENSSL_zalloc(sizeof(*tp));

	if (!tp) {
		snprintf(why, cap, "out of memory");
		return NULL;
	}
	if (zg_profile_narrow(p, &o, &tp->prof, why, cap) < 0) {
		OPENSSL_free(tp);
		return NULL;
	}
	if (!SSL_CTX_set_ex_data(ctx, ctx_policy_index(), tp)) {
		snprintf(why, cap, "out of memory");
		OPENSSL_free(tp);
		return NULL;
	}
	tp->clock_skew_s = c->tls.clock_skew_s;
	tp->crl_stale_warn = ct->crl_stale_warn;
	return tp;
}

/* Our own certificate must pass the rules we hold peers to, as the chain we
 * present (leaf and configured intermediates): as a server certificate on
 * a server context, as a client certificate on a client one. Each failing
 * rule becomes a configuration error naming it. */
static int own_cert_check(SSL_CTX *ctx, const struct zg_conf *c, const struct zg_conf_route *r,
			  const struct zg_conf_identity *id, const struct tls_policy *tp,
			  unsigned max_depth, int server, struct zg_errlist *errs)
{
	struct zg_policy_params pp = {.profile = &tp->prof.p, .now = time(NULL),
				      .clock_skew_s = tp->clock_skew_s,
				      .max_depth = max_depth};
	STACK_OF(X509) *extra = NULL, *chain = sk_X509_new_null();
	struct zg_policy_verdict v;
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	int rc = -1;

	pp.role = server ? ZG_ROLE_SERVER : ZG_ROLE_CLIENT;
	if (!chain || !leaf || !sk_X509_push(chain, leaf) || !SSL_CTX_get0_chain_certs(ctx, &extra)) {
		zg_errlist_add(errs, c->path, id->line_certificate, "certificate", "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(extra); i++)
		if (!sk_X509_push(chain, sk_X509_value(extra, i)))
			goto out;
	rc = zg_policy_check_chain(chain, &pp, &v);
	/* named after the identity and the route side that presents it: one
	 * [identity] may serve as client on one route and server on another */
	for (unsigned i = 0; i < v.n; i++)
		if (!v.f[i].warn)
			zg_errlist_add(errs, c->path, id->line_certificate, "certificate",
				       "%s (as %s certificate) breaks rule %s at depth %d: %s "
				       "([identity %s], %s side of route %s)",
				       id->certificate, server ? "server" : "client",
				       zg_reason_code(v.f[i].reason), v.f[i].depth, v.f[i].detail,
				       id->name, server ? "listen" : "connect", r->name);
out:
	sk_X509_free(chain); /* the certificates belong to ctx */
	return rc;
}

/* A resumed session skips verification, so its certificate is judged
 * again here: OpenSSL calls the servername callback on every ClientHello,
 * with or without SNI, after the session lookup (extension "final" step), for
 * TLS 1.2 session ids and TLS 1.3 tickets alike. A certificate that expired
 * since fails the handshake with certificate_expired. Revocation needs no
 * check: a CRL reload builds new SSL_CTXs, whose session caches start empty. */
static int recheck_resumed(SSL *ssl, int *al, void *arg)
{
	const struct tls_policy *tp = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_policy_index());
	struct zg_tls_verdict *v = SSL_get_ex_data(ssl, tls_index());
	SSL_SESSION *sess = SSL_get_session(ssl);
	X509 *peer = sess ? SSL_SESSION_get0_peer(sess) : NULL;
	char d[ZG_POLICY_DETAIL_MAX];
	enum zg_reason r;

	(void)arg;
	if (!SSL_session_reused(ssl) || !peer)
		return SSL_TLSEXT_ERR_NOACK; /* what OpenSSL does without a callback */
	r = zg_rule_validity(peer, time(NULL), tp ? tp->clock_skew_s : 0, d, sizeof(d));
	if (r == ZG_R_OK)
		return SSL_TLSEXT_ERR_NOACK;
	if (v)
		set_verdict(v, r, "", d);
	*al = r == ZG_R_TLS_CERT_EXPIRED ? SSL_AD_CERTIFICATE_EXPIRED : SSL_AD_BAD_CERTIFICATE;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* The chain (from the worker's cache, or verified in full with verify_cb),
 * then identity binding: the certificate and the address at the other end
 * must belong to one participant the route admits. Both run inside the
 * handshake, so a mismatch fails it with an alert. */
static int verify_chain(X509_STORE_CTX *xs, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct zg_tls_verdict *v = ssl ? SSL_get_ex_data(ssl, tls_index()) : NULL;
	char detail[ZG_POLICY_DETAIL_MAX] = "";
	enum zg_reason r;

	(void)arg;
	if (!zg_chaincache_verify(v ? v->cache : NULL, v ? v->cache_tag : 0, xs,
				  v ? &v->chain_cached : NULL))
		return 0;
	if (!v || !v->dir)
		return 1;
	r = zg_directory_check_peer(v->dir, time(NULL), v->addr, X509_STORE_CTX_get0_cert(xs), v->peers,
				    detail, sizeof(detail));
	/* an override relaxes only the directory's age: the binding is judged
	 * in full, as at the directory's last valid second */
	if (r == ZG_R_DIR_STALE && (v->relax & ZG_RELAX_DIRECTORY_STALE)) {
		r = zg_directory_check_peer(v->dir, zg_directory_expires(v->dir) - 1, v->addr,
					    X509_STORE_CTX_get0_cert(xs), v->peers, detail, sizeof(detail));
		if (r == ZG_R_OK)
			v->relaxed |= ZG_RELAX_DIRECTORY_STALE;
	}
	if (r == ZG_R_OK)
		return 1;
	set_verdict(v, r, "", detail);
	X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

/* Tickets carry the session, not the chain its full handshake verified:
 * the certificates above the leaf (DER, back to back) go into the ticket's
 * app data, sealed with it, so that a CRL revoking an intermediate reaches
 * a connection later resumed from the ticket (the re-check after a reload,
 * zg_tls_peer_revoked). A resumption that issues a new ticket keeps the app
 * data its session came with: it has no verified chain of its own. */
static int ticket_gen(SSL *ssl, void *arg)
{
	STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
	SSL_SESSION *sess = SSL_get_session(ssl);
	unsigned char *buf, *p;
	int len = 0, n;

	(void)arg;
	if (!chain || !sess || sk_X509_num(chain) < 2)
		return 1;
	for (int i = 1; i < sk_X509_num(chain); i++) {
		n = i2d_X509(sk_X509_value(chain, i), NULL);
		if (n <= 0 || len > INT_MAX - n)
			return 0; /* no ticket rather than one that forgets the chain */
		len += n;
	}
	if (!(buf = OPENSSL_malloc((size_t)len)))
		return 0;
	p = buf;
	for (int i = 1; i < sk_X509_num(chain); i++)
		(void)i2d_X509(sk_X509_value(chain, i), &p);
	n = SSL_SESSION_set1_ticket_appdata(sess, buf, (size_t)len);
	OPENSSL_free(buf);
	return n == 1;
}

/* Use a good ticket, ignore (and replace) a bad one, abort on an internal
 * error. Under TLS 1.3 a good ticket is also renewed: clients use each
 * ticket once (RFC 8446 C.4), and OpenSSL sends a resumed connection no
 * new ticket unless told to, so every other connection of such a client
 * was a full handshake (49 % resumed, docs/performance.md). TLS 1.2
 * clients reuse their ticket: no new one is sealed for them. */
static SSL_TICKET_RETURN ticket_dec(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
				    size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	(void)sess, (void)keyname, (void)keyname_len, (void)arg;
	switch (status) {
	case SSL_TICKET_SUCCESS:
		return SSL_version(ssl) >= TLS1_3_VERSION ? SSL_TICKET_RETURN_USE_RENEW
							  : SSL_TICKET_RETURN_USE;
	case SSL_TICKET_SUCCESS_RENEW:
		return SSL_TICKET_RETURN_USE_RENEW;
	case SSL_TICKET_EMPTY:
	case SSL_TICKET_NO_DECRYPT:
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	default:
		return SSL_TICKET_RETURN_ABORT;
	}
}

/* The certificates above the leaf that @ssl's resumed session kept in its
 * ticket (ticket_gen), or NULL. The caller frees the stack. */
static STACK_OF(X509) *ticket_chain(SSL *ssl)
{
	SSL_SESSION *sess = SSL_get_session(ssl);
	STACK_OF(X509) *sk;
	const unsigned char *p, *end;
	void *data = NULL;
	size_t len = 0;

	if (!sess || SSL_SESSION_get0_ticket_appdata(sess, &data, &len) != 1 || !data || !len ||
	    len > LONG_MAX || !(sk = sk_X509_new_null()))
		return NULL;
	p = data;
	end = p + len;
	while (p < end) {
		X509 *x = d2i_X509(NULL, &p, (long)(end - p));
		if (!x || !sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	}
	ERR_clear_error();
	return sk;
}

/* Our private key into @ctx: with the key process running, a handle whose
 * public half is the certificate's and whose signatures the key process
 * makes (this process never reads the key file); else the file itself.
 * -1 with why. @no_cert: the certificate did not load. */
static int use_key(SSL_CTX *ctx, const struct zg_conf_identity *id, int no_cert, char *why,
		   size_t cap)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	EVP_PKEY *pk;
	int rc;

	if (!zg_keys_active()) {
		if (SSL_CTX_use_PrivateKey_file(ctx, id->key, SSL_FILETYPE_PEM) == 1)
			return 0;
		openssl_error(why, cap);
		return -1;
	}
	if (no_cert || !cert) {
		snprintf(why, cap, "%.160s: no certificate to check it against", id->key);
		return -1;
	}
	if (!(pk = zg_keys_pkey(id->key, X509_get0_pubkey(cert), why, cap)))
		return -1;
	rc = SSL_CTX_use_PrivateKey(ctx, pk) == 1 ? 0 : -1;
	if (rc < 0) {
		char e[200];
		openssl_error(e, sizeof(e));
		snprintf(why, cap, "%.120s: %.120s", id->key, e);
	}
	EVP_PKEY_free(pk);
	return rc;
}

/* What every zonegate SSL_CTX shares: profile, our certificate and key
 * (the route side's identity), the trust anchors and CRLs (@t, the route
 * side's store), and the verify callback. */
static SSL_CTX *ctx_common(const SSL_METHOD *method, const struct zg_conf *c,
			   const struct zg_conf_route *r, const struct zg_tls_trust *t,
			   struct zg_errlist *errs)
{
	int server = method == TLS_server_method();
	const struct zg_conf_identity *id = zg_route_identity(c, r, !server);
	const char *pname = r->profile[0] ? r->profile : c->tls.profile;
	const struct zg_profile *p = zg_profile_find(pname);
	SSL_CTX *ctx = SSL_CTX_new(method);
	const struct tls_policy *tp = NULL;
	char why[256];
	int bad = 0;

	if (!ctx) {
		zg_errlist_add(errs, c->path, r->line, NULL, "route %s: out of memory", r->name);
		return NULL;
	}
	if (!p || !(tp = route_policy(ctx, c, r, p, t->conf, why, sizeof(why))) ||
	    zg_profile_apply(ctx, &tp->prof.p, why, sizeof(why)) < 0) {
		zg_errlist_add(errs, c->path, r->line, "profile", "route %s: profile %s: %s", r->name, pname,
			       p ? why : "unknown profile");
		goto fail;
	}
	/* Load at security level 0 so a weak certificate of ours reaches
	 * own_cert_check(), which refuses it naming the rule it breaks. */
	SSL_CTX_set_security_level(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, id->certificate) != 1) {
		openssl_error(why, sizeof(why));
		zg_errlist_add(errs, c->path, id->line_certificate, "certificate", "%s: %s",
			       id->certificate, why);
		bad = 1;
	}
	if (load_chain_file(ctx, c, id, errs) < 0)
		bad = 1;
	SSL_CTX_set_security_level(ctx, tp->prof.p.security_level);
	if (use_key(ctx, id, bad, why, sizeof(why)) < 0) {
		zg_errlist_add(errs, c->path, id->line_key, "key", "%s", why);
		bad = 1;
	} else if (!bad && SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		zg_errlist_add(errs, c->path, id->line_key, "key",
			       "%s does not match the certificate %s", id->key, id->certificate);
		bad = 1;
	}
	/* one store object per trust store and snapshot: every route naming
	 * the store judges by the same anchors and CRLs, and no other does */
	SSL_CTX_set1_cert_store(ctx, t->store);
	if (bad || own_cert_check(ctx, c, r, id, tp, t->conf->verify_depth, server, errs) < 0)
		goto fail;
	SSL_CTX_set_verify_depth(ctx, (int)t->conf->verify_depth);
	/* Partial writes let relay.c hand over whatever fits; the buffer may
	 * move between retries; idle connections give their buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_max_cert_list(ctx, (long)ZG_TLS_CERT_LIST_MAX(t->conf->verify_depth));
	/* No SSL_OP_IGNORE_UNEXPECTED_EOF: a FIN without close_notify must
	 * stay distinguishable from a close_notify, so relay.c can record the
	 * truncation (it still passes the end of stream on). */
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *zg_tls_server_ctx(const struct zg_conf *c, const struct zg_conf_route *r,
			   const struct zg_tls_trust *t, struct zg_errlist *errs)
{
	SSL_CTX *ctx = ctx_common(TLS_server_method(), c, r, t, errs);
	char label[ZG_TLS_DOMAIN_LABEL_MAX];
	STACK_OF(X509_NAME) *cas;

	if (!ctx)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_cert_verify_callback(ctx, verify_chain, NULL);
	/* Tell clients which CAs we accept, so multi-certificate devices pick
	 * the right one. */
	cas = SSL_dup_CA_list(t->ca_names);
	if (cas)
		SSL_CTX_set_client_CA_list(ctx, cas);
	ERR_clear_error();
	SSL_CTX_set_tlsext_servername_callback(ctx, recheck_resumed);
	/* Sessions resume only on the route and store that verified them. */
	zg_tls_domain_label(r->name, t->conf->name, label, sizeof(label));
	if (zg_tls_bind_sessions(ctx, label) < 0) {
		zg_errlist_add(errs, c->path, r->line, NULL, "route %s: cannot set the session context",
			       r->name);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (zg_ocsp_staple_attach(ctx, c, r, errs) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* the lifetime a session or ticket is issued with, cache or not */
	SSL_CTX_set_timeout(ctx, (long)c->tls.session_timeout_s);
	if (c->tls.session_cache) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(ctx, (long)c->tls.session_cache_size);
		SSL_CTX_sess_set_new_cb(ctx, cap_session_lifetime);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	/* Without tickets, TLS 1.3 resumption uses the server-side cache
	 * (stateful tickets): cheaper than decrypting a ticket and re-parsing
	 * the client certificate in it. */
	if (!c->tls.session_tickets) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		/* One stateful ticket per full handshake, not OpenSSL's two:
		 * each is a session held in the cache (≈1 KiB) and a message
		 * built and sent; a resumption already issues one, so a
		 * client always holds a ticket for its next connection. */
		if (!SSL_CTX_set_num_tickets(ctx, c->tls.session_cache ? 1 : 0)) {
			zg_errlist_add(errs, c->path, r->line, NULL, "route %s: cannot set the ticket count",
				       r->name);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (c->tls.n_ticket_key) {
		const char *paths[ZG_TICKET_KEYS_MAX];
		char why[ZG_PATH_MAX + 128];
		for (unsigned i = 0; i < c->tls.n_ticket_key; i++)
			paths[i] = c->tls.ticket_key[i];
		if (zg_ticket_keys_attach_files(ctx, paths, c->tls.n_ticket_key, label, why,
						sizeof(why)) < 0) {
			zg_errlist_add(errs, c->path, c->tls.line_ticket_key, "session_ticket_key", "%s",
				       why);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (zg_ticket_keys_attach(ctx, c->tls.session_timeout_s) < 0) {
		zg_errlist_add(errs, c->path, r->line, NULL, "route %s: cannot make ticket keys", r->name);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (c->tls.session_tickets && !SSL_CTX_set_session_ticket_cb(ctx, ticket_gen, ticket_dec, NULL)) {
		zg_errlist_add(errs, c->path, r->line, NULL, "route %s: cannot set the ticket callbacks",
			       r->name);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* A new client session (TLS 1.2 after the handshake, TLS 1.3 with each
 * NewSessionTicket): keep the newest in the worker's slot for the route. */
static int remember_session(SSL *ssl, SSL_SESSION *sess)
{
	struct zg_tls_verdict *v = SSL_get_ex_data(ssl, tls_index());

	if (!v || !v->resume || !v->cache_tag || v->reason != ZG_R_OK)
		return 0; /* not kept: OpenSSL frees it */
	SSL_SESSION_free(v->resume->sess);
	v->resume->sess = sess;
	v->resume->tag = v->cache_tag;
	return 1;
}

SSL_CTX *zg_tls_client_ctx(const struct zg_conf *c, const struct zg_conf_route *r,
			   const struct zg_tls_trust *t, struct zg_errlist *errs)
{
	SSL_CTX *ctx = ctx_common(TLS_client_method(), c, r, t, errs);

	if (!ctx)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	SSL_CTX_set_cert_verify_callback(ctx, verify_chain, NULL);
	/* Sessions live in the worker's slot (no lock), not in the context. */
	SSL_CTX_set_session_cache_mode(ctx, c->tls.session_cache ? SSL_SESS_CACHE_CLIENT |
								      SSL_SESS_CACHE_NO_INTERNAL_STORE
								    : SSL_SESS_CACHE_OFF);
	SSL_CTX_sess_set_new_cb(ctx, remember_session);
	zg_ocsp_client_ctx(ctx, zg_route_trust(c, r, 1));
	return ctx;
}

void zg_tls_session_slot_clear(struct zg_tls_session_slot *slot)
{
	SSL_SESSION_free(slot->sess);
	slot->sess = NULL;
	slot->tag = 0;
}

/* BIO callback on an inbound socket: collect the stream's first 9 bytes
 * (record header, handshake header) and fail the read when they announce a
 * ClientHello longer than ZG_TLS_CLIENT_HELLO_MAX. OpenSSL allocates the
 * announced length at once (up to 131,396 bytes) and no API caps it, so
 * the check sits on the bytes before OpenSSL sees them. Removes itself
 * once the header has been judged. */
static long hello_cap_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
			 int ret, size_t *processed)
{
	struct zg_tls_verdict *v = (struct zg_tls_verdict *)BIO_get_callback_arg(b);
	size_t n, take;
	unsigned long announced;

	(void)len;
	(void)argi;
	(void)argl;
	if (oper != (BIO_CB_READ | BIO_CB_RETURN) || ret <= 0 || !v || !processed)
		return ret;
	n = *processed;
	take = n < sizeof(v->hello) - v->hello_len ? n : sizeof(v->hello) - v->hello_len;
	memcpy(v->hello + v->hello_len, argp, take);
	v->hello_len += (unsigned)take;
	if (v->hello_len < sizeof(v->hello))
		return ret;
	BIO_set_callback_ex(b, NULL);
	announced = ((unsigned long)v->hello[6] << 16) | ((unsigned long)v->hello[7] << 8) | v->hello[8];
	/* 22: handshake record; 1: ClientHello. Anything else is OpenSSL's. */
	if (v->hello[0] != 22 || v->hello[5] != 1 || announced <= ZG_TLS_CLIENT_HELLO_MAX)
		return ret;
	v->reason = ZG_R_TLS_TOO_LARGE;
	snprintf(v->detail, sizeof(v->detail), "ClientHello of %lu bytes announced, at most %d accepted",
		 announced, ZG_TLS_CLIENT_HELLO_MAX);
	return -1;
}

SSL *zg_tls_server_new(SSL_CTX *ctx, int fd, struct zg_tls_verdict *v)
{
	SSL *ssl = SSL_new(ctx);
	BIO *rbio;

	if (!ssl)
		return NULL;
	if (!SSL_set_fd(ssl, fd) || !SSL_set_ex_data(ssl, tls_index(), v) ||
	    !(rbio = SSL_get_rbio(ssl))) {
		SSL_free(ssl);
		return NULL;
	}
	v->hello_len = 0;
	BIO_set_callback_arg(rbio, (char *)v);
	BIO_set_callback_ex(rbio, hello_cap_cb);
	SSL_set_accept_state(ssl);
	return ssl;
}

static int session_cert_valid(SSL_CTX *ctx, SSL_SESSION *sess)
{
	const struct tls_policy *tp = SSL_CTX_get_ex_data(ctx, ctx_policy_index());
	X509 *peer = SSL_SESSION_get0_peer(sess);
	char d[ZG_POLICY_DETAIL_MAX];

	return peer && zg_rule_validity(peer, time(NULL), tp ? tp->clock_skew_s : 0, d, sizeof(d)) ==
			       ZG_R_OK;
}

SSL *zg_tls_client_new(SSL_CTX *ctx, int fd, const char *server_name, struct zg_tls_verdict *v)
{
	SSL *ssl = SSL_new(ctx);

	if (!ssl)
		return NULL;
	if (!SSL_set_fd(ssl, fd) || !SSL_set_ex_data(ssl, tls_index(), v))
		goto fail;
	/* Resuming skips verification: a session whose server certificate has
	 * expired since is dropped, and the full handshake judges it again. */
	if (v->resume && v->resume->sess && !session_cert_valid(ctx, v->resume->sess))
		zg_tls_session_slot_clear(v->resume);
	/* TLS 1.3 tickets are single-use: the slot keeps the newest, and a
	 * ticket that fails to resume just costs a full handshake. */
	if (v->resume && v->resume->sess && v->resume->tag == v->cache_tag &&
	    SSL_SESSION_is_resumable(v->resume->sess) && !SSL_set_session(ssl, v->resume->sess))
		goto fail;
	if (zg_server_name_kind(server_name) == ZG_SN_URI) {
		v->expect_uri = server_name;
	} else {
		/* DNS SANs only: a CN that looks like a host name is no identity. */
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
					       X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (!SSL_set1_host(ssl, server_name))
			goto fail;
		if (!SSL_set_tlsext_host_name(ssl, server_name))
			goto fail;
	}
	SSL_set_connect_state(ssl);
	return ssl;
fail:
	SSL_free(ssl);
	ERR_clear_error();
	return NULL;
}

static enum zg_reason reason_from_ssl_lib(int r)
{
	switch (r) {
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_WRONG_SSL_VERSION:
		return ZG_R_TLS_VERSION;
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_SHARED_GROUPS:
	case SSL_R_NO_SUITABLE_KEY_SHARE:
	case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
	case SSL_R_NO_CIPHERS_AVAILABLE:
		return ZG_R_TLS_CIPHER;
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return ZG_R_TLS_NO_PEER_CERT;
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		return ZG_R_TLS_UNTRUSTED;
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_RECORD_LENGTH_MISMATCH:
		return ZG_R_TLS_NOT_TLS;
	case SSL_R_EXCESSIVE_MESSAGE_SIZE:
		return ZG_R_TLS_TOO_LARGE; /* over SSL_CTX_set_max_cert_list */
	default:
		/* SSL_R_SSLV3_ALERT_* and SSL_R_TLSV1_ALERT_* are 1000 + alert */
		if (r >= SSL_AD_REASON_OFFSET && r < SSL_AD_REASON_OFFSET + 256)
			return ZG_R_TLS_PEER_ALERT;
		return ZG_R_TLS_PROTOCOL;
	}
}

enum zg_reason zg_tls_handshake_reason(SSL *ssl, int ssl_err, const struct zg_tls_verdict *v,
				       char *detail, size_t cap)
{
	unsigned long e = ERR_peek_error();
	enum zg_reason r;

	if (v->reason != ZG_R_OK) {
		snprintf(detail, cap, "%s", v->detail);
		ERR_clear_error();
		return v->reason;
	}
	if ((e == 0 && (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN)) ||
	    (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	     ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		ERR_clear_error();
		/* A TCP health check, or a peer that gave up: no TLS error,
		 * just an end of stream before the handshake finished. */
		snprintf(detail, cap, "connection closed during the handshake");
		return SSL_is_server(ssl) ? ZG_R_CLIENT_CLOSED : ZG_R_UPSTREAM_CLOSED;
	}
	if (zg_keys_error_pending()) {
		snprintf(detail, cap, "the key process did not sign");
		return ZG_R_KEY_PROCESS_UNAVAILABLE;
	}
	if (e == 0) {
		snprintf(detail, cap, "handshake failed");
		return ZG_R_TLS_PROTOCOL;
	}
	r = ERR_GET_LIB(e) == ERR_LIB_SSL ? reason_from_ssl_lib(ERR_GET_REASON(e)) : ZG_R_TLS_PROTOCOL;
	snprintf(detail, cap, "%s", ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?");
	ERR_clear_error();
	return r;
}

static void append(char *out, size_t cap, size_t *o, const char *prefix, const unsigned char *s, int n)
{
	int k = snprintf(out + *o, cap - *o, "%s%s%.*s", *o ? "," : "", prefix, n, (const char *)s);

	if (k > 0)
		*o = (size_t)k + *o >= cap ? cap - 1 : *o + (size_t)k;
}

static int cert_revoked(STACK_OF(X509_OBJECT) *objs, X509 *x, char *detail, size_t cap)
{
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
		X509_REVOKED *rv = NULL;
		char *serial;

		if (!crl || X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(x)) != 0)
			continue;
		if (X509_CRL_get0_by_cert(crl, &rv, x) != 1)
			continue;
		serial = i2s_ASN1_INTEGER(NULL, X509_get0_serialNumber(x));
		snprintf(detail, cap, "serial %s revoked by a CRL now in force", serial ? serial : "?");
		OPENSSL_free(serial);
		return 1;
	}
	return 0;
}

/* What the peer of @ssl presented above its leaf: the chain it sent (the
 * server side keeps it without the leaf), else what a resumed session's
 * ticket kept. A new stack of new references, or NULL. */
static STACK_OF(X509) *peer_untrusted(SSL *ssl)
{
	STACK_OF(X509) *sent = SSL_get_peer_cert_chain(ssl);
	STACK_OF(X509) *out;

	if (!sent || sk_X509_num(sent) == 0)
		return ticket_chain(ssl);
	out = sk_X509_new_null();
	if (out && !X509_add_certs(out, sent, X509_ADD_FLAG_UP_REF)) {
		sk_X509_pop_free(out, X509_free);
		out = NULL;
	}
	return out;
}

enum zg_reason zg_tls_rejudge(SSL *ssl, SSL_CTX *ctx, const char *server_name, char *detail,
			      size_t cap)
{
	const struct tls_policy *tp = SSL_CTX_get_ex_data(ctx, ctx_policy_index());
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	struct zg_policy_params pp = {0};
	const struct zg_policy_finding *f;
	struct zg_certcheck cc;
	STACK_OF(X509) *untrusted;
	enum zg_reason r = ZG_R_OK;
	int rc;

	if (!tp || !leaf) {
		snprintf(detail, cap, "no %s to judge again", leaf ? "policy" : "peer certificate");
		return ZG_R_TLS_UNTRUSTED;
	}
	pp.profile = &tp->prof.p;
	pp.role = SSL_is_server(ssl) ? ZG_ROLE_CLIENT : ZG_ROLE_SERVER;
	pp.now = time(NULL);
	pp.clock_skew_s = tp->clock_skew_s;
	pp.max_depth = (unsigned)SSL_CTX_get_verify_depth(ctx);
	untrusted = peer_untrusted(ssl);
	/* the store's CRL flags apply: revocation is judged by the verifier */
	rc = zg_certcheck_run(leaf, untrusted, SSL_CTX_get_cert_store(ctx), &pp, server_name, &cc);
	if (rc < 0) {
		snprintf(detail, cap, "out of memory judging the chain again");
		r = ZG_R_NO_MEMORY;
	} else if (rc > 0 && (f = zg_policy_first_failure(&cc.v)) != NULL) {
		snprintf(detail, cap, "under the rules reloaded during the handshake: %s", f->detail);
		r = f->reason;
	} else if (rc > 0) {
		snprintf(detail, cap, "under the rules reloaded during the handshake");
		r = ZG_R_TLS_UNTRUSTED;
	}
	zg_certcheck_clear(&cc);
	sk_X509_pop_free(untrusted, X509_free);
	ERR_clear_error();
	return r;
}

int zg_tls_peer_revoked(SSL *ssl, SSL_CTX *ctx, char *detail, size_t cap)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_OBJECT) *objs;
	STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
	STACK_OF(X509) *sent = SSL_get_peer_cert_chain(ssl);
	STACK_OF(X509) *kept = chain ? NULL : ticket_chain(ssl);
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	int revoked = 0;

	/* other workers' lookups sort the object stack in place under the lock */
	if (!X509_STORE_lock(store)) {
		sk_X509_pop_free(kept, X509_free);
		return 0;
	}
	objs = X509_STORE_get0_objects(store);
	if (objs && chain) {
		for (int i = 0; i < sk_X509_num(chain) && !revoked; i++)
			revoked = cert_revoked(objs, sk_X509_value(chain, i), detail, cap);
	} else if (objs) {
		/* a resumed session keeps no verified chain: the leaf, what the
		 * peer sent if the session kept it (cache), and the chain its
		 * ticket carries (tickets) */
		revoked = leaf && cert_revoked(objs, leaf, detail, cap);
		for (int i = 0; sent && i < sk_X509_num(sent) && !revoked; i++)
			revoked = cert_revoked(objs, sk_X509_value(sent, i), detail, cap);
		for (int i = 0; kept && i < sk_X509_num(kept) && !revoked; i++)
			revoked = cert_revoked(objs, sk_X509_value(kept, i), detail, cap);
	}
	X509_STORE_unlock(store);
	sk_X509_pop_free(kept, X509_free);
	ERR_clear_error();
	return revoked;
}

static void append_ip(char *out, size_t cap, size_t *o, const ASN1_OCTET_STRING *ip)
{
	char text[INET6_ADDRSTRLEN];

	if (ip->length == 4 && inet_ntop(AF_INET, ip->data, text, sizeof(text)))
		append(out, cap, o, "IP:", (const unsigned char *)text, (int)strlen(text));
	else if (ip->length == 16 && inet_ntop(AF_INET6, ip->data, text, sizeof(text)))
		append(out, cap, o, "IP:", (const unsigned char *)text, (int)strlen(text));
}

void zg_tls_peer_identity(SSL *ssl, char *subject, size_t scap, char *sans, size_t ncap)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	GENERAL_NAMES *names;
	BIO *b;
	size_t o = 0;
	int n;

	subject[0] = '\0';
	sans[0] = '\0';
	if (!peer)
		return;
	b = BIO_new(BIO_s_mem());
	if (b) {
		if (X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
			n = BIO_read(b, subject, (int)scap - 1);
			subject[n > 0 ? n : 0] = '\0';
		}
		BIO_free(b);
	}
	names = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type == GEN_DNS)
			append(sans, ncap, &o, "DNS:", gn->d.dNSName->data, gn->d.dNSName->length);
		else if (gn->type == GEN_URI)
			append(sans, ncap, &o, "URI:", gn->d.uniformResourceIdentifier->data,
			       gn->d.uniformResourceIdentifier->length);
		else if (gn->type == GEN_IPADD)
			append_ip(sans, ncap, &o, gn->d.iPAddress);
	}
	GENERAL_NAMES_free(names);
	ERR_clear_error();
}
