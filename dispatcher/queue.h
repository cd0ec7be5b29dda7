/*
 * The daemon's statements against dispatch.tasks: claim, outcomes, lease
 * renewal, the reaper, the next due time, the wake-up registration, the
 * schedules' ticks; and the instance registry's and retention's
 * (migrations/0008).
 * Each statement is a file in sql/; this module turns C values into its
 * parameters and its rows back into C values. The statements go out on
 * the work connection without waiting (work.h): each *_send() function
 * queues one, and the callback it is given reads the result with the
 * matching *_result() function.
 *
 * Sets of rows travel as PostgreSQL array literals fed to unnest() in the
 * statement: one round trip and one plan for any number of rows.
 *
 * A fence's verdict on one claim (an outcome, a renewal) is a fate:
 * QUEUE_WRITTEN, QUEUE_LOCKED (another session holds the row: still ours,
 * try again later) or QUEUE_LOST (the claim is no longer ours). A success
 * that rode along with a claim and was not written is QUEUE_UNSURE: locked
 * or lost, which only writing it on its own (sql/outcomes.sql) tells.
 */
#ifndef PGDISPATCH_QUEUE_H
#define PGDISPATCH_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "task.h"
#include "work.h"

/* Who is claiming: locked_by and the lease length. */
struct queue_claimer {
	const char *instance;
	int64_t lease_ms;
};

/* A list of task kinds (borrowed strings). */
struct queue_kinds {
	const char *const *names;
	size_t count;
};

enum queue_fate { QUEUE_WRITTEN = 'w', QUEUE_LOCKED = 'l', QUEUE_LOST = 'x', QUEUE_UNSURE = 'u' };

/*
 * Claims up to limit due tasks of one queue, except kinds in skip and
 * beyond the room rooms[i] each kind in limited has left, marking them
 * with token (sql/claim.sql). With ndone > 0 the same statement first
 * records done[0..ndone), which must all be OUTCOME_COMPLETE
 * (sql/complete_and_claim.sql): one commit for both. Everything is read
 * before this returns.
 */
void queue_claim_send(const struct queue_claimer *who, const char *queue, int limit,
                      const struct queue_kinds *skip, const struct queue_kinds *limited, const int *rooms,
                      long long token, const struct outcome *done, size_t ndone, work_done_fn cb, void *ctx);

/*
 * Reads a claim's result: the claimed tasks into out[0..limit) (returns how
 * many; the caller owns their strings; each gets token), and the fate of
 * each done[i] into fates[i].
 */
int queue_claim_result(PGresult *res, long long token, int limit, struct task *out,
                       const struct outcome *done, size_t ndone, char *fates);

/* Writes outcomes[0..n) of any types in one statement (sql/outcomes.sql);
 * outcomes are read before this returns. */
void queue_outcomes_send(const struct outcome *outcomes, size_t n, work_done_fn cb, void *ctx);

/* The fate of each outcomes[i] into fates[i]. */
void queue_outcomes_result(PGresult *res, const struct outcome *outcomes, size_t n, char *fates);

/* Extends the leases of the claims ids/tokens[0..n) (sql/renew.sql). */
void queue_renew_send(const long long *ids, const long long *tokens, size_t n, int64_t lease_ms,
                      work_done_fn cb, void *ctx);

/* Sets lost[i] for each claim the renewal found no longer ours, and when
 * cancelled is not NULL, cancelled[i] to the reason when the task was
 * cancelled while the claim held it (borrowed from res), else NULL. */
void queue_renew_result(PGresult *res, const long long *ids, const long long *tokens, size_t n, bool *lost,
                        const char **cancelled);

/*
 * Returns others' expired leases to pending (or failed, attempts used
 * up), never one of held[0..nheld), the tasks this instance holds. limits
 * gives max_attempts per kind this instance knows.
 */
void queue_reap_send(const struct queue_kinds *kinds, const int *limits, int default_limit,
                     const long long *held, size_t nheld, work_done_fn cb, void *ctx);

/* Logs each reaped task; returns how many went back to pending. */
int queue_reap_result(PGresult *res);

/* Milliseconds until the next pending task of queue (not of a kind in
 * skip) is due (sql/next_due.sql). */
void queue_next_due_send(const char *queue, const struct queue_kinds *skip, work_done_fn cb, void *ctx);

/* 0 if one is due now, INT64_MAX if none is pending. */
int64_t queue_next_due_result(PGresult *res);

/*
 * Wake-up registration (migrations/0003_wakeup_only_sleepers.sql): an
 * instance about to wait registers for its queues, confirms once no
 * insert that could have missed the registration is still open, and
 * unregisters when busy.
 */
void queue_sleep_register_send(const char *instance, const char *const *queues, size_t n,
                               work_done_fn cb, void *ctx);
void queue_sleep_confirm_send(work_done_fn cb, void *ctx);
bool queue_sleep_confirm_result(PGresult *res);
void queue_sleep_unregister_send(const char *instance, work_done_fn cb, void *ctx);

/* A daemon's row in dispatch.instances (borrowed strings). */
struct queue_instance {
	const char *name, *host, *version;
	int pid;
	int64_t uptime_ms;           /* since the process started */
	const char *const *queues;
	size_t nqueues;
	int concurrency, running;
	const char *state;           /* "running" or "stopping" */
	int64_t lease_ms;
};

/* Upserts me's row, marks others' silent rows gone and deletes rows gone
 * for a day (sql/instance_beat.sql). */
void queue_instance_beat_send(const struct queue_instance *me, work_done_fn cb, void *ctx);

/* Logs the rows the beat marked gone or deleted. */
void queue_instance_beat_result(PGresult *res);

/* Deletes the row of name, host, pid (sql/instance_leave.sql). */
void queue_instance_leave_send(const char *name, const char *host, int pid, work_done_fn cb, void *ctx);

/* The tables retention deletes from. */
enum queue_retention_table {
	QUEUE_RETAIN_TASKS,          /* finished tasks of one status */
	QUEUE_RETAIN_ATTEMPTS,       /* the failed-attempt log */
	QUEUE_RETAIN_SOURCE_ROWS,    /* sources' side rows of failed rows, and forgotten ones */
};

/*
 * One retention batch: deletes at most max_rows rows of table older than
 * older_than_ms: finished tasks of status (complete, failed or cancelled;
 * sql/retention_batch.sql), rows of the failed-attempt log
 * (sql/retention_attempts.sql), or sources' side rows no claim holds
 * (sql/retention_source_rows.sql).
 */
void queue_retention_send(enum queue_retention_table table, const char *status, int64_t older_than_ms,
                          int max_rows, work_done_fn cb, void *ctx);

/* How many rows the batch deleted. */
int queue_retention_result(PGresult *res);

/*
 * Schedules (migrations/0009_schedules.sql). The last tick of each of
 * names[0..n) (sql/schedule_last.sql): known[i] tells whether it has a
 * row, last[i] its last tick in seconds since the epoch.
 */
void queue_schedule_last_send(const char *const *names, size_t n, work_done_fn cb, void *ctx);
void queue_schedule_last_result(PGresult *res, const char *const *names, size_t n, bool *known, int64_t *last);

/*
 * Moves s's last tick forward to tick (seconds since the epoch) and, when
 * it moved and enqueue is set, adds the tick's task in the same statement
 * (sql/schedule_tick.sql). s is read before this returns. The result is
 * the new task's id, or 0 when the tick was enqueued (or recorded) before.
 */
void queue_schedule_tick_send(const struct schedule_config *s, int64_t tick, bool enqueue, work_done_fn cb,
                              void *ctx);
long long queue_schedule_tick_result(PGresult *res);

/*
 * Sends (without waiting) the fenced completion of t with no result on a
 * SQL handler's own connection, inside its transaction (handler_sql.c).
 * The result has one row when the task was still ours. Returns
 * PQsendQueryParams()'s value.
 */
int queue_send_complete_one(PGconn *conn, const struct task *t);

/*
 * Sources (source.h, docs/sources.md): the same statements on a source's
 * own table, filled for it at startup (sql/source_*.sql). Outcomes go
 * through queue_outcomes_send() (all of one source), a SQL handler's
 * completion through queue_send_complete_one(), and the results are read
 * by the readers above; the claim's rows carry each row's key.
 */
struct source;

/* Claims up to limit rows of src, with the successes done[0..ndone) (all
 * of src) riding along; read with queue_claim_result(). */
void queue_source_claim_send(const struct queue_claimer *who, const struct source *src, int limit, long long token,
                             const struct outcome *done, size_t ndone, work_done_fn cb, void *ctx);

/* Renews src's claims ids/keys/tokens[0..n) (the ids only come back, with
 * the claims lost); read with queue_renew_result(). */
void queue_source_renew_send(const struct source *src, const long long *ids, const char *const *keys,
                             const long long *tokens, size_t n, int64_t lease_ms, work_done_fn cb, void *ctx);

/* Returns src's rows whose leases expired to pending (or failed, at
 * max_attempts), never a claim of held_tokens[0..nheld). */
void queue_source_reap_send(const struct source *src, int max_attempts, const long long *held_tokens,
                            size_t nheld, work_done_fn cb, void *ctx);

/* Logs each reaped row; returns how many went back to pending. */
int queue_source_reap_result(PGresult *res);

/* Milliseconds until a row of src is due; read with
 * queue_next_due_result(). */
void queue_source_next_due_send(const struct source *src, work_done_fn cb, void *ctx);

#endif
