/* keys.h - the key process: private keys in a separate process.
 *
 * Like OpenBSD relayd's CA process: the process that parses untrusted TLS
 * bytes never maps a private key. At start-up (before any worker, before
 * any listener reads a byte) the gateway spawns `zonegate` again as the key
 * process (fork + exec: a fresh address space, nothing of the gateway's
 * memory), which loads the key files and answers signatures over one
 * SOCK_SEQPACKET socketpair (proto.h). In the gateway an OpenSSL 3 provider
 * (provider.c) makes each key an EVP_PKEY whose public half is the
 * certificate's and whose sign operation asks the key process.
 *
 * One socket, one mutex: the key process is single-threaded, so per-worker
 * sockets would only move the queue from the mutex into the kernel; a
 * request is one send and one bounded receive (ZG_KEYS_TIMEOUT_MS).
 *
 * The channel is the one process-wide object of this wing (the provider
 * OpenSSL calls has no other way to find it): installed by
 * zg_keys_start(), driven by the main thread's zg_keys_tick(), removed by
 * zg_keys_stop() after the workers have stopped.
 */
#ifndef ZG_KEYS_H
#define ZG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/provider.h>

#include "keys/proto.h"

#define ZG_KEYS_TIMEOUT_MS 2000      /* a signature slower than this fails closed */
#define ZG_KEYS_BACKOFF_MIN_MS 250   /* first restart after a loss */
#define ZG_KEYS_BACKOFF_MAX_MS 30000 /* restarts back off up to this */
#define ZG_KEYS_STABLE_MS 60000      /* alive this long: the back-off resets */

/* The OpenSSL error reason (library ERR_LIB_USER) a failed remote signature
 * leaves in the error queue; zg_keys_error_pending() finds it. */
#define ZG_KEYS_ERR_UNAVAILABLE 0x6b1

/* ---- the key process (server.c) ---- */

struct zg_keys_table {
	EVP_PKEY *key[ZG_KEYS_MAX];
	unsigned n;
};

/* Load the PEM private keys @paths[0..n) into @t. 0, or -1 with the file
 * and OpenSSL's reason in @why (and @t emptied). */
int zg_keys_table_load(struct zg_keys_table *t, char *const *paths, unsigned n, char *why, size_t cap);

/* Free (and so wipe) every key of @t. */
void zg_keys_table_free(struct zg_keys_table *t);

/* Answer one request of @len bytes: a pure function of the table and the
 * bytes. Anything but a well-formed request for a known key and a padding
 * its type supports gets a refusal status; @resp never holds key bytes. */
void zg_keys_handle(const struct zg_keys_table *t, const void *req, size_t len, struct zg_keys_resp *resp);

/* The key process's life: load @paths, report ready (or why not) on @fd,
 * answer requests until @fd closes. The exit code. */
int zg_keys_serve(int fd, char *const *paths, unsigned n);

/* `zonegate __key-process FD PATH...` (how the gateway execs it). */
int zg_cmd_key_process(int argc, char **argv);

/* ---- the gateway's side (client.c) ---- */

/* Spawn the key process for @paths and install the channel. 0, or -1 with
 * the reason in @why (nothing installed). */
int zg_keys_start(char *const *paths, unsigned n, char *why, size_t cap);

/* Whether a key process channel is installed (zg_keys_start succeeded). */
int zg_keys_active(void);

/* Reload: start a key process that (re)reads @paths (renewed key files at
 * the same path, keeping the old key ids); zg_keys_pkey() asks it until
 * zg_keys_commit(). -1 with @why if it does not start. Main thread. */
int zg_keys_refresh(char *const *paths, unsigned n, char *why, size_t cap);

/* Reload done: @ok swaps the new key process in (the old one exits when
 * its socket closes); else it is killed and the old one serves on. */
void zg_keys_commit(int ok);

/* Main thread, every turn: reap a dead key process, restart a lost one
 * after the back-off (logging both). */
void zg_keys_tick(uint64_t now_ms);

/* Stop the key process and remove the channel (after the workers stop). */
void zg_keys_stop(void);

/* The key process's pid, or -1 (for tests and logs). */
long zg_keys_pid(void);

/* An EVP_PKEY for the key file @path whose public half is @cert_pub and
 * whose signatures the key process makes. NULL with @why if the key process
 * does not hold @path or its key does not match @cert_pub. */
EVP_PKEY *zg_keys_pkey(const char *path, EVP_PKEY *cert_pub, char *why, size_t cap);

/* Ask the key process to sign @dgst with key @key_id: 0 with the signature
 * in @sig (*@siglen bytes, at most @cap), or -1 with ZG_KEYS_ERR_UNAVAILABLE
 * in OpenSSL's error queue (fail closed; the main thread restarts it). */
int zg_keys_sign(uint32_t key_id, enum zg_keys_pad pad, enum zg_keys_md md, int saltlen,
		 const unsigned char *dgst, size_t dlen, unsigned char *sig, size_t *siglen, size_t cap);

/* Whether OpenSSL's error queue holds a failed remote signature. Leaves the
 * queue empty. */
int zg_keys_error_pending(void);

/* ---- the provider (provider.c) ---- */

/* Load "default" and the "zgkeys" provider into @prov[0..1] (registering
 * the built-in once). 0, or -1 with why and nothing loaded. */
int zg_keys_provider_load(OSSL_PROVIDER **prov, char *why, size_t cap);

/* Unload what zg_keys_provider_load() loaded (after the last key is freed). */
void zg_keys_provider_unload(OSSL_PROVIDER **prov);

/* An EVP_PKEY of the zgkeys provider: public half @pub, key id @key_id. */
EVP_PKEY *zg_keys_provider_pkey(EVP_PKEY *pub, uint32_t key_id);

#endif
