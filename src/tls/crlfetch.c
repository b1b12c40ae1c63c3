/* crlfetch.c - see crlfetch.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/pem.h>

#include "base/clock.h"
#include "base/log.h"
#include "tls/crlfetch.h"
#include "tls/http.h"
#include "policy/certcheck.h"
#include "policy/crl.h"

#define CRL_BODY_MAX (4u << 20) /* a CRL of a few hundred thousand serials; more is not a CRL */
#define BACKOFF_MIN_MS 5000u

struct job {
	struct zg_conf_crl conf;
	uint64_t due_ms;
	unsigned failures;
	STACK_OF(X509) *cas; /* who may sign this file's CRL (job_cas) */
};

struct zg_crlfetch {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	atomic_int stop; /* also read by a transfer in progress, without the lock */
	struct job *jobs;
	unsigned n_jobs;
	zg_crlfetch_changed_fn *changed;
	void *arg;
};

/* GET @j's URL into @b, given up as soon as @f is told to stop; 0, or -1
 * with the reason in @why. */
static int fetch(struct zg_crlfetch *f, const struct zg_conf_crl *j, struct zg_http_body *b,
		 char *why, size_t cap)
{
	struct zg_http_req r = {.url = j->url, .timeout_ms = j->timeout_ms, .max_bytes = CRL_BODY_MAX,
				.stop = &f->stop};

	return zg_http_fetch(&r, b, why, cap);
}

/* The first CRL in the file @path (the one in force), or NULL. */
static X509_CRL *current(const char *path)
{
	FILE *f = fopen(path, "re");
	X509_CRL *c;

	if (!f)
		return NULL;
	c = PEM_read_X509_CRL(f, NULL, NULL, NULL);
	fclose(f);
	return c;
}

/* @crl as PEM into @path: written, synced, renamed. 0 or -1 with @why. */
static int replace_file(const char *path, X509_CRL *crl, char *why, size_t cap)
{
	char tmp[ZG_PATH_MAX + 8];
	FILE *f;
	int ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(why, cap, "path too long");
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		snprintf(why, cap, "cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ok = PEM_write_X509_CRL(f, crl) == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		snprintf(why, cap, "cannot replace %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* One fetch of @j. 1 the file was replaced, 0 unchanged, -1 failed. */
static int run_job(struct zg_crlfetch *f, const struct job *j, char *why, size_t cap)
{
	struct zg_http_body b = {0};
	X509_CRL *crl = NULL, *old = NULL;
	int rc = -1, verdict;

	if (fetch(f, &j->conf, &b, why, cap) < 0)
		goto out;
	if (!(crl = zg_crl_parse(b.p, b.len))) {
		snprintf(why, cap, "not a CRL (PEM or DER)");
		goto out;
	}
	old = current(j->conf.file);
	verdict = zg_crl_judge(crl, old, j->cas, time(NULL), why, cap);
	if (verdict < 0)
		goto out;
	if (verdict == 1) {
		rc = 0;
		goto out;
	}
	rc = replace_file(j->conf.file, crl, why, cap) < 0 ? -1 : 1;
out:
	X509_CRL_free(crl);
	X509_CRL_free(old);
	free(b.p);
	return rc;
}

/* When to try @j again after @result: its interval, or a back-off that
 * doubles from 5 s up to the interval while the CA's server fails. */
static uint64_t next_due(struct job *j, int result, uint64_t now)
{
	uint64_t wait = j->conf.interval_ms;

	if (result < 0) {
		uint64_t b = (uint64_t)BACKOFF_MIN_MS << (j->failures < 16 ? j->failures : 16);
		j->failures++;
		if (b < wait)
			wait = b;
	} else {
		j->failures = 0;
	}
	return now + wait;
}

static void *fetch_main(void *arg)
{
	struct zg_crlfetch *f = arg;
	char why[2 * ZG_PATH_MAX + 64];

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		uint64_t now = zg_now_ms(), soonest = UINT64_MAX;
		for (unsigned i = 0; i < f->n_jobs && !f->stop; i++) {
			struct job *j = &f->jobs[i];
			int r;
			if (j->due_ms > now) {
				soonest = j->due_ms < soonest ? j->due_ms : soonest;
				continue;
			}
			pthread_mutex_unlock(&f->lock);
			r = run_job(f, j, why, sizeof(why));
			if (r < 0)
				zg_warn("event=crl_fetch name=%s result=failed url=%s failures=%u "
					"error=\"%s\"",
					j->conf.name, j->conf.url, j->failures + 1, why);
			else
				zg_info("event=crl_fetch name=%s result=%s file=%s", j->conf.name,
					r ? "replaced" : "unchanged", j->conf.file);
			if (r > 0)
				f->changed(f->arg);
			pthread_mutex_lock(&f->lock);
			now = zg_now_ms();
			j->due_ms = next_due(j, r, now);
			soonest = j->due_ms < soonest ? j->due_ms : soonest;
		}
		if (f->stop)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t wait = soonest > now ? soonest - now : 0;
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&f->wake, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* The CA certificates of @path appended to @cas (a missing path adds
 * none); -1 if unreadable or empty. */
static int load_cas(STACK_OF(X509) *cas, const char *path)
{
	char why[ZG_PATH_MAX + 64];

	return !path[0] || zg_certcheck_load_pem(cas, path, why, sizeof(why)) > 0 ? 0 : -1;
}

/* Whether @x is issued (name and signature) by a certificate of @cas. */
static int issued_by_one_of(X509 *x, STACK_OF(X509) *cas)
{
	for (int i = 0; i < sk_X509_num(cas); i++) {
		X509 *ca = sk_X509_value(cas, i);
		EVP_PKEY *pk = X509_get0_pubkey(ca);
		if (X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(x)) == 0 && pk &&
		    X509_verify(x, pk) == 1)
			return 1;
	}
	return 0;
}

/* Who may sign the CRL fetched into @file: the anchors of every store of
 * @c that loads @file ([tls]'s and each [trust]'s), then the intermediates
 * of our identities' chains that those anchors (or intermediates already
 * taken) issued. A CA of another trust domain never qualifies, even under
 * the same subject name, so a fetch cannot put one domain's CRL (and its
 * verdicts) into another's store. NULL if a file cannot be read. */
static STACK_OF(X509) *job_cas(const struct zg_conf *c, const char *file)
{
	STACK_OF(X509) *cas = sk_X509_new_null(), *chains = sk_X509_new_null();
	int added = 1;

	for (unsigned i = 0; cas && chains && i <= c->n_trusts; i++) {
		const struct zg_conf_trust *t = i ? &c->trusts[i - 1] : &c->tls_trust;
		for (unsigned k = 0; k < t->n_crl; k++)
			if (strcmp(t->crl[k], file) == 0 && load_cas(cas, t->trust_anchors) < 0)
				goto fail;
	}
	for (unsigned i = 0; cas && chains && i <= c->n_identities; i++)
		if (load_cas(chains, i ? c->identities[i - 1].chain : c->tls.chain) < 0)
			goto fail;
	while (cas && chains && added) {
		added = 0;
		for (int i = 0; i < sk_X509_num(chains); i++) {
			X509 *x = sk_X509_value(chains, i);
			if (!issued_by_one_of(x, cas))
				continue;
			if (!sk_X509_push(cas, x))
				goto fail;
			(void)sk_X509_delete(chains, i);
			added = 1;
			break;
		}
	}
	if (!cas || !chains)
		goto fail;
	sk_X509_pop_free(chains, X509_free);
	return cas;
fail:
	sk_X509_pop_free(chains, X509_free);
	sk_X509_pop_free(cas, X509_free);
	return NULL;
}

static void release(struct zg_crlfetch *f)
{
	pthread_cond_destroy(&f->wake);
	pthread_mutex_destroy(&f->lock);
	for (unsigned i = 0; i < f->n_jobs; i++)
		sk_X509_pop_free(f->jobs[i].cas, X509_free);
	free(f->jobs);
	free(f);
}

struct zg_crlfetch *zg_crlfetch_start(const struct zg_conf *c, zg_crlfetch_changed_fn *changed,
				      void *arg)
{
	struct zg_crlfetch *f;
	pthread_condattr_t ca;

	if (!c->n_crl_fetch)
		return NULL;
	/* once, here on the main thread: libcurl's global state is not ours to race */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(f = calloc(1, sizeof(*f))))
		goto oom;
	f->changed = changed;
	f->arg = arg;
	f->n_jobs = c->n_crl_fetch;
	if (!(f->jobs = calloc(f->n_jobs, sizeof(*f->jobs)))) {
		free(f);
		goto oom;
	}
	for (unsigned i = 0; i < f->n_jobs; i++) {
		f->jobs[i].conf = c->crl_fetch[i];
		if ((f->jobs[i].cas = job_cas(c, c->crl_fetch[i].file)) != NULL)
			continue;
		zg_err("event=crl_fetch result=failed error=\"cannot read the CA certificates\"");
		for (unsigned k = 0; k < i; k++)
			sk_X509_pop_free(f->jobs[k].cas, X509_free);
		free(f->jobs);
		free(f);
		return NULL;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&f->thread, NULL, fetch_main, f) != 0) {
		release(f);
		goto oom;
	}
	return f;
oom:
	zg_err("event=crl_fetch result=failed error=\"cannot start the fetch thread\"");
	return NULL;
}

void zg_crlfetch_stop(struct zg_crlfetch *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	release(f);
	curl_global_cleanup();
}
