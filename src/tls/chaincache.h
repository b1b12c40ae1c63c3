/* chaincache.h - a per-worker cache of certificate chains that passed full
 * verification, so that a returning peer's chain signatures are not checked
 * again on every handshake.
 *
 * What is cached is a fact that cannot change while a snapshot lives: "these
 * exact DER bytes, verified against this route's trust anchors, CRLs and
 * policy, passed". The key is SHA-256 over the peer's certificates as sent,
 * tagged with the snapshot generation, route and direction, so any reload
 * (new trust anchors, new CRLs, new policy) misses. What depends on the
 * clock is re-checked on every hit: every certificate's validity window and
 * the CRLs' nextUpdate; outside it the full verification runs again and
 * reports the precise rule. The peer's CertificateVerify signature is not
 * part of chain verification and is always checked by OpenSSL.
 */
#ifndef ZG_CHAINCACHE_H
#define ZG_CHAINCACHE_H

#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#define ZG_CHAINCACHE_SLOTS 1024 /* direct-mapped; a miss costs one full verification */

struct zg_chaincache_entry {
	uint8_t key[32];
	uint64_t tag;                /* 0 = empty */
	time_t valid_from, valid_until;
	STACK_OF(X509) *chain;       /* the verified chain, anchor last; owned */
};

struct zg_chaincache {
	EVP_MD *sha256;
	uint64_t hits, misses;
	struct zg_chaincache_entry slot[ZG_CHAINCACHE_SLOTS];
};

/* Tag for the SSL_CTX identified by (snapshot generation, route index,
 * direction): entries of any other tag never match. */
static inline uint64_t zg_chaincache_tag(uint64_t generation, unsigned route, int outbound)
{
	return (generation << 17) | ((uint64_t)(route & 0xffff) << 1) | (outbound ? 1u : 0u);
}

/* Set up an empty cache. 0, or -1 if SHA-256 is not available. */
int zg_chaincache_init(struct zg_chaincache *cc);

/* Drop every entry and the digest. */
void zg_chaincache_fini(struct zg_chaincache *cc);

/* Verify the chain in @xs through the cache: with no cache (@cc NULL or
 * @tag 0) or on a miss, runs X509_verify_cert() (and its verify callback)
 * and stores a success under @tag; on a hit within its validity window
 * installs the cached chain as verified and sets *@cached (if given) to 1.
 * Returns 1 verified, 0 refused. Called from the tls room's
 * cert_verify_callback, which knows the connection; the cache knows none. */
int zg_chaincache_verify(struct zg_chaincache *cc, uint64_t tag, X509_STORE_CTX *xs, int *cached);

#endif
