/*
 * The outbox: the one owner of outcomes.
 *
 * Handlers finish at any moment of a loop turn; their outcomes collect here
 * until they are written, and every write of an outcome goes through this
 * module: on their own (outbox_flush(), sql/outcomes.sql, every type in one
 * statement) or, for successes, riding along with the next claim
 * (outbox_claim_send(), sql/complete_and_claim.sql: one commit for both).
 *
 * A task whose outcome waits here is still this daemon's claim: its lease
 * is renewed (outbox_held()) and the reaper leaves it alone, however long
 * the write is held up (a stopped process, a locked table, a read-only
 * server). An outcome leaves the outbox once written, once its fence shows
 * the claim is no longer ours, or once the server has refused its data for
 * good (then its lease is let go and the task runs again). Writes never
 * wait on a row lock: an outcome whose row another session holds stays
 * here and is tried again shortly.
 */
#ifndef PGDISPATCH_OUTBOX_H
#define PGDISPATCH_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "task.h"

/* Takes ownership of o's strings. An OUTCOME_COMMITTED (a SQL handler's
 * success, recorded in its own transaction) is counted and not written. */
void outbox_add(struct outcome o);

/* Attempts that ended with an outcome of type since the daemon started
 * (for the log at exit, and the metrics to come). */
unsigned long long outbox_ended(enum outcome_type type);

size_t outbox_count(void);

/* Monotonic ms at which outbox_flush() has something to do: 0 when now,
 * INT64_MAX when nothing (empty, or a write is on its way). */
int64_t outbox_next_try_ms(void);

/* When anything may be written (now is monotonic ms) and no write is on
 * its way, sends one write. */
void outbox_flush(int64_t now);

/* A write of the outbox's is on its way (alone or with a claim). */
bool outbox_busy(void);

/*
 * The claims whose outcomes wait here, appended to ids/tokens (and their
 * sources and keys to sources and keys, unless NULL; keys borrowed) from
 * index at (arrays of room cap); returns the new count.
 */
size_t outbox_held(long long *ids, long long *tokens, int *sources, const char **keys, size_t at, size_t cap);

/* A renewal found this claim lost: its outcome is dropped, with a warning. */
void outbox_lost(long long id, long long token);

/*
 * Sends a claim (queue_claim_send() from queue; with src not NULL,
 * queue_source_claim_send() from that source's table) for the room the
 * caller has (free slots), carrying the successes that may be written now
 * (of that same table), when nothing else waits and no write is on its
 * way. Outcomes that do not ride along
 * take room as running tasks do: each still holds its task. Returns the
 * claim's limit, or 0 when no room is left (nothing sent). Its callback
 * must pass the result to outbox_claim_result().
 */
int outbox_claim_send(const struct queue_claimer *who, const struct source *src, const char *queue, int room,
                      const struct queue_kinds *skip, const struct queue_kinds *limited, const int *rooms,
                      long long token, work_done_fn cb, void *ctx);

/* True once after an outcome left the outbox (room for a claim). */
bool outbox_take_freed(void);

/*
 * Reads the claim's result (res NULL: it failed with err): settles the
 * successes it carried and returns how many tasks it claimed into
 * out[0..limit), or -1 when it failed.
 */
int outbox_claim_result(PGresult *res, const struct db_error *err, long long token, int limit,
                        struct task *out, int64_t now);

/* Drops everything (at exit). */
void outbox_free(void);

#endif
