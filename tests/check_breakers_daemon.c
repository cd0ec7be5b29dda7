/*
 * End to end, circuit breakers (README "Circuit breakers"): real daemons,
 * a handler that fails while a flag file exists, and dispatch.breakers as
 * the one shared state. Each test asserts what a service would see (how
 * many attempts reached the handler), what the tasks kept (attempts, status)
 * and what the daemons logged (each transition once across all of them).
 * The SQL side alone (reports, probes, the admin functions) is
 * tests/check_breakers.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_test.h"
#include "harness.h"

/* A failing kind with a breaker: fail_while.sh fails while flag exists.
 * Retries come fast (backoff 50-100 ms) and attempts do not run out, so
 * only the breaker can stop the failures. */
static const char *
brd_handlers(const char *flag, const char *breaker)
{
	static char yaml[1024];

	snprintf(yaml, sizeof yaml,
	         "  flaky:\n"
	         "    command: [%s, %s]\n"
	         "    max_attempts: 1000\n"
	         "    backoff: {initial: 50ms, max: 100ms}\n"
	         "    breaker: %s\n"
	         "  ping:\n"
	         "    builtin: noop\n",
	         harness_handler("fail_while.sh"), flag, breaker);
	return yaml;
}

static long long
brd_attempts(const char *kind)
{
	char sql[256];

	snprintf(sql, sizeof sql, "SELECT coalesce(sum(attempts), 0) FROM dispatch.tasks WHERE kind = '%s'", kind);
	return harness_int(dt_conn, sql);
}

static int
brd_log_count(const struct harness_daemon *a, const struct harness_daemon *b, const char *text)
{
	return harness_daemon_log_count(a, text) + (b != NULL ? harness_daemon_log_count(b, text) : 0);
}

/*
 * The scenario: two daemons, a service that fails. At most
 * `failures` plus the tasks in flight reach it before both stop; none
 * while open; one probe after open_for, whose failure doubles the
 * opening; with the service back one probe closes it and the tasks drain.
 */
START_TEST(test_two_daemons_stop_on_an_open_breaker_probe_once_and_drain_when_closed)
{
	struct harness_daemon a, b;
	char flag[256];
	const char *yaml;
	long long open_attempts, later;
	char opening[128];

	snprintf(flag, sizeof flag, "%s", harness_write_temp("down\n"));
	yaml = dt_config(brd_handlers(flag, "{failures: 5, window: 30s, open_for: 2s}"), "concurrency: 2\n");
	harness_daemon_start(&a, dt_db, yaml);
	harness_daemon_start(&b, dt_db, yaml);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'flaky' FROM generate_series(1, 40)");

	harness_wait_value(dt_conn, "SELECT coalesce((SELECT state FROM dispatch.breakers WHERE kind = 'flaky'), 'none')", "open", 15000, &a);
	/* Stragglers claimed before the opening end within moments. */
	harness_sleep_ms(300);
	open_attempts = brd_attempts("flaky");
	ck_assert_msg(open_attempts >= 5 && open_attempts <= 5 + 2 + 2,
	              "%lld attempts reached the failing handler before the breaker stopped both daemons "
	              "(failures 5, concurrency 2 each)", open_attempts);
	snprintf(opening, sizeof opening, "%s",
	         harness_value(dt_conn, "SELECT state || ' ' || opened_at FROM dispatch.breakers WHERE kind = 'flaky'"));

	/* While it stays open (the same opening: no probe came between), no
	 * attempt is spent. */
	harness_sleep_ms(1000);
	later = brd_attempts("flaky");
	ck_assert_msg(strncmp(opening, "open ", 5) == 0, "the breaker is %s", opening);
	if (strcmp(harness_value(dt_conn, "SELECT state || ' ' || opened_at FROM dispatch.breakers"
	                                  " WHERE kind = 'flaky'"), opening) == 0)
		ck_assert_msg(later == open_attempts, "attempts went from %lld to %lld while the breaker was open",
		              open_attempts, later);

	/* After open_for, one probe across both daemons; it fails, and the
	 * breaker opens for twice as long. */
	for (long long end = harness_now_ms() + 8000; brd_log_count(&a, &b, "opened again for") == 0;) {
		ck_assert_msg(harness_now_ms() < end, "no probe failed within 8 s:\n%s", harness_daemon_log(&a));
		harness_sleep_ms(50);
	}
	ck_assert_int_eq(brd_attempts("flaky"), open_attempts + 1);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT open_ms FROM dispatch.breakers WHERE kind = 'flaky'"), "4000");
	ck_assert_int_eq(brd_log_count(&a, &b, "kind=flaky half-open: letting one probe task through"), 1);
	ck_assert_int_eq(brd_log_count(&a, &b, "kind=flaky opened again for 4000 ms: the probe task failed"), 1);

	/* The service is back: the next probe succeeds, the breaker closes,
	 * and the rest drain. */
	ck_assert_int_eq(unlink(flag), 0);
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "40", 20000, &a);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT state FROM dispatch.breakers WHERE kind = 'flaky'"), "closed");
	ck_assert_int_eq(brd_log_count(&a, &b, "kind=flaky opened for 2000 ms: 5 failed attempts within 30000 ms"), 1);
	ck_assert_int_eq(brd_log_count(&a, &b, "kind=flaky closed: the probe task succeeded"), 1);

	harness_daemon_stop(&a, SIGTERM);
	harness_daemon_stop(&b, SIGTERM);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
}
END_TEST

/* While a kind's breaker is open, other kinds go on: a task of another
 * kind inserted then completes at once. */
START_TEST(test_other_kinds_run_while_a_breaker_is_open)
{
	struct harness_daemon d;
	char flag[256];

	snprintf(flag, sizeof flag, "%s", harness_write_temp("down\n"));
	harness_daemon_start(&d, dt_db, dt_config(brd_handlers(flag, "{failures: 3, window: 30s, open_for: 30s}"), NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'flaky' FROM generate_series(1, 10)");
	harness_wait_value(dt_conn, "SELECT coalesce((SELECT state FROM dispatch.breakers WHERE kind = 'flaky'), 'none')", "open", 15000, &d);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('ping')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'ping'", "complete", 3000, &d);
	/* The open kind's tasks wait, pending, with attempts to spare. */
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE kind = 'flaky'"
	                                      " AND status = 'pending'"), 10);
	ck_assert_int_eq(harness_daemon_log_count(&d, "failed for good"), 0);
	harness_daemon_stop(&d, SIGTERM);
	harness_daemon_free(&d);
	unlink(flag);
}
END_TEST

/*
 * An operator opens a kind's breaker by hand, for a kind with no breaker:
 * in its config (a maintenance window): its tasks stay pending and spend
 * nothing; dispatch.breaker_reset() lets them drain at once.
 */
START_TEST(test_breaker_opened_by_hand_holds_a_kind_until_reset)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  ping:\n    builtin: noop\n", NULL));
	ck_assert_str_eq(harness_value(dt_conn, "SELECT dispatch.breaker_trip('ping')"), "t");
	/* The daemon reads the breakers at least once a poll interval (1 s). */
	harness_sleep_ms(1500);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'ping' FROM generate_series(1, 5)");
	harness_sleep_ms(1500);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'pending'"
	                                      " AND attempts = 0"), 5);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT dispatch.breaker_reset('ping')"), "t");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "5", 3000, &d);
	harness_daemon_stop(&d, SIGTERM);
	harness_daemon_free(&d);
}
END_TEST

/* Failures and successes of one kind mixed in one loop turn, far below
 * the threshold: the breaker stays closed and nothing is held back (a
 * counted failure followed by a success must not leave the claimer
 * waiting for a report that is never sent). */
START_TEST(test_mixed_failures_and_successes_below_the_threshold_hold_nothing_back)
{
	struct harness_daemon d;
	char log[256], handlers[1024];

	snprintf(log, sizeof log, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  mixed:\n    command: [%s, %s]\n    max_attempts: 1\n"
	         "    breaker: {failures: 1000, window: 30s, open_for: 30s}\n",
	         harness_handler("record.sh"), log);
	harness_daemon_start(&d, dt_db, dt_config(handlers, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload)"
	                      " SELECT 'mixed', CASE WHEN i % 2 = 0 THEN '{\"fail_always\": true}'::jsonb ELSE '{}' END"
	                      "   FROM generate_series(1, 60) AS i");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status IN ('complete', 'failed')", "60",
	                   20000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(status || ':' || n, ',' ORDER BY status)"
	                                        "  FROM (SELECT status::text, count(*) AS n FROM dispatch.tasks"
	                                        "         GROUP BY 1) AS c"),
	                 "complete:30,failed:30");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT state FROM dispatch.breakers WHERE kind = 'mixed'"), "closed");
	harness_daemon_stop(&d, SIGTERM);
	harness_daemon_free(&d);
}
END_TEST

/* A daemon that starts while a kind's breaker is open claims none of it,
 * not even in its first pass. */
START_TEST(test_a_starting_daemon_claims_nothing_of_an_open_kind)
{
	struct harness_daemon d;

	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'ping' FROM generate_series(1, 5)");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT dispatch.breaker_trip('ping', '1 hour')"), "t");
	harness_daemon_start(&d, dt_db, dt_config("  ping:\n    builtin: noop\n", NULL));
	harness_sleep_ms(1500);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE attempts = 0"), 5);
	harness_daemon_stop(&d, SIGTERM);
	harness_daemon_free(&d);
}
END_TEST

/* A source's handler has a breaker like any other: when it opens, the
 * source's rows stay pending and spend no attempts. */
START_TEST(test_breaker_stops_a_source)
{
	struct harness_daemon d;
	long long open_attempts;

	harness_exec(dt_conn, "CREATE TABLE brd_rows (id int PRIMARY KEY, status text NOT NULL DEFAULT 'pending');"
	                      "CREATE INDEX brd_rows_pending ON brd_rows (id) WHERE status = 'pending';"
	                      "GRANT USAGE ON SCHEMA public TO " HARNESS_WORKER ";"
	                      "GRANT SELECT, UPDATE (status) ON brd_rows TO " HARNESS_WORKER ";"
	                      "INSERT INTO brd_rows (id) SELECT generate_series(1, 20)");
	harness_daemon_start(&d, dt_db,
	                     dt_config("  brd_rows:\n"
	                               "    builtin: fail\n"
	                               "    max_attempts: 1000\n"
	                               "    backoff: {initial: 50ms, max: 100ms}\n"
	                               "    breaker: {failures: 3, window: 30s, open_for: 30s}\n",
	                               "sources:\n"
	                               "  brd_rows: {table: public.brd_rows, status: {column: status}}\n"));
	harness_wait_value(dt_conn, "SELECT coalesce((SELECT state FROM dispatch.breakers WHERE kind = 'brd_rows'), 'none')", "open", 15000, &d);
	harness_sleep_ms(300);
	open_attempts = harness_int(dt_conn, "SELECT coalesce(sum(attempts), 0) FROM dispatch.source_rows"
	                                     " WHERE source = 'brd_rows'");
	ck_assert_msg(open_attempts >= 3 && open_attempts <= 3 + 4, "%lld attempts before the breaker stopped the source",
	              open_attempts);
	harness_sleep_ms(1000);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT coalesce(sum(attempts), 0) FROM dispatch.source_rows"
	                                      " WHERE source = 'brd_rows'"), open_attempts);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM brd_rows WHERE status = 'pending'"), 20);
	harness_daemon_stop(&d, SIGTERM);
	harness_daemon_free(&d);
}
END_TEST

Suite *
breakers_daemon_suite(void)
{
	Suite *s = suite_create("breakers_daemon");
	TCase *tc = tcase_create("end_to_end");

	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_two_daemons_stop_on_an_open_breaker_probe_once_and_drain_when_closed);
	tcase_add_test(tc, test_other_kinds_run_while_a_breaker_is_open);
	tcase_add_test(tc, test_breaker_opened_by_hand_holds_a_kind_until_reset);
	tcase_add_test(tc, test_breaker_stops_a_source);
	tcase_add_test(tc, test_mixed_failures_and_successes_below_the_threshold_hold_nothing_back);
	tcase_add_test(tc, test_a_starting_daemon_claims_nothing_of_an_open_kind);
	suite_add_tcase(s, tc);
	return s;
}
