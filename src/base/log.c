/* log.c - see log.h. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

/* The one piece of process-wide mutable state outside the configuration
 * snapshot: the threshold is read on every log call from every worker, and
 * an atomic int is cheaper and simpler than threading it through each call. */
static atomic_int log_threshold = ZG_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void zg_log_set_level(enum zg_log_level level)
{
	atomic_store_explicit(&log_threshold, (int)level, memory_order_relaxed);
}

int zg_log_enabled(enum zg_log_level level)
{
	return (int)level <= atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

int zg_log_level_parse(const char *s, enum zg_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum zg_log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *zg_log_level_name(enum zg_log_level level)
{
	return (unsigned)level < 4 ? level_names[level] : "?";
}

void zg_log(enum zg_log_level level, const char *fmt, ...)
{
	char line[4096];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int k;
	va_list ap;

	if (!zg_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	k = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s ", ts.tv_nsec / 1000000,
		     zg_log_level_name(level));
	if (k > 0)
		n += (size_t)k;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	if ((size_t)k >= sizeof(line) - n - 1) {
		n = sizeof(line) - 5;
		memcpy(line + n, "...", 3);
		n += 3;
	} else {
		n += (size_t)k;
	}
	line[n++] = '\n';
	/* One write per line; a short write to stderr is not worth retrying. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

char *zg_log_quote(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	int bare = *s != '\0';

	if (cap == 0)
		return out;
	for (const char *p = s; *p && bare; p++)
		if (*p == ' ' || *p == '"' || *p == '\\' || *p == '=' || (unsigned char)*p < 0x20 ||
		    *p == 0x7f)
			bare = 0;
	if (bare) {
		snprintf(out, cap, "%s", s);
		return out;
	}
	if (o + 1 < cap)
		out[o++] = '"';
	for (const char *p = s; *p && o + 3 < cap; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out[o++] = '?';
		} else {
			out[o++] = (char)c;
		}
	}
	if (o + 1 < cap)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}
