/* Tasks in flight and what their ends mean; see slots.h. */
#include "slots.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "clock.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "outbox.h"
#include "policy.h"

/* One task in flight, from its claim until its outcome is queued. Slots
 * are allocated one by one and never move: a handler type holds on to
 * its handler_task (and the task in it) while the task runs. */
struct slot {
	struct handler_task ht;      /* what the handler type sees */
	bool used;
	int index;                   /* in slots_local.all */
	struct task task;
	struct policy policy;        /* attempts, backoff, timeout for this task */
	const struct handler_ops *ops;
	bool shutdown_stopped;       /* stopped by shutdown: attempt given back */
	bool lease_lost;             /* reaped by another instance: stopped, no outcome */
	bool cancelled;              /* ... because an operator cancelled the task */
	bool killed;                 /* a second signal: released whatever happened */
};

static struct {
	struct slot **all;
	int nslots;
	int *free_stack;             /* indexes of free slots: a start takes one in O(1) */
	int nfree;
	int running;
	bool freed;                  /* a slot was freed since slots_take_freed() */
	const char *instance;        /* locked_by, borrowed */
	void (*sink)(struct outcome o);
} slots_local = {.sink = outbox_add};

static struct slot *
slots_of(struct handler_task *ht)
{
	return (struct slot *) ((char *) ht - offsetof(struct slot, ht));
}

void
slots_setup(const char *instance)
{
	slots_local.instance = instance;
	handler_setup_all();
}

void
slots_outcome_sink(void (*sink)(struct outcome o))
{
	slots_local.sink = sink != NULL ? sink : outbox_add;
}

int
slots_running(void)
{
	return slots_local.running;
}

int
slots_capacity(void)
{
	return slots_local.nslots;
}

bool
slots_take_freed(void)
{
	bool freed = slots_local.freed;

	slots_local.freed = false;
	return freed;
}

/* An outcome of type for t's claim: its id, table, key (a copy) and
 * token, and the attempt. */
static struct outcome
slots_outcome(const struct task *t, enum outcome_type type)
{
	return (struct outcome){.id = t->id,
	                        .source = t->source,
	                        .key = t->key != NULL ? mem_strdup(t->key) : NULL,
	                        .token = t->token,
	                        .attempt = t->attempt,
	                        .type = type};
}

/*
 * A failed attempt: retried after a backoff (at least min_delay_ms) while
 * attempts remain, else failed for good (policy_after_failure()); failed
 * for good at once when final (no retry can fix it). error must be valid
 * text; it is copied.
 */
static void
slots_failed(struct slot *s, const char *error, bool final, int64_t min_delay_ms)
{
	const struct task *t = &s->task;
	struct outcome o = slots_outcome(t, OUTCOME_RETRY);

	o.error = mem_strdup(error);
	if (final) {
		o.type = OUTCOME_FAIL;
		log_error("task=%s kind=%s attempt=%d/%d failed for good (no retry can fix it): %s", task_name(t),
		          t->kind, t->attempt, s->policy.max_attempts, error);
	} else if (policy_after_failure(&s->policy, t->attempt, min_delay_ms, &o.delay_ms) == POLICY_FAIL) {
		o.type = OUTCOME_FAIL;
		log_error("task=%s kind=%s attempt=%d/%d failed for good: %s", task_name(t), t->kind,
		          t->attempt, s->policy.max_attempts, error);
	} else {
		o.type = OUTCOME_RETRY;
		log_warn("task=%s kind=%s attempt=%d/%d retry_in_ms=%lld failed: %s", task_name(t), t->kind,
		         t->attempt, s->policy.max_attempts, (long long) o.delay_ms, error);
	}
	slots_local.sink(o);
}

static void
slots_complete(const struct task *t, char *result, int64_t ms)
{
	struct outcome o = slots_outcome(t, OUTCOME_COMPLETE);

	o.result = result;

	log_info("task=%s kind=%s attempt=%d ms=%lld complete", task_name(t), t->kind, t->attempt,
	         (long long) ms);
	slots_local.sink(o);
}

static void
slots_release(const struct task *t, const char *why)
{
	struct outcome o = slots_outcome(t, OUTCOME_RELEASE);

	log_info("task=%s kind=%s attempt=%d returned to pending untried: %s", task_name(t), t->kind,
	         t->attempt, why);
	slots_local.sink(o);
}

/*
 * A handler that never ran (no connection could be had for it): the task
 * goes back to pending with its attempt given back, with the reason in
 * last_error, after the delay the handler asked for. Counting the attempt
 * would fail tasks for good while connections cannot be had (the role's
 * connection limit, say) without ever running them.
 */
static void
slots_not_run(const struct task *t, const char *why, int64_t delay_ms)
{
	struct outcome o = slots_outcome(t, OUTCOME_RELEASE);

	o.delay_ms = delay_ms;
	o.error = mem_strdup(why);

	log_warn("task=%s kind=%s attempt=%d retry_in_ms=%lld returned to pending untried: %s", task_name(t),
	         t->kind, t->attempt, (long long) delay_ms, why);
	slots_local.sink(o);
}

static int
slots_running_of(const char *kind)
{
	int n = 0;

	for (int i = 0; i < slots_local.nslots; i++)
		if (slots_local.all[i]->used && strcmp(slots_local.all[i]->task.kind, kind) == 0)
			n++;
	return n;
}

size_t
slots_kind_rooms(const struct config *cfg, const char **names, int *rooms, size_t cap)
{
	size_t n = 0;

	for (size_t h = 0; h < cfg->nhandlers && n < cap; h++) {
		const struct handler_config *hc = &cfg->handlers[h];
		int limit = policy_of(cfg, hc, 0).concurrency, running;

		if (limit <= 0)
			continue;
		running = slots_running_of(hc->kind);
		names[n] = hc->kind;
		rooms[n++] = running < limit ? limit - running : 0;
	}
	return n;
}

static void
slots_free_one(struct slot *s)
{
	int index = s->index;

	task_clear(&s->task);
	memset(s, 0, sizeof *s);
	s->index = index;
	slots_local.free_stack[slots_local.nfree++] = index;
	slots_local.running--;
	/* A free slot is room for the next task: claim at once. */
	slots_local.freed = true;
}

/* What a run's end tells the kind's breaker: a failed attempt counts
 * unless the task itself is at fault (final: the service refused it as
 * bad) or the daemon ended it (stopped, lost, cancelled, killed). */
static enum breaker_event
slots_breaker_event(const struct slot *s, const struct handler_report *r)
{
	if (r->end == HANDLER_SUCCEEDED || r->end == HANDLER_COMMITTED)
		return BREAKER_SUCCESS;
	if (r->end == HANDLER_FAILED && !r->final && !s->killed && !s->cancelled && !s->lease_lost
	    && !s->shutdown_stopped)
		return BREAKER_FAILURE;
	return BREAKER_VOID;
}

void
slots_done(struct handler_task *ht, struct handler_report *r)
{
	struct slot *s = slots_of(ht);
	const struct task *t = &s->task;
	const char *label = s->ops->label;

	breaker_note(t, slots_breaker_event(s, r), r->error);
	if (s->killed) {
		slots_release(t, "stopped at once by a second signal");
	} else if (s->cancelled) {
		/* The row says cancelled, and every write is fenced on
		 * in_progress: nothing the handler did is recorded. */
		log_info("task=%s kind=%s attempt=%d %s ended after the task was cancelled; "
		         "outcome not recorded", task_name(t), t->kind, t->attempt, label);
	} else if (s->lease_lost) {
		log_warn("task=%s kind=%s attempt=%d %s ended after its lease was lost; "
		         "outcome not recorded", task_name(t), t->kind, t->attempt, label);
	} else if (r->end == HANDLER_SUCCEEDED) {
		/* Success counts even when shutdown asked the handler to stop:
		 * its work is done and must not run again. */
		slots_complete(t, r->result, clock_now_ms() - s->ht.started_ms);
		r->result = NULL;
	} else if (r->end == HANDLER_COMMITTED) {
		/* Already recorded in the handler's own transaction: the outbox
		 * hears of it all the same (it knows every task's end), and has
		 * nothing to write. */
		log_info("task=%s kind=%s attempt=%d ms=%lld complete", task_name(t), t->kind, t->attempt,
		         (long long) (clock_now_ms() - s->ht.started_ms));
		slots_local.sink(slots_outcome(t, OUTCOME_COMMITTED));
	} else if (r->end == HANDLER_LEASE_LOST) {
		log_warn("task=%s kind=%s attempt=%d lease lost; %s rolled back", task_name(t), t->kind,
		         t->attempt, label);
	} else if (s->shutdown_stopped) {
		slots_release(t, "stopped by shutdown");
	} else if (r->end == HANDLER_NOT_RUN) {
		slots_not_run(t, r->error, r->delay_ms);
	} else {
		slots_failed(s, r->error != NULL ? r->error : "handler failed", r->final, r->delay_ms);
	}
	free(r->result);
	r->result = NULL;
	slots_free_one(s);
}

/* Takes a freshly claimed task: finds its handler and starts it. */
void
slots_start(const struct config *cfg, const char *conninfo, struct task *t)
{
	const struct handler_config *h = config_handler(cfg, t->kind);
	const struct handler_ops *ops = h != NULL ? handler_find(h->type) : NULL;
	struct handler_env env = {.cfg = cfg, .conninfo = conninfo, .instance = slots_local.instance};
	struct policy p = policy_of(cfg, h, t->max_attempts);
	struct slot *s;
	char why[512];

	/* The claim keeps kind limits (sql/claim_room_cte.sql); this is the
	 * safety net for a reload that lowered one under a claim on its way. */
	if (slots_local.nfree == 0 || (p.concurrency > 0 && slots_running_of(t->kind) >= p.concurrency)) {
		/* Claimed beyond a limit (a batch can hold several of one kind). */
		slots_release(t, "handler concurrency limit reached");
		task_clear(t);
		return;
	}
	s = slots_local.all[slots_local.free_stack[--slots_local.nfree]];
	s->used = true;
	s->task = *t;
	slots_local.running++;
	s->policy = p;
	s->ops = ops;
	s->ht = (struct handler_task){.task = &s->task, .policy = &s->policy, .started_ms = clock_now_ms()};
	s->ht.deadline_ms = s->ht.started_ms + s->policy.timeout_ms;

	if (t->attempt > s->policy.max_attempts) {
		/* Claimed with its attempts already used (an instance with another
		 * limit returned it): record, do not run. */
		snprintf(why, sizeof why, "no attempts left (attempt %d of %d)", t->attempt, s->policy.max_attempts);
		slots_failed(s, why, false, 0);
		slots_free_one(s);
		return;
	}
	/* Keys are the format's own, for the JSON log's fields. */
	if (t->key != NULL)
		log_info("task=%s kind=%s attempt=%d/%d source=%s started", task_name(t), t->kind, t->attempt,
		         s->policy.max_attempts, t->queue);
	else
		log_info("task=%s kind=%s attempt=%d/%d queue=%s started", task_name(t), t->kind, t->attempt,
		         s->policy.max_attempts, t->queue);
	if (ops == NULL) {
		/* A failed attempt, not a lost task: a later deployment with a
		 * handler may still pick it up before its attempts run out. */
		struct json_buf msg = {0};

		json_buf_printf(&msg, "no handler for kind ");
		json_append_text(&msg, t->kind, strlen(t->kind));
		slots_failed(s, msg.data, false, 0);
		json_buf_free(&msg);
		slots_free_one(s);
		return;
	}
	/* The first task of a half-open breaker's kind is its probe. */
	breaker_started(&s->task);
	/* It may end (and free the slot) before this returns. */
	ops->start(&s->ht, h, &env);
}

int
slots_nfds(void)
{
	return handler_nfds();
}

int
slots_pollfds(struct pollfd *pfds)
{
	return handler_pollfds(pfds);
}

void
slots_on_ready(int fd, short revents)
{
	handler_on_ready(fd, revents);
}

void
slots_reap(void)
{
	handler_reap();
}

void
slots_check(int64_t now)
{
	handler_tick(now);
}

int64_t
slots_next_due(int64_t due)
{
	return handler_next_deadline(due);
}

/*
 * Another instance reaped this task (our renewals stopped reaching the
 * database for longer than a lease): it may already run elsewhere, so stop
 * ours rather than run it twice at once. No outcome is written.
 */
bool
slots_lease_lost(long long id, long long token, const char *cancelled)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		struct slot *s = slots_local.all[i];

		if (s->used && !s->lease_lost && s->task.id == id && s->task.token == token) {
			if (cancelled != NULL)
				log_info("task=%s kind=%s attempt=%d cancelled while its handler ran (%.200s); "
				         "stopping it", task_name(&s->task), s->task.kind, s->task.attempt, cancelled);
			else
				log_warn("task=%s kind=%s attempt=%d lease lost while its handler ran; stopping it",
				         task_name(&s->task), s->task.kind, s->task.attempt);
			s->lease_lost = true;
			s->cancelled = cancelled != NULL;
			/* Stopped as a timeout is: SIGTERM to a command's process
			 * group and SIGKILL after the grace; a SQL handler's
			 * statement cancelled and its transaction rolled back. */
			s->ops->stop(&s->ht);
			return true;
		}
	}
	return false;
}

bool
slots_runs(long long id)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		const struct slot *s = slots_local.all[i];

		if (s->used && !s->lease_lost && s->task.id == id)
			return true;
	}
	return false;
}

/* Past the grace: stop every handler; their tasks go back untried. */
void
slots_stop_all(int64_t now)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		struct slot *s = slots_local.all[i];

		if (s->used) {
			s->shutdown_stopped = true;
			s->ops->stop(&s->ht);
		}
	}
}

void
slots_kill_all(void)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		struct slot *s = slots_local.all[i];

		if (s->used) {
			s->killed = true;
			s->ops->kill(&s->ht);
		}
	}
}

void
slots_grow(int want)
{
	int have = slots_local.nslots;

	if (want <= have)
		return;
	slots_local.all = realloc(slots_local.all, (size_t) want * sizeof *slots_local.all);
	slots_local.free_stack = realloc(slots_local.free_stack, (size_t) want * sizeof *slots_local.free_stack);
	if (slots_local.all == NULL || slots_local.free_stack == NULL)
		abort();
	/* Pushed highest first, so the first slot is the first taken. */
	for (int i = want - 1; i >= have; i--) {
		slots_local.all[i] = calloc(1, sizeof **slots_local.all);
		if (slots_local.all[i] == NULL)
			abort();
		slots_local.all[i]->index = i;
	}
	memmove(slots_local.free_stack + (want - have), slots_local.free_stack,
	        (size_t) slots_local.nfree * sizeof *slots_local.free_stack);
	for (int i = 0; i < want - have; i++)
		slots_local.free_stack[i] = want - 1 - i;
	slots_local.nfree += want - have;
	slots_local.nslots = want;
}

size_t
slots_leased(long long *ids, long long *tokens, int *sources, const char **keys, size_t cap)
{
	size_t n = 0;

	for (int i = 0; i < slots_local.nslots && n < cap; i++) {
		const struct slot *s = slots_local.all[i];

		if (s->used && !s->lease_lost) {
			ids[n] = s->task.id;
			if (sources != NULL)
				sources[n] = s->task.source;
			if (keys != NULL)
				keys[n] = s->task.key;
			tokens[n++] = s->task.token;
		}
	}
	return n;
}

void
slots_free(void)
{
	for (int i = 0; i < slots_local.nslots; i++)
		free(slots_local.all[i]);
	free(slots_local.all);
	free(slots_local.free_stack);
	handler_teardown_all();
	memset(&slots_local, 0, sizeof slots_local);
	slots_local.sink = outbox_add;
}
