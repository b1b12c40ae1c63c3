/* server_name.c - see server_name.h. */
#include <arpa/inet.h>
#include <string.h>

#include "policy/server_name.h"

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 1123 host name (see server_name.h); '_' is allowed because real
 * SANs and upstream names carry it. */
int zg_is_hostname(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
		if (label == 0 && s[i] == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* Length of the RFC 3986 scheme at the start of @s, 0 if there is none. */
static size_t scheme_len(const char *s)
{
	size_t i = 0;

	if (!is_alpha(s[0]))
		return 0;
	while (is_alpha(s[i]) || is_digit(s[i]) || (s[i] && strchr("+-.", s[i])))
		i++;
	return i;
}

static int is_uri(const char *s)
{
	size_t i = scheme_len(s), digits = 0, n = 0;

	if (i == 0 || s[i] != ':' || s[i + 1] == '\0')
		return 0;
	for (const char *p = s + i + 1; *p; p++, n++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return 0;
		digits += is_digit(*p);
	}
	return digits != n; /* "pacs.example:11112" is a host and port */
}

enum zg_server_name_kind zg_server_name_kind(const char *name)
{
	struct in_addr a;

	if (!name)
		return ZG_SN_INVALID;
	if (strchr(name, ':'))
		return is_uri(name) ? ZG_SN_URI : ZG_SN_INVALID;
	if (inet_pton(AF_INET, name, &a) == 1 || !zg_is_hostname(name, strlen(name)))
		return ZG_SN_INVALID;
	return ZG_SN_DNS;
}
