/* Claimed tasks, outcomes and the retry backoff; see task.h. */
#include "task.h"

#include <stdlib.h>

void
task_clear(struct task *t)
{
	free(t->queue);
	free(t->kind);
	free(t->payload);
	t->queue = t->kind = t->payload = NULL;
}

void
outcome_clear(struct outcome *o)
{
	free(o->result);
	free(o->error);
	o->result = o->error = NULL;
}

const char *
outcome_type_name(enum outcome_type type)
{
	switch (type) {
	case OUTCOME_COMPLETE:
		return "complete";
	case OUTCOME_RETRY:
		return "retry";
	case OUTCOME_FAIL:
		return "failed";
	case OUTCOME_RELEASE:
		return "released";
	}
	return "?";
}

int64_t
task_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms)
{
	int64_t delay = initial_ms;

	for (int i = 1; i < attempt && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
	if (delay < 2)
		return delay;
	return delay / 2 + (int64_t) (random() % (delay - delay / 2 + 1));
}
