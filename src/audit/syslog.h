/* audit_syslog.h - deliver audit records to a syslog collector.
 *
 * Messages are RFC 5424: PRI <85> (facility 10 authpriv, severity 5
 * notice), the event's own time as TIMESTAMP, APP-NAME "zonegate", MSGID
 * "IHE+RFC-3881", structured data [meta sequenceId="N"] and the UTF-8 XML
 * (with BOM, RFC 5424 6.4) as MSG. Over TLS they are framed "LEN SP MSG"
 * (RFC 5425 octet counting); over UDP one message per datagram (RFC 5426).
 *
 * Syslog over TLS has no application acknowledgement, so delivery is
 * confirmed by closing the connection: we send the batch (one TLS record
 * per message), then close_notify, and wait for the collector to close its
 * side. A collector that closes a socket with unread data makes its kernel
 * send a reset, not a FIN; so a FIN after its TCP acknowledged every byte we
 * sent means its process read everything, close_notify included, and closed
 * because we asked: the batch is confirmed. So does the collector's own
 * close_notify in reply (RFC 5425 4.4), which it can only send after
 * reading ours. Anything else - a reset, a
 * timeout, a FIN before it read everything - confirms nothing and the batch
 * is sent again whole. docs/audit.md spells out what this does and does not
 * guarantee.
 */
#ifndef ZG_AUDIT_SYSLOG_H
#define ZG_AUDIT_SYSLOG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/spool.h"

#define ZG_SYSLOG_MSGID "IHE+RFC-3881"
#define ZG_SYSLOG_PRI 85

/* Format one RFC 5424 message (without the octet count). @hostname and
 * @procid must be printable ASCII without spaces (they are cut at the first
 * byte that is not). Returns the length, or -1 if @cap is too small. */
int zg_syslog_format(char *out, size_t cap, int64_t ts_ns, const char *hostname, unsigned procid,
		     uint64_t seq, const char *msg, size_t len);

/* 1 if @r can be sent: its payload fits a message (ZG_AUDIT_XML_MAX) and
 * its time formats. A record that cannot (a damaged, foreign or newer
 * spool's frame that passed its CRC) must be skipped, never retried. Pure. */
int zg_syslog_sendable(const struct zg_spool_rec *r);

struct zg_syslog;

/* Prepare the sink described by @c (target, transport, TLS files and
 * profile). Loads the certificate, key and CA now so a broken file is a
 * start-up error, but does not connect. @hostname is the HOSTNAME field.
 * @key, if not NULL, is the TLS client key to use instead of reading
 * @c->key (the key process's handle: the gateway never maps the key). */
struct zg_syslog *zg_syslog_new(const struct zg_audit_conf *c, const char *hostname, EVP_PKEY *key,
				char *why, size_t cap);

void zg_syslog_free(struct zg_syslog *s);

/* Send up to 256 of @recs (payload = XML) in order over a new connection:
 * connect, handshake, one TLS record per message, close_notify (TLS), or one
 * datagram each (UDP). Blocks up to io_timeout_ms per step (connect to one
 * address, the whole handshake, each write); the name is resolved in the
 * background and its last answer cached, so a hanging resolver costs at
 * most io_timeout, and only while nothing is cached. Returns 0 when
 * something is in flight (call zg_syslog_poll until it settles; the records
 * are copied, @recs may go), -1 with @why when nothing was sent (no
 * connection, handshake or certificate failure, a delivery still in flight).
 * Only the delivery thread calls these. */
int zg_syslog_send(struct zg_syslog *s, const struct zg_spool_rec *recs, size_t n, char *why,
		   size_t cap);

/* Wait up to @wait_ms for the in-flight delivery to settle. Returns 1 while
 * the collector has neither closed nor reset and ack_timeout has not
 * passed; 0 once settled, with *confirmed = how many leading records of the
 * last send are confirmed (all of them = delivered; fewer = resend the rest,
 * reason in @why). UDP settles at once: sent = confirmed. */
int zg_syslog_poll(struct zg_syslog *s, unsigned wait_ms, size_t *confirmed, char *why, size_t cap);

#endif
