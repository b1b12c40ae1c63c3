/* audit.c - the audit thread: queue -> spool + local file -> collector.
 * See audit.h for the contract and docs/audit.md for the guarantee. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/agg.h"
#include "audit/audit.h"
#include "audit/file.h"
#include "audit/msg.h"
#include "audit/spool.h"
#include "audit/syslog.h"
#include "base/log.h"

#define TAKE_MAX 64               /* events moved from the queue per round */
#define SEND_BYTES (256u * 1024u) /* spool bytes per delivery batch */
#define SEND_RECS 64              /* records per connection: the most a resend repeats */
#define RETRY_MIN_MS 250
#define FLIGHT_POLL_MS 50         /* wait for a collector's close per round */
#define SUMMARIES_MAX 16          /* aggregated refusal records written per round */
#define RESERVED 4                /* queue slots kept for the records of start and stop */
#define QUEUE_GROW_MIN 16384      /* records that cannot be refused grow the queue this far */

struct zg_audit {
	struct zg_audit_conf conf;
	char source_id[ZG_AUDIT_NAME_MAX];

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct zg_audit_event *q; /* ring of qcap events */
	unsigned qhead, qlen, qcap;
	unsigned qmax;            /* the most it grows to for records that cannot be refused */
	uint64_t lost;            /* records dropped, queue full beyond qmax (or at stop) */
	int loss_logged;          /* this loss episode was logged */
	int stopping;
	pthread_t thread;
	struct zg_agg agg; /* refusals folded per source and reason; under mu */

	/* The spool is shared by the audit (intake) thread, which appends, and
	 * the delivery thread, which reads and commits: under smu, never held
	 * across network I/O, so intake waits on the disk only, never on the
	 * collector. Lock order: mu, then smu. */
	pthread_mutex_t smu;
	pthread_cond_t dcv;     /* wakes the delivery thread: records written, or stop */
	pthread_cond_t room_cv; /* the delivery thread confirmed records (room at stop) */
	int dstop;              /* under smu: final round, then exit */
	int inflight;           /* under smu: a.batch is out, from peek to settle */
	pthread_t dthread;
	int dthread_started;
	int sent;               /* delivery thread: a.batch was sent, confirmation pending */

	/* audit thread only */
	struct zg_spool *spool;
	struct zg_audit_file *file;
	struct zg_syslog *sys;
	uint64_t next_seq;
	struct zg_audit_event held[TAKE_MAX]; /* taken but not yet written */
	unsigned nheld, held_pos;
	char xml[ZG_AUDIT_XML_MAX];
	struct zg_spool_batch batch;
	/* delivery thread only */
	struct timespec next_try;
	unsigned backoff_ms;
	int stopping_last;            /* writing the last refusal record: no share limit */
	int force_write;              /* writing the loss record: even beyond spool_max_bytes */
	uint64_t lost_recorded;       /* of a->lost, how many a loss record states */
	int file_failing, spool_failing; /* log transitions only */

	atomic_int accepting;
	atomic_int collector_up;
	atomic_uint_fast64_t emitted, queue_dropped, spooled, last_seq, delivered, spool_dropped;
	atomic_uint_fast64_t spool_bytes, spool_corrupt; /* copies for zg_audit_get_stats */
	atomic_uint_fast64_t refusals_folded, lost_total;
};

void zg_audit_conf_defaults(struct zg_audit_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->transport = ZG_AUDIT_TLS;
	c->spool_max_bytes = 64ull << 20;
	c->full_policy = ZG_AUDIT_REFUSE_NEW;
	c->verbosity = ZG_AUDIT_V_CONNECTIONS;
	c->queue_len = 4096;
	c->retry_max_ms = 30000;
	c->io_timeout_ms = 5000;
	c->ack_timeout_ms = 60000;
}

static void inherit(char *dst, size_t cap, const char *src)
{
	if (!dst[0] && src)
		snprintf(dst, cap, "%s", src);
}

void zg_audit_conf_inherit(struct zg_audit_conf *c, const char *certificate, const char *chain,
			   const char *key, const char *trust_anchors, const char *profile)
{
	if (!c->certificate[0])
		inherit(c->chain, sizeof(c->chain), chain);
	inherit(c->certificate, sizeof(c->certificate), certificate);
	inherit(c->key, sizeof(c->key), key);
	inherit(c->ca, sizeof(c->ca), trust_anchors);
	inherit(c->profile, sizeof(c->profile), profile);
}

int zg_audit_transport_parse(const char *s, enum zg_audit_transport *out)
{
	if (strcmp(s, "tls") == 0)
		*out = ZG_AUDIT_TLS;
	else if (strcmp(s, "udp") == 0)
		*out = ZG_AUDIT_UDP;
	else
		return -1;
	return 0;
}

int zg_audit_full_policy_parse(const char *s, enum zg_audit_full_policy *out)
{
	if (strcmp(s, "refuse-new-connections") == 0)
		*out = ZG_AUDIT_REFUSE_NEW;
	else if (strcmp(s, "drop-oldest") == 0)
		*out = ZG_AUDIT_DROP_OLDEST;
	else
		return -1;
	return 0;
}

int zg_audit_verbosity_parse(const char *s, enum zg_audit_verbosity *out)
{
	if (strcmp(s, "alerts") == 0)
		*out = ZG_AUDIT_V_ALERTS;
	else if (strcmp(s, "connections") == 0)
		*out = ZG_AUDIT_V_CONNECTIONS;
	else
		return -1;
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int mono_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void mono_after_ms(struct timespec *t, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000;
	if (t->tv_nsec >= 1000000000) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000;
	}
}

/* Double the ring (at most to qmax + RESERVED), keeping the order. Lock
 * held. 0, or -1 at the limit or out of memory. */
static int grow_locked(struct zg_audit *a)
{
	unsigned cap = a->qcap * 2 > a->qmax + RESERVED ? a->qmax + RESERVED : a->qcap * 2;
	struct zg_audit_event *q;

	if (cap <= a->qcap || !(q = calloc(cap, sizeof(*q))))
		return -1;
	for (unsigned i = 0; i < a->qlen; i++)
		q[i] = a->q[(a->qhead + i) % a->qcap];
	free(a->q);
	a->q = q;
	a->qhead = 0;
	a->qcap = cap;
	return 0;
}

/* Queue @ev if fewer than @limit are queued, growing the ring when @limit
 * is beyond it; the lock is held. RESERVED slots beyond any limit but the
 * stop's are kept for the records of start and stop. */
static int enqueue_locked(struct zg_audit *a, const struct zg_audit_event *ev, unsigned limit)
{
	struct zg_audit_event *slot;

	if (a->qlen >= limit || (a->qlen >= a->qcap && grow_locked(a) != 0))
		return -1;
	slot = &a->q[(a->qhead + a->qlen) % a->qcap];
	*slot = *ev;
	if (slot->ts_ns == 0)
		slot->ts_ns = now_ns();
	a->qlen++;
	return 0;
}

/* A refusal: recorded as it comes if it is the first of its source and
 * reason this interval and the queue is less than half full, else folded
 * into the count of a later aggregated record. Never refuses. */
static int emit_refusal(struct zg_audit *a, const struct zg_audit_event *ev)
{
	int may, queued = 0;

	pthread_mutex_lock(&a->mu);
	may = a->qlen < a->conf.queue_len / 2;
	if (zg_agg_note(&a->agg, ev, mono_ms(), may) == ZG_AGG_RECORD)
		queued = enqueue_locked(a, ev, a->conf.queue_len) == 0;
	if (queued)
		pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	atomic_fetch_add(queued ? &a->emitted : &a->refusals_folded, 1);
	return 0;
}

/* A record dropped: counted, the first of an episode logged; the audit
 * thread writes a record stating how many (write_loss). Lock held. */
static void lose_locked(struct zg_audit *a, enum zg_audit_kind k)
{
	a->lost++;
	atomic_fetch_add(&a->lost_total, 1);
	if (a->loss_logged)
		return;
	a->loss_logged = 1;
	zg_err("event=audit_record_lost kind=%s queue=%u detail=\"in-memory queue full; every "
	       "loss is counted and stated by a 110133 record\"", zg_audit_kind_name(k), a->qlen);
}

int zg_audit_emit(struct zg_audit *a, const struct zg_audit_event *ev)
{
	int rc, refusable;

	if (!a)
		return 0;
	if (ev->kind == ZG_AUDIT_NODE_AUTH_FAILURE && ev->count == 0)
		return emit_refusal(a, ev);
	if (a->conf.verbosity == ZG_AUDIT_V_ALERTS &&
	    (ev->kind == ZG_AUDIT_CONN_ATTACH || ev->kind == ZG_AUDIT_CONN_DETACH))
		return 0;
	/* Only a new connection can be refused instead of recorded; the record
	 * of one that ends (detach), of a reload, or anything under drop-oldest
	 * grows the queue rather than go missing. */
	refusable = ev->kind == ZG_AUDIT_CONN_ATTACH && a->conf.full_policy == ZG_AUDIT_REFUSE_NEW;
	pthread_mutex_lock(&a->mu);
	rc = enqueue_locked(a, ev, refusable ? a->conf.queue_len : a->qmax);
	if (rc == 0)
		pthread_cond_signal(&a->cv);
	else if (!refusable)
		lose_locked(a, ev->kind);
	pthread_mutex_unlock(&a->mu);
	if (rc != 0) {
		if (refusable)
			atomic_fetch_add(&a->queue_dropped, 1);
		return a->conf.full_policy == ZG_AUDIT_REFUSE_NEW ? -1 : 0;
	}
	atomic_fetch_add(&a->emitted, 1);
	return atomic_load(&a->accepting) ? 0 : -1;
}

int zg_audit_accepting(const struct zg_audit *a)
{
	return a ? atomic_load_explicit(&a->accepting, memory_order_relaxed) : 1;
}

void zg_audit_get_stats(const struct zg_audit *a, struct zg_audit_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!a)
		return;
	out->emitted = atomic_load(&a->emitted);
	out->queue_dropped = atomic_load(&a->queue_dropped);
	out->spooled = atomic_load(&a->spooled);
	out->last_seq = atomic_load(&a->last_seq);
	out->delivered = atomic_load(&a->delivered);
	out->spool_dropped = atomic_load(&a->spool_dropped);
	out->spool_bytes = atomic_load(&a->spool_bytes);
	out->spool_corrupt = atomic_load(&a->spool_corrupt);
	out->refusals_folded = atomic_load(&a->refusals_folded);
	out->lost = atomic_load(&a->lost_total);
	out->spool_full = !atomic_load(&a->accepting);
	out->collector_up = atomic_load(&a->collector_up) > 0;
}

static void set_full(struct zg_audit *a, int full)
{
	if (atomic_exchange(&a->accepting, !full) == !full)
		return;
	if (full)
		zg_err("event=audit_spool_full policy=refuse-new-connections bytes=%" PRIu64
		       " max=%" PRIu64, zg_spool_bytes(a->spool), a->conf.spool_max_bytes);
	else
		zg_info("event=audit_spool_ok bytes=%" PRIu64, zg_spool_bytes(a->spool));
}

/* Make room for @len bytes. 0 = room, -1 = full and the policy says hold.
 * smu held. */
static int spool_room(struct zg_audit *a, uint32_t len)
{
	while (zg_spool_full(a->spool, len)) {
		long n;
		if (a->conf.full_policy == ZG_AUDIT_REFUSE_NEW) {
			set_full(a, 1);
			return -1;
		}
		if (a->inflight)
			return -1; /* the batch out points into the spool */
		n = zg_spool_drop_oldest(a->spool);
		if (n < 0)
			return -1;
		atomic_fetch_add(&a->spool_dropped, (uint64_t)n);
		atomic_store(&a->delivered, zg_spool_delivered(a->spool));
		zg_err("event=audit_spool_full policy=drop-oldest dropped=%ld", n);
	}
	return 0;
}

/* 1 if a refusal record of @len bytes fits the refusals' share of the
 * spool: half of it, so that refused traffic can never fill the spool that
 * clinical records need (nor, under drop-oldest, push them out). */
static int refusal_room(const struct zg_audit *a, uint32_t len)
{
	return !a->spool ||
	       atomic_load(&a->spool_bytes) + ZG_SPOOL_HDR + len <= a->conf.spool_max_bytes / 2;
}

/* A refusal record that cannot be written now: its count goes back to the
 * aggregator, to be written with a later summary. */
static void refold(struct zg_audit *a, const struct zg_audit_event *ev)
{
	pthread_mutex_lock(&a->mu);
	zg_agg_refold(&a->agg, ev, mono_ms());
	pthread_mutex_unlock(&a->mu);
	atomic_fetch_add(&a->refusals_folded, ev->count ? ev->count : 1);
}

/* Append the rendered a->xml to the spool (smu taken here). 0 = written,
 * 1 = no room (policy says hold), -1 = I/O error (held, logged once). */
static int spool_write(struct zg_audit *a, const struct zg_audit_event *ev, uint32_t len)
{
	int rc = 0;

	pthread_mutex_lock(&a->smu);
	if (!a->force_write && spool_room(a, len) != 0) {
		rc = 1;
	} else if ((a->force_write ? zg_spool_append_over : zg_spool_append)(
			   a->spool, a->next_seq, ev->ts_ns, a->xml, len) != 0) {
		/* disk full or failing: hold the event; the queue then fills and
		 * emit refuses, so the gateway fails closed */
		if (!a->spool_failing)
			zg_err("event=audit_spool_error op=append errno=%d action=holding", errno);
		a->spool_failing = 1;
		rc = -1;
	} else {
		if (a->spool_failing)
			zg_info("event=audit_spool_ok op=append");
		a->spool_failing = 0;
		atomic_store(&a->spool_bytes, zg_spool_bytes(a->spool));
	}
	pthread_mutex_unlock(&a->smu);
	return rc;
}

/* Write one event to the spool and the file. 0 = written (or rendered
 * unwritable and dropped with a log line, or a refusal folded back into
 * the aggregator), -1 = hold it and retry later. */
static int write_event(struct zg_audit *a, const struct zg_audit_event *ev)
{
	struct zg_audit_event marked;
	int len, refusal;

	if (a->conf.mark_test && !ev->test) {
		marked = *ev;
		marked.test = 1;
		snprintf(marked.detail, sizeof(marked.detail), "zonegate audit test: %.200s",
			 ev->detail);
		ev = &marked;
	}
	len = zg_audit_msg_render(ev, a->source_id, a->xml, sizeof(a->xml));
	refusal = ev->kind == ZG_AUDIT_NODE_AUTH_FAILURE && !a->stopping_last;

	if (len < 0) {
		zg_err("event=audit_render_failed kind=%s", zg_audit_kind_name(ev->kind));
		return 0;
	}
	if (a->spool) {
		int rc;
		if (refusal && !refusal_room(a, (uint32_t)len)) {
			refold(a, ev);
			return 0;
		}
		rc = spool_write(a, ev, (uint32_t)len);
		if (rc == 1 && refusal) {
			refold(a, ev);
			return 0;
		}
		if (rc != 0)
			return -1;
	}
	if (a->file) {
		int bad = zg_audit_file_append(a->file, a->next_seq, ev->ts_ns, a->xml, (size_t)len);
		if (bad != a->file_failing)
			zg_log(bad ? ZG_LOG_ERROR : ZG_LOG_INFO, "event=audit_file_%s file=%s",
			       bad ? "error" : "ok", a->conf.file);
		a->file_failing = bad ? 1 : 0;
	}
	atomic_store(&a->last_seq, a->next_seq);
	a->next_seq++;
	atomic_fetch_add(&a->spooled, 1);
	return 0;
}

/* Take events from the queue into held[] (if held[] is empty). Lock held. */
static void take_locked(struct zg_audit *a)
{
	if (a->held_pos < a->nheld)
		return;
	a->nheld = a->held_pos = 0;
	while (a->qlen > 0 && a->nheld < TAKE_MAX) {
		a->held[a->nheld++] = a->q[a->qhead];
		a->qhead = (a->qhead + 1) % a->qcap;
		a->qlen--;
	}
}

/* Copy the spool's counters for zg_audit_get_stats. smu held. */
static void publish_spool(struct zg_audit *a)
{
	if (!a->spool)
		return;
	atomic_store(&a->spool_bytes, zg_spool_bytes(a->spool));
	atomic_store(&a->spool_corrupt, zg_spool_corrupt(a->spool));
}

/* Make what was written durable, in the spool and the file, and wake
 * the delivery thread for it. */
static void sync_sinks(struct zg_audit *a)
{
	if (a->spool) {
		pthread_mutex_lock(&a->smu);
		if (zg_spool_sync(a->spool) != 0)
			zg_err("event=audit_spool_error op=sync errno=%d", errno);
		publish_spool(a);
		pthread_cond_signal(&a->dcv);
		pthread_mutex_unlock(&a->smu);
	}
	if (a->file && zg_audit_file_sync(a->file) != 0)
		zg_err("event=audit_file_error op=sync errno=%d", errno);
}

/* Write the aggregated refusal records that are due (all of them if
 * @all), as far as the refusals' share of the spool allows; the rest keep
 * counting. Returns how many were taken. */
static size_t write_summaries(struct zg_audit *a, int all)
{
	struct zg_audit_event out[SUMMARIES_MAX];
	size_t n;

	if (!all && !refusal_room(a, ZG_AUDIT_XML_MAX))
		return 0;
	pthread_mutex_lock(&a->mu);
	n = zg_agg_due(&a->agg, mono_ms(), all, out, SUMMARIES_MAX);
	pthread_mutex_unlock(&a->mu);
	for (size_t i = 0; i < n; i++) {
		out[i].ts_ns = now_ns();
		if (write_event(a, &out[i]) != 0)
			refold(a, &out[i]);
	}
	return n;
}

/* Stopping: the refusals still counted (no room in their share) become
 * one record, written beyond the share since nothing follows it. Returns
 * how many refusals stay unrecorded (no room in the spool at all). */
static uint64_t write_collapsed(struct zg_audit *a)
{
	struct zg_audit_event ev;
	uint64_t left = 0;
	int any;

	pthread_mutex_lock(&a->mu);
	any = zg_agg_collapse(&a->agg, mono_ms(), &ev);
	pthread_mutex_unlock(&a->mu);
	if (!any)
		return 0;
	ev.ts_ns = now_ns();
	a->stopping_last = 1;
	if (write_event(a, &ev) != 0)
		left = ev.count;
	a->stopping_last = 0;
	return left;
}

/* Write the record stating how many records were lost since the last one
 * (ATNA 110113/110133 Audit Recording Stopped, outcome 8: the trail
 * stopped recording them; docs/audit.md). @force: even beyond
 * spool_max_bytes (at stop, when nothing later could carry it). Not
 * written now (spool full): tried again next round. */
static void write_loss(struct zg_audit *a, int force)
{
	struct zg_audit_event ev;
	uint64_t n;
	int rc;

	pthread_mutex_lock(&a->mu);
	n = a->lost - a->lost_recorded;
	pthread_mutex_unlock(&a->mu);
	if (n == 0)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = ZG_AUDIT_RECORDS_LOST;
	ev.ts_ns = now_ns();
	ev.count = n;
	snprintf(ev.detail, sizeof(ev.detail), "%llu audit records lost before they were given a "
		 "sequence number (in-memory queue full, or no room in the spool at stop)",
		 (unsigned long long)n);
	a->force_write = force;
	rc = write_event(a, &ev);
	a->force_write = 0;
	if (rc != 0)
		return;
	sync_sinks(a);
	pthread_mutex_lock(&a->mu);
	a->lost_recorded += n;
	a->loss_logged = 0;
	pthread_mutex_unlock(&a->mu);
	zg_warn("event=audit_loss_recorded lost=%" PRIu64 " seq=%" PRIu64, n, a->next_seq - 1);
}

static void write_held(struct zg_audit *a)
{
	unsigned before = a->held_pos;
	size_t summaries = write_summaries(a, 0);

	while (a->held_pos < a->nheld && write_event(a, &a->held[a->held_pos]) == 0)
		a->held_pos++;
	write_loss(a, 0);
	if (a->held_pos == before && summaries == 0)
		return;
	sync_sinks(a);
}

static void collector_state(struct zg_audit *a, int up, const char *why)
{
	if (atomic_exchange(&a->collector_up, up) == up)
		return;
	if (up) {
		zg_info("event=audit_collector_up target=%s", a->conf.syslog_target);
	} else {
		char q[300];
		zg_warn("event=audit_collector_down target=%s detail=%s", a->conf.syslog_target,
			zg_log_quote(q, sizeof(q), why && *why ? why : "unknown"));
	}
}

static void delivery_failed(struct zg_audit *a, const char *why)
{
	collector_state(a, 0, why);
	a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : RETRY_MIN_MS;
	if (a->backoff_ms > a->conf.retry_max_ms)
		a->backoff_ms = a->conf.retry_max_ms;
	mono_after_ms(&a->next_try, a->backoff_ms);
}

/* Settle the delivery in flight, waiting up to @wait_ms for the collector to
 * close: commit what it confirmed. Returns 1 while still waiting. */
static int settle_flight(struct zg_audit *a, unsigned wait_ms)
{
	size_t confirmed = 0;
	char why[256] = "";

	if (!a->sent)
		return 0;
	if (zg_syslog_poll(a->sys, wait_ms, &confirmed, why, sizeof(why)) == 1)
		return 1;
	a->sent = 0;
	pthread_mutex_lock(&a->smu);
	a->inflight = 0;
	if (confirmed > 0 && zg_spool_commit(a->spool, &a->batch, confirmed) != 0)
		zg_err("event=audit_spool_error op=commit errno=%d", errno);
	atomic_store(&a->delivered, zg_spool_delivered(a->spool));
	publish_spool(a);
	if (confirmed == a->batch.n && !atomic_load(&a->accepting) &&
	    !zg_spool_full(a->spool, ZG_AUDIT_XML_MAX))
		set_full(a, 0);
	pthread_cond_broadcast(&a->room_cv);
	pthread_mutex_unlock(&a->smu);
	if (confirmed < a->batch.n) {
		delivery_failed(a, why);
		return 0;
	}
	collector_state(a, 1, "");
	a->backoff_ms = 0;
	return 0;
}

/* A spool record the collector can never be sent (zg_syslog_sendable):
 * logged and stated by an audit_records_lost record; the caller skips it. */
static void report_unsendable(struct zg_audit *a, const struct zg_spool_rec *r)
{
	struct zg_audit_event ev;

	zg_err("event=audit_spool_unsendable seq=%" PRIu64 " bytes=%" PRIu32 " action=skipped", r->seq,
	       r->len);
	memset(&ev, 0, sizeof(ev));
	ev.kind = ZG_AUDIT_RECORDS_LOST;
	ev.count = 1;
	snprintf(ev.detail, sizeof(ev.detail), "spool record %" PRIu64 " (%" PRIu32 " bytes) cannot "
		 "be sent as a syslog message (damaged, foreign or too large): skipped, not "
		 "delivered", r->seq, r->len);
	pthread_mutex_lock(&a->mu);
	if (enqueue_locked(a, &ev, a->qmax + RESERVED) == 0)
		pthread_cond_signal(&a->cv);
	else
		lose_locked(a, ev.kind);
	pthread_mutex_unlock(&a->mu);
}

/* Peek the next batch, ending it before the first record that cannot be
 * sent; such a record at the head is skipped (committed unsent) and
 * reported. smu held. Returns the batch size, -1 on a read error. */
static int peek_sendable(struct zg_audit *a, const struct zg_spool_rec **skipped)
{
	int n = zg_spool_peek(a->spool, &a->batch, SEND_BYTES, SEND_RECS);
	size_t i = 0;

	*skipped = NULL;
	while (n > 0 && i < a->batch.n && zg_syslog_sendable(&a->batch.rec[i]))
		i++;
	if (n <= 0 || i == a->batch.n)
		return n;
	if (i > 0) {
		zg_spool_batch_cut(&a->batch, i);
		return (int)i;
	}
	if (zg_spool_commit(a->spool, &a->batch, 1) != 0)
		return -1;
	atomic_store(&a->delivered, zg_spool_delivered(a->spool));
	*skipped = &a->batch.rec[0];
	return 0;
}

/* Send what the spool holds, one batch (connection) at a time, oldest
 * first; never more than one batch in flight, so order is kept. Delivery
 * thread only: the intake goes on writing new events meanwhile. */
static void deliver(struct zg_audit *a)
{
	struct timespec now;
	char why[256];

	for (;;) {
		const struct zg_spool_rec *skipped;
		int n;

		if (settle_flight(a, FLIGHT_POLL_MS) == 1)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (mono_before(&now, &a->next_try))
			return;
		pthread_mutex_lock(&a->smu);
		n = peek_sendable(a, &skipped);
		a->inflight = n > 0; /* the batch points into the spool: no drop-oldest */
		pthread_mutex_unlock(&a->smu);
		if (skipped) {
			report_unsendable(a, skipped); /* rbuf is ours until the next peek */
			continue;
		}
		if (n <= 0) {
			if (n < 0)
				zg_err("event=audit_spool_error op=read errno=%d", errno);
			return;
		}
		if (zg_syslog_send(a->sys, a->batch.rec, a->batch.n, why, sizeof(why)) != 0) {
			pthread_mutex_lock(&a->smu);
			a->inflight = 0;
			pthread_mutex_unlock(&a->smu);
			delivery_failed(a, why);
			return;
		}
		a->sent = 1;
	}
}

/* Sleep until there is something to do; the lock is held. Held events
 * that cannot be written (spool full) are tried again each 100 ms: the
 * delivery thread frees room on its own. */
static void wait_work(struct zg_audit *a)
{
	struct timespec until;
	int blocked = a->held_pos < a->nheld;

	if (!blocked && a->qlen > 0)
		return;
	mono_after_ms(&until, blocked ? 100 : 1000);
	/* aggregated refusal records fall due; not while their share is used
	 * up (they keep counting meanwhile), or this would spin */
	if (refusal_room(a, ZG_AUDIT_XML_MAX)) {
		int64_t due = zg_agg_next_ms(&a->agg, mono_ms());
		struct timespec at;
		if (due == 0)
			return;
		mono_after_ms(&at, due > 0 ? (unsigned)due : 0);
		if (due > 0 && mono_before(&at, &until))
			until = at;
	}
	pthread_cond_timedwait(&a->cv, &a->mu, &until);
}

/* Stopping: deliver what the spool holds, retrying for at most io_timeout
 * if the collector was reachable (a collector already known down is tried
 * once, so a stop does not wait for it). A batch still unconfirmed then is
 * abandoned: it stays in the spool and is sent again by the next start. */
static void final_delivery(struct zg_audit *a)
{
	struct timespec until, now;
	int was_up = atomic_load(&a->collector_up) > 0;

	mono_after_ms(&until, a->conf.io_timeout_ms);
	a->next_try.tv_sec = 0;
	a->next_try.tv_nsec = 0;
	for (;;) {
		int pending;
		deliver(a);
		clock_gettime(CLOCK_MONOTONIC, &now);
		pthread_mutex_lock(&a->smu);
		pending = zg_spool_pending(a->spool);
		pthread_mutex_unlock(&a->smu);
		if ((!a->sent && !pending) || !mono_before(&now, &until))
			break;
		if (!a->sent && mono_before(&now, &a->next_try)) {
			struct timespec nap = {0, 50 * 1000000L};
			if (!was_up)
				break;
			nanosleep(&nap, NULL); /* backing off after a failure */
		}
	}
	if (a->sent)
		zg_warn("event=audit_stop_unconfirmed records=%zu detail=\"the collector did not confirm "
			"in time; they will be sent again\"", a->batch.n);
	a->sent = 0;
	pthread_mutex_lock(&a->smu);
	a->inflight = 0;
	pthread_mutex_unlock(&a->smu);
}

/* Sleep until the spool has something to send and the backoff allows, or
 * the stop; smu held. A batch on the wire is polled by deliver() itself. */
static void delivery_wait(struct zg_audit *a)
{
	struct timespec now, until;

	if (a->sent || a->dstop)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (zg_spool_pending(a->spool)) {
		if (!mono_before(&now, &a->next_try))
			return;
		until = a->next_try;
	} else {
		mono_after_ms(&until, 1000);
	}
	pthread_cond_timedwait(&a->dcv, &a->smu, &until);
}

static void block_sigpipe(void)
{
	sigset_t pipe;

	/* OpenSSL writes to the collector with plain send(): a collector that
	 * went away must give EPIPE here, not kill the process, whatever the
	 * process does with SIGPIPE (a blocked, thread-directed SIGPIPE stays
	 * pending and harmless). */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
}

/* The delivery thread: spool -> collector, with all the waiting on DNS,
 * connects, handshakes and confirmations that intake must never see. */
static void *delivery_main(void *arg)
{
	struct zg_audit *a = arg;

	block_sigpipe();
	pthread_mutex_lock(&a->smu);
	while (!a->dstop) {
		delivery_wait(a);
		if (a->dstop)
			break;
		pthread_mutex_unlock(&a->smu);
		deliver(a);
		pthread_mutex_lock(&a->smu);
	}
	pthread_mutex_unlock(&a->smu);
	final_delivery(a);
	return NULL;
}

/* Stopping, every record written: let the delivery thread make its last
 * round (bounded by io_timeout) and wait for it. */
static void stop_delivery(struct zg_audit *a)
{
	if (!a->dthread_started)
		return;
	pthread_mutex_lock(&a->smu);
	a->dstop = 1;
	pthread_cond_signal(&a->dcv);
	pthread_mutex_unlock(&a->smu);
	pthread_join(a->dthread, NULL);
	a->dthread_started = 0;
}

/* Stopping with records held for lack of room: wait up to io_timeout for
 * the delivery thread to confirm some, if the collector was up. */
static void wait_room(struct zg_audit *a)
{
	struct timespec until;

	if (!a->dthread_started || atomic_load(&a->collector_up) <= 0)
		return;
	mono_after_ms(&until, a->conf.io_timeout_ms);
	pthread_mutex_lock(&a->smu);
	pthread_cond_timedwait(&a->room_cv, &a->smu, &until);
	pthread_mutex_unlock(&a->smu);
}

/* Stopping: write everything still queued, then one last delivery round
 * without backoff. Events that cannot be written (spool full) are lost and
 * counted in the log. */
static void drain_on_stop(struct zg_audit *a)
{
	unsigned lost = 0;
	uint64_t unrecorded;

	/* every refusal counted so far gets its aggregated record; what the
	 * refusals' share has no room for goes into one last record */
	for (int i = 0; i < ZG_AGG_SLOTS / SUMMARIES_MAX + 2 && write_summaries(a, 1) > 0; i++)
		; /* bounded: what does not fit is folded back each round */
	unrecorded = write_collapsed(a);
	sync_sinks(a);
	if (unrecorded)
		zg_err("event=audit_refusals_unrecorded count=%" PRIu64 " reason=spool_full",
		       unrecorded);

	for (int tries = 0;;) {
		unsigned before, queued;
		pthread_mutex_lock(&a->mu);
		take_locked(a);
		queued = a->qlen;
		pthread_mutex_unlock(&a->mu);
		before = a->held_pos;
		write_held(a);
		if (a->held_pos >= a->nheld && queued == 0)
			break;
		if (a->held_pos == before) {
			if (tries++ > 0) {
				lost = a->nheld - a->held_pos + queued;
				break;
			}
			wait_room(a);
		}
	}
	if (lost || unrecorded) {
		zg_err("event=audit_lost_on_stop records=%u refusals=%" PRIu64 " reason=spool_full",
		       lost, unrecorded);
		pthread_mutex_lock(&a->mu);
		a->lost += lost + unrecorded;
		pthread_mutex_unlock(&a->mu);
		atomic_fetch_add(&a->lost_total, lost + unrecorded);
	}
	write_loss(a, 1);
	stop_delivery(a);
	if (a->spool && zg_spool_pending(a->spool))
		zg_warn("event=audit_stop_pending detail=\"undelivered records stay in the spool "
			"for the next start\"");
}

static void *audit_main(void *arg)
{
	struct zg_audit *a = arg;

	block_sigpipe();

	pthread_mutex_lock(&a->mu);
	while (!a->stopping) {
		wait_work(a);
		take_locked(a);
		pthread_mutex_unlock(&a->mu);
		write_held(a);
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	drain_on_stop(a);
	return NULL;
}

static int backfill_one(void *ctx, const struct zg_spool_rec *r)
{
	struct zg_audit *a = ctx;

	return zg_audit_file_append(a->file, r->seq, r->ts_ns, (const char *)r->payload, r->len);
}

/* A crash between the spool's fsync and the file's left records in the
 * spool that the local file lacks (they will still be delivered): append
 * them, so the file stays the complete, chained record. */
static int backfill_file(struct zg_audit *a, uint64_t file_last)
{
	if (zg_spool_each_pending(a->spool, file_last, backfill_one, a) != 0 ||
	    zg_audit_file_sync(a->file) != 0)
		return -1;
	zg_warn("event=audit_file_backfill from_seq=%" PRIu64 " detail=\"records of a crash copied "
		"from the spool\"", file_last + 1);
	return 0;
}

static int open_sinks(struct zg_audit *a, EVP_PKEY *client_key, struct zg_errlist *errs)
{
	char why[512], host[256] = "-";
	struct zg_spool_report rep;
	uint64_t last = 0, file_last = 0;

	if (a->conf.syslog_target[0]) {
		if (gethostname(host, sizeof(host) - 1) != 0)
			snprintf(host, sizeof(host), "%s", a->source_id);
		a->sys = zg_syslog_new(&a->conf, host, client_key, why, sizeof(why));
		if (!a->sys) {
			zg_errlist_add(errs, "audit", 0, "syslog_target", "%s", why);
			return -1;
		}
		if (!a->conf.spool_dir[0]) {
			zg_errlist_add(errs, "audit", 0, "spool_dir", "required with syslog_target");
			return -1;
		}
		a->spool = zg_spool_open(a->conf.spool_dir, a->conf.spool_max_bytes, &rep, why,
					 sizeof(why));
		if (!a->spool) {
			zg_errlist_add(errs, "audit", 0, "spool_dir", "%s", why);
			return -1;
		}
		last = rep.last_seq;
		if (rep.pending || rep.corrupt || rep.torn)
			zg_info("event=audit_spool_replay pending=%" PRIu64 " corrupt=%" PRIu64
				" torn_bytes=%" PRIu64 " delivered=%" PRIu64, rep.pending, rep.corrupt,
				rep.torn, rep.delivered);
		atomic_store(&a->delivered, rep.delivered);
		publish_spool(a);
	}
	if (a->conf.file[0]) {
		a->file = zg_audit_file_open(a->conf.file, &file_last, why, sizeof(why));
		if (!a->file) {
			zg_errlist_add(errs, "audit", 0, "file", "%s", why);
			return -1;
		}
	}
	if (a->spool && a->file && last > file_last && backfill_file(a, file_last) != 0) {
		zg_errlist_add(errs, "audit", 0, "file", "%s: cannot append the records the spool "
			       "holds beyond it", a->conf.file);
		return -1;
	}
	a->next_seq = (last > file_last ? last : file_last) + 1;
	atomic_store(&a->last_seq, a->next_seq - 1);
	if (!a->sys && !a->file)
		zg_warn("event=audit_disabled detail=\"no syslog_target and no file configured\"");
	return 0;
}

static int parent_dir_ok(const char *path, const char *key, struct zg_errlist *errs)
{
	char dir[ZG_AUDIT_PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		zg_errlist_add(errs, "audit", 0, key, "%s: directory %s does not exist", path, dir);
		return -1;
	}
	return 0;
}

int zg_audit_conf_check(const struct zg_audit_conf *conf, struct zg_errlist *errs)
{
	char why[512];
	struct zg_syslog *s;
	int rc = 0;

	if (conf->syslog_target[0]) {
		s = zg_syslog_new(conf, "check", NULL, why, sizeof(why));
		if (!s) {
			zg_errlist_add(errs, "audit", 0, "syslog_target", "%s", why);
			rc = -1;
		}
		zg_syslog_free(s);
		if (!conf->spool_dir[0]) {
			zg_errlist_add(errs, "audit", 0, "spool_dir", "required with syslog_target");
			rc = -1;
		} else if (parent_dir_ok(conf->spool_dir, "spool_dir", errs) != 0) {
			rc = -1;
		} else if (zg_spool_check(conf->spool_dir, why, sizeof(why)) < 0) {
			zg_errlist_add(errs, "audit", 0, "spool_dir", "%s", why);
			rc = -1;
		}
	}
	if (conf->file[0] && parent_dir_ok(conf->file, "file", errs) != 0)
		rc = -1;
	return rc;
}

static void free_audit(struct zg_audit *a)
{
	zg_syslog_free(a->sys);
	zg_spool_close(a->spool);
	zg_audit_file_close(a->file);
	pthread_cond_destroy(&a->cv);
	pthread_cond_destroy(&a->dcv);
	pthread_cond_destroy(&a->room_cv);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->smu);
	free(a->q);
	free(a);
}

static void emit_self(struct zg_audit *a, enum zg_audit_kind k)
{
	struct zg_audit_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = k;
	ev.ts_ns = now_ns();
	snprintf(ev.detail, sizeof(ev.detail), "pid %ld", (long)getpid());
	if (enqueue_locked(a, &ev, a->qmax + RESERVED) != 0)
		lose_locked(a, k);
}

struct zg_audit *zg_audit_start(const struct zg_audit_conf *conf, const char *source_id,
				EVP_PKEY *client_key, struct zg_errlist *errs)
{
	struct zg_audit *a = calloc(1, sizeof(*a));
	pthread_condattr_t ca;

	if (!a) {
		zg_errlist_add(errs, "audit", 0, NULL, "out of memory");
		return NULL;
	}
	a->conf = *conf;
	/* 0 = default, so a zeroed struct works as well as zg_audit_conf_defaults */
	if (a->conf.queue_len == 0)
		a->conf.queue_len = 4096;
	if (a->conf.queue_len < 16)
		a->conf.queue_len = 16;
	if (a->conf.retry_max_ms == 0)
		a->conf.retry_max_ms = 30000;
	if (a->conf.retry_max_ms < RETRY_MIN_MS)
		a->conf.retry_max_ms = RETRY_MIN_MS;
	if (a->conf.io_timeout_ms == 0)
		a->conf.io_timeout_ms = 5000;
	if (a->conf.spool_max_bytes == 0)
		a->conf.spool_max_bytes = 64ull << 20;
	snprintf(a->source_id, sizeof(a->source_id), "%s", source_id);
	atomic_init(&a->accepting, 1);
	zg_agg_init(&a->agg, ZG_AGG_INTERVAL_MS, 1);
	atomic_init(&a->collector_up, -1); /* unknown: the first attempt is logged either way */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_cond_init(&a->dcv, &ca);
	pthread_cond_init(&a->room_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->smu, NULL);
	a->qcap = a->conf.queue_len + RESERVED;
	a->qmax = a->conf.queue_len * 4 > QUEUE_GROW_MIN ? a->conf.queue_len * 4 : QUEUE_GROW_MIN;
	a->q = calloc(a->qcap, sizeof(*a->q));
	if (!a->q || open_sinks(a, client_key, errs) != 0)
		goto fail;
	emit_self(a, ZG_AUDIT_AUDIT_STARTED);
	emit_self(a, ZG_AUDIT_APP_START);
	if (a->sys) {
		if (pthread_create(&a->dthread, NULL, delivery_main, a) != 0) {
			zg_errlist_add(errs, "audit", 0, NULL, "cannot start the delivery thread");
			goto fail;
		}
		a->dthread_started = 1;
	}
	if (pthread_create(&a->thread, NULL, audit_main, a) != 0) {
		zg_errlist_add(errs, "audit", 0, NULL, "cannot start the audit thread");
		stop_delivery(a);
		goto fail;
	}
	return a;
fail:
	free_audit(a);
	return NULL;
}

void zg_audit_stop(struct zg_audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	emit_self(a, ZG_AUDIT_APP_STOP);
	emit_self(a, ZG_AUDIT_AUDIT_STOPPED);
	a->stopping = 1;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	free_audit(a);
}
