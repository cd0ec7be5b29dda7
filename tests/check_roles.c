/*
 * DB tier: sql/roles.sql. What a login role holding only dispatch_producer
 * or only dispatch_worker may do and is refused, the exact list of
 * privileges the script grants, and that running it again converges on
 * that list. That the worker role is enough for the daemon is proved by
 * every end-to-end test: the harness starts each daemon as HARNESS_WORKER.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static PGconn *roles_owner;
static const char *roles_db;

static void
roles_setup(void)
{
	roles_db = harness_db_create();
	harness_migrate(roles_db);  /* migrate, roles, the test login roles */
	roles_owner = harness_connect(roles_db);
}

static void
roles_teardown(void)
{
	PQfinish(roles_owner);
	roles_owner = NULL;
	harness_teardown();
}

/* Asserts that sql fails for lack of a privilege (SQLSTATE 42501). */
static void
roles_refused(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	ck_assert_msg(PQresultStatus(res) == PGRES_FATAL_ERROR && state != NULL && strcmp(state, "42501") == 0,
	              "%s as %s: want permission denied (42501), got %s %s", sql, PQuser(conn),
	              PQresStatus(PQresultStatus(res)), PQerrorMessage(conn));
	PQclear(res);
}

/*
 * Every privilege the two roles hold in this database, one line per
 * object of schema dispatch (tables, views, sequences, functions, the
 * schema itself; "-" when neither role holds anything on it) plus one per
 * column granted on its own. Read from the ACLs, so what PUBLIC holds is
 * left out and a new object a migration adds shows up as a new line.
 */
static const char roles_privileges_sql[] =
	"WITH obj(name, acl) AS ("
	"    SELECT 'schema dispatch', nspacl FROM pg_namespace WHERE nspname = 'dispatch'"
	"    UNION ALL"
	"    SELECT CASE relkind WHEN 'v' THEN 'view ' WHEN 'S' THEN 'sequence ' ELSE 'table ' END || relname, relacl"
	"      FROM pg_class WHERE relnamespace = 'dispatch'::regnamespace AND relkind NOT IN ('i', 'I')"
	"    UNION ALL"
	"    SELECT 'column ' || c.relname || '.' || a.attname, a.attacl"
	"      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
	"     WHERE c.relnamespace = 'dispatch'::regnamespace AND a.attacl IS NOT NULL"
	"    UNION ALL"
	"    SELECT 'function ' || p.proname, p.proacl FROM pg_proc p WHERE p.pronamespace = 'dispatch'::regnamespace"
	"), granted AS ("
	"    SELECT name, (SELECT string_agg(replace(r.rolname, 'dispatch_', '') || ':' || x.privilege_type, ' '"
	"                                    ORDER BY r.rolname, x.privilege_type COLLATE \"C\")"
	"                    FROM aclexplode(acl) x JOIN pg_roles r ON r.oid = x.grantee"
	"                   WHERE r.rolname IN ('dispatch_producer', 'dispatch_worker', 'dispatch_admin')) AS privs"
	"      FROM obj"
	")"
	"SELECT string_agg(name || ' ' || coalesce(privs, '-'), E'\\n' ORDER BY name COLLATE \"C\")"
	"  FROM granted WHERE privs IS NOT NULL OR name NOT LIKE 'column %'";

/*
 * The whole contract in one place. A new object in schema dispatch adds a
 * line here: grant it in sql/roles.sql if producers or the daemon use it,
 * and either way update this list.
 */
static const char roles_expected[] =
	"column attempts.attempt worker:INSERT\n"
	"column attempts.error worker:INSERT\n"
	"column attempts.instance worker:INSERT\n"
	"column attempts.kind worker:INSERT\n"
	"column attempts.outcome worker:INSERT\n"
	"column attempts.queue worker:INSERT\n"
	"column attempts.row_key worker:INSERT\n"
	"column attempts.source worker:INSERT\n"
	"column attempts.task_id worker:INSERT\n"
	"column sleepers.backend_pid worker:UPDATE\n"
	"column sleepers.queue producer:SELECT\n"
	"column sleepers.since worker:UPDATE\n"
	"column tasks.attempts worker:UPDATE\n"
	"column tasks.claim_token worker:UPDATE\n"
	"column tasks.dedupe_key producer:INSERT\n"
	"column tasks.finished_at worker:UPDATE\n"
	"column tasks.kind producer:INSERT worker:INSERT\n"
	"column tasks.last_error worker:UPDATE\n"
	"column tasks.lease_expires_at worker:UPDATE\n"
	"column tasks.locked_by worker:UPDATE\n"
	"column tasks.max_attempts producer:INSERT worker:INSERT\n"
	"column tasks.order_key producer:INSERT\n"
	"column tasks.payload producer:INSERT worker:INSERT\n"
	"column tasks.priority producer:INSERT worker:INSERT\n"
	"column tasks.queue producer:INSERT worker:INSERT\n"
	"column tasks.result worker:UPDATE\n"
	"column tasks.run_at producer:INSERT worker:INSERT worker:UPDATE\n"
	"column tasks.started_at worker:UPDATE\n"
	"column tasks.status worker:UPDATE\n"
	"function breaker_reset admin:EXECUTE\n"
	"function breaker_trip admin:EXECUTE\n"
	"function cancel admin:EXECUTE\n"
	"function cancel_many admin:EXECUTE\n"
	"function dedupe_lock_key -\n"
	"function enqueue producer:EXECUTE\n"
	"function pause admin:EXECUTE\n"
	"function purge admin:EXECUTE\n"
	"function resume admin:EXECUTE\n"
	"function retention_attempts_batch worker:EXECUTE\n"
	"function retention_batch worker:EXECUTE\n"
	"function retry admin:EXECUTE\n"
	"function retry_failed admin:EXECUTE\n"
	"function retry_many admin:EXECUTE\n"
	"function source_stats admin:EXECUTE producer:EXECUTE worker:EXECUTE\n"
	"function tasks_dedupe -\n"
	"function tasks_notify -\n"
	"schema dispatch admin:USAGE producer:USAGE worker:USAGE\n"
	"sequence attempts_id_seq -\n"
	"sequence tasks_id_seq -\n"
	"table attempts admin:SELECT\n"
	"table breakers admin:SELECT worker:INSERT worker:SELECT worker:UPDATE\n"
	"table instances admin:SELECT producer:SELECT worker:DELETE worker:INSERT worker:SELECT worker:UPDATE\n"
	"table queue_pauses admin:SELECT worker:SELECT\n"
	"table schedules admin:SELECT worker:INSERT worker:SELECT worker:UPDATE\n"
	"table schema_migrations admin:SELECT\n"
	"table sleepers admin:SELECT worker:DELETE worker:INSERT worker:SELECT\n"
	"table source_rows admin:SELECT worker:DELETE worker:INSERT worker:SELECT worker:UPDATE\n"
	"table sources admin:SELECT worker:INSERT worker:SELECT worker:UPDATE\n"
	"table tasks admin:SELECT producer:SELECT worker:SELECT\n"
	"view breaker_status admin:SELECT producer:SELECT worker:SELECT\n"
	"view failures admin:SELECT producer:SELECT worker:SELECT\n"
	"view queue_stats admin:SELECT producer:SELECT worker:SELECT\n"
	"view running admin:SELECT producer:SELECT worker:SELECT\n"
	"view source_stats admin:SELECT producer:SELECT worker:SELECT\n"
	"view throughput admin:SELECT producer:SELECT worker:SELECT";

START_TEST(test_roles_grant_exactly_the_documented_privileges)
{
	ck_assert_str_eq(harness_value(roles_owner, roles_privileges_sql), roles_expected);
}
END_TEST

START_TEST(test_rerunning_roles_takes_back_what_it_does_not_grant)
{
	struct harness_proc p;
	const char *args[] = {"roles", "-d", roles_db, NULL};

	/* As if an older version, or a hand, had granted more. */
	harness_exec(roles_owner,
	             "GRANT DELETE, TRUNCATE ON dispatch.tasks TO dispatch_worker;"
	             "GRANT UPDATE (payload) ON dispatch.tasks TO dispatch_worker;"
	             "GRANT UPDATE ON dispatch.tasks TO dispatch_producer;"
	             "GRANT SELECT ON dispatch.schema_migrations TO dispatch_producer, dispatch_worker;"
	             "GRANT CREATE ON SCHEMA dispatch TO dispatch_worker;"
	             "GRANT EXECUTE ON FUNCTION dispatch.enqueue TO dispatch_worker");
	ck_assert_str_ne(harness_value(roles_owner, roles_privileges_sql), roles_expected);

	ck_assert_int_eq(harness_run(&p, args), 0);
	/* The roles exist already: nothing to create, only grants. */
	ck_assert_msg(strstr(p.out, "created role") == NULL, "stdout: %s", p.out);
	ck_assert_msg(strstr(p.out, "granted dispatch_producer, dispatch_worker and dispatch_admin") != NULL, "stdout: %s", p.out);
	ck_assert_str_eq(p.err, "");
	harness_proc_free(&p);
	ck_assert_str_eq(harness_value(roles_owner, roles_privileges_sql), roles_expected);
}
END_TEST

START_TEST(test_roles_refuses_an_unmigrated_database)
{
	const char *empty = harness_db_create();
	struct harness_proc p;
	const char *args[] = {"roles", "-d", empty, NULL};

	ck_assert_int_eq(harness_run(&p, args), 1);
	ck_assert_msg(strstr(p.err, "Run pgdispatch migrate first") != NULL, "stderr: %s", p.err);
	ck_assert_msg(strstr(p.out, "granted") == NULL, "stdout: %s", p.out);
	harness_proc_free(&p);
}
END_TEST

START_TEST(test_producer_adds_and_reads_tasks)
{
	PGconn *producer = harness_connect(harness_as(roles_db, HARNESS_PRODUCER));
	struct harness_proc p;
	const char *enqueue[] = {"enqueue", "-d", harness_as(roles_db, HARNESS_PRODUCER), "k", "{\"n\": 3}", NULL};
	const char *status[] = {"status", "-d", harness_as(roles_db, HARNESS_PRODUCER), NULL};

	ck_assert_str_eq(PQuser(producer), HARNESS_PRODUCER);
	/* Both wake-up paths of the trigger: no daemon waiting, then one. */
	ck_assert_int_gt(harness_int(producer, "INSERT INTO dispatch.tasks (kind, payload)"
	                                       " VALUES ('k', '{\"n\": 1}') RETURNING id"), 0);
	harness_exec(roles_owner, "INSERT INTO dispatch.sleepers (instance, queue) VALUES ('d', 'default')");
	ck_assert_int_gt(harness_int(producer, "SELECT dispatch.enqueue('k', '{\"n\": 2}', run_at => now(),"
	                                       " priority => 1, max_attempts => 2)"), 0);
	ck_assert_int_eq(harness_run(&p, enqueue), 0);
	harness_proc_free(&p);

	ck_assert_str_eq(harness_value(producer, "SELECT string_agg(concat_ws(':', payload->>'n', status), ','"
	                                         " ORDER BY id) FROM dispatch.tasks"),
	                 "1:pending,2:pending,3:pending");
	ck_assert_int_eq(harness_int(producer, "SELECT sum(count) FROM dispatch.queue_stats"), 3);
	ck_assert_int_eq(harness_run(&p, status), 0);
	/* The queue line (3 due); the daemons' registry is the producer's
	 * to read too. */
	ck_assert_msg(strstr(p.out, "\n  default    3  ") != NULL, "stdout: %s", p.out);
	ck_assert_msg(strstr(p.out, "(no daemon has registered)") != NULL, "stdout: %s", p.out);
	harness_proc_free(&p);
	PQfinish(producer);
}
END_TEST

START_TEST(test_producer_cannot_change_or_remove_a_task)
{
	PGconn *producer = harness_connect(harness_as(roles_db, HARNESS_PRODUCER));

	harness_exec(roles_owner, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('k', '{\"a\": 1}')");
	roles_refused(producer, "UPDATE dispatch.tasks SET status = 'complete'");
	roles_refused(producer, "UPDATE dispatch.tasks SET payload = '{\"a\": 2}'");
	roles_refused(producer, "UPDATE dispatch.tasks SET run_at = now() + interval '1 day'");
	roles_refused(producer, "DELETE FROM dispatch.tasks");
	roles_refused(producer, "TRUNCATE dispatch.tasks");
	roles_refused(producer, "SELECT id FROM dispatch.tasks FOR UPDATE");
	/* A new task can only start out pending and unclaimed. */
	roles_refused(producer, "INSERT INTO dispatch.tasks (kind, status) VALUES ('k', 'complete')");
	roles_refused(producer, "INSERT INTO dispatch.tasks (kind, locked_by, attempts) VALUES ('k', 'me', 1)");
	/* The daemons' registry: the trigger may look at queues, nothing more. */
	roles_refused(producer, "SELECT instance FROM dispatch.sleepers");
	roles_refused(producer, "DELETE FROM dispatch.sleepers");
	roles_refused(producer, "INSERT INTO dispatch.sleepers (instance, queue) VALUES ('x', 'default')");
	roles_refused(producer, "SELECT * FROM dispatch.schema_migrations");
	roles_refused(producer, "CREATE TABLE dispatch.mine (x int)");
	roles_refused(producer, "DROP TABLE dispatch.tasks");
	ck_assert_str_eq(harness_value(roles_owner, "SELECT concat_ws('|', count(*), min(status::text),"
	                                            " min(payload::text)) FROM dispatch.tasks"),
	                 "1|pending|{\"a\": 1}");
	PQfinish(producer);
}
END_TEST

START_TEST(test_worker_cannot_remove_rewrite_or_forge_tasks)
{
	PGconn *worker = harness_connect(harness_as(roles_db, HARNESS_WORKER));

	harness_exec(roles_owner, "INSERT INTO dispatch.tasks (kind, payload, priority) VALUES ('k', '{\"a\": 1}', 3)");
	/* The worker adds tasks for its schedules, as a producer would: only
	 * pending and unclaimed ones. Removing tasks is the operator's part. */
	roles_refused(worker, "INSERT INTO dispatch.tasks (kind, status) VALUES ('k', 'complete')");
	roles_refused(worker, "INSERT INTO dispatch.tasks (kind, locked_by, attempts) VALUES ('k', 'me', 1)");
	roles_refused(worker, "INSERT INTO dispatch.tasks (kind, claim_token, lease_expires_at)"
	                      " VALUES ('k', 1, now() + interval '1 hour')");
	roles_refused(worker, "DELETE FROM dispatch.tasks");
	roles_refused(worker, "DELETE FROM dispatch.schedules");
	/* What the producer wrote stays as written. */
	roles_refused(worker, "UPDATE dispatch.tasks SET payload = '{\"a\": 2}'");
	roles_refused(worker, "UPDATE dispatch.tasks SET kind = 'other'");
	roles_refused(worker, "UPDATE dispatch.tasks SET queue = 'other'");
	roles_refused(worker, "UPDATE dispatch.tasks SET priority = 100");
	roles_refused(worker, "UPDATE dispatch.tasks SET max_attempts = 100");
	/* No DDL, no ledger. */
	roles_refused(worker, "TRUNCATE dispatch.tasks");
	roles_refused(worker, "DROP TABLE dispatch.tasks");
	roles_refused(worker, "ALTER TABLE dispatch.tasks ADD COLUMN x int");
	roles_refused(worker, "DROP FUNCTION dispatch.enqueue");
	roles_refused(worker, "CREATE TABLE dispatch.mine (x int)");
	roles_refused(worker, "SELECT * FROM dispatch.schema_migrations");
	roles_refused(worker, "INSERT INTO dispatch.schema_migrations (version, checksum) VALUES ('9999_x', 'x')");
	ck_assert_str_eq(harness_value(roles_owner, "SELECT concat_ws('|', count(*), min(kind), min(queue),"
	                                            " min(priority), min(payload::text)) FROM dispatch.tasks"),
	                 "1|k|default|3|{\"a\": 1}");
	PQfinish(worker);
}
END_TEST

/* The end-to-end suites prove the role is enough only if the daemon
 * really runs as it: check who its connections are. */
START_TEST(test_harness_daemon_connects_as_the_worker_role_only)
{
	struct harness_daemon d;
	char yaml[512];

	snprintf(yaml, sizeof yaml, "queues: [default]\npoll_interval: 1s\nlog: {level: debug}\n"
	                            "handlers:\n  noop:\n    builtin: noop\n  q:\n    sql: \"SELECT $2\"\n");
	harness_daemon_start(&d, roles_db, yaml);
	harness_exec(roles_owner, "INSERT INTO dispatch.tasks (kind) VALUES ('noop'), ('q')");
	harness_wait_value(roles_owner, "SELECT string_agg(status::text, ',') FROM dispatch.tasks",
	                   "complete,complete", 10000, &d);
	ck_assert_str_eq(harness_value(roles_owner, "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity"
	                                            " WHERE application_name LIKE 'pgdispatch %'"),
	                 HARNESS_WORKER);
	/* No superuser, no other role to borrow privileges from. */
	ck_assert_str_eq(harness_value(roles_owner,
	        "SELECT concat_ws('|', r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,"
	        "       (SELECT string_agg(g.rolname, ',') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
	        "         WHERE m.member = r.oid))"
	        "  FROM pg_roles r WHERE r.rolname = '" HARNESS_WORKER "'"),
	        "f|f|f|f|dispatch_worker");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
}
END_TEST

Suite *
roles_suite(void)
{
	Suite *s = suite_create("roles");
	TCase *tc = tcase_create("database");

	tcase_add_checked_fixture(tc, roles_setup, roles_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roles_grant_exactly_the_documented_privileges);
	tcase_add_test(tc, test_rerunning_roles_takes_back_what_it_does_not_grant);
	tcase_add_test(tc, test_roles_refuses_an_unmigrated_database);
	tcase_add_test(tc, test_producer_adds_and_reads_tasks);
	tcase_add_test(tc, test_producer_cannot_change_or_remove_a_task);
	tcase_add_test(tc, test_worker_cannot_remove_rewrite_or_forge_tasks);
	tcase_add_test(tc, test_harness_daemon_connects_as_the_worker_role_only);
	suite_add_tcase(s, tc);
	return s;
}
