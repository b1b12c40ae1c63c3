/* clock.h - the one clock deadlines are measured on. */
#ifndef ZG_CLOCK_H
#define ZG_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock (never jumps with the wall clock). */
static inline uint64_t zg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
