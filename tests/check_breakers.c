/*
 * DB tier: circuit breakers, the SQL side (migrations/0011_breakers.sql,
 * sql/breaker_*.sql; issue 13). No daemon: the statements are run as the
 * daemon runs them, on connections of HARNESS_WORKER, so the grants are
 * proved with them; the operator's functions and commands as
 * HARNESS_ADMIN; setup, clock tricks and checks as the owner.
 *
 * Time is moved by hand where a test would otherwise wait: a breaker's
 * open_until or probe_until set into the past, or its recorded failures
 * aged past the window.
 *
 * Races are made real: a third connection holds the breaker's row lock
 * while two "daemons" send their statement, both are seen waiting on the
 * lock, then the lock goes. Both statements took their snapshot before the
 * first of them wrote, so only re-reading the locked row (READ COMMITTED)
 * keeps the second from acting on what it saw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "harness.h"

static const char *bk_db;
static PGconn *bk_owner, *bk_worker, *bk_admin;

static void
bk_setup(void)
{
	bk_db = harness_db_create();
	harness_migrate(bk_db);  /* migrate, roles, the test login roles */
	bk_owner = harness_connect(bk_db);
	bk_worker = harness_connect(harness_as(bk_db, HARNESS_WORKER));
	bk_admin = harness_connect(harness_as(bk_db, HARNESS_ADMIN));
}

static void
bk_teardown(void)
{
	PQfinish(bk_owner);
	PQfinish(bk_worker);
	PQfinish(bk_admin);
	bk_owner = bk_worker = bk_admin = NULL;
	harness_teardown();
}

/* Runs sql/NAME.sql, whole as the daemon runs it, with params on conn;
 * fails the test with the server's words. */
static PGresult *
bk_run(PGconn *conn, const char *name, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(conn, embed_sql(name), nparams, NULL, params, NULL, NULL, 0);

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK,
	              "%s as %s: %s", name, PQuser(conn), PQerrorMessage(conn));
	return res;
}

/* Asserts that sql fails with SQLSTATE state. */
static void
bk_refused(PGconn *conn, const char *sql, const char *state)
{
	PGresult *res = PQexec(conn, sql);
	const char *got = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR && got != NULL && strcmp(got, state) == 0,
	              "%s as %s: want %s, got %s %s", sql, PQuser(conn), state,
	              PQresStatus(PQresultStatus(res)), PQerrorMessage(conn));
	PQclear(res);
}

/* An array literal of one text element, or of one NULL. */
static const char *
bk_one(char *buf, size_t len, const char *v)
{
	if (v == NULL)
		snprintf(buf, len, "{NULL}");
	else
		snprintf(buf, len, "{\"%s\"}", v);
	return buf;
}

/*
 * breaker_config.sql for one kind (the daemon sends all its kinds at
 * once; one is what these tests need).
 */
static void
bk_config(const char *kind, int failures, long long window_ms, long long open_for_ms, long long open_max_ms)
{
	char k[128], f[32], w[32], o[32], m[32];
	const char *params[5];

	snprintf(f, sizeof f, "{%d}", failures);
	snprintf(w, sizeof w, "{%lld}", window_ms);
	snprintf(o, sizeof o, "{%lld}", open_for_ms);
	snprintf(m, sizeof m, "{%lld}", open_max_ms);
	params[0] = bk_one(k, sizeof k, kind);
	params[1] = f;
	params[2] = w;
	params[3] = o;
	params[4] = m;
	PQclear(bk_run(bk_worker, "breaker_config", 5, params));
}

/* Formats breaker_report.sql's rows: "kind:was>state:S:open_ms" joined by
 * ',' ("" for none), S being ms_left rounded up to seconds (a fresh 30 s
 * opening reads 30 however slow the machine, within a second). */
static const char *
bk_report_rows(PGresult *res)
{
	static char out[1024];
	size_t n = 0;

	out[0] = '\0';
	for (int r = 0; r < PQntuples(res); r++) {
		char secs[32] = "";

		if (!PQgetisnull(res, r, 3))
			snprintf(secs, sizeof secs, "%lld", (atoll(PQgetvalue(res, r, 3)) + 999) / 1000);
		n += (size_t) snprintf(out + n, sizeof out - n, "%s%s:%s>%s:%s:%s", r > 0 ? "," : "",
		                       PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), secs,
		                       PQgetvalue(res, r, 4));
	}
	return out;
}

/* breaker_report.sql for one kind, as instance. */
static const char *
bk_report_as(const char *instance, const char *kind, bool success, int fails, const char *probe,
             const char *error)
{
	char k[128], s[8], f[32], p[64], e[256];
	const char *params[6];
	PGresult *res;
	const char *out;

	snprintf(s, sizeof s, "{%s}", success ? "t" : "f");
	snprintf(f, sizeof f, "{%d}", fails);
	params[0] = bk_one(k, sizeof k, kind);
	params[1] = s;
	params[2] = f;
	params[3] = bk_one(p, sizeof p, probe);
	params[4] = bk_one(e, sizeof e, error);
	params[5] = instance;
	res = bk_run(bk_worker, "breaker_report", 6, params);
	out = bk_report_rows(res);
	PQclear(res);
	return out;
}

/* The same, as daemon a#1. */
static const char *
bk_report(const char *kind, bool success, int fails, const char *probe, const char *error)
{
	return bk_report_as("a#1", kind, success, fails, probe, error);
}

/* breaker_probe.sql: "kind" when instance won, "" otherwise. */
static const char *
bk_probe(const char *kind, const char *instance)
{
	static char out[128];
	const char *params[] = {kind, instance, "60000"};
	PGresult *res = bk_run(bk_worker, "breaker_probe", 3, params);

	ck_assert_int_le(PQntuples(res), 1);
	snprintf(out, sizeof out, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return out;
}

/* A breaker's row as the owner reads it: state, the failures recorded
 * (all of recent), open_ms, probe_by, last_error, changed_by. */
static const char *
bk_row(const char *kind)
{
	char sql[512];

	snprintf(sql, sizeof sql,
	         "SELECT concat_ws('|', state, cardinality(recent), coalesce(open_ms::text, '-'),"
	         "                 coalesce(probe_by, '-'), coalesce(last_error, '-'), coalesce(changed_by, '-'))"
	         "  FROM dispatch.breakers WHERE kind = '%s'", kind);
	return harness_value(bk_owner, sql);
}

/* The row's xmin: it changes when, and only when, the row is written. */
static long long
bk_xmin(const char *kind)
{
	char sql[256];

	snprintf(sql, sizeof sql, "SELECT xmin::text::bigint FROM dispatch.breakers WHERE kind = '%s'", kind);
	return harness_int(bk_owner, sql);
}

/* An open breaker's time is up, or a half-open one's probe has lapsed. */
static void
bk_expire(const char *kind)
{
	char sql[512];

	snprintf(sql, sizeof sql,
	         "UPDATE dispatch.breakers SET open_until = CASE WHEN state = 'open' THEN now() - interval '1 ms'"
	         "                                               ELSE open_until END,"
	         "                              probe_until = CASE WHEN state = 'half_open' THEN now() - interval '1 ms'"
	         "                                                 ELSE probe_until END"
	         " WHERE kind = '%s'", kind);
	harness_exec(bk_owner, sql);
}

/* The breaker of kind opens: failures 1, one failure reported. */
static void
bk_open(const char *kind, long long open_for_ms, long long open_max_ms)
{
	char want[128];

	bk_config(kind, 1, 30000, open_for_ms, open_max_ms);
	snprintf(want, sizeof want, "%s:closed>open:%lld:%lld", kind, (open_for_ms + 999) / 1000, open_for_ms);
	ck_assert_str_eq(bk_report(kind, false, 1, NULL, "down"), want);
}

/* Counting ---------------------------------------------------------------- */

/*
 * failures within the window, with no success between them, open the
 * breaker for open_for, whether they come one report at a time or several
 * in one; a report's kinds without a breaker row are ignored.
 */
START_TEST(test_breaker_opens_at_the_threshold_within_the_window)
{
	bk_config("k", 3, 30000, 20000, 600000);
	ck_assert_str_eq(bk_report("k", false, 1, NULL, "HTTP 503 one"), "k:closed>closed::");
	ck_assert_str_eq(bk_report("k", false, 1, NULL, "HTTP 503 two"), "k:closed>closed::");
	ck_assert_str_eq(bk_row("k"), "closed|2|-|-|HTTP 503 two|-");
	/* The third opens it: for open_for, the last error kept, the count
	 * emptied for the next closing, and who opened it recorded. */
	ck_assert_str_eq(bk_report("k", false, 1, NULL, "HTTP 503 three"), "k:closed>open:20:20000");
	ck_assert_str_eq(bk_row("k"), "open|0|20000|-|HTTP 503 three|a#1");
	ck_assert_str_eq(harness_value(bk_owner,
	        "SELECT concat_ws('|', opened_at = changed_at, open_until - opened_at, probe_until IS NULL)"
	        "  FROM dispatch.breakers WHERE kind = 'k'"),
	        "t|00:00:20|t");

	/* Several failures in one report count as several; more than enough
	 * is enough. Unknown kinds are left out of the answer. */
	bk_config("m", 3, 30000, 20000, 600000);
	ck_assert_str_eq(bk_report("m", false, 2, NULL, NULL), "m:closed>closed::");
	ck_assert_str_eq(bk_report("m", false, 5, NULL, NULL), "m:closed>open:20:20000");
	ck_assert_str_eq(bk_report("nope", false, 9, NULL, NULL), "");
	ck_assert_int_eq(harness_int(bk_owner, "SELECT count(*) FROM dispatch.breakers WHERE kind = 'nope'"), 0);

	/* One report for several kinds answers for each, in kind order. */
	bk_config("x", 2, 30000, 1000, 600000);
	bk_config("y", 5, 30000, 1000, 600000);
	{
		const char *params[] = {"{y,x,none}", "{f,f,f}", "{2,2,2}", "{NULL,NULL,NULL}", "{NULL,NULL,NULL}", "b#2"};
		PGresult *res = bk_run(bk_worker, "breaker_report", 6, params);

		ck_assert_str_eq(bk_report_rows(res), "x:closed>open:1:1000,y:closed>closed::");
		PQclear(res);
	}
}
END_TEST

/*
 * A failure counts only within the window: older ones slide out and are
 * trimmed from the row at the next report, so a slow trickle of failures
 * never opens the breaker. Sync counts only those within the window too.
 */
START_TEST(test_failures_older_than_the_window_slide_out)
{
	const char *params[] = {"{k}", "d#1"};
	PGresult *res;

	bk_config("k", 3, 30000, 20000, 600000);
	ck_assert_str_eq(bk_report("k", false, 2, NULL, "old"), "k:closed>closed::");
	/* Those two are now 31 s old. */
	harness_exec(bk_owner, "UPDATE dispatch.breakers SET recent = ARRAY[now() - interval '31 s',"
	                       "                                            now() - interval '31 s'] WHERE kind = 'k'");
	res = bk_run(bk_worker, "breaker_sync", 2, params);
	ck_assert_str_eq(PQgetvalue(res, 0, 4), "0");
	PQclear(res);
	ck_assert_str_eq(harness_value(bk_owner, "SELECT failures_recorded FROM dispatch.breaker_status"), "0");
	/* Two more: 4 within 31 s, but only 2 within the window. */
	ck_assert_str_eq(bk_report("k", false, 2, NULL, "new"), "k:closed>closed::");
	ck_assert_str_eq(bk_row("k"), "closed|2|-|-|new|-");
	/* One 29 s old still counts: with it, two more open the breaker. */
	harness_exec(bk_owner, "UPDATE dispatch.breakers SET recent = ARRAY[now() - interval '40 s',"
	                       "                                            now() - interval '29 s'] WHERE kind = 'k'");
	res = bk_run(bk_worker, "breaker_sync", 2, params);
	ck_assert_str_eq(PQgetvalue(res, 0, 4), "1");
	PQclear(res);
	ck_assert_str_eq(bk_report("k", false, 1, NULL, NULL), "k:closed>closed::");
	ck_assert_str_eq(bk_row("k"), "closed|2|-|-|new|-");
	ck_assert_str_eq(bk_report("k", false, 1, NULL, NULL), "k:closed>open:20:20000");
}
END_TEST

/*
 * A success wipes the count: failures must come with no success between
 * them. Failures reported with a success are those after it, and count.
 * A success with nothing recorded writes nothing.
 */
START_TEST(test_a_success_resets_the_count)
{
	long long xmin;

	bk_config("k", 3, 30000, 20000, 600000);
	ck_assert_str_eq(bk_report("k", false, 2, NULL, "e"), "k:closed>closed::");
	ck_assert_str_eq(bk_report("k", true, 0, NULL, NULL), "k:closed>closed::");
	ck_assert_str_eq(bk_row("k"), "closed|0|-|-|e|-");
	/* Nothing recorded: a success is no write. */
	xmin = bk_xmin("k");
	ck_assert_str_eq(bk_report("k", true, 0, NULL, NULL), "k:closed>closed::");
	ck_assert_int_eq(bk_xmin("k"), xmin);
	/* 2 before a success, 2 after: 2 count. Then one more opens it. */
	ck_assert_str_eq(bk_report("k", false, 2, NULL, NULL), "k:closed>closed::");
	ck_assert_str_eq(bk_report("k", true, 2, NULL, NULL), "k:closed>closed::");
	ck_assert_str_eq(bk_row("k"), "closed|2|-|-|e|-");
	ck_assert_str_eq(bk_report("k", false, 1, NULL, NULL), "k:closed>open:20:20000");
}
END_TEST

/*
 * An open breaker ignores every report (stragglers claimed before it
 * opened), successes and probe verdicts too, and is not even written.
 */
START_TEST(test_an_open_breaker_ignores_reports)
{
	const char *when = "SELECT concat_ws('|', opened_at, open_until) FROM dispatch.breakers WHERE kind = 'k'";
	char before[256];
	long long xmin;

	bk_open("k", 20000, 600000);
	snprintf(before, sizeof before, "%s", harness_value(bk_owner, when));
	xmin = bk_xmin("k");
	ck_assert_str_eq(bk_report("k", false, 10, NULL, "late"), "k:open>open:20:20000");
	ck_assert_str_eq(bk_report("k", true, 0, NULL, NULL), "k:open>open:20:20000");
	ck_assert_str_eq(bk_report("k", true, 0, "success", NULL), "k:open>open:20:20000");
	ck_assert_str_eq(bk_report("k", false, 1, "failure", "x"), "k:open>open:20:20000");
	ck_assert_int_eq(bk_xmin("k"), xmin);
	ck_assert_str_eq(harness_value(bk_owner, when), before);
	ck_assert_str_eq(bk_row("k"), "open|0|20000|-|down|a#1");
	/* Opened by hand until reset: ms_left NULL, and still nothing moves. */
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_trip('k')"), "f");
	ck_assert_str_eq(bk_report("k", true, 0, NULL, NULL), "k:open>open::");
}
END_TEST

/* Races ------------------------------------------------------------------- */

/*
 * Runs sql/NAME.sql on two fresh worker connections at once, with params
 * a and b, while the owner holds kind's row lock: both are seen waiting on
 * it, then it is released. Their results go to out_a and out_b as
 * bk_report_rows() formats them (first column only for a one-column
 * result).
 */
static void
bk_race(const char *name, const char *kind, int nparams, const char *const *a, const char *const *b,
        char *out_a, char *out_b, size_t outlen)
{
	PGconn *racer[2];
	const char *const *params[2] = {a, b};
	char *out[2] = {out_a, out_b};
	char sql[256];

	harness_exec(bk_owner, "BEGIN");
	snprintf(sql, sizeof sql, "SELECT 1 FROM dispatch.breakers WHERE kind = '%s' FOR UPDATE", kind);
	harness_exec(bk_owner, sql);
	for (int i = 0; i < 2; i++) {
		racer[i] = harness_connect(harness_as(bk_db, HARNESS_WORKER));
		ck_assert_int_eq(PQsendQueryParams(racer[i], embed_sql(name), nparams, NULL, params[i], NULL, NULL, 0), 1);
	}
	snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid IN (%d, %d) AND wait_event_type = 'Lock'",
	         PQbackendPID(racer[0]), PQbackendPID(racer[1]));
	{
		/* harness_wait_value() would query bk_owner, inside the
		 * transaction: one snapshot of pg_stat_activity. A third
		 * connection sees it change. */
		PGconn *watch = harness_connect(bk_db);

		harness_wait_value(watch, sql, "2", 10000, NULL);
		PQfinish(watch);
	}
	harness_exec(bk_owner, "COMMIT");
	for (int i = 0; i < 2; i++) {
		PGresult *res;
		int got = 0;

		out[i][0] = '\0';
		while ((res = PQgetResult(racer[i])) != NULL) {
			ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "racer %d: %s", i, PQerrorMessage(racer[i]));
			snprintf(out[i], outlen, "%s", PQnfields(res) == 1 ? (PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "")
			                                                  : bk_report_rows(res));
			PQclear(res);
			got++;
		}
		ck_assert_int_eq(got, 1);
		PQfinish(racer[i]);
	}
}

/*
 * Two daemons try to take the probe at the same moment: exactly one wins,
 * for an open breaker whose time is up and for a half-open one whose probe
 * lapsed. Before its time, nobody wins.
 */
START_TEST(test_two_daemons_race_for_the_probe_and_one_wins)
{
	const char *a[] = {"k", "a#1", "60000"}, *b[] = {"k", "b#2", "60000"};
	char ra[256], rb[256];

	bk_open("k", 20000, 600000);
	ck_assert_str_eq(bk_probe("k", "a#1"), "");
	bk_expire("k");
	bk_race("breaker_probe", "k", 3, a, b, ra, rb, sizeof ra);
	ck_assert_msg((strcmp(ra, "k") == 0) + (strcmp(rb, "k") == 0) == 1, "a won '%s', b won '%s'", ra, rb);
	ck_assert_str_eq(harness_value(bk_owner, "SELECT concat_ws('|', state, probe_by,"
	                                         "       probe_until - changed_at, changed_by = probe_by)"
	                                         "  FROM dispatch.breakers"),
	                 strcmp(ra, "k") == 0 ? "half_open|a#1|00:01:00|t" : "half_open|b#2|00:01:00|t");
	/* Held, in time: no one else. */
	ck_assert_str_eq(bk_probe("k", "c#3"), "");

	/* The winner died: its probe lapses, and again one of two takes it. */
	bk_expire("k");
	bk_race("breaker_probe", "k", 3, a, b, ra, rb, sizeof ra);
	ck_assert_msg((strcmp(ra, "k") == 0) + (strcmp(rb, "k") == 0) == 1, "a won '%s', b won '%s'", ra, rb);
}
END_TEST

/*
 * Two daemons report failures at the same moment. Each computes from the
 * row as the other left it: the failures add up (3 + 3 open a breaker of
 * 5), and when each brings enough on its own, exactly one of them opens
 * it: one transition, logged by one daemon.
 */
/* A report's row said: k was open, is open, open_ms 20000. */
static bool
bk_found_open(const char *row)
{
	size_t n = strlen(row);

	return strncmp(row, "k:open>open:", 12) == 0 && n > 18 && strcmp(row + n - 6, ":20000") == 0;
}

START_TEST(test_concurrent_reports_add_up_and_make_one_transition)
{
	const char *a[] = {"{k}", "{f}", "{3}", "{NULL}", "{from-a}", "a#1"};
	const char *b[] = {"{k}", "{f}", "{3}", "{NULL}", "{from-b}", "b#2"};
	const char *a5[] = {"{k}", "{f}", "{5}", "{NULL}", "{from-a}", "a#1"};
	const char *b5[] = {"{k}", "{f}", "{5}", "{NULL}", "{from-b}", "b#2"};
	char ra[256], rb[256];
	bool a_opened;

	bk_config("k", 5, 30000, 20000, 600000);
	bk_race("breaker_report", "k", 6, a, b, ra, rb, sizeof ra);
	/* Whichever went second found the first's three. */
	ck_assert_msg((strcmp(ra, "k:closed>open:20:20000") == 0 && strcmp(rb, "k:closed>closed::") == 0)
	              || (strcmp(rb, "k:closed>open:20:20000") == 0 && strcmp(ra, "k:closed>closed::") == 0),
	              "a: %s, b: %s", ra, rb);
	ck_assert_str_eq(harness_value(bk_owner, "SELECT state FROM dispatch.breakers"), "open");

	harness_exec(bk_admin, "SELECT dispatch.breaker_reset('k')");
	bk_race("breaker_report", "k", 6, a5, b5, ra, rb, sizeof ra);
	/* The other found it open. Its ms_left is counted from its own
	 * now(), the start of its statement, before it waited: a little more
	 * than 20 s. */
	a_opened = strcmp(ra, "k:closed>open:20:20000") == 0;
	ck_assert_msg((a_opened && bk_found_open(rb)) || (strcmp(rb, "k:closed>open:20:20000") == 0 && bk_found_open(ra)),
	              "a: %s, b: %s", ra, rb);
	/* The opener's error and name; the other changed nothing. */
	ck_assert_str_eq(bk_row("k"), a_opened ? "open|0|20000|-|from-a|a#1" : "open|0|20000|-|from-b|b#2");
}
END_TEST

/* Half-open ---------------------------------------------------------------- */

/*
 * Each failed probe opens the breaker again for twice the last opening,
 * never longer than open_max.
 */
START_TEST(test_a_failed_probe_doubles_the_opening_up_to_open_max)
{
	bk_open("k", 2000, 5000);
	bk_expire("k");
	ck_assert_str_eq(bk_probe("k", "a#1"), "k");
	ck_assert_str_eq(bk_report("k", false, 1, "failure", "still down"), "k:half_open>open:4:4000");
	ck_assert_str_eq(bk_row("k"), "open|0|4000|-|still down|a#1");
	ck_assert_str_eq(harness_value(bk_owner, "SELECT open_until - opened_at FROM dispatch.breakers"), "00:00:04");
	bk_expire("k");
	ck_assert_str_eq(bk_probe("k", "a#1"), "k");
	ck_assert_str_eq(bk_report("k", false, 1, "failure", NULL), "k:half_open>open:5:5000");
	bk_expire("k");
	ck_assert_str_eq(bk_probe("k", "a#1"), "k");
	ck_assert_str_eq(bk_report("k", false, 1, "failure", NULL), "k:half_open>open:5:5000");
	ck_assert_str_eq(harness_value(bk_owner, "SELECT open_s FROM dispatch.breaker_status"), "5");
}
END_TEST

/* The probe's success closes the breaker: counting starts afresh. */
START_TEST(test_a_successful_probe_closes_the_breaker)
{
	const char *params[] = {"{k}", "a#1"};
	PGresult *res;

	bk_open("k", 2000, 5000);
	bk_expire("k");
	ck_assert_str_eq(bk_probe("k", "a#1"), "k");
	ck_assert_str_eq(bk_report("k", true, 0, "success", NULL), "k:half_open>closed::");
	ck_assert_str_eq(bk_row("k"), "closed|0|-|-|down|a#1");
	ck_assert_str_eq(harness_value(bk_owner, "SELECT concat_ws('|', opened_at, open_until, probe_until)"
	                                         "  FROM dispatch.breakers"), "");
	res = bk_run(bk_worker, "breaker_sync", 2, params);
	ck_assert_str_eq(PQgetvalue(res, 0, 1), "closed");
	ck_assert_str_eq(PQgetvalue(res, 0, 2), "f");
	ck_assert_int_eq(PQgetisnull(res, 0, 3), 1);
	PQclear(res);
	/* failures 1: the next failure opens it again, for open_for, not for
	 * a doubled time. */
	ck_assert_str_eq(bk_report("k", false, 1, NULL, NULL), "k:closed>open:2:2000");
}
END_TEST

/*
 * A probe that ended without a verdict (its task stopped, or none was
 * claimed) frees the probe at once: probe_until is now, this daemon no
 * longer holds it, and another daemon takes it without waiting.
 */
START_TEST(test_a_void_probe_frees_it_for_any_daemon)
{
	const char *params[] = {"{k}", "a#1"};
	PGresult *res;

	bk_open("k", 2000, 5000);
	bk_expire("k");
	ck_assert_str_eq(bk_probe("k", "a#1"), "k");
	res = bk_run(bk_worker, "breaker_sync", 2, params);
	ck_assert_str_eq(PQgetvalue(res, 0, 2), "t");
	ck_assert_int_gt(atoll(PQgetvalue(res, 0, 3)), 59000);
	PQclear(res);

	ck_assert_str_eq(bk_report("k", false, 0, "void", NULL), "k:half_open>half_open:0:2000");
	ck_assert_str_eq(harness_value(bk_owner, "SELECT concat_ws('|', state, probe_until <= now())"
	                                         "  FROM dispatch.breakers"), "half_open|t");
	res = bk_run(bk_worker, "breaker_sync", 2, params);
	ck_assert_str_eq(PQgetvalue(res, 0, 2), "f");
	ck_assert_str_eq(PQgetvalue(res, 0, 3), "0");
	PQclear(res);
	ck_assert_str_eq(bk_probe("k", "b#2"), "k");
	ck_assert_str_eq(bk_row("k"), "half_open|0|2000|b#2|down|b#2");
}
END_TEST

/*
 * A daemon whose probe lapsed and was taken over reports its verdict late:
 * it does not count, failure or void; the holder's does. Any success
 * still closes the breaker (the service answers again).
 */
START_TEST(test_a_probe_verdict_from_another_daemon_does_not_count)
{
	const char *probe = "SELECT concat_ws('|', state, probe_by, probe_until) FROM dispatch.breakers";
	char before[256];
	long long xmin;

	bk_open("k", 2000, 5000);
	bk_expire("k");
	ck_assert_str_eq(bk_probe("k", "a#1"), "k");
	snprintf(before, sizeof before, "%s", harness_value(bk_owner, probe));
	xmin = bk_xmin("k");
	ck_assert_str_eq(bk_report_as("b#2", "k", false, 1, "failure", "old news"), "k:half_open>half_open:60:2000");
	ck_assert_str_eq(bk_report_as("b#2", "k", false, 0, "void", NULL), "k:half_open>half_open:60:2000");
	ck_assert_str_eq(harness_value(bk_owner, probe), before);
	ck_assert_int_eq(bk_xmin("k"), xmin);
	/* The holder's failure counts. */
	ck_assert_str_eq(bk_report_as("a#1", "k", false, 1, "failure", "down"), "k:half_open>open:4:4000");

	/* Half-open again, held by a#1: b#2's success (not a probe) closes. */
	bk_expire("k");
	ck_assert_str_eq(bk_probe("k", "a#1"), "k");
	ck_assert_str_eq(bk_report_as("b#2", "k", true, 0, NULL, NULL), "k:half_open>closed::");
	ck_assert_str_eq(bk_row("k"), "closed|0|-|-|down|b#2");
}
END_TEST

/* Sync and config ------------------------------------------------------------ */

/*
 * breaker_sync.sql's columns and types, for each state: mine only for the
 * holder of a probe still in time; ms_left until open_until (NULL when
 * open until reset) or until the probe lapses; recorded.
 */
START_TEST(test_sync_reports_state_mine_ms_left_and_recorded)
{
	const char *params[] = {"{c,o,r,h,x,missing}", "a#1"};
	const char *names[] = {"kind", "state", "mine", "ms_left", "recorded"};
	const Oid types[] = {25, 25, 16, 20, 23};  /* text, text, bool, int8, int4 */
	PGresult *res;
	char rows[1024] = "";
	size_t n = 0;

	bk_config("c", 5, 30000, 10000, 600000);
	ck_assert_str_eq(bk_report("c", false, 2, NULL, NULL), "c:closed>closed::");
	bk_open("o", 10000, 600000);
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_trip('r')"), "t");
	bk_open("h", 10000, 600000);
	bk_expire("h");
	ck_assert_str_eq(bk_probe("h", "a#1"), "h");
	bk_open("x", 10000, 600000);
	bk_expire("x");
	ck_assert_str_eq(bk_probe("x", "b#2"), "x");
	/* Not asked for: not answered. */
	bk_config("other", 5, 30000, 10000, 600000);

	res = bk_run(bk_worker, "breaker_sync", 2, params);
	ck_assert_int_eq(PQnfields(res), 5);
	for (int c = 0; c < 5; c++) {
		ck_assert_str_eq(PQfname(res, c), names[c]);
		ck_assert_uint_eq(PQftype(res, c), types[c]);
	}
	for (int r = 0; r < PQntuples(res); r++) {
		char left[32] = "null";

		if (!PQgetisnull(res, r, 3))
			snprintf(left, sizeof left, "%lld", (atoll(PQgetvalue(res, r, 3)) + 999) / 1000);
		n += (size_t) snprintf(rows + n, sizeof rows - n, "%s%s|%s|%s|%s|%s", r > 0 ? "," : "",
		                       PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), left,
		                       PQgetvalue(res, r, 4));
	}
	PQclear(res);
	ck_assert_str_eq(rows, "c|closed|f|null|2,h|half_open|t|60|0,o|open|f|10|0,r|open|f|null|0,x|half_open|f|60|0");
}
END_TEST

/*
 * breaker_config.sql makes missing rows, changes a row's config and
 * nothing else (an open breaker stays open), and leaves a row whose config
 * is unchanged unwritten (its xmin stays) and unlocked: a daemon's
 * reconnect does not queue behind another's held row.
 */
START_TEST(test_config_upsert_writes_only_what_changed)
{
	const char *cfg = "SELECT string_agg(concat_ws('|', kind, state, failures, window_ms, open_for_ms, open_max_ms),"
	                  "                  ',' ORDER BY kind) FROM dispatch.breakers";
	const char *two[] = {"{b,a}", "{3,4}", "{1000,2000}", "{3000,4000}", "{5000,6000}"};
	const char *changed[] = {"{b,a}", "{3,7}", "{1000,2000}", "{3000,4000}", "{5000,6000}"};
	long long xa, xb;
	PGconn *holder = harness_connect(bk_db);

	PQclear(bk_run(bk_worker, "breaker_config", 5, two));
	ck_assert_str_eq(harness_value(bk_owner, cfg), "a|closed|4|2000|4000|6000,b|closed|3|1000|3000|5000");
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_trip('a')"), "t");
	xa = bk_xmin("a");
	xb = bk_xmin("b");

	/* The same again: no write, and no wait for a row another session
	 * holds locked. */
	harness_exec(holder, "BEGIN; SELECT 1 FROM dispatch.breakers WHERE kind = 'a' FOR UPDATE");
	harness_exec(bk_worker, "SET lock_timeout = '200ms'");
	PQclear(bk_run(bk_worker, "breaker_config", 5, two));
	harness_exec(holder, "ROLLBACK");
	ck_assert_int_eq(bk_xmin("a"), xa);
	ck_assert_int_eq(bk_xmin("b"), xb);

	/* a's failures change: a is written, keeping its state; b is not. */
	PQclear(bk_run(bk_worker, "breaker_config", 5, changed));
	harness_exec(bk_worker, "RESET lock_timeout");
	ck_assert_int_ne(bk_xmin("a"), xa);
	ck_assert_int_eq(bk_xmin("b"), xb);
	ck_assert_str_eq(harness_value(bk_owner, cfg), "a|open|7|2000|4000|6000,b|closed|3|1000|3000|5000");
	ck_assert_str_eq(harness_value(bk_owner, "SELECT open_until FROM dispatch.breakers WHERE kind = 'a'"),
	                 "infinity");

	/* Another daemon inserts c, with the same config, while this one's
	 * statement runs: it waits for that insert, finds the row as it
	 * wants it, and does not write it again. */
	{
		const char *three[] = {"{a,b,c}", "{7,3,2}", "{2000,1000,1000}", "{4000,3000,1000}", "{6000,5000,1000}"};
		PGconn *racer = harness_connect(harness_as(bk_db, HARNESS_WORKER));
		PGresult *res;
		char sql[256], inserter[32];

		harness_exec(holder, "BEGIN; INSERT INTO dispatch.breakers (kind, failures, window_ms, open_for_ms,"
		                     " open_max_ms) VALUES ('c', 2, 1000, 1000, 1000)");
		snprintf(inserter, sizeof inserter, "%s", harness_value(holder, "SELECT txid_current() % 4294967296"));
		ck_assert_int_eq(PQsendQueryParams(racer, embed_sql("breaker_config"), 5, NULL, three, NULL, NULL, 0), 1);
		snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'",
		         PQbackendPID(racer));
		harness_wait_value(bk_owner, sql, "1", 10000, NULL);
		harness_exec(holder, "COMMIT");
		while ((res = PQgetResult(racer)) != NULL) {
			ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(racer));
			PQclear(res);
		}
		PQfinish(racer);
		snprintf(sql, sizeof sql, "%lld", bk_xmin("c"));
		ck_assert_str_eq(sql, inserter);
		ck_assert_int_eq(bk_xmin("b"), xb);
	}
	PQfinish(holder);
}
END_TEST

/* The operator --------------------------------------------------------------- */

/*
 * breaker_reset() and breaker_trip() are dispatch_admin's alone: a worker
 * or a producer gets permission denied, and neither may write the table
 * by hand (nor may an admin). Everyone reads the view.
 */
START_TEST(test_only_dispatch_admin_may_reset_or_trip)
{
	const char *calls[] = {"SELECT dispatch.breaker_reset('k')", "SELECT dispatch.breaker_trip('k')",
	                       "SELECT dispatch.breaker_trip('k', '1 minute')"};
	PGconn *producer = harness_connect(harness_as(bk_db, HARNESS_PRODUCER));
	PGconn *as[] = {bk_worker, producer};

	bk_config("k", 5, 30000, 10000, 600000);
	for (size_t r = 0; r < sizeof as / sizeof as[0]; r++) {
		for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++)
			bk_refused(as[r], calls[c], "42501");
		ck_assert_str_eq(harness_value(as[r], "SELECT string_agg(kind || ':' || state, ',') FROM dispatch.breaker_status"),
		                 "k:closed");
	}
	bk_refused(producer, "SELECT * FROM dispatch.breakers", "42501");
	bk_refused(producer, "UPDATE dispatch.breakers SET state = 'open'", "42501");
	bk_refused(bk_worker, "DELETE FROM dispatch.breakers", "42501");
	bk_refused(bk_admin, "UPDATE dispatch.breakers SET state = 'closed'", "42501");
	bk_refused(bk_admin, "DELETE FROM dispatch.breakers", "42501");
	ck_assert_str_eq(bk_row("k"), "closed|0|-|-|-|-");

	/* The admin: open for a minute, replace it with until reset, close;
	 * each recorded under the admin's name, not the functions' owner. */
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_trip('k', '1 minute')"), "t");
	ck_assert_str_eq(harness_value(bk_owner, "SELECT concat_ws('|', state, open_ms, open_until - opened_at, changed_by)"
	                                         "  FROM dispatch.breakers"),
	                 "open|60000|00:01:00|" HARNESS_ADMIN);
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_trip('k')"), "f");
	ck_assert_str_eq(harness_value(bk_owner, "SELECT concat_ws('|', state, open_ms IS NULL, open_until)"
	                                         "  FROM dispatch.breakers"), "open|t|infinity");
	ck_assert_str_eq(harness_value(bk_admin, "SELECT seconds_left IS NULL FROM dispatch.breaker_status"), "t");
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_reset('k')"), "t");
	ck_assert_str_eq(bk_row("k"), "closed|0|-|-|-|" HARNESS_ADMIN);
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_reset('k')"), "f");
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_reset('nope')"), "f");
	/* A half-open breaker closes too, its probe forgotten. */
	bk_open("h", 1000, 2000);
	bk_expire("h");
	ck_assert_str_eq(bk_probe("h", "a#1"), "h");
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_reset('h')"), "t");
	ck_assert_str_eq(bk_row("h"), "closed|0|-|-|down|" HARNESS_ADMIN);
	/* A closed breaker's counted failures are forgotten. */
	bk_config("c", 5, 30000, 1000, 2000);
	ck_assert_str_eq(bk_report("c", false, 3, NULL, NULL), "c:closed>closed::");
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_reset('c')"), "f");
	ck_assert_str_eq(bk_row("c"), "closed|0|-|-|-|-");

	/* A kind no daemon registered gets a row with the default config;
	 * nonsense is refused. */
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_trip('new', '5 s')"), "t");
	ck_assert_str_eq(harness_value(bk_owner, "SELECT concat_ws('|', state, failures, window_ms, open_for_ms,"
	                                         "                 open_max_ms, open_ms)"
	                                         "  FROM dispatch.breakers WHERE kind = 'new'"),
	                 "open|5|30000|30000|600000|5000");
	bk_refused(bk_admin, "SELECT dispatch.breaker_trip('new', '0 s')", "22023");
	bk_refused(bk_admin, "SELECT dispatch.breaker_trip('new', '-1 s')", "22023");
	bk_refused(bk_admin, "SELECT dispatch.breaker_trip(NULL)", "22023");
	PQfinish(producer);
}
END_TEST

/* Runs the binary with args, as role (-d added first); returns the exit
 * code, p keeps the output. */
static int
bk_cli(struct harness_proc *p, const char *role, const char *const *args)
{
	const char *argv[8];
	char conninfo[256];
	int n = 0;

	snprintf(conninfo, sizeof conninfo, "%s", harness_as(bk_db, role));
	argv[n++] = args[0];
	argv[n++] = "-d";
	argv[n++] = conninfo;
	for (int i = 1; args[i] != NULL && n < 7; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return harness_run(p, argv);
}

/*
 * `pgdispatch breaker-open KIND [DURATION]` and `breaker-reset KIND`: the
 * sentence each prints, the exit code, and the row they leave.
 */
START_TEST(test_cli_breaker_open_and_reset)
{
	const char *open5m[] = {"breaker-open", "k", "5m", NULL};
	const char *open_ever[] = {"breaker-open", "k", NULL};
	const char *open_ms[] = {"breaker-open", "k", "1500ms", NULL};
	const char *reset[] = {"breaker-reset", "k", NULL};
	const char *reset_typo[] = {"breaker-reset", "kk", NULL};
	struct harness_proc p;

	ck_assert_int_eq(bk_cli(&p, HARNESS_ADMIN, open5m), 0);
	ck_assert_str_eq(p.out, "breaker k open for 5m: no daemon claims its tasks until then; then one probe task decides\n");
	ck_assert_str_eq(p.err, "");
	harness_proc_free(&p);
	ck_assert_str_eq(harness_value(bk_owner, "SELECT concat_ws('|', state, open_ms, open_until - opened_at, changed_by)"
	                                         "  FROM dispatch.breakers"),
	                 "open|300000|00:05:00|" HARNESS_ADMIN);

	ck_assert_int_eq(bk_cli(&p, HARNESS_ADMIN, open_ever), 0);
	{
		const char *want = "breaker k open until reset (pgdispatch breaker-reset k): no daemon claims its tasks"
		                   " (it was open for ";

		ck_assert_msg(strncmp(p.out, want, strlen(want)) == 0 && strstr(p.out, "s more)\n") != NULL,
		              "stdout: %s", p.out);
	}
	harness_proc_free(&p);
	ck_assert_str_eq(harness_value(bk_owner, "SELECT open_until FROM dispatch.breakers"), "infinity");

	ck_assert_int_eq(bk_cli(&p, HARNESS_ADMIN, open_ms), 0);
	ck_assert_str_eq(p.out, "breaker k open for 1500ms: no daemon claims its tasks until then; then one probe task"
	                        " decides (it was open until reset)\n");
	harness_proc_free(&p);
	ck_assert_str_eq(harness_value(bk_owner, "SELECT open_until - opened_at FROM dispatch.breakers"), "00:00:01.5");

	ck_assert_int_eq(bk_cli(&p, HARNESS_ADMIN, reset), 0);
	ck_assert_str_eq(p.out, "breaker k closed (it was open): daemons claim its tasks again\n");
	harness_proc_free(&p);
	ck_assert_str_eq(bk_row("k"), "closed|0|-|-|-|" HARNESS_ADMIN);
	ck_assert_str_eq(bk_report("k", false, 2, NULL, NULL), "k:closed>closed::");
	ck_assert_int_eq(bk_cli(&p, HARNESS_ADMIN, reset), 0);
	ck_assert_str_eq(p.out, "breaker k was closed already; its 2 recorded failure(s) are forgotten\n");
	harness_proc_free(&p);
	ck_assert_int_eq(bk_cli(&p, HARNESS_ADMIN, reset), 0);
	ck_assert_str_eq(p.out, "breaker k was closed already\n");
	harness_proc_free(&p);

	/* A kind without a breaker: exit 1, and the kinds that have one. */
	ck_assert_int_eq(bk_cli(&p, HARNESS_ADMIN, reset_typo), 1);
	ck_assert_str_eq(p.out, "");
	ck_assert_str_eq(p.err, "pgdispatch: no breaker for kind kk (kinds with one: k)\n");
	harness_proc_free(&p);

	/* Not an admin: the server's refusal, exit 1, nothing changed. */
	ck_assert_int_eq(bk_cli(&p, HARNESS_WORKER, open5m), 1);
	ck_assert_msg(strstr(p.err, "permission denied for function breaker_trip") != NULL, "stderr: %s", p.err);
	harness_proc_free(&p);
	ck_assert_str_eq(harness_value(bk_owner, "SELECT state FROM dispatch.breakers"), "closed");
}
END_TEST

/* Usage errors: exit 2 and why, before any connection. */
START_TEST(test_cli_breaker_usage_errors)
{
	static const struct {
		const char *args[5];
		const char *says;
	} bad[] = {
		{{"breaker-reset", NULL}, "missing argument"},
		{{"breaker-reset", "a", "b", NULL}, "unexpected argument 'b'"},
		{{"breaker-reset", "", NULL}, "breaker-reset: KIND must not be empty"},
		{{"breaker-open", NULL}, "missing argument"},
		{{"breaker-open", "k", "5", NULL}, "breaker-open: DURATION is a positive number and a unit"},
		{{"breaker-open", "k", "5 minutes", NULL}, "breaker-open: DURATION is a positive number and a unit"},
		{{"breaker-open", "k", "0s", NULL}, "breaker-open: DURATION is a positive number and a unit"},
		{{"breaker-open", "k", "1000000d", NULL}, "breaker-open: DURATION is a positive number and a unit"},
		{{"breaker-open", "k", "5m", "x", NULL}, "unexpected argument 'x'"},
		{{"breaker-open", "--queue", "q", "k", NULL}, "unknown option '--queue'"},
	};
	struct harness_proc p;
	const char *help[] = {"--help", NULL};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(harness_run(&p, bad[i].args), 2);
		ck_assert_msg(strstr(p.err, bad[i].says) != NULL && strstr(p.err, "--help") != NULL,
		              "%s: stderr %s lacks %s", bad[i].args[0], p.err, bad[i].says);
		harness_proc_free(&p);
	}
	ck_assert_int_eq(harness_run(&p, help), 0);
	ck_assert_ptr_nonnull(strstr(p.out, "\n  pgdispatch breaker-reset [-d CONNINFO] KIND\n"));
	ck_assert_ptr_nonnull(strstr(p.out, "\n  pgdispatch breaker-open [-d CONNINFO] KIND [DURATION]\n"));
	harness_proc_free(&p);
}
END_TEST

/*
 * `pgdispatch status` shows the breakers worth a look, open, half-open or
 * counting failures, to any of the three roles; none when all are closed
 * and quiet.
 */
START_TEST(test_status_shows_breakers_not_closed_or_counting)
{
	const char *status[] = {"status", NULL};
	struct harness_proc p;

	bk_config("quiet", 5, 30000, 10000, 600000);
	ck_assert_int_eq(bk_cli(&p, HARNESS_PRODUCER, status), 0);
	ck_assert_msg(strstr(p.out, "breakers") == NULL, "stdout: %s", p.out);
	harness_proc_free(&p);

	bk_config("count", 5, 30000, 10000, 600000);
	ck_assert_str_eq(bk_report("count", false, 2, NULL, "HTTP 503\n  Service   Unavailable"), "count:closed>closed::");
	ck_assert_str_eq(harness_value(bk_admin, "SELECT dispatch.breaker_trip('ever')"), "t");
	bk_open("half", 1000, 2000);
	bk_expire("half");
	ck_assert_str_eq(bk_probe("half", "a#1"), "half");
	ck_assert_int_eq(bk_cli(&p, HARNESS_PRODUCER, status), 0);
	/* Open and half-open first, then closed ones counting; each line
	 * says how many failures of how many within the window. */
	{
		const char *title = strstr(p.out, "\nbreakers (open, half-open or counting failures)\n  kind   state ");
		const char *ever = strstr(p.out, "\n  ever   open       0/5 in 30s  until reset ");
		const char *half = strstr(p.out, "\n  half   half_open  0/1 in 30s  ");
		const char *count = strstr(p.out, "\n  count  closed     2/5 in 30s ");
		char line[256];

		ck_assert_msg(title != NULL && ever != NULL && half != NULL && count != NULL
		              && title < ever && ever < half && half < count, "stdout: %s", p.out);
		/* The probe's holder on its line, and the error on one line. */
		snprintf(line, sizeof line, "%.*s", (int) strcspn(half + 1, "\n"), half + 1);
		ck_assert_msg(strstr(line, "  a#1  ") != NULL, "line: %s", line);
		ck_assert_msg(strstr(p.out, "HTTP 503 Service Unavailable\n") != NULL, "stdout: %s", p.out);
		ck_assert_msg(strstr(p.out, "\n  quiet ") == NULL, "stdout: %s", p.out);
	}
	harness_proc_free(&p);
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
bk_migrate_to(PGconn *conn, const char *last)
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
 * A database of the 0010 release, holding tasks, failed attempts, a
 * pause, a schedule, a source's rows and a daemon's registration, takes
 * `pgdispatch migrate` and `roles`: everything is kept, and the breakers
 * work for the daemon's and the admin's roles. Before the migration,
 * `pgdispatch roles` refuses the database as too old.
 */
START_TEST(test_upgrade_from_0010_keeps_rows_and_adds_breakers)
{
	const char *db = harness_db_create();
	const char *migrate[] = {"migrate", "-d", db, NULL};
	const char *roles[] = {"roles", "-d", db, NULL};
	const char *everything =
		"SELECT concat_ws('|',"
		"  (SELECT string_agg(concat_ws(':', id, status, attempts), ',' ORDER BY id) FROM dispatch.tasks),"
		"  (SELECT string_agg(concat_ws(':', task_id, outcome, error), ',') FROM dispatch.attempts),"
		"  (SELECT string_agg(queue, ',') FROM dispatch.queue_pauses),"
		"  (SELECT string_agg(name, ',') FROM dispatch.schedules),"
		"  (SELECT string_agg(concat_ws(':', source, key, attempts), ',') FROM dispatch.source_rows),"
		"  (SELECT string_agg(name, ',') FROM dispatch.sources),"
		"  (SELECT string_agg(name || ':' || state, ',') FROM dispatch.instances))";
	PGconn *owner = harness_connect(db), *worker, *admin;
	struct harness_proc p;
	char before[2048];

	bk_migrate_to(owner, "0010");
	ck_assert_str_eq(harness_value(owner, "SELECT max(version) FROM dispatch.schema_migrations"), "0010_sources");
	harness_exec(owner,
	        "INSERT INTO dispatch.tasks (id, kind, status, attempts, locked_by, claim_token, lease_expires_at,"
	        "                            finished_at, last_error) OVERRIDING SYSTEM VALUE VALUES"
	        " (1, 'http.x', 'pending', 0, NULL, NULL, NULL, NULL, NULL),"
	        " (2, 'http.x', 'in_progress', 1, 'old#1', 5, now() + interval '10 min', NULL, NULL),"
	        " (3, 'http.x', 'failed', 3, 'old#1', 6, NULL, now(), 'HTTP 503');"
	        "INSERT INTO dispatch.attempts (task_id, attempt, queue, kind, error, instance, outcome)"
	        " VALUES (3, 3, 'default', 'http.x', 'HTTP 503', 'old#1', 'failed');"
	        "INSERT INTO dispatch.queue_pauses (queue) VALUES ('slow');"
	        "INSERT INTO dispatch.schedules (name, last_tick) VALUES ('nightly', now());"
	        "INSERT INTO dispatch.sources (name, table_name, key_column, status_column, pending, in_progress,"
	        "                              complete, failed)"
	        " VALUES ('orders', 'public.orders', 'id', 'st', 'p', 'r', 'c', 'f');"
	        "INSERT INTO dispatch.source_rows (source, key, attempts, last_error) VALUES ('orders', '42', 2, 'x');"
	        "INSERT INTO dispatch.instances (name, pid, host, version, queues, concurrency, lease_ms)"
	        " VALUES ('old', 1, 'h', '0', '{default}', 4, 30000)");
	snprintf(before, sizeof before, "%s", harness_value(owner, everything));

	/* This release's roles name dispatch.breakers: too new for 0010. */
	ck_assert_int_eq(harness_run(&p, roles), 1);
	ck_assert_msg(strstr(p.err, "Run pgdispatch migrate first") != NULL, "stderr: %s", p.err);
	harness_proc_free(&p);

	ck_assert_int_eq(harness_run(&p, migrate), 0);
	ck_assert_msg(strstr(p.out, "applied 0010") == NULL && strstr(p.out, "applied 0011_breakers") != NULL,
	              "stdout: %s", p.out);
	ck_assert_str_eq(p.err, "");
	harness_proc_free(&p);
	harness_migrate(db);  /* nothing left to migrate; roles; the login roles */
	ck_assert_str_eq(harness_value(owner, everything), before);
	ck_assert_int_eq(harness_int(owner, "SELECT count(*) FROM dispatch.breakers"), 0);

	/* The daemon's role registers its breaker and records failures; the
	 * admin's opens and closes one. */
	worker = harness_connect(harness_as(db, HARNESS_WORKER));
	admin = harness_connect(harness_as(db, HARNESS_ADMIN));
	{
		const char *cfg[] = {"{http.x}", "{2}", "{30000}", "{1000}", "{5000}"};
		const char *rep[] = {"{http.x}", "{f}", "{2}", "{NULL}", "{HTTP 503}", "new#2"};
		PGresult *res;

		PQclear(bk_run(worker, "breaker_config", 5, cfg));
		res = bk_run(worker, "breaker_report", 6, rep);
		ck_assert_str_eq(bk_report_rows(res), "http.x:closed>open:1:1000");
		PQclear(res);
	}
	ck_assert_str_eq(harness_value(admin, "SELECT dispatch.breaker_reset('http.x')"), "t");
	ck_assert_str_eq(harness_value(admin, "SELECT string_agg(kind || ':' || state, ',') FROM dispatch.breaker_status"),
	                 "http.x:closed");
	PQfinish(worker);
	PQfinish(admin);
	PQfinish(owner);
}
END_TEST

Suite *
breakers_suite(void)
{
	Suite *s = suite_create("breakers");
	TCase *tc = tcase_create("database");

	tcase_add_checked_fixture(tc, bk_setup, bk_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_breaker_opens_at_the_threshold_within_the_window);
	tcase_add_test(tc, test_failures_older_than_the_window_slide_out);
	tcase_add_test(tc, test_a_success_resets_the_count);
	tcase_add_test(tc, test_an_open_breaker_ignores_reports);
	tcase_add_test(tc, test_two_daemons_race_for_the_probe_and_one_wins);
	tcase_add_test(tc, test_concurrent_reports_add_up_and_make_one_transition);
	tcase_add_test(tc, test_a_failed_probe_doubles_the_opening_up_to_open_max);
	tcase_add_test(tc, test_a_successful_probe_closes_the_breaker);
	tcase_add_test(tc, test_a_void_probe_frees_it_for_any_daemon);
	tcase_add_test(tc, test_a_probe_verdict_from_another_daemon_does_not_count);
	tcase_add_test(tc, test_sync_reports_state_mine_ms_left_and_recorded);
	tcase_add_test(tc, test_config_upsert_writes_only_what_changed);
	tcase_add_test(tc, test_only_dispatch_admin_may_reset_or_trip);
	tcase_add_test(tc, test_cli_breaker_open_and_reset);
	tcase_add_test(tc, test_cli_breaker_usage_errors);
	tcase_add_test(tc, test_status_shows_breakers_not_closed_or_counting);
	tcase_add_test(tc, test_upgrade_from_0010_keeps_rows_and_adds_breakers);
	suite_add_tcase(s, tc);
	return s;
}
