/* rules.c - the configuration's whole-file rules (conf_int.h).
 *
 * What no single value can tell: required keys, listen collisions between
 * routes, the keys a route's mode needs (in the route and in [tls]), the
 * [directory] pairing, the defaults filled in once the whole file is read,
 * and the checks on the files the configuration names. The reader runs them
 * in a fixed order, so the errors come in the same order every time.
 * Private to src/conf/.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <net/if.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/filemode.h"
#include "conf/conf_int.h"

/* ---- whole-file checks -------------------------------------------------- */

#define M_WRAP (1u << ZG_MODE_WRAP)
#define M_UNWRAP (1u << ZG_MODE_UNWRAP)
#define M_BRIDGE (1u << ZG_MODE_BRIDGE)
#define M_ALL (M_WRAP | M_UNWRAP | M_BRIDGE)

struct need {
	const char *key;
	unsigned modes;
	const char *why; /* tls needs: what the route does with it */
};

static const struct need route_needs[] = {
	{"server_name", M_WRAP | M_BRIDGE, NULL},
	{"allow_from", M_WRAP, NULL},
};

/* Every mode speaks TLS on one side at least: wrap and bridge present the
 * certificate as a client and verify the upstream, unwrap and bridge present
 * it as a server and verify their clients. */
static const struct need tls_needs[] = {
	{"certificate", M_ALL, "presents it to its TLS peers"},
	{"key", M_ALL, "signs its TLS handshakes with it"},
	{"trust_anchors", M_ALL, "verifies its TLS peers against them"},
};

static int route_mode(const struct pctx *pc, const struct inst *in, unsigned *mask)
{
	int i = kw_index(in->def, "mode");

	if (i < 0 || in->key_line[i] <= 0)
		return -1;
	*mask = 1u << pc->conf->routes[in->idx].mode;
	return 0;
}

void conf_check_required(const struct pctx *pc)
{
	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *in = &pc->inst[i];
		for (size_t k = 0; k < in->def->n_kws; k++)
			if ((in->def->kws[k].flags & KW_REQUIRED) && in->key_line[k] == 0)
				conf_perr(pc, in->line, in->def->kws[k].name, "required in %s", in->label);
	}
}

static int same_addr(const char *a, const char *b)
{
	struct zg_prefix pa, pb;
	const char *why;

	if (zg_prefix_parse(a, &pa, &why) < 0 || zg_prefix_parse(b, &pb, &why) < 0)
		return strcasecmp(a, b) == 0;
	return memcmp(pa.addr, pb.addr, sizeof(pa.addr)) == 0;
}

/* Listen host kinds: "*" and [::] take every address (dual stack),
 * 0.0.0.0 every IPv4 one (also in IPv4-mapped form). */
enum host_kind { H_ANY, H_ANY4, H_V4, H_V6 };

static enum host_kind host_kind(const char *host)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	struct zg_prefix p;
	const char *why;

	if (!host[0] || strcmp(host, "*") == 0)
		return H_ANY;
	if (zg_prefix_parse(host, &p, &why) < 0)
		return H_V6; /* cannot happen for a parsed listen host */
	if (memcmp(p.addr, mapped, 12) != 0) {
		static const uint8_t zero[16];
		return memcmp(p.addr, zero, 16) == 0 ? H_ANY : H_V6;
	}
	return memcmp(p.addr + 12, "\0\0\0\0", 4) == 0 ? H_ANY4 : H_V4;
}

/* Whether two listeners on the same port would collide. */
static int hosts_collide(const char *a, const char *b)
{
	enum host_kind ka = host_kind(a), kb = host_kind(b);

	if (ka == H_ANY || kb == H_ANY)
		return 1;
	if (ka == H_ANY4 || kb == H_ANY4)
		return ka != H_V6 && kb != H_V6;
	return same_addr(a, b);
}

/* Report and return 1 if route @b's listen endpoint collides with @a's. */
static int check_listen(const struct pctx *pc, const struct inst *a, const struct inst *b)
{
	int li = kw_index(a->def, "listen");
	const struct zg_endpoint *ea, *eb;
	char ta[ZG_HOST_MAX + 16], tb[ZG_HOST_MAX + 16];

	if (li < 0 || a->key_line[li] <= 0 || b->key_line[li] <= 0)
		return 0;
	ea = &pc->conf->routes[a->idx].listen;
	eb = &pc->conf->routes[b->idx].listen;
	if (strcmp(ea->port, eb->port) != 0 || !hosts_collide(ea->host, eb->host))
		return 0;
	fmt_endpoint(ea, ta, sizeof(ta));
	fmt_endpoint(eb, tb, sizeof(tb));
	conf_perr(pc, b->key_line[li], "listen", "%s conflicts with listen = %s of [route %s] (line %d)",
		  tb, ta, a->arg, a->key_line[li]);
	return 1;
}

/* PROXY v2 tells a system inside the zone who connected from outside: on a
 * wrap route the upstream is a remote gateway, which learns the client from
 * the TLS connection itself, and a header would reach it as payload. */
static void check_proxy(const struct pctx *pc, const struct inst *in, unsigned mask)
{
	int ki = kw_index(in->def, "proxy_protocol");

	if ((mask & M_WRAP) && ki >= 0 && in->key_line[ki] && pc->conf->routes[in->idx].proxy_protocol)
		conf_perr(pc, in->key_line[ki], "proxy_protocol",
			  "only for unwrap and bridge routes (a wrap route's upstream is a remote gateway)");
}

/* A DICOM route must name the AE titles it serves (the called-AE check
 * has no sensible default). The other dicom_ and hl7_ keys are harmless
 * on a route that does not inspect (the printer writes them all). */
static void check_inspect(const struct pctx *pc, const struct inst *in)
{
	const struct zg_conf_route *r = &pc->conf->routes[in->idx];

	if (r->insp.kind == ZG_INSPECT_DICOM && r->insp.n_called_ae == 0)
		conf_perr(pc, r->line_inspect ? r->line_inspect : in->line, "dicom_called_ae",
			  "required in %s for inspect = dicom", in->label);
}

void conf_check_routes(const struct pctx *pc)
{
	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *in = &pc->inst[i];
		unsigned mask;
		if (in->def->add != route_add)
			continue;
		for (unsigned j = 0; j < i; j++)
			if (pc->inst[j].def == in->def && check_listen(pc, &pc->inst[j], in))
				break; /* one conflict per route is enough to act on */
		if (route_mode(pc, in, &mask) < 0)
			continue;
		for (size_t k = 0; k < N_KWS(route_needs); k++) {
			int ki = kw_index(in->def, route_needs[k].key);
			/* a pool whose every member names its sni= needs no server_name */
			if (strcmp(route_needs[k].key, "server_name") == 0 &&
			    conf_pool_all_sni(&pc->conf->routes[in->idx].connect))
				continue;
			if ((route_needs[k].modes & mask) && ki >= 0 && in->key_line[ki] == 0)
				conf_perr(pc, in->line, route_needs[k].key, "required in %s for mode %s",
					  in->label, zg_mode_name(pc->conf->routes[in->idx].mode));
		}
		check_proxy(pc, in, mask);
		if (strlen(pc->conf->routes[in->idx].interface) >= IFNAMSIZ)
			conf_perr(pc, pc->conf->routes[in->idx].line_interface, "interface",
				  "an interface name has at most %d characters", IFNAMSIZ - 1);
		check_inspect(pc, in);
	}
}

void conf_check_tls_needs(const struct pctx *pc)
{
	const struct section_def *tdef = section_named("tls");
	const struct inst *tls = inst_of(pc, tdef);

	for (size_t k = 0; k < N_KWS(tls_needs); k++) {
		int ki = kw_index(tdef, tls_needs[k].key);
		if (ki < 0 || (tls && tls->key_line[ki] != 0))
			continue;
		for (unsigned i = 0; i < pc->n_inst; i++) {
			const struct inst *in = &pc->inst[i];
			unsigned mask;
			/* a side with its own [identity] / [trust] needs nothing of [tls] */
			if (in->def->add != route_add || route_mode(pc, in, &mask) < 0 ||
			    !(tls_needs[k].modes & mask) ||
			    !conf_route_uses_tls_default(&pc->conf->routes[in->idx],
							 strcmp(tls_needs[k].key, "trust_anchors") == 0))
				continue;
			conf_perr(pc, tls ? tls->line : in->line, tls_needs[k].key,
				  "required in [tls]: [route %s] (mode %s) %s", in->arg,
			     zg_mode_name(pc->conf->routes[in->idx].mode), tls_needs[k].why);
			break;
		}
	}
}

/* [admin] tls = on without a listener would protect nothing; one that
 * presents [tls]'s identity or trusts [tls]'s store needs what it uses
 * there (every route may have its own [identity] and [trust]). */
void conf_check_admin_tls(const struct pctx *pc)
{
	static const char *const needs[] = {"certificate", "key", "trust_anchors"};
	const struct section_def *tdef = section_named("tls");
	const struct inst *tls = inst_of(pc, tdef);
	const struct zg_conf_admin *a = &pc->conf->admin;

	if (!a->tls)
		return;
	if (!a->listen.port[0])
		conf_perr(pc, a->line_tls, "tls", "needs listen in [admin]");
	for (size_t k = 0; k < N_KWS(needs); k++) {
		int ki = kw_index(tdef, needs[k]);
		int of_trust = strcmp(needs[k], "trust_anchors") == 0;
		const char *named = of_trust ? a->trust : a->identity;
		if (ki < 0 || (tls && tls->key_line[ki] != 0) ||
		    (named[0] && strcmp(named, "tls") != 0))
			continue;
		conf_perr(pc, a->line_tls, "tls", "needs %s in [tls] (or [admin] %s naming an [%s])",
			  needs[k], of_trust ? "trust" : "identity", of_trust ? "trust" : "identity");
	}
}

/* Shared ticket keys seal tickets; without session_tickets = on there are
 * none, and a key file that silently does nothing misleads the operator
 * who set up a pair of gateways to resume across nodes. */
void conf_check_ticket_keys(const struct pctx *pc)
{
	const struct zg_conf_tls *t = &pc->conf->tls;

	if (t->n_ticket_key && !t->session_tickets)
		conf_perr(pc, t->line_ticket_key, "session_ticket_key",
			  "needs session_tickets = on in [tls]");
}

/* A directory needs its key; peers mean nothing without a directory. */
void conf_check_directory(const struct pctx *pc)
{
	const struct inst *in = inst_of(pc, section_named("directory"));
	const struct zg_conf *c = pc->conf;

	if (c->dir.file[0] && !c->dir.public_key[0])
		conf_perr(pc, c->dir.line_file, "public_key",
			  "required in [directory]: the directory's signature is checked with it");
	if (!c->dir.file[0] && in && c->dir.public_key[0])
		conf_perr(pc, c->dir.line_public_key, "file",
			  "required in [directory] when public_key is set");
	for (unsigned i = 0; i < c->n_routes; i++)
		if (c->routes[i].line_peers && !c->routes[i].peers.any && !c->dir.file[0])
			conf_perr(pc, c->routes[i].line_peers, "peers",
				  "[route %s]: peers needs a [directory] file to look participants up in",
			     c->routes[i].name);
}

void conf_fill_directory_defaults(struct zg_conf *c)
{
	size_t n = strlen(c->dir.file);

	if (c->dir.file[0] && !c->dir.signature[0] && n + 4 < sizeof(c->dir.signature) &&
	    snprintf(c->dir.signature, sizeof(c->dir.signature), "%s.sig", c->dir.file) < 0)
		c->dir.signature[0] = '\0';
	for (unsigned i = 0; i < c->n_routes; i++)
		if (!c->routes[i].line_peers)
			c->routes[i].peers.any = 1;
}

/* [audit] syslog over TLS authenticates with the gateway's own [tls]
 * certificate and trust anchors unless told otherwise. */
void conf_fill_audit_defaults(struct zg_conf *c)
{
	if (c->audit.syslog_target[0] && c->audit.transport == ZG_AUDIT_TLS)
		zg_audit_conf_inherit(&c->audit, c->tls.certificate, c->tls.chain, c->tls.key,
				      c->tls.trust_anchors, c->tls.profile);
}

void conf_check_audit_identity(const struct pctx *pc)
{
	const struct zg_audit_conf *a = &pc->conf->audit;
	const struct inst *in = inst_of(pc, section_named("audit"));

	/* [tls] may hold no identity now that routes can name their own */
	if (a->syslog_target[0] && a->transport == ZG_AUDIT_TLS &&
	    (!a->certificate[0] || !a->key[0] || !a->ca[0]))
		conf_perr(pc, in ? in->line : 0, "syslog_certificate",
			  "syslog over TLS needs syslog_certificate, syslog_key and syslog_ca "
			  "(or [tls] certificate, key and trust_anchors to inherit)");
}

void conf_fill_route_defaults(struct zg_conf *c)
{
	for (unsigned i = 0; i < c->n_routes; i++) {
		struct zg_conf_route *r = &c->routes[i];
		if (!r->max_connections)
			r->max_connections = c->gw.max_connections;
		if (!r->handshake_timeout_ms)
			r->handshake_timeout_ms = c->gw.handshake_timeout_ms;
		if (!r->idle_timeout_ms)
			r->idle_timeout_ms = c->gw.idle_timeout_ms;
		if (!r->connect_timeout_ms)
			r->connect_timeout_ms = c->gw.connect_timeout_ms;
		if (!r->profile[0])
			snprintf(r->profile, sizeof(r->profile), "%s", c->tls.profile);
	}
}

/* ---- checks on the files the configuration names ------------------------ */

static void check_file(const struct pctx *pc, const struct kw *kw, int line, const char *path)
{
	char ebuf[128], why[2 * ZG_PATH_MAX + 128];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		conf_perr(pc, line, kw->name, "cannot read %s: %s", path,
			  strerror_r(errno, ebuf, sizeof(ebuf)));
		return;
	}
	if (fstat(fd, &st) < 0) {
		conf_perr(pc, line, kw->name, "cannot stat %s: %s", path,
			  strerror_r(errno, ebuf, sizeof(ebuf)));
	} else if (!S_ISREG(st.st_mode)) {
		conf_perr(pc, line, kw->name, "%s is not a regular file", path);
	} else if ((kw->flags & KW_SECRET_FILE) && (st.st_mode & S_IRWXO)) {
		/* a private key others can read is compromised; refuse to run with it */
		conf_perr(pc, line, kw->name, "%s is %s by every user (mode %04o); run 'chmod 600 %s'",
			  path, (st.st_mode & S_IROTH) ? "readable" : "accessible",
			  (unsigned)(st.st_mode & 07777), path);
	} else if ((kw->flags & KW_TRUST_FILE) && zg_file_mode_check(&st, geteuid(), path, why,
								       sizeof(why)) < 0) {
		/* whoever can rewrite it decides whom we trust */
		conf_perr(pc, line, kw->name, "%s", why);
	}
	close(fd);
}

void conf_check_files(const struct pctx *pc)
{
	for (unsigned i = 0; i < pc->n_inst; i++) {
		const struct inst *in = &pc->inst[i];
		const void *obj = inst_obj(pc, in);
		for (size_t k = 0; k < in->def->n_kws; k++) {
			const struct kw *kw = &in->def->kws[k];
			if (!(kw->flags & (KW_FILE | KW_SECRET_FILE)) || in->key_line[k] <= 0)
				continue;
			if (kw->aux_off == NO_OFF) {
				check_file(pc, kw, in->key_line[k], conf_cfield_of(obj, kw->off));
				continue;
			}
			const char *paths = conf_cfield_of(obj, kw->off);
			unsigned n = *(const unsigned *)conf_cfield_of(obj, kw->aux_off);
			for (unsigned j = 0; j < n; j++)
				check_file(pc, kw, in->key_line[k], paths + (size_t)j * ZG_PATH_MAX);
		}
	}
}
