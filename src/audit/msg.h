/* audit_msg.h - DICOM PS3.15 A.5 AuditMessage XML for each event kind.
 *
 * Pure functions: no I/O, no allocation, no state, so the unit tests and
 * the fuzzer drive them directly. Output is one line of UTF-8 XML (newlines
 * in values are written as character references), so a record is one line
 * in the local file and one syslog MSG. Codes: ../shared/specs.md section 3.
 */
#ifndef ZG_AUDIT_MSG_H
#define ZG_AUDIT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"

/* Largest rendered message: every string field escaped at its worst (6x)
 * still fits, so rendering a valid event never fails for lack of room. */
#define ZG_AUDIT_XML_MAX 16384

/* Escape @s for an XML attribute or text node into @out (NUL-terminated):
 * & < > " ' as entities, TAB/LF/CR as character references, other C0
 * controls, DEL and invalid UTF-8 bytes as '?'. Returns the length written,
 * or -1 if @cap is too small (then @out holds a truncated, valid prefix). */
int zg_audit_xml_escape(char *out, size_t cap, const char *s);

/* Format @ts_ns (CLOCK_REALTIME ns) as "2026-11-25T23:59:59.123Z".
 * Returns the length, or -1 if @cap < 25 or the time is out of range. */
int zg_audit_fmt_time(int64_t ts_ns, char *out, size_t cap);

/* Render @ev as an AuditMessage with AuditSourceID @source_id into @out.
 * Returns the length (no NUL counted), or -1 if @ev->kind is unknown or
 * @cap is too small. Never reads beyond the fixed buffers of @ev even if
 * they are not NUL-terminated. */
int zg_audit_msg_render(const struct zg_audit_event *ev, const char *source_id, char *out,
			size_t cap);

/* The EventID and EventTypeCode of @k (e.g. 110108 / 110125); 0 if unknown. */
unsigned zg_audit_event_id(enum zg_audit_kind k);
unsigned zg_audit_event_type(enum zg_audit_kind k);

#endif
