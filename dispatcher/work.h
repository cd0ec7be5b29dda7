/*
 * The work connection: the daemon's statements, sent without waiting.
 *
 * The loop must never block on a statement. A row or table lock held by
 * someone else, a slow server or a stalled network would otherwise freeze
 * handler deadlines, signals and every other task. So every statement on
 * the work connection goes through here: queued in order, sent with
 * libpq's asynchronous calls one at a time, and its result handed to the
 * function that asked for it once all of it has arrived. The loop polls
 * work_socket() for work_events() and calls work_on_ready().
 *
 * Statements are the daemon's files in sql/, by name. With prepared
 * statements on (the default), each is prepared on first use on a
 * connection and then executed by name. Off (poll-only mode, for
 * PgBouncer's transaction pooling), every statement is sent unnamed with
 * its text: a statement prepared on one server connection does not exist
 * on the next one the pooler hands out, and an unnamed statement is
 * planned with its parameters' values, so it needs no session setting.
 */
#ifndef PGDISPATCH_WORK_H
#define PGDISPATCH_WORK_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"

/*
 * Called once a statement ends: res is its result (borrowed: cleared after
 * the call), or NULL with err filled when it failed or the connection went
 * away first (work_attached() then tells which).
 */
typedef void (*work_done_fn)(void *ctx, PGresult *res, const struct db_error *err);

/* Takes conn (owned from now on: work_detach() closes it). */
void work_attach(PGconn *conn, bool prepared);

/* Closes the connection; every queued statement's callback is called with
 * a failure, in order. */
void work_detach(void);

bool work_attached(void);

/* Statements are prepared, and the session settings of sql/work_session.sql
 * hold (false in poll-only mode). */
bool work_prepared(void);

/*
 * Queues sql/NAME.sql with text parameters (copied), sent after the
 * statements queued before it. done may be NULL. Detached, done is called
 * at once with a failure.
 */
void work_send(const char *name, int nparams, const char *const *params, work_done_fn done, void *ctx);

/* The same for a statement whose text is not a file of sql/ (a source's,
 * filled at startup: dispatcher/source.c), prepared as name; both name
 * and sql must outlive the connection. */
void work_send_sql(const char *name, const char *sql, int nparams, const char *const *params, work_done_fn done,
                   void *ctx);

/* Statements queued or running. */
size_t work_pending(void);

/* What to poll: the socket (-1 when detached) and its events. */
int work_socket(void);
short work_events(void);

/* After poll(): reads and sends what it can, and calls the callbacks of
 * statements that ended. Returns false when the connection is broken
 * (err says why); the caller then detaches. */
bool work_on_ready(struct db_error *err) DB_MUSTCHECK;

#endif
