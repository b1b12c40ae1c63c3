/* relax.c - see relax.h. */
#include <stdio.h>
#include <string.h>

#include "base/relax.h"

static const struct {
	unsigned bit;
	const char *name;
} relaxable[] = {
	{ZG_RELAX_CRL_STALE, "crl_stale"},
	{ZG_RELAX_DIRECTORY_STALE, "directory_stale"},
	{ZG_RELAX_CERT_EXPIRED, "cert_expired"},
	{ZG_RELAX_PARTICIPANT_LIMIT, "directory_participant_limit"},
};

#define N_RELAXABLE (sizeof(relaxable) / sizeof(relaxable[0]))

/* The bit of check @w (@n bytes), 0 if it is not relaxable. */
static unsigned bit_of(const char *w, size_t n)
{
	for (size_t i = 0; i < N_RELAXABLE; i++)
		if (strlen(relaxable[i].name) == n && memcmp(relaxable[i].name, w, n) == 0)
			return relaxable[i].bit;
	return 0;
}

int zg_relax_parse(const char *list, unsigned *mask, char *why, size_t cap)
{
	const char *p = list;

	*mask = 0;
	while (p) { /* every item, an empty one too ("a,", ",") */
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		unsigned b = bit_of(p, n);
		if (!b) {
			snprintf(why, cap,
				 "'%.*s' cannot be relaxed: an override relaxes only crl_stale, "
				 "directory_stale, cert_expired, directory_participant_limit, "
				 "never authentication",
				 (int)(n > 64 ? 64 : n), p);
			return -1;
		}
		*mask |= b;
		p = e ? e + 1 : NULL;
	}
	if (!*mask) {
		snprintf(why, cap, "no check named (crl_stale, directory_stale, cert_expired, "
			 "directory_participant_limit)");
		return -1;
	}
	return 0;
}

char *zg_relax_format(unsigned mask, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_RELAXABLE; i++) {
		int k;
		if (!(mask & relaxable[i].bit))
			continue;
		k = snprintf(buf + n, cap - n, "%s%s", n ? "," : "", relaxable[i].name);
		if (k < 0 || (size_t)k >= cap - n)
			break;
		n += (size_t)k;
	}
	if (!n)
		snprintf(buf, cap, "-");
	return buf;
}
