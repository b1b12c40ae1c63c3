/* audit.h - the IHE ATNA audit trail: public API and its one thread.
 *
 * Callers (workers, the reload path, start/stop) describe what happened in a
 * fixed-size struct zg_audit_event and hand it to zg_audit_emit(), which only
 * copies it into a bounded in-memory queue. The audit thread then, per
 * batch: gives each record the next sequence number, renders the DICOM
 * PS3.15 A.5 XML (audit_msg.h), appends it to the on-disk spool
 * (audit_spool.h) and to the hash-chained local file (audit_file.h) and
 * fsyncs both; a delivery thread sends the spool in order to the syslog
 * collector (audit_syslog.h). A relay never waits on the disk or the
 * collector, and intake never waits on the collector. The delivery
 * guarantee is in docs/audit.md.
 */
#ifndef ZG_AUDIT_H
#define ZG_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "base/errlist.h"
#include "base/reason.h"

#define ZG_AUDIT_HOSTPORT_MAX 300 /* "host:port" / "[v6]:port" */
#define ZG_AUDIT_PATH_MAX 512
#define ZG_AUDIT_NAME_MAX 64
#define ZG_AUDIT_IP_MAX 48        /* INET6_ADDRSTRLEN + slack */
#define ZG_AUDIT_SUBJECT_MAX 256
#define ZG_AUDIT_SAN_MAX 512
#define ZG_AUDIT_PARTICIPANT_MAX 128
#define ZG_AUDIT_DETAIL_MAX 256

enum zg_audit_transport {
	ZG_AUDIT_TLS, /* RFC 5425, octet counting, mutual TLS (default) */
	ZG_AUDIT_UDP, /* RFC 5426, opt-in only: no confidentiality, no delivery */
};

enum zg_audit_full_policy {
	ZG_AUDIT_REFUSE_NEW, /* spool full: refuse new connections (default) */
	ZG_AUDIT_DROP_OLDEST, /* spool full: drop the oldest undelivered records */
};

enum zg_audit_verbosity {
	ZG_AUDIT_V_ALERTS,      /* application, configuration, security events only */
	ZG_AUDIT_V_CONNECTIONS, /* + attach/detach of every connection (default) */
};

/* The [audit] section. Empty strings mean "not configured": no syslog_target
 * = no syslog sink, no file = no local file. The spool is required whenever
 * a syslog target is set. */
struct zg_audit_conf {
	char syslog_target[ZG_AUDIT_HOSTPORT_MAX]; /* host:port; port default 6514 (tls) / 514 (udp) */
	enum zg_audit_transport transport;
	char certificate[ZG_AUDIT_PATH_MAX];       /* client cert; default: [tls] certificate */
	char key[ZG_AUDIT_PATH_MAX];               /* default: [tls] key */
	char chain[ZG_AUDIT_PATH_MAX];             /* intermediates sent after the cert; [tls] chain when
						      the certificate is inherited */
	char ca[ZG_AUDIT_PATH_MAX];                /* collector trust anchors; default: [tls] trust_anchors */
	char profile[ZG_AUDIT_NAME_MAX];           /* TLS profile; default: [tls] profile */
	/* expected name/IP in the collector's certificate; default: the target host */
	char server_name[ZG_AUDIT_HOSTPORT_MAX];
	char file[ZG_AUDIT_PATH_MAX];              /* hash-chained local file */
	char spool_dir[ZG_AUDIT_PATH_MAX];
	uint64_t spool_max_bytes;                  /* default 64 MiB */
	enum zg_audit_full_policy full_policy;
	enum zg_audit_verbosity verbosity;
	unsigned queue_len;                        /* in-memory events; default 4096 */
	unsigned retry_max_ms;                     /* collector reconnect backoff cap; default 30000 */
	unsigned io_timeout_ms;                    /* connect/handshake/write timeout; default 5000 */
	unsigned ack_timeout_ms;                   /* wait for the collector to confirm; default 60000 */
	int mark_test;                             /* `audit test`: every record marked as a test */
};

/* Fill @c with the defaults above (no sinks). */
void zg_audit_conf_defaults(struct zg_audit_conf *c);

/* Fill the syslog TLS settings left empty in @c from the gateway's [tls]
 * section: client certificate with its @chain of intermediates (only when
 * the certificate itself is inherited), key, trust anchors (for the
 * collector) and profile. NULL arguments are skipped. */
void zg_audit_conf_inherit(struct zg_audit_conf *c, const char *certificate, const char *chain,
			   const char *key, const char *trust_anchors, const char *profile);

/* Parse "tls"/"udp", "refuse-new-connections"/"drop-oldest",
 * "alerts"/"connections"; -1 on anything else. */
int zg_audit_transport_parse(const char *s, enum zg_audit_transport *out);
int zg_audit_full_policy_parse(const char *s, enum zg_audit_full_policy *out);
int zg_audit_verbosity_parse(const char *s, enum zg_audit_verbosity *out);

enum zg_audit_kind {
	ZG_AUDIT_APP_START,              /* 110100 / 110120 */
	ZG_AUDIT_APP_STOP,               /* 110100 / 110121 */
	ZG_AUDIT_CONN_ATTACH,            /* 110108 / 110124 */
	ZG_AUDIT_CONN_DETACH,            /* 110108 / 110125, bytes + duration */
	ZG_AUDIT_NODE_AUTH_FAILURE,      /* 110113 / 110126, any refusal with its reason */
	ZG_AUDIT_CONFIG_CHANGE_NETWORK,  /* 110113 / 110128 */
	ZG_AUDIT_CONFIG_CHANGE_SECURITY, /* 110113 / 110129 */
	ZG_AUDIT_AUDIT_STARTED,          /* 110113 / 110134 */
	ZG_AUDIT_AUDIT_STOPPED,          /* 110113 / 110133 */
	ZG_AUDIT_EMERGENCY_OVERRIDE_START, /* 110113 / 110127 */
	ZG_AUDIT_EMERGENCY_OVERRIDE_STOP,  /* 110113 / 110138 */
	ZG_AUDIT_UPSTREAM_STATE,         /* 110113 / 110128, an upstream endpoint went down or up */
	ZG_AUDIT_RECORDS_LOST,           /* 110113 / 110133, outcome 8, count = records lost */
	ZG_AUDIT_EXPIRY_WARNING,         /* 110113 / 110129: a certificate, CRL or directory expires soon */
	ZG_AUDIT__KIND_COUNT
};

/* One audit event. Fixed size, no pointers: emit copies it whole. Unused
 * strings are "", unused numbers 0. */
struct zg_audit_event {
	enum zg_audit_kind kind;
	int64_t ts_ns;                          /* CLOCK_REALTIME at the event; 0 = stamped by emit */
	char route[ZG_AUDIT_NAME_MAX];
	/* the source (110153): who opened the connection to the gateway */
	char peer_ip[ZG_AUDIT_IP_MAX];
	uint16_t peer_port;
	char local_ip[ZG_AUDIT_IP_MAX];
	uint16_t local_port;
	char subject[ZG_AUDIT_SUBJECT_MAX];     /* source certificate subject, RFC 2253 */
	char san[ZG_AUDIT_SAN_MAX];             /* "DNS:a,URI:b" */
	char participant[ZG_AUDIT_PARTICIPANT_MAX]; /* participant id (directory / allowlist) */
	/* the destination (110152): the upstream the gateway connected to;
	 * dest_ip "" when none was reached */
	char dest_ip[ZG_AUDIT_IP_MAX];
	uint16_t dest_port;
	char dest_subject[ZG_AUDIT_SUBJECT_MAX];
	char dest_san[ZG_AUDIT_SAN_MAX];
	enum zg_reason reason;                  /* why it ended / was refused */
	uint64_t bytes_in, bytes_out;           /* detach: client->upstream, upstream->client */
	uint64_t duration_ms;
	char detail[ZG_AUDIT_DETAIL_MAX];       /* free text: what changed, conn id, ... */
	uint64_t count;                         /* refusals an aggregated record stands for; 0 = one */
	int test;                               /* a test record (`zonegate audit test`) */
};

struct zg_audit;

/* Stable name of @k ("conn_detach"), "unknown" out of range. */
const char *zg_audit_kind_name(enum zg_audit_kind k);

/* Start the audit thread: open the spool (replaying what a previous run left
 * undelivered), the local file (re-reading its chain head) and the syslog
 * sink - the spool directory and the file locked (flock) for this process
 * alone, so a second writer (another gateway, `audit test --trail`) is
 * refused with "in use by another" rather than corrupt the trail - then
 * emit APP_START (110100/110120) and AUDIT_STARTED (110134).
 * @source_id names this gateway in every record (AuditSourceID); copied.
 * @client_key, if not NULL, is the syslog TLS client key to use instead of
 * reading conf->key (the key process's handle); the sink takes its own
 * reference.
 * Returns NULL with reasons in @errs if a sink cannot be set up (unreadable
 * key, bad target, spool dir unusable). */
struct zg_audit *zg_audit_start(const struct zg_audit_conf *conf, const char *source_id,
				EVP_PKEY *client_key, struct zg_errlist *errs);

/* Check @conf as zg_audit_start would, without starting anything: target
 * syntax, TLS certificate/key/CA loadable and matching, profile known,
 * spool_dir present when a target is set, and the directories of spool_dir
 * and file existing. For `zonegate check`. 0, or -1 with reasons in @errs. */
int zg_audit_conf_check(const struct zg_audit_conf *conf, struct zg_errlist *errs);

/* Emit APP_STOP (110100/110121) and AUDIT_STOPPED (110133), write and fsync
 * everything queued, try once more to deliver the spool (bounded by
 * io_timeout_ms), join the thread and free. NULL is a no-op. */
void zg_audit_stop(struct zg_audit *a);

/* Copy @ev into the queue; stamps ts_ns if 0. Thread-safe, never blocks on
 * I/O (one short mutex). A refusal (NODE_AUTH_FAILURE) is aggregated per
 * route, source and reason (audit_agg.h) and may use only half the queue
 * and half the spool, so refused traffic never makes the trail refuse
 * clinical traffic; it always returns 0. An attach under
 * refuse-new-connections is turned away when queue_len events are queued;
 * any other record grows the queue (up to 4 x queue_len, at least 16384)
 * and beyond that is dropped, counted and stated by an audit_records_lost
 * record, never silently. Returns 0 when queued or filtered out by
 * verbosity; -1 under refuse-new-connections when it was not queued or
 * the spool is full (a queued record is written once deliveries free
 * space): the caller must then not relay (ZG_R_AUDIT_SPOOL_FULL). */
int zg_audit_emit(struct zg_audit *a, const struct zg_audit_event *ev);

/* 1 if new connections may be accepted (spool not full, or the policy is
 * drop-oldest), 0 if not. One atomic load; NULL (no audit) is 1. */
int zg_audit_accepting(const struct zg_audit *a);

/* Counters for metrics and tests; a snapshot, read without locks. */
struct zg_audit_stats {
	uint64_t emitted;        /* accepted by emit */
	uint64_t queue_dropped;  /* refused by emit: queue full */
	uint64_t spooled;        /* written by this run (sequence numbers given) */
	uint64_t last_seq;       /* highest sequence number written, this run or before */
	uint64_t delivered;      /* highest sequence number confirmed delivered */
	uint64_t spool_dropped;  /* dropped by drop-oldest */
	uint64_t spool_corrupt;  /* damaged spool records skipped */
	uint64_t spool_bytes;    /* bytes on disk now */
	uint64_t refusals_folded; /* refusals counted into aggregated records, not recorded singly */
	uint64_t lost;           /* records dropped (queue full beyond its growth, or no room at
				    stop); each stated by an audit_records_lost record */
	int spool_full;
	int collector_up;
};
void zg_audit_get_stats(const struct zg_audit *a, struct zg_audit_stats *out);

#endif
