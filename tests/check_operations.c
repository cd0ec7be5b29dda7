/*
 * End to end, the operator's side (issue 11, migrations/0008): cancelling
 * pending and running tasks (command and SQL handlers), who may cancel,
 * the registry of live daemons (dispatch.instances) through a kill -9 and
 * a graceful stop, and retention deleting exactly the finished rows past
 * their age while daemons work a backlog.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_test.h"
#include "harness.h"

/* The pids a handler wrote (one line, "PID [PID]"), or fails after 5 s. */
static int
ops_read_pids(const char *path, pid_t *pids, int max)
{
	for (int tries = 0; tries < 100; tries++) {
		FILE *f = fopen(path, "r");
		int n = 0;
		long v;

		if (f != NULL) {
			while (n < max && fscanf(f, "%ld", &v) == 1)
				pids[n++] = (pid_t) v;
			fclose(f);
		}
		if (n > 0)
			return n;
		harness_sleep_ms(50);
	}
	ck_abort_msg("no pids in %s", path);
	return 0;
}

/* Milliseconds until every process in pids[0..n) and their process group
 * are gone, or -1 after timeout_ms. */
static long long
ops_wait_gone(const pid_t *pids, int n, int timeout_ms)
{
	long long t0 = harness_now_ms();

	for (;;) {
		bool alive = kill(-pids[0], 0) == 0 || errno != ESRCH;

		for (int i = 0; i < n && !alive; i++)
			alive = kill(pids[i], 0) == 0 || errno != ESRCH;
		if (!alive)
			return harness_now_ms() - t0;
		if (harness_now_ms() - t0 > timeout_ms)
			return -1;
		harness_sleep_ms(10);
	}
}

/* Asserts that sql fails for lack of a privilege (SQLSTATE 42501). */
static void
ops_refused(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR && state != NULL && strcmp(state, "42501") == 0,
	              "%s as %s: want permission denied (42501), got %s %s", sql, PQuser(conn),
	              PQresStatus(PQresultStatus(res)), PQerrorMessage(conn));
	PQclear(res);
}

/* ---- cancel ---- */

/* A cancelled pending task never runs, even once it is due. */
START_TEST(test_cancel_of_a_pending_task_means_it_never_runs)
{
	PGconn *admin = harness_connect(harness_as(dt_db, HARNESS_ADMIN));
	struct harness_daemon d;
	char handlers[512], runs[256], sql[256];
	long long id;

	snprintf(runs, sizeof runs, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  slow:\n    command: [%s, %s, '0']\n", harness_handler("sleeper.sh"),
	         runs);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "poll_interval: 200ms"));
	id = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind, run_at) VALUES ('slow', now() + interval '1 hour')"
	                          " RETURNING id");
	snprintf(sql, sizeof sql, "SELECT dispatch.cancel(%lld)", id);
	ck_assert_str_eq(harness_value(admin, sql), "t");
	/* Cancelled once: a second call changes nothing. */
	ck_assert_str_eq(harness_value(admin, sql), "f");
	snprintf(sql, sizeof sql, "SELECT concat_ws('|', status, attempts, last_error, finished_at IS NOT NULL,"
	                          " lease_expires_at IS NULL) FROM dispatch.tasks WHERE id = %lld", id);
	ck_assert_str_eq(harness_value(dt_conn, sql), "cancelled|0|cancelled by " HARNESS_ADMIN "|t|t");
	/* Due now, and announced: still never claimed. */
	harness_exec(dt_conn, "UPDATE dispatch.tasks SET run_at = now(); NOTIFY dispatch_tasks, 'default'");
	harness_sleep_ms(1200);
	ck_assert_str_eq(harness_value(dt_conn, sql), "cancelled|0|cancelled by " HARNESS_ADMIN "|t|t");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE started_at IS NOT NULL"), "0");
	{
		FILE *f = fopen(runs, "r");

		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(fgetc(f), EOF);
		fclose(f);
	}
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	PQfinish(admin);
	unlink(runs);
}
END_TEST

/*
 * A running command handler is stopped within 2 s of the cancel: the
 * process and its process group (a child it started) are gone. The lease
 * tick comes only every 10 s here (lease 30 s, poll_interval 1 h), so the
 * notification is what stops it. Nothing overwrites the cancelled row,
 * not the handler's end nor a later tick.
 */
START_TEST(test_cancel_of_a_running_command_stops_its_process_group)
{
	PGconn *admin = harness_connect(harness_as(dt_db, HARNESS_ADMIN));
	struct harness_daemon d;
	char handlers[512], pids_path[256], sql[256];
	pid_t pids[2];
	long long id, took;
	int n;

	snprintf(pids_path, sizeof pids_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  family:\n    command: [%s, %s]\n", harness_handler("family.sh"),
	         pids_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "poll_interval: 1h\nlease: 30s"));
	id = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('family') RETURNING id");
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", id);
	harness_wait_value(dt_conn, sql, "in_progress", 10000, &d);
	n = ops_read_pids(pids_path, pids, 2);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(kill(pids[0], 0), 0);
	ck_assert_int_eq(kill(pids[1], 0), 0);

	snprintf(sql, sizeof sql, "SELECT dispatch.cancel(%lld, 'operator says stop')", id);
	ck_assert_str_eq(harness_value(admin, sql), "t");
	took = ops_wait_gone(pids, n, 2000);
	ck_assert_msg(took >= 0, "handler %d or its child %d still running 2 s after the cancel\n%s", (int) pids[0],
	              (int) pids[1], harness_daemon_log(&d));

	snprintf(sql, sizeof sql, "SELECT concat_ws('|', status, attempts, last_error, locked_by IS NOT NULL)"
	                          "  FROM dispatch.tasks WHERE id = %lld", id);
	ck_assert_str_eq(harness_value(dt_conn, sql), "cancelled|1|operator says stop|t");
	harness_daemon_wait_log(&d, "ended after the task was cancelled; outcome not recorded", 3000);
	/* The handler's end (killed by a signal: a failed attempt) is fenced
	 * out; a later renewal holds nothing. */
	harness_sleep_ms(1000);
	ck_assert_str_eq(harness_value(dt_conn, sql), "cancelled|1|operator says stop|t");
	ck_assert_int_eq(harness_daemon_log_count(&d, "cancelled while its handler ran (operator says stop); stopping it"), 1);
	ck_assert_int_eq(harness_daemon_log_count(&d, "lease lost"), 0);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	PQfinish(admin);
	unlink(pids_path);
}
END_TEST

/* Without notifications (poll-only mode, for PgBouncer) the lease tick
 * finds the cancel all the same, and says what it was. */
START_TEST(test_cancel_in_poll_only_mode_is_found_by_the_lease_tick)
{
	PGconn *admin = harness_connect(harness_as(dt_db, HARNESS_ADMIN));
	struct harness_daemon d;
	char handlers[512], pids_path[256], sql[256];
	pid_t pid;
	long long id;

	snprintf(pids_path, sizeof pids_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  slow:\n    command: [%s, %s, '60']\n", harness_handler("sleeper.sh"),
	         pids_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "notify: false\npoll_interval: 300ms"));
	id = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('slow') RETURNING id");
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", id);
	harness_wait_value(dt_conn, sql, "in_progress", 10000, &d);
	ck_assert_int_eq(ops_read_pids(pids_path, &pid, 1), 1);
	snprintf(sql, sizeof sql, "SELECT dispatch.cancel(%lld, 'by poll')", id);
	ck_assert_str_eq(harness_value(admin, sql), "t");
	ck_assert_msg(ops_wait_gone(&pid, 1, 2000) >= 0, "handler %d still running\n%s", (int) pid,
	              harness_daemon_log(&d));
	harness_daemon_wait_log(&d, "cancelled while its handler ran (by poll)", 2000);
	snprintf(sql, sizeof sql, "SELECT concat_ws('|', status, last_error) FROM dispatch.tasks WHERE id = %lld", id);
	ck_assert_str_eq(harness_value(dt_conn, sql), "cancelled|by poll");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	PQfinish(admin);
	unlink(pids_path);
}
END_TEST

/* The same for a SQL handler: its statement is cancelled on the server
 * within 2 s and its transaction rolled back (its effect is not kept). */
START_TEST(test_cancel_of_a_running_sql_handler_cancels_its_statement)
{
	PGconn *admin = harness_connect(harness_as(dt_db, HARNESS_ADMIN));
	struct harness_daemon d;
	char sql[256];
	long long id, t0;
	const char *active = "SELECT count(*) FROM pg_stat_activity"
	                     " WHERE application_name LIKE 'pgdispatch %' AND state = 'active'"
	                     "   AND query LIKE '%pg_sleep(60)%'";

	harness_exec(dt_conn, "CREATE TABLE effects (task_id bigint); GRANT INSERT ON effects TO " HARNESS_WORKER);
	harness_daemon_start(&d, dt_db, dt_config(
	        "  stuck:\n    sql: \"WITH i AS (INSERT INTO effects VALUES ($2) RETURNING 1)"
	        " SELECT pg_sleep(60) FROM i\"\n", "poll_interval: 1h\nlease: 30s"));
	id = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('stuck') RETURNING id");
	harness_wait_value(dt_conn, active, "1", 10000, &d);
	/* Its connection says whose it is: application_name is 'pgdispatch '
	 * and the claim's locked_by. */
	ck_assert_str_eq(harness_value(dt_conn, "SELECT count(*) FROM pg_stat_activity a JOIN dispatch.tasks t"
	                                        "    ON a.application_name = 'pgdispatch ' || t.locked_by"
	                                        " WHERE a.query LIKE '%pg_sleep(60)%'"), "1");

	snprintf(sql, sizeof sql, "SELECT dispatch.cancel(%lld, 'too slow')", id);
	t0 = harness_now_ms();
	ck_assert_str_eq(harness_value(admin, sql), "t");
	harness_wait_value(dt_conn, active, "0", 2000, &d);
	ck_assert_int_lt(harness_now_ms() - t0, 2000);
	harness_daemon_wait_log(&d, "SQL handler ended after the task was cancelled", 3000);
	harness_sleep_ms(500);
	snprintf(sql, sizeof sql, "SELECT concat_ws('|', status, attempts, last_error) FROM dispatch.tasks WHERE id = %lld",
	         id);
	ck_assert_str_eq(harness_value(dt_conn, sql), "cancelled|1|too slow");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT count(*) FROM effects"), "0");
	ck_assert_int_eq(harness_daemon_log_count(&d, "lease lost"), 0);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	PQfinish(admin);
}
END_TEST

/*
 * cancel_many counts what it cancels by kind, status and queue; finished
 * tasks are left alone; a running task's daemon is told on
 * dispatch_cancel with the task id.
 */
START_TEST(test_cancel_many_counts_and_leaves_finished_tasks_alone)
{
	PGconn *admin = harness_connect(harness_as(dt_db, HARNESS_ADMIN));
	PGconn *listener = harness_connect(dt_db);
	PGresult *res;
	PGnotify *n;
	long long done, running;
	char sql[256];

	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, queue)"
	                      " SELECT k, q FROM (VALUES ('a', 'default'), ('a', 'default'), ('a', 'default'),"
	                      "                          ('a', 'other'), ('b', 'default'), ('b', 'default'),"
	                      "                          ('b', 'other')) AS v(k, q)");
	done = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind, status, attempts, result, finished_at)"
	                            " VALUES ('a', 'complete', 1, '\"kept\"', now()) RETURNING id");
	running = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind, status, attempts, locked_by, claim_token,"
	                               "                            lease_expires_at)"
	                               " VALUES ('a', 'in_progress', 1, 'elsewhere#1', 7, now() + interval '1 hour')"
	                               " RETURNING id");
	harness_exec(listener, "LISTEN dispatch_cancel");

	ck_assert_int_eq(harness_int(admin, "SELECT dispatch.cancel_many('a')"), 4);
	ck_assert_int_eq(harness_int(admin, "SELECT dispatch.cancel_many('b', queue => 'default', reason => 'bulk')"), 2);
	ck_assert_int_eq(harness_int(admin, "SELECT dispatch.cancel_many('a')"), 0);
	/* Nothing was running among those: no notification. */
	ck_assert_int_eq(PQconsumeInput(listener), 1);
	ck_assert_ptr_null(PQnotifies(listener));
	ck_assert_int_eq(harness_int(admin, "SELECT dispatch.cancel_many(NULL, 'in_progress')"), 1);

	snprintf(sql, sizeof sql, "SELECT dispatch.cancel(%lld, 'too late')", done);
	ck_assert_str_eq(harness_value(admin, sql), "f");
	ck_assert_str_eq(harness_value(admin, "SELECT dispatch.cancel(-1)"), "f");
	res = PQexec(admin, "SELECT dispatch.cancel_many('a', 'complete')");
	ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "22023");
	PQclear(res);

	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(concat_ws(':', kind, queue, status, last_error), ',' ORDER BY id) FROM dispatch.tasks"),
	        "a:default:cancelled:cancelled by " HARNESS_ADMIN ",a:default:cancelled:cancelled by " HARNESS_ADMIN
	        ",a:default:cancelled:cancelled by " HARNESS_ADMIN ",a:other:cancelled:cancelled by " HARNESS_ADMIN
	        ",b:default:cancelled:bulk,b:default:cancelled:bulk,b:other:pending,a:default:complete"
	        ",a:default:cancelled:cancelled by " HARNESS_ADMIN);
	snprintf(sql, sizeof sql, "SELECT concat_ws('|', result, finished_at IS NOT NULL) FROM dispatch.tasks"
	                          " WHERE id = %lld", done);
	ck_assert_str_eq(harness_value(dt_conn, sql), "\"kept\"|t");
	/* The running one keeps who ran it, loses its lease, and its daemon
	 * hears of it. */
	snprintf(sql, sizeof sql, "SELECT concat_ws('|', locked_by, claim_token, lease_expires_at IS NULL)"
	                          "  FROM dispatch.tasks WHERE id = %lld", running);
	ck_assert_str_eq(harness_value(dt_conn, sql), "elsewhere#1|7|t");
	ck_assert_int_eq(PQconsumeInput(listener), 1);
	n = PQnotifies(listener);
	ck_assert_ptr_nonnull(n);
	ck_assert_str_eq(n->relname, "dispatch_cancel");
	ck_assert_int_eq(atoll(n->extra), running);
	PQfreemem(n);
	ck_assert_ptr_null(PQnotifies(listener));
	PQfinish(listener);
	PQfinish(admin);
}
END_TEST

/* Only dispatch_admin may cancel; only the worker runs retention. */
START_TEST(test_only_admin_may_cancel)
{
	PGconn *producer = harness_connect(harness_as(dt_db, HARNESS_PRODUCER));
	PGconn *worker = harness_connect(harness_as(dt_db, HARNESS_WORKER));
	PGconn *admin = harness_connect(harness_as(dt_db, HARNESS_ADMIN));
	long long id = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('k') RETURNING id");
	char sql[128];

	snprintf(sql, sizeof sql, "SELECT dispatch.cancel(%lld)", id);
	ops_refused(producer, sql);
	ops_refused(worker, sql);
	ops_refused(producer, "SELECT dispatch.cancel_many('k')");
	ops_refused(worker, "SELECT dispatch.cancel_many('k')");
	ops_refused(producer, "SELECT dispatch.retention_batch('complete', '1 day', 10)");
	ops_refused(admin, "SELECT dispatch.retention_batch('complete', '1 day', 10)");
	ops_refused(producer, "SELECT dispatch.retention_attempts_batch('1 day', 10)");
	/* Nobody but the owner writes the registry; all may read it. */
	ops_refused(producer, "DELETE FROM dispatch.instances");
	ops_refused(admin, "DELETE FROM dispatch.instances");
	ck_assert_str_eq(harness_value(producer, "SELECT count(*) FROM dispatch.instances"), "0");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM dispatch.tasks"), "pending");
	ck_assert_str_eq(harness_value(admin, sql), "t");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM dispatch.tasks"), "cancelled");
	/* The worker's retention refuses anything but finished statuses. */
	{
		PGresult *res = PQexec(worker, "SELECT dispatch.retention_batch('pending', '1 second', 10)");

		ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "22023");
		PQclear(res);
		res = PQexec(worker, "SELECT dispatch.retention_batch('complete', '1 second', 5000)");
		ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "22023");
		PQclear(res);
	}
	ck_assert_str_eq(harness_value(worker, "SELECT dispatch.retention_batch('cancelled', '1 hour', 10)"), "0");
	ck_assert_str_eq(harness_value(worker, "SELECT dispatch.retention_attempts_batch('1 hour', 10)"), "0");
	PQfinish(producer);
	PQfinish(worker);
	PQfinish(admin);
}
END_TEST

/* ---- instances ---- */

static const char ops_instances_sql[] =
	"SELECT coalesce(string_agg(concat_ws(':', name, state), ',' ORDER BY name), '') FROM dispatch.instances";

/*
 * Two live daemons show up with their name, pid, host, version, queues,
 * concurrency and running count; name#pid is the locked_by of their claims
 * and the end of their connections' application_name. One killed with
 * SIGKILL shows as gone after a few of its leases; the other stays
 * running.
 */
START_TEST(test_instances_show_live_daemons_and_a_killed_one_as_gone)
{
	struct harness_daemon a, b;
	char sql[512], beta[2048];
	const char *handlers = "  nap:\n    builtin: sleep\n";

	harness_daemon_start(&a, dt_db, dt_config(handlers, "lease: 1s\ninstance_name: alpha\nconcurrency: 3"));
	/* dt_config() serves queue default alone: beta serves two. */
	snprintf(beta, sizeof beta, "queues: [default, mail]\n%s",
	         strchr(dt_config(handlers, "lease: 1s\ninstance_name: beta"), '\n') + 1);
	harness_daemon_start(&b, dt_db, beta);
	harness_wait_value(dt_conn, ops_instances_sql, "alpha:running,beta:running", 5000, &a);
	snprintf(sql, sizeof sql,
	         "SELECT string_agg(concat_ws('|', name, pid, host <> '', version <> '', queues, concurrency, lease_ms,"
	         "                            started_at <= last_seen, last_seen > now() - interval '2 s'), ','"
	         "                  ORDER BY name) FROM dispatch.instances");
	{
		char want[512];

		snprintf(want, sizeof want, "alpha|%d|t|t|{default}|3|1000|t|t,beta|%d|t|t|{default,mail}|4|1000|t|t",
		         (int) a.proc.pid, (int) b.proc.pid);
		ck_assert_str_eq(harness_value(dt_conn, sql), want);
	}
	/* Busy: the running counts add up, and each claim's locked_by is a
	 * registered name#pid with connections of that application_name. */
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload)"
	                      " SELECT 'nap', '{\"ms\": 3000}' FROM generate_series(1, 4)");
	harness_wait_value(dt_conn, "SELECT sum(running) FROM dispatch.instances", "4", 5000, &a);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT count(*) FROM dispatch.tasks t"
	        " WHERE t.status = 'in_progress'"
	        "   AND EXISTS (SELECT 1 FROM dispatch.instances i WHERE i.name || '#' || i.pid = t.locked_by)"
	        "   AND EXISTS (SELECT 1 FROM pg_stat_activity s WHERE s.application_name = 'pgdispatch ' || t.locked_by)"),
	        "4");

	kill(b.proc.pid, SIGKILL);
	ck_assert_int_eq(harness_finish(&b.proc), 128 + SIGKILL);
	/* Three of beta's leases (3 s) and one of alpha's ticks. */
	harness_wait_value(dt_conn, ops_instances_sql, "alpha:running,beta:gone", 6000, &a);
	harness_daemon_wait_log(&a, "instance=beta#", 1000);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_seen > now() - interval '1 s' FROM dispatch.instances"
	                                        " WHERE name = 'alpha'"), "t");
	ck_assert_int_eq(harness_daemon_stop(&a, SIGTERM), 0);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
}
END_TEST

/* A graceful stop shows 'stopping' while handlers finish, then the row
 * is gone; a row gone for a day is deleted by any daemon. */
START_TEST(test_graceful_stop_shows_stopping_then_removes_the_row)
{
	struct harness_daemon d;

	harness_exec(dt_conn, "INSERT INTO dispatch.instances (name, pid, host, version, queues, concurrency, state,"
	                      "                                 lease_ms, last_seen)"
	                      " VALUES ('old', 1, 'h', '0', '{default}', 1, 'gone', 1000, now() - interval '25 hours'),"
	                      "        ('recent', 2, 'h', '0', '{default}', 1, 'gone', 1000, now() - interval '1 hour')");
	harness_daemon_start(&d, dt_db, dt_config("  nap:\n    builtin: sleep\n", "lease: 3s\ninstance_name: calm"));
	harness_wait_value(dt_conn, ops_instances_sql, "calm:running,recent:gone", 5000, &d);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('nap', '{\"ms\": 2000}')");
	harness_wait_value(dt_conn, "SELECT running FROM dispatch.instances WHERE name = 'calm'", "1", 5000, &d);
	kill(d.proc.pid, SIGTERM);
	harness_wait_value(dt_conn, ops_instances_sql, "calm:stopping,recent:gone", 1000, &d);
	ck_assert_int_eq(harness_finish(&d.proc), 0);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM dispatch.tasks"), "complete");
	ck_assert_str_eq(harness_value(dt_conn, ops_instances_sql), "recent:gone");
	harness_daemon_free(&d);
}
END_TEST

/* ---- retention ---- */

/* The rows each daemon's log says it deleted of status (summed over its
 * "retention deleted=N status=S" lines). */
static long long
ops_retention_logged(const struct harness_daemon *d, const char *status)
{
	const char *log = harness_daemon_log(d);
	long long total = 0;
	char want[64];

	snprintf(want, sizeof want, " status=%s ", status);
	for (const char *p = strstr(log, "retention deleted="); p != NULL; p = strstr(p + 1, "retention deleted=")) {
		const char *eol = strchr(p, '\n');
		const char *s = strstr(p, want);

		if (s != NULL && (eol == NULL || s < eol))
			total += atoll(p + strlen("retention deleted="));
	}
	return total;
}

/*
 * Two daemons with retention work a backlog: exactly the finished rows past
 * their status's age go (several batches of them), and nothing else: not
 * younger ones, not the backlog they just finished, not pending or running
 * rows however old their finished_at. Between them they delete each row
 * once, and neither reports a failure.
 */
START_TEST(test_retention_deletes_exactly_the_rows_past_their_age)
{
	struct harness_daemon a, b;
	const char *retention = "retention: {complete: 1h, failed: 2h, cancelled: 1h, attempts: 1d}\n"
	                        "concurrency: 8\nlog: {level: info}";
	char config[1024];

	/* Past their age: 2,500 complete, 7 failed, 4 cancelled. */
	harness_exec(dt_conn,
	        "INSERT INTO dispatch.tasks (kind, status, attempts, finished_at)"
	        " SELECT 'old', 'complete', 1, now() - interval '2 hours' FROM generate_series(1, 2500);"
	        "INSERT INTO dispatch.tasks (kind, status, attempts, finished_at)"
	        " SELECT 'old', 'failed', 3, now() - interval '3 hours' FROM generate_series(1, 7);"
	        "INSERT INTO dispatch.tasks (kind, status, attempts, finished_at)"
	        " SELECT 'old', 'cancelled', 0, now() - interval '90 minutes' FROM generate_series(1, 4);"
	        /* Younger than their age. */
	        "INSERT INTO dispatch.tasks (kind, status, attempts, finished_at)"
	        " SELECT 'young', 'complete', 1, now() - interval '50 minutes' FROM generate_series(1, 10);"
	        "INSERT INTO dispatch.tasks (kind, status, attempts, finished_at)"
	        " SELECT 'young', 'failed', 3, now() - interval '90 minutes' FROM generate_series(1, 5);"
	        "INSERT INTO dispatch.tasks (kind, status, attempts, finished_at)"
	        " SELECT 'young', 'cancelled', 0, now() - interval '10 minutes' FROM generate_series(1, 3);"
	        /* Not finished, whatever finished_at says: pending in a queue
	         * nobody serves, and running elsewhere with a long lease. */
	        "INSERT INTO dispatch.tasks (kind, queue, finished_at)"
	        " SELECT 'live', 'nobody', now() - interval '1 day' FROM generate_series(1, 6);"
	        "INSERT INTO dispatch.tasks (kind, status, attempts, locked_by, lease_expires_at, finished_at)"
	        " SELECT 'live', 'in_progress', 1, 'elsewhere#1', now() + interval '1 hour', now() - interval '1 day'"
	        "   FROM generate_series(1, 2);"
	        /* The failed-attempt log (0007): 3 rows past the day, 2 younger. */
	        "INSERT INTO dispatch.attempts (task_id, attempt, queue, kind, error, outcome, failed_at)"
	        " SELECT 1, 1, 'default', 'old', 'e', 'retry', now() - interval '25 hours' FROM generate_series(1, 3);"
	        "INSERT INTO dispatch.attempts (task_id, attempt, queue, kind, error, outcome, failed_at)"
	        " SELECT 1, 1, 'default', 'young', 'e', 'retry', now() - interval '23 hours' FROM generate_series(1, 2);"
	        /* The backlog the daemons work meanwhile. */
	        "INSERT INTO dispatch.tasks (kind) SELECT 'noop' FROM generate_series(1, 400)");
	snprintf(config, sizeof config, "%s", dt_config("  noop:\n    builtin: noop\n", retention));
	harness_daemon_start(&a, dt_db, config);
	harness_daemon_start(&b, dt_db, config);
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE kind = 'old'", "0", 10000, &a);
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE kind = 'noop' AND status = 'complete'",
	                   "400", 10000, &a);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(concat_ws(':', kind, status, n), ',' ORDER BY kind, status)"
	        "  FROM (SELECT kind, status, count(*) AS n FROM dispatch.tasks GROUP BY 1, 2) AS c"),
	        "live:pending:6,live:in_progress:2,noop:complete:400,young:complete:10,young:failed:5,young:cancelled:3");
	harness_wait_value(dt_conn, "SELECT string_agg(kind, ',') FROM dispatch.attempts", "young,young", 5000, &a);
	/* Each row deleted once: what the logs count adds up exactly. */
	harness_sleep_ms(300);
	ck_assert_int_eq(ops_retention_logged(&a, "complete") + ops_retention_logged(&b, "complete"), 2500);
	ck_assert_int_eq(ops_retention_logged(&a, "failed") + ops_retention_logged(&b, "failed"), 7);
	ck_assert_int_eq(ops_retention_logged(&a, "cancelled") + ops_retention_logged(&b, "cancelled"), 4);
	ck_assert_int_eq(harness_daemon_log_count(&a, "retention batch failed") + harness_daemon_log_count(&b, "retention batch failed"), 0);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGTERM), 0);
	ck_assert_int_eq(harness_daemon_stop(&b, SIGTERM), 0);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
}
END_TEST

/* Retention set to off keeps rows for ever. */
START_TEST(test_retention_off_keeps_rows)
{
	struct harness_daemon d;

	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, status, attempts, finished_at)"
	                      " VALUES ('old', 'complete', 1, now() - interval '400 days'),"
	                      "        ('old', 'failed', 1, now() - interval '2 hours')");
	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n",
	                                          "retention: {complete: off, failed: 1h}"));
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',') FROM dispatch.tasks", "complete", 5000, &d);
	harness_sleep_ms(1200);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(status::text, ',') FROM dispatch.tasks"), "complete");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

Suite *
operations_suite(void)
{
	Suite *s = suite_create("operations");
	TCase *cancel = tcase_create("cancel");
	TCase *instances = tcase_create("instances");
	TCase *retention = tcase_create("retention");

	tcase_add_checked_fixture(cancel, dt_setup, dt_teardown);
	tcase_set_timeout(cancel, 60);
	tcase_add_test(cancel, test_cancel_of_a_pending_task_means_it_never_runs);
	tcase_add_test(cancel, test_cancel_of_a_running_command_stops_its_process_group);
	tcase_add_test(cancel, test_cancel_of_a_running_sql_handler_cancels_its_statement);
	tcase_add_test(cancel, test_cancel_in_poll_only_mode_is_found_by_the_lease_tick);
	tcase_add_test(cancel, test_cancel_many_counts_and_leaves_finished_tasks_alone);
	tcase_add_test(cancel, test_only_admin_may_cancel);
	suite_add_tcase(s, cancel);

	tcase_add_checked_fixture(instances, dt_setup, dt_teardown);
	tcase_set_timeout(instances, 60);
	tcase_add_test(instances, test_instances_show_live_daemons_and_a_killed_one_as_gone);
	tcase_add_test(instances, test_graceful_stop_shows_stopping_then_removes_the_row);
	suite_add_tcase(s, instances);

	tcase_add_checked_fixture(retention, dt_setup, dt_teardown);
	tcase_set_timeout(retention, 60);
	tcase_add_test(retention, test_retention_deletes_exactly_the_rows_past_their_age);
	tcase_add_test(retention, test_retention_off_keeps_rows);
	suite_add_tcase(s, retention);
	return s;
}
