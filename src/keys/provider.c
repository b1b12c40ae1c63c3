/* provider.c - the "zgkeys" OpenSSL 3 provider: see keys.h.
 *
 * Two operations, nothing else: a key manager for "EC" and "RSA" keys whose
 * key data is a public key (the certificate's, held as a default-provider
 * EVP_PKEY) plus a key id, and a signature ("ECDSA", "RSA") that hashes in
 * the gateway and sends the digest to the key process. The key never
 * exports a private half (there is none here), so libcrypto's first try of
 * the default provider's signature fails to export it and it signs with the
 * implementation of the key's own provider.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

#include "keys/keys.h"

#define PROV_NAME "zgkeys"
#define PROPS "provider=zgkeys"
#define PARAM_KEY_ID "zg-key-id"
#define KEY_MAGIC 0x7a676b6bu
#define SIG_MAX 1024 /* RSA-8192 */

struct zg_pkey {
	unsigned magic;
	int rsa;       /* 1: RSA, 0: EC */
	EVP_PKEY *pub; /* default provider: the public half */
	int has_id;    /* 1: the key process holds the private half */
	uint32_t key_id;
};

struct zg_sig {
	struct zg_pkey *key;
	EVP_MD_CTX *mdctx; /* digest_sign_* */
	EVP_MD *md;
	int pad;     /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
	int saltlen; /* RSA_PSS_SALTLEN_DIGEST or a length */
};

/* The key data of @p, or NULL if it is not ours. */
static struct zg_pkey *key_of(void *p)
{
	struct zg_pkey *k = p;

	return k && k->magic == KEY_MAGIC ? k : NULL;
}

/* ---- key management ---- */

static void *km_new_ec(void *provctx)
{
	struct zg_pkey *k = calloc(1, sizeof(*k));

	(void)provctx;
	if (k)
		k->magic = KEY_MAGIC;
	return k;
}

static void *km_new_rsa(void *provctx)
{
	struct zg_pkey *k = km_new_ec(provctx);

	if (k)
		k->rsa = 1;
	return k;
}

static void km_free(void *p)
{
	struct zg_pkey *k = key_of(p);

	if (!k)
		return;
	EVP_PKEY_free(k->pub);
	k->magic = 0;
	free(k);
}

/* Whether the key data has the parts @sel asks for: the private part is
 * "there" when the key process holds it. */
static int km_has(const void *p, int sel)
{
	const struct zg_pkey *k = key_of((void *)p);

	if (!k || !k->pub)
		return 0;
	if ((sel & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !k->has_id)
		return 0;
	return 1;
}

static int km_match(const void *a, const void *b, int sel)
{
	const struct zg_pkey *x = key_of((void *)a), *y = key_of((void *)b);

	(void)sel;
	return x && y && x->pub && y->pub && EVP_PKEY_eq(x->pub, y->pub) == 1;
}

/* Import the public half (any default-provider parameters: the
 * certificate's key as exported) and, from zg_keys_provider_pkey(), the key
 * id. A private key in @params is refused: no key material here. */
static int km_import(void *p, int sel, const OSSL_PARAM params[])
{
	struct zg_pkey *k = key_of(p);
	const OSSL_PARAM *id = OSSL_PARAM_locate_const(params, PARAM_KEY_ID);
	EVP_PKEY_CTX *ctx;
	int ok = 0;

	(void)sel;
	if (!k || OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) ||
	    OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_D))
		return 0;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, k->rsa ? "RSA" : "EC", "provider=default");
	EVP_PKEY_free(k->pub);
	k->pub = NULL;
	if (ctx && EVP_PKEY_fromdata_init(ctx) > 0 &&
	    EVP_PKEY_fromdata(ctx, &k->pub, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) > 0)
		ok = 1;
	EVP_PKEY_CTX_free(ctx);
	if (ok && id)
		ok = k->has_id = OSSL_PARAM_get_uint32(id, &k->key_id);
	return ok;
}

static const OSSL_PARAM *km_import_types(int sel)
{
	static const OSSL_PARAM types[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_uint32(PARAM_KEY_ID, NULL),
		OSSL_PARAM_END,
	};

	(void)sel;
	return types;
}

/* Export the public half only; asked for the private half (libcrypto's
 * attempt to move the key to another provider), refuse. */
static int km_export(void *p, int sel, OSSL_CALLBACK *cb, void *arg)
{
	struct zg_pkey *k = key_of(p);
	OSSL_PARAM *params = NULL;
	int ok;

	if (!k || !k->pub || (sel & OSSL_KEYMGMT_SELECT_PRIVATE_KEY))
		return 0;
	if (EVP_PKEY_todata(k->pub, EVP_PKEY_PUBLIC_KEY, &params) <= 0)
		return 0;
	ok = cb(params, arg);
	OSSL_PARAM_free(params);
	return ok;
}

/* Every public parameter (bits, security bits, maximum signature size,
 * group, point format, n, e...) is the certificate key's. */
static int km_get_params(void *p, OSSL_PARAM params[])
{
	struct zg_pkey *k = key_of(p);

	return k && k->pub && EVP_PKEY_get_params(k->pub, params) > 0;
}

static const OSSL_PARAM *km_gettable(void *provctx)
{
	static const OSSL_PARAM types[] = {
		OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_END,
	};

	(void)provctx;
	return types;
}

static const char *km_opname_ec(int op)
{
	return op == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const char *km_opname_rsa(int op)
{
	return op == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

#define KM_COMMON                                                                      \
	{OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},                                 \
	{OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},                                   \
	{OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},                               \
	{OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},                             \
	{OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_import_types},                 \
	{OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},                             \
	{OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_import_types},                 \
	{OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},                     \
	{OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_gettable}

static const OSSL_DISPATCH km_ec[] = {
	{OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new_ec},
	{OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_opname_ec},
	KM_COMMON,
	{0, NULL},
};

static const OSSL_DISPATCH km_rsa[] = {
	{OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new_rsa},
	{OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_opname_rsa},
	KM_COMMON,
	{0, NULL},
};

/* ---- signature ---- */

static void *sig_new(void *provctx, const char *propq)
{
	struct zg_sig *s = calloc(1, sizeof(*s));

	(void)provctx;
	(void)propq;
	if (s) {
		s->pad = RSA_PKCS1_PADDING;
		s->saltlen = RSA_PSS_SALTLEN_DIGEST;
	}
	return s;
}

static void sig_free(void *p)
{
	struct zg_sig *s = p;

	if (!s)
		return;
	EVP_MD_CTX_free(s->mdctx);
	EVP_MD_free(s->md);
	free(s);
}

static void *sig_dup(void *p)
{
	const struct zg_sig *s = p;
	struct zg_sig *d = malloc(sizeof(*d));

	if (!d)
		return NULL;
	*d = *s;
	d->mdctx = NULL;
	if ((d->md && !EVP_MD_up_ref(d->md)) ) {
		free(d);
		return NULL;
	}
	if (s->mdctx && (!(d->mdctx = EVP_MD_CTX_new()) || !EVP_MD_CTX_copy_ex(d->mdctx, s->mdctx))) {
		sig_free(d);
		return NULL;
	}
	return d;
}

/* Set the digest by name: SHA-256/384/512 only (what the key process
 * signs); anything else is refused here, before a request is made. */
static int sig_set_md(struct zg_sig *s, const char *name)
{
	EVP_MD *md = EVP_MD_fetch(NULL, name, "provider=default");

	if (!md)
		return 0;
	if (!EVP_MD_is_a(md, "SHA256") && !EVP_MD_is_a(md, "SHA384") && !EVP_MD_is_a(md, "SHA512")) {
		EVP_MD_free(md);
		return 0;
	}
	EVP_MD_free(s->md);
	s->md = md;
	return 1;
}

/* An int parameter given as a number or as one of the words OpenSSL
 * accepts for it (@words[i] means @values[i]). */
static int int_or_word(const OSSL_PARAM *p, const char *const *words, const int *values, int n, int *out)
{
	if (p->data_type != OSSL_PARAM_UTF8_STRING)
		return OSSL_PARAM_get_int(p, out);
	for (int i = 0; i < n; i++)
		if (strcmp(p->data, words[i]) == 0) {
			*out = values[i];
			return 1;
		}
	return 0;
}

static int sig_set_params(void *p, const OSSL_PARAM params[])
{
	static const char *const pads[] = {OSSL_PKEY_RSA_PAD_MODE_PKCSV15, OSSL_PKEY_RSA_PAD_MODE_PSS};
	static const int padv[] = {RSA_PKCS1_PADDING, RSA_PKCS1_PSS_PADDING};
	static const char *const salts[] = {OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST};
	static const int saltv[] = {RSA_PSS_SALTLEN_DIGEST};
	struct zg_sig *s = p;
	const OSSL_PARAM *q;
	const char *name;

	if (!params)
		return 1;
	if ((q = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) &&
	    (!OSSL_PARAM_get_utf8_string_ptr(q, &name) || !sig_set_md(s, name)))
		return 0;
	if ((q = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) &&
	    (!int_or_word(q, pads, padv, 2, &s->pad) ||
	     (s->pad != RSA_PKCS1_PADDING && s->pad != RSA_PKCS1_PSS_PADDING)))
		return 0;
	if ((q = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) &&
	    !int_or_word(q, salts, saltv, 1, &s->saltlen))
		return 0;
	/* MGF1 is always the signature's digest (TLS 1.3, RFC 8446 4.2.3) */
	if ((q = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) &&
	    (!OSSL_PARAM_get_utf8_string_ptr(q, &name) || !s->md || !EVP_MD_is_a(s->md, name)))
		return 0;
	return 1;
}

static const OSSL_PARAM *sig_settable(void *p, void *provctx)
{
	static const OSSL_PARAM types[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL),
		OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
		OSSL_PARAM_END,
	};

	(void)p;
	(void)provctx;
	return types;
}

static int sig_get_params(void *p, OSSL_PARAM params[])
{
	(void)p;
	(void)params;
	return 1;
}

static const OSSL_PARAM *sig_gettable(void *p, void *provctx)
{
	static const OSSL_PARAM none[] = {OSSL_PARAM_END};

	(void)p;
	(void)provctx;
	return none;
}

static int sig_init(void *p, void *keydata, const OSSL_PARAM params[])
{
	struct zg_sig *s = p;
	struct zg_pkey *k = key_of(keydata);

	if (!k || !k->has_id)
		return 0;
	s->key = k;
	return sig_set_params(s, params);
}

static int sig_digest_init(void *p, const char *mdname, void *keydata, const OSSL_PARAM params[])
{
	struct zg_sig *s = p;

	if (!sig_init(p, keydata, params) || (mdname && mdname[0] && !sig_set_md(s, mdname)) ||
	    (!s->md && !sig_set_md(s, "SHA256")))
		return 0;
	if (!s->mdctx && !(s->mdctx = EVP_MD_CTX_new()))
		return 0;
	return EVP_DigestInit_ex2(s->mdctx, s->md, NULL);
}

/* Sign the digest @tbs of @s->md in the key process. */
static int sig_sign(void *p, unsigned char *sig, size_t *siglen, size_t sigsize, const unsigned char *tbs,
		    size_t tbslen)
{
	struct zg_sig *s = p;
	enum zg_keys_pad pad;
	enum zg_keys_md md;
	int max = EVP_PKEY_get_size(s->key->pub);

	if (!sig) {
		*siglen = (size_t)max;
		return 1;
	}
	if (!s->md)
		return 0;
	md = EVP_MD_is_a(s->md, "SHA512") ? ZG_KEYS_MD_SHA512
	     : EVP_MD_is_a(s->md, "SHA384") ? ZG_KEYS_MD_SHA384 : ZG_KEYS_MD_SHA256;
	pad = !s->key->rsa ? ZG_KEYS_PAD_ECDSA
	      : s->pad == RSA_PKCS1_PSS_PADDING ? ZG_KEYS_PAD_PSS : ZG_KEYS_PAD_PKCS1;
	if (pad == ZG_KEYS_PAD_PSS && s->saltlen != RSA_PSS_SALTLEN_DIGEST &&
	    s->saltlen != EVP_MD_get_size(s->md))
		return 0; /* TLS uses a salt as long as the digest, nothing else */
	return zg_keys_sign(s->key->key_id, pad, md, -1, tbs, tbslen, sig, siglen,
			    sigsize < SIG_MAX ? sigsize : SIG_MAX) == 0;
}

static int sig_digest_update(void *p, const unsigned char *data, size_t len)
{
	struct zg_sig *s = p;

	return s->mdctx && EVP_DigestUpdate(s->mdctx, data, len);
}

static int sig_digest_final(void *p, unsigned char *sig, size_t *siglen, size_t sigsize)
{
	struct zg_sig *s = p;
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (!sig)
		return sig_sign(p, NULL, siglen, sigsize, NULL, 0);
	if (!s->mdctx || !EVP_DigestFinal_ex(s->mdctx, dgst, &dlen))
		return 0;
	return sig_sign(p, sig, siglen, sigsize, dgst, dlen);
}

static int sig_digest_sign(void *p, unsigned char *sig, size_t *siglen, size_t sigsize,
			   const unsigned char *tbs, size_t tbslen)
{
	struct zg_sig *s = p;

	if (!sig)
		return sig_sign(p, NULL, siglen, sigsize, NULL, 0);
	if (!s->mdctx || !EVP_DigestUpdate(s->mdctx, tbs, tbslen))
		return 0;
	return sig_digest_final(p, sig, siglen, sigsize);
}

static const OSSL_DISPATCH sig_fns[] = {
	{OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_new},
	{OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_free},
	{OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dup},
	{OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_init},
	{OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},
	{OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_init},
	{OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update},
	{OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_final},
	{OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},
	{OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_params},
	{OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable},
	{OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_params},
	{OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable},
	{0, NULL},
};

/* ---- the provider ---- */

static const OSSL_ALGORITHM keymgmts[] = {
	{"EC:id-ecPublicKey:1.2.840.10045.2.1", PROPS, km_ec, "key held by the key process"},
	{"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROPS, km_rsa, "key held by the key process"},
	{NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM signatures[] = {
	{"ECDSA", PROPS, sig_fns, "signed by the key process"},
	{"RSA:rsaEncryption:1.2.840.113549.1.1.1", PROPS, sig_fns, "signed by the key process"},
	{NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *prov_query(void *provctx, int op, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	if (op == OSSL_OP_KEYMGMT)
		return keymgmts;
	if (op == OSSL_OP_SIGNATURE)
		return signatures;
	return NULL;
}

static const OSSL_DISPATCH prov_fns[] = {
	{OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query},
	{0, NULL},
};

static int prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
		     void **provctx)
{
	(void)in;
	*out = prov_fns;
	*provctx = (void *)handle;
	return 1;
}

static int builtin_ok;

static void add_builtin(void)
{
	builtin_ok = OSSL_PROVIDER_add_builtin(NULL, PROV_NAME, prov_init);
}

int zg_keys_provider_load(OSSL_PROVIDER **prov, char *why, size_t cap)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	prov[0] = prov[1] = NULL;
	/* OpenSSL's provider store is process-wide: the built-in is added
	 * once, each start loads (takes a reference on) both providers.
	 * Loading any provider stops OpenSSL from loading "default" on its
	 * own: load it first, and make it the preferred implementation of
	 * every fetch that does not ask for zgkeys by name. */
	(void)pthread_once(&once, add_builtin);
	if (!builtin_ok || !(prov[0] = OSSL_PROVIDER_load(NULL, "default")) ||
	    !(prov[1] = OSSL_PROVIDER_load(NULL, PROV_NAME)) ||
	    !EVP_set_default_properties(NULL, "?provider=default")) {
		zg_keys_provider_unload(prov);
		snprintf(why, cap, "cannot load the zgkeys provider");
		ERR_clear_error();
		return -1;
	}
	return 0;
}

void zg_keys_provider_unload(OSSL_PROVIDER **prov)
{
	for (int i = 1; i >= 0; i--)
		if (prov[i])
			(void)OSSL_PROVIDER_unload(prov[i]);
	prov[0] = prov[1] = NULL;
}

EVP_PKEY *zg_keys_provider_pkey(EVP_PKEY *pub, uint32_t key_id)
{
	int rsa = EVP_PKEY_is_a(pub, "RSA");
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM *pubp = NULL, *all = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *out = NULL;

	if (!rsa && !EVP_PKEY_is_a(pub, "EC"))
		goto done;
	if (!bld || !OSSL_PARAM_BLD_push_uint32(bld, PARAM_KEY_ID, key_id) ||
	    !(all = OSSL_PARAM_BLD_to_param(bld)))
		goto done;
	if (EVP_PKEY_todata(pub, EVP_PKEY_PUBLIC_KEY, &pubp) <= 0)
		goto done;
	{
		OSSL_PARAM *merged = OSSL_PARAM_merge(pubp, all);
		ctx = EVP_PKEY_CTX_new_from_name(NULL, rsa ? "RSA" : "EC", PROPS);
		if (merged && ctx && EVP_PKEY_fromdata_init(ctx) > 0)
			(void)EVP_PKEY_fromdata(ctx, &out, EVP_PKEY_KEYPAIR, merged);
		OSSL_PARAM_free(merged);
	}
done:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(pubp);
	OSSL_PARAM_free(all);
	OSSL_PARAM_BLD_free(bld);
	return out;
}
