/* relay.c - see relay.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/err.h>

#include "engine/relay.h"

enum { IO_BLOCKED = -1, IO_ERROR = -2 };

/* Map an SSL I/O result; on IO_BLOCKED *wait says which readiness the call
 * needs (a TLS read may need the socket writable, and a write readable). */
static ssize_t tls_result(struct zg_side *s, int n, unsigned *wait)
{
	int e = SSL_get_error(s->ssl, n);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*wait = ZG_WANT_READ;
		return IO_BLOCKED;
	case SSL_ERROR_WANT_WRITE:
		*wait = ZG_WANT_WRITE;
		return IO_BLOCKED;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SSL:
		/* A TCP FIN without close_notify: the stream ended. Relayed
		 * protocols (DICOM, HL7/MLLP) frame their own messages, so the
		 * end of stream is passed on; but it was truncated, and the
		 * close is recorded so (RFC 8446 6.1). */
		if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			s->tls_dead = 1;
			s->truncated = 1;
			return 0;
		}
		/* fall through */
	default:
		/* A fatal alert from the peer after the handshake: under TLS 1.3
		 * a server refusing our certificate says so only now. */
		if (ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_SSL &&
		    ERR_GET_REASON(ERR_peek_error()) >= SSL_AD_REASON_OFFSET &&
		    ERR_GET_REASON(ERR_peek_error()) < SSL_AD_REASON_OFFSET + 256)
			s->peer_alert = 1;
		ERR_clear_error();
		s->tls_dead = 1;
		return IO_ERROR;
	}
}

static int would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Bytes read (> 0), 0 at end of stream, IO_BLOCKED (s->rd_wait set) or
 * IO_ERROR. */
static ssize_t side_read(struct zg_side *s, char *buf, size_t n)
{
	ssize_t k;

	s->rd_wait = 0;
	if (s->ssl) {
		size_t got = 0;
		int rc = SSL_read_ex(s->ssl, buf, n, &got);
		return rc == 1 ? (ssize_t)got : tls_result(s, rc, &s->rd_wait);
	}
	k = recv(s->fd, buf, n, 0);
	if (k >= 0)
		return k;
	if (!would_block())
		return IO_ERROR;
	s->rd_wait = ZG_WANT_READ;
	return IO_BLOCKED;
}

/* Bytes written (> 0), IO_BLOCKED (s->wr_wait set) or IO_ERROR. */
static ssize_t side_write(struct zg_side *s, const char *buf, size_t n)
{
	ssize_t k;

	s->wr_wait = 0;
	if (s->ssl) {
		size_t put = 0;
		int rc = SSL_write_ex(s->ssl, buf, n, &put);
		if (rc == 1)
			return (ssize_t)put;
		k = tls_result(s, rc, &s->wr_wait);
		return k == 0 ? IO_ERROR : k;
	}
	k = send(s->fd, buf, n, MSG_NOSIGNAL);
	if (k >= 0)
		return k;
	if (!would_block())
		return IO_ERROR;
	s->wr_wait = ZG_WANT_WRITE;
	return IO_BLOCKED;
}

/* Pass the end of stream on: close_notify (TLS) then FIN. 0 when done. */
static int side_shutdown(struct zg_side *s)
{
	s->wr_wait = 0;
	if (s->ssl && !s->tls_dead) {
		int rc = SSL_shutdown(s->ssl);
		if (rc < 0 && tls_result(s, rc, &s->wr_wait) == IO_BLOCKED)
			return IO_BLOCKED;
	}
	ERR_clear_error();
	(void)shutdown(s->fd, SHUT_WR);
	s->shut = 1;
	return 0;
}

/* Only call into a side when it may make progress: its last call of that
 * kind did not block, or epoll has since reported what it waited for
 * (zg_relay_ready), or OpenSSL holds decrypted bytes not yet returned.
 * Raw bytes buffered by read-ahead (SSL_has_pending) do not count: after a
 * blocked read they are an incomplete record, and only the socket can
 * complete it; trusting them spun the worker on read()=EAGAIN until the
 * peer sent the rest, which a hostile peer never does (issue 10 item 1). */
static int may_read(const struct zg_side *s)
{
	return s->rd_wait == 0 || (s->ssl && SSL_pending(s->ssl) > 0);
}

static int may_write(const struct zg_side *s)
{
	return s->wr_wait == 0;
}

void zg_relay_ready(struct zg_side *s, unsigned ready)
{
	if (s->rd_wait & ready)
		s->rd_wait = 0;
	if (s->wr_wait & ready)
		s->wr_wait = 0;
}

int zg_relay_peer_finished(const struct zg_relay *r, struct zg_side *s, const struct zg_side *down)
{
	const struct zg_dir *to = s == down ? &r->u2d : &r->d2u;

	if (!s->eof || !s->ssl || !(SSL_get_shutdown(s->ssl) & SSL_RECEIVED_SHUTDOWN) ||
	    to->tail != to->head)
		return 0;
	/* Nothing more can be sent to it, and it needs nothing: never try. */
	s->shut = 1;
	s->tls_dead = 1;
	s->wr_wait = 0;
	return 1;
}

static enum zg_reason io_reason(const struct zg_side *s, const struct zg_side *down)
{
	if (s->peer_alert)
		return ZG_R_TLS_PEER_ALERT;
	return s == down ? ZG_R_CLIENT_RESET : ZG_R_UPSTREAM_RESET;
}

/* Whether the traffic class of @d lets its source be read now: one lease
 * a step (so bytes of other connections never wait behind more than one
 * buffer of it), and only while the class has tokens; else the direction
 * is throttled until r->wake_ns. Unshaped directions always may; so does
 * the default class, with today's step budget (it is counted, never held). */
static int shaper_allows(struct zg_dir *d, struct zg_relay *r, uint64_t *now_ns)
{
	uint64_t wake = 0;

	if (!d->flow.cls)
		return 1;
	if (d->leased) {
		r->more = 1;
		return 0;
	}
	/* The default class always may (zg_shape_decide grants a class with
	 * no rate, ceil or cap at once): no clock read, no decision per read. */
	if (d->flow.cls->builtin) {
		d->flow.granted = ZG_SHAPE_OWN;
		return 1;
	}
	if (!*now_ns)
		*now_ns = zg_shape_now();
	if (zg_shape_may_read(&d->flow, *now_ns, &wake))
		return 1;
	d->throttled = 1;
	if (!r->wake_ns || wake < r->wake_ns)
		r->wake_ns = wake;
	return 0;
}

/* Keep @dst's kernel pacing at what zg_shape_pace_bps says for @d's flow.
 * A change under an eighth is not worth a system call. A failure is not
 * retried (the rate is recorded as set): pacing only smooths bursts, the
 * buckets keep the rate. */
static void pace(struct zg_dir *d, const struct zg_side *dst)
{
	uint64_t want = zg_shape_pace_bps(&d->flow), now = d->flow.paced_bps;

	if (want == now || (want && now && (want > now ? want - now : now - want) < now / 8))
		return;
	(void)zg_shape_pace_socket(dst->fd, want);
	d->flow.paced_bps = want;
}

/* A buffer of ZG_RELAY_BUF bytes: a spare of the worker, or a new one. */
static char *buf_get(struct zg_relay *r)
{
	if (r->spares && r->spares->n > 0)
		return r->spares->buf[--r->spares->n];
	return malloc(ZG_RELAY_BUF);
}

/* Give @buf (ZG_RELAY_BUF bytes, or NULL) back: kept as a spare while
 * there is room, else freed. */
static void buf_put(struct zg_relay *r, char *buf)
{
	if (buf && r->spares && r->spares->n < ZG_RELAY_SPARES_MAX)
		r->spares->buf[r->spares->n++] = buf;
	else
		free(buf);
}

/* Room to read into, after making it: the buffer compacted when its free
 * tail is no more than the filter's headroom. 0 when full (backpressure). */
static size_t read_room(struct zg_dir *d, uint32_t hr)
{
	if (d->head > 0 && d->tail + hr >= ZG_RELAY_BUF) {
		memmove(d->buf, d->buf + d->head, d->tail - d->head);
		d->tail -= d->head;
		d->head = 0;
	}
	return d->tail + hr >= ZG_RELAY_BUF ? 0 : ZG_RELAY_BUF - d->tail - hr;
}

/* A filter with something to emit (an answer it injects) gets the chance
 * before the next read. 1 if it emitted, 0 if not, -1 with *@rc set. */
static int filter_flush(struct zg_relay_filter *f, struct zg_dir *d, struct zg_relay *r,
			enum zg_reason *rc)
{
	size_t out = 0;

	if (!f->fn || !f->pending || !*f->pending || read_room(d, f->headroom) == 0)
		return 0;
	if (!d->buf && !(d->buf = buf_get(r))) {
		*rc = ZG_R_NO_MEMORY;
		return -1;
	}
	if ((*rc = f->fn(f->arg, NULL, 0, (uint8_t *)d->buf + d->tail, &out)) != ZG_R_OK)
		return -1;
	d->tail += (uint32_t)out;
	return out > 0;
}

/* One direction, src -> dst, until neither a read nor a write can proceed. */
static enum zg_reason pump(struct zg_dir *d, struct zg_side *src, struct zg_side *dst,
			   const struct zg_side *down, int *progress, struct zg_relay *r,
			   struct zg_relay_filter *f)
{
	uint32_t hr = f->fn ? f->headroom : 0;
	enum zg_reason rc = ZG_R_OK;
	uint64_t now_ns = 0;

	for (;;) {
		ssize_t n;
		size_t room;
		int fl;

		if (d->tail > d->head && may_write(dst)) {
			n = side_write(dst, d->buf + d->head, d->tail - d->head);
			if (n == IO_ERROR)
				return io_reason(dst, down);
			if (n > 0) {
				d->head += (uint32_t)n;
				d->bytes += (uint64_t)n;
				*progress = 1;
				if (d->head == d->tail)
					d->head = d->tail = 0;
				continue;
			}
		}
		if ((fl = filter_flush(f, d, r, &rc)) < 0)
			return rc;
		if (fl > 0) {
			*progress = 1;
			continue;
		}
		if (src->eof || !may_read(src))
			break;
		if (d->buf && (room = read_room(d, hr)) == 0)
			break; /* full: backpressure on src */
		if (r->budget == 0) {
			r->more = 1; /* fairness: the worker steps us again after others */
			break;
		}
		if (!shaper_allows(d, r, &now_ns))
			break;
		if (d->flow.pacing || d->flow.paced_bps)
			pace(d, dst);
		if (!d->buf && !(d->buf = buf_get(r)))
			return ZG_R_NO_MEMORY;
		room = ZG_RELAY_BUF - d->tail - hr;
		n = side_read(src, d->buf + d->tail + hr, room);
		if (n == IO_ERROR)
			return io_reason(src, down);
		if (n == IO_BLOCKED) {
			/* ran dry: it competes for tokens no more; its socket
			 * keeps its pace until the next lease (pace()) */
			zg_shape_flow_idle(&d->flow);
			continue; /* maybe still something to write */
		}
		*progress = 1;
		if (n == 0) {
			src->eof = 1;
			zg_shape_flow_idle(&d->flow);
			continue;
		}
		if (d->flow.cls) {
			zg_shape_charge_flow(&d->flow, (uint64_t)n, now_ns);
			d->leased = !d->flow.cls->builtin;
		}
		/* Less than asked for, and nothing left inside OpenSSL: the socket
		 * is most likely drained. Wait for epoll (level-triggered, so it
		 * reports at once if not) instead of a read that returns EAGAIN. */
		if ((size_t)n < room && !(src->ssl && SSL_has_pending(src->ssl))) {
			src->rd_wait = ZG_WANT_READ;
			/* the rest of a TLS record split by our own short room
			 * says nothing of the source */
			if (!d->split)
				zg_shape_flow_idle(&d->flow);
		}
		d->split = (size_t)n == room && room < ZG_RELAY_BUF - hr;
		r->budget = (size_t)n < r->budget ? r->budget - (size_t)n : 0;
		if (f->fn) {
			size_t out = 0;
			uint8_t *at = (uint8_t *)d->buf + d->tail;
			if ((rc = f->fn(f->arg, at + hr, (size_t)n, at, &out)) != ZG_R_OK)
				return rc;
			n = (ssize_t)out;
		}
		d->tail += (uint32_t)n;
	}
	if (d->tail == d->head && d->buf) {
		/* Drained: an idle connection keeps no buffer. */
		buf_put(r, d->buf);
		d->buf = NULL;
		d->head = d->tail = 0;
	}
	if (src->eof && d->tail == d->head && !dst->shut && may_write(dst)) {
		if (side_shutdown(dst) == 0)
			*progress = 1;
	}
	return ZG_R_OK;
}

/* What the direction @d from @src to @dst waits for, as epoll interest on
 * each side: its source's readiness while there is room and no end of
 * stream, its destination's while bytes or a shutdown are pending. */
static void dir_wants(const struct zg_dir *d, const struct zg_relay_filter *f, struct zg_side *src,
		      struct zg_side *dst)
{
	if (!src->eof && d->tail + (f->fn ? f->headroom : 0) < ZG_RELAY_BUF && !d->throttled)
		src->want |= src->rd_wait;
	if (d->tail > d->head || (src->eof && !dst->shut))
		dst->want |= dst->wr_wait;
}

/* How a relay whose both directions ended ended: orderly, unless a side
 * truncated its TLS stream (the first to end wins when both did). */
static enum zg_reason end_reason(const struct zg_relay *r, const struct zg_side *down,
				 const struct zg_side *up)
{
	int up_first = r->first_eof == 2;

	if (up->truncated && (up_first || !down->truncated))
		return ZG_R_UPSTREAM_TRUNCATED;
	if (down->truncated)
		return ZG_R_CLIENT_TRUNCATED;
	return up_first ? ZG_R_UPSTREAM_CLOSED : ZG_R_CLIENT_CLOSED;
}

enum zg_reason zg_relay_step(struct zg_relay *r, struct zg_side *down, struct zg_side *up,
			     uint64_t now_ms)
{
	uint64_t before = r->d2u.bytes + r->u2d.bytes;
	unsigned eof_before = (unsigned)down->eof | ((unsigned)up->eof << 1);
	enum zg_reason rc;
	int progress;

	r->budget = ZG_RELAY_STEP_BUDGET;
	r->more = 0;
	r->wake_ns = 0;
	r->d2u.throttled = r->u2d.throttled = 0;
	r->d2u.leased = r->u2d.leased = 0;
	do {
		progress = 0;
		if ((rc = pump(&r->d2u, down, up, down, &progress, r, &r->f_d2u)) != ZG_R_OK)
			return rc;
		if ((rc = pump(&r->u2d, up, down, down, &progress, r, &r->f_u2d)) != ZG_R_OK)
			return rc;
	} while (progress && !r->more);
	down->want = up->want = 0;
	dir_wants(&r->d2u, &r->f_d2u, down, up);
	dir_wants(&r->u2d, &r->f_u2d, up, down);
	if (r->d2u.bytes + r->u2d.bytes != before ||
	    ((unsigned)down->eof | ((unsigned)up->eof << 1)) != eof_before)
		r->last_activity_ms = now_ms;
	if (!r->first_eof)
		r->first_eof = down->eof ? 1 : up->eof ? 2 : 0;
	if (down->eof && up->eof && down->shut && up->shut)
		return end_reason(r, down, up);
	return ZG_R_OK;
}

ssize_t zg_side_read(struct zg_side *s, void *buf, size_t n)
{
	ssize_t k = side_read(s, buf, n);

	return k == IO_BLOCKED ? ZG_IO_BLOCKED : k == IO_ERROR ? ZG_IO_ERROR : k;
}

ssize_t zg_side_write(struct zg_side *s, const void *buf, size_t n)
{
	ssize_t k = side_write(s, buf, n);

	return k == IO_BLOCKED ? ZG_IO_BLOCKED : k == IO_ERROR ? ZG_IO_ERROR : k;
}

void zg_relay_free(struct zg_relay *r)
{
	uint64_t now = r->d2u.flow.throttled_since || r->u2d.flow.throttled_since ? zg_shape_now() : 0;

	zg_shape_flow_end(&r->d2u.flow, now);
	zg_shape_flow_end(&r->u2d.flow, now);
	zg_shape_flow_idle(&r->d2u.flow);
	zg_shape_flow_idle(&r->u2d.flow);
	buf_put(r, r->d2u.buf);
	buf_put(r, r->u2d.buf);
	r->d2u.buf = r->u2d.buf = NULL;
}

void zg_relay_spares_free(struct zg_relay_spares *s)
{
	while (s->n > 0)
		free(s->buf[--s->n]);
}
