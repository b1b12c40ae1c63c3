/* audit_syslog.c - see audit_syslog.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "audit_msg.h"
#include "audit_syslog.h"
#include "profile.h"

#define BATCH_BUF (ZG_AUDIT_XML_MAX + 1024) /* one framed message */

struct zg_syslog {
	enum zg_audit_transport transport;
	char host[ZG_AUDIT_HOSTPORT_MAX];
	char port[8];
	char server_name[ZG_AUDIT_HOSTPORT_MAX];
	char hostname[256];
	unsigned timeout_ms;
	unsigned procid;
	SSL_CTX *ctx;
	char *buf; /* BATCH_BUF */
	char *msg; /* one formatted message */
};

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
	snprintf(why, cap, "%s: %s", what, e ? buf : "failed");
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

static int build_ctx(struct zg_syslog *s, const struct zg_audit_conf *c, char *why, size_t cap)
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
	if (SSL_CTX_use_PrivateKey_file(s->ctx, c->key, SSL_FILETYPE_PEM) != 1)
		return ssl_fail(why, cap, c->key);
	if (SSL_CTX_check_private_key(s->ctx) != 1)
		return ssl_fail(why, cap, "audit key does not match certificate");
	return 0;
}

struct zg_syslog *zg_syslog_new(const struct zg_audit_conf *c, const char *hostname, char *why,
				size_t cap)
{
	struct zg_syslog *s = calloc(1, sizeof(*s));

	if (!s || !(s->buf = malloc(BATCH_BUF)) || !(s->msg = malloc(ZG_AUDIT_XML_MAX + 512))) {
		snprintf(why, cap, "out of memory");
		goto fail;
	}
	s->transport = c->transport;
	s->timeout_ms = c->io_timeout_ms ? c->io_timeout_ms : 5000;
	s->procid = (unsigned)getpid();
	snprintf(s->hostname, sizeof(s->hostname), "%s", hostname);
	if (split_target(s, c->syslog_target, c->transport == ZG_AUDIT_UDP ? "514" : "6514") != 0) {
		snprintf(why, cap, "syslog_target '%s': expected host:port or [v6]:port",
			 c->syslog_target);
		goto fail;
	}
	snprintf(s->server_name, sizeof(s->server_name), "%s",
		 c->server_name[0] ? c->server_name : s->host);
	if (s->transport == ZG_AUDIT_TLS && build_ctx(s, c, why, cap) != 0)
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
	SSL_CTX_free(s->ctx);
	free(s->buf);
	free(s->msg);
	free(s);
}

static void set_timeouts(int fd, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	/* connect(2) honours SO_SNDTIMEO too; failures leave the default (none) */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int open_socket(struct zg_syslog *s, int type, char *why, size_t cap)
{
	struct addrinfo hints = {.ai_socktype = type, .ai_flags = AI_ADDRCONFIG}, *res = NULL, *ai;
	int fd = -1, rc;

	rc = getaddrinfo(s->host, s->port, &hints, &res);
	if (rc != 0) {
		snprintf(why, cap, "%s: %s", s->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		set_timeouts(fd, s->timeout_ms);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		snprintf(why, cap, "connect %s:%s: %s", s->host, s->port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
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

/* Read (and drop) whatever the collector sends until it closes. Returns the
 * number of our bytes its process read: all its TCP acknowledged if the
 * connection ended with a FIN, -1 if it ended with a reset or not at all. */
static int64_t collector_read(int fd, uint64_t written, char *why, size_t cap)
{
	char sink[4096];
	int outq = -1, soerr = 0;
	socklen_t sl = sizeof(soerr);

	for (;;) {
		ssize_t k = recv(fd, sink, sizeof(sink), 0);
		if (k > 0)
			continue; /* session tickets, alerts: not ours to act on */
		if (k == 0)
			break;
		if (errno == EINTR)
			continue;
		snprintf(why, cap, "collector %s before confirming",
			 errno == EAGAIN ? "did not close in time" : "reset the connection");
		return -1;
	}
	/* EPIPE: a reset that came after the FIN (our later bytes) - harmless */
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
	    (soerr != 0 && soerr != EPIPE) || ioctl(fd, SIOCOUTQ, &outq) != 0 || outq < 0 ||
	    (uint64_t)outq > written) {
		snprintf(why, cap, "collector connection ended uncleanly (err=%d)", soerr);
		return -1;
	}
	return (int64_t)(written - (uint64_t)outq);
}

/* Write each record as "LEN SP MSG" in its own SSL_write; end[i] = stream
 * offset after record i. Returns how many were written. */
static size_t write_records(struct zg_syslog *s, SSL *ssl, const struct zg_spool_rec *recs,
			    size_t n, const uint64_t *written, uint64_t *end, char *why, size_t cap)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int k, m;

		m = zg_syslog_format(s->msg, ZG_AUDIT_XML_MAX + 512, recs[i].ts_ns, s->hostname,
				     s->procid, recs[i].seq, (const char *)recs[i].payload,
				     recs[i].len);
		if (m < 0) {
			snprintf(why, cap, "record %" PRIu64 " does not fit a syslog message",
				 recs[i].seq);
			break;
		}
		k = snprintf(s->buf, BATCH_BUF, "%d ", m);
		if (k < 0 || (size_t)k + (size_t)m > BATCH_BUF)
			break;
		memcpy(s->buf + k, s->msg, (size_t)m);
		/* without SSL_MODE_ENABLE_PARTIAL_WRITE this returns only when all
		 * of it reached the kernel, or fails */
		if (SSL_write(ssl, s->buf, k + m) != k + m) {
			ssl_fail(why, cap, "write to collector");
			break;
		}
		end[i] = *written;
	}
	return i;
}

static int deliver_tls(struct zg_syslog *s, const struct zg_spool_rec *recs, size_t n,
		       size_t *confirmed, char *why, size_t cap)
{
	uint64_t written = 0, end[256];
	char scratch[256];
	size_t sent;
	int64_t read_by_peer;
	SSL *ssl = NULL;
	int fd, rc = -1;

	*confirmed = 0;
	if (n > sizeof(end) / sizeof(end[0]))
		n = sizeof(end) / sizeof(end[0]);
	fd = open_socket(s, SOCK_STREAM, why, cap);
	if (fd < 0)
		return -1;
	ssl = SSL_new(s->ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1 || set_peer_name(ssl, s->server_name) != 0) {
		ssl_fail(why, cap, "SSL setup");
		goto out;
	}
	BIO_set_callback_ex(SSL_get_wbio(ssl), count_written);
	BIO_set_callback_arg(SSL_get_wbio(ssl), (char *)&written);
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK)
			snprintf(why, cap, "collector certificate: %s", X509_verify_cert_error_string(v));
		else
			ssl_fail(why, cap, "TLS handshake with collector");
		goto out;
	}
	sent = write_records(s, ssl, recs, n, &written, end, why, cap);
	/* close_notify asks the collector to close once it has read everything */
	if (sent == n && SSL_shutdown(ssl) < 0)
		ssl_fail(why, cap, "close_notify to collector");
	read_by_peer = sent == n ? collector_read(fd, written, why, cap)
				 : collector_read(fd, written, scratch, sizeof(scratch));
	while (read_by_peer >= 0 && *confirmed < sent && end[*confirmed] <= (uint64_t)read_by_peer)
		(*confirmed)++;
	rc = *confirmed == n ? 0 : -1;
	if (rc != 0 && read_by_peer >= 0 && sent == n)
		snprintf(why, cap, "collector closed after reading %zu of %zu records", *confirmed, n);
out:
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return rc;
}

static int deliver_udp(struct zg_syslog *s, const struct zg_spool_rec *recs, size_t n,
		       size_t *confirmed, char *why, size_t cap)
{
	int fd = open_socket(s, SOCK_DGRAM, why, cap), rc = 0;

	*confirmed = 0;
	if (fd < 0)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++, *confirmed += rc == 0) {
		int m = zg_syslog_format(s->msg, ZG_AUDIT_XML_MAX + 512, recs[i].ts_ns, s->hostname,
					 s->procid, recs[i].seq, (const char *)recs[i].payload,
					 recs[i].len);
		if (m < 0 || send(fd, s->msg, (size_t)m, 0) != m) {
			snprintf(why, cap, "udp send: %s", m < 0 ? "message too long" : strerror(errno));
			rc = -1;
		}
	}
	close(fd);
	return rc;
}

int zg_syslog_deliver(struct zg_syslog *s, const struct zg_spool_rec *recs, size_t n,
		      size_t *confirmed, char *why, size_t cap)
{
	if (s->transport == ZG_AUDIT_UDP) {
		int rc = deliver_udp(s, recs, n, confirmed, why, cap);
		return rc;
	}
	return deliver_tls(s, recs, n, confirmed, why, cap);
}
