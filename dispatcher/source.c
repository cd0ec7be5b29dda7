/*
 * Sources: filling a source's statement templates, and the daemon's table
 * of sources; see source.h.
 *
 * The templates (sql/source_*.sql) are psql-variable text, so each one
 * also runs in psql with -v: :"name" becomes an identifier quoted by
 * PQescapeIdentifier(), :'name' a literal quoted by PQescapeLiteral(),
 * :name a fragment this file builds, only ever from quoted parts and the
 * catalog's format_type() text. Nothing from the config reaches a
 * statement unquoted. Status values are literals, not parameters, so a
 * partial index WHERE status = 'pending' matches at plan time.
 */
#include "source.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "embed.h"
#include "json.h"
#include "log.h"
#include "mem.h"

#define SOURCE_RETRY_MAX_MS 30000   /* longest pause between startup connection attempts */

static const char *const source_stmt_files[SOURCE_STMT_COUNT] = {
	[SOURCE_STMT_CLAIM] = "source_claim",
	[SOURCE_STMT_COMPLETE_AND_CLAIM] = "source_complete_and_claim",
	[SOURCE_STMT_OUTCOMES] = "source_outcomes",
	[SOURCE_STMT_RENEW] = "source_renew",
	[SOURCE_STMT_REAP] = "source_reap",
	[SOURCE_STMT_NEXT_DUE] = "source_next_due",
	[SOURCE_STMT_COMPLETE_ONE] = "source_complete_one",
};

const char *const source_claim_example[SOURCE_CLAIM_NPARAMS] = {"source", "1", "check#0", "30000", "0"};

/* One variable of a template. */
struct source_var {
	const char *name;
	char kind;          /* '"' identifier, '\'' literal, ':' fragment */
	char *value;        /* for '"' and '\'': raw (quoted when filled); ':' verbatim */
};

struct source_vars {
	struct source_var v[40];
	size_t n;
};

static void
source_var_set(struct source_vars *vs, const char *name, char kind, char *value)
{
	if (vs->n == sizeof vs->v / sizeof vs->v[0])
		abort();
	vs->v[vs->n++] = (struct source_var){name, kind, value};
}

/* A fragment from printf. */
static char *
source_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
source_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

/* name quoted as an identifier; the caller frees it with PQfreemem(). */
static char *
source_ident(PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));

	if (q == NULL)
		abort();
	return q;
}

/* Appends ", "COLUMN" = CAST(expr AS type)" for a mapped column. */
static void
source_set(struct json_buf *b, PGconn *conn, const struct source_config *sc, const struct source_shape *shape,
           enum source_column col, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
source_set(struct json_buf *b, PGconn *conn, const struct source_config *sc, const struct source_shape *shape,
           enum source_column col, const char *fmt, ...)
{
	va_list ap;
	char *expr, *q;

	if (sc->columns[col] == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&expr, fmt, ap) < 0)
		abort();
	va_end(ap);
	q = source_ident(conn, sc->columns[col]);
	/* An explicit cast to the column's own type: a varchar(n) column
	 * takes the first n characters of a long error instead of failing. */
	json_buf_printf(b, ", %s = CAST(%s AS %s)", q, expr, shape->column_type[col]);
	PQfreemem(q);
	free(expr);
}

/* t."COLUMN" of a mapped column (the caller frees it). */
static char *
source_tcol(PGconn *conn, const char *name)
{
	char *q = source_ident(conn, name);
	char *s = source_fmt("t.%s", q);

	PQfreemem(q);
	return s;
}

/* The next due time's fragment for a mapped run_at column (t."run_at"):
 * the earliest future run_at of a pending row; NULL when not mapped. */
static char *
source_next_run_at(PGconn *conn, const struct source_config *sc, const struct source_shape *shape,
                   const char *run_at)
{
	char *st, *pend, *sch, *tab, *frag;

	if (run_at == NULL)
		return mem_strdup("NULL::timestamptz");
	st = source_ident(conn, sc->status_column);
	sch = source_ident(conn, shape->schema);
	tab = source_ident(conn, shape->table);
	pend = PQescapeLiteral(conn, sc->status[SOURCE_PENDING], strlen(sc->status[SOURCE_PENDING]));
	if (pend == NULL)
		abort();
	frag = source_fmt("(SELECT min(%s) FROM %s.%s AS t WHERE t.%s = %s AND %s > now())", run_at, sch, tab, st, pend,
	                  run_at);
	PQfreemem(st);
	PQfreemem(sch);
	PQfreemem(tab);
	PQfreemem(pend);
	return frag;
}

/* The fragments of sc's statements, by name. */
static void
source_vars(PGconn *conn, const struct source_config *sc, const struct source_shape *shape,
            struct source_vars *vs)
{
	const char *const *col = (const char *const *) sc->columns;
	char *t[SOURCE_COL_COUNT] = {0};
	struct json_buf claim = {0}, done = {0}, done_one = {0}, outcome = {0}, reap = {0};
	char *key = source_ident(conn, shape->key);
	char *order = source_ident(conn, sc->order_by != NULL ? sc->order_by : shape->key);
	char *q;

	for (int c = 0; c < SOURCE_COL_COUNT; c++)
		if (col[c] != NULL)
			t[c] = source_tcol(conn, col[c]);

	source_var_set(vs, "schema", '"', mem_strdup(shape->schema));
	source_var_set(vs, "table", '"', mem_strdup(shape->table));
	source_var_set(vs, "key", '"', mem_strdup(shape->key));
	source_var_set(vs, "status", '"', mem_strdup(sc->status_column));
	source_var_set(vs, "pending", '\'', mem_strdup(sc->status[SOURCE_PENDING]));
	source_var_set(vs, "in_progress", '\'', mem_strdup(sc->status[SOURCE_IN_PROGRESS]));
	source_var_set(vs, "complete", '\'', mem_strdup(sc->status[SOURCE_COMPLETE]));
	source_var_set(vs, "failed", '\'', mem_strdup(sc->status[SOURCE_FAILED]));
	source_var_set(vs, "keytype", ':', mem_strdup(shape->key_type));
	source_var_set(vs, "statustype", ':', mem_strdup(shape->status_type));

	source_var_set(vs, "due", ':', t[SOURCE_COL_RUN_AT] != NULL
	                                   ? source_fmt("AND %s <= now()", t[SOURCE_COL_RUN_AT]) : mem_strdup(""));
	source_var_set(vs, "order_by", ':', t[SOURCE_COL_PRIORITY] != NULL
	                                        ? source_fmt("%s DESC, t.%s", t[SOURCE_COL_PRIORITY], order)
	                                        : source_fmt("t.%s", order));
	if (sc->payload == NULL || strcmp(sc->payload, "row") == 0) {
		source_var_set(vs, "payload", ':', mem_strdup("row_to_json(t)"));
	} else {
		q = source_ident(conn, sc->payload);
		source_var_set(vs, "payload", ':', source_fmt("to_json(t.%s)", q));
		PQfreemem(q);
	}
	source_var_set(vs, "attempts_ret", ':', t[SOURCE_COL_ATTEMPTS] != NULL
	                                            ? source_fmt("%s::int", t[SOURCE_COL_ATTEMPTS])
	                                            : mem_strdup("NULL::int"));
	source_var_set(vs, "attempts_mapped", ':', mem_strdup(t[SOURCE_COL_ATTEMPTS] != NULL ? "true" : "false"));
	source_var_set(vs, "error_in_table", ':', mem_strdup(t[SOURCE_COL_LAST_ERROR] != NULL ? "true" : "false"));
	source_var_set(vs, "next_run_at", ':', source_next_run_at(conn, sc, shape, t[SOURCE_COL_RUN_AT]));

	/* The claim: $3 locked_by, $4 the lease. */
	source_set(&claim, conn, sc, shape, SOURCE_COL_ATTEMPTS, "coalesce(%s, 0) + 1", t[SOURCE_COL_ATTEMPTS]);
	source_set(&claim, conn, sc, shape, SOURCE_COL_LOCKED_BY, "$3");
	source_set(&claim, conn, sc, shape, SOURCE_COL_LEASE_EXPIRES_AT, "now() + $4::bigint * interval '1 millisecond'");
	source_set(&claim, conn, sc, shape, SOURCE_COL_STARTED_AT, "now()");
	source_set(&claim, conn, sc, shape, SOURCE_COL_FINISHED_AT, "NULL");
	/* A success riding along (d.result) or a SQL handler's (no result). */
	source_set(&done, conn, sc, shape, SOURCE_COL_RESULT, "d.result");
	source_set(&done, conn, sc, shape, SOURCE_COL_FINISHED_AT, "now()");
	source_set(&done, conn, sc, shape, SOURCE_COL_LEASE_EXPIRES_AT, "NULL");
	source_set(&done_one, conn, sc, shape, SOURCE_COL_RESULT, "NULL");
	source_set(&done_one, conn, sc, shape, SOURCE_COL_FINISHED_AT, "now()");
	source_set(&done_one, conn, sc, shape, SOURCE_COL_LEASE_EXPIRES_AT, "NULL");
	/* Any outcome: o.type, o.text, o.delay_ms. */
	source_set(&outcome, conn, sc, shape, SOURCE_COL_RESULT,
	           "CASE WHEN o.type = 'complete' THEN o.text ELSE %s::text END", t[SOURCE_COL_RESULT]);
	source_set(&outcome, conn, sc, shape, SOURCE_COL_LAST_ERROR,
	           "CASE WHEN o.type = 'complete' THEN %s ELSE coalesce(o.text, %s) END", t[SOURCE_COL_LAST_ERROR],
	           t[SOURCE_COL_LAST_ERROR]);
	source_set(&outcome, conn, sc, shape, SOURCE_COL_ATTEMPTS,
	           "CASE WHEN o.type = 'released' THEN %s - 1 ELSE %s END", t[SOURCE_COL_ATTEMPTS],
	           t[SOURCE_COL_ATTEMPTS]);
	source_set(&outcome, conn, sc, shape, SOURCE_COL_RUN_AT,
	           "CASE WHEN o.type = 'retry' OR (o.type = 'released' AND o.delay_ms > 0) "
	           "THEN now() + o.delay_ms * interval '1 millisecond' ELSE %s END", t[SOURCE_COL_RUN_AT]);
	source_set(&outcome, conn, sc, shape, SOURCE_COL_FINISHED_AT,
	           "CASE WHEN o.type IN ('complete', 'failed') THEN now() ELSE %s END", t[SOURCE_COL_FINISHED_AT]);
	source_set(&outcome, conn, sc, shape, SOURCE_COL_LEASE_EXPIRES_AT, "NULL");
	/* The reaper: l.used_up, l.error. */
	source_set(&reap, conn, sc, shape, SOURCE_COL_LAST_ERROR, "l.error");
	source_set(&reap, conn, sc, shape, SOURCE_COL_RUN_AT, "CASE WHEN l.used_up THEN %s ELSE now() END",
	           t[SOURCE_COL_RUN_AT]);
	source_set(&reap, conn, sc, shape, SOURCE_COL_FINISHED_AT, "CASE WHEN l.used_up THEN now() ELSE %s END",
	           t[SOURCE_COL_FINISHED_AT]);
	source_set(&reap, conn, sc, shape, SOURCE_COL_LEASE_EXPIRES_AT, "NULL");

	source_var_set(vs, "set_claim", ':', mem_strdup(claim.data != NULL ? claim.data : ""));
	source_var_set(vs, "set_done", ':', mem_strdup(done.data != NULL ? done.data : ""));
	source_var_set(vs, "set_done_one", ':', mem_strdup(done_one.data != NULL ? done_one.data : ""));
	source_var_set(vs, "set_outcome", ':', mem_strdup(outcome.data != NULL ? outcome.data : ""));
	source_var_set(vs, "set_reap", ':', mem_strdup(reap.data != NULL ? reap.data : ""));
	json_buf_free(&claim);
	json_buf_free(&done);
	json_buf_free(&done_one);
	json_buf_free(&outcome);
	json_buf_free(&reap);
	for (int c = 0; c < SOURCE_COL_COUNT; c++)
		free(t[c]);
	PQfreemem(key);
	PQfreemem(order);
}

static void
source_vars_free(struct source_vars *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		free(vs->v[i].value);
	vs->n = 0;
}

static const struct source_var *
source_var_find(const struct source_vars *vs, const char *name, size_t len)
{
	for (size_t i = 0; i < vs->n; i++)
		if (strlen(vs->v[i].name) == len && strncmp(vs->v[i].name, name, len) == 0)
			return &vs->v[i];
	return NULL;
}

static bool
source_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || c == '_';
}

/*
 * Fills tmpl's variables from vs into *out. Comments and string literals
 * are copied as they are (psql does not substitute in them either); "::"
 * is a cast. An unknown variable, or one written with the wrong quotes, is
 * an error: the template and this file disagree.
 */
static bool
source_fill(PGconn *conn, const char *tmpl, const struct source_vars *vs, char **out, char *err, size_t errlen)
{
	struct json_buf b = {0};
	const char *p = tmpl;

	while (*p != '\0') {
		if (p[0] == '-' && p[1] == '-') {
			const char *nl = strchr(p, '\n');
			size_t n = nl != NULL ? (size_t) (nl - p) + 1 : strlen(p);

			json_buf_append(&b, p, n);
			p += n;
		} else if (p[0] == '\'') {
			const char *end = strchr(p + 1, '\'');
			size_t n = end != NULL ? (size_t) (end - p) + 1 : strlen(p);

			json_buf_append(&b, p, n);
			p += n;
		} else if (p[0] == ':' && p[1] == ':') {
			json_buf_append(&b, p, 2);
			p += 2;
		} else if (p[0] == ':' && (p[1] == '"' || p[1] == '\'' || source_name_char(p[1]))) {
			char kind = source_name_char(p[1]) ? ':' : p[1];
			const char *name = kind == ':' ? p + 1 : p + 2;
			size_t len = 0;
			const struct source_var *v;

			while (source_name_char(name[len]))
				len++;
			v = source_var_find(vs, name, len);
			if (v == NULL || v->kind != kind || (kind != ':' && name[len] != kind)) {
				snprintf(err, errlen, "template variable %.*s: unknown or quoted wrongly", (int) len + 2, p);
				json_buf_free(&b);
				return false;
			}
			if (kind == ':') {
				json_buf_printf(&b, "%s", v->value);
			} else {
				char *q = kind == '"' ? PQescapeIdentifier(conn, v->value, strlen(v->value))
				                      : PQescapeLiteral(conn, v->value, strlen(v->value));

				if (q == NULL) {
					snprintf(err, errlen, "quoting %s: %s", v->name, PQerrorMessage(conn));
					json_buf_free(&b);
					return false;
				}
				json_buf_printf(&b, "%s", q);
				PQfreemem(q);
			}
			p = name + len + (kind == ':' ? 0 : 1);
		} else {
			json_buf_append(&b, p, 1);
			p++;
		}
	}
	*out = mem_strdup(b.data != NULL ? b.data : "");
	json_buf_free(&b);
	return true;
}

void
source_clear(struct source *s)
{
	free(s->name);
	free(s->channel);
	source_shape_clear(&s->shape);
	for (int i = 0; i < SOURCE_STMT_COUNT; i++)
		free(s->sql[i]);
	memset(s, 0, sizeof *s);
}

bool
source_prepare(PGconn *conn, const struct source_config *sc, struct source *out, char *err, size_t errlen,
               char *advice, size_t advlen)
{
	struct source_vars vs = {0};
	char why[512];

	memset(out, 0, sizeof *out);
	advice[0] = '\0';
	if (!source_check(conn, sc, &out->shape, err, errlen))
		return false;
	out->name = mem_strdup(sc->name);
	out->channel = sc->channel != NULL ? mem_strdup(sc->channel) : NULL;
	source_vars(conn, sc, &out->shape, &vs);
	for (int i = 0; i < SOURCE_STMT_COUNT; i++)
		if (!source_fill(conn, embed_sql(source_stmt_files[i]), &vs, &out->sql[i], why, sizeof why)) {
			snprintf(err, errlen, "source %s: sql/%s.sql: %s", sc->name, source_stmt_files[i], why);
			source_vars_free(&vs);
			source_clear(out);
			return false;
		}
	source_vars_free(&vs);
	/* Each statement must prepare against the table as it is: a mistake
	 * here would otherwise show only when the statement first runs. */
	for (int i = 0; i < SOURCE_STMT_COUNT; i++) {
		PGresult *res = PQprepare(conn, "", out->sql[i], 0, NULL);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "source %s: sql/%s.sql does not prepare: %s", sc->name, source_stmt_files[i],
			         PQresultErrorMessage(res));
			PQclear(res);
			source_clear(out);
			return false;
		}
		PQclear(res);
	}
	(void) source_check_index(conn, sc, &out->shape, out->sql[SOURCE_STMT_CLAIM], SOURCE_CLAIM_NPARAMS,
	                          source_claim_example, advice, advlen);
	return true;
}

/* --- the daemon's table of sources ------------------------------------ */

static struct {
	struct source *items;
	size_t n;
	long long last_row_id;
} source_local;

long long
source_row_id(void)
{
	return --source_local.last_row_id;
}

size_t
source_count(void)
{
	return source_local.n;
}

const struct source *
source_get(int i)
{
	return i >= 1 && (size_t) i <= source_local.n ? &source_local.items[i - 1] : NULL;
}

const struct source *
source_find(const char *name)
{
	for (size_t i = 0; i < source_local.n; i++)
		if (strcmp(source_local.items[i].name, name) == 0)
			return &source_local.items[i];
	return NULL;
}

void
source_free_all(void)
{
	for (size_t i = 0; i < source_local.n; i++)
		source_clear(&source_local.items[i]);
	free(source_local.items);
	memset(&source_local, 0, sizeof source_local);
}

/* Records s in dispatch.sources (for status and dispatch.source_stats);
 * a failure is only logged: serving does not depend on it. */
static void
source_register(PGconn *conn, const struct source_config *sc, const struct source *s)
{
	char *sch = source_ident(conn, s->shape.schema), *tab = source_ident(conn, s->shape.table);
	char *qualified = source_fmt("%s.%s", sch, tab);
	const char *params[8] = {s->name, qualified, s->shape.key, sc->status_column,
	                         sc->status[SOURCE_PENDING], sc->status[SOURCE_IN_PROGRESS],
	                         sc->status[SOURCE_COMPLETE], sc->status[SOURCE_FAILED]};
	struct db_error e;
	PGresult *res = db_exec(conn, embed_sql("source_register"), 8, params, &e);
	char text[1200];

	if (res == NULL)
		log_warn("source %s: recording it in dispatch.sources failed: %s", s->name,
		         db_error_text(&e, text, sizeof text));
	PQclear(res);
	PQfreemem(sch);
	PQfreemem(tab);
	free(qualified);
}

/* A blocking connection for the checks, tried until one is had: at
 * startup the server may still be coming up. A signal ends the wait (its
 * default action: nothing was touched yet). */
static PGconn *
source_connect(const char *conninfo)
{
	int64_t pause_ms = 500;

	for (;;) {
		struct db_error e;
		PGconn *conn = db_connect(conninfo, "pgdispatch sources", &e);

		if (conn != NULL)
			return conn;
		log_error("sources: cannot connect to check them, trying again in %lld ms: %s", (long long) pause_ms,
		          e.message);
		usleep((useconds_t) pause_ms * 1000);
		pause_ms = pause_ms * 2 < SOURCE_RETRY_MAX_MS ? pause_ms * 2 : SOURCE_RETRY_MAX_MS;
	}
}

bool
source_setup_all(const struct config *cfg, const char *conninfo)
{
	PGconn *conn;
	bool ok = true;

	if (cfg->nsources == 0)
		return true;
	conn = source_connect(conninfo);
	source_local.items = mem_calloc(cfg->nsources, sizeof *source_local.items);
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct source_config *sc = &cfg->sources[i];
		struct source *s = &source_local.items[source_local.n];
		char err[4096], advice[1024];

		if (!source_prepare(conn, sc, s, err, sizeof err, advice, sizeof advice)) {
			/* As a config error is (main.c): a person reads it, once,
			 * before anything runs; lines as they are. */
			fprintf(stderr, "%s\n", err);
			ok = false;
			continue;
		}
		if (advice[0] != '\0')
			log_warn("%s", advice);
		s->index = (int) ++source_local.n;
		for (int k = 0; k < SOURCE_STMT_COUNT; k++)
			snprintf(s->stmt_name[k], sizeof s->stmt_name[k], "s%d_%s", s->index,
			         source_stmt_files[k] + strlen("source_"));
		source_register(conn, sc, s);
		log_info("source %s: serving %s.%s (key %s, status %s)", s->name, s->shape.schema, s->shape.table,
		         s->shape.key, sc->status_column);
	}
	PQfinish(conn);
	return ok;
}

static bool
source_str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool
source_configs_same(const struct config *a, const struct config *b)
{
	if (a->nsources != b->nsources)
		return false;
	for (size_t i = 0; i < a->nsources; i++) {
		const struct source_config *x = &a->sources[i], *y = &b->sources[i];
		bool same = source_str_same(x->name, y->name) && source_str_same(x->table, y->table)
		            && source_str_same(x->key, y->key) && source_str_same(x->status_column, y->status_column)
		            && source_str_same(x->channel, y->channel) && source_str_same(x->payload, y->payload)
		            && source_str_same(x->order_by, y->order_by);

		for (int k = 0; k < SOURCE_STATE_COUNT; k++)
			same = same && source_str_same(x->status[k], y->status[k]);
		for (int k = 0; k < SOURCE_COL_COUNT; k++)
			same = same && source_str_same(x->columns[k], y->columns[k]);
		if (!same)
			return false;
	}
	return true;
}
