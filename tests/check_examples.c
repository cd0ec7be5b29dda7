/*
 * End to end, the HTTP examples: examples/order-fanout/ (HTTP handlers, a
 * circuit breaker that opens while a service is down and closes when it
 * is back) and examples/guaranteed-delivery/ (a consumer that fails at
 * random; every event applied exactly once, in order per key). Each
 * run.sh runs as a user runs it (`make order-fanout`, `make
 * guaranteed-delivery`), in a database of its own, against http-stub and
 * the daemon under test, both found through PGDISPATCH_BIN. The script's
 * own checks decide first (it exits 0 only when they held, and its last
 * line says so); then the database is checked again here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* A run takes about 10 s (design: under 30 s); this bounds a hung one. */
#define EX_TIMEOUT_MS 120000

/* What one run.sh printed, and how it ended. */
struct ex_run {
	const char *db;      /* its database's conninfo (harness_db_create) */
	int status;          /* waitpid's; -1: still running at the timeout (then killed) */
	long long ms;        /* how long it ran */
	char *out, *err;     /* stdout (the story), stderr (the daemon's log and failures) */
};

/*
 * Runs examples/NAME/run.sh in a new database (PGDATABASE; the server and
 * user are the test's own PG*), with env ("NAME=VALUE" each,
 * NULL-terminated) added to its environment.
 */
static void
ex_run(struct ex_run *r, const char *name, const char *const *env)
{
	const char *src = getenv("PGDISPATCH_SRC");
	char script[512], out_path[256], err_path[256], dbname[96];
	long long start = harness_now_ms(), end = start + EX_TIMEOUT_MS;
	int out_fd, err_fd, rc, status = 0;
	pid_t pid;

	ck_assert_msg(src != NULL, "PGDISPATCH_SRC is not set (run through make check)");
	r->db = harness_db_create();
	ck_assert(sscanf(r->db, "dbname=%95s", dbname) == 1);
	snprintf(script, sizeof script, "%s/examples/%s/run.sh", src, name);
	snprintf(out_path, sizeof out_path, "%s", harness_write_temp(""));
	snprintf(err_path, sizeof err_path, "%s", harness_write_temp(""));
	out_fd = open(out_path, O_WRONLY | O_TRUNC);
	err_fd = open(err_path, O_WRONLY | O_TRUNC);
	ck_assert(out_fd >= 0 && err_fd >= 0);
	fflush(NULL);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		/* A process group of its own (the script, its services and
		 * its daemon), so that a hung run can be ended whole; gone
		 * with the test. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out_fd, STDOUT_FILENO);
		dup2(err_fd, STDERR_FILENO);
		setenv("PGDATABASE", dbname, 1);
		for (int i = 0; env != NULL && env[i] != NULL; i++)
			putenv((char *) env[i]);
		execl("/bin/bash", "bash", script, (char *) NULL);
		_exit(127);
	}
	close(out_fd);
	close(err_fd);
	while ((rc = waitpid(pid, &status, WNOHANG)) == 0 && harness_now_ms() < end)
		harness_sleep_ms(100);
	if (rc == 0) {
		kill(-pid, SIGKILL);
		(void) waitpid(pid, &status, 0);
		status = -1;
	}
	r->status = status;
	r->ms = harness_now_ms() - start;
	r->out = harness_slurp(out_path);
	r->err = harness_slurp(err_path);
	unlink(out_path);
	unlink(err_path);
}

/* The run ended by itself, exited 0, and its last words are last_line. */
static void
ex_assert_passed(const struct ex_run *r, const char *last_line)
{
	ck_assert_msg(r->status != -1, "run.sh still running after %d s:\n%s\n%s", EX_TIMEOUT_MS / 1000, r->out,
	              r->err);
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0, "run.sh failed (status %d):\n%s\n%s",
	              r->status, r->out, r->err);
	ck_assert_msg(strstr(r->out, last_line) != NULL, "no \"%s\" in:\n%s\n%s", last_line, r->out, r->err);
}

static void
ex_free(struct ex_run *r)
{
	free(r->out);
	free(r->err);
}

/*
 * examples/config-push/run.sh as a user runs it, in a database of its
 * own: it migrates, makes its table, starts its listener and the daemon,
 * inserts rows before and after the start, and checks that each arrived.
 * Here the rows are checked again: every one complete in the table's own
 * enum.
 */
START_TEST(test_config_push_example_pushes_every_row)
{
	struct ex_run r;
	PGconn *conn;

	ex_run(&r, "config-push", NULL);
	ex_assert_passed(&r, "config-push: every row complete, every content received");
	conn = harness_connect(r.db);
	ck_assert_str_eq(harness_value(conn, "SELECT concat_ws('|', count(*), string_agg(DISTINCT status::text, ','),"
	                                     "       pg_typeof(min(status))::text)"
	                                     "  FROM configuration_update"),
	                 "40|complete|configuration_update_status");
	PQfinish(conn);
	ex_free(&r);
}
END_TEST

/*
 * order-fanout: 40 orders, each adding an inventory and an email task in
 * its own transaction; the email service goes down after 20 and comes
 * back once its breaker opened. The script checks each service's log
 * (every order applied once by Idempotency-Key), that no attempt was spent
 * while the breaker was open, and the daemon's log (opened once, closed
 * once, no token). Here: every task complete, the breaker closed with no
 * failure left counted, the failed attempts all email's, at least the 3
 * that opened the breaker, and the inventory service never refused.
 */
START_TEST(test_order_fanout_example_delivers_every_order_through_an_email_outage)
{
	struct ex_run r;
	PGconn *conn;

	ex_run(&r, "order-fanout", NULL);
	ex_assert_passed(&r, "order-fanout: every order reached both services exactly once (40 orders, 80 tasks);"
	                     " the email breaker opened and closed once");
	ck_assert_msg(strstr(r.out, "the email breaker is open") != NULL, "%s", r.out);

	conn = harness_connect(r.db);
	ck_assert_str_eq(harness_value(conn, "SELECT concat_ws('|', count(*), string_agg(DISTINCT status::text, ','),"
	                                     "                 count(DISTINCT payload->>'order_id'))"
	                                     "  FROM dispatch.tasks"),
	                 "80|complete|40");
	ck_assert_str_eq(harness_value(conn, "SELECT string_agg(kind || ':' || count, ',' ORDER BY kind)"
	                                     "  FROM (SELECT kind, count(*) FROM dispatch.tasks GROUP BY kind) AS k"),
	                 "order.created.email:40,order.created.inventory:40");
	ck_assert_str_eq(harness_value(conn, "SELECT state || '|' || failures_recorded FROM dispatch.breaker_status"
	                                     " WHERE kind = 'order.created.email'"),
	                 "closed|0");
	ck_assert_int_ge(harness_int(conn, "SELECT count(*) FROM dispatch.attempts WHERE kind = 'order.created.email'"),
	                 3);
	ck_assert_int_eq(harness_int(conn, "SELECT count(*) FROM dispatch.attempts WHERE kind <> 'order.created.email'"),
	                 0);
	PQfinish(conn);
	ck_assert_msg(r.ms < 60000, "the run took %lld ms (about 10 s expected):\n%s", r.ms, r.out);
	ex_free(&r);
}
END_TEST

/*
 * guaranteed-delivery with ORDERED=1 (as `make guaranteed-delivery`
 * runs it): 500 events over 10 keys to a consumer that fails, drops and
 * stalls at random. The script checks the consumer's log: every event
 * applied exactly once with its own payload, and each key's seq
 * increasing in apply order. Here: every task complete, each with its
 * key as order_key, and the chaos real: attempts failed, of each kind the
 * consumer deals out (503, a dropped connection, the 1 s timeout).
 */
START_TEST(test_guaranteed_delivery_example_applies_every_event_once_in_key_order)
{
	static const char *const env[] = {"ORDERED=1", NULL};
	struct ex_run r;
	PGconn *conn;

	ex_run(&r, "guaranteed-delivery", env);
	ex_assert_passed(&r, "guaranteed-delivery: delivered: 500 events, each applied once, in order per key");
	ck_assert_msg(strstr(r.out, "and in order: each key's seq increased") != NULL, "%s", r.out);

	conn = harness_connect(r.db);
	ck_assert_str_eq(harness_value(conn, "SELECT concat_ws('|', count(*), string_agg(DISTINCT status::text, ','),"
	                                     "                 count(DISTINCT order_key),"
	                                     "                 count(*) FILTER (WHERE order_key = payload->>'key'))"
	                                     "  FROM dispatch.tasks WHERE kind = 'event.deliver'"),
	                 "500|complete|10|500");
	ck_assert_str_eq(harness_value(conn, "SELECT concat_ws('|', bool_or(error LIKE 'HTTP 503%'),"
	                                     "                 bool_or(error ILIKE '%timed out%'),"
	                                     "                 bool_or(error NOT LIKE 'HTTP 503%' AND error NOT ILIKE '%timed out%'))"
	                                     "  FROM dispatch.attempts WHERE kind = 'event.deliver'"),
	                 "t|t|t");
	PQfinish(conn);
	ck_assert_msg(r.ms < 60000, "the run took %lld ms (about 15 s expected):\n%s", r.ms, r.out);
	ex_free(&r);
}
END_TEST

Suite *
examples_suite(void)
{
	Suite *s = suite_create("examples");
	TCase *tc = tcase_create("http");

	tcase_add_checked_fixture(tc, NULL, harness_teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_config_push_example_pushes_every_row);
	tcase_add_test(tc, test_order_fanout_example_delivers_every_order_through_an_email_outage);
	tcase_add_test(tc, test_guaranteed_delivery_example_applies_every_event_once_in_key_order);
	suite_add_tcase(s, tc);
	return s;
}
