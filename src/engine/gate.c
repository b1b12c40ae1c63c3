/* gate.c - see gate.h. */
#include "engine/gate.h"

enum zg_reason zg_gate_source(const struct zg_conf_route *r, const uint8_t addr[16])
{
	if (r->n_allow_from == 0)
		return r->mode == ZG_MODE_WRAP ? ZG_R_ADDR_NOT_ALLOWED : ZG_R_OK;
	for (unsigned i = 0; i < r->n_allow_from; i++)
		if (zg_prefix_contains(&r->allow_from[i], addr))
			return ZG_R_OK;
	return ZG_R_ADDR_NOT_ALLOWED;
}

enum zg_reason zg_gate_admit(unsigned route_active, unsigned route_max, unsigned total_active,
			     unsigned total_max)
{
	if (total_active >= total_max)
		return ZG_R_GLOBAL_LIMIT;
	if (route_active >= route_max)
		return ZG_R_ROUTE_LIMIT;
	return ZG_R_OK;
}
