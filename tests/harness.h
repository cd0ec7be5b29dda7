/*
 * Test harness shared by the suites: scratch databases on the server that
 * tests/pg_scratch.sh started (or $PGHOST), SQL helpers that fail the test
 * with the server's words, the real pgdispatch binary as a subprocess, and
 * a PgBouncer in front of the server.
 */
#ifndef PGDISPATCH_TEST_HARNESS_H
#define PGDISPATCH_TEST_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include <check.h>
#include <libpq-fe.h>

/* Suites, one per module; run.c chains them. */
Suite *admin_suite(void);
Suite *breakers_suite(void);
Suite *breakers_daemon_suite(void);
Suite *cli_suite(void);
Suite *config_suite(void);
Suite *cron_suite(void);
Suite *daemon_suite(void);
Suite *daemon_faults_suite(void);
Suite *examples_suite(void);
Suite *db_suite(void);
Suite *hostile_suite(void);
Suite *http_suite(void);
Suite *http_template_suite(void);
Suite *json_suite(void);
Suite *log_suite(void);
Suite *migrate_unit_suite(void);
Suite *migrate_suite(void);
Suite *operations_suite(void);
Suite *ordering_suite(void);
Suite *outbox_suite(void);
Suite *pgbouncer_suite(void);
Suite *policy_suite(void);
Suite *queue_suite(void);
Suite *recipes_suite(void);
Suite *reliability_suite(void);
Suite *roles_suite(void);
Suite *schedules_suite(void);
Suite *schema_suite(void);
Suite *secrets_suite(void);
Suite *slots_suite(void);
Suite *source_check_suite(void);
Suite *sources_suite(void);

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
 * dispatch_producer, HARNESS_ADMIN only dispatch_admin (sql/roles.sql). Every daemon a test starts connects
 * as HARNESS_WORKER; test setup and checks keep the owner's connection.
 */
#define HARNESS_WORKER "pgdispatch_test_worker"
#define HARNESS_PRODUCER "pgdispatch_test_producer"
#define HARNESS_ADMIN "pgdispatch_test_admin"

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

/* How many times text occurs in the daemon's log so far. */
int harness_daemon_log_count(const struct harness_daemon *d, const char *text);

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

/* The whole of the file at path, NUL-terminated; the caller frees it. */
char *harness_slurp(const char *path);

/* Writes text to a new temporary file; returns its path (static buffer). */
const char *harness_write_temp(const char *text);

/* Restarts the scratch server (pg_ctl restart -m fast), or skips when the
 * server is not ours (PGHOST was set by the caller). Returns false then. */
bool harness_restart_server(void);

/*
 * A PgBouncer (Debian's package, installed by `make deps`) in front of the
 * server in $PGHOST/$PGPORT, in pool_mode = transaction with
 * default_pool_size = pool_size, listening on a Unix socket in a directory
 * of its own; any database name goes through to the server's database of
 * that name, and every user is let in (auth_type = trust; the harness's
 * roles are in its auth_file). As root it runs as $PGDISPATCH_PG_AS or
 * `postgres`: PgBouncer refuses to run as root.
 *
 * harness_pgbouncer_start() starts it, waits until a query goes through
 * it, and returns the conninfo that reaches it ("host=DIR port=N", static
 * buffer) to put after a "dbname=...". One at a time per test process.
 * When pgbouncer is not installed it fails the test, unless the server is
 * not the harness's (PGHOST set by the caller): then it returns NULL and
 * the test skips, as with harness_restart_server().
 *
 * harness_pgbouncer_stop() stops it (SIGTERM, SIGKILL after 10 s) and
 * removes its directory. A failing test never gets there, so the process
 * is tied to the test's life (it gets SIGKILL when the test process ends),
 * and its directory is made inside one that the unchecked fixture
 * (tcase_add_unchecked_fixture(tc, harness_pgbouncer_prepare,
 * harness_pgbouncer_cleanup)) makes before the test case and removes after
 * it, in the runner, whatever happened to the tests.
 */
void harness_pgbouncer_prepare(void);
void harness_pgbouncer_cleanup(void);
const char *harness_pgbouncer_start(int pool_size);
void harness_pgbouncer_stop(void);

/* PgBouncer's own log so far (static buffer, the last few kB). */
const char *harness_pgbouncer_log(void);

/* Sleeps ms milliseconds. */
void harness_sleep_ms(int ms);

/* Milliseconds on the monotonic clock. */
long long harness_now_ms(void);

#endif
