/*
 * SQL handlers, run without blocking the loop.
 *
 * Each running SQL handler has a connection of its own, taken from a small
 * pool or, when none is idle, connected without waiting, and walks through
 * one transaction a statement at a time, each sent asynchronously and
 * finished when its socket is readable:
 *
 *   (CONNECTING ->) BEGIN -> statement_timeout -> the handler's statement
 *   ($1 payload, $2 id) -> the fenced completion -> COMMIT (or ROLLBACK)
 *
 * so the handler's effects and the task's completion commit together or
 * not at all. Meanwhile the loop keeps renewing leases, reaping children
 * and answering signals on its other connections.
 *
 * A connection that cannot be had (refused, the role's connection limit,
 * no answer within connect_timeout) ends the run as SQL_NO_CONN: the
 * handler never ran, so the task goes back untried after a delay that
 * grows with each connect failure in a row.
 *
 * As a handler type (handler_sql_ops): each task's socket is watched for
 * that task (it changes while libpq tries the hosts of a connection
 * string); a success is reported as already committed; the statement's
 * timeout is the server's statement_timeout, the connect's is ours.
 */
#ifndef PGDISPATCH_HANDLER_SQL_H
#define PGDISPATCH_HANDLER_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "handler.h"
#include "task.h"

extern const struct handler_ops handler_sql_ops;

enum sql_state {
	SQL_CONNECTING, SQL_BEGIN, SQL_TIMEOUT, SQL_STATEMENT, SQL_COMPLETE, SQL_COMMIT, SQL_ROLLBACK,
	SQL_DONE,
};

enum sql_result {
	SQL_OK,           /* effects and completion committed */
	SQL_FAILED,       /* rolled back; err says why (a failed attempt) */
	SQL_LEASE_LOST,   /* rolled back: the task is no longer ours */
	SQL_CONN_LOST,    /* the connection died; nothing committed that we know of */
	SQL_NO_CONN,      /* no connection could be had: nothing ran; err says why,
	                   * retry_in_ms when to try again */
};

struct sql_run {
	PGconn *conn;               /* from the pool, returned by sql_finish() */
	enum sql_state state;
	enum sql_result result;     /* once state == SQL_DONE */
	struct db_error err;        /* SQL_FAILED, SQL_CONN_LOST, SQL_NO_CONN */
	struct db_connecting up;    /* SQL_CONNECTING: deadline and poll events */
	char *conninfo;             /* copied: a reload frees the config's */
	int64_t retry_in_ms;        /* SQL_NO_CONN: the backoff before the next try */
	const char *statement;      /* the handler's SQL, copied */
	char *statement_copy;
	const struct task *task;    /* borrowed from the slot */
	const char *instance;       /* borrowed */
	int64_t timeout_ms;
	bool cancelled;             /* a cancel was sent (shutdown, lease lost) */
	bool errored;               /* result already says why it failed */
	bool step_ok;               /* the current statement has not failed */
	int step_rows;              /* rows of its last result */
};

/*
 * Starts the run for task t: on an idle pooled connection it sends BEGIN;
 * with none idle it starts connecting (SQL_CONNECTING) and returns at once.
 * A connection that cannot even start ends the run as SQL_NO_CONN. Either
 * way the caller then polls sql_socket() for sql_events() and checks
 * state == SQL_DONE. now is monotonic ms.
 */
void sql_start(struct sql_run *r, const char *conninfo, const char *application_name,
               const char *instance, const struct task *t, const char *statement,
               int64_t timeout_ms, int64_t now);

/* The socket to poll while r runs (-1 once done), and for what: POLLIN or
 * POLLOUT while connecting, as libpq asks, then POLLIN. */
int sql_socket(const struct sql_run *r);
short sql_events(const struct sql_run *r);

/* When r must be looked at even if its socket stays quiet (the connect's
 * deadline), or INT64_MAX. */
int64_t sql_deadline(const struct sql_run *r);

/* Moves r on after its socket was ready (revents) or its deadline passed;
 * state becomes SQL_DONE when finished. */
void sql_on_ready(struct sql_run *r, short revents, int64_t now);

/* Asks the server to cancel the running statement (the transaction then
 * rolls back and the run ends as SQL_FAILED with SQLSTATE 57014). A run
 * still connecting ends at once, as SQL_NO_CONN: the caller checks for
 * SQL_DONE. */
void sql_cancel(struct sql_run *r);

/* Ends r: its connection goes back to the pool (or is closed if broken or
 * mid-transaction). */
void sql_finish(struct sql_run *r);

/* Closes every idle pooled connection (after the server went away). */
void sql_pool_close(void);

#endif
