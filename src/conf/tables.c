/* tables.c - the configuration keyword tables (conf_int.h).
 *
 * One keyword table per section and the section table conf_sections that
 * lists them, the lookups over them (section_named, kw_index, inst_obj,
 * inst_of), the compiled-in defaults (conf_apply_defaults) and the typo
 * suggestions of unknown keys and sections. Private to src/conf/.
 */
#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf_int.h"

/* ---- keyword tables ------------------------------------------------------ */

#define SEC 1000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define CONN_MAX 1000000ull

#define GW(f) offsetof(struct zg_conf_gateway, f)
#define TLS(f) offsetof(struct zg_conf_tls, f)
#define RT(f) offsetof(struct zg_conf_route, f)
#define STR(s, f) sizeof(((s *)0)->f)

/* name, type, field, size, list length, line field, min, max, default, flags */
static const struct kw gateway_kws[] = {
	{"name", &T_NAME, GW(name), STR(struct zg_conf_gateway, name), NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"workers", &T_WORKERS, GW(workers), 0, NO_OFF, NO_OFF, 0, 1024, "auto", 0},
	{"log_level", &T_LOGLEVEL, GW(log_level), 0, NO_OFF, NO_OFF, 0, 0, "info", 0},
	{"max_connections", &T_UINT, GW(max_connections), 0, NO_OFF, NO_OFF, 1, CONN_MAX, "10000", 0},
	{"drain_timeout", &T_DUR_MS, GW(drain_timeout_ms), 0, NO_OFF, NO_OFF, 0, HOUR, "30s", 0},
	{"sandbox", &T_BOOL, GW(sandbox), 0, NO_OFF, NO_OFF, 0, 0, "off", 0},
	{"user", &T_NAME, GW(user), STR(struct zg_conf_gateway, user), NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"handshake_timeout", &T_DUR_MS, GW(handshake_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN,
	 "10s", 0},
	{"idle_timeout", &T_DUR_MS, GW(idle_timeout_ms), 0, NO_OFF, NO_OFF, SEC, 24 * HOUR, "600s", 0},
	{"connect_timeout", &T_DUR_MS, GW(connect_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN, "5s",
	 0},
};

static const struct kw tls_kws[] = {
	{"profile", &T_PROFILE, TLS(profile), STR(struct zg_conf_tls, profile), NO_OFF, NO_OFF, 0, 0,
	 "cryptrec-high", 0},
	{"certificate", &T_PATH, TLS(certificate), ZG_PATH_MAX, NO_OFF, TLS(line_certificate), 0, 0,
	 NULL, KW_FILE},
	{"key", &T_PATH, TLS(key), ZG_PATH_MAX, NO_OFF, TLS(line_key), 0, 0, NULL, KW_SECRET_FILE},
	{"chain", &T_PATH, TLS(chain), ZG_PATH_MAX, NO_OFF, TLS(line_chain), 0, 0, NULL, KW_FILE},
	{"trust_anchors", &T_PATH, TLS(trust_anchors), ZG_PATH_MAX, NO_OFF, TLS(line_trust_anchors), 0,
	 0, NULL, KW_FILE | KW_TRUST_FILE},
	{"crl", &T_PATHS, TLS(crl), ZG_CRLS_MAX, TLS(n_crl), TLS(line_crl), 0, 0, NULL,
	 KW_FILE | KW_TRUST_FILE},
	{"verify_depth", &T_UINT, TLS(verify_depth), 0, NO_OFF, NO_OFF, 1, 10, "4", 0},
	{"session_cache", &T_BOOL, TLS(session_cache), 0, NO_OFF, NO_OFF, 0, 0, "on", 0},
	{"session_cache_size", &T_UINT, TLS(session_cache_size), 0, NO_OFF, NO_OFF, 1, CONN_MAX,
	 "20480", 0},
	{"session_timeout", &T_DUR_S, TLS(session_timeout_s), 0, NO_OFF, NO_OFF, SEC, 24 * HOUR,
	 "300s", 0},
	{"session_tickets", &T_BOOL, TLS(session_tickets), 0, NO_OFF, NO_OFF, 0, 0, "off", 0},
	{"session_ticket_key", &T_PATHS, TLS(ticket_key), ZG_TICKET_KEYS_MAX, TLS(n_ticket_key),
	 TLS(line_ticket_key), 0, 0, NULL, KW_SECRET_FILE},
	{"crl_stale", &T_CRL_STALE, TLS(crl_stale_warn), 0, NO_OFF, NO_OFF, 0, 0, "reject", 0},
	{"clock_skew", &T_DUR_S, TLS(clock_skew_s), 0, NO_OFF, NO_OFF, 0, HOUR, "0s", 0},
	{"key_process", &T_BOOL, TLS(key_process), 0, NO_OFF, NO_OFF, 0, 0, "on", 0},
	{"ocsp_staple_file", &T_PATH, TLS(ocsp_staple_file), ZG_PATH_MAX, NO_OFF,
	 TLS(line_ocsp_staple_file), 0, 0, NULL, 0},
	{"ocsp_staple_url", &T_STAPLE_URL, TLS(ocsp_staple_url), ZG_PATH_MAX, NO_OFF,
	 TLS(line_ocsp_staple_url), 0, 0, NULL, 0},
	{"ocsp_staple_interval", &T_DUR_S, TLS(ocsp_staple_interval_s), 0, NO_OFF, NO_OFF, MIN,
	 24 * HOUR, "1h", 0},
	{"ocsp", &T_OCSP_MODE, TLS(ocsp), 0, NO_OFF, NO_OFF, 0, 0, "off", 0},
	{"ocsp_responder", &T_URL, TLS(ocsp_responder), ZG_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
};

/* Keys without a default take theirs from [gateway] / [tls] once the whole
 * file is read (fill_route_defaults), so section order does not matter. */
static const struct kw route_kws[] = {
	{"mode", &T_MODE, RT(mode), 0, NO_OFF, NO_OFF, 0, 0, NULL, KW_REQUIRED},
	{"listen", &T_ENDPOINT, RT(listen), 0, NO_OFF, RT(line_listen), 0, 0, NULL,
	 KW_REQUIRED | KW_LISTEN},
	{"connect", &T_POOL, RT(connect), 0, NO_OFF, RT(line_connect), 0, 0, NULL, KW_REQUIRED},
	{"balance", &T_BALANCE, RT(balance), 0, NO_OFF, NO_OFF, 0, 0, "first", 0},
	{"hold_down", &T_DUR_MS, RT(hold_down_ms), 0, NO_OFF, NO_OFF, 100, HOUR, "5s", 0},
	{"server_name", &T_SERVER_NAME, RT(server_name), STR(struct zg_conf_route, server_name),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"profile", &T_PROFILE, RT(profile), STR(struct zg_conf_route, profile), NO_OFF, NO_OFF, 0, 0,
	 NULL, 0},
	{"allow_from", &T_PREFIXES, RT(allow_from), ZG_PREFIXES_MAX, RT(n_allow_from), NO_OFF, 0, 0,
	 NULL, 0},
	{"max_connections", &T_UINT, RT(max_connections), 0, NO_OFF, NO_OFF, 1, CONN_MAX, NULL, 0},
	{"handshake_timeout", &T_DUR_MS, RT(handshake_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN,
	 NULL, 0},
	{"idle_timeout", &T_DUR_MS, RT(idle_timeout_ms), 0, NO_OFF, NO_OFF, SEC, 24 * HOUR, NULL, 0},
	{"connect_timeout", &T_DUR_MS, RT(connect_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN, NULL,
	 0},
	{"peers", &T_PEERS, RT(peers), 0, NO_OFF, RT(line_peers), 0, 0, NULL, 0},
	{"proxy_protocol", &T_PROXY, RT(proxy_protocol), 0, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"interface", &T_NAME, RT(interface), STR(struct zg_conf_route, interface), NO_OFF,
	 RT(line_interface), 0, 0, NULL, 0},
	{"min_version", &T_TLS_VERSION, RT(min_version), STR(struct zg_conf_route, min_version),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"max_version", &T_TLS_VERSION, RT(max_version), STR(struct zg_conf_route, max_version),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"tls13_suites", &T_TLS_LIST, RT(tls13_suites), ZG_TLS_LIST_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"tls12_ciphers", &T_TLS_LIST, RT(tls12_ciphers), ZG_TLS_LIST_MAX, NO_OFF, NO_OFF, 0, 0, NULL,
	 0},
	{"groups", &T_TLS_LIST, RT(groups), ZG_TLS_LIST_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"sigalgs", &T_TLS_LIST, RT(sigalgs), ZG_TLS_LIST_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	/* active health checks of every pool member (upstream/check.c) */
	{"health_check", &T_CHECK, RT(check.kind), 0, NO_OFF, RT(check.line), 0, 0, "none", 0},
	{"health_interval", &T_DUR_MS, RT(check.interval_ms), 0, NO_OFF, NO_OFF, 100, HOUR, "2s", 0},
	{"health_timeout", &T_DUR_MS, RT(check.timeout_ms), 0, NO_OFF, NO_OFF, 50, MIN, "1s", 0},
	{"health_jitter", &T_DUR_MS, RT(check.jitter_ms), 0, NO_OFF, NO_OFF, 0, HOUR, "0s", 0},
	{"health_rise", &T_UINT, RT(check.rise), 0, NO_OFF, NO_OFF, 1, 100, "2", 0},
	{"health_fall", &T_UINT, RT(check.fall), 0, NO_OFF, NO_OFF, 1, 100, "3", 0},
	{"health_calling_ae", &T_AE_TITLE, RT(check.calling_ae), ZG_AE_MAX, NO_OFF, NO_OFF, 0, 0,
	 "ZONEGATE", 0},
	{"health_called_ae", &T_AE_TITLE, RT(check.called_ae), ZG_AE_MAX, NO_OFF, NO_OFF, 0, 0,
	 "ANY-SCP", 0},
	{"health_hl7_message", &T_PATH, RT(check.hl7_message), ZG_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL,
	 KW_FILE},
	{"health_http_path", &T_HTTP_PATH, RT(check.http_path), ZG_HTTP_PATH_MAX, NO_OFF, NO_OFF, 0, 0,
	 "/", 0},
	{"health_http_status", &T_UINT, RT(check.http_status), 0, NO_OFF, NO_OFF, 100, 599, "200", 0},
	{"class", &T_NAME, RT(class_name), STR(struct zg_conf_route, class_name), NO_OFF,
	 RT(line_class), 0, 0, NULL, 0},
	{"inspect", &T_INSPECT, RT(insp.kind), 0, NO_OFF, RT(line_inspect), 0, 0, "none", 0},
	{"dicom_called_ae", &T_AE_LIST, RT(insp.called_ae), ZG_INSPECT_LIST_MAX,
	 RT(insp.n_called_ae), NO_OFF, 0, 0, NULL, 0},
	{"dicom_abstract_syntaxes", &T_UID_LIST, RT(insp.abstract_syntaxes), ZG_INSPECT_LIST_MAX,
	 RT(insp.n_abstract_syntaxes), NO_OFF, 0, 0, NULL, 0},
	{"dicom_max_pdu", &T_BYTES, RT(insp.dicom_max_pdu), 0, NO_OFF, NO_OFF, 4096, 0xffffffffull, "16M", 0},
	{"hl7_message_types", &T_HL7_TYPES, RT(insp.hl7_types), ZG_INSPECT_LIST_MAX,
	 RT(insp.n_hl7_types), NO_OFF, 0, 0, NULL, 0},
	{"hl7_max_message", &T_BYTES, RT(insp.hl7_max_message), 0, NO_OFF, NO_OFF, 1024, 1ull << 30, "1M", 0},
	/* trust domains (identities.c); unset: [tls]'s */
	{"listen_identity", &T_NAME, RT(listen_identity), STR(struct zg_conf_route, listen_identity),
	 NO_OFF, RT(line_listen_identity), 0, 0, NULL, 0},
	{"listen_trust", &T_NAME, RT(listen_trust), STR(struct zg_conf_route, listen_trust), NO_OFF,
	 RT(line_listen_trust), 0, 0, NULL, 0},
	{"connect_identity", &T_NAME, RT(connect_identity), STR(struct zg_conf_route, connect_identity),
	 NO_OFF, RT(line_connect_identity), 0, 0, NULL, 0},
	{"connect_trust", &T_NAME, RT(connect_trust), STR(struct zg_conf_route, connect_trust), NO_OFF,
	 RT(line_connect_trust), 0, 0, NULL, 0},
};

#define AU(f) offsetof(struct zg_audit_conf, f)

/* certificate, key, ca and profile default to the [tls] ones when the audit
 * thread starts (zg_audit_conf_inherit), not here. */
static const struct kw audit_kws[] = {
	{"syslog_target", &T_HOSTPORT, AU(syslog_target), STR(struct zg_audit_conf, syslog_target),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"syslog_transport", &T_AUDIT_TRANSPORT, AU(transport), 0, NO_OFF, NO_OFF, 0, 0, "tls", 0},
	{"syslog_certificate", &T_PATH, AU(certificate), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL,
	 KW_FILE},
	{"syslog_key", &T_PATH, AU(key), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL,
	 KW_SECRET_FILE},
	{"syslog_ca", &T_PATH, AU(ca), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL,
	 KW_FILE | KW_TRUST_FILE},
	{"syslog_profile", &T_PROFILE, AU(profile), STR(struct zg_audit_conf, profile), NO_OFF, NO_OFF,
	 0, 0, NULL, 0},
	{"syslog_server_name", &T_HOSTPORT, AU(server_name), STR(struct zg_audit_conf, server_name),
	 NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"file", &T_PATH, AU(file), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"spool_dir", &T_PATH, AU(spool_dir), ZG_AUDIT_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"spool_max_bytes", &T_BYTES, AU(spool_max_bytes), 0, NO_OFF, NO_OFF, 256ull << 10, 1ull << 40,
	 "64M", 0},
	{"full_policy", &T_AUDIT_POLICY, AU(full_policy), 0, NO_OFF, NO_OFF, 0, 0,
	 "refuse-new-connections", 0},
	{"verbosity", &T_AUDIT_VERBOSITY, AU(verbosity), 0, NO_OFF, NO_OFF, 0, 0, "connections", 0},
	{"queue_length", &T_UINT, AU(queue_len), 0, NO_OFF, NO_OFF, 16, 1u << 20, "4096", 0},
	{"retry_max", &T_DUR_MS, AU(retry_max_ms), 0, NO_OFF, NO_OFF, 250, HOUR, "30s", 0},
	{"io_timeout", &T_DUR_MS, AU(io_timeout_ms), 0, NO_OFF, NO_OFF, 100, 5 * MIN, "5s", 0},
	{"ack_timeout", &T_DUR_MS, AU(ack_timeout_ms), 0, NO_OFF, NO_OFF, 100, HOUR, "60s", 0},
};

#define DIR(f) offsetof(struct zg_conf_directory, f)

static const struct kw directory_kws[] = {
	{"file", &T_PATH, DIR(file), ZG_PATH_MAX, NO_OFF, DIR(line_file), 0, 0, NULL,
	 KW_FILE | KW_TRUST_FILE},
	/* not KW_FILE: a missing signature is the loader's directory_unsigned */
	{"signature", &T_PATH, DIR(signature), ZG_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"public_key", &T_PATH, DIR(public_key), ZG_PATH_MAX, NO_OFF, DIR(line_public_key), 0, 0,
	 NULL, KW_FILE | KW_TRUST_FILE},
	{"reload_interval", &T_DUR_MS, DIR(reload_interval_ms), 0, NO_OFF, NO_OFF, 0, HOUR, "30s", 0},
	{"grace_period", &T_DUR_MS, DIR(grace_ms), 0, NO_OFF, NO_OFF, 0, HOUR, "30s", 0},
	{"state_file", &T_PATH, DIR(state_file), ZG_PATH_MAX, NO_OFF, DIR(line_state_file), 0, 0, NULL,
	 0},
};

#define CR(f) offsetof(struct zg_conf_crl, f)

static const struct kw crl_kws[] = {
	{"url", &T_URL, CR(url), STR(struct zg_conf_crl, url), NO_OFF, CR(line_url), 0, 0, NULL,
	 KW_REQUIRED},
	{"file", &T_PATH, CR(file), ZG_PATH_MAX, NO_OFF, CR(line_file), 0, 0, NULL, KW_REQUIRED},
	{"interval", &T_DUR_MS, CR(interval_ms), 0, NO_OFF, NO_OFF, SEC, 7 * 24 * HOUR, "1h", 0},
	{"timeout", &T_DUR_MS, CR(timeout_ms), 0, NO_OFF, NO_OFF, SEC, 5 * MIN, "10s", 0},
};

#define ID(f) offsetof(struct zg_conf_identity, f)

/* [identity NAME]: what [tls] holds as certificate, key and chain. */
static const struct kw identity_kws[] = {
	{"certificate", &T_PATH, ID(certificate), ZG_PATH_MAX, NO_OFF, ID(line_certificate), 0, 0,
	 NULL, KW_FILE | KW_REQUIRED},
	{"key", &T_PATH, ID(key), ZG_PATH_MAX, NO_OFF, ID(line_key), 0, 0, NULL,
	 KW_SECRET_FILE | KW_REQUIRED},
	{"chain", &T_PATH, ID(chain), ZG_PATH_MAX, NO_OFF, ID(line_chain), 0, 0, NULL, KW_FILE},
	{"ocsp_staple_file", &T_PATH, ID(ocsp_staple_file), ZG_PATH_MAX, NO_OFF,
	 ID(line_ocsp_staple_file), 0, 0, NULL, 0},
	{"ocsp_staple_url", &T_STAPLE_URL, ID(ocsp_staple_url), ZG_PATH_MAX, NO_OFF,
	 ID(line_ocsp_staple_url), 0, 0, NULL, 0},
	{"ocsp_staple_interval", &T_DUR_S, ID(ocsp_staple_interval_s), 0, NO_OFF, NO_OFF, MIN,
	 24 * HOUR, "1h", 0},
};

#define TR(f) offsetof(struct zg_conf_trust, f)

/* [trust NAME]: what [tls] holds as anchors, CRLs, depth and CRL policy. */
static const struct kw trust_kws[] = {
	{"trust_anchors", &T_PATH, TR(trust_anchors), ZG_PATH_MAX, NO_OFF, TR(line_trust_anchors), 0,
	 0, NULL, KW_FILE | KW_TRUST_FILE | KW_REQUIRED},
	{"crl", &T_PATHS, TR(crl), ZG_CRLS_MAX, TR(n_crl), TR(line_crl), 0, 0, NULL,
	 KW_FILE | KW_TRUST_FILE},
	{"verify_depth", &T_UINT, TR(verify_depth), 0, NO_OFF, NO_OFF, 1, 10, "4", 0},
	{"crl_stale", &T_CRL_STALE, TR(crl_stale_warn), 0, NO_OFF, NO_OFF, 0, 0, "reject", 0},
	{"ocsp", &T_OCSP_MODE, TR(ocsp), 0, NO_OFF, NO_OFF, 0, 0, "off", 0},
	{"ocsp_responder", &T_URL, TR(ocsp_responder), ZG_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
};

#define CL(f) offsetof(struct zg_conf_class, f)

/* A class's rates apply to each direction separately; ceil defaults to
 * rate (conf_fill_class_defaults), dscp to one chosen by priority. */
static const struct kw class_kws[] = {
	{"rate", &T_RATE, CL(rate_bps), 0, NO_OFF, CL(line_rate), 0, 0, NULL, KW_REQUIRED},
	{"ceil", &T_RATE, CL(ceil_bps), 0, NO_OFF, CL(line_ceil), 0, 0, NULL, 0},
	{"priority", &T_UINT, CL(priority), 0, NO_OFF, NO_OFF, 0, 7, "4", 0},
	{"max_connections", &T_UINT, CL(max_connections), 0, NO_OFF, NO_OFF, 0, CONN_MAX, "0", 0},
	{"per_connection", &T_RATE, CL(per_connection_bps), 0, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"dscp", &T_DSCP, CL(dscp), 0, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"windows", &T_WINDOWS, 0, 0, NO_OFF, CL(line_windows), 0, 0, NULL, 0},
};

#define LK(f) offsetof(struct zg_conf_link, f)

static const struct kw link_kws[] = {
	{"to_client", &T_RATE, LK(to_client_bps), 0, NO_OFF, LK(line_to_client), 0, 0, NULL, 0},
	{"to_upstream", &T_RATE, LK(to_upstream_bps), 0, NO_OFF, LK(line_to_upstream), 0, 0, NULL, 0},
};

#define CTL(f) offsetof(struct zg_conf_control, f)

static const struct kw control_kws[] = {
	{"socket", &T_PATH, CTL(socket), ZG_CTL_PATH_MAX, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"group", &T_NAME, CTL(group), STR(struct zg_conf_control, group), NO_OFF, NO_OFF, 0, 0, NULL,
	 0},
};

#define ADM(f) offsetof(struct zg_conf_admin, f)

static const struct kw admin_kws[] = {
	{"listen", &T_ENDPOINT, ADM(listen), 0, NO_OFF, NO_OFF, 0, 0, NULL, 0},
	{"tls", &T_BOOL, ADM(tls), 0, NO_OFF, ADM(line_tls), 0, 0, "off", 0},
	{"identity", &T_NAME, ADM(identity), STR(struct zg_conf_admin, identity), NO_OFF,
	 ADM(line_identity), 0, 0, NULL, 0},
	{"trust", &T_NAME, ADM(trust), STR(struct zg_conf_admin, trust), NO_OFF, ADM(line_trust), 0, 0,
	 NULL, 0},
	{"expiry_warn", &T_DAYS_LIST, ADM(expiry_warn), ZG_EXPIRY_WARN_MAX, ADM(n_expiry_warn), NO_OFF,
	 0, 0, "30d 7d 1d", 0},
};

#define OVR(f) offsetof(struct zg_conf_override, f)

static const struct kw override_kws[] = {
	{"max_duration", &T_DUR_S, OVR(max_duration_s), 0, NO_OFF, NO_OFF, 60 * SEC, 24 * HOUR, "4h", 0},
	{"cert_expired_max", &T_DUR_S, OVR(cert_expired_max_s), 0, NO_OFF, NO_OFF, 0, 30 * 24 * HOUR,
	 "168h", 0},
};

_Static_assert(N_KWS(gateway_kws) <= KW_MAX, "gateway_kws too long");
_Static_assert(N_KWS(tls_kws) <= KW_MAX, "tls_kws too long");
_Static_assert(N_KWS(route_kws) <= KW_MAX, "route_kws too long");

static unsigned route_count(const struct zg_conf *c)
{
	return c->n_routes;
}

static void *route_elem(const struct zg_conf *c, unsigned idx)
{
	return &c->routes[idx];
}

static unsigned crl_count(const struct zg_conf *c)
{
	return c->n_crl_fetch;
}

static void *crl_elem(const struct zg_conf *c, unsigned idx)
{
	return (void *)&c->crl_fetch[idx];
}

static unsigned class_count(const struct zg_conf *c)
{
	return c->n_classes;
}

static void *class_elem(const struct zg_conf *c, unsigned idx)
{
	return (void *)&c->classes[idx];
}

static unsigned identity_count(const struct zg_conf *c)
{
	return c->n_identities;
}

static void *identity_elem(const struct zg_conf *c, unsigned idx)
{
	return (void *)&c->identities[idx];
}

static unsigned trust_count(const struct zg_conf *c)
{
	return c->n_trusts;
}

static void *trust_elem(const struct zg_conf *c, unsigned idx)
{
	return (void *)&c->trusts[idx];
}

/* The printer names a named section by its struct's first member. */
_Static_assert(offsetof(struct zg_conf_route, name) == 0, "route name first");
_Static_assert(offsetof(struct zg_conf_class, name) == 0, "class name first");
_Static_assert(offsetof(struct zg_conf_identity, name) == 0, "identity name first");
_Static_assert(offsetof(struct zg_conf_trust, name) == 0, "trust name first");

const struct section_def conf_sections[] = {
	{"gateway", gateway_kws, N_KWS(gateway_kws), offsetof(struct zg_conf, gw), NULL, NULL, NULL},
	{"tls", tls_kws, N_KWS(tls_kws), offsetof(struct zg_conf, tls), NULL, NULL, NULL},
	{"identity", identity_kws, N_KWS(identity_kws), NO_OFF, identity_add, identity_count,
	 identity_elem},
	{"trust", trust_kws, N_KWS(trust_kws), NO_OFF, trust_add, trust_count, trust_elem},
	{"route", route_kws, N_KWS(route_kws), NO_OFF, route_add, route_count, route_elem},
	{"directory", directory_kws, N_KWS(directory_kws), offsetof(struct zg_conf, dir), NULL, NULL,
	 NULL},
	{"audit", audit_kws, N_KWS(audit_kws), offsetof(struct zg_conf, audit), NULL, NULL, NULL},
	{"crl", crl_kws, N_KWS(crl_kws), NO_OFF, crl_add, crl_count, crl_elem},
	{"link", link_kws, N_KWS(link_kws), offsetof(struct zg_conf, link), NULL, NULL, NULL},
	{"class", class_kws, N_KWS(class_kws), NO_OFF, class_add, class_count, class_elem},
	{"control", control_kws, N_KWS(control_kws), offsetof(struct zg_conf, ctl), NULL, NULL, NULL},
	{"admin", admin_kws, N_KWS(admin_kws), offsetof(struct zg_conf, admin), NULL, NULL, NULL},
	{"override", override_kws, N_KWS(override_kws), offsetof(struct zg_conf, ovr), NULL, NULL, NULL},
};
_Static_assert(N_INST >= ZG_ROUTES_MAX + ZG_CRLS_MAX + ZG_CLASSES_MAX + ZG_IDENTITIES_MAX +
		       ZG_TRUSTS_MAX + N_SECTIONS, "N_INST too small");

/* ---- lookups and defaults ------------------------------------------------ */

const struct section_def *section_named(const char *name)
{
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (strcmp(conf_sections[i].name, name) == 0)
			return &conf_sections[i];
	return NULL;
}

int kw_index(const struct section_def *def, const char *name)
{
	for (size_t i = 0; i < def->n_kws; i++)
		if (strcmp(def->kws[i].name, name) == 0)
			return (int)i;
	return -1;
}

void *inst_obj(const struct pctx *pc, const struct inst *in)
{
	if (in->def->conf_off != NO_OFF)
		return conf_field_of(pc->conf, in->def->conf_off);
	return in->def->elem(pc->conf, in->idx);
}

const struct inst *inst_of(const struct pctx *pc, const struct section_def *def)
{
	for (unsigned i = 0; i < pc->n_inst; i++)
		if (pc->inst[i].def == def)
			return &pc->inst[i];
	return NULL;
}

void conf_apply_defaults(const struct pctx *pc, const struct section_def *def, void *obj)
{
	char why[WHY_MAX];

	for (size_t i = 0; i < def->n_kws; i++) {
		const struct kw *kw = &def->kws[i];
		int rc;
		if (!kw->def)
			continue;
		rc = kw->type->parse(kw, kw->def, obj, pc, why, sizeof(why));
		/* checksrc: invariant (compiled-in table data, never input) */
		assert(rc == 0 && "a keyword table default does not parse");
		(void)rc;
	}
}

/* ---- suggestions --------------------------------------------------------- */

/* Case-insensitive Levenshtein distance; UINT_MAX for long strings. */
static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[33];

	if (la > 32 || lb > 32)
		return UINT_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned prev = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned cur = row[j];
			unsigned best = prev + (conf_lower(a[i - 1]) != conf_lower(b[j - 1]));
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

/* The candidate closest to @word if it is a plausible typo, else NULL. */
const char *conf_closest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	unsigned bd = 3; /* at most two edits */

	for (size_t i = 0; i < n; i++) {
		unsigned d = edit_distance(word, cands[i]);
		if (d < bd && d < strlen(cands[i])) {
			bd = d;
			best = cands[i];
		}
	}
	return best;
}

static const char *closest_kw(const struct section_def *def, const char *word)
{
	const char *names[KW_MAX];

	for (size_t i = 0; i < def->n_kws; i++)
		names[i] = def->kws[i].name;
	return conf_closest(word, names, def->n_kws);
}

void conf_unknown_key(const struct pctx *pc, const struct inst *in, const char *key)
{
	const char *hint = closest_kw(in->def, key);

	if (hint) {
		conf_perr(pc, pc->lineno, key, "unknown key in %s; did you mean '%s'?", in->label, hint);
		return;
	}
	for (size_t i = 0; i < N_SECTIONS; i++) {
		if (&conf_sections[i] != in->def && kw_index(&conf_sections[i], key) >= 0) {
			conf_perr(pc, pc->lineno, key, "unknown key in %s; it belongs in [%s%s]", in->label,
				  conf_sections[i].name, conf_sections[i].conf_off == NO_OFF ? " NAME" : "");
			return;
		}
	}
	conf_perr(pc, pc->lineno, key, "unknown key in %s", in->label);
}
