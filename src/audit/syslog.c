/* audit_syslog.c - see audit_syslog.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "audit/msg.h"
#include "audit/syslog.h"
#include "policy/profile.h"

#define BATCH_BUF (ZG_AUDIT_XML_MAX + 1024) /* one framed message */
#define ADDRS_MAX 4          /* collector addresses kept from a resolution */
#define RESOLVE_EVERY_MS 60000 /* re-resolve a name this often, in the background */

/* A name being resolved by getaddrinfo_a. On the heap, apart from the
 * sink: a lookup that cannot be cancelled at free is left to finish with
 * its memory intact. */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char host[ZG_AUDIT_HOSTPORT_MAX];
	char port[8];
};

struct addrs {
	struct sockaddr_storage ss[ADDRS_MAX];
	socklen_t len[ADDRS_MAX];
	int family[ADDRS_MAX];
	unsigned n;
	struct timespec at; /* when resolved */
};

struct zg_syslog {
	enum zg_audit_transport transport;
	char host[ZG_AUDIT_HOSTPORT_MAX];
	char port[8];
	char server_name[ZG_AUDIT_HOSTPORT_MAX];
	char hostname[256];
	unsigned timeout_ms;
	unsigned ack_wait_ms;
	unsigned procid;
	SSL_CTX *ctx;
	char *buf; /* BATCH_BUF */
	char *msg; /* one formatted message */

	/* the connection whose confirmation is awaited (fd >= 0) */
	int fd;
	SSL *ssl;
	uint64_t written;     /* bytes the kernel accepted, handshake included */
	uint64_t end[256];    /* stream offset after each record */
	size_t n, sent;       /* records in flight / written completely */
	int tls_ok;           /* all written and close_notify sent: read replies via TLS */
	struct timespec deadline;
	char write_err[256];  /* why writing stopped early, if it did */

	int peer_alert;       /* the fatal TLS alert the collector sent, -1 if none */
	uint64_t hs_end;      /* bytes written by the end of our handshake */

	struct lookup *lk;    /* resolution in progress, or NULL */
	struct addrs cache[2]; /* last good answer, per socket type: [0] stream, [1] dgram */
	int stale;            /* a connect to the cached addresses failed: re-resolve */
};

static void close_flight(struct zg_syslog *s);
static void end_lookup(struct zg_syslog *s);

static size_t printable_prefix(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n] > 0x20 && s[n] < 0x7f)
		n++;
	return n;
}

int zg_syslog_format(char *out, size_t cap, int64_t ts_ns, const char *hostname, unsigned procid,
		     uint64_t seq, const char *msg, size_t len)
{
	char ts[32];
	size_t hn = printable_prefix(hostname, 255);
	int k;

	if (zg_audit_fmt_time(ts_ns, ts, sizeof(ts)) < 0)
		return -1;
	/* RFC 5424 7.3.1: sequenceId runs 1..2147483647 and then wraps */
	k = snprintf(out, cap, "<%d>1 %s %.*s zonegate %u %s [meta sequenceId=\"%" PRIu64 "\"] \xef\xbb\xbf",
		     ZG_SYSLOG_PRI, ts, (int)(hn ? hn : 1), hn ? hostname : "-", procid,
		     ZG_SYSLOG_MSGID, (seq - 1) % 2147483647u + 1);
	if (k < 0 || (size_t)k + len >= cap)
		return -1;
	memcpy(out + k, msg, len);
	out[(size_t)k + len] = '\0';
	return k + (int)len;
}

int zg_syslog_sendable(const struct zg_spool_rec *r)
{
	char ts[32];

	return r->len <= ZG_AUDIT_XML_MAX && zg_audit_fmt_time(r->ts_ns, ts, sizeof(ts)) > 0;
}

static int split_target(struct zg_syslog *s, const char *t, const char *def_port)
{
	const char *colon;
	size_t hl;

	if (t[0] == '[') {
		const char *rb = strchr(t, ']');
		if (!rb || (rb[1] != '\0' && rb[1] != ':'))
			return -1;
		hl = (size_t)(rb - t - 1);
		colon = rb[1] == ':' ? rb + 1 : NULL;
		t++;
	} else {
		colon = strrchr(t, ':');
		if (colon && strchr(t, ':') != colon)
			return -1; /* bare IPv6 needs brackets */
		hl = colon ? (size_t)(colon - t) : strlen(t);
	}
	if (hl == 0 || hl >= sizeof(s->host))
		return -1;
	memcpy(s->host, t, hl);
	s->host[hl] = '\0';
	snprintf(s->port, sizeof(s->port), "%s", colon ? colon + 1 : def_port);
	if (s->port[0] == '\0' || strspn(s->port, "0123456789") != strlen(s->port) ||
	    strtoul(s->port, NULL, 10) == 0 || strtoul(s->port, NULL, 10) > 65535)
		return -1;
	return 0;
}

static int ssl_fail(char *why, size_t cap, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[200];

	ERR_error_string_n(e, buf, sizeof(buf));
	/* a cut message is still a message */
	if (snprintf(why, cap, "%s: %s", what, e ? buf : "failed") >= (int)cap)
		why[cap - 1] = '\0';
	ERR_clear_error();
	return -1;
}

/* Send the intermediates in @path after our certificate. */
static int add_chain(SSL_CTX *ctx, const char *path)
{
	BIO *in = BIO_new_file(path, "r");
	X509 *x;
	int n = 0, rc = 0;

	if (!in)
		return -1;
	while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
		if (SSL_CTX_add1_chain_cert(ctx, x) != 1)
			rc = -1;
		X509_free(x);
		n++;
	}
	BIO_free(in);
	ERR_clear_error(); /* the end of the file reads as an error */
	return n > 0 ? rc : -1;
}

static int build_ctx(struct zg_syslog *s, const struct zg_audit_conf *c, EVP_PKEY *key, char *why,
		     size_t cap)
{
	const struct zg_profile *p = zg_profile_find(c->profile[0] ? c->profile : "bcp195");

	if (!p) {
		snprintf(why, cap, "unknown TLS profile '%s'", c->profile);
		return -1;
	}
	s->ctx = SSL_CTX_new(TLS_client_method());
	if (!s->ctx)
		return ssl_fail(why, cap, "SSL_CTX_new");
	if (zg_profile_apply(s->ctx, p, why, cap) != 0)
		return -1;
	/* the collector closing without close_notify is our normal ack (rsyslog) */
	SSL_CTX_set_options(s->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
	if (!c->ca[0] || SSL_CTX_load_verify_locations(s->ctx, c->ca, NULL) != 1)
		return ssl_fail(why, cap, c->ca[0] ? c->ca : "audit ca not set");
	if (!c->certificate[0] || !c->key[0]) {
		snprintf(why, cap, "audit syslog over TLS needs a client certificate and key");
		return -1;
	}
	if (SSL_CTX_use_certificate_chain_file(s->ctx, c->certificate) != 1)
		return ssl_fail(why, cap, c->certificate);
	if (c->chain[0] && add_chain(s->ctx, c->chain) != 0)
		return ssl_fail(why, cap, c->chain);
	if (key ? SSL_CTX_use_PrivateKey(s->ctx, key) != 1
		: SSL_CTX_use_PrivateKey_file(s->ctx, c->key, SSL_FILETYPE_PEM) != 1)
		return ssl_fail(why, cap, c->key);
	if (SSL_CTX_check_private_key(s->ctx) != 1)
		return ssl_fail(why, cap, "audit key does not match certificate");
	return 0;
}

struct zg_syslog *zg_syslog_new(const struct zg_audit_conf *c, const char *hostname, EVP_PKEY *key,
				char *why, size_t cap)
{
	struct zg_syslog *s = calloc(1, sizeof(*s));

	if (!s || !(s->buf = malloc(BATCH_BUF)) || !(s->msg = malloc(ZG_AUDIT_XML_MAX + 512))) {
		snprintf(why, cap, "out of memory");
		goto fail;
	}
	s->transport = c->transport;
	s->fd = -1;
	s->timeout_ms = c->io_timeout_ms ? c->io_timeout_ms : 5000;
	s->ack_wait_ms = c->ack_timeout_ms ? c->ack_timeout_ms : 60000;
	s->procid = (unsigned)getpid();
	snprintf(s->hostname, sizeof(s->hostname), "%s", hostname);
	if (split_target(s, c->syslog_target, c->transport == ZG_AUDIT_UDP ? "514" : "6514") != 0) {
		snprintf(why, cap, "syslog_target '%s': expected host:port or [v6]:port",
			 c->syslog_target);
		goto fail;
	}
	snprintf(s->server_name, sizeof(s->server_name), "%s",
		 c->server_name[0] ? c->server_name : s->host);
	if (s->transport == ZG_AUDIT_TLS && build_ctx(s, c, key, why, cap) != 0)
		goto fail;
	return s;
fail:
	zg_syslog_free(s);
	return NULL;
}

void zg_syslog_free(struct zg_syslog *s)
{
	if (!s)
		return;
	close_flight(s);
	end_lookup(s);
	SSL_CTX_free(s->ctx);
	free(s->buf);
	free(s->msg);
	free(s);
}

static int64_t ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Take a finished lookup's answer into @c. 0 = an answer, -1 = failed. */
static int harvest(struct zg_syslog *s, struct addrs *c, char *why, size_t cap)
{
	int rc = gai_error(&s->lk->cb);
	struct addrinfo *ai;

	if (rc != 0) {
		snprintf(why, cap, "%s: %s", s->host, gai_strerror(rc));
	} else {
		c->n = 0;
		for (ai = s->lk->cb.ar_result; ai && c->n < ADDRS_MAX; ai = ai->ai_next) {
			if (ai->ai_addrlen > sizeof(c->ss[0]))
				continue;
			memcpy(&c->ss[c->n], ai->ai_addr, ai->ai_addrlen);
			c->len[c->n] = ai->ai_addrlen;
			c->family[c->n++] = ai->ai_family;
		}
		clock_gettime(CLOCK_MONOTONIC, &c->at);
		s->stale = 0;
	}
	freeaddrinfo(s->lk->cb.ar_result);
	free(s->lk);
	s->lk = NULL;
	return rc == 0 && c->n > 0 ? 0 : -1;
}

/* Start resolving the target in the background (getaddrinfo_a). */
static int start_lookup(struct zg_syslog *s, int type, char *why, size_t cap)
{
	struct gaicb *list[1];

	s->lk = calloc(1, sizeof(*s->lk));
	if (!s->lk) {
		snprintf(why, cap, "out of memory");
		return -1;
	}
	snprintf(s->lk->host, sizeof(s->lk->host), "%s", s->host);
	snprintf(s->lk->port, sizeof(s->lk->port), "%s", s->port);
	s->lk->hints.ai_socktype = type;
	s->lk->hints.ai_flags = AI_ADDRCONFIG;
	s->lk->cb.ar_name = s->lk->host;
	s->lk->cb.ar_service = s->lk->port;
	s->lk->cb.ar_request = &s->lk->hints;
	list[0] = &s->lk->cb;
	if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
		snprintf(why, cap, "%s: cannot start resolving", s->host);
		free(s->lk);
		s->lk = NULL;
		return -1;
	}
	return 0;
}

/* Wait up to @ms for the lookup in progress. 1 if it finished. */
static int lookup_wait(struct zg_syslog *s, unsigned ms)
{
	const struct gaicb *list[1] = {&s->lk->cb};
	struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	(void)gai_suspend(list, 1, &t);
	return gai_error(&s->lk->cb) != EAI_INPROGRESS;
}

/* The collector's addresses. A name is resolved in the background: the
 * cached answer is used while a re-resolution (every minute, or after a
 * failed connect) runs; only with nothing cached is the answer waited
 * for, at most io_timeout - a hanging DNS server never holds delivery
 * longer, and never intake at all (it runs in the delivery thread). */
static struct addrs *resolve(struct zg_syslog *s, int type, char *why, size_t cap)
{
	struct addrs *c = &s->cache[type == SOCK_DGRAM];
	int have = c->n > 0;

	if (s->lk && gai_error(&s->lk->cb) != EAI_INPROGRESS &&
	    s->lk->hints.ai_socktype == type && harvest(s, c, why, cap) != 0 && !have)
		return NULL;
	if (!s->lk && (!have || s->stale || ms_since(&c->at) >= RESOLVE_EVERY_MS) &&
	    start_lookup(s, type, why, cap) != 0 && !have)
		return NULL;
	if (c->n > 0)
		return c;
	if (s->lk && lookup_wait(s, s->timeout_ms) && harvest(s, c, why, cap) == 0)
		return c;
	if (s->lk)
		snprintf(why, cap, "%s: no answer from the resolver within %u ms", s->host,
			 s->timeout_ms);
	return NULL;
}

/* Let a lookup in progress finish or cancel it; one that can be neither
 * within io_timeout is left running with its memory (see struct lookup). */
static void end_lookup(struct zg_syslog *s)
{
	if (!s->lk)
		return;
	if (gai_cancel(&s->lk->cb) == EAI_CANCELED || lookup_wait(s, s->timeout_ms)) {
		if (gai_error(&s->lk->cb) == 0)
			freeaddrinfo(s->lk->cb.ar_result);
		free(s->lk);
	}
	s->lk = NULL;
}

/* Connect @fd (non-blocking) to @sa, waiting at most @ms. 0 or -1 (errno). */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t len, unsigned ms)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int err = 0;
	socklen_t el = sizeof(err);

	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	if (poll(&p, 1, (int)ms) == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
		return -1;
	errno = err;
	return err ? -1 : 0;
}

static void set_timeouts(int fd, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	/* connect(2) honours SO_SNDTIMEO too; failures leave the default (none) */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* A socket connected to the collector, non-blocking, each address tried
 * for at most io_timeout. -1 with @why. */
static int open_socket(struct zg_syslog *s, int type, char *why, size_t cap)
{
	struct addrs *c = resolve(s, type, why, cap);
	int fd = -1;

	if (!c)
		return -1;
	for (unsigned i = 0; i < c->n; i++) {
		fd = socket(c->family[i], type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		if (connect_within(fd, (struct sockaddr *)&c->ss[i], c->len[i], s->timeout_ms) == 0)
			break;
		snprintf(why, cap, "connect %s:%s: %s", s->host, s->port,
			 errno == ETIMEDOUT ? "no answer within io_timeout" : strerror(errno));
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		s->stale = 1; /* the name may have moved: resolve again next time */
	return fd;
}

/* TLS handshake on the non-blocking s->fd, all of it within io_timeout. */
static int handshake_within(struct zg_syslog *s, char *why, size_t cap)
{
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int r = SSL_connect(s->ssl), e;
		struct pollfd p = {.fd = s->fd};
		int64_t left;

		if (r == 1)
			return 0;
		e = SSL_get_error(s->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return -1;
		left = (int64_t)s->timeout_ms - ms_since(&start);
		p.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			snprintf(why, cap, "TLS handshake with collector: no answer within %u ms",
				 s->timeout_ms);
			return 1;
		}
	}
}

static int set_peer_name(SSL *ssl, const char *name)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	unsigned char bin[16];

	if (inet_pton(AF_INET, name, bin) == 1 || inet_pton(AF_INET6, name, bin) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 0 : -1;
	if (SSL_set_tlsext_host_name(ssl, name) != 1)
		return -1;
	return SSL_set1_host(ssl, name) == 1 ? 0 : -1;
}

/* Count the bytes the kernel accepted from OpenSSL: the TCP stream offset
 * where each message ends. */
static long count_written(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
			  int ret, size_t *processed)
{
	(void)argp;
	(void)len;
	(void)argi;
	(void)argl;
	if (oper == (BIO_CB_WRITE | BIO_CB_RETURN) && ret > 0 && processed)
		*(uint64_t *)BIO_get_callback_arg(b) += *processed;
	return ret;
}

static void close_flight(struct zg_syslog *s)
{
	SSL_free(s->ssl);
	s->ssl = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	ERR_clear_error();
}

/* How many of our bytes the collector's process read, once its side has
 * ended with a FIN: everything its TCP acknowledged (bytes written minus the
 * unacknowledged rest). -1 if the end was a reset instead. */
static int64_t read_by_peer(struct zg_syslog *s, char *why, size_t cap)
{
	int outq = -1, soerr = 0;
	socklen_t sl = sizeof(soerr);

	/* EPIPE: a reset that came after the FIN (our later bytes) - harmless */
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
	    (soerr != 0 && soerr != EPIPE) || ioctl(s->fd, SIOCOUTQ, &outq) != 0 || outq < 0 ||
	    (uint64_t)outq > s->written) {
		snprintf(why, cap, "collector connection ended uncleanly (err=%d)", soerr);
		return -1;
	}
	return (int64_t)(s->written - (uint64_t)outq);
}

/* Write each record as "LEN SP MSG" in its own SSL_write; s->end[i] = stream
 * offset after record i. Sets s->sent. */
static void write_records(struct zg_syslog *s, const struct zg_spool_rec *recs, size_t n)
{
	size_t i;

	s->write_err[0] = '\0';
	for (i = 0; i < n; i++) {
		int k, m;

		m = zg_syslog_format(s->msg, ZG_AUDIT_XML_MAX + 512, recs[i].ts_ns, s->hostname,
				     s->procid, recs[i].seq, (const char *)recs[i].payload,
				     recs[i].len);
		if (m < 0) {
			snprintf(s->write_err, sizeof(s->write_err),
				 "record %" PRIu64 " does not fit a syslog message", recs[i].seq);
			break;
		}
		k = snprintf(s->buf, BATCH_BUF, "%d ", m);
		if (k < 0 || (size_t)k + (size_t)m > BATCH_BUF)
			break;
		memcpy(s->buf + k, s->msg, (size_t)m);
		/* without SSL_MODE_ENABLE_PARTIAL_WRITE this returns only when all
		 * of it reached the kernel, or fails */
		if (SSL_write(s->ssl, s->buf, k + m) != k + m) {
			ssl_fail(s->write_err, sizeof(s->write_err), "write to collector");
			break;
		}
		s->end[i] = s->written;
	}
	s->sent = i;
}

/* Remember a fatal alert from the collector (TLS 1.3 sends the one that
 * refuses our certificate after our Finished, so only a read sees it). */
static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len,
		   SSL *ssl, void *arg)
{
	const unsigned char *b = buf;
	struct zg_syslog *s = arg;

	(void)version;
	(void)ssl;
	if (!write_p && content_type == SSL3_RT_ALERT && len >= 2 && b[0] == SSL3_AL_FATAL)
		s->peer_alert = b[1];
}

/* Why a batch was not confirmed when the collector refused us: its fatal
 * alert named, or - rsyslog-gnutls refuses a peer name it does not permit
 * by closing without an alert - a close right after the handshake before
 * it read anything. 1 if @why was set. */
static int refusal_why(const struct zg_syslog *s, int64_t peer_read, char *why, size_t cap)
{
	if (s->peer_alert >= 0) {
		snprintf(why, cap, "collector rejected our certificate or connection: TLS alert "
			 "'%s' (%d)", SSL_alert_desc_string_long(s->peer_alert), s->peer_alert);
		return 1;
	}
	if (peer_read >= 0 && (uint64_t)peer_read <= s->hs_end && s->written > s->hs_end) {
		snprintf(why, cap, "collector closed right after the TLS handshake without reading "
			 "a record or sending a TLS alert: it most likely rejected our certificate "
			 "(its permitted peer names or trust anchors)");
		return 1;
	}
	return 0;
}

static int send_tls(struct zg_syslog *s, const struct zg_spool_rec *recs, size_t n, char *why,
		    size_t cap)
{
	s->written = 0;
	s->hs_end = 0;
	s->peer_alert = -1;
	s->fd = open_socket(s, SOCK_STREAM, why, cap);
	if (s->fd < 0)
		return -1;
	s->ssl = SSL_new(s->ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1 || set_peer_name(s->ssl, s->server_name) != 0) {
		ssl_fail(why, cap, "SSL setup");
		goto fail;
	}
	BIO_set_callback_ex(SSL_get_wbio(s->ssl), count_written);
	BIO_set_callback_arg(SSL_get_wbio(s->ssl), (char *)&s->written);
	SSL_set_msg_callback(s->ssl, on_msg);
	SSL_set_msg_callback_arg(s->ssl, s);
	switch (handshake_within(s, why, cap)) {
	case 0:
		break;
	case 1:
		goto fail; /* timed out, @why says so */
	default: {
		long v = SSL_get_verify_result(s->ssl);
		if (v != X509_V_OK)
			snprintf(why, cap, "collector certificate: %s", X509_verify_cert_error_string(v));
		else if (!refusal_why(s, -1, why, cap))
			ssl_fail(why, cap, "TLS handshake with collector");
		goto fail;
	}
	}
	s->hs_end = s->written;
	/* the records are written blocking, each write bounded by io_timeout */
	set_timeouts(s->fd, s->timeout_ms);
	if (fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		snprintf(why, cap, "collector socket: %s", strerror(errno));
		goto fail;
	}
	s->n = n;
	write_records(s, recs, n);
	/* close_notify asks the collector to close once it has read everything */
	s->tls_ok = s->sent == n && SSL_shutdown(s->ssl) >= 0;
	if (s->sent == n && !s->tls_ok)
		ssl_fail(s->write_err, sizeof(s->write_err), "close_notify to collector");
	/* from here on the answer is polled, never waited for */
	if (fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK) != 0)
		s->tls_ok = 0;
	return 0;
fail:
	close_flight(s);
	return -1;
}

static int send_udp(struct zg_syslog *s, const struct zg_spool_rec *recs, size_t n, char *why,
		    size_t cap)
{
	int fd = open_socket(s, SOCK_DGRAM, why, cap);

	s->n = n;
	s->sent = 0;
	s->write_err[0] = '\0';
	if (fd < 0)
		return -1;
	for (; s->sent < n; s->sent++) {
		const struct zg_spool_rec *r = &recs[s->sent];
		int m = zg_syslog_format(s->msg, ZG_AUDIT_XML_MAX + 512, r->ts_ns, s->hostname,
					 s->procid, r->seq, (const char *)r->payload, r->len);
		if (m < 0 || send(fd, s->msg, (size_t)m, 0) != m) {
			snprintf(s->write_err, sizeof(s->write_err), "udp send: %s",
				 m < 0 ? "message too long" : strerror(errno));
			break;
		}
	}
	close(fd);
	return 0;
}

int zg_syslog_send(struct zg_syslog *s, const struct zg_spool_rec *recs, size_t n, char *why,
		   size_t cap)
{
	if (s->fd >= 0 || n == 0) {
		snprintf(why, cap, n ? "a delivery is still in flight" : "nothing to send");
		return -1;
	}
	if (n > sizeof(s->end) / sizeof(s->end[0]))
		n = sizeof(s->end) / sizeof(s->end[0]);
	clock_gettime(CLOCK_MONOTONIC, &s->deadline);
	s->deadline.tv_sec += s->ack_wait_ms / 1000;
	s->deadline.tv_nsec += (long)(s->ack_wait_ms % 1000) * 1000000;
	if (s->deadline.tv_nsec >= 1000000000) {
		s->deadline.tv_sec++;
		s->deadline.tv_nsec -= 1000000000;
	}
	if (s->transport == ZG_AUDIT_UDP)
		return send_udp(s, recs, n, why, cap);
	return send_tls(s, recs, n, why, cap);
}

static int past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Settle: all records are confirmed when the collector read every byte we
 * sent, our close_notify included, before it closed - it then closed
 * because we asked, after handling what came before. A collector that
 * closed on its own after reading only part (restart, crash, shutdown) may
 * have read records without storing them (rsyslog drops what it reads
 * while shutting down, and loses its memory queue when killed), so that
 * confirms nothing: the batch is sent again, whole. */
static int settle(struct zg_syslog *s, int64_t peer_read, size_t *confirmed, char *why, size_t cap)
{
	size_t k = 0;

	while (peer_read >= 0 && k < s->sent && s->end[k] <= (uint64_t)peer_read)
		k++;
	*confirmed = peer_read >= 0 && s->sent == s->n && (uint64_t)peer_read == s->written ? s->n : 0;
	if (*confirmed < s->n && refusal_why(s, peer_read, why, cap))
		; /* a refusal, named */
	else if (*confirmed < s->n && peer_read >= 0)
		snprintf(why, cap, "%s%scollector closed after reading %zu of %zu records; resending them",
			 s->write_err, s->write_err[0] ? "; " : "", k, s->n);
	close_flight(s);
	return 0;
}

/* Read what the collector sent after our close_notify through TLS, without
 * blocking. Its own close_notify (RFC 5425 4.4: a receiver MUST reply with
 * one) or its FIN ends it: 0. -1 on a reset or TLS error, 1 if nothing yet. */
static int read_tls(struct zg_syslog *s, char *why, size_t cap)
{
	char sink[4096];

	for (;;) {
		int r = SSL_read(s->ssl, sink, sizeof(sink));
		if (r > 0)
			continue; /* session tickets are handled inside; data ignored */
		switch (SSL_get_error(s->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			ERR_clear_error();
			return 1;
		case SSL_ERROR_ZERO_RETURN: /* close_notify, or EOF (IGNORE_UNEXPECTED_EOF) */
			return 0;
		case SSL_ERROR_SYSCALL:
			if (errno == 0)
				return 0;
			snprintf(why, cap, "collector reset the connection before confirming");
			return -1;
		default:
			ssl_fail(why, cap, "collector TLS error before confirming");
			return -1;
		}
	}
}

/* The same after a failed write, when the TLS session is unusable: raw
 * bytes are dropped, only the FIN or a reset counts. */
static int read_raw(struct zg_syslog *s, char *why, size_t cap)
{
	char sink[4096];

	for (;;) {
		ssize_t k = recv(s->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (k > 0)
			continue;
		if (k == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 1;
		snprintf(why, cap, "collector reset the connection before confirming");
		return -1;
	}
}

int zg_syslog_poll(struct zg_syslog *s, unsigned wait_ms, size_t *confirmed, char *why, size_t cap)
{
	struct pollfd pfd;
	int r;

	*confirmed = 0;
	if (s->transport == ZG_AUDIT_UDP) {
		*confirmed = s->sent;
		if (s->sent < s->n)
			snprintf(why, cap, "%s", s->write_err);
		s->n = s->sent = 0;
		return 0;
	}
	if (s->fd < 0)
		return 0;
	pfd.fd = s->fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)wait_ms) < 0 && errno != EINTR)
		return settle(s, -1, confirmed, why, cap);
	r = s->tls_ok ? read_tls(s, why, cap) : read_raw(s, why, cap);
	if (r == 0)
		return settle(s, read_by_peer(s, why, cap), confirmed, why, cap);
	if (r < 0)
		return settle(s, -1, confirmed, why, cap);
	if (past(&s->deadline)) {
		/* It may still read and store what we sent: those records will
		 * come again (docs/audit.md, "not confirmed in time"). */
		snprintf(why, cap, "collector did not close within %u ms", s->ack_wait_ms);
		return settle(s, -1, confirmed, why, cap);
	}
	return 1;
}
