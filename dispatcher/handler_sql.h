/*
 * SQL handlers, run without blocking the loop.
 *
 * Each running SQL handler has a connection of its own, taken from a small
 * pool, and walks through one transaction a statement at a time, each sent
 * asynchronously and finished when its socket is readable:
 *
 *   BEGIN -> statement_timeout -> the handler's statement ($1 payload,
 *   $2 id) -> the fenced completion -> COMMIT (or ROLLBACK)
 *
 * so the handler's effects and the task's completion commit together or
 * not at all. Meanwhile the loop keeps renewing leases, reaping children
 * and answering signals on its other connections.
 */
#ifndef PGDISPATCH_HANDLER_SQL_H
#define PGDISPATCH_HANDLER_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "task.h"

enum sql_state {
	SQL_BEGIN, SQL_TIMEOUT, SQL_STATEMENT, SQL_COMPLETE, SQL_COMMIT, SQL_ROLLBACK,
	SQL_DONE,
};

enum sql_result {
	SQL_OK,           /* effects and completion committed */
	SQL_FAILED,       /* rolled back; err says why (a failed attempt) */
	SQL_LEASE_LOST,   /* rolled back: the task is no longer ours */
	SQL_CONN_LOST,    /* the connection died; nothing committed that we know of */
};

struct sql_run {
	PGconn *conn;               /* from the pool, returned by sql_finish() */
	enum sql_state state;
	enum sql_result result;     /* once state == SQL_DONE */
	struct db_error err;        /* SQL_FAILED, SQL_CONN_LOST */
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
 * Starts the transaction for task t on a pooled connection (connecting one
 * if none is idle). Returns false with err filled when no connection could
 * be had; the attempt then fails without having run.
 */
bool sql_start(struct sql_run *r, const char *conninfo, const char *application_name,
               const char *instance, const struct task *t, const char *statement,
               int64_t timeout_ms, struct db_error *err);

/* The socket to poll for input while r runs. */
int sql_socket(const struct sql_run *r);

/* Reads what arrived and moves on; state becomes SQL_DONE when finished. */
void sql_on_ready(struct sql_run *r);

/* Asks the server to cancel the running statement (the transaction then
 * rolls back and the run ends as SQL_FAILED with SQLSTATE 57014). */
void sql_cancel(struct sql_run *r);

/* Ends r: its connection goes back to the pool (or is closed if broken or
 * mid-transaction). */
void sql_finish(struct sql_run *r);

/* Closes every idle pooled connection (after the server went away). */
void sql_pool_close(void);

#endif
