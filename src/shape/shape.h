/* shape.h - traffic classes: their configuration and its pure parsers.
 *
 * A class gives the routes that name it a guaranteed `rate`, a `ceil` it
 * may borrow up to while the link has spare capacity, a `priority` for that
 * spare capacity, a connection limit, an optional per-connection cap, a
 * DSCP mark and time-of-day windows that change rate and ceil. Rates apply
 * to each direction of the class separately. The [link] budget is the
 * capacity of the WAN or inter-site link per direction. conf/ embeds these
 * structs and calls the parsers below; class.c (the shared runtime state)
 * and bucket.c (the token arithmetic) use them on the data path.
 */
#ifndef ZG_SHAPE_H
#define ZG_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#define ZG_CLASS_NAME_MAX 64          /* equals conf.h's ZG_NAME_MAX (asserted there) */
#define ZG_CLASSES_MAX 32             /* [class NAME] sections per file */
#define ZG_WINDOWS_MAX 8              /* windows per class */
#define ZG_RATE_MIN 8000ull           /* 8 kbit/s: one 1 KiB block a second */
#define ZG_RATE_MAX 100000000000ull   /* 100 Gbit/s: above any link we sit on */
#define ZG_DAY_S 86400u
#define ZG_DSCP_UNSET (-1)            /* not marked: the socket keeps the OS default */
#define ZG_CLASS_DEFAULT "default"    /* the class of a route that names none */

/* A time of day range, in seconds since local midnight, and the rate and
 * ceil (bit/s) in force inside it. end < start wraps past midnight. */
struct zg_shape_window {
	uint32_t start_s, end_s;
	uint64_t rate_bps, ceil_bps;  /* ceil 0: the window's rate */
};

/* One [class NAME] section. */
struct zg_conf_class {
	char name[ZG_CLASS_NAME_MAX];
	uint64_t rate_bps;            /* guaranteed, each direction; required */
	uint64_t ceil_bps;            /* 0 = rate (no borrowing) */
	unsigned priority;            /* 0 (first to borrow) .. 7; default 4 */
	unsigned max_connections;     /* 0 = no class limit */
	uint64_t per_connection_bps;  /* 0 = no per-connection cap */
	int dscp;                     /* 0..63, or ZG_DSCP_UNSET: by priority */
	struct zg_shape_window windows[ZG_WINDOWS_MAX];
	unsigned n_windows;
	int line;                     /* line of the [class NAME] header */
	int line_rate, line_ceil, line_windows;
};

/* The [link] section: capacity per direction, 0 = no link budget. */
struct zg_conf_link {
	uint64_t to_client_bps;       /* upstream -> client bytes */
	uint64_t to_upstream_bps;     /* client -> upstream bytes */
	int line_to_client, line_to_upstream;
};

/* Parse a rate such as "20Mbit/s", "512kbit/s", "1.5Gbit/s" or "64000bit/s"
 * (decimal units, up to three decimals) into bit/s. Returns 0, or -1 with a
 * reason in @why for a bad unit, 0, or anything above ZG_RATE_MAX or below
 * ZG_RATE_MIN. */
int zg_rate_parse(const char *s, size_t n, uint64_t *bps, char *why, size_t cap);

/* Format @bps the shortest exact way ("20Mbit/s", "1500kbit/s"). */
void zg_rate_format(uint64_t bps, char *out, size_t cap);

/* Parse "HH:MM" or "HH:MM:SS" (00:00 .. 24:00) into seconds since midnight.
 * Returns 0, or -1 with the reason in @why. */
int zg_tod_parse(const char *s, size_t n, uint32_t *secs, char *why, size_t cap);

/* Parse one window, "HH:MM[:SS]-HH:MM[:SS] rate=RATE [ceil=RATE]", into @w.
 * Returns 0, or -1 with the reason in @why (impossible time, empty range,
 * ceil below rate, unknown word). */
int zg_window_parse(const char *s, size_t n, struct zg_shape_window *w, char *why, size_t cap);

/* Whether windows @a and @b share any second of the day (either may wrap
 * past midnight). */
int zg_windows_overlap(const struct zg_shape_window *a, const struct zg_shape_window *b);

/* Whether @w contains second @tod of the day. */
int zg_window_contains(const struct zg_shape_window *w, uint32_t tod);

/* The rate and ceil in force for @c at second @tod of the local day: the
 * first window containing @tod, else the class's own. Ceil never below rate. */
void zg_class_effective(const struct zg_conf_class *c, uint32_t tod, uint64_t *rate, uint64_t *ceil);

/* Parse a DSCP as a name (EF, AF11..AF43, CS0..CS7, default) or a number
 * 0..63. Returns 0, or -1 with the reason in @why. */
int zg_dscp_parse(const char *s, size_t n, int *dscp, char *why, size_t cap);

/* The name of @dscp if it has one ("AF41"), else NULL. */
const char *zg_dscp_name(int dscp);

/* The DSCP a class of @priority gets when it sets none: AF41 (clinical:
 * interactive, low-loss) for priorities 0-3, CS1 (lower effort bulk,
 * RFC 8622's predecessor meaning) for 4-7. */
int zg_dscp_default(unsigned priority);

#endif
