/*
 * The one-shot commands' work against the database: `pgdispatch migrate`,
 * `roles` and `enqueue` (`status` is admin_status.c, the operator's
 * commands admin_ops.c, the daemon, `run`, daemon.c). Each connects with
 * database (a conninfo; NULL: libpq's PG* environment), does its job,
 * prints what it has to say and returns the exit code. main.c parses the
 * command line; this file is its database side.
 */
#ifndef PGDISPATCH_ADMIN_H
#define PGDISPATCH_ADMIN_H

#include <libpq-fe.h>

/* Connects for a one-shot command, application_name what; NULL after
 * saying why on stderr. Shared by admin_ops.c and admin_status.c. */
PGconn *admin_connect(const char *database, const char *what);

int admin_migrate(const char *database);

/* Runs sql/roles.sql (compiled in). */
int admin_roles(const char *database);

/* params: kind, payload, queue, run_at, priority, max_attempts,
 * dedupe_key as text, NULL for the default (sql/enqueue.sql). Prints the
 * new id, or the live task's that holds the dedupe key. */
int admin_enqueue(const char *database, const char *const params[7]);

#endif
