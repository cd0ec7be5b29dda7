/* The LISTEN connection; see listener.h. */
#include "listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"

static struct {
	PGconn *conn;
	bool listening;              /* LISTEN has answered: it is in effect */
	int answers;                 /* results of sql/listen.sql read so far */
} listener_local;

bool
listener_attach(PGconn *conn, struct db_error *err)
{
	listener_local.conn = conn;
	listener_local.listening = false;
	listener_local.answers = 0;
	memset(err, 0, sizeof *err);
	if (PQsendQuery(conn, embed_sql("listen")) == 0) {
		snprintf(err->message, sizeof err->message, "sending LISTEN: %s", PQerrorMessage(conn));
		return false;
	}
	/* LISTEN is tiny; if it could not all go out, the drain sends the
	 * rest (PQconsumeInput flushes first). */
	(void) PQflush(conn);
	return true;
}

void
listener_detach(void)
{
	if (listener_local.conn != NULL)
		PQfinish(listener_local.conn);
	listener_local.conn = NULL;
}

bool
listener_listening(void)
{
	return listener_local.listening;
}

int
listener_socket(void)
{
	return listener_local.conn != NULL ? PQsocket(listener_local.conn) : -1;
}

/* A dispatch_cancel payload: the task id, in decimal. */
static bool
listener_task_id(const char *payload, long long *id)
{
	char *end;

	*id = strtoll(payload, &end, 10);
	return end != payload && *end == '\0';
}

bool
listener_drain(const struct config *cfg, bool (*runs)(long long id), struct listener_news *news,
               struct db_error *err)
{
	PGconn *conn = listener_local.conn;
	PGnotify *n;

	memset(news, 0, sizeof *news);
	if (conn == NULL)
		return true;
	if (PQflush(conn) < 0 || PQconsumeInput(conn) == 0) {
		memset(err, 0, sizeof *err);
		snprintf(err->message, sizeof err->message, "%s", PQerrorMessage(conn));
		return false;
	}
	/* LISTEN's own answers: a failed LISTEN leaves the daemon deaf, which
	 * only a new connection mends. The LISTENs of sql/listen.sql run in
	 * one implicit transaction, and take effect when it commits, which is
	 * after the first one answers: they are in effect only once the
	 * request has ended (the end of the results, NULL). */
	while (!PQisBusy(conn)) {
		PGresult *res = PQgetResult(conn);

		if (res == NULL) {
			if (listener_local.answers > 0)
				listener_local.listening = true;
			break;
		}
		if (db_check(conn, res, err) == NULL)
			return false;
		PQclear(res);
		listener_local.answers++;
	}
	while ((n = PQnotifies(conn)) != NULL) {
		long long id;

		if (strcmp(n->relname, "dispatch_cancel") == 0) {
			if (listener_task_id(n->extra, &id) && runs(id))
				news->cancel = true;
		} else {
			for (size_t q = 0; q < cfg->nqueues; q++)
				if (strcmp(n->extra, cfg->queues[q]) == 0)
					news->claim = true;
		}
		PQfreemem(n);
	}
	return true;
}
