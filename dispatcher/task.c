/* Claimed tasks, outcomes and the retry backoff; see task.h. */
#include "task.h"

#include <stdio.h>
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

/* "row:KEY" (cut to 64 bytes), or the id in decimal; static buffer. */
static const char *
task_name_of(long long id, const char *key)
{
	static char text[72];

	if (key != NULL)
		snprintf(text, sizeof text, "row:%.64s", key);
	else
		snprintf(text, sizeof text, "%lld", id);
	return text;
}

const char *
task_name(const struct task *t)
{
	return task_name_of(t->id, t->key);
}

const char *
outcome_name(const struct outcome *o)
{
	return task_name_of(o->id, o->key);
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
