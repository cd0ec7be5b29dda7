/*
 * The outbox: outcomes of finished attempts waiting to be written.
 *
 * Handlers finish at any moment of a loop turn; their outcomes collect here
 * and go to PostgreSQL together, one set-based fenced update per outcome
 * type, in one transaction (queue_write_outcomes()). An outcome leaves the
 * outbox once written, once its fence shows the task is no longer ours, or
 * once the server has refused its data for good; on any other failure it
 * stays for the next try.
 */
#ifndef PGDISPATCH_OUTBOX_H
#define PGDISPATCH_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "task.h"

/* Takes ownership of o's strings. */
void outbox_add(struct outcome o);

size_t outbox_count(void);

/* Monotonic ms before which outbox_flush() will not try again (after a
 * failed write); 0 when it may try now. */
int64_t outbox_next_try_ms(void);

enum outbox_result {
	OUTBOX_DONE,       /* empty now (or nothing to do yet) */
	OUTBOX_LATER,      /* the write failed; outcomes kept, retried after a pause */
	OUTBOX_CONN_LOST,  /* the connection is gone; outcomes kept; err says why */
};

/* Writes everything in the outbox on conn as instance; now is monotonic ms. */
enum outbox_result outbox_flush(PGconn *conn, const char *instance, int64_t now,
                                struct db_error *err);

/*
 * When everything in the outbox is a success and may be written now, sets
 * *items and returns how many, so the caller can record them together with
 * its next claim (queue_claim()); otherwise returns 0. The caller then
 * reports with outbox_written() once that statement has committed.
 */
size_t outbox_completes(const struct outcome **items);

/* The outcomes outbox_completes() handed out are committed; kept[i] as
 * queue_write_outcomes() sets it. Empties the outbox. */
void outbox_written(const bool *kept);

/* Drops everything (at exit). */
void outbox_free(void);

#endif
