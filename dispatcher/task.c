/* Claimed tasks, outcomes and the retry backoff; see task.h. */
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void
task_input_json(struct json_buf *b, const struct task *t, int max_attempts)
{
	/* A source's row is known by its key (source.h). */
	if (t->key == NULL)
		json_buf_printf(b, "{\"id\":%lld,\"queue\":", t->id);
	else if (t->key_number)
		json_buf_printf(b, "{\"id\":%s,\"queue\":", t->key);
	else {
		json_buf_printf(b, "{\"id\":");
		json_append_string(b, t->key, strlen(t->key));
		json_buf_printf(b, ",\"queue\":");
	}
	json_append_string(b, t->queue, strlen(t->queue));
	json_buf_printf(b, ",\"kind\":");
	json_append_string(b, t->kind, strlen(t->kind));
	/* payload is jsonb text from the server: already valid JSON. */
	json_buf_printf(b, ",\"payload\":%s,\"attempt\":%d,\"max_attempts\":%d}\n", t->payload,
	                t->attempt, max_attempts);
}
