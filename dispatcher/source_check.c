/* TEMPORARY stand-in until the real source_check.c merges (lead's testing only). */
#include "source_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mem.h"

void source_shape_clear(struct source_shape *s)
{
	free(s->schema); free(s->table); free(s->key); free(s->key_type); free(s->status_type);
	for (int i = 0; i < SOURCE_COL_COUNT; i++) free(s->column_type[i]);
	memset(s, 0, sizeof *s);
}

static char *coltype(PGconn *conn, const char *oid, const char *col, unsigned *toid, char *typtype)
{
	const char *p[2] = {oid, col};
	PGresult *r = PQexecParams(conn, "SELECT format_type(a.atttypid, a.atttypmod), a.atttypid, t.typtype FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1::oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped", 2, NULL, p, NULL, NULL, 0);
	char *s = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		s = mem_strdup(PQgetvalue(r, 0, 0));
		if (toid) *toid = (unsigned) atol(PQgetvalue(r, 0, 1));
		if (typtype) *typtype = PQgetvalue(r, 0, 2)[0];
	}
	PQclear(r);
	return s;
}

bool source_check(PGconn *conn, const struct source_config *sc, struct source_shape *shape, char *err, size_t errlen)
{
	const char *p[1] = {sc->table};
	PGresult *r = PQexecParams(conn, "SELECT c.oid, n.nspname, c.relname, (SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisprimary) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = (parse_ident($1))[1] AND c.relname = (parse_ident($1))[2]", 1, NULL, p, NULL, NULL, 0);
	char oid[16], tt = 0;
	memset(shape, 0, sizeof *shape);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		snprintf(err, errlen, "source %s: table %s not found", sc->name, sc->table);
		PQclear(r);
		return false;
	}
	snprintf(oid, sizeof oid, "%s", PQgetvalue(r, 0, 0));
	shape->schema = mem_strdup(PQgetvalue(r, 0, 1));
	shape->table = mem_strdup(PQgetvalue(r, 0, 2));
	shape->key = mem_strdup(sc->key ? sc->key : PQgetvalue(r, 0, 3));
	PQclear(r);
	shape->key_type = coltype(conn, oid, shape->key, &shape->key_type_oid, NULL);
	shape->key_is_integer = shape->key_type_oid == 20 || shape->key_type_oid == 21 || shape->key_type_oid == 23;
	shape->status_type = coltype(conn, oid, sc->status_column, NULL, &tt);
	shape->status_is_enum = tt == 'e';
	for (int i = 0; i < SOURCE_COL_COUNT; i++)
		if (sc->columns[i]) shape->column_type[i] = coltype(conn, oid, sc->columns[i], NULL, NULL);
	if (!shape->key_type || !shape->status_type) { snprintf(err, errlen, "source %s: column missing", sc->name); source_shape_clear(shape); return false; }
	return true;
}

bool source_check_index(PGconn *conn, const struct source_config *sc, const struct source_shape *shape, const char *claim_sql, int nparams, const char *const *params, char *advice, size_t len)
{
	advice[0] = '\0';
	return true;
}
