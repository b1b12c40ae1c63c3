/* record.h - what a connection leaves behind: one log line and its IHE ATNA
 * audit records, written from conn.c's refusal and close paths exactly once.
 */
#ifndef ZG_RECORD_H
#define ZG_RECORD_H

#include <stdint.h>

#include "engine/conn.h"

/* Refusal log lines: ZG_LOG_FOLD_BURST of one route, source address and
 * reason are logged as they come, later ones counted into one
 * `event=refused_repeated` line per ZG_LOG_FOLD_MS until the key is quiet
 * for that long. Without it a flood writes a line per connect (1.2 M in a
 * minute was measured), and journald's rate limit then drops clinical
 * lines with the flood's. */
#define ZG_LOG_FOLD_MS 10000
#define ZG_LOG_FOLD_BURST 20

/* A connection refused or failed before relaying: one `event=refused` line
 * (folded into a count once the same route, source and reason have been
 * logged ZG_LOG_FOLD_BURST times in a row) and one node-authentication-
 * failure record (110113/110126, folded by the audit trail) naming
 * @reason. @c gives the identity learnt so far, or NULL before it exists. */
void zg_record_refusal(struct zg_conn_host *h, const struct zg_route_rt *route, uint64_t id,
		       const struct zg_sockaddr *peer, enum zg_reason reason, const char *detail,
		       const struct zg_conn *c);

/* Write the `event=refused_repeated ... count=N` lines of refusals that
 * @h's log fold counted instead of logging, for intervals ended by now
 * (all of them if @all, at the worker's end). */
void zg_record_refusals_due(struct zg_conn_host *h, int all);

/* Relaying starts: the network-entry attach record (110108/110124).
 * Returns -1 when the audit trail cannot take it under its
 * refuse-new-connections policy: the caller must not relay. */
int zg_record_attach(const struct zg_conn *c);

/* One message of @c (HL7) was refused and answered, the connection goes
 * on: an `event=message_refused` line and a node-authentication-failure
 * record (110113/110126) naming @reason. */
void zg_record_message_refusal(const struct zg_conn *c, enum zg_reason reason, const char *detail);

/* @c closes with @reason: the `event=conn_close` line and the detach record
 * (110108/110125, bytes and duration) if it relayed, else as a refusal. */
void zg_record_close(const struct zg_conn *c, enum zg_reason reason, const char *detail);

#endif
