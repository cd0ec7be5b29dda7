/*
 * migrate: the compiled-in migration list (unit tier) and `pgdispatch
 * migrate` against real databases (DB tier).
 */
#include <stdio.h>
#include <string.h>

#include "embed.h"
#include "harness.h"
#include "migrate.h"

START_TEST(test_migrations_are_compiled_in_numbered_order)
{
	char prev[256] = "", v[256];

	ck_assert_uint_ge(migrate_count(), 1);
	ck_assert_str_eq(migrate_version(0, v, sizeof v), "0001_init");
	for (size_t i = 0; i < migrate_count(); i++) {
		migrate_version(i, v, sizeof v);
		ck_assert_msg(strcmp(prev, v) < 0, "%s after %s", v, prev);
		ck_assert_msg(strlen(v) > 5 && v[4] == '_', "migration %s is not NNNN_name", v);
		snprintf(prev, sizeof prev, "%s", v);
	}
}
END_TEST

START_TEST(test_sql_files_are_compiled_in)
{
	ck_assert_ptr_nonnull(strstr(embed_sql("migrate_lock"), "pg_advisory_lock"));
}
END_TEST

Suite *
migrate_unit_suite(void)
{
	Suite *s = suite_create("migrate_unit");
	TCase *tc = tcase_create("embedded");

	tcase_add_test(tc, test_migrations_are_compiled_in_numbered_order);
	tcase_add_test(tc, test_sql_files_are_compiled_in);
	suite_add_tcase(s, tc);
	return s;
}

/* DB tier. */

static int
migrate_run_binary(const char *conninfo, struct harness_proc *p)
{
	const char *args[] = {"migrate", "-d", conninfo, NULL};

	return harness_run(p, args);
}

START_TEST(test_migrate_creates_schema_on_empty_database)
{
	const char *db = harness_db_create();
	struct harness_proc p;
	PGconn *conn;

	ck_assert_int_eq(migrate_run_binary(db, &p), 0);
	ck_assert_ptr_nonnull(strstr(p.out, "applied 0001_init"));
	harness_proc_free(&p);

	conn = harness_connect(db);
	ck_assert_str_eq(harness_value(conn,
	        "SELECT string_agg(e::text, ',' ORDER BY e) FROM unnest(enum_range(NULL::dispatch.task_status)) e"),
	        "pending,in_progress,complete,failed,cancelled");
	ck_assert_str_eq(harness_value(conn,
	        "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)"
	        "  FROM pg_attribute WHERE attrelid = 'dispatch.tasks'::regclass AND attnum > 0 AND NOT attisdropped"),
	        "id:bigint,queue:text,kind:text,payload:jsonb,status:dispatch.task_status,priority:integer,"
	        "run_at:timestamp with time zone,attempts:integer,max_attempts:integer,last_error:text,"
	        "result:jsonb,locked_by:text,lease_expires_at:timestamp with time zone,"
	        "created_at:timestamp with time zone,started_at:timestamp with time zone,"
	        "finished_at:timestamp with time zone,claim_token:bigint,dedupe_key:text,order_key:text");
	/* The claim's partial index, with a literal predicate. */
	ck_assert_str_eq(harness_value(conn,
	        "SELECT pg_get_indexdef('dispatch.tasks_claim_idx'::regclass)"),
	        "CREATE INDEX tasks_claim_idx ON dispatch.tasks USING btree (queue, priority DESC, run_at, id)"
	        " WHERE (status = 'pending'::dispatch.task_status)");
	ck_assert_str_eq(harness_value(conn,
	        "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'dispatch.tasks'::regclass"),
	        "fillfactor=80,autovacuum_vacuum_scale_factor=0,autovacuum_vacuum_threshold=500,"
	        "autovacuum_vacuum_cost_delay=0,autovacuum_analyze_scale_factor=0,"
	        "autovacuum_analyze_threshold=1000");
	/* The wake-up trigger fires once per statement (tgtype bit 0 = ROW). */
	ck_assert_str_eq(harness_value(conn,
	        "SELECT tgtype & 1 FROM pg_trigger WHERE tgname = 'tasks_notify'"
	        "   AND tgrelid = 'dispatch.tasks'::regclass"), "0");
	ck_assert_int_eq(harness_int(conn,
	        "SELECT count(*) FROM dispatch.schema_migrations WHERE version = '0001_init'"
	        "   AND checksum ~ '^[0-9a-f]{64}$'"), 1);
	PQfinish(conn);
}
END_TEST

START_TEST(test_migrate_twice_applies_nothing_the_second_time)
{
	const char *db = harness_db_create();
	struct harness_proc p;
	PGconn *conn;
	char applied_at[64];

	harness_migrate(db);
	conn = harness_connect(db);
	snprintf(applied_at, sizeof applied_at, "%s",
	         harness_value(conn, "SELECT max(applied_at) FROM dispatch.schema_migrations"));

	ck_assert_int_eq(migrate_run_binary(db, &p), 0);
	ck_assert_msg(strstr(p.out, "nothing to apply") != NULL, "stdout: %s", p.out);
	ck_assert_ptr_null(strstr(p.out, "applied 0"));
	ck_assert_str_eq(p.err, "");
	harness_proc_free(&p);

	ck_assert_int_eq(harness_int(conn, "SELECT count(*) FROM dispatch.schema_migrations"),
	                 (long long) migrate_count());
	ck_assert_str_eq(harness_value(conn, "SELECT max(applied_at) FROM dispatch.schema_migrations"),
	                 applied_at);
	PQfinish(conn);
}
END_TEST

START_TEST(test_two_concurrent_migrates_apply_each_file_once)
{
	const char *db = harness_db_create();
	const char *args[] = {"migrate", "-d", db, NULL};
	struct harness_proc a, b;
	PGconn *conn;
	int applied_by = 0;

	harness_start(&a, args);
	harness_start(&b, args);
	ck_assert_msg(harness_finish(&a) == 0, "first migrate: %s", a.err);
	ck_assert_msg(harness_finish(&b) == 0, "second migrate: %s", b.err);
	applied_by = (strstr(a.out, "applied 0001_init") != NULL) + (strstr(b.out, "applied 0001_init") != NULL);
	ck_assert_msg(applied_by == 1, "0001 applied by %d migrates:\n%s\n%s", applied_by, a.out, b.out);
	harness_proc_free(&a);
	harness_proc_free(&b);

	conn = harness_connect(db);
	ck_assert_int_eq(harness_int(conn, "SELECT count(*) FROM dispatch.schema_migrations"),
	                 (long long) migrate_count());
	ck_assert_str_eq(harness_value(conn, "SELECT to_regclass('dispatch.tasks')::text"), "dispatch.tasks");
	PQfinish(conn);
}
END_TEST

START_TEST(test_migrate_refuses_changed_checksum)
{
	const char *db = harness_db_create();
	struct harness_proc p;
	PGconn *conn;

	harness_migrate(db);
	conn = harness_connect(db);
	/* As if 0001_init.sql had been edited after it was applied, and a
	 * later migration were still pending. */
	harness_exec(conn, "UPDATE dispatch.schema_migrations SET checksum = repeat('ab', 32)"
	                   " WHERE version = '0001_init'");
	harness_exec(conn, "DELETE FROM dispatch.schema_migrations WHERE version > '0001_init'");

	ck_assert_int_eq(migrate_run_binary(db, &p), 1);
	ck_assert_msg(strstr(p.err, "migration 0001_init was applied with checksum abababab") != NULL,
	              "stderr: %s", p.err);
	ck_assert_ptr_nonnull(strstr(p.err, "nothing was applied"));
	harness_proc_free(&p);

	/* The ledger is as it was: nothing re-applied, the pending one not
	 * applied on top. */
	ck_assert_str_eq(harness_value(conn, "SELECT string_agg(version || '=' || checksum, ',')"
	                                     "  FROM dispatch.schema_migrations"),
	                 "0001_init=abababababababababababababababababababababababababababababababab");
	PQfinish(conn);
}
END_TEST

Suite *
migrate_suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("database");

	tcase_add_checked_fixture(tc, NULL, harness_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_migrate_creates_schema_on_empty_database);
	tcase_add_test(tc, test_migrate_twice_applies_nothing_the_second_time);
	tcase_add_test(tc, test_two_concurrent_migrates_apply_each_file_once);
	tcase_add_test(tc, test_migrate_refuses_changed_checksum);
	suite_add_tcase(s, tc);
	return s;
}
