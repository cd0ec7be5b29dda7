/*
 * Circuit breakers: a kind whose handler keeps failing is not claimed for
 * a while, by any daemon, so a service that is down is not hammered and
 * its tasks spend no attempts meanwhile (README "Circuit breakers").
 *
 * The state lives in dispatch.breakers (migrations/0011), one row per
 * kind, so every daemon sees one breaker. This module keeps each daemon's
 * view of it and its share of the counting:
 *
 *   slots --note--> counts since the last report --breaker_report.sql--> row
 *   row  --breaker_sync.sql, every lease third or poll interval--> view
 *   view --breaker_kinds()--> the claim's skip list (open kinds), or a room
 *                             of one (half-open: the probe this daemon won)
 *
 * Counting is a statement of its own, never part of an outcome's: a
 * breaker's row is one hot row per kind, and an outcome must never wait
 * on it. A healthy kind costs nothing: a success is written only when the
 * row holds failures or a probe. Only the daemon whose statement changed a
 * breaker's state logs it, so each opening and closing is logged once.
 *
 * A failure that is the task's own fault (the handler failed it for good
 * at once: an HTTP 4xx, a URL the payload cannot fill) is not counted.
 */
#ifndef PGDISPATCH_BREAKER_H
#define PGDISPATCH_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "task.h"

/* Once: instance is locked_by (borrowed, outlives the breakers). */
void breaker_setup(const char *instance);

/* At start and at each reload: the kinds served and their settings. Kept
 * breakers keep their state; the table's settings are written at the next
 * tick. */
void breaker_config(const struct config *cfg);

/* After each connect: settings and state are read again at once. */
void breaker_connected(void);

/* Sends what is due on the work connection: counts to report, the state
 * to read, and a probe to try when room says a task could start now.
 * Connected only. */
void breaker_tick(int64_t now, bool room);

/* The daemon stops claiming: no more probes, and one held but not started
 * is given back. */
void breaker_stop(void);

/* When the next tick has something to do (INT64_MAX: nothing). */
int64_t breaker_next_ms(void);

/* The next claim waits: failures are counted and not yet reported, or a
 * report is on its way (a daemon never claims past an opening its own
 * failures make), or the state was not read yet since the daemon
 * connected or its config changed (one round trip). */
bool breaker_busy(void);

/*
 * Adds to a claim's kinds: open breakers to skip, and a half-open one
 * whose probe this daemon holds as a limited kind with room 1 (or less
 * room, when its concurrency leaves less). skip and limited/rooms hold
 * *nskip and *nlimited entries and have room for cap.
 */
void breaker_kinds(const char **skip, size_t *nskip, const char **limited, int *rooms, size_t *nlimited,
                   size_t cap);

/* A claim pass begins and ends. A probe won before a pass that found
 * every target short (nothing more due: no task of the kind either) and
 * did not claim it goes back, for whoever has one. */
void breaker_pass_start(void);
void breaker_pass_end(bool short_everywhere, int64_t now);

/* A task's handler starts: the first of a half-open kind is its probe. */
void breaker_started(const struct task *t);

/* How a task's run ended, for its kind's breaker. */
enum breaker_event {
	BREAKER_SUCCESS,   /* the handler succeeded */
	BREAKER_FAILURE,   /* a failed attempt that is not the task's own fault */
	BREAKER_VOID,      /* anything else: stopped, lost, not run, the task's fault */
};
void breaker_note(const struct task *t, enum breaker_event ev, const char *error);

/* Frees the breakers (at exit). */
void breaker_free(void);

#endif
