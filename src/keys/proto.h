/* proto.h - the key process's wire format: fixed-size messages on a
 * SOCK_SEQPACKET socketpair, one request answered by one response.
 *
 * Fixed sizes keep the key process's parser trivial: a message of any other
 * length, a bad magic, an unknown operation, key id, padding or digest, or a
 * digest length that does not fit the digest is refused with a status, never
 * acted on. A response carries a signature or a public key, never key bytes.
 */
#ifndef ZG_KEYS_PROTO_H
#define ZG_KEYS_PROTO_H

#include <stdint.h>

#define ZG_KEYS_MAGIC 0x7a676b31u /* "zgk1" */
#define ZG_KEYS_MAX 16            /* keys one key process holds: [tls] and 8 [identity], renewed */
#define ZG_KEYS_DIGEST_MAX 64     /* SHA-512 */
#define ZG_KEYS_DATA_MAX 2048     /* an RSA-8192 SubjectPublicKeyInfo, a signature */

enum zg_keys_op {
	ZG_KEYS_OP_SIGN = 1,   /* sign digest[] with key_id, pad, md, saltlen */
	ZG_KEYS_OP_PUBKEY = 2, /* the key's SubjectPublicKeyInfo (DER) */
};

enum zg_keys_pad {
	ZG_KEYS_PAD_ECDSA = 1, /* EC keys: DER ECDSA-Sig-Value */
	ZG_KEYS_PAD_PKCS1 = 2, /* RSA keys: PKCS#1 v1.5 (TLS 1.2) */
	ZG_KEYS_PAD_PSS = 3,   /* RSA keys: PSS, MGF1 with the same digest */
};

enum zg_keys_md {
	ZG_KEYS_MD_SHA256 = 1,
	ZG_KEYS_MD_SHA384 = 2,
	ZG_KEYS_MD_SHA512 = 3,
};

enum zg_keys_status {
	ZG_KEYS_ST_OK = 0,
	ZG_KEYS_ST_MALFORMED = 1,   /* wrong size, magic, op, pad, md or digest length */
	ZG_KEYS_ST_UNKNOWN_KEY = 2, /* no such key id */
	ZG_KEYS_ST_FAILED = 3,      /* OpenSSL refused to sign */
	ZG_KEYS_ST_LOAD = 4,        /* start-up: a key file did not load (data: why) */
};

struct zg_keys_req {
	uint32_t magic;
	uint32_t op;
	uint32_t key_id;
	uint32_t pad;
	uint32_t md;
	int32_t saltlen; /* PSS: -1 = digest length, else 0..ZG_KEYS_DIGEST_MAX */
	uint32_t digest_len;
	uint8_t digest[ZG_KEYS_DIGEST_MAX];
};

struct zg_keys_resp {
	uint32_t magic;
	uint32_t status;
	uint32_t len;
	uint8_t data[ZG_KEYS_DATA_MAX];
};

#endif
