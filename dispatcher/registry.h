/*
 * The daemon's row in dispatch.instances (migrations/0008_instances.sql):
 * who is alive, where, serving what, how busy. Registered after every
 * (re)connect, refreshed at the lease tick's rhythm, state 'stopping' once
 * a graceful shutdown starts, deleted at a clean exit. Each refresh (a
 * beat, sql/instance_beat.sql) also marks other daemons' rows gone when
 * they were not refreshed for three of their leases, and deletes rows gone
 * for a day. Statements go through work.c like every other: queued, never
 * waited for.
 *
 * The row's key is the instance name, the host and the pid; name#pid is
 * the instance string of tasks.locked_by and application_name.
 */
#ifndef PGDISPATCH_REGISTRY_H
#define PGDISPATCH_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Once: the instance name and host (borrowed for the process's life), the
 * pid, and the monotonic ms the process started at. */
void registry_setup(const char *name, const char *host, int pid, int64_t started_ms);

/* On (re)connecting: the next beat is due now. */
void registry_reset(int64_t now);

/* Monotonic ms of the next beat (INT64_MAX while one is on its way). */
int64_t registry_next_ms(void);

/* Sends a beat when one is due (running: tasks in flight). */
void registry_tick(const struct config *cfg, int running, int64_t now);

/* A graceful shutdown has started: the row says 'stopping' from the next
 * beat on, which is due now. */
void registry_stopping(int64_t now);

/*
 * At a clean exit: queues the deletion of the row the first time, and
 * returns true once it has ended (or cannot be sent: the row then goes
 * gone like a dead daemon's).
 */
bool registry_leave(void);

#endif
