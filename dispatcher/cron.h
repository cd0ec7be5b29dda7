/*
 * Cron expressions: parsing, and the ticks of one in a time zone.
 *
 * An expression has five fields, minute hour day-of-month month
 * day-of-week, or six with seconds first (so tests and short intervals
 * need not wait for minutes); each field is *, a number, a name (JAN-DEC,
 * SUN-SAT, any case), a range a-b, either of those or * followed by a
 * step /n (a/n runs from a to the field's end), or a list of those joined
 * by commas. Day-of-week 0 and 7 are both Sunday. The
 * shorthands @yearly (@annually), @monthly, @weekly, @daily (@midnight) and
 * @hourly stand for their five-field forms.
 *
 * The classic day rule: when both day fields are restricted (neither
 * starts with *), a day matches when either does ("0 0 1 * MON": the 1st
 * and every Monday); otherwise the restricted one alone decides.
 *
 * A tick is a wall-clock time the expression matches, in the schedule's
 * time zone, turned into an instant (seconds since the epoch):
 *  - a wall time that does not exist (the hour skipped when clocks go
 *    forward) runs once, at the first instant after the gap: "30 2 * * *"
 *    in Europe/Berlin runs at 03:00 CEST on that day, and every tick that
 *    falls in the gap collapses into that one instant;
 *  - a wall time that happens twice (the hour repeated when clocks go
 *    back) runs once, at its first occurrence; the repeated hour has no
 *    ticks of its own.
 *
 * Time zones come from the system tz database (/usr/share/zoneinfo, or
 * $TZDIR). NULL or "UTC" needs no database. The conversions set TZ for the
 * length of a call and put it back: the daemon has one thread.
 */
#ifndef PGDISPATCH_CRON_H
#define PGDISPATCH_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A parsed expression: one bit per value a field allows. */
struct cron {
	uint64_t seconds;            /* bits 0..59; {0} in the five-field form */
	uint64_t minutes;            /* bits 0..59 */
	uint32_t hours;              /* bits 0..23 */
	uint32_t days;               /* bits 1..31 */
	uint16_t months;             /* bits 1..12 */
	uint8_t weekdays;            /* bits 0..6, Sunday 0 */
	bool days_star;              /* the day fields began with *: see the day rule */
	bool weekdays_star;
};

/*
 * Parses text into *out. On error returns false with err set to a message
 * naming the field: "hour: 25 is out of range (0..23)".
 */
bool cron_parse(const char *text, struct cron *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * True when tz names a zone of the tz database (a TZif file under it), or
 * is "UTC". Names with ".." or a leading / are refused: a zone is a name,
 * not a path.
 */
bool cron_tz_valid(const char *tz);

/*
 * The first tick strictly after `after` (tz NULL: UTC). Returns false when
 * there is none within ten years (an expression such as "0 0 31 2 *" never
 * matches).
 */
bool cron_next(const struct cron *c, const char *tz, time_t after, time_t *next)
	__attribute__((warn_unused_result));

/* The last tick at or before `at`; false when there is none within ten
 * years. */
bool cron_prev(const struct cron *c, const char *tz, time_t at, time_t *prev)
	__attribute__((warn_unused_result));

#endif
