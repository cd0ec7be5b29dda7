/*
 * DB tier and end to end: the operator's SQL of migrations/0007_operations.sql.
 * dispatch.retry() and its bulk forms, dedupe keys, paused queues, purge,
 * the failed-attempts log and the views, who may call what, and an upgrade
 * from a database of the previous release holding tasks.
 *
 * Daemons run as HARNESS_WORKER, admin calls go through HARNESS_ADMIN's
 * connection (adm_admin), setup and checks through the owner's (dt_conn).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_test.h"
#include "embed.h"
#include "harness.h"

static PGconn *adm_admin;

static void
adm_setup(void)
{
	dt_setup();
	adm_admin = harness_connect(harness_as(dt_db, HARNESS_ADMIN));
}

static void
adm_teardown(void)
{
	PQfinish(adm_admin);
	adm_admin = NULL;
	dt_teardown();
}

/* Asserts that sql fails with SQLSTATE state. */
static void
adm_refused(PGconn *conn, const char *sql, const char *state)
{
	PGresult *res = PQexec(conn, sql);
	const char *got = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR && got != NULL && strcmp(got, state) == 0,
	              "%s as %s: want %s, got %s %s", sql, PQuser(conn), state,
	              PQresStatus(PQresultStatus(res)), PQerrorMessage(conn));
	PQclear(res);
}

/* Runs one of the daemon's statements (sql/NAME.sql, whole) with params. */
static PGresult *
adm_statement(PGconn *conn, const char *name, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(conn, embed_sql(name), nparams, NULL, params, NULL, NULL, 0);

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", name, PQerrorMessage(conn));
	return res;
}

/* Lines in a file (a test handler's run log). */
static int
adm_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, c;

	ck_assert_ptr_nonnull(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Retry ------------------------------------------------------------------- */

/*
 * The obvious fix (status = 'pending') leaves attempts used up, and the
 * daemon fails the row again unrun with "no attempts left". retry() gives
 * the task its attempts back: the handler runs again and completes, and
 * the failure history keeps both earlier failures with their errors.
 */
START_TEST(test_retry_runs_a_failed_task_again_and_keeps_its_history)
{
	struct harness_daemon d;
	char handlers[1024], log_path[256], sql[512];
	long long id;

	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  flaky:\n    command: [%s, %s, '2']\n    max_attempts: 2\n"
	         "    backoff: {initial: 10ms, max: 10ms}\n",
	         harness_handler("fail_runs.sh"), log_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));
	id = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('flaky') RETURNING id");
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", id);
	harness_wait_value(dt_conn, sql, "failed", 10000, &d);
	snprintf(sql, sizeof sql, "SELECT concat_ws('|', attempts, last_error) FROM dispatch.tasks WHERE id = %lld", id);
	ck_assert_str_eq(harness_value(dt_conn, sql), "2|exit 3: stderr: fail_runs.sh: failing run 2 on purpose");

	snprintf(sql, sizeof sql, "SELECT dispatch.retry(%lld)", id);
	ck_assert_str_eq(harness_value(adm_admin, sql), "t");
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", id);
	harness_wait_value(dt_conn, sql, "complete", 10000, &d);
	/* One more run, as attempt 1 of a fresh count; the last error stays
	 * readable after the success. */
	snprintf(sql, sizeof sql,
	         "SELECT concat_ws('|', attempts, result, last_error, finished_at >= started_at)"
	         "  FROM dispatch.tasks WHERE id = %lld", id);
	ck_assert_str_eq(harness_value(dt_conn, sql), "1|\"ok\"|exit 3: stderr: fail_runs.sh: failing run 2 on purpose|t");
	ck_assert_int_eq(adm_lines(log_path), 3);
	/* Both failures, oldest last, with the instance that ran them and the
	 * task's status now. */
	snprintf(sql, sizeof sql,
	         "SELECT string_agg(concat_ws('|', attempt, outcome, error, instance LIKE '%%#%d', task_status), ','"
	         "                  ORDER BY failed_at DESC)"
	         "  FROM dispatch.failures WHERE task_id = %lld", (int) d.proc.pid, id);
	ck_assert_str_eq(harness_value(adm_admin, sql),
	                 "2|failed|exit 3: stderr: fail_runs.sh: failing run 2 on purpose|t|complete,"
	                 "1|retry|exit 3: stderr: fail_runs.sh: failing run 1 on purpose|t|complete");
	/* The success logged nothing. */
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.attempts"), 2);
	unlink(log_path);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/*
 * A daemon waiting for work (its safety poll 30 s away) is woken by a
 * retry, one task's or many's.
 */
START_TEST(test_retry_wakes_a_waiting_daemon_at_once)
{
	struct harness_daemon d;
	const char *states = "SELECT string_agg(concat_ws(':', id, status, attempts, last_error), ',' ORDER BY id)"
	                     "  FROM dispatch.tasks";
	long long start;

	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (id, kind, status, attempts, finished_at, last_error)"
	                      " OVERRIDING SYSTEM VALUE VALUES (1, 'noop', 'failed', 5, now(), 'boom'),"
	                      "                                (2, 'noop', 'failed', 5, now(), 'bang')");
	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", "poll_interval: 30s"));
	/* Registered as waiting, and past the hand-over's short polls. */
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.sleepers", "1", 5000, &d);
	harness_sleep_ms(500);
	start = harness_now_ms();
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.retry(1)"), "t");
	harness_wait_value(dt_conn, states, "1:complete:1:boom,2:failed:5:bang", 3000, &d);
	ck_assert_int_lt(harness_now_ms() - start, 3000);

	harness_sleep_ms(500);
	start = harness_now_ms();
	ck_assert_int_eq(harness_int(adm_admin, "SELECT dispatch.retry_failed()"), 1);
	harness_wait_value(dt_conn, states, "1:complete:1:boom,2:complete:1:bang", 3000, &d);
	ck_assert_int_lt(harness_now_ms() - start, 3000);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/*
 * Only failed and cancelled tasks come back; anything else is left exactly
 * as it was. The bulk forms count what they changed, filter by kind, queue
 * and status, and skip tasks whose dedupe key a live task holds.
 */
START_TEST(test_retry_changes_only_failed_or_cancelled_tasks)
{
	const char *snapshot = "SELECT string_agg(concat_ws(':', id, status, attempts, run_at, finished_at,"
	                       "                            locked_by, claim_token), ',' ORDER BY id)"
	                       "  FROM dispatch.tasks";
	char before[4096];

	harness_exec(dt_conn,
	        "INSERT INTO dispatch.tasks (id, kind, queue, status, attempts, finished_at, locked_by, claim_token,"
	        "                            last_error, dedupe_key, lease_expires_at) OVERRIDING SYSTEM VALUE VALUES"
	        " (1, 'a', 'default', 'pending', 0, NULL, NULL, NULL, NULL, NULL, NULL),"
	        " (2, 'a', 'default', 'complete', 1, now(), 'x#1', 7, NULL, NULL, NULL),"
	        " (3, 'a', 'default', 'in_progress', 1, NULL, 'x#1', 8, NULL, NULL, now() + interval '1 min'),"
	        " (4, 'a', 'default', 'failed', 3, now(), 'x#1', 9, 'e4', NULL, NULL),"
	        " (5, 'b', 'default', 'failed', 3, now(), 'x#1', 10, 'e5', NULL, NULL),"
	        " (6, 'a', 'other', 'failed', 3, now(), 'x#1', 11, 'e6', NULL, NULL),"
	        " (7, 'a', 'default', 'cancelled', 1, now(), 'x#1', 12, 'no', NULL, NULL),"
	        /* key k: one live holder, one failed twin */
	        " (8, 'a', 'default', 'pending', 0, NULL, NULL, NULL, NULL, 'k', NULL),"
	        " (9, 'a', 'default', 'failed', 3, now(), 'x#1', 13, 'e9', 'k', NULL)");
	snprintf(before, sizeof before, "%s", harness_value(dt_conn, snapshot));
	ck_assert_str_eq(harness_value(adm_admin, "SELECT concat_ws(',', dispatch.retry(1), dispatch.retry(2),"
	                                          " dispatch.retry(3), dispatch.retry(99), dispatch.retry(9))"),
	                 "f,f,f,f,f");
	ck_assert_str_eq(harness_value(dt_conn, snapshot), before);

	/* retry(id): every claim and finish column reset, last_error kept. */
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.retry(4)"), "t");
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', status, attempts, run_at <= now() AND run_at > now() - interval '1 min',"
	        "       coalesce(finished_at::text, lease_expires_at::text, locked_by, claim_token::text, 'null'),"
	        "       last_error) FROM dispatch.tasks WHERE id = 4"),
	        "pending|0|t|null|e4");
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.retry(4)"), "f");
	/* Cancelled ones too, through retry_many with that status. */
	ck_assert_int_eq(harness_int(adm_admin, "SELECT dispatch.retry_many('a', 'cancelled')"), 1);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE id = 7"), "pending");
	adm_refused(adm_admin, "SELECT dispatch.retry_many('a', 'pending')", "22023");
	/* Kind and queue filter; 9's key is held by 8, so it stays failed. */
	ck_assert_int_eq(harness_int(adm_admin, "SELECT dispatch.retry_failed('a', 'default')"), 0);
	ck_assert_int_eq(harness_int(adm_admin, "SELECT dispatch.retry_failed(queue => 'other')"), 1);
	ck_assert_int_eq(harness_int(adm_admin, "SELECT dispatch.retry_failed()"), 1);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM dispatch.tasks"),
	                 "1:pending,2:complete,3:in_progress,4:pending,5:pending,6:pending,7:pending,8:pending,9:failed");
	/* Once the holder is done, the twin may come back. */
	harness_exec(dt_conn, "UPDATE dispatch.tasks SET status = 'complete', finished_at = now() WHERE id = 8");
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.retry(9)"), "t");
	ck_assert_int_eq(harness_int(adm_admin, "SELECT dispatch.retry_failed()"), 0);
}
END_TEST

/* Dedupe ------------------------------------------------------------------- */

#define ADM_RACERS 50

/*
 * 50 connections call enqueue() with one key at the same moment (they all
 * wait on an advisory lock the test holds, then go at once): one task, and
 * every caller got its id, with no error. Plain INSERTs with the key add
 * nothing and do not fail; another queue has keys of its own; once the
 * task completed, the key makes a new task.
 */
START_TEST(test_dedupe_key_makes_one_task_under_a_race)
{
	PGconn *racers[ADM_RACERS];
	PGconn *producer = harness_connect(harness_as(dt_db, HARNESS_PRODUCER));
	struct harness_daemon d;
	long long ids[ADM_RACERS], other, again;
	PGresult *res;
	char sql[256];

	for (int i = 0; i < ADM_RACERS; i++)
		racers[i] = harness_connect(harness_as(dt_db, HARNESS_PRODUCER));
	harness_exec(dt_conn, "SELECT pg_advisory_lock(4242)");
	for (int i = 0; i < ADM_RACERS; i++)
		ck_assert_int_eq(PQsendQuery(racers[i], "SELECT pg_advisory_lock_shared(4242);"
		                                        "SELECT dispatch.enqueue('noop', dedupe_key => 'same')"), 1);
	/* All 50 are queued on the lock, then released together. */
	harness_wait_value(dt_conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
	                            "   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
	                   "50", 10000, NULL);
	harness_exec(dt_conn, "SELECT pg_advisory_unlock(4242)");
	for (int i = 0; i < ADM_RACERS; i++) {
		ids[i] = -1;
		while ((res = PQgetResult(racers[i])) != NULL) {
			ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "racer %d: %s", i,
			              PQresultErrorMessage(res));
			if (strcmp(PQfname(res, 0), "enqueue") == 0)
				ids[i] = atoll(PQgetvalue(res, 0, 0));
			PQclear(res);
		}
		PQfinish(racers[i]);
	}
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks"), 1);
	for (int i = 0; i < ADM_RACERS; i++)
		ck_assert_int_eq(ids[i], harness_int(dt_conn, "SELECT id FROM dispatch.tasks"));

	/* A plain INSERT of the key, alone or twice in one statement, inserts
	 * nothing and does not fail the transaction. */
	harness_exec(producer, "BEGIN");
	res = PQexec(producer, "INSERT INTO dispatch.tasks (kind, dedupe_key) VALUES ('noop', 'same'), ('noop', 'same')"
	                       " RETURNING id");
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	ck_assert_int_eq(PQntuples(res), 0);
	PQclear(res);
	harness_exec(producer, "COMMIT");
	/* Another queue: a key of its own. */
	other = harness_int(producer, "SELECT dispatch.enqueue('noop', queue => 'other', dedupe_key => 'same')");
	ck_assert_int_ne(other, ids[0]);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks"), 2);

	/* Completed, the key is free again (queue other is not served). */
	harness_daemon_start(&d, dt_db, dt_config("  noop:\n    builtin: noop\n", NULL));
	snprintf(sql, sizeof sql, "SELECT status FROM dispatch.tasks WHERE id = %lld", ids[0]);
	harness_wait_value(dt_conn, sql, "complete", 10000, &d);
	again = harness_int(producer, "SELECT dispatch.enqueue('noop', dedupe_key => 'same')");
	ck_assert_int_gt(again, other);
	ck_assert_int_eq(harness_int(producer, "SELECT dispatch.enqueue('noop', '{}', 'other', NULL, NULL, NULL, 'same')"),
	                 other);
	/* The six-argument call of earlier releases still works. */
	ck_assert_int_gt(harness_int(producer, "SELECT dispatch.enqueue('noop', '{}', 'other', now(), 0, 3)"), again);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	PQfinish(producer);
}
END_TEST

/* Pause -------------------------------------------------------------------- */

/*
 * The claim and the next-due probe, as the daemon sends them: nothing from
 * a paused queue, and no due time either (0 would make an idle daemon ask
 * again and again).
 */
START_TEST(test_claim_and_next_due_skip_a_paused_queue)
{
	PGconn *worker = harness_connect(harness_as(dt_db, HARNESS_WORKER));
	const char *claim[] = {"a", "10", "me#1", "30000", "{}", "1", "{}", "{}"};
	const char *next_due[] = {"a", "{}"};
	PGresult *res;

	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, queue) VALUES ('k', 'a'), ('k', 'a')");
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.pause('a')"), "t");
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.pause('a')"), "f");
	res = adm_statement(worker, "next_due", 2, next_due);
	ck_assert_int_eq(PQgetisnull(res, 0, 0), 1);
	PQclear(res);
	res = adm_statement(worker, "claim", 8, claim);
	ck_assert_int_eq(PQntuples(res), 0);
	PQclear(res);
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.resume('a')"), "t");
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.resume('a')"), "f");
	res = adm_statement(worker, "next_due", 2, next_due);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "0");
	PQclear(res);
	res = adm_statement(worker, "claim", 8, claim);
	ck_assert_int_eq(PQntuples(res), 2);
	PQclear(res);
	PQfinish(worker);
}
END_TEST

/*
 * Two daemons serve queues a and b, a is paused: b's tasks complete while
 * nothing of a is claimed for 3 s; resume drains a at once (the safety poll
 * is 30 s away). The pause is in the table, so a restarted daemon keeps it.
 */
START_TEST(test_paused_queue_waits_across_daemons_and_restarts)
{
	struct harness_daemon one, two;
	char yaml[8192];
	long long start;

	/* dt_config's, serving a and b instead of default. */
	snprintf(yaml, sizeof yaml, "queues: [a, b]\n%s",
	         strchr(dt_config("  noop:\n    builtin: noop\n", "poll_interval: 30s"), '\n') + 1);
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.pause('a')"), "t");
	harness_daemon_start(&one, dt_db, yaml);
	harness_daemon_start(&two, dt_db, yaml);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, queue) SELECT 'noop', q"
	                      "  FROM unnest(ARRAY['a', 'b']) AS q, generate_series(1, 5)");
	start = harness_now_ms();
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE queue = 'b' AND status = 'complete'", "5",
	                   5000, &one);
	harness_sleep_ms((int) (3000 - (harness_now_ms() - start)));
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', count(*), max(attempts), count(started_at))"
	                                        "  FROM dispatch.tasks WHERE queue = 'a' AND status = 'pending'"),
	                 "5|0|0");
	ck_assert_str_eq(harness_value(adm_admin, "SELECT string_agg(concat_ws(':', queue, status, count, paused), ','"
	                                          " ORDER BY queue) FROM dispatch.queue_stats"),
	                 "a:pending:5:t,b:complete:5:f");
	start = harness_now_ms();
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.resume('a')"), "t");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE queue = 'a' AND status = 'complete'", "5",
	                   3000, &one);
	ck_assert_int_lt(harness_now_ms() - start, 3000);

	/* Paused again, one daemon restarted: still paused for both. */
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.pause('a')"), "t");
	ck_assert_int_eq(harness_daemon_stop(&one, SIGTERM), 0);
	harness_daemon_free(&one);
	harness_daemon_start(&one, dt_db, yaml);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, queue) VALUES ('noop', 'a'), ('noop', 'b')");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE queue = 'b' AND status = 'complete'", "6",
	                   5000, &one);
	harness_sleep_ms(1000);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE queue = 'a' AND status = 'pending'"),
	                 1);
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.resume('a')"), "t");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "12", 3000, &one);
	ck_assert_int_eq(harness_daemon_stop(&one, SIGTERM), 0);
	ck_assert_int_eq(harness_daemon_stop(&two, SIGTERM), 0);
	harness_daemon_free(&one);
	harness_daemon_free(&two);
}
END_TEST

/* Purge, the log, the views -------------------------------------------------- */

START_TEST(test_purge_deletes_exactly_the_old_finished_tasks)
{
	harness_exec(dt_conn,
	        "INSERT INTO dispatch.tasks (id, kind, status, finished_at, created_at) OVERRIDING SYSTEM VALUE VALUES"
	        " (1, 'k', 'complete', now() - interval '2 days', now() - interval '3 days'),"
	        " (2, 'k', 'failed', now() - interval '25 hours', now() - interval '3 days'),"
	        " (3, 'k', 'cancelled', now() - interval '2 days', now() - interval '3 days'),"
	        " (4, 'k', 'complete', now() - interval '23 hours', now() - interval '3 days'),"
	        " (5, 'k', 'failed', now() - interval '1 minute', now() - interval '3 days'),"
	        " (6, 'k', 'pending', NULL, now() - interval '30 days'),"
	        " (7, 'k', 'in_progress', NULL, now() - interval '30 days')");
	ck_assert_int_eq(harness_int(adm_admin, "SELECT dispatch.purge('1 day')"), 3);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(id::text, ',' ORDER BY id) FROM dispatch.tasks"),
	                 "4,5,6,7");
	ck_assert_int_eq(harness_int(adm_admin, "SELECT dispatch.purge('1 day')"), 0);
	adm_refused(adm_admin, "SELECT dispatch.purge(NULL)", "22023");
	/* A negative age would reach into the future: every finished task. */
	adm_refused(adm_admin, "SELECT dispatch.purge('-1 day')", "22023");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(id::text, ',' ORDER BY id) FROM dispatch.tasks"),
	                 "4,5,6,7");
}
END_TEST

/*
 * One INSERT of 20,000 keyed rows: the dedupe trigger's locks are stripes,
 * so the transaction holds a bounded number of them (a lock per key would
 * hold 20,000 until commit, and exhaust the lock table every session of
 * the cluster shares at the default max_locks_per_transaction).
 */
START_TEST(test_dedupe_of_many_keys_holds_few_locks)
{
	PGconn *producer = harness_connect(harness_as(dt_db, HARNESS_PRODUCER));

	harness_exec(producer, "BEGIN;"
	                       "INSERT INTO dispatch.tasks (kind, dedupe_key)"
	                       " SELECT 'k', 'key-' || g FROM generate_series(1, 20000) AS g;"
	                       /* The same keys again: all taken. */
	                       "INSERT INTO dispatch.tasks (kind, dedupe_key)"
	                       " SELECT 'k', 'key-' || g FROM generate_series(1, 20000, 7) AS g");
	/* 256 stripes, and the wake-up trigger's one shared lock. */
	ck_assert_int_le(harness_int(producer, "SELECT count(*) FROM pg_locks"
	                                       " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"),
	                 256 + 1);
	harness_exec(producer, "COMMIT");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks"), 20000);
	PQfinish(producer);
}
END_TEST

/*
 * The reaper logs the attempt it takes back, in the same statement, with
 * the daemon's own role (its INSERT grant on the log is enough).
 */
START_TEST(test_reaped_lease_is_logged_as_a_failed_attempt)
{
	PGconn *worker = harness_connect(harness_as(dt_db, HARNESS_WORKER));
	const char *params[] = {"{}", "{}", "2", "{}"};
	PGresult *res;

	harness_exec(dt_conn,
	        "INSERT INTO dispatch.tasks (id, kind, queue, status, attempts, locked_by, lease_expires_at)"
	        " OVERRIDING SYSTEM VALUE VALUES"
	        " (1, 'k', 'q', 'in_progress', 1, 'gone#7', now() - interval '1 s'),"
	        " (2, 'k', 'q', 'in_progress', 2, 'gone#7', now() - interval '1 s'),"
	        " (3, 'k', 'q', 'in_progress', 1, 'here#8', now() + interval '1 min')");
	res = adm_statement(worker, "reap", 4, params);
	ck_assert_int_eq(PQntuples(res), 2);
	PQclear(res);
	ck_assert_str_eq(harness_value(adm_admin,
	        "SELECT string_agg(concat_ws('|', task_id, attempt, queue, kind, outcome, instance, task_status,"
	        "                            error LIKE 'lease expired: gone#7 %'), ',' ORDER BY task_id)"
	        "  FROM dispatch.failures"),
	        "1|1|q|k|lease expired|gone#7|pending|t,2|2|q|k|lease expired|gone#7|failed|t");
	PQfinish(worker);
}
END_TEST

START_TEST(test_views_show_running_throughput_and_queue_state)
{
	struct harness_daemon d;
	char sql[512];

	harness_daemon_start(&d, dt_db, dt_config("  nap:\n    builtin: sleep\n", NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('nap', '{\"ms\": 20000}')");
	harness_wait_value(adm_admin, "SELECT count(*) FROM dispatch.running", "1", 5000, &d);
	snprintf(sql, sizeof sql,
	         "SELECT concat_ws('|', r.kind, r.queue, r.instance = t.locked_by, r.instance LIKE '%%#%d', r.attempt,"
	         "       r.running_for >= '0', r.lease_left > '0', r.started_at = t.started_at)"
	         "  FROM dispatch.running r JOIN dispatch.tasks t USING (id)", (int) d.proc.pid);
	ck_assert_str_eq(harness_value(adm_admin, sql), "nap|default|t|t|1|t|t|t");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGKILL), 128 + SIGKILL);
	harness_daemon_free(&d);

	/* One transaction: one now(), one minute. */
	harness_exec(dt_conn,
	        "TRUNCATE dispatch.tasks;"
	        "INSERT INTO dispatch.tasks (kind, queue, status, finished_at) VALUES"
	        " ('k', 'a', 'complete', now()), ('k', 'a', 'complete', now()), ('k', 'a', 'failed', now()),"
	        " ('j', 'a', 'complete', now()), ('k', 'b', 'failed', now()),"
	        " ('k', 'a', 'complete', now() - interval '61 minutes'), ('k', 'a', 'cancelled', now())");
	ck_assert_str_eq(harness_value(adm_admin,
	        "SELECT string_agg(concat_ws('|', minute = date_trunc('minute', now()), queue, kind, completed, failed), ','"
	        "                  ORDER BY queue, kind) FROM dispatch.throughput"),
	        "t|a|j|1|0,t|a|k|2|1,t|b|k|0|1");

	harness_exec(dt_conn,
	        "TRUNCATE dispatch.tasks;"
	        "INSERT INTO dispatch.tasks (kind, queue, run_at) VALUES"
	        " ('k', 'a', now() - interval '1 min'), ('k', 'a', now() + interval '1 hour'),"
	        " ('k', 'a', now() + interval '2 hours'), ('k', 'b', now())");
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.pause('a')"), "t");
	ck_assert_str_eq(harness_value(adm_admin,
	        "SELECT string_agg(concat_ws('|', queue, status, count, oldest_due_age >= '1 min', scheduled, paused), ','"
	        "                  ORDER BY queue) FROM dispatch.queue_stats"),
	        "a|pending|3|t|2|t,b|pending|1|f|0|f");
	/* The first four columns are those of earlier releases, in order. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute"
	        " WHERE attrelid = 'dispatch.queue_stats'::regclass"),
	        "queue,status,count,oldest_due_age,scheduled,paused");
	/* Each view says what it is for. */
	ck_assert_int_eq(harness_int(dt_conn,
	        "SELECT count(*) FROM pg_class WHERE relnamespace = 'dispatch'::regnamespace AND relkind = 'v'"
	        "   AND obj_description(oid, 'pg_class') IS NULL"), 0);
}
END_TEST

/* Privileges ---------------------------------------------------------------- */

START_TEST(test_only_the_admin_role_may_call_the_admin_functions)
{
	const char *calls[] = {"SELECT dispatch.retry(1)", "SELECT dispatch.retry_failed()",
	                       "SELECT dispatch.retry_many('k')", "SELECT dispatch.pause('q')",
	                       "SELECT dispatch.resume('q')", "SELECT dispatch.purge('1 day')"};
	const char *roles[] = {HARNESS_PRODUCER, HARNESS_WORKER};

	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (id, kind, status, finished_at)"
	                      " OVERRIDING SYSTEM VALUE VALUES (1, 'k', 'failed', now() - interval '2 days')");
	for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) {
		PGconn *conn = harness_connect(harness_as(dt_db, roles[r]));

		for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++)
			adm_refused(conn, calls[c], "42501");
		/* The log is read through dispatch.failures only. */
		adm_refused(conn, "SELECT * FROM dispatch.attempts", "42501");
		ck_assert_int_eq(harness_int(conn, "SELECT count(*) FROM dispatch.failures"), 0);
		PQfinish(conn);
	}
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM dispatch.tasks"), "failed");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.queue_pauses"), 0);

	/* The admin can, through the functions, and only through them. */
	ck_assert_str_eq(harness_value(adm_admin, "SELECT concat_ws(',', dispatch.pause('q'), dispatch.resume('q'),"
	                                          " dispatch.retry(1), dispatch.retry_failed(), dispatch.retry_many('k'))"),
	                 "t,t,t,0,0");
	ck_assert_int_eq(harness_int(adm_admin, "SELECT dispatch.purge('1 day')"), 0);
	adm_refused(adm_admin, "UPDATE dispatch.tasks SET status = 'pending'", "42501");
	adm_refused(adm_admin, "DELETE FROM dispatch.tasks", "42501");
	adm_refused(adm_admin, "INSERT INTO dispatch.queue_pauses (queue) VALUES ('x')", "42501");
	/* The pause is recorded with who asked, not with the functions' owner. */
	ck_assert_str_eq(harness_value(adm_admin, "SELECT dispatch.pause('z')"), "t");
	ck_assert_str_eq(harness_value(adm_admin, "SELECT paused_by FROM dispatch.queue_pauses"), HARNESS_ADMIN);
}
END_TEST

/* Upgrade ------------------------------------------------------------------- */

/*
 * Applies the compiled-in migrations up to and including version last, as
 * `pgdispatch migrate` does (ledger, one transaction per file, the
 * checksum the server computes), so the binary's migrate takes it from
 * there: a database as the release that ended with last left it.
 */
static void
adm_migrate_to(PGconn *conn, const char *last)
{
	const size_t plen = strlen("migrations/");

	harness_exec(conn, embed_sql("migrate_bootstrap"));
	for (size_t i = 0; i < embed_file_count; i++) {
		const char *path = embed_files[i].path;
		char version[256];
		const char *params[2];
		PGresult *res;

		if (strncmp(path, "migrations/", plen) != 0)
			continue;
		snprintf(version, sizeof version, "%.*s", (int) (strlen(path) - plen - 4), path + plen);
		if (strncmp(version, last, 4) > 0)
			break;
		harness_exec(conn, "BEGIN");
		harness_exec(conn, embed_files[i].text);
		params[0] = version;
		params[1] = embed_files[i].text;
		res = PQexecParams(conn, "INSERT INTO dispatch.schema_migrations (version, checksum)"
		                         " VALUES ($1, encode(sha256(convert_to($2::text, 'UTF8')), 'hex'))",
		                   2, NULL, params, NULL, NULL, 0);
		ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", version, PQerrorMessage(conn));
		PQclear(res);
		harness_exec(conn, "COMMIT");
	}
}

/*
 * A database of the 0005 release, holding tasks in every state, takes
 * `pgdispatch migrate` and `roles`: every task keeps its state, a daemon
 * completes the pending ones and leaves a live claim alone, and an old
 * failed task can be retried.
 */
START_TEST(test_upgrade_from_0005_keeps_tasks_and_runs_them)
{
	const char *db = harness_db_create();
	const char *migrate[] = {"migrate", "-d", db, NULL};
	const char *state = "SELECT string_agg(concat_ws(':', id, status, attempts), ',' ORDER BY id) FROM dispatch.tasks";
	PGconn *owner = harness_connect(db), *admin;
	struct harness_daemon d;
	struct harness_proc p;

	adm_migrate_to(owner, "0005");
	ck_assert_str_eq(harness_value(owner, "SELECT max(version) FROM dispatch.schema_migrations"), "0005_claim_token");
	harness_exec(owner,
	        "INSERT INTO dispatch.tasks (id, kind, status, attempts, locked_by, claim_token, lease_expires_at,"
	        "                            started_at, finished_at, last_error) OVERRIDING SYSTEM VALUE VALUES"
	        " (1, 'noop', 'pending', 0, NULL, NULL, NULL, NULL, NULL, NULL),"
	        " (2, 'noop', 'pending', 1, NULL, NULL, NULL, NULL, NULL, 'once'),"
	        " (3, 'noop', 'in_progress', 1, 'old#1', 5, now() + interval '10 min', now(), NULL, NULL),"
	        " (4, 'noop', 'complete', 1, 'old#1', 6, NULL, now(), now(), NULL),"
	        " (5, 'noop', 'failed', 3, 'old#1', 7, NULL, now(), now(), 'boom')");

	ck_assert_int_eq(harness_run(&p, migrate), 0);
	ck_assert_msg(strstr(p.out, "applied 0001") == NULL && strstr(p.out, "applied 0006_cancelled") != NULL
	              && strstr(p.out, "applied 0007_operations") != NULL, "stdout: %s", p.out);
	ck_assert_str_eq(p.err, "");
	harness_proc_free(&p);
	harness_migrate(db);  /* nothing left to migrate; roles; the login roles */
	ck_assert_str_eq(harness_value(owner, state), "1:pending:0,2:pending:1,3:in_progress:1,4:complete:1,5:failed:3");
	ck_assert_int_eq(harness_int(owner, "SELECT count(*) FROM dispatch.tasks WHERE dedupe_key IS NOT NULL"), 0);

	harness_daemon_start(&d, db, dt_config("  noop:\n    builtin: noop\n", NULL));
	harness_wait_value(owner, state, "1:complete:1,2:complete:2,3:in_progress:1,4:complete:1,5:failed:3", 10000, &d);
	admin = harness_connect(harness_as(db, HARNESS_ADMIN));
	ck_assert_str_eq(harness_value(admin, "SELECT dispatch.retry(5)"), "t");
	harness_wait_value(owner, state, "1:complete:1,2:complete:2,3:in_progress:1,4:complete:1,5:complete:1", 10000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	PQfinish(admin);
	PQfinish(owner);
}
END_TEST

Suite *
admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("database");

	tcase_add_checked_fixture(tc, adm_setup, adm_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_retry_runs_a_failed_task_again_and_keeps_its_history);
	tcase_add_test(tc, test_retry_wakes_a_waiting_daemon_at_once);
	tcase_add_test(tc, test_retry_changes_only_failed_or_cancelled_tasks);
	tcase_add_test(tc, test_dedupe_key_makes_one_task_under_a_race);
	tcase_add_test(tc, test_claim_and_next_due_skip_a_paused_queue);
	tcase_add_test(tc, test_paused_queue_waits_across_daemons_and_restarts);
	tcase_add_test(tc, test_purge_deletes_exactly_the_old_finished_tasks);
	tcase_add_test(tc, test_dedupe_of_many_keys_holds_few_locks);
	tcase_add_test(tc, test_reaped_lease_is_logged_as_a_failed_attempt);
	tcase_add_test(tc, test_views_show_running_throughput_and_queue_state);
	tcase_add_test(tc, test_only_the_admin_role_may_call_the_admin_functions);
	tcase_add_test(tc, test_upgrade_from_0005_keeps_tasks_and_runs_them);
	suite_add_tcase(s, tc);
	return s;
}
