/*
 * Test harness shared by the suites: scratch databases on the server that
 * tests/pg_scratch.sh started (or $PGHOST), SQL helpers that fail the test
 * with the server's words, and the real pgdispatch binary as a subprocess.
 */
#ifndef PGDISPATCH_TEST_HARNESS_H
#define PGDISPATCH_TEST_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include <check.h>
#include <libpq-fe.h>

/* Suites, one per module; run.c chains them. */
Suite *cli_suite(void);
Suite *config_suite(void);
Suite *db_suite(void);
Suite *json_suite(void);
Suite *migrate_unit_suite(void);
Suite *migrate_suite(void);
Suite *schema_suite(void);

/*
 * Creates an empty database with a unique name and returns its conninfo
 * ("dbname=..."), valid until harness_teardown(), which drops it. Call from
 * a test or a checked fixture.
 */
const char *harness_db_create(void);

/* Drops the databases this test created; use as a checked teardown. */
void harness_teardown(void);

/* Connects or fails the test. */
PGconn *harness_connect(const char *conninfo);

/* Runs sql (any number of statements) or fails the test with the error. */
void harness_exec(PGconn *conn, const char *sql);

/*
 * Runs a one-value query and returns the value as a string in a static
 * buffer ("" for NULL), or fails the test.
 */
const char *harness_value(PGconn *conn, const char *sql);
long long harness_int(PGconn *conn, const char *sql);

/* Applies all migrations to conninfo with the real binary, or fails. */
void harness_migrate(const char *conninfo);

/* A subprocess whose stdout and stderr go to temporary files. */
struct harness_proc {
	pid_t pid;
	char out_path[256];
	char err_path[256];
	int status;   /* from waitpid, once finished */
	char *out;    /* captured stdout, NUL-terminated, after finish */
	char *err;    /* captured stderr */
};

/*
 * Starts the pgdispatch binary ($PGDISPATCH_BIN) with args (NULL-ended,
 * without argv[0]).
 */
void harness_start(struct harness_proc *p, const char *const *args);

/* Waits for p, reads its output; returns its exit code (128+sig if killed). */
int harness_finish(struct harness_proc *p);

/* Frees what harness_finish() read and removes the files. */
void harness_proc_free(struct harness_proc *p);

/* harness_start() + harness_finish(). */
int harness_run(struct harness_proc *p, const char *const *args);

#endif
