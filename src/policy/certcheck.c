/* certcheck.c - see certcheck.h. */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "policy/certcheck.h"

int zg_certcheck_load_pem(STACK_OF(X509) *out, const char *path, char *why, size_t cap)
{
	FILE *f = fopen(path, "r");
	X509 *x;
	int n = 0;

	if (!f) {
		snprintf(why, cap, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(out, x)) {
			X509_free(x);
			n = -1;
			snprintf(why, cap, "%s: out of memory", path);
			break;
		}
		n++;
	}
	fclose(f);
	ERR_clear_error();
	if (n == 0) {
		snprintf(why, cap, "%s: no PEM certificate", path);
		return -1;
	}
	return n;
}

struct first_error {
	int err;
	int depth;
};

/* Keep going past every error so that the whole chain gets built and every
 * rule can run on it; the first error is the one reported. */
static int keep_going(int ok, X509_STORE_CTX *ctx)
{
	struct first_error *fe = X509_STORE_CTX_get_app_data(ctx);

	if (!ok && fe && fe->err == X509_V_OK) {
		fe->err = X509_STORE_CTX_get_error(ctx);
		fe->depth = X509_STORE_CTX_get_error_depth(ctx);
	}
	return 1;
}

static STACK_OF(X509) *verify(X509 *leaf, STACK_OF(X509) *untrusted, X509_STORE *anchors,
			      struct first_error *fe)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *chain = NULL;

	fe->err = X509_V_OK;
	fe->depth = 0;
	if (!ctx || !X509_STORE_CTX_init(ctx, anchors, leaf, untrusted))
		goto out;
	X509_STORE_CTX_set_app_data(ctx, fe);
	X509_STORE_CTX_set_verify_cb(ctx, keep_going);
	/* The rules judge time (with clock skew) and depth (verify_depth). */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
	X509_STORE_CTX_set_depth(ctx, 32);
	if (X509_verify_cert(ctx) < 0 && fe->err == X509_V_OK)
		fe->err = X509_STORE_CTX_get_error(ctx);
	chain = X509_STORE_CTX_get1_chain(ctx);
out:
	X509_STORE_CTX_free(ctx);
	return chain;
}

static STACK_OF(X509) *as_presented(X509 *leaf, STACK_OF(X509) *untrusted)
{
	STACK_OF(X509) *chain = sk_X509_new_null();

	if (!chain || !X509_add_cert(chain, leaf, X509_ADD_FLAG_UP_REF) ||
	    !X509_add_certs(chain, untrusted, X509_ADD_FLAG_UP_REF | X509_ADD_FLAG_NO_DUP)) {
		sk_X509_pop_free(chain, X509_free);
		return NULL;
	}
	return chain;
}

static void prepend(struct zg_policy_verdict *v, enum zg_reason r, int depth, const char *detail)
{
	unsigned keep = v->n < ZG_POLICY_MAX_FINDINGS ? v->n : ZG_POLICY_MAX_FINDINGS - 1;

	if (v->n >= ZG_POLICY_MAX_FINDINGS)
		v->dropped++;
	memmove(&v->f[1], &v->f[0], keep * sizeof(v->f[0]));
	v->n = keep + 1;
	v->failed++;
	v->f[0].reason = r;
	v->f[0].depth = depth;
	v->f[0].warn = 0;
	snprintf(v->f[0].detail, sizeof(v->f[0].detail), "%s", detail);
}

int zg_certcheck_run(X509 *leaf, STACK_OF(X509) *untrusted, X509_STORE *anchors,
		     const struct zg_policy_params *pp, const char *server_name,
		     struct zg_certcheck *c)
{
	struct first_error fe = {X509_V_OK, 0};
	char d[ZG_POLICY_DETAIL_MAX];
	enum zg_reason r;

	memset(c, 0, sizeof(*c));
	c->pp = *pp;
	c->server_name = server_name;
	c->verified = anchors != NULL;
	c->chain = anchors ? verify(leaf, untrusted, anchors, &fe) : as_presented(leaf, untrusted);
	if (!c->chain)
		return -1;
	c->x509_err = fe.err;
	c->x509_depth = fe.depth;
	zg_policy_check_chain(c->chain, pp, &c->v);
	if (server_name) {
		r = zg_rule_server_name(leaf, server_name, d, sizeof(d));
		if (r != ZG_R_OK)
			prepend(&c->v, r, 0, d);
	}
	if (fe.err != X509_V_OK)
		prepend(&c->v, zg_policy_reason_from_x509(fe.err), fe.depth,
			X509_verify_cert_error_string(fe.err));
	return c->v.failed ? 1 : 0;
}

void zg_certcheck_clear(struct zg_certcheck *c)
{
	sk_X509_pop_free(c->chain, X509_free);
	c->chain = NULL;
}

static int rule_has(const struct zg_policy_rule *rule, enum zg_reason r)
{
	for (size_t k = 0; k < sizeof(rule->reasons) / sizeof(rule->reasons[0]); k++) {
		if (rule->reasons[k] == ZG_R_OK)
			return 0;
		if (rule->reasons[k] == r)
			return 1;
	}
	return 0;
}

/* "pass", "fail", "warn" or "skip" for @rule. */
static const char *rule_status(const struct zg_certcheck *c, const struct zg_policy_rule *rule)
{
	const char *st = "pass";

	if (strcmp(rule->name, "server_name") == 0 && !c->server_name)
		return "skip";
	if (strcmp(rule->name, "chain_trusted") == 0 && !c->verified)
		return "skip";
	if (strcmp(rule->name, "revocation") == 0 && !c->pp.crls)
		return "skip";
	for (unsigned i = 0; i < c->v.n; i++) {
		if (!rule_has(rule, c->v.f[i].reason))
			continue;
		if (!c->v.f[i].warn)
			return "fail";
		st = "warn";
	}
	return st;
}

static void name_of(X509_NAME *n, char *buf, size_t cap)
{
	BIO *b = BIO_new(BIO_s_mem());
	int len;

	buf[0] = '\0';
	if (!b)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0 &&
	    (len = BIO_read(b, buf, (int)cap - 1)) > 0)
		buf[len] = '\0';
	BIO_free(b);
}

void zg_certcheck_print(const struct zg_certcheck *c, FILE *out)
{
	size_t nrules;
	const struct zg_policy_rule *rules = zg_policy_rules(&nrules);
	char name[512];

	fprintf(out, "profile %s, role %s\n", c->pp.profile ? c->pp.profile->name : "?",
		c->pp.role == ZG_ROLE_CLIENT ? "client" : "server");
	for (int i = 0; i < sk_X509_num(c->chain); i++) {
		name_of(X509_get_subject_name(sk_X509_value(c->chain, i)), name, sizeof(name));
		fprintf(out, "  chain[%d] %s\n", i, name);
	}
	for (size_t k = 0; k < nrules; k++) {
		const char *st = rule_status(c, &rules[k]);
		fprintf(out, "%-4s %-24s %s\n", st, rules[k].name, rules[k].what);
		for (unsigned i = 0; i < c->v.n; i++)
			if (rule_has(&rules[k], c->v.f[i].reason))
				fprintf(out, "       reason=%s depth=%d detail=\"%s\"\n",
					zg_reason_code(c->v.f[i].reason), c->v.f[i].depth,
					c->v.f[i].detail);
	}
	if (c->v.dropped)
		fprintf(out, "(%u more findings not shown)\n", c->v.dropped);
	fprintf(out, "result: %s (%u failed)\n", c->v.failed ? "refused" : "compliant", c->v.failed);
}

static json_t *findings_json(const struct zg_certcheck *c, const struct zg_policy_rule *rule)
{
	json_t *arr = json_array();

	for (unsigned i = 0; arr && i < c->v.n; i++) {
		if (!rule_has(rule, c->v.f[i].reason))
			continue;
		if (json_array_append_new(arr, json_pack("{s:s,s:i,s:s,s:b}", "reason",
							 zg_reason_code(c->v.f[i].reason), "depth",
							 c->v.f[i].depth, "detail", c->v.f[i].detail,
							 "warn", c->v.f[i].warn)) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *zg_certcheck_json(const struct zg_certcheck *c)
{
	size_t nrules;
	const struct zg_policy_rule *rules = zg_policy_rules(&nrules);
	json_t *o = json_object(), *arr = json_array(), *chain = json_array();
	char name[512];

	if (!o || !arr || !chain)
		goto fail;
	for (int i = 0; i < sk_X509_num(c->chain); i++) {
		name_of(X509_get_subject_name(sk_X509_value(c->chain, i)), name, sizeof(name));
		if (json_array_append_new(chain, json_string(name)) < 0)
			goto fail;
	}
	for (size_t k = 0; k < nrules; k++) {
		json_t *r = json_pack("{s:s,s:s,s:o*}", "rule", rules[k].name, "status",
				      rule_status(c, &rules[k]), "findings",
				      findings_json(c, &rules[k]));
		if (json_array_append_new(arr, r) < 0)
			goto fail;
	}
	/* json_object_set_new takes the reference even when it fails. */
	if (json_object_set_new(o, "chain", chain)) {
		json_decref(arr);
		goto fail_owned;
	}
	if (json_object_set_new(o, "rules", arr) ||
	    json_object_set_new(o, "profile", json_string(c->pp.profile ? c->pp.profile->name : "")) ||
	    json_object_set_new(o, "role",
				json_string(c->pp.role == ZG_ROLE_CLIENT ? "client" : "server")) ||
	    json_object_set_new(o, "result", json_string(c->v.failed ? "refused" : "compliant")) ||
	    json_object_set_new(o, "failed", json_integer(c->v.failed)))
		goto fail_owned;
	return o;
fail:
	json_decref(chain);
	json_decref(arr);
fail_owned:
	json_decref(o);
	return NULL;
}
