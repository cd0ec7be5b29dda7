/*
 * The one-shot commands' work against the database: `pgdispatch migrate`,
 * `roles`, `enqueue` and `status` (the daemon, `run`, is daemon.c). Each
 * connects with database (a conninfo; NULL: libpq's PG* environment), does
 * its job, prints what it has to say and returns the exit code. main.c
 * parses the command line; this file is its database side.
 */
#ifndef PGDISPATCH_ADMIN_H
#define PGDISPATCH_ADMIN_H

int admin_migrate(const char *database);

/* Runs sql/roles.sql (compiled in). */
int admin_roles(const char *database);

/* params: kind, payload, queue, run_at, priority, max_attempts as text,
 * NULL for the default (sql/enqueue.sql). Prints the new id. */
int admin_enqueue(const char *database, const char *const params[6]);

/* Counts per queue and status, the oldest due task's age, and how full
 * the NOTIFY queue is. */
int admin_status(const char *database);

#endif
