/*
 * A source's table checked against the catalog before any row is touched;
 * see source_check.h.
 *
 * Vocabulary: a slot is one column the config names (the key, the status
 * column, the payload and order_by columns, each mapped column);
 * sql/source_catalog.sql answers one row per slot. Every problem found is
 * one line of the error, "source NAME: what: why; what to do", and the
 * missing privileges are gathered into one line of GRANTs, so that one
 * run of check-config shows everything there is to fix.
 */
#include "source_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "embed.h"

/* The built-in types the checks accept, by OID: these are fixed in
 * PostgreSQL's catalog (pg_type.dat), the same in every version. */
#define SOURCE_CHECK_INT8 20u
#define SOURCE_CHECK_INT2 21u
#define SOURCE_CHECK_INT4 23u
#define SOURCE_CHECK_TEXT 25u
#define SOURCE_CHECK_JSON 114u
#define SOURCE_CHECK_VARCHAR 1043u
#define SOURCE_CHECK_TIMESTAMPTZ 1184u
#define SOURCE_CHECK_UUID 2950u
#define SOURCE_CHECK_JSONB 3802u

/* The slots, in the order of sql/source_catalog.sql's $2..$14. */
enum {
	SLOT_KEY, SLOT_STATUS, SLOT_PAYLOAD, SLOT_ORDER_BY, SLOT_MAPPED,
	SLOT_COUNT = SLOT_MAPPED + SOURCE_COL_COUNT
};

/* sql/source_catalog.sql's parameters: the table, the slots, the four
 * status values. */
#define SOURCE_CHECK_NPARAMS (1 + SLOT_COUNT + SOURCE_STATE_COUNT)

/* The lines of the error being written: err[0..len), used so far. */
struct source_check_report {
	const struct source_config *sc;
	char *err;
	size_t len;
	size_t used;
	int lines;
};

/* Adds one line, "source NAME: " and the message. */
static void source_check_line(struct source_check_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
source_check_line(struct source_check_report *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->used + 1 >= r->len)
		return;
	n = snprintf(r->err + r->used, r->len - r->used, "%ssource %s: ", r->lines > 0 ? "\n" : "", r->sc->name);
	if (n < 0 || (size_t) n >= r->len - r->used) {
		r->used = r->len - 1;
		return;
	}
	r->used += (size_t) n;
	va_start(ap, fmt);
	n = vsnprintf(r->err + r->used, r->len - r->used, fmt, ap);
	va_end(ap);
	r->used = n < 0 || (size_t) n >= r->len - r->used ? r->len - 1 : r->used + (size_t) n;
	r->lines++;
}

/* What the config calls a slot's column, for messages: "key",
 * "status.column", "columns.attempts" ... */
static const char *
source_check_slot_name(int slot, char *buf, size_t len)
{
	static const char *const names[SLOT_MAPPED] = {"key", "status.column", "payload", "order_by"};

	if (slot < SLOT_MAPPED)
		return names[slot];
	snprintf(buf, len, "columns.%s", config_source_columns[slot - SLOT_MAPPED]);
	return buf;
}

/* The column name a slot asks for (NULL: none; for the key, the primary key). */
static const char *
source_check_slot_column(const struct source_config *sc, int slot)
{
	switch (slot) {
	case SLOT_KEY:
		return sc->key;
	case SLOT_STATUS:
		return sc->status_column;
	case SLOT_PAYLOAD:
		return sc->payload;
	case SLOT_ORDER_BY:
		return sc->order_by;
	default:
		return sc->columns[slot - SLOT_MAPPED];
	}
}

/* A field of the catalog's answer by name; NULL for SQL NULL. */
static const char *
source_check_get(const PGresult *res, int row, const char *field)
{
	int col = PQfnumber(res, field);

	if (col < 0 || PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

static bool
source_check_true(const PGresult *res, int row, const char *field)
{
	const char *v = source_check_get(res, row, field);

	return v != NULL && strcmp(v, "t") == 0;
}

static unsigned int
source_check_oid(const PGresult *res, int row, const char *field)
{
	const char *v = source_check_get(res, row, field);

	return v != NULL ? (unsigned int) strtoul(v, NULL, 10) : 0;
}

static bool
source_check_is_integer(unsigned int oid)
{
	return oid == SOURCE_CHECK_INT2 || oid == SOURCE_CHECK_INT4 || oid == SOURCE_CHECK_INT8;
}

static bool
source_check_is_text(unsigned int oid)
{
	return oid == SOURCE_CHECK_TEXT || oid == SOURCE_CHECK_VARCHAR;
}

/*
 * The types a mapped column may have: what the daemon writes into it (or,
 * for run_at and priority, reads from it). NULL when the type is right,
 * else the types it needs, for the message.
 */
static const char *
source_check_mapped_type(enum source_column c, unsigned int oid)
{
	switch (c) {
	case SOURCE_COL_ATTEMPTS:
	case SOURCE_COL_PRIORITY:
		return source_check_is_integer(oid) ? NULL : "smallint, integer or bigint";
	case SOURCE_COL_RUN_AT:
	case SOURCE_COL_LEASE_EXPIRES_AT:
	case SOURCE_COL_STARTED_AT:
	case SOURCE_COL_FINISHED_AT:
		return oid == SOURCE_CHECK_TIMESTAMPTZ ? NULL : "timestamp with time zone";
	case SOURCE_COL_LAST_ERROR:
	case SOURCE_COL_LOCKED_BY:
		return source_check_is_text(oid) ? NULL : "text or varchar";
	case SOURCE_COL_RESULT:
		return oid == SOURCE_CHECK_JSONB || oid == SOURCE_CHECK_JSON || oid == SOURCE_CHECK_TEXT
		       ? NULL : "jsonb, json or text";
	default:
		return NULL;
	}
}

/* Whether the daemon writes a slot's column: the status and every mapped
 * column but run_at and priority, which are the claim's inputs. */
static bool
source_check_writes(int slot)
{
	return slot == SLOT_STATUS
	       || (slot >= SLOT_MAPPED && slot - SLOT_MAPPED != SOURCE_COL_RUN_AT
	           && slot - SLOT_MAPPED != SOURCE_COL_PRIORITY);
}

/* Appends ", name" (or "name" first) to a list of quoted names. */
static void
source_check_list_add(char *list, size_t len, const char *name)
{
	size_t n = strlen(list);

	snprintf(list + n, len - n, "%s%s", n > 0 ? ", " : "", name);
}

static void
source_check_dup(char **out, const char *s, bool *ok)
{
	*out = strdup(s != NULL ? s : "");
	if (*out == NULL)
		*ok = false;
}

/* The key's row: it exists, is unique and not null, of a type the task
 * JSON and the side table can carry. */
static void
source_check_key(struct source_check_report *r, const PGresult *res, int row, const char *q_table,
                 struct source_shape *shape, bool *ok)
{
	const char *col = source_check_get(res, row, "q_column");
	unsigned int base = source_check_oid(res, row, "base_type_oid");

	if (!source_check_true(res, row, "is_unique"))
		source_check_line(r, "key: column %s of %s is not unique; it needs a unique index on (%s) alone, "
		                  "not partial (or make it the primary key)", col, q_table, col);
	if (!source_check_true(res, row, "not_null"))
		source_check_line(r, "key: column %s of %s may be NULL; run as the table's owner: ALTER TABLE %s "
		                  "ALTER COLUMN %s SET NOT NULL;", col, q_table, q_table, col);
	if (!source_check_is_integer(base) && !source_check_is_text(base) && base != SOURCE_CHECK_UUID)
		source_check_line(r, "key: column %s of %s is %s; the key must be smallint, integer, bigint, uuid, "
		                  "text or varchar", col, q_table, source_check_get(res, row, "type_name"));
	source_check_dup(&shape->key, source_check_get(res, row, "attname"), ok);
	source_check_dup(&shape->key_type, source_check_get(res, row, "type_name"), ok);
	shape->key_type_oid = source_check_oid(res, row, "type_oid");
	shape->key_is_integer = source_check_is_integer(base);
}

/* The status row: an enum holding all four values, or a text column. */
static void
source_check_status(struct source_check_report *r, const PGresult *res, int row, const char *q_table,
                    struct source_shape *shape, bool *ok)
{
	static const char *const has[SOURCE_STATE_COUNT] = {"has_pending", "has_in_progress", "has_complete",
	                                                    "has_failed"};
	static const char *const keys[SOURCE_STATE_COUNT] = {"pending", "in_progress", "complete", "failed"};
	const char *type = source_check_get(res, row, "type_name");
	unsigned int base = source_check_oid(res, row, "base_type_oid");

	shape->status_is_enum = source_check_true(res, row, "is_enum");
	source_check_dup(&shape->status_type, type, ok);
	if (shape->status_is_enum) {
		for (int s = 0; s < SOURCE_STATE_COUNT; s++)
			if (!source_check_true(res, row, has[s]))
				source_check_line(r, "status.%s: \"%s\" is not a label of enum %s (labels: %s)", keys[s],
				                  r->sc->status[s], type, source_check_get(res, row, "labels"));
	} else if (!source_check_is_text(base)) {
		source_check_line(r, "status.column: column %s of %s is %s; it must be an enum, text or varchar",
		                  source_check_get(res, row, "q_column"), q_table, type);
	}
}

/*
 * The catalog's answer, row by row. privs gathers the quoted columns that
 * lack UPDATE. Returns nothing: every problem is a line of r.
 */
static void
source_check_slots(struct source_check_report *r, const PGresult *res, const char *q_table,
                   struct source_shape *shape, char *privs, size_t privs_len, bool *ok)
{
	const struct source_config *sc = r->sc;
	const char *key_attname = NULL;

	for (int slot = 0; slot < SLOT_COUNT && slot < PQntuples(res); slot++) {
		const char *want = source_check_slot_column(sc, slot);
		const char *attname = source_check_get(res, slot, "attname");
		const char *q_column = source_check_get(res, slot, "q_column");
		char name_buf[64];
		const char *name = source_check_slot_name(slot, name_buf, sizeof name_buf);

		if (want == NULL && slot != SLOT_KEY)
			continue;
		if (attname == NULL) {
			const char *pk = source_check_get(res, slot, "pk_columns");

			if (want != NULL)
				source_check_line(r, "%s: column \"%s\" does not exist in %s (names are as the catalog has "
				                  "them: case kept, no quotes)", name, want, q_table);
			else if (pk == NULL)
				source_check_line(r, "key: %s has no primary key; set key to a column with a unique index",
				                  q_table);
			else
				source_check_line(r, "key: the primary key of %s has %s columns; set key to one column with "
				                  "a unique index", q_table, pk);
			continue;
		}
		if (slot == SLOT_KEY) {
			source_check_key(r, res, slot, q_table, shape, ok);
			key_attname = attname;
			continue;
		}
		/* The config compares the names it was given; a key that is the
		 * primary key by default is only known here. */
		if (source_check_writes(slot) && key_attname != NULL && strcmp(attname, key_attname) == 0)
			source_check_line(r, "%s: column %s is the key, which the daemon never writes; map another "
			                  "column", name, q_column);
		if (slot == SLOT_STATUS) {
			source_check_status(r, res, slot, q_table, shape, ok);
		} else if (slot >= SLOT_MAPPED) {
			enum source_column c = (enum source_column) (slot - SLOT_MAPPED);
			const char *need = source_check_mapped_type(c, source_check_oid(res, slot, "base_type_oid"));

			if (need != NULL)
				source_check_line(r, "%s: column %s of %s is %s; %s needs %s", name, q_column, q_table,
				                  source_check_get(res, slot, "type_name"), config_source_columns[c], need);
			source_check_dup(&shape->column_type[c], source_check_get(res, slot, "type_name"), ok);
		}
		if (source_check_writes(slot) && !source_check_true(res, slot, "can_update"))
			source_check_list_add(privs, privs_len, q_column);
	}
}

/*
 * The one line that grants what is missing, for the table's owner to
 * run: USAGE on the schema, SELECT on the table, UPDATE on the columns
 * the daemon writes (updates: quoted and comma-separated), to the role
 * that ran the check.
 */
static void
source_check_grants(struct source_check_report *r, const PGresult *res, const char *updates)
{
	const char *role = source_check_get(res, 0, "q_role");
	char grants[2048] = "", what[1100] = "";
	size_t n = 0;

	if (!source_check_true(res, 0, "schema_usage"))
		n += (size_t) snprintf(grants, sizeof grants, "GRANT USAGE ON SCHEMA %s TO %s;",
		                       source_check_get(res, 0, "q_schema"), role);
	if (!source_check_true(res, 0, "table_select"))
		source_check_list_add(what, sizeof what, "SELECT");
	if (updates[0] != '\0') {
		size_t w = strlen(what);

		snprintf(what + w, sizeof what - w, "%sUPDATE (%s)", w > 0 ? ", " : "", updates);
	}
	if (what[0] != '\0' && n < sizeof grants)
		snprintf(grants + n, sizeof grants - n, "%sGRANT %s ON %s TO %s;", n > 0 ? " " : "", what,
		         source_check_get(res, 0, "q_table"), role);
	if (grants[0] != '\0')
		source_check_line(r, "missing privileges; run as the table's owner: %s", grants);
}

/* Whether a name as written has a capital outside double quotes, which
 * parse_ident() folds to lower case. */
static bool
source_check_folds(const char *name)
{
	bool quoted = false;

	for (const char *c = name; *c != '\0'; c++) {
		if (*c == '"')
			quoted = !quoted;
		else if (!quoted && *c >= 'A' && *c <= 'Z')
			return true;
	}
	return false;
}

/* The table's row: named schema.table, existing, a table. False when
 * there is nothing more to check. */
static bool
source_check_table(struct source_check_report *r, const PGresult *res)
{
	const char *nparts = source_check_get(res, 0, "nparts");
	const char *relkind = source_check_get(res, 0, "relkind");

	if (nparts == NULL || strcmp(nparts, "2") != 0) {
		source_check_line(r, "table '%s' is not schema.table (it names %s parts; quote a name that holds "
		                  "a dot)", r->sc->table, nparts != NULL ? nparts : "no");
		return false;
	}
	if (relkind == NULL) {
		source_check_line(r, "table %s does not exist%s", r->sc->table,
		                  source_check_folds(r->sc->table) ? " (unquoted names fold to lower case: quote "
		                  "a name to keep its capitals)" : "");
		return false;
	}
	/* Ordinary and partitioned tables: FOR UPDATE works on both. */
	if (strcmp(relkind, "r") != 0 && strcmp(relkind, "p") != 0) {
		source_check_line(r, "%s is not a table (relkind %s); a source needs a table",
		                  source_check_get(res, 0, "q_table"), relkind);
		return false;
	}
	return true;
}

bool
source_check(PGconn *conn, const struct source_config *sc, struct source_shape *shape, char *err,
             size_t errlen)
{
	struct source_check_report r = {.sc = sc, .err = err, .len = errlen};
	const char *params[SOURCE_CHECK_NPARAMS];
	char privs[1024] = "";
	struct db_error dberr;
	PGresult *res;
	bool ok = true;

	memset(shape, 0, sizeof *shape);
	if (errlen > 0)
		err[0] = '\0';
	params[0] = sc->table;
	for (int slot = 0; slot < SLOT_COUNT; slot++)
		params[1 + slot] = source_check_slot_column(sc, slot);
	for (int s = 0; s < SOURCE_STATE_COUNT; s++)
		params[1 + SLOT_COUNT + s] = sc->status[s];

	res = db_exec(conn, embed_sql("source_catalog"), SOURCE_CHECK_NPARAMS, params, &dberr);
	if (res == NULL) {
		char text[1200];

		/* parse_ident()'s complaint: 22023, invalid_parameter_value. */
		if (strcmp(dberr.sqlstate, "22023") == 0)
			source_check_line(&r, "table '%s' is not a valid name: %s", sc->table, dberr.message);
		else
			source_check_line(&r, "cannot read the catalog: %s", db_error_text(&dberr, text, sizeof text));
		return false;
	}
	if (PQntuples(res) != SLOT_COUNT) {
		source_check_line(&r, "cannot read the catalog: %d rows, expected %d", PQntuples(res), SLOT_COUNT);
		PQclear(res);
		return false;
	}
	if (source_check_table(&r, res)) {
		const char *q_table = source_check_get(res, 0, "q_table");

		source_check_dup(&shape->schema, source_check_get(res, 0, "schema"), &ok);
		source_check_dup(&shape->table, source_check_get(res, 0, "table"), &ok);
		source_check_slots(&r, res, q_table, shape, privs, sizeof privs, &ok);
		source_check_grants(&r, res, privs);
	}
	PQclear(res);
	if (!ok)
		source_check_line(&r, "out of memory");
	if (r.lines > 0) {
		source_shape_clear(shape);
		return false;
	}
	return true;
}

void
source_shape_clear(struct source_shape *shape)
{
	free(shape->schema);
	free(shape->table);
	free(shape->key);
	free(shape->key_type);
	free(shape->status_type);
	for (int c = 0; c < SOURCE_COL_COUNT; c++)
		free(shape->column_type[c]);
	memset(shape, 0, sizeof *shape);
}

/* --- the claim's index ---------------------------------------------------- */

/* Runs sql alone (no parameters) or says why in advice. */
static bool
source_check_run(PGconn *conn, const char *sql, const char *name, char *advice, size_t len)
{
	struct db_error dberr;
	char text[1200];
	PGresult *res = db_exec(conn, sql, 0, NULL, &dberr);

	if (res == NULL) {
		snprintf(advice, len, "source %s: cannot check the claim's index use: %s", name,
		         db_error_text(&dberr, text, sizeof text));
		return false;
	}
	PQclear(res);
	return true;
}

/*
 * The claim's plan as JSON text (caller frees), made with sequential scans
 * and sorts discouraged so that the planner picks an index whenever one
 * serves; NULL with advice set when it cannot be had. Rolled back: the
 * SETs are LOCAL, and EXPLAIN without ANALYZE runs nothing.
 */
static char *
source_check_plan(PGconn *conn, const struct source_config *sc, const char *claim_sql, int nparams,
                  const char *const *params, char *advice, size_t len)
{
	static const char explain[] = "EXPLAIN (FORMAT JSON, VERBOSE) ";
	struct db_error dberr;
	char text[1200], *sql, *plan = NULL;
	PGresult *res;

	if (!source_check_run(conn, "BEGIN", sc->name, advice, len))
		return NULL;
	if (!source_check_run(conn, "SET LOCAL enable_seqscan = off", sc->name, advice, len)
	    || !source_check_run(conn, "SET LOCAL enable_sort = off", sc->name, advice, len)) {
		PQclear(db_exec(conn, "ROLLBACK", 0, NULL, &dberr));
		return NULL;
	}
	sql = malloc(sizeof explain + strlen(claim_sql));
	if (sql == NULL) {
		snprintf(advice, len, "source %s: cannot check the claim's index use: out of memory", sc->name);
	} else {
		memcpy(sql, explain, sizeof explain - 1);
		strcpy(sql + sizeof explain - 1, claim_sql);
		res = db_exec(conn, sql, nparams, params, &dberr);
		free(sql);
		if (res == NULL)
			snprintf(advice, len, "source %s: cannot check the claim's index use: EXPLAIN failed: %s",
			         sc->name, db_error_text(&dberr, text, sizeof text));
		else if (PQntuples(res) != 1 || (plan = strdup(PQgetvalue(res, 0, 0))) == NULL)
			snprintf(advice, len, "source %s: cannot check the claim's index use: no plan", sc->name);
		PQclear(res);
	}
	/* After a failed EXPLAIN too: the transaction is aborted, and this
	 * connection goes on to the next source. A failed EXPLAIN's advice
	 * says more than a failed ROLLBACK's would. */
	res = db_exec(conn, "ROLLBACK", 0, NULL, &dberr);
	if (res == NULL && plan != NULL) {
		snprintf(advice, len, "source %s: cannot check the claim's index use: %s", sc->name,
		         db_error_text(&dberr, text, sizeof text));
		free(plan);
		plan = NULL;
	}
	PQclear(res);
	return plan;
}

bool
source_check_index(PGconn *conn, const struct source_config *sc, const struct source_shape *shape,
                   const char *claim_sql, int nparams, const char *const *params, char *advice, size_t len)
{
	const char *check[7];
	struct db_error dberr;
	char text[1200];
	PGresult *res;
	char *plan;
	bool ok;

	if (len > 0)
		advice[0] = '\0';
	plan = source_check_plan(conn, sc, claim_sql, nparams, params, advice, len);
	if (plan == NULL)
		return false;
	check[0] = plan;
	check[1] = shape->schema;
	check[2] = shape->table;
	check[3] = sc->status_column;
	check[4] = sc->status[SOURCE_PENDING];
	check[5] = sc->columns[SOURCE_COL_PRIORITY];
	check[6] = sc->order_by != NULL ? sc->order_by : shape->key;
	res = db_exec(conn, embed_sql("source_check_index"), 7, check, &dberr);
	free(plan);
	if (res == NULL) {
		snprintf(advice, len, "source %s: cannot check the claim's index use: %s", sc->name,
		         db_error_text(&dberr, text, sizeof text));
		return false;
	}
	ok = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	if (!ok)
		snprintf(advice, len, "source %s: the claim reads no partial index of %s in claim order, so "
		         "each claim scans past every finished row; create one (CONCURRENTLY: writes go on): %s",
		         sc->name, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1));
	PQclear(res);
	return ok;
}
