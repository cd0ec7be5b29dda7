/*
 * The health of PostgreSQL's NOTIFY queue: one queue for the whole
 * cluster, which a listener stuck inside a transaction keeps from being
 * emptied. When it fills, every notifying transaction fails at commit,
 * and with the tasks trigger that means the producers' inserts
 * (docs/postgres-notes.md). The daemon checks it on its
 * lease tick and warns well before that; `pgdispatch status` shows it.
 */
#ifndef PGDISPATCH_NOTIFY_QUEUE_H
#define PGDISPATCH_NOTIFY_QUEUE_H

#include <stdint.h>

#include "db.h"

/* The percent a result of sql/notify_queue_usage.sql says. */
double notify_queue_result(PGresult *res);

/* Percent of the NOTIFY queue in use, or -1 with err filled. */
double notify_queue_usage(PGconn *conn, struct db_error *err);

/*
 * Judges a reading of the queue (sql/notify_queue_usage.sql, percent) and
 * logs: a warning when usage reaches warn_percent, repeated every minute
 * while it stays there, and a note when it falls back. now_ms is the
 * caller's monotonic clock.
 */
void notify_queue_judge(double usage, int warn_percent, int64_t now_ms);

#endif
