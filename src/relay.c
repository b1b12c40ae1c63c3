/* relay.c - see relay.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/err.h>

#include "relay.h"

enum { IO_BLOCKED = -1, IO_ERROR = -2 };

static ssize_t tls_result(struct zg_side *s, int n)
{
	int e = SSL_get_error(s->ssl, n);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		s->want |= ZG_WANT_READ;
		return IO_BLOCKED;
	case SSL_ERROR_WANT_WRITE:
		s->want |= ZG_WANT_WRITE;
		return IO_BLOCKED;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SSL:
		/* A TCP FIN without close_notify: the stream ended. Relayed
		 * protocols (DICOM, HL7/MLLP) frame their own messages, so
		 * this is an end of stream, not an attack on the framing. */
		if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			s->tls_dead = 1;
			return 0;
		}
		/* fall through */
	default:
		ERR_clear_error();
		s->tls_dead = 1;
		return IO_ERROR;
	}
}

/* Bytes read (> 0), 0 at end of stream, IO_BLOCKED or IO_ERROR. */
static ssize_t side_read(struct zg_side *s, char *buf, size_t n)
{
	ssize_t k;

	if (s->ssl) {
		size_t got = 0;
		int rc = SSL_read_ex(s->ssl, buf, n, &got);
		return rc == 1 ? (ssize_t)got : tls_result(s, rc);
	}
	k = recv(s->fd, buf, n, 0);
	if (k >= 0)
		return k;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		s->want |= ZG_WANT_READ;
		return IO_BLOCKED;
	}
	return IO_ERROR;
}

/* Bytes written (> 0), IO_BLOCKED or IO_ERROR. */
static ssize_t side_write(struct zg_side *s, const char *buf, size_t n)
{
	ssize_t k;

	if (s->ssl) {
		size_t put = 0;
		int rc = SSL_write_ex(s->ssl, buf, n, &put);
		if (rc == 1)
			return (ssize_t)put;
		k = tls_result(s, rc);
		return k == 0 ? IO_ERROR : k;
	}
	k = send(s->fd, buf, n, MSG_NOSIGNAL);
	if (k >= 0)
		return k;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		s->want |= ZG_WANT_WRITE;
		return IO_BLOCKED;
	}
	return IO_ERROR;
}

/* Pass the end of stream on: close_notify (TLS) then FIN. 0 when done. */
static int side_shutdown(struct zg_side *s)
{
	if (s->ssl && !s->tls_dead) {
		int rc = SSL_shutdown(s->ssl);
		if (rc < 0) {
			ssize_t k = tls_result(s, rc);
			if (k == IO_BLOCKED)
				return IO_BLOCKED;
		}
	}
	ERR_clear_error();
	(void)shutdown(s->fd, SHUT_WR);
	s->shut = 1;
	return 0;
}

static enum zg_reason io_reason(const struct zg_side *s, const struct zg_side *down)
{
	return s == down ? ZG_R_CLIENT_RESET : ZG_R_UPSTREAM_RESET;
}

/* One direction, src -> dst, until neither a read nor a write can proceed. */
static enum zg_reason pump(struct zg_dir *d, struct zg_side *src, struct zg_side *dst,
			   const struct zg_side *down, int *progress, struct zg_relay *r)
{
	int read_blocked = 0, write_blocked = 0;

	for (;;) {
		ssize_t n;

		if (d->tail > d->head && !write_blocked) {
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
			write_blocked = 1;
		}
		if (src->eof || read_blocked)
			break;
		if (d->head > 0 && d->tail == ZG_RELAY_BUF) {
			memmove(d->buf, d->buf + d->head, d->tail - d->head);
			d->tail -= d->head;
			d->head = 0;
		}
		if (d->tail == ZG_RELAY_BUF)
			break; /* full: backpressure on src */
		if (r->budget == 0) {
			r->more = 1; /* fairness: the worker steps us again after others */
			break;
		}
		if (!d->buf && !(d->buf = malloc(ZG_RELAY_BUF)))
			return ZG_R_NO_MEMORY;
		n = side_read(src, d->buf + d->tail, ZG_RELAY_BUF - d->tail);
		if (n == IO_ERROR)
			return io_reason(src, down);
		if (n == IO_BLOCKED) {
			read_blocked = 1;
			continue; /* maybe still something to write */
		}
		*progress = 1;
		if (n == 0) {
			src->eof = 1;
			continue;
		}
		d->tail += (uint32_t)n;
		r->budget = (size_t)n < r->budget ? r->budget - (size_t)n : 0;
	}
	if (d->tail == d->head && d->buf) {
		/* Drained: an idle connection keeps no buffer. */
		free(d->buf);
		d->buf = NULL;
		d->head = d->tail = 0;
	}
	if (src->eof && d->tail == d->head && !dst->shut) {
		if (side_shutdown(dst) == 0)
			*progress = 1;
	}
	return ZG_R_OK;
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
	do {
		progress = 0;
		down->want = up->want = 0;
		if ((rc = pump(&r->d2u, down, up, down, &progress, r)) != ZG_R_OK)
			return rc;
		if ((rc = pump(&r->u2d, up, down, down, &progress, r)) != ZG_R_OK)
			return rc;
	} while (progress && !r->more);
	if (r->d2u.bytes + r->u2d.bytes != before || ((unsigned)down->eof | ((unsigned)up->eof << 1)) != eof_before)
		r->last_activity_ms = now_ms;
	if (!r->first_eof)
		r->first_eof = down->eof ? 1 : up->eof ? 2 : 0;
	if (down->eof && up->eof && down->shut && up->shut)
		return r->first_eof == 2 ? ZG_R_UPSTREAM_CLOSED : ZG_R_CLIENT_CLOSED;
	return ZG_R_OK;
}

void zg_relay_free(struct zg_relay *r)
{
	free(r->d2u.buf);
	free(r->u2d.buf);
	r->d2u.buf = r->u2d.buf = NULL;
}
