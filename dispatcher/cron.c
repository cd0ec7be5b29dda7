/*
 * Cron expressions and their ticks; see cron.h.
 *
 * Ticks are found in wall-clock time first: a wall time is kept as the
 * seconds since the epoch it would be in UTC, so gmtime_r() and timegm()
 * do the calendar (month ends, leap years) without any time zone. Only
 * then is a matching wall time turned into an instant with the zone's
 * offsets (cron_instant()), which is where the gaps and repeats of
 * daylight saving time are settled. The wall-to-instant map is
 * non-decreasing (a gap maps to its end, a repeat to its first
 * occurrence), so the search can walk wall times in order and skip those
 * whose instant is on the wrong side.
 */
#include "cron.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CRON_DAY INT64_C(86400)
/* How far a search goes: "0 0 29 2 MON" style rarities are within this,
 * an expression that never matches ("0 0 31 4 *") fails after it. */
#define CRON_HORIZON (10 * 366 * CRON_DAY)

/* One field of an expression: its name for messages, bounds and names. */
struct cron_field {
	const char *name;
	int min, max;
	const char *const *names;    /* names[i] is the value min + i; NULL: numbers only */
};

static const char *const cron_month_names[] = {
	"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL
};
static const char *const cron_day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

enum { CF_SECOND, CF_MINUTE, CF_HOUR, CF_DAY, CF_MONTH, CF_WEEKDAY, CF_COUNT };

static const struct cron_field cron_fields[CF_COUNT] = {
	[CF_SECOND] = {"second", 0, 59, NULL},
	[CF_MINUTE] = {"minute", 0, 59, NULL},
	[CF_HOUR] = {"hour", 0, 23, NULL},
	[CF_DAY] = {"day-of-month", 1, 31, NULL},
	[CF_MONTH] = {"month", 1, 12, cron_month_names},
	/* 7 is Sunday too, folded onto 0 once parsed. */
	[CF_WEEKDAY] = {"day-of-week", 0, 7, cron_day_names},
};

static const struct {
	const char *name;
	const char *expr;
} cron_shorthands[] = {
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
	{"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

/* --- parsing ---------------------------------------------------------- */

/* Reads a number or a name at *s (advancing it); -1 when neither. */
static int
cron_value(const struct cron_field *f, const char **s)
{
	const char *p = *s;
	long v = 0;

	if (*p >= '0' && *p <= '9') {
		while (*p >= '0' && *p <= '9' && v < 1000)
			v = v * 10 + (*p++ - '0');
		if (*p >= '0' && *p <= '9')
			return -1;
		*s = p;
		return (int) v;
	}
	if (f->names == NULL)
		return -1;
	for (int i = 0; f->names[i] != NULL; i++)
		if (strncasecmp(p, f->names[i], 3) == 0
		    && !((p[3] >= 'a' && p[3] <= 'z') || (p[3] >= 'A' && p[3] <= 'Z'))) {
			*s = p + 3;
			return f->min + i;
		}
	return -1;
}

/* Parses one field (text[0..len)) into the bits *out. */
static bool
cron_parse_field(const struct cron_field *f, const char *text, size_t len, uint64_t *out, bool *star,
                 char *err, size_t errlen)
{
	char buf[128];
	char *save = NULL;

	if (len >= sizeof buf) {
		snprintf(err, errlen, "%s: too long", f->name);
		return false;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	*out = 0;
	*star = buf[0] == '*';
	if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,") != NULL) {
		snprintf(err, errlen, "%s: '%s' has an empty list item", f->name, buf);
		return false;
	}
	for (char *item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		const char *p = item;
		int lo, hi, step = 1;
		bool range = false;

		if (*p == '*') {
			lo = f->min;
			hi = f->max;
			p++;
			range = true;
		} else {
			if ((lo = cron_value(f, &p)) < 0) {
				snprintf(err, errlen, "%s: '%s' is not a number%s", f->name, item,
				         f->names != NULL ? " or a name" : "");
				return false;
			}
			hi = lo;
			if (*p == '-') {
				p++;
				if ((hi = cron_value(f, &p)) < 0) {
					snprintf(err, errlen, "%s: '%s' is not a range", f->name, item);
					return false;
				}
				range = true;
			}
		}
		if (*p == '/') {
			const char *q = ++p;
			int n = 0;

			while (*p >= '0' && *p <= '9' && n < 1000)
				n = n * 10 + (*p++ - '0');
			if (p == q || n == 0) {
				snprintf(err, errlen, "%s: '%s' needs a step of 1 or more after /", f->name, item);
				return false;
			}
			step = n;
			/* a/n: from a to the end, every n. */
			if (!range)
				hi = f->max;
		}
		if (*p != '\0') {
			snprintf(err, errlen, "%s: '%s' is not a number%s, range or step", f->name, item,
			         f->names != NULL ? ", name" : "");
			return false;
		}
		if (lo < f->min || lo > f->max || hi > f->max) {
			snprintf(err, errlen, "%s: '%s' is out of range (%d..%d)", f->name, item, f->min, f->max);
			return false;
		}
		if (hi < lo) {
			snprintf(err, errlen, "%s: '%s' runs backwards", f->name, item);
			return false;
		}
		for (int v = lo; v <= hi; v += step)
			*out |= UINT64_C(1) << v;
	}
	return true;
}

bool
cron_parse(const char *text, struct cron *out, char *err, size_t errlen)
{
	const char *start[CF_COUNT + 1];
	size_t len[CF_COUNT + 1];
	uint64_t bits[CF_COUNT];
	bool stars[CF_COUNT];
	int n = 0, first;
	const char *p = text;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '@') {
		size_t l = strcspn(p, " \t");

		for (size_t i = 0; i < sizeof cron_shorthands / sizeof cron_shorthands[0]; i++)
			if (strlen(cron_shorthands[i].name) == l && strncasecmp(p, cron_shorthands[i].name, l) == 0
			    && p[l + strspn(p + l, " \t")] == '\0')
				return cron_parse(cron_shorthands[i].expr, out, err, errlen);
		snprintf(err, errlen, "'%.*s' is not one of @yearly, @annually, @monthly, @weekly, @daily, "
		         "@midnight, @hourly", (int) (l > 32 ? 32 : l), p);
		return false;
	}
	while (*p != '\0') {
		size_t l = strcspn(p, " \t");

		if (n == CF_COUNT + 1) {
			n++;
			break;
		}
		start[n] = p;
		len[n++] = l;
		p += l;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (n != 5 && n != 6) {
		snprintf(err, errlen, "expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
		         "(second first), got %s%d", n > 6 ? "more than " : "", n > 6 ? 6 : n);
		return false;
	}
	/* Five fields: the seconds field is "0". */
	first = n == 6 ? CF_SECOND : CF_MINUTE;
	bits[CF_SECOND] = 1;
	stars[CF_SECOND] = false;
	for (int f = first; f < CF_COUNT; f++)
		if (!cron_parse_field(&cron_fields[f], start[f - first], len[f - first], &bits[f], &stars[f], err,
		                      errlen))
			return false;
	/* Sunday is 0 and 7. */
	if (bits[CF_WEEKDAY] & (UINT64_C(1) << 7))
		bits[CF_WEEKDAY] = (bits[CF_WEEKDAY] | 1) & 0x7F;
	*out = (struct cron) {
		.seconds = bits[CF_SECOND],
		.minutes = bits[CF_MINUTE],
		.hours = (uint32_t) bits[CF_HOUR],
		.days = (uint32_t) bits[CF_DAY],
		.months = (uint16_t) bits[CF_MONTH],
		.weekdays = (uint8_t) bits[CF_WEEKDAY],
		.days_star = stars[CF_DAY],
		.weekdays_star = stars[CF_WEEKDAY],
	};
	return true;
}

/* --- time zones ------------------------------------------------------- */

bool
cron_tz_valid(const char *tz)
{
	const char *dir = getenv("TZDIR");
	char path[512], magic[4];
	int fd;
	bool ok;

	if (tz == NULL || strcmp(tz, "UTC") == 0)
		return true;
	if (tz[0] == '\0' || tz[0] == '/' || strstr(tz, "..") != NULL)
		return false;
	snprintf(path, sizeof path, "%s/%s", dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", tz);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	ok = read(fd, magic, sizeof magic) == (ssize_t) sizeof magic && memcmp(magic, "TZif", 4) == 0;
	close(fd);
	return ok;
}

/*
 * The zone a computation runs in. Entering sets TZ and reloads it;
 * leaving puts the process's own TZ back, so nothing else (log lines,
 * handlers' environment) sees the change. UTC needs neither.
 */
static struct {
	bool utc;
	bool had_tz;
	char saved[256];
} cron_zone;

static void
cron_tz_enter(const char *tz)
{
	const char *old = getenv("TZ");
	char want[300];

	cron_zone.utc = tz == NULL || strcmp(tz, "UTC") == 0;
	if (cron_zone.utc)
		return;
	cron_zone.had_tz = old != NULL;
	snprintf(cron_zone.saved, sizeof cron_zone.saved, "%s", old != NULL ? old : "");
	/* The leading colon: a file of the tz database, never a POSIX rule. */
	snprintf(want, sizeof want, ":%s", tz);
	setenv("TZ", want, 1);
	tzset();
}

static void
cron_tz_leave(void)
{
	if (cron_zone.utc)
		return;
	if (cron_zone.had_tz)
		setenv("TZ", cron_zone.saved, 1);
	else
		unsetenv("TZ");
	tzset();
}

/* The zone's offset from UTC at instant t, in seconds. */
static int64_t
cron_offset(time_t t)
{
	struct tm tm;

	if (cron_zone.utc || localtime_r(&t, &tm) == NULL)
		return 0;
	return tm.tm_gmtoff;
}

/*
 * The instant of wall time w: its first occurrence when it happens twice,
 * the end of the gap when it does not happen at all.
 */
static time_t
cron_instant(int64_t w)
{
	int64_t before = cron_offset((time_t) (w - CRON_DAY)), after = cron_offset((time_t) (w + CRON_DAY));
	int64_t t1 = w - before, t2 = w - after, lo, hi;
	bool ok1 = cron_offset((time_t) t1) == before, ok2 = cron_offset((time_t) t2) == after;

	if (ok1 && ok2)
		return (time_t) (t1 < t2 ? t1 : t2);
	if (ok1 || ok2)
		return (time_t) (ok1 ? t1 : t2);
	/* A gap: clocks went forward past w. Its end is the first instant
	 * with the new offset, somewhere in (w - after, w - before]. */
	lo = t2;
	hi = t1;
	if (lo > hi)
		return (time_t) hi;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;

		if (cron_offset((time_t) mid) == after)
			hi = mid;
		else
			lo = mid + 1;
	}
	return (time_t) lo;
}

/* --- the search ------------------------------------------------------- */

static bool
cron_day_matches(const struct cron *c, const struct tm *tm)
{
	bool day = (c->days >> tm->tm_mday) & 1, weekday = (c->weekdays >> tm->tm_wday) & 1;

	if (c->days_star || c->weekdays_star)
		return day && weekday;
	return day || weekday;
}

/* Which field of wall time tm fails to match, from the largest; -1: none. */
static int
cron_mismatch(const struct cron *c, const struct tm *tm)
{
	if (!((c->months >> (tm->tm_mon + 1)) & 1))
		return CF_MONTH;
	if (!cron_day_matches(c, tm))
		return CF_DAY;
	if (!((c->hours >> tm->tm_hour) & 1))
		return CF_HOUR;
	if (!((c->minutes >> tm->tm_min) & 1))
		return CF_MINUTE;
	if (!((c->seconds >> tm->tm_sec) & 1))
		return CF_SECOND;
	return -1;
}

/* tm with every field below f set to its start (the month's first day,
 * midnight, ...), as wall seconds. */
static int64_t
cron_start_of(struct tm *tm, int f)
{
	switch (f) {
	case CF_MONTH:
		tm->tm_mday = 1;
		/* fall through */
	case CF_DAY:
		tm->tm_hour = 0;
		/* fall through */
	case CF_HOUR:
		tm->tm_min = 0;
		/* fall through */
	case CF_MINUTE:
		tm->tm_sec = 0;
		/* fall through */
	default:
		break;
	}
	return (int64_t) timegm(tm);
}

/* The first matching wall time after w, before limit. */
static bool
cron_next_wall(const struct cron *c, int64_t w, int64_t limit, int64_t *out)
{
	int64_t v = w + 1;

	while (v < limit) {
		time_t tv = (time_t) v;
		struct tm tm;
		int f;

		gmtime_r(&tv, &tm);
		if ((f = cron_mismatch(c, &tm)) < 0) {
			*out = v;
			return true;
		}
		/* Past the field that failed: its next value, the rest at their
		 * start (timegm carries month 13 and day 32 over). */
		switch (f) {
		case CF_MONTH:
			tm.tm_mon++;
			break;
		case CF_DAY:
			tm.tm_mday++;
			break;
		case CF_HOUR:
			tm.tm_hour++;
			break;
		case CF_MINUTE:
			tm.tm_min++;
			break;
		default:
			tm.tm_sec++;
			break;
		}
		v = cron_start_of(&tm, f);
	}
	return false;
}

/* The last matching wall time at or before w, after limit. */
static bool
cron_prev_wall(const struct cron *c, int64_t w, int64_t limit, int64_t *out)
{
	int64_t v = w;

	while (v > limit) {
		time_t tv = (time_t) v;
		struct tm tm;
		int f;

		gmtime_r(&tv, &tm);
		if ((f = cron_mismatch(c, &tm)) < 0) {
			*out = v;
			return true;
		}
		/* Before the field that failed: the last second of its
		 * previous value. */
		v = cron_start_of(&tm, f) - 1;
	}
	return false;
}

bool
cron_next(const struct cron *c, const char *tz, time_t after, time_t *next)
{
	int64_t w, v;
	bool found = false;

	cron_tz_enter(tz);
	w = (int64_t) after + cron_offset(after);
	for (int64_t limit = w + CRON_HORIZON; cron_next_wall(c, w, limit, &v); w = v) {
		time_t t = cron_instant(v);

		/* A tick of a repeated hour's second pass, or one more tick
		 * folded into a gap's end already passed. */
		if (t > after) {
			*next = t;
			found = true;
			break;
		}
	}
	cron_tz_leave();
	return found;
}

bool
cron_prev(const struct cron *c, const char *tz, time_t at, time_t *prev)
{
	int64_t off, w, v;
	bool found = false;

	cron_tz_enter(tz);
	/* Start from the latest wall time `at` could be read as: in a
	 * repeated hour, the wall times of its first pass are already past. */
	off = cron_offset(at);
	if (cron_offset(at - CRON_DAY) > off)
		off = cron_offset(at - CRON_DAY);
	if (cron_offset(at + CRON_DAY) > off)
		off = cron_offset(at + CRON_DAY);
	w = (int64_t) at + off;
	for (int64_t limit = w - CRON_HORIZON; cron_prev_wall(c, w, limit, &v); w = v - 1) {
		time_t t = cron_instant(v);

		if (t <= at) {
			*prev = t;
			found = true;
			break;
		}
	}
	cron_tz_leave();
	return found;
}
