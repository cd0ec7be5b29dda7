/* Shared fixture of the suites that drive work.c for real; see work_test.h. */
#include "work_test.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "work.h"

PGconn *wt_owner;
const char *wt_db;

void
wt_reattach(const char *session_sql)
{
	PGconn *conn = harness_connect(harness_as(wt_db, HARNESS_WORKER));

	if (work_attached())
		work_detach();
	if (session_sql != NULL)
		harness_exec(conn, session_sql);
	work_attach(conn, true);
	/* What the daemon sends first on every new work connection. */
	work_send("work_session", 0, NULL, NULL, NULL);
	wt_drain();
}

static void
wt_setup_db(void)
{
	harness_migrate(wt_db);
	wt_owner = harness_connect(wt_db);
	wt_reattach(NULL);
}

void
wt_setup(void)
{
	wt_db = harness_db_create();
	wt_setup_db();
}

void
wt_setup_latin1(void)
{
	PGconn *admin;
	char sql[256];

	/* harness_db_create() names it and its teardown drops it; it is made
	 * again under the same name with another encoding. */
	wt_db = harness_db_create();
	admin = harness_connect("dbname=postgres");
	snprintf(sql, sizeof sql, "DROP DATABASE %s", wt_db + strlen("dbname="));
	harness_exec(admin, sql);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'",
	         wt_db + strlen("dbname="));
	harness_exec(admin, sql);
	PQfinish(admin);
	wt_setup_db();
}

void
wt_teardown(void)
{
	if (work_attached())
		work_detach();
	PQfinish(wt_owner);
	wt_owner = NULL;
	harness_teardown();
}

void
wt_done(void *ctx, PGresult *res, const struct db_error *err)
{
	struct wt_call *call = ctx;

	call->done = true;
	if (res != NULL)
		call->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	else
		call->err = *err;
}

void
wt_pump_until(const bool *flag, int timeout_ms)
{
	long long end = harness_now_ms() + timeout_ms;

	for (;;) {
		struct db_error err;
		struct pollfd pfd;

		ck_assert_msg(work_on_ready(&err), "work connection broke: %s", err.message);
		if (*flag)
			return;
		ck_assert_msg(harness_now_ms() < end, "no answer on the work connection after %d ms", timeout_ms);
		pfd.fd = work_socket();
		pfd.events = work_events();
		pfd.revents = 0;
		ck_assert_int_ge(poll(&pfd, 1, 20), 0);
	}
}

PGresult *
wt_wait(struct wt_call *call)
{
	char text[1200];

	wt_pump_until(&call->done, 10000);
	ck_assert_msg(call->res != NULL, "statement failed: %s", db_error_text(&call->err, text, sizeof text));
	return call->res;
}

void
wt_drain(void)
{
	long long end = harness_now_ms() + 10000;

	while (work_pending() > 0) {
		struct db_error err;
		struct pollfd pfd = {.fd = work_socket(), .events = work_events()};

		ck_assert_msg(work_on_ready(&err), "work connection broke: %s", err.message);
		if (work_pending() == 0)
			break;
		ck_assert_msg(harness_now_ms() < end, "work connection still busy after 10 s");
		ck_assert_int_ge(poll(&pfd, 1, 20), 0);
	}
}

const char *
wt_value(const char *fmt, ...)
{
	char sql[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	return harness_value(wt_owner, sql);
}

long long
wt_int(const char *fmt, ...)
{
	char sql[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	return harness_int(wt_owner, sql);
}

void
wt_exec(const char *fmt, ...)
{
	char sql[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	harness_exec(wt_owner, sql);
}
