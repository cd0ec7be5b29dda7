/*
 * Unit tier: policy.c, where a task's attempts, backoff, timeout and
 * concurrency are worked out: which setting wins, the backoff's bounds
 * over many draws, and the retry-or-fail decision.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "harness.h"
#include "policy.h"

static const char policy_yaml[] =
	"timeout: 2m\n"
	"max_attempts: 4\n"
	"backoff: {initial: 3s, max: 1m}\n"
	"handlers:\n"
	"  mail:\n"
	"    builtin: noop\n"
	"    timeout: 30s\n"
	"    max_attempts: 9\n"
	"    backoff: {initial: 250ms, max: 10s}\n"
	"    concurrency: 3\n"
	"  plain:\n"
	"    builtin: noop\n";

static struct config *
policy_config(const char *yaml)
{
	char err[1024];
	struct config *cfg = config_parse("policy.yaml", yaml, strlen(yaml), err, sizeof err);

	ck_assert_msg(cfg != NULL, "config rejected: %s", err);
	return cfg;
}

/* Asserts every field of p: attempts, backoff initial and max, timeout,
 * kind limit. */
static void
policy_expect(struct policy p, int max_attempts, int64_t initial_ms, int64_t max_ms, int64_t timeout_ms,
              int concurrency)
{
	ck_assert_int_eq(p.max_attempts, max_attempts);
	ck_assert_int_eq(p.backoff_initial_ms, initial_ms);
	ck_assert_int_eq(p.backoff_max_ms, max_ms);
	ck_assert_int_eq(p.timeout_ms, timeout_ms);
	ck_assert_int_eq(p.concurrency, concurrency);
}

START_TEST(test_handler_settings_beat_the_defaults)
{
	struct config *cfg = policy_config(policy_yaml);

	policy_expect(policy_for(cfg, "mail", 0), 9, 250, 10000, 30000, 3);
	config_free(cfg);
}
END_TEST

START_TEST(test_row_limit_beats_the_handler_and_the_default)
{
	struct config *cfg = policy_config(policy_yaml);
	struct policy p = policy_for(cfg, "mail", 2);

	ck_assert_int_eq(p.max_attempts, 2);
	/* The rest is still the handler's. */
	ck_assert_int_eq(p.backoff_initial_ms, 250);
	ck_assert_int_eq(p.timeout_ms, 30000);
	ck_assert_int_eq(p.concurrency, 3);
	p = policy_for(cfg, "unknown", 17);
	ck_assert_int_eq(p.max_attempts, 17);
	ck_assert_int_eq(p.timeout_ms, 120000);
	config_free(cfg);
}
END_TEST

START_TEST(test_unknown_kind_gets_the_defaults_and_no_concurrency_limit)
{
	struct config *cfg = policy_config(policy_yaml);

	policy_expect(policy_for(cfg, "nobody_handles_this", 0), 4, 3000, 60000, 120000, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_handler_without_settings_inherits_the_defaults)
{
	struct config *cfg = policy_config(policy_yaml);

	policy_expect(policy_for(cfg, "plain", 0), 4, 3000, 60000, 120000, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_config_without_handlers_or_settings_gives_documented_defaults)
{
	struct config *cfg = policy_config("queues: [default]\n");

	policy_expect(policy_for(cfg, "k", 0), 5, 1000, 3600000, 300000, 0);
	config_free(cfg);
}
END_TEST

/* The nominal delay before retry number attempt: initial * 2^(attempt-1),
 * capped at max, worked out without overflow. */
static int64_t
policy_nominal(int attempt, int64_t initial, int64_t max)
{
	int64_t d = initial;

	for (int i = 1; i < attempt; i++) {
		if (d >= max)
			break;
		d *= 2;
	}
	return d < max ? d : max;
}

/* Draws many delays for attempt and checks each lies in [nominal/2,
 * nominal], never above max; returns the smallest and largest seen. */
static void
policy_check_draws(int attempt, int64_t initial, int64_t max, int64_t *lo, int64_t *hi)
{
	int64_t nominal = policy_nominal(attempt, initial, max);

	*lo = INT64_MAX;
	*hi = INT64_MIN;
	for (int i = 0; i < 2000; i++) {
		int64_t d = policy_backoff_ms(attempt, initial, max);

		ck_assert_msg(d >= nominal / 2 && d <= nominal,
		              "attempt %d initial %lld max %lld: %lld outside [%lld, %lld]", attempt,
		              (long long) initial, (long long) max, (long long) d, (long long) (nominal / 2),
		              (long long) nominal);
		ck_assert_msg(d <= max, "attempt %d: %lld above max %lld", attempt, (long long) d, (long long) max);
		if (d < *lo)
			*lo = d;
		if (d > *hi)
			*hi = d;
	}
}

START_TEST(test_first_retry_waits_between_half_and_all_of_initial)
{
	int64_t lo, hi;

	srandom(1);
	policy_check_draws(1, 1000, 3600000, &lo, &hi);
	/* Jitter spreads over the upper half, not one point. */
	ck_assert_int_lt(lo, 600);
	ck_assert_int_gt(hi, 900);
}
END_TEST

START_TEST(test_backoff_doubles_per_attempt_within_bounds)
{
	int64_t lo, hi;

	srandom(2);
	for (int attempt = 1; attempt <= 30; attempt++) {
		int64_t nominal = policy_nominal(attempt, 250, 60000);

		policy_check_draws(attempt, 250, 60000, &lo, &hi);
		/* 2,000 draws reach both ends of the range closely. */
		ck_assert_msg(lo <= nominal / 2 + nominal / 20 && hi >= nominal - nominal / 20,
		              "attempt %d: draws in [%lld, %lld] of [%lld, %lld]", attempt, (long long) lo,
		              (long long) hi, (long long) (nominal / 2), (long long) nominal);
	}
	ck_assert_int_eq(policy_nominal(2, 250, 60000), 500);
	ck_assert_int_eq(policy_nominal(8, 250, 60000), 32000);
	ck_assert_int_eq(policy_nominal(9, 250, 60000), 60000);
}
END_TEST

START_TEST(test_backoff_at_its_cap_stays_at_the_cap)
{
	int64_t lo, hi;

	srandom(3);
	policy_check_draws(20, 1000, 60000, &lo, &hi);
	ck_assert_int_ge(lo, 30000);
	ck_assert_int_le(hi, 60000);
}
END_TEST

START_TEST(test_large_attempts_and_the_largest_settings_do_not_overflow)
{
	/* The largest values the config allows: backoff.initial 1d, backoff.max
	 * 30d; attempt numbers as large as a row's max_attempts may be. */
	const int64_t day = 86400000;
	const int attempts[] = {31, 63, 64, 65, 1000, 1 << 20, INT32_MAX};
	int64_t lo, hi;

	srandom(4);
	for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
		policy_check_draws(attempts[i], day, 30 * day, &lo, &hi);
		ck_assert_int_ge(lo, 15 * day);
		policy_check_draws(attempts[i], 1, 30 * day, &lo, &hi);
	}
}
END_TEST

START_TEST(test_backoff_of_one_millisecond_stays_one)
{
	for (int attempt = 1; attempt < 5; attempt++)
		ck_assert_int_eq(policy_backoff_ms(attempt, 1, 1), 1);
}
END_TEST

START_TEST(test_failure_below_max_attempts_retries_with_a_bounded_delay)
{
	struct config *cfg = policy_config(policy_yaml);
	struct policy p = policy_for(cfg, "mail", 0);
	int64_t delay = -1;

	srandom(5);
	for (int attempt = 1; attempt < p.max_attempts; attempt++) {
		int64_t nominal = policy_nominal(attempt, 250, 10000);

		ck_assert_int_eq(policy_after_failure(&p, attempt, 0, &delay), POLICY_RETRY);
		ck_assert_msg(delay >= nominal / 2 && delay <= nominal, "attempt %d: delay %lld", attempt,
		              (long long) delay);
	}
	config_free(cfg);
}
END_TEST

/* A service's Retry-After: longer than the backoff, it is the delay, to
 * the millisecond (no jitter); shorter, the backoff stands. At the limit
 * it changes nothing: failed for good. */
START_TEST(test_least_delay_longer_than_the_backoff_is_the_delay)
{
	struct config *cfg = policy_config(policy_yaml);
	struct policy p = policy_for(cfg, "mail", 0);
	int64_t delay = -1;

	srandom(7);
	ck_assert_int_eq(policy_after_failure(&p, 1, 120000, &delay), POLICY_RETRY);
	ck_assert_int_eq(delay, 120000);
	ck_assert_int_eq(policy_after_failure(&p, 1, 1, &delay), POLICY_RETRY);
	ck_assert_msg(delay >= 125 && delay <= 250, "delay %lld", (long long) delay);
	ck_assert_int_eq(policy_after_failure(&p, 9, 120000, &delay), POLICY_FAIL);
	ck_assert_int_eq(delay, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_failure_at_max_attempts_fails_for_good)
{
	struct config *cfg = policy_config(policy_yaml);
	struct policy p = policy_for(cfg, "mail", 0);
	int64_t delay = -1;

	ck_assert_int_eq(policy_after_failure(&p, 9, 0, &delay), POLICY_FAIL);
	ck_assert_int_eq(delay, 0);
	/* An attempt past the limit (a limit lowered since the claim) too. */
	delay = -1;
	ck_assert_int_eq(policy_after_failure(&p, 12, 0, &delay), POLICY_FAIL);
	ck_assert_int_eq(delay, 0);
	/* A row's own limit of 1: the first failure is final. */
	p = policy_for(cfg, "mail", 1);
	ck_assert_int_eq(policy_after_failure(&p, 1, 0, &delay), POLICY_FAIL);
	config_free(cfg);
}
END_TEST

Suite *
policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("settings");
	TCase *backoff = tcase_create("backoff");

	tcase_add_test(tc, test_handler_settings_beat_the_defaults);
	tcase_add_test(tc, test_row_limit_beats_the_handler_and_the_default);
	tcase_add_test(tc, test_unknown_kind_gets_the_defaults_and_no_concurrency_limit);
	tcase_add_test(tc, test_handler_without_settings_inherits_the_defaults);
	tcase_add_test(tc, test_config_without_handlers_or_settings_gives_documented_defaults);
	tcase_add_test(tc, test_failure_below_max_attempts_retries_with_a_bounded_delay);
	tcase_add_test(tc, test_failure_at_max_attempts_fails_for_good);
	tcase_add_test(tc, test_least_delay_longer_than_the_backoff_is_the_delay);
	suite_add_tcase(s, tc);
	tcase_add_test(backoff, test_first_retry_waits_between_half_and_all_of_initial);
	tcase_add_test(backoff, test_backoff_doubles_per_attempt_within_bounds);
	tcase_add_test(backoff, test_backoff_at_its_cap_stays_at_the_cap);
	tcase_add_test(backoff, test_large_attempts_and_the_largest_settings_do_not_overflow);
	tcase_add_test(backoff, test_backoff_of_one_millisecond_stays_one);
	suite_add_tcase(s, backoff);
	return s;
}
