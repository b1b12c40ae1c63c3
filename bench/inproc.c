/* inproc.c - "what the library alone costs": a client and a server OpenSSL
 * SSL in one process, joined by a BIO pair (no sockets, no event loop),
 * doing the same mTLS handshake and 100-byte echo the load generator does.
 *
 *   inproc [-b] -d PKI_DIR [-n N] [-t ec|rsa] [-v 1.2|1.3] [-m full|cache|ticket]
 *
 * PKI_DIR is the mkcerts.sh output (PKI_DIR/ec, PKI_DIR/rsa). Without -t/-v/-m
 * every combination is run. For each it prints one line:
 *   inproc type=ec tls=1.3 mode=full n=N server_us=.. client_us=.. server_bytes=..
 * server_us    server-side CPU per connection (SSL_new, handshake, echo,
 *              SSL_free), thread CPU clock, after 20 warm-up connections;
 * client_us    the same for the client side;
 * server_bytes heap bytes the server SSL holds after the handshake and echo,
 *              with SSL_MODE_RELEASE_BUFFERS (the floor for an idle
 *              connection's TLS state), counted by OpenSSL's allocator hooks.
 * -b           also list, once, the server's allocations still live after the
 *              handshake and echo, by allocating source line.
 * Modes: full = no resumption (server cache off, no tickets); cache =
 * server-side session cache, no tickets; ticket = stateless tickets only.
 *
 * The allocator hooks get no user pointer, so the byte counters are file
 * statics: a measuring tool, not project code.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define TLS13_SUITES                                                               \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:" \
	"TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"
#define TLS12_CIPHERS                                                              \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
#define GROUPS "X25519:P-256:P-384:P-521:X448"
/* The client offers one suite, as bench/loadgen does. */
#define CLIENT_SUITE13 "TLS_AES_256_GCM_SHA384"
#define CLIENT_CIPHERS12 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define WARMUP 20

enum side { SIDE_OTHER, SIDE_CLIENT, SIDE_SERVER };
enum mode { MODE_FULL, MODE_CACHE, MODE_TICKET };

static enum side cur_side;
static long long live[3];

/* Every live allocation, so -b can list what the server SSL holds by the
 * allocating source line (OpenSSL passes file and line to the hooks). */
struct hdr {
	struct hdr *prev, *next;
	const char *file;
	size_t size;
	unsigned long seq;
	int side;
	int line;
};

static struct hdr live_list = {&live_list, &live_list, NULL, 0, 0, 0, 0};
static unsigned long alloc_seq;

static void link_hdr(struct hdr *h)
{
	h->seq = ++alloc_seq;
	h->next = &live_list;
	h->prev = live_list.prev;
	live_list.prev->next = h;
	live_list.prev = h;
}

static void unlink_hdr(struct hdr *h)
{
	h->prev->next = h->next;
	h->next->prev = h->prev;
}

static void *m_malloc(size_t n, const char *file, int line)
{
	struct hdr *h = malloc(sizeof(*h) + n);

	if (!h)
		return NULL;
	h->size = n;
	h->side = cur_side;
	h->file = file;
	h->line = line;
	link_hdr(h);
	live[cur_side] += (long long)n;
	return h + 1;
}

static void m_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	struct hdr *h;

	if (!p)
		return;
	h = (struct hdr *)p - 1;
	live[h->side] -= (long long)h->size;
	unlink_hdr(h);
	free(h);
}

static void *m_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	struct hdr *h, *nh;

	if (!p)
		return m_malloc(n, file, line);
	if (n == 0) {
		m_free(p, file, line);
		return NULL;
	}
	h = (struct hdr *)p - 1;
	live[h->side] -= (long long)h->size;
	unlink_hdr(h);
	nh = realloc(h, sizeof(*nh) + n);
	if (!nh) {
		live[h->side] += (long long)h->size;
		link_hdr(h);
		return NULL;
	}
	nh->size = n;
	nh->file = file;
	nh->line = line;
	link_hdr(nh);
	live[nh->side] += (long long)n;
	return nh + 1;
}

static int breakdown; /* -b: list the server's live allocations once */

struct site {
	const char *file;
	int line;
	unsigned count;
	long long bytes;
};

/* Print the server-side allocations made since @seq0 and still live,
 * grouped by allocating source line, largest first. */
static void print_breakdown(unsigned long seq0)
{
	static struct site sites[512];
	unsigned n = 0;
	long long total = 0;

	for (struct hdr *h = live_list.next; h != &live_list; h = h->next) {
		unsigned i;
		if (h->side != SIDE_SERVER || h->seq <= seq0)
			continue;
		for (i = 0; i < n; i++)
			if (sites[i].line == h->line && !strcmp(sites[i].file, h->file ? h->file : "?"))
				break;
		if (i == n) {
			if (n == sizeof(sites) / sizeof(sites[0]))
				continue;
			sites[n].file = h->file ? h->file : "?";
			sites[n].line = h->line;
			sites[n].count = 0;
			sites[n].bytes = 0;
			n++;
		}
		sites[i].count++;
		sites[i].bytes += (long long)h->size;
		total += (long long)h->size;
	}
	for (unsigned a = 0; a < n; a++)
		for (unsigned b = a + 1; b < n; b++)
			if (sites[b].bytes > sites[a].bytes) {
				struct site t = sites[a];
				sites[a] = sites[b];
				sites[b] = t;
			}
	printf("breakdown total=%lld allocations held by the server after handshake + echo:\n", total);
	for (unsigned i = 0; i < n; i++)
		printf("  %7lld B %4u x  %s:%d\n", sites[i].bytes, sites[i].count, sites[i].file,
		       sites[i].line);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "inproc: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static SSL_CTX *make_ctx(const char *dir, const char *type, int server, int version, enum mode m)
{
	char cert[512], key[512], ca[512];
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	static const unsigned char sid_ctx[] = "zgbench";

	if (!ctx)
		die("SSL_CTX_new");
	snprintf(cert, sizeof(cert), "%s/%s/%s-chain.pem", dir, type, server ? "server" : "client");
	snprintf(key, sizeof(key), "%s/%s/%s.key", dir, type, server ? "server" : "client");
	snprintf(ca, sizeof(ca), "%s/%s/root.pem", dir, type);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		die("certificates");
	if (!SSL_CTX_set_min_proto_version(ctx, server ? TLS1_2_VERSION : version) ||
	    !SSL_CTX_set_max_proto_version(ctx, server ? TLS1_3_VERSION : version) ||
	    !SSL_CTX_set_ciphersuites(ctx, server ? TLS13_SUITES : CLIENT_SUITE13) ||
	    !SSL_CTX_set_cipher_list(ctx, server ? TLS12_CIPHERS : CLIENT_CIPHERS12) ||
	    !SSL_CTX_set1_groups_list(ctx, server ? GROUPS : "X25519:P-256"))
		die("policy");
	if (!server) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
		return ctx;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1)
		die("session id context");
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
					 (m == MODE_TICKET ? 0 : SSL_OP_NO_TICKET));
	SSL_CTX_set_session_cache_mode(ctx, m == MODE_CACHE ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

struct totals {
	uint64_t server_ns, client_ns;
	long long server_bytes;
	unsigned resumed;
};

/* Run @fn on @s with the allocator and the clock charged to @side. */
static int timed(SSL *s, enum side side, uint64_t *acc, int (*fn)(SSL *))
{
	uint64_t t0;
	int rc;

	cur_side = side;
	t0 = cpu_ns();
	rc = fn(s);
	*acc += cpu_ns() - t0;
	cur_side = SIDE_OTHER;
	return rc;
}

static int echo_step(SSL *s)
{
	static unsigned char buf[100];
	size_t n = 0;

	if (SSL_read_ex(s, buf, sizeof(buf), &n) != 1)
		return 0;
	return SSL_write_ex(s, buf, n, &n);
}

static int client_send(SSL *s)
{
	static const unsigned char msg[100] = "inproc echo";
	size_t n = 0;

	return SSL_write_ex(s, msg, sizeof(msg), &n);
}

static int client_recv(SSL *s)
{
	unsigned char buf[100];
	size_t n = 0;

	return SSL_read_ex(s, buf, sizeof(buf), &n);
}

static void one(SSL_CTX *sctx, SSL_CTX *cctx, enum mode m, SSL_SESSION **sess, struct totals *t,
		int count)
{
	uint64_t sns = 0, cns = 0, t0;
	SSL *c, *s;
	BIO *cb = NULL, *sb = NULL;
	long long before;
	unsigned long seq0;
	int cd = 0, sd = 0;

	before = live[SIDE_SERVER];
	seq0 = alloc_seq;
	cur_side = SIDE_SERVER;
	t0 = cpu_ns();
	s = SSL_new(sctx);
	sns += cpu_ns() - t0;
	cur_side = SIDE_CLIENT;
	c = SSL_new(cctx);
	cur_side = SIDE_OTHER;
	if (!c || !s || !BIO_new_bio_pair(&cb, 0, &sb, 0))
		die("SSL_new");
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	if (*sess)
		SSL_set_session(c, *sess);
	for (int i = 0; i < 50 && !(cd && sd); i++) {
		if (!cd)
			cd = timed(c, SIDE_CLIENT, &cns, SSL_do_handshake) == 1;
		if (!sd)
			sd = timed(s, SIDE_SERVER, &sns, SSL_do_handshake) == 1;
	}
	if (!(cd && sd))
		die("handshake did not complete");
	if (timed(c, SIDE_CLIENT, &cns, client_send) != 1 || timed(s, SIDE_SERVER, &sns, echo_step) != 1 ||
	    timed(c, SIDE_CLIENT, &cns, client_recv) != 1)
		die("echo");
	if (count) {
		t->server_bytes += live[SIDE_SERVER] - before;
		t->resumed += (unsigned)SSL_session_reused(s);
		if (breakdown) {
			print_breakdown(seq0);
			breakdown = 0;
		}
	}
	SSL_SESSION_free(*sess);
	*sess = NULL;
	if (m != MODE_FULL)
		*sess = SSL_get1_session(c);
	/* close_notify both ways, as over a socket: OpenSSL drops a session
	 * from the server cache when an SSL is freed without one. */
	(void)timed(c, SIDE_CLIENT, &cns, SSL_shutdown);
	(void)timed(s, SIDE_SERVER, &sns, SSL_shutdown);
	cur_side = SIDE_SERVER;
	t0 = cpu_ns();
	SSL_free(s);
	sns += cpu_ns() - t0;
	cur_side = SIDE_CLIENT;
	SSL_free(c);
	cur_side = SIDE_OTHER;
	if (count) {
		t->server_ns += sns;
		t->client_ns += cns;
	}
}

static void run(const char *dir, const char *type, int version, enum mode m, unsigned n)
{
	static const char *mode_names[] = {"full", "cache", "ticket"};
	SSL_CTX *sctx = make_ctx(dir, type, 1, version, m);
	SSL_CTX *cctx = make_ctx(dir, type, 0, version, m);
	SSL_SESSION *sess = NULL;
	struct totals t;

	memset(&t, 0, sizeof(t));
	for (unsigned i = 0; i < n + WARMUP; i++)
		one(sctx, cctx, m, &sess, &t, i >= WARMUP);
	printf("inproc type=%s tls=%s mode=%s n=%u resumed=%u server_us=%.1f client_us=%.1f "
	       "server_bytes=%lld\n",
	       type, version == TLS1_3_VERSION ? "1.3" : "1.2", mode_names[m], n, t.resumed,
	       (double)t.server_ns / n / 1000.0, (double)t.client_ns / n / 1000.0,
	       t.server_bytes / (long long)n);
	fflush(stdout);
	SSL_SESSION_free(sess);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *type = NULL, *ver = NULL, *mode = NULL;
	static const char *types[] = {"ec", "rsa"}, *vers[] = {"1.2", "1.3"},
			  *modes[] = {"full", "cache", "ticket"};
	unsigned n = 500;
	int opt;

	if (!CRYPTO_set_mem_functions(m_malloc, m_realloc, m_free))
		die("CRYPTO_set_mem_functions");
	while ((opt = getopt(argc, argv, "bd:n:t:v:m:")) != -1) {
		switch (opt) {
		case 'b': breakdown = 1; break;
		case 'd': dir = optarg; break;
		case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': type = optarg; break;
		case 'v': ver = optarg; break;
		case 'm': mode = optarg; break;
		default: goto usage;
		}
	}
	if (!dir || n == 0)
		goto usage;
	for (unsigned ti = 0; ti < 2; ti++)
		for (unsigned vi = 0; vi < 2; vi++)
			for (unsigned mi = 0; mi < 3; mi++) {
				if ((type && strcmp(type, types[ti])) || (ver && strcmp(ver, vers[vi])) ||
				    (mode && strcmp(mode, modes[mi])))
					continue;
				run(dir, types[ti], vi ? TLS1_3_VERSION : TLS1_2_VERSION, (enum mode)mi, n);
			}
	return 0;
usage:
	fprintf(stderr, "usage: inproc [-b] -d PKI_DIR [-n N] [-t ec|rsa] [-v 1.2|1.3] [-m full|cache|ticket]\n");
	return 2;
}
