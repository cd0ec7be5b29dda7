/*
 * DB tier: outbox.c, the one owner of outcomes, driven for real: outcomes
 * added, outbox_flush() or a claim carrying the successes, the work
 * connection pumped as the daemon's loop pumps it (work_test.h), then the
 * rows and what the outbox still holds checked. The refusals, locks and
 * failures are provoked on the server: a result a LATIN1 database cannot
 * store, a row held FOR UPDATE, the table held by LOCK TABLE under a
 * lock_timeout.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "harness.h"
#include "json.h"
#include "mem.h"
#include "outbox.h"
#include "work.h"
#include "work_test.h"

#define OB_TOKEN 31337

/* A JSON result that json_valid() accepts (the daemon would store it) and
 * that a LATIN1 database refuses: the euro sign has no LATIN1 code
 * (SQLSTATE 22P05). */
#define OB_REFUSED "\"price in \\u20ac\""

/* A task in progress under this test's claim. */
static long long
ob_task(void)
{
	return wt_int("INSERT INTO dispatch.tasks (kind, status, attempts, locked_by, claim_token, lease_expires_at)"
	              " VALUES ('k', 'in_progress', 1, 'ob#1', %d, now() + interval '1 min') RETURNING id",
	              OB_TOKEN);
}

/* Hands the outbox an outcome for id (strings copied: the outbox owns
 * them). */
static void
ob_add(long long id, long long token, enum outcome_type type, const char *text, int64_t delay_ms)
{
	struct outcome o = {.id = id, .token = token, .attempt = 1, .type = type, .delay_ms = delay_ms};
	char *copy = text != NULL ? mem_strdup(text) : NULL;

	if (type == OUTCOME_COMPLETE)
		o.result = copy;
	else
		o.error = copy;
	outbox_add(o);
}

/* One write of the outbox's as the loop makes it, run to its end. */
static void
ob_flush_at(int64_t now)
{
	outbox_flush(now);
	wt_drain();
	ck_assert(!outbox_busy());
}

/* Flushes whenever the outbox says it may, until it is empty (at most
 * rounds writes). */
static void
ob_flush_all(int rounds)
{
	for (int i = 0; i < rounds && outbox_count() > 0; i++) {
		int64_t at = outbox_next_try_ms();

		while (clock_now_ms() < at)
			harness_sleep_ms(10);
		ob_flush_at(clock_now_ms());
	}
	ck_assert_msg(outbox_count() == 0, "%zu outcomes still wait after %d writes", outbox_count(), rounds);
}

static const char *
ob_row(long long id)
{
	return wt_value("SELECT concat_ws('|', status, attempts, coalesce(result #>> '{}', result::text, '-'),"
	                "                 coalesce(last_error, '-'))"
	                "  FROM dispatch.tasks WHERE id = %lld",
	                id);
}

/* A row complete with the note that replaced a refused result. */
static bool
ob_noted(const char *row)
{
	static const char want[] = "complete|1|result not stored: 22P05: ";

	return strncmp(row, want, strlen(want)) == 0;
}

/* ---- refusals ---- */

START_TEST(test_refused_result_is_recorded_with_a_note_and_the_rest_of_the_batch_lands)
{
	long long ok = ob_task(), refused = ob_task(), retry = ob_task(), fail = ob_task();
	char row[1200];

	/* The premise: the daemon itself finds nothing wrong with it. */
	ck_assert(json_valid(OB_REFUSED, strlen(OB_REFUSED)));
	ob_add(ok, OB_TOKEN, OUTCOME_COMPLETE, "{\"ok\": 1}", 0);
	ob_add(refused, OB_TOKEN, OUTCOME_COMPLETE, OB_REFUSED, 0);
	ob_add(retry, OB_TOKEN, OUTCOME_RETRY, "try later", 60000);
	ob_add(fail, OB_TOKEN, OUTCOME_FAIL, "no good", 0);
	ob_flush_at(clock_now_ms());
	/* The batch was refused whole: nothing is lost, nothing written. */
	ck_assert_uint_eq(outbox_count(), 4);
	ck_assert_int_eq(wt_int("SELECT count(*) FROM dispatch.tasks WHERE status = 'in_progress'"), 4);
	/* Written again one by one, at once. */
	ck_assert_int_eq(outbox_next_try_ms(), 0);
	ob_flush_all(8);
	ck_assert_str_eq(ob_row(ok), "complete|1|{\"ok\": 1}|-");
	ck_assert_str_eq(ob_row(retry), "pending|1|-|try later");
	ck_assert_str_eq(ob_row(fail), "failed|1|-|no good");
	snprintf(row, sizeof row, "%s", ob_row(refused));
	ck_assert_msg(ob_noted(row), "%s", row);
}
END_TEST

/*
 * Two successes with refused results in one batch: each is recorded
 * complete with its note. Neither may be dropped to run again: its work
 * is done (docs/design.md, "Outcomes").
 */
START_TEST(test_every_refused_result_in_a_batch_is_recorded_with_a_note)
{
	long long first = ob_task(), ok = ob_task(), second = ob_task();
	char row[1200];

	ob_add(first, OB_TOKEN, OUTCOME_COMPLETE, OB_REFUSED, 0);
	ob_add(ok, OB_TOKEN, OUTCOME_COMPLETE, "[]", 0);
	ob_add(second, OB_TOKEN, OUTCOME_COMPLETE, OB_REFUSED, 0);
	ob_flush_all(10);
	ck_assert_str_eq(ob_row(ok), "complete|1|[]|-");
	snprintf(row, sizeof row, "%s", ob_row(first));
	ck_assert_msg(ob_noted(row), "first: %s", row);
	snprintf(row, sizeof row, "%s", ob_row(second));
	ck_assert_msg(ob_noted(row), "second: %s", row);
}
END_TEST

START_TEST(test_refused_success_riding_with_a_claim_is_then_written_alone)
{
	long long refused = ob_task(), next;
	struct queue_claimer who = {"ob#1", 30000};
	struct queue_kinds skip = {NULL, 0};
	struct wt_call call = {0};
	struct task t[4];
	char row[1200];

	next = wt_int("INSERT INTO dispatch.tasks (kind) VALUES ('k') RETURNING id");
	ob_add(refused, OB_TOKEN, OUTCOME_COMPLETE, OB_REFUSED, 0);
	outbox_claim_send(&who, NULL, "default", 4, &skip, &skip, NULL, 5000, wt_done, &call);
	ck_assert(outbox_busy());
	wt_pump_until(&call.done, 10000);
	ck_assert_ptr_null(call.res);
	ck_assert_str_eq(call.err.sqlstate, "22P05");
	ck_assert_int_eq(outbox_claim_result(NULL, &call.err, 5000, 4, t, clock_now_ms()), -1);
	/* The claim claimed nothing (one statement, rolled back whole). */
	ck_assert_str_eq(ob_row(next), "pending|0|-|-");
	ck_assert_uint_eq(outbox_count(), 1);
	ob_flush_all(4);
	snprintf(row, sizeof row, "%s", ob_row(refused));
	ck_assert_msg(ob_noted(row), "%s", row);
}
END_TEST

/* ---- passing failures and locks ---- */

START_TEST(test_failure_outside_class_22_and_23_keeps_the_outcomes_and_pauses_a_second)
{
	long long a = ob_task(), b = ob_task();
	PGconn *locker = harness_connect(wt_db);
	int64_t before, after, next;

	/* A role's lock_timeout meets a table lock: 55P03, a passing reason. */
	wt_reattach("SET lock_timeout = '100ms'");
	harness_exec(locker, "BEGIN; LOCK TABLE dispatch.tasks IN ACCESS EXCLUSIVE MODE");
	ob_add(a, OB_TOKEN, OUTCOME_COMPLETE, "1", 0);
	ob_add(b, OB_TOKEN, OUTCOME_FAIL, "no", 0);
	before = clock_now_ms();
	ob_flush_at(before);
	after = clock_now_ms();
	ck_assert_uint_eq(outbox_count(), 2);
	next = outbox_next_try_ms();
	ck_assert_msg(next >= before + 1000 && next <= after + 1000, "next try %lld ms after the write began",
	              (long long) (next - before));
	/* Nothing is sent before then. */
	outbox_flush(after);
	ck_assert(!outbox_busy());
	ck_assert_uint_eq(work_pending(), 0);
	/* Both are still ours: renewed, never reaped. */
	{
		long long ids[4], tokens[4];

		ck_assert_uint_eq(outbox_held(ids, tokens, NULL, NULL, 0, 4), 2);
		ck_assert_int_eq(ids[0], a);
		ck_assert_int_eq(ids[1], b);
	}
	harness_exec(locker, "ROLLBACK");
	PQfinish(locker);
	ob_flush_at(next);
	ck_assert_uint_eq(outbox_count(), 0);
	ck_assert_str_eq(ob_row(a), "complete|1|1|-");
	ck_assert_str_eq(ob_row(b), "failed|1|-|no");
}
END_TEST

START_TEST(test_outcome_for_a_locked_row_is_kept_and_tried_again_after_250ms)
{
	long long held = ob_task(), free_id = ob_task();
	PGconn *locker = harness_connect(wt_db);
	long long ids[4], tokens[4];
	int64_t before, after, next;
	char sql[128];

	snprintf(sql, sizeof sql, "BEGIN; SELECT 1 FROM dispatch.tasks WHERE id = %lld FOR UPDATE", held);
	harness_exec(locker, sql);
	ob_add(held, OB_TOKEN, OUTCOME_RETRY, "again", 1000);
	ob_add(free_id, OB_TOKEN, OUTCOME_RETRY, "again", 1000);
	before = clock_now_ms();
	ob_flush_at(before);
	after = clock_now_ms();
	ck_assert_str_eq(ob_row(free_id), "pending|1|-|again");
	ck_assert_str_eq(ob_row(held), "in_progress|1|-|-");
	ck_assert_uint_eq(outbox_count(), 1);
	ck_assert_uint_eq(outbox_held(ids, tokens, NULL, NULL, 0, 4), 1);
	ck_assert_int_eq(ids[0], held);
	ck_assert_int_eq(tokens[0], OB_TOKEN);
	next = outbox_next_try_ms();
	ck_assert_msg(next >= before + 250 && next <= after + 250, "next try %lld ms after the write began",
	              (long long) (next - before));
	outbox_flush(after);
	ck_assert_uint_eq(work_pending(), 0);
	harness_exec(locker, "ROLLBACK");
	PQfinish(locker);
	ob_flush_at(next);
	ck_assert_uint_eq(outbox_count(), 0);
	ck_assert_str_eq(ob_row(held), "pending|1|-|again");
}
END_TEST

/* ---- what waits, what is lost ---- */

START_TEST(test_held_lists_what_waits_in_order_within_the_room_given)
{
	long long a = ob_task(), b = ob_task(), c = ob_task();
	long long ids[3] = {-1, -1, -1}, tokens[3] = {-1, -1, -1};

	ck_assert_uint_eq(outbox_held(ids, tokens, NULL, NULL, 0, 3), 0);
	ob_add(a, OB_TOKEN, OUTCOME_COMPLETE, NULL, 0);
	ob_add(b, OB_TOKEN + 1, OUTCOME_RETRY, "x", 10);
	ob_add(c, OB_TOKEN, OUTCOME_RELEASE, NULL, 0);
	/* Appended after what the caller already has, up to cap. */
	ck_assert_uint_eq(outbox_held(ids, tokens, NULL, NULL, 1, 3), 3);
	ck_assert_int_eq(ids[0], -1);
	ck_assert_int_eq(ids[1], a);
	ck_assert_int_eq(ids[2], b);
	ck_assert_int_eq(tokens[2], OB_TOKEN + 1);
	/* A write on its way still holds them. */
	outbox_flush(clock_now_ms());
	ck_assert(outbox_busy());
	ck_assert_uint_eq(outbox_held(ids, tokens, NULL, NULL, 0, 3), 3);
	ck_assert_int_eq(ids[2], c);
	wt_drain();
	/* b's token was not the claim's: lost, dropped; the others written. */
	ck_assert_uint_eq(outbox_count(), 0);
	ck_assert_uint_eq(outbox_held(ids, tokens, NULL, NULL, 0, 3), 0);
	ck_assert_str_eq(ob_row(a), "complete|1|-|-");
	ck_assert_str_eq(ob_row(b), "in_progress|1|-|-");
	ck_assert_str_eq(ob_row(c), "pending|0|-|-");
}
END_TEST

START_TEST(test_lost_drops_only_the_claim_named)
{
	long long a = ob_task(), b = ob_task(), c = ob_task();
	long long ids[4], tokens[4];

	ob_add(a, OB_TOKEN, OUTCOME_COMPLETE, "1", 0);
	ob_add(b, OB_TOKEN, OUTCOME_COMPLETE, "2", 0);
	ob_add(c, OB_TOKEN, OUTCOME_COMPLETE, "3", 0);
	/* Same id, another claim: not this one. */
	outbox_lost(b, OB_TOKEN + 1);
	ck_assert_uint_eq(outbox_count(), 3);
	outbox_lost(b, OB_TOKEN);
	ck_assert_uint_eq(outbox_count(), 2);
	ck_assert_uint_eq(outbox_held(ids, tokens, NULL, NULL, 0, 4), 2);
	ck_assert_int_eq(ids[0], a);
	ck_assert_int_eq(ids[1], c);
	ob_flush_at(clock_now_ms());
	ck_assert_uint_eq(outbox_count(), 0);
	ck_assert_str_eq(ob_row(a), "complete|1|1|-");
	ck_assert_str_eq(ob_row(b), "in_progress|1|-|-");
	ck_assert_str_eq(ob_row(c), "complete|1|3|-");
}
END_TEST

START_TEST(test_lost_leaves_a_write_on_its_way_to_its_own_fate)
{
	long long a = ob_task();

	ob_add(a, OB_TOKEN, OUTCOME_COMPLETE, "1", 0);
	outbox_flush(clock_now_ms());
	ck_assert(outbox_busy());
	outbox_lost(a, OB_TOKEN);
	ck_assert_uint_eq(outbox_count(), 1);
	wt_drain();
	ck_assert_uint_eq(outbox_count(), 0);
	ck_assert_str_eq(ob_row(a), "complete|1|1|-");
}
END_TEST

/* ---- riding with the claim ---- */

START_TEST(test_successes_ride_with_the_claim_and_other_outcomes_go_alone)
{
	long long done = ob_task(), retry = ob_task(), next;
	struct queue_claimer who = {"ob#1", 30000};
	struct queue_kinds skip = {NULL, 0};
	struct wt_call call = {0};
	struct task t[4];
	PGresult *res;
	int n;

	next = wt_int("INSERT INTO dispatch.tasks (kind) VALUES ('k') RETURNING id");
	ob_add(done, OB_TOKEN, OUTCOME_COMPLETE, "{\"r\": true}", 0);
	outbox_claim_send(&who, NULL, "default", 4, &skip, &skip, NULL, 6000, wt_done, &call);
	ck_assert(outbox_busy());
	res = wt_wait(&call);
	n = outbox_claim_result(res, NULL, 6000, 4, t, clock_now_ms());
	PQclear(res);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(t[0].id, next);
	task_clear(&t[0]);
	ck_assert_uint_eq(outbox_count(), 0);
	ck_assert_str_eq(ob_row(done), "complete|1|{\"r\": true}|-");
	/* A retry waiting: the claim goes alone and the retry stays. */
	wt_exec("INSERT INTO dispatch.tasks (kind) VALUES ('k')");
	ob_add(retry, OB_TOKEN, OUTCOME_RETRY, "x", 60000);
	memset(&call, 0, sizeof call);
	outbox_claim_send(&who, NULL, "default", 4, &skip, &skip, NULL, 6001, wt_done, &call);
	ck_assert(!outbox_busy());
	res = wt_wait(&call);
	n = outbox_claim_result(res, NULL, 6001, 4, t, clock_now_ms());
	PQclear(res);
	ck_assert_int_eq(n, 1);
	task_clear(&t[0]);
	ck_assert_uint_eq(outbox_count(), 1);
	ck_assert_str_eq(ob_row(retry), "in_progress|1|-|-");
	ob_flush_at(clock_now_ms());
	ck_assert_str_eq(ob_row(retry), "pending|1|-|x");
}
END_TEST

Suite *
outbox_suite(void)
{
	Suite *s = suite_create("outbox");
	TCase *refused = tcase_create("refused");
	TCase *writes = tcase_create("writes");

	tcase_add_checked_fixture(refused, wt_setup_latin1, wt_teardown);
	tcase_set_timeout(refused, 60);
	tcase_add_test(refused, test_refused_result_is_recorded_with_a_note_and_the_rest_of_the_batch_lands);
	tcase_add_test(refused, test_every_refused_result_in_a_batch_is_recorded_with_a_note);
	tcase_add_test(refused, test_refused_success_riding_with_a_claim_is_then_written_alone);
	suite_add_tcase(s, refused);

	tcase_add_checked_fixture(writes, wt_setup, wt_teardown);
	tcase_set_timeout(writes, 60);
	tcase_add_test(writes, test_failure_outside_class_22_and_23_keeps_the_outcomes_and_pauses_a_second);
	tcase_add_test(writes, test_outcome_for_a_locked_row_is_kept_and_tried_again_after_250ms);
	tcase_add_test(writes, test_held_lists_what_waits_in_order_within_the_room_given);
	tcase_add_test(writes, test_lost_drops_only_the_claim_named);
	tcase_add_test(writes, test_lost_leaves_a_write_on_its_way_to_its_own_fate);
	tcase_add_test(writes, test_successes_ride_with_the_claim_and_other_outcomes_go_alone);
	suite_add_tcase(s, writes);
	return s;
}
