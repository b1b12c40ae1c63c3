/* loadgen.c - the benchmark's load generator: one thread, non-blocking
 * epoll, OpenSSL 3 clients (or plain TCP with --plain).
 *
 * Scenarios (-s):
 *   hs        N connections, K at a time: connect, full mTLS handshake,
 *             send --size bytes (100), read them back, close_notify, close.
 *   resume    the same, each new connection resuming a session saved from
 *             an earlier one (pool of sessions, newest first).
 *   bulk      N connections, K at a time: 8-byte big-endian length L, then
 *             L = --bytes payload bytes one way to a sink backend, then
 *             wait for the peer to close (the sink closes once it has all).
 *   download  the other way: the 8-byte length L to a source backend
 *             (backend -m source), then read its L bytes and wait for its
 *             close.
 *   idle      open N connections, K at a time, handshake, one --size echo
 *             each, then hold them all; writes --ready-file when all are
 *             held and exits after --hold seconds (or on SIGTERM).
 *   pingpong  N connections at once, each --reqs round trips of --size
 *             bytes (1024); prints p50/p99 round-trip latency.
 * --client-dir DIR --clients M: connection i presents client certificate
 * DIR/%04d-chain.pem (i mod M, from 1) instead of --cert: M distinct devices.
 *
 * Prints one line of key=value results on stdout; exit status 0 only if no
 * connection failed. The figures that matter (proxy CPU and RSS) are read by
 * run.sh from /proc; this program only generates the load and checks it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define CONN_MAGIC 0x6c67636eu
#define POOL_MAX 4096
#define CHUNK (16 * 1024)

enum scen { S_HS, S_RESUME, S_BULK, S_DOWNLOAD, S_IDLE, S_PINGPONG };

enum cstate { C_CONNECTING, C_HANDSHAKE, C_SEND, C_RECV, C_BULK_SEND, C_BULK_RECV, C_WAIT_EOF, C_HELD };

struct opts {
	enum scen scen;
	const char *scen_name;
	const char *target;
	int plain;
	const char *cert, *key, *ca;
	int version;             /* TLS1_2_VERSION or TLS1_3_VERSION */
	const char *suites13, *ciphers12, *groups;
	unsigned long n, conc, size, reqs, hold_s, timeout_s;
	unsigned long long bytes;
	const char *ready_file;
	const char *client_dir;  /* --clients N: DIR/0001-chain.pem + 0001.key ... */
	unsigned long clients;
};

struct conn {
	unsigned magic;
	int fd;
	SSL *ssl;
	enum cstate st;
	size_t off;
	unsigned long reqs_done;
	uint64_t t_req;
	unsigned long idx;        /* launch order: picks the client certificate */
	unsigned long long left;  /* bulk, download: payload bytes still to send or receive */
	unsigned char hdr[8];
	size_t hdr_off;
	int want_write;
	uint32_t mask;
	struct conn *next_dead;
};

struct lg {
	struct opts o;
	SSL_CTX *ctx;
	SSL_CTX **cctx;           /* one per distinct client certificate, or NULL */
	int ep;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	unsigned long started, ok, failed, resumed, held, inflight;
	SSL_SESSION *pool[POOL_MAX];
	unsigned npool;
	uint64_t *lat;
	size_t nlat, cap_lat;
	unsigned char *msg, *rbuf;
	size_t msg_cap;
	struct conn *dead;
	uint64_t t_start, t_end;
	int ready_written;
	unsigned long errs_printed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen -s hs|resume|bulk|download|idle|pingpong -t HOST:PORT [--plain]\n"
		"  [--cert F --key F --ca F] [--tls 1.2|1.3] [--suites13 S] [--ciphers12 S]\n"
		"  [--groups G] [-n N] [-c K] [--size B] [--reqs R] [--bytes B]\n"
		"  [--hold S] [--ready-file F] [--timeout S] [--client-dir DIR --clients N]\n");
	exit(2);
}

static unsigned long long num(const char *s)
{
	char *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		usage();
	if (*end == 'k' || *end == 'K')
		v *= 1024, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024, end++;
	if (*end)
		usage();
	return v;
}

static int resolve(const char *hp, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(hp, ':');
	struct addrinfo hints, *ai = NULL;
	size_t hl;

	if (!colon)
		return -1;
	hl = (size_t)(colon - hp);
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, hp, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void ssl_errors(struct lg *g, const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		if (g->errs_printed < 5) {
			ERR_error_string_n(e, buf, sizeof(buf));
			fprintf(stderr, "loadgen: %s: %s\n", what, buf);
			g->errs_printed++;
		}
	}
}

static SSL_CTX *client_ctx(struct lg *g, const char *cert, const char *key)
{
	const struct opts *o = &g->o;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, o->version) ||
	    !SSL_CTX_set_max_proto_version(ctx, o->version) ||
	    !SSL_CTX_set_ciphersuites(ctx, o->suites13) ||
	    !SSL_CTX_set_cipher_list(ctx, o->ciphers12) ||
	    !SSL_CTX_set1_groups_list(ctx, o->groups))
		goto fail;
	if (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		goto fail;
	if (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	if (o->ca && SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1)
		goto fail;
	SSL_CTX_set_verify(ctx, o->ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	/* A proxy that closes without close_notify after the sink closes is
	 * the normal end of a bulk run, not an error. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (o->scen == S_IDLE)
		SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	return ctx;
fail:
	ssl_errors(g, "client context");
	SSL_CTX_free(ctx);
	return NULL;
}

/* --clients N: one context per distinct client certificate, so that N
 * different devices connect (a proxy's verified-chain cache then misses on
 * each one's first connection). Connection i uses certificate i mod N. */
static int load_clients(struct lg *g)
{
	char cert[512], key[512];

	if (!g->o.client_dir)
		return -1;
	g->cctx = calloc(g->o.clients, sizeof(g->cctx[0]));
	if (!g->cctx)
		return -1;
	for (unsigned long i = 0; i < g->o.clients; i++) {
		snprintf(cert, sizeof(cert), "%s/%04lu-chain.pem", g->o.client_dir, i + 1);
		snprintf(key, sizeof(key), "%s/%04lu.key", g->o.client_dir, i + 1);
		g->cctx[i] = client_ctx(g, cert, key);
		if (!g->cctx[i]) {
			fprintf(stderr, "loadgen: client %s\n", cert);
			return -1;
		}
	}
	return 0;
}

static int set_mask(struct lg *g, struct conn *c, uint32_t mask)
{
	struct epoll_event ev;

	if (c->mask == mask)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = mask;
	ev.data.ptr = c;
	if (epoll_ctl(g->ep, c->mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
		return -1;
	c->mask = mask;
	return 0;
}

/* >0: bytes moved; 0: would block (c->want_write says which way); -1:
 * error; -2: orderly EOF. */
static long io_write(struct lg *g, struct conn *c, const void *buf, size_t n)
{
	size_t done = 0;
	ssize_t w;

	if (!c->ssl) {
		w = write(c->fd, buf, n);
		if (w >= 0)
			return (long)w;
		c->want_write = 1;
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
	}
	if (SSL_write_ex(c->ssl, buf, n, &done) == 1)
		return (long)done;
	switch (SSL_get_error(c->ssl, 0)) {
	case SSL_ERROR_WANT_READ: c->want_write = 0; return 0;
	case SSL_ERROR_WANT_WRITE: c->want_write = 1; return 0;
	default: ssl_errors(g, "write"); return -1;
	}
}

static long io_read(struct lg *g, struct conn *c, void *buf, size_t n)
{
	size_t done = 0;
	ssize_t r;

	if (!c->ssl) {
		r = read(c->fd, buf, n);
		if (r > 0)
			return (long)r;
		if (r == 0)
			return -2;
		c->want_write = 0;
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
	}
	if (SSL_read_ex(c->ssl, buf, n, &done) == 1)
		return (long)done;
	switch (SSL_get_error(c->ssl, 0)) {
	case SSL_ERROR_WANT_READ: c->want_write = 0; return 0;
	case SSL_ERROR_WANT_WRITE: c->want_write = 1; return 0;
	case SSL_ERROR_ZERO_RETURN: return -2;
	default: ssl_errors(g, "read"); return -1;
	}
}

static void pool_push(struct lg *g, SSL_SESSION *s)
{
	if (g->npool == POOL_MAX) {
		SSL_SESSION_free(g->pool[0]);
		memmove(g->pool, g->pool + 1, (POOL_MAX - 1) * sizeof(g->pool[0]));
		g->npool--;
	}
	g->pool[g->npool++] = s;
}

static void conn_end(struct lg *g, struct conn *c, int ok)
{
	if (c->magic != CONN_MAGIC)
		return;
	if (c->ssl) {
		if (ok && g->o.scen == S_RESUME) {
			SSL_SESSION *s = SSL_get1_session(c->ssl);

			if (s && SSL_SESSION_is_resumable(s))
				pool_push(g, s);
			else
				SSL_SESSION_free(s);
		}
		if (ok)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	if (c->st == C_HELD)
		g->held--;
	else
		g->inflight--;
	close(c->fd);
	c->magic = 0;
	c->next_dead = g->dead;
	g->dead = c;
	if (ok)
		g->ok++;
	else
		g->failed++;
}

static void start_req(struct conn *c)
{
	c->st = C_SEND;
	c->off = 0;
	c->t_req = now_ns();
}

static void after_handshake(struct lg *g, struct conn *c)
{
	if (c->ssl && SSL_session_reused(c->ssl))
		g->resumed++;
	if (g->o.scen == S_BULK || g->o.scen == S_DOWNLOAD) {
		for (int i = 0; i < 8; i++)
			c->hdr[i] = (unsigned char)(g->o.bytes >> (56 - 8 * i));
		c->hdr_off = 0;
		c->left = g->o.bytes;
		c->st = C_BULK_SEND;
		return;
	}
	start_req(c);
}

static int begin_tls(struct lg *g, struct conn *c)
{
	c->ssl = SSL_new(g->cctx ? g->cctx[c->idx % g->o.clients] : g->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	SSL_set_connect_state(c->ssl);
	if (g->o.scen == S_RESUME && g->npool > 0) {
		SSL_SESSION *s = g->pool[--g->npool];

		(void)SSL_set_session(c->ssl, s);
		SSL_SESSION_free(s);
	}
	c->st = C_HANDSHAKE;
	return 0;
}

static void write_ready(struct lg *g)
{
	int fd;

	if (g->ready_written || !g->o.ready_file)
		return;
	g->ready_written = 1;
	fd = open(g->o.ready_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		(void)!write(fd, "held\n", 5);
		close(fd);
	}
}

/* One request finished: count it and decide what comes next. */
static int req_done(struct lg *g, struct conn *c)
{
	if (memcmp(g->rbuf, g->msg, g->o.size) != 0)
		return -1;
	if (g->o.scen == S_PINGPONG && g->nlat < g->cap_lat)
		g->lat[g->nlat++] = now_ns() - c->t_req;
	c->reqs_done++;
	if (c->reqs_done < g->o.reqs) {
		start_req(c);
		return 0;
	}
	if (g->o.scen == S_IDLE) {
		c->st = C_HELD;
		g->inflight--;
		g->held++;
		return 0;
	}
	return 1;
}

/* Run @c's state machine until it blocks (0), finishes (1) or fails (-1). */
static int step(struct lg *g, struct conn *c)
{
	long r;
	int rc;

	for (;;) {
		switch (c->st) {
		case C_CONNECTING: {
			int err = 0;
			socklen_t len = sizeof(err);

			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
				return -1;
			if (g->o.plain)
				after_handshake(g, c);
			else if (begin_tls(g, c) < 0)
				return -1;
			break;
		}
		case C_HANDSHAKE:
			r = SSL_do_handshake(c->ssl);
			if (r == 1) {
				after_handshake(g, c);
				break;
			}
			switch (SSL_get_error(c->ssl, (int)r)) {
			case SSL_ERROR_WANT_READ: c->want_write = 0; return 0;
			case SSL_ERROR_WANT_WRITE: c->want_write = 1; return 0;
			default: ssl_errors(g, "handshake"); return -1;
			}
		case C_SEND:
			r = io_write(g, c, g->msg + c->off, g->o.size - c->off);
			if (r <= 0)
				return (int)(r == 0 ? 0 : -1);
			c->off += (size_t)r;
			if (c->off == g->o.size) {
				c->off = 0;
				c->st = C_RECV;
			}
			break;
		case C_RECV:
			r = io_read(g, c, g->rbuf + c->off, g->o.size - c->off);
			if (r <= 0)
				return (int)(r == 0 ? 0 : -1);
			c->off += (size_t)r;
			if (c->off == g->o.size) {
				rc = req_done(g, c);
				if (rc != 0)
					return rc;
			}
			break;
		case C_BULK_SEND:
			if (c->hdr_off < sizeof(c->hdr))
				r = io_write(g, c, c->hdr + c->hdr_off, sizeof(c->hdr) - c->hdr_off);
			else
				r = io_write(g, c, g->msg, c->left < CHUNK ? (size_t)c->left : CHUNK);
			if (r <= 0)
				return (int)(r == 0 ? 0 : -1);
			if (c->hdr_off < sizeof(c->hdr))
				c->hdr_off += (size_t)r;
			else
				c->left -= (unsigned long long)r;
			if (c->hdr_off == sizeof(c->hdr) && g->o.scen == S_DOWNLOAD)
				c->st = C_BULK_RECV;
			else if (c->hdr_off == sizeof(c->hdr) && c->left == 0)
				c->st = C_WAIT_EOF;
			break;
		case C_BULK_RECV:
			r = io_read(g, c, g->rbuf, c->left < g->msg_cap ? (size_t)c->left : g->msg_cap);
			if (r <= 0)
				return (int)(r == 0 ? 0 : -1);
			c->left -= (unsigned long long)r;
			if (c->left == 0)
				c->st = C_WAIT_EOF;
			break;
		case C_WAIT_EOF:
		case C_HELD:
			r = io_read(g, c, g->rbuf, g->msg_cap);
			if (r == 0)
				return 0;
			if (r == -2 && c->st == C_WAIT_EOF)
				return 1;
			if (r < 0 || c->st == C_HELD)
				return -1;
			break;
		}
	}
}

static void drive(struct lg *g, struct conn *c)
{
	int rc = step(g, c);
	uint32_t m;

	if (rc != 0) {
		conn_end(g, c, rc > 0);
		return;
	}
	if (c->st == C_CONNECTING)
		m = EPOLLOUT;
	else if (c->st == C_HELD)
		m = EPOLLIN;
	else
		m = c->want_write ? EPOLLOUT : EPOLLIN;
	if (set_mask(g, c, m) < 0)
		conn_end(g, c, 0);
}

static void launch(struct lg *g)
{
	int one = 1;

	while (g->started < g->o.n && g->inflight < g->o.conc) {
		struct conn *c = calloc(1, sizeof(*c));

		if (!c)
			return;
		c->magic = CONN_MAGIC;
		c->idx = g->started;
		c->fd = socket(g->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		g->started++;
		g->inflight++;
		if (c->fd < 0) {
			g->inflight--;
			g->failed++;
			free(c);
			continue;
		}
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->st = C_CONNECTING;
		if (connect(c->fd, (struct sockaddr *)&g->addr, g->addr_len) < 0 && errno != EINPROGRESS) {
			conn_end(g, c, 0);
			continue;
		}
		if (set_mask(g, c, EPOLLOUT) < 0)
			conn_end(g, c, 0);
	}
}

static void reap(struct lg *g)
{
	while (g->dead) {
		struct conn *c = g->dead;

		g->dead = c->next_dead;
		free(c);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(struct lg *g, double p)
{
	size_t i;

	if (g->nlat == 0)
		return 0;
	i = (size_t)(p * (double)(g->nlat - 1) + 0.5);
	return (double)g->lat[i] / 1000.0;
}

static void report(struct lg *g)
{
	double el = (double)(g->t_end - g->t_start) / 1e9;
	double bytes = g->o.scen == S_BULK || g->o.scen == S_DOWNLOAD ? (double)g->o.bytes * (double)g->ok : 0;

	if (g->nlat)
		qsort(g->lat, g->nlat, sizeof(g->lat[0]), cmp_u64);
	printf("scenario=%s conns=%lu ok=%lu fail=%lu resumed=%lu held=%lu elapsed_s=%.3f "
	       "conn_per_s=%.1f mb_per_s=%.1f reqs=%zu p50_us=%.1f p99_us=%.1f\n",
	       g->o.scen_name, g->started, g->ok, g->failed, g->resumed, g->held, el,
	       el > 0 ? (double)g->ok / el : 0, el > 0 ? bytes / el / 1e6 : 0, g->nlat,
	       pct(g, 0.50), pct(g, 0.99));
	fflush(stdout);
}

static int done(struct lg *g)
{
	if (g->o.scen == S_IDLE)
		return g->started == g->o.n && g->inflight == 0;
	return g->ok + g->failed == g->o.n;
}

static int run(struct lg *g)
{
	struct epoll_event evs[512];
	uint64_t deadline = now_ns() + g->o.timeout_s * 1000000000ull;
	uint64_t hold_end = 0;

	g->t_start = now_ns();
	launch(g);
	for (;;) {
		int n = epoll_wait(g->ep, evs, 512, 200);

		if (n < 0 && errno != EINTR)
			return -1;
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->magic == CONN_MAGIC)
				drive(g, c);
		}
		reap(g);
		launch(g);
		if (!hold_end && done(g)) {
			g->t_end = now_ns();
			report(g);
			if (g->o.scen != S_IDLE)
				return 0;
			write_ready(g);
			hold_end = now_ns() + g->o.hold_s * 1000000000ull;
		}
		if (hold_end && now_ns() >= hold_end)
			return 0;
		if (!hold_end && now_ns() >= deadline) {
			fprintf(stderr, "loadgen: timeout, %lu of %lu done\n", g->ok + g->failed, g->o.n);
			g->failed += g->o.n - g->ok - g->failed;
			g->t_end = now_ns();
			report(g);
			return -1;
		}
	}
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void parse(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{"plain", no_argument, NULL, 'P'}, {"cert", required_argument, NULL, 'C'},
		{"key", required_argument, NULL, 'K'}, {"ca", required_argument, NULL, 'A'},
		{"tls", required_argument, NULL, 'V'}, {"suites13", required_argument, NULL, '3'},
		{"ciphers12", required_argument, NULL, '2'}, {"groups", required_argument, NULL, 'G'},
		{"size", required_argument, NULL, 'z'}, {"reqs", required_argument, NULL, 'r'},
		{"bytes", required_argument, NULL, 'b'}, {"hold", required_argument, NULL, 'H'},
		{"ready-file", required_argument, NULL, 'R'}, {"timeout", required_argument, NULL, 'T'},
		{"client-dir", required_argument, NULL, 'D'}, {"clients", required_argument, NULL, 'N'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	o->version = TLS1_3_VERSION;
	o->suites13 = "TLS_AES_256_GCM_SHA384";
	o->ciphers12 = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
	/* TLS 1.2 needs P-256 listed for an ECDSA P-256 server certificate (RFC 8422). */
	o->groups = "X25519:P-256";
	o->n = 1000;
	o->conc = 16;
	o->hold_s = 30;
	o->timeout_s = 300;
	o->bytes = 256ull << 20;
	while ((opt = getopt_long(argc, argv, "s:t:n:c:", lo, NULL)) != -1) {
		switch (opt) {
		case 's': o->scen_name = optarg; break;
		case 't': o->target = optarg; break;
		case 'n': o->n = (unsigned long)num(optarg); break;
		case 'c': o->conc = (unsigned long)num(optarg); break;
		case 'P': o->plain = 1; break;
		case 'C': o->cert = optarg; break;
		case 'K': o->key = optarg; break;
		case 'A': o->ca = optarg; break;
		case 'V':
			if (strcmp(optarg, "1.2") == 0)
				o->version = TLS1_2_VERSION;
			else if (strcmp(optarg, "1.3") == 0)
				o->version = TLS1_3_VERSION;
			else
				usage();
			break;
		case '3': o->suites13 = optarg; break;
		case '2': o->ciphers12 = optarg; break;
		case 'G': o->groups = optarg; break;
		case 'z': o->size = (unsigned long)num(optarg); break;
		case 'r': o->reqs = (unsigned long)num(optarg); break;
		case 'b': o->bytes = num(optarg); break;
		case 'H': o->hold_s = (unsigned long)num(optarg); break;
		case 'R': o->ready_file = optarg; break;
		case 'T': o->timeout_s = (unsigned long)num(optarg); break;
		case 'D': o->client_dir = optarg; break;
		case 'N': o->clients = (unsigned long)num(optarg); break;
		default: usage();
		}
	}
	if (!o->scen_name || !o->target || o->n == 0 || o->conc == 0)
		usage();
	if (strcmp(o->scen_name, "hs") == 0)
		o->scen = S_HS;
	else if (strcmp(o->scen_name, "resume") == 0)
		o->scen = S_RESUME;
	else if (strcmp(o->scen_name, "bulk") == 0)
		o->scen = S_BULK;
	else if (strcmp(o->scen_name, "download") == 0)
		o->scen = S_DOWNLOAD;
	else if (strcmp(o->scen_name, "idle") == 0)
		o->scen = S_IDLE;
	else if (strcmp(o->scen_name, "pingpong") == 0)
		o->scen = S_PINGPONG;
	else
		usage();
	if (o->size == 0)
		o->size = o->scen == S_PINGPONG ? 1024 : 100;
	if (o->reqs == 0)
		o->reqs = o->scen == S_PINGPONG ? 1000 : 1;
	if (o->scen == S_PINGPONG)
		o->conc = o->n;
}

int main(int argc, char **argv)
{
	struct lg g;
	int rc;

	memset(&g, 0, sizeof(g));
	parse(&g.o, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (resolve(g.o.target, &g.addr, &g.addr_len) < 0) {
		fprintf(stderr, "loadgen: bad target %s\n", g.o.target);
		return 2;
	}
	g.msg_cap = g.o.size > CHUNK ? g.o.size : CHUNK;
	g.msg = malloc(g.msg_cap);
	g.rbuf = malloc(g.msg_cap);
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!g.msg || !g.rbuf || g.ep < 0)
		return 1;
	for (size_t i = 0; i < g.msg_cap; i++)
		g.msg[i] = (unsigned char)('a' + i % 26);
	if (g.o.scen == S_PINGPONG) {
		g.cap_lat = g.o.n * g.o.reqs;
		g.lat = calloc(g.cap_lat, sizeof(g.lat[0]));
		if (!g.lat)
			return 1;
	}
	if (!g.o.plain) {
		g.ctx = client_ctx(&g, g.o.cert, g.o.key);
		if (!g.ctx || (g.o.clients && load_clients(&g) < 0))
			return 1;
	}
	rc = run(&g);
	while (g.npool > 0)
		SSL_SESSION_free(g.pool[--g.npool]);
	for (unsigned long i = 0; g.cctx && i < g.o.clients; i++)
		SSL_CTX_free(g.cctx[i]);
	free(g.cctx);
	SSL_CTX_free(g.ctx);
	free(g.lat);
	free(g.msg);
	free(g.rbuf);
	return rc == 0 && g.failed == 0 ? 0 : 1;
}
