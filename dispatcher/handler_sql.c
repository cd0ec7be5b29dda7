/* SQL handlers as a state machine over a pooled connection; see handler_sql.h. */
#include "handler_sql.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "log.h"
#include "queue.h"

#define SQL_POOL_MAX 64

/* Idle connections kept for the next SQL handler. */
static struct {
	PGconn *idle[SQL_POOL_MAX];
	int nidle;
} sql_local;

static void
sql_notice(void *arg, const char *message)
{
	log_info("server says: %s", message);
}

/*
 * An idle pooled connection may have been closed by the server meanwhile
 * (a terminated backend, idle_session_timeout): PQstatus() only knows what
 * the client last saw. A server that closed it has said so on the socket.
 * Using a dead one would cost the next task an attempt it never ran.
 */
static bool
sql_pool_alive(PGconn *conn)
{
	struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};

	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)
		return false;
	/* An idle connection has nothing to say unless the server is going
	 * away (a FATAL, then EOF); anything to read means: do not trust it,
	 * a new connection is cheap. */
	return poll(&pfd, 1, 0) == 0;
}

static PGconn *
sql_pool_take(const char *conninfo, const char *application_name, struct db_error *err)
{
	PGconn *conn;

	while (sql_local.nidle > 0) {
		conn = sql_local.idle[--sql_local.nidle];
		if (sql_pool_alive(conn))
			return conn;
		PQfinish(conn);
	}
	conn = db_connect(conninfo, application_name, err);
	if (conn != NULL)
		PQsetNoticeProcessor(conn, sql_notice, NULL);
	return conn;
}

void
sql_pool_close(void)
{
	while (sql_local.nidle > 0)
		PQfinish(sql_local.idle[--sql_local.nidle]);
}

/* Records a connection-level failure and ends the run. */
static void
sql_conn_lost(struct sql_run *r)
{
	r->errored = true;
	r->result = SQL_CONN_LOST;
	snprintf(r->err.message, sizeof r->err.message, "%s", PQerrorMessage(r->conn));
	r->err.sqlstate[0] = '\0';
	r->state = SQL_DONE;
}

/* Sends the statement for r->state; false when the connection failed. */
static bool
sql_send(struct sql_run *r)
{
	/* $1 jsonb, $2 bigint: typed so the handler's SQL needs no casts. */
	static const Oid types[2] = {3802 /* jsonb */, 20 /* int8 */};
	char id_s[24], timeout_s[24];
	const char *params[2];
	int ok = 0;

	r->step_ok = true;
	r->step_rows = 0;
	switch (r->state) {
	case SQL_BEGIN:
		ok = PQsendQuery(r->conn, "BEGIN");
		break;
	case SQL_TIMEOUT:
		snprintf(timeout_s, sizeof timeout_s, "%lld", (long long) r->timeout_ms);
		params[0] = timeout_s;
		ok = PQsendQueryParams(r->conn, embed_sql("sql_handler_timeout"), 1, NULL, params, NULL, NULL, 0);
		break;
	case SQL_STATEMENT:
		snprintf(id_s, sizeof id_s, "%lld", r->task->id);
		params[0] = r->task->payload;
		params[1] = id_s;
		ok = PQsendQueryParams(r->conn, r->statement, 2, types, params, NULL, NULL, 0);
		break;
	case SQL_COMPLETE:
		ok = queue_send_complete_one(r->conn, r->task);
		break;
	case SQL_COMMIT:
		ok = PQsendQuery(r->conn, "COMMIT");
		break;
	case SQL_ROLLBACK:
		ok = PQsendQuery(r->conn, "ROLLBACK");
		break;
	case SQL_DONE:
		return true;
	}
	return ok == 1;
}

bool
sql_start(struct sql_run *r, const char *conninfo, const char *application_name,
          const char *instance, const struct task *t, const char *statement, int64_t timeout_ms,
          struct db_error *err)
{
	memset(r, 0, sizeof *r);
	r->conn = sql_pool_take(conninfo, application_name, err);
	if (r->conn == NULL)
		return false;
	r->statement_copy = strdup(statement);
	if (r->statement_copy == NULL)
		abort();
	r->statement = r->statement_copy;
	r->task = t;
	r->instance = instance;
	r->timeout_ms = timeout_ms;
	r->state = SQL_BEGIN;
	if (!sql_send(r))
		sql_conn_lost(r);
	return true;
}

int
sql_socket(const struct sql_run *r)
{
	return r->state == SQL_DONE ? -1 : PQsocket(r->conn);
}

/* Keeps the first error of the transaction: it is the reason. */
static void
sql_keep_error(struct sql_run *r, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	r->step_ok = false;
	if (r->errored)
		return;
	r->errored = true;
	r->result = SQL_FAILED;
	snprintf(r->err.sqlstate, sizeof r->err.sqlstate, "%s", state != NULL ? state : "");
	snprintf(r->err.message, sizeof r->err.message, "%s",
	         msg != NULL ? msg : PQresultErrorMessage(res));
}

/* One statement has finished with outcome ok (rows: its row count):
 * choose the next. */
static void
sql_advance(struct sql_run *r, bool ok, int rows)
{
	switch (r->state) {
	case SQL_BEGIN:
	case SQL_TIMEOUT:
	case SQL_STATEMENT:
		r->state = ok ? r->state + 1 : SQL_ROLLBACK;
		break;
	case SQL_COMPLETE:
		if (ok && rows == 0) {
			r->errored = true;
			r->result = SQL_LEASE_LOST;
		}
		r->state = ok && rows == 1 ? SQL_COMMIT : SQL_ROLLBACK;
		break;
	case SQL_COMMIT:
		if (ok)
			r->result = SQL_OK;
		r->state = SQL_DONE;
		return;
	case SQL_ROLLBACK:
	case SQL_DONE:
		r->state = SQL_DONE;
		return;
	}
	if (!sql_send(r))
		sql_conn_lost(r);
}

void
sql_on_ready(struct sql_run *r)
{
	if (r->state == SQL_DONE)
		return;
	if (PQconsumeInput(r->conn) == 0) {
		sql_conn_lost(r);
		return;
	}
	while (r->state != SQL_DONE && !PQisBusy(r->conn)) {
		/* A statement yields its results, then NULL; they may arrive over
		 * several wake-ups, so what they said is kept in r. */
		PGresult *res = PQgetResult(r->conn);

		if (res != NULL) {
			ExecStatusType st = PQresultStatus(res);

			if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
				/* libpq would hand out the COPY state forever. End the
				 * run; sql_finish() closes the connection, which rolls
				 * the transaction back. */
				PQclear(res);
				r->errored = true;
				r->result = SQL_FAILED;
				snprintf(r->err.message, sizeof r->err.message,
				         "COPY is not supported in a SQL handler");
				r->state = SQL_DONE;
				return;
			}
			if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
				r->step_rows = PQntuples(res);
			else
				sql_keep_error(r, res);
			PQclear(res);
			continue;
		}
		if (PQstatus(r->conn) != CONNECTION_OK) {
			sql_conn_lost(r);
			return;
		}
		sql_advance(r, r->step_ok, r->step_rows);
	}
}

void
sql_cancel(struct sql_run *r)
{
	PGcancel *c;
	char buf[256];

	if (r->state == SQL_DONE || r->cancelled)
		return;
	r->cancelled = true;
	c = PQgetCancel(r->conn);
	if (c != NULL) {
		/* Blocking, but brief: one short-lived connection to the server. */
		if (!PQcancel(c, buf, sizeof buf))
			log_warn("cancelling a SQL handler failed: %s", buf);
		PQfreeCancel(c);
	}
}

void
sql_finish(struct sql_run *r)
{
	if (r->conn != NULL) {
		bool reusable = r->state == SQL_DONE && PQstatus(r->conn) == CONNECTION_OK
		                && PQtransactionStatus(r->conn) == PQTRANS_IDLE;

		if (reusable && sql_local.nidle < SQL_POOL_MAX)
			sql_local.idle[sql_local.nidle++] = r->conn;
		else
			PQfinish(r->conn);
	}
	free(r->statement_copy);
	memset(r, 0, sizeof *r);
}
