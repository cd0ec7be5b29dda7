/*
 * A claimed task as the daemon holds it, and what became of it.
 *
 * Vocabulary: a task is a row of dispatch.tasks; an attempt is one run of
 * its handler (tasks.attempts counts them, set by the claim); an outcome is
 * the result of one attempt, written back with a fenced update.
 */
#ifndef PGDISPATCH_TASK_H
#define PGDISPATCH_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"

struct task {
	long long id;       /* dispatch.tasks.id; for a source's row, a number of
	                     * this daemon's, below zero (source_row_id()): every
	                     * claim it holds is known by id and token */
	int source;         /* 0: a row of dispatch.tasks; else the source (source.h) */
	char *key;          /* a source's row: its key, as text; NULL for tasks */
	bool key_number;    /* ... an integer: a number in JSON, not a string */
	char *queue;
	char *kind;
	char *payload;      /* jsonb as text */
	int attempt;        /* this attempt's number: tasks.attempts after the claim */
	int max_attempts;   /* the row's own limit; 0 when NULL (the handler decides) */
	long long token;    /* the claim's token: every fence compares it */
};

/* Frees the strings a task owns (not the struct). */
void task_clear(struct task *t);

/*
 * How log lines name a claimed row after "task=": a task's id, or for a
 * source's row "row:" and its key (the daemon's own negative number for
 * it means nothing to anyone else). In a static buffer: one call per log
 * line.
 */
const char *task_name(const struct task *t);

/*
 * Appends the task as a handler receives it, one JSON object and a
 * newline: a command on its stdin, an HTTP handler as its request body.
 * {"id", "queue", "kind", "payload", "attempt", "max_attempts"}; a
 * source's row has its key as id (a number when the key is an integer).
 */
void task_input_json(struct json_buf *b, const struct task *t, int max_attempts);

/*
 * The outcome types, written together by one fenced statement
 * (sql/outcomes.sql).
 */
enum outcome_type {
	OUTCOME_COMPLETE,  /* -> complete, result stored */
	OUTCOME_RETRY,     /* -> pending after delay_ms, last_error stored */
	OUTCOME_FAIL,      /* -> failed for good, last_error stored */
	OUTCOME_RELEASE,   /* -> pending after delay_ms (0: as due as it was), attempt
	                    * given back (not tried); last_error = error unless NULL */
	OUTCOME_COMMITTED, /* complete already, in a SQL handler's own transaction:
	                    * the outbox records it and writes nothing */
};

struct outcome {
	long long id;
	int source;        /* as the task's */
	char *key;         /* as the task's (a copy, owned) */
	long long token;   /* the claim's token (the fence) */
	int attempt;
	enum outcome_type type;
	char *result;      /* COMPLETE: JSON text, or NULL; owned */
	char *error;       /* RETRY, FAIL, RELEASE (may be NULL): valid UTF-8 text; owned */
	int64_t delay_ms;  /* RETRY, RELEASE */
};

void outcome_clear(struct outcome *o);

/* The same for the row an outcome is for. */
const char *outcome_name(const struct outcome *o);

/* "complete", "retry", "failed", "released" or "committed": for logs, and
 * the type names sql/outcomes.sql takes (all but the last). */
const char *outcome_type_name(enum outcome_type type);


#endif
