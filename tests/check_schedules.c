/*
 * End to end: schedules. Real daemons with a seconds-resolution schedule
 * (the six-field cron form), the tasks' rows asserted: one task per tick
 * with two daemons racing, missed ticks enqueued once (or each, with
 * catch_up), a first start that records its tick without running it, a
 * reload that adds a schedule, and no ticks during a graceful shutdown.
 * The tick arithmetic itself (time zones, DST) is check_cron.c's.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "daemon_test.h"
#include "harness.h"

#define SCHED_NOOP "  tick:\n    builtin: noop\n"

/* Every second, with a payload, queue and priority to find on the rows. */
#define SCHED_EVERY_SECOND \
	"schedules:\n" \
	"  every_second:\n" \
	"    cron: \"* * * * * *\"\n" \
	"    kind: tick\n" \
	"    queue: default\n" \
	"    priority: 2\n" \
	"    payload: {report: daily, n: 1}\n"

START_TEST(test_two_daemons_enqueue_each_tick_once)
{
	struct harness_daemon a, b;
	const char *yaml = dt_config(SCHED_NOOP, SCHED_EVERY_SECOND);
	bool raced;

	harness_daemon_start(&a, dt_db, yaml);
	harness_daemon_start(&b, dt_db, yaml);
	harness_sleep_ms(5000);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGTERM), 0);
	ck_assert_int_eq(harness_daemon_stop(&b, SIGTERM), 0);
	/* Both daemons sent ticks: one of them found some already taken. */
	raced = strstr(harness_daemon_log(&a), "already enqueued") != NULL;
	raced = raced || strstr(harness_daemon_log(&b), "already enqueued") != NULL;
	ck_assert_msg(raced, "no tick raced:\n%s", harness_daemon_log(&b));

	/* About five ticks, each once, on whole and consecutive seconds. */
	ck_assert_int_ge(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks"), 4);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', count(*) = count(DISTINCT run_at),"
	        "       max(run_at) - min(run_at) = (count(*) - 1) * interval '1 second',"
	        "       bool_and(run_at = date_trunc('second', run_at)))"
	        "  FROM dispatch.tasks"),
	        "t|t|t");
	/* As configured; max_attempts not set: the handler's. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(DISTINCT concat_ws('|', kind, queue, payload::text, priority,"
	        "                  coalesce(max_attempts::text, 'null')), ',')"
	        "  FROM dispatch.tasks"),
	        "tick|default|{\"n\": 1, \"report\": \"daily\"}|2|null");
	/* The table holds the last tick enqueued. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT last_tick = (SELECT max(run_at) FROM dispatch.tasks) FROM dispatch.schedules"
	        " WHERE name = 'every_second'"),
	        "t");
	/* And the tasks ran. */
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status <> 'complete'"
	                                      "   AND run_at < now() - interval '2 seconds'"), 0);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
}
END_TEST

/* A schedule whose last tick is an hour old, as if every daemon had been
 * down: its latest tick is enqueued at start, once, not sixty times. */
START_TEST(test_ticks_missed_while_down_are_enqueued_once)
{
	struct harness_daemon d;

	harness_exec(dt_conn, "INSERT INTO dispatch.schedules (name, last_tick)"
	                      " VALUES ('minutely', date_trunc('minute', now()) - interval '1 hour')");
	harness_daemon_start(&d, dt_db, dt_config(SCHED_NOOP, "schedules:\n  minutely: {cron: '* * * * *', kind: tick}\n"));
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks", "1", 5000, &d);
	harness_sleep_ms(500);
	/* The latest tick (or two, when a minute turned meanwhile), none of
	 * the hour's older ones. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', count(*) BETWEEN 1 AND 2,"
	        "       bool_and(run_at >= date_trunc('minute', now()) - interval '1 minute'),"
	        "       bool_and(kind = 'tick'))"
	        "  FROM dispatch.tasks"),
	        "t|t|t");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_tick = (SELECT max(run_at) FROM dispatch.tasks)"
	                                        "  FROM dispatch.schedules WHERE name = 'minutely'"),
	                 "t");
	harness_daemon_wait_log(&d, "schedule=minutely ticks missed since", 1000);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/* The same with catch_up: every missed tick, each once, in order. */
START_TEST(test_catch_up_enqueues_every_missed_tick)
{
	struct harness_daemon d;

	harness_exec(dt_conn, "CREATE TABLE since AS SELECT date_trunc('minute', now()) - interval '1 hour' AS t;"
	                      "INSERT INTO dispatch.schedules (name, last_tick) SELECT 'minutely', t FROM since");
	harness_daemon_start(&d, dt_db, dt_config(SCHED_NOOP, "schedules:\n"
	                                                     "  minutely: {cron: '* * * * *', kind: tick, catch_up: true}\n"));
	harness_wait_value(dt_conn, "SELECT count(*) >= 60 FROM dispatch.tasks", "t", 5000, &d);
	harness_sleep_ms(300);
	/* The sixty minutes after the old last tick, each once. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', count(*), count(DISTINCT run_at), min(run_at) = (SELECT t FROM since) + interval '1 minute',"
	        "       max(run_at) = (SELECT t FROM since) + interval '60 minutes')"
	        "  FROM dispatch.tasks WHERE run_at <= (SELECT t FROM since) + interval '60 minutes'"),
	        "60|60|t|t");
	/* At most the minute that turned meanwhile besides. */
	ck_assert_int_le(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks"), 61);
	harness_daemon_wait_log(&d, "schedule=minutely catch_up: enqueuing", 1000);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/* A schedule the table has never seen: its latest tick passed before it
 * existed, so it is recorded, not run (a first start at 14:00 does not
 * run the 03:00 report). */
START_TEST(test_first_start_records_the_latest_tick_without_enqueuing)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config(SCHED_NOOP, "schedules:\n  hourly: {cron: '@hourly', kind: tick}\n"));
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.schedules", "1", 5000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_tick = date_trunc('hour', now()) FROM dispatch.schedules"
	                                        " WHERE name = 'hourly'"),
	                 "t");
	harness_sleep_ms(300);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks"), 0);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/* SIGHUP with a schedule added: it starts ticking. */
START_TEST(test_reload_adds_a_schedule)
{
	struct harness_daemon d;
	FILE *f;

	harness_daemon_start(&d, dt_db, dt_config(SCHED_NOOP, NULL));
	harness_sleep_ms(1500);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks"), 0);
	f = fopen(d.config_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(dt_config(SCHED_NOOP, SCHED_EVERY_SECOND), f);
	fclose(f);
	kill(d.proc.pid, SIGHUP);
	harness_wait_value(dt_conn, "SELECT count(*) >= 2 FROM dispatch.tasks", "t", 5000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(DISTINCT kind, ',') FROM dispatch.tasks"), "tick");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/* Stopping gracefully: handlers finish, no more ticks are enqueued. */
START_TEST(test_no_ticks_during_graceful_shutdown)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config("  tick:\n    builtin: noop\n  nap:\n    builtin: sleep\n",
	                                          "shutdown_grace: 10s\n" SCHED_EVERY_SECOND));
	harness_wait_value(dt_conn, "SELECT count(*) >= 1 FROM dispatch.tasks WHERE kind = 'tick'", "t", 5000, &d);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('nap', '{\"ms\": 3000}')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'nap'", "in_progress", 5000, &d);
	harness_exec(dt_conn, "CREATE TABLE stop AS SELECT now() AS t");
	kill(d.proc.pid, SIGTERM);
	harness_daemon_wait_log(&d, "stopping: no new claims", 2000);
	ck_assert_int_eq(harness_daemon_stop(&d, 0), 0);   /* only wait: a second signal kills handlers */
	/* The nap ran its three seconds to the end; no tick after the signal
	 * (the one whose second had begun may have been on its way). */
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'nap'"), "complete");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE kind = 'tick'"
	                                      "   AND run_at > (SELECT t FROM stop) + interval '1 second'"), 0);
	harness_daemon_free(&d);
}
END_TEST

Suite *
schedules_suite(void)
{
	Suite *s = suite_create("schedules");
	TCase *tc = tcase_create("daemon");

	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_two_daemons_enqueue_each_tick_once);
	tcase_add_test(tc, test_ticks_missed_while_down_are_enqueued_once);
	tcase_add_test(tc, test_catch_up_enqueues_every_missed_tick);
	tcase_add_test(tc, test_first_start_records_the_latest_tick_without_enqueuing);
	tcase_add_test(tc, test_reload_adds_a_schedule);
	tcase_add_test(tc, test_no_ticks_during_graceful_shutdown);
	suite_add_tcase(s, tc);
	return s;
}
