/*
 * The lease tick: every lease/3 (or poll_interval, when shorter), renew the
 * claims this daemon holds, return others' expired leases to pending, and
 * look at the NOTIFY queue's health.
 *
 * The claims held are the tasks in flight (slots.c) and the tasks whose
 * outcome waits to be written (outbox.c): a task stays this daemon's until
 * its outcome is recorded, so its lease is kept, and the reaper, which
 * runs after the renewal on the same connection, is told never to take it.
 */
#ifndef PGDISPATCH_LEASE_H
#define PGDISPATCH_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* On (re)connecting: the next tick is due now. */
void lease_reset(int64_t now);

/* Monotonic ms of the next tick. */
int64_t lease_next_ms(void);

/* Sends the tick's statements when it is due and the last tick is over. */
void lease_tick(const struct config *cfg, int64_t now);

/* True once after the reaper returned tasks to pending (claim at once). */
bool lease_take_requeued(void);

/* Frees what a tick in flight holds (at exit). */
void lease_free(void);

#endif
