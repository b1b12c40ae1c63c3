/* relay.h - moving bytes between the two sides of a connection.
 *
 * Each direction has one bounded buffer (ZG_RELAY_BUF bytes, allocated when
 * data arrives and released when drained, so an idle connection holds none).
 * A full buffer stops reads on its source: backpressure is simply "no
 * EPOLLIN for that side", and memory per connection stays bounded. End of
 * stream on one side is passed on as a half-close (TLS close_notify and/or
 * TCP FIN) once the buffer behind it is flushed, and the other direction
 * keeps flowing: a DICOM or HL7 peer that shuts its write side still gets
 * its reply. Traffic classes (shape/) plug in the same way: a direction
 * whose class is out of tokens is a direction whose source is not read
 * (no read, no EPOLLIN) until the worker's timer says its tokens are back.
 */
#ifndef ZG_RELAY_H
#define ZG_RELAY_H

#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "base/reason.h"
#include "shape/class.h"

#define ZG_RELAY_BUF (16 * 1024)

/* Spare relay buffers one worker keeps: a direction that drains hands its
 * buffer back here rather than to free(), and the next read takes it, so a
 * request/response exchange allocates nothing per message. Idle
 * connections still hold no buffer; the worker holds at most this many. */
#define ZG_RELAY_SPARES_MAX 8

struct zg_relay_spares {
	char *buf[ZG_RELAY_SPARES_MAX];
	unsigned n;
};

/* Bytes one step may read before yielding to other connections of the
 * worker: a bulk transfer must not starve an interactive DICOM exchange. */
#define ZG_RELAY_STEP_BUDGET (256 * 1024)

/* Why an I/O call on a side could not go on; drives epoll interest. */
enum {
	ZG_WANT_READ = 1,  /* the side's socket must become readable */
	ZG_WANT_WRITE = 2, /* the side's socket must become writable */
};

struct zg_conn;

struct zg_side {
	uint32_t magic;
	int fd;
	SSL *ssl;            /* NULL for plain TCP */
	struct zg_conn *conn;
	uint32_t interest;   /* epoll events currently registered */
	unsigned want;       /* ZG_WANT_*: the epoll interest this side needs now */
	unsigned rd_wait;    /* what the last read blocked on (ZG_WANT_*), 0 = may read */
	unsigned wr_wait;    /* what the last write/shutdown blocked on, 0 = may write */
	unsigned eof : 1;    /* read side done: peer sent FIN/close_notify */
	unsigned shut : 1;   /* we sent our FIN/close_notify */
	unsigned tls_dead : 1; /* fatal TLS error: never call SSL_shutdown */
	unsigned registered : 1; /* fd is in the epoll set */
	unsigned peer_alert : 1; /* the fatal error was an alert the peer sent */
	unsigned truncated : 1;  /* its TLS stream ended by FIN, no close_notify */
};

struct zg_dir {
	char *buf;           /* NULL while empty */
	uint32_t head, tail; /* data is buf[head..tail) */
	uint64_t bytes;      /* delivered to the destination */
	struct zg_shape_flow flow; /* its traffic class; flow.cls NULL: not shaped */
	unsigned throttled : 1; /* out of tokens this step: source neither read nor watched */
	unsigned leased : 1;    /* took its one lease this step */
	unsigned split : 1;     /* its last read filled a short room: a record may be split */
};

/* A filter on one direction (protocol inspection, engine/clinical.c):
 * called with the @n bytes just read at @in, it writes what is to be
 * forwarded at @out and sets *@produced. @out lies headroom bytes before
 * @in, so the output may exceed the input by up to headroom bytes (bytes
 * held from an earlier read, an answer injected) and be written front to
 * back over the input. Called with @n == 0 (@in NULL) when *pending is
 * non-zero, to emit what it holds. Anything but ZG_R_OK stops the relay
 * with that reason. */
typedef enum zg_reason (*zg_relay_filter_fn)(void *arg, const uint8_t *in, size_t n, uint8_t *out,
					    size_t *produced);

struct zg_relay_filter {
	zg_relay_filter_fn fn;  /* NULL: bytes relayed as read */
	void *arg;
	uint32_t headroom;      /* < ZG_RELAY_BUF / 2 */
	const size_t *pending;  /* NULL, or non-zero when fn has bytes to emit */
};

struct zg_relay {
	struct zg_relay_filter f_d2u, f_u2d; /* inspection; zeroed: bytes relayed blind */
	struct zg_dir d2u;   /* client -> upstream */
	struct zg_dir u2d;   /* upstream -> client */
	uint64_t last_activity_ms;
	unsigned first_eof; /* 0 none yet, 1 client, 2 upstream */
	size_t budget;      /* bytes this step may still read */
	int more;           /* budget ran out with input pending: step again soon */
	uint64_t wake_ns;   /* a direction is throttled: step again at this time (0: none) */
	struct zg_relay_spares *spares; /* the worker's; NULL: malloc and free each buffer */
};

/* Move bytes both ways without blocking, up to ZG_RELAY_STEP_BUDGET read;
 * record in each side's `want` what it waits for. If the budget ran out,
 * r->more is set and the caller must step again later even without an
 * epoll event (the input may sit in OpenSSL's buffer, not the socket).
 * A shaped direction reads at most one lease (one buffer) per step, then
 * sets r->more; out of tokens, it sets r->wake_ns and the caller must step
 * again at that time (its source is not watched meanwhile).
 * Returns ZG_R_OK while the relay goes on, the close reason when both
 * directions ended or a side failed. */
enum zg_reason zg_relay_step(struct zg_relay *r, struct zg_side *down, struct zg_side *up,
			     uint64_t now_ms);

/* epoll reported @ready (ZG_WANT_READ and/or ZG_WANT_WRITE) on @s: the
 * calls that waited for it may run again. */
void zg_relay_ready(struct zg_side *s, unsigned ready);

/* The socket of @s (@down is the client side) failed or hung up after
 * the peer had ended its stream with close_notify, and no byte waits to be
 * sent to it: the peer finished cleanly and merely did not wait for our
 * close_notify (DCMTK closes at once, so ours meets a RST). Marks @s done
 * in both directions and returns 1; 0 when the failure may have lost data
 * (no close_notify came, or bytes for the peer are still buffered). */
int zg_relay_peer_finished(const struct zg_relay *r, struct zg_side *s, const struct zg_side *down);

/* Outcomes of zg_side_read / zg_side_write other than a byte count. */
enum { ZG_IO_BLOCKED = -1, ZG_IO_ERROR = -2 };

/* Read up to @n bytes from @s (TLS or plain): the count (> 0), 0 at end of
 * stream, ZG_IO_BLOCKED (s->rd_wait says for what) or ZG_IO_ERROR. */
ssize_t zg_side_read(struct zg_side *s, void *buf, size_t n);

/* Write up to @n bytes to @s: the count (> 0), ZG_IO_BLOCKED (s->wr_wait
 * set) or ZG_IO_ERROR. */
ssize_t zg_side_write(struct zg_side *s, const void *buf, size_t n);

/* Release both buffers (to r->spares while it has room). */
void zg_relay_free(struct zg_relay *r);

/* Free the spare buffers of @s (the worker ends). */
void zg_relay_spares_free(struct zg_relay_spares *s);

#endif
