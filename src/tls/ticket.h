/* ticket.h - rotating session-ticket keys for `session_tickets = on`.
 *
 * OpenSSL's own ticket key is made once per SSL_CTX and lives until the
 * next reload, which may be months on a gateway in front of a PACS: one
 * key that, once stolen, decrypts every recorded session's resumption
 * secret. Here each route's server context holds a small key ring: tickets
 * are sealed with the current key, which is replaced every session_timeout;
 * the previous key still opens tickets (and asks for a new one), older ones
 * are forgotten, so a ticket never outlives two rotation periods.
 */
#ifndef ZG_TICKET_H
#define ZG_TICKET_H

#include <openssl/ssl.h>

/* Give @ctx a key ring rotated every @period_s seconds. 0, or -1 if the
 * keys could not be made (no randomness, out of memory). */
int zg_ticket_keys_attach(SSL_CTX *ctx, unsigned period_s);

#endif
