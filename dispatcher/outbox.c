/* Outcomes waiting to be written; see outbox.h. */
#include "outbox.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "mem.h"
#include "queue.h"

#define OUTBOX_RETRY_MS 1000  /* pause after a write failed for a passing reason */

static struct {
	struct outcome *items;
	size_t count, cap;
	int64_t next_try_ms;
} outbox_local;

void
outbox_add(struct outcome o)
{
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

int64_t
outbox_next_try_ms(void)
{
	return outbox_local.next_try_ms;
}

size_t
outbox_completes(const struct outcome **items)
{
	for (size_t i = 0; i < outbox_local.count; i++)
		if (outbox_local.items[i].type != OUTCOME_COMPLETE)
			return 0;
	*items = outbox_local.items;
	return outbox_local.next_try_ms == 0 ? outbox_local.count : 0;
}

void
outbox_written(const bool *kept)
{
	for (size_t i = 0; i < outbox_local.count; i++) {
		const struct outcome *o = &outbox_local.items[i];

		if (!kept[i])
			log_warn("task=%lld attempt=%d lease lost before its outcome (%s) was recorded; "
			         "the row was left as another instance set it",
			         o->id, o->attempt, outcome_type_name(o->type));
		outcome_clear(&outbox_local.items[i]);
	}
	outbox_local.count = 0;
	outbox_local.next_try_ms = 0;
}

void
outbox_free(void)
{
	for (size_t i = 0; i < outbox_local.count; i++)
		outcome_clear(&outbox_local.items[i]);
	free(outbox_local.items);
	memset(&outbox_local, 0, sizeof outbox_local);
}

/*
 * Writes one outcome on its own after the batch was refused for its data.
 * A success whose result the server rejects is still a success: it is
 * recorded with a note in place of the result. Returns false when the
 * connection went away (the outcome stays queued).
 */
static bool
outbox_write_single(PGconn *conn, const char *instance, struct outcome *o, bool *kept)
{
	struct db_error err;
	char text[1200];

	if (queue_write_outcomes(conn, instance, o, 1, kept, &err))
		return true;
	if (PQstatus(conn) != CONNECTION_OK)
		return false;
	db_error_text(&err, text, sizeof text);
	if (o->type == OUTCOME_COMPLETE) {
		struct json_buf note = {0}, quoted = {0};

		json_buf_printf(&note, "result not stored: ");
		json_append_text(&note, text, strlen(text));
		json_append_string(&quoted, note.data, note.len);
		free(o->result);
		o->result = mem_strdup(quoted.data);
		json_buf_free(&note);
		json_buf_free(&quoted);
		if (queue_write_outcomes(conn, instance, o, 1, kept, &err))
			return true;
		if (PQstatus(conn) != CONNECTION_OK)
			return false;
	}
	log_error("task=%lld outcome %s not written, its lease will expire: %s", o->id,
	          outcome_type_name(o->type), db_error_text(&err, text, sizeof text));
	return true;
}

/*
 * One statement per outcome type, all in one transaction. When the server
 * refuses the data (SQLSTATE class 22 or 23: say, a result it will not
 * take), the outcomes are written one by one so one bad row cannot hold
 * back the rest. Any other failure (a deadlock, a read-only server after
 * failover, a lost connection) keeps them for a later try: an outcome is
 * dropped only when it cannot ever be written.
 */
enum outbox_result
outbox_flush(PGconn *conn, const char *instance, int64_t now, struct db_error *err)
{
	char text[1200];
	bool *kept;

	if (outbox_local.count == 0 || now < outbox_local.next_try_ms)
		return OUTBOX_DONE;
	kept = calloc(outbox_local.count, sizeof *kept);
	if (kept == NULL)
		abort();
	if (!queue_write_outcomes(conn, instance, outbox_local.items, outbox_local.count, kept, err)) {
		if (PQstatus(conn) != CONNECTION_OK) {
			free(kept);
			return OUTBOX_CONN_LOST;
		}
		if (strncmp(err->sqlstate, "22", 2) != 0 && strncmp(err->sqlstate, "23", 2) != 0) {
			log_error("writing %zu outcomes failed, trying again in %d ms: %s", outbox_local.count,
			          OUTBOX_RETRY_MS, db_error_text(err, text, sizeof text));
			outbox_local.next_try_ms = now + OUTBOX_RETRY_MS;
			free(kept);
			return OUTBOX_LATER;
		}
		log_warn("writing %zu outcomes failed, writing one by one: %s", outbox_local.count,
		         db_error_text(err, text, sizeof text));
		for (size_t i = 0; i < outbox_local.count; i++) {
			kept[i] = true;
			if (!outbox_write_single(conn, instance, &outbox_local.items[i], &kept[i])) {
				/* Connection gone mid-way: what was written is written
				 * (fenced, so writing it again is harmless). */
				free(kept);
				snprintf(err->message, sizeof err->message, "lost while writing outcomes");
				return OUTBOX_CONN_LOST;
			}
		}
	}
	outbox_written(kept);
	free(kept);
	return OUTBOX_DONE;
}
