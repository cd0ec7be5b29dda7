/*
 * End to end, under faults: a cut LISTEN connection, two daemons on one
 * backlog, kill -9, a restarted PostgreSQL, SIGTERM with handlers running,
 * SIGHUP with a good and a bad config, a full NOTIFY queue, a server that
 * never answers, SQL handlers that cannot get a connection (the role's
 * connection limit, a host that never answers).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon_test.h"
#include "harness.h"

START_TEST(test_task_inserted_while_listen_connection_is_cut_is_done)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", "poll_interval: 1h"));
	/* Kill the LISTEN backend, then insert before the daemon can be back:
	 * the notification goes nowhere; the reconnect's sweep must find it. */
	ck_assert_int_eq(harness_int(dt_conn,
	        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	        " WHERE application_name LIKE 'pgdispatch %' AND query LIKE '%LISTEN dispatch_tasks%'"), 1);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 10000, &d);
	harness_daemon_wait_log(&d, "database connection lost", 1000);
	/* And it listens again: with an hour between polls, only a
	 * notification can explain a prompt pickup. */
	harness_daemon_wait_log(&d, "listen=yes", 1000);
	harness_sleep_ms(300);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "2", 5000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/*
 * No wake-up is lost when an insert races a daemon going to sleep: the
 * producer's transaction inserts before the daemon registers for wake-ups
 * (so it sends no notification) and commits after the daemon's sweep. With
 * an hour between safety polls, only the confirmation step can explain a
 * prompt pickup.
 */
START_TEST(test_insert_racing_a_daemon_going_idle_is_not_missed)
{
	struct harness_daemon d;
	PGconn *producer = harness_connect(dt_db);

	harness_exec(producer, "BEGIN; INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", "poll_interval: 1h"));
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.sleepers", "1", 5000, &d);
	harness_sleep_ms(300);
	harness_exec(producer, "COMMIT");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 5000, &d);
	PQfinish(producer);

	/* Idle and confirmed: a new insert is announced and taken at once. */
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "2", 2000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	/* Stopping leaves the registry. */
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.sleepers"), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_busy_daemon_unregisters_and_registers_again_when_idle)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  nap:\n    builtin: sleep\n", "poll_interval: 1h\nconcurrency: 2"));
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.sleepers", "1", 5000, &d);
	/* A backlog: claims come back full, so producers need not notify. */
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) SELECT 'nap', '{\"ms\": 100}'"
	                      "  FROM generate_series(1, 20)");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.sleepers", "0", 5000, &d);
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "20", 20000, &d);
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.sleepers", "1", 5000, &d);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('nap', '{\"ms\": 1}')");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "21", 2000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_two_daemons_run_each_of_10000_tasks_once)
{
	struct harness_daemon a, b;
	const char *handlers = "  count:\n    sql: \"INSERT INTO invocations (task_id) VALUES ($2)\"\n";

	/* The handler's table is the application's: the daemon's login role
	 * needs a grant of its own (dispatch_worker covers schema dispatch only). */
	harness_exec(dt_conn, "CREATE TABLE invocations (task_id bigint NOT NULL);"
	                      " GRANT INSERT ON invocations TO " HARNESS_WORKER);
	harness_daemon_start(&a, dt_db, dt_config(handlers, "concurrency: 16\nlog: {level: info}"));
	harness_daemon_start(&b, dt_db, dt_config(handlers, "concurrency: 16\nlog: {level: info}"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'count' FROM generate_series(1, 10000)");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "10000",
	                   90000, &a);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', count(*), count(DISTINCT task_id)) FROM invocations"), "10000|10000");
	/* Both took part. */
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(DISTINCT locked_by) FROM dispatch.tasks"), 2);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT max(attempts) FROM dispatch.tasks"), 1);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGTERM), 0);
	ck_assert_int_eq(harness_daemon_stop(&b, SIGTERM), 0);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
}
END_TEST

START_TEST(test_kill_9_tasks_complete_via_another_daemon_after_the_lease)
{
	struct harness_daemon a, b;
	char handlers[1024], pid_path[256];

	snprintf(pid_path, sizeof pid_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  slow:\n    command: [%s, %s, '1']\n", harness_handler("sleeper.sh"),
	         pid_path);
	harness_daemon_start(&a, dt_db, dt_config(handlers, "lease: 1s\ninstance_name: victim"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'slow' FROM generate_series(1, 4)");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'in_progress' AND locked_by LIKE 'victim#%'",
	                   "4", 10000, &a);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGKILL), 128 + SIGKILL);

	harness_daemon_start(&b, dt_db, dt_config(handlers, "lease: 1s\ninstance_name: rescuer"));
	harness_wait_value(dt_conn, "SELECT string_agg(DISTINCT concat_ws(':', status, split_part(locked_by, '#', 1), attempts), ',')"
	                            "  FROM dispatch.tasks",
	                   "complete:rescuer:2", 20000, &b);
	ck_assert_int_eq(harness_daemon_stop(&b, SIGTERM), 0);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
	unlink(pid_path);
}
END_TEST

START_TEST(test_restarted_postgresql_daemon_reconnects_and_finishes)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  nap:\n    builtin: sleep\n", "concurrency: 4"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) SELECT 'nap', '{\"ms\": 300}'"
	                      "  FROM generate_series(1, 20)");
	harness_sleep_ms(200);
	PQfinish(dt_conn);
	if (!harness_restart_server()) {
		dt_conn = harness_connect(dt_db);
		harness_daemon_stop(&d, SIGTERM);
		harness_daemon_free(&d);
		return;  /* not our server to restart */
	}
	dt_conn = harness_connect(dt_db);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) SELECT 'nap', '{\"ms\": 10}'"
	                      "  FROM generate_series(1, 20)");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "40", 30000, &d);
	harness_daemon_wait_log(&d, "database connection lost", 1000);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_sigterm_lets_running_handlers_finish_within_grace)
{
	struct harness_daemon d;
	char handlers[1024], pid_path[256];

	snprintf(pid_path, sizeof pid_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  slow:\n    command: [%s, %s, '1']\n", harness_handler("sleeper.sh"),
	         pid_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "shutdown_grace: 20s"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'slow' FROM generate_series(1, 3)");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'in_progress'", "3", 10000, &d);
	/* A task added during shutdown is not claimed. */
	kill(d.proc.pid, SIGTERM);
	harness_daemon_wait_log(&d, "stopping:", 5000);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('slow')");
	ck_assert_int_eq(harness_finish(&d.proc), 0);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(status || ':' || attempts, ',' ORDER BY id) FROM dispatch.tasks"),
	                 "complete:1,complete:1,complete:1,pending:0");
	harness_daemon_free(&d);
	unlink(pid_path);
}
END_TEST

START_TEST(test_sigterm_past_grace_returns_tasks_with_attempt_given_back)
{
	struct harness_daemon d;
	char handlers[1024], pid_path[256], line[64];
	FILE *f;

	snprintf(pid_path, sizeof pid_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  slow:\n    command: [%s, %s, '60']\n", harness_handler("sleeper.sh"),
	         pid_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers, "shutdown_grace: 500ms"));
	/* A second attempt, to see that exactly one attempt is given back. */
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, attempts) VALUES ('slow', 1), ('slow', 0)");
	harness_wait_value(dt_conn, "SELECT string_agg(status || ':' || attempts, ',' ORDER BY id) FROM dispatch.tasks",
	                   "in_progress:2,in_progress:1", 10000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(concat_ws(':', status, attempts, lease_expires_at IS NULL), ',' ORDER BY id)"
	        "  FROM dispatch.tasks"),
	        "pending:1:t,pending:0:t");
	/* The handlers were stopped, not left behind. */
	f = fopen(pid_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f) != NULL)
		ck_assert_msg(kill((pid_t) atoi(line), 0) != 0, "handler %s still running", line);
	fclose(f);
	harness_daemon_free(&d);
	unlink(pid_path);
}
END_TEST

START_TEST(test_sighup_applies_a_good_config_and_keeps_the_old_on_a_bad_one)
{
	struct harness_daemon d;
	FILE *f;

	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", NULL));
	/* A broken file: logged, old config kept, daemon goes on. */
	f = fopen(d.config_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("queues: [default]\nhandlers:\n  noop: {builtin: nope}\n", f);
	fclose(f);
	kill(d.proc.pid, SIGHUP);
	harness_daemon_wait_log(&d, "reload failed, keeping the running config", 5000);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 5000, &d);

	/* A good file with a new handler: used from then on. */
	f = fopen(d.config_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("queues: [default]\nhandlers:\n  noop: {builtin: noop}\n  later: {builtin: noop}\n", f);
	fclose(f);
	kill(d.proc.pid, SIGHUP);
	harness_daemon_wait_log(&d, "config reloaded", 5000);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('later')");
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks",
	                   "complete,complete", 5000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/*
 * A session that LISTENs and stays inside a transaction keeps the cluster's
 * NOTIFY queue from being emptied; once full, every notifying commit fails.
 * The daemon warns at its threshold and `status` shows the usage. 10,700
 * notifications of about 8 kB fill a little over 1% of the 8 GB queue.
 */
START_TEST(test_filling_notify_queue_is_warned_and_shown_by_status)
{
	struct harness_daemon d;
	struct harness_proc p;
	const char *args[] = {"status", "-d", dt_db, NULL};
	PGconn *stuck = harness_connect(dt_db);

	/* Two statements: LISTEN takes effect only when its transaction commits. */
	harness_exec(stuck, "LISTEN anything");
	harness_exec(stuck, "BEGIN");
	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n",
	                                          "notify_queue_warn_percent: 1\nlease: 1s"));
	harness_exec(dt_conn, "SELECT count(pg_notify('fill', i::text || repeat('x', 7950)))"
	                      "  FROM generate_series(1, 10700) AS i");
	harness_daemon_wait_log(&d, "NOTIFY queue is filling", 20000);
	ck_assert_int_eq(harness_run(&p, args), 0);
	ck_assert_msg(strstr(p.out, "NOTIFY queue: 1.0") != NULL, "%s", p.out);
	harness_proc_free(&p);

	/* The stuck listener leaves: the queue empties and the daemon says so. */
	PQfinish(stuck);
	harness_exec(dt_conn, "SELECT pg_notify('fill', 'nudge')");
	harness_daemon_wait_log(&d, "NOTIFY queue back under its warning threshold", 10000);
	ck_assert_int_eq(harness_run(&p, args), 0);
	ck_assert_msg(strstr(p.out, "NOTIFY queue: 0.00% full") != NULL, "%s", p.out);
	harness_proc_free(&p);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/* A TCP port on 127.0.0.1 that accepts connections and never answers. */
static int
faults_silent_server(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *) &a, sizeof a), 0);
	ck_assert_int_eq(listen(s, 16), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *) &a, &len), 0);
	*port = ntohs(a.sin_port);
	return s;
}

/* Starts a daemon against 127.0.0.1:port without waiting for it to connect. */
static void
faults_start_against(struct harness_daemon *d, int port, int connect_timeout_s)
{
	static char conninfo[128];
	const char *args[] = {"run", "-c", d->config_path, "-d", conninfo, NULL};

	memset(d, 0, sizeof *d);
	snprintf(d->config_path, sizeof d->config_path, "%s",
	         harness_write_temp(dt_config("  noop:\n    builtin: noop\n", NULL)));
	snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d dbname=none connect_timeout=%d", port,
	         connect_timeout_s);
	harness_start(&d->proc, args);
}

/*
 * Connecting never blocks the loop. A server that takes the TCP connection
 * and never answers: the daemon times the attempt out itself (libpq leaves
 * connect_timeout to callers that poll), and a SIGTERM in the middle of a
 * 60-second attempt stops it at once.
 */
START_TEST(test_silent_server_connects_time_out_and_sigterm_still_stops_at_once)
{
	struct harness_daemon d;
	struct timespec t0, t1;
	int port, s = faults_silent_server(&port);

	faults_start_against(&d, port, 1);
	harness_daemon_wait_log(&d, "timeout expired", 10000);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);

	faults_start_against(&d, port, 60);
	harness_daemon_wait_log(&d, "starting", 10000);
	harness_sleep_ms(500);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* A blocking connect would hold the signal for the full 60 s. */
	ck_assert_msg(t1.tv_sec - t0.tv_sec < 20, "SIGTERM took %ld s", (long) (t1.tv_sec - t0.tv_sec));
	ck_assert_msg(strstr(harness_daemon_log(&d), " connected ") == NULL, "%s", harness_daemon_log(&d));
	harness_daemon_free(&d);
	close(s);
}
END_TEST

/*
 * A daemon killed while waiting for work leaves its registration behind;
 * the next daemon to register removes it (its backend is gone), so
 * producers stop notifying for nobody
 * (migrations/0004_sleepers_backend_pid.sql).
 */
START_TEST(test_registration_of_a_killed_daemon_is_removed_by_the_next)
{
	struct harness_daemon a, b;

	harness_daemon_start(&a, dt_db, dt_config("  noop:\n    builtin: noop\n", "instance_name: first"));
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.sleepers", "1", 10000, &a);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGKILL), 128 + SIGKILL);
	harness_wait_value(dt_conn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgdispatch first'",
	                   "0", 10000, NULL);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.sleepers"), 1);

	harness_daemon_start(&b, dt_db, dt_config("  noop:\n    builtin: noop\n", "instance_name: second"));
	harness_wait_value(dt_conn, "SELECT string_agg(split_part(instance, '#', 1), ',') FROM dispatch.sleepers",
	                   "second", 10000, &b);
	ck_assert_int_eq(harness_daemon_stop(&b, SIGTERM), 0);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
}
END_TEST

/*
 * Failover with several hosts: the first
 * host never answers, the second is the server. libpq's own per-host
 * timeout works only in its blocking connect, so the daemon starts each
 * new attempt one host further along; it connects on the second attempt.
 */
START_TEST(test_silent_first_host_is_passed_over_for_the_next)
{
	struct harness_daemon d;
	char conninfo[1024];
	const char *args[] = {"run", "-c", d.config_path, "-d", conninfo, NULL};
	int port, s = faults_silent_server(&port);

	memset(&d, 0, sizeof d);
	snprintf(d.config_path, sizeof d.config_path, "%s",
	         harness_write_temp(dt_config("  noop:\n    builtin: noop\n", NULL)));
	snprintf(conninfo, sizeof conninfo, "%s host=127.0.0.1,%s port=%d,%s connect_timeout=2", dt_db,
	         getenv("PGHOST"), port, getenv("PGPORT") != NULL ? getenv("PGPORT") : "5432");
	harness_start(&d.proc, args);
	harness_daemon_wait_log(&d, "timeout expired while connecting to 127.0.0.1", 10000);
	harness_daemon_wait_log(&d, " connected ", 10000);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 10000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	close(s);
}
END_TEST

/* A login role of the SQL-connection tests, with a connection limit. */
#define FAULTS_LIMITED "pgdispatch_test_limited"

/*
 * The daemon's login role at its connection limit (SQLSTATE 53300): the
 * daemon's own two connections fit, a SQL handler's does not. A task whose
 * handler could not get a connection never ran, so it goes back to pending
 * with its attempt given back and libpq's reason, and is tried again after
 * a backoff; once connections can be had it runs, once.
 */
START_TEST(test_sql_task_without_a_connection_is_released_uncounted_then_runs)
{
	struct harness_daemon d;
	char conninfo[512];
	const char *handlers = "  count:\n    sql: \"INSERT INTO invocations (task_id) VALUES ($2)\"\n";

	harness_exec(dt_conn, "DROP ROLE IF EXISTS " FAULTS_LIMITED);
	harness_exec(dt_conn, "CREATE ROLE " FAULTS_LIMITED " LOGIN CONNECTION LIMIT 2;"
	                      " GRANT dispatch_worker TO " FAULTS_LIMITED ";"
	                      " CREATE TABLE invocations (task_id bigint NOT NULL);"
	                      " GRANT INSERT ON invocations TO " FAULTS_LIMITED);
	/* A password (trust authentication ignores it) that must not reach
	 * last_error or the log. */
	snprintf(conninfo, sizeof conninfo, "%s password=Sekrit-9f2c", dt_db);
	harness_daemon_start_as(&d, conninfo, FAULTS_LIMITED, dt_config(handlers, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, max_attempts) SELECT 'count', 2"
	                      "  FROM generate_series(1, 2)");
	harness_daemon_wait_log(&d, "too many connections for role", 5000);
	/* Long enough for every task to have been tried again at least once:
	 * a failed attempt each time would have used both up by now. (Waited
	 * for, not read once: a task may be caught between its claim and its
	 * release.) */
	harness_sleep_ms(1500);
	harness_wait_value(dt_conn, "SELECT string_agg(concat_ws(':', status, attempts), ',' ORDER BY id) FROM dispatch.tasks",
	                   "pending:0,pending:0", 1000, &d);
	ck_assert_int_eq(harness_int(dt_conn,
	        "SELECT count(*) FROM dispatch.tasks WHERE last_error LIKE"
	        "  'no database connection for the SQL handler: %too many connections for role"
	        " \"" FAULTS_LIMITED "\"; the attempt was not counted'"), 2);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM invocations"), 0);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE last_error LIKE '%Sekrit%'"), 0);

	harness_exec(dt_conn, "ALTER ROLE " FAULTS_LIMITED " CONNECTION LIMIT -1");
	harness_wait_value(dt_conn, "SELECT string_agg(concat_ws(':', status, attempts), ',' ORDER BY id) FROM dispatch.tasks",
	                   "complete:1,complete:1", 15000, &d);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM invocations"), 2);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	ck_assert_msg(strstr(d.proc.err, "Sekrit") == NULL, "%s", d.proc.err);
	harness_daemon_free(&d);
	harness_exec(dt_conn, "DROP OWNED BY " FAULTS_LIMITED "; DROP ROLE " FAULTS_LIMITED);
}
END_TEST

/*
 * A SQL handler's connection that hangs stalls nothing. The connection
 * string lists a host that takes TCP connections and never answers, then
 * the server: the daemon's own connections time out on the first and
 * settle on the second, and a SQL handler's first connection again starts
 * at the silent host. While it hangs, a sleeping task's timeout is
 * enforced on time and a new task is claimed and run at once; then the
 * SQL task goes back to pending with its attempt given back and runs on
 * the next host.
 */
/*
 * Starts a daemon on "host=127.0.0.1,SERVER port=PORT,SERVER_PORT
 * connect_timeout=3" as HARNESS_WORKER, with a table for its SQL handler,
 * and waits until it has connected: its own first connections time out on
 * the silent host, the next ones reach the server. A SQL handler's first
 * connection then starts at the silent host again.
 */
static void
faults_start_behind_silent_host(struct harness_daemon *d, int port, const char *yaml)
{
	static char conninfo[1024];
	const char *args[] = {"run", "-c", d->config_path, "-d", conninfo, NULL};

	harness_exec(dt_conn, "CREATE TABLE invocations (task_id bigint NOT NULL);"
	                      " GRANT INSERT ON invocations TO " HARNESS_WORKER);
	memset(d, 0, sizeof *d);
	snprintf(d->config_path, sizeof d->config_path, "%s", harness_write_temp(yaml));
	snprintf(conninfo, sizeof conninfo, "%s host=127.0.0.1,%s port=%d,%s connect_timeout=3 user=%s", dt_db,
	         getenv("PGHOST"), port, getenv("PGPORT") != NULL ? getenv("PGPORT") : "5432", HARNESS_WORKER);
	harness_start(&d->proc, args);
	harness_daemon_wait_log(d, " connected ", 10000);
}

#define FAULTS_COUNT_HANDLER "  count:\n    sql: \"INSERT INTO invocations (task_id) VALUES ($2)\"\n"

START_TEST(test_sql_connect_to_a_silent_host_stalls_nothing_and_costs_no_attempt)
{
	struct harness_daemon d;
	char sql[512];
	int port, s = faults_silent_server(&port);
	long long nap, count;

	faults_start_behind_silent_host(&d, port, dt_config(FAULTS_COUNT_HANDLER
	                                                    "  noop:\n    builtin: noop\n"
	                                                    "  nap:\n    builtin: sleep\n    timeout: 1s\n"
	                                                    "    max_attempts: 1\n",
	                                                    NULL));

	nap = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('nap', '{\"ms\": 5000}') RETURNING id");
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", nap);
	harness_wait_value(dt_conn, sql, "in_progress", 5000, &d);
	count = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('count') RETURNING id");
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", count);
	harness_wait_value(dt_conn, sql, "in_progress", 5000, &d);
	/* The SQL handler is connecting (for 3 s): the loop goes on. */
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noop')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'noop'", "complete", 1000, &d);
	snprintf(sql, sizeof sql,
	         "SELECT concat_ws('|', status, last_error, finished_at - started_at < interval '1.5 s')"
	         "  FROM dispatch.tasks WHERE id = %lld", nap);
	harness_wait_value(dt_conn, sql, "failed|timed out after 1000 ms|t", 2000, &d);

	/* Then the SQL task: released untried, and run on the next host. */
	snprintf(sql, sizeof sql, "SELECT concat_ws('|', status, attempts) FROM dispatch.tasks WHERE id = %lld", count);
	harness_wait_value(dt_conn, sql, "complete|1", 10000, &d);
	/* A success leaves last_error as it was: here, why the first try did
	 * not count. */
	snprintf(sql, sizeof sql,
	         "SELECT last_error LIKE 'no database connection for the SQL handler: timeout expired while"
	         " connecting to 127.0.0.1 port %d; the attempt was not counted' FROM dispatch.tasks WHERE id = %lld",
	         port, count);
	ck_assert_msg(strcmp(harness_value(dt_conn, sql), "t") == 0, "%s", harness_daemon_log(&d));
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM invocations"), 1);
	harness_daemon_wait_log(&d, "timeout expired while connecting to 127.0.0.1", 1000);
	harness_daemon_wait_log(&d, "the attempt was not counted", 1000);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	close(s);
}
END_TEST

/*
 * Shutdown past its grace while a SQL handler is still connecting: the
 * connect is dropped at once and the task goes back untried, attempt
 * given back, instead of the daemon waiting out connect_timeout and then
 * running the handler.
 */
START_TEST(test_sigterm_while_a_sql_handler_connects_returns_its_task_at_once)
{
	struct harness_daemon d;
	struct timespec t0, t1;
	int port, s = faults_silent_server(&port);
	long ms;

	faults_start_behind_silent_host(&d, port, dt_config(FAULTS_COUNT_HANDLER, "shutdown_grace: 300ms"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('count')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "in_progress", 5000, &d);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_msg(ms < 2000, "SIGTERM took %ld ms:\n%s", ms, d.proc.err);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', status, attempts, last_error IS NULL) FROM dispatch.tasks"), "pending|0|t");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM invocations"), 0);
	ck_assert_msg(strstr(d.proc.err, "returned to pending untried: stopped by shutdown") != NULL, "%s", d.proc.err);
	harness_daemon_free(&d);
	close(s);
}
END_TEST

Suite *
daemon_faults_suite(void)
{
	Suite *s = suite_create("daemon_faults");
	TCase *tc = tcase_create("faults");

	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_task_inserted_while_listen_connection_is_cut_is_done);
	tcase_add_test(tc, test_insert_racing_a_daemon_going_idle_is_not_missed);
	tcase_add_test(tc, test_busy_daemon_unregisters_and_registers_again_when_idle);
	tcase_add_test(tc, test_two_daemons_run_each_of_10000_tasks_once);
	tcase_add_test(tc, test_kill_9_tasks_complete_via_another_daemon_after_the_lease);
	tcase_add_test(tc, test_restarted_postgresql_daemon_reconnects_and_finishes);
	tcase_add_test(tc, test_sigterm_lets_running_handlers_finish_within_grace);
	tcase_add_test(tc, test_sigterm_past_grace_returns_tasks_with_attempt_given_back);
	tcase_add_test(tc, test_sighup_applies_a_good_config_and_keeps_the_old_on_a_bad_one);
	tcase_add_test(tc, test_filling_notify_queue_is_warned_and_shown_by_status);
	tcase_add_test(tc, test_silent_server_connects_time_out_and_sigterm_still_stops_at_once);
	tcase_add_test(tc, test_silent_first_host_is_passed_over_for_the_next);
	tcase_add_test(tc, test_registration_of_a_killed_daemon_is_removed_by_the_next);
	suite_add_tcase(s, tc);

	tc = tcase_create("sql_connect");
	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_sql_task_without_a_connection_is_released_uncounted_then_runs);
	tcase_add_test(tc, test_sql_connect_to_a_silent_host_stalls_nothing_and_costs_no_attempt);
	tcase_add_test(tc, test_sigterm_while_a_sql_handler_connects_returns_its_task_at_once);
	suite_add_tcase(s, tc);
	return s;
}
