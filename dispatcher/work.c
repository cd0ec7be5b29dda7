/* The work connection's statements, sent without waiting; see work.h. */
#include "work.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "mem.h"

#define WORK_MAX_PARAMS 12
#define WORK_MAX_PREPARED 256   /* ours, and 7 per source */

struct work_req {
	struct work_req *next;
	const char *name;            /* sql/NAME.sql, or the name sql is prepared as; static */
	const char *sql;             /* NULL: sql/NAME.sql; else the text (a source's, static) */
	int nparams;
	char *params[WORK_MAX_PARAMS];
	bool unnamed;                /* sent with its text even when preparing */
	work_done_fn done;
	void *ctx;
};

static struct {
	PGconn *conn;
	bool prepared;               /* prepare statements (else send them unnamed) */
	struct work_req *head, *tail;
	size_t count;
	bool sent;                   /* head is on the wire */
	bool preparing;              /* ... and what is on the wire is its PREPARE */
	bool flush;                  /* libpq holds output it could not write yet */
	PGresult *result;            /* head's first result, while the rest arrive */
	const char *ready[WORK_MAX_PREPARED];   /* names prepared on conn */
	size_t nready;
} work_local;

static void
work_req_free(struct work_req *r)
{
	for (int i = 0; i < r->nparams; i++)
		free(r->params[i]);
	free(r);
}

static bool
work_is_prepared(const char *name)
{
	for (size_t i = 0; i < work_local.nready; i++)
		if (strcmp(work_local.ready[i], name) == 0)
			return true;
	return false;
}

/* Puts the head request on the wire (its PREPARE first when it has none
 * on this connection yet). Returns false when libpq refused. */
static bool
work_send_head(void)
{
	struct work_req *r = work_local.head;
	const char *sql = r->sql != NULL ? r->sql : embed_sql(r->name);
	int ok;

	if (r->unnamed || !work_local.prepared) {
		ok = PQsendQueryParams(work_local.conn, sql, r->nparams, NULL, (const char *const *) r->params,
		                       NULL, NULL, 0);
		work_local.preparing = false;
	} else if (!work_is_prepared(r->name)) {
		ok = PQsendPrepare(work_local.conn, r->name, sql, 0, NULL);
		work_local.preparing = true;
	} else {
		ok = PQsendQueryPrepared(work_local.conn, r->name, r->nparams, (const char *const *) r->params,
		                         NULL, NULL, 0);
		work_local.preparing = false;
	}
	if (!ok)
		return false;
	work_local.sent = true;
	work_local.flush = PQflush(work_local.conn) == 1;
	return true;
}

void
work_attach(PGconn *conn, bool prepared)
{
	work_local.conn = conn;
	work_local.prepared = prepared;
	work_local.nready = 0;
	/* Large parameter arrays must not make PQsend* wait for the socket. */
	(void) PQsetnonblocking(conn, 1);
}

bool
work_attached(void)
{
	return work_local.conn != NULL;
}

bool
work_prepared(void)
{
	return work_local.prepared;
}

size_t
work_pending(void)
{
	return work_local.count;
}

/*
 * After the server said a prepared statement no longer exists (26000) or
 * can no longer run as prepared (0A000: a migration or an ALTER TABLE
 * changed its result type), forget them all, on the server first: the
 * statements are prepared afresh on their next use. The failed statement
 * itself has failed; its owner tries again as it would after any error.
 */
static void
work_forget_prepared(void)
{
	struct work_req *r = calloc(1, sizeof *r);

	if (r == NULL)
		abort();
	r->name = "work_forget";
	r->unnamed = true;
	/* Right behind the head, which is ending: before anything else. */
	r->next = work_local.head->next;
	work_local.head->next = r;
	if (work_local.tail == work_local.head)
		work_local.tail = r;
	work_local.count++;
	work_local.nready = 0;
}

/* Ends the head request with res (or a failure) and frees it. */
static void
work_finish_head(PGresult *res, const struct db_error *err)
{
	struct work_req *r = work_local.head;

	work_local.head = r->next;
	if (work_local.head == NULL)
		work_local.tail = NULL;
	work_local.count--;
	work_local.sent = false;
	if (r->done != NULL)
		r->done(r->ctx, res, err);
	work_req_free(r);
}

void
work_detach(void)
{
	struct db_error err = {.message = "database connection lost"};

	if (work_local.conn != NULL)
		PQfinish(work_local.conn);
	work_local.conn = NULL;
	PQclear(work_local.result);
	work_local.result = NULL;
	work_local.flush = false;
	/* A callback may queue more (which then fails at once too). */
	while (work_local.head != NULL)
		work_finish_head(NULL, &err);
}

void
work_send(const char *name, int nparams, const char *const *params, work_done_fn done, void *ctx)
{
	work_send_sql(name, NULL, nparams, params, done, ctx);
}

void
work_send_sql(const char *name, const char *sql, int nparams, const char *const *params, work_done_fn done,
              void *ctx)
{
	struct work_req *r;

	if (work_local.conn == NULL) {
		struct db_error err = {.message = "no database connection"};

		if (done != NULL)
			done(ctx, NULL, &err);
		return;
	}
	r = calloc(1, sizeof *r);
	if (r == NULL || nparams > WORK_MAX_PARAMS)
		abort();
	r->name = name;
	r->sql = sql;
	r->nparams = nparams;
	for (int i = 0; i < nparams; i++)
		r->params[i] = params[i] != NULL ? mem_strdup(params[i]) : NULL;
	r->unnamed = strcmp(name, "work_session") == 0 || strcmp(name, "work_forget") == 0;
	r->done = done;
	r->ctx = ctx;
	if (work_local.tail != NULL)
		work_local.tail->next = r;
	else
		work_local.head = r;
	work_local.tail = r;
	work_local.count++;
}

int
work_socket(void)
{
	return work_local.conn != NULL ? PQsocket(work_local.conn) : -1;
}

short
work_events(void)
{
	return (short) (POLLIN | (work_local.flush ? POLLOUT : 0));
}

/* The connection failed under us: fills err from libpq. */
static bool
work_broken(struct db_error *err)
{
	memset(err, 0, sizeof *err);
	snprintf(err->message, sizeof err->message, "%s", PQerrorMessage(work_local.conn));
	for (size_t n = strlen(err->message); n > 0 && (err->message[n - 1] == '\n' || err->message[n - 1] == ' ');)
		err->message[--n] = '\0';
	if (err->message[0] == '\0')
		snprintf(err->message, sizeof err->message, "connection to the server was lost");
	return false;
}

/* Collects the results of what is on the wire; true while the connection
 * holds up. Ends the head request once its last result is in. */
static bool
work_collect(struct db_error *err)
{
	PGconn *conn = work_local.conn;

	while (work_local.sent && conn == work_local.conn && !PQisBusy(conn)) {
		PGresult *res = PQgetResult(conn);

		if (res != NULL) {
			if (work_local.result == NULL)
				work_local.result = res;
			else
				PQclear(res);
			continue;
		}
		/* That was the last one. */
		res = work_local.result;
		work_local.result = NULL;
		if (work_local.preparing) {
			struct db_error perr;
			PGresult *ok = db_check(conn, res, &perr);

			work_local.sent = false;
			if (ok == NULL) {
				work_finish_head(NULL, &perr);
			} else {
				PQclear(ok);
				if (work_local.nready < WORK_MAX_PREPARED)
					work_local.ready[work_local.nready++] = work_local.head->name;
			}
		} else {
			struct db_error serr;
			PGresult *ok = db_check(conn, res, &serr);

			if (ok == NULL && work_local.prepared
			    && (strcmp(serr.sqlstate, "26000") == 0 || strcmp(serr.sqlstate, "0A000") == 0))
				work_forget_prepared();
			work_finish_head(ok, &serr);
			PQclear(ok);
		}
		/* A callback may have given up on the connection. */
		if (work_local.conn != conn)
			return true;
		if (PQstatus(conn) == CONNECTION_BAD)
			return work_broken(err);
	}
	return true;
}

bool
work_on_ready(struct db_error *err)
{
	PGconn *conn = work_local.conn;

	if (conn == NULL)
		return true;
	if (work_local.flush) {
		int f = PQflush(conn);

		if (f < 0)
			return work_broken(err);
		work_local.flush = f == 1;
	}
	if (PQconsumeInput(conn) == 0)
		return work_broken(err);
	if (!work_collect(err))
		return false;
	/* Send the next one; it may already be answered by the time the loop
	 * polls again, so collect once more. */
	while (work_local.conn == conn && !work_local.sent && work_local.head != NULL) {
		if (!work_send_head())
			return work_broken(err);
		if (!work_collect(err))
			return false;
	}
	return true;
}
