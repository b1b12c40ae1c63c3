/* cmd_probe.c - `zonegate probe HOST:PORT`: a remote TLS endpoint against a
 * profile. Tries every TLS version and every suite OpenSSL knows, one
 * connection each, and reports which the server accepts (a ServerHello for
 * exactly that offer), whether it asks for and requires a client
 * certificate, and its certificate chain against every rule. Exit 0 if the
 * endpoint accepts nothing outside the profile and its chain passes, 1 if
 * not, 2 usage, 4 if it cannot be reached. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "policy/certcheck.h"
#include "cli/cli.h"
#include "policy/crl.h"
#include "policy/profile.h"

#define MAX_SUITES 256
#define ALL_TLS13                                                                     \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:" \
	"TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"
#define ALL_TLS12 "ALL:COMPLEMENTOFALL:@SECLEVEL=0"

struct opts {
	char host[256];
	char port[8];
	const char *profile;
	const char *cert, *key, *ca, *crl, *name;
	unsigned timeout_s;
	int json;
};

/* What one handshake attempt showed, from the messages it received. */
struct attempt {
	int server_hello;  /* the server answered this offer */
	int cert_request;  /* it sent CertificateRequest */
	int completed;     /* the handshake finished on our side */
	int alert;         /* last alert description received, -1 none */
	int version;       /* negotiated version */
	char cipher[64];   /* negotiated suite */
};

struct result {
	const char *name;
	int version;
	int accepted;
	int in_profile;
};

struct report {
	struct result versions[4];
	struct result suites[MAX_SUITES];
	size_t n_suites;
	int cert_requested, cert_required;
	int cert_known;     /* a handshake got far enough to tell */
	const char *order;  /* "server", "client" or "unknown" */
	unsigned extra;    /* accepted outside the profile */
	struct zg_certcheck chain;
	int chain_ran;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zonegate probe HOST:PORT [--profile P] [--cert FILE --key FILE]\n"
		"                      [--ca FILE] [--crl FILE] [--name NAME] [--timeout SECONDS] [--json]\n"
		"Tries each TLS version and suite on HOST:PORT and checks the server's chain\n"
		"(against --ca if given) with every rule of the profile (default cryptrec-high).\n"
		"--cert/--key present a client certificate; --name is the expected DNS or URI SAN\n"
		"(default: HOST). Exit 0 compliant, 1 not, 2 usage, 4 unreachable.\n");
}

static int parse_target(const char *s, struct opts *o)
{
	const char *colon;
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		s++;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(o->host) || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= sizeof(o->port) || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	memcpy(o->host, s, hl);
	o->host[hl] = '\0';
	snprintf(o->port, sizeof(o->port), "%s", colon + 1);
	return 0;
}

static int parse(struct opts *o, int argc, char **argv)
{
	int have_target = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		if (strcmp(a, "--json") == 0) {
			o->json = 1;
			continue;
		}
		if (strcmp(a, "--profile") == 0)
			dst = &o->profile;
		else if (strcmp(a, "--cert") == 0)
			dst = &o->cert;
		else if (strcmp(a, "--key") == 0)
			dst = &o->key;
		else if (strcmp(a, "--ca") == 0)
			dst = &o->ca;
		else if (strcmp(a, "--crl") == 0)
			dst = &o->crl;
		else if (strcmp(a, "--name") == 0)
			dst = &o->name;
		else if (strcmp(a, "--timeout") == 0) {
			char *end;
			unsigned long v;
			if (i + 1 >= argc)
				return -1;
			errno = 0;
			v = strtoul(argv[++i], &end, 10);
			if (errno || *end || v == 0 || v > 300)
				return -1;
			o->timeout_s = (unsigned)v;
			continue;
		}
		if (dst) {
			if (i + 1 >= argc)
				return -1;
			*dst = argv[++i];
			continue;
		}
		if (a[0] == '-' || have_target || parse_target(a, o) < 0)
			return -1;
		have_target = 1;
	}
	if (!o->cert != !o->key)
		return -1;
	return have_target ? 0 : -1;
}

static int tcp_connect(const struct opts *o)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
	struct timeval tv = {.tv_sec = (time_t)o->timeout_s};
	int fd = -1;

	if (getaddrinfo(o->host, o->port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
		    connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len,
		   SSL *ssl, void *arg)
{
	struct attempt *at = arg;
	const unsigned char *b = buf;

	(void)version;
	(void)ssl;
	if (write_p || len == 0)
		return;
	if (content_type == SSL3_RT_HANDSHAKE && b[0] == SSL3_MT_SERVER_HELLO)
		at->server_hello = 1;
	if (content_type == SSL3_RT_HANDSHAKE && b[0] == SSL3_MT_CERTIFICATE_REQUEST)
		at->cert_request = 1;
	if (content_type == SSL3_RT_ALERT && len == 2)
		at->alert = b[1];
}

/* A client context offering exactly @version with @ciphers / @suites (NULL:
 * the profile's), presenting the client certificate if one was given. */
static SSL_CTX *offer_ctx(const struct opts *o, const struct zg_profile *p, int version,
			  const char *ciphers, const char *suites)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char why[256];

	if (!ctx)
		return NULL;
	if (!ciphers && !suites) {
		if (zg_profile_apply(ctx, p, why, sizeof(why)) < 0)
			goto fail;
	} else {
		/* Offer what the profile would never offer, so that a server that
		 * accepts it shows. */
		SSL_CTX_set_security_level(ctx, 0);
		if (!SSL_CTX_set_min_proto_version(ctx, version) ||
		    !SSL_CTX_set_max_proto_version(ctx, version) ||
		    !SSL_CTX_set_ciphersuites(ctx, suites ? suites : "") ||
		    !SSL_CTX_set_cipher_list(ctx, ciphers ? ciphers : ALL_TLS12))
			goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (o->cert && (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
			SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1))
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* One handshake with @ctx. Returns the SSL if @keep (caller frees, and
 * closes SSL_get_fd), else NULL; -1 in *@err if the host was unreachable. */
static SSL *attempt(const struct opts *o, SSL_CTX *ctx, struct attempt *at, int keep, int *err)
{
	SSL *ssl = NULL;
	int fd;

	memset(at, 0, sizeof(*at));
	at->alert = -1;
	*err = 0;
	fd = tcp_connect(o);
	if (fd < 0) {
		*err = -1;
		return NULL;
	}
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd)) {
		*err = -1;
		goto drop;
	}
	SSL_set_msg_callback(ssl, on_msg);
	SSL_set_msg_callback_arg(ssl, at);
	if (!strchr(o->host, ':') && strspn(o->host, "0123456789.") != strlen(o->host))
		SSL_set_tlsext_host_name(ssl, o->host);
	at->completed = SSL_connect(ssl) == 1;
	at->version = SSL_version(ssl);
	snprintf(at->cipher, sizeof(at->cipher), "%s",
		 SSL_get_current_cipher(ssl) ? SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)) : "");
	ERR_clear_error();
	if (keep)
		return ssl;
drop:
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void free_kept(SSL *ssl)
{
	int fd = ssl ? SSL_get_fd(ssl) : -1;

	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
}

static int profile_has_suite(SSL_CTX *pctx, const char *name)
{
	STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(pctx);

	for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++)
		if (strcmp(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i)), name) == 0)
			return 1;
	return 0;
}

static int probe_versions(const struct opts *o, const struct zg_profile *p, struct report *r)
{
	static const struct {
		int v;
		const char *name;
	} vs[] = {{TLS1_VERSION, "TLSv1.0"}, {TLS1_1_VERSION, "TLSv1.1"},
		  {TLS1_2_VERSION, "TLSv1.2"}, {TLS1_3_VERSION, "TLSv1.3"}};
	struct attempt at;
	int err;

	for (size_t i = 0; i < 4; i++) {
		SSL_CTX *ctx = offer_ctx(o, p, vs[i].v, ALL_TLS12, ALL_TLS13);
		if (!ctx)
			return -1;
		attempt(o, ctx, &at, 0, &err);
		SSL_CTX_free(ctx);
		if (err < 0)
			return -1;
		r->versions[i].name = vs[i].name;
		r->versions[i].version = vs[i].v;
		r->versions[i].accepted = at.server_hello && at.version == vs[i].v;
		r->versions[i].in_profile = vs[i].v >= p->min_version && vs[i].v <= p->max_version;
		if (r->versions[i].accepted && !r->versions[i].in_profile)
			r->extra++;
	}
	return 0;
}

/* Every suite OpenSSL can offer for @version, one connection each. */
static int probe_suites(const struct opts *o, const struct zg_profile *p, SSL_CTX *pctx,
			int version, struct report *r)
{
	SSL_CTX *all = offer_ctx(o, p, version, ALL_TLS12, ALL_TLS13);
	STACK_OF(SSL_CIPHER) *sk;
	struct attempt at;
	int err;

	if (!all)
		return -1;
	sk = SSL_CTX_get_ciphers(all);
	for (int i = 0; i < sk_SSL_CIPHER_num(sk) && r->n_suites < MAX_SUITES; i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
		const char *name = SSL_CIPHER_get_name(c);
		int is13 = strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0;
		char list[128];
		SSL_CTX *one;
		struct result *res;

		if (is13 != (version == TLS1_3_VERSION))
			continue;
		snprintf(list, sizeof(list), "%s:@SECLEVEL=0", name);
		one = is13 ? offer_ctx(o, p, version, NULL, name) : offer_ctx(o, p, version, list, "");
		if (!one)
			continue; /* OpenSSL cannot offer it alone (e.g. needs a provider) */
		attempt(o, one, &at, 0, &err);
		SSL_CTX_free(one);
		if (err < 0)
			break;
		res = &r->suites[r->n_suites++];
		res->name = name;
		res->version = version;
		res->accepted = at.server_hello && strcmp(at.cipher, name) == 0;
		res->in_profile = profile_has_suite(pctx, name) &&
				  version >= p->min_version && version <= p->max_version;
		if (res->accepted && !res->in_profile)
			r->extra++;
	}
	/* the stack belongs to @all, which outlives the names copied above only
	 * by pointer: SSL_CIPHERs are static tables in libssl */
	SSL_CTX_free(all);
	return 0;
}

/* The suite the server picks when offered @list (one version). */
static int pick(const struct opts *o, const struct zg_profile *p, int version, const char *list,
		char *out, size_t cap)
{
	SSL_CTX *ctx = version == TLS1_3_VERSION ? offer_ctx(o, p, version, NULL, list)
						 : offer_ctx(o, p, version, list, "");
	struct attempt at;
	int err;

	if (!ctx)
		return -1;
	attempt(o, ctx, &at, 0, &err);
	SSL_CTX_free(ctx);
	if (err < 0 || !at.server_hello)
		return -1;
	snprintf(out, cap, "%s", at.cipher);
	return 0;
}

/* Whose order decides: offer two accepted suites of one version both ways
 * round; a server that enforces its preference picks the same one twice. */
static void probe_order(const struct opts *o, const struct zg_profile *p, struct report *r)
{
	static const int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
	char fwd[160], rev[160], a[64], b[64];

	r->order = "unknown";
	for (size_t v = 0; v < 2; v++) {
		const char *first = NULL, *second = NULL;
		for (size_t i = 0; i < r->n_suites && !second; i++) {
			if (r->suites[i].version != versions[v] || !r->suites[i].accepted)
				continue;
			if (!first)
				first = r->suites[i].name;
			else
				second = r->suites[i].name;
		}
		if (!second)
			continue;
		snprintf(fwd, sizeof(fwd), "%s:%s%s", first, second,
			 versions[v] == TLS1_2_VERSION ? ":@SECLEVEL=0" : "");
		snprintf(rev, sizeof(rev), "%s:%s%s", second, first,
			 versions[v] == TLS1_2_VERSION ? ":@SECLEVEL=0" : "");
		if (pick(o, p, versions[v], fwd, a, sizeof(a)) < 0 ||
		    pick(o, p, versions[v], rev, b, sizeof(b)) < 0)
			continue;
		r->order = strcmp(a, b) == 0 ? "server" : "client";
		return;
	}
}

/* Whether the server of @at (its SSL @ssl kept open) asked for, and
 * insisted on, a client certificate. A handshake that failed before the
 * server's CertificateRequest would come tells nothing: r->cert_known
 * stays 0 rather than claiming "not requested". */
static void judge_cert_request(const struct opts *o, SSL *ssl, struct attempt *at, struct report *r)
{
	char buf[1];

	/* TLS 1.3: a server that insists answers our (empty) certificate
	 * with an alert after the handshake; TLS 1.2 fails the handshake. */
	if (at->completed && at->cert_request && !o->cert)
		(void)SSL_read(ssl, buf, sizeof(buf));
	ERR_clear_error();
	r->cert_known = at->completed || at->cert_request;
	r->cert_requested = at->cert_request;
	r->cert_required = at->cert_request && !o->cert &&
			   (!at->completed || at->alert == 116 || at->alert == SSL_AD_HANDSHAKE_FAILURE);
}

/* A handshake with the profile itself: the chain the server presents, and
 * whether it asks for / insists on a client certificate. When the profile
 * handshake fails too early to tell (a server with only legacy suites,
 * such as DICOM's AES profile), a second one offering everything does. */
static int probe_chain(const struct opts *o, const struct zg_profile *p, X509_STORE *store,
		       STACK_OF(X509_CRL) *crls, struct report *r)
{
	SSL_CTX *ctx = offer_ctx(o, p, 0, NULL, NULL);
	struct zg_policy_params pp = {.profile = p, .role = ZG_ROLE_SERVER, .now = time(NULL),
				      .crls = crls};
	struct attempt at;
	STACK_OF(X509) *presented, *rest = NULL;
	SSL *ssl;
	int err, rc = -1;

	if (!ctx)
		return -1;
	ssl = attempt(o, ctx, &at, 1, &err);
	if (!ssl)
		goto out;
	judge_cert_request(o, ssl, &at, r);
	if (!r->cert_known) {
		SSL_CTX *wide = offer_ctx(o, p, 0, ALL_TLS12, ALL_TLS13);
		SSL *ssl2 = wide ? attempt(o, wide, &at, 1, &err) : NULL;

		if (ssl2) {
			judge_cert_request(o, ssl2, &at, r);
			/* the chain too, if the profile's handshake got none */
			if (!SSL_get_peer_cert_chain(ssl) && SSL_get_peer_cert_chain(ssl2)) {
				free_kept(ssl);
				ssl = ssl2;
				ssl2 = NULL;
			}
		}
		free_kept(ssl2);
		SSL_CTX_free(wide);
	}
	presented = SSL_get_peer_cert_chain(ssl);
	if (presented && sk_X509_num(presented) > 0) {
		rest = sk_X509_dup(presented);
		if (rest) {
			(void)sk_X509_shift(rest);
			r->chain_ran = zg_certcheck_run(sk_X509_value(presented, 0), rest, store, &pp,
							o->name ? o->name : o->host, &r->chain) >= 0;
		}
	}
	sk_X509_free(rest);
	free_kept(ssl);
	rc = 0;
out:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return rc;
}

static const char *mark(const struct result *res)
{
	if (res->accepted)
		return res->in_profile ? "accepted" : "ACCEPTED-OUTSIDE-PROFILE";
	return res->in_profile ? "not accepted (in profile)" : "refused";
}

static void print_text(const struct opts *o, const struct zg_profile *p, const struct report *r)
{
	printf("probe %s:%s against profile %s\n", o->host, o->port, p->name);
	printf("versions:\n");
	for (size_t i = 0; i < 4; i++)
		printf("  %-8s %s\n", r->versions[i].name, mark(&r->versions[i]));
	printf("suites (each offered alone):\n");
	for (size_t i = 0; i < r->n_suites; i++)
		if (r->suites[i].accepted || r->suites[i].in_profile)
			printf("  %-8s %-32s %s\n", zg_profile_version_name(r->suites[i].version),
			       r->suites[i].name, mark(&r->suites[i]));
	printf("suite order: %s's preference\n", r->order);
	printf("client certificate: %s\n",
	       !r->cert_known      ? "unknown (no handshake got as far as the server's request)"
	       : r->cert_required  ? "required"
	       : r->cert_requested ? "requested"
				   : "not requested");
	if (r->chain_ran)
		zg_certcheck_print(&r->chain, stdout);
	else
		printf("server chain: not obtained\n");
	printf("compliance: %s (%u accepted outside the profile, chain %s)\n",
	       !r->extra && r->chain_ran && !r->chain.v.failed ? "compliant" : "NOT compliant", r->extra,
	       !r->chain_ran ? "unchecked" : r->chain.v.failed ? "refused" : "passes");
}

static json_t *results_json(const struct result *res, size_t n, int only_interesting)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		if (only_interesting && !res[i].accepted && !res[i].in_profile)
			continue;
		json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:b}", "name", res[i].name, "version",
						   zg_profile_version_name(res[i].version), "accepted",
						   res[i].accepted, "in_profile", res[i].in_profile));
	}
	return a;
}

static int print_json(const struct opts *o, const struct zg_profile *p, const struct report *r)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:s,s:b,s:b,s:b,s:i,s:o*,s:b}", "host", o->host,
			      "port", o->port, "profile", p->name, "versions",
			      results_json(r->versions, 4, 0), "suites",
			      results_json(r->suites, r->n_suites, 1), "suite_order", r->order,
			      "client_cert_known", r->cert_known, "client_cert_requested",
			      r->cert_requested, "client_cert_required", r->cert_required,
			      "accepted_outside_profile", (int)r->extra, "chain",
			      r->chain_ran ? zg_certcheck_json(&r->chain) : NULL, "compliant",
			      !r->extra && r->chain_ran && !r->chain.v.failed);
	int rc = -1;

	if (j && json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0) {
		fputc('\n', stdout);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

static int load_trust(const struct opts *o, X509_STORE **store, STACK_OF(X509_CRL) **crls)
{
	char why[512];

	if (o->ca) {
		*store = X509_STORE_new();
		if (!*store || X509_STORE_load_file(*store, o->ca) != 1) {
			fprintf(stderr, "probe: %s: cannot load trust anchors\n", o->ca);
			return -1;
		}
	}
	if (o->crl) {
		*crls = zg_crl_new();
		if (!*crls || zg_crl_load_file(*crls, o->crl, why, sizeof(why)) < 0) {
			fprintf(stderr, "probe: %s\n", *crls ? why : "out of memory");
			return -1;
		}
	}
	return 0;
}

int zg_cmd_probe(int argc, char **argv)
{
	struct opts o = {.profile = "cryptrec-high", .timeout_s = 5};
	struct report *r = NULL;
	const struct zg_profile *p;
	X509_STORE *store = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	SSL_CTX *pctx = NULL;
	char why[256];
	int rc = ZG_EXIT_RUNTIME;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return ZG_EXIT_OK;
	}
	if (parse(&o, argc, argv) < 0 || !(p = zg_profile_find(o.profile))) {
		usage(stderr);
		return ZG_EXIT_USAGE;
	}
	r = calloc(1, sizeof(*r));
	pctx = SSL_CTX_new(TLS_client_method());
	if (!r || !pctx || zg_profile_apply(pctx, p, why, sizeof(why)) < 0 ||
	    load_trust(&o, &store, &crls) < 0)
		goto out;
	if (probe_versions(&o, p, r) < 0) {
		fprintf(stderr, "probe: cannot connect to %s:%s\n", o.host, o.port);
		goto out;
	}
	if (probe_suites(&o, p, pctx, TLS1_3_VERSION, r) < 0 ||
	    probe_suites(&o, p, pctx, TLS1_2_VERSION, r) < 0 || probe_chain(&o, p, store, crls, r) < 0)
		goto out;
	probe_order(&o, p, r);
	if ((o.json ? print_json(&o, p, r) : (print_text(&o, p, r), 0)) < 0)
		goto out;
	rc = !r->extra && r->chain_ran && !r->chain.v.failed ? ZG_EXIT_OK : ZG_EXIT_FAIL;
out:
	if (r)
		zg_certcheck_clear(&r->chain);
	free(r);
	SSL_CTX_free(pctx);
	X509_STORE_free(store);
	zg_crl_free(crls);
	return rc;
}
