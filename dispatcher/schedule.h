/*
 * Periodic tasks: the schedules of the config, each tick enqueued once
 * however many daemons run the same config.
 *
 * The daemon computes each schedule's ticks (cron.c) on the host's wall
 * clock, because it must know when to wake; whether a tick is enqueued is
 * the database's to say. Every tick goes through sql/schedule_tick.sql,
 * which moves the schedule's row in dispatch.schedules forward to the
 * tick and adds the task in the same statement, only when it moved: the
 * daemon that comes second, at the same tick, adds nothing.
 *
 * Vocabulary: a sync reads every schedule's last tick (at start, after
 * every reconnect and after a reload) and settles what happened while no
 * daemon was looking:
 *  - a schedule with no row yet records its latest tick without enqueuing
 *    it (a first start at 14:00 does not run the 03:00 report);
 *  - a schedule whose last tick is older than its latest tick enqueues
 *    that latest tick once, or with catch_up every missed tick (the latest
 *    SCHEDULE_CATCH_UP_MAX of them).
 * After the sync each schedule waits for its next tick; a tick found late
 * (a stalled daemon) is handled the same way, once or with catch-up.
 */
#ifndef PGDISPATCH_SCHEDULE_H
#define PGDISPATCH_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* The most ticks one catch-up enqueues; older ones are dropped (logged). */
#define SCHEDULE_CATCH_UP_MAX 1000

/* The config in force (borrowed; call again after a reload): sync again. */
void schedule_config(const struct config *cfg);

/* The work connection is new: sync again. */
void schedule_connected(void);

/* Shutdown: no more ticks. */
void schedule_stop(void);

/* Monotonic ms when schedule_step() has something to do; INT64_MAX for
 * nothing (no schedules, stopped, or a sync on its way). */
int64_t schedule_next_ms(void);

/* Sends the sync or the ticks that are due. Call while connected. */
void schedule_step(int64_t now);

/* True once after a tick added a task (claim at once: it may be ours). */
bool schedule_take_enqueued(void);

/* Frees the per-schedule state (at exit). */
void schedule_free(void);

#endif
