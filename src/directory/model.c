/* model.c - the directory's data model and its rules: parsing and validating
 * the JSON (docs/directory.md), the identity index and the LPM, reference
 * counting, the freshness check, and the per-participant connection counters.
 * Reading and verifying the files is load.c; matching is match.c. */
#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "directory/directory.h"
#include "directory/lpm.h"
#include "directory/model_int.h"

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

void dir_set_why(char *why, size_t cap, enum zg_reason r, const char *detail)
{
	if (cap)
		snprintf(why, cap, "%s: %s", zg_reason_code(r), detail);
}

/* ---- small syntax checks ---------------------------------------------- */

int dir_valid_id(const char *s)
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

/* A DICOM AE title as the A-ASSOCIATE-RQ carries it once its padding is
 * removed (PS3.5 VR AE): 1-16 printable ASCII characters, no backslash,
 * no leading or trailing space. */
static int valid_ae(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 16 || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '\\')
			return 0;
	return 1;
}

/* An HL7 sending facility (MSH-4, or its namespace id): 1-227 bytes, no
 * control characters, no field separator '|'. */
static int valid_facility(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 227)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '|')
			return 0;
	return 1;
}

void dir_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
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
				    ok == valid_dns ? "DNS name" : ok == valid_uri ? "URI" :
				    ok == valid_ae ? "AE title" : "HL7 facility");
		(*out)[i] = strdup(json_string_value(v));
		if (!(*out)[i])
			return fail(e, "out of memory");
		(*n)++;
		if (fold)
			dir_lower((*out)[i]);
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
		    zg_b64_decode_exact(json_string_value(v), json_string_length(v), p->spki[i], 32) < 0)
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
	static const char *const keys[] = {"id", "name", "identities", "prefixes", "max_connections",
					   "dicom_ae_titles", "hl7_facilities", NULL};
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
	if (!dir_valid_id(id))
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
	if (get_identities(obj, where, p, e) < 0 || get_prefixes(obj, where, p, total, e) < 0 ||
	    get_names(obj, "dicom_ae_titles", valid_ae, 0, where, &p->dicom_ae, &p->n_dicom_ae, e) < 0 ||
	    get_names(obj, "hl7_facilities", valid_facility, 0, where, &p->hl7_facilities,
		      &p->n_hl7_facilities, e) < 0)
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

int dir_ident_cmp(const void *pa, const void *pb)
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
	static const char *const names[] = {[ID_DNS] = "DNS name", [ID_URI] = "URI",
					    [ID_SPKI] = "SPKI pin", [ID_AE] = "DICOM AE title",
					    [ID_HL7] = "HL7 facility"};

	return names[k];
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
		n += (size_t)d->parts[i].n_dns + d->parts[i].n_uri + d->parts[i].n_spki +
		     d->parts[i].n_dicom_ae + d->parts[i].n_hl7_facilities;
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
		/* an AE title or a facility names one participant: two claiming
		 * it could each pass as the other */
		for (unsigned j = 0; j < p->n_dicom_ae; j++)
			d->idx[k++] = (struct ident){ID_AE, (uint32_t)i, p->dicom_ae[j]};
		for (unsigned j = 0; j < p->n_hl7_facilities; j++)
			d->idx[k++] = (struct ident){ID_HL7, (uint32_t)i, p->hl7_facilities[j]};
		d->has_pins |= p->n_spki > 0;
	}
	d->n_idx = n;
	qsort(d->idx, n, sizeof(*d->idx), dir_ident_cmp);
	for (size_t i = 1; i < n; i++) {
		const struct ident *a = &d->idx[i - 1], *b = &d->idx[i];
		if (dir_ident_cmp(a, b) != 0)
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
	for (unsigned i = 0; p->dicom_ae && i < p->n_dicom_ae; i++)
		free(p->dicom_ae[i]);
	for (unsigned i = 0; p->hl7_facilities && i < p->n_hl7_facilities; i++)
		free(p->hl7_facilities[i]);
	free(p->dns);
	free(p->uri);
	free(p->dicom_ae);
	free(p->hl7_facilities);
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
		dir_set_why(why, cap, ZG_R_DIR_MALFORMED, detail);
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
		dir_set_why(why, cap, r, detail);
	return r;
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
