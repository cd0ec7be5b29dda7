/*
 * End to end, sources (docs/sources.md): rows of the application's own table
 * dispatched in place by the real `pgdispatch run`. Every test asserts
 * the user's rows (the status in their own enum or text column, the
 * columns the config maps), the daemon's side table dispatch.source_rows,
 * and what the handlers received.
 *
 * The seed table is the issue's, as the team has it: four columns, an
 * enum status, and a trigger that notifies configuration_update_created
 * on insert. Tables are made by the owner (the test's connection); the
 * daemon runs as HARNESS_WORKER, which gets exactly the grants
 * `pgdispatch check-config -d` asks for, and the claim's partial index
 * exists. (The example examples/config-push/ runs in
 * tests/check_examples.c.)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_test.h"
#include "harness.h"

#define SRC_NAME "configuration_update"

/* The table and trigger, the claim's index, and the grants. */
static const char src_seed_sql[] =
	"CREATE TYPE configuration_update_status AS ENUM ('pending', 'in_progress', 'complete', 'failed');"
	"CREATE TABLE configuration_update ("
	"    id serial PRIMARY KEY,"
	"    content jsonb,"
	"    status configuration_update_status,"
	"    destination inet);"
	"CREATE FUNCTION configuration_update_created() RETURNS trigger LANGUAGE plpgsql AS $$"
	"BEGIN"
	"    PERFORM pg_notify('configuration_update_created', NEW.id::text);"
	"    RETURN NEW;"
	"END $$;"
	"CREATE TRIGGER configuration_update_created AFTER INSERT ON configuration_update"
	"    FOR EACH ROW EXECUTE FUNCTION configuration_update_created();"
	"CREATE INDEX configuration_update_pending_idx ON configuration_update (id) WHERE status = 'pending';"
	"GRANT USAGE ON SCHEMA public TO " HARNESS_WORKER ";"
	"GRANT SELECT, UPDATE (status) ON configuration_update TO " HARNESS_WORKER;

/* The source of the seed table, with every default but the channel. */
#define SRC_YAML                                                                                             \
	"sources:\n"                                                                                         \
	"  " SRC_NAME ":\n"                                                                                  \
	"    table: public.configuration_update\n"                                                           \
	"    status: {column: status}\n"                                                                     \
	"    channel: configuration_update_created\n"

/* Inserts n pending rows of the seed table, their content numbered from
 * first. */
static void
src_insert(int first, int n)
{
	char sql[512];

	snprintf(sql, sizeof sql,
	         "INSERT INTO configuration_update (content, status, destination)"
	         " SELECT jsonb_build_object('n', i, 'text', 'row ' || i || ' \"quoted\"'), 'pending', '127.0.0.1'"
	         "   FROM generate_series(%d, %d) AS i",
	         first, first + n - 1);
	harness_exec(dt_conn, sql);
}

/* A handler entry for the source: record.sh writing to log_path. */
static const char *
src_record_handler(const char *log_path, const char *extra)
{
	static char yaml[1024];

	snprintf(yaml, sizeof yaml, "  " SRC_NAME ":\n    command: [%s, %s]\n%s", harness_handler("record.sh"),
	         log_path, extra != NULL ? extra : "");
	return yaml;
}

/*
 * Loads what record.sh wrote to path (one task JSON a line) into table
 * received (j jsonb, n: the line's number), emptied first. Returns how
 * many lines it loaded.
 */
static long
src_load_received(const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long n = 0;
	FILE *f;

	harness_exec(dt_conn, "CREATE TABLE IF NOT EXISTS received (n int, j jsonb NOT NULL); TRUNCATE received");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while ((len = getline(&line, &cap, f)) > 0) {
		char num[24];
		const char *params[2] = {num, line};
		PGresult *res;

		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		snprintf(num, sizeof num, "%ld", ++n);
		res = PQexecParams(dt_conn, "INSERT INTO received VALUES ($1::int, $2::jsonb)", 2, NULL, params, NULL,
		                   NULL, 0);
		ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "line %ld of %s is not JSON (%s): %s", n, path,
		              PQerrorMessage(dt_conn), line);
		PQclear(res);
	}
	free(line);
	fclose(f);
	return n;
}

/*
 * Samples sql (one value) every 10 ms until it returns a value that
 * starts with until; fails after timeout_ms. Returns every distinct value
 * seen, in order of first sight, each followed by "\n" (static buffer):
 * the states a row went through, as far as a sampler can see them.
 */
static const char *
src_trace(const char *sql, const char *until, int timeout_ms, const struct harness_daemon *d)
{
	static char trace[16384];
	long long end = harness_now_ms() + timeout_ms;

	trace[0] = '\0';
	for (;;) {
		const char *got = harness_value(dt_conn, sql);
		char item[2048];

		snprintf(item, sizeof item, "%s\n", got);
		if (strstr(trace, item) == NULL && strlen(trace) + strlen(item) < sizeof trace)
			strcat(trace, item);
		if (strncmp(got, until, strlen(until)) == 0)
			return trace;
		ck_assert_msg(harness_now_ms() < end, "%s\n  want %s... after %d ms; seen:\n%s\n%s", sql, until,
		              timeout_ms, trace, d != NULL ? harness_daemon_log(d) : "");
		harness_sleep_ms(10);
	}
}

/* ---- wake-ups ---- */

/*
 * Rows left pending while no daemon ran are swept at startup, with the
 * poll an hour away; a row inserted while the daemon waits is done within
 * a second of its insert, through the table's own trigger and channel.
 * The handler gets the row: id the key (a JSON number), kind and queue the
 * source's name, payload every column of the row.
 */
START_TEST(test_rows_left_pending_are_swept_and_new_rows_done_within_a_second)
{
	struct harness_daemon d;
	char log_path[256];

	harness_exec(dt_conn, src_seed_sql);
	src_insert(1, 200);
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	harness_daemon_start(&d, dt_db, dt_config(src_record_handler(log_path, NULL), "poll_interval: 1h\n" SRC_YAML));
	harness_wait_value(dt_conn, "SELECT count(*) FROM configuration_update WHERE status = 'complete'", "200", 30000,
	                   &d);

	/* Now it waits (nothing due, the poll an hour away): each new row is
	 * done within a second of its insert. */
	for (int i = 0; i < 3; i++) {
		char sql[160];
		long long id;

		harness_sleep_ms(300);
		id = harness_int(dt_conn, "INSERT INTO configuration_update (content, status, destination)"
		                          " VALUES ('{\"late\": true}', 'pending', '127.0.0.2') RETURNING id");
		snprintf(sql, sizeof sql, "SELECT status FROM configuration_update WHERE id = %lld", id);
		harness_wait_value(dt_conn, sql, "complete", 1000, &d);
	}

	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(DISTINCT coalesce(status::text, 'NULL'), ',')"
	                                        "  FROM configuration_update"),
	                 "complete");
	/* Completion removes the side row. */
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.source_rows"), 0);
	/* The table is as the team made it: its four columns, its one
	 * trigger. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT (SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute"
	        "         WHERE attrelid = 'configuration_update'::regclass AND attnum > 0 AND NOT attisdropped)"
	        "       || '|' || (SELECT string_agg(tgname, ',') FROM pg_trigger"
	        "                   WHERE tgrelid = 'configuration_update'::regclass AND NOT tgisinternal)"),
	        "id,content,status,destination|configuration_update_created");

	/* Each row ran once, and its handler saw the row. */
	ck_assert_int_eq(src_load_received(log_path), 203);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', count(*), count(DISTINCT r.j->'id'),"
	        "       count(*) FILTER (WHERE jsonb_typeof(r.j->'id') = 'number'"
	        "                          AND r.j->>'kind' = '" SRC_NAME "' AND r.j->>'queue' = '" SRC_NAME "'"
	        "                          AND r.j->>'attempt' = '1'"
	        "                          AND (r.j->'payload'->>'id')::int = c.id"
	        "                          AND r.j->'payload'->'content' = c.content"
	        "                          AND (r.j->'payload'->>'destination')::inet = c.destination"
	        "                          AND r.j->'payload' ? 'status'"
	        "                          AND (SELECT count(*) FROM jsonb_object_keys(r.j->'payload')) = 4))"
	        "  FROM received r JOIN configuration_update c ON r.j->>'id' = c.id::text"),
	        "203|203|203");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(log_path);
}
END_TEST

/* ---- several daemons ---- */

/*
 * Two daemons share 5,000 rows: a SQL handler logs each row's key and the
 * daemon's application_name. Every row's handler ran exactly once, no row
 * is left in_progress, and both daemons did some.
 */
START_TEST(test_two_daemons_run_each_of_5000_rows_exactly_once)
{
	struct harness_daemon a, b;
	const char *handlers = "  " SRC_NAME ":\n"
	                       "    sql: \"INSERT INTO handled VALUES ($2, current_setting('application_name'))\"\n";
	char sql[256];

	harness_exec(dt_conn, src_seed_sql);
	harness_exec(dt_conn, "CREATE TABLE handled (row_id int NOT NULL, daemon text NOT NULL);"
	                      " GRANT INSERT ON handled TO " HARNESS_WORKER);
	harness_daemon_start(&a, dt_db, dt_config(handlers, "concurrency: 8\nlog: {level: info}\n" SRC_YAML));
	harness_daemon_start(&b, dt_db, dt_config(handlers, "concurrency: 8\nlog: {level: info}\n" SRC_YAML));
	/* In batches, each a notification both daemons hear. */
	for (int i = 0; i < 10; i++)
		src_insert(1 + i * 500, 500);
	harness_wait_value(dt_conn, "SELECT count(*) FROM configuration_update WHERE status = 'complete'", "5000",
	                   120000, &a);

	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', count(*), count(DISTINCT row_id)) FROM handled"),
	                 "5000|5000");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM handled h"
	                                      "  WHERE NOT EXISTS (SELECT 1 FROM configuration_update c WHERE c.id = h.row_id)"),
	                 0);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM configuration_update WHERE status <> 'complete'"), 0);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.source_rows"), 0);
	/* Both took part: each daemon's connections carry its pid. */
	snprintf(sql, sizeof sql, "SELECT count(*) > 0 FROM handled WHERE daemon LIKE 'pgdispatch %%#%d'", (int) a.proc.pid);
	ck_assert_str_eq(harness_value(dt_conn, sql), "t");
	snprintf(sql, sizeof sql, "SELECT count(*) > 0 FROM handled WHERE daemon LIKE 'pgdispatch %%#%d'", (int) b.proc.pid);
	ck_assert_str_eq(harness_value(dt_conn, sql), "t");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(DISTINCT daemon) FROM handled"), 2);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGTERM), 0);
	ck_assert_int_eq(harness_daemon_stop(&b, SIGTERM), 0);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
}
END_TEST

/* ---- failures ---- */

/* The seed row's state: its status, then its side row's attempts, whether
 * it waits out a backoff, whether it is unclaimed, and its error. */
#define SRC_ROW_STATE                                                                                        \
	"SELECT concat_ws('|', c.status, coalesce(s.attempts::text, '-'),"                                  \
	"                 coalesce((s.not_before > now())::text, '-'),"                                     \
	"                 CASE WHEN s.key IS NULL THEN '-' ELSE (s.claim_token IS NULL)::text END,"         \
	"                 coalesce(s.last_error, '-'))"                                                     \
	"  FROM configuration_update c"                                                                      \
	"  LEFT JOIN dispatch.source_rows s ON s.source = '" SRC_NAME "' AND s.key = c.id::text"

/*
 * A handler that keeps failing: between attempts the row is back at
 * pending, its side row counting attempts, holding the error and a
 * not_before in the future, and it is not run again before that; after
 * max_attempts it is failed in the user's enum, the error kept in the
 * side row, each failed attempt in dispatch.attempts.
 */
START_TEST(test_failing_row_waits_at_pending_then_ends_failed_with_its_error)
{
	struct harness_daemon d;
	char handlers[1024], log_path[256];
	const char *trace;
	double t[3];
	FILE *f;

	harness_exec(dt_conn, src_seed_sql);
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  " SRC_NAME ":\n    command: [%s, %s, '3']\n    max_attempts: 3\n"
	         "    backoff: {initial: 400ms, max: 400ms}\n",
	         harness_handler("attempts.sh"), log_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers, SRC_YAML));
	src_insert(1, 1);
	trace = src_trace(SRC_ROW_STATE " WHERE c.id = 1", "failed|", 20000, &d);
	ck_assert_msg(strstr(trace, "pending|1|true|true|exit 3: stderr: attempts.sh: failing attempt 1 on purpose\n") != NULL,
	              "never seen waiting after attempt 1:\n%s", trace);
	ck_assert_msg(strstr(trace, "pending|2|true|true|exit 3: stderr: attempts.sh: failing attempt 2 on purpose\n") != NULL,
	              "never seen waiting after attempt 2:\n%s", trace);
	ck_assert_msg(strstr(trace, "complete") == NULL, "%s", trace);
	/* Failed for good: the error stays in the side row, unclaimed. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', c.status, s.attempts, s.last_error, s.claim_token IS NULL, s.finished_at IS NOT NULL)"
	        "  FROM configuration_update c"
	        "  JOIN dispatch.source_rows s ON s.source = '" SRC_NAME "' AND s.key = c.id::text"),
	        "failed|3|exit 3: stderr: attempts.sh: failing attempt 3 on purpose|t|t");
	/* Every failed attempt is logged with its source and row. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(concat_ws(':', attempt, outcome, kind, queue), ',' ORDER BY attempt)"
	        "  FROM dispatch.attempts WHERE source = '" SRC_NAME "' AND row_key = '1'"),
	        "1:retry:" SRC_NAME ":" SRC_NAME ",2:retry:" SRC_NAME ":" SRC_NAME ",3:failed:" SRC_NAME ":" SRC_NAME);

	/* Three runs of the row (the id the handler saw is its key), each
	 * after the backoff's lower half (400 ms, jittered). */
	f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 3; i++) {
		char id[64];
		int attempt;

		ck_assert_int_eq(fscanf(f, "%63s %d %lf", id, &attempt, &t[i]), 3);
		ck_assert_str_eq(id, "1");
		ck_assert_int_eq(attempt, i + 1);
	}
	ck_assert_int_eq(fscanf(f, "%*s"), EOF);
	fclose(f);
	for (int i = 1; i < 3; i++)
		ck_assert_msg(t[i] - t[i - 1] >= 0.2, "attempt %d ran %.3f s after the one before", i + 1, t[i] - t[i - 1]);

	/* Failed rows stay failed: nothing claims them again. */
	harness_sleep_ms(1500);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM configuration_update WHERE id = 1"), "failed");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(log_path);
}
END_TEST

/*
 * The same with a last_error column mapped: the user's column holds the
 * error between attempts and after the last; the side row goes when the
 * row has failed for good, its error being in the table.
 */
START_TEST(test_failed_row_error_lands_in_the_mapped_last_error_column)
{
	struct harness_daemon d;
	const char *trace;

	harness_exec(dt_conn, src_seed_sql);
	harness_exec(dt_conn, "ALTER TABLE configuration_update ADD COLUMN last_error text;"
	                      "GRANT UPDATE (last_error) ON configuration_update TO " HARNESS_WORKER);
	harness_daemon_start(&d, dt_db, dt_config("  " SRC_NAME ":\n    builtin: fail\n    max_attempts: 2\n"
	                                          "    backoff: {initial: 400ms, max: 400ms}\n",
	                                          SRC_YAML "    columns: {last_error: last_error}\n"));
	src_insert(1, 1);
	trace = src_trace("SELECT concat_ws('|', status, coalesce(last_error, '-')) FROM configuration_update", "failed|",
	                  20000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', status, last_error) FROM configuration_update"),
	                 "failed|builtin fail handler");
	ck_assert_msg(strstr(trace, "pending|builtin fail handler\n") != NULL,
	              "the mapped column never held the error while the row waited:\n%s", trace);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.source_rows"), 0);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.attempts"
	                                      " WHERE source = '" SRC_NAME "' AND row_key = '1'"
	                                      "   AND error = 'builtin fail handler'"),
	                 2);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/* ---- kill -9 ---- */

/*
 * A daemon killed with SIGKILL in the middle of a batch: its rows stay
 * in_progress until their lease runs out, then a second daemon runs them
 * (their second attempt) along with the rest; none is left in_progress.
 */
START_TEST(test_rows_of_a_killed_daemon_finish_on_another_after_the_lease)
{
	struct harness_daemon a, b;
	char handlers[1024], pid_path[256], log_path[256], want[1024];
	long long killed_at, took;
	FILE *f;
	long pid;

	harness_exec(dt_conn, src_seed_sql);
	snprintf(pid_path, sizeof pid_path, "%s", harness_write_temp(""));
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  " SRC_NAME ":\n    command: [%s, %s, '60']\n", harness_handler("sleeper.sh"),
	         pid_path);
	harness_daemon_start(&a, dt_db, dt_config(handlers, "lease: 1s\ninstance_name: victim\n" SRC_YAML));
	src_insert(1, 10);
	harness_wait_value(dt_conn, "SELECT count(*) FROM configuration_update c"
	                            "  JOIN dispatch.source_rows s ON s.source = '" SRC_NAME "' AND s.key = c.id::text"
	                            " WHERE c.status = 'in_progress' AND s.locked_by LIKE 'victim#%'",
	                   "4", 10000, &a);
	harness_exec(dt_conn, "CREATE TABLE victims AS SELECT id FROM configuration_update WHERE status = 'in_progress'");
	ck_assert_int_eq(harness_daemon_stop(&a, SIGKILL), 128 + SIGKILL);
	killed_at = harness_now_ms();
	/* Its handlers outlive it (their own process groups): end them, as
	 * the machine's reboot would. */
	f = fopen(pid_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fscanf(f, "%ld", &pid) == 1)
		kill((pid_t) pid, SIGKILL);
	fclose(f);

	harness_daemon_start(&b, dt_db, dt_config(src_record_handler(log_path, NULL),
	                                          "lease: 1s\ninstance_name: rescuer\n" SRC_YAML));
	harness_wait_value(dt_conn, "SELECT count(*) FROM configuration_update WHERE status = 'complete'", "10", 20000, &b);
	took = harness_now_ms() - killed_at;
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM configuration_update WHERE status = 'in_progress'"), 0);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.source_rows"), 0);
	/* The rescuer ran every row once: the victim's as their second
	 * attempt, the others as their first. */
	ck_assert_int_eq(src_load_received(log_path), 10);
	snprintf(want, sizeof want, "%s",
	         harness_value(dt_conn, "SELECT string_agg(concat_ws(':', c.id, CASE WHEN v.id IS NULL THEN 1 ELSE 2 END),"
	                                "                  ',' ORDER BY c.id)"
	                                "  FROM configuration_update c LEFT JOIN victims v USING (id)"));
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(concat_ws(':', j->>'id', j->>'attempt'), ','"
	                                        "                  ORDER BY (j->>'id')::int)"
	                                        "  FROM received"),
	                 want);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.attempts"
	                                      " WHERE source = '" SRC_NAME "' AND outcome = 'lease expired'"
	                                      "   AND row_key::int IN (SELECT id FROM victims)"),
	                 4);
	ck_assert_msg(took < 20000, "took %lld ms", took);
	ck_assert_int_eq(harness_daemon_stop(&b, SIGTERM), 0);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
	unlink(pid_path);
	unlink(log_path);
}
END_TEST

/* ---- leases ---- */

/*
 * Handlers that run three times as long as the lease, with a second
 * daemon ready to reap: the first daemon's renewals keep every row its
 * own, so each row runs once, at attempt 1, and no lease expires.
 */
START_TEST(test_handler_outliving_its_lease_keeps_its_row)
{
	struct harness_daemon a, b;
	char handlers[1024], log_path[256];

	harness_exec(dt_conn, src_seed_sql);
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  " SRC_NAME ":\n    command: [sh, -c, 'sleep 3; cat >> %s']\n",
	         log_path);
	harness_daemon_start(&a, dt_db, dt_config(handlers, "lease: 1s\ninstance_name: holder\n" SRC_YAML));
	src_insert(1, 3);
	harness_wait_value(dt_conn, "SELECT count(*) FROM configuration_update WHERE status = 'in_progress'", "3", 10000,
	                   &a);
	harness_daemon_start(&b, dt_db, dt_config(handlers, "lease: 1s\ninstance_name: reaper\n" SRC_YAML));
	harness_wait_value(dt_conn, "SELECT count(*) FROM configuration_update WHERE status = 'complete'", "3", 20000, &a);
	ck_assert_int_eq(src_load_received(log_path), 3);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(concat_ws(':', j->>'id', j->>'attempt'), ','"
	                                        "                  ORDER BY (j->>'id')::int) FROM received"),
	                 "1:1,2:1,3:1");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.attempts"), 0);
	ck_assert_int_eq(harness_daemon_log_count(&a, "lease lost"), 0);
	ck_assert_int_eq(harness_daemon_log_count(&b, "lease expired"), 0);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGTERM), 0);
	ck_assert_int_eq(harness_daemon_stop(&b, SIGTERM), 0);
	harness_daemon_free(&a);
	harness_daemon_free(&b);
	unlink(log_path);
}
END_TEST

/*
 * An operator sets a running row's status by hand: the hand wins. The
 * next renewal finds the claim gone, the handler is stopped and logged
 * with the new status, no outcome is written over the operator's value,
 * and the side row goes once its lease has run out.
 */
START_TEST(test_status_set_by_hand_stops_the_handler_and_stays)
{
	struct harness_daemon a;
	char handlers[1024], pid_path[256];
	long long pid = 0;
	FILE *f;

	harness_exec(dt_conn, src_seed_sql);
	snprintf(pid_path, sizeof pid_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers, "  " SRC_NAME ":\n    command: [%s, %s, '60']\n", harness_handler("sleeper.sh"),
	         pid_path);
	harness_daemon_start(&a, dt_db, dt_config(handlers, "lease: 1s\n" SRC_YAML));
	src_insert(1, 1);
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.source_rows WHERE claim_token IS NOT NULL", "1", 10000,
	                   &a);
	harness_daemon_wait_log(&a, "task=row:1 kind=" SRC_NAME " attempt=1/5 source=" SRC_NAME " started", 5000);
	harness_exec(dt_conn, "UPDATE configuration_update SET status = 'complete' WHERE id = 1");
	harness_daemon_wait_log(&a, "status set to complete by another session", 5000);
	/* The handler was stopped: its process is gone. */
	f = fopen(pid_path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%lld", &pid), 1);
	fclose(f);
	for (int i = 0; i < 300 && kill((pid_t) pid, 0) == 0; i++)
		harness_sleep_ms(10);
	ck_assert_msg(kill((pid_t) pid, 0) != 0, "handler %lld still runs", pid);
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.source_rows", "0", 10000, &a);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT status FROM configuration_update WHERE id = 1"), "complete");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.attempts"), 0);
	ck_assert_int_eq(harness_daemon_stop(&a, SIGTERM), 0);
	harness_daemon_free(&a);
	unlink(pid_path);
}
END_TEST

/* ---- table shapes ---- */

/*
 * Two more tables at once: a bigint key beyond 32 bits with a text status
 * of its own words, and a uuid key with a varchar status; both map
 * attempts and last_error (the first also result, started_at and
 * finished_at) under names of their own. The first attempt of every row
 * fails, the second succeeds. The mapped columns are current; the
 * handler got the key as a number and as a string.
 */
START_TEST(test_bigint_and_uuid_keys_text_status_and_mapped_columns)
{
	struct harness_daemon d;
	char log_path[256], handlers[2048];

	harness_exec(dt_conn,
	             "CREATE SCHEMA app;"
	             "CREATE TABLE app.big_jobs (id bigint PRIMARY KEY, state text NOT NULL, body jsonb,"
	             "    tries int NOT NULL DEFAULT 0, error text, outcome jsonb, began timestamptz, ended timestamptz);"
	             "CREATE INDEX big_jobs_claim ON app.big_jobs (id) WHERE state = 'new';"
	             "CREATE TABLE app.uuid_jobs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), status varchar(16) NOT NULL,"
	             "    body jsonb, attempts int NOT NULL DEFAULT 0, last_error text);"
	             "CREATE INDEX uuid_jobs_claim ON app.uuid_jobs (id) WHERE status = 'pending';"
	             "GRANT USAGE ON SCHEMA app TO " HARNESS_WORKER ";"
	             "GRANT SELECT, UPDATE (state, tries, error, outcome, began, ended) ON app.big_jobs TO " HARNESS_WORKER ";"
	             "GRANT SELECT, UPDATE (status, attempts, last_error) ON app.uuid_jobs TO " HARNESS_WORKER ";"
	             "INSERT INTO app.big_jobs (id, state, body)"
	             "  SELECT 5000000000 + i, 'new', jsonb_build_object('big', i) FROM generate_series(1, 30) AS i;"
	             "INSERT INTO app.uuid_jobs (status, body)"
	             "  SELECT 'pending', jsonb_build_object('uuid', i) FROM generate_series(1, 30) AS i");
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  big_jobs:\n    command: [%s, %s, '2']\n    backoff: {initial: 50ms, max: 50ms}\n"
	         "  uuid_jobs:\n    command: [%s, %s, '2']\n    backoff: {initial: 50ms, max: 50ms}\n",
	         harness_handler("record.sh"), log_path, harness_handler("record.sh"), log_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers,
	        "poll_interval: 200ms\n"
	        "sources:\n"
	        "  big_jobs:\n"
	        "    table: app.big_jobs\n"
	        "    status: {column: state, pending: new, in_progress: running, complete: done, failed: broken}\n"
	        "    payload: body\n"
	        "    columns: {attempts: tries, last_error: error, result: outcome, started_at: began, finished_at: ended}\n"
	        "  uuid_jobs:\n"
	        "    table: app.uuid_jobs\n"
	        "    key: id\n"
	        "    status: {column: status}\n"
	        "    columns: {attempts: attempts, last_error: last_error}\n"));
	harness_wait_value(dt_conn, "SELECT (SELECT count(*) FROM app.big_jobs WHERE state = 'done')"
	                            "     + (SELECT count(*) FROM app.uuid_jobs WHERE status = 'complete')",
	                   "60", 30000, &d);

	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(DISTINCT concat_ws('|', state, tries, error, outcome, ended >= began,"
	        "                                     began > now() - interval '1 minute'), ',')"
	        "  FROM app.big_jobs"),
	        "done|2|exit 3: stderr: record.sh: failing attempt 1 on purpose|\"ok\"|t|t");
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(DISTINCT concat_ws('|', status, attempts, last_error), ',') FROM app.uuid_jobs"),
	        "complete|2|exit 3: stderr: record.sh: failing attempt 1 on purpose");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.source_rows"), 0);

	/* Two runs a row; the key as a JSON number (bigint) or string (uuid),
	 * the payload the body column alone (big_jobs) or the row (uuid_jobs). */
	ck_assert_int_eq(src_load_received(log_path), 120);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|',"
	        "    (SELECT count(*) FROM received r JOIN app.big_jobs b ON r.j->>'id' = b.id::text"
	        "      WHERE r.j->>'kind' = 'big_jobs' AND jsonb_typeof(r.j->'id') = 'number'"
	        "        AND r.j->'payload' = b.body),"
	        "    (SELECT count(DISTINCT r.j->>'id') FROM received r WHERE r.j->>'kind' = 'big_jobs'),"
	        "    (SELECT count(*) FROM received r JOIN app.uuid_jobs u ON r.j->>'id' = u.id::text"
	        "      WHERE r.j->>'kind' = 'uuid_jobs' AND jsonb_typeof(r.j->'id') = 'string'"
	        "        AND r.j->'payload'->'body' = u.body AND r.j->'payload'->>'id' = u.id::text),"
	        "    (SELECT count(DISTINCT r.j->>'id') FROM received r WHERE r.j->>'kind' = 'uuid_jobs'))"),
	        "60|30|60|30");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(log_path);
}
END_TEST

/*
 * The inputs a table may map: run_at (a row is not claimed before it) and
 * priority (higher first), and the claim's own columns (locked_by, the
 * lease) written while a row runs. One handler at a time, so the order of
 * runs is the order of claims.
 */
START_TEST(test_mapped_run_at_priority_and_claim_columns)
{
	struct harness_daemon d;
	char log_path[256], handlers[1024];

	harness_exec(dt_conn,
	             "CREATE TABLE jobs (id bigserial PRIMARY KEY, name text, st text NOT NULL, due timestamptz NOT NULL,"
	             "                   prio int NOT NULL DEFAULT 0, who text, lease timestamptz);"
	             "CREATE INDEX jobs_claim ON jobs (prio DESC, id) WHERE st = 'new';"
	             "GRANT USAGE ON SCHEMA public TO " HARNESS_WORKER ";"
	             "GRANT SELECT, UPDATE (st, due, who, lease) ON jobs TO " HARNESS_WORKER ";"
	             "INSERT INTO jobs (name, st, due, prio) VALUES"
	             "  ('low', 'new', now(), 0), ('high', 'new', now(), 5),"
	             "  ('later', 'new', now() + interval '1500 milliseconds', 10);");
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  jobs:\n    command: [sh, -c, 'sleep 0.3; exec %s %s']\n    concurrency: 1\n",
	         harness_handler("record.sh"), log_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers,
	                                          "instance_name: mapper\n"
	                                          "sources:\n"
	                                          "  jobs:\n"
	                                          "    table: public.jobs\n"
	                                          "    status: {column: st, pending: new, in_progress: running,"
	                                          " complete: done, failed: dead}\n"
	                                          "    payload: name\n"
	                                          "    columns: {run_at: due, priority: prio, locked_by: who,"
	                                          " lease_expires_at: lease}\n"));
	/* While the first row runs, its claim's columns are set. */
	harness_wait_value(dt_conn, "SELECT count(*) FROM jobs WHERE st = 'running'", "1", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT name || ':' || (who LIKE 'mapper#%') || ':' || (lease > now())"
	                                        "  FROM jobs WHERE st = 'running'"),
	                 "high:true:true");
	harness_wait_value(dt_conn, "SELECT count(*) FROM jobs WHERE st = 'done'", "3", 15000, &d);
	ck_assert_int_eq(src_load_received(log_path), 3);
	/* high before low (priority), later last though its priority is the
	 * highest: it was not due. */
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(j->>'payload', ',' ORDER BY n) FROM received"),
	                 "high,low,later");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg((lease IS NULL)::text, ',') FROM jobs"),
	                 "true,true,true");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(log_path);
}
END_TEST

/*
 * A SIGHUP whose file changes the sources is refused as a whole (the
 * statements were filled from the table at startup): the daemon says so
 * and goes on serving the source it has, with the old handlers.
 */
START_TEST(test_reload_that_changes_sources_is_refused)
{
	struct harness_daemon d;
	char log_path[256];
	FILE *f;

	harness_exec(dt_conn, src_seed_sql);
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	harness_daemon_start(&d, dt_db, dt_config(src_record_handler(log_path, NULL), SRC_YAML));
	f = fopen(d.config_path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s", dt_config("  " SRC_NAME ":\n    builtin: fail\n",
	                           "sources:\n  " SRC_NAME ":\n    table: public.configuration_update\n"
	                           "    status: {column: status, complete: failed, failed: complete}\n"));
	fclose(f);
	kill(d.proc.pid, SIGHUP);
	harness_daemon_wait_log(&d, "reload refused, keeping the running config: sources change only on restart", 5000);
	src_insert(1, 2);
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',' ORDER BY id) FROM configuration_update",
	                   "complete,complete", 5000, &d);
	ck_assert_int_eq(src_load_received(log_path), 2);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(log_path);
}
END_TEST

/* ---- bad configs ---- */

/* The user's rows as they are, down to their row versions: any UPDATE,
 * even one that changes nothing, shows in xmin. */
#define SRC_SNAPSHOT                                                                                         \
	"SELECT concat_ws('/',"                                                                              \
	"    (SELECT string_agg(concat_ws(':', id, xmin, status), ',' ORDER BY id) FROM configuration_update)," \
	"    (SELECT string_agg(concat_ws(':', id, xmin, status), ',' ORDER BY id) FROM locked_out),"         \
	"    (SELECT string_agg(concat_ws(':', id, xmin, status), ',' ORDER BY id) FROM hidden.jobs),"        \
	"    (SELECT string_agg(concat_ws(':', code, xmin, status), ',' ORDER BY code) FROM by_code),"        \
	"    (SELECT count(*) FROM dispatch.source_rows))"

/*
 * Starts `pgdispatch run` with yaml as HARNESS_WORKER; it must exit by
 * itself within timeout_ms. Returns its exit code, p holding its output.
 */
static int
src_run_to_exit(struct harness_proc *p, const char *yaml, int timeout_ms)
{
	char config[256], worker[256];
	const char *args[] = {"run", "-c", config, "-d", worker, NULL};
	long long end = harness_now_ms() + timeout_ms;
	siginfo_t info;
	int rc;

	snprintf(config, sizeof config, "%s", harness_write_temp(yaml));
	snprintf(worker, sizeof worker, "%s", harness_as(dt_db, HARNESS_WORKER));
	harness_start(p, args);
	/* WNOWAIT: harness_finish() reaps it and reads its output. */
	for (;;) {
		memset(&info, 0, sizeof info);
		ck_assert_int_eq(waitid(P_PID, (id_t) p->pid, &info, WEXITED | WNOHANG | WNOWAIT), 0);
		if (info.si_pid == p->pid)
			break;
		if (harness_now_ms() >= end) {
			kill(p->pid, SIGKILL);
			harness_finish(p);
			unlink(config);
			ck_abort_msg("pgdispatch run still running after %d ms:\n%s", timeout_ms, p->err);
		}
		harness_sleep_ms(20);
	}
	rc = harness_finish(p);
	unlink(config);
	return rc;
}

/*
 * Each bad source is refused before any row is touched: `pgdispatch run`
 * exits 2 with an error that names the problem and its fix, and the
 * user's rows keep their row versions.
 */
START_TEST(test_bad_sources_exit_2_naming_the_fix_and_touch_no_row)
{
	static const struct {
		const char *what;
		const char *source_yaml;    /* the source's keys, indented 4 */
		const char *want;           /* in stderr */
	} cases[] = {
		{"a table that does not exist", "    table: public.nope\n    status: {column: status}\n",
		 "source " SRC_NAME ": table public.nope does not exist"},
		{"a status column that does not exist",
		 "    table: public.configuration_update\n    status: {column: no_such_status_column}\n",
		 "no_such_status_column"},
		{"a key column that does not exist",
		 "    table: public.configuration_update\n    key: no_such_key_column\n    status: {column: status}\n",
		 "no_such_key_column"},
		{"a mapped column that does not exist",
		 "    table: public.configuration_update\n    status: {column: status}\n"
		 "    columns: {last_error: no_such_error_column}\n",
		 "no_such_error_column"},
		{"a payload column that does not exist",
		 "    table: public.configuration_update\n    status: {column: status}\n    payload: no_such_payload\n",
		 "no_such_payload"},
		{"a status value that is not a label of the enum",
		 "    table: public.configuration_update\n    status: {column: status, complete: done}\n",
		 "\"done\" is not a label of enum public.configuration_update_status"
		 " (labels: pending, in_progress, complete, failed)"},
		{"a table the role may not read or update", "    table: public.locked_out\n    status: {column: status}\n",
		 "GRANT SELECT, UPDATE (status) ON public.locked_out TO " HARNESS_WORKER ";"},
		{"a schema the role may not use", "    table: hidden.jobs\n    status: {column: status}\n",
		 "GRANT USAGE ON SCHEMA hidden TO " HARNESS_WORKER ";"},
		{"a key that is not unique",
		 "    table: public.by_code\n    key: code\n    status: {column: status}\n", "unique"},
	};
	char before[8192];

	harness_exec(dt_conn, src_seed_sql);
	harness_exec(dt_conn,
	             /* No grant at all to the worker. */
	             "CREATE TABLE locked_out (id int PRIMARY KEY, status configuration_update_status);"
	             "CREATE INDEX ON locked_out (id) WHERE status = 'pending';"
	             /* Every grant but USAGE on its schema. */
	             "CREATE SCHEMA hidden;"
	             "CREATE TABLE hidden.jobs (id int PRIMARY KEY, status configuration_update_status);"
	             "CREATE INDEX ON hidden.jobs (id) WHERE status = 'pending';"
	             "GRANT SELECT, UPDATE (status) ON hidden.jobs TO " HARNESS_WORKER ";"
	             /* A key with a plain, non-unique index. */
	             "CREATE TABLE by_code (code text NOT NULL, status configuration_update_status);"
	             "CREATE INDEX ON by_code (code);"
	             "CREATE INDEX ON by_code (code) WHERE status = 'pending';"
	             "GRANT SELECT, UPDATE (status) ON by_code TO " HARNESS_WORKER ";"
	             "INSERT INTO locked_out VALUES (1, 'pending'), (2, 'pending');"
	             "INSERT INTO hidden.jobs VALUES (1, 'pending'), (2, 'pending');"
	             "INSERT INTO by_code VALUES ('a', 'pending'), ('a', 'pending'), ('b', 'pending')");
	src_insert(1, 3);
	snprintf(before, sizeof before, "%s", harness_value(dt_conn, SRC_SNAPSHOT));

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char extra[1024];
		struct harness_proc p;
		int rc;

		snprintf(extra, sizeof extra, "sources:\n  " SRC_NAME ":\n%s", cases[i].source_yaml);
		rc = src_run_to_exit(&p, dt_config("  " SRC_NAME ":\n    builtin: noop\n", extra), 15000);
		ck_assert_msg(rc == 2, "%s: exit %d, want 2:\n%s", cases[i].what, rc, p.err);
		ck_assert_msg(strstr(p.err, cases[i].want) != NULL, "%s: stderr lacks \"%s\":\n%s", cases[i].what,
		              cases[i].want, p.err);
		ck_assert_msg(strcmp(harness_value(dt_conn, SRC_SNAPSHOT), before) == 0, "%s: rows changed:\n%s\nwas\n%s",
		              cases[i].what, harness_value(dt_conn, SRC_SNAPSHOT), before);
		harness_proc_free(&p);
	}
}
END_TEST

/* ---- hostile names ---- */

#define SRC_HOSTILE_TABLE "\"My \"\"Schema\"\"\".\"Config \"\"Update\"\" Table\""

/*
 * Quotes, capitals and spaces in the schema, table, column, enum, label
 * and channel names, and a label that would end a statement if it were
 * spliced: every row is served in order_by order, each ending in the
 * enum's own labels, the retry and failed paths included, and the canary
 * table is still there.
 */
START_TEST(test_hostile_identifiers_work_end_to_end)
{
	struct harness_daemon d;
	char log_path[256], handlers[1024];
	long long ordered;

	harness_exec(dt_conn,
	             "CREATE TABLE canary (x int);"
	             "CREATE SCHEMA \"My \"\"Schema\"\"\";"
	             "CREATE TYPE \"My \"\"Schema\"\"\".\"Status Enum\""
	             "    AS ENUM ('to do', 'it''s running', 'Done!', 'fail''); DROP TABLE canary; --');"
	             "CREATE TABLE " SRC_HOSTILE_TABLE " ("
	             "    \"Row ID\" int PRIMARY KEY,"
	             "    \"Status Col\" \"My \"\"Schema\"\"\".\"Status Enum\" NOT NULL,"
	             "    \"Payload Col\" jsonb,"
	             "    \"Sort Key\" int NOT NULL,"
	             "    \"Attempts #\" int NOT NULL DEFAULT 0);"
	             "CREATE INDEX \"Claim Index\" ON " SRC_HOSTILE_TABLE " (\"Sort Key\") WHERE \"Status Col\" = 'to do';"
	             "CREATE FUNCTION \"My \"\"Schema\"\"\".\"Notify Me\"() RETURNS trigger LANGUAGE plpgsql AS $$"
	             "BEGIN PERFORM pg_notify('Config \"Chan\"', NEW.\"Row ID\"::text); RETURN NEW; END $$;"
	             "CREATE TRIGGER \"Notify Me\" AFTER INSERT ON " SRC_HOSTILE_TABLE
	             "    FOR EACH ROW EXECUTE FUNCTION \"My \"\"Schema\"\"\".\"Notify Me\"();"
	             "GRANT USAGE ON SCHEMA \"My \"\"Schema\"\"\" TO " HARNESS_WORKER ";"
	             "GRANT SELECT, UPDATE (\"Status Col\", \"Attempts #\") ON " SRC_HOSTILE_TABLE " TO " HARNESS_WORKER ";"
	             /* Sort keys run against the ids; the row that always
	              * fails comes last. */
	             "INSERT INTO " SRC_HOSTILE_TABLE " (\"Row ID\", \"Status Col\", \"Payload Col\", \"Sort Key\")"
	             "  SELECT i, 'to do', jsonb_build_object('n', i, 'q', 'it''s \"quoted\"'), 100 - i"
	             "    FROM generate_series(1, 20) AS i;"
	             "INSERT INTO " SRC_HOSTILE_TABLE " VALUES (21, 'to do', '{\"fail_always\": true}', 1000)");
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  hostile:\n    command: [%s, %s]\n    concurrency: 1\n    max_attempts: 2\n"
	         "    backoff: {initial: 50ms, max: 50ms}\n",
	         harness_handler("record.sh"), log_path);
	harness_daemon_start(&d, dt_db, dt_config(handlers,
	        "poll_interval: 1h\n"
	        "sources:\n"
	        "  hostile:\n"
	        "    table: '\"My \"\"Schema\"\"\".\"Config \"\"Update\"\" Table\"'\n"
	        "    key: Row ID\n"
	        "    status:\n"
	        "      column: Status Col\n"
	        "      pending: to do\n"
	        "      in_progress: \"it's running\"\n"
	        "      complete: Done!\n"
	        "      failed: \"fail'); DROP TABLE canary; --\"\n"
	        "    channel: Config \"Chan\"\n"
	        "    payload: Payload Col\n"
	        "    order_by: Sort Key\n"
	        "    columns: {attempts: \"Attempts #\"}\n"));
	harness_wait_value(dt_conn, "SELECT string_agg(\"Status Col\"::text || ':' || \"Attempts #\", ',' ORDER BY \"Row ID\")"
	                            "  FROM " SRC_HOSTILE_TABLE " WHERE \"Row ID\" IN (1, 20, 21)",
	                   "Done!:1,Done!:1,fail'); DROP TABLE canary; --:2", 20000, &d);
	/* A row added now comes through the channel (the poll is an hour
	 * away). */
	harness_sleep_ms(200);
	harness_exec(dt_conn, "INSERT INTO " SRC_HOSTILE_TABLE " VALUES (22, 'to do', '{\"late\": 1}', 0)");
	harness_wait_value(dt_conn, "SELECT \"Status Col\" FROM " SRC_HOSTILE_TABLE " WHERE \"Row ID\" = 22", "Done!", 1000,
	                   &d);

	ck_assert_str_eq(harness_value(dt_conn, "SELECT to_regclass('public.canary') IS NOT NULL"), "t");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(DISTINCT \"Status Col\"::text || ':' || \"Attempts #\", ',')"
	                                        "  FROM " SRC_HOSTILE_TABLE " WHERE \"Row ID\" <> 21"),
	                 "Done!:1");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', key, attempts, last_error, finished_at IS NOT NULL)"
	                                        "  FROM dispatch.source_rows WHERE source = 'hostile'"),
	                 "21|2|exit 3: stderr: record.sh: failing always on purpose|t");
	/* What the handler got: the key, and the payload column alone; rows
	 * in "Sort Key" order (concurrency 1), 21 twice, 22 later. */
	ck_assert_int_eq(src_load_received(log_path), 23);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM received r JOIN " SRC_HOSTILE_TABLE " t"
	                                      "    ON r.j->>'id' = t.\"Row ID\"::text"
	                                      " WHERE r.j->'payload' = t.\"Payload Col\" AND r.j->>'kind' = 'hostile'"),
	                 23);
	ordered = harness_int(dt_conn, "SELECT count(*) FROM (SELECT n, (j->>'id')::int AS id,"
	                               "       lag((j->>'id')::int) OVER (ORDER BY n) AS prev FROM received WHERE n <= 20) o"
	                               " WHERE (prev IS NULL AND id = 20) OR id = prev - 1");
	ck_assert_msg(ordered == 20, "rows did not run in \"Sort Key\" order: %s",
	              harness_value(dt_conn, "SELECT string_agg(j->>'id', ',' ORDER BY n) FROM received"));
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(log_path);
}
END_TEST

/* ---- SQL handlers ---- */

/*
 * A SQL handler's statement and the row's move to complete commit
 * together: sampled in one snapshot while handlers run, a row is never
 * complete without its write nor written without being complete; a
 * handler that fails after its write leaves no write and a failed row.
 */
START_TEST(test_sql_handler_write_and_completion_commit_together)
{
	struct harness_daemon d;
	long long end;
	int samples = 0;

	harness_exec(dt_conn, src_seed_sql);
	harness_exec(dt_conn, "CREATE TABLE effects (row_id int NOT NULL, content jsonb);"
	                      " GRANT INSERT ON effects TO " HARNESS_WORKER);
	harness_daemon_start(&d, dt_db, dt_config(
	        "  " SRC_NAME ":\n"
	        "    sql: \"WITH w AS (INSERT INTO effects VALUES ($2, $1->'content') RETURNING 1)"
	        " SELECT pg_sleep(0.3), 1 / ($1->'content'->>'ok')::int FROM w\"\n"
	        "    max_attempts: 1\n", SRC_YAML));
	harness_exec(dt_conn, "INSERT INTO configuration_update (content, status, destination)"
	                      " SELECT jsonb_build_object('ok', i % 2), 'pending', '127.0.0.1' FROM generate_series(1, 6) AS i");
	end = harness_now_ms() + 20000;
	for (;;) {
		const char *v = harness_value(dt_conn,
		        "SELECT concat_ws('|',"
		        "    count(*) FILTER (WHERE (c.status = 'complete') <> EXISTS (SELECT 1 FROM effects e WHERE e.row_id = c.id)),"
		        "    count(*) FILTER (WHERE c.status IN ('pending', 'in_progress')))"
		        "  FROM configuration_update c");

		samples++;
		ck_assert_msg(strncmp(v, "0|", 2) == 0, "a completion and its write seen apart (sample %d): %s", samples, v);
		if (strcmp(v, "0|0") == 0)
			break;
		ck_assert_msg(harness_now_ms() < end, "rows not settled after 20 s:\n%s", harness_daemon_log(&d));
		harness_sleep_ms(5);
	}
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(concat_ws(':', id, status), ',' ORDER BY id)"
	                                        "  FROM configuration_update"),
	                 "1:complete,2:failed,3:complete,4:failed,5:complete,6:failed");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(row_id::text || ':' || (content->>'ok'), ',' ORDER BY row_id)"
	                                        "  FROM effects"),
	                 "1:1,3:1,5:1");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(DISTINCT last_error, ',') FROM dispatch.source_rows"
	                                        " WHERE source = '" SRC_NAME "' AND key IN ('2', '4', '6')"),
	                 "22012: division by zero");
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.source_rows"), 3);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

/* ---- visibility ---- */

/*
 * dispatch.source_stats counts the user's rows per status of each
 * source, in pgdispatch's words, and `pgdispatch status` shows them in a
 * section of their own.
 */
START_TEST(test_source_stats_and_status_count_rows_per_status)
{
	struct harness_daemon d;
	char log_path[256];
	struct harness_proc p;
	const char *args[] = {"status", "-d", dt_db, NULL};
	const char *section, *line;

	harness_exec(dt_conn, src_seed_sql);
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	harness_daemon_start(&d, dt_db, dt_config(src_record_handler(log_path, "    max_attempts: 1\n"), SRC_YAML));
	src_insert(1, 4);
	harness_exec(dt_conn, "INSERT INTO configuration_update (content, status) VALUES"
	                      " ('{\"fail_always\": 1}', 'pending'), ('{\"fail_always\": 2}', 'pending')");
	harness_wait_value(dt_conn, "SELECT count(*) FROM configuration_update WHERE status IN ('complete', 'failed')", "6",
	                   10000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	/* Left pending while no daemon runs. */
	src_insert(10, 3);

	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(status || '=' || count, ',' ORDER BY status)"
	                                        "  FROM dispatch.source_stats WHERE source = '" SRC_NAME "'"),
	                 "complete=4,failed=2,pending=3");

	/* The section "sources (rows per status)": a header line, then one
	 * line per source with its counts in the header's order. */
	ck_assert_int_eq(harness_run(&p, args), 0);
	section = strstr(p.out, "\nsources (rows per status)\n");
	ck_assert_msg(section != NULL, "no sources section in `pgdispatch status`:\n%s", p.out);
	section = strchr(section + 1, '\n') + 1;
	ck_assert_msg(strncmp(section, "  source", 8) == 0 && strstr(section, "pending  backoff  in_progress  complete  failed  other") != NULL,
	              "sources section header:\n%s", p.out);
	line = strstr(section, "\n  " SRC_NAME " ");
	ck_assert_msg(line != NULL, "no line for the source:\n%s", p.out);
	{
		int pending = -1, backoff = -1, running = -1, complete = -1, failed = -1, other = -1;

		ck_assert_int_eq(sscanf(line + 3 + strlen(SRC_NAME), "%d %d %d %d %d %d", &pending, &backoff, &running,
		                        &complete, &failed, &other),
		                 6);
		ck_assert_int_eq(pending, 3);
		ck_assert_int_eq(backoff, 0);
		ck_assert_int_eq(running, 0);
		ck_assert_int_eq(complete, 4);
		ck_assert_int_eq(failed, 2);
		ck_assert_int_eq(other, 0);
	}
	harness_proc_free(&p);
	unlink(log_path);
}
END_TEST

/* ---- side by side ---- */

/* A start or end in an overlap.sh log. */
struct src_event {
	double t;
	int delta;                   /* +1 start, -1 end */
	bool mine;                   /* of the label counted */
};

/* In time order; an end before a start at the same instant. */
static int
src_event_cmp(const void *a, const void *b)
{
	const struct src_event *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->delta - y->delta;
}

/* The most runs of label that overlapped in an overlap.sh log, and (in
 * *both) whether a run of label overlapped one of other. */
static int
src_max_overlap(const char *path, const char *label, const char *other, bool *both)
{
	struct src_event ev[256];
	char kind[16], lab[32];
	double t;
	int n = 0, mine = 0, theirs = 0, peak = 0;
	FILE *f = fopen(path, "r");

	ck_assert_ptr_nonnull(f);
	while (fscanf(f, "%15s %31s %lf", kind, lab, &t) == 3) {
		if (strcmp(lab, label) != 0 && strcmp(lab, other) != 0)
			continue;
		ck_assert_int_lt(n, 256);
		ev[n].t = t;
		ev[n].delta = strcmp(kind, "start") == 0 ? 1 : -1;
		ev[n].mine = strcmp(lab, label) == 0;
		n++;
	}
	fclose(f);
	qsort(ev, (size_t) n, sizeof ev[0], src_event_cmp);
	*both = false;
	for (int i = 0; i < n; i++) {
		if (ev[i].mine)
			mine += ev[i].delta;
		else
			theirs += ev[i].delta;
		if (mine > peak)
			peak = mine;
		if (mine > 0 && theirs > 0)
			*both = true;
	}
	return peak;
}

/*
 * A source and dispatch.tasks in one daemon: both are served at once,
 * and each handler stays within its own concurrency limit, and reaches
 * it.
 */
START_TEST(test_source_and_tasks_side_by_side_each_within_its_concurrency)
{
	struct harness_daemon d;
	char log_path[256], handlers[1024];
	bool both;

	harness_exec(dt_conn, src_seed_sql);
	snprintf(log_path, sizeof log_path, "%s", harness_write_temp(""));
	snprintf(handlers, sizeof handlers,
	         "  " SRC_NAME ":\n    command: [%s, %s, row, '0.4']\n    concurrency: 2\n"
	         "  slow_task:\n    command: [%s, %s, task, '0.4']\n    concurrency: 3\n",
	         harness_handler("overlap.sh"), log_path, harness_handler("overlap.sh"), log_path);
	src_insert(1, 8);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'slow_task' FROM generate_series(1, 9)");
	harness_daemon_start(&d, dt_db, dt_config(handlers, "concurrency: 8\n" SRC_YAML));
	harness_wait_value(dt_conn, "SELECT (SELECT count(*) FROM configuration_update WHERE status = 'complete')"
	                            " || ':' || (SELECT count(*) FROM dispatch.tasks WHERE status = 'complete')",
	                   "8:9", 30000, &d);
	ck_assert_int_eq(src_max_overlap(log_path, "row", "task", &both), 2);
	ck_assert_msg(both, "rows and tasks never ran at the same time");
	ck_assert_int_eq(src_max_overlap(log_path, "task", "row", &both), 3);
	ck_assert_int_eq(harness_int(dt_conn, "SELECT count(*) FROM dispatch.source_rows"), 0);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	unlink(log_path);
}
END_TEST

Suite *
sources_suite(void)
{
	Suite *s = suite_create("sources");
	TCase *tc = tcase_create("end_to_end");
	TCase *load = tcase_create("load");

	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_rows_left_pending_are_swept_and_new_rows_done_within_a_second);
	tcase_add_test(tc, test_failing_row_waits_at_pending_then_ends_failed_with_its_error);
	tcase_add_test(tc, test_failed_row_error_lands_in_the_mapped_last_error_column);
	tcase_add_test(tc, test_rows_of_a_killed_daemon_finish_on_another_after_the_lease);
	tcase_add_test(tc, test_handler_outliving_its_lease_keeps_its_row);
	tcase_add_test(tc, test_status_set_by_hand_stops_the_handler_and_stays);
	tcase_add_test(tc, test_bigint_and_uuid_keys_text_status_and_mapped_columns);
	tcase_add_test(tc, test_mapped_run_at_priority_and_claim_columns);
	tcase_add_test(tc, test_reload_that_changes_sources_is_refused);
	tcase_add_test(tc, test_bad_sources_exit_2_naming_the_fix_and_touch_no_row);
	tcase_add_test(tc, test_hostile_identifiers_work_end_to_end);
	tcase_add_test(tc, test_sql_handler_write_and_completion_commit_together);
	tcase_add_test(tc, test_source_stats_and_status_count_rows_per_status);
	tcase_add_test(tc, test_source_and_tasks_side_by_side_each_within_its_concurrency);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(load, dt_setup, dt_teardown);
	tcase_set_timeout(load, 240);
	tcase_add_test(load, test_two_daemons_run_each_of_5000_rows_exactly_once);
	suite_add_tcase(s, load);
	return s;
}
