/* http.c - see http.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "tls/http.h"

struct sink {
	struct zg_http_body *b;
	size_t max;
	int too_big;
};

/* libcurl's write callback: append, within the cap; 0 aborts. */
static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t add = size * n;
	unsigned char *p;

	if (add > s->max - s->b->len) {
		s->too_big = 1;
		return 0;
	}
	if (!(p = realloc(s->b->p, s->b->len + add)))
		return 0;
	memcpy(p + s->b->len, data, add);
	s->b->p = p;
	s->b->len += add;
	return add;
}

/* libcurl's progress callback: runs often while bytes move and about once
 * a second while they do not; non-zero aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const atomic_int *stop = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return stop && atomic_load(stop) ? 1 : 0;
}

/* Append "Name: value" to @list; the list, or NULL when out of memory. */
static struct curl_slist *header(struct curl_slist *list, const char *name, const char *value,
				 int *failed)
{
	char line[256];
	struct curl_slist *l;

	if (!value || *failed)
		return list;
	snprintf(line, sizeof(line), "%s: %s", name, value);
	if (!(l = curl_slist_append(list, line)))
		*failed = 1;
	return l ? l : list;
}

int zg_http_fetch(const struct zg_http_req *r, struct zg_http_body *b, char *why, size_t cap)
{
	struct sink s = {.b = b, .max = r->max_bytes};
	struct curl_slist *hdr = NULL;
	CURL *h = curl_easy_init();
	long status = 0;
	int failed = 0, rc = -1;
	CURLcode cc;

	hdr = header(hdr, "Content-Type", r->post ? r->content_type : NULL, &failed);
	hdr = header(hdr, "Accept", r->accept, &failed);
	if (!h || failed) {
		snprintf(why, cap, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE, (long)r->max_bytes);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)r->stop);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	if (hdr)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	if (r->post) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)r->post);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)r->post_len);
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (s.too_big)
		snprintf(why, cap, "answer larger than %zu bytes", r->max_bytes);
	else if (cc != CURLE_OK)
		snprintf(why, cap, "%s", curl_easy_strerror(cc));
	else if (status != 200)
		snprintf(why, cap, "HTTP status %ld", status);
	else
		rc = 0;
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	return rc;
}
