/* store.c - binding a route's TLS sessions to its trust store (store.h). */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "tls/store.h"

void zg_tls_domain_label(const char *route, const char *store, char *out, size_t cap)
{
	if (strcmp(store, "tls") == 0)
		snprintf(out, cap, "%s", route);
	else
		snprintf(out, cap, "%s/%s", route, store);
}

int zg_tls_bind_sessions(SSL_CTX *ctx, const char *label)
{
	static const char prefix[] = "zonegate session context ";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(m, prefix, sizeof(prefix) - 1) == 1 &&
		 EVP_DigestUpdate(m, label, strlen(label)) == 1 && EVP_DigestFinal_ex(m, md, &n) == 1 &&
		 n <= SSL_MAX_SID_CTX_LENGTH && SSL_CTX_set_session_id_context(ctx, md, n) == 1;

	EVP_MD_CTX_free(m);
	return ok ? 0 : -1;
}
