/* test_keys.c - the key process over a real socketpair: it signs well-formed
 * requests for the keys it holds and refuses everything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keys/keys.h"

struct fixture {
	char dir[64];
	char ec_path[96], rsa_path[96];
	EVP_PKEY *ec, *rsa;
	int fd;
	pid_t pid;
};

static void write_key(const char *path, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

/* A key process (forked, serving two keys: 0 = EC P-256, 1 = RSA-2048). */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct zg_keys_resp resp;
	char *paths[2];
	int sv[2];

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/zg-keys-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->ec_path, sizeof(fx->ec_path), "%s/ec.key", fx->dir);
	snprintf(fx->rsa_path, sizeof(fx->rsa_path), "%s/rsa.key", fx->dir);
	fx->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	fx->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_non_null(fx->ec);
	assert_non_null(fx->rsa);
	write_key(fx->ec_path, fx->ec);
	write_key(fx->rsa_path, fx->rsa);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	paths[0] = fx->ec_path;
	paths[1] = fx->rsa_path;
	fx->pid = fork();
	assert_true(fx->pid >= 0);
	if (fx->pid == 0) {
		close(sv[0]);
		_exit(zg_keys_serve(sv[1], paths, 2));
	}
	close(sv[1]);
	fx->fd = sv[0];
	assert_int_equal(recv(fx->fd, &resp, sizeof(resp), 0), (ssize_t)sizeof(resp));
	assert_int_equal(resp.status, ZG_KEYS_ST_OK);
	*state = fx;
	return 0;
}

/* Closing the socket ends the key process, with exit code 0. */
static int teardown(void **state)
{
	struct fixture *fx = *state;
	int st = -1;

	close(fx->fd);
	assert_int_equal(waitpid(fx->pid, &st, 0), fx->pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	EVP_PKEY_free(fx->ec);
	EVP_PKEY_free(fx->rsa);
	unlink(fx->ec_path);
	unlink(fx->rsa_path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Send @len bytes of @msg, return the response's status (resp filled). */
static uint32_t ask(struct fixture *fx, const void *msg, size_t len, struct zg_keys_resp *resp)
{
	assert_int_equal(send(fx->fd, msg, len, 0), (ssize_t)len);
	assert_int_equal(recv(fx->fd, resp, sizeof(*resp), 0), (ssize_t)sizeof(*resp));
	assert_int_equal(resp->magic, ZG_KEYS_MAGIC);
	return resp->status;
}

static struct zg_keys_req sign_req(uint32_t key_id, uint32_t pad, const unsigned char *dgst)
{
	struct zg_keys_req q;

	memset(&q, 0, sizeof(q));
	q.magic = ZG_KEYS_MAGIC;
	q.op = ZG_KEYS_OP_SIGN;
	q.key_id = key_id;
	q.pad = pad;
	q.md = ZG_KEYS_MD_SHA256;
	q.saltlen = -1;
	q.digest_len = 32;
	memcpy(q.digest, dgst, 32);
	return q;
}

static const unsigned char dgst[32] = "0123456789abcdef0123456789abcde";

static void malformed_requests_are_refused(void **state)
{
	struct fixture *fx = *state;
	struct zg_keys_resp resp;
	unsigned char big[sizeof(struct zg_keys_req) + 16];
	struct zg_keys_req q = sign_req(0, ZG_KEYS_PAD_ECDSA, dgst);

	/* too short, too long, wrong magic, unknown operation */
	assert_int_equal(ask(fx, &q, 10, &resp), ZG_KEYS_ST_MALFORMED);
	memset(big, 0, sizeof(big));
	memcpy(big, &q, sizeof(q));
	assert_int_equal(ask(fx, big, sizeof(big), &resp), ZG_KEYS_ST_MALFORMED);
	q.magic ^= 1;
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_MALFORMED);
	q = sign_req(0, ZG_KEYS_PAD_ECDSA, dgst);
	q.op = 9;
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_MALFORMED);
	/* a digest length that is not the digest's, an unknown digest */
	q = sign_req(0, ZG_KEYS_PAD_ECDSA, dgst);
	q.digest_len = 48;
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_MALFORMED);
	q.digest_len = 0xffffffffu;
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_MALFORMED);
	q = sign_req(0, ZG_KEYS_PAD_ECDSA, dgst);
	q.md = 77;
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_MALFORMED);
	/* paddings the key's type does not have, a PSS salt out of range */
	q = sign_req(0, ZG_KEYS_PAD_PKCS1, dgst);
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_MALFORMED);
	q = sign_req(1, ZG_KEYS_PAD_ECDSA, dgst);
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_MALFORMED);
	q = sign_req(1, ZG_KEYS_PAD_PSS, dgst);
	q.saltlen = 4096;
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_MALFORMED);
	assert_int_equal(resp.len, 0);
}

static void unknown_key_ids_are_refused(void **state)
{
	struct fixture *fx = *state;
	struct zg_keys_resp resp;
	struct zg_keys_req q = sign_req(2, ZG_KEYS_PAD_ECDSA, dgst);

	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_UNKNOWN_KEY);
	q.key_id = 0xffffffffu;
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_UNKNOWN_KEY);
	q.op = ZG_KEYS_OP_PUBKEY;
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_UNKNOWN_KEY);
}

/* Verify @resp's signature over dgst with @pub and @pad (RSA paddings). */
static int verifies(EVP_PKEY *pub, const struct zg_keys_resp *resp, int pad)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
	int ok;

	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_true(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0);
	if (pad)
		assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, pad) > 0);
	ok = EVP_PKEY_verify(ctx, resp->data, resp->len, dgst, sizeof(dgst));
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static void well_formed_requests_are_signed(void **state)
{
	struct fixture *fx = *state;
	struct zg_keys_resp resp;
	struct zg_keys_req q = sign_req(0, ZG_KEYS_PAD_ECDSA, dgst);
	const unsigned char *p;
	EVP_PKEY *pub;

	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_OK);
	assert_int_equal(verifies(fx->ec, &resp, 0), 1);
	q = sign_req(1, ZG_KEYS_PAD_PKCS1, dgst);
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_OK);
	assert_int_equal(resp.len, 256);
	assert_int_equal(verifies(fx->rsa, &resp, RSA_PKCS1_PADDING), 1);
	q = sign_req(1, ZG_KEYS_PAD_PSS, dgst);
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_OK);
	assert_int_equal(verifies(fx->rsa, &resp, RSA_PKCS1_PSS_PADDING), 1);
	/* the public half, and only it */
	q.op = ZG_KEYS_OP_PUBKEY;
	assert_int_equal(ask(fx, &q, sizeof(q), &resp), ZG_KEYS_ST_OK);
	p = resp.data;
	pub = d2i_PUBKEY(NULL, &p, (long)resp.len);
	assert_non_null(pub);
	assert_int_equal(EVP_PKEY_eq(pub, fx->rsa), 1);
	assert_int_equal(p - resp.data, (long)resp.len);
	EVP_PKEY_free(pub);
}

/* A key file that does not load: the key process says why and exits. */
static void a_missing_key_file_is_reported(void **state)
{
	char *paths[1] = {(char *)"/nonexistent/zg.key"};
	struct zg_keys_resp resp;
	int sv[2], st = -1;
	pid_t pid;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(zg_keys_serve(sv[1], paths, 1));
	}
	close(sv[1]);
	assert_int_equal(recv(sv[0], &resp, sizeof(resp), 0), (ssize_t)sizeof(resp));
	assert_int_equal(resp.status, ZG_KEYS_ST_LOAD);
	assert_non_null(strstr((const char *)resp.data, "/nonexistent/zg.key"));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(malformed_requests_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_key_ids_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(well_formed_requests_are_signed, setup, teardown),
		cmocka_unit_test(a_missing_key_file_is_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
