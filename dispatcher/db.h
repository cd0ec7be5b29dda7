/*
 * libpq behind one door: connecting with safe defaults, running a statement
 * with its result checked, and keeping passwords out of every message.
 *
 * The database layer (session, work, listener, queue, notify_queue, migrate,
 * admin, and the SQL handler type) gets <libpq-fe.h> through this header and
 * alone calls libpq; outbox, claimer and lease see results only as opaque
 * PGresult pointers handed to queue.c's readers, and the rest of the code
 * (daemon, slots, config, json, log, task, the other handler types) never
 * sees libpq (docs/design.md, "The parts").
 */
#ifndef PGDISPATCH_DB_H
#define PGDISPATCH_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#define DB_MUSTCHECK __attribute__((warn_unused_result))

/* Why a statement or a connection failed, in libpq's own words. */
struct db_error {
	char sqlstate[6];    /* "" when the failure has no SQLSTATE */
	char message[1024];  /* trimmed, one line per libpq line, no password */
};

/*
 * Connects with libpq. conninfo is a key=value string or a URI; NULL or ""
 * means libpq's PG* environment. Defaults that a daemon wants (TCP
 * keepalives, a connect timeout, application_name) come first, so that
 * anything in conninfo or the environment overrides them. Returns NULL with
 * err filled, never a half-open connection; the caller PQfinish()es.
 */
PGconn *db_connect(const char *conninfo, const char *application_name,
                   struct db_error *err) DB_MUSTCHECK;

/* Our connect_timeout unless the environment or conninfo sets one. */
#define DB_CONNECT_TIMEOUT_S "10"

/* A connection on its way up, for callers that must not block. */
struct db_connecting {
	int64_t deadline_ms;  /* connect_timeout, on the caller's clock */
	short events;         /* what to poll() the socket (PQsocket) for next */
};

enum db_connect_state { DB_CONNECT_WAITING, DB_CONNECT_DONE, DB_CONNECT_FAILED };

/*
 * db_connect() without waiting: starts the connection (PQconnectStartParams,
 * same defaults) and fills c. The caller polls PQsocket(conn) for c->events,
 * then calls db_connect_continue(), until it returns DONE or FAILED; it
 * should also call it once c->deadline_ms has passed. attempt counts the
 * caller's failed attempts since its last success: with several hosts,
 * each attempt starts one host further along (see db.c). Returns NULL with
 * err filled when the connection cannot even start. Host names are still
 * resolved with a blocking getaddrinfo() inside libpq; hostaddr avoids it.
 */
PGconn *db_connect_start(const char *conninfo, const char *application_name, int attempt, int64_t now_ms,
                         struct db_connecting *c, struct db_error *err) DB_MUSTCHECK;

/* One step of a started connection. FAILED fills err (the caller
 * PQfinish()es conn); past the deadline, FAILED says so. */
enum db_connect_state db_connect_continue(PGconn *conn, const char *conninfo, struct db_connecting *c,
                                          int64_t now_ms, struct db_error *err);

/*
 * Runs sql with text parameters on conn. Returns the result when it is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK (the caller PQclear()s it), else NULL
 * with err filled.
 */
PGresult *db_exec(PGconn *conn, const char *sql, int nparams,
                  const char *const *params, struct db_error *err) DB_MUSTCHECK;

/* A result as db_exec() returns it: res when PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK, else NULL with res cleared and err filled (for results
 * taken with PQgetResult()). */
PGresult *db_check(PGconn *conn, PGresult *res, struct db_error *err) DB_MUSTCHECK;

/* Formats err as "SQLSTATE: message" or "message". Borrowed buffer. */
const char *db_error_text(const struct db_error *err, char *buf, size_t len);

/*
 * Copies msg into out with every occurrence of the password that conninfo
 * carries replaced by "********". When conninfo cannot be parsed (so its
 * password cannot be known) and it mentions a password at all, the message
 * is withheld instead. Used on every message that may echo a conninfo.
 */
void db_redact(const char *msg, const char *conninfo, char *out, size_t len);

/* conninfo as key=value pairs with any password removed, for logs. */
void db_conninfo_safe(const char *conninfo, char *out, size_t len);

#endif
