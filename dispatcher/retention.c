/* Deleting finished rows past their age, a batch at a time; see retention.h. */
#include "retention.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "queue.h"
#include "work.h"

#define RETENTION_EVERY_MS 60000
#define RETENTION_FIRST_MS 1000      /* the first round: within this of start */
/* After a full batch that took T, the next waits RETENTION_PACE * T: a
 * round that has much to delete (retention just switched on, a long
 * outage) takes at most a fifth of the work connection's time. */
#define RETENTION_PACE 4

/* What a round walks, in order: a table, a task status (tasks only) and
 * where its age is in the config. A source's side rows of failed rows go
 * with the failed tasks' age (docs/sources.md). */
static const struct {
	enum queue_retention_table table;
	const char *status;
	size_t age;
} retention_targets[] = {
	{QUEUE_RETAIN_TASKS, "complete", offsetof(struct config, retention.complete_ms)},
	{QUEUE_RETAIN_TASKS, "failed", offsetof(struct config, retention.failed_ms)},
	{QUEUE_RETAIN_TASKS, "cancelled", offsetof(struct config, retention.cancelled_ms)},
	{QUEUE_RETAIN_ATTEMPTS, NULL, offsetof(struct config, retention.attempts_ms)},
	{QUEUE_RETAIN_SOURCE_ROWS, NULL, offsetof(struct config, retention.failed_ms)},
};
#define RETENTION_NTARGETS (sizeof retention_targets / sizeof retention_targets[0])

static struct {
	int64_t next_ms;             /* the next round; 0: not yet planned */
	int target;                  /* the round is at this target; -1: no round */
	int64_t sent_ms;             /* when the batch on its way was sent */
	int64_t next_batch_ms;       /* the round's next batch, not before */
	bool in_flight;              /* a batch is queued or running */
	bool failed;                 /* the last batch failed: the round ends */
	long long deleted;           /* by this round, of the current target */
	int64_t age_ms;              /* the current target's age, for the log */
} retention_local = {.target = -1};

static int64_t
retention_age(const struct config *cfg, size_t t)
{
	return *(const int64_t *) (const void *) ((const char *) cfg + retention_targets[t].age);
}

/* The next round, a minute away, give or take a tenth. */
static void
retention_plan(int64_t now)
{
	retention_local.next_ms = now + RETENTION_EVERY_MS - RETENTION_EVERY_MS / 10
	                          + random() % (RETENTION_EVERY_MS / 5);
	retention_local.target = -1;
}

static void
retention_log_target(void)
{
	const char *status = retention_targets[retention_local.target].status;
	enum queue_retention_table table = retention_targets[retention_local.target].table;

	if (retention_local.deleted > 0 && status != NULL)
		log_info("retention deleted=%lld status=%s older_than_ms=%lld", retention_local.deleted, status,
		         (long long) retention_local.age_ms);
	else if (retention_local.deleted > 0)
		log_info("retention deleted=%lld table=%s older_than_ms=%lld", retention_local.deleted,
		         table == QUEUE_RETAIN_ATTEMPTS ? "attempts" : "source_rows", (long long) retention_local.age_ms);
	retention_local.deleted = 0;
}

static void
retention_done(void *ctx, PGresult *res, const struct db_error *err)
{
	char text[1200];
	int64_t now;
	int n;

	retention_local.in_flight = false;
	if (res == NULL) {
		/* Tried again at the next round; a lost connection is the
		 * daemon's to notice. */
		if (work_attached())
			log_error("retention batch failed: %s", db_error_text(err, text, sizeof text));
		retention_local.failed = true;
		return;
	}
	n = queue_retention_result(res);
	retention_local.deleted += n;
	log_debug("retention batch deleted=%d", n);
	/* A full batch: more may be waiting, the same target goes on, after
	 * a pause that keeps claims and outcomes ahead. */
	now = clock_now_ms();
	retention_local.next_batch_ms = n == RETENTION_BATCH ? now + RETENTION_PACE * (now - retention_local.sent_ms) : now;
	if (n < RETENTION_BATCH) {
		retention_log_target();
		retention_local.target++;
	}
}

void
retention_tick(const struct config *cfg, int64_t now)
{
	if (retention_local.in_flight || !work_attached())
		return;
	if (retention_local.next_ms == 0)
		retention_local.next_ms = now + random() % RETENTION_FIRST_MS;
	if (retention_local.failed) {
		retention_local.failed = false;
		retention_local.deleted = 0;
		retention_plan(now);
		return;
	}
	if (retention_local.target < 0) {
		if (now < retention_local.next_ms)
			return;
		retention_local.target = 0;
		retention_local.deleted = 0;
		retention_local.next_batch_ms = now;
	}
	if (now < retention_local.next_batch_ms)
		return;
	/* Targets set to 0 (off) are kept for ever. */
	while ((size_t) retention_local.target < RETENTION_NTARGETS && retention_age(cfg, (size_t) retention_local.target) <= 0)
		retention_local.target++;
	if ((size_t) retention_local.target == RETENTION_NTARGETS) {
		retention_plan(now);
		return;
	}
	retention_local.age_ms = retention_age(cfg, (size_t) retention_local.target);
	retention_local.in_flight = true;
	retention_local.sent_ms = now;
	queue_retention_send(retention_targets[retention_local.target].table,
	                     retention_targets[retention_local.target].status, retention_local.age_ms, RETENTION_BATCH,
	                     retention_done, NULL);
}

int64_t
retention_next_ms(void)
{
	if (retention_local.in_flight)
		return INT64_MAX;
	if (retention_local.failed)
		return 0;
	if (retention_local.target >= 0)
		return retention_local.next_batch_ms;
	return retention_local.next_ms;
}
