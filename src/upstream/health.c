/* health.c - see health.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "base/log.h"
#include "upstream/health.h"

static const char *const fail_names[ZG_FAIL__COUNT] = {
	[ZG_FAIL_REFUSED] = "refused", [ZG_FAIL_TIMEOUT] = "timeout", [ZG_FAIL_RESET] = "reset",
	[ZG_FAIL_TLS] = "tls",         [ZG_FAIL_IDENTITY] = "identity", [ZG_FAIL_CHECK] = "check",
};

const char *zg_fail_kind_name(enum zg_fail_kind k)
{
	return (unsigned)k < ZG_FAIL__COUNT ? fail_names[k] : "unknown";
}

enum zg_fail_kind zg_fail_kind_of(enum zg_reason r)
{
	switch (r) {
	case ZG_R_CONNECT_FAILED:
	case ZG_R_UPSTREAM_UNRESOLVED:
		return ZG_FAIL_REFUSED;
	case ZG_R_CONNECT_TIMEOUT:
	case ZG_R_HANDSHAKE_TIMEOUT:
	case ZG_R_CHECK_TIMEOUT:
		return ZG_FAIL_TIMEOUT;
	case ZG_R_UPSTREAM_RESET:
	case ZG_R_UPSTREAM_CLOSED:
		return ZG_FAIL_RESET;
	case ZG_R_CHECK_BAD_REPLY:
	case ZG_R_CHECK_REJECTED:
		return ZG_FAIL_CHECK;
	default:
		break;
	}
	switch (zg_reason_class(r)) {
	case ZG_CL_POLICY:
		return ZG_FAIL_IDENTITY;
	case ZG_CL_ALERT:
		/* the profile or the peer's TLS stack, not who it is */
		return r == ZG_R_TLS_PROTOCOL || r == ZG_R_TLS_PEER_ALERT || r == ZG_R_TLS_VERSION ||
				       r == ZG_R_TLS_CIPHER
			       ? ZG_FAIL_TLS
			       : ZG_FAIL_IDENTITY;
	case ZG_CL_TIMEOUT:
		return ZG_FAIL_TIMEOUT;
	default:
		return ZG_FAIL_REFUSED;
	}
}

void zg_health_init(struct zg_health *h, const char *name)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
}

int zg_health_usable(const struct zg_health *h, uint64_t now_ms)
{
	return !atomic_load_explicit(&h->check_down, memory_order_relaxed) &&
	       now_ms >= atomic_load_explicit(&h->held_until_ms, memory_order_relaxed);
}

uint64_t zg_health_backoff_ms(unsigned base_ms, unsigned fails)
{
	unsigned shift = fails > 1 ? fails - 1 : 0;

	if (shift > ZG_HOLD_DOWN_DOUBLINGS)
		shift = ZG_HOLD_DOWN_DOUBLINGS;
	return (uint64_t)base_ms << shift;
}

static void mark_change(struct zg_health *h)
{
	atomic_store_explicit(&h->last_change_s, (long long)time(NULL), memory_order_relaxed);
}

int zg_health_passive_fail(struct zg_health *h, enum zg_reason r, unsigned base_ms, uint64_t now_ms,
			   uint64_t *hold_ms)
{
	unsigned n = atomic_fetch_add(&h->passive_fails, 1) + 1;

	*hold_ms = zg_health_backoff_ms(base_ms, n);
	atomic_store(&h->held_until_ms, now_ms + *hold_ms);
	atomic_store(&h->last_reason, (unsigned)r);
	atomic_fetch_add(&h->fails[zg_fail_kind_of(r)], 1);
	if (atomic_exchange(&h->down, 1) != 0)
		return 0;
	mark_change(h);
	return 1;
}

int zg_health_passive_ok(struct zg_health *h)
{
	if (atomic_load_explicit(&h->passive_fails, memory_order_relaxed))
		atomic_store(&h->passive_fails, 0);
	if (atomic_load_explicit(&h->down, memory_order_relaxed) == 0 ||
	    atomic_load(&h->check_down) || atomic_exchange(&h->down, 0) == 0)
		return 0;
	atomic_store(&h->held_until_ms, 0);
	mark_change(h);
	return 1;
}

int zg_health_check_result(struct zg_health *h, enum zg_reason r, unsigned rise, unsigned fall)
{
	if (r == ZG_R_OK) {
		unsigned ok = atomic_fetch_add(&h->check_ok_run, 1) + 1;
		atomic_store(&h->check_fail_run, 0);
		if (!atomic_load(&h->check_down) || ok < rise)
			return 0;
		atomic_store(&h->check_down, 0);
		atomic_store(&h->passive_fails, 0);
		atomic_store(&h->held_until_ms, 0);
		if (atomic_exchange(&h->down, 0) == 0)
			return 0;
		mark_change(h);
		return 1;
	}
	unsigned bad = atomic_fetch_add(&h->check_fail_run, 1) + 1;
	atomic_store(&h->check_ok_run, 0);
	atomic_store(&h->last_reason, (unsigned)r);
	atomic_fetch_add(&h->fails[zg_fail_kind_of(r)], 1);
	if (atomic_load(&h->check_down) || bad < fall)
		return 0;
	atomic_store(&h->check_down, 1);
	if (atomic_exchange(&h->down, 1) != 0)
		return 0;
	mark_change(h);
	return -1;
}

void zg_health_conn_begin(struct zg_health *h)
{
	atomic_fetch_add_explicit(&h->conns_active, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->conns_total, 1, memory_order_relaxed);
}

void zg_health_conn_end(struct zg_health *h)
{
	atomic_fetch_sub_explicit(&h->conns_active, 1, memory_order_relaxed);
}

void zg_health_read(const struct zg_health *h, struct zg_health_view *v)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", h->name);
	v->down = (int)atomic_load(&h->down);
	v->check_down = (int)atomic_load(&h->check_down);
	v->held_until_ms = atomic_load(&h->held_until_ms);
	v->last_reason = (enum zg_reason)atomic_load(&h->last_reason);
	v->last_change_s = atomic_load(&h->last_change_s);
	v->conns_active = atomic_load(&h->conns_active);
	v->conns_total = atomic_load(&h->conns_total);
	for (unsigned k = 0; k < ZG_FAIL__COUNT; k++)
		v->fails[k] = atomic_load(&h->fails[k]);
}

void zg_health_report(struct zg_audit *audit, const char *route, const struct zg_health *h, int down,
		      enum zg_reason r, const char *source, uint64_t hold_ms, const char *detail)
{
	struct zg_audit_event ev;
	char d[200];

	if (down)
		zg_warn("event=upstream_down route=%s endpoint=%s source=%s reason=%s hold_ms=%llu "
			"detail=%s", route, h->name, source, zg_reason_code(r),
			(unsigned long long)hold_ms,
			zg_log_quote(d, sizeof(d), detail && *detail ? detail : zg_reason_text(r)));
	else
		zg_info("event=upstream_up route=%s endpoint=%s source=%s", route, h->name, source);
	if (!audit)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = ZG_AUDIT_UPSTREAM_STATE;
	ev.reason = down ? r : ZG_R_OK;
	snprintf(ev.route, sizeof(ev.route), "%.*s", (int)sizeof(ev.route) - 1, route);
	snprintf(ev.detail, sizeof(ev.detail), "upstream %.200s %s (%s)%s%.40s", h->name,
		 down ? "down" : "up", source, detail && *detail ? ": " : "", detail ? detail : "");
	(void)zg_audit_emit(audit, &ev); /* a full queue is counted by the audit thread */
}
