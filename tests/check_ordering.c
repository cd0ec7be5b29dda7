/*
 * End to end, per-key ordering (migrations/0012, README "Ordered
 * delivery"): tasks sharing an order_key run one at a time in id order,
 * across daemons and across retries; a head that fails for good stops
 * blocking. What the handler received, in the order it received it, is
 * the evidence: record.sh appends each run's task to a file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_test.h"
#include "harness.h"

#define ORD_KEYS 3
#define ORD_PER_KEY 6

/* One run as record.sh logged it. */
struct ord_run {
	long long id;
	int key;        /* payload.k: 0 .. ORD_KEYS-1 */
	int attempt;
};

/* Reads the runs in the order they were logged; returns how many. */
static int
ord_runs(const char *path, struct ord_run *runs, int cap)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (n < cap && fgets(line, sizeof line, f) != NULL) {
		const char *id = strstr(line, "\"id\":"), *k = strstr(line, "\"k\":"), *at = strstr(line, "\"attempt\":");

		ck_assert_msg(id != NULL && k != NULL && at != NULL, "unexpected line: %s", line);
		runs[n].id = atoll(id + 5);
		runs[n].key = atoi(k + 4);
		runs[n].attempt = atoi(at + 10);
		n++;
	}
	fclose(f);
	return n;
}

/*
 * Three keys of six tasks each, interleaved, two daemons of concurrency
 * 4, and every task fails its first attempt (backoff 200 ms): a key's
 * next task may start only after its previous one succeeded, so each
 * key's runs read a, a, b, b, c, c... in id order. Tasks of different keys
 * run side by side.
 */
START_TEST(test_tasks_of_a_key_run_one_at_a_time_in_id_order_across_retries_and_daemons)
{
	struct harness_daemon a, b;
	char log[256], handlers[1024];
	struct ord_run runs[256];
	int n, seen[ORD_KEYS] = {0};
	long long last[ORD_KEYS] = {0};

	snprintf(log, sizeof log, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  ordered:\n    command: [%s, %s, 2]\n    backoff: {initial: 200ms, max: 200ms}\n",
	         harness_handler("record.sh"), log);
	harness_daemon_start(&a, dt_db, dt_config(handlers, NULL));
	harness_daemon_start(&b, dt_db, dt_config(handlers, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload, order_key)"
	                      " SELECT 'ordered', jsonb_build_object('k', i % 3), 'key-' || (i % 3)"
	                      "   FROM generate_series(0, 17) AS i");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "18", 30000, &a);

	n = ord_runs(log, runs, 256);
	ck_assert_int_eq(n, 2 * ORD_KEYS * ORD_PER_KEY);
	for (int i = 0; i < n; i++) {
		int k = runs[i].key;

		/* Attempt 1 of a new id, then attempt 2 of the same: the key's
		 * runs alternate, and ids only grow. */
		if (seen[k] % 2 == 0) {
			ck_assert_msg(runs[i].attempt == 1 && runs[i].id > last[k],
			              "key %d: run %d is task %lld attempt %d after task %lld", k, i, runs[i].id,
			              runs[i].attempt, last[k]);
		} else {
			ck_assert_msg(runs[i].attempt == 2 && runs[i].id == last[k],
			              "key %d: run %d is task %lld attempt %d while task %lld waited for its retry", k, i,
			              runs[i].id, runs[i].attempt, last[k]);
		}
		last[k] = runs[i].id;
		seen[k]++;
	}
	/* Keys do not wait for each other: some run of another key came
	 * between a key's first attempt and its retry. */
	{
		bool interleaved = false;

		for (int i = 0; i + 1 < n && !interleaved; i++)
			interleaved = runs[i].key != runs[i + 1].key;
		ck_assert_msg(interleaved, "the keys ran one after the other, not side by side");
	}
	harness_daemon_stop(&a, SIGTERM);
	harness_daemon_stop(&b, SIGTERM);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
}
END_TEST

/* A head that fails for good stops blocking its key: the next task runs,
 * and the failed one waits for an operator. */
START_TEST(test_a_failed_head_lets_its_key_go_on)
{
	struct harness_daemon d;
	char log[256], handlers[1024];

	snprintf(log, sizeof log, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  ordered:\n    command: [%s, %s]\n    max_attempts: 1\n",
	         harness_handler("record.sh"), log);
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));
	harness_exec(dt_conn, "SELECT dispatch.enqueue('ordered', '{\"k\": 0, \"fail_always\": true}', order_key => 'x');"
	                      "SELECT dispatch.enqueue('ordered', '{\"k\": 0}', order_key => 'x')");
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks",
	                   "failed,complete", 10000, &d);
	harness_daemon_stop(&d, SIGTERM);
	harness_daemon_free(&d);
}
END_TEST

/* A key's second task is not claimed while the first runs, even with
 * free slots; it runs once the first has ended. */
START_TEST(test_a_blocked_task_is_not_due)
{
	struct harness_daemon d;
	char handlers[512];

	snprintf(handlers, sizeof handlers, "  slow:\n    builtin: sleep\n    timeout: 10s\n");
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload, order_key)"
	                      " VALUES ('slow', '{\"ms\": 2000}', 'x'), ('slow', '{\"ms\": 0}', 'x')");
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks",
	                   "in_progress,pending", 3000, &d);
	harness_sleep_ms(1000);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks"),
	                 "in_progress,pending");
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks",
	                   "complete,complete", 5000, &d);
	harness_daemon_stop(&d, SIGTERM);
	harness_daemon_free(&d);
}
END_TEST

/* A task with a smaller id that commits after a later one of its key has
 * started waits for it: "one at a time" holds whatever the commit order
 * (and so does a failed head an operator retries). */
START_TEST(test_a_late_commit_with_a_smaller_id_waits_for_the_running_task)
{
	struct harness_daemon d;
	PGconn *late = harness_connect(dt_db);

	harness_daemon_start(&d, dt_db, dt_config("  slow:\n    builtin: sleep\n    timeout: 10s\n", NULL));
	harness_exec(late, "BEGIN; INSERT INTO dispatch.tasks (kind, payload, order_key) VALUES ('slow', '{\"ms\": 0}', 'x')");
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload, order_key) VALUES ('slow', '{\"ms\": 2500}', 'x')");
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks", "in_progress",
	                   3000, &d);
	harness_exec(late, "COMMIT");
	harness_sleep_ms(1000);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks"),
	                 "pending,in_progress");
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks",
	                   "complete,complete", 8000, &d);
	PQfinish(late);
	harness_daemon_stop(&d, SIGTERM);
	harness_daemon_free(&d);
}
END_TEST

Suite *
ordering_suite(void)
{
	Suite *s = suite_create("ordering");
	TCase *tc = tcase_create("end_to_end");

	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_tasks_of_a_key_run_one_at_a_time_in_id_order_across_retries_and_daemons);
	tcase_add_test(tc, test_a_failed_head_lets_its_key_go_on);
	tcase_add_test(tc, test_a_blocked_task_is_not_due);
	tcase_add_test(tc, test_a_late_commit_with_a_smaller_id_waits_for_the_running_task);
	suite_add_tcase(s, tc);
	return s;
}
