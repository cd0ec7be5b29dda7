/*
 * Shared fixture of the module suites that drive the daemon's statements
 * for real (check_queue.c, check_outbox.c): a migrated scratch database,
 * an owner's connection for setup and checks, and work.c attached to a
 * connection made as HARNESS_WORKER, as the daemon's is, so every case
 * also proves that dispatch_worker's grants suffice. Statements are sent
 * through work.c and the test pumps the connection as the daemon's loop
 * does (poll on work_socket() for work_events(), then work_on_ready()).
 */
#ifndef PGDISPATCH_TEST_WORK_TEST_H
#define PGDISPATCH_TEST_WORK_TEST_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "db.h"

extern PGconn *wt_owner;   /* the database owner's connection */
extern const char *wt_db;  /* the scratch database's conninfo */

/* Checked fixture: creates and migrates a database, attaches work.c as
 * HARNESS_WORKER (prepared statements on, the session set up as the
 * daemon sets it). */
void wt_setup(void);

/* The same on a database whose server encoding is LATIN1. */
void wt_setup_latin1(void);

void wt_teardown(void);

/* Replaces the work connection with a new HARNESS_WORKER one on which
 * session_sql (may be NULL) has run first. */
void wt_reattach(const char *session_sql);

/* A statement's end as work.c reported it: an owned copy of its result,
 * or its error. */
struct wt_call {
	bool done;
	PGresult *res;
	struct db_error err;
};

/* A work_done_fn that fills a struct wt_call (ctx). */
void wt_done(void *ctx, PGresult *res, const struct db_error *err);

/* Pumps the work connection until *flag is true, failing the test after
 * timeout_ms or when the connection breaks. */
void wt_pump_until(const bool *flag, int timeout_ms);

/* Pumps until call is done; returns its result (fails the test when the
 * statement failed). The caller PQclear()s it. */
PGresult *wt_wait(struct wt_call *call);

/* Pumps until nothing is queued or running on the work connection. */
void wt_drain(void);

/* A one-value query on the owner's connection, formatted (static buffer). */
const char *wt_value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
long long wt_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs sql on the owner's connection, formatted. */
void wt_exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
