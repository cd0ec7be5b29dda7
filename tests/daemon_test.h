/* Shared fixture of the end-to-end daemon suites. */
#ifndef PGDISPATCH_TEST_DAEMON_TEST_H
#define PGDISPATCH_TEST_DAEMON_TEST_H

#include <sys/types.h>

#include <libpq-fe.h>

extern PGconn *dt_conn;  /* a connection to the test's migrated database */
extern const char *dt_db;  /* its conninfo */

void dt_setup(void);
void dt_teardown(void);

/* A config with concurrency 4, poll_interval 1s, debug logs, extra_yaml
 * (top-level keys, may be NULL) and the given handlers (indented YAML).
 * Static buffer. */
const char *dt_config(const char *handlers_yaml, const char *extra_yaml);

/* Peak resident memory of a process (VmHWM from /proc), in kB. */
long dt_peak_rss_kb(pid_t pid);

#endif
