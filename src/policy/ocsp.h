/* ocsp.h - the OCSP verdicts: what a response says about a certificate,
 * and what a route makes of it under its fail mode.
 *
 * A response counts only if it is for that very certificate (its CertID
 * under the issuer's name and key), signed by the issuer itself or by a
 * responder the issuer delegated (issued directly by it, with the
 * id-kp-OCSPSigning extended key usage, valid now: RFC 6960 4.2.2.2), and
 * fresh (thisUpdate not ahead of now beyond the skew, nextUpdate not past).
 * Anything else is no answer at all, the same as a responder that does not
 * answer: cert_ocsp_unavailable. Pure: no I/O, the clock is a parameter.
 */
#ifndef ZG_POLICY_OCSP_H
#define ZG_POLICY_OCSP_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "base/reason.h"

/* A route's choice when a peer's status cannot be learned (route key ocsp). */
enum zg_ocsp_mode {
	ZG_OCSP_OFF,  /* no OCSP checks */
	ZG_OCSP_SOFT, /* revoked/unknown refuse; no answer admits, logged and audited */
	ZG_OCSP_HARD, /* anything but "good" refuses */
};

/* The clock skew tolerated on thisUpdate/nextUpdate. */
#define ZG_OCSP_SKEW_S 300

/* Judge the DER OCSPResponse @der (@len bytes) for @cert issued by
 * @issuer at @now: ZG_R_OK (good), ZG_R_CERT_OCSP_REVOKED,
 * ZG_R_CERT_OCSP_UNKNOWN, or ZG_R_CERT_OCSP_UNAVAILABLE when the response
 * does not count (malformed, not "successful", not for @cert, badly signed,
 * stale). *@next_update gets the response's nextUpdate (0 if it has none or
 * does not count). Why, in @detail. */
enum zg_reason zg_ocsp_judge(const unsigned char *der, size_t len, X509 *cert, X509 *issuer,
			     time_t now, time_t *next_update, char *detail, size_t cap);

/* What route mode @mode does with @judged: ZG_R_OK to admit, else the
 * refusal's reason. *@soft_failed is set when soft fail admitted a peer whose
 * status is unknown to us (for the log and the audit record). */
enum zg_reason zg_ocsp_decide(enum zg_ocsp_mode mode, enum zg_reason judged, int *soft_failed);

#endif
