/*
 * The operator's commands: `pgdispatch retry`, `retry-failed`, `cancel`,
 * `cancel-many`, `pause`, `resume`, `purge`, `breaker-reset` and
 * `breaker-open`. Each calls the SQL function of the same name
 * (migrations 0007, 0008 and 0011; breaker-open calls breaker_trip), which
 * is the contract: the command adds only the connection and a sentence.
 * main.c parses the command line.
 */
#ifndef PGDISPATCH_ADMIN_OPS_H
#define PGDISPATCH_ADMIN_OPS_H

/*
 * Runs the command's statement, sql/admin_<command>.sql (dashes become
 * underscores), with params (text, NULL for SQL NULL). Each of
 * those statements returns one row: whether it did what was asked, and a
 * sentence saying what happened. The sentence goes to stdout and the exit
 * code is 0 when it did, to stderr with exit code 1 when it did not (a
 * retry of a task that had not failed, say), so scripts can tell.
 */
int admin_ops_call(const char *database, const char *command, int nparams,
                   const char *const *params);

#endif
