/* Claim passes and the wake-up hand-over; see claimer.h. */
#include "claimer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "breaker.h"
#include "clock.h"
#include "log.h"
#include "outbox.h"
#include "queue.h"
#include "slots.h"
#include "source.h"
#include "work.h"

#define CLAIMER_CONTENDED_WAIT_MS 20   /* due rows exist but others hold them: first wait */

static struct {
	const struct config *cfg;
	const char *locked_by;
	const char *conninfo;
	long long next_token;        /* the next claim's token (migrations/0005) */
	bool stopped;
	bool held_back;              /* the last claim found no room: outcomes not yet written held it */
	/* between passes */
	bool sweep;                  /* claim at once */
	int64_t next_claim_ms;
	int64_t contended_ms;        /* wait before looking again at rows others hold */
	size_t next_queue;           /* round-robin start among queues and sources */
	enum {
		CLAIMER_AWAKE,           /* not registered for wake-ups */
		CLAIMER_REGISTERING,     /* registered, not yet confirmed */
		CLAIMER_ASLEEP,          /* registered and confirmed: notifications will come */
	} wake;
	int64_t confirm_wait_ms;     /* next pause while registration is unconfirmed */
	/* the pass in progress */
	bool active;
	size_t k;                    /* queues and sources looked at so far */
	bool short_everywhere, contended, claimed_any, full_batch;
	int64_t next;                /* ms until the next pass, so far */
	int limit;                   /* the claim on its way */
	long long token;
	struct task *batch;
} claimer_local;

static int64_t
claimer_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

void
claimer_setup(const char *locked_by, const char *conninfo)
{
	unsigned long long base = 0;

	claimer_local.locked_by = locked_by;
	claimer_local.conninfo = conninfo;
	claimer_local.contended_ms = CLAIMER_CONTENDED_WAIT_MS;
	/* A random 62-bit base: tokens of two processes (even with one
	 * instance name and pid, as containers have) never meet, and counting
	 * up from it leaves room for 2^62 claims. */
	if (getrandom(&base, sizeof base, 0) != sizeof base)
		base = (unsigned long long) clock_now_ms() * 2654435761u;
	claimer_local.next_token = (long long) (base >> 2) + 1;
}

void
claimer_config(const struct config *cfg)
{
	claimer_local.cfg = cfg;
}

void
claimer_connected(void)
{
	claimer_local.wake = CLAIMER_AWAKE;
	claimer_local.sweep = true;
}

void
claimer_sweep(bool contended)
{
	claimer_local.sweep = true;
	if (contended)
		claimer_local.contended_ms = CLAIMER_CONTENDED_WAIT_MS;
}

int64_t
claimer_next_ms(void)
{
	if (claimer_local.active || claimer_local.stopped)
		return INT64_MAX;
	return claimer_local.sweep ? 0 : claimer_local.next_claim_ms;
}

/* Logs a statement of the pass that failed; a lost connection is the
 * daemon's to notice. */
static void
claimer_failed(const char *what, const struct db_error *err)
{
	char text[1200];

	if (work_attached())
		log_error("%s failed: %s", what, db_error_text(err, text, sizeof text));
}

static void claimer_queue(void);

/* The pass is over: set the timer. */
static void
claimer_end(void)
{
	claimer_local.active = false;
	claimer_local.next_queue++;
	claimer_local.next_claim_ms = clock_now_ms() + claimer_local.next;
}

static void
claimer_unregistered(void *ctx, PGresult *res, const struct db_error *err)
{
	if (res == NULL)
		claimer_failed("wake-up unregistration", err);
	else
		claimer_local.wake = CLAIMER_AWAKE;
}

/* A claim came back full: there is a backlog, and this instance will claim
 * again as soon as it has room, so it needs no notifications. */
static void
claimer_wake_busy(void)
{
	if (claimer_local.wake != CLAIMER_AWAKE)
		queue_sleep_unregister_send(claimer_local.locked_by, claimer_unregistered, NULL);
}

static void
claimer_confirmed(void *ctx, PGresult *res, const struct db_error *err)
{
	if (res == NULL) {
		claimer_failed("wake-up confirmation", err);
		claimer_local.next = claimer_min(claimer_local.next, claimer_local.cfg->poll_interval_ms);
	} else if (queue_sleep_confirm_result(res)) {
		/* One more claim sees whatever the stragglers committed. */
		claimer_local.wake = CLAIMER_ASLEEP;
		claimer_local.sweep = true;
	} else {
		int64_t wait = claimer_local.confirm_wait_ms;

		claimer_local.confirm_wait_ms = claimer_min(wait * 2, claimer_local.cfg->poll_interval_ms);
		claimer_local.next = claimer_min(claimer_local.next, wait);
	}
	claimer_end();
}

static void
claimer_registered(void *ctx, PGresult *res, const struct db_error *err)
{
	if (res == NULL) {
		claimer_failed("wake-up registration", err);
		claimer_local.next = claimer_min(claimer_local.next, claimer_local.cfg->poll_interval_ms);
		claimer_end();
		return;
	}
	claimer_local.wake = CLAIMER_REGISTERING;
	claimer_local.confirm_wait_ms = CLAIMER_CONTENDED_WAIT_MS;
	queue_sleep_confirm_send(claimer_confirmed, NULL);
}

/*
 * Every claim came back short: this instance is about to wait, so it asks
 * producers for notifications, and confirms that no insert which missed
 * the request is still open before it trusts them
 * (migrations/0003_wakeup_only_sleepers.sql). Until confirmed it claims
 * again after a short and growing pause. Ends the pass.
 */
static void
claimer_wake_idle(void)
{
	const struct config *cfg = claimer_local.cfg;

	if (claimer_local.wake == CLAIMER_ASLEEP) {
		claimer_end();
	} else if (claimer_local.wake == CLAIMER_AWAKE) {
		queue_sleep_register_send(claimer_local.locked_by, (const char *const *) cfg->queues, cfg->nqueues,
		                          claimer_registered, NULL);
	} else {
		queue_sleep_confirm_send(claimer_confirmed, NULL);
	}
}

/* Every queue has been looked at. */
static void
claimer_finish(void)
{
	const struct config *cfg = claimer_local.cfg;

	free(claimer_local.batch);
	claimer_local.batch = NULL;
	breaker_pass_end(claimer_local.short_everywhere, clock_now_ms());
	if (claimer_local.claimed_any || !claimer_local.contended)
		claimer_local.contended_ms = CLAIMER_CONTENDED_WAIT_MS;
	if (claimer_local.contended) {
		/* Due rows we could not lock: another instance is claiming them,
		 * or a long transaction holds them. Look again soon, then less
		 * and less often. */
		claimer_local.next = claimer_min(claimer_local.next, claimer_local.contended_ms);
		claimer_local.contended_ms = claimer_min(claimer_local.contended_ms * 2, cfg->poll_interval_ms);
	}
	if (work_attached() && cfg->notify && !claimer_local.stopped) {
		if (claimer_local.full_batch)
			claimer_wake_busy();
		else if (claimer_local.short_everywhere) {
			claimer_wake_idle();
			return;
		}
	}
	claimer_end();
}

/* What a pass walks: the served queues of dispatch.tasks, then the
 * sources (their own tables: source.h). */
static size_t
claimer_ntargets(void)
{
	return claimer_local.cfg->nqueues + source_count();
}

/* The target the pass has reached: a source (returned), or a queue
 * (NULL returned, its name in *queue). */
static const struct source *
claimer_target(const char **queue)
{
	const struct config *cfg = claimer_local.cfg;
	size_t t = (claimer_local.next_queue + claimer_local.k) % claimer_ntargets();

	*queue = t < cfg->nqueues ? cfg->queues[t] : NULL;
	return t < cfg->nqueues ? NULL : source_get((int) (t - cfg->nqueues + 1));
}

static void
claimer_next_due(void *ctx, PGresult *res, const struct db_error *err)
{
	if (res == NULL) {
		claimer_failed("next due time", err);
	} else {
		int64_t due = queue_next_due_result(res);

		if (due == 0)
			claimer_local.contended = true;
		else if (due < claimer_local.next)
			claimer_local.next = due;
	}
	claimer_local.k++;
	claimer_queue();
}

/* A claim's view of per-kind limits: the kinds at their limit, which it
 * skips, and the kinds with room left, which it claims no more of than
 * that (the claim keeps the limit: sql/claim_room_cte.sql). */
struct claimer_kinds {
	struct queue_kinds skip, limited;
	int *rooms;
};

/* Fills k from the slots; the arrays have room for cfg->nhandlers + 1. */
static void
claimer_kinds(struct claimer_kinds *k, const char **skip, const char **limited, int *rooms)
{
	const struct config *cfg = claimer_local.cfg;
	const char *names[cfg->nhandlers + 1];
	int room[cfg->nhandlers + 1];
	size_t n = slots_kind_rooms(cfg, names, room, cfg->nhandlers);

	k->skip = (struct queue_kinds){skip, 0};
	k->limited = (struct queue_kinds){limited, 0};
	k->rooms = rooms;
	for (size_t i = 0; i < n; i++) {
		if (room[i] == 0) {
			skip[k->skip.count++] = names[i];
		} else {
			limited[k->limited.count] = names[i];
			rooms[k->limited.count++] = room[i];
		}
	}
	/* Open breakers' kinds are skipped; a half-open one's probe is a
	 * room of one. */
	breaker_kinds(skip, &k->skip.count, limited, rooms, &k->limited.count, cfg->nhandlers + 1);
}

static void
claimer_claimed(void *ctx, PGresult *res, const struct db_error *err)
{
	const struct config *cfg = claimer_local.cfg;
	int n = outbox_claim_result(res, err, claimer_local.token, claimer_local.limit, claimer_local.batch,
	                            clock_now_ms());

	if (n < 0) {
		/* The successes that rode along may have been refused (SQLSTATE
		 * class 22 or 23), not the claim: the outbox now writes them its
		 * careful way, and the claim goes again alone. A lock that
		 * outlasted lock_timeout (55P03: a row a success needed, or a
		 * table lock) is contention: look again soon, then less often. */
		if (work_attached() && (strncmp(err->sqlstate, "22", 2) == 0 || strncmp(err->sqlstate, "23", 2) == 0))
			claimer_local.sweep = true;
		else if (work_attached() && strcmp(err->sqlstate, "55P03") == 0)
			claimer_local.contended = true;
		else
			claimer_failed("claim", err);
		claimer_local.next = claimer_min(claimer_local.next, cfg->poll_interval_ms);
		claimer_local.short_everywhere = false;
		claimer_local.k = claimer_ntargets();
		claimer_queue();
		return;
	}
	claimer_local.claimed_any = claimer_local.claimed_any || n > 0;
	for (int i = 0; i < n; i++)
		slots_start(cfg, claimer_local.conninfo, &claimer_local.batch[i]);
	if (n < claimer_local.limit) {
		if (claimer_local.short_everywhere && work_attached()) {
			const char *skip[cfg->nhandlers + 1], *limited[cfg->nhandlers + 1];
			int rooms[cfg->nhandlers + 1];
			struct claimer_kinds k;
			const char *queue;
			const struct source *src = claimer_target(&queue);

			claimer_kinds(&k, skip, limited, rooms);
			if (src != NULL)
				queue_source_next_due_send(src, claimer_next_due, NULL);
			else
				queue_next_due_send(queue, &k.skip, claimer_next_due, NULL);
			return;
		}
		claimer_local.k++;
	} else {
		claimer_local.full_batch = true;
	}
	claimer_queue();
}

/* The room a source's handler has left under its own concurrency limit
 * (free when it has none). */
static int
claimer_source_room(const struct claimer_kinds *k, const struct source *src, int free_slots)
{
	for (size_t i = 0; i < k->skip.count; i++)
		if (strcmp(k->skip.names[i], src->name) == 0)
			return 0;
	for (size_t i = 0; i < k->limited.count; i++)
		if (strcmp(k->limited.names[i], src->name) == 0)
			return k->rooms[i] < free_slots ? k->rooms[i] : free_slots;
	return free_slots;
}

/* Claims from the queue or source the pass has reached, or finishes the
 * pass. */
static void
claimer_queue(void)
{
	const struct config *cfg = claimer_local.cfg;
	struct queue_claimer who = {claimer_local.locked_by, cfg->lease_ms};
	const char *skip[cfg->nhandlers + 1], *limited[cfg->nhandlers + 1];
	int rooms[cfg->nhandlers + 1];
	struct claimer_kinds k;
	int free_slots = cfg->concurrency - slots_running();
	const char *queue;
	const struct source *src;

	/* Failures of this pass may open a breaker: report them first
	 * (handlers that fail at once would otherwise run through a backlog
	 * within one pass). */
	if (claimer_local.k >= claimer_ntargets() || !work_attached() || claimer_local.stopped || breaker_busy()) {
		claimer_finish();
		return;
	}
	if (free_slots <= 0) {
		claimer_local.short_everywhere = false;
		claimer_finish();
		return;
	}
	claimer_kinds(&k, skip, limited, rooms);
	src = claimer_target(&queue);
	if (src != NULL && (free_slots = claimer_source_room(&k, src, free_slots)) == 0) {
		/* Its handler is at its own limit: the next target. */
		claimer_local.k++;
		claimer_queue();
		return;
	}
	free(claimer_local.batch);
	claimer_local.batch = calloc((size_t) free_slots, sizeof *claimer_local.batch);
	if (claimer_local.batch == NULL)
		abort();
	claimer_local.token = claimer_local.next_token++;
	claimer_local.limit = outbox_claim_send(&who, src, queue, free_slots, &k.skip, &k.limited, k.rooms,
	                                        claimer_local.token, claimer_claimed, NULL);
	if (claimer_local.limit == 0) {
		/* Outcomes not yet written hold the rest: claim once they are. */
		claimer_local.held_back = true;
		(void) outbox_take_freed();
		claimer_local.short_everywhere = false;
		claimer_finish();
	}
}

void
claimer_step(int64_t now)
{
	const struct config *cfg = claimer_local.cfg;

	if (claimer_local.held_back && outbox_take_freed()) {
		claimer_local.held_back = false;
		claimer_local.sweep = true;
	}
	/* A report of failures on its way may open a breaker: the claim
	 * follows it. */
	if (claimer_local.active || claimer_local.stopped || !work_attached() || breaker_busy()
	    || slots_running() >= cfg->concurrency || (!claimer_local.sweep && now < claimer_local.next_claim_ms))
		return;
	claimer_local.sweep = false;
	claimer_local.active = true;
	claimer_local.k = 0;
	claimer_local.short_everywhere = true;
	claimer_local.contended = claimer_local.claimed_any = claimer_local.full_batch = false;
	claimer_local.next = cfg->poll_interval_ms;
	breaker_pass_start();
	claimer_queue();
}

void
claimer_stop(void)
{
	claimer_local.stopped = true;
	/* No more claims: producers need not wake this instance. */
	if (work_attached())
		claimer_wake_busy();
}

void
claimer_forget_registration(void)
{
	if (work_attached())
		claimer_wake_busy();
}
