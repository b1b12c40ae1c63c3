/* reason.c - the table behind reason.h. */
#include "base/reason.h"

struct reason_row {
	enum zg_class cls;
	const char *code;
	const char *text;
};

static const struct reason_row rows[ZG_R__COUNT] = {
#define ZG_REASON_ROW(name, c, code, text) [ZG_R_##name] = {ZG_CL_##c, code, text},
	ZG_REASONS(ZG_REASON_ROW)
#undef ZG_REASON_ROW
};

const char *zg_reason_code(enum zg_reason r)
{
	return (unsigned)r < ZG_R__COUNT ? rows[r].code : "unknown";
}

const char *zg_reason_text(enum zg_reason r)
{
	return (unsigned)r < ZG_R__COUNT ? rows[r].text : "unknown reason";
}

enum zg_class zg_reason_class(enum zg_reason r)
{
	return (unsigned)r < ZG_R__COUNT ? rows[r].cls : ZG_CL_INTERNAL;
}
