/*
 * Retention: finished rows older than the config's retention: ages are
 * deleted, in batches of at most RETENTION_BATCH rows (a SECURITY DEFINER
 * function each, migrations/0008: the worker role has no DELETE on tasks).
 *
 * A round runs about once a minute (the first soon after start), jittered
 * so that daemons started together spread out, and walks the targets in
 * turn: complete, failed and cancelled tasks, then the failed-attempt log.
 * While a target's batch comes back full, the next batch of it follows,
 * but only one batch is on the work connection at a time, only one is
 * sent per turn of the loop, and each waits four times as long as the one
 * before took: statements run in the order they were queued (work.c), so
 * claims and outcomes queued meanwhile go first and wait at most for one
 * batch, and a round with much to delete takes at most about a fifth of
 * the work connection's time. Batches take their rows with SKIP LOCKED, so any
 * number of daemons may run rounds at once: each row is deleted by one of
 * them, nobody waits for another, and a batch holds its locks for its own
 * short transaction only.
 */
#ifndef PGDISPATCH_RETENTION_H
#define PGDISPATCH_RETENTION_H

#include <stdint.h>

#include "config.h"

#define RETENTION_BATCH 1000

/* Sends the next batch when one is due (a round is under way and no batch
 * is on its way, or the next round is due). */
void retention_tick(const struct config *cfg, int64_t now);

/* Monotonic ms of the next batch (INT64_MAX while one is on its way). */
int64_t retention_next_ms(void);

#endif
