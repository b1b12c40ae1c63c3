/* gate.h - admission decisions taken before a single byte is read: the
 * address gate (channel layer) and the connection limits.
 *
 * Pure functions: they see addresses and counters, never sockets, so every
 * branch is unit-tested without a network.
 */
#ifndef ZG_GATE_H
#define ZG_GATE_H

#include <stdint.h>

#include "conf/conf.h"
#include "base/reason.h"

/* May a client at @addr (16-byte form, see prefix.h) use route @r?
 * A route with allow_from accepts only sources inside one of its prefixes
 * (required for wrap: only the inside zone may use a wrap route); a route
 * without allow_from leaves the address decision to the directory. */
enum zg_reason zg_gate_source(const struct zg_conf_route *r, const uint8_t addr[16]);

/* May one more connection start, given @route_active live connections on
 * the route and @total_active in the whole gateway? */
enum zg_reason zg_gate_admit(unsigned route_active, unsigned route_max, unsigned total_active,
			     unsigned total_max);

#endif
