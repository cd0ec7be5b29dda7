/*
 * DB tier: source_check() and source_check_index() against a real
 * PostgreSQL, on the seed table (configuration_update with its own
 * enum) and variants of it, and `pgdispatch check-config -d` on the same.
 *
 * Tables are made by the owner (scc_owner); the checks run as
 * HARNESS_WORKER (scc_worker), the role a daemon runs as, which holds no
 * privilege on them until a test grants one. The claims EXPLAINed here are
 * written by hand in the contract's shape (scc_claim), so the index check
 * is tested apart from the templates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "harness.h"
#include "source_check.h"

static const char *scc_db;
static char scc_worker_info[256];
static PGconn *scc_owner;
static PGconn *scc_worker;
static struct config *scc_cfg;

static const char scc_seed[] =
	"CREATE TYPE configuration_update_status AS ENUM ('pending', 'in_progress', 'complete', 'failed');"
	"CREATE TABLE configuration_update ("
	"    id serial PRIMARY KEY,"
	"    content jsonb,"
	"    status configuration_update_status,"
	"    destination inet"
	");"
	"CREATE TABLE canary ();";

static const char scc_seed_grant[] =
	"GRANT SELECT, UPDATE (status) ON configuration_update TO " HARNESS_WORKER;

/* The source of the seed table as the issue writes it, before any key a
 * test adds (extra: more lines of the source's map, indented 4). */
#define SCC_SEED_SOURCE "    table: public.configuration_update\n    status: {column: status}\n"

/* The claim's example parameters: source, limit, locked_by, lease, token. */
static const char *const scc_params[5] = {"configuration_update", "10", "test#1", "30000", "1"};

static void
scc_setup(void)
{
	scc_db = harness_db_create();
	harness_migrate(scc_db);   /* for the login roles */
	snprintf(scc_worker_info, sizeof scc_worker_info, "%s", harness_as(scc_db, HARNESS_WORKER));
	scc_owner = harness_connect(scc_db);
	scc_worker = harness_connect(scc_worker_info);
	harness_exec(scc_owner, scc_seed);
}

static void
scc_teardown(void)
{
	config_free(scc_cfg);
	scc_cfg = NULL;
	PQfinish(scc_worker);
	PQfinish(scc_owner);
	scc_worker = scc_owner = NULL;
	harness_teardown();
}

/* The YAML of a config with one source, name, whose map is body (lines
 * indented 4), and its handler. Static buffer. */
static const char *
scc_yaml(const char *name, const char *body)
{
	static char yaml[4096];

	snprintf(yaml, sizeof yaml, "sources:\n  %s:\n%shandlers:\n  %s: {builtin: noop}\n", name, body, name);
	return yaml;
}

/* The source read from scc_yaml() by config.c, as the daemon gets it;
 * freed by the teardown (or the next call). */
static const struct source_config *
scc_source(const char *body)
{
	const char *yaml = scc_yaml("configuration_update", body);
	char err[1024];

	config_free(scc_cfg);
	scc_cfg = config_parse("test.yaml", yaml, strlen(yaml), err, sizeof err);
	ck_assert_msg(scc_cfg != NULL, "config rejected: %s\n%s", err, yaml);
	ck_assert_uint_eq(scc_cfg->nsources, 1);
	return &scc_cfg->sources[0];
}

/* source_check() as the worker: must fail with exactly want. */
static void
scc_fails(const struct source_config *sc, const char *want)
{
	struct source_shape shape;
	char err[4096];

	ck_assert_msg(!source_check(scc_worker, sc, &shape, err, sizeof err), "accepted, want: %s", want);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(shape.schema);
	ck_assert_ptr_null(shape.key);
}

/* source_check() as the worker: must pass; shape filled. */
static void
scc_passes(const struct source_config *sc, struct source_shape *shape)
{
	char err[4096];

	ck_assert_msg(source_check(scc_worker, sc, shape, err, sizeof err), "rejected: %s", err);
}

/*
 * A claim in the contract's shape for sc and shape, identifiers and the
 * pending value escaped by libpq; priority first when mapped. Static buffer.
 */
static const char *
scc_claim(const struct source_config *sc, const struct source_shape *shape)
{
	static char sql[2048];
	const char *order = sc->order_by != NULL ? sc->order_by : shape->key;
	const char *prio = sc->columns[SOURCE_COL_PRIORITY];
	char *schema = PQescapeIdentifier(scc_worker, shape->schema, strlen(shape->schema));
	char *table = PQescapeIdentifier(scc_worker, shape->table, strlen(shape->table));
	char *key = PQescapeIdentifier(scc_worker, shape->key, strlen(shape->key));
	char *status = PQescapeIdentifier(scc_worker, sc->status_column, strlen(sc->status_column));
	char *by = PQescapeIdentifier(scc_worker, order, strlen(order));
	char *p = prio != NULL ? PQescapeIdentifier(scc_worker, prio, strlen(prio)) : NULL;
	char *pending = PQescapeLiteral(scc_worker, sc->status[SOURCE_PENDING], strlen(sc->status[SOURCE_PENDING]));
	char prio_order[200] = "";

	if (p != NULL)
		snprintf(prio_order, sizeof prio_order, "t.%s DESC, ", p);
	snprintf(sql, sizeof sql,
	         "WITH c AS MATERIALIZED (SELECT t.%s AS key FROM %s.%s AS t WHERE t.%s = %s"
	         " ORDER BY %st.%s LIMIT $2 FOR NO KEY UPDATE OF t SKIP LOCKED)"
	         " SELECT $1::text, $3::text, $4::bigint, $5::bigint, key FROM c",
	         key, schema, table, status, pending, prio_order, by);
	PQfreemem(schema);
	PQfreemem(table);
	PQfreemem(key);
	PQfreemem(status);
	PQfreemem(by);
	PQfreemem(p);
	PQfreemem(pending);
	return sql;
}

/* source_check_index() as the worker with scc_claim(); advice out. */
static bool
scc_index(const struct source_config *sc, const struct source_shape *shape, char *advice, size_t len)
{
	bool ok = source_check_index(scc_worker, sc, shape, scc_claim(sc, shape), 5, scc_params, advice, len);

	/* Whatever the outcome, the check leaves no transaction open and no
	 * setting changed on the connection. */
	ck_assert_int_eq(PQtransactionStatus(scc_worker), PQTRANS_IDLE);
	ck_assert_str_eq(harness_value(scc_worker, "SHOW enable_seqscan"), "on");
	ck_assert_str_eq(harness_value(scc_worker, "SHOW enable_sort"), "on");
	return ok;
}

/* Runs the GRANTs a message names (after "run as the table's owner: ")
 * as the owner, as a user would paste them. */
static void
scc_run_advice(const char *msg)
{
	const char *grants = strstr(msg, "run as the table's owner: ");
	char sql[2048];

	ck_assert_msg(grants != NULL, "no GRANT in: %s", msg);
	snprintf(sql, sizeof sql, "%.*s", (int) strcspn(grants + 26, "\n"), grants + 26);
	harness_exec(scc_owner, sql);
}

static void
scc_assert_canary(void)
{
	ck_assert_str_eq(harness_value(scc_owner, "SELECT to_regclass('public.canary') IS NOT NULL"), "t");
}

/* --- source_check() ------------------------------------------------------ */

START_TEST(test_seed_table_passes_and_its_shape_is_read)
{
	const struct source_config *sc;
	struct source_shape shape;

	harness_exec(scc_owner, scc_seed_grant);
	sc = scc_source(SCC_SEED_SOURCE);
	scc_passes(sc, &shape);
	ck_assert_str_eq(shape.schema, "public");
	ck_assert_str_eq(shape.table, "configuration_update");
	ck_assert_str_eq(shape.key, "id");   /* the primary key, by default */
	ck_assert_str_eq(shape.key_type, "integer");
	ck_assert_uint_eq(shape.key_type_oid, 23);
	ck_assert(shape.key_is_integer);
	ck_assert_str_eq(shape.status_type, "public.configuration_update_status");
	ck_assert(shape.status_is_enum);
	for (int c = 0; c < SOURCE_COL_COUNT; c++)
		ck_assert_ptr_null(shape.column_type[c]);
	source_shape_clear(&shape);
	ck_assert_ptr_null(shape.schema);
	ck_assert_ptr_null(shape.key);
	/* A second clear is harmless. */
	source_shape_clear(&shape);
}
END_TEST

START_TEST(test_missing_or_misnamed_table_is_an_error)
{
	harness_exec(scc_owner, scc_seed_grant);
	harness_exec(scc_owner, "CREATE VIEW configuration_view AS SELECT * FROM configuration_update");
	scc_fails(scc_source("    table: public.nope\n    status: {column: status}\n"),
	          "source configuration_update: table public.nope does not exist");
	scc_fails(scc_source("    table: nope.configuration_update\n    status: {column: status}\n"),
	          "source configuration_update: table nope.configuration_update does not exist");
	/* Unquoted capitals fold, as in SQL: the message says so, and the
	 * quoted name is found. */
	harness_exec(scc_owner, "CREATE TABLE \"Jobs\" (id int PRIMARY KEY, status text);"
	                        "GRANT SELECT, UPDATE (status) ON \"Jobs\" TO " HARNESS_WORKER);
	scc_fails(scc_source("    table: public.Jobs\n    status: {column: status}\n"),
	          "source configuration_update: table public.Jobs does not exist (unquoted "
	          "names fold to lower case: quote a name to keep its capitals)");
	{
		struct source_shape shape;

		scc_passes(scc_source("    table: public.\"Jobs\"\n    status: {column: status}\n"), &shape);
		ck_assert_str_eq(shape.table, "Jobs");
		source_shape_clear(&shape);
	}
	scc_fails(scc_source("    table: app.public.configuration_update\n    status: {column: status}\n"),
	          "source configuration_update: table 'app.public.configuration_update' is not schema.table "
	          "(it names 3 parts; quote a name that holds a dot)");
	scc_fails(scc_source("    table: 'public.\"configuration_update'\n    status: {column: status}\n"),
	          "source configuration_update: table 'public.\"configuration_update' is not a valid name: "
	          "string is not a valid identifier: \"public.\"configuration_update\"");
	scc_fails(scc_source("    table: public.configuration_view\n    status: {column: status}\n"),
	          "source configuration_update: public.configuration_view is not a table (relkind v); a source "
	          "needs a table");
}
END_TEST

START_TEST(test_each_missing_column_is_a_line)
{
	harness_exec(scc_owner, scc_seed_grant);
	scc_fails(scc_source("    table: public.configuration_update\n    key: ident\n    status: {column: Status}\n"
	                     "    payload: body\n    order_by: created\n    columns: {attempts: tries, run_at: due}\n"),
	          "source configuration_update: key: column \"ident\" does not exist in public.configuration_update "
	          "(names are as the catalog has them: case kept, no quotes)\n"
	          "source configuration_update: status.column: column \"Status\" does not exist in "
	          "public.configuration_update (names are as the catalog has them: case kept, no quotes)\n"
	          "source configuration_update: payload: column \"body\" does not exist in public.configuration_update "
	          "(names are as the catalog has them: case kept, no quotes)\n"
	          "source configuration_update: order_by: column \"created\" does not exist in "
	          "public.configuration_update (names are as the catalog has them: case kept, no quotes)\n"
	          "source configuration_update: columns.attempts: column \"tries\" does not exist in "
	          "public.configuration_update (names are as the catalog has them: case kept, no quotes)\n"
	          "source configuration_update: columns.run_at: column \"due\" does not exist in "
	          "public.configuration_update (names are as the catalog has them: case kept, no quotes)");
	/* Existing ones pass: payload and order_by need no privilege. */
	{
		struct source_shape shape;

		scc_passes(scc_source(SCC_SEED_SOURCE "    payload: content\n    order_by: destination\n"), &shape);
		source_shape_clear(&shape);
	}
}
END_TEST

START_TEST(test_missing_enum_label_names_the_enum_and_its_labels)
{
	harness_exec(scc_owner, scc_seed_grant);
	scc_fails(scc_source("    table: public.configuration_update\n"
	                     "    status: {column: status, complete: done, failed: Failed}\n"),
	          "source configuration_update: status.complete: \"done\" is not a label of enum "
	          "public.configuration_update_status (labels: pending, in_progress, complete, failed)\n"
	          "source configuration_update: status.failed: \"Failed\" is not a label of enum "
	          "public.configuration_update_status (labels: pending, in_progress, complete, failed)");
	/* The label added, it passes. */
	harness_exec(scc_owner, "ALTER TYPE configuration_update_status ADD VALUE 'done';"
	                        "ALTER TYPE configuration_update_status ADD VALUE 'Failed'");
	{
		struct source_shape shape;

		scc_passes(scc_source("    table: public.configuration_update\n"
		                      "    status: {column: status, complete: done, failed: Failed}\n"), &shape);
		source_shape_clear(&shape);
	}
}
END_TEST

/* The GRANT line names exactly what is missing; run as given by the
 * owner, it is enough. */
START_TEST(test_missing_privileges_give_one_grant_line_that_works)
{
	const struct source_config *sc = scc_source(SCC_SEED_SOURCE "    columns: {attempts: tries, run_at: due}\n");
	struct source_shape shape;
	char err[4096];

	harness_exec(scc_owner, "ALTER TABLE configuration_update ADD COLUMN tries int, ADD COLUMN due timestamptz");
	scc_fails(sc, "source configuration_update: missing privileges; run as the table's owner: "
	              "GRANT SELECT, UPDATE (status, tries) ON public.configuration_update TO " HARNESS_WORKER ";");
	/* SELECT alone is not enough: the columns it writes need UPDATE. */
	harness_exec(scc_owner, "GRANT SELECT ON configuration_update TO " HARNESS_WORKER);
	ck_assert(!source_check(scc_worker, sc, &shape, err, sizeof err));
	ck_assert_str_eq(err, "source configuration_update: missing privileges; run as the table's owner: "
	                      "GRANT UPDATE (status, tries) ON public.configuration_update TO " HARNESS_WORKER ";");
	scc_run_advice(err);
	scc_passes(sc, &shape);
	ck_assert_str_eq(shape.column_type[SOURCE_COL_ATTEMPTS], "integer");
	ck_assert_str_eq(shape.column_type[SOURCE_COL_RUN_AT], "timestamp with time zone");
	source_shape_clear(&shape);

	/* A schema of its own: USAGE too, in the same line. */
	harness_exec(scc_owner, "CREATE SCHEMA app; CREATE TABLE app.jobs (id bigint PRIMARY KEY, state text)");
	sc = scc_source("    table: app.jobs\n    status: {column: state}\n");
	ck_assert(!source_check(scc_worker, sc, &shape, err, sizeof err));
	ck_assert_str_eq(err, "source configuration_update: missing privileges; run as the table's owner: "
	                      "GRANT USAGE ON SCHEMA app TO " HARNESS_WORKER "; "
	                      "GRANT SELECT, UPDATE (state) ON app.jobs TO " HARNESS_WORKER ";");
	scc_run_advice(err);
	scc_passes(sc, &shape);
	source_shape_clear(&shape);
}
END_TEST

START_TEST(test_key_must_be_unique_not_null_and_one_column)
{
	struct source_shape shape;

	harness_exec(scc_owner,
	             "CREATE TABLE jobs (code text, state text, n int, PRIMARY KEY (state, n));"
	             "GRANT SELECT, UPDATE (state) ON jobs TO " HARNESS_WORKER ";"
	             "CREATE UNIQUE INDEX jobs_code_partial ON jobs (code) WHERE state = 'x';"
	             "CREATE UNIQUE INDEX jobs_code_lower ON jobs (lower(code));"
	             "CREATE UNIQUE INDEX jobs_code_n ON jobs (code, n)");
	/* No unique index on code alone: partial, expression and two-column
	 * ones do not make it a key. */
	scc_fails(scc_source("    table: public.jobs\n    key: code\n    status: {column: state}\n"),
	          "source configuration_update: key: column code of public.jobs is not unique; it needs a unique "
	          "index on (code) alone, not partial (or make it the primary key)\n"
	          "source configuration_update: key: column code of public.jobs may be NULL; run as the table's "
	          "owner: ALTER TABLE public.jobs ALTER COLUMN code SET NOT NULL;");
	/* The primary key by default: two columns will not do. */
	scc_fails(scc_source("    table: public.jobs\n    status: {column: state}\n"),
	          "source configuration_update: key: the primary key of public.jobs has 2 columns; set key to one "
	          "column with a unique index");
	harness_exec(scc_owner, "CREATE UNIQUE INDEX ON jobs (code)");
	scc_fails(scc_source("    table: public.jobs\n    key: code\n    status: {column: state}\n"),
	          "source configuration_update: key: column code of public.jobs may be NULL; run as the table's "
	          "owner: ALTER TABLE public.jobs ALTER COLUMN code SET NOT NULL;");
	harness_exec(scc_owner, "ALTER TABLE jobs ALTER COLUMN code SET NOT NULL");
	scc_passes(scc_source("    table: public.jobs\n    key: code\n    status: {column: state}\n"), &shape);
	ck_assert_str_eq(shape.key, "code");
	ck_assert_str_eq(shape.key_type, "text");
	ck_assert(!shape.key_is_integer);
	source_shape_clear(&shape);

	/* No primary key at all. */
	harness_exec(scc_owner, "CREATE TABLE loose (id int, state text);"
	                        "GRANT SELECT, UPDATE (state) ON loose TO " HARNESS_WORKER);
	scc_fails(scc_source("    table: public.loose\n    status: {column: state}\n"),
	          "source configuration_update: key: public.loose has no primary key; set key to a column with a "
	          "unique index");
	/* A key that is also a column the daemon writes. */
	harness_exec(scc_owner, "GRANT UPDATE ON configuration_update TO " HARNESS_WORKER);
	harness_exec(scc_owner, "GRANT SELECT ON configuration_update TO " HARNESS_WORKER);
	scc_fails(scc_source(SCC_SEED_SOURCE "    columns: {attempts: id}\n"),
	          "source configuration_update: columns.attempts: column id is the key, which the daemon never "
	          "writes; map another column");
}
END_TEST

START_TEST(test_key_of_an_unsupported_type_is_an_error)
{
	harness_exec(scc_owner, "CREATE TABLE jobs (id numeric PRIMARY KEY, state text);"
	                        "CREATE TABLE stamped (id timestamptz PRIMARY KEY, state text);"
	                        "GRANT SELECT, UPDATE (state) ON jobs, stamped TO " HARNESS_WORKER);
	scc_fails(scc_source("    table: public.jobs\n    status: {column: state}\n"),
	          "source configuration_update: key: column id of public.jobs is numeric; the key must be smallint, "
	          "integer, bigint, uuid, text or varchar");
	scc_fails(scc_source("    table: public.stamped\n    status: {column: state}\n"),
	          "source configuration_update: key: column id of public.stamped is timestamp with time zone; the "
	          "key must be smallint, integer, bigint, uuid, text or varchar");
}
END_TEST

/* The variants: bigint and uuid keys, text and varchar status. */
START_TEST(test_text_status_and_bigint_and_uuid_keys_pass)
{
	struct source_shape shape;

	harness_exec(scc_owner,
	             "CREATE TABLE big (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, status text);"
	             "CREATE TABLE uu (id uuid PRIMARY KEY, status varchar(20));"
	             "CREATE TABLE small (id smallint PRIMARY KEY, status varchar);"
	             "GRANT SELECT, UPDATE (status) ON big, uu, small TO " HARNESS_WORKER);
	scc_passes(scc_source("    table: public.big\n    status: {column: status, complete: done}\n"), &shape);
	ck_assert_str_eq(shape.key_type, "bigint");
	ck_assert_uint_eq(shape.key_type_oid, 20);
	ck_assert(shape.key_is_integer);
	ck_assert_str_eq(shape.status_type, "text");
	ck_assert(!shape.status_is_enum);
	source_shape_clear(&shape);

	scc_passes(scc_source("    table: public.uu\n    status: {column: status}\n"), &shape);
	ck_assert_str_eq(shape.key_type, "uuid");
	ck_assert_uint_eq(shape.key_type_oid, 2950);
	ck_assert(!shape.key_is_integer);
	ck_assert_str_eq(shape.status_type, "character varying(20)");
	ck_assert(!shape.status_is_enum);
	source_shape_clear(&shape);

	scc_passes(scc_source("    table: public.small\n    status: {column: status}\n"), &shape);
	ck_assert_str_eq(shape.key_type, "smallint");
	ck_assert(shape.key_is_integer);
	source_shape_clear(&shape);
}
END_TEST

START_TEST(test_columns_of_the_wrong_type_are_each_a_line)
{
	static const char body[] =
		"    table: public.typed\n    status: {column: status}\n"
		"    columns:\n"
		"      attempts: a\n      run_at: b\n      last_error: c\n      result: d\n      locked_by: e\n"
		"      lease_expires_at: f\n      started_at: g\n      finished_at: h\n      priority: i\n";
	struct source_shape shape;

	harness_exec(scc_owner,
	             "CREATE TABLE typed (id int PRIMARY KEY, status int, a text, b timestamp, c int, d int,"
	             "                    e jsonb, f date, g text, h bigint, i numeric);"
	             "GRANT SELECT, UPDATE ON typed TO " HARNESS_WORKER);
	scc_fails(scc_source(body),
	          "source configuration_update: status.column: column status of public.typed is integer; it must be "
	          "an enum, text or varchar\n"
	          "source configuration_update: columns.attempts: column a of public.typed is text; attempts needs "
	          "smallint, integer or bigint\n"
	          "source configuration_update: columns.run_at: column b of public.typed is timestamp without time "
	          "zone; run_at needs timestamp with time zone\n"
	          "source configuration_update: columns.last_error: column c of public.typed is integer; last_error "
	          "needs text or varchar\n"
	          "source configuration_update: columns.result: column d of public.typed is integer; result needs "
	          "jsonb, json or text\n"
	          "source configuration_update: columns.locked_by: column e of public.typed is jsonb; locked_by needs "
	          "text or varchar\n"
	          "source configuration_update: columns.lease_expires_at: column f of public.typed is date; "
	          "lease_expires_at needs timestamp with time zone\n"
	          "source configuration_update: columns.started_at: column g of public.typed is text; started_at "
	          "needs timestamp with time zone\n"
	          "source configuration_update: columns.finished_at: column h of public.typed is bigint; "
	          "finished_at needs timestamp with time zone\n"
	          "source configuration_update: columns.priority: column i of public.typed is numeric; priority "
	          "needs smallint, integer or bigint");

	/* The right types, through a domain for one of them. */
	harness_exec(scc_owner,
	             "CREATE DOMAIN short_text AS varchar(200);"
	             "ALTER TABLE typed ALTER COLUMN status TYPE text, ALTER COLUMN a TYPE bigint USING NULL,"
	             "  ALTER COLUMN b TYPE timestamptz, ALTER COLUMN c TYPE short_text,"
	             "  ALTER COLUMN d TYPE jsonb USING NULL, ALTER COLUMN e TYPE text,"
	             "  ALTER COLUMN f TYPE timestamptz, ALTER COLUMN g TYPE timestamptz USING NULL,"
	             "  ALTER COLUMN h TYPE timestamptz USING NULL, ALTER COLUMN i TYPE smallint");
	scc_passes(scc_source(body), &shape);
	ck_assert_str_eq(shape.column_type[SOURCE_COL_ATTEMPTS], "bigint");
	ck_assert_str_eq(shape.column_type[SOURCE_COL_LAST_ERROR], "short_text");
	ck_assert_str_eq(shape.column_type[SOURCE_COL_RESULT], "jsonb");
	ck_assert_str_eq(shape.column_type[SOURCE_COL_PRIORITY], "smallint");
	source_shape_clear(&shape);
}
END_TEST

/*
 * Names with quotes, capitals, spaces and a dot, and a pending value
 * that would end a literal: everything resolves, the advice is SQL that
 * runs as printed, and the canary table survives every step.
 */
START_TEST(test_hostile_identifiers_resolve_and_inject_nothing)
{
	static const char body[] =
		"    table: '\"Sch \"\"ema\"\"\".\"Con''fig \"\"Up.date\"\"\"'\n"
		"    status:\n"
		"      column: St atus\n"
		"      pending: \"'); DROP TABLE canary; --\"\n"
		"    columns: {last_error: 'Last \"Err\"'}\n";
	const struct source_config *sc;
	struct source_shape shape;
	char err[4096], advice[2048];

	harness_exec(scc_owner,
	             "CREATE SCHEMA \"Sch \"\"ema\"\"\";"
	             "CREATE TYPE \"Sch \"\"ema\"\"\".\"Sta\"\"tus\" AS ENUM"
	             "  ('''); DROP TABLE canary; --', 'in_progress', 'complete', 'failed');"
	             "CREATE TABLE \"Sch \"\"ema\"\"\".\"Con'fig \"\"Up.date\"\"\" ("
	             "  \"Id \"\"x\"\"\" bigint PRIMARY KEY,"
	             "  \"St atus\" \"Sch \"\"ema\"\"\".\"Sta\"\"tus\","
	             "  \"Last \"\"Err\"\"\" text)");
	sc = scc_source(body);
	ck_assert_str_eq(sc->status[SOURCE_PENDING], "'); DROP TABLE canary; --");

	ck_assert(!source_check(scc_worker, sc, &shape, err, sizeof err));
	ck_assert_str_eq(err, "source configuration_update: missing privileges; run as the table's owner: "
	                      "GRANT USAGE ON SCHEMA \"Sch \"\"ema\"\"\" TO " HARNESS_WORKER "; "
	                      "GRANT SELECT, UPDATE (\"St atus\", \"Last \"\"Err\"\"\") ON "
	                      "\"Sch \"\"ema\"\"\".\"Con'fig \"\"Up.date\"\"\" TO " HARNESS_WORKER ";");
	scc_run_advice(err);
	scc_assert_canary();

	scc_passes(sc, &shape);
	ck_assert_str_eq(shape.schema, "Sch \"ema\"");
	ck_assert_str_eq(shape.table, "Con'fig \"Up.date\"");
	ck_assert_str_eq(shape.key, "Id \"x\"");
	ck_assert_str_eq(shape.status_type, "\"Sch \"\"ema\"\"\".\"Sta\"\"tus\"");
	ck_assert(shape.status_is_enum);

	ck_assert(!scc_index(sc, &shape, advice, sizeof advice));
	ck_assert_msg(strstr(advice, ": CREATE INDEX CONCURRENTLY \"Con'fig \"\"Up.date\"\"_pgdispatch_claim_idx\" ON "
	                             "\"Sch \"\"ema\"\"\".\"Con'fig \"\"Up.date\"\"\" (\"Id \"\"x\"\"\") "
	                             "WHERE \"St atus\" = '''); DROP TABLE canary; --';") != NULL,
	              "advice: %s", advice);
	scc_assert_canary();
	/* The printed statement runs as it is, and then serves the claim. */
	harness_exec(scc_owner, strstr(advice, "CREATE INDEX CONCURRENTLY"));
	scc_assert_canary();
	ck_assert_msg(scc_index(sc, &shape, advice, sizeof advice), "advice: %s", advice);
	ck_assert_str_eq(advice, "");
	source_shape_clear(&shape);
	scc_assert_canary();
}
END_TEST

/* --- source_check_index() ------------------------------------------------ */

START_TEST(test_index_advice_until_a_partial_index_serves_the_claim)
{
	const struct source_config *sc;
	struct source_shape shape;
	char advice[2048];

	harness_exec(scc_owner, scc_seed_grant);
	harness_exec(scc_owner, "INSERT INTO configuration_update (status) SELECT 'complete' FROM generate_series(1, 200)");
	sc = scc_source(SCC_SEED_SOURCE);
	scc_passes(sc, &shape);
	/* The primary key gives the order but reads every finished row. */
	ck_assert(!scc_index(sc, &shape, advice, sizeof advice));
	ck_assert_str_eq(advice, "source configuration_update: the claim reads no partial index of "
	                         "public.configuration_update in claim order, so each claim scans past every "
	                         "finished row; create one (CONCURRENTLY: writes go on): CREATE INDEX CONCURRENTLY "
	                         "configuration_update_pgdispatch_claim_idx ON public.configuration_update (id) "
	                         "WHERE status = 'pending';");
	/* A partial index for another state does not serve the claim. */
	harness_exec(scc_owner, "CREATE INDEX failed_idx ON configuration_update (id) WHERE status = 'failed'");
	ck_assert(!scc_index(sc, &shape, advice, sizeof advice));
	/* Nor one in another order: the claim would sort. */
	harness_exec(scc_owner, "CREATE INDEX dest_idx ON configuration_update (destination) WHERE status = 'pending'");
	ck_assert(!scc_index(sc, &shape, advice, sizeof advice));
	ck_assert_msg(strstr(advice, "CREATE INDEX CONCURRENTLY") != NULL, "advice: %s", advice);
	harness_exec(scc_owner, "CREATE INDEX ON configuration_update (id) WHERE status = 'pending'");
	ck_assert_msg(scc_index(sc, &shape, advice, sizeof advice), "advice: %s", advice);
	ck_assert_str_eq(advice, "");
	source_shape_clear(&shape);
}
END_TEST

/* With priority mapped the claim orders by it first, and so does the
 * advised index; order_by replaces the key. */
START_TEST(test_index_advice_puts_priority_first_and_follows_order_by)
{
	const struct source_config *sc;
	struct source_shape shape;
	char advice[2048];

	harness_exec(scc_owner, "ALTER TABLE configuration_update ADD COLUMN \"Prio\" int, ADD COLUMN created timestamptz");
	harness_exec(scc_owner, scc_seed_grant);
	sc = scc_source(SCC_SEED_SOURCE "    order_by: created\n    columns: {priority: Prio}\n");
	scc_passes(sc, &shape);
	/* Partial and read in priority order, but the rows of one priority
	 * still need sorting (an Incremental Sort): not enough. */
	harness_exec(scc_owner, "CREATE INDEX prio_idx ON configuration_update (\"Prio\" DESC) WHERE status = 'pending'");
	ck_assert(!scc_index(sc, &shape, advice, sizeof advice));
	ck_assert_msg(strstr(advice, "): CREATE INDEX CONCURRENTLY configuration_update_pgdispatch_claim_idx ON "
	                             "public.configuration_update (\"Prio\" DESC, created) WHERE status = 'pending';")
	              != NULL, "advice: %s", advice);
	harness_exec(scc_owner, strstr(advice, "CREATE INDEX CONCURRENTLY"));
	ck_assert_msg(scc_index(sc, &shape, advice, sizeof advice), "advice: %s", advice);
	source_shape_clear(&shape);
}
END_TEST

/* An index in claim order that is not partial, or a partial one that is
 * not in claim order (the plan sorts), are both advised against. */
START_TEST(test_index_must_be_partial_and_in_claim_order)
{
	const struct source_config *sc;
	struct source_shape shape;
	char advice[2048];

	harness_exec(scc_owner, "ALTER TABLE configuration_update ADD COLUMN created timestamptz");
	harness_exec(scc_owner, scc_seed_grant);
	sc = scc_source(SCC_SEED_SOURCE "    order_by: created\n");
	scc_passes(sc, &shape);
	/* Partial, but the plan must sort its rows. */
	harness_exec(scc_owner, "CREATE INDEX pending_id_idx ON configuration_update (id) WHERE status = 'pending'");
	ck_assert(!scc_index(sc, &shape, advice, sizeof advice));
	ck_assert_msg(strstr(advice, "ON public.configuration_update (created) WHERE status = 'pending';") != NULL,
	              "advice: %s", advice);
	/* In order, but not partial. */
	harness_exec(scc_owner, "CREATE INDEX created_idx ON configuration_update (created)");
	ck_assert(!scc_index(sc, &shape, advice, sizeof advice));
	harness_exec(scc_owner, "CREATE INDEX ON configuration_update (created) WHERE status = 'pending'");
	ck_assert_msg(scc_index(sc, &shape, advice, sizeof advice), "advice: %s", advice);
	source_shape_clear(&shape);
}
END_TEST

/* A claim that cannot be explained is a warning that says why, and the
 * connection is left usable. */
START_TEST(test_index_check_reports_a_claim_that_fails_to_explain)
{
	const struct source_config *sc;
	struct source_shape shape;
	char advice[2048];

	harness_exec(scc_owner, scc_seed_grant);
	sc = scc_source(SCC_SEED_SOURCE);
	scc_passes(sc, &shape);
	ck_assert(!source_check_index(scc_worker, sc, &shape, "SELECT FROM nowhere WHERE $1 = $2", 5, scc_params,
	                              advice, sizeof advice));
	ck_assert_str_eq(advice, "source configuration_update: cannot check the claim's index use: EXPLAIN failed: "
	                         "42P01: relation \"nowhere\" does not exist");
	ck_assert_int_eq(PQtransactionStatus(scc_worker), PQTRANS_IDLE);
	ck_assert_str_eq(harness_value(scc_worker, "SHOW enable_seqscan"), "on");
	source_shape_clear(&shape);
}
END_TEST

/* --- check-config -d ----------------------------------------------------- */

/* Runs check-config on yaml, with -d as the worker when database. */
static int
scc_cli(struct harness_proc *p, const char *yaml, bool database, char *path, size_t len)
{
	const char *with[] = {"check-config", "-c", NULL, "-d", scc_worker_info, NULL};

	snprintf(path, len, "%s", harness_write_temp(yaml));
	with[2] = path;
	if (!database)
		with[3] = NULL;
	return harness_run(p, with);
}

START_TEST(test_check_config_d_warns_of_the_index_then_is_quiet)
{
	struct harness_proc p;
	char path[256], want[1024];
	const char *yaml = scc_yaml("configuration_update", SCC_SEED_SOURCE);

	harness_exec(scc_owner, scc_seed_grant);
	ck_assert_int_eq(scc_cli(&p, yaml, true, path, sizeof path), 0);
	snprintf(want, sizeof want, "%s: ok (1 handlers, 1 queues, 0 schedules, 1 sources: tables checked)\n", path);
	ck_assert_str_eq(p.out, want);
	snprintf(want, sizeof want, "%s: warning: source configuration_update: the claim reads no partial index of "
	         "public.configuration_update in claim order, so each claim scans past every finished row; create "
	         "one (CONCURRENTLY: writes go on): CREATE INDEX CONCURRENTLY configuration_update_pgdispatch_claim_idx "
	         "ON public.configuration_update (id) WHERE status = 'pending';\n", path);
	ck_assert_str_eq(p.err, want);
	harness_proc_free(&p);

	harness_exec(scc_owner, "CREATE INDEX ON configuration_update (id) WHERE status = 'pending'");
	ck_assert_int_eq(scc_cli(&p, yaml, true, path, sizeof path), 0);
	ck_assert_str_eq(p.err, "");
	ck_assert_ptr_nonnull(strstr(p.out, ": ok (1 handlers, 1 queues, 0 schedules, 1 sources: tables checked)\n"));
	harness_proc_free(&p);

	/* Without -d the file alone is checked, as before, and it says so. */
	ck_assert_int_eq(scc_cli(&p, yaml, false, path, sizeof path), 0);
	snprintf(want, sizeof want, "%s: ok (1 handlers, 1 queues, 0 schedules, 1 sources: tables not checked, "
	         "give -d CONNINFO)\n", path);
	ck_assert_str_eq(p.out, want);
	ck_assert_str_eq(p.err, "");
	harness_proc_free(&p);
}
END_TEST

START_TEST(test_check_config_d_exits_2_with_every_error)
{
	struct harness_proc p;
	char path[256], want[2048];
	const char *yaml;

	/* Two sources: a bad label in one, no grant on the other; both said. */
	harness_exec(scc_owner, scc_seed_grant);
	harness_exec(scc_owner, "CREATE TABLE jobs (id bigint PRIMARY KEY, state text)");
	yaml = "sources:\n"
	       "  configuration_update:\n"
	       "    table: public.configuration_update\n"
	       "    status: {column: status, complete: done}\n"
	       "  jobs: {table: public.jobs, status: {column: state}}\n"
	       "handlers:\n"
	       "  configuration_update: {builtin: noop}\n"
	       "  jobs: {builtin: noop}\n";
	ck_assert_int_eq(scc_cli(&p, yaml, true, path, sizeof path), 2);
	ck_assert_str_eq(p.out, "");
	snprintf(want, sizeof want,
	         "%s: source configuration_update: status.complete: \"done\" is not a label of enum "
	         "public.configuration_update_status (labels: pending, in_progress, complete, failed)\n"
	         "%s: source jobs: missing privileges; run as the table's owner: GRANT SELECT, UPDATE (state) ON "
	         "public.jobs TO " HARNESS_WORKER ";\n", path, path);
	ck_assert_str_eq(p.err, want);
	harness_proc_free(&p);

	/* The same file without -d is fine: the table is not looked at. */
	ck_assert_int_eq(scc_cli(&p, yaml, false, path, sizeof path), 0);
	harness_proc_free(&p);
}
END_TEST

START_TEST(test_check_config_d_exits_1_when_it_cannot_connect)
{
	struct harness_proc p;
	const char *path = harness_write_temp(scc_yaml("configuration_update", SCC_SEED_SOURCE));
	const char *args[] = {"check-config", "-c", path, "-d", "dbname=pgdispatch_no_such_db", NULL};

	ck_assert_int_eq(harness_run(&p, args), 1);
	ck_assert_msg(strstr(p.err, "pgdispatch: cannot connect: ") != NULL, "stderr: %s", p.err);
	ck_assert_msg(strstr(p.err, "pgdispatch_no_such_db") != NULL, "stderr: %s", p.err);
	ck_assert_str_eq(p.out, "");
	harness_proc_free(&p);
}
END_TEST

Suite *
source_check_suite(void)
{
	Suite *s = suite_create("source_check");
	TCase *tc = tcase_create("catalog");
	TCase *ix = tcase_create("index");
	TCase *cli = tcase_create("check-config");

	tcase_add_checked_fixture(tc, scc_setup, scc_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_seed_table_passes_and_its_shape_is_read);
	tcase_add_test(tc, test_missing_or_misnamed_table_is_an_error);
	tcase_add_test(tc, test_each_missing_column_is_a_line);
	tcase_add_test(tc, test_missing_enum_label_names_the_enum_and_its_labels);
	tcase_add_test(tc, test_missing_privileges_give_one_grant_line_that_works);
	tcase_add_test(tc, test_key_must_be_unique_not_null_and_one_column);
	tcase_add_test(tc, test_key_of_an_unsupported_type_is_an_error);
	tcase_add_test(tc, test_text_status_and_bigint_and_uuid_keys_pass);
	tcase_add_test(tc, test_columns_of_the_wrong_type_are_each_a_line);
	tcase_add_test(tc, test_hostile_identifiers_resolve_and_inject_nothing);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(ix, scc_setup, scc_teardown);
	tcase_set_timeout(ix, 60);
	tcase_add_test(ix, test_index_advice_until_a_partial_index_serves_the_claim);
	tcase_add_test(ix, test_index_advice_puts_priority_first_and_follows_order_by);
	tcase_add_test(ix, test_index_must_be_partial_and_in_claim_order);
	tcase_add_test(ix, test_index_check_reports_a_claim_that_fails_to_explain);
	suite_add_tcase(s, ix);

	tcase_add_checked_fixture(cli, scc_setup, scc_teardown);
	tcase_set_timeout(cli, 60);
	tcase_add_test(cli, test_check_config_d_warns_of_the_index_then_is_quiet);
	tcase_add_test(cli, test_check_config_d_exits_2_with_every_error);
	tcase_add_test(cli, test_check_config_d_exits_1_when_it_cannot_connect);
	suite_add_tcase(s, cli);
	return s;
}
