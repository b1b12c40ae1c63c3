/* log.h - the operational log: one key=value line per event on stderr.
 *
 * Lines are written with a single write(2) so that lines from several
 * workers never interleave, and carry no colour or multi-line text, so that
 * journald, a file or a pipe all receive one record per line.
 */
#ifndef ZG_LOG_H
#define ZG_LOG_H

#include <stddef.h>

enum zg_log_level { ZG_LOG_ERROR, ZG_LOG_WARN, ZG_LOG_INFO, ZG_LOG_DEBUG };

/* Set the threshold; lines above it are dropped. Safe from any thread. */
void zg_log_set_level(enum zg_log_level level);

/* Parse "error|warn|info|debug"; returns -1 if @s is none of them. */
int zg_log_level_parse(const char *s, enum zg_log_level *out);

const char *zg_log_level_name(enum zg_log_level level);

int zg_log_enabled(enum zg_log_level level);

/* Write one line "ts=... level=... " followed by the formatted fields.
 * Lines longer than 4 KiB are cut and end in "...". */
void zg_log(enum zg_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Copy @s into @out as a log value: bare if it has no space, quote,
 * backslash or control byte, else double-quoted with those escaped.
 * Always NUL-terminates; truncates to fit @cap. Returns @out. */
char *zg_log_quote(char *out, size_t cap, const char *s);

#define zg_err(...) zg_log(ZG_LOG_ERROR, __VA_ARGS__)
#define zg_warn(...) zg_log(ZG_LOG_WARN, __VA_ARGS__)
#define zg_info(...) zg_log(ZG_LOG_INFO, __VA_ARGS__)
#define zg_debug(...)                                   \
	do {                                            \
		if (zg_log_enabled(ZG_LOG_DEBUG))       \
			zg_log(ZG_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
