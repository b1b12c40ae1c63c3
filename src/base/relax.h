/* relax.h - the checks an emergency override may relax, and no others.
 *
 * Only freshness and availability: a stale CRL, a stale or expired
 * directory, a peer certificate expired less than a configured limit ago,
 * a participant's connection limit. Authentication is never relaxed (no
 * client certificate, an untrusted chain, a revoked certificate, a bad
 * signature, an identity bound to another participant's address, a protocol
 * or cipher outside the profile): there is no bit for it here, so no code
 * path can ask for it. See docs/policy.md.
 */
#ifndef ZG_RELAX_H
#define ZG_RELAX_H

#include <stddef.h>

enum zg_relax {
	ZG_RELAX_CRL_STALE = 1u << 0,         /* reason crl_stale */
	ZG_RELAX_DIRECTORY_STALE = 1u << 1,   /* reason directory_stale */
	ZG_RELAX_CERT_EXPIRED = 1u << 2,      /* reason cert_expired, within a limit */
	ZG_RELAX_PARTICIPANT_LIMIT = 1u << 3, /* reason directory_participant_limit */
};
#define ZG_RELAX_ALL 0xfu

/* Parse "crl_stale,cert_expired" (the reason codes the checks refuse with)
 * into a mask. -1 with @why naming the first word that is not relaxable
 * (and why, if it is an authentication check). Pure. */
int zg_relax_parse(const char *list, unsigned *mask, char *why, size_t cap);

/* @mask as "crl_stale,cert_expired" ("-" for none) into @buf. Pure. */
char *zg_relax_format(unsigned mask, char *buf, size_t cap);

#endif
