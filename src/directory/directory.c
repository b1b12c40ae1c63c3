/* directory.c - see directory.h; the file format is in docs/directory.md. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "directory/directory.h"
#include "base/errlist.h"
#include "directory/lpm.h"

enum ident_kind { ID_DNS, ID_URI, ID_SPKI };

/* One identity of one participant, in a table sorted by (kind, value) so
 * that duplicates are neighbours at load and a certificate's SANs are found
 * by binary search at handshake time. */
struct ident {
	enum ident_kind kind;
	uint32_t owner;    /* participant index */
	const void *value; /* NUL-terminated string, or 32 bytes for ID_SPKI */
};

struct zg_directory {
	atomic_uint refs;
	uint64_t serial;
	time_t issued_at, expires;
	char issuer[ZG_DIR_ISSUER_MAX];
	uint8_t digest[32];
	struct zg_participant *parts;
	size_t n_parts, n_prefixes;
	struct ident *idx;
	size_t n_idx;
	int has_pins;
	struct zg_lpm *lpm;
};

/* The first error wins; later ones would only be consequences. */
struct perr {
	char *why;
	size_t cap;
	int failed;
};

static int fail(struct perr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct perr *e, const char *fmt, ...)
{
	va_list ap;

	if (!e->failed && e->cap) {
		va_start(ap, fmt);
		vsnprintf(e->why, e->cap, fmt, ap);
		va_end(ap);
	}
	e->failed = 1;
	return -1;
}

static void set_why(char *why, size_t cap, enum zg_reason r, const char *detail)
{
	if (cap)
		snprintf(why, cap, "%s: %s", zg_reason_code(r), detail);
}

/* ---- small syntax checks ---------------------------------------------- */

static int valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= ZG_DIR_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

static int printable(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* A DNS name as it appears in a SAN: letters, digits, '-', dots between
 * labels, optionally a leading "*." (matched literally, never expanded). */
static int valid_dns(const char *s)
{
	size_t n = strlen(s);
	const char *p = s;

	if (n == 0 || n > 253)
		return 0;
	if (p[0] == '*' && p[1] == '.')
		p += 2;
	if (*p == '\0' || *p == '.' || s[n - 1] == '.')
		return 0;
	for (; *p; p++) {
		if (*p == '.' && p[1] == '.')
			return 0;
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return 0;
	}
	return 1;
}

static int valid_uri(const char *s)
{
	size_t n = strlen(s);
	const char *colon = strchr(s, ':');

	if (n == 0 || n > 1024 || !colon || colon == s)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* Strict base64 of exactly @want bytes (want <= 64), padding required. */
static int b64_decode_exact(const char *s, size_t slen, uint8_t *out, size_t want)
{
	uint8_t tmp[96];
	size_t enc = 4 * ((want + 2) / 3), pad = (3 - want % 3) % 3;
	char in[132];
	int n;

	if (want > 64 || slen != enc)
		return -1;
	for (size_t i = 0; i < slen; i++) {
		int is_pad = i >= slen - pad;
		if (is_pad ? s[i] != '=' : !(isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '/'))
			return -1;
	}
	memcpy(in, s, slen);
	in[slen] = '\0';
	n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)slen);
	if (n < 0 || (size_t)n != want + pad)
		return -1;
	memcpy(out, tmp, want);
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SSZ", UTC, nothing else. */
int zg_directory_parse_time(const char *s, time_t *out)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	int v[6] = {0}, field = 0;
	struct tm tm, back;
	time_t t;

	if (strlen(s) != sizeof(shape) - 1)
		return -1;
	for (size_t i = 0; shape[i]; i++) {
		if (shape[i] == 'd') {
			if (!isdigit((unsigned char)s[i]))
				return -1;
			v[field] = v[field] * 10 + (s[i] - '0');
		} else {
			if (s[i] != shape[i])
				return -1;
			field++;
		}
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23 || v[4] > 59 || v[5] > 59)
		return -1;
	t = timegm(&tm);
	/* timegm normalises 02-30 to 03-02: a round trip catches such dates */
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != v[2] || back.tm_mon != v[1] - 1)
		return -1;
	*out = t;
	return 0;
}

void zg_directory_format_time(time_t t, char *out, size_t cap)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		if (cap)
			snprintf(out, cap, "?");
	}
}

/* ---- JSON -------------------------------------------------------------- */

static int only_keys(json_t *obj, const char *const *allowed, const char *where, struct perr *e)
{
	const char *key;
	json_t *val;

	json_object_foreach(obj, key, val) {
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (!allowed[i])
			return fail(e, "%sunknown key \"%.64s\"", where, key);
	}
	return 0;
}

static const char *get_string(json_t *obj, const char *key, int required, const char *where,
			      struct perr *e)
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		if (required)
			fail(e, "%s\"%s\" is missing", where, key);
		return NULL;
	}
	if (!json_is_string(v)) {
		fail(e, "%s\"%s\" must be a string", where, key);
		return NULL;
	}
	return json_string_value(v);
}

static int get_int(json_t *obj, const char *key, int required, json_int_t lo, json_int_t hi,
		   const char *where, json_int_t *out, struct perr *e)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return required ? fail(e, "%s\"%s\" is missing", where, key) : 1;
	if (!json_is_integer(v))
		return fail(e, "%s\"%s\" must be an integer", where, key);
	*out = json_integer_value(v);
	if (*out < lo || *out > hi)
		return fail(e, "%s\"%s\" must be %lld..%lld", where, key, (long long)lo, (long long)hi);
	return 0;
}

static int get_time(json_t *obj, const char *key, time_t *out, struct perr *e)
{
	const char *s = get_string(obj, key, 1, "", e);

	if (!s)
		return -1;
	if (zg_directory_parse_time(s, out) < 0)
		return fail(e, "\"%s\" must be a UTC time YYYY-MM-DDTHH:MM:SSZ", key);
	return 0;
}

/* An optional array of strings, each checked by @ok, copied (lower-cased
 * if @fold) into a new array. */
static int get_names(json_t *obj, const char *key, int (*ok)(const char *), int fold,
		     const char *where, char ***out, unsigned *n, struct perr *e)
{
	json_t *arr = json_object_get(obj, key), *v;
	size_t i;

	*out = NULL;
	*n = 0;
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return fail(e, "%s\"%s\" must be an array of strings", where, key);
	if (json_array_size(arr) > ZG_DIR_IDENTITIES_MAX)
		return fail(e, "%s\"%s\" has more than %d entries", where, key, ZG_DIR_IDENTITIES_MAX);
	if (json_array_size(arr) == 0)
		return 0;
	*out = calloc(json_array_size(arr), sizeof(**out));
	if (!*out)
		return fail(e, "out of memory");
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || !ok(json_string_value(v)))
			return fail(e, "%s%s[%zu]: not a valid %s", where, key, i,
				    ok == valid_dns ? "DNS name" : "URI");
		(*out)[i] = strdup(json_string_value(v));
		if (!(*out)[i])
			return fail(e, "out of memory");
		(*n)++;
		if (fold)
			lower((*out)[i]);
	}
	return 0;
}

static int get_pins(json_t *obj, const char *where, struct zg_participant *p, struct perr *e)
{
	json_t *arr = json_object_get(obj, "spki_sha256"), *v;
	size_t i;

	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return fail(e, "%s\"spki_sha256\" must be an array of strings", where);
	if (json_array_size(arr) > ZG_DIR_IDENTITIES_MAX)
		return fail(e, "%s\"spki_sha256\" has more than %d entries", where, ZG_DIR_IDENTITIES_MAX);
	if (json_array_size(arr) == 0)
		return 0;
	p->spki = calloc(json_array_size(arr), sizeof(*p->spki));
	if (!p->spki)
		return fail(e, "out of memory");
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) ||
		    b64_decode_exact(json_string_value(v), json_string_length(v), p->spki[i], 32) < 0)
			return fail(e, "%sspki_sha256[%zu]: not base64 of a 32-byte SHA-256", where, i);
		p->n_spki++;
	}
	return 0;
}

static int get_identities(json_t *obj, const char *where, struct zg_participant *p, struct perr *e)
{
	static const char *const keys[] = {"dns", "uri", "spki_sha256", NULL};
	json_t *ids = json_object_get(obj, "identities");

	if (!ids)
		return fail(e, "%s\"identities\" is missing", where);
	if (!json_is_object(ids))
		return fail(e, "%s\"identities\" must be an object", where);
	if (only_keys(ids, keys, where, e) < 0 ||
	    get_names(ids, "dns", valid_dns, 1, where, &p->dns, &p->n_dns, e) < 0 ||
	    get_names(ids, "uri", valid_uri, 0, where, &p->uri, &p->n_uri, e) < 0 ||
	    get_pins(ids, where, p, e) < 0)
		return -1;
	if (p->n_dns + p->n_uri + p->n_spki == 0)
		return fail(e, "%s\"identities\" lists no dns, uri or spki_sha256", where);
	return 0;
}

static int get_prefixes(json_t *obj, const char *where, struct zg_participant *p, size_t *total,
			struct perr *e)
{
	json_t *arr = json_object_get(obj, "prefixes"), *v;
	size_t i;

	if (!arr)
		return fail(e, "%s\"prefixes\" is missing", where);
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return fail(e, "%s\"prefixes\" must be a non-empty array of strings", where);
	if (json_array_size(arr) > ZG_DIR_PREFIXES_MAX - *total)
		return fail(e, "%smore than %d prefixes in the directory", where, ZG_DIR_PREFIXES_MAX);
	p->prefixes = calloc(json_array_size(arr), sizeof(*p->prefixes));
	if (!p->prefixes)
		return fail(e, "out of memory");
	json_array_foreach(arr, i, v) {
		const char *why = "not a string";
		if (!json_is_string(v) || zg_prefix_parse(json_string_value(v), &p->prefixes[i], &why) < 0)
			return fail(e, "%sprefixes[%zu]: %s", where, i, why);
		p->n_prefixes++;
	}
	*total += p->n_prefixes;
	return 0;
}

static int get_participant(json_t *obj, size_t i, struct zg_participant *p, size_t *total,
			   struct perr *e)
{
	static const char *const keys[] = {"id", "name", "identities", "prefixes", "max_connections", NULL};
	char where[ZG_DIR_ID_MAX + 48];
	const char *id, *name;
	json_int_t max = 0;

	p->index = (unsigned)i;
	snprintf(where, sizeof(where), "participants[%zu]: ", i);
	if (!json_is_object(obj))
		return fail(e, "%smust be an object", where);
	id = get_string(obj, "id", 1, where, e);
	if (!id)
		return -1;
	if (!valid_id(id))
		return fail(e, "%s\"id\" must be 1..%d of A-Z a-z 0-9 . _ -", where, ZG_DIR_ID_MAX - 1);
	snprintf(p->id, sizeof(p->id), "%s", id);
	snprintf(where, sizeof(where), "participants[%zu] (%s): ", i, p->id);
	if (only_keys(obj, keys, where, e) < 0)
		return -1;
	name = get_string(obj, "name", 0, where, e);
	if (e->failed)
		return -1;
	if (name && !printable(name, ZG_DIR_NAME_MAX))
		return fail(e, "%s\"name\" must be 1..%d bytes without control characters", where,
			    ZG_DIR_NAME_MAX - 1);
	snprintf(p->name, sizeof(p->name), "%s", name ? name : p->id);
	if (get_int(obj, "max_connections", 0, 1, 1000000, where, &max, e) < 0)
		return -1;
	p->max_connections = (unsigned)max;
	if (get_identities(obj, where, p, e) < 0 || get_prefixes(obj, where, p, total, e) < 0)
		return -1;
	return 0;
}

static int get_header(json_t *root, struct zg_directory *d, struct perr *e)
{
	static const char *const keys[] = {"format", "issuer", "serial", "issued_at", "expires",
					   "participants", NULL};
	json_int_t format = 0, serial = 0;
	const char *issuer;

	if (!json_is_object(root))
		return fail(e, "top level must be an object");
	if (get_int(root, "format", 1, 0, INT32_MAX, "", &format, e) < 0)
		return -1;
	if (format != ZG_DIR_FORMAT)
		return fail(e, "\"format\" %lld is not supported (this gateway reads %d)",
			    (long long)format, ZG_DIR_FORMAT);
	if (only_keys(root, keys, "", e) < 0 || get_int(root, "serial", 1, 1, INT64_MAX, "", &serial, e) < 0)
		return -1;
	d->serial = (uint64_t)serial;
	issuer = get_string(root, "issuer", 1, "", e);
	if (!issuer)
		return -1;
	if (!printable(issuer, ZG_DIR_ISSUER_MAX))
		return fail(e, "\"issuer\" must be 1..%d bytes without control characters",
			    ZG_DIR_ISSUER_MAX - 1);
	snprintf(d->issuer, sizeof(d->issuer), "%s", issuer);
	if (get_time(root, "issued_at", &d->issued_at, e) < 0 ||
	    get_time(root, "expires", &d->expires, e) < 0)
		return -1;
	if (d->expires <= d->issued_at)
		return fail(e, "\"expires\" must be later than \"issued_at\"");
	return 0;
}

static int get_participants(json_t *root, struct zg_directory *d, struct perr *e)
{
	json_t *arr = json_object_get(root, "participants"), *v;
	size_t i;

	if (!arr)
		return fail(e, "\"participants\" is missing");
	if (!json_is_array(arr))
		return fail(e, "\"participants\" must be an array");
	if (json_array_size(arr) > ZG_DIR_PARTICIPANTS_MAX)
		return fail(e, "more than %d participants", ZG_DIR_PARTICIPANTS_MAX);
	if (json_array_size(arr) == 0)
		return 0;
	d->parts = calloc(json_array_size(arr), sizeof(*d->parts));
	if (!d->parts)
		return fail(e, "out of memory");
	json_array_foreach(arr, i, v) {
		/* counted first so that free sees the arrays of a half-parsed one */
		d->n_parts++;
		if (get_participant(v, i, &d->parts[i], &d->n_prefixes, e) < 0)
			return -1;
	}
	return 0;
}

/* ---- indexes ----------------------------------------------------------- */

static int ident_cmp(const void *pa, const void *pb)
{
	const struct ident *a = pa, *b = pb;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->kind == ID_SPKI)
		return memcmp(a->value, b->value, 32);
	return strcmp(a->value, b->value);
}

static const char *kind_name(enum ident_kind k)
{
	return k == ID_DNS ? "DNS name" : k == ID_URI ? "URI" : "SPKI pin";
}

static int id_cmp(const void *pa, const void *pb)
{
	const struct zg_participant *const *a = pa, *const *b = pb;

	return strcmp((*a)->id, (*b)->id);
}

static int check_unique_ids(struct zg_directory *d, struct perr *e)
{
	const struct zg_participant **v;
	int rc = 0;

	if (d->n_parts < 2)
		return 0;
	v = calloc(d->n_parts, sizeof(*v));
	if (!v)
		return fail(e, "out of memory");
	for (size_t i = 0; i < d->n_parts; i++)
		v[i] = &d->parts[i];
	qsort(v, d->n_parts, sizeof(*v), id_cmp);
	for (size_t i = 1; i < d->n_parts && rc == 0; i++)
		if (strcmp(v[i - 1]->id, v[i]->id) == 0)
			rc = fail(e, "participant id \"%s\" is used twice (participants[%u] and [%u])",
				  v[i]->id, v[i - 1]->index < v[i]->index ? v[i - 1]->index : v[i]->index,
				  v[i - 1]->index < v[i]->index ? v[i]->index : v[i - 1]->index);
	free(v);
	return rc;
}

static int build_idents(struct zg_directory *d, struct perr *e)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < d->n_parts; i++)
		n += (size_t)d->parts[i].n_dns + d->parts[i].n_uri + d->parts[i].n_spki;
	if (n == 0)
		return 0;
	d->idx = calloc(n, sizeof(*d->idx));
	if (!d->idx)
		return fail(e, "out of memory");
	for (size_t i = 0; i < d->n_parts; i++) {
		const struct zg_participant *p = &d->parts[i];
		for (unsigned j = 0; j < p->n_dns; j++)
			d->idx[k++] = (struct ident){ID_DNS, (uint32_t)i, p->dns[j]};
		for (unsigned j = 0; j < p->n_uri; j++)
			d->idx[k++] = (struct ident){ID_URI, (uint32_t)i, p->uri[j]};
		for (unsigned j = 0; j < p->n_spki; j++)
			d->idx[k++] = (struct ident){ID_SPKI, (uint32_t)i, p->spki[j]};
		d->has_pins |= p->n_spki > 0;
	}
	d->n_idx = n;
	qsort(d->idx, n, sizeof(*d->idx), ident_cmp);
	for (size_t i = 1; i < n; i++) {
		const struct ident *a = &d->idx[i - 1], *b = &d->idx[i];
		if (ident_cmp(a, b) != 0)
			continue;
		if (a->owner == b->owner)
			return fail(e, "participant \"%s\" lists %s %s twice", d->parts[a->owner].id,
				    kind_name(a->kind),
				    a->kind == ID_SPKI ? "(a pin)" : (const char *)a->value);
		/* one certificate identity must lead to one participant */
		return fail(e, "%s %s is claimed by participants \"%s\" and \"%s\"", kind_name(a->kind),
			    a->kind == ID_SPKI ? "(a pin)" : (const char *)a->value,
			    d->parts[a->owner < b->owner ? a->owner : b->owner].id,
			    d->parts[a->owner < b->owner ? b->owner : a->owner].id);
	}
	return 0;
}

static int build_lpm(struct zg_directory *d, struct perr *e)
{
	d->lpm = zg_lpm_new();
	if (!d->lpm)
		return fail(e, "out of memory");
	for (size_t i = 0; i < d->n_parts; i++) {
		const struct zg_participant *p = &d->parts[i];
		for (unsigned j = 0; j < p->n_prefixes; j++) {
			uint32_t owner = 0;
			char text[64];
			int rc = zg_lpm_insert(d->lpm, &p->prefixes[j], (uint32_t)i, &owner);
			if (rc < 0)
				return fail(e, "out of memory");
			if (rc == 0)
				continue;
			zg_prefix_format(&p->prefixes[j], text, sizeof(text));
			/* nested prefixes are fine (the longest wins); the same
			 * prefix for two owners has no defined winner */
			if (owner == i)
				return fail(e, "participant \"%s\" lists prefix %s twice", p->id, text);
			return fail(e, "prefix %s is claimed by participants \"%s\" and \"%s\"", text,
				    d->parts[owner].id, p->id);
		}
	}
	zg_lpm_shrink(d->lpm);
	return 0;
}

/* ---- lifecycle --------------------------------------------------------- */

static void free_participant(struct zg_participant *p)
{
	for (unsigned i = 0; p->dns && i < p->n_dns; i++)
		free(p->dns[i]);
	for (unsigned i = 0; p->uri && i < p->n_uri; i++)
		free(p->uri[i]);
	free(p->dns);
	free(p->uri);
	free(p->spki);
	free(p->prefixes);
}

static void directory_free(struct zg_directory *d)
{
	for (size_t i = 0; i < d->n_parts; i++)
		free_participant(&d->parts[i]);
	free(d->parts);
	free(d->idx);
	zg_lpm_free(d->lpm);
	free(d);
}

struct zg_directory *zg_directory_ref(const struct zg_directory *d)
{
	struct zg_directory *m = (struct zg_directory *)d;

	if (m)
		atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void zg_directory_unref(const struct zg_directory *d)
{
	struct zg_directory *m = (struct zg_directory *)d;

	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		directory_free(m);
}

struct zg_directory *zg_directory_parse(const char *json, size_t len, enum zg_reason *reason,
					char *why, size_t cap)
{
	char detail[400] = "";
	struct perr e = {detail, sizeof(detail), 0};
	struct zg_directory *d = calloc(1, sizeof(*d));
	json_error_t jerr;
	json_t *root = NULL;

	if (!d) {
		fail(&e, "out of memory");
		goto out;
	}
	atomic_init(&d->refs, 1);
	if (EVP_Digest(json, len, d->digest, NULL, EVP_sha256(), NULL) != 1) {
		fail(&e, "cannot compute SHA-256");
		goto out;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		fail(&e, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (get_header(root, d, &e) < 0 || get_participants(root, d, &e) < 0 ||
	    check_unique_ids(d, &e) < 0 || build_idents(d, &e) < 0 || build_lpm(d, &e) < 0)
		goto out;
out:
	json_decref(root);
	if (reason)
		*reason = e.failed ? ZG_R_DIR_MALFORMED : ZG_R_OK;
	if (e.failed) {
		set_why(why, cap, ZG_R_DIR_MALFORMED, detail);
		if (d)
			directory_free(d);
		return NULL;
	}
	return d;
}

enum zg_reason zg_directory_check_fresh(const struct zg_directory *d,
					const struct zg_directory *previous, time_t now,
					char *why, size_t cap)
{
	char a[32], b[32], detail[200];
	enum zg_reason r = ZG_R_OK;

	if (now >= d->expires) {
		zg_directory_format_time(d->expires, a, sizeof(a));
		snprintf(detail, sizeof(detail), "serial %llu expired at %s",
			 (unsigned long long)d->serial, a);
		r = ZG_R_DIR_EXPIRED;
	} else if (d->issued_at > now + ZG_DIR_SKEW_S) {
		zg_directory_format_time(d->issued_at, a, sizeof(a));
		zg_directory_format_time(now, b, sizeof(b));
		snprintf(detail, sizeof(detail), "serial %llu issued at %s, clock says %s",
			 (unsigned long long)d->serial, a, b);
		r = ZG_R_DIR_NOT_YET_VALID;
	} else if (previous && d->serial < previous->serial) {
		snprintf(detail, sizeof(detail), "serial %llu is older than serial %llu in force",
			 (unsigned long long)d->serial, (unsigned long long)previous->serial);
		r = ZG_R_DIR_ROLLBACK;
	} else if (previous && d->serial == previous->serial &&
		   memcmp(d->digest, previous->digest, sizeof(d->digest)) != 0) {
		snprintf(detail, sizeof(detail),
			 "serial %llu is in force with different content; a new directory needs a new serial",
			 (unsigned long long)d->serial);
		r = ZG_R_DIR_ROLLBACK;
	}
	if (r != ZG_R_OK)
		set_why(why, cap, r, detail);
	return r;
}

/* ---- signatures and files ---------------------------------------------- */

char *zg_directory_read_file(const char *path, size_t max, size_t *len, char *why, size_t cap)
{
	char ebuf[128];
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		goto fail_errno;
	if (fstat(fd, &st) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		snprintf(why, cap, "%s: not a regular file of at most %zu bytes", path, max);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(why, cap, "%s: out of memory", path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail_errno;
		if (n == 0)
			break; /* shrank while reading: use what is there */
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	*len = got;
	return buf;
fail_errno:
	snprintf(why, cap, "%s: %s", path, strerror_r(errno, ebuf, sizeof(ebuf)));
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

int zg_directory_decode_sig(const uint8_t *buf, size_t len, uint8_t sig[ZG_DIR_SIG_LEN])
{
	size_t a = 0, b = len;

	/* 64 bytes can only be the raw form: the base64 form is 88 */
	if (len == ZG_DIR_SIG_LEN) {
		memcpy(sig, buf, ZG_DIR_SIG_LEN);
		return 0;
	}
	while (a < b && isspace(buf[a]))
		a++;
	while (b > a && isspace(buf[b - 1]))
		b--;
	return b64_decode_exact((const char *)buf + a, b - a, sig, ZG_DIR_SIG_LEN);
}

int zg_directory_verify_sig(const void *data, size_t len, const uint8_t *sig, size_t siglen,
			    EVP_PKEY *pub, char *why, size_t cap)
{
	EVP_MD_CTX *ctx = NULL;
	int rc = -1;

	if (!EVP_PKEY_is_a(pub, "ED25519")) {
		snprintf(why, cap, "public key is not an Ed25519 key");
		return -1;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) != 1) {
		snprintf(why, cap, "cannot set up Ed25519 verification");
		goto out;
	}
	if (EVP_DigestVerify(ctx, sig, siglen, data, len) != 1) {
		snprintf(why, cap, "signature does not match the directory and the public key");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int zg_directory_sign(const void *data, size_t len, EVP_PKEY *key, uint8_t sig[ZG_DIR_SIG_LEN],
		      char *why, size_t cap)
{
	EVP_MD_CTX *ctx = NULL;
	size_t siglen = ZG_DIR_SIG_LEN;
	int rc = -1;

	if (!EVP_PKEY_is_a(key, "ED25519")) {
		snprintf(why, cap, "signing key is not an Ed25519 key");
		return -1;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, data, len) != 1 || siglen != ZG_DIR_SIG_LEN) {
		snprintf(why, cap, "Ed25519 signing failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static EVP_PKEY *read_pubkey(const char *path, char *why, size_t cap)
{
	EVP_PKEY *pk = NULL;
	BIO *bio = BIO_new_file(path, "r");

	if (!bio) {
		snprintf(why, cap, "%s: cannot open public key", path);
		return NULL;
	}
	pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!pk)
		snprintf(why, cap, "%s: not a PEM public key", path);
	else if (!EVP_PKEY_is_a(pk, "ED25519")) {
		snprintf(why, cap, "%s: not an Ed25519 public key", path);
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

static enum zg_reason read_sig(const char *path, uint8_t sig[ZG_DIR_SIG_LEN], char *detail, size_t cap)
{
	size_t len = 0;
	char *buf;

	if (!path || !*path) {
		snprintf(detail, cap, "no signature file configured");
		return ZG_R_DIR_UNSIGNED;
	}
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		snprintf(detail, cap, "%s: signature file does not exist", path);
		return ZG_R_DIR_UNSIGNED;
	}
	buf = zg_directory_read_file(path, 4096, &len, detail, cap);
	if (!buf)
		return ZG_R_DIR_UNREADABLE;
	if (len == 0) {
		free(buf);
		snprintf(detail, cap, "%s: signature file is empty", path);
		return ZG_R_DIR_UNSIGNED;
	}
	if (zg_directory_decode_sig((const uint8_t *)buf, len, sig) < 0) {
		free(buf);
		snprintf(detail, cap, "%s: not a 64-byte Ed25519 signature (raw or base64)", path);
		return ZG_R_DIR_BAD_SIGNATURE;
	}
	free(buf);
	return ZG_R_OK;
}

struct zg_directory *zg_directory_load_ex(const char *json_path, const char *sig_path,
					  const char *pubkey_path,
					  const struct zg_directory *previous, time_t now,
					  enum zg_reason *reason, char *why, size_t cap)
{
	char detail[400] = "";
	uint8_t sig[ZG_DIR_SIG_LEN];
	struct zg_directory *d = NULL;
	EVP_PKEY *pub = NULL;
	size_t len = 0;
	char *json;
	enum zg_reason r = ZG_R_DIR_UNREADABLE;

	json = zg_directory_read_file(json_path, ZG_DIR_FILE_MAX, &len, detail, sizeof(detail));
	if (!json)
		goto out;
	r = read_sig(sig_path, sig, detail, sizeof(detail));
	if (r != ZG_R_OK)
		goto out;
	r = ZG_R_DIR_UNREADABLE;
	pub = read_pubkey(pubkey_path, detail, sizeof(detail));
	if (!pub)
		goto out;
	/* the signature is checked before the parser sees a byte */
	r = ZG_R_DIR_BAD_SIGNATURE;
	if (zg_directory_verify_sig(json, len, sig, sizeof(sig), pub, detail, sizeof(detail)) < 0) {
		size_t k = strlen(detail);
		snprintf(detail + k, sizeof(detail) - k, " (%s)", json_path);
		goto out;
	}
	d = zg_directory_parse(json, len, &r, why, cap);
	if (!d)
		goto out_why_set;
	r = zg_directory_check_fresh(d, previous, now, why, cap);
	if (r != ZG_R_OK) {
		zg_directory_unref(d);
		d = NULL;
		goto out_why_set;
	}
	goto out_why_set;
out:
	set_why(why, cap, r, detail);
out_why_set:
	free(json);
	EVP_PKEY_free(pub);
	if (reason)
		*reason = r;
	return d;
}

struct zg_directory *zg_directory_load(const char *json_path, const char *sig_path,
				       const char *pubkey_path, const struct zg_directory *previous,
				       time_t now, char *why, size_t cap)
{
	return zg_directory_load_ex(json_path, sig_path, pubkey_path, previous, now, NULL, why, cap);
}

struct zg_directory *zg_directory_load_conf(const struct zg_conf_directory *cd,
					    const char *conf_path,
					    const struct zg_directory *previous, time_t now,
					    struct zg_errlist *errs)
{
	char why[600];
	struct zg_directory *d;

	if (!cd->file[0])
		return NULL;
	d = zg_directory_load(cd->file, cd->signature, cd->public_key, previous, now, why, sizeof(why));
	if (!d)
		zg_errlist_add(errs, conf_path, cd->line_file, "file", "%s", why);
	return d;
}

static void stamp_file(const char *path, uint64_t *dev, uint64_t *ino, uint64_t *size, int64_t *mtime)
{
	struct stat st;

	*dev = *ino = *size = 0;
	*mtime = 0;
	if (!path || !*path || stat(path, &st) < 0)
		return;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	*size = (uint64_t)st.st_size;
	*mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

int zg_directory_stamp(const struct zg_conf_directory *cd, const struct zg_dir_stamp *prev,
		       struct zg_dir_stamp *out)
{
	const char *paths[2] = {cd->file, cd->signature};

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 2; i++)
		stamp_file(paths[i], &out->f[i].dev, &out->f[i].ino, &out->f[i].size, &out->f[i].mtime_ns);
	return !prev || memcmp(prev, out, sizeof(*out)) != 0;
}

/* ---- per-participant counters ----------------------------------------- */

struct counter {
	char id[ZG_DIR_ID_MAX];
	_Atomic unsigned n;
};

/* Open addressing by FNV-1a of the id; slots point at separately allocated
 * counters, so growing the table never moves a counter a worker holds. */
struct zg_dir_counters {
	struct counter **slot;
	size_t cap, used;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

struct zg_dir_counters *zg_dir_counters_new(void)
{
	struct zg_dir_counters *t = calloc(1, sizeof(*t));

	if (t && !(t->slot = calloc(t->cap = 64, sizeof(*t->slot)))) {
		free(t);
		return NULL;
	}
	return t;
}

void zg_dir_counters_free(struct zg_dir_counters *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->cap; i++)
		free(t->slot[i]);
	free(t->slot);
	free(t);
}

static struct counter **counter_find(struct counter **slot, size_t cap, const char *id)
{
	size_t i = (size_t)fnv1a(id) & (cap - 1);

	while (slot[i] && strcmp(slot[i]->id, id) != 0)
		i = (i + 1) & (cap - 1);
	return &slot[i];
}

static int counters_grow(struct zg_dir_counters *t)
{
	size_t cap = t->cap * 2;
	struct counter **n = calloc(cap, sizeof(*n));

	if (!n)
		return -1;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i])
			*counter_find(n, cap, t->slot[i]->id) = t->slot[i];
	free(t->slot);
	t->slot = n;
	t->cap = cap;
	return 0;
}

static struct counter *counter_get(struct zg_dir_counters *t, const char *id)
{
	struct counter **c;

	if ((t->used + 1) * 2 > t->cap && counters_grow(t) < 0)
		return NULL;
	c = counter_find(t->slot, t->cap, id);
	if (!*c) {
		*c = calloc(1, sizeof(**c));
		if (!*c)
			return NULL;
		snprintf((*c)->id, sizeof((*c)->id), "%s", id);
		atomic_init(&(*c)->n, 0);
		t->used++;
	}
	return *c;
}

_Atomic unsigned **zg_dir_counters_bind(struct zg_dir_counters *t, const struct zg_directory *d)
{
	_Atomic unsigned **v;

	if (d->n_parts == 0 || !(v = calloc(d->n_parts, sizeof(*v))))
		return NULL;
	for (size_t i = 0; i < d->n_parts; i++) {
		struct counter *c = counter_get(t, d->parts[i].id);
		if (!c) {
			free(v);
			return NULL;
		}
		v[i] = &c->n;
	}
	return v;
}

enum zg_reason zg_directory_admit(const struct zg_participant *p, _Atomic unsigned *slot,
				  char *detail, size_t cap)
{
	unsigned before = atomic_fetch_add_explicit(slot, 1, memory_order_relaxed);

	if (p->max_connections && before >= p->max_connections) {
		atomic_fetch_sub_explicit(slot, 1, memory_order_relaxed);
		snprintf(detail, cap, "participant %s has %u of max_connections %u", p->id, before,
			 p->max_connections);
		return ZG_R_DIR_PARTICIPANT_LIMIT;
	}
	return ZG_R_OK;
}

void zg_directory_release(_Atomic unsigned *slot)
{
	atomic_fetch_sub_explicit(slot, 1, memory_order_relaxed);
}

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
		lower(buf);
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
	const struct ident *hit = d->n_idx ? bsearch(&key, d->idx, d->n_idx, sizeof(*d->idx), ident_cmp)
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
			if (!valid_id(id)) {
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
