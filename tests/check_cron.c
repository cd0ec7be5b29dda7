/*
 * Unit tier: cron.c parses expressions (and refuses bad ones with the
 * field's name) and finds ticks across month ends, leap years, the day
 * rule, seconds and daylight saving time in Europe/Berlin.
 *
 * Times are written "YYYY-MM-DD HH:MM:SS" in UTC on both sides, so each
 * case reads as the instants it expects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "harness.h"

static time_t
cron_test_utc(const char *s)
{
	struct tm tm = {0};

	ck_assert_msg(strptime(s, "%Y-%m-%d %H:%M:%S", &tm) != NULL, "bad time %s", s);
	return timegm(&tm);
}

static const char *
cron_test_fmt(time_t t)
{
	static char buf[64];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static struct cron
cron_test_parse(const char *text)
{
	struct cron c;
	char err[256];

	ck_assert_msg(cron_parse(text, &c, err, sizeof err), "%s: %s", text, err);
	return c;
}

START_TEST(test_cron_parses_lists_ranges_steps_and_names)
{
	struct cron c = cron_test_parse("*/15 9-17 1,15 JAN,jul-Sep MON-FRI");

	ck_assert_uint_eq(c.seconds, 1);
	ck_assert_uint_eq(c.minutes, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
	ck_assert_uint_eq(c.hours, 0x3FE00u);   /* 9..17 */
	ck_assert_uint_eq(c.days, (1u << 1) | (1u << 15));
	ck_assert_uint_eq(c.months, (1u << 1) | (1u << 7) | (1u << 8) | (1u << 9));
	ck_assert_uint_eq(c.weekdays, 0x3Eu);   /* 1..5 */
	ck_assert(!c.days_star);
	ck_assert(!c.weekdays_star);

	c = cron_test_parse("5/20 0-10/5 * * 7");
	ck_assert_uint_eq(c.minutes, (1ULL << 5) | (1ULL << 25) | (1ULL << 45));
	ck_assert_uint_eq(c.hours, (1u << 0) | (1u << 5) | (1u << 10));
	ck_assert_uint_eq(c.weekdays, 1u);      /* 7 is Sunday, 0 */
	ck_assert(c.days_star);

	/* Six fields: seconds first. */
	c = cron_test_parse("  */20 * * * * *  ");
	ck_assert_uint_eq(c.seconds, (1ULL << 0) | (1ULL << 20) | (1ULL << 40));
	ck_assert_uint_eq(c.minutes, (1ULL << 60) - 1);
}
END_TEST

START_TEST(test_cron_shorthands_equal_their_five_fields)
{
	static const char *const pairs[][2] = {
		{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
		{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"},
		{"@HOURLY", "0 * * * *"},
	};

	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		struct cron a = cron_test_parse(pairs[i][0]), b = cron_test_parse(pairs[i][1]);

		ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "%s differs from %s", pairs[i][0], pairs[i][1]);
	}
}
END_TEST

static const struct {
	const char *text;
	const char *want;
} cron_bad[] = {
	{"", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), got 0"},
	{"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), got 4"},
	{"* * * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), "
	                  "got more than 6"},
	{"60 * * * *", "minute: '60' is out of range (0..59)"},
	{"* 24 * * *", "hour: '24' is out of range (0..23)"},
	{"* * 0 * *", "day-of-month: '0' is out of range (1..31)"},
	{"* * * 13 *", "month: '13' is out of range (1..12)"},
	{"* * * * 8", "day-of-week: '8' is out of range (0..7)"},
	{"61 * * * * *", "second: '61' is out of range (0..59)"},
	{"*/0 * * * *", "minute: '*/0' needs a step of 1 or more after /"},
	{"5-1 * * * *", "minute: '5-1' runs backwards"},
	{"a * * * *", "minute: 'a' is not a number"},
	{"* * * FOO *", "month: 'FOO' is not a number or a name"},
	{"* * * * MONDAY", "day-of-week: 'MONDAY' is not a number or a name"},
	{"1,,2 * * * *", "minute: '1,,2' has an empty list item"},
	{"1- * * * *", "minute: '1-' is not a range"},
	{"1x * * * *", "minute: '1x' is not a number, range or step"},
	{"@reboot", "'@reboot' is not one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"},
	{"@daily 5", "'@daily' is not one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"},
};

START_TEST(test_cron_refuses_bad_expressions_naming_the_field)
{
	struct cron c;
	char err[256];

	ck_assert_msg(!cron_parse(cron_bad[_i].text, &c, err, sizeof err), "'%s' accepted", cron_bad[_i].text);
	ck_assert_str_eq(err, cron_bad[_i].want);
}
END_TEST

/* Expression, zone, after, the next tick (empty: none). */
static const struct {
	const char *expr, *tz, *after, *want;
} cron_next_cases[] = {
	{"0 3 * * *", NULL, "2026-01-31 04:00:00", "2026-02-01 03:00:00"},
	{"0 3 * * *", "UTC", "2026-01-31 02:59:59", "2026-01-31 03:00:00"},
	/* Strictly after. */
	{"0 3 * * *", NULL, "2026-01-31 03:00:00", "2026-02-01 03:00:00"},
	/* Month ends: the 31st skips the months without one. */
	{"0 0 31 * *", NULL, "2026-04-01 00:00:00", "2026-05-31 00:00:00"},
	{"0 0 31 * *", NULL, "2026-05-31 00:00:00", "2026-07-31 00:00:00"},
	{"0 0 1 1 *", NULL, "2026-06-01 00:00:00", "2027-01-01 00:00:00"},
	{"59 23 31 12 *", NULL, "2026-12-31 23:59:00", "2027-12-31 23:59:00"},
	/* Leap years: the 29th of February every four, not in 2100. */
	{"0 12 29 2 *", NULL, "2024-01-01 00:00:00", "2024-02-29 12:00:00"},
	{"0 12 29 2 *", NULL, "2025-03-01 00:00:00", "2028-02-29 12:00:00"},
	{"0 12 29 2 *", NULL, "2096-03-01 00:00:00", "2104-02-29 12:00:00"},
	{"0 0 28 2 *", NULL, "2028-02-28 00:00:00", "2029-02-28 00:00:00"},
	/* Both day fields restricted: either matches (2026-03-01 is a Sunday). */
	{"0 0 1 * MON", NULL, "2026-03-01 00:00:00", "2026-03-02 00:00:00"},
	{"0 0 1 * MON", NULL, "2026-03-30 00:00:00", "2026-04-01 00:00:00"},
	/* One restricted: it alone decides. */
	{"0 0 * * MON", NULL, "2026-03-30 00:00:00", "2026-04-06 00:00:00"},
	{"0 0 1 * *", NULL, "2026-03-02 00:00:00", "2026-04-01 00:00:00"},
	/* Sunday as 7. */
	{"0 0 * * 7", NULL, "2026-03-02 00:00:00", "2026-03-08 00:00:00"},
	/* Seconds. */
	{"*/10 * * * * *", NULL, "2026-03-02 12:00:05", "2026-03-02 12:00:10"},
	{"30 * * * * *", NULL, "2026-03-02 12:00:30", "2026-03-02 12:01:30"},
	{"* * * * * *", NULL, "2026-12-31 23:59:59", "2027-01-01 00:00:00"},
	/* Never: no 31st of February. */
	{"0 0 31 2 *", NULL, "2026-01-01 00:00:00", ""},
	/* Europe/Berlin, standard time (+1) and summer time (+2). */
	{"0 3 * * *", "Europe/Berlin", "2026-11-29 14:00:00", "2026-11-30 02:00:00"},
	{"0 3 * * *", "Europe/Berlin", "2026-07-01 12:00:00", "2026-07-02 01:00:00"},
	/* Clocks go forward on 2026-03-29 at 01:00 UTC, 02:00 CET to 03:00
	 * CEST: 02:30 does not exist and runs at 03:00 CEST, once. */
	{"30 2 * * *", "Europe/Berlin", "2026-03-28 02:00:00", "2026-03-29 01:00:00"},
	{"30 2 * * *", "Europe/Berlin", "2026-03-29 01:00:00", "2026-03-30 00:30:00"},
	/* Every tick in the gap, and 03:00 itself, fold into one. */
	{"*/30 * * * *", "Europe/Berlin", "2026-03-29 00:45:00", "2026-03-29 01:00:00"},
	{"*/30 * * * *", "Europe/Berlin", "2026-03-29 01:00:00", "2026-03-29 01:30:00"},
	/* Clocks go back on 2026-10-25 at 01:00 UTC, 03:00 CEST to 02:00 CET:
	 * 02:30 happens twice and runs at the first. */
	{"30 2 * * *", "Europe/Berlin", "2026-10-24 12:00:00", "2026-10-25 00:30:00"},
	{"30 2 * * *", "Europe/Berlin", "2026-10-25 00:30:00", "2026-10-26 01:30:00"},
	/* Hourly: 02:00 CEST, then no tick for the repeated 02:00 CET, then
	 * 03:00 CET. */
	{"0 * * * *", "Europe/Berlin", "2026-10-24 23:30:00", "2026-10-25 00:00:00"},
	{"0 * * * *", "Europe/Berlin", "2026-10-25 00:00:00", "2026-10-25 02:00:00"},
	/* From inside the repeated hour. */
	{"0 * * * *", "Europe/Berlin", "2026-10-25 01:30:00", "2026-10-25 02:00:00"},
};

START_TEST(test_cron_next_tick)
{
	struct cron c = cron_test_parse(cron_next_cases[_i].expr);
	time_t next = 0;
	bool found = cron_next(&c, cron_next_cases[_i].tz, cron_test_utc(cron_next_cases[_i].after), &next);

	ck_assert_msg(strcmp(found ? cron_test_fmt(next) : "", cron_next_cases[_i].want) == 0,
	              "'%s' in %s after %s: got %s, want %s", cron_next_cases[_i].expr,
	              cron_next_cases[_i].tz != NULL ? cron_next_cases[_i].tz : "UTC", cron_next_cases[_i].after,
	              found ? cron_test_fmt(next) : "none", cron_next_cases[_i].want);
}
END_TEST

/* Expression, zone, at, the last tick at or before it. */
static const struct {
	const char *expr, *tz, *at, *want;
} cron_prev_cases[] = {
	{"0 3 * * *", NULL, "2026-11-29 14:00:00", "2026-11-29 03:00:00"},
	{"0 3 * * *", NULL, "2026-11-29 03:00:00", "2026-11-29 03:00:00"},
	{"0 3 * * *", NULL, "2026-11-29 02:59:59", "2026-11-28 03:00:00"},
	{"0 0 1 1 *", NULL, "2026-06-01 00:00:00", "2026-01-01 00:00:00"},
	{"0 12 29 2 *", NULL, "2027-06-01 00:00:00", "2024-02-29 12:00:00"},
	{"0 0 31 * *", NULL, "2026-07-15 00:00:00", "2026-05-31 00:00:00"},
	{"*/10 * * * * *", NULL, "2026-03-02 12:00:09", "2026-03-02 12:00:00"},
	{"0 3 * * *", "Europe/Berlin", "2026-11-29 14:00:00", "2026-11-29 02:00:00"},
	/* The gap's collapsed tick. */
	{"30 2 * * *", "Europe/Berlin", "2026-03-29 01:00:30", "2026-03-29 01:00:00"},
	/* Inside the repeated hour: its ticks ran in the first pass. */
	{"0 * * * *", "Europe/Berlin", "2026-10-25 01:30:00", "2026-10-25 00:00:00"},
	{"*/15 * * * *", "Europe/Berlin", "2026-10-25 01:50:00", "2026-10-25 00:45:00"},
	{"0 0 31 2 *", NULL, "2026-01-01 00:00:00", ""},
};

START_TEST(test_cron_prev_tick)
{
	struct cron c = cron_test_parse(cron_prev_cases[_i].expr);
	time_t prev = 0;
	bool found = cron_prev(&c, cron_prev_cases[_i].tz, cron_test_utc(cron_prev_cases[_i].at), &prev);

	ck_assert_msg(strcmp(found ? cron_test_fmt(prev) : "", cron_prev_cases[_i].want) == 0,
	              "'%s' in %s at %s: got %s, want %s", cron_prev_cases[_i].expr,
	              cron_prev_cases[_i].tz != NULL ? cron_prev_cases[_i].tz : "UTC", cron_prev_cases[_i].at,
	              found ? cron_test_fmt(prev) : "none", cron_prev_cases[_i].want);
}
END_TEST

/* A day of ticks through each DST change: strictly increasing, each wall
 * time once (23 hourly ticks in spring, 24 in autumn, not 25). */
START_TEST(test_cron_hourly_through_dst_changes_runs_each_wall_hour_once)
{
	struct cron c = cron_test_parse("0 * * * *");
	static const struct {
		const char *from, *to;
		int want;
	} days[] = {
		{"2026-03-28 23:00:00", "2026-03-29 22:00:00", 23},   /* Berlin's 29 March: 23 hours long */
		{"2026-10-24 22:00:00", "2026-10-25 23:00:00", 24},   /* 25 hours long, 24 wall hours */
	};

	for (size_t d = 0; d < sizeof days / sizeof days[0]; d++) {
		time_t t = cron_test_utc(days[d].from) - 1, end = cron_test_utc(days[d].to), next;
		int n = 0;

		while (cron_next(&c, "Europe/Berlin", t, &next) && next < end) {
			ck_assert_int_gt(next, t);
			t = next;
			n++;
		}
		ck_assert_int_eq(n, days[d].want);
	}
}
END_TEST

START_TEST(test_cron_time_zones_come_from_the_tz_database)
{
	ck_assert(cron_tz_valid(NULL));
	ck_assert(cron_tz_valid("UTC"));
	ck_assert(cron_tz_valid("Europe/Berlin"));
	ck_assert(cron_tz_valid("America/New_York"));
	ck_assert(!cron_tz_valid("Mars/Olympus_Mons"));
	ck_assert(!cron_tz_valid("Europe/berlin_typo"));
	ck_assert(!cron_tz_valid(""));
	ck_assert(!cron_tz_valid("/etc/localtime"));
	ck_assert(!cron_tz_valid("../../etc/passwd"));
	/* A directory of the database is not a zone. */
	ck_assert(!cron_tz_valid("Europe"));
}
END_TEST

/* The process's own TZ is back after a computation in another zone. */
START_TEST(test_cron_puts_the_process_tz_back)
{
	struct cron c = cron_test_parse("0 3 * * *");
	time_t next;

	setenv("TZ", "America/New_York", 1);
	tzset();
	ck_assert(cron_next(&c, "Europe/Berlin", cron_test_utc("2026-11-29 14:00:00"), &next));
	ck_assert_str_eq(getenv("TZ"), "America/New_York");
	ck_assert_int_eq(timezone, 5 * 3600);
	unsetenv("TZ");
	tzset();
	ck_assert(cron_prev(&c, "Asia/Tokyo", cron_test_utc("2026-11-29 14:00:00"), &next));
	ck_assert_str_eq(cron_test_fmt(next), "2026-11-28 18:00:00");
	ck_assert_ptr_null(getenv("TZ"));
}
END_TEST

Suite *
cron_suite(void)
{
	Suite *s = suite_create("cron");
	TCase *tc = tcase_create("unit");

	tcase_add_test(tc, test_cron_parses_lists_ranges_steps_and_names);
	tcase_add_test(tc, test_cron_shorthands_equal_their_five_fields);
	tcase_add_loop_test(tc, test_cron_refuses_bad_expressions_naming_the_field, 0,
	                    (int) (sizeof cron_bad / sizeof cron_bad[0]));
	tcase_add_loop_test(tc, test_cron_next_tick, 0, (int) (sizeof cron_next_cases / sizeof cron_next_cases[0]));
	tcase_add_loop_test(tc, test_cron_prev_tick, 0, (int) (sizeof cron_prev_cases / sizeof cron_prev_cases[0]));
	tcase_add_test(tc, test_cron_hourly_through_dst_changes_runs_each_wall_hour_once);
	tcase_add_test(tc, test_cron_time_zones_come_from_the_tz_database);
	tcase_add_test(tc, test_cron_puts_the_process_tz_back);
	suite_add_tcase(s, tc);
	return s;
}
