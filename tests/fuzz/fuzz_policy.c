/* fuzz_policy.c - the certificate-policy entry point over arbitrary DER.
 *
 * Targets: zg_policy_check_chain() (and through it every zg_rule_*),
 * zg_rule_server_name(), zg_rule_revocation() with CRLs, and
 * zg_policy_reason_from_x509().
 *
 * Input: one flags byte, then DER certificates back to back (leaf first, at
 * most 8), then DER CRLs back to back. Flags: bit 0 role server, bit 1
 * CRLs configured, bit 2 crl_require_all, bit 3 crl_stale warn, bits 4-7
 * max_depth. The seeds are chains and CRLs from tests/pki/mkpki-policy.sh.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	const unsigned char *p = data + 1, *end = data + size;
	struct zg_policy_params pp = {0};
	struct zg_policy_verdict v;
	char d[ZG_POLICY_DETAIL_MAX];
	X509 *x;
	X509_CRL *c;

	if (size < 1 || !chain || !crls)
		goto out;
	while (sk_X509_num(chain) < 8 && p < end && (x = d2i_X509(NULL, &p, end - p)) != NULL)
		if (!sk_X509_push(chain, x))
			X509_free(x);
	while (sk_X509_CRL_num(crls) < 8 && p < end && (c = d2i_X509_CRL(NULL, &p, end - p)) != NULL)
		if (!sk_X509_CRL_push(crls, c))
			X509_CRL_free(c);
	pp.profile = zg_profile_default();
	pp.role = data[0] & 1 ? ZG_ROLE_SERVER : ZG_ROLE_CLIENT;
	pp.now = 1795651200; /* fixed: 2026-11-26, so runs repeat */
	pp.clock_skew_s = 300;
	pp.crls = data[0] & 2 ? crls : NULL;
	pp.crl_require_all = (data[0] >> 2) & 1;
	pp.crl_stale_warn = (data[0] >> 3) & 1;
	pp.max_depth = data[0] >> 4;
	zg_policy_check_chain(chain, &pp, &v);
	for (unsigned i = 0; i < v.n; i++)
		(void)zg_reason_code(v.f[i].reason);
	if (sk_X509_num(chain) > 0) {
		(void)zg_rule_server_name(sk_X509_value(chain, 0), "policy.zonegate.test", d, sizeof(d));
		(void)zg_rule_server_name(sk_X509_value(chain, 0), "urn:oid:1.2.3", d, sizeof(d));
	}
	(void)zg_policy_reason_from_x509((int)size & 0xff);
out:
	sk_X509_pop_free(chain, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return 0;
}
