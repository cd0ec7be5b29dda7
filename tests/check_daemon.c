/*
 * End to end: the real `pgdispatch run` against a scratch database, tasks
 * added with SQL, the row's state asserted. Fault tests (kill -9, server
 * restart, SIGTERM, a cut LISTEN connection) live in check_daemon_faults.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_test.h"
#include "harness.h"

PGconn *dt_conn;
const char *dt_db;

void
dt_setup(void)
{
	dt_db = harness_db_create();
	harness_migrate(dt_db);
	dt_conn = harness_connect(dt_db);
}

void
dt_teardown(void)
{
	PQfinish(dt_conn);
	dt_conn = NULL;
	harness_teardown();
}

const char *
dt_config(const char *handlers_yaml, const char *extra_yaml)
{
	static char yaml[8192];
	const char *extra = extra_yaml != NULL ? extra_yaml : "";

	/* The defaults below unless extra_yaml sets the key itself. */
	snprintf(yaml, sizeof yaml, "queues: [default]\n%s%s%s\nhandlers:\n%s",
	         strstr(extra, "concurrency:") != NULL ? "" : "concurrency: 4\n",
	         strstr(extra, "poll_interval:") != NULL ? "" : "poll_interval: 1s\n", extra,
	         handlers_yaml);
	if (strstr(extra, "log:") == NULL)
		strcat(yaml, "log: {level: debug}\n");
	return yaml;
}

START_TEST(test_inserted_task_completes_and_handler_gets_its_payload)
{
	struct harness_daemon d;
	char handlers[1024];
	long long id;
	char sql[512];

	snprintf(handlers, sizeof handlers, "  echo:\n    command: [%s]\n", harness_handler("echo_task.sh"));
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));

	id = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind, payload)"
	                          " VALUES ('echo', '{\"to\": \"a@example.com\", \"n\": [1, 2.5, null], \"s\": \"\\\"q\\\" \\u00e9\"}')"
	                          " RETURNING id");
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", id);
	harness_wait_value(dt_conn, sql, "complete", 10000, &d);

	/* The handler saw exactly the row's payload, id, kind and attempt. */
	snprintf(sql, sizeof sql,
	         "SELECT concat_ws('|', result->'stdin'->'payload' = payload, (result->'stdin'->>'id')::bigint = id,"
	         "       result->'stdin'->>'kind', result->'stdin'->>'queue', result->'stdin'->>'attempt',"
	         "       result->'stdin'->>'max_attempts', result->>'env_id' = id::text, result->>'env_kind',"
	         "       result->>'env_attempt', attempts, finished_at >= started_at, lease_expires_at IS NULL)"
	         "  FROM dispatch.tasks WHERE id = %lld", id);
	ck_assert_str_eq(harness_value(dt_conn, sql), "t|t|echo|default|1|5|t|echo|1|1|t|t");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_tasks_added_while_no_daemon_ran_are_swept_at_startup)
{
	struct harness_daemon d;

	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'noop' FROM generate_series(1, 50)");
	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", "concurrency: 8"));
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "50",
	                   10000, &d);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT max(attempts) FROM dispatch.tasks"), 1);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_future_run_at_waits_then_starts_promptly)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", "poll_interval: 1h"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, run_at) VALUES ('noop', now() + interval '1.5 seconds')");
	harness_sleep_ms(700);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM dispatch.tasks"), "pending");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 10000, &d);
	/* Started after run_at, and by the timer (poll_interval is an hour):
	 * well within a second of it. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT started_at >= run_at AND started_at < run_at + interval '1 second' FROM dispatch.tasks"),
	        "t");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_failing_handler_backs_off_then_fails_for_good)
{
	struct harness_daemon d;
	char handlers[1024], log_path[256];
	double t[4];
	FILE *f;

	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  flaky:\n    command: [%s, %s, '3']\n    max_attempts: 4\n"
	         "    backoff: {initial: 200ms, max: 10s}\n",
	         harness_handler("attempts.sh"), log_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('flaky')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "failed", 20000, &d);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', attempts, last_error, finished_at IS NOT NULL) FROM dispatch.tasks"),
	        "4|exit 3: stderr: attempts.sh: failing attempt 4 on purpose|t");

	/* Four runs, each gap at least the nominal backoff's lower half
	 * (200ms * 2^n / 2) and growing. */
	f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 4; i++) {
		long long id;
		int attempt;

		ck_assert_int_eq(fscanf(f, "%lld %d %lf", &id, &attempt, &t[i]), 3);
		ck_assert_int_eq(attempt, i + 1);
	}
	ck_assert_int_eq(fscanf(f, "%*s"), EOF);
	fclose(f);
	for (int i = 1; i < 4; i++) {
		double gap = t[i] - t[i - 1], floor_s = 0.1 * (1 << (i - 1));

		ck_assert_msg(gap >= floor_s, "gap %d is %.3fs, want >= %.3fs", i, gap, floor_s);
		if (i > 1)
			ck_assert_msg(gap >= t[i - 1] - t[i - 2] - 0.05, "gap %d (%.3fs) shrank", i, gap);
	}
	unlink(log_path);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_exit_75_asks_for_a_retry)
{
	struct harness_daemon d;
	char handlers[1024], log_path[256];

	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  tempfail:\n    command: [%s, %s, '75', '2']\n    backoff: {initial: 50ms, max: 1s}\n",
	         harness_handler("attempts.sh"), log_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('tempfail')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', attempts, result, last_error) FROM dispatch.tasks"),
	                 "2|\"ok\"|exit 75 (handler asked for a retry): stderr: attempts.sh: failing attempt 1 on purpose");
	unlink(log_path);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_timeout_kills_the_handler_and_costs_one_attempt)
{
	struct harness_daemon d;
	char handlers[1024], pid_path[256], line[64];
	FILE *f;
	pid_t pid;

	snprintf(pid_path, sizeof pid_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  slow:\n    command: [%s, %s, '60']\n    timeout: 1s\n    max_attempts: 2\n"
	         "    backoff: {initial: 10ms, max: 10ms}\n",
	         harness_handler("sleeper.sh"), pid_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('slow')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "failed", 20000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', attempts, last_error) FROM dispatch.tasks"),
	                 "2|timed out after 1000 ms");
	/* Both attempts' processes are gone, not left running. */
	f = fopen(pid_path, "r");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 2; i++) {
		ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
		pid = (pid_t) atoi(line);
		ck_assert_msg(kill(pid, 0) != 0, "handler %d still running", (int) pid);
	}
	fclose(f);
	unlink(pid_path);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

long
dt_peak_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* How much the daemon's peak RSS may grow while 100 MB go through it. */
#define DT_RSS_SLACK_KB (4096 + DT_ASAN_SLACK_KB)

START_TEST(test_flood_of_stdout_is_truncated_and_memory_stays_flat)
{
	struct harness_daemon d;
	char handlers[1024];
	long before, after;

	snprintf(handlers, sizeof handlers, "  flood:\n    command: [%s]\n    max_output: 65536\n",
	         harness_handler("flood.sh"));
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));
	before = dt_peak_rss_kb(d.proc.pid);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('flood')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 30000, &d);
	after = dt_peak_rss_kb(d.proc.pid);
	/* 100 MB went through the pipe; what is kept is the first 64 KiB, as
	 * a JSON string. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', jsonb_typeof(result), length(result #>> '{}'),"
	        "       result #>> '{}' = repeat('x', 65536)) FROM dispatch.tasks"),
	        "string|65536|t");
	ck_assert_msg(after - before < DT_RSS_SLACK_KB, "peak RSS grew from %ld kB to %ld kB", before, after);
	ck_assert_ptr_nonnull(strstr(harness_daemon_log(&d), "stdout truncated to 65536 bytes"));
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_kind_without_handler_is_a_failed_attempt)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", "max_attempts: 2\nbackoff: {initial: 10ms, max: 10ms}"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('unheard_of')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "failed", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', attempts, last_error) FROM dispatch.tasks"),
	                 "2|no handler for kind unheard_of");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_sql_handler_effect_and_completion_commit_together)
{
	struct harness_daemon d;

	/* An application table: dispatch_worker does not reach it, the daemon's
	 * login role needs its own grant. */
	harness_exec(dt_conn, "CREATE TABLE effects (task_id bigint, v jsonb);"
	                      " GRANT INSERT ON effects TO " HARNESS_WORKER);
	harness_daemon_start(&d, dt_db, dt_config(
	        "  ok:\n    sql: \"INSERT INTO effects VALUES ($2, $1)\"\n"
	        "  bad:\n    sql: \"WITH i AS (INSERT INTO effects VALUES ($2, $1) RETURNING 1) SELECT 1 / 0 FROM i\"\n"
	        "    max_attempts: 1\n", NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('ok', '{\"a\": 1}'), ('bad', '{\"b\": 2}')");
	harness_wait_value(dt_conn, "SELECT string_agg(kind || '=' || status, ',' ORDER BY id) FROM dispatch.tasks",
	                   "ok=complete,bad=failed", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(t.kind || ':' || e.v::text, ',')"
	                                        "  FROM effects e JOIN dispatch.tasks t ON t.id = e.task_id"),
	                 "ok:{\"a\": 1}");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks WHERE kind = 'bad'"),
	                 "22012: division by zero");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_slow_sql_handler_blocks_nothing_and_keeps_its_lease)
{
	struct harness_daemon d;

	/* The SQL handler outlives two leases: renewals must go on while it
	 * runs, and the noop queued behind it must not wait for it. */
	harness_daemon_start(&d, dt_db, dt_config(
	        "  slow_sql:\n    sql: \"SELECT pg_sleep(2.5)\"\n"
	        "  noop:\n    builtin: noop\n", "lease: 1s"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('slow_sql')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "in_progress", 5000, &d);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'noop'", "complete", 1000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'slow_sql'"),
	                 "in_progress");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'slow_sql'", "complete", 10000, &d);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT attempts FROM dispatch.tasks WHERE kind = 'slow_sql'"), 1);
	ck_assert_ptr_null(strstr(harness_daemon_log(&d), "lease"));
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_sql_handler_timeout_is_a_failed_attempt)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config(
	        "  stuck:\n    sql: \"SELECT pg_sleep(30)\"\n    timeout: 300ms\n    max_attempts: 1\n", NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('stuck')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "failed", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks"),
	                 "57014: canceling statement due to statement timeout");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_sql_handler_copy_fails_the_attempt_and_the_daemon_goes_on)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config(
	        "  copy:\n    sql: \"COPY (SELECT 1) TO STDOUT\"\n    max_attempts: 1\n"
	        "  noop:\n    builtin: noop\n", NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('copy')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "failed", 5000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks"),
	                 "COPY is not supported in a SQL handler");
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'noop'", "complete", 5000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_dead_pooled_sql_connection_costs_no_attempt)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config(
	        "  one:\n    sql: \"SELECT $2\"\n    max_attempts: 1\n", NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('one')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 5000, &d);
	/* Kill the idle pooled connection the first task used. */
	ck_assert_int_eq(harness_int(dt_conn,
	        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	        " WHERE application_name LIKE 'pgdispatch %' AND query LIKE 'COMMIT%'"), 1);
	harness_sleep_ms(200);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('one')");
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks",
	                   "complete,complete", 5000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_poll_only_mode_listens_for_nothing_and_still_works)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n",
	                                          "notify: false\npoll_interval: 300ms"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 5000, &d);
	/* No LISTEN connection, and no request for notifications. */
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM pg_stat_activity"
	                                      " WHERE application_name LIKE 'pgdispatch %'"
	                                      "   AND query LIKE '%LISTEN%'"), 0);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.sleepers"), 0);
	ck_assert_ptr_nonnull(strstr(harness_daemon_log(&d), "listen=no"));
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_bad_config_is_rejected_with_file_line_col)
{
	struct harness_proc p;
	const char *path = harness_write_temp("queues: [default]\nconcurrency: 0\n");
	char want[300];
	const char *run_args[] = {"run", "-c", path, NULL};
	const char *check_args[] = {"check-config", "-c", path, NULL};

	snprintf(want, sizeof want, "%s:2:14: concurrency", path);
	ck_assert_int_eq(harness_run(&p, run_args), 2);
	ck_assert_msg(strstr(p.err, want) != NULL, "stderr: %s", p.err);
	harness_proc_free(&p);
	ck_assert_int_eq(harness_run(&p, check_args), 2);
	ck_assert_msg(strstr(p.err, want) != NULL, "stderr: %s", p.err);
	harness_proc_free(&p);
	unlink(path);
}
END_TEST

START_TEST(test_infinite_run_at_neither_breaks_the_timer_nor_runs_early)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", "poll_interval: 200ms"));
	/* Alone in the queue first: the earliest pending task is the
	 * infinite one for a few polls. */
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, run_at) VALUES ('noop', 'infinity')");
	harness_sleep_ms(800);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, run_at) VALUES ('noop', '-infinity'), ('noop', now())");
	harness_wait_value(dt_conn, "SELECT string_agg(concat_ws(':', run_at, status), ',' ORDER BY id)"
	                            "  FROM dispatch.tasks WHERE run_at IN ('infinity', '-infinity')",
	                   "infinity:pending,-infinity:complete", 5000, &d);
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE run_at::text <> ALL ('{infinity,-infinity}')",
	                   "complete", 5000, &d);
	harness_sleep_ms(600);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE run_at = 'infinity'"),
	                 "pending");
	ck_assert_msg(strstr(harness_daemon_log(&d), "22008") == NULL
	              && strstr(harness_daemon_log(&d), "infinite") == NULL, "%s", harness_daemon_log(&d));
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

Suite *
daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("end_to_end");
	TCase *timer = tcase_create("timer");

	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_inserted_task_completes_and_handler_gets_its_payload);
	tcase_add_test(tc, test_tasks_added_while_no_daemon_ran_are_swept_at_startup);
	tcase_add_test(tc, test_future_run_at_waits_then_starts_promptly);
	tcase_add_test(tc, test_failing_handler_backs_off_then_fails_for_good);
	tcase_add_test(tc, test_exit_75_asks_for_a_retry);
	tcase_add_test(tc, test_timeout_kills_the_handler_and_costs_one_attempt);
	tcase_add_test(tc, test_flood_of_stdout_is_truncated_and_memory_stays_flat);
	tcase_add_test(tc, test_kind_without_handler_is_a_failed_attempt);
	tcase_add_test(tc, test_sql_handler_effect_and_completion_commit_together);
	tcase_add_test(tc, test_slow_sql_handler_blocks_nothing_and_keeps_its_lease);
	tcase_add_test(tc, test_sql_handler_timeout_is_a_failed_attempt);
	tcase_add_test(tc, test_sql_handler_copy_fails_the_attempt_and_the_daemon_goes_on);
	tcase_add_test(tc, test_dead_pooled_sql_connection_costs_no_attempt);
	tcase_add_test(tc, test_poll_only_mode_listens_for_nothing_and_still_works);
	tcase_add_test(tc, test_bad_config_is_rejected_with_file_line_col);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(timer, dt_setup, dt_teardown);
	tcase_set_timeout(timer, 60);
	tcase_add_test(timer, test_infinite_run_at_neither_breaks_the_timer_nor_runs_early);
	suite_add_tcase(s, timer);
	return s;
}
