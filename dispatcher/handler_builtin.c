/* Builtin handlers: noop, sleep, fail; see handler_builtin.h. */
#include "handler_builtin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slots.h"

#define BUILTIN_SLEEP_DEFAULT_MS 1000  /* sleep without "ms" in the payload */

/* A sleeping task; sleepers are a list, few and short-lived. */
struct builtin_sleep {
	struct handler_task *ht;
	int64_t done_at_ms;
	struct builtin_sleep *next, **prev;
};

static struct {
	struct builtin_sleep *sleeping;
} builtin_local;

static void
builtin_end(struct handler_task *ht, enum handler_end end, const char *error)
{
	struct handler_report r = {.end = end, .error = error};

	slots_done(ht, &r);
}

/*
 * "ms" from a builtin sleep's payload, e.g. {"ms": 250}, clamped to
 * [0, limit]. A test and demo aid: it looks for the key, it does not parse
 * JSON.
 */
static int64_t
builtin_sleep_ms(const char *payload, int64_t limit)
{
	const char *p = strstr(payload, "\"ms\"");
	long long ms;

	if (p == NULL)
		return BUILTIN_SLEEP_DEFAULT_MS < limit ? BUILTIN_SLEEP_DEFAULT_MS : limit;
	p += 4;
	while (*p == ' ' || *p == ':')
		p++;
	ms = strtoll(p, NULL, 10);
	return ms < 0 ? 0 : ms > limit ? limit : ms;
}

static void
builtin_start_sleep(struct handler_task *ht)
{
	struct builtin_sleep *b = malloc(sizeof *b);

	if (b == NULL)
		abort();
	b->ht = ht;
	b->done_at_ms = ht->started_ms + builtin_sleep_ms(ht->task->payload, ht->policy->timeout_ms + 1);
	b->next = builtin_local.sleeping;
	b->prev = &builtin_local.sleeping;
	if (b->next != NULL)
		b->next->prev = &b->next;
	builtin_local.sleeping = b;
	ht->state = b;
}

/* Ends a sleeper: off the list, then the report. */
static void
builtin_wake(struct builtin_sleep *b, enum handler_end end, const char *error)
{
	struct handler_task *ht = b->ht;

	*b->prev = b->next;
	if (b->next != NULL)
		b->next->prev = b->prev;
	free(b);
	ht->state = NULL;
	builtin_end(ht, end, error);
}

static void
builtin_start(struct handler_task *ht, const struct handler_config *hc, const struct handler_env *env)
{
	if (strcmp(hc->builtin, "noop") == 0)
		builtin_end(ht, HANDLER_SUCCEEDED, NULL);
	else if (strcmp(hc->builtin, "sleep") == 0)
		builtin_start_sleep(ht);
	else
		builtin_end(ht, HANDLER_FAILED, "builtin fail handler");
}

static int64_t
builtin_next_deadline(void)
{
	int64_t due = INT64_MAX;

	for (const struct builtin_sleep *b = builtin_local.sleeping; b != NULL; b = b->next) {
		if (b->done_at_ms < due)
			due = b->done_at_ms;
		if (b->ht->deadline_ms < due)
			due = b->ht->deadline_ms;
	}
	return due;
}

static void
builtin_tick(int64_t now)
{
	struct builtin_sleep *b = builtin_local.sleeping, *next;

	for (; b != NULL; b = next) {
		const struct handler_task *ht = b->ht;

		next = b->next;
		if (now >= b->done_at_ms && b->done_at_ms - ht->started_ms <= ht->policy->timeout_ms) {
			builtin_wake(b, HANDLER_SUCCEEDED, NULL);
		} else if (now >= ht->deadline_ms) {
			char why[64];

			snprintf(why, sizeof why, "timed out after %lld ms", (long long) ht->policy->timeout_ms);
			builtin_wake(b, HANDLER_FAILED, why);
		}
	}
}

/* A sleep stops at once; noop and fail never run long enough to stop. */
static void
builtin_stop(struct handler_task *ht)
{
	if (ht->state != NULL)
		builtin_wake(ht->state, HANDLER_FAILED, "stopped");
}

const struct handler_ops handler_builtin_ops = {
	.name = "builtin",
	.label = "handler",
	.start = builtin_start,
	.next_deadline = builtin_next_deadline,
	.tick = builtin_tick,
	.stop = builtin_stop,
	.kill = builtin_stop,
};
