/*
 * The one clock for deadlines, timers and durations: monotonic
 * milliseconds, immune to the wall clock being set. Task times (due,
 * leases, backoff) come from PostgreSQL's now(); the host's wall clock is
 * read for one thing only, when a schedule's next tick is (schedule.c):
 * the daemon must know when to wake.
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

/* Milliseconds since the epoch on the host's wall clock. */
static inline int64_t
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
