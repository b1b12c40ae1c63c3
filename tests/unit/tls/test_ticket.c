/* test_ticket.c - the session-ticket key ring (tls/ticket.c) on its own:
 * real TLS 1.2 handshakes between two SSL objects over a memory BIO pair,
 * the server's session cache off (only tickets resume) and OpenSSL's
 * session timeout far longer than the ring's period, so nothing but the
 * ring decides whether a ticket resumes. The clock ticket.c reads is moved
 * by the test: the executable is linked with -Wl,--wrap=time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/ticket.h"

#define PERIOD 100 /* seconds; the ring rotates its key every PERIOD */

/* The clock seen by ticket.c: the real time plus what the test added. */
static time_t skew;
time_t __real_time(time_t *t);
time_t __wrap_time(time_t *t);

time_t __wrap_time(time_t *t)
{
	time_t now = __real_time(NULL) + skew;

	if (t)
		*t = now;
	return now;
}

/* A self-signed P-256 certificate for the server: the client does not
 * verify it, the ring does not care who the peers are. */
static void server_identity(SSL_CTX *ctx)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	X509_NAME *n;

	assert_non_null(k);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -86400));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	n = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						    (const unsigned char *)"ticket.test", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	assert_int_equal(X509_set_pubkey(x, k), 1);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k), 1);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* A server context as tls.c makes it for session_tickets = on, with the
 * internal cache off and a session timeout of a day. */
static SSL_CTX *server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(ctx, 86400);
	server_identity(ctx);
	assert_int_equal(zg_ticket_keys_attach(ctx, PERIOD), 0);
	return ctx;
}

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

/* One full or resumed handshake of a client (offering @sess, may be NULL)
 * with @sctx. Returns the session the client ends with (a new ticket, or
 * the renewed one); *reused says whether it resumed. */
static SSL_SESSION *handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *sess, int *reused)
{
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	BIO *sb = NULL, *cb = NULL;
	SSL_SESSION *out;
	int sdone = 0, cdone = 0;

	assert_non_null(s);
	assert_non_null(c);
	assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	if (sess)
		assert_int_equal(SSL_set_session(c, sess), 1);
	for (int i = 0; i < 100 && !(sdone && cdone); i++) {
		int rc;

		if (!cdone) {
			rc = SSL_do_handshake(c);
			cdone = rc == 1;
			assert_true(rc == 1 || SSL_get_error(c, rc) == SSL_ERROR_WANT_READ);
		}
		if (!sdone) {
			rc = SSL_do_handshake(s);
			sdone = rc == 1;
			assert_true(rc == 1 || SSL_get_error(s, rc) == SSL_ERROR_WANT_READ);
		}
	}
	assert_true(sdone && cdone);
	*reused = SSL_session_reused(c);
	assert_int_equal(*reused, SSL_session_reused(s));
	out = SSL_get1_session(c);
	assert_non_null(out);
	assert_true(SSL_SESSION_has_ticket(out));
	/* as after close_notify: a connection freed mid-stream would mark its
	 * session not resumable */
	SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(c);
	SSL_free(s);
	return out;
}

struct fixture {
	SSL_CTX *server, *client;
};

static int setup(void **state)
{
	static struct fixture f;

	skew = 0;
	f.server = server_ctx();
	f.client = client_ctx();
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	SSL_CTX_free(f->server);
	SSL_CTX_free(f->client);
	return 0;
}

/* The control: a fresh ticket resumes. */
static void test_fresh_ticket_resumes(void **state)
{
	struct fixture *f = *state;
	int reused;
	SSL_SESSION *t = handshake(f->server, f->client, NULL, &reused);
	SSL_SESSION *t2;

	assert_false(reused);
	t2 = handshake(f->server, f->client, t, &reused);
	assert_true(reused);
	SSL_SESSION_free(t2);
	SSL_SESSION_free(t);
}

/* A ticket sealed by the key the ring has since replaced (the previous
 * key) still opens, and the client gets a ticket under the current key. */
static void test_ticket_of_the_previous_key_resumes(void **state)
{
	struct fixture *f = *state;
	int reused;
	SSL_SESSION *old = handshake(f->server, f->client, NULL, &reused);
	SSL_SESSION *other, *renewed, *again;

	skew = PERIOD + 10;
	other = handshake(f->server, f->client, NULL, &reused); /* sealing rotates */
	assert_false(reused);
	skew = PERIOD + 20;
	renewed = handshake(f->server, f->client, old, &reused);
	assert_true(reused);
	/* the renewed ticket is sealed by the current key: it outlives the old */
	skew = 2 * PERIOD + 20;
	again = handshake(f->server, f->client, renewed, &reused);
	assert_true(reused);
	SSL_SESSION_free(again);
	SSL_SESSION_free(renewed);
	SSL_SESSION_free(other);
	SSL_SESSION_free(old);
}

/* A ticket sealed two periods ago no longer opens, whether or not a
 * handshake rotated the key in between (ticket.h: a ticket never outlives
 * two rotation periods). */
static void test_ticket_two_periods_old_does_not_resume(void **state)
{
	struct fixture *f = *state;
	int reused;
	SSL_SESSION *t = handshake(f->server, f->client, NULL, &reused);
	SSL_SESSION *late;

	skew = 2 * PERIOD + 1; /* no handshake in between: the key is still current */
	late = handshake(f->server, f->client, t, &reused);
	assert_false(reused);
	SSL_SESSION_free(late);
	SSL_SESSION_free(t);
}

static void test_ticket_two_periods_old_after_rotation_does_not_resume(void **state)
{
	struct fixture *f = *state;
	int reused;
	SSL_SESSION *t = handshake(f->server, f->client, NULL, &reused);
	SSL_SESSION *other, *late;

	skew = PERIOD + 1;
	other = handshake(f->server, f->client, NULL, &reused); /* t's key is now previous */
	skew = 2 * PERIOD + 1;
	late = handshake(f->server, f->client, t, &reused);
	assert_false(reused);
	SSL_SESSION_free(late);
	SSL_SESSION_free(other);
	SSL_SESSION_free(t);
}

/* A reload builds new contexts and attaches a new ring: tickets of the old
 * ring's keys do not open with the new one. */
static void test_new_ring_has_new_keys(void **state)
{
	struct fixture *f = *state;
	int reused;
	SSL_SESSION *t = handshake(f->server, f->client, NULL, &reused);
	SSL_CTX *reloaded = server_ctx();
	SSL_SESSION *after = handshake(reloaded, f->client, t, &reused);

	assert_false(reused);
	SSL_SESSION_free(after);
	SSL_CTX_free(reloaded);
	SSL_SESSION_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_ticket_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ticket_of_the_previous_key_resumes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ticket_two_periods_old_does_not_resume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ticket_two_periods_old_after_rotation_does_not_resume,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_ring_has_new_keys, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
