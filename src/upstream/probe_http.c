/* probe_http.c - HTTP GET as a health probe; see probe.h. Only the status
 * line is judged; the body is never read. */
#include <stdio.h>
#include <string.h>

#include "upstream/probe.h"

size_t zg_http_request(const char *path, const char *host, uint8_t *out, size_t cap)
{
	int n = snprintf((char *)out, cap,
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: zonegate-health-check\r\n"
			 "Accept: */*\r\nConnection: close\r\n\r\n", path, host);

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

int zg_http_reply(const uint8_t *buf, size_t len, size_t cap, unsigned want, enum zg_reason *v,
		  char *detail, size_t dcap)
{
	static const char proto[] = "HTTP/1.";
	const uint8_t *nl = memchr(buf, '\n', len);
	unsigned status = 0;

	if (memcmp(buf, proto, len < 7 ? len : 7) != 0)
		goto bad;
	if (!nl) {
		if (len >= cap || len > 1024)
			goto bad;
		return 0;
	}
	/* "HTTP/1.x NNN" then a blank or the line end */
	if (nl - buf < 12 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
		goto bad;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			goto bad;
		status = status * 10 + (unsigned)(buf[i] - '0');
	}
	if (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n')
		goto bad;
	if (status == want) {
		*v = ZG_R_OK;
		return 1;
	}
	*v = ZG_R_CHECK_REJECTED;
	snprintf(detail, dcap, "HTTP status %u, expected %u", status, want);
	return 1;
bad:
	*v = ZG_R_CHECK_BAD_REPLY;
	snprintf(detail, dcap, "not an HTTP/1.x status line");
	return 1;
}
