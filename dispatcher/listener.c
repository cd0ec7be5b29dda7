/* The LISTEN connection; see listener.h. */
#include "listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "json.h"
#include "source.h"

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
	struct json_buf sql = {0};
	int ok;

	memset(err, 0, sizeof *err);
	/* Our channels, then each source's own (docs/sources.md), quoted:
	 * pg_notify() takes the channel's name as it is, capitals kept. */
	json_buf_printf(&sql, "%s", embed_sql("listen"));
	for (size_t i = 1; i <= source_count(); i++) {
		const struct source *src = source_get((int) i);
		char *q;

		if (src->channel == NULL)
			continue;
		q = PQescapeIdentifier(conn, src->channel, strlen(src->channel));
		if (q == NULL)
			abort();
		json_buf_printf(&sql, ";\nLISTEN %s", q);
		PQfreemem(q);
	}
	ok = PQsendQuery(conn, sql.data);
	json_buf_free(&sql);
	if (ok == 0) {
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
		} else if (strcmp(n->relname, "dispatch_tasks") != 0) {
			/* dispatch_sources or a source's own channel: its payload
			 * is only a hint, whatever the table's trigger sends. */
			news->claim = true;
		} else {
			for (size_t q = 0; q < cfg->nqueues; q++)
				if (strcmp(n->extra, cfg->queues[q]) == 0)
					news->claim = true;
		}
		PQfreemem(n);
	}
	return true;
}
