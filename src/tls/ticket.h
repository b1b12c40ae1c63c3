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

#include <stddef.h>

#include <openssl/ssl.h>

/* Give @ctx a key ring rotated every @period_s seconds. 0, or -1 if the
 * keys could not be made (no randomness, out of memory). */
int zg_ticket_keys_attach(SSL_CTX *ctx, unsigned period_s);

#define ZG_TICKET_KEY_FILE_LEN 80 /* as nginx's ssl_session_ticket_key: 80 random bytes */

/* Shared keys for a pair of gateways (session_ticket_key): give @ctx keys
 * derived from the @n files at @paths (each exactly 80 bytes) and @route, so
 * every node with the same files and route name opens the others' tickets,
 * and no two routes share a key. The first file's key seals; the others
 * only open (and ask for a new ticket): rotation is the operator's, by
 * prepending a new file and reloading. 0, or -1 with the reason in @why. */
int zg_ticket_keys_attach_files(SSL_CTX *ctx, const char *const *paths, unsigned n, const char *route,
				char *why, size_t cap);

#endif
