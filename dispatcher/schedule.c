/* Periodic tasks: when each schedule ticks, and enqueuing its ticks; see
 * schedule.h. */
#include "schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "work.h"

/* One schedule's place, parallel to cfg->schedules. Times are seconds
 * since the epoch. */
struct schedule_state {
	int64_t last;                /* the newest tick sent (or found in the table) */
	int64_t next;                /* the tick to wait for */
	bool has_next;               /* false: the expression has no further tick */
};

static struct {
	const struct config *cfg;
	struct schedule_state *s;    /* cfg->nschedules of them */
	/* Bumped by every new sync, so the answer to an older one (sent
	 * before a reload or a reconnect) is ignored. */
	unsigned generation;
	enum {
		SCHEDULE_UNSYNCED,       /* a sync is wanted, at sync_at_ms */
		SCHEDULE_SYNCING,        /* ... and on its way */
		SCHEDULE_READY,          /* waiting for ticks */
	} state;
	int64_t sync_at_ms;          /* monotonic; later after a failure */
	bool stopped;
	bool enqueued;
} schedule_local;

/* A tick on its way: what its answer is logged with. */
struct schedule_tick_ctx {
	char name[128];
	int64_t tick;
};

/* "2026-11-29T03:00:00Z" */
static const char *
schedule_fmt(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t) t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* Sync again (after retry_ms, on a failure). */
static void
schedule_resync(int64_t retry_ms)
{
	schedule_local.generation++;
	schedule_local.state = SCHEDULE_UNSYNCED;
	schedule_local.sync_at_ms = clock_now_ms() + retry_ms;
}

void
schedule_config(const struct config *cfg)
{
	free(schedule_local.s);
	schedule_local.cfg = cfg;
	schedule_local.s = mem_calloc(cfg->nschedules + 1, sizeof *schedule_local.s);
	schedule_resync(0);
}

void
schedule_connected(void)
{
	schedule_resync(0);
}

void
schedule_stop(void)
{
	schedule_local.stopped = true;
}

bool
schedule_take_enqueued(void)
{
	bool e = schedule_local.enqueued;

	schedule_local.enqueued = false;
	return e;
}

void
schedule_free(void)
{
	free(schedule_local.s);
	schedule_local.s = NULL;
}

int64_t
schedule_next_ms(void)
{
	const struct config *cfg = schedule_local.cfg;
	int64_t due = INT64_MAX, now, wall;

	if (cfg == NULL || cfg->nschedules == 0 || schedule_local.stopped)
		return INT64_MAX;
	if (schedule_local.state == SCHEDULE_UNSYNCED)
		return schedule_local.sync_at_ms;
	if (schedule_local.state == SCHEDULE_SYNCING)
		return INT64_MAX;
	/* Ticks are wall-clock times: turned into the monotonic clock at
	 * each turn, so a wall clock that is set moves them along. */
	now = clock_now_ms();
	wall = clock_wall_ms();
	for (size_t i = 0; i < cfg->nschedules; i++) {
		int64_t at;

		if (!schedule_local.s[i].has_next)
			continue;
		at = schedule_local.s[i].next * 1000 - wall;
		at = now + (at > 0 ? at : 0);
		if (at < due)
			due = at;
	}
	return due;
}

static void
schedule_ticked(void *ctx, PGresult *res, const struct db_error *err)
{
	struct schedule_tick_ctx *t = ctx;
	char at[32], text[1200];
	long long id;

	if (res == NULL) {
		/* A lost connection syncs again on reconnect; anything else
		 * syncs again after a pause, which finds the tick missed. */
		if (work_attached() && strcmp(err->sqlstate, "55P03") == 0) {
			/* lock_timeout (sql/work_session.sql): another daemon's
			 * upsert of the same tick holds the row. The usual race,
			 * not a failure: the resync finds the tick done, or missed
			 * if that daemon rolled back. */
			log_info("schedule=%s tick=%s another daemon is enqueueing it", t->name,
			         schedule_fmt(t->tick, at, sizeof at));
			schedule_resync(schedule_local.cfg->poll_interval_ms);
		} else if (work_attached()) {
			log_error("schedule=%s tick=%s enqueue failed: %s", t->name, schedule_fmt(t->tick, at, sizeof at),
			          db_error_text(err, text, sizeof text));
			schedule_resync(schedule_local.cfg->poll_interval_ms);
		}
	} else if ((id = queue_schedule_tick_result(res)) > 0) {
		log_info("schedule=%s tick=%s task=%lld enqueued", t->name, schedule_fmt(t->tick, at, sizeof at), id);
		schedule_local.enqueued = true;
	} else {
		log_debug("schedule=%s tick=%s already enqueued or recorded", t->name,
		          schedule_fmt(t->tick, at, sizeof at));
	}
	free(t);
}

static void
schedule_send(const struct schedule_config *sc, int64_t tick, bool enqueue)
{
	struct schedule_tick_ctx *t = mem_calloc(1, sizeof *t);

	snprintf(t->name, sizeof t->name, "%s", sc->name);
	t->tick = tick;
	queue_schedule_tick_send(sc, tick, enqueue, schedule_ticked, t);
}

/*
 * Schedule i's latest tick, latest, is past its last one: enqueue it, or
 * with catch_up every tick since last (the latest SCHEDULE_CATCH_UP_MAX),
 * oldest first so that each moves last_tick forward.
 */
static void
schedule_fire(size_t i, int64_t latest)
{
	const struct schedule_config *sc = &schedule_local.cfg->schedules[i];
	struct schedule_state *st = &schedule_local.s[i];
	char a[32], b[32];

	if (sc->catch_up) {
		int64_t *ticks = mem_calloc(SCHEDULE_CATCH_UP_MAX, sizeof *ticks);
		size_t n = 0;
		time_t t = (time_t) latest, prev;
		bool more;

		ticks[n++] = latest;
		while ((more = cron_prev(&sc->spec, sc->timezone, t - 1, &prev) && prev > st->last)
		       && n < SCHEDULE_CATCH_UP_MAX) {
			ticks[n++] = prev;
			t = prev;
		}
		if (more)
			log_warn("schedule=%s catch_up: more than %d ticks missed since %s; enqueuing the latest %d",
			         sc->name, SCHEDULE_CATCH_UP_MAX, schedule_fmt(st->last, a, sizeof a), SCHEDULE_CATCH_UP_MAX);
		else if (n > 1)
			log_info("schedule=%s catch_up: enqueuing %zu missed ticks since %s", sc->name, n,
			         schedule_fmt(st->last, a, sizeof a));
		while (n > 0)
			schedule_send(sc, ticks[--n], true);
		free(ticks);
	} else {
		time_t next;

		/* More than one tick passed: say so, it is the one difference
		 * catch_up makes. */
		if (cron_next(&sc->spec, sc->timezone, (time_t) st->last, &next) && next < latest)
			log_info("schedule=%s ticks missed since %s; enqueuing the latest, %s, once", sc->name,
			         schedule_fmt(st->last, a, sizeof a), schedule_fmt(latest, b, sizeof b));
		schedule_send(sc, latest, true);
	}
	st->last = latest;
}

/* The next tick to wait for, after `after`. */
static void
schedule_arm(size_t i, int64_t after)
{
	const struct schedule_config *sc = &schedule_local.cfg->schedules[i];
	struct schedule_state *st = &schedule_local.s[i];
	time_t next;

	st->has_next = cron_next(&sc->spec, sc->timezone, (time_t) after, &next);
	st->next = st->has_next ? (int64_t) next : 0;
}

static void
schedule_synced(void *ctx, PGresult *res, const struct db_error *err)
{
	const struct config *cfg = schedule_local.cfg;
	size_t n = cfg->nschedules;
	const char **names;
	bool *known;
	int64_t *last, now;
	char text[1200], a[32];

	if ((unsigned) (uintptr_t) ctx != schedule_local.generation)
		return;   /* a reload or a reconnect asked for a newer sync */
	if (res == NULL) {
		if (work_attached()) {
			log_error("reading the schedules' last ticks failed: %s", db_error_text(err, text, sizeof text));
			schedule_resync(cfg->poll_interval_ms);
		}
		return;
	}
	names = mem_calloc(n + 1, sizeof *names);
	known = mem_calloc(n + 1, sizeof *known);
	last = mem_calloc(n + 1, sizeof *last);
	for (size_t i = 0; i < n; i++)
		names[i] = cfg->schedules[i].name;
	queue_schedule_last_result(res, names, n, known, last);
	now = clock_wall_ms() / 1000;
	for (size_t i = 0; i < n; i++) {
		const struct schedule_config *sc = &cfg->schedules[i];
		struct schedule_state *st = &schedule_local.s[i];
		time_t latest;

		if (!cron_prev(&sc->spec, sc->timezone, (time_t) now, &latest)) {
			/* No tick in the past ten years: nothing to settle. */
			st->last = known[i] ? last[i] : 0;
			schedule_arm(i, now);
			continue;
		}
		if (!known[i]) {
			/* First start: this tick passed before the schedule existed. */
			log_info("schedule=%s first start: tick %s recorded, not enqueued", sc->name,
			         schedule_fmt(latest, a, sizeof a));
			schedule_send(sc, latest, false);
			st->last = latest;
		} else if (last[i] < latest) {
			st->last = last[i];
			schedule_fire(i, latest);
		} else {
			st->last = last[i];
		}
		schedule_arm(i, latest);
	}
	free(names);
	free(known);
	free(last);
	schedule_local.state = SCHEDULE_READY;
}

void
schedule_step(int64_t now)
{
	const struct config *cfg = schedule_local.cfg;
	int64_t wall;

	if (cfg == NULL || cfg->nschedules == 0 || schedule_local.stopped || !work_attached())
		return;
	if (schedule_local.state == SCHEDULE_UNSYNCED) {
		const char *names[cfg->nschedules + 1];

		if (now < schedule_local.sync_at_ms)
			return;
		for (size_t i = 0; i < cfg->nschedules; i++)
			names[i] = cfg->schedules[i].name;
		schedule_local.state = SCHEDULE_SYNCING;
		queue_schedule_last_send(names, cfg->nschedules, schedule_synced,
		                         (void *) (uintptr_t) schedule_local.generation);
		return;
	}
	if (schedule_local.state != SCHEDULE_READY)
		return;
	wall = clock_wall_ms();
	for (size_t i = 0; i < cfg->nschedules; i++) {
		const struct schedule_config *sc = &cfg->schedules[i];
		struct schedule_state *st = &schedule_local.s[i];
		time_t latest;

		if (!st->has_next || wall < st->next * 1000)
			continue;
		/* Usually st->next itself; later when the loop was held up
		 * past more than one tick. */
		if (!cron_prev(&sc->spec, sc->timezone, (time_t) (wall / 1000), &latest) || latest <= st->last)
			latest = (time_t) st->next;
		schedule_fire(i, latest);
		schedule_arm(i, latest);
	}
}
