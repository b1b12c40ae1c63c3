/* audit_syslog.h - deliver audit records to a syslog collector.
 *
 * Messages are RFC 5424: PRI <85> (facility 10 authpriv, severity 5
 * notice), the event's own time as TIMESTAMP, APP-NAME "zonegate", MSGID
 * "IHE+RFC-3881", structured data [meta sequenceId="N"] and the UTF-8 XML
 * (with BOM, RFC 5424 6.4) as MSG. Over TLS they are framed "LEN SP MSG"
 * (RFC 5425 octet counting); over UDP one message per datagram (RFC 5426).
 *
 * Syslog over TLS has no application acknowledgement, so a batch is confirmed
 * by closing the connection: we write the batch, send close_notify and wait
 * for the collector to close its side. The batch counts as delivered only if
 * the collector closed cleanly (FIN, no reset) after its TCP acknowledged
 * every byte we sent, which the kernel only lets happen once the collector
 * has read all of them, close_notify included. docs/audit.md spells out what
 * this does and does not guarantee.
 */
#ifndef ZG_AUDIT_SYSLOG_H
#define ZG_AUDIT_SYSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "audit_spool.h"

#define ZG_SYSLOG_MSGID "IHE+RFC-3881"
#define ZG_SYSLOG_PRI 85

/* Format one RFC 5424 message (without the octet count). @hostname and
 * @procid must be printable ASCII without spaces (they are cut at the first
 * byte that is not). Returns the length, or -1 if @cap is too small. */
int zg_syslog_format(char *out, size_t cap, int64_t ts_ns, const char *hostname, unsigned procid,
		     uint64_t seq, const char *msg, size_t len);

struct zg_syslog;

/* Prepare the sink described by @c (target, transport, TLS files and
 * profile). Loads the certificate, key and CA now so a broken file is a
 * start-up error, but does not connect. @hostname is the HOSTNAME field. */
struct zg_syslog *zg_syslog_new(const struct zg_audit_conf *c, const char *hostname, char *why,
				size_t cap);

void zg_syslog_free(struct zg_syslog *s);

/* Deliver @n spooled records (payload = XML) in order over one connection
 * and wait for the collector's confirmation as above (TLS), or send them as
 * datagrams (UDP). 0 = confirmed; -1 = not confirmed (nothing may be assumed
 * about which arrived) with the reason in @why. Blocks up to about
 * io_timeout_ms per step; only the audit thread calls it. */
int zg_syslog_deliver(struct zg_syslog *s, const struct zg_spool_rec *recs, size_t n, char *why,
		      size_t cap);

#endif
