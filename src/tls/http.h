/* http.h - one bounded HTTP(S) exchange, for the threads that fetch CRLs
 * and OCSP answers (crlfetch.c, ocsp.c) beside the data path.
 *
 * Bounded three ways: a timeout for connect and transfer, a size cap on the
 * answer, and an optional stop flag that aborts a transfer in progress
 * within about a second (libcurl's progress callback), so a thread asked to
 * stop never keeps the main thread waiting for a hung server's timeout.
 * Never call it on a worker: it blocks for up to the timeout.
 */
#ifndef ZG_HTTP_H
#define ZG_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct zg_http_req {
	const char *url;           /* http:// or https:// only */
	uint64_t timeout_ms;       /* connect and whole transfer */
	size_t max_bytes;          /* a longer answer fails */
	const unsigned char *post; /* body to POST, or NULL for GET */
	size_t post_len;
	const char *content_type;  /* POST: its Content-Type header, or NULL */
	const char *accept;        /* an Accept header, or NULL */
	const atomic_int *stop;    /* non-zero aborts the transfer; NULL: never */
};

struct zg_http_body {
	unsigned char *p; /* malloc'd; the caller frees it, also after a failure */
	size_t len;
};

/* Perform @r, the answer's body into @b (zeroed by the caller). 0 for an
 * HTTP 200, or -1 with the reason in @why: libcurl's error, "HTTP status
 * N", "answer larger than N bytes", "out of memory". */
int zg_http_fetch(const struct zg_http_req *r, struct zg_http_body *b, char *why, size_t cap);

#endif
