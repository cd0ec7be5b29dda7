/*
 * End to end through PgBouncer in transaction pooling: the case the README
 * offers poll-only mode (`notify: false`) for. Several daemons share a pool
 * smaller than their connections, so each transaction of a daemon may run
 * on another server connection than its last: nothing the daemon keeps in
 * a server session (prepared statements, SET) is there the next time.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_test.h"
#include "harness.h"

#define PB_DAEMONS 3
#define PB_POOL 2
#define PB_BATCHES 4
#define PB_BATCH 500       /* tasks per batch; PB_NAPS of them sleep */
#define PB_NAPS 25

/* What a daemon must never have to say through a pooler: its session's
 * statements lost or doubled, or the connection given up. */
static const char *const pb_bad_words[] = {"prepared statement", "does not exist", "already exists",
                                           "connection lost"};

/*
 * Appends to out the warn and error lines of log that hold one of
 * pb_bad_words, prefixed with who; returns how many there were (all are
 * counted, the first few kept).
 */
static int
pb_bad_lines(const char *who, const char *log, char *out, size_t len)
{
	int found = 0;

	for (const char *line = log; *line != '\0';) {
		size_t n = strcspn(line, "\n");
		/* "2025-01-01T00:00:00.000Z LEVEL message" */
		const char *level = memchr(line, ' ', n);
		char text[4096];

		snprintf(text, sizeof text, "%.*s", (int) n, line);
		if (level != NULL && (strncmp(level + 1, "warn ", 5) == 0 || strncmp(level + 1, "error ", 6) == 0)) {
			for (size_t i = 0; i < sizeof pb_bad_words / sizeof pb_bad_words[0]; i++) {
				if (strstr(text, pb_bad_words[i]) == NULL)
					continue;
				if (found++ < 4 && strlen(out) + 400 < len)
					snprintf(out + strlen(out), len - strlen(out), "  %s: %.300s\n", who, text);
				break;
			}
		}
		line += n;
		if (*line == '\n')
			line++;
	}
	return found;
}

/*
 * Starts a daemon through conninfo as HARNESS_WORKER, like
 * harness_daemon_start(), but waits only until it has read its config:
 * whether it gets through the pooler is what the test looks at, with every
 * daemon's log in hand, rather than the first hurdle to fail.
 */
static void
pb_daemon_start(struct harness_daemon *d, const char *conninfo, const char *yaml)
{
	char worker[512];
	const char *args[] = {"run", "-c", d->config_path, "-d", worker, NULL};

	snprintf(worker, sizeof worker, "%s", harness_as(conninfo, HARNESS_WORKER));
	memset(d, 0, sizeof *d);
	snprintf(d->config_path, sizeof d->config_path, "%s", harness_write_temp(yaml));
	harness_start(&d->proc, args);
	harness_daemon_wait_log(d, " starting", 10000);
}

/*
 * Three poll-only daemons, concurrency 8 each, through a pool of two server
 * connections: connects (which prepare the statements), idle polls
 * (next_due), claims, completions, lease renewals of the sleeping tasks
 * and the reaper all go through the pooler, in four bursts with idle time
 * between them. Every task must run exactly once, and no daemon may log a
 * missing or duplicate prepared statement or a lost connection: through a
 * pooler each of those starts a reconnect storm, even when the work gets
 * done in the end.
 */
START_TEST(test_poll_only_daemons_through_transaction_pooling_run_each_task_once_without_errors)
{
	struct harness_daemon d[PB_DAEMONS];
	const char *bouncer = harness_pgbouncer_start(PB_POOL);
	const char *handlers = "  noop:\n    builtin: noop\n  nap:\n    builtin: sleep\n";
	char via[512], config[8192], bad[6000] = "", want[64], counts[512];
	long long max_backends = 0, complete = 0, end;
	int rc[PB_DAEMONS], nbad = 0, total = PB_BATCHES * PB_BATCH;

	if (bouncer == NULL)
		return;  /* no pgbouncer, and not our server: skipped */
	snprintf(via, sizeof via, "%s %s", dt_db, bouncer);
	for (int i = 0; i < PB_DAEMONS; i++) {
		char extra[256];

		snprintf(extra, sizeof extra,
		         "instance_name: pooled-%d\nnotify: false\npoll_interval: 200ms\nconcurrency: 8\n"
		         "lease: 3s\nlog: {level: info}",
		         i);
		snprintf(config, sizeof config, "%s", dt_config(handlers, extra));
		pb_daemon_start(&d[i], via, config);
	}

	/* Bursts with idle time between them, so the daemons go from idle
	 * polling to full claims and back. The pool is watched throughout:
	 * never more than PB_POOL server connections for the daemons' role. */
	end = harness_now_ms() + 150000;
	for (int b = 0; complete < total && harness_now_ms() < end; b++) {
		if (b < PB_BATCHES) {
			char sql[512];

			snprintf(sql, sizeof sql,
			         "INSERT INTO dispatch.tasks (kind, payload)"
			         "  SELECT CASE WHEN g <= %d THEN 'nap' ELSE 'noop' END,"
			         "         CASE WHEN g <= %d THEN '{\"ms\": 400}'::jsonb ELSE '{}' END"
			         "    FROM generate_series(1, %d) g",
			         PB_NAPS, PB_NAPS, PB_BATCH);
			harness_exec(dt_conn, sql);
		}
		for (int t = 0; t < 10; t++) {
			long long backends = harness_int(dt_conn,
			        "SELECT count(*) FROM pg_stat_activity"
			        " WHERE usename = '" HARNESS_WORKER "' AND datname = current_database()");

			if (backends > max_backends)
				max_backends = backends;
			harness_sleep_ms(100);
		}
		complete = harness_int(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'");
	}
	/* Idle again for a while: polls and the reaper keep going through the
	 * pooler with nothing to do. */
	harness_sleep_ms(2000);
	snprintf(counts, sizeof counts, "%s",
	         harness_value(dt_conn, "SELECT concat_ws(', ', count(*) || ' tasks',"
	                                "   count(*) FILTER (WHERE status = 'complete') || ' complete',"
	                                "   count(*) FILTER (WHERE status = 'pending') || ' pending',"
	                                "   count(*) FILTER (WHERE status = 'in_progress') || ' in_progress',"
	                                "   count(*) FILTER (WHERE status = 'failed') || ' failed',"
	                                "   count(*) FILTER (WHERE attempts > 1) || ' run more than once')"
	                                "  FROM dispatch.tasks"));

	for (int i = 0; i < PB_DAEMONS; i++)
		rc[i] = harness_daemon_stop(&d[i], SIGTERM);
	for (int i = 0; i < PB_DAEMONS; i++) {
		char who[32];

		snprintf(who, sizeof who, "pooled-%d", i);
		nbad += pb_bad_lines(who, d[i].proc.err, bad, sizeof bad);
	}
	ck_assert_msg(complete == total && nbad == 0,
	              "%s (want all %d complete); %d warn/error lines in the daemons' logs about prepared"
	              " statements or lost connections; the first few per daemon:\n%s",
	              counts, total, nbad, bad);
	/* Each ran once: no lease lost, no outcome fenced out. */
	snprintf(want, sizeof want, "%d|%d|1|1", total, total);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', count(*), count(*) FILTER (WHERE status = 'complete'),"
	                                        " min(attempts), max(attempts)) FROM dispatch.tasks"),
	                 want);
	/* All three took part: their transactions interleaved on the pool. */
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(DISTINCT locked_by) FROM dispatch.tasks"), PB_DAEMONS);
	ck_assert_msg(max_backends >= 1 && max_backends <= PB_POOL,
	              "%lld server connections for the daemons, want 1 to %d: is the pooler in the way?",
	              max_backends, PB_POOL);
	for (int i = 0; i < PB_DAEMONS; i++) {
		ck_assert_msg(rc[i] == 0, "pooled-%d exited %d on SIGTERM:\n%s", i, rc[i], d[i].proc.err);
		ck_assert_msg(strstr(d[i].proc.err, " connected ") != NULL, "pooled-%d never connected:\n%s", i,
		              d[i].proc.err);
		harness_daemon_free(&d[i]);
	}
	harness_pgbouncer_stop();
}
END_TEST

/*
 * A source (docs/sources.md) through the same pooler: two poll-only
 * daemons, their startup checks, the claims, completions and renewals on
 * the application's own table, and a SQL handler (a transaction of its
 * own) logging each row. Every row runs once and ends complete, with no
 * warn or error line about prepared statements or lost connections.
 */
START_TEST(test_poll_only_daemons_serve_a_source_through_transaction_pooling)
{
	struct harness_daemon d[2];
	const char *bouncer = harness_pgbouncer_start(PB_POOL);
	const char *handlers = "  cu:\n    sql: \"INSERT INTO cu_log VALUES ($2, current_setting('application_name'))\"\n";
	char via[512], config[8192], bad[6000] = "";
	int nbad = 0;

	if (bouncer == NULL)
		return;  /* no pgbouncer, and not our server: skipped */
	harness_exec(dt_conn,
	             "CREATE TYPE cu_status AS ENUM ('pending', 'in_progress', 'complete', 'failed');"
	             "CREATE TABLE cu (id serial PRIMARY KEY, content jsonb, status cu_status, destination inet);"
	             "CREATE INDEX cu_pending ON cu (id) WHERE status = 'pending';"
	             "CREATE TABLE cu_log (id int NOT NULL, app text);"
	             "GRANT USAGE ON SCHEMA public TO " HARNESS_WORKER ";"
	             "GRANT SELECT, UPDATE (status) ON cu TO " HARNESS_WORKER ";"
	             "GRANT INSERT ON cu_log TO " HARNESS_WORKER ";"
	             "INSERT INTO cu (content, status) SELECT jsonb_build_object('n', g), 'pending'"
	             "  FROM generate_series(1, 300) g");
	snprintf(via, sizeof via, "%s %s", dt_db, bouncer);
	for (int i = 0; i < 2; i++) {
		char extra[512];

		snprintf(extra, sizeof extra,
		         "instance_name: pooled-%d\nnotify: false\npoll_interval: 200ms\nconcurrency: 8\n"
		         "lease: 3s\nlog: {level: info}\n"
		         "sources:\n  cu:\n    table: public.cu\n    status: {column: status}\n",
		         i);
		snprintf(config, sizeof config, "%s", dt_config(handlers, extra));
		pb_daemon_start(&d[i], via, config);
	}
	harness_exec(dt_conn, "INSERT INTO cu (content, status) SELECT jsonb_build_object('n', g), 'pending'"
	                      "  FROM generate_series(301, 600) g");
	harness_wait_value(dt_conn, "SELECT count(*) FROM cu WHERE status = 'complete'", "600", 60000, &d[0]);
	for (int i = 0; i < 2; i++) {
		char who[32];

		ck_assert_int_eq(harness_daemon_stop(&d[i], SIGTERM), 0);
		snprintf(who, sizeof who, "pooled-%d", i);
		nbad += pb_bad_lines(who, d[i].proc.err, bad, sizeof bad);
	}
	ck_assert_msg(nbad == 0, "%d warn/error lines about prepared statements or lost connections:\n%s", nbad, bad);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT count(*) || '|' || count(DISTINCT id) FROM cu_log"), "600|600");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.source_rows"), 0);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.attempts"), 0);
	for (int i = 0; i < 2; i++)
		harness_daemon_free(&d[i]);
	harness_pgbouncer_stop();
}
END_TEST

Suite *
pgbouncer_suite(void)
{
	Suite *s = suite_create("pgbouncer");
	TCase *tc = tcase_create("transaction_pooling");

	/* The pooler's directory outlives a failed test until the case ends. */
	tcase_add_unchecked_fixture(tc, harness_pgbouncer_prepare, harness_pgbouncer_cleanup);
	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_poll_only_daemons_through_transaction_pooling_run_each_task_once_without_errors);
	tcase_add_test(tc, test_poll_only_daemons_serve_a_source_through_transaction_pooling);
	suite_add_tcase(s, tc);
	return s;
}
