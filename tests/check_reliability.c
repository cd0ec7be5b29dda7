/*
 * End to end, against an attacker's moves (issue: defects found by
 * attacking the daemon): a daemon stopped longer than its lease, row locks
 * held by other sessions and by the daemon's own SQL handlers, an ALTER
 * TABLE under a running daemon, a hundred kinds at their limits, an
 * operator resetting a running task, a row in progress without a lease.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon_test.h"
#include "harness.h"

/* Lines in a file (a handler's record of its runs). */
static int
rel_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, c;

	if (f == NULL)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static int64_t
rel_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A daemon stopped (SIGSTOP) for longer than its lease while its handlers
 * finish: on waking it must keep the tasks whose outcomes it holds, not
 * reap them itself and run them again.
 */
START_TEST(test_daemon_stopped_past_its_lease_runs_nothing_twice)
{
	struct harness_daemon d;
	char handlers[1024], runs[256];

	snprintf(runs, sizeof runs, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  slow:\n    command: [%s, %s, '1']\n", harness_handler("sleeper.sh"),
	         runs);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "lease: 1s"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'slow' FROM generate_series(1, 2)");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'in_progress'", "2", 10000,
	                   &d);
	/* Both handlers have their task (stdin written and closed) and sleep. */
	for (int i = 0; i < 100 && rel_lines(runs) < 2; i++)
		harness_sleep_ms(50);
	harness_sleep_ms(300);
	kill(d.proc.pid, SIGSTOP);
	/* The handlers finish after 1 s; the leases lapse after 1 s more. */
	harness_sleep_ms(4000);
	kill(d.proc.pid, SIGCONT);
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "2", 10000, &d);
	harness_sleep_ms(1500);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(concat_ws(':', status, attempts), ',')"
	                                        "  FROM dispatch.tasks"), "complete:1,complete:1");
	ck_assert_int_eq(rel_lines(runs), 2);
	ck_assert_int_eq(harness_daemon_log_count(&d, "lease expired"), 0);
	ck_assert_int_eq(harness_daemon_log_count(&d, "lease lost"), 0);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(runs);
}
END_TEST

/*
 * Another session holds a finishing task's row locked: only that task's
 * outcome waits. Other tasks complete, a timeout is enforced, and once the
 * lock goes the held outcome is written: the task ran once.
 */
START_TEST(test_row_lock_on_a_finishing_task_delays_only_that_task)
{
	struct harness_daemon d;
	char handlers[2048], runs[256], hangs[256], sleeper[512];
	PGconn *locker = harness_connect(dt_db);
	long long id;
	char sql[256];

	/* harness_handler() answers in a static buffer. */
	snprintf(sleeper, sizeof sleeper, "%s", harness_handler("sleeper.sh"));
	snprintf(runs, sizeof runs, "%s", harness_write_temp(""));
	snprintf(hangs, sizeof hangs, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  slow:\n    command: [%s, %s, '1']\n"
	         "  noop:\n    builtin: noop\n"
	         "  hang:\n    command: [%s, %s]\n    timeout: 1s\n    max_attempts: 1\n",
	         sleeper, runs, harness_handler("hang.sh"), hangs);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "lease: 2s"));
	id = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('slow') RETURNING id");
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", id);
	harness_wait_value(dt_conn, sql, "in_progress", 10000, &d);
	snprintf(sql, sizeof sql, "BEGIN; SELECT id FROM dispatch.tasks WHERE id = %lld FOR UPDATE", id);
	harness_exec(locker, sql);
	/* The handler ends while the row is held; the loop must go on. */
	harness_sleep_ms(1500);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop'), ('hang')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'noop'", "complete", 5000, &d);
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'hang'", "failed", 8000, &d);
	{
		const char *why = harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks WHERE kind = 'hang'");

		ck_assert_msg(strstr(why, "timed out after 1000 ms") != NULL, "last_error: %s", why);
	}
	/* Held well past the lease: the daemon keeps it, nobody reaps it. */
	harness_sleep_ms(2500);
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", id);
	ck_assert_str_eq(harness_value(dt_conn, sql), "in_progress");
	harness_exec(locker, "COMMIT");
	harness_wait_value(dt_conn, sql, "complete", 5000, &d);
	snprintf(sql, sizeof sql, "SELECT attempts FROM dispatch.tasks WHERE id = %lld", id);
	ck_assert_msg(harness_int(dt_conn, sql) == 1 && rel_lines(runs) == 1, "ran twice; log:\n%s",
	              harness_daemon_log(&d));
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	PQfinish(locker);
	unlink(runs);
	unlink(hangs);
}
END_TEST

/*
 * A SQL handler that updates another running task's row holds that row
 * locked until the daemon commits its transaction. The other task's
 * outcome must not wait for it: that wait was the daemon waiting for
 * itself, for good.
 */
START_TEST(test_sql_handler_locking_a_running_task_does_not_deadlock_the_daemon)
{
	struct harness_daemon d;
	char handlers[2048], runs[256];

	snprintf(runs, sizeof runs, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  cmd:\n    command: [%s, %s, '1']\n"
	         "  touch:\n    sql: \"WITH u AS (UPDATE dispatch.tasks SET run_at = run_at WHERE kind = 'cmd' RETURNING 1)"
	         " SELECT pg_sleep(2), count(*) FROM u\"\n",
	         harness_handler("sleeper.sh"), runs);
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('cmd')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'cmd'", "in_progress", 10000, &d);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('touch')");
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks",
	                   "complete,complete", 15000, &d);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT max(attempts) FROM dispatch.tasks"), 1);
	ck_assert_int_eq(rel_lines(runs), 1);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(runs);
}
END_TEST

/*
 * A session holds a finishing task's row locked and the daemon gets
 * SIGTERM with nothing else running: it waits a few seconds for that
 * outcome, not the whole grace, and never blocks on the lock.
 */
START_TEST(test_sigterm_with_an_unwritable_outcome_waits_only_briefly)
{
	struct harness_daemon d;
	char handlers[1024], runs[256], sql[256];
	PGconn *locker = harness_connect(dt_db);
	long long id;
	int64_t t0;

	snprintf(runs, sizeof runs, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  slow:\n    command: [%s, %s, '1']\n", harness_handler("sleeper.sh"),
	         runs);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "shutdown_grace: 30s"));
	id = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('slow') RETURNING id");
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", id);
	harness_wait_value(dt_conn, sql, "in_progress", 10000, &d);
	snprintf(sql, sizeof sql, "BEGIN; SELECT id FROM dispatch.tasks WHERE id = %lld FOR UPDATE", id);
	harness_exec(locker, sql);
	harness_sleep_ms(1500);
	t0 = rel_now_ms();
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	ck_assert_int_lt(rel_now_ms() - t0, 12000);
	ck_assert_ptr_nonnull(strstr(d.proc.err, "1 outcomes could not be written"));
	harness_exec(locker, "COMMIT");
	harness_daemon_free(&d);
	PQfinish(locker);
	unlink(runs);
}
END_TEST

/*
 * An ALTER TABLE changes what the claim returns: the daemon's prepared
 * statements must be prepared again, not fail on every tick for good.
 */
START_TEST(test_statements_are_prepared_again_after_alter_table)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", "poll_interval: 200ms"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "1", 5000, &d);
	/* A column the claim returns and no view of the schema reads (a
	 * view's column cannot change type under it). */
	harness_exec(dt_conn, "ALTER TABLE dispatch.tasks ALTER COLUMN max_attempts TYPE bigint");
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "2", 5000, &d);
	/* And it goes on working, without an error on every tick. */
	harness_sleep_ms(1500);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "3", 5000, &d);
	ck_assert_int_le(harness_daemon_log_count(&d, "0A000"), 3);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/*
 * A hundred kinds, each at its concurrency limit of 1 with more waiting:
 * the claim must skip them all, not claim and hand back the ones past a
 * fixed-size list over and over.
 */
START_TEST(test_a_hundred_kinds_at_their_limit_do_not_spin_the_loop)
{
	struct harness_daemon d;
	static char handlers[16384];
	size_t used = 0;

	for (int k = 0; k < 100; k++)
		used += (size_t) snprintf(handlers + used, sizeof handlers - used,
		                          "  k%d:\n    builtin: sleep\n    concurrency: 1\n", k);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "concurrency: 300\nlog: {level: info}"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload)"
	                      " SELECT 'k' || k, '{\"ms\": 3000}' FROM generate_series(0, 99) k, generate_series(1, 2)");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'in_progress'", "100", 10000,
	                   &d);
	harness_sleep_ms(1500);
	/* The claim keeps each kind's limit itself: nothing is claimed only to
	 * be handed back, in the first batch (which holds both tasks of every
	 * kind) or after it. */
	ck_assert_int_eq(harness_daemon_log_count(&d, "returned to pending untried"), 0);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE attempts > 0"), 100);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/*
 * An operator resets a running task and wakes a daemon, which claims it
 * again: the first claim must lose (its handler stopped, its outcome
 * fenced out), not run beside the second as the same attempt.
 */
START_TEST(test_operator_reset_of_a_running_task_fences_the_first_claim)
{
	struct harness_daemon d;
	char handlers[1024], runs[256];

	snprintf(runs, sizeof runs, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  slow:\n    command: [%s, %s, '3']\n", harness_handler("sleeper.sh"),
	         runs);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "lease: 3s"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('slow')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "in_progress", 10000, &d);
	harness_exec(dt_conn, "UPDATE dispatch.tasks SET status = 'pending', attempts = 0, run_at = now();"
	                      " NOTIFY dispatch_tasks, 'default'");
	harness_wait_value(dt_conn, "SELECT concat_ws(':', status, attempts) FROM dispatch.tasks", "in_progress:1",
	                   5000, &d);
	harness_daemon_wait_log(&d, "lease lost while its handler ran", 5000);
	harness_wait_value(dt_conn, "SELECT concat_ws(':', status, attempts) FROM dispatch.tasks", "complete:1",
	                   10000, &d);
	ck_assert_int_eq(harness_daemon_log_count(&d, "complete"), 1);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(runs);
}
END_TEST

/* A row in progress without a lease (set by hand) is reaped: nothing would
 * ever renew it. */
START_TEST(test_in_progress_row_without_a_lease_is_reaped)
{
	struct harness_daemon d;

	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, status, attempts, locked_by)"
	                      " VALUES ('noop', 'in_progress', 1, 'gone')");
	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", "lease: 1s"));
	harness_wait_value(dt_conn, "SELECT concat_ws(':', status, attempts) FROM dispatch.tasks", "complete:2", 10000,
	                   &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

Suite *
reliability_suite(void)
{
	Suite *s = suite_create("reliability");
	TCase *tc = tcase_create("reliability");

	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_daemon_stopped_past_its_lease_runs_nothing_twice);
	tcase_add_test(tc, test_row_lock_on_a_finishing_task_delays_only_that_task);
	tcase_add_test(tc, test_sql_handler_locking_a_running_task_does_not_deadlock_the_daemon);
	tcase_add_test(tc, test_sigterm_with_an_unwritable_outcome_waits_only_briefly);
	tcase_add_test(tc, test_statements_are_prepared_again_after_alter_table);
	tcase_add_test(tc, test_a_hundred_kinds_at_their_limit_do_not_spin_the_loop);
	tcase_add_test(tc, test_operator_reset_of_a_running_task_fences_the_first_claim);
	tcase_add_test(tc, test_in_progress_row_without_a_lease_is_reaped);
	suite_add_tcase(s, tc);
	return s;
}
