/* SQL handlers as a state machine over a pooled connection; see handler_sql.h. */
#include "handler_sql.h"

#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "embed.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "policy.h"
#include "queue.h"
#include "slots.h"
#include "source.h"

#define SQL_POOL_MAX 64
#define SQL_CONNECT_BACKOFF_INITIAL_MS 1000  /* after the first connect failure */
#define SQL_CONNECT_BACKOFF_MAX_MS 30000

static struct {
	PGconn *idle[SQL_POOL_MAX];  /* idle connections kept for the next SQL handler */
	int nidle;
	/* Connects that failed in a row, whichever runs made them; reset by
	 * one that succeeds. It sets the backoff before a task without a
	 * connection is tried again. */
	int connect_failures;
	/* Which host of a multi-host connection string the next connect
	 * starts at (db_connect_start takes it modulo the hosts): each
	 * failure moves it one host along, a success leaves it at the host
	 * that answered, so a host that never answers costs one timeout, not
	 * one per new connection. */
	int next_host;
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

/* An idle pooled connection that still works, or NULL. */
static PGconn *
sql_pool_take(void)
{
	while (sql_local.nidle > 0) {
		PGconn *conn = sql_local.idle[--sql_local.nidle];

		if (sql_pool_alive(conn))
			return conn;
		PQfinish(conn);
	}
	return NULL;
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

/*
 * No connection could be had (r->err says why): the run ends without
 * having sent anything. Each such failure in a row doubles the wait before
 * the task is tried again (1 s, 2 s, 4 s ... 30 s, jittered): the server is
 * refusing connections (the role's or the server's limit) or not
 * answering, and tasks coming straight back would only hammer it.
 */
static void
sql_no_conn(struct sql_run *r)
{
	if (r->conn != NULL)
		PQfinish(r->conn);
	r->conn = NULL;
	if (sql_local.connect_failures < INT_MAX)
		sql_local.connect_failures++;
	sql_local.next_host = sql_local.next_host < INT_MAX ? sql_local.next_host + 1 : 0;
	r->retry_in_ms = policy_backoff_ms(sql_local.connect_failures, SQL_CONNECT_BACKOFF_INITIAL_MS,
	                                 SQL_CONNECT_BACKOFF_MAX_MS);
	r->errored = true;
	r->result = SQL_NO_CONN;
	r->state = SQL_DONE;
}

/* Sends the statement for r->state; false when the connection failed. */
static bool
sql_send(struct sql_run *r)
{
	/* $1 jsonb, $2 bigint: typed so the handler's SQL needs no casts. A
	 * source's row: $2 its key, typed as its key column. */
	Oid types[2] = {3802 /* jsonb */, 20 /* int8 */};
	const struct source *src = source_get(r->task->source);
	char id_s[24], timeout_s[24];
	const char *params[2];
	int ok = 0;

	r->step_ok = true;
	r->step_rows = 0;
	switch (r->state) {
	case SQL_CONNECTING:
		return true;
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
		if (src != NULL) {
			types[1] = (Oid) src->shape.key_type_oid;
			params[1] = r->task->key;
		}
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

void
sql_start(struct sql_run *r, const char *conninfo, const char *application_name,
          const char *instance, const struct task *t, const char *statement, int64_t timeout_ms,
          int64_t now)
{
	memset(r, 0, sizeof *r);
	r->statement_copy = mem_strdup(statement);
	r->statement = r->statement_copy;
	r->task = t;
	r->instance = instance;
	r->timeout_ms = timeout_ms;
	r->conn = sql_pool_take();
	if (r->conn != NULL) {
		r->state = SQL_BEGIN;
		if (!sql_send(r))
			sql_conn_lost(r);
		return;
	}
	/* A blocking connect would stall the whole loop for up to
	 * connect_timeout (every lease, deadline and signal with it) each
	 * time the server is slow to answer or does not answer at all. */
	r->state = SQL_CONNECTING;
	r->conninfo = conninfo != NULL ? mem_strdup(conninfo) : NULL;
	log_debug("task=%s kind=%s attempt=%d connecting for its SQL handler", task_name(t), t->kind,
	          t->attempt);
	r->conn = db_connect_start(conninfo, application_name, sql_local.next_host, now, &r->up, &r->err);
	if (r->conn == NULL)
		sql_no_conn(r);
}

int
sql_socket(const struct sql_run *r)
{
	return r->state == SQL_DONE ? -1 : PQsocket(r->conn);
}

short
sql_events(const struct sql_run *r)
{
	return r->state == SQL_CONNECTING ? r->up.events : POLLIN;
}

int64_t
sql_deadline(const struct sql_run *r)
{
	/* Once connected, the statements' deadline is the server's
	 * statement_timeout. */
	return r->state == SQL_CONNECTING ? r->up.deadline_ms : INT64_MAX;
}

/* One step of the connect: on to BEGIN once it is up. */
static void
sql_connect_step(struct sql_run *r, short revents, int64_t now)
{
	if (revents == 0 && now < r->up.deadline_ms)
		return;
	switch (db_connect_continue(r->conn, r->conninfo, &r->up, now, &r->err)) {
	case DB_CONNECT_WAITING:
		return;
	case DB_CONNECT_FAILED:
		sql_no_conn(r);
		return;
	case DB_CONNECT_DONE:
		break;
	}
	sql_local.connect_failures = 0;
	PQsetNoticeProcessor(r->conn, sql_notice, NULL);
	r->state = SQL_BEGIN;
	if (!sql_send(r))
		sql_conn_lost(r);
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
	case SQL_CONNECTING:  /* no statement yet: sql_connect_step() moves on */
	case SQL_ROLLBACK:
	case SQL_DONE:
		r->state = SQL_DONE;
		return;
	}
	if (!sql_send(r))
		sql_conn_lost(r);
}

void
sql_on_ready(struct sql_run *r, short revents, int64_t now)
{
	if (r->state == SQL_DONE)
		return;
	if (r->state == SQL_CONNECTING) {
		sql_connect_step(r, revents, now);
		return;
	}
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
	if (r->state == SQL_CONNECTING) {
		/* Nothing was sent: drop the connect. Not a connect failure, so
		 * the backoff is left alone. */
		PQfinish(r->conn);
		r->conn = NULL;
		snprintf(r->err.message, sizeof r->err.message, "stopped while connecting");
		r->errored = true;
		r->result = SQL_NO_CONN;
		r->state = SQL_DONE;
		return;
	}
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
	free(r->conninfo);
	memset(r, 0, sizeof *r);
}

/* --- the handler type ------------------------------------------------- */

/* One task's run, as the handler type keeps it. */
struct sql_task {
	struct sql_run run;
	struct handler_task *ht;
	int fd;                     /* the socket watched for it; -1: none */
	struct sql_task *next, **prev;
};

static struct {
	struct sql_task *running;
} sql_tasks;

/* What the run's end means to the slot: the report; text is its room. */
static struct handler_report
sql_report(const struct sql_run *r, struct json_buf *text)
{
	struct handler_report rep = {.end = HANDLER_FAILED};
	char why[1200];

	db_error_text(&r->err, why, sizeof why);
	switch (r->result) {
	case SQL_OK:
		rep.end = HANDLER_COMMITTED;
		return rep;
	case SQL_LEASE_LOST:
		rep.end = HANDLER_LEASE_LOST;
		return rep;
	case SQL_NO_CONN:
		rep.end = HANDLER_NOT_RUN;
		rep.delay_ms = r->retry_in_ms;
		json_buf_printf(text, "no database connection for the SQL handler: ");
		json_append_text(text, why, strlen(why));
		json_buf_printf(text, "; the attempt was not counted");
		break;
	case SQL_CONN_LOST:
		json_buf_printf(text, "database connection lost while the SQL handler ran: ");
		/* fall through */
	case SQL_FAILED:
		/* Nothing of it committed that we know of, and if the COMMIT did
		 * land, the fence keeps this failure from overwriting it. */
		json_append_text(text, why, strlen(why));
		break;
	}
	rep.error = text->data;
	return rep;
}

/* The run has ended: its connection back to the pool, then the report. */
static void
sql_end(struct sql_task *st)
{
	struct handler_task *ht = st->ht;
	struct json_buf text = {0};
	struct handler_report rep = sql_report(&st->run, &text);

	handler_unwatch(st->fd);
	*st->prev = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	sql_finish(&st->run);
	free(st);
	ht->state = NULL;
	slots_done(ht, &rep);
	json_buf_free(&text);
}

/* After each step: ended, or its socket (and what it waits for) watched. */
static void
sql_after_step(struct sql_task *st)
{
	int fd;

	if (st->run.state == SQL_DONE) {
		sql_end(st);
		return;
	}
	fd = sql_socket(&st->run);
	if (fd != st->fd)
		handler_unwatch(st->fd);
	handler_watch(fd, sql_events(&st->run), &handler_sql_ops, st);
	st->fd = fd;
}

static void
sql_start_task(struct handler_task *ht, const struct handler_config *hc, const struct handler_env *env)
{
	struct sql_task *st = calloc(1, sizeof *st);
	char appname[64];

	if (st == NULL)
		abort();
	st->ht = ht;
	st->fd = -1;
	ht->state = st;
	st->next = sql_tasks.running;
	st->prev = &sql_tasks.running;
	if (st->next != NULL)
		st->next->prev = &st->next;
	sql_tasks.running = st;
	snprintf(appname, sizeof appname, "pgdispatch %.52s", env->instance);
	sql_start(&st->run, env->conninfo, appname, env->instance, ht->task, hc->sql,
	          ht->policy->timeout_ms, ht->started_ms);
	sql_after_step(st);
}

static void
sql_ready(int fd, short revents, void *arg)
{
	struct sql_task *st = arg;

	sql_on_ready(&st->run, revents, clock_now_ms());
	sql_after_step(st);
}

static int64_t
sql_next_deadline(void)
{
	int64_t due = INT64_MAX;

	for (const struct sql_task *st = sql_tasks.running; st != NULL; st = st->next)
		if (sql_deadline(&st->run) < due)
			due = sql_deadline(&st->run);
	return due;
}

/* A connect's deadline is ours to keep; a statement's is the server's
 * (statement_timeout). */
static void
sql_tick(int64_t now)
{
	struct sql_task *st = sql_tasks.running, *next;

	for (; st != NULL; st = next) {
		next = st->next;
		if (now >= sql_deadline(&st->run)) {
			sql_on_ready(&st->run, 0, now);
			sql_after_step(st);
		}
	}
}

/* One still connecting ends at once; a running statement is cancelled and
 * ends when the server says so. */
static void
sql_stop(struct handler_task *ht)
{
	struct sql_task *st = ht->state;

	sql_cancel(&st->run);
	sql_after_step(st);
}

/* Closing the connection mid-transaction rolls it back. */
static void
sql_kill(struct handler_task *ht)
{
	struct sql_task *st = ht->state;

	sql_cancel(&st->run);
	sql_end(st);
}

const struct handler_ops handler_sql_ops = {
	.name = "sql",
	.label = "SQL handler",
	.start = sql_start_task,
	.ready = sql_ready,
	.next_deadline = sql_next_deadline,
	.tick = sql_tick,
	.stop = sql_stop,
	.kill = sql_kill,
};
