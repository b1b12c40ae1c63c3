/* client.c - the gateway's side of the key process: see keys.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "base/clock.h"
#include "base/hook.h"
#include "base/log.h"
#include "keys/keys.h"

#define KEY_FD 3 /* the socket's number in the key process */
#define READY_TIMEOUT_MS 10000

struct zg_keys {
	pthread_mutex_t lock; /* one request at a time; guards fd */
	int fd;               /* -1 while there is no key process to ask */
	pid_t pid;            /* main thread only */
	atomic_int lost;      /* a worker's request failed: restart wanted */
	uint64_t started_ms, next_restart_ms, backoff_ms;
	OSSL_PROVIDER *prov[2]; /* default and zgkeys, loaded while installed */
	int pend_fd;            /* reload: the new process, until zg_keys_commit() */
	pid_t pend_pid;
	unsigned pend_n;        /* paths before the reload added any */
	char self[PATH_MAX];
	char paths[ZG_KEYS_MAX][PATH_MAX];
	unsigned n;
};

/* The one channel (keys.h says why it is process-wide). */
static struct zg_keys *g_keys;

/* Read one response from @fd within @ms: 0, or -1 (timeout, EOF, error,
 * wrong size or magic). */
static int recv_resp(int fd, struct zg_keys_resp *resp, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t r;
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	do
		r = recv(fd, resp, sizeof(*resp), 0);
	while (r < 0 && errno == EINTR);
	return r == (ssize_t)sizeof(*resp) && resp->magic == ZG_KEYS_MAGIC ? 0 : -1;
}

/* The key process's argv: zonegate __key-process 3 PATH... (NULL-ended). */
static void build_argv(struct zg_keys *k, char **argv, char *fdarg, size_t cap)
{
	snprintf(fdarg, cap, "%d", KEY_FD);
	argv[0] = k->self;
	argv[1] = (char *)"__key-process";
	argv[2] = fdarg;
	for (unsigned i = 0; i < k->n; i++)
		argv[3 + i] = k->paths[i];
	argv[3 + k->n] = NULL;
}

/* fork + exec: the child gets a fresh image and only the socket, so no
 * memory of the gateway (and no thread state) crosses over. Between fork
 * and exec only async-signal-safe calls. */
static pid_t spawn(struct zg_keys *k, int *fd, char *why, size_t cap)
{
	char *argv[ZG_KEYS_MAX + 4], fdarg[16];
	int sv[2];
	pid_t pid;

	build_argv(k, argv, fdarg, sizeof(fdarg));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, cap, "socketpair: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		if (sv[1] == KEY_FD ? fcntl(KEY_FD, F_SETFD, 0) < 0 : dup2(sv[1], KEY_FD) < 0)
			_exit(127);
		(void)close_range(KEY_FD + 1, ~0U, 0);
		execv(k->self, argv);
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0) {
		snprintf(why, cap, "fork: %s", strerror(errno));
		close(sv[0]);
		return -1;
	}
	*fd = sv[0];
	return pid;
}

/* Spawn and wait for the key process's ready message: 0 with @k's fd and
 * pid set, or -1 with why (the child reaped). */
static int start_process(struct zg_keys *k, int *fd, pid_t *pid, char *why, size_t cap)
{
	struct zg_keys_resp *resp = malloc(sizeof(*resp));
	int rc = -1;

	if (!resp) {
		snprintf(why, cap, "out of memory");
		return -1;
	}
	*pid = spawn(k, fd, why, cap);
	if (*pid < 0)
		goto out;
	if (recv_resp(*fd, resp, READY_TIMEOUT_MS) < 0)
		snprintf(why, cap, "key process %ld did not start", (long)*pid);
	else if (resp->status != ZG_KEYS_ST_OK)
		snprintf(why, cap, "%.*s", (int)(resp->len < sizeof(resp->data) ? resp->len : 0),
			 (const char *)resp->data);
	else
		rc = 0;
	if (rc < 0) {
		close(*fd);
		(void)kill(*pid, SIGKILL);
		(void)waitpid(*pid, NULL, 0);
	}
out:
	free(resp);
	return rc;
}

/* Add the paths of @paths not yet in @k (ids stay stable). -1 if full. */
static int add_paths(struct zg_keys *k, char *const *paths, unsigned n, char *why, size_t cap)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned j = 0;
		while (j < k->n && strcmp(k->paths[j], paths[i]) != 0)
			j++;
		if (j < k->n)
			continue;
		if (k->n == ZG_KEYS_MAX) {
			snprintf(why, cap, "more than %d key files", ZG_KEYS_MAX);
			return -1;
		}
		snprintf(k->paths[k->n++], sizeof(k->paths[0]), "%s", paths[i]);
	}
	return 0;
}

int zg_keys_start(char *const *paths, unsigned n, char *why, size_t cap)
{
	struct zg_keys *k = calloc(1, sizeof(*k));
	ssize_t len;

	if (!k || pthread_mutex_init(&k->lock, NULL) != 0) {
		free(k);
		snprintf(why, cap, "out of memory");
		return -1;
	}
	k->fd = k->pend_fd = -1;
	k->pend_pid = -1;
	len = readlink("/proc/self/exe", k->self, sizeof(k->self) - 1);
	if (len <= 0) {
		snprintf(why, cap, "/proc/self/exe: %s", strerror(errno));
		goto fail;
	}
	k->self[len] = '\0';
	if (add_paths(k, paths, n, why, cap) < 0 || zg_keys_provider_load(k->prov, why, cap) < 0 ||
	    start_process(k, &k->fd, &k->pid, why, cap) < 0)
		goto fail;
	k->started_ms = zg_now_ms();
	k->backoff_ms = ZG_KEYS_BACKOFF_MIN_MS;
	g_keys = k;
	zg_info("event=key_process_started pid=%ld keys=%u", (long)k->pid, k->n);
	return 0;
fail:
	zg_keys_provider_unload(k->prov);
	pthread_mutex_destroy(&k->lock);
	free(k);
	return -1;
}

int zg_keys_active(void)
{
	return g_keys != NULL;
}

long zg_keys_pid(void)
{
	return g_keys ? (long)g_keys->pid : -1;
}

/* Swap in @fd/@pid as the process to ask; the old one's socket is closed
 * (under the lock, so no request is cut in half) and it is reaped. */
static void swap_process(struct zg_keys *k, int fd, pid_t pid)
{
	int old_fd;
	pid_t old_pid = k->pid;

	pthread_mutex_lock(&k->lock);
	old_fd = k->fd;
	k->fd = fd;
	pthread_mutex_unlock(&k->lock);
	k->pid = pid;
	k->started_ms = zg_now_ms();
	atomic_store(&k->lost, 0);
	if (old_fd >= 0)
		close(old_fd); /* the old process exits on EOF */
	if (old_pid > 0)
		(void)waitpid(old_pid, NULL, 0);
}

/* Kill and reap the process started by a reload that did not commit. */
static void drop_pending(struct zg_keys *k)
{
	if (k->pend_pid <= 0)
		return;
	close(k->pend_fd);
	(void)kill(k->pend_pid, SIGKILL);
	(void)waitpid(k->pend_pid, NULL, 0);
	k->n = k->pend_n;
	k->pend_fd = k->pend_pid = -1;
}

int zg_keys_refresh(char *const *paths, unsigned n, char *why, size_t cap)
{
	struct zg_keys *k = g_keys;

	if (!k)
		return 0;
	drop_pending(k);
	k->pend_n = k->n;
	if (add_paths(k, paths, n, why, cap) < 0 ||
	    start_process(k, &k->pend_fd, &k->pend_pid, why, cap) < 0) {
		k->n = k->pend_n;
		k->pend_fd = k->pend_pid = -1;
		return -1;
	}
	return 0;
}

void zg_keys_commit(int ok)
{
	struct zg_keys *k = g_keys;
	pid_t pid;

	if (!k || k->pend_pid <= 0)
		return;
	if (!ok) {
		drop_pending(k);
		return;
	}
	pid = k->pend_pid;
	swap_process(k, k->pend_fd, pid);
	k->pend_fd = k->pend_pid = -1;
	zg_info("event=key_process_started pid=%ld keys=%u cause=reload", (long)pid, k->n);
}

/* Forget a key process that died or stopped answering: close its socket so
 * workers fail fast, and schedule the restart after the back-off. */
static void mark_down(struct zg_keys *k, uint64_t now)
{
	pthread_mutex_lock(&k->lock);
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	pthread_mutex_unlock(&k->lock);
	if (now - k->started_ms >= ZG_KEYS_STABLE_MS)
		k->backoff_ms = ZG_KEYS_BACKOFF_MIN_MS;
	k->next_restart_ms = now + k->backoff_ms;
	k->pid = -1;
}

/* Whether the key process died (reaping it, logging how). */
static int reaped(struct zg_keys *k)
{
	int st = 0;

	if (k->pid <= 0 || waitpid(k->pid, &st, WNOHANG) != k->pid)
		return 0;
	if (WIFSIGNALED(st))
		zg_err("event=key_process_lost pid=%ld signal=%d msg=\"handshakes fail until it is back\"",
		       (long)k->pid, WTERMSIG(st));
	else
		zg_err("event=key_process_lost pid=%ld status=%d msg=\"handshakes fail until it is back\"",
		       (long)k->pid, WEXITSTATUS(st));
	return 1;
}

void zg_keys_tick(uint64_t now)
{
	struct zg_keys *k = g_keys;
	char why[256];
	pid_t pid;
	int fd;

	if (!k)
		return;
	if (k->pid > 0 && atomic_load(&k->lost)) {
		zg_err("event=key_process_lost pid=%ld msg=\"no answer: killed\"", (long)k->pid);
		(void)kill(k->pid, SIGKILL);
		(void)waitpid(k->pid, NULL, 0);
		mark_down(k, now);
	} else if (reaped(k)) {
		mark_down(k, now);
	}
	if (k->pid > 0 || now < k->next_restart_ms || zg_hook_keys_restart_held())
		return;
	if (start_process(k, &fd, &pid, why, sizeof(why)) < 0) {
		k->next_restart_ms = now + k->backoff_ms;
		zg_err("event=key_process_restart result=failed error=\"%s\" retry_ms=%llu", why,
		       (unsigned long long)k->backoff_ms);
	} else {
		swap_process(k, fd, pid);
		zg_warn("event=key_process_restart result=ok pid=%ld backoff_ms=%llu", (long)pid,
			(unsigned long long)k->backoff_ms);
	}
	if (k->backoff_ms < ZG_KEYS_BACKOFF_MAX_MS)
		k->backoff_ms *= 2;
}

void zg_keys_stop(void)
{
	struct zg_keys *k = g_keys;

	if (!k)
		return;
	g_keys = NULL;
	drop_pending(k);
	if (k->fd >= 0)
		close(k->fd); /* EOF: the key process exits */
	if (k->pid > 0)
		(void)waitpid(k->pid, NULL, 0);
	zg_keys_provider_unload(k->prov);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* One request and its response on @fd: 0, or -1 (no answer in time). */
static int exchange_fd(int fd, const struct zg_keys_req *q, struct zg_keys_resp *resp)
{
	ssize_t w;

	do
		w = send(fd, q, sizeof(*q), MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)sizeof(*q))
		return -1;
	return recv_resp(fd, resp, ZG_KEYS_TIMEOUT_MS);
}

/* One request, one response, under the lock. 0, or -1 (and the channel
 * is marked lost if the process did not answer). */
static int exchange(struct zg_keys *k, const struct zg_keys_req *q, struct zg_keys_resp *resp)
{
	int rc = -1;

	pthread_mutex_lock(&k->lock);
	if (k->fd < 0)
		goto out;
	if (exchange_fd(k->fd, q, resp) < 0) {
		close(k->fd); /* a late answer must never be read as the next one's */
		k->fd = -1;
		atomic_store(&k->lost, 1);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&k->lock);
	return rc;
}

int zg_keys_sign(uint32_t key_id, enum zg_keys_pad pad, enum zg_keys_md md, int saltlen,
		 const unsigned char *dgst, size_t dlen, unsigned char *sig, size_t *siglen, size_t cap)
{
	struct zg_keys_req q = {.magic = ZG_KEYS_MAGIC, .op = ZG_KEYS_OP_SIGN, .key_id = key_id,
				.pad = (uint32_t)pad, .md = (uint32_t)md, .saltlen = saltlen};
	struct zg_keys_resp *resp = malloc(sizeof(*resp));
	int rc = -1;

	if (!resp || !g_keys || dlen > sizeof(q.digest))
		goto out;
	q.digest_len = (uint32_t)dlen;
	memcpy(q.digest, dgst, dlen);
	if (exchange(g_keys, &q, resp) < 0 || resp->status != ZG_KEYS_ST_OK || resp->len > cap ||
	    resp->len > sizeof(resp->data))
		goto out;
	memcpy(sig, resp->data, resp->len);
	*siglen = resp->len;
	rc = 0;
out:
	if (rc < 0)
		ERR_raise_data(ERR_LIB_USER, ZG_KEYS_ERR_UNAVAILABLE, "key process unavailable");
	free(resp);
	return rc;
}

int zg_keys_error_pending(void)
{
	unsigned long e;
	int found = 0;

	while ((e = ERR_get_error()) != 0)
		if (ERR_GET_LIB(e) == ERR_LIB_USER && ERR_GET_REASON(e) == ZG_KEYS_ERR_UNAVAILABLE)
			found = 1;
	return found;
}

/* The key id of @path in @k, or -1. */
static int key_id(const struct zg_keys *k, const char *path)
{
	for (unsigned i = 0; i < k->n; i++)
		if (strcmp(k->paths[i], path) == 0)
			return (int)i;
	return -1;
}

EVP_PKEY *zg_keys_pkey(const char *path, EVP_PKEY *cert_pub, char *why, size_t cap)
{
	struct zg_keys_req q = {.magic = ZG_KEYS_MAGIC, .op = ZG_KEYS_OP_PUBKEY};
	struct zg_keys_resp *resp = malloc(sizeof(*resp));
	EVP_PKEY *pub = NULL, *out = NULL;
	const unsigned char *p;
	int id = g_keys ? key_id(g_keys, path) : -1, rc;

	if (!resp || id < 0) {
		snprintf(why, cap, "%s: not loaded by the key process (a new key file needs a restart)",
			 path);
		goto done;
	}
	q.key_id = (uint32_t)id;
	/* during a reload, the key the new process read (main thread only) */
	rc = g_keys->pend_pid > 0 ? exchange_fd(g_keys->pend_fd, &q, resp) : exchange(g_keys, &q, resp);
	if (rc < 0 || resp->status != ZG_KEYS_ST_OK) {
		snprintf(why, cap, "%s: the key process did not answer", path);
		goto done;
	}
	p = resp->data;
	pub = d2i_PUBKEY(NULL, &p, (long)resp->len);
	if (!pub || !cert_pub || EVP_PKEY_eq(pub, cert_pub) != 1) {
		snprintf(why, cap, "%s does not match the certificate", path);
		goto done;
	}
	if (!(out = zg_keys_provider_pkey(cert_pub, (uint32_t)id)))
		snprintf(why, cap, "%s: cannot make the key process's key handle", path);
done:
	ERR_clear_error();
	EVP_PKEY_free(pub);
	free(resp);
	return out;
}
