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

/* What the memory tests allow on top of their bound. Under
 * AddressSanitizer (make check SANITIZE=1) freed memory waits in a
 * quarantine and stack frames live on a separate fake stack, so the peak
 * grows by several MB however little is kept; 48 MB still fails if a
 * 100 MB flood were kept whole. */
#if defined(__SANITIZE_ADDRESS__)   /* gcc */
#define DT_ASAN_SLACK_KB (48 * 1024)
#elif defined(__has_feature)         /* clang */
#if __has_feature(address_sanitizer)
#define DT_ASAN_SLACK_KB (48 * 1024)
#endif
#endif
#ifndef DT_ASAN_SLACK_KB
#define DT_ASAN_SLACK_KB 0
#endif

#endif
