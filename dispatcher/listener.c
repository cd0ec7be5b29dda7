/* The LISTEN connection; see listener.h. */
#include "listener.h"

#include <stdio.h>
#include <string.h>

#include "embed.h"

static struct {
	PGconn *conn;
	bool listening;              /* LISTEN has answered: it is in effect */
} listener_local;

bool
listener_attach(PGconn *conn, struct db_error *err)
{
	listener_local.conn = conn;
	listener_local.listening = false;
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

bool
listener_drain(const struct config *cfg, bool *broken, struct db_error *err)
{
	PGconn *conn = listener_local.conn;
	PGnotify *n;
	bool wanted = false;

	*broken = false;
	if (conn == NULL)
		return false;
	if (PQflush(conn) < 0 || PQconsumeInput(conn) == 0) {
		memset(err, 0, sizeof *err);
		snprintf(err->message, sizeof err->message, "%s", PQerrorMessage(conn));
		*broken = true;
		return false;
	}
	/* LISTEN's own answer: a failed LISTEN leaves the daemon deaf, which
	 * only a new connection mends. */
	while (!PQisBusy(conn)) {
		PGresult *res = PQgetResult(conn);

		if (res == NULL)
			break;
		if (db_check(conn, res, err) == NULL) {
			*broken = true;
			return false;
		}
		PQclear(res);
		listener_local.listening = true;
	}
	while ((n = PQnotifies(conn)) != NULL) {
		for (size_t q = 0; q < cfg->nqueues; q++)
			if (strcmp(n->extra, cfg->queues[q]) == 0)
				wanted = true;
		PQfreemem(n);
	}
	return wanted;
}
