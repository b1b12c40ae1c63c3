/* backend.c - the benchmark's plain TCP peer: echo, sink, source or relay.
 *
 *   backend -m echo   -l 127.0.0.1:PORT
 *   backend -m sink   -l 127.0.0.1:PORT
 *   backend -m source -l 127.0.0.1:PORT
 *   backend -m relay -l 127.0.0.1:PORT -t 127.0.0.1:PORT
 *
 * echo:  writes back every byte it reads (scenarios 1, 2, 4 and 5).
 * sink:  reads an 8-byte big-endian length L, then L bytes, discards them
 *        and closes (scenario 3). The close travels back through any proxy
 *        and tells the load generator that every byte arrived, without
 *        relying on half-close support in the proxy.
 * source: reads an 8-byte big-endian length L, sends L bytes and closes
 *        (scenario 3, download: the load generator's -s download).
 * relay: accepts, connects to -t and copies both ways: the "kernel alone"
 *        reference row, what relaying costs with no TLS at all.
 *
 * One thread, level-triggered epoll, non-blocking sockets. Bytes are read
 * into one shared scratch buffer and written straight on; only what the
 * kernel did not take is copied to a per-connection heap buffer, so an idle
 * connection holds no buffer (the relay's RSS per idle connection is the
 * kernel-alone reference for scenario 4).
 */
#include <errno.h>
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
#include <unistd.h>

#define SCRATCH (256 * 1024)
#define END_MAGIC 0x656e6421u

enum mode { M_ECHO, M_SINK, M_SOURCE, M_RELAY };

/* One socket. In echo mode peer == self; in relay mode the two ends of a
 * pair point at each other. pend holds bytes read from this end that the
 * peer's socket did not accept yet. */
struct end {
	unsigned magic;
	int fd;
	struct end *peer;
	char *pend;
	size_t pend_len, pend_off;
	uint32_t mask;           /* epoll interest currently registered */
	int connecting;          /* relay upstream: connect() in progress */
	int rd_eof;              /* read side saw EOF */
	int wr_shut;             /* we shut down the write side */
	unsigned char hdr[8];    /* sink: length prefix */
	unsigned hdr_got;
	uint64_t want, got;      /* sink: bytes announced / received; source: to send / sent */
	struct end *next_dead;   /* closed during this epoll batch */
};

struct backend {
	enum mode mode;
	int ep;
	int lfd;
	struct sockaddr_storage target;
	socklen_t target_len;
	char *scratch;
	unsigned long open;
	struct end *dead;        /* freed after the batch: later events may name them */
};

static void usage(void)
{
	fprintf(stderr, "usage: backend -m echo|sink|source|relay -l HOST:PORT [-t HOST:PORT]\n");
	exit(2);
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
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int set_mask(struct backend *b, struct end *e, uint32_t mask)
{
	struct epoll_event ev;

	if (e->mask == mask)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = mask;
	ev.data.ptr = e;
	if (epoll_ctl(b->ep, EPOLL_CTL_MOD, e->fd, &ev) < 0)
		return -1;
	e->mask = mask;
	return 0;
}

static struct end *end_new(struct backend *b, int fd)
{
	struct end *e = calloc(1, sizeof(*e));
	struct epoll_event ev;

	if (!e)
		return NULL;
	e->magic = END_MAGIC;
	e->fd = fd;
	e->mask = EPOLLIN;
	memset(&ev, 0, sizeof(ev));
	ev.events = e->mask;
	ev.data.ptr = e;
	if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(e);
		return NULL;
	}
	b->open++;
	return e;
}

static void end_free(struct backend *b, struct end *e)
{
	if (!e || e->magic != END_MAGIC)
		return;
	(void)epoll_ctl(b->ep, EPOLL_CTL_DEL, e->fd, NULL);
	close(e->fd);
	free(e->pend);
	e->pend = NULL;
	e->magic = 0;
	e->next_dead = b->dead;
	b->dead = e;
	b->open--;
}

static void reap(struct backend *b)
{
	while (b->dead) {
		struct end *e = b->dead;

		b->dead = e->next_dead;
		free(e);
	}
}

/* Close @e and, in relay mode, its peer. Safe to call once per pair. */
static void pair_close(struct backend *b, struct end *e)
{
	struct end *p = e->peer;

	if (p && p != e)
		end_free(b, p);
	end_free(b, e);
}

/* Recompute both ends' epoll interest from their state: read from an end
 * only while what it sent before has been fully written to its peer. */
static int update(struct backend *b, struct end *e)
{
	struct end *p = e->peer;
	uint32_t m = 0;

	if (e->connecting)
		return set_mask(b, e, EPOLLOUT);
	if (b->mode == M_SOURCE && e->hdr_got == sizeof(e->hdr))
		return set_mask(b, e, EPOLLOUT);
	if (!e->rd_eof && e->pend_len == 0 && !(p && p->connecting))
		m |= EPOLLIN;
	if (p && p->pend_len > 0)
		m |= EPOLLOUT;
	return set_mask(b, e, m);
}

/* Write bytes to @to; keep what the socket did not take in @from->pend. */
static int forward(struct end *from, struct end *to, const char *buf, size_t n)
{
	ssize_t w = 0;

	if (n == 0)
		return 0;
	w = write(to->fd, buf, n);
	if (w < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		w = 0;
	}
	if ((size_t)w == n)
		return 0;
	from->pend = malloc(n - (size_t)w);
	if (!from->pend)
		return -1;
	memcpy(from->pend, buf + w, n - (size_t)w);
	from->pend_len = n - (size_t)w;
	from->pend_off = 0;
	return 0;
}

static int flush_pend(struct end *from, struct end *to)
{
	ssize_t w;

	while (from->pend_off < from->pend_len) {
		w = write(to->fd, from->pend + from->pend_off, from->pend_len - from->pend_off);
		if (w < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		from->pend_off += (size_t)w;
	}
	free(from->pend);
	from->pend = NULL;
	from->pend_len = from->pend_off = 0;
	return 0;
}

/* Sink: consume the length prefix, count the payload, close at the end. */
static int sink_bytes(struct end *e, const unsigned char *buf, size_t n)
{
	while (n > 0 && e->hdr_got < sizeof(e->hdr)) {
		e->hdr[e->hdr_got++] = *buf++;
		n--;
		if (e->hdr_got == sizeof(e->hdr))
			for (unsigned i = 0; i < 8; i++)
				e->want = (e->want << 8) | e->hdr[i];
	}
	e->got += n;
	return e->hdr_got == sizeof(e->hdr) && e->got >= e->want;
}

/* Returns -1 when the pair is to be closed. */
static int on_readable(struct backend *b, struct end *e)
{
	ssize_t r = read(e->fd, b->scratch, SCRATCH);

	if (r < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
	if (r == 0) {
		e->rd_eof = 1;
		if (b->mode != M_RELAY)
			return -1;
		if (e->pend_len == 0 && !e->peer->wr_shut) {
			(void)shutdown(e->peer->fd, SHUT_WR);
			e->peer->wr_shut = 1;
		}
		return (e->peer->rd_eof && e->peer->pend_len == 0) ? -1 : 0;
	}
	if (b->mode == M_SINK)
		return sink_bytes(e, (unsigned char *)b->scratch, (size_t)r) ? -1 : 0;
	if (b->mode == M_SOURCE) {
		(void)sink_bytes(e, (unsigned char *)b->scratch, (size_t)r);
		e->got = 0; /* the length is read: from now on, bytes sent */
		return 0;
	}
	return forward(e, e->peer, b->scratch, (size_t)r);
}

/* Source: send the announced bytes as fast as the socket takes them;
 * -1 (close) once all are sent, or on error. */
static int source_bytes(struct backend *b, struct end *e)
{
	while (e->got < e->want) {
		uint64_t left = e->want - e->got;
		ssize_t w = write(e->fd, b->scratch, left < SCRATCH ? (size_t)left : SCRATCH);

		if (w < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
		e->got += (uint64_t)w;
	}
	return -1;
}

static int finish_connect(struct end *e)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
		return -1;
	e->connecting = 0;
	return 0;
}

/* EPOLLOUT on @e: write out what its peer read and we could not pass on. */
static int on_writable(struct backend *b, struct end *e)
{
	struct end *p = e->peer;

	if (e->connecting)
		return finish_connect(e);
	if (b->mode == M_SOURCE)
		return source_bytes(b, e);
	if (!p || p->pend_len == 0)
		return 0;
	if (flush_pend(p, e) < 0)
		return -1;
	if (p->pend_len == 0 && p->rd_eof && b->mode == M_RELAY && !e->wr_shut) {
		(void)shutdown(e->fd, SHUT_WR);
		e->wr_shut = 1;
		if (e->rd_eof)
			return -1;
	}
	return 0;
}

static int relay_connect(struct backend *b, struct end *client)
{
	int fd = socket(b->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct end *up;

	if (fd < 0)
		return -1;
	nodelay(fd);
	if (connect(fd, (struct sockaddr *)&b->target, b->target_len) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	up = end_new(b, fd);
	if (!up) {
		close(fd);
		return -1;
	}
	up->connecting = 1;
	up->peer = client;
	client->peer = up;
	if (update(b, up) < 0 || update(b, client) < 0)
		return -1;
	return 0;
}

static void on_accept(struct backend *b)
{
	for (;;) {
		int fd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK);
		struct end *e;

		if (fd < 0)
			return;
		nodelay(fd);
		e = end_new(b, fd);
		if (!e) {
			close(fd);
			continue;
		}
		e->peer = b->mode == M_RELAY ? NULL : e;
		if (b->mode == M_RELAY && relay_connect(b, e) < 0)
			pair_close(b, e);
	}
}

static void on_event(struct backend *b, struct end *e, uint32_t ev)
{
	struct end *p;
	int rc = 0;

	if (e->magic != END_MAGIC)
		return;
	if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN))
		rc = -1;
	if (rc == 0 && (ev & EPOLLOUT))
		rc = on_writable(b, e);
	if (rc == 0 && (ev & EPOLLIN) && (e->mask & EPOLLIN))
		rc = on_readable(b, e);
	if (rc < 0) {
		pair_close(b, e);
		return;
	}
	p = e->peer;
	if (update(b, e) < 0 || (p && p != e && update(b, p) < 0))
		pair_close(b, e);
}

static int listen_on(const char *hp)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;
	int fd;

	if (resolve(hp, &ss, &len) < 0)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct backend b;
	struct epoll_event evs[256], lev;
	const char *listen_addr = NULL, *target = NULL, *mode = NULL;
	int opt;

	memset(&b, 0, sizeof(b));
	while ((opt = getopt(argc, argv, "m:l:t:")) != -1) {
		switch (opt) {
		case 'm': mode = optarg; break;
		case 'l': listen_addr = optarg; break;
		case 't': target = optarg; break;
		default: usage();
		}
	}
	if (!mode || !listen_addr)
		usage();
	if (strcmp(mode, "echo") == 0)
		b.mode = M_ECHO;
	else if (strcmp(mode, "sink") == 0)
		b.mode = M_SINK;
	else if (strcmp(mode, "source") == 0)
		b.mode = M_SOURCE;
	else if (strcmp(mode, "relay") == 0)
		b.mode = M_RELAY;
	else
		usage();
	if (b.mode == M_RELAY && (!target || resolve(target, &b.target, &b.target_len) < 0))
		usage();
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	b.scratch = malloc(SCRATCH);
	b.lfd = listen_on(listen_addr);
	b.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!b.scratch || b.lfd < 0 || b.ep < 0) {
		fprintf(stderr, "backend: cannot listen on %s: %s\n", listen_addr, strerror(errno));
		return 1;
	}
	memset(&lev, 0, sizeof(lev));
	lev.events = EPOLLIN;
	lev.data.ptr = NULL;
	if (epoll_ctl(b.ep, EPOLL_CTL_ADD, b.lfd, &lev) < 0)
		return 1;
	fprintf(stderr, "backend: %s on %s\n", mode, listen_addr);
	for (;;) {
		int n = epoll_wait(b.ep, evs, 256, -1);

		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr)
				on_accept(&b);
			else
				on_event(&b, evs[i].data.ptr, evs[i].events);
		}
		reap(&b);
	}
}
