/* libpq connections and checked statements; see db.h. */
#include "db.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_REDACTED "********"

/* Copies src into dst, dropping trailing newlines and joining lines with
 * "; " so one failure stays one log line. */
static void
db_trim_copy(char *dst, size_t len, const char *src)
{
	size_t n = 0;

	if (len == 0)
		return;
	for (const char *p = src; *p != '\0' && n + 1 < len; p++) {
		if (*p == '\n') {
			if (p[1] == '\0')
				break;
			if (n + 3 < len) {
				dst[n++] = ';';
				dst[n++] = ' ';
			}
			continue;
		}
		dst[n++] = *p;
	}
	dst[n] = '\0';
}

/* True when conninfo could carry a password we failed to parse out. */
static bool
db_mentions_password(const char *conninfo)
{
	return strstr(conninfo, "password") != NULL || strchr(conninfo, '@') != NULL;
}

void
db_redact(const char *msg, const char *conninfo, char *out, size_t len)
{
	PQconninfoOption *opts;
	const char *password = NULL;
	char *parse_err = NULL;
	char redacted[2048];
	size_t n = 0;

	if (conninfo == NULL || conninfo[0] == '\0') {
		db_trim_copy(out, len, msg);
		return;
	}
	opts = PQconninfoParse(conninfo, &parse_err);
	if (opts == NULL) {
		PQfreemem(parse_err);
		if (db_mentions_password(conninfo))
			snprintf(out, len, "invalid connection string (details withheld: it may hold a password)");
		else
			db_trim_copy(out, len, msg);
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
			password = o->val;

	/* Redact the raw text first: trimming could split the password. */
	for (const char *p = msg; *p != '\0' && n + 1 < sizeof redacted;) {
		if (password != NULL && strncmp(p, password, strlen(password)) == 0) {
			for (const char *r = DB_REDACTED; *r != '\0' && n + 1 < sizeof redacted; r++)
				redacted[n++] = *r;
			p += strlen(password);
		} else {
			redacted[n++] = *p++;
		}
	}
	redacted[n] = '\0';
	PQconninfoFree(opts);
	db_trim_copy(out, len, redacted);
}

void
db_conninfo_safe(const char *conninfo, char *out, size_t len)
{
	PQconninfoOption *opts;
	size_t n = 0;

	if (len == 0)
		return;
	out[0] = '\0';
	if (conninfo == NULL || conninfo[0] == '\0') {
		snprintf(out, len, "(PG* environment)");
		return;
	}
	opts = PQconninfoParse(conninfo, NULL);
	if (opts == NULL) {
		snprintf(out, len, "(unparsable connection string)");
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		int w;

		if (o->val == NULL || o->val[0] == '\0' || strcmp(o->keyword, "password") == 0)
			continue;
		w = snprintf(out + n, len - n, "%s%s=%s", n > 0 ? " " : "", o->keyword, o->val);
		if (w < 0 || (size_t) w >= len - n)
			break;
		n += (size_t) w;
	}
	PQconninfoFree(opts);
}

/*
 * The keyword arrays for PQconnect*Params. Entries before the expanded
 * "dbname" are defaults that the connection string may override
 * (libpq-connect, PQconnectdbParams). Keepalives make a silently dead peer
 * visible in about 25 s instead of the kernel's two hours
 * (docs/postgres-notes.md). A server that stops or restarts is seen
 * at once: its socket closes.
 */
#define DB_MAX_PARAMS 16

/* Fills keys and vals, NULL-ended; returns the index of the NULL. */
static int
db_connect_params(const char *conninfo, const char *application_name, const char *keys[DB_MAX_PARAMS],
                  const char *vals[DB_MAX_PARAMS])
{
	int k = 0;

	if (getenv("PGCONNECT_TIMEOUT") == NULL) {
		keys[k] = "connect_timeout";
		vals[k++] = DB_CONNECT_TIMEOUT_S;
	}
	if (getenv("PGAPPNAME") == NULL && application_name != NULL) {
		keys[k] = "application_name";
		vals[k++] = application_name;
	}
	keys[k] = "keepalives";
	vals[k++] = "1";
	keys[k] = "keepalives_idle";
	vals[k++] = "10";
	keys[k] = "keepalives_interval";
	vals[k++] = "5";
	keys[k] = "keepalives_count";
	vals[k++] = "3";
	keys[k] = "dbname";
	vals[k++] = conninfo != NULL ? conninfo : "";
	keys[k] = NULL;
	vals[k] = NULL;
	return k;
}

/* Elements of a comma-separated libpq list ("" and NULL: none). */
static int
db_list_count(const char *list)
{
	int n = 1;

	if (list == NULL || list[0] == '\0')
		return 0;
	for (const char *p = list; *p != '\0'; p++)
		n += *p == ',';
	return n;
}

/* list, of n elements, rotated left by k, into out. */
static void
db_list_rotate(const char *list, int n, int k, char *out, size_t len)
{
	const char *p = list;
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < k; i++)
		p = strchr(p, ',') + 1;
	for (int i = 0; i < n; i++) {
		size_t elem = strcspn(p, ",");

		if (used + elem + 2 > len)
			return;
		if (i > 0)
			out[used++] = ',';
		memcpy(out + used, p, elem);
		used += elem;
		out[used] = '\0';
		p = p[elem] == ',' ? p + elem + 1 : list;
	}
}

/* What a host, hostaddr or port list is: the connection string's, else
 * the environment's, as libpq would take it. */
static const char *
db_list_value(PQconninfoOption *opts, const char *keyword, const char *env)
{
	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, keyword) == 0 && o->val != NULL && o->val[0] != '\0')
			return o->val;
	return getenv(env);
}

/*
 * libpq tries the hosts of a multi-host connection string in turn, giving
 * each connect_timeout, but only in its blocking connect: PQconnectPoll
 * moves to the next host only when one refuses. A host that never answers
 * (a failed primary's address) would take
 * the whole deadline of every attempt, and the daemon would never reach
 * the next host. So attempt N starts N hosts further along the list, the
 * host, hostaddr and port lists rotated together, appended after the
 * connection string so that they override it. Returns the new end.
 */
static int
db_rotate_hosts(const char *conninfo, int attempt, const char *keys[DB_MAX_PARAMS],
                const char *vals[DB_MAX_PARAMS], int k, char bufs[3][1024])
{
	static const char *const lists[3][2] = {{"host", "PGHOST"}, {"hostaddr", "PGHOSTADDR"}, {"port", "PGPORT"}};
	PQconninfoOption *opts = PQconninfoParse(conninfo != NULL ? conninfo : "", NULL);
	int n;

	if (opts == NULL)
		return k;
	n = db_list_count(db_list_value(opts, "host", "PGHOST"));
	if (n < 2)
		n = db_list_count(db_list_value(opts, "hostaddr", "PGHOSTADDR"));
	if (n >= 2 && attempt % n != 0) {
		for (int l = 0; l < 3; l++) {
			const char *list = db_list_value(opts, lists[l][0], lists[l][1]);

			if (db_list_count(list) != n)
				continue;
			db_list_rotate(list, n, attempt % n, bufs[l], sizeof bufs[l]);
			keys[k] = lists[l][0];
			vals[k++] = bufs[l];
		}
		keys[k] = NULL;
		vals[k] = NULL;
	}
	PQconninfoFree(opts);
	return k;
}

/* NULL with err filled when conn did not come up; conn is then freed. */
static PGconn *
db_connect_check(PGconn *conn, const char *conninfo, struct db_error *err)
{
	if (conn == NULL) {
		snprintf(err->message, sizeof err->message, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_BAD) {
		db_redact(PQerrorMessage(conn), conninfo, err->message, sizeof err->message);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

PGconn *
db_connect(const char *conninfo, const char *application_name, struct db_error *err)
{
	const char *keys[DB_MAX_PARAMS], *vals[DB_MAX_PARAMS];

	memset(err, 0, sizeof *err);
	(void) db_connect_params(conninfo, application_name, keys, vals);
	return db_connect_check(PQconnectdbParams(keys, vals, 1), conninfo, err);
}

PGconn *
db_connect_start(const char *conninfo, const char *application_name, int attempt, int64_t now_ms,
                 struct db_connecting *c, struct db_error *err)
{
	const char *keys[DB_MAX_PARAMS], *vals[DB_MAX_PARAMS];
	char rotated[3][1024];
	PGconn *conn;
	int64_t timeout_s = atoi(DB_CONNECT_TIMEOUT_S);
	int k;

	memset(err, 0, sizeof *err);
	k = db_connect_params(conninfo, application_name, keys, vals);
	(void) db_rotate_hosts(conninfo, attempt, keys, vals, k, rotated);
	conn = db_connect_check(PQconnectStartParams(keys, vals, 1), conninfo, err);
	if (conn == NULL)
		return NULL;
	/* PQconnectPoll leaves connect_timeout to its caller: read the one in
	 * force (ours, the environment's or the connection string's). */
	{
		PQconninfoOption *opts = PQconninfo(conn);

		for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
			if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL && atoi(o->val) > 0)
				timeout_s = atoi(o->val);
		PQconninfoFree(opts);
	}
	c->deadline_ms = now_ms + timeout_s * 1000;
	/* The first step waits for the socket to be writable (libpq-connect). */
	c->events = POLLOUT;
	return conn;
}

enum db_connect_state
db_connect_continue(PGconn *conn, const char *conninfo, struct db_connecting *c, int64_t now_ms,
                    struct db_error *err)
{
	memset(err, 0, sizeof *err);
	if (now_ms >= c->deadline_ms) {
		const char *host = PQhost(conn);

		snprintf(err->message, sizeof err->message, "timeout expired while connecting to %s port %s",
		         host != NULL && host[0] != '\0' ? host : "the server", PQport(conn) != NULL ? PQport(conn) : "");
		return DB_CONNECT_FAILED;
	}
	switch (PQconnectPoll(conn)) {
	case PGRES_POLLING_OK:
		return DB_CONNECT_DONE;
	case PGRES_POLLING_READING:
		c->events = POLLIN;
		return DB_CONNECT_WAITING;
	case PGRES_POLLING_WRITING:
		c->events = POLLOUT;
		return DB_CONNECT_WAITING;
	default:
		db_redact(PQerrorMessage(conn), conninfo, err->message, sizeof err->message);
		return DB_CONNECT_FAILED;
	}
}

PGresult *
db_check(PGconn *conn, PGresult *res, struct db_error *err)
{
	const char *state;

	memset(err, 0, sizeof *err);
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
		return res;
	default:
		break;
	}
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state != NULL)
		snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state);
	if (res != NULL && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) != NULL)
		db_trim_copy(err->message, sizeof err->message,
		             PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
	else
		db_trim_copy(err->message, sizeof err->message, PQerrorMessage(conn));
	PQclear(res);
	return NULL;
}

PGresult *
db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
        struct db_error *err)
{
	return db_check(conn, PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0), err);
}

const char *
db_error_text(const struct db_error *err, char *buf, size_t len)
{
	if (err->sqlstate[0] != '\0')
		snprintf(buf, len, "%s: %s", err->sqlstate, err->message);
	else
		snprintf(buf, len, "%s", err->message);
	return buf;
}
