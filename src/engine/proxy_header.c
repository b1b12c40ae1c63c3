/* proxy_header.c - see proxy_header.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "engine/proxy_header.h"
#include "proto/proxy_v2.h"

/* Facts of the client's verified certificate HAProxy's PP2_TYPE_SSL names. */
struct cert_facts {
	char cn[256];
	char key_alg[32]; /* "RSA2048", "EC256", as HAProxy writes them */
	const char *sig_alg;
};

static void cert_facts(SSL *ssl, struct cert_facts *f)
{
	X509 *leaf = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	EVP_PKEY *pk;
	int nid;

	memset(f, 0, sizeof(*f));
	if (!leaf)
		return;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, f->cn,
				      sizeof(f->cn)) < 0)
		f->cn[0] = '\0';
	nid = X509_get_signature_nid(leaf);
	f->sig_alg = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
	pk = X509_get0_pubkey(leaf);
	if (pk) {
		int id = EVP_PKEY_get_base_id(pk);
		snprintf(f->key_alg, sizeof(f->key_alg), "%s%d", id == EVP_PKEY_EC ? "EC" : OBJ_nid2sn(id),
			 EVP_PKEY_get_bits(pk));
	}
}

int zg_proxy_header_send(const struct zg_conn *c, char *detail, size_t cap)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	struct cert_facts cf;
	char unique[96];
	uint8_t hdr[ZG_PP2_MAX];
	SSL *ssl = c->down.ssl;
	struct zg_pp2_info in = {0};
	ssize_t sent;
	int n;

	if (getsockname(c->down.fd, (struct sockaddr *)&local, &llen) < 0) {
		snprintf(detail, cap, "PROXY header: getsockname: %s", strerror(errno));
		return -1;
	}
	cert_facts(ssl, &cf);
	snprintf(unique, sizeof(unique), "%s/%u.%llu", c->snap->conf->gw.name, c->h->index,
		 (unsigned long long)c->id);
	in.src = (const struct sockaddr *)&c->peer.ss;
	in.dst = (const struct sockaddr *)&local;
	in.tls = ssl != NULL;
	in.cert_verified = ssl && SSL_get0_peer_certificate(ssl) && SSL_get_verify_result(ssl) == X509_V_OK;
	in.resumed = ssl && SSL_session_reused(ssl);
	in.tls_version = ssl ? SSL_get_version(ssl) : NULL;
	in.cipher = ssl ? SSL_get_cipher_name(ssl) : NULL;
	in.cn = cf.cn;
	in.sig_alg = cf.sig_alg;
	in.key_alg = cf.key_alg;
	in.authority = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
	in.unique_id = unique;
	in.participant = c->participant ? c->participant->id : NULL;
	in.subject = c->subject;
	in.sans = c->sans;
	n = zg_pp2_encode(&in, hdr, sizeof(hdr));
	if (n < 0) {
		snprintf(detail, cap, "PROXY header: address family not IPv4/IPv6");
		return -1;
	}
	sent = send(c->up.fd, hdr, (size_t)n, MSG_NOSIGNAL);
	if (sent != n) {
		snprintf(detail, cap, "PROXY header: %s", sent < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}
