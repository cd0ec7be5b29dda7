/*
 * DB tier: what migrations/0001_init.sql promises producers and operators:
 * the wake-up trigger, dispatch.enqueue() and dispatch.queue_stats.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "harness.h"

static PGconn *schema_conn;
static const char *schema_db;

static void
schema_setup(void)
{
	schema_db = harness_db_create();
	harness_migrate(schema_db);
	schema_conn = harness_connect(schema_db);
}

static void
schema_teardown(void)
{
	PQfinish(schema_conn);
	schema_conn = NULL;
	harness_teardown();
}

static long long
schema_ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Collects notifications on listener for wait_ms, appending each payload
 * and a comma to buf. Waiting the whole period (not stopping at the first)
 * is what lets the test see a duplicate.
 */
static int
schema_collect(PGconn *listener, int wait_ms, char *buf, size_t len)
{
	long long end = schema_ms_now() + wait_ms;
	int count = 0;

	buf[0] = '\0';
	for (long long now = schema_ms_now(); now < end; now = schema_ms_now()) {
		struct pollfd pfd = {.fd = PQsocket(listener), .events = POLLIN};
		PGnotify *n;

		poll(&pfd, 1, (int) (end - now));
		ck_assert_int_eq(PQconsumeInput(listener), 1);
		while ((n = PQnotifies(listener)) != NULL) {
			ck_assert_str_eq(n->relname, "dispatch_tasks");
			strncat(buf, n->extra, len - strlen(buf) - 2);
			strcat(buf, ",");
			count++;
			PQfreemem(n);
		}
	}
	return count;
}

START_TEST(test_insert_statement_notifies_once_per_queue)
{
	PGconn *listener = harness_connect(schema_db);
	char got[256];

	harness_exec(listener, "LISTEN dispatch_tasks");
	/* A daemon waits on each queue (see test_only_queues_with_sleepers_are_notified). */
	harness_exec(schema_conn, "INSERT INTO dispatch.sleepers (instance, queue) VALUES ('d', 'alpha'), ('d', 'beta')");
	harness_exec(schema_conn,
	             "INSERT INTO dispatch.tasks (queue, kind)"
	             " SELECT CASE WHEN i % 2 = 0 THEN 'alpha' ELSE 'beta' END, 'k'"
	             "   FROM generate_series(1, 100) i");
	ck_assert_int_eq(schema_collect(listener, 1000, got, sizeof got), 2);
	/* Delivery order within a transaction is send order, which DISTINCT
	 * leaves unspecified, so accept either. */
	ck_assert_msg(strcmp(got, "alpha,beta,") == 0 || strcmp(got, "beta,alpha,") == 0, "got %s", got);

	/* A second statement is a new wake-up, for its own queue only. */
	harness_exec(schema_conn, "INSERT INTO dispatch.tasks (queue, kind) VALUES ('beta', 'k'), ('beta', 'k')");
	ck_assert_int_eq(schema_collect(listener, 500, got, sizeof got), 1);
	ck_assert_str_eq(got, "beta,");

	/* Rolled back inserts wake nobody. */
	harness_exec(schema_conn, "BEGIN; INSERT INTO dispatch.tasks (kind) VALUES ('k'); ROLLBACK");
	ck_assert_int_eq(schema_collect(listener, 300, got, sizeof got), 0);
	PQfinish(listener);
}
END_TEST

START_TEST(test_only_queues_with_sleepers_are_notified)
{
	PGconn *listener = harness_connect(schema_db);
	char got[256];

	harness_exec(listener, "LISTEN dispatch_tasks");
	/* Every daemon busy: no notification, so no NOTIFY commit lock. */
	harness_exec(schema_conn, "INSERT INTO dispatch.tasks (queue, kind) VALUES ('alpha', 'k'), ('beta', 'k')");
	ck_assert_int_eq(schema_collect(listener, 300, got, sizeof got), 0);
	/* A daemon waiting on beta only: beta is announced, alpha is not. */
	harness_exec(schema_conn, "INSERT INTO dispatch.sleepers (instance, queue) VALUES ('d', 'beta')");
	harness_exec(schema_conn, "INSERT INTO dispatch.tasks (queue, kind) VALUES ('alpha', 'k'), ('beta', 'k')");
	ck_assert_int_eq(schema_collect(listener, 500, got, sizeof got), 1);
	ck_assert_str_eq(got, "beta,");
	PQfinish(listener);
}
END_TEST

START_TEST(test_repeatable_read_producer_always_notifies)
{
	PGconn *listener = harness_connect(schema_db);
	char got[256];

	/* Its snapshot may predate a registration, so it cannot trust the
	 * registry: it notifies even with no daemon registered. */
	harness_exec(listener, "LISTEN dispatch_tasks");
	harness_exec(schema_conn, "BEGIN ISOLATION LEVEL REPEATABLE READ;"
	                          " INSERT INTO dispatch.tasks (queue, kind) VALUES ('rr', 'k'); COMMIT");
	ck_assert_int_eq(schema_collect(listener, 500, got, sizeof got), 1);
	ck_assert_str_eq(got, "rr,");
	PQfinish(listener);
}
END_TEST

/*
 * The hand-over of migrations/0003: an insert that ran before a daemon
 * registered (so it did not notify) keeps the daemon's confirmation from
 * succeeding until it has ended; the daemon's next claim then sees it.
 */
START_TEST(test_registration_is_confirmed_only_after_open_inserts_end)
{
	PGconn *producer = harness_connect(schema_db);
	const char *confirm = "SELECT pg_try_advisory_xact_lock(hashtextextended('pgdispatch.wakeup', 0))";

	ck_assert_str_eq(harness_value(schema_conn, confirm), "t");
	harness_exec(producer, "BEGIN; INSERT INTO dispatch.tasks (kind) VALUES ('k')");
	harness_exec(schema_conn, "INSERT INTO dispatch.sleepers (instance, queue) VALUES ('d', 'default')");
	ck_assert_str_eq(harness_value(schema_conn, confirm), "f");
	harness_exec(producer, "COMMIT");
	ck_assert_str_eq(harness_value(schema_conn, confirm), "t");
	ck_assert_int_eq(harness_int(schema_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'pending'"), 1);
	PQfinish(producer);
}
END_TEST

START_TEST(test_enqueue_applies_defaults)
{
	long long id = harness_int(schema_conn, "SELECT dispatch.enqueue('send_email')");

	ck_assert_int_gt(id, 0);
	ck_assert_str_eq(harness_value(schema_conn,
	        "SELECT concat_ws('|', queue, kind, payload, status, priority, attempts,"
	        "       coalesce(max_attempts::text, 'null'), run_at = created_at,"
	        "       last_error IS NULL AND result IS NULL AND locked_by IS NULL)"
	        "  FROM dispatch.tasks"),
	        "default|send_email|{}|pending|0|0|null|t|t");
	ck_assert_int_eq(harness_int(schema_conn, "SELECT max(id) FROM dispatch.tasks"), id);
}
END_TEST

START_TEST(test_enqueue_takes_every_argument_and_nulls_mean_default)
{
	harness_exec(schema_conn,
	             "SELECT dispatch.enqueue('resize', '{\"w\": 10}', 'images',"
	             "                        '2030-01-01 00:00:00+00', 5, 3)");
	ck_assert_str_eq(harness_value(schema_conn,
	        "SELECT concat_ws('|', queue, kind, payload, priority, max_attempts,"
	        "       run_at = '2030-01-01 00:00:00+00')"
	        "  FROM dispatch.tasks"),
	        "images|resize|{\"w\": 10}|5|3|t");

	harness_exec(schema_conn, "TRUNCATE dispatch.tasks");
	harness_exec(schema_conn, "SELECT dispatch.enqueue('k', NULL, NULL, NULL, NULL, NULL)");
	ck_assert_str_eq(harness_value(schema_conn,
	        "SELECT concat_ws('|', queue, payload, priority, run_at = created_at) FROM dispatch.tasks"),
	        "default|{}|0|t");
}
END_TEST

START_TEST(test_queue_stats_counts_and_oldest_due_age)
{
	harness_exec(schema_conn,
	             "INSERT INTO dispatch.tasks (queue, kind, status, run_at) VALUES"
	             " ('a', 'k', 'pending',     now() - interval '10 minutes'),"
	             " ('a', 'k', 'pending',     now() - interval '5 minutes'),"
	             " ('a', 'k', 'pending',     now() - interval '1 minute'),"
	             " ('a', 'k', 'pending',     now() + interval '1 hour'),"
	             " ('a', 'k', 'complete',    now() - interval '1 hour'),"
	             " ('a', 'k', 'complete',    now() - interval '1 hour'),"
	             " ('b', 'k', 'failed',      now() - interval '1 hour'),"
	             " ('b', 'k', 'in_progress', now() - interval '1 hour'),"
	             " ('c', 'k', 'pending',     now() + interval '1 hour')");
	ck_assert_str_eq(harness_value(schema_conn,
	        "SELECT string_agg(concat_ws(':', queue, status, count,"
	        "                            coalesce(date_trunc('minute', oldest_due_age)::text, '-')), ' ')"
	        "  FROM dispatch.queue_stats"),
	        "a:pending:4:00:10:00 a:complete:2:- b:in_progress:1:- b:failed:1:- c:pending:1:-");
}
END_TEST

START_TEST(test_enqueue_command_adds_a_task_and_prints_its_id)
{
	struct harness_proc p;
	const char *args[] = {"enqueue", "-d", schema_db, "--queue", "mail", "--priority", "7",
	                      "--run-at", "2031-02-03 04:05:06+00", "--max-attempts", "2",
	                      "send_email", "{\"to\": \"a@example.com\"}", NULL};
	const char *bad[] = {"enqueue", "-d", schema_db, "k", "{not json", NULL};
	char want[64];

	ck_assert_int_eq(harness_run(&p, args), 0);
	snprintf(want, sizeof want, "%lld\n", harness_int(schema_conn, "SELECT max(id) FROM dispatch.tasks"));
	ck_assert_str_eq(p.out, want);
	harness_proc_free(&p);
	ck_assert_str_eq(harness_value(schema_conn,
	        "SELECT concat_ws('|', queue, kind, payload->>'to', priority, max_attempts,"
	        "       run_at = '2031-02-03 04:05:06+00') FROM dispatch.tasks"),
	        "mail|send_email|a@example.com|7|2|t");

	/* A payload that is not JSON is refused with the server's reason. */
	ck_assert_int_eq(harness_run(&p, bad), 1);
	ck_assert_msg(strstr(p.err, "22P02") != NULL, "stderr: %s", p.err);
	harness_proc_free(&p);
	ck_assert_int_eq(harness_int(schema_conn, "SELECT count(*) FROM dispatch.tasks"), 1);

	/* --dedupe-key: the second enqueue adds nothing and prints the first's id. */
	{
		const char *keyed[] = {"enqueue", "-d", schema_db, "--dedupe-key", "order-42", "k", NULL};

		ck_assert_int_eq(harness_run(&p, keyed), 0);
		snprintf(want, sizeof want, "%s", p.out);
		harness_proc_free(&p);
		ck_assert_int_eq(harness_run(&p, keyed), 0);
		ck_assert_str_eq(p.out, want);
		harness_proc_free(&p);
		ck_assert_str_eq(harness_value(schema_conn, "SELECT count(*) || ':' || max(dedupe_key) FROM dispatch.tasks"
		                                            " WHERE kind = 'k'"),
		                 "1:order-42");
	}
}
END_TEST

START_TEST(test_status_command_prints_counts_per_queue)
{
	struct harness_proc p;
	const char *args[] = {"status", "-d", schema_db, NULL};

	harness_exec(schema_conn, "INSERT INTO dispatch.tasks (queue, kind, status) VALUES"
	                          " ('a', 'k', 'pending'), ('a', 'k', 'pending'), ('b', 'k', 'failed')");
	ck_assert_int_eq(harness_run(&p, args), 0);
	/* One line per queue: due, scheduled, running, complete, failed,
	 * cancelled, then the oldest due task's age. */
	ck_assert_msg(strstr(p.out, "queues\n  queue  due  scheduled  running  complete  failed  cancelled"
	                            "  oldest_due_s") != NULL, "%s", p.out);
	ck_assert_msg(strstr(p.out, "\n  a        2          0        0         0       0          0  ") != NULL,
	              "%s", p.out);
	ck_assert_msg(strstr(p.out, "\n  b        0          0        0         0       1          0  ") != NULL,
	              "%s", p.out);
	ck_assert_msg(strstr(p.out, "\ndaemons\n  (no daemon has registered)\n") != NULL, "%s", p.out);
	harness_proc_free(&p);

	/* Running tasks, longest first: by how long, not by the text "9.5s". */
	harness_exec(schema_conn, "INSERT INTO dispatch.tasks (id, kind, status, attempts, locked_by, started_at)"
	                          " OVERRIDING SYSTEM VALUE VALUES"
	                          " (101, 'k', 'in_progress', 1, 'd#1', now() - interval '9.5 seconds'),"
	                          " (102, 'k', 'in_progress', 1, 'd#1', now() - interval '100 seconds'),"
	                          " (103, 'k', 'in_progress', 1, 'd#1', now() - interval '20 seconds')");
	ck_assert_int_eq(harness_run(&p, args), 0);
	{
		const char *a = strstr(p.out, "\n  102 "), *b = strstr(p.out, "\n  103 "), *c = strstr(p.out, "\n  101 ");

		ck_assert_msg(a != NULL && b != NULL && c != NULL && a < b && b < c, "%s", p.out);
	}
	ck_assert_msg(strstr(p.out, "\nNOTIFY queue: 0.00% full\n") != NULL, "%s", p.out);
	harness_proc_free(&p);
}
END_TEST

Suite *
schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("database");

	tcase_add_checked_fixture(tc, schema_setup, schema_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_insert_statement_notifies_once_per_queue);
	tcase_add_test(tc, test_only_queues_with_sleepers_are_notified);
	tcase_add_test(tc, test_registration_is_confirmed_only_after_open_inserts_end);
	tcase_add_test(tc, test_repeatable_read_producer_always_notifies);
	tcase_add_test(tc, test_enqueue_applies_defaults);
	tcase_add_test(tc, test_enqueue_takes_every_argument_and_nulls_mean_default);
	tcase_add_test(tc, test_queue_stats_counts_and_oldest_due_age);
	tcase_add_test(tc, test_enqueue_command_adds_a_task_and_prints_its_id);
	tcase_add_test(tc, test_status_command_prints_counts_per_queue);
	suite_add_tcase(s, tc);
	return s;
}
