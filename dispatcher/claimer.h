/*
 * Claim scheduling: when to claim, from which queue, how many, and when to
 * ask producers for a wake-up.
 *
 * A claim pass walks the served queues round-robin, claiming while there
 * are free slots and batches come back full; a queue whose batch came back
 * short is asked when its next task is due (sql/next_due.sql). When every
 * batch came back short, the daemon is about to wait: it registers for
 * wake-ups (migrations/0003_wakeup_only_sleepers.sql) and confirms the
 * hand-over before it trusts them; a full batch unregisters it. Due rows
 * that others hold locked (contention) are looked at again soon, then less
 * and less often. Every statement goes out without waiting (work.h), so a
 * pass is a chain of callbacks; one pass runs at a time.
 */
#ifndef PGDISPATCH_CLAIMER_H
#define PGDISPATCH_CLAIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Once: locked_by (also the wake-up registration's name) and the
 * conninfo SQL handlers connect with; both borrowed for the process's life. */
void claimer_setup(const char *locked_by, const char *conninfo);

/* The config in force (borrowed; call again after a reload). */
void claimer_config(const struct config *cfg);

/* The connection is new: not registered for wake-ups; claim at once. */
void claimer_connected(void);

/* Claim at once (a notification, a freed slot, reaped tasks). With
 * contended, also look again soon at rows others held. */
void claimer_sweep(bool contended);

/* Starts a pass when one is due, there is room, and none is running. */
void claimer_step(int64_t now);

/* Monotonic ms of the next pass (now when a sweep is asked for), or
 * INT64_MAX while one runs. */
int64_t claimer_next_ms(void);

/* No more claims (shutdown): leave the wake-up registration. */
void claimer_stop(void);

/* The served queues changed (reload): register afresh at the next short
 * claim. */
void claimer_forget_registration(void);

#endif
