/*
 * The daemon's statements against dispatch.tasks: claim, outcomes, lease
 * renewal, the reaper, the next due time and LISTEN. Each function runs one
 * statement from sql/ on a connection it borrows and checks the result.
 *
 * Functions that can fail return false or a negative count and fill a
 * struct db_error; the caller decides whether the connection is gone
 * (PQstatus) or the statement merely failed.
 */
#ifndef PGDISPATCH_QUEUE_H
#define PGDISPATCH_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "task.h"

/* Who is claiming: the fence's locked_by and the lease length. */
struct queue_claimer {
	const char *instance;
	int64_t lease_ms;
};

/* A list of task kinds (borrowed strings). */
struct queue_kinds {
	const char *const *names;
	size_t count;
};

/*
 * Prepares every statement below on conn (once per connection, before any
 * of them runs there).
 */
bool queue_prepare(PGconn *conn, struct db_error *err) DB_MUSTCHECK;

/*
 * Claims up to limit due tasks of one queue, except kinds in skip, into
 * out[0..limit). Returns how many (the caller owns their strings), or -1.
 *
 * With ndone > 0, the same statement first records done[0..ndone), which
 * must all be OUTCOME_COMPLETE, fenced as queue_write_outcomes() does, and
 * sets kept[i] as it does (sql/complete_and_claim.sql): one commit for both.
 * On -1 neither happened.
 */
int queue_claim(PGconn *conn, const struct queue_claimer *who, const char *queue, int limit,
                const struct queue_kinds *skip, const struct outcome *done, size_t ndone,
                bool *kept, struct task *out, struct db_error *err) DB_MUSTCHECK;

/*
 * Writes outcomes[0..n) with one set-based statement per outcome type
 * present. Sets kept[i] to false for outcomes whose fence did not match
 * (the lease was lost: the row belongs to someone else now). On failure
 * nothing is known to be written: returns false and the caller keeps the
 * outcomes to try again.
 */
bool queue_write_outcomes(PGconn *conn, const char *instance, const struct outcome *outcomes,
                          size_t n, bool *kept, struct db_error *err) DB_MUSTCHECK;

/*
 * Extends the leases of ids/attempts[0..n). Sets kept[i] false where the
 * lease was already lost.
 */
bool queue_renew(PGconn *conn, const struct queue_claimer *who, const long long *ids,
                 const int *attempts, size_t n, bool *kept, struct db_error *err) DB_MUSTCHECK;

/*
 * Returns expired leases to pending (or failed, attempts used up), logging
 * each. limits gives max_attempts per kind this instance knows. Returns the
 * number returned to pending, or -1.
 */
int queue_reap(PGconn *conn, const struct queue_kinds *kinds, const int *limits,
               int default_limit, struct db_error *err) DB_MUSTCHECK;

/*
 * Milliseconds until the next pending task of queue (not of a kind in
 * skip) is due: 0 if one is due now, INT64_MAX if none is pending, -1 on
 * error.
 */
int64_t queue_next_due(PGconn *conn, const char *queue, const struct queue_kinds *skip,
                       struct db_error *err) DB_MUSTCHECK;

/*
 * Sends (without waiting) the fenced completion of t with no result, for a
 * SQL handler's transaction (handler_sql.c). The result has one row when
 * the task was still ours. Returns PQsendQueryParams()'s value.
 */
int queue_send_complete_one(PGconn *conn, const char *instance, const struct task *t);

/*
 * Wake-up registration (migrations/0003_wakeup_only_sleepers.sql): an
 * instance about to wait registers for its queues, confirms once no
 * insert that could have missed the registration is still open (1 when
 * confirmed, 0 when not yet, -1 on error), and unregisters when busy.
 */
bool queue_sleep_register(PGconn *conn, const char *instance, const char *const *queues, size_t n,
                          struct db_error *err) DB_MUSTCHECK;
int queue_sleep_confirm(PGconn *conn, struct db_error *err) DB_MUSTCHECK;
bool queue_sleep_unregister(PGconn *conn, const char *instance, struct db_error *err) DB_MUSTCHECK;

#endif
