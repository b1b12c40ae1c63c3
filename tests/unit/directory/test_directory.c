/* test_directory.c - participant directory: parsing and every refusal,
 * signatures, freshness and rollback, address lookup, certificate binding,
 * peers and the decision function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "directory/directory.h"

#define T_ISSUED "2026-11-01T00:00:00Z"
#define T_EXPIRES "2026-12-31T00:00:00Z"
#define NOW ((time_t)1795564800) /* 2026-11-25T00:00:00Z */

static char tmpdir[64];

static const char *three =
	"{\"id\":\"site-a\",\"name\":\"Site A\",\"identities\":{\"dns\":[\"Site-A.zonegate.test\"]},"
	"\"prefixes\":[\"10.1.0.0/16\",\"2001:db8:a::/48\"],\"max_connections\":20},"
	"{\"id\":\"site-b\",\"identities\":{\"uri\":[\"urn:oid:1.2.392.200119.1\"]},"
	"\"prefixes\":[\"10.1.2.0/24\",\"192.0.2.5\"]},"
	"{\"id\":\"site-c\",\"identities\":{\"dns\":[\"c.zonegate.test\"],\"uri\":[\"urn:c\"]},"
	"\"prefixes\":[\"0.0.0.0/0\"]}";

static char *doc(char *buf, size_t cap, unsigned long serial, const char *parts)
{
	snprintf(buf, cap,
		 "{\"format\":1,\"issuer\":\"net-operator.test\",\"serial\":%lu,"
		 "\"issued_at\":\"" T_ISSUED "\",\"expires\":\"" T_EXPIRES "\",\"participants\":[%s]}",
		 serial, parts);
	return buf;
}

static struct zg_directory *parse(const char *json, char *why, size_t cap)
{
	enum zg_reason r = ZG_R__COUNT;
	struct zg_directory *d = zg_directory_parse(json, strlen(json), &r, why, cap);

	assert_int_equal(r, d ? ZG_R_OK : ZG_R_DIR_MALFORMED);
	return d;
}

static const struct zg_participant *who(const struct zg_directory *d, const char *addr)
{
	struct zg_prefix p;
	const char *why;

	assert_int_equal(zg_prefix_parse(addr, &p, &why), 0);
	return zg_directory_lookup_addr(d, p.addr);
}

static void parse_ok(void **state)
{
	char json[4096], why[512] = "";
	struct zg_directory *d;
	const struct zg_participant *a;
	(void)state;

	d = parse(doc(json, sizeof(json), 7, three), why, sizeof(why));
	assert_non_null(d);
	assert_int_equal(zg_directory_serial(d), 7);
	assert_string_equal(zg_directory_issuer(d), "net-operator.test");
	assert_int_equal(zg_directory_count(d), 3);
	assert_int_equal(zg_directory_prefix_count(d), 5);
	assert_true(zg_directory_expires(d) > zg_directory_issued_at(d));
	a = zg_directory_find_id(d, "site-a");
	assert_non_null(a);
	assert_string_equal(a->name, "Site A");
	assert_string_equal(a->dns[0], "site-a.zonegate.test"); /* folded */
	assert_int_equal(a->max_connections, 20);
	assert_string_equal(zg_directory_find_id(d, "site-b")->name, "site-b"); /* defaults to id */
	assert_null(zg_directory_find_id(d, "site-x"));
	zg_directory_unref(d);
}

static void lookup_longest_wins(void **state)
{
	char json[4096], why[512] = "";
	struct zg_directory *d;
	struct zg_prefix m, a;
	char txt[64];
	const char *w;
	(void)state;

	d = parse(doc(json, sizeof(json), 1, three), why, sizeof(why));
	assert_non_null(d);
	assert_string_equal(who(d, "10.1.9.9")->id, "site-a");
	assert_string_equal(who(d, "10.1.2.9")->id, "site-b"); /* /24 inside a's /16 */
	assert_string_equal(who(d, "192.0.2.5")->id, "site-b");
	assert_string_equal(who(d, "192.0.2.6")->id, "site-c"); /* /0 catches the rest of IPv4 */
	assert_string_equal(who(d, "::ffff:10.1.2.1")->id, "site-b");
	assert_string_equal(who(d, "2001:db8:a::77")->id, "site-a");
	assert_null(who(d, "2001:db8:b::1")); /* IPv4 /0 is not IPv6 */
	assert_int_equal(zg_prefix_parse("10.1.2.77", &a, &w), 0);
	assert_non_null(zg_directory_lookup_prefix(d, a.addr, &m));
	zg_prefix_format(&m, txt, sizeof(txt));
	assert_string_equal(txt, "10.1.2.0/24");
	zg_directory_unref(d);
}

struct bad_case {
	const char *json;  /* whole document, or NULL to wrap @parts */
	const char *parts; /* participants array content */
	const char *needle;
};

#define P_OK "\"identities\":{\"dns\":[\"x.test\"]},\"prefixes\":[\"10.0.0.0/8\"]"

static const struct bad_case bad[] = {
	{"", NULL, "line 1"},
	{"not json", NULL, "line 1"},
	{"[1,2]", NULL, "top level must be an object"},
	{"{\"issuer\":\"x\"}", NULL, "\"format\" is missing"},
	{"{\"format\":2}", NULL, "not supported"},
	{"{\"format\":\"1\"}", NULL, "must be an integer"},
	{"{\"format\":1,\"format\":1}", NULL, "duplicate"},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":1,\"issued_at\":\"" T_ISSUED "\",\"expires\":\"" T_EXPIRES
	 "\",\"participants\":[],\"extra\":1}", NULL, "unknown key \"extra\""},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":\"1\",\"issued_at\":\"" T_ISSUED "\",\"expires\":\"" T_EXPIRES
	 "\",\"participants\":[]}", NULL, "\"serial\" must be an integer"},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":0,\"issued_at\":\"" T_ISSUED "\",\"expires\":\"" T_EXPIRES
	 "\",\"participants\":[]}", NULL, "\"serial\" must be 1.."},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":1.5,\"issued_at\":\"" T_ISSUED "\",\"expires\":\"" T_EXPIRES
	 "\",\"participants\":[]}", NULL, "\"serial\" must be an integer"},
	{"{\"format\":1,\"issuer\":\"\",\"serial\":1,\"issued_at\":\"" T_ISSUED "\",\"expires\":\"" T_EXPIRES
	 "\",\"participants\":[]}", NULL, "\"issuer\" must be"},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":1,\"issued_at\":\"2026-11-01 00:00:00\",\"expires\":\"" T_EXPIRES
	 "\",\"participants\":[]}", NULL, "\"issued_at\" must be a UTC time"},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":1,\"issued_at\":\"2026-02-30T00:00:00Z\",\"expires\":\"" T_EXPIRES
	 "\",\"participants\":[]}", NULL, "\"issued_at\" must be a UTC time"},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":1,\"issued_at\":\"" T_ISSUED "\",\"expires\":\"2026-13-01T00:00:00Z"
	 "\",\"participants\":[]}", NULL, "\"expires\" must be a UTC time"},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":1,\"issued_at\":\"" T_EXPIRES "\",\"expires\":\"" T_ISSUED
	 "\",\"participants\":[]}", NULL, "must be later"},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":1,\"issued_at\":\"" T_ISSUED "\",\"expires\":\"" T_EXPIRES
	 "\"}", NULL, "\"participants\" is missing"},
	{"{\"format\":1,\"issuer\":\"i\",\"serial\":1,\"issued_at\":\"" T_ISSUED "\",\"expires\":\"" T_EXPIRES
	 "\",\"participants\":{}}", NULL, "must be an array"},
	{NULL, "7", "participants[0]: must be an object"},
	{NULL, "{" P_OK "}", "\"id\" is missing"},
	{NULL, "{\"id\":7," P_OK "}", "\"id\" must be a string"},
	{NULL, "{\"id\":\"a b\"," P_OK "}", "\"id\" must be 1..63"},
	{NULL, "{\"id\":\"\"," P_OK "}", "\"id\" must be 1..63"},
	{NULL, "{\"id\":\"a\"," P_OK "},{\"id\":\"a\",\"identities\":{\"dns\":[\"y.test\"]},\"prefixes\":[\"11.0.0.0/8\"]}",
	 "participant id \"a\" is used twice"},
	{NULL, "{\"id\":\"a\",\"color\":1," P_OK "}", "(a): unknown key \"color\""},
	{NULL, "{\"id\":\"a\",\"name\":\"x\\ny\"," P_OK "}", "\"name\" must be"},
	{NULL, "{\"id\":\"a\",\"name\":5," P_OK "}", "\"name\" must be a string"},
	{NULL, "{\"id\":\"a\",\"max_connections\":0," P_OK "}", "\"max_connections\" must be 1..1000000"},
	{NULL, "{\"id\":\"a\",\"prefixes\":[\"10.0.0.0/8\"]}", "\"identities\" is missing"},
	{NULL, "{\"id\":\"a\",\"identities\":[],\"prefixes\":[\"10.0.0.0/8\"]}", "\"identities\" must be an object"},
	{NULL, "{\"id\":\"a\",\"identities\":{},\"prefixes\":[\"10.0.0.0/8\"]}", "lists no dns, uri or spki_sha256"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[]},\"prefixes\":[\"10.0.0.0/8\"]}", "lists no dns"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"ip\":[\"1.2.3.4\"]},\"prefixes\":[\"10.0.0.0/8\"]}", "unknown key \"ip\""},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":\"x.test\"},\"prefixes\":[\"10.0.0.0/8\"]}", "must be an array of strings"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[\"bad name\"]},\"prefixes\":[\"10.0.0.0/8\"]}", "dns[0]: not a valid DNS name"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[\"a..b\"]},\"prefixes\":[\"10.0.0.0/8\"]}", "not a valid DNS name"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[7]},\"prefixes\":[\"10.0.0.0/8\"]}", "not a valid DNS name"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"uri\":[\"no-scheme\"]},\"prefixes\":[\"10.0.0.0/8\"]}", "uri[0]: not a valid URI"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"spki_sha256\":[\"AAAA\"]},\"prefixes\":[\"10.0.0.0/8\"]}",
	 "spki_sha256[0]: not base64 of a 32-byte SHA-256"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"spki_sha256\":[\"!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]},"
	       "\"prefixes\":[\"10.0.0.0/8\"]}", "not base64"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[\"x.test\"]}}", "\"prefixes\" is missing"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[\"x.test\"]},\"prefixes\":[]}", "non-empty array"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[\"x.test\"]},\"prefixes\":[\"10.0.0.0/33\"]}",
	 "prefixes[0]: IPv4 prefix length"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[\"x.test\"]},\"prefixes\":[\"10.1.2.3/8\"]}", "bits set beyond"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[\"x.test\"]},\"prefixes\":[\"pacs.example\"]}", "not an IP address"},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[\"x.test\"]},\"prefixes\":[10]}", "prefixes[0]: not a string"},
	{NULL, "{\"id\":\"a\"," P_OK "},{\"id\":\"b\",\"identities\":{\"dns\":[\"y.test\"]},\"prefixes\":[\"10.0.0.0/8\"]}",
	 "prefix 10.0.0.0/8 is claimed by participants \"a\" and \"b\""},
	{NULL, "{\"id\":\"a\",\"identities\":{\"dns\":[\"x.test\"]},\"prefixes\":[\"::1\",\"::1/128\"]}",
	 "lists prefix ::1/128 twice"},
	{NULL, "{\"id\":\"a\"," P_OK "},{\"id\":\"b\",\"identities\":{\"dns\":[\"X.test\"]},\"prefixes\":[\"11.0.0.0/8\"]}",
	 "DNS name x.test is claimed by participants \"a\" and \"b\""},
	{NULL, "{\"id\":\"a\",\"identities\":{\"uri\":[\"urn:x\",\"urn:x\"]},\"prefixes\":[\"10.0.0.0/8\"]}",
	 "lists URI urn:x twice"},	{NULL, "{\"id\":\"a\",\"dicom_ae_titles\":[\"PACS\\\\X\"]," P_OK "}", "dicom_ae_titles[0]: not a valid AE title"},
	{NULL, "{\"id\":\"a\",\"dicom_ae_titles\":[\"SEVENTEEN_CHARS_X\"]," P_OK "}", "not a valid AE title"},
	{NULL, "{\"id\":\"a\",\"dicom_ae_titles\":[\" PACS\"]," P_OK "}", "not a valid AE title"},
	{NULL, "{\"id\":\"a\",\"hl7_facilities\":[\"A|B\"]," P_OK "}", "hl7_facilities[0]: not a valid HL7 facility"},
	/* an AE title or facility names one participant, or either could pass as the other */
	{NULL, "{\"id\":\"a\",\"dicom_ae_titles\":[\"PACS\"]," P_OK "},{\"id\":\"b\",\"dicom_ae_titles\":[\"PACS\"],"
	       "\"identities\":{\"dns\":[\"y.test\"]},\"prefixes\":[\"11.0.0.0/8\"]}",
	 "DICOM AE title PACS is claimed by participants \"a\" and \"b\""},
	{NULL, "{\"id\":\"a\",\"hl7_facilities\":[\"LAB\",\"LAB\"]," P_OK "}", "lists HL7 facility LAB twice"},
};

static void parse_errors(void **state)
{
	char json[4096], why[512];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *j = bad[i].json ? bad[i].json : doc(json, sizeof(json), 1, bad[i].parts);
		why[0] = '\0';
		struct zg_directory *d = parse(j, why, sizeof(why));
		if (d || !strstr(why, bad[i].needle) || strncmp(why, "directory_malformed: ", 21) != 0) {
			print_error("case %zu: got \"%s\", wanted \"%s\"\n", i, why, bad[i].needle);
			zg_directory_unref(d);
			fail();
		}
	}
}

/* ---- files, signatures, freshness ------------------------------------- */

static EVP_PKEY *sign_key, *other_key;

static void path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_file(const char *name, const void *data, size_t len)
{
	char p[128];
	FILE *f;

	path_of(p, sizeof(p), name);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_pub(const char *name, EVP_PKEY *k)
{
	char p[128];
	FILE *f;

	path_of(p, sizeof(p), name);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, k), 1);
	assert_int_equal(fclose(f), 0);
}

/* dir.json + dir.sig (base64) signed by @k */
static void publish(const char *json, EVP_PKEY *k)
{
	uint8_t sig[ZG_DIR_SIG_LEN];
	unsigned char b64[100];
	char why[200];
	int n;

	write_file("dir.json", json, strlen(json));
	assert_int_equal(zg_directory_sign(json, strlen(json), k, sig, why, sizeof(why)), 0);
	n = EVP_EncodeBlock(b64, sig, sizeof(sig));
	assert_int_equal(n, 88);
	b64[n++] = '\n';
	write_file("dir.sig", b64, (size_t)n);
}

static struct zg_directory *load(const struct zg_directory *prev, time_t now, enum zg_reason *r,
				 char *why, size_t cap)
{
	char j[128], s[128], k[128];

	path_of(j, sizeof(j), "dir.json");
	path_of(s, sizeof(s), "dir.sig");
	path_of(k, sizeof(k), "pub.pem");
	return zg_directory_load_ex(j, s, k, prev, now, r, why, cap);
}

static void expect_refused(const struct zg_directory *prev, time_t now, enum zg_reason want,
			   const char *needle)
{
	char why[512] = "";
	enum zg_reason r = ZG_R_OK;
	struct zg_directory *d = load(prev, now, &r, why, sizeof(why));

	if (d || r != want || strncmp(why, zg_reason_code(want), strlen(zg_reason_code(want))) != 0 ||
	    !strstr(why, needle)) {
		print_error("got %s \"%s\", wanted %s \"%s\"\n", zg_reason_code(r), why,
			    zg_reason_code(want), needle);
		zg_directory_unref(d);
		fail();
	}
}

static int setup_keys(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zg-test-dir.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	sign_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	other_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!sign_key || !other_key)
		return -1;
	write_pub("pub.pem", sign_key);
	return 0;
}

static int teardown_keys(void **state)
{
	const char *names[] = {"dir.json", "dir.sig", "pub.pem", "ec.pem"};
	char p[128];
	(void)state;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_of(p, sizeof(p), names[i]);
		unlink(p);
	}
	rmdir(tmpdir);
	EVP_PKEY_free(sign_key);
	EVP_PKEY_free(other_key);
	return 0;
}

static void load_good_and_raw_signature(void **state)
{
	char json[4096], why[512] = "";
	uint8_t sig[ZG_DIR_SIG_LEN];
	enum zg_reason r = ZG_R__COUNT;
	struct zg_directory *d;
	(void)state;

	publish(doc(json, sizeof(json), 5, three), sign_key);
	d = load(NULL, NOW, &r, why, sizeof(why));
	assert_non_null(d);
	assert_int_equal(r, ZG_R_OK);
	assert_int_equal(zg_directory_serial(d), 5);
	/* a reference taken outlives the creator's */
	struct zg_directory *again = zg_directory_ref(d);
	zg_directory_unref(d);
	assert_int_equal(zg_directory_count(again), 3);
	zg_directory_unref(again);

	/* the raw 64-byte form of the same signature */
	assert_int_equal(zg_directory_sign(json, strlen(json), sign_key, sig, why, sizeof(why)), 0);
	write_file("dir.sig", sig, sizeof(sig));
	char jp[128];
	path_of(jp, sizeof(jp), "dir.json");
	d = zg_directory_load(jp, NULL, NULL, NULL, NOW, why, sizeof(why));
	assert_null(d); /* NULL signature path: unsigned */
	assert_non_null(strstr(why, "directory_unsigned"));
	d = load(NULL, NOW, &r, why, sizeof(why));
	assert_non_null(d);
	zg_directory_unref(d);
}

static void load_signature_errors(void **state)
{
	char json[4096], p[128];
	(void)state;

	publish(doc(json, sizeof(json), 5, three), sign_key);
	path_of(p, sizeof(p), "dir.sig");
	unlink(p);
	expect_refused(NULL, NOW, ZG_R_DIR_UNSIGNED, "does not exist");
	write_file("dir.sig", "", 0);
	expect_refused(NULL, NOW, ZG_R_DIR_UNSIGNED, "is empty");
	write_file("dir.sig", "hello\n", 6);
	expect_refused(NULL, NOW, ZG_R_DIR_BAD_SIGNATURE, "not a 64-byte Ed25519 signature");

	/* signed by a key other than the configured one */
	publish(json, other_key);
	expect_refused(NULL, NOW, ZG_R_DIR_BAD_SIGNATURE, "signature does not match");

	/* one byte of the signed file changed after signing: 10.1 -> 10.9 */
	publish(json, sign_key);
	char *hit = strstr(json, "10.1.0.0/16");
	assert_non_null(hit);
	hit[3] = '9';
	write_file("dir.json", json, strlen(json));
	expect_refused(NULL, NOW, ZG_R_DIR_BAD_SIGNATURE, "dir.json");

	/* a well-signed but malformed file is still refused by the parser */
	publish("{\"format\":1}", sign_key);
	expect_refused(NULL, NOW, ZG_R_DIR_MALFORMED, "\"serial\" is missing");

	/* missing directory, missing or non-Ed25519 public key */
	path_of(p, sizeof(p), "dir.json");
	unlink(p);
	expect_refused(NULL, NOW, ZG_R_DIR_UNREADABLE, "dir.json");
	publish(doc(json, sizeof(json), 5, three), sign_key);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(ec);
	write_pub("pub.pem", ec);
	EVP_PKEY_free(ec);
	expect_refused(NULL, NOW, ZG_R_DIR_UNREADABLE, "not an Ed25519 public key");
	write_file("pub.pem", "junk", 4);
	expect_refused(NULL, NOW, ZG_R_DIR_UNREADABLE, "not a PEM public key");
	write_pub("pub.pem", sign_key);
}

static void load_time_and_rollback(void **state)
{
	char json[4096], why[512] = "";
	struct zg_directory *cur, *d;
	enum zg_reason r;
	(void)state;

	publish(doc(json, sizeof(json), 5, three), sign_key);
	expect_refused(NULL, NOW + 40 * 86400, ZG_R_DIR_EXPIRED, "expired at 2026-12-31T00:00:00Z");
	expect_refused(NULL, NOW - 30 * 86400, ZG_R_DIR_NOT_YET_VALID, "issued at 2026-11-01");
	/* within the clock skew allowance it loads */
	d = load(NULL, NOW - 24 * 86400 - 290, &r, why, sizeof(why));
	assert_non_null(d);
	zg_directory_unref(d);

	cur = load(NULL, NOW, &r, why, sizeof(why));
	assert_non_null(cur);
	/* the same file again (a reload with no change) is fine */
	d = load(cur, NOW, &r, why, sizeof(why));
	assert_non_null(d);
	zg_directory_unref(d);
	/* an older serial is a rollback */
	publish(doc(json, sizeof(json), 4, three), sign_key);
	expect_refused(cur, NOW, ZG_R_DIR_ROLLBACK, "serial 4 is older than serial 5");
	/* the same serial with other content is refused too */
	publish(doc(json, sizeof(json), 5, "{\"id\":\"z\"," P_OK "}"), sign_key);
	expect_refused(cur, NOW, ZG_R_DIR_ROLLBACK, "different content");
	/* a newer one replaces it */
	publish(doc(json, sizeof(json), 6, "{\"id\":\"z\"," P_OK "}"), sign_key);
	d = load(cur, NOW, &r, why, sizeof(why));
	assert_non_null(d);
	assert_int_equal(zg_directory_serial(d), 6);
	zg_directory_unref(d);
	zg_directory_unref(cur);
}

static void signature_decoding(void **state)
{
	uint8_t sig[ZG_DIR_SIG_LEN];
	char b64[200];
	uint8_t raw[ZG_DIR_SIG_LEN];
	(void)state;

	for (int i = 0; i < ZG_DIR_SIG_LEN; i++)
		raw[i] = (uint8_t)(i * 7);
	assert_int_equal(EVP_EncodeBlock((unsigned char *)b64 + 2, raw, sizeof(raw)), 88);
	b64[0] = ' ';
	b64[1] = '\n';
	memcpy(b64 + 90, "\r\n", 3);
	assert_int_equal(zg_directory_decode_sig((uint8_t *)b64, strlen(b64), sig), 0);
	assert_memory_equal(sig, raw, sizeof(raw));
	b64[50] = '*';
	assert_int_equal(zg_directory_decode_sig((uint8_t *)b64, strlen(b64), sig), -1);
	assert_int_equal(zg_directory_decode_sig((uint8_t *)"AAAA", 4, sig), -1);
	assert_int_equal(zg_directory_decode_sig(raw, 63, sig), -1);
}

/* ---- certificates ------------------------------------------------------ */

static X509 *make_cert(EVP_PKEY *key, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *n;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	n = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (san) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		assert_non_null(ext);
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, key, NULL) > 0);
	return x;
}

static char *pin_b64(X509 *x, char *out)
{
	uint8_t h[32];
	assert_int_equal(zg_directory_spki_sha256(x, h), 0);
	assert_int_equal(EVP_EncodeBlock((unsigned char *)out, h, 32), 44);
	return out;
}

static void cert_binding(void **state)
{
	EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *a = make_cert(k1, "DNS:SITE-A.zonegate.test,IP:10.1.0.1");
	X509 *b = make_cert(k1, "DNS:other.test,URI:urn:oid:1.2.392.200119.1");
	X509 *c_pin = make_cert(k2, NULL);
	EVP_PKEY *k3 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *d_ok = make_cert(k3, "DNS:d.zonegate.test");
	X509 *d_wrongkey = make_cert(k1, "DNS:d.zonegate.test");
	X509 *none = make_cert(k1, "DNS:nobody.test");
	X509 *both = make_cert(k1, "DNS:site-a.zonegate.test,URI:urn:oid:1.2.392.200119.1");
	char pin[64], parts[2048], json[4096], why[512] = "";
	struct zg_directory *d;
	int amb = 0;
	(void)state;

	pin_b64(c_pin, pin);
	snprintf(parts, sizeof(parts),
		 "%s,{\"id\":\"site-p\",\"identities\":{\"spki_sha256\":[\"%s\"]},\"prefixes\":[\"198.51.100.0/24\"]},"
		 "{\"id\":\"site-d\",\"identities\":{\"dns\":[\"d.zonegate.test\"],\"spki_sha256\":[\"%s\"]},"
		 "\"prefixes\":[\"203.0.113.0/24\"]}",
		 three, pin, pin);
	/* the same pin under two participants is refused */
	d = parse(doc(json, sizeof(json), 1, parts), why, sizeof(why));
	assert_null(d);
	assert_non_null(strstr(why, "SPKI pin (a pin) is claimed by participants \"site-p\" and \"site-d\""));
	snprintf(parts, sizeof(parts),
		 "%s,{\"id\":\"site-p\",\"identities\":{\"spki_sha256\":[\"%s\"]},\"prefixes\":[\"198.51.100.0/24\"]},"
		 "{\"id\":\"site-d\",\"identities\":{\"dns\":[\"d.zonegate.test\"],\"spki_sha256\":[\"%s\"]},"
		 "\"prefixes\":[\"203.0.113.0/24\"]}",
		 three, pin, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	d = parse(doc(json, sizeof(json), 1, parts), why, sizeof(why));
	assert_non_null(d);

	assert_string_equal(zg_directory_find_by_cert(d, a, &amb)->id, "site-a"); /* case folded */
	assert_string_equal(zg_directory_find_by_cert(d, b, &amb)->id, "site-b");
	assert_string_equal(zg_directory_find_by_cert(d, c_pin, &amb)->id, "site-p");
	/* site-d lists a name and a pin: both must hold */
	assert_null(zg_directory_find_by_cert(d, d_ok, &amb));
	assert_null(zg_directory_find_by_cert(d, d_wrongkey, &amb));
	assert_null(zg_directory_find_by_cert(d, none, &amb));
	assert_int_equal(amb, 0);
	assert_null(zg_directory_find_by_cert(d, both, &amb));
	assert_int_equal(amb, 1);
	assert_int_equal(zg_directory_cert_matches(d, zg_directory_find_id(d, "site-a"), a), 1);
	assert_int_equal(zg_directory_cert_matches(d, zg_directory_find_id(d, "site-a"), b), 0);
	assert_int_equal(zg_directory_cert_matches(d, zg_directory_find_id(d, "site-p"), c_pin), 1);
	assert_int_equal(zg_directory_cert_matches(d, zg_directory_find_id(d, "site-p"), a), 0);
	assert_int_equal(zg_directory_cert_matches(d, zg_directory_find_id(d, "site-d"), d_wrongkey), 0);
	zg_directory_unref(d);

	/* site-d with its real pin now matches only with the right key */
	snprintf(parts, sizeof(parts),
		 "{\"id\":\"site-d\",\"identities\":{\"dns\":[\"d.zonegate.test\"],\"spki_sha256\":[\"%s\"]},"
		 "\"prefixes\":[\"203.0.113.0/24\"]}", pin_b64(d_ok, pin));
	d = parse(doc(json, sizeof(json), 1, parts), why, sizeof(why));
	assert_non_null(d);
	assert_string_equal(zg_directory_find_by_cert(d, d_ok, &amb)->id, "site-d");
	assert_null(zg_directory_find_by_cert(d, d_wrongkey, &amb));
	zg_directory_unref(d);

	X509 *xs[] = {a, b, c_pin, d_ok, d_wrongkey, none, both};
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
		X509_free(xs[i]);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
}

/* ---- peers and decisions ----------------------------------------------- */

static void peers_parsing(void **state)
{
	struct zg_peers p;
	const char *why = NULL;
	const char *badp[] = {"", " , ", "a,a", "* a", "a b!", "*,x"};
	(void)state;

	assert_int_equal(zg_peers_parse("*", &p, &why), 0);
	assert_true(p.any);
	assert_true(zg_peers_allows(&p, "anyone"));
	assert_int_equal(zg_peers_parse("site-a, site-b site_c", &p, &why), 0);
	assert_int_equal(p.n, 3);
	assert_true(zg_peers_allows(&p, "site_c"));
	assert_false(zg_peers_allows(&p, "site-d"));
	assert_true(zg_peers_allows(NULL, "site-d"));
	for (size_t i = 0; i < sizeof(badp) / sizeof(badp[0]); i++) {
		why = NULL;
		assert_int_equal(zg_peers_parse(badp[i], &p, &why), -1);
		assert_non_null(why);
	}
}

static void decisions(void **state)
{
	struct zg_participant a = {.id = "site-a"}, b = {.id = "site-b"};
	struct zg_peers only_b, any;
	const char *why;
	char det[200];
	(void)state;

	assert_int_equal(zg_peers_parse("site-b", &only_b, &why), 0);
	assert_int_equal(zg_peers_parse("*", &any, &why), 0);
	assert_int_equal(zg_directory_decide(NULL, &a, 1, &any, det, sizeof(det)), ZG_R_DIR_UNKNOWN_ADDR);
	assert_int_equal(zg_directory_decide(&a, NULL, 0, &any, det, sizeof(det)), ZG_R_OK);
	assert_int_equal(zg_directory_decide(&a, NULL, 0, &only_b, det, sizeof(det)), ZG_R_DIR_PEER_NOT_ALLOWED);
	assert_string_equal(det, "participant site-a is not in the route's peers");
	assert_int_equal(zg_directory_decide(&a, NULL, 1, &any, det, sizeof(det)), ZG_R_DIR_IDENTITY_MISMATCH);
	assert_int_equal(zg_directory_decide(&a, &b, 1, &any, det, sizeof(det)), ZG_R_DIR_IDENTITY_MISMATCH);
	assert_string_equal(det, "address is participant site-a, certificate is participant site-b");
	assert_int_equal(zg_directory_decide(&b, &a, 1, &only_b, det, sizeof(det)), ZG_R_DIR_IDENTITY_MISMATCH);
	assert_int_equal(zg_directory_decide(&b, &b, 1, &only_b, det, sizeof(det)), ZG_R_OK);
	assert_int_equal(zg_directory_decide(&a, &a, 1, NULL, det, sizeof(det)), ZG_R_OK);
}

static void checks_with_directory(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *a = make_cert(k, "DNS:site-a.zonegate.test");
	X509 *b = make_cert(k, "URI:urn:oid:1.2.392.200119.1");
	char json[4096], why[512] = "", det[200];
	struct zg_directory *d;
	struct zg_prefix ip_a, ip_b, ip_none;
	const struct zg_participant *p = NULL;
	struct zg_peers any, only_a;
	const char *w;
	(void)state;

	assert_int_equal(zg_peers_parse("*", &any, &w), 0);
	assert_int_equal(zg_peers_parse("site-a", &only_a, &w), 0);
	assert_int_equal(zg_prefix_parse("10.1.7.7", &ip_a, &w), 0);
	assert_int_equal(zg_prefix_parse("10.1.2.7", &ip_b, &w), 0);
	assert_int_equal(zg_prefix_parse("2001:db8:ffff::1", &ip_none, &w), 0);
	d = parse(doc(json, sizeof(json), 1, three), why, sizeof(why));
	assert_non_null(d);

	assert_int_equal(zg_directory_check_addr(d, NOW, ip_a.addr, &any, &p, det, sizeof(det)), ZG_R_OK);
	assert_string_equal(p->id, "site-a");
	assert_int_equal(zg_directory_check_addr(d, NOW, ip_none.addr, &any, &p, det, sizeof(det)),
			 ZG_R_DIR_UNKNOWN_ADDR);
	assert_null(p);
	assert_int_equal(zg_directory_check_addr(d, NOW, ip_b.addr, &only_a, &p, det, sizeof(det)),
			 ZG_R_DIR_PEER_NOT_ALLOWED);
	assert_int_equal(zg_directory_check_addr(d, NOW + 60 * 86400, ip_a.addr, &any, &p, det, sizeof(det)),
			 ZG_R_DIR_STALE);

	assert_int_equal(zg_directory_check_peer(d, NOW, ip_a.addr, a, &any, det, sizeof(det)), ZG_R_OK);
	/* a valid certificate from another participant's address */
	assert_int_equal(zg_directory_check_peer(d, NOW, ip_b.addr, a, &any, det, sizeof(det)),
			 ZG_R_DIR_IDENTITY_MISMATCH);
	/* the right address with another participant's certificate */
	assert_int_equal(zg_directory_check_peer(d, NOW, ip_a.addr, b, &any, det, sizeof(det)),
			 ZG_R_DIR_IDENTITY_MISMATCH);
	assert_int_equal(zg_directory_check_peer(d, NOW, ip_a.addr, NULL, &any, det, sizeof(det)),
			 ZG_R_DIR_IDENTITY_MISMATCH);
	assert_int_equal(zg_directory_check_peer(d, NOW, ip_b.addr, b, &only_a, det, sizeof(det)),
			 ZG_R_DIR_PEER_NOT_ALLOWED);
	zg_directory_unref(d);
	X509_free(a);
	X509_free(b);
	EVP_PKEY_free(k);
}

/* ---- configuration keys ------------------------------------------------ */

static const char conf_base[] = "[tls]\ncertificate = /c.pem\nkey = /k.pem\ntrust_anchors = /r.pem\n"
				"[route in]\nmode = unwrap\nlisten = 127.0.0.1:2762\nconnect = 127.0.0.1:104\n";

static struct zg_conf *conf_of(const char *extra, struct zg_errlist *el)
{
	char text[2048];

	snprintf(text, sizeof(text), "%s%s", conf_base, extra);
	zg_errlist_init(el);
	return zg_conf_parse_flags(text, "t.conf", ZG_CONF_NO_FILE_CHECKS, el);
}

static int has_error(const struct zg_errlist *el, const char *needle)
{
	for (size_t i = 0; i < el->n; i++)
		if (strstr(el->msg[i], needle))
			return 1;
	return 0;
}

static void config_keys(void **state)
{
	static struct zg_errlist el;
	struct zg_conf *c;
	(void)state;

	c = conf_of("", &el);
	assert_non_null(c);
	assert_string_equal(c->dir.file, "");
	assert_true(c->routes[0].peers.any); /* default "*" */
	assert_int_equal(c->dir.grace_ms, 30000);
	zg_conf_free(c);

	c = conf_of("peers = site-b, site-c\n[directory]\nfile = /d/dir.json\npublic_key = /d/op.pub\n"
		    "grace_period = 5s\nreload_interval = 0\n", &el);
	assert_non_null(c);
	assert_string_equal(c->dir.signature, "/d/dir.json.sig");
	assert_int_equal(c->dir.grace_ms, 5000);
	assert_int_equal(c->dir.reload_interval_ms, 0);
	assert_int_equal(c->routes[0].peers.n, 2);
	assert_false(zg_peers_allows(&c->routes[0].peers, "site-a"));
	assert_true(zg_peers_allows(&c->routes[0].peers, "site-c"));
	zg_conf_free(c);

	assert_null(conf_of("peers = site-b\n", &el));
	assert_true(has_error(&el, "t.conf:9: peers: [route in]: peers needs a [directory] file"));
	assert_null(conf_of("[directory]\nfile = /d/dir.json\n", &el));
	assert_true(has_error(&el, "public_key: required in [directory]"));
	assert_null(conf_of("[directory]\npublic_key = /d/op.pub\n", &el));
	assert_true(has_error(&el, "file: required in [directory] when public_key is set"));
	assert_null(conf_of("peers = a, a\n", &el));
	assert_true(has_error(&el, "participant listed twice"));
	assert_null(conf_of("peers =\n", &el));
	assert_null(conf_of("[directory]\ngrace_period = 2h\n", &el));
}

static void conf_loading_and_stamp(void **state)
{
	static struct zg_errlist el;
	struct zg_conf_directory cd;
	struct zg_dir_stamp s1, s2;
	struct zg_directory *d;
	char json[4096];
	(void)state;

	memset(&cd, 0, sizeof(cd));
	zg_errlist_init(&el);
	assert_null(zg_directory_load_conf(&cd, "gw.conf", NULL, NOW, &el)); /* none configured */
	assert_int_equal(el.n, 0);
	path_of(cd.file, sizeof(cd.file), "dir.json");
	path_of(cd.signature, sizeof(cd.signature), "dir.sig");
	path_of(cd.public_key, sizeof(cd.public_key), "pub.pem");
	cd.line_file = 12;
	publish(doc(json, sizeof(json), 5, three), sign_key);
	d = zg_directory_load_conf(&cd, "gw.conf", NULL, NOW, &el);
	assert_non_null(d);
	assert_int_equal(el.n, 0);
	publish(doc(json, sizeof(json), 4, three), sign_key);
	assert_null(zg_directory_load_conf(&cd, "gw.conf", d, NOW, &el));
	assert_int_equal(el.n, 1);
	assert_non_null(strstr(el.msg[0], "gw.conf:12: file: directory_rollback: serial 4 is older"));
	zg_directory_unref(d);

	assert_int_equal(zg_directory_stamp(&cd, NULL, &s1), 1);
	assert_int_equal(zg_directory_stamp(&cd, &s1, &s2), 0);
	publish(doc(json, sizeof(json), 60, three), sign_key); /* new content, new size */
	assert_int_equal(zg_directory_stamp(&cd, &s1, &s2), 1);
}

static void participant_limits(void **state)
{
	char json[4096], why[512] = "", det[200];
	struct zg_dir_counters *t = zg_dir_counters_new();
	struct zg_directory *d1, *d2;
	_Atomic unsigned **b1, **b2;
	const struct zg_participant *a;
	(void)state;

	assert_non_null(t);
	d1 = parse(doc(json, sizeof(json), 1, three), why, sizeof(why));
	assert_non_null(d1);
	b1 = zg_dir_counters_bind(t, d1);
	assert_non_null(b1);
	a = zg_directory_find_id(d1, "site-a"); /* max_connections 20 */
	for (int i = 0; i < 20; i++)
		assert_int_equal(zg_directory_admit(a, b1[a->index], det, sizeof(det)), ZG_R_OK);
	assert_int_equal(zg_directory_admit(a, b1[a->index], det, sizeof(det)), ZG_R_DIR_PARTICIPANT_LIMIT);
	assert_string_equal(det, "participant site-a has 20 of max_connections 20");
	/* site-b has no limit */
	const struct zg_participant *b = zg_directory_find_id(d1, "site-b");
	for (int i = 0; i < 1000; i++)
		assert_int_equal(zg_directory_admit(b, b1[b->index], det, sizeof(det)), ZG_R_OK);

	/* a new directory with site-a moved to another index shares its count */
	d2 = parse(doc(json, sizeof(json), 2,
		       "{\"id\":\"new\",\"identities\":{\"dns\":[\"n.test\"]},\"prefixes\":[\"11.0.0.0/8\"]},"
		       "{\"id\":\"site-a\",\"identities\":{\"dns\":[\"a.test\"]},\"prefixes\":[\"10.0.0.0/8\"],"
		       "\"max_connections\":21}"), why, sizeof(why));
	assert_non_null(d2);
	/* grow the table past its first size while counters are held */
	for (int i = 0; i < 200; i++) {
		char id[16];
		snprintf(id, sizeof(id), "x%d", i);
		char parts[256];
		snprintf(parts, sizeof(parts), "{\"id\":\"%s\",\"identities\":{\"dns\":[\"%s.t\"]},\"prefixes\":[\"12.0.0.%d\"]}", id, id, i);
		struct zg_directory *dx = parse(doc(json, sizeof(json), 3, parts), why, sizeof(why));
		assert_non_null(dx);
		_Atomic unsigned **bx = zg_dir_counters_bind(t, dx);
		assert_non_null(bx);
		free(bx);
		zg_directory_unref(dx);
	}
	b2 = zg_dir_counters_bind(t, d2);
	assert_non_null(b2);
	const struct zg_participant *a2 = zg_directory_find_id(d2, "site-a");
	assert_ptr_equal(b2[a2->index], b1[a->index]);
	assert_int_equal(zg_directory_admit(a2, b2[a2->index], det, sizeof(det)), ZG_R_OK); /* 21st */
	assert_int_equal(zg_directory_admit(a2, b2[a2->index], det, sizeof(det)), ZG_R_DIR_PARTICIPANT_LIMIT);
	zg_directory_release(b1[a->index]); /* an old connection ends */
	assert_int_equal(zg_directory_admit(a2, b2[a2->index], det, sizeof(det)), ZG_R_OK);
	free(b1);
	free(b2);
	zg_directory_unref(d1);
	zg_directory_unref(d2);
	zg_dir_counters_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_ok),
		cmocka_unit_test(lookup_longest_wins),
		cmocka_unit_test(parse_errors),
		cmocka_unit_test(load_good_and_raw_signature),
		cmocka_unit_test(load_signature_errors),
		cmocka_unit_test(load_time_and_rollback),
		cmocka_unit_test(signature_decoding),
		cmocka_unit_test(cert_binding),
		cmocka_unit_test(peers_parsing),
		cmocka_unit_test(decisions),
		cmocka_unit_test(checks_with_directory),
		cmocka_unit_test(config_keys),
		cmocka_unit_test(conf_loading_and_stamp),
		cmocka_unit_test(participant_limits),
	};
	return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
