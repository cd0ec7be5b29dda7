/* Claimed tasks, outcomes and the retry backoff; see task.h. */
#include "task.h"

#include <stdlib.h>

void
task_clear(struct task *t)
{
	free(t->queue);
	free(t->kind);
	free(t->payload);
	free(t->key);
	t->queue = t->kind = t->payload = t->key = NULL;
}

void
outcome_clear(struct outcome *o)
{
	free(o->result);
	free(o->error);
	free(o->key);
	o->result = o->error = o->key = NULL;
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
	case OUTCOME_COMMITTED:
		return "committed";
	}
	return "?";
}
