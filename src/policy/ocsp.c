/* ocsp.c - see ocsp.h. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "policy/ocsp.h"

/* Is @signer allowed to speak for @issuer's certificates: the issuer
 * itself, or a delegated responder it issued directly with
 * id-kp-OCSPSigning, valid at @now (RFC 6960 4.2.2.2). */
static int signer_authorized(X509 *signer, X509 *issuer, time_t now, char *detail, size_t cap)
{
	EVP_PKEY *ikey = X509_get0_pubkey(issuer);

	if (X509_cmp(signer, issuer) == 0)
		return 1;
	if (X509_check_issued(issuer, signer) != X509_V_OK || !ikey || X509_verify(signer, ikey) != 1) {
		snprintf(detail, cap, "the responder certificate is not issued by the certificate's CA");
		return 0;
	}
	if (!(X509_get_extension_flags(signer) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN)) {
		snprintf(detail, cap, "the responder certificate lacks id-kp-OCSPSigning");
		return 0;
	}
	if (X509_cmp_time(X509_get0_notBefore(signer), &now) > 0 ||
	    X509_cmp_time(X509_get0_notAfter(signer), &now) < 0) {
		snprintf(detail, cap, "the responder certificate is not valid now");
		return 0;
	}
	return 1;
}

/* The signer of @bs is authorized and its signature verifies. */
static int signed_ok(OCSP_BASICRESP *bs, X509 *issuer, time_t now, char *detail, size_t cap)
{
	STACK_OF(X509) *extra = sk_X509_new_null();
	X509 *signer = NULL;
	int ok = 0;

	/* the issuer is a candidate signer even if the response does not carry it */
	if (!extra || !sk_X509_push(extra, issuer)) {
		snprintf(detail, cap, "out of memory");
		goto out;
	}
	if (OCSP_resp_get0_signer(bs, &signer, extra) != 1 || !signer) {
		snprintf(detail, cap, "the response's signer is neither the CA nor in the response");
		goto out;
	}
	if (!signer_authorized(signer, issuer, now, detail, cap))
		goto out;
	if (OCSP_basic_verify(bs, extra, NULL, OCSP_NOVERIFY | OCSP_NOCHECKS) != 1) {
		/* signer verified above; this checks the signature over the response */
		snprintf(detail, cap, "the response's signature does not verify");
		goto out;
	}
	ok = 1;
out:
	sk_X509_free(extra);
	ERR_clear_error();
	return ok;
}

/* The status of @cert in @bs, checked for freshness. */
static enum zg_reason cert_status(OCSP_BASICRESP *bs, X509 *cert, X509 *issuer, time_t now,
				  time_t *next_update, char *detail, size_t cap)
{
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, cert, issuer);
	ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL, *rev = NULL;
	int status = -1, why = -1;
	enum zg_reason r = ZG_R_CERT_OCSP_UNAVAILABLE;

	if (!id) {
		snprintf(detail, cap, "out of memory");
		return r;
	}
	if (OCSP_resp_find_status(bs, id, &status, &why, &rev, &thisupd, &nextupd) != 1) {
		snprintf(detail, cap, "the response is not about this certificate");
		goto out;
	}
	/* OCSP_check_validity reads the real clock: compare with @now instead */
	if (!thisupd ||
	    X509_cmp_time(thisupd, &(time_t){now + ZG_OCSP_SKEW_S}) > 0) {
		snprintf(detail, cap, "thisUpdate lies in the future");
		goto out;
	}
	if (nextupd && X509_cmp_time(nextupd, &(time_t){now - ZG_OCSP_SKEW_S}) < 0) {
		snprintf(detail, cap, "the response is stale (past its nextUpdate)");
		goto out;
	}
	if (nextupd) {
		struct tm tm;
		if (ASN1_TIME_to_tm(nextupd, &tm) == 1)
			*next_update = timegm(&tm);
	}
	switch (status) {
	case V_OCSP_CERTSTATUS_GOOD:
		r = ZG_R_OK;
		snprintf(detail, cap, "good");
		break;
	case V_OCSP_CERTSTATUS_REVOKED:
		r = ZG_R_CERT_OCSP_REVOKED;
		snprintf(detail, cap, "revoked (reason %s)",
			 why >= 0 ? OCSP_crl_reason_str(why) : "not given");
		break;
	default:
		r = ZG_R_CERT_OCSP_UNKNOWN;
		snprintf(detail, cap, "the responder does not know the certificate");
		break;
	}
out:
	OCSP_CERTID_free(id);
	return r;
}

enum zg_reason zg_ocsp_judge(const unsigned char *der, size_t len, X509 *cert, X509 *issuer,
			     time_t now, time_t *next_update, char *detail, size_t cap)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	enum zg_reason r = ZG_R_CERT_OCSP_UNAVAILABLE;
	int st;

	*next_update = 0;
	if (!der || !len || len > LONG_MAX || !cert || !issuer ||
	    !(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) || p != der + len) {
		snprintf(detail, cap, "not a DER OCSP response");
		goto out;
	}
	if ((st = OCSP_response_status(resp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		snprintf(detail, cap, "responder answered %s", OCSP_response_status_str(st));
		goto out;
	}
	if (!(bs = OCSP_response_get1_basic(resp))) {
		snprintf(detail, cap, "not a basic OCSP response");
		goto out;
	}
	if (!signed_ok(bs, issuer, now, detail, cap))
		goto out;
	r = cert_status(bs, cert, issuer, now, next_update, detail, cap);
	if (r == ZG_R_CERT_OCSP_UNAVAILABLE)
		*next_update = 0;
out:
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ERR_clear_error();
	return r;
}

enum zg_reason zg_ocsp_decide(enum zg_ocsp_mode mode, enum zg_reason judged, int *soft_failed)
{
	*soft_failed = 0;
	if (mode == ZG_OCSP_OFF || judged == ZG_R_OK)
		return ZG_R_OK;
	if (judged == ZG_R_CERT_OCSP_UNAVAILABLE && mode == ZG_OCSP_SOFT) {
		*soft_failed = 1;
		return ZG_R_OK;
	}
	return judged;
}
