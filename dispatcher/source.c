/* TEMPORARY (branch src-check): a stand-in for the lead's source.c, replaced whole at merge. */
/*
 * Only what `pgdispatch check-config -d` needs before the real module
 * lands: source_prepare() checks the table (source_check()) and EXPLAINs
 * a hand-written claim of the contract's shape, not the filled templates
 * sql/source_*.sql, so that the index check runs end to end. Nothing
 * else of source.h is defined here.
 */
#include "source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const source_claim_example[SOURCE_CLAIM_NPARAMS] = {
	"check-config", "10", "pgdispatch check-config", "30000", "0"
};

/* The contract's claim for sc and shape, identifiers and the pending
 * value escaped by libpq; NULL when out of memory. */
static char *
source_temporary_claim(PGconn *conn, const struct source_config *sc, const struct source_shape *shape)
{
	const char *order = sc->order_by != NULL ? sc->order_by : shape->key;
	char *schema = PQescapeIdentifier(conn, shape->schema, strlen(shape->schema));
	char *table = PQescapeIdentifier(conn, shape->table, strlen(shape->table));
	char *key = PQescapeIdentifier(conn, shape->key, strlen(shape->key));
	char *status = PQescapeIdentifier(conn, sc->status_column, strlen(sc->status_column));
	char *by = PQescapeIdentifier(conn, order, strlen(order));
	char *pending = PQescapeLiteral(conn, sc->status[SOURCE_PENDING], strlen(sc->status[SOURCE_PENDING]));
	char *sql = NULL;

	if (schema != NULL && table != NULL && key != NULL && status != NULL && by != NULL && pending != NULL
	    && asprintf(&sql, "WITH c AS MATERIALIZED (SELECT t.%s AS key FROM %s.%s AS t WHERE t.%s = %s "
	                "ORDER BY t.%s LIMIT $2 FOR NO KEY UPDATE OF t SKIP LOCKED) "
	                "SELECT $1::text, $3::text, $4::bigint, $5::bigint, key FROM c",
	                key, schema, table, status, pending, by) < 0)
		sql = NULL;
	PQfreemem(schema);
	PQfreemem(table);
	PQfreemem(key);
	PQfreemem(status);
	PQfreemem(by);
	PQfreemem(pending);
	return sql;
}

bool
source_prepare(PGconn *conn, const struct source_config *sc, struct source *out, char *err, size_t errlen,
               char *advice, size_t advlen)
{
	memset(out, 0, sizeof *out);
	if (advlen > 0)
		advice[0] = '\0';
	if (!source_check(conn, sc, &out->shape, err, errlen))
		return false;
	out->sql[SOURCE_STMT_CLAIM] = source_temporary_claim(conn, sc, &out->shape);
	if (out->sql[SOURCE_STMT_CLAIM] == NULL) {
		snprintf(err, errlen, "source %s: out of memory", sc->name);
		source_clear(out);
		return false;
	}
	(void) source_check_index(conn, sc, &out->shape, out->sql[SOURCE_STMT_CLAIM], SOURCE_CLAIM_NPARAMS,
	                          source_claim_example, advice, advlen);
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
