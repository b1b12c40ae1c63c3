/* cmd_directory.c - `zonegate directory ...`: the operator's tools for the
 * participant directory (keygen, sign, verify, show, lookup) and `entry`,
 * which prints this gateway's own participant entry for publication. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "directory/directory.h"
#include "base/prefix.h"

#define MAX_PREFIX_OPTS 64

struct opts {
	const char *key, *out, *pubkey, *sig, *previous, *dirfile, *config, *id, *name, *identity;
	const char *prefix[MAX_PREFIX_OPTS];
	unsigned n_prefix;
	time_t at;
	int have_at, pin;
	const char *pos[2];
	int n_pos;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zonegate directory keygen -o PREFIX\n"
		"       zonegate directory sign -k KEY [-o SIG] FILE.json\n"
		"       zonegate directory verify -p PUBKEY [-s SIG] [--previous OLD.json] [--at TIME]\n"
		"                                 FILE.json\n"
		"       zonegate directory show [-p PUBKEY [-s SIG]] FILE.json\n"
		"       zonegate directory lookup -d FILE.json [-p PUBKEY [-s SIG]] IP\n"
		"       zonegate directory entry -c CONFIG [--id ID] [--name NAME] [--prefix P]... [--pin]\n"
		"                                [--identity NAME]\n"
		"keygen writes an Ed25519 key pair PREFIX.key (mode 0600) and PREFIX.pub.\n"
		"sign checks FILE.json parses, then writes its detached signature (default FILE.json.sig).\n"
		"verify, show and lookup check the signature (default FILE.json.sig) when -p is given.\n"
		"entry prints this gateway's participant object (identities from the [tls] certificate,\n"
		"or with --identity from that [identity NAME]'s,\n"
		"id from [gateway] name, prefixes from --prefix or the TLS listen addresses; --pin adds\n"
		"the certificate's SPKI SHA-256, which then must change with every key change).\n"
		"TIME is YYYY-MM-DDTHH:MM:SSZ. Exit 0 ok, 1 refused or not found, 2 usage, 4 I/O error.\n");
}

static int value_opt(struct opts *o, const char *a, const char *v)
{
	const char **slot = NULL;

	if (!strcmp(a, "-k") || !strcmp(a, "--key"))
		slot = &o->key;
	else if (!strcmp(a, "-o") || !strcmp(a, "--out"))
		slot = &o->out;
	else if (!strcmp(a, "-p") || !strcmp(a, "--pubkey"))
		slot = &o->pubkey;
	else if (!strcmp(a, "-s") || !strcmp(a, "--signature"))
		slot = &o->sig;
	else if (!strcmp(a, "--previous"))
		slot = &o->previous;
	else if (!strcmp(a, "-d") || !strcmp(a, "--directory"))
		slot = &o->dirfile;
	else if (!strcmp(a, "-c") || !strcmp(a, "--config"))
		slot = &o->config;
	else if (!strcmp(a, "--id"))
		slot = &o->id;
	else if (!strcmp(a, "--name"))
		slot = &o->name;
	else if (!strcmp(a, "--identity"))
		slot = &o->identity;
	if (slot) {
		*slot = v;
		return 1;
	}
	if (!strcmp(a, "--prefix")) {
		if (o->n_prefix >= MAX_PREFIX_OPTS)
			return -1;
		o->prefix[o->n_prefix++] = v;
		return 1;
	}
	if (!strcmp(a, "--at")) {
		o->have_at = 1;
		return zg_directory_parse_time(v, &o->at) < 0 ? -1 : 1;
	}
	return 0;
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--pin")) {
			o->pin = 1;
			continue;
		}
		if (a[0] == '-' && a[1] != '\0') {
			int r = i + 1 < argc ? value_opt(o, a, argv[i + 1]) : 0;
			if (r <= 0) {
				fprintf(stderr, "directory %s: bad option %s%s%s\n", argv[0], a,
					i + 1 < argc ? " " : "", i + 1 < argc ? argv[i + 1] : "");
				return -1;
			}
			i++;
			continue;
		}
		if (o->n_pos >= 2) {
			fprintf(stderr, "directory %s: too many arguments\n", argv[0]);
			return -1;
		}
		o->pos[o->n_pos++] = a;
	}
	return 0;
}

/* Write @len bytes to @path through a temporary file and rename, so that a
 * gateway watching the file never reads it half-written. @excl: refuse to
 * replace an existing file. */
static int write_file(const char *path, const void *data, size_t len, mode_t mode, int excl)
{
	char tmp[4096];
	size_t done = 0;
	int fd, rc = -1;

	if (excl && access(path, F_OK) == 0) {
		fprintf(stderr, "directory: %s exists; not overwriting it\n", path);
		return -1;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		fprintf(stderr, "directory: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	while (done < len) {
		ssize_t n = write(fd, (const char *)data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		done += (size_t)n;
	}
	if (fsync(fd) < 0)
		goto out;
	rc = 0;
out:
	if (close(fd) < 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -1;
	if (rc < 0) {
		fprintf(stderr, "directory: cannot write %s: %s\n", path, strerror(errno));
		unlink(tmp);
	}
	return rc;
}

static EVP_PKEY *read_private_key(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *k = NULL;

	if (!bio) {
		fprintf(stderr, "directory: cannot open %s\n", path);
		return NULL;
	}
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!k)
		fprintf(stderr, "directory: %s: not a PEM private key\n", path);
	return k;
}

/* PEM text of @k (private or public) in a new buffer; NULL on failure. */
static char *pem_of(EVP_PKEY *k, int private, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *out = NULL, *data;
	long n;

	if (!bio)
		return NULL;
	if ((private ? PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_bio_PUBKEY(bio, k)) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || !(out = malloc((size_t)n)))
		goto out;
	memcpy(out, data, (size_t)n);
	*len = (size_t)n;
out:
	BIO_free(bio);
	return out;
}

static int cmd_keygen(const struct opts *o)
{
	char kpath[4096], ppath[4096];
	EVP_PKEY *k = NULL;
	char *kp = NULL, *pp = NULL;
	size_t kl = 0, pl = 0;
	int rc = ZG_EXIT_RUNTIME;

	if (!o->out || o->n_pos) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	if ((size_t)snprintf(kpath, sizeof(kpath), "%s.key", o->out) >= sizeof(kpath) ||
	    (size_t)snprintf(ppath, sizeof(ppath), "%s.pub", o->out) >= sizeof(ppath))
		return ZG_EXIT_USAGE;
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!k || !(kp = pem_of(k, 1, &kl)) || !(pp = pem_of(k, 0, &pl))) {
		fprintf(stderr, "directory keygen: key generation failed\n");
		goto out;
	}
	if (write_file(kpath, kp, kl, 0600, 1) < 0)
		goto out;
	if (write_file(ppath, pp, pl, 0644, 1) < 0) {
		unlink(kpath);
		goto out;
	}
	printf("wrote %s (private, keep offline) and %s (configure as [directory] public_key)\n", kpath,
	       ppath);
	rc = ZG_EXIT_OK;
out:
	if (kp) {
		OPENSSL_cleanse(kp, kl);
		free(kp);
	}
	free(pp);
	EVP_PKEY_free(k);
	return rc;
}

static int cmd_sign(const struct opts *o)
{
	char why[600], sigpath[4096];
	unsigned char b64[100];
	uint8_t sig[ZG_DIR_SIG_LEN];
	struct zg_directory *d = NULL;
	EVP_PKEY *k = NULL;
	size_t len = 0;
	char *json = NULL;
	int n, rc = ZG_EXIT_RUNTIME;

	if (!o->key || o->n_pos != 1) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	if ((size_t)snprintf(sigpath, sizeof(sigpath), "%s", o->out ? o->out : o->pos[0]) >=
		    sizeof(sigpath) ||
	    (!o->out && strlen(sigpath) + 4 >= sizeof(sigpath)))
		return ZG_EXIT_USAGE;
	if (!o->out)
		memcpy(sigpath + strlen(sigpath), ".sig", 5);
	json = zg_directory_read_file(o->pos[0], ZG_DIR_FILE_MAX, &len, why, sizeof(why));
	if (!json) {
		fprintf(stderr, "directory sign: %s\n", why);
		goto out;
	}
	/* never sign something every gateway would then refuse */
	d = zg_directory_parse(json, len, NULL, why, sizeof(why));
	if (!d) {
		fprintf(stderr, "directory sign: %s: %s\n", o->pos[0], why);
		rc = ZG_EXIT_FAIL;
		goto out;
	}
	if (zg_directory_expires(d) <= time(NULL))
		fprintf(stderr, "directory sign: warning: %s has already expired\n", o->pos[0]);
	k = read_private_key(o->key);
	if (!k)
		goto out;
	if (zg_directory_sign(json, len, k, sig, why, sizeof(why)) < 0) {
		fprintf(stderr, "directory sign: %s\n", why);
		goto out;
	}
	n = EVP_EncodeBlock(b64, sig, sizeof(sig));
	b64[n++] = '\n';
	if (write_file(sigpath, b64, (size_t)n, 0644, 0) < 0)
		goto out;
	printf("signed %s serial %llu -> %s\n", o->pos[0], (unsigned long long)zg_directory_serial(d),
	       sigpath);
	rc = ZG_EXIT_OK;
out:
	zg_directory_unref(d);
	EVP_PKEY_free(k);
	free(json);
	return rc;
}

static int exit_for(enum zg_reason r)
{
	return r == ZG_R_DIR_UNREADABLE ? ZG_EXIT_RUNTIME : ZG_EXIT_FAIL;
}

/* The directory in @path: verified and checked at --at/now if a public key
 * is given, merely parsed otherwise (*@checked says which). */
static struct zg_directory *open_dir(const struct opts *o, const char *path, int *checked, int *exit_code)
{
	char why[600], sigpath[4096];
	struct zg_directory *prev = NULL, *d;
	enum zg_reason r = ZG_R_OK;
	time_t now = o->have_at ? o->at : time(NULL);

	*checked = o->pubkey != NULL;
	if (!o->pubkey) {
		size_t len = 0;
		char *json = zg_directory_read_file(path, ZG_DIR_FILE_MAX, &len, why, sizeof(why));
		if (!json) {
			fprintf(stderr, "%s\n", why);
			*exit_code = ZG_EXIT_RUNTIME;
			return NULL;
		}
		d = zg_directory_parse(json, len, &r, why, sizeof(why));
		free(json);
	} else {
		if ((size_t)snprintf(sigpath, sizeof(sigpath), "%s%s", o->sig ? o->sig : path,
				     o->sig ? "" : ".sig") >= sizeof(sigpath)) {
			*exit_code = ZG_EXIT_USAGE;
			return NULL;
		}
		if (o->previous) {
			/* the previous file was accepted before; only its serial
			 * and content digest matter here */
			size_t len = 0;
			char *pj = zg_directory_read_file(o->previous, ZG_DIR_FILE_MAX, &len, why,
							  sizeof(why));
			prev = pj ? zg_directory_parse(pj, len, NULL, why, sizeof(why)) : NULL;
			free(pj);
			if (!prev) {
				fprintf(stderr, "--previous %s\n", why);
				*exit_code = ZG_EXIT_FAIL;
				return NULL;
			}
		}
		d = zg_directory_load_ex(path, sigpath, o->pubkey, prev, now, &r, why, sizeof(why));
		zg_directory_unref(prev);
	}
	if (!d) {
		printf("refused: %s\n", why);
		*exit_code = exit_for(r);
	}
	return d;
}

static void print_summary(const struct zg_directory *d, int checked)
{
	char a[32], b[32];

	zg_directory_format_time(zg_directory_issued_at(d), a, sizeof(a));
	zg_directory_format_time(zg_directory_expires(d), b, sizeof(b));
	printf("directory %s: serial %llu, issuer \"%s\", %zu participants, %zu prefixes, issued %s, "
	       "expires %s\n",
	       checked ? "OK" : "parsed (signature NOT checked)", (unsigned long long)zg_directory_serial(d),
	       zg_directory_issuer(d), zg_directory_count(d), zg_directory_prefix_count(d), a, b);
}

static int cmd_verify(const struct opts *o)
{
	struct zg_directory *d;
	int checked, code = ZG_EXIT_OK;

	if (!o->pubkey || o->n_pos != 1) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	d = open_dir(o, o->pos[0], &checked, &code);
	if (!d)
		return code;
	print_summary(d, checked);
	zg_directory_unref(d);
	return ZG_EXIT_OK;
}

static void print_participant(const struct zg_participant *p)
{
	char text[64];
	unsigned char b64[64];

	printf("\nparticipant %s\n  name            %s\n", p->id, p->name);
	if (p->max_connections)
		printf("  max_connections %u\n", p->max_connections);
	for (unsigned i = 0; i < p->n_dns; i++)
		printf("  dns             %s\n", p->dns[i]);
	for (unsigned i = 0; i < p->n_uri; i++)
		printf("  uri             %s\n", p->uri[i]);
	for (unsigned i = 0; i < p->n_spki; i++) {
		EVP_EncodeBlock(b64, p->spki[i], 32);
		printf("  spki_sha256     %s\n", b64);
	}
	for (unsigned i = 0; i < p->n_prefixes; i++) {
		zg_prefix_format(&p->prefixes[i], text, sizeof(text));
		printf("  prefix          %s\n", text);
	}
	/* quoted: an AE title may hold inner spaces */
	for (unsigned i = 0; i < p->n_dicom_ae; i++)
		printf("  dicom_ae_title  \"%s\"\n", p->dicom_ae[i]);
	for (unsigned i = 0; i < p->n_hl7_facilities; i++)
		printf("  hl7_facility    \"%s\"\n", p->hl7_facilities[i]);
}

static int cmd_show(const struct opts *o)
{
	const uint8_t *h;
	struct zg_directory *d;
	int checked, code = ZG_EXIT_OK;

	if (o->n_pos != 1) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	d = open_dir(o, o->pos[0], &checked, &code);
	if (!d)
		return code;
	print_summary(d, checked);
	h = zg_directory_digest(d);
	printf("sha256 ");
	for (int i = 0; i < 32; i++)
		printf("%02x", h[i]);
	printf("\n");
	for (size_t i = 0; i < zg_directory_count(d); i++)
		print_participant(zg_directory_participant(d, i));
	zg_directory_unref(d);
	return ZG_EXIT_OK;
}

static int cmd_lookup(const struct opts *o)
{
	struct zg_prefix a, m;
	const struct zg_participant *p;
	struct zg_directory *d;
	const char *why = NULL;
	char text[64];
	int checked, code = ZG_EXIT_OK;

	if (!o->dirfile || o->n_pos != 1) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	if (zg_prefix_parse(o->pos[0], &a, &why) < 0 || strchr(o->pos[0], '/')) {
		fprintf(stderr, "directory lookup: %s: %s\n", o->pos[0],
			why ? why : "give an address, not a prefix");
		return ZG_EXIT_USAGE;
	}
	d = open_dir(o, o->dirfile, &checked, &code);
	if (!d)
		return code;
	p = zg_directory_lookup_prefix(d, a.addr, &m);
	if (p) {
		zg_prefix_format(&m, text, sizeof(text));
		printf("%s participant=%s name=\"%s\" prefix=%s\n", o->pos[0], p->id, p->name, text);
	} else {
		printf("%s participant=none\n", o->pos[0]);
	}
	zg_directory_unref(d);
	return p ? ZG_EXIT_OK : ZG_EXIT_FAIL;
}

/* ---- entry ------------------------------------------------------------- */

static X509 *read_leaf(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x = NULL;

	if (bio)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!x)
		fprintf(stderr, "directory entry: %s: cannot read a PEM certificate\n", path);
	return x;
}

/* DNS and URI SANs of @x into arrays "dns" / "uri" of @ids. */
static int add_sans(json_t *ids, X509 *x)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	json_t *dns = json_array(), *uri = json_array();
	int rc = -1;

	if (!dns || !uri)
		goto out;
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const ASN1_STRING *s = gn->type == GEN_DNS ? gn->d.dNSName
				     : gn->type == GEN_URI ? gn->d.uniformResourceIdentifier : NULL;
		if (!s || ASN1_STRING_length(s) <= 0)
			continue;
		json_t *v = json_stringn((const char *)ASN1_STRING_get0_data(s),
					 (size_t)ASN1_STRING_length(s));
		if (!v || json_array_append_new(gn->type == GEN_DNS ? dns : uri, v) < 0)
			goto out;
	}
	if (json_array_size(dns) && json_object_set(ids, "dns", dns) < 0)
		goto out;
	if (json_array_size(uri) && json_object_set(ids, "uri", uri) < 0)
		goto out;
	rc = 0;
out:
	json_decref(dns);
	json_decref(uri);
	GENERAL_NAMES_free(sans);
	return rc;
}

static int add_pin(json_t *ids, X509 *x)
{
	uint8_t h[32];
	unsigned char b64[64];
	json_t *arr;

	if (zg_directory_spki_sha256(x, h) < 0)
		return -1;
	EVP_EncodeBlock(b64, h, sizeof(h));
	arr = json_pack("[s]", (const char *)b64);
	return arr && json_object_set_new(ids, "spki_sha256", arr) == 0 ? 0 : -1;
}

/* --prefix values, else the host addresses TLS routes listen on. */
static int add_prefixes(json_t *obj, const struct opts *o, const struct zg_conf *c)
{
	json_t *arr = json_array();
	struct zg_prefix p;
	const char *why = NULL;
	char text[64];

	if (!arr)
		return -1;
	for (unsigned i = 0; i < o->n_prefix; i++) {
		if (zg_prefix_parse(o->prefix[i], &p, &why) < 0) {
			fprintf(stderr, "directory entry: --prefix %s: %s\n", o->prefix[i], why);
			goto fail;
		}
		zg_prefix_format(&p, text, sizeof(text));
		if (json_array_append_new(arr, json_string(text)) < 0)
			goto fail;
	}
	for (unsigned i = 0; o->n_prefix == 0 && i < c->n_routes; i++) {
		const struct zg_conf_route *r = &c->routes[i];
		if (!zg_route_tls_in(r) || zg_prefix_parse(r->listen.host, &p, &why) < 0)
			continue;
		zg_prefix_format(&p, text, sizeof(text));
		if (json_array_append_new(arr, json_string(text)) < 0)
			goto fail;
	}
	if (json_array_size(arr) == 0) {
		fprintf(stderr, "directory entry: no prefix: give --prefix for the addresses this gateway "
				"connects from\n");
		goto fail;
	}
	if (o->n_prefix == 0)
		fprintf(stderr, "directory entry: note: prefixes taken from the TLS listen addresses; "
				"check they are the addresses this gateway connects from\n");
	return json_object_set_new(obj, "prefixes", arr);
fail:
	json_decref(arr);
	return -1;
}

/* The certificate the entry describes: [identity @name]'s, else [tls]'s.
 * NULL with a message if there is no such identity or no certificate. */
static const char *entry_certificate(const struct zg_conf *c, const char *name)
{
	const char *cert = c->tls.certificate;

	for (unsigned i = 0; name && i < c->n_identities; i++)
		if (strcmp(c->identities[i].name, name) == 0)
			cert = c->identities[i].certificate;
	if (name && strcmp(name, "tls") != 0 && cert == c->tls.certificate) {
		fprintf(stderr, "directory entry: no [identity %s] in the configuration\n", name);
		return NULL;
	}
	if (!cert[0])
		fprintf(stderr, "directory entry: [tls] has no certificate; use --identity NAME\n");
	return cert[0] ? cert : NULL;
}

static int cmd_entry(const struct opts *o)
{
	struct zg_errlist *errs = NULL;
	struct zg_conf *c = NULL;
	X509 *leaf = NULL;
	json_t *obj = NULL, *ids = NULL;
	const char *id, *cert;
	char *text = NULL;
	int rc = ZG_EXIT_RUNTIME;

	if (!o->config || o->n_pos) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	errs = calloc(1, sizeof(*errs));
	if (!errs)
		return ZG_EXIT_RUNTIME;
	zg_errlist_init(errs);
	c = zg_conf_load(o->config, errs);
	if (!c) {
		zg_errlist_print(errs, stderr);
		rc = ZG_EXIT_CONFIG;
		goto out;
	}
	id = o->id ? o->id : c->gw.name;
	if (!(cert = entry_certificate(c, o->identity)) || !(leaf = read_leaf(cert)))
		goto out;
	obj = json_object();
	ids = json_object();
	if (!obj || !ids || json_object_set_new(obj, "id", json_string(id)) < 0 ||
	    json_object_set_new(obj, "name", json_string(o->name ? o->name : id)) < 0 ||
	    add_sans(ids, leaf) < 0 || (o->pin && add_pin(ids, leaf) < 0) ||
	    json_object_set(obj, "identities", ids) < 0 || add_prefixes(obj, o, c) < 0)
		goto out;
	if (json_object_size(ids) == 0) {
		fprintf(stderr, "directory entry: %s has no DNS or URI SAN; use --pin\n", cert);
		goto out;
	}
	text = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		goto out;
	printf("%s\n", text);
	rc = ZG_EXIT_OK;
out:
	free(text);
	json_decref(ids);
	json_decref(obj);
	X509_free(leaf);
	zg_conf_free(c);
	free(errs);
	return rc;
}

int zg_cmd_directory(int argc, char **argv)
{
	struct opts o;
	const char *sub;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? ZG_EXIT_USAGE : ZG_EXIT_OK;
	}
	sub = argv[1];
	if (parse_opts(&o, argc - 1, argv + 1) < 0) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	if (!strcmp(sub, "keygen"))
		return cmd_keygen(&o);
	if (!strcmp(sub, "sign"))
		return cmd_sign(&o);
	if (!strcmp(sub, "verify"))
		return cmd_verify(&o);
	if (!strcmp(sub, "show"))
		return cmd_show(&o);
	if (!strcmp(sub, "lookup"))
		return cmd_lookup(&o);
	if (!strcmp(sub, "entry"))
		return cmd_entry(&o);
	fprintf(stderr, "directory: unknown subcommand '%s'\n", sub);
	usage(stderr);
	return ZG_EXIT_USAGE;
}
