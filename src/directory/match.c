/* match.c - questions asked of a loaded directory: accessors, lookups by id
 * and address, certificate identities (SANs and SPKI pins), a route's peers,
 * and the decisions zg_directory_decide / check_addr / check_peer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "directory/directory.h"
#include "directory/lpm.h"
#include "directory/model_int.h"

/* ---- accessors --------------------------------------------------------- */

uint64_t zg_directory_serial(const struct zg_directory *d)
{
	return d->serial;
}

const char *zg_directory_issuer(const struct zg_directory *d)
{
	return d->issuer;
}

time_t zg_directory_issued_at(const struct zg_directory *d)
{
	return d->issued_at;
}

time_t zg_directory_expires(const struct zg_directory *d)
{
	return d->expires;
}

const uint8_t *zg_directory_digest(const struct zg_directory *d)
{
	return d->digest;
}

size_t zg_directory_count(const struct zg_directory *d)
{
	return d->n_parts;
}

size_t zg_directory_prefix_count(const struct zg_directory *d)
{
	return d->n_prefixes;
}

size_t zg_directory_lpm_memory(const struct zg_directory *d)
{
	return d->lpm ? zg_lpm_memory(d->lpm) : 0;
}

const struct zg_participant *zg_directory_participant(const struct zg_directory *d, size_t i)
{
	return i < d->n_parts ? &d->parts[i] : NULL;
}

const struct zg_participant *zg_directory_find_id(const struct zg_directory *d, const char *id)
{
	for (size_t i = 0; i < d->n_parts; i++)
		if (strcmp(d->parts[i].id, id) == 0)
			return &d->parts[i];
	return NULL;
}

/* ---- lookups ----------------------------------------------------------- */

const struct zg_participant *zg_directory_lookup_prefix(const struct zg_directory *d,
							const uint8_t addr[16],
							struct zg_prefix *match)
{
	unsigned len = 0;
	uint32_t v = d->lpm ? zg_lpm_lookup(d->lpm, addr, &len) : ZG_LPM_NONE;

	if (v == ZG_LPM_NONE || v >= d->n_parts)
		return NULL;
	if (match) {
		memcpy(match->addr, addr, 16);
		match->len = (uint8_t)len;
		for (unsigned b = len; b < 128; b++)
			match->addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
	}
	return &d->parts[v];
}

const struct zg_participant *zg_directory_lookup_addr(const struct zg_directory *d,
						      const uint8_t addr[16])
{
	return zg_directory_lookup_prefix(d, addr, NULL);
}

int zg_directory_spki_sha256(X509 *leaf, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &der);
	int rc = -1;

	if (n > 0 && EVP_Digest(der, (size_t)n, out, NULL, EVP_sha256(), NULL) == 1)
		rc = 0;
	OPENSSL_free(der);
	return rc;
}

/* A SAN as a NUL-terminated string in @buf (DNS lower-cased); 0, or -1 if
 * it is not DNS/URI, embeds a NUL or is too long to match anything. */
static int san_text(const GENERAL_NAME *gn, enum ident_kind *kind, char *buf, size_t cap)
{
	const ASN1_STRING *s;
	int len;

	if (gn->type == GEN_DNS) {
		*kind = ID_DNS;
		s = gn->d.dNSName;
	} else if (gn->type == GEN_URI) {
		*kind = ID_URI;
		s = gn->d.uniformResourceIdentifier;
	} else {
		return -1;
	}
	len = ASN1_STRING_length(s);
	if (len <= 0 || (size_t)len >= cap || memchr(ASN1_STRING_get0_data(s), 0, (size_t)len))
		return -1;
	memcpy(buf, ASN1_STRING_get0_data(s), (size_t)len);
	buf[len] = '\0';
	if (*kind == ID_DNS)
		dir_lower(buf);
	return 0;
}

static int names_match(const struct zg_participant *p, const GENERAL_NAMES *sans)
{
	char buf[1100];
	enum ident_kind kind;

	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		if (san_text(sk_GENERAL_NAME_value(sans, i), &kind, buf, sizeof(buf)) < 0)
			continue;
		char **list = kind == ID_DNS ? p->dns : p->uri;
		unsigned n = kind == ID_DNS ? p->n_dns : p->n_uri;
		for (unsigned j = 0; j < n; j++)
			if (strcmp(list[j], buf) == 0)
				return 1;
	}
	return 0;
}

/* The rule of zg_directory_cert_matches with SANs and pin hash at hand
 * (@spki NULL if not computed because no participant has pins). */
static int matches(const struct zg_participant *p, const GENERAL_NAMES *sans, const uint8_t *spki)
{
	int pin_ok = p->n_spki == 0;

	if (p->n_dns + p->n_uri > 0 && !names_match(p, sans))
		return 0;
	for (unsigned i = 0; spki && !pin_ok && i < p->n_spki; i++)
		pin_ok = memcmp(p->spki[i], spki, 32) == 0;
	return pin_ok;
}

int zg_directory_cert_matches(const struct zg_directory *d, const struct zg_participant *p,
			      X509 *leaf)
{
	uint8_t spki[32];
	GENERAL_NAMES *sans;
	int rc;

	(void)d;
	if (!p || !leaf)
		return 0;
	if (p->n_spki && zg_directory_spki_sha256(leaf, spki) < 0)
		return -1;
	sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	rc = matches(p, sans, p->n_spki ? spki : NULL);
	GENERAL_NAMES_free(sans);
	return rc;
}

static uint32_t ident_owner(const struct zg_directory *d, enum ident_kind kind, const void *value)
{
	struct ident key = {kind, 0, value};
	const struct ident *hit = d->n_idx ? bsearch(&key, d->idx, d->n_idx, sizeof(*d->idx),
						     dir_ident_cmp)
					   : NULL;

	return hit ? hit->owner : UINT32_MAX;
}

static void add_candidate(uint32_t *cand, unsigned *n, unsigned max, uint32_t owner)
{
	if (owner == UINT32_MAX)
		return;
	for (unsigned i = 0; i < *n; i++)
		if (cand[i] == owner)
			return;
	if (*n < max)
		cand[(*n)++] = owner;
}

const struct zg_participant *zg_directory_find_by_cert(const struct zg_directory *d, X509 *leaf,
						       int *ambiguous)
{
	enum { MAXC = 16 };
	uint32_t cand[MAXC];
	unsigned nc = 0, hits = 0;
	uint8_t spki[32];
	const uint8_t *pin = NULL;
	const struct zg_participant *found = NULL;
	GENERAL_NAMES *sans;
	char buf[1100];
	enum ident_kind kind;

	if (ambiguous)
		*ambiguous = 0;
	if (!leaf)
		return NULL;
	sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++)
		if (san_text(sk_GENERAL_NAME_value(sans, i), &kind, buf, sizeof(buf)) == 0)
			add_candidate(cand, &nc, MAXC, ident_owner(d, kind, buf));
	if (d->has_pins && zg_directory_spki_sha256(leaf, spki) == 0) {
		pin = spki;
		add_candidate(cand, &nc, MAXC, ident_owner(d, ID_SPKI, spki));
	}
	for (unsigned i = 0; i < nc; i++) {
		const struct zg_participant *p = &d->parts[cand[i]];
		/* a participant with pins needs the hash; failing to get it
		 * means no match, never a pass */
		if ((p->n_spki == 0 || pin) && matches(p, sans, pin)) {
			found = p;
			hits++;
		}
	}
	GENERAL_NAMES_free(sans);
	if (hits > 1) {
		if (ambiguous)
			*ambiguous = 1;
		return NULL;
	}
	return found;
}

/* ---- peers and decisions ----------------------------------------------- */

int zg_peers_parse(const char *s, struct zg_peers *out, const char **why)
{
	const char *p = s;

	memset(out, 0, sizeof(*out));
	while (*p) {
		size_t n;
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		n = strcspn(p, ", \t");
		if (n == 1 && *p == '*') {
			out->any = 1;
		} else {
			char id[ZG_DIR_ID_MAX];
			if (n >= sizeof(id)) {
				*why = "participant id longer than 63 characters";
				return -1;
			}
			memcpy(id, p, n);
			id[n] = '\0';
			if (!dir_valid_id(id)) {
				*why = "participant ids are made of A-Z a-z 0-9 . _ -";
				return -1;
			}
			if (zg_peers_allows(out, id) && !out->any) {
				*why = "participant listed twice";
				return -1;
			}
			if (out->n >= ZG_PEERS_MAX) {
				*why = "more than 64 participants listed";
				return -1;
			}
			memcpy(out->id[out->n++], id, n + 1);
		}
		p += n;
	}
	if (!out->any && out->n == 0) {
		*why = "empty: give participant ids or *";
		return -1;
	}
	if (out->any && out->n) {
		*why = "* cannot be combined with participant ids";
		return -1;
	}
	return 0;
}

int zg_peers_allows(const struct zg_peers *peers, const char *id)
{
	if (!peers || peers->any)
		return 1;
	for (unsigned i = 0; i < peers->n; i++)
		if (strcmp(peers->id[i], id) == 0)
			return 1;
	return 0;
}

enum zg_reason zg_directory_decide(const struct zg_participant *by_addr,
				   const struct zg_participant *by_cert, int cert_checked,
				   const struct zg_peers *peers, char *detail, size_t cap)
{
	if (!by_addr) {
		snprintf(detail, cap, "address is in no participant's prefixes");
		return ZG_R_DIR_UNKNOWN_ADDR;
	}
	if (!zg_peers_allows(peers, by_addr->id)) {
		snprintf(detail, cap, "participant %s is not in the route's peers", by_addr->id);
		return ZG_R_DIR_PEER_NOT_ALLOWED;
	}
	if (cert_checked && !by_cert) {
		snprintf(detail, cap, "address is participant %s, certificate belongs to no participant",
			 by_addr->id);
		return ZG_R_DIR_IDENTITY_MISMATCH;
	}
	if (cert_checked && by_cert != by_addr && strcmp(by_cert->id, by_addr->id) != 0) {
		snprintf(detail, cap, "address is participant %s, certificate is participant %s",
			 by_addr->id, by_cert->id);
		return ZG_R_DIR_IDENTITY_MISMATCH;
	}
	snprintf(detail, cap, "participant %s", by_addr->id);
	return ZG_R_OK;
}

enum zg_reason zg_directory_check_addr(const struct zg_directory *d, time_t now,
				       const uint8_t addr[16], const struct zg_peers *peers,
				       const struct zg_participant **out, char *detail, size_t cap)
{
	const struct zg_participant *p;
	char t[32];

	if (out)
		*out = NULL;
	if (now >= d->expires) {
		zg_directory_format_time(d->expires, t, sizeof(t));
		snprintf(detail, cap, "directory serial %llu expired at %s",
			 (unsigned long long)d->serial, t);
		return ZG_R_DIR_STALE;
	}
	p = zg_directory_lookup_addr(d, addr);
	if (out)
		*out = p;
	return zg_directory_decide(p, NULL, 0, peers, detail, cap);
}

enum zg_reason zg_directory_check_peer(const struct zg_directory *d, time_t now,
				       const uint8_t addr[16], X509 *leaf,
				       const struct zg_peers *peers, char *detail, size_t cap)
{
	const struct zg_participant *by_addr, *by_cert;
	enum zg_reason r = zg_directory_check_addr(d, now, addr, peers, &by_addr, detail, cap);
	int ambiguous = 0;

	if (r != ZG_R_OK)
		return r;
	if (!leaf) {
		snprintf(detail, cap, "address is participant %s, no certificate to check", by_addr->id);
		return ZG_R_DIR_IDENTITY_MISMATCH;
	}
	by_cert = zg_directory_find_by_cert(d, leaf, &ambiguous);
	if (ambiguous) {
		snprintf(detail, cap, "address is participant %s, certificate matches several participants",
			 by_addr->id);
		return ZG_R_DIR_IDENTITY_MISMATCH;
	}
	return zg_directory_decide(by_addr, by_cert, 1, peers, detail, cap);
}
