/* ocsp.c - see ocsp.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/clock.h"
#include "base/log.h"
#include "policy/certcheck.h"
#include "tls/http.h"
#include "tls/ocsp.h"

#define BODY_MAX (64u * 1024u)      /* an OCSP response for one certificate is < 4 KiB */
#define STAPLE_FILE_MAX BODY_MAX
#define HOLD_MAX_S 3600             /* re-ask at least hourly, whatever nextUpdate says */
#define HOLD_NO_NEXT_S 300          /* an answer without nextUpdate */
#define HOLD_FAILED_S 10            /* a query that failed: ask again after this */
#define BACKOFF_MIN_MS 5000u        /* staple fetch: first retry after a failure */

enum { E_EMPTY, E_PENDING, E_FLIGHT, E_DONE }; /* queued, asked now, answered */

/* One certificate's answer, or its query waiting for the fetch thread. */
struct entry {
	int state;
	unsigned char key[SHA256_DIGEST_LENGTH]; /* SHA-256 of the DER CertID */
	enum zg_reason verdict;                   /* E_DONE */
	char detail[120];
	time_t hold_until;                        /* E_DONE: answer good until then */
	uint64_t used_ms;                         /* for eviction */
	X509 *cert, *issuer;                      /* E_PENDING: what to ask about */
	char url[ZG_PATH_MAX];
};

#define STAPLE_JOBS_MAX (1 + ZG_IDENTITIES_MAX) /* [tls] and each [identity] */

/* One identity's staple fetch ([tls] or [identity] ocsp_staple_url): our
 * certificate and its issuer, read when the job was configured. */
struct staple_job {
	char name[ZG_NAME_MAX];
	char file[ZG_PATH_MAX], url[ZG_PATH_MAX];
	X509 *leaf, *issuer;
	uint64_t interval_ms, due_ms;
	unsigned failures;
};

struct zg_ocsp {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	atomic_int stop; /* also read by a query in flight, without the lock */
	struct entry *cache; /* ZG_OCSP_CACHE_MAX */
	struct staple_job jobs[STAPLE_JOBS_MAX];
	unsigned n_jobs;
	zg_ocsp_changed_fn *changed;
	void *arg;
};

/* Ask @url about @cert (issued by @issuer) by POST (RFC 6960 A.1); the DER
 * answer in @b; a non-zero @stop aborts it. No nonce: answers are cached
 * and shared, and many responders precompute them. */
static int query(const char *url, X509 *cert, X509 *issuer, const atomic_int *stop,
		 struct zg_http_body *b, char *why, size_t cap)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, cert, issuer);
	unsigned char *der = NULL;
	int n = -1, rc = -1;

	if (!req || !id || !OCSP_request_add0_id(req, id)) {
		OCSP_CERTID_free(id);
		snprintf(why, cap, "out of memory");
		goto out;
	}
	if ((n = i2d_OCSP_REQUEST(req, &der)) <= 0) {
		snprintf(why, cap, "cannot encode the request");
		goto out;
	}
	struct zg_http_req r = {.url = url, .timeout_ms = ZG_OCSP_TIMEOUT_MS, .max_bytes = BODY_MAX,
				.post = der, .post_len = (size_t)n,
				.content_type = "application/ocsp-request",
				.accept = "application/ocsp-response", .stop = stop};
	rc = zg_http_fetch(&r, b, why, cap);
out:
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	ERR_clear_error();
	return rc;
}

/* The first http(s) OCSP URL of @cert's Authority Information Access. */
static int aia_url(X509 *cert, char *out, size_t cap)
{
	STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(cert);
	int found = 0;

	for (int i = 0; urls && i < sk_OPENSSL_STRING_num(urls) && !found; i++) {
		const char *u = sk_OPENSSL_STRING_value(urls, i);
		if ((strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
		    strlen(u) < cap) {
			snprintf(out, cap, "%s", u);
			found = 1;
		}
	}
	X509_email_free(urls);
	return found;
}

/* ---- the cache -------------------------------------------------------------- */

/* The cache key of @cert under @issuer: SHA-256 of its DER CertID. */
static int cert_key(X509 *cert, X509 *issuer, unsigned char key[SHA256_DIGEST_LENGTH])
{
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, cert, issuer);
	unsigned char *der = NULL;
	int n = id ? i2d_OCSP_CERTID(id, &der) : -1;
	int ok = n > 0 && SHA256(der, (size_t)n, key) != NULL;

	OPENSSL_free(der);
	OCSP_CERTID_free(id);
	return ok ? 0 : -1;
}

static void entry_clear(struct entry *e)
{
	X509_free(e->cert);
	X509_free(e->issuer);
	memset(e, 0, sizeof(*e));
}

/* The entry for @key, or a slot for it: an empty one, else the least
 * recently used answer (a pending query is never dropped). Lock held. */
static struct entry *slot_for(struct zg_ocsp *o, const unsigned char *key, int *found)
{
	struct entry *free_e = NULL, *lru = NULL;

	*found = 0;
	for (unsigned i = 0; i < ZG_OCSP_CACHE_MAX; i++) {
		struct entry *e = &o->cache[i];
		if (e->state == E_EMPTY) {
			if (!free_e)
				free_e = e;
			continue;
		}
		if (memcmp(e->key, key, sizeof(e->key)) == 0) {
			*found = 1;
			return e;
		}
		if (e->state == E_DONE && (!lru || e->used_ms < lru->used_ms))
			lru = e;
	}
	if (free_e)
		return free_e;
	if (lru)
		entry_clear(lru);
	return lru;
}

/* Look the answer for @cert up; on a miss (or an answer past its hold),
 * queue a query to @url. 1 with the verdict, 0 pending. */
static int cache_lookup(struct zg_ocsp *o, X509 *cert, X509 *issuer, const char *url,
			enum zg_reason *verdict, char *detail, size_t cap)
{
	unsigned char key[SHA256_DIGEST_LENGTH];
	struct entry *e;
	int found, rc = 0;

	if (cert_key(cert, issuer, key) < 0) {
		*verdict = ZG_R_CERT_OCSP_UNAVAILABLE;
		snprintf(detail, cap, "cannot compute the certificate's OCSP id");
		return 1;
	}
	pthread_mutex_lock(&o->lock);
	e = slot_for(o, key, &found);
	if (!e) { /* every slot is a pending query */
		*verdict = ZG_R_CERT_OCSP_UNAVAILABLE;
		snprintf(detail, cap, "too many OCSP queries waiting");
		rc = 1;
	} else if (found && e->state == E_DONE && time(NULL) < e->hold_until) {
		e->used_ms = zg_now_ms();
		*verdict = e->verdict;
		snprintf(detail, cap, "%s", e->detail);
		rc = 1;
	} else if (!found || e->state == E_DONE) {
		entry_clear(e);
		memcpy(e->key, key, sizeof(key));
		snprintf(e->url, sizeof(e->url), "%s", url);
		if (X509_up_ref(cert) == 1 && X509_up_ref(issuer) == 1) {
			e->cert = cert;
			e->issuer = issuer;
			e->state = E_PENDING;
			pthread_cond_signal(&o->wake);
		} else {
			memset(e, 0, sizeof(*e)); /* up_ref cannot fail for a live X509 */
		}
	}
	pthread_mutex_unlock(&o->lock);
	return rc;
}

/* How long to keep the verdict @r judged with @next_update at @now. */
static time_t hold_until(enum zg_reason r, time_t next_update, time_t now)
{
	if (r == ZG_R_CERT_OCSP_UNAVAILABLE)
		return now + HOLD_FAILED_S;
	if (!next_update)
		return now + HOLD_NO_NEXT_S;
	return next_update < now + HOLD_MAX_S ? next_update : now + HOLD_MAX_S;
}

/* Answer one pending query (the lock is released meanwhile). Lock held. */
static void run_query(struct zg_ocsp *o, struct entry *e)
{
	unsigned char key[SHA256_DIGEST_LENGTH];
	char url[ZG_PATH_MAX], detail[120], q[160];
	X509 *cert = e->cert, *issuer = e->issuer;
	struct zg_http_body b = {0};
	time_t next = 0, now;
	enum zg_reason r;
	int found;

	memcpy(key, e->key, sizeof(key));
	snprintf(url, sizeof(url), "%s", e->url);
	e->cert = e->issuer = NULL;
	e->state = E_FLIGHT;
	pthread_mutex_unlock(&o->lock);
	if (query(url, cert, issuer, &o->stop, &b, detail, sizeof(detail)) < 0)
		r = ZG_R_CERT_OCSP_UNAVAILABLE;
	else
		r = zg_ocsp_judge(b.p, b.len, cert, issuer, time(NULL), &next, detail, sizeof(detail));
	now = time(NULL);
	zg_info("event=ocsp_query url=%s result=%s detail=%s", url,
		r == ZG_R_OK ? "good" : zg_reason_code(r), zg_log_quote(q, sizeof(q), detail));
	free(b.p);
	X509_free(cert);
	X509_free(issuer);
	pthread_mutex_lock(&o->lock);
	e = slot_for(o, key, &found);
	if (e && found) {
		e->state = E_DONE;
		e->verdict = r;
		snprintf(e->detail, sizeof(e->detail), "%s", detail);
		e->hold_until = hold_until(r, next, now);
		e->used_ms = zg_now_ms();
	}
}

/* ---- stapling ---------------------------------------------------------------- */

/* The certificates of PEM file @path appended to @sk (a missing path adds
 * none). -1 if it cannot be read or holds none. */
static int load_certs(STACK_OF(X509) *sk, const char *path)
{
	char why[ZG_PATH_MAX + 64];

	return !path[0] || zg_certcheck_load_pem(sk, path, why, sizeof(why)) > 0 ? 0 : -1;
}

/* The certificate of identity @id (the first of its file) and its issuer,
 * found among the rest of that file, its chain and the anchors of every
 * store of @c. 0 with two references, -1. */
static int leaf_and_issuer(const struct zg_conf *c, const struct zg_conf_identity *id, X509 **leaf,
			   X509 **issuer)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	int rc = -1;

	*leaf = *issuer = NULL;
	if (!sk || load_certs(sk, id->certificate) < 0 || sk_X509_num(sk) < 1 ||
	    load_certs(sk, id->chain) < 0 || load_certs(sk, c->tls_trust.trust_anchors) < 0)
		goto out;
	for (unsigned i = 0; i < c->n_trusts; i++)
		if (load_certs(sk, c->trusts[i].trust_anchors) < 0)
			goto out;
	for (int i = 1; i < sk_X509_num(sk); i++) {
		X509 *x = sk_X509_value(sk, i);
		if (X509_check_issued(x, sk_X509_value(sk, 0)) == X509_V_OK) {
			*issuer = x;
			break;
		}
	}
	if (!*issuer)
		goto out;
	*leaf = sk_X509_value(sk, 0);
	X509_up_ref(*leaf);
	X509_up_ref(*issuer);
	rc = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

/* The file @path whole, at most STAPLE_FILE_MAX bytes; NULL if unreadable. */
static unsigned char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	unsigned char *buf = NULL;
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > (off_t)STAPLE_FILE_MAX || !(buf = malloc((size_t)st.st_size)))
		goto fail;
	n = read(fd, buf, (size_t)st.st_size);
	if (n != st.st_size)
		goto fail;
	close(fd);
	*len = (size_t)n;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* What a server context staples: the DER answer and until when. */
struct staple {
	unsigned char *der;
	size_t len;
	time_t next_update; /* 0: none given */
};

static int staple_index = -1;
static pthread_once_t staple_once = PTHREAD_ONCE_INIT;

static void free_staple(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct staple *s = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (s) {
		free(s->der);
		free(s);
	}
}

/* Written once, before any worker exists; a constant afterwards. */
static void staple_index_init(void)
{
	staple_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_staple);
}

/* The status_request callback of a server context: staple the answer
 * while it is fresh, else nothing (a stale staple would make a strict
 * client refuse us: better none). */
static int status_cb(SSL *ssl, void *arg)
{
	const struct staple *s = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), staple_index);
	unsigned char *copy;

	(void)arg;
	if (!s || (s->next_update && time(NULL) > s->next_update))
		return SSL_TLSEXT_ERR_NOACK;
	if (!(copy = OPENSSL_memdup(s->der, s->len)))
		return SSL_TLSEXT_ERR_NOACK;
	if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)s->len) != 1) {
		OPENSSL_free(copy);
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}

/* Judge @der for identity @id's certificate now; ZG_R_OK with its nextUpdate. */
static enum zg_reason judge_own(const struct zg_conf *c, const struct zg_conf_identity *id,
				const unsigned char *der, size_t len, time_t *next, char *detail,
				size_t cap)
{
	X509 *leaf, *issuer;
	enum zg_reason r;

	if (leaf_and_issuer(c, id, &leaf, &issuer) < 0) {
		snprintf(detail, cap, "the issuer of our certificate is in neither its chain nor "
				      "any trust_anchors");
		return ZG_R_CERT_OCSP_UNAVAILABLE;
	}
	r = zg_ocsp_judge(der, len, leaf, issuer, time(NULL), next, detail, cap);
	X509_free(leaf);
	X509_free(issuer);
	return r;
}

/* The staple of @id's file into @ctx if it is good now; else a log line. */
static int staple_load(SSL_CTX *ctx, const struct zg_conf *c, const struct zg_conf_identity *id,
		       struct zg_errlist *errs)
{
	char detail[160], q[200];
	struct staple *s;
	enum zg_reason r;
	unsigned char *der;
	size_t len = 0;
	time_t next = 0;

	errno = 0;
	if (!(der = read_file(id->ocsp_staple_file, &len))) {
		/* the fetch writes it; until then there is nothing to staple */
		if (id->ocsp_staple_url[0])
			zg_info("event=ocsp_staple result=none identity=%s file=%s "
				"detail=\"not fetched yet\"", id->name, id->ocsp_staple_file);
		else
			zg_warn("event=ocsp_staple result=refused identity=%s file=%s detail=\"%s\"",
				id->name, id->ocsp_staple_file,
				errno ? strerror(errno) : "empty or too large");
		return 0;
	}
	r = judge_own(c, id, der, len, &next, detail, sizeof(detail));
	if (r != ZG_R_OK) {
		zg_warn("event=ocsp_staple result=refused identity=%s file=%s reason=%s detail=%s",
			id->name, id->ocsp_staple_file, zg_reason_code(r),
			zg_log_quote(q, sizeof(q), detail));
		free(der);
		return 0;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		free(der);
		goto oom;
	}
	s->der = der;
	s->len = len;
	s->next_update = next;
	if (SSL_CTX_set_ex_data(ctx, staple_index, s) != 1) {
		free_staple(NULL, s, NULL, 0, 0, NULL);
		goto oom;
	}
	zg_debug("event=ocsp_staple result=stapled identity=%s file=%s", id->name,
		 id->ocsp_staple_file);
	return 0;
oom:
	zg_errlist_add(errs, c->path, id->line_ocsp_staple_file, "ocsp_staple_file", "out of memory");
	return -1;
}

int zg_ocsp_staple_attach(SSL_CTX *ctx, const struct zg_conf *c, const struct zg_conf_route *r,
			  struct zg_errlist *errs)
{
	const struct zg_conf_identity *id = zg_route_identity(c, r, 0);

	if (!id->ocsp_staple_file[0])
		return 0;
	pthread_once(&staple_once, staple_index_init);
	if (staple_index < 0 || SSL_CTX_set_tlsext_status_cb(ctx, status_cb) != 1) {
		zg_errlist_add(errs, c->path, id->line_ocsp_staple_file, "ocsp_staple_file",
			       "cannot set the status callback");
		return -1;
	}
	return staple_load(ctx, c, id, errs);
}

void zg_ocsp_client_ctx(SSL_CTX *ctx, const struct zg_conf_trust *t)
{
	if (t->ocsp != ZG_OCSP_OFF)
		SSL_CTX_set_tlsext_status_type(ctx, TLSEXT_STATUSTYPE_ocsp);
}

/* @der as the staple file: written, synced, renamed. 0 or -1 with why. */
static int replace_file(const char *path, const unsigned char *der, size_t len, char *why,
			size_t cap)
{
	char tmp[ZG_PATH_MAX + 8];
	int fd, ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(why, cap, "path too long");
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(why, cap, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	ok = write(fd, der, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		snprintf(why, cap, "cannot replace %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* One staple fetch of @j. 0 replaced (*next set), -1 failed with why. */
static int staple_fetch(struct zg_ocsp *o, const struct staple_job *j, time_t *next, char *why,
			size_t cap)
{
	struct zg_http_body b = {0};
	char url[ZG_PATH_MAX], d[160];
	enum zg_reason r;
	int rc = -1;

	if (strcmp(j->url, "aia") != 0)
		snprintf(url, sizeof(url), "%s", j->url);
	else if (!aia_url(j->leaf, url, sizeof(url))) {
		snprintf(why, cap, "our certificate names no OCSP responder (AIA)");
		return -1;
	}
	if (query(url, j->leaf, j->issuer, &o->stop, &b, why, cap) < 0)
		goto out;
	r = zg_ocsp_judge(b.p, b.len, j->leaf, j->issuer, time(NULL), next, d, sizeof(d));
	if (r != ZG_R_OK) {
		snprintf(why, cap, "%s: %s", zg_reason_code(r), d);
		goto out;
	}
	rc = replace_file(j->file, b.p, b.len, why, cap);
out:
	free(b.p);
	return rc;
}

/* When to fetch again: the interval, or halfway to nextUpdate if sooner;
 * after a failure a back-off doubling from 5 s up to the interval. */
static uint64_t staple_next_due(struct staple_job *j, int failed, time_t next, uint64_t now_ms)
{
	uint64_t wait = j->interval_ms;
	time_t now = time(NULL);

	if (failed) {
		uint64_t b = (uint64_t)BACKOFF_MIN_MS << (j->failures < 16 ? j->failures : 16);
		j->failures++;
		return now_ms + (b < wait ? b : wait);
	}
	j->failures = 0;
	if (next > now && (uint64_t)(next - now) * 500u < wait)
		wait = (uint64_t)(next - now) * 500u;
	return now_ms + (wait < BACKOFF_MIN_MS ? BACKOFF_MIN_MS : wait);
}

static void job_clear(struct staple_job *j)
{
	X509_free(j->leaf);
	X509_free(j->issuer);
	memset(j, 0, sizeof(*j));
}

/* Is @a the job @b (same identity, file, URL, interval, certificate)? */
static int same_job(const struct staple_job *a, const struct staple_job *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->file, b->file) == 0 &&
	       strcmp(a->url, b->url) == 0 && a->interval_ms == b->interval_ms &&
	       X509_cmp(a->leaf, b->leaf) == 0;
}

/* Run the first due staple job (lock held; released during the fetch).
 * Returns when the next job is due (UINT64_MAX: no job). */
static uint64_t run_staple(struct zg_ocsp *o)
{
	char why[2 * ZG_PATH_MAX], q[2 * ZG_PATH_MAX + 8];
	uint64_t now = zg_now_ms(), soonest = UINT64_MAX;
	struct staple_job j;
	time_t next = 0;
	int rc;

	for (unsigned i = 0; i < o->n_jobs; i++) {
		if (o->jobs[i].due_ms > now) {
			soonest = o->jobs[i].due_ms < soonest ? o->jobs[i].due_ms : soonest;
			continue;
		}
		j = o->jobs[i];
		X509_up_ref(j.leaf);
		X509_up_ref(j.issuer);
		pthread_mutex_unlock(&o->lock);
		rc = staple_fetch(o, &j, &next, why, sizeof(why));
		if (rc < 0)
			zg_warn("event=ocsp_staple_fetch result=failed identity=%s url=%s failures=%u "
				"error=%s", j.name, j.url, j.failures + 1, zg_log_quote(q, sizeof(q), why));
		else
			zg_info("event=ocsp_staple_fetch result=replaced identity=%s file=%s", j.name,
				j.file);
		if (rc == 0)
			o->changed(o->arg);
		pthread_mutex_lock(&o->lock);
		/* a reload may have changed the jobs meanwhile: a changed one starts afresh */
		for (unsigned k = 0; k < o->n_jobs; k++)
			if (same_job(&o->jobs[k], &j)) {
				o->jobs[k].due_ms = staple_next_due(&o->jobs[k], rc < 0, next, zg_now_ms());
				break;
			}
		X509_free(j.leaf);
		X509_free(j.issuer);
		return 0; /* look again at once: another job may be due */
	}
	return soonest;
}

/* ---- the thread --------------------------------------------------------------- */

static void wait_until(struct zg_ocsp *o, uint64_t due_ms)
{
	uint64_t now = zg_now_ms(), wait = due_ms > now ? due_ms - now : 0;
	struct timespec ts;

	if (due_ms == UINT64_MAX) {
		pthread_cond_wait(&o->wake, &o->lock);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(wait / 1000);
	ts.tv_nsec += (long)(wait % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	(void)pthread_cond_timedwait(&o->wake, &o->lock, &ts);
}

static struct entry *next_pending(struct zg_ocsp *o)
{
	for (unsigned i = 0; i < ZG_OCSP_CACHE_MAX; i++)
		if (o->cache[i].state == E_PENDING)
			return &o->cache[i];
	return NULL;
}

static void *ocsp_main(void *arg)
{
	struct zg_ocsp *o = arg;

	pthread_mutex_lock(&o->lock);
	while (!o->stop) {
		struct entry *e = next_pending(o);
		uint64_t due;
		if (e) {
			run_query(o, e);
			continue;
		}
		due = run_staple(o);
		if (o->stop || next_pending(o))
			continue;
		if (due > zg_now_ms())
			wait_until(o, due);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

static void release(struct zg_ocsp *o)
{
	for (unsigned k = 0; k < o->n_jobs; k++)
		job_clear(&o->jobs[k]);
	for (unsigned i = 0; o->cache && i < ZG_OCSP_CACHE_MAX; i++)
		entry_clear(&o->cache[i]);
	free(o->cache);
	pthread_cond_destroy(&o->wake);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

struct zg_ocsp *zg_ocsp_start(zg_ocsp_changed_fn *changed, void *arg)
{
	struct zg_ocsp *o = calloc(1, sizeof(*o));
	pthread_condattr_t ca;

	/* once, here on the main thread: libcurl's global state is not ours to race */
	if (!o || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(o);
		goto fail;
	}
	o->changed = changed;
	o->arg = arg;
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (!(o->cache = calloc(ZG_OCSP_CACHE_MAX, sizeof(*o->cache))) ||
	    pthread_create(&o->thread, NULL, ocsp_main, o) != 0) {
		release(o);
		curl_global_cleanup();
		goto fail;
	}
	return o;
fail:
	zg_err("event=ocsp result=failed error=\"cannot start the OCSP thread\"");
	return NULL;
}

/* The staple job of identity @id of @c into @j; 0, or -1 (none to run). */
static int job_of(const struct zg_conf *c, const struct zg_conf_identity *id, struct staple_job *j)
{
	memset(j, 0, sizeof(*j));
	if (!id->ocsp_staple_url[0] || !id->ocsp_staple_file[0] || !zg_conf_identity_used(c, id))
		return -1;
	if (leaf_and_issuer(c, id, &j->leaf, &j->issuer) < 0) {
		zg_warn("event=ocsp_staple_fetch result=failed identity=%s error=\"the issuer of "
			"our certificate is in neither its chain nor any trust_anchors\"", id->name);
		return -1;
	}
	snprintf(j->name, sizeof(j->name), "%s", id->name);
	snprintf(j->file, sizeof(j->file), "%s", id->ocsp_staple_file);
	snprintf(j->url, sizeof(j->url), "%s", id->ocsp_staple_url);
	j->interval_ms = (uint64_t)id->ocsp_staple_interval_s * 1000u;
	j->due_ms = zg_now_ms(); /* a new job fetches at once */
	return 0;
}

void zg_ocsp_configure(struct zg_ocsp *o, const struct zg_conf *c)
{
	struct staple_job *next = calloc(STAPLE_JOBS_MAX, sizeof(*next));
	unsigned n = 0;

	if (!o || !next) {
		free(next);
		return;
	}
	if (job_of(c, &c->tls_identity, &next[n]) == 0)
		n++;
	for (unsigned i = 0; i < c->n_identities && n < STAPLE_JOBS_MAX; i++)
		if (job_of(c, &c->identities[i], &next[n]) == 0)
			n++;
	pthread_mutex_lock(&o->lock);
	/* the same job keeps its schedule: the reload its own fetch caused must
	 * not fetch again */
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 0; k < o->n_jobs; k++)
			if (same_job(&next[i], &o->jobs[k])) {
				next[i].due_ms = o->jobs[k].due_ms;
				next[i].failures = o->jobs[k].failures;
			}
	for (unsigned k = 0; k < o->n_jobs; k++)
		job_clear(&o->jobs[k]);
	memcpy(o->jobs, next, n * sizeof(*next));
	o->n_jobs = n;
	pthread_cond_signal(&o->wake);
	pthread_mutex_unlock(&o->lock);
	free(next);
}

void zg_ocsp_stop(struct zg_ocsp *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	o->stop = 1;
	pthread_cond_signal(&o->wake);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->thread, NULL);
	release(o);
	curl_global_cleanup();
}

/* ---- peer checks ----------------------------------------------------------------- */

/* What the peer of @ssl says about itself: its stapled answer (an
 * upstream's; clients cannot staple with OpenSSL), judged now. */
static enum zg_reason stapled(SSL *ssl, X509 *leaf, X509 *issuer, char *detail, size_t cap)
{
	const unsigned char *p = NULL;
	long n = SSL_is_server(ssl) ? -1 : SSL_get_tlsext_status_ocsp_resp(ssl, &p);
	time_t next;

	if (n <= 0 || !p)
		return ZG_R_CERT_OCSP_UNAVAILABLE;
	return zg_ocsp_judge(p, (size_t)n, leaf, issuer, time(NULL), &next, detail, cap);
}

int zg_ocsp_check_peer(struct zg_ocsp *o, SSL *ssl, const struct zg_conf_trust *r,
		       enum zg_reason *reason, int *soft_failed, char *detail, size_t cap)
{
	STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
	X509 *leaf = SSL_get0_peer_certificate(ssl), *issuer;
	char url[ZG_PATH_MAX];
	enum zg_reason judged;

	*soft_failed = 0;
	*reason = ZG_R_OK;
	if (r->ocsp == ZG_OCSP_OFF)
		return 1;
	/* a resumed session was checked at its full handshake, at most
	 * session_timeout ago, and carries no verified chain to ask with */
	if (SSL_session_reused(ssl)) {
		snprintf(detail, cap, "resumed session");
		return 1;
	}
	if (!leaf || !chain || sk_X509_num(chain) < 2) {
		judged = ZG_R_CERT_OCSP_UNAVAILABLE;
		snprintf(detail, cap, "no verified chain to find the issuer in");
		goto decide;
	}
	issuer = sk_X509_value(chain, 1);
	judged = stapled(ssl, leaf, issuer, detail, cap);
	if (judged != ZG_R_CERT_OCSP_UNAVAILABLE)
		goto decide;
	if (r->ocsp_responder[0])
		snprintf(url, sizeof(url), "%s", r->ocsp_responder);
	else if (!aia_url(leaf, url, sizeof(url))) {
		judged = ZG_R_CERT_OCSP_UNAVAILABLE;
		snprintf(detail, cap, "the certificate names no OCSP responder and the store none");
		goto decide;
	}
	if (!o) {
		judged = ZG_R_CERT_OCSP_UNAVAILABLE;
		snprintf(detail, cap, "no OCSP thread");
		goto decide;
	}
	if (!cache_lookup(o, leaf, issuer, url, &judged, detail, cap))
		return 0;
decide:
	*reason = zg_ocsp_decide(r->ocsp, judged, soft_failed);
	return 1;
}
