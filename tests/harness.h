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
Suite *daemon_suite(void);
Suite *daemon_faults_suite(void);
Suite *db_suite(void);
Suite *hostile_suite(void);
Suite *json_suite(void);
Suite *log_suite(void);
Suite *migrate_unit_suite(void);
Suite *migrate_suite(void);
Suite *reliability_suite(void);
Suite *roles_suite(void);
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

/*
 * Login roles for the tests, made once per cluster by harness_migrate():
 * HARNESS_WORKER holds only dispatch_worker, HARNESS_PRODUCER only
 * dispatch_producer (sql/roles.sql). Every daemon a test starts connects
 * as HARNESS_WORKER; test setup and checks keep the owner's connection.
 */
#define HARNESS_WORKER "pgdispatch_test_worker"
#define HARNESS_PRODUCER "pgdispatch_test_producer"

/*
 * Sets up conninfo's database as a deployment does, with the real binary
 * and as the owner: `pgdispatch migrate`, then `pgdispatch roles`, then
 * makes sure the login roles above exist and hold their group role.
 * Fails the test on any error.
 */
void harness_migrate(const char *conninfo);

/* conninfo with user=role appended (static buffer). */
const char *harness_as(const char *conninfo, const char *role);

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

/*
 * A daemon under test: `pgdispatch run -c CONFIG -d CONNINFO` with the
 * config written from yaml to a temporary file, connected as
 * HARNESS_WORKER: every daemon test also proves that dispatch_worker is
 * enough. A table a SQL handler uses needs a grant to HARNESS_WORKER, as
 * users grant it to their daemon's login role.
 */
struct harness_daemon {
	struct harness_proc proc;
	char config_path[256];
};

/* Starts a daemon and waits until it has connected (or fails the test). */
void harness_daemon_start(struct harness_daemon *d, const char *conninfo, const char *yaml);

/* The same, connected as login role instead of HARNESS_WORKER. */
void harness_daemon_start_as(struct harness_daemon *d, const char *conninfo, const char *role,
                             const char *yaml);

/* Sends sig and waits for the daemon to exit; returns its exit code. */
int harness_daemon_stop(struct harness_daemon *d, int sig);

/* Frees what harness_daemon_stop() read and removes the files. */
void harness_daemon_free(struct harness_daemon *d);

/* The daemon's stderr so far (static buffer). */
const char *harness_daemon_log(const struct harness_daemon *d);

/* Waits until the daemon's log contains text; fails the test after
 * timeout_ms with the log. */
void harness_daemon_wait_log(const struct harness_daemon *d, const char *text, int timeout_ms);

/*
 * Waits until sql's single value equals want; fails after timeout_ms with
 * the last value seen and, when d is not NULL, the daemon's log.
 */
void harness_wait_value(PGconn *conn, const char *sql, const char *want, int timeout_ms,
                        const struct harness_daemon *d);

/* Absolute path of tests/handlers/NAME (a test handler program). */
const char *harness_handler(const char *name);

/* Writes text to a new temporary file; returns its path (static buffer). */
const char *harness_write_temp(const char *text);

/* Restarts the scratch server (pg_ctl restart -m fast), or skips when the
 * server is not ours (PGHOST was set by the caller). Returns false then. */
bool harness_restart_server(void);

/* Sleeps ms milliseconds. */
void harness_sleep_ms(int ms);

#endif
