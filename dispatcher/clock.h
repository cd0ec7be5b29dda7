/*
 * The one clock for deadlines, timers and durations: monotonic
 * milliseconds, immune to the wall clock being set. Wall time only ever
 * comes from PostgreSQL's now().
 */
#ifndef PGDISPATCH_CLOCK_H
#define PGDISPATCH_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
