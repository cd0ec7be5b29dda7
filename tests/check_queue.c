/*
 * DB tier: the daemon's statements (sql/claim.sql, complete_and_claim.sql,
 * outcomes.sql, renew.sql, reap.sql, next_due.sql) run as the daemon runs
 * them: their parameters built by queue.c, sent through work.c on a
 * connection made as HARNESS_WORKER, their rows read back by queue.c.
 * Each case asserts the rows the statement leaves and the fate it reports
 * for each claim: written ('w'), locked by another session ('l') or lost
 * ('x').
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "harness.h"
#include "queue.h"
#include "work_test.h"

#define QT_INSTANCE "qt-host#101"

/* Claims up to limit tasks of queue (skipping skip_kind when not NULL)
 * with token, carrying the successes done[0..ndone); fills out and fates
 * and returns how many were claimed. */
static int
qt_claim(const char *queue, int limit, const char *skip_kind, long long token, const struct outcome *done,
         size_t ndone, struct task *out, char *fates)
{
	struct queue_claimer who = {QT_INSTANCE, 30000};
	const char *names[1] = {skip_kind};
	struct queue_kinds skip = {names, skip_kind != NULL ? 1 : 0}, none = {NULL, 0};
	struct wt_call call = {0};
	PGresult *res;
	int n;

	queue_claim_send(&who, queue, limit, &skip, &none, NULL, token, done, ndone, wt_done, &call);
	res = wt_wait(&call);
	n = queue_claim_result(res, token, limit, out, done, ndone, fates);
	PQclear(res);
	return n;
}

static void
qt_free_tasks(struct task *t, int n)
{
	for (int i = 0; i < n; i++)
		task_clear(&t[i]);
}

/* Claims every due task of queue 'default' with token; returns how many. */
static int
qt_claim_all(long long token)
{
	struct task t[64];
	int n = qt_claim("default", 64, NULL, token, NULL, 0, t, NULL);

	qt_free_tasks(t, n);
	return n;
}

/* Writes outcomes o[0..n) with sql/outcomes.sql; fills fates. */
static void
qt_outcomes(const struct outcome *o, size_t n, char *fates)
{
	struct wt_call call = {0};
	PGresult *res;

	queue_outcomes_send(o, n, wt_done, &call);
	res = wt_wait(&call);
	queue_outcomes_result(res, o, n, fates);
	PQclear(res);
}

/* An outcome with borrowed strings (queue.c only reads them). */
static struct outcome
qt_outcome(long long id, long long token, enum outcome_type type, const char *text, int64_t delay_ms)
{
	struct outcome o = {.id = id, .token = token, .attempt = 1, .type = type, .delay_ms = delay_ms};

	if (type == OUTCOME_COMPLETE)
		o.result = (char *) text;
	else
		o.error = (char *) text;
	return o;
}

/* Columns that tell a row's state, one string: status:attempts:token. */
static const char *
qt_state(long long id)
{
	return wt_value("SELECT concat_ws(':', status, attempts, coalesce(claim_token::text, '-'))"
	                "  FROM dispatch.tasks WHERE id = %lld",
	                id);
}

static long long
qt_insert(const char *columns, const char *values)
{
	return wt_int("INSERT INTO dispatch.tasks (%s) VALUES (%s) RETURNING id", columns, values);
}

/* Holds id locked FOR UPDATE on a connection of its own; returns it (in
 * an open transaction: ROLLBACK and PQfinish to let go). */
static PGconn *
qt_lock_row(long long id)
{
	PGconn *locker = harness_connect(wt_db);
	char sql[128];

	snprintf(sql, sizeof sql, "BEGIN; SELECT 1 FROM dispatch.tasks WHERE id = %lld FOR UPDATE", id);
	harness_exec(locker, sql);
	return locker;
}

static void
qt_unlock(PGconn *locker)
{
	harness_exec(locker, "ROLLBACK");
	PQfinish(locker);
}

/* ---- claim ---- */

START_TEST(test_claim_marks_due_rows_in_progress_with_attempt_lock_lease_and_token)
{
	struct task t[8];
	long long a, b, far, skipped, other;
	int n;

	a = qt_insert("kind, payload, max_attempts", "'k', '{\"n\": 1}', 3");
	b = qt_insert("kind, run_at", "'k', '-infinity'");
	far = qt_insert("kind, run_at", "'k', 'infinity'");
	skipped = qt_insert("kind", "'busy'");
	other = qt_insert("kind, queue", "'k', 'other'");
	n = qt_claim("default", 8, "busy", 7001, NULL, 0, t, NULL);
	ck_assert_int_eq(n, 2);
	/* RETURNING does not keep the claim's order (which rows a short limit
	 * takes is test_claim_takes_at_most_limit_rows_highest_priority_first): look the
	 * two up by id. */
	if (t[0].id != b) {
		struct task tmp = t[0];

		t[0] = t[1];
		t[1] = tmp;
	}
	ck_assert_int_eq(t[0].id, b);
	ck_assert_int_eq(t[1].id, a);
	ck_assert_str_eq(t[1].queue, "default");
	ck_assert_str_eq(t[1].kind, "k");
	ck_assert_str_eq(t[1].payload, "{\"n\": 1}");
	ck_assert_int_eq(t[1].attempt, 1);
	ck_assert_int_eq(t[1].max_attempts, 3);
	ck_assert_int_eq(t[0].max_attempts, 0);
	ck_assert_int_eq(t[0].token, 7001);
	ck_assert_int_eq(t[1].token, 7001);
	ck_assert_str_eq(wt_value("SELECT string_agg(concat_ws(':', status, attempts, locked_by, claim_token,"
	                          "         lease_expires_at BETWEEN now() + interval '29 s'"
	                          "                              AND now() + interval '31 s',"
	                          "         started_at IS NOT NULL), ',' ORDER BY id)"
	                          "  FROM dispatch.tasks WHERE id IN (%lld, %lld)",
	                          a, b),
	                 "in_progress:1:" QT_INSTANCE ":7001:t:t,in_progress:1:" QT_INSTANCE ":7001:t:t");
	/* Not due, a skipped kind, another queue: untouched. */
	ck_assert_str_eq(wt_value("SELECT string_agg(concat_ws(':', status, attempts, locked_by, claim_token,"
	                          "         lease_expires_at, started_at), ',' ORDER BY id)"
	                          "  FROM dispatch.tasks WHERE id IN (%lld, %lld, %lld)",
	                          far, skipped, other),
	                 "pending:0,pending:0,pending:0");
	qt_free_tasks(t, n);
	/* A second claim finds nothing due. */
	ck_assert_int_eq(qt_claim("default", 8, "busy", 7002, NULL, 0, t, NULL), 0);
}
END_TEST

START_TEST(test_claim_takes_at_most_limit_rows_highest_priority_first)
{
	struct task t[8];
	long long low, high, mid;
	int n;

	low = qt_insert("kind, priority", "'k', 0");
	high = qt_insert("kind, priority", "'k', 10");
	mid = qt_insert("kind, priority", "'k', 5");
	qt_insert("kind, priority", "'k', -3");
	n = qt_claim("default", 2, NULL, 1, NULL, 0, t, NULL);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(t[0].id + t[1].id, high + mid);
	ck_assert_int_eq(wt_int("SELECT count(*) FROM dispatch.tasks WHERE status = 'in_progress'"), 2);
	ck_assert_str_eq(qt_state(low), "pending:0:-");
	qt_free_tasks(t, n);
}
END_TEST

/* Kind names travel inside array literals: quotes, backslashes, commas,
 * braces and the word NULL must arrive as the names they are. */
START_TEST(test_claim_skips_kinds_whose_names_need_quoting)
{
	static const char *const odd[] = {"we\"ird", "back\\slash", "a,b", "{x}", "NULL", " spaced "};
	struct task t[4];
	int n;

	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		char *lit = PQescapeLiteral(wt_owner, odd[i], strlen(odd[i]));

		ck_assert_ptr_nonnull(lit);
		wt_exec("DELETE FROM dispatch.tasks");
		qt_insert("kind", lit);
		qt_insert("kind", "'plain'");
		n = qt_claim("default", 4, odd[i], 2000 + (long long) i, NULL, 0, t, NULL);
		ck_assert_msg(n == 1 && strcmp(t[0].kind, "plain") == 0, "skipping %s claimed %d", odd[i], n);
		qt_free_tasks(t, n);
		ck_assert_int_eq(wt_int("SELECT count(*) FROM dispatch.tasks WHERE status = 'pending' AND kind = %s", lit),
		                 1);
		/* Not skipped, the same name is claimed, and read back as it is. */
		n = qt_claim("default", 4, "plain", 2100 + (long long) i, NULL, 0, t, NULL);
		ck_assert_int_eq(n, 1);
		ck_assert_str_eq(t[0].kind, odd[i]);
		qt_free_tasks(t, n);
		PQfreemem(lit);
	}
}
END_TEST

/* The claim statement with the parameters queue.c builds, run on conn
 * inside whatever transaction it has open. */
static PGresult *
qt_claim_direct(PGconn *conn, int limit, long long token)
{
	char limit_s[16], token_s[32];
	const char *params[8] = {"default", limit_s, QT_INSTANCE, "30000", "{}", token_s, "{}", "{}"};
	PGresult *res;

	snprintf(limit_s, sizeof limit_s, "%d", limit);
	snprintf(token_s, sizeof token_s, "%lld", token);
	res = PQexecParams(conn, embed_sql("claim"), 8, NULL, params, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "claim failed: %s", PQerrorMessage(conn));
	return res;
}

START_TEST(test_two_sessions_claiming_at_once_get_disjoint_batches)
{
	PGconn *one = harness_connect(harness_as(wt_db, HARNESS_WORKER));
	PGconn *two = harness_connect(harness_as(wt_db, HARNESS_WORKER));
	PGresult *r1, *r2;

	wt_exec("INSERT INTO dispatch.tasks (kind) SELECT 'k' FROM generate_series(1, 10)");
	/* Both claims' transactions are open at once: the second must skip
	 * what the first holds, not wait for it nor take it too. */
	harness_exec(one, "BEGIN");
	harness_exec(two, "BEGIN");
	r1 = qt_claim_direct(one, 4, 11);
	r2 = qt_claim_direct(two, 4, 22);
	ck_assert_int_eq(PQntuples(r1), 4);
	ck_assert_int_eq(PQntuples(r2), 4);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			ck_assert_str_ne(PQgetvalue(r1, i, 1), PQgetvalue(r2, j, 1));
	harness_exec(one, "COMMIT");
	harness_exec(two, "COMMIT");
	ck_assert_str_eq(wt_value("SELECT string_agg(concat_ws(':', claim_token, count), ',' ORDER BY claim_token)"
	                          "  FROM (SELECT claim_token, count(*) FROM dispatch.tasks"
	                          "         WHERE status = 'in_progress' AND attempts = 1"
	                          "         GROUP BY claim_token) AS c"),
	                 "11:4,22:4");
	ck_assert_int_eq(wt_int("SELECT count(*) FROM dispatch.tasks WHERE status = 'pending' AND attempts = 0"), 2);
	PQclear(r1);
	PQclear(r2);
	PQfinish(one);
	PQfinish(two);
}
END_TEST

/* ---- the fence ---- */

START_TEST(test_outcome_with_a_wrong_token_changes_nothing_and_reports_the_claim_lost)
{
	long long id = qt_insert("kind", "'k'");
	struct outcome o[4];
	char fates[4];

	ck_assert_int_eq(qt_claim_all(500), 1);
	/* Every type, each with a token that is not the claim's. */
	o[0] = qt_outcome(id, 499, OUTCOME_COMPLETE, "{\"x\": 1}", 0);
	o[1] = qt_outcome(id, 501, OUTCOME_RETRY, "boom", 60000);
	o[2] = qt_outcome(id, 0, OUTCOME_FAIL, "boom", 0);
	o[3] = qt_outcome(id, -500, OUTCOME_RELEASE, NULL, 0);
	qt_outcomes(o, 4, fates);
	ck_assert_int_eq(memcmp(fates, "xxxx", 4), 0);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, attempts, claim_token, locked_by, result, last_error,"
	                          "                 finished_at, lease_expires_at IS NOT NULL)"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          id),
	                 "in_progress:1:500:" QT_INSTANCE ":t");
	/* The claim's own token writes. */
	o[0].token = 500;
	qt_outcomes(o, 1, fates);
	ck_assert_int_eq(fates[0], QUEUE_WRITTEN);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, attempts, result->>'x', finished_at IS NOT NULL,"
	                          "                 lease_expires_at IS NULL)"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          id),
	                 "complete:1:1:t:t");
	/* A second write of the same claim finds it no longer in progress. */
	qt_outcomes(o, 1, fates);
	ck_assert_int_eq(fates[0], QUEUE_LOST);
}
END_TEST

/*
 * An operator resets a running task (status pending, attempts 0) and the
 * same instance claims it again: the old attempt's outcome (same id, same
 * locked_by, same attempt number) must not touch the new claim.
 */
START_TEST(test_outcome_of_an_attempt_reset_and_claimed_again_changes_nothing)
{
	long long id = qt_insert("kind", "'k'");
	struct outcome o;
	char fate;

	ck_assert_int_eq(qt_claim_all(600), 1);
	wt_exec("UPDATE dispatch.tasks SET status = 'pending', attempts = 0 WHERE id = %lld", id);
	/* Reset but not yet claimed again: the old claim is gone. */
	o = qt_outcome(id, 600, OUTCOME_FAIL, "old attempt", 0);
	qt_outcomes(&o, 1, &fate);
	ck_assert_int_eq(fate, QUEUE_LOST);
	ck_assert_str_eq(qt_state(id), "pending:0:600");
	ck_assert_int_eq(qt_claim_all(601), 1);
	ck_assert_str_eq(qt_state(id), "in_progress:1:601");
	qt_outcomes(&o, 1, &fate);
	ck_assert_int_eq(fate, QUEUE_LOST);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, attempts, claim_token, locked_by, last_error)"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          id),
	                 "in_progress:1:601:" QT_INSTANCE);
}
END_TEST

/* Another instance reaped the task and claimed it (another locked_by,
 * another token): this instance's outcome changes nothing. */
START_TEST(test_outcome_after_another_instance_claimed_the_task_changes_nothing)
{
	long long id = qt_insert("kind", "'k'");
	struct outcome o;
	char fate;

	ck_assert_int_eq(qt_claim_all(700), 1);
	wt_exec("UPDATE dispatch.tasks SET locked_by = 'other#2', claim_token = 9999, attempts = 2"
	        " WHERE id = %lld",
	        id);
	o = qt_outcome(id, 700, OUTCOME_COMPLETE, "{}", 0);
	qt_outcomes(&o, 1, &fate);
	ck_assert_int_eq(fate, QUEUE_LOST);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, attempts, claim_token, locked_by, result)"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          id),
	                 "in_progress:2:9999:other#2");
}
END_TEST

START_TEST(test_outcome_on_a_row_locked_elsewhere_is_reported_locked_then_written)
{
	long long held = qt_insert("kind", "'k'"), free_id = qt_insert("kind", "'k'");
	struct outcome o[2];
	char fates[2];
	PGconn *locker;
	long long start;

	ck_assert_int_eq(qt_claim_all(800), 2);
	locker = qt_lock_row(held);
	o[0] = qt_outcome(held, 800, OUTCOME_RETRY, "later", 1000);
	o[1] = qt_outcome(free_id, 800, OUTCOME_RETRY, "later", 1000);
	start = harness_now_ms();
	qt_outcomes(o, 2, fates);
	/* Skipped, not waited for. */
	ck_assert_int_lt(harness_now_ms() - start, 3000);
	ck_assert_int_eq(fates[0], QUEUE_LOCKED);
	ck_assert_int_eq(fates[1], QUEUE_WRITTEN);
	ck_assert_str_eq(qt_state(held), "in_progress:1:800");
	ck_assert_str_eq(wt_value("SELECT coalesce(last_error, '-') FROM dispatch.tasks WHERE id = %lld", held), "-");
	ck_assert_str_eq(qt_state(free_id), "pending:1:800");
	qt_unlock(locker);
	qt_outcomes(o, 1, fates);
	ck_assert_int_eq(fates[0], QUEUE_WRITTEN);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, last_error) FROM dispatch.tasks WHERE id = %lld", held),
	                 "pending:later");
}
END_TEST

/* ---- complete_and_claim ---- */

START_TEST(test_complete_and_claim_tags_new_claims_and_the_successes_written)
{
	long long ok, locked, reset, fresh[2];
	struct outcome done[3];
	struct task t[8];
	char fates[3];
	PGconn *locker;
	int n;

	ok = qt_insert("kind", "'k'");
	locked = qt_insert("kind", "'k'");
	reset = qt_insert("kind", "'k'");
	ck_assert_int_eq(qt_claim_all(900), 3);
	fresh[0] = qt_insert("kind", "'k'");
	fresh[1] = qt_insert("kind", "'k'");
	/* An operator resets one: it is pending again, so the same statement
	 * claims it anew while its old success is lost. */
	wt_exec("UPDATE dispatch.tasks SET status = 'pending', attempts = 0 WHERE id = %lld", reset);
	done[0] = qt_outcome(ok, 900, OUTCOME_COMPLETE, "{\"q\": \"a \\\"quoted\\\" \\\\ word\"}", 0);
	done[1] = qt_outcome(reset, 900, OUTCOME_COMPLETE, NULL, 0);
	memset(fates, 0, sizeof fates);
	n = qt_claim("default", 8, NULL, 901, done, 2, t, fates);
	/* The claim says only what it wrote: a success it did not write (here
	 * a lost claim) is unsure, for outcomes.sql to tell apart. */
	ck_assert_int_eq(fates[0], QUEUE_WRITTEN);
	ck_assert_int_eq(fates[1], QUEUE_UNSURE);
	ck_assert_int_eq(n, 3);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(t[i].token, 901);
		ck_assert_int_eq(t[i].attempt, 1);
		ck_assert(t[i].id == reset || t[i].id == fresh[0] || t[i].id == fresh[1]);
	}
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, result->>'q', finished_at IS NOT NULL,"
	                          "                 lease_expires_at IS NULL)"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          ok),
	                 "complete:a \"quoted\" \\ word:t:t");
	ck_assert_str_eq(qt_state(reset), "in_progress:1:901");
	ck_assert_str_eq(qt_state(fresh[0]), "in_progress:1:901");
	qt_free_tasks(t, n);
	/* A carried success whose row another session holds: the statement
	 * gives up after the session's lock_timeout (sql/work_session.sql),
	 * whole, so nothing is written and nothing claimed, rather than wait. */
	wt_exec("UPDATE dispatch.tasks SET status = 'pending' WHERE id IN (%lld, %lld, %lld)", reset, fresh[0], fresh[1]);
	locker = qt_lock_row(locked);
	done[2] = qt_outcome(locked, 900, OUTCOME_COMPLETE, "{\"n\": 2}", 0);
	{
		struct queue_claimer who = {QT_INSTANCE, 30000};
		struct queue_kinds none = {NULL, 0};
		struct wt_call call = {0};
		long long start = harness_now_ms();

		queue_claim_send(&who, "default", 8, &none, &none, NULL, 902, &done[2], 1, wt_done, &call);
		wt_pump_until(&call.done, 10000);
		ck_assert_ptr_null(call.res);
		ck_assert_str_eq(call.err.sqlstate, "55P03");
		ck_assert_int_lt(harness_now_ms() - start, 3000);
	}
	ck_assert_str_eq(qt_state(locked), "in_progress:1:900");
	ck_assert_int_eq(wt_int("SELECT count(*) FROM dispatch.tasks WHERE claim_token = 902"), 0);
	qt_unlock(locker);
	/* Once the lock is gone the held success is written. */
	n = qt_claim("default", 8, NULL, 903, &done[2], 1, t, fates);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(fates[0], QUEUE_WRITTEN);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, result->>'n') FROM dispatch.tasks WHERE id = %lld",
	                          locked),
	                 "complete:2");
	qt_free_tasks(t, n);
}
END_TEST

START_TEST(test_complete_and_claim_rows_carry_the_claimed_columns)
{
	long long running = qt_insert("kind", "'k'"), next;
	struct outcome done;
	struct task t[4];
	char fate = 0;
	int n;

	ck_assert_int_eq(qt_claim_all(1000), 1);
	next = qt_insert("queue, kind, payload, max_attempts", "'default', 'mail', '[1, \"two\"]', 7");
	done = qt_outcome(running, 1000, OUTCOME_COMPLETE, "\"done\"", 0);
	n = qt_claim("default", 4, NULL, 1001, &done, 1, t, &fate);
	ck_assert_int_eq(fate, QUEUE_WRITTEN);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(t[0].id, next);
	ck_assert_str_eq(t[0].queue, "default");
	ck_assert_str_eq(t[0].kind, "mail");
	ck_assert_str_eq(t[0].payload, "[1, \"two\"]");
	ck_assert_int_eq(t[0].attempt, 1);
	ck_assert_int_eq(t[0].max_attempts, 7);
	ck_assert_int_eq(t[0].token, 1001);
	ck_assert_str_eq(wt_value("SELECT result #>> '{}' FROM dispatch.tasks WHERE id = %lld", running), "done");
	qt_free_tasks(t, n);
}
END_TEST

/* ---- renew ---- */

START_TEST(test_renew_extends_held_leases_and_reports_only_lost_claims)
{
	long long ids[4], tokens[4] = {1100, 1100, 1100, 1100};
	struct wt_call call = {0};
	bool lost[4];
	const char *cancelled[4];
	PGconn *locker;
	PGresult *res;

	for (int i = 0; i < 4; i++)
		ids[i] = qt_insert("kind", "'k'");
	ck_assert_int_eq(qt_claim_all(1100), 4);
	wt_exec("UPDATE dispatch.tasks SET lease_expires_at = now() + interval '1 s'");
	/* 1: taken by another claim; 2: locked by another session (still
	 * ours); 3: cancelled by an operator (migrations/0008). */
	wt_exec("UPDATE dispatch.tasks SET claim_token = 4242 WHERE id = %lld", ids[1]);
	wt_exec("SELECT dispatch.cancel(%lld, 'no longer wanted')", ids[3]);
	locker = qt_lock_row(ids[2]);
	queue_renew_send(ids, tokens, 4, 600000, wt_done, &call);
	res = wt_wait(&call);
	ck_assert_int_eq(PQntuples(res), 2);
	queue_renew_result(res, ids, tokens, 4, lost, cancelled);
	ck_assert(!lost[0]);
	ck_assert(lost[1]);
	ck_assert(!lost[2]);
	ck_assert(lost[3]);
	/* The reaped one is a lost lease; the cancelled one says why. */
	ck_assert_ptr_null(cancelled[1]);
	ck_assert_str_eq(cancelled[3], "no longer wanted");
	PQclear(res);
	ck_assert_str_eq(wt_value("SELECT string_agg(coalesce(lease_expires_at > now() + interval '5 min', false)::text,"
	                          "                  ',' ORDER BY id)"
	                          "  FROM dispatch.tasks"),
	                 "true,false,false,false");
	qt_unlock(locker);
}
END_TEST

/* ---- reap ---- */

START_TEST(test_reap_takes_expired_and_leaseless_rows_but_never_held_ones)
{
	const char *kind_names[1] = {"limited"};
	struct queue_kinds kinds = {kind_names, 1};
	int limits[1] = {2};
	long long expired, held, leaseless, live, used_up, kind_used_up, row_limit;
	long long held_ids[2];
	char want[512];
	struct wt_call call = {0};
	PGresult *res;

	const char *cols = "kind, status, attempts, locked_by, claim_token, lease_expires_at";

	expired = qt_insert(cols, "'k', 'in_progress', 1, 'dead#1', 5, now() - interval '1 s'");
	held = qt_insert(cols, "'k', 'in_progress', 1, 'me#1', 6, now() - interval '1 s'");
	leaseless = qt_insert(cols, "'k', 'in_progress', 1, 'dead#1', 7, NULL");
	live = qt_insert(cols, "'k', 'in_progress', 1, 'alive#1', 8, now() + interval '1 min'");
	used_up = qt_insert(cols, "'k', 'in_progress', 3, 'dead#1', 9, now() - interval '1 s'");
	kind_used_up = qt_insert(cols, "'limited', 'in_progress', 2, 'dead#1', 10, now() - interval '1 s'");
	row_limit = qt_insert("kind, status, attempts, locked_by, claim_token, lease_expires_at, max_attempts",
	                      "'k', 'in_progress', 1, 'dead#1', 11, now() - interval '1 s', 1");
	held_ids[0] = held;
	held_ids[1] = 999999;
	queue_reap_send(&kinds, limits, 3, held_ids, 2, wt_done, &call);
	res = wt_wait(&call);
	ck_assert_int_eq(PQntuples(res), 5);
	ck_assert_int_eq(queue_reap_result(res), 2);
	PQclear(res);
	snprintf(want, sizeof want,
	         "%lld:pending:1:t:f,%lld:in_progress:1:f:f,%lld:pending:1:t:f,%lld:in_progress:1:f:f,"
	         "%lld:failed:3:t:t,%lld:failed:2:t:t,%lld:failed:1:t:t",
	         expired, held, leaseless, live, used_up, kind_used_up, row_limit);
	ck_assert_str_eq(wt_value("SELECT string_agg(concat_ws(':', id, status, attempts,"
	                          "                            lease_expires_at IS NULL, finished_at IS NOT NULL),"
	                          "                  ',' ORDER BY id) FROM dispatch.tasks"),
	                 want);
	ck_assert_str_eq(wt_value("SELECT last_error FROM dispatch.tasks WHERE id = %lld", expired),
	                 "lease expired: dead#1 stopped renewing it (crashed, killed or cut off)");
	ck_assert_int_eq(wt_int("SELECT count(*) FROM dispatch.tasks WHERE id = %lld AND run_at <= now()", expired), 1);
	/* The held row stays as it was, whatever its lease says. */
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, locked_by, claim_token, coalesce(last_error, '-'))"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          held),
	                 "in_progress:me#1:6:-");
}
END_TEST

START_TEST(test_reap_with_nothing_held_takes_every_expired_row)
{
	long long id = qt_insert("kind, status, attempts, lease_expires_at",
	                         "'k', 'in_progress', 1, now() - interval '1 ms'");
	struct queue_kinds none = {NULL, 0};
	struct wt_call call = {0};
	PGresult *res;

	queue_reap_send(&none, NULL, 5, NULL, 0, wt_done, &call);
	res = wt_wait(&call);
	ck_assert_int_eq(queue_reap_result(res), 1);
	PQclear(res);
	ck_assert_str_eq(qt_state(id), "pending:1:-");
	ck_assert_str_eq(wt_value("SELECT last_error FROM dispatch.tasks WHERE id = %lld", id),
	                 "lease expired: its daemon stopped renewing it (crashed, killed or cut off)");
}
END_TEST

/* ---- outcomes.sql, per type ---- */

START_TEST(test_retry_outcome_sets_pending_run_at_later_and_last_error)
{
	long long id = qt_insert("kind", "'k'");
	struct outcome o;
	char fate;

	ck_assert_int_eq(qt_claim_all(1200), 1);
	o = qt_outcome(id, 1200, OUTCOME_RETRY, "exit 3: \"disk\" \\ full", 90000);
	qt_outcomes(&o, 1, &fate);
	ck_assert_int_eq(fate, QUEUE_WRITTEN);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, attempts, last_error,"
	                          "   run_at BETWEEN now() + interval '89 s' AND now() + interval '91 s',"
	                          "   lease_expires_at IS NULL, finished_at IS NULL, result IS NULL)"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          id),
	                 "pending:1:exit 3: \"disk\" \\ full:t:t:t:t");
	/* Not due before its delay. */
	ck_assert_int_eq(qt_claim_all(1201), 0);
}
END_TEST

START_TEST(test_fail_outcome_sets_failed_finished_at_and_last_error)
{
	long long id = qt_insert("kind, run_at", "'k', now() - interval '1 h'");
	struct outcome o;
	char fate;

	ck_assert_int_eq(qt_claim_all(1300), 1);
	o = qt_outcome(id, 1300, OUTCOME_FAIL, "gave up", 0);
	qt_outcomes(&o, 1, &fate);
	ck_assert_int_eq(fate, QUEUE_WRITTEN);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, attempts, last_error, finished_at IS NOT NULL,"
	                          "   lease_expires_at IS NULL, run_at < now() - interval '59 min')"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          id),
	                 "failed:1:gave up:t:t:t");
}
END_TEST

START_TEST(test_release_without_delay_gives_the_attempt_back_and_keeps_its_place)
{
	long long id = qt_insert("kind, run_at, last_error", "'k', '2001-02-03 04:05:06+00', 'earlier error'");
	struct outcome o;
	char fate;

	ck_assert_int_eq(qt_claim_all(1400), 1);
	o = qt_outcome(id, 1400, OUTCOME_RELEASE, NULL, 0);
	qt_outcomes(&o, 1, &fate);
	ck_assert_int_eq(fate, QUEUE_WRITTEN);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, attempts, last_error,"
	                          "   run_at = '2001-02-03 04:05:06+00', lease_expires_at IS NULL, finished_at IS NULL)"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          id),
	                 "pending:0:earlier error:t:t:t");
	/* Due as it was: claimed again at once, as attempt 1. */
	ck_assert_int_eq(qt_claim_all(1401), 1);
	ck_assert_str_eq(qt_state(id), "in_progress:1:1401");
}
END_TEST

START_TEST(test_release_with_delay_pushes_run_at_and_replaces_last_error)
{
	long long id = qt_insert("kind, last_error", "'k', 'earlier error'");
	struct outcome o;
	char fate;

	ck_assert_int_eq(qt_claim_all(1500), 1);
	o = qt_outcome(id, 1500, OUTCOME_RELEASE, "no connection for the SQL handler", 30000);
	qt_outcomes(&o, 1, &fate);
	ck_assert_int_eq(fate, QUEUE_WRITTEN);
	ck_assert_str_eq(wt_value("SELECT concat_ws(':', status, attempts, last_error,"
	                          "   run_at BETWEEN now() + interval '29 s' AND now() + interval '31 s')"
	                          "  FROM dispatch.tasks WHERE id = %lld",
	                          id),
	                 "pending:0:no connection for the SQL handler:t");
}
END_TEST

START_TEST(test_every_outcome_type_in_one_statement_lands_on_its_own_row)
{
	long long ids[5];
	struct outcome o[5];
	char fates[5];

	for (int i = 0; i < 5; i++)
		ids[i] = qt_insert("kind", "'k'");
	ck_assert_int_eq(qt_claim_all(1600), 5);
	o[0] = qt_outcome(ids[0], 1600, OUTCOME_COMPLETE, "{\"a\": [1, null, \"x,y}\"]}", 0);
	o[1] = qt_outcome(ids[1], 1600, OUTCOME_COMPLETE, NULL, 0);
	o[2] = qt_outcome(ids[2], 1600, OUTCOME_RETRY, "NULL", 60000);
	o[3] = qt_outcome(ids[3], 1600, OUTCOME_FAIL, "{comma, brace}", 0);
	o[4] = qt_outcome(ids[4], 1600, OUTCOME_RELEASE, "", 0);
	qt_outcomes(o, 5, fates);
	ck_assert_int_eq(memcmp(fates, "wwwww", 5), 0);
	ck_assert_str_eq(wt_value("SELECT string_agg(concat_ws('|', status, attempts, coalesce(result::text, '-'),"
	                          "                            coalesce(last_error, '-')), ',' ORDER BY id)"
	                          "  FROM dispatch.tasks"),
	                 "complete|1|{\"a\": [1, null, \"x,y}\"]}|-,complete|1|-|-,pending|1|-|NULL,"
	                 "failed|1|-|{comma, brace},pending|0|-|");
}
END_TEST

/* ---- next_due ---- */

static int64_t
qt_next_due(const char *skip_kind)
{
	const char *names[1] = {skip_kind};
	struct queue_kinds skip = {names, skip_kind != NULL ? 1 : 0};
	struct wt_call call = {0};
	PGresult *res;
	int64_t ms;

	queue_next_due_send("default", &skip, wt_done, &call);
	res = wt_wait(&call);
	ms = queue_next_due_result(res);
	PQclear(res);
	return ms;
}

START_TEST(test_next_due_ignores_infinity_and_answers_zero_for_minus_infinity)
{
	ck_assert(qt_next_due(NULL) == INT64_MAX);
	qt_insert("kind, run_at", "'k', 'infinity'");
	ck_assert(qt_next_due(NULL) == INT64_MAX);
	qt_insert("kind, run_at, priority", "'k', now() + interval '10 min', 5");
	ck_assert_int_gt(qt_next_due(NULL), 590000);
	ck_assert_int_le(qt_next_due(NULL), 600000);
	qt_insert("kind, run_at, priority", "'later', now() + interval '1 min', -2");
	/* Found below a priority whose only task is infinite. */
	ck_assert_int_le(qt_next_due(NULL), 60000);
	ck_assert_int_gt(qt_next_due(NULL), 50000);
	/* A skipped kind sets no timer. */
	ck_assert_int_gt(qt_next_due("later"), 590000);
	qt_insert("kind, run_at, queue", "'k', '-infinity', 'other'");
	ck_assert_int_gt(qt_next_due(NULL), 50000);
	qt_insert("kind, run_at", "'k', '-infinity'");
	ck_assert_int_eq(qt_next_due(NULL), 0);
	/* Only pending rows count. */
	wt_exec("UPDATE dispatch.tasks SET status = 'failed' WHERE run_at = '-infinity'");
	ck_assert_int_gt(qt_next_due(NULL), 0);
}
END_TEST

/* Per-kind limits are kept by the claim itself: a limited kind gets no
 * more rows than its room, the rest of the batch still fills, and what
 * was left stays pending and unlocked. */
START_TEST(test_claim_gives_a_limited_kind_no_more_than_its_room)
{
	struct queue_claimer who = {QT_INSTANCE, 30000};
	const char *limited_names[1] = {"few"};
	int rooms[1] = {1};
	struct queue_kinds skip = {NULL, 0}, limited = {limited_names, 1};
	struct task t[8];
	struct wt_call call = {0};
	PGresult *res;
	int n;

	for (int i = 0; i < 3; i++)
		qt_insert("kind", "'few'");
	qt_insert("kind", "'many'");
	qt_insert("kind", "'many'");
	queue_claim_send(&who, "default", 8, &skip, &limited, rooms, 8001, NULL, 0, wt_done, &call);
	res = wt_wait(&call);
	n = queue_claim_result(res, 8001, 8, t, NULL, 0, NULL);
	PQclear(res);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(wt_value("SELECT string_agg(concat_ws(':', kind, status, count), ',' ORDER BY kind, status)"
	                          "  FROM (SELECT kind, status, count(*) FROM dispatch.tasks GROUP BY 1, 2) c"),
	                 "few:pending:2,few:in_progress:1,many:in_progress:2");
	/* The two left behind are not held: another claim takes them. */
	rooms[0] = 2;
	call = (struct wt_call){0};
	queue_claim_send(&who, "default", 8, &skip, &limited, rooms, 8002, NULL, 0, wt_done, &call);
	res = wt_wait(&call);
	qt_free_tasks(t, n);
	n = queue_claim_result(res, 8002, 8, t, NULL, 0, NULL);
	PQclear(res);
	ck_assert_int_eq(n, 2);
	qt_free_tasks(t, n);
}
END_TEST

Suite *
queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *claim = tcase_create("claim");
	TCase *fence = tcase_create("fence");
	TCase *lease = tcase_create("lease");
	TCase *outcomes = tcase_create("outcomes");

	tcase_add_checked_fixture(claim, wt_setup, wt_teardown);
	tcase_set_timeout(claim, 60);
	tcase_add_test(claim, test_claim_marks_due_rows_in_progress_with_attempt_lock_lease_and_token);
	tcase_add_test(claim, test_claim_takes_at_most_limit_rows_highest_priority_first);
	tcase_add_test(claim, test_claim_skips_kinds_whose_names_need_quoting);
	tcase_add_test(claim, test_claim_gives_a_limited_kind_no_more_than_its_room);
	tcase_add_test(claim, test_two_sessions_claiming_at_once_get_disjoint_batches);
	tcase_add_test(claim, test_complete_and_claim_tags_new_claims_and_the_successes_written);
	tcase_add_test(claim, test_complete_and_claim_rows_carry_the_claimed_columns);
	tcase_add_test(claim, test_next_due_ignores_infinity_and_answers_zero_for_minus_infinity);
	suite_add_tcase(s, claim);

	tcase_add_checked_fixture(fence, wt_setup, wt_teardown);
	tcase_set_timeout(fence, 60);
	tcase_add_test(fence, test_outcome_with_a_wrong_token_changes_nothing_and_reports_the_claim_lost);
	tcase_add_test(fence, test_outcome_of_an_attempt_reset_and_claimed_again_changes_nothing);
	tcase_add_test(fence, test_outcome_after_another_instance_claimed_the_task_changes_nothing);
	tcase_add_test(fence, test_outcome_on_a_row_locked_elsewhere_is_reported_locked_then_written);
	suite_add_tcase(s, fence);

	tcase_add_checked_fixture(lease, wt_setup, wt_teardown);
	tcase_set_timeout(lease, 60);
	tcase_add_test(lease, test_renew_extends_held_leases_and_reports_only_lost_claims);
	tcase_add_test(lease, test_reap_takes_expired_and_leaseless_rows_but_never_held_ones);
	tcase_add_test(lease, test_reap_with_nothing_held_takes_every_expired_row);
	suite_add_tcase(s, lease);

	tcase_add_checked_fixture(outcomes, wt_setup, wt_teardown);
	tcase_set_timeout(outcomes, 60);
	tcase_add_test(outcomes, test_retry_outcome_sets_pending_run_at_later_and_last_error);
	tcase_add_test(outcomes, test_fail_outcome_sets_failed_finished_at_and_last_error);
	tcase_add_test(outcomes, test_release_without_delay_gives_the_attempt_back_and_keeps_its_place);
	tcase_add_test(outcomes, test_release_with_delay_pushes_run_at_and_replaces_last_error);
	tcase_add_test(outcomes, test_every_outcome_type_in_one_statement_lands_on_its_own_row);
	suite_add_tcase(s, outcomes);
	return s;
}
