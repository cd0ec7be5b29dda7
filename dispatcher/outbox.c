/* Outcomes waiting to be written; see outbox.h. */
#include "outbox.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "source.h"

#define OUTBOX_RETRY_MS 1000   /* pause after a write failed for a passing reason */
#define OUTBOX_LOCKED_MS 250   /* pause before trying rows another session held */

static struct {
	struct outcome *items;       /* items[0..sending) are on their way */
	size_t count, cap;
	size_t sending;              /* 0: no write on its way */
	size_t riding;               /* what the claim on its way carries (0 or sending) */
	int claiming;                /* the source of the claim on its way (0: dispatch.tasks) */
	size_t single;               /* items[0..single) are to be written one at a time */
	bool noted;                  /* items[0]'s result was replaced by a note */
	int64_t next_try_ms;
	bool freed;                  /* an outcome left since outbox_take_freed() */
	unsigned long long ended[OUTCOME_COMMITTED + 1];  /* attempts ended, by outcome type */
} outbox_local;

void
outbox_add(struct outcome o)
{
	outbox_local.ended[o.type]++;
	if (o.type == OUTCOME_COMMITTED) {
		/* Written already, with the SQL handler's own statement. */
		outcome_clear(&o);
		return;
	}
	if (outbox_local.count == outbox_local.cap) {
		size_t cap = outbox_local.cap ? outbox_local.cap * 2 : 64;
		struct outcome *n = realloc(outbox_local.items, cap * sizeof *n);

		if (n == NULL) {
			log_error("out of memory queueing an outcome");
			abort();
		}
		outbox_local.items = n;
		outbox_local.cap = cap;
	}
	outbox_local.items[outbox_local.count++] = o;
}

size_t
outbox_count(void)
{
	return outbox_local.count;
}

unsigned long long
outbox_ended(enum outcome_type type)
{
	return outbox_local.ended[type];
}

bool
outbox_take_freed(void)
{
	bool freed = outbox_local.freed;

	outbox_local.freed = false;
	return freed;
}

bool
outbox_busy(void)
{
	return outbox_local.sending > 0;
}

int64_t
outbox_next_try_ms(void)
{
	if (outbox_local.count == 0 || outbox_local.sending > 0)
		return INT64_MAX;
	return outbox_local.next_try_ms;
}

size_t
outbox_held(long long *ids, long long *tokens, int *sources, const char **keys, size_t at, size_t cap)
{
	for (size_t i = 0; i < outbox_local.count && at < cap; i++) {
		ids[at] = outbox_local.items[i].id;
		if (sources != NULL)
			sources[at] = outbox_local.items[i].source;
		if (keys != NULL)
			keys[at] = outbox_local.items[i].key;
		tokens[at++] = outbox_local.items[i].token;
	}
	return at;
}

/* Removes items[i] (freeing its strings), keeping the order of the rest. */
static void
outbox_remove(size_t i)
{
	outbox_local.freed = true;
	/* The note belongs to the outcome it was written into. */
	if (i == 0)
		outbox_local.noted = false;
	outcome_clear(&outbox_local.items[i]);
	memmove(&outbox_local.items[i], &outbox_local.items[i + 1],
	        (outbox_local.count - i - 1) * sizeof outbox_local.items[0]);
	outbox_local.count--;
	if (i < outbox_local.sending)
		outbox_local.sending--;
	if (i < outbox_local.single)
		outbox_local.single--;
}

static void
outbox_log_lost(const struct outcome *o)
{
	log_warn("task=%s attempt=%d lease lost before its outcome (%s) was recorded; "
	         "the row was left as another instance set it",
	         outcome_name(o), o->attempt, outcome_type_name(o->type));
}

void
outbox_lost(long long id, long long token)
{
	/* One on its way is settled by its own write's fate. */
	for (size_t i = outbox_local.sending; i < outbox_local.count; i++)
		if (outbox_local.items[i].id == id && outbox_local.items[i].token == token) {
			outbox_log_lost(&outbox_local.items[i]);
			outbox_remove(i);
			return;
		}
}

/* The write of items[0..sending) came back with a fate for each. */
static void
outbox_settle(const char *fates, int64_t now)
{
	size_t n = outbox_local.sending, locked = 0, unsure = 0;
	char *f = malloc(n + 1);

	if (f == NULL)
		abort();
	memcpy(f, fates, n);
	outbox_local.sending = 0;
	/* Back to front: removing shifts only what was already looked at. */
	for (size_t i = n; i-- > 0;) {
		if (f[i] == QUEUE_LOCKED || f[i] == QUEUE_UNSURE) {
			locked += f[i] == QUEUE_LOCKED;
			unsure += f[i] == QUEUE_UNSURE;
			continue;
		}
		if (f[i] == QUEUE_LOST)
			outbox_log_lost(&outbox_local.items[i]);
		outbox_remove(i);
	}
	free(f);
	outbox_local.next_try_ms = 0;
	if (locked > 0) {
		log_info("%zu outcomes wait for rows another session holds locked; trying again in %d ms", locked,
		         OUTBOX_LOCKED_MS);
		outbox_local.next_try_ms = now + OUTBOX_LOCKED_MS;
	} else if (unsure > 0) {
		/* Not written with the claim: written next on their own, where
		 * sql/outcomes.sql tells a locked row from a lost claim (never
		 * riding again, which would not). */
		outbox_local.next_try_ms = now;
	}
}

/*
 * Replaces a success's result the server refused with a note saying why:
 * the task's work is done and must not run again for want of a place to
 * keep its output.
 */
static void
outbox_note_result(struct outcome *o, const char *why)
{
	struct json_buf note = {0}, quoted = {0};

	json_buf_printf(&note, "result not stored: ");
	json_append_text(&note, why, strlen(why));
	json_append_string(&quoted, note.data, note.len);
	free(o->result);
	o->result = mem_strdup(quoted.data);
	json_buf_free(&note);
	json_buf_free(&quoted);
}

/*
 * The write of items[0..sending) failed. When the server refused the data
 * (SQLSTATE class 22 or 23: say, a result it will not take), the outcomes
 * are written one at a time so one bad row cannot hold back the rest; a
 * lone success refused is written once more with a note for its result,
 * and anything refused alone after that is dropped: its lease is let go
 * and the task runs again. Any other failure (a lost connection, a
 * read-only server after failover, a role's lock_timeout meeting a table
 * lock) keeps them for a later try.
 */
static void
outbox_failed(const struct db_error *err, int64_t now, bool rode)
{
	size_t n = outbox_local.sending;
	char text[1200];
	bool refused = strncmp(err->sqlstate, "22", 2) == 0 || strncmp(err->sqlstate, "23", 2) == 0;

	outbox_local.sending = 0;
	db_error_text(err, text, sizeof text);
	if (!work_attached()) {
		/* The connection went: the daemon says so, and the outcomes go
		 * out again once it is back. */
		outbox_local.next_try_ms = 0;
		return;
	}
	if (strcmp(err->sqlstate, "55P03") == 0 && rode) {
		/* A success riding along met a row lock (sql/complete_cte.sql):
		 * write them on their own now, where locked rows are skipped. */
		log_info("%zu successes met a locked row with the claim; writing them on their own", n);
		outbox_local.next_try_ms = now;
		return;
	}
	if (!refused) {
		log_error("writing %zu outcomes failed, trying again in %d ms: %s", n, OUTBOX_RETRY_MS, text);
		outbox_local.next_try_ms = now + OUTBOX_RETRY_MS;
		return;
	}
	outbox_local.next_try_ms = 0;
	if (n > 1 || outbox_local.single == 0) {
		if (n > 1)
			log_warn("writing %zu outcomes failed, writing one by one: %s", n, text);
		if (outbox_local.single < n)
			outbox_local.single = n;
		if (n > 1)
			return;
	}
	if (outbox_local.items[0].type == OUTCOME_COMPLETE && !outbox_local.noted) {
		outbox_note_result(&outbox_local.items[0], text);
		outbox_local.noted = true;
		return;
	}
	log_error("task=%s outcome %s not written, its lease will expire: %s", outcome_name(&outbox_local.items[0]),
	          outcome_type_name(outbox_local.items[0].type), text);
	outbox_remove(0);
}

static void
outbox_flush_done(void *ctx, PGresult *res, const struct db_error *err)
{
	int64_t now = clock_now_ms();

	if (res == NULL) {
		outbox_failed(err, now, false);
		return;
	}
	{
		char *fates = malloc(outbox_local.sending + 1);

		if (fates == NULL)
			abort();
		queue_outcomes_result(res, outbox_local.items, outbox_local.sending, fates);
		outbox_settle(fates, now);
		free(fates);
	}
}

void
outbox_flush(int64_t now)
{
	if (outbox_local.count == 0 || outbox_local.sending > 0 || now < outbox_local.next_try_ms
	    || !work_attached())
		return;
	outbox_local.sending = outbox_local.single > 0 ? 1 : outbox_local.count;
	/* One statement writes one table's outcomes: those of items[0]'s
	 * source (0: dispatch.tasks) that come first; the rest go next. */
	for (size_t i = 1; i < outbox_local.sending; i++)
		if (outbox_local.items[i].source != outbox_local.items[0].source) {
			outbox_local.sending = i;
			break;
		}
	queue_outcomes_send(outbox_local.items, outbox_local.sending, outbox_flush_done, NULL);
}

int
outbox_claim_send(const struct queue_claimer *who, const struct source *src, const char *queue, int room,
                  const struct queue_kinds *skip, const struct queue_kinds *limited, const int *rooms,
                  long long token, work_done_fn cb, void *ctx)
{
	int source = src != NULL ? src->index : 0;
	size_t ride = 0;
	int limit;

	/* Successes ride along only when they are all there is and nothing of
	 * the outbox's is on its way: anything else is written on its own
	 * first, by outbox_flush(). Not in poll-only mode: riding along relies
	 * on the session's lock_timeout (sql/complete_cte.sql). */
	if (outbox_local.sending == 0 && outbox_local.single == 0 && outbox_local.next_try_ms == 0
	    && work_prepared()) {
		ride = outbox_local.count;
		for (size_t i = 0; i < outbox_local.count; i++)
			if (outbox_local.items[i].type != OUTCOME_COMPLETE || outbox_local.items[i].source != source)
				ride = 0;
	}
	/* An outcome not yet written still holds its task's place: a daemon
	 * killed now would leave that task to run again, so it counts against
	 * the room as a running task does. Those riding along are written in
	 * the claim's own commit and need no place of their own. */
	limit = room - (int) (outbox_local.count - ride);
	if (limit <= 0)
		return 0;
	if (ride > 0)
		outbox_local.sending = ride;
	outbox_local.riding = ride;
	outbox_local.claiming = source;
	if (src != NULL)
		queue_source_claim_send(who, src, limit, token, outbox_local.items, ride, cb, ctx);
	else
		queue_claim_send(who, queue, limit, skip, limited, rooms, token, outbox_local.items, ride, cb, ctx);
	return limit;
}

int
outbox_claim_result(PGresult *res, const struct db_error *err, long long token, int limit, struct task *out,
                    int64_t now)
{
	size_t ride = outbox_local.riding;
	char *fates;
	int n;

	outbox_local.riding = 0;
	if (res == NULL) {
		/* Perhaps the successes were refused, not the claim: the outbox
		 * writes them its careful way, and the claim goes alone. */
		if (ride > 0)
			outbox_failed(err, now, true);
		return -1;
	}
	fates = malloc(ride + 1);
	if (fates == NULL)
		abort();
	n = queue_claim_result(res, token, limit, out, outbox_local.items, ride, fates);
	for (int i = 0; i < n; i++) {
		const struct source *src = source_get(outbox_local.claiming);

		out[i].source = outbox_local.claiming;
		if (src != NULL) {
			out[i].id = source_row_id();
			out[i].key_number = src->shape.key_is_integer;
		}
	}
	if (ride > 0)
		outbox_settle(fates, now);
	free(fates);
	return n;
}

void
outbox_free(void)
{
	for (size_t i = 0; i < outbox_local.count; i++)
		outcome_clear(&outbox_local.items[i]);
	free(outbox_local.items);
	memset(&outbox_local, 0, sizeof outbox_local);
}
