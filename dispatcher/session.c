/* The daemon's connections, made without blocking; see session.h. */
#include "session.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "handler_sql.h"
#include "listener.h"
#include "log.h"
#include "work.h"

#define SESSION_RECONNECT_MIN_MS 100
#define SESSION_RECONNECT_MAX_MS 30000

/* One connection on its way up. */
struct session_conn {
	PGconn *conn;
	struct db_connecting at;
	bool done;
};

static struct {
	const char *conninfo;
	char appname[64];
	bool listen;                 /* this attempt makes a LISTEN connection */
	bool connecting;
	struct session_conn up[2];   /* [0] LISTEN (when listen), [1] work */
	int failures;                /* attempts failed since the last success */
	int64_t retry_at_ms;         /* when down */
	int64_t retry_delay_ms;
} session_local;

void
session_setup(const char *conninfo, const char *name)
{
	session_local.conninfo = conninfo;
	/* application_name holds 63 bytes; longer is cut by the server anyway. */
	snprintf(session_local.appname, sizeof session_local.appname, "pgdispatch %.52s", name);
	session_local.retry_delay_ms = SESSION_RECONNECT_MIN_MS;
}

bool
session_connecting(void)
{
	return session_local.connecting;
}

bool
session_up(void)
{
	return work_attached();
}

static void
session_drop_pending(void)
{
	for (int i = 0; i < 2; i++) {
		if (session_local.up[i].conn != NULL)
			PQfinish(session_local.up[i].conn);
		session_local.up[i].conn = NULL;
	}
}

void
session_lost(const char *why)
{
	char safe[1200];

	if (session_local.connecting)
		session_local.failures++;
	session_local.connecting = false;
	session_drop_pending();
	listener_detach();
	/* Every statement on its way now fails: each module keeps what it
	 * must (the outbox its outcomes, the lease tick its next turn). */
	work_detach();
	/* Idle SQL handler connections most likely died with the others. */
	sql_pool_close();
	session_local.retry_at_ms = clock_now_ms() + session_local.retry_delay_ms;
	db_redact(why, session_local.conninfo, safe, sizeof safe);
	log_warn("database connection lost: %s; reconnecting in %lld ms", safe,
	         (long long) session_local.retry_delay_ms);
	session_local.retry_delay_ms *= 2;
	if (session_local.retry_delay_ms > SESSION_RECONNECT_MAX_MS)
		session_local.retry_delay_ms = SESSION_RECONNECT_MAX_MS;
}

void
session_start(bool listen, int64_t now)
{
	struct db_error err;

	session_local.listen = listen;
	session_local.connecting = true;
	for (int i = 0; i < 2; i++) {
		struct session_conn *c = &session_local.up[i];

		c->done = i == 0 && !listen;
		if (c->done)
			continue;
		c->conn = db_connect_start(session_local.conninfo, session_local.appname, session_local.failures, now,
		                           &c->at, &err);
		if (c->conn == NULL) {
			session_lost(err.message);
			return;
		}
	}
}

/* Server notices go to our log, not to libpq's stderr default. */
static void
session_notice(void *arg, const char *message)
{
	log_info("server says: %s", message);
}

/* Both connections are up: hand them over. */
static bool
session_finish(void)
{
	char safe[512];
	struct db_error err;
	PGconn *listen = session_local.up[0].conn, *work = session_local.up[1].conn;

	session_local.connecting = false;
	session_local.up[0].conn = session_local.up[1].conn = NULL;
	PQsetNoticeProcessor(work, session_notice, NULL);
	/* Poll-only mode is for PgBouncer's transaction pooling, where a
	 * session setting does not follow the next statement: its statements
	 * are unnamed, planned with their values anyway (work.h). */
	work_attach(work, session_local.listen);
	if (listen != NULL) {
		PQsetNoticeProcessor(listen, session_notice, NULL);
		if (!listener_attach(listen, &err)) {
			session_lost(err.message);
			return false;
		}
	}
	if (session_local.listen)
		work_send("work_session", 0, NULL, NULL, NULL);
	db_conninfo_safe(session_local.conninfo, safe, sizeof safe);
	log_info("connected database=\"%s\" listen=%s", safe, listen != NULL ? "yes" : "no");
	session_local.retry_delay_ms = SESSION_RECONNECT_MIN_MS;
	session_local.failures = 0;
	return true;
}

int
session_pollfds(struct pollfd *pfds)
{
	int n = 0;

	if (!session_local.connecting)
		return 0;
	for (int i = 0; i < 2; i++)
		if (session_local.up[i].conn != NULL && !session_local.up[i].done)
			pfds[n++] = (struct pollfd){.fd = PQsocket(session_local.up[i].conn),
			                            .events = session_local.up[i].at.events};
	return n;
}

bool
session_step(const struct pollfd *pfds, int n, int64_t now, bool listen)
{
	int p = 0;

	if (!session_local.connecting) {
		if (!work_attached() && now >= session_local.retry_at_ms)
			session_start(listen, now);
		return false;
	}
	for (int i = 0; i < 2; i++) {
		struct session_conn *c = &session_local.up[i];
		struct db_error err;
		short revents;

		if (c->conn == NULL || c->done)
			continue;
		revents = p < n ? pfds[p++].revents : 0;
		if (revents == 0 && now < c->at.deadline_ms)
			continue;
		switch (db_connect_continue(c->conn, session_local.conninfo, &c->at, now, &err)) {
		case DB_CONNECT_DONE:
			c->done = true;
			break;
		case DB_CONNECT_WAITING:
			break;
		default:
			session_lost(err.message);
			return false;
		}
	}
	return session_local.up[0].done && session_local.up[1].done && session_finish();
}

int64_t
session_next_ms(void)
{
	int64_t due = INT64_MAX;

	if (work_attached())
		return due;
	if (!session_local.connecting)
		return session_local.retry_at_ms;
	for (int i = 0; i < 2; i++)
		if (session_local.up[i].conn != NULL && !session_local.up[i].done && session_local.up[i].at.deadline_ms < due)
			due = session_local.up[i].at.deadline_ms;
	return due;
}

void
session_close(void)
{
	session_drop_pending();
	listener_detach();
	work_detach();
}
