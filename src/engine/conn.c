/* conn.c - the connection state machine; see the diagram in conn.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tls/chaincache.h"
#include "tls/ocsp.h"
#include "engine/conn.h"
#include "engine/gate.h"
#include "base/log.h"
#include "base/relax.h"
#include "policy/policy.h"
#include "engine/proxy_header.h"
#include "engine/record.h"
#include "upstream/health.h"
#include "upstream/pool.h"

static const char *const state_names[] = {
	[ZG_CS_ACCEPTED] = "accepted",
	[ZG_CS_HANDSHAKE_IN] = "handshake_in",
	[ZG_CS_INSPECTING] = "inspecting",
	[ZG_CS_CONNECTING] = "connecting",
	[ZG_CS_HANDSHAKE_OUT] = "handshake_out", [ZG_CS_RELAYING] = "relaying",
	[ZG_CS_CLOSED] = "closed",
};

const char *zg_conn_state_name(enum zg_conn_state s)
{
	return (unsigned)s <= ZG_CS_CLOSED ? state_names[s] : "?";
}

static void start_upstream(struct zg_conn *c);
static void try_upstream(struct zg_conn *c);
static void update_interest(struct zg_conn *c);
static void step(struct zg_conn *c);
static void upstream_addr16(const struct zg_conn *c, uint8_t out[16]);
static enum zg_reason judge(const struct zg_conn *c, const struct zg_snapshot *snap, char *detail,
			    size_t cap);
static int hs_done(SSL *ssl);

/* Whom the upstream must be: on a wrap route `peers` names the remote site;
 * on a bridge route it names the clients, and the upstream need only be one
 * consistent participant (address and certificate), any of them. */
static const struct zg_peers *outbound_peers(const struct zg_conn *c)
{
	return c->route->conf->mode == ZG_MODE_WRAP ? &c->route->conf->peers : NULL;
}

void zg_hist_observe(struct zg_hist *h, uint64_t ms)
{
	static const uint64_t bounds[ZG_HIST_N - 1] = ZG_HIST_BOUNDS_MS;
	unsigned i = 0;

	while (i < ZG_HIST_N - 1 && ms > bounds[i])
		i++;
	zg_ctr_add(&h->bucket[i], 1);
	zg_ctr_add(&h->sum_us, ms * 1000u);
	zg_ctr_add(&h->count, 1);
}

/* Count how a connection on @route ended (refusals included). */
static void count_end(struct zg_conn_host *h, const struct zg_route_rt *route, enum zg_reason reason)
{
	if (route->stats && (unsigned)reason < ZG_R__COUNT)
		zg_ctr_add(&h->ctr->ends[route->stats->slot][reason], 1);
}

/* Hand an override's relaxations to a handshake's verification. A chain
 * judged under an override is neither taken from nor left in the
 * verified-chain cache, and the session is not resumed. */
static void relax_verdict(const struct zg_conn *c, struct zg_tls_verdict *v)
{
	if (!c->relax)
		return;
	v->relax = c->relax;
	v->relax_expired_s = c->relax_expired_s;
	v->cache = NULL;
	v->resume = NULL;
}

/* The one place a state changes: it also sets the state's deadline. */
static void set_state(struct zg_conn *c, enum zg_conn_state s)
{
	const struct zg_conf_route *r = c->route->conf;
	uint64_t now = c->h->now_ms;

	zg_debug("event=state route=%s id=%u.%llu from=%s to=%s", r->name, c->h->index,
		 (unsigned long long)c->id, zg_conn_state_name(c->state), zg_conn_state_name(s));
	c->state = s;
	switch (s) {
	case ZG_CS_HANDSHAKE_IN:
	case ZG_CS_HANDSHAKE_OUT:
	case ZG_CS_INSPECTING:
		c->deadline_ms = now + r->handshake_timeout_ms;
		c->step_ms = now;
		break;
	case ZG_CS_CONNECTING:
		c->deadline_ms = now + r->connect_timeout_ms;
		c->step_ms = now;
		break;
	case ZG_CS_RELAYING:
		c->relay.last_activity_ms = now;
		break;
	case ZG_CS_ACCEPTED:
	case ZG_CS_CLOSED:
		break;
	}
}

static void side_init(struct zg_side *s, struct zg_conn *c)
{
	s->magic = ZG_SIDE_MAGIC;
	s->fd = -1;
	s->conn = c;
}

/* The traffic class of @route's connections, counted in: ZG_R_OK with
 * *@cls set, or ZG_R_CLASS_LIMIT with the class's limit in @detail. A
 * class a reload removed since @route's snapshot was built: the default. */
static enum zg_reason admit_class(struct zg_conn_host *h, const struct zg_route_rt *route,
				  struct zg_shape_class **cls, char *detail, size_t cap)
{
	struct zg_shape_class *c;
	enum zg_reason r;

	if (!h->shape)
		return ZG_R_OK;
	c = zg_shape_find(h->shape, route->conf->class_name);
	if (!c)
		c = zg_shape_find(h->shape, "");
	if (!c)
		return ZG_R_OK;
	r = zg_shape_admit(c);
	if (r != ZG_R_OK) {
		snprintf(detail, cap, "class %s: %u connections", c->name,
			 atomic_load(&c->max_connections));
		return r;
	}
	*cls = c;
	return ZG_R_OK;
}

/* The emergency override in force for @route on this loop now, or NULL. */
static const struct zg_override *override_for(const struct zg_conn_host *h,
					      const struct zg_route_rt *route)
{
	for (unsigned i = 0; i < h->n_overrides; i++)
		if (h->now_ms < h->overrides[i].until_ms &&
		    strcmp(h->overrides[i].route, route->conf->name) == 0)
			return &h->overrides[i];
	return NULL;
}

/* The directory's address check; with @relax holding directory_stale, an
 * expired directory is judged as at its last valid second (the binding
 * itself is never relaxed), and *@used says so. */
static enum zg_reason check_addr(const struct zg_snapshot *snap, const struct zg_route_rt *route,
				 const uint8_t addr[16], const struct zg_participant **who,
				 unsigned relax, unsigned *used, char *detail, size_t cap)
{
	enum zg_reason r = zg_directory_check_addr(snap->dir, time(NULL), addr, &route->conf->peers,
						   who, detail, cap);

	if (r == ZG_R_DIR_STALE && (relax & ZG_RELAX_DIRECTORY_STALE)) {
		r = zg_directory_check_addr(snap->dir, zg_directory_expires(snap->dir) - 1, addr,
					    &route->conf->peers, who, detail, cap);
		if (r == ZG_R_OK)
			*used |= ZG_RELAX_DIRECTORY_STALE;
	}
	return r;
}

/* The participant's connection limit; relaxed (the connection is counted
 * in all the same) when @relax holds directory_participant_limit. */
static enum zg_reason participant_admit(const struct zg_participant *who, _Atomic unsigned *slot,
					unsigned relax, unsigned *used, char *detail, size_t cap)
{
	enum zg_reason r = zg_directory_admit(who, slot, detail, cap);

	if (r == ZG_R_DIR_PARTICIPANT_LIMIT && (relax & ZG_RELAX_PARTICIPANT_LIMIT)) {
		atomic_fetch_add(slot, 1); /* released at close like any other */
		*used |= ZG_RELAX_PARTICIPANT_LIMIT;
		r = ZG_R_OK;
	}
	return r;
}

/* Admission, before a single byte is read: the route's address gate, the
 * participant directory (inbound TLS routes: the source address must belong
 * to a participant the route admits), then the limits: route, gateway and
 * traffic class. An emergency override (@relax) may relax the directory's
 * age and the participant's limit, and says in *@used what it relaxed.
 * Returns ZG_R_OK and counts the connection in, or the reason to refuse it. */
static enum zg_reason admit(struct zg_conn_host *h, const struct zg_route_rt *route, const uint8_t addr[16],
			    const struct zg_participant **who, _Atomic unsigned **slot,
			    struct zg_shape_class **cls, unsigned relax, unsigned *used, char *detail,
			    size_t cap)
{
	enum zg_reason r;
	unsigned total, on_route;

	if ((r = zg_gate_source(route->conf, addr)) != ZG_R_OK)
		return r;
	if (h->snap->dir && zg_route_tls_in(route->conf) &&
	    (r = check_addr(h->snap, route, addr, who, relax, used, detail, cap)) != ZG_R_OK)
		return r;
	if (*who && h->snap->dir_slots) {
		if ((r = participant_admit(*who, h->snap->dir_slots[(*who)->index], relax, used, detail,
					   cap)) != ZG_R_OK)
			return r;
		*slot = h->snap->dir_slots[(*who)->index];
	}
	total = atomic_fetch_add(h->active_total, 1);
	on_route = atomic_fetch_add(&route->stats->active, 1);
	r = zg_gate_admit(on_route, route->conf->max_connections, total,
			  h->snap->conf->gw.max_connections);
	if (r == ZG_R_OK)
		r = admit_class(h, route, cls, detail, cap);
	if (r != ZG_R_OK) {
		atomic_fetch_sub(h->active_total, 1);
		atomic_fetch_sub(&route->stats->active, 1);
		if (*slot)
			zg_directory_release(*slot);
		*slot = NULL;
	}
	return r;
}

/* Mark @fd with the DSCP of @c's class, so routers on the path can
 * prioritise too. A failure costs only the mark: logged, not fatal. */
static void mark_dscp(const struct zg_conn *c, int fd)
{
	int dscp = c->cls ? atomic_load_explicit(&c->cls->dscp, memory_order_relaxed) : ZG_DSCP_UNSET;

	if (zg_shape_mark(fd, dscp) < 0)
		zg_debug("event=dscp_failed route=%s id=%u.%llu error=%s", c->route->conf->name,
			 c->h->index, (unsigned long long)c->id, strerror(errno));
}

void zg_conn_refuse(struct zg_conn_host *h, const struct zg_route_rt *route, int fd,
		    const struct zg_sockaddr *peer, enum zg_reason reason, const char *detail)
{
	atomic_fetch_add(&route->stats->refused, 1);
	count_end(h, route, reason);
	zg_record_refusal(h, route, ++h->next_id, peer, reason, detail, NULL);
	close(fd);
}

/* Out of descriptors (per process or system-wide): the gateway's own
 * limit, never the upstream's fault. */
static int fd_exhausted(int err)
{
	return err == EMFILE || err == ENFILE;
}

/* Make the upstream socket at accept: a gateway out of descriptors refuses
 * the connection now, naming its own limit, instead of spending a TLS
 * handshake on a connection it cannot relay. 0 to go on (a socket that
 * failed for another reason is tried again at connect time), -1 after
 * closing @c. */
static int reserve_upstream_socket(struct zg_conn *c)
{
	int family;

	family = AF_UNSPEC;
	for (unsigned k = 0; k < c->route->n_up && family == AF_UNSPEC; k++)
		if (c->route->up[k].n_addr)
			family = c->route->up[k].addr[0].ss.ss_family;
	if (family == AF_UNSPEC)
		return 0; /* closes as upstream_unresolved when it gets there */
	c->spare_fd = zg_stream_socket(family);
	if (c->spare_fd >= 0) {
		c->spare_family = family;
		return 0;
	}
	if (!fd_exhausted(errno))
		return 0;
	zg_conn_close(c, ZG_R_LOCAL_FD_EXHAUSTED, strerror(errno));
	return -1;
}

/* A socket for an upstream address of @family: the one reserved at accept
 * if it fits, else a new one (the reserved one closed first, so the new
 * one takes its place). -1 with errno set. */
static int upstream_socket(struct zg_conn *c, int family)
{
	int fd = c->spare_fd;

	c->spare_fd = -1;
	if (fd >= 0 && c->spare_family == family)
		return fd;
	if (fd >= 0)
		close(fd);
	return zg_stream_socket(family);
}

/* The client side is up (TLS handshake done, or accepted on a wrap route):
 * an inspecting route reads its first PDU before going upstream. */
static void client_ready(struct zg_conn *c)
{
	if (zg_clinical_first(c)) {
		set_state(c, ZG_CS_INSPECTING);
		c->down.want = ZG_WANT_READ;
		return;
	}
	start_upstream(c);
}

void zg_conn_start(struct zg_conn_host *h, struct zg_snapshot *snap, const struct zg_route_rt *route,
		   int fd, const struct zg_sockaddr *peer)
{
	uint64_t id;
	const struct zg_participant *who = NULL;
	const struct zg_override *ovr = h->n_overrides ? override_for(h, route) : NULL;
	_Atomic unsigned *slot = NULL;
	struct zg_shape_class *cls = NULL;
	char detail[160] = "";
	uint8_t addr[16];
	enum zg_reason r = ZG_R_ADDR_NOT_ALLOWED;
	unsigned used = 0;
	struct zg_conn *c;

	if (zg_prefix_addr_from_sockaddr((const struct sockaddr *)&peer->ss, addr) == 0)
		r = admit(h, route, addr, &who, &slot, &cls, ovr ? ovr->relax : 0, &used, detail,
			  sizeof(detail));
	if (r != ZG_R_OK) {
		zg_conn_refuse(h, route, fd, peer, r, detail);
		return;
	}
	id = ++h->next_id;
	c = calloc(1, sizeof(*c));
	if (!c) {
		atomic_fetch_sub(h->active_total, 1);
		atomic_fetch_sub(&route->stats->active, 1);
		if (slot)
			zg_directory_release(slot);
		if (cls)
			zg_shape_release(cls);
		count_end(h, route, ZG_R_NO_MEMORY);
		zg_record_refusal(h, route, id, peer, ZG_R_NO_MEMORY, NULL, NULL);
		close(fd);
		return;
	}
	c->magic = ZG_CONN_MAGIC;
	c->subject = c->sans = c->up_subject = c->up_sans = "";
	c->spare_fd = -1;
	c->h = h;
	c->id = id;
	c->snap = zg_snapshot_ref(snap);
	c->route = route;
	c->peer = *peer;
	memcpy(c->peer16, addr, sizeof(addr));
	c->participant = who;
	c->participant_slot = slot;
	c->relaxed = used;
	if (ovr) {
		c->relax = ovr->relax;
		c->relax_expired_s = ovr->cert_expired_max_s;
	}
	c->started_ms = h->now_ms;
	c->relay.spares = h->spares;
	side_init(&c->down, c);
	side_init(&c->up, c);
	c->down.fd = fd;
	c->cls = cls;
	if (cls) {
		zg_shape_flow_init(&c->relay.d2u.flow, h->shape, cls, ZG_TO_UPSTREAM);
		zg_shape_flow_init(&c->relay.u2d.flow, h->shape, cls, ZG_TO_CLIENT);
		mark_dscp(c, fd);
	}
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->n_conns++;
	atomic_fetch_add(&route->stats->accepted, 1);
	if (zg_log_enabled(ZG_LOG_DEBUG)) {
		char p[64];
		zg_sockaddr_format((const struct sockaddr *)&peer->ss, p, sizeof(p));
		zg_debug("event=conn_open route=%s id=%u.%llu peer=%s", route->conf->name, h->index,
			 (unsigned long long)id, p);
	}
	if (reserve_upstream_socket(c) < 0)
		return;
	if (zg_route_tls_in(route->conf)) {
		c->verdict_in.dir = snap->dir;
		c->verdict_in.addr = c->peer16;
		c->verdict_in.peers = &route->conf->peers;
		c->verdict_in.cache = h->chains;
		c->verdict_in.cache_tag = zg_chaincache_tag(snap->tls_generation,
							    (unsigned)(route - snap->routes), 0);
		relax_verdict(c, &c->verdict_in);
		c->down.ssl = zg_tls_server_new(route->tls_in, fd, &c->verdict_in);
		if (!c->down.ssl) {
			zg_conn_close(c, ZG_R_NO_MEMORY, NULL);
			return;
		}
		set_state(c, ZG_CS_HANDSHAKE_IN);
		step(c);
		return;
	}
	client_ready(c);
	if (c->state != ZG_CS_CLOSED)
		step(c);
}

/* Drive a TLS handshake on @s; 1 when complete, 0 when waiting, -1 when
 * it failed, with the reason in *@why and @detail (the caller decides:
 * close, or try the next upstream). */
static int handshake(struct zg_side *s, struct zg_tls_verdict *v, enum zg_reason *why, char *detail,
		     size_t cap)
{
	int rc, e;

	ERR_clear_error();
	rc = SSL_do_handshake(s->ssl);
	if (rc == 1)
		return 1;
	e = SSL_get_error(s->ssl, rc);
	if (e == SSL_ERROR_WANT_READ) {
		s->want = ZG_WANT_READ;
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		s->want = ZG_WANT_WRITE;
		return 0;
	}
	s->tls_dead = 1;
	*why = zg_tls_handshake_reason(s->ssl, e, v, detail, cap);
	return -1;
}

static void request_resolve(struct zg_conn *c)
{
	c->h->ops->want_resolve(c->h);
}

static int route_index(const struct zg_conn *c)
{
	return (int)(c->route - c->snap->routes);
}

/* The order in which this connection tries the pool (upstream/pool.h),
 * from every member's health now. */
static void plan_upstream(struct zg_conn *c)
{
	const struct zg_route_rt *rt = c->route;
	struct zg_pool_cand cand[ZG_POOL_MAX];
	uint64_t ticket = rt->stats ? atomic_fetch_add_explicit(&rt->stats->ticket, 1,
								 memory_order_relaxed) : 0;

	for (unsigned k = 0; k < rt->n_up; k++) {
		const struct zg_health *h = rt->up[k].health;
		cand[k].weight = rt->up[k].conf->weight ? rt->up[k].conf->weight : 1;
		cand[k].backup = rt->up[k].conf->backup != 0;
		cand[k].usable = !h || zg_health_usable(h, c->h->now_ms);
		cand[k].active = h ? atomic_load_explicit(&h->conns_active, memory_order_relaxed) : 0;
		cand[k].held_until_ms =
			h ? atomic_load_explicit(&h->held_until_ms, memory_order_relaxed) : 0;
	}
	c->n_order = zg_pool_order(cand, rt->n_up, rt->conf->balance, ticket, c->order);
	c->tried = 0;
	c->member = NULL;
	c->fail_reason = ZG_R_UPSTREAM_UNRESOLVED;
	snprintf(c->fail_detail, sizeof(c->fail_detail), "no endpoint of the pool resolves now");
}

/* Leave the current member: it no longer counts this connection. */
static void leave_member(struct zg_conn *c)
{
	if (c->member_counted && c->member->health)
		zg_health_conn_end(c->member->health);
	c->member_counted = 0;
}

/* Drop the socket and the TLS state of a failed upstream attempt. */
static void reset_up_side(struct zg_conn *c)
{
	if (c->up.fd >= 0) {
		(void)c->h->ops->watch(c->h, &c->up, 0); /* leaving the set cannot fail us */
		close(c->up.fd);
	}
	SSL_free(c->up.ssl);
	memset(&c->up, 0, sizeof(c->up));
	c->up.magic = ZG_SIDE_MAGIC;
	c->up.fd = -1;
	c->up.conn = c;
	memset(&c->verdict_out, 0, sizeof(c->verdict_out));
}

/* The attempt on the current member failed with @r before any payload
 * went upstream. @whole: its other addresses would fail alike (TLS,
 * identity), so the member is done. A member all of whose addresses
 * failed is marked failing; then the pool goes on. */
static void attempt_failed(struct zg_conn *c, enum zg_reason r, const char *detail, int whole)
{
	const struct zg_upstream_rt *m = c->member;

	c->fail_reason = r;
	snprintf(c->fail_detail, sizeof(c->fail_detail), "%s", detail ? detail : "");
	zg_debug("event=upstream_failed route=%s id=%u.%llu endpoint=%s:%s reason=%s",
		 c->route->conf->name, c->h->index, (unsigned long long)c->id, m->conf->ep.host,
		 m->conf->ep.port, zg_reason_code(r));
	if (whole)
		c->addr_next = m->n_addr;
	if (c->addr_next >= m->n_addr && m->health) {
		uint64_t hold = 0;
		if (zg_health_passive_fail(m->health, r, c->route->conf->hold_down_ms, c->h->now_ms,
					   &hold))
			zg_health_report(c->h->audit, c->route->conf->name, m->health, 1, r, "passive",
					 hold, detail);
	}
	c->ocsp_wait = 0; /* the next member's handshake starts its own wait */
	reset_up_side(c);
	try_upstream(c);
}

/* Connect to the next address of the current member, else to the next
 * member of the order; on running out, close with why the last attempt
 * failed. */
static void try_upstream(struct zg_conn *c)
{
	const struct zg_route_rt *rt = c->route;
	int fd, saved;

	for (;;) {
		if (!c->member || c->addr_next >= c->member->n_addr) {
			if (c->member)
				leave_member(c);
			if (c->tried >= c->n_order)
				break;
			c->member = &rt->up[c->order[c->tried++]];
			c->addr_next = 0;
			if (c->member->n_addr == 0)
				continue; /* does not resolve now: nothing to try */
			if (c->member->health)
				zg_health_conn_begin(c->member->health);
			c->member_counted = 1;
		}
		c->upstream_addr = c->member->addr[c->addr_next++];
		fd = upstream_socket(c, c->upstream_addr.ss.ss_family);
		if (fd < 0 && fd_exhausted(errno)) {
			/* our own limit: no member is to blame, none is marked */
			zg_conn_close(c, ZG_R_LOCAL_FD_EXHAUSTED, strerror(errno));
			return;
		}
		if (fd >= 0)
			mark_dscp(c, fd); /* before connect: the SYN is marked too */
		if (fd >= 0 && zg_connect_on(fd, &c->upstream_addr) == 0) {
			c->up.fd = fd;
			set_state(c, ZG_CS_CONNECTING);
			return;
		}
		saved = errno;
		if (fd >= 0)
			close(fd);
		attempt_failed(c, ZG_R_CONNECT_FAILED, strerror(saved), 0);
		return;
	}
	request_resolve(c);
	zg_conn_close(c, c->fail_reason, c->fail_detail[0] ? c->fail_detail : NULL);
}

/* First upstream attempt of @c: plan the pool, then try it. */
static void start_upstream(struct zg_conn *c)
{
	plan_upstream(c);
	try_upstream(c);
}

/* The upstream failed in RELAYING with @r. Before any byte went either
 * way the client has seen nothing: try the next member as if the connect
 * had failed. After that, never replay (a C-STORE or an HL7 message must
 * not reach two systems): close, naming it when another member existed. */
static void upstream_lost(struct zg_conn *c, enum zg_reason r, const char *detail)
{
	if (c->relay.d2u.bytes == 0 && c->relay.u2d.bytes == 0 && c->relay.u2d.tail == 0 &&
	    !c->down.eof && c->member) {
		c->relay.first_eof = 0;
		attempt_failed(c, r, detail, 1);
		return;
	}
	if (c->member && c->member->health) {
		uint64_t hold = 0;
		if (zg_health_passive_fail(c->member->health, r, c->route->conf->hold_down_ms,
					   c->h->now_ms, &hold))
			zg_health_report(c->h->audit, c->route->conf->name, c->member->health, 1, r,
					 "passive", hold, detail);
	}
	if (c->route->n_up > 1) {
		char d[200];
		snprintf(d, sizeof(d), "%s%s%s", zg_reason_code(r), detail ? ": " : "",
			 detail ? detail : "");
		zg_conn_close(c, ZG_R_UPSTREAM_LOST_AFTER_PAYLOAD, d);
		return;
	}
	zg_conn_close(c, r, detail);
}

/* The attempt on the current member got through: its back-off starts over. */
static void upstream_ok(struct zg_conn *c)
{
	struct zg_health *h = c->member ? c->member->health : NULL;

	if (h && zg_health_passive_ok(h))
		zg_health_report(c->h->audit, c->route->conf->name, h, 0, ZG_R_OK, "passive", 0, NULL);
}

/* Each finished handshake of @c judged again by every TLS rule of @snap:
 * trust anchors, CRLs, profile rules and the upstream's server_name, with
 * the contexts of @c's route in @snap. A route that is gone, or lost the
 * context of a hop, trusts nobody on that hop any more. */
static enum zg_reason rejudge(const struct zg_conn *c, const struct zg_snapshot *snap, char *detail,
			      size_t cap)
{
	const struct zg_route_rt *rt = zg_snapshot_route(snap, c->route->conf->name);
	enum zg_reason r = ZG_R_OK;

	if (snap->tls_generation == c->snap->tls_generation)
		return ZG_R_OK; /* a re-resolution: the same contexts judged it */
	if (hs_done(c->down.ssl)) {
		if (!rt || !rt->tls_in)
			goto gone;
		r = zg_tls_rejudge(c->down.ssl, rt->tls_in, NULL, detail, cap);
	}
	if (r == ZG_R_OK && hs_done(c->up.ssl)) {
		if (!rt || !rt->tls_out)
			goto gone;
		r = zg_tls_rejudge(c->up.ssl, rt->tls_out, rt->conf->server_name, detail, cap);
	}
	return r;
gone:
	snprintf(detail, cap, "route %s no longer takes TLS this way after a reload during the handshake",
		 c->route->conf->name);
	return ZG_R_TLS_UNTRUSTED;
}

static void start_relay(struct zg_conn *c)
{
	char detail[160] = "";
	enum zg_reason r;

	/* A reload came while this connection was in its handshakes, which
	 * were judged by the old rules: it is a new connection under the rules
	 * in force (directory, CRLs, and every TLS rule), refused at once (no
	 * grace) if they disallow it. */
	if (c->snap != c->h->snap &&
	    ((r = judge(c, c->h->snap, detail, sizeof(detail))) != ZG_R_OK ||
	     (r = rejudge(c, c->h->snap, detail, sizeof(detail))) != ZG_R_OK)) {
		zg_conn_close(c, r, detail);
		return;
	}
	upstream_ok(c);
	/* No record, no relay: with refuse-new-connections a full audit
	 * spool stops new sessions rather than letting them go unrecorded.
	 * One attach per connection, however many members it tried. */
	if (!c->attached && zg_record_attach(c) < 0) {
		zg_conn_close(c, ZG_R_AUDIT_SPOOL_FULL, NULL);
		return;
	}
	c->attached = 1;
	if (zg_clinical_relay(c) < 0) {
		zg_conn_close(c, ZG_R_NO_MEMORY, NULL);
		return;
	}
	set_state(c, ZG_CS_RELAYING);
}

static void connected(struct zg_conn *c)
{
	char detail[160];
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->up.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	if (err != 0) {
		/* ECONNRESET here: the upstream accepted, then reset before a byte
		 * went either way; named like a reset seen by the first read, as
		 * the health checker names it, whichever the kernel reported first */
		attempt_failed(c, err == ECONNRESET ? ZG_R_UPSTREAM_RESET : ZG_R_CONNECT_FAILED,
			       strerror(err), 0); /* next address, or close */
		return;
	}
	zg_hist_observe(&c->h->ctr->connect, c->h->now_ms - c->step_ms);
	if (c->route->conf->proxy_protocol && zg_proxy_header_send(c, detail, sizeof(detail)) < 0) {
		attempt_failed(c, ZG_R_UPSTREAM_RESET, detail, 1); /* nothing of the client's went */
		return;
	}
	if (zg_route_tls_out(c->route->conf)) {
		upstream_addr16(c, c->upstream16);
		c->verdict_out.dir = c->snap->dir;
		c->verdict_out.addr = c->upstream16;
		c->verdict_out.peers = outbound_peers(c);
		c->verdict_out.cache = c->h->chains;
		/* per member: a session or chain of one remote site is never
		 * taken for another's (routes < 256, members < 8: 16 bits) */
		c->verdict_out.cache_tag = zg_chaincache_tag(
			c->snap->tls_generation,
			(unsigned)route_index(c) | (unsigned)(c->member - c->route->up) << 8, 1);
		c->verdict_out.resume = &c->h->out_sessions[(unsigned)route_index(c) % ZG_ROUTES_MAX];
		relax_verdict(c, &c->verdict_out);
		c->up.ssl = zg_tls_client_new(c->route->tls_out, c->up.fd,
					      zg_upstream_server_name(c->route->conf, c->member->conf),
					      &c->verdict_out);
		if (!c->up.ssl) {
			zg_conn_close(c, ZG_R_NO_MEMORY, NULL);
			return;
		}
		set_state(c, ZG_CS_HANDSHAKE_OUT);
		return;
	}
	start_relay(c);
}

/* Relay steps that moved bytes within one tick (200 ms) after which a
 * connection counts as busy. */
#define BUSY_STEPS 8

/* SSL_MODE_RELEASE_BUFFERS (tls.c) frees OpenSSL's ~17 KiB read buffer
 * after each record read and its write buffer after each record sent, so
 * a connection exchanging messages paid a malloc and a free of each per
 * message. A busy connection keeps them (@keep 1) until a tick finds it
 * quiet (@keep 0): they are released then, and the mode is back, so an
 * idle connection still holds none. */
static void keep_buffers(struct zg_conn *c, int keep)
{
	SSL *ssl[2] = {c->down.ssl, c->up.ssl};

	for (int i = 0; i < 2; i++) {
		if (!ssl[i])
			continue;
		if (keep) {
			SSL_clear_mode(ssl[i], SSL_MODE_RELEASE_BUFFERS);
			continue;
		}
		SSL_set_mode(ssl[i], SSL_MODE_RELEASE_BUFFERS);
		/* 0: a record is half read or written; released when done */
		(void)SSL_free_buffers(ssl[i]);
	}
	c->buffers_kept = keep;
}

/* Compute each side's epoll interest from the state and what its last I/O
 * call waited for. The only place interest is decided. */
static void update_interest(struct zg_conn *c)
{
	struct zg_side *sides[2] = {&c->down, &c->up};

	for (int i = 0; i < 2; i++) {
		struct zg_side *s = sides[i];
		uint32_t ev = 0;

		if (s->fd < 0)
			continue;
		switch (c->state) {
		case ZG_CS_HANDSHAKE_IN:
		case ZG_CS_HANDSHAKE_OUT:
		case ZG_CS_INSPECTING:
		case ZG_CS_RELAYING:
			ev = (s->want & ZG_WANT_READ ? EPOLLIN : 0) |
			     (s->want & ZG_WANT_WRITE ? EPOLLOUT : 0);
			break;
		case ZG_CS_CONNECTING:
			ev = s == &c->up ? EPOLLOUT : 0;
			break;
		case ZG_CS_ACCEPTED:
		case ZG_CS_CLOSED:
			return;
		}
		if (c->h->ops->watch(c->h, s, ev) < 0) { /* 0: out of the epoll set */
			zg_conn_close(c, ZG_R_NO_MEMORY, "cannot watch the socket");
			return;
		}
	}
}

/* Replace identity string *@dst (heap or the static "") by a copy of
 * @src at its length; "" needs no copy. 0, or -1 out of memory (*@dst
 * is then ""). */
static int ident_set(const char **dst, const char *src)
{
	char *copy = NULL;

	if (**dst)
		free((char *)*dst);
	*dst = "";
	if (!src[0])
		return 0;
	if (!(copy = strdup(src)))
		return -1;
	*dst = copy;
	return 0;
}

/* Keep the certificate identity of the hop @s just authenticated in that
 * hop's own fields: a client certificate with an empty subject must not
 * let the upstream's identity stand in for it. 0, or -1 out of memory. */
static int note_identity(struct zg_conn *c, const struct zg_side *s)
{
	char subject[ZG_IDENT_MAX], sans[ZG_IDENT_MAX];
	const char **ps = s == &c->down ? &c->subject : &c->up_subject;
	const char **pn = s == &c->down ? &c->sans : &c->up_sans;

	zg_tls_peer_identity(s->ssl, subject, sizeof(subject), sans, sizeof(sans));
	return ident_set(ps, subject) < 0 || ident_set(pn, sans) < 0 ? -1 : 0;
}

/* Identity binding for a resumed session, which skipped the verification
 * in which tls.c binds a full handshake: the certificate on @ssl and the
 * address at the other end (@addr) must still belong to the same
 * participant, one the route admits. ZG_R_OK, or the reason with @detail. */
static enum zg_reason bind_identity(const struct zg_conn *c, SSL *ssl, const uint8_t addr[16],
				    const struct zg_peers *peers, char *detail, size_t cap)
{
	if (!c->snap->dir || !SSL_session_reused(ssl))
		return ZG_R_OK;
	return zg_directory_check_peer(c->snap->dir, time(NULL), addr, SSL_get0_peer_certificate(ssl),
				       peers, detail, cap);
}

static void upstream_addr16(const struct zg_conn *c, uint8_t out[16])
{
	if (zg_prefix_addr_from_sockaddr((const struct sockaddr *)&c->upstream_addr.ss, out) < 0)
		memset(out, 0, 16);
}

/* The OCSP check of the peer on @s, whose handshake is complete, under the
 * store that judged it (route listen_trust / connect_trust).
 * 1 go on, 0 wait (the connection is parked: no epoll interest; the tick
 * asks again), -1 refused with the reason in *@why and @detail. A peer
 * admitted by soft fail without an answer is logged here and flagged for
 * the close line and the audit record. */
static int ocsp_check(struct zg_conn *c, struct zg_side *s, enum zg_reason *why, char *detail,
		      size_t cap)
{
	const struct zg_conf_trust *t = zg_route_trust(c->snap->conf, c->route->conf, s == &c->up);
	char d[200];
	int soft = 0;

	if (t->ocsp == ZG_OCSP_OFF)
		return 1;
	if (!zg_ocsp_check_peer(c->h->ocsp, s->ssl, t, why, &soft, detail, cap)) {
		c->ocsp_wait = 1;
		s->want = 0;
		return 0;
	}
	c->ocsp_wait = 0;
	if (*why != ZG_R_OK)
		return -1;
	if (soft) {
		c->ocsp_soft = 1;
		zg_warn("event=ocsp_soft_fail route=%s id=%u.%llu side=%s reason=%s detail=%s",
			c->route->conf->name, c->h->index, (unsigned long long)c->id,
			s == &c->down ? "client" : "upstream", zg_reason_code(ZG_R_CERT_OCSP_UNAVAILABLE),
			zg_log_quote(d, sizeof(d), detail));
	}
	return 1;
}

/* The client's TLS handshake step; on success, the upstream starts. */
static void step_handshake_in(struct zg_conn *c)
{
	char detail[160] = "";
	enum zg_reason r = ZG_R_OK;
	int rc = handshake(&c->down, &c->verdict_in, &r, detail, sizeof(detail));

	if (rc < 0)
		zg_conn_close(c, r, detail);
	if (rc != 1)
		return;
	if (!c->ocsp_wait)
		zg_hist_observe(&c->h->ctr->handshake_in, c->h->now_ms - c->step_ms);
	c->down.want = 0;
	rc = ocsp_check(c, &c->down, &r, detail, sizeof(detail));
	if (rc < 0)
		zg_conn_close(c, r, detail);
	if (rc != 1)
		return;
	if (note_identity(c, &c->down) < 0) {
		zg_conn_close(c, ZG_R_NO_MEMORY, "cannot keep the peer identity");
		return;
	}
	r = bind_identity(c, c->down.ssl, c->peer16, &c->route->conf->peers, detail, sizeof(detail));
	if (r != ZG_R_OK) {
		zg_conn_close(c, r, detail);
		return;
	}
	client_ready(c);
}

/* The upstream TLS handshake step: a failure (the handshake, or the
 * certificate refused) moves on to the next member of the pool. */
static void step_handshake_out(struct zg_conn *c)
{
	char detail[160] = "";
	enum zg_reason r = ZG_R_OK;
	int rc = handshake(&c->up, &c->verdict_out, &r, detail, sizeof(detail));

	if (rc < 0)
		attempt_failed(c, r, detail, 1);
	if (rc != 1)
		return;
	if (!c->ocsp_wait)
		zg_hist_observe(&c->h->ctr->handshake_out, c->h->now_ms - c->step_ms);
	c->up.want = 0;
	rc = ocsp_check(c, &c->up, &r, detail, sizeof(detail));
	if (rc < 0)
		attempt_failed(c, r, detail, 1);
	if (rc != 1)
		return;
	r = bind_identity(c, c->up.ssl, c->upstream16, outbound_peers(c), detail, sizeof(detail));
	if (r != ZG_R_OK) {
		attempt_failed(c, r, detail, 1);
		return;
	}
	if (note_identity(c, &c->up) < 0) {
		zg_conn_close(c, ZG_R_NO_MEMORY, "cannot keep the upstream identity");
		return;
	}
	start_relay(c);
}

static void step(struct zg_conn *c)
{
	enum zg_reason r;
	uint64_t moved;

	for (;;) {
		enum zg_conn_state before = c->state;

		switch (c->state) {
		case ZG_CS_HANDSHAKE_IN:
			step_handshake_in(c);
			break;
		case ZG_CS_INSPECTING:
			switch (zg_clinical_step(c)) {
			case 1:
				start_upstream(c);
				break;
			case -1:
				zg_conn_close(c, c->clin.end,
					      c->clin.end_detail[0] ? c->clin.end_detail : NULL);
				break;
			}
			break;
		case ZG_CS_CONNECTING:
			break; /* waits for the upstream socket to become writable */
		case ZG_CS_HANDSHAKE_OUT:
			step_handshake_out(c);
			break;
		case ZG_CS_RELAYING:
			moved = c->relay.d2u.bytes + c->relay.u2d.bytes;
			r = zg_relay_step(&c->relay, &c->down, &c->up, c->h->now_ms);
			if (r == ZG_R_UPSTREAM_RESET || (r == ZG_R_TLS_PEER_ALERT && c->up.peer_alert)) {
				upstream_lost(c, r, NULL);
				break;
			}
			if (r != ZG_R_OK) {
				zg_conn_close(c, r, zg_clinical_detail(c, r));
				break;
			}
			if (c->relay.d2u.bytes + c->relay.u2d.bytes != moved &&
			    ++c->busy_steps == BUSY_STEPS && !c->buffers_kept)
				keep_buffers(c, 1);
			if (c->relay.more)
				c->h->ops->defer(c->h, c);
			c->wake_ns = c->relay.wake_ns;
			if (c->wake_ns)
				c->h->ops->throttle(c->h, c);
			break;
		case ZG_CS_ACCEPTED:
		case ZG_CS_CLOSED:
			return;
		}
		if (c->state == before || c->state == ZG_CS_CLOSED)
			break;
	}
	if (c->state != ZG_CS_CLOSED)
		update_interest(c);
}

/* @side failed while relaying: the client's failure closes; the
 * upstream's may move the client to the next pool member (upstream_lost). */
static void side_lost(struct zg_conn *c, struct zg_side *side, enum zg_reason r, const char *detail)
{
	if (side != &c->up) {
		zg_conn_close(c, r, detail);
		return;
	}
	upstream_lost(c, r, detail);
	if (c->state != ZG_CS_CLOSED)
		update_interest(c);
}

/* The socket of @side reported an error or a hang-up while relaying.
 * Read what it still holds first: a close_notify queued before a RST ends
 * the peer's stream cleanly (issue 10 item 6). Then the side is either
 * finished cleanly or failed; it never stays in the epoll set with an
 * error pending (epoll would report it on every wait). */
static void side_failed(struct zg_conn *c, struct zg_side *side, uint32_t events)
{
	enum zg_reason reset = side == &c->down ? ZG_R_CLIENT_RESET : ZG_R_UPSTREAM_RESET;
	int err = 0;
	socklen_t len = sizeof(err);

	step(c);
	if (c->state != ZG_CS_RELAYING || !side->registered)
		return;
	if (zg_relay_peer_finished(&c->relay, side, &c->down)) {
		step(c); /* the relay may be complete now; recomputes interest */
		return;
	}
	if (events & EPOLLERR) {
		if (getsockopt(side->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		side_lost(c, side, reset, err ? strerror(err) : NULL);
		return;
	}
	if (side->eof && !side->shut &&
	    (side == &c->down ? c->relay.u2d.tail == c->relay.u2d.head
			      : c->relay.d2u.tail == c->relay.d2u.head)) {
		/* HUP on a side that still expects our FIN: it was reset and
		 * nothing is left to deliver to it. */
		side_lost(c, side, reset, "hang-up");
	}
}

void zg_conn_event(struct zg_conn *c, struct zg_side *side, uint32_t events)
{
	if (c->state == ZG_CS_CLOSED)
		return;
	if (c->state == ZG_CS_CONNECTING) {
		if (side == &c->up)
			connected(c);
		if (c->state != ZG_CS_CLOSED)
			step(c);
		return;
	}
	zg_relay_ready(side, (events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? ZG_WANT_READ : 0) |
				     (events & (EPOLLOUT | EPOLLERR | EPOLLHUP) ? ZG_WANT_WRITE : 0));
	if (c->state == ZG_CS_RELAYING && (events & (EPOLLERR | EPOLLHUP))) {
		side_failed(c, side, events);
		return;
	}
	step(c);
}

/* Only a finished handshake has a peer certificate to judge. */
static int hs_done(SSL *ssl)
{
	return ssl && SSL_is_init_finished(ssl);
}

/* The name of the store that verified hop @outbound of @c (in the
 * snapshot its handshake ran under). */
static const char *hop_store(const struct zg_conn *c, int outbound)
{
	return zg_route_trust(c->snap->conf, c->route->conf, outbound)->name;
}

/* A context of @snap verifying against the store called @store, or NULL:
 * CRLs belong to a trust store, so a connection whose route was removed,
 * renamed or changed mode is judged by its own store's new CRLs, never by
 * another store's. */
static SSL_CTX *store_ctx(const struct zg_snapshot *snap, const char *store)
{
	for (unsigned i = 0; i < snap->n_routes; i++) {
		const struct zg_route_rt *o = &snap->routes[i];
		if (o->tls_in && strcmp(zg_route_trust(snap->conf, o->conf, 0)->name, store) == 0)
			return o->tls_in;
		if (o->tls_out && strcmp(zg_route_trust(snap->conf, o->conf, 1)->name, store) == 0)
			return o->tls_out;
	}
	return NULL;
}

/* Hop @outbound of @c (handshake done) under @snap, whose route is @rt (or
 * NULL): while the route side keeps its store, the new CRLs of that store;
 * once a reload moved the side to another store, the whole chain verified
 * again by the new store and rules (a peer of the old domain is not one of
 * the new). ZG_R_OK, or the reason with @detail. */
static enum zg_reason judge_hop(const struct zg_conn *c, const struct zg_snapshot *snap,
				const struct zg_route_rt *rt, int outbound, char *detail, size_t cap)
{
	SSL *ssl = outbound ? c->up.ssl : c->down.ssl;
	SSL_CTX *own = rt ? (outbound ? rt->tls_out : rt->tls_in) : NULL;
	const char *store = hop_store(c, outbound), *now;
	SSL_CTX *ctx = own;
	enum zg_reason r;
	char d[160];

	if (own && strcmp((now = zg_route_trust(snap->conf, rt->conf, outbound)->name), store) != 0) {
		/* the log names the move: the rejudge's own text speaks of handshakes */
		r = zg_tls_rejudge(ssl, own, outbound ? rt->conf->server_name : NULL, d, sizeof(d));
		if (r != ZG_R_OK)
			snprintf(detail, cap, "trust %.20s -> %.20s: %.100s", store, now, d);
		return r;
	}
	if (!ctx)
		ctx = store_ctx(snap, store);
	if (ctx && zg_tls_peer_revoked(ssl, ctx, detail, cap))
		return ZG_R_TLS_CERT_REVOKED;
	return ZG_R_OK;
}

/* @c judged by the rules of @snap, its directory and its CRLs, on every
 * hop whose handshake is done (an inbound hop still in its handshake: by
 * its address). ZG_R_OK, or the reason with @detail. */
static enum zg_reason judge(const struct zg_conn *c, const struct zg_snapshot *snap, char *detail,
			    size_t cap)
{
	const struct zg_route_rt *rt = zg_snapshot_route(snap, c->route->conf->name);
	const struct zg_peers *peers = rt ? &rt->conf->peers : &c->route->conf->peers;
	const struct zg_peers *up_peers = c->route->conf->mode == ZG_MODE_WRAP ? peers : NULL;
	enum zg_reason r = ZG_R_OK;
	time_t now = time(NULL);

	if (snap->dir && zg_route_tls_in(c->route->conf) && hs_done(c->down.ssl))
		r = zg_directory_check_peer(snap->dir, now, c->peer16,
					    SSL_get0_peer_certificate(c->down.ssl), peers, detail, cap);
	else if (snap->dir && zg_route_tls_in(c->route->conf))
		r = zg_directory_check_addr(snap->dir, now, c->peer16, peers, NULL, detail, cap);
	if (r == ZG_R_OK && snap->dir && hs_done(c->up.ssl))
		r = zg_directory_check_peer(snap->dir, now, c->upstream16,
					    SSL_get0_peer_certificate(c->up.ssl), up_peers, detail, cap);
	if (r == ZG_R_OK && hs_done(c->down.ssl))
		r = judge_hop(c, snap, rt, 0, detail, cap);
	if (r == ZG_R_OK && hs_done(c->up.ssl))
		r = judge_hop(c, snap, rt, 1, detail, cap);
	return r;
}

void zg_conn_recheck(struct zg_conn *c, const struct zg_snapshot *snap, unsigned grace_ms)
{
	char detail[160] = "", p[64], d[200];
	enum zg_reason r;

	if (c->state == ZG_CS_CLOSED)
		return;
	r = judge(c, snap, detail, sizeof(detail));
	if (r == ZG_R_OK) {
		if (c->revoke_at_ms) /* a later directory allows it again */
			zg_info("event=reprieved route=%s id=%u.%llu", c->route->conf->name, c->h->index,
				(unsigned long long)c->id);
		c->revoke_at_ms = 0;
		return;
	}
	if (c->revoke_at_ms)
		return; /* already counting down from the first disallowing reload */
	c->revoke_at_ms = c->h->now_ms + grace_ms;
	c->revoke_reason = r;
	zg_sockaddr_format((const struct sockaddr *)&c->peer.ss, p, sizeof(p));
	zg_warn("event=revoked route=%s id=%u.%llu peer=%s reason=%s grace_ms=%u detail=%s",
		c->route->conf->name, c->h->index, (unsigned long long)c->id, p, zg_reason_code(r),
		grace_ms, zg_log_quote(d, sizeof(d), detail));
}

void zg_conn_resume(struct zg_conn *c)
{
	c->deferred = 0;
	if (c->state != ZG_CS_CLOSED)
		step(c);
}

void zg_conn_wake(struct zg_conn *c)
{
	if (c->state != ZG_CS_CLOSED)
		step(c);
}

void zg_conn_check_deadline(struct zg_conn *c, uint64_t now_ms)
{
	if (c->revoke_at_ms && now_ms >= c->revoke_at_ms) {
		zg_conn_close(c, c->revoke_reason, "no longer allowed after reload");
		return;
	}
	/* parked for an OCSP answer: ask again (ocsp.h: never wait on the network) */
	if (c->ocsp_wait && now_ms < c->deadline_ms) {
		step(c);
		if (c->state == ZG_CS_CLOSED)
			return;
	}
	switch (c->state) {
	case ZG_CS_HANDSHAKE_IN:
		if (now_ms >= c->deadline_ms)
			zg_conn_close(c, ZG_R_HANDSHAKE_TIMEOUT,
				      c->ocsp_wait ? "no OCSP answer within handshake_timeout" : NULL);
		break;
	case ZG_CS_HANDSHAKE_OUT:
		/* accepts and never answers (a stopped process): next member */
		if (now_ms < c->deadline_ms)
			break;
		attempt_failed(c, ZG_R_HANDSHAKE_TIMEOUT, "upstream did not finish the TLS handshake", 1);
		if (c->state != ZG_CS_CLOSED)
			update_interest(c);
		break;
	case ZG_CS_INSPECTING:
		if (now_ms >= c->deadline_ms)
			zg_conn_close(c, ZG_R_HANDSHAKE_TIMEOUT,
				      "no complete first PDU within handshake_timeout");
		break;
	case ZG_CS_CONNECTING:
		if (now_ms < c->deadline_ms)
			break;
		attempt_failed(c, ZG_R_CONNECT_TIMEOUT, "no answer within connect_timeout", 0);
		if (c->state != ZG_CS_CLOSED)
			update_interest(c);
		break;
	case ZG_CS_RELAYING:
		if (now_ms - c->relay.last_activity_ms >= c->route->conf->idle_timeout_ms) {
			zg_conn_close(c, ZG_R_IDLE_TIMEOUT, NULL);
			break;
		}
		if (c->buffers_kept && c->busy_steps == 0)
			keep_buffers(c, 0);
		c->busy_steps = 0;
		break;
	case ZG_CS_ACCEPTED:
	case ZG_CS_CLOSED:
		break;
	}
}

void zg_conn_close(struct zg_conn *c, enum zg_reason reason, const char *detail)
{
	if (c->state == ZG_CS_CLOSED)
		return;
	zg_record_close(c, reason, detail);
	count_end(c->h, c->route, reason);
	if (c->state != ZG_CS_RELAYING && !c->attached)
		atomic_fetch_add(&c->route->stats->refused, 1);
	if (c->member_counted && c->member->health)
		zg_health_conn_end(c->member->health);
	c->member_counted = 0;
	c->state = ZG_CS_CLOSED;
	/* Leave the epoll set before closing: an epoll entry belongs to the
	 * open file, not the fd, so a duplicate (a key process being forked
	 * at this instant holds one until its exec) would keep reporting
	 * events for this freed connection. */
	if (c->down.fd >= 0) {
		(void)c->h->ops->watch(c->h, &c->down, 0);
		close(c->down.fd);
	}
	if (c->up.fd >= 0) {
		(void)c->h->ops->watch(c->h, &c->up, 0);
		close(c->up.fd);
	}
	if (c->spare_fd >= 0)
		close(c->spare_fd);
	c->down.fd = c->up.fd = c->spare_fd = -1;
	atomic_fetch_sub(c->h->active_total, 1);
	atomic_fetch_sub(&c->route->stats->active, 1);
	if (c->participant_slot)
		zg_directory_release(c->participant_slot);
	c->participant_slot = NULL;
	if (c->cls)
		zg_shape_release(c->cls);
	c->cls = NULL;
	c->h->ops->closed(c->h, c);
}

void zg_conn_free(struct zg_conn *c)
{
	SSL_free(c->down.ssl);
	SSL_free(c->up.ssl);
	zg_relay_free(&c->relay);
	zg_clinical_free(&c->clin);
	zg_snapshot_unref(c->snap);
	(void)ident_set(&c->subject, "");
	(void)ident_set(&c->sans, "");
	(void)ident_set(&c->up_subject, "");
	(void)ident_set(&c->up_sans, "");
	c->magic = 0;
	c->down.magic = c->up.magic = 0;
	free(c);
}
