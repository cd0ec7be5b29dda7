/*
 * A source's table as the catalog describes it, and the checks that make
 * a source safe to serve (docs/sources.md): the table, the key, the
 * status column and every mapped value exist and have usable types, the
 * key is unique, the role has the privileges it needs, and the claim can
 * use an index. Shared by `pgdispatch run` (at startup, before any row is
 * touched) and `pgdispatch check-config -d`. Blocking: these run on a
 * connection of their own, never on the daemon's loop.
 *
 * Every error names what to do: the enum's labels when a value is not one
 * of them, the GRANT to run when a privilege is missing.
 */
#ifndef PGDISPATCH_SOURCE_CHECK_H
#define PGDISPATCH_SOURCE_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"

/* What the catalog says about a source's table: resolved names (as the
 * catalog has them, unquoted) and types (format_type() text). */
struct source_shape {
	char *schema, *table;
	char *key;                          /* the key column (sc->key, or the primary key's) */
	char *key_type;                     /* "integer", "bigint", "uuid", "text" ... */
	unsigned int key_type_oid;
	bool key_is_integer;                /* smallint, integer or bigint: a JSON number */
	char *status_type;                  /* "public.configuration_update_status", "text" ... */
	bool status_is_enum;
	char *column_type[SOURCE_COL_COUNT];   /* of each mapped column; NULL when not mapped */
};

void source_shape_clear(struct source_shape *shape);

/*
 * Looks sc up on conn and checks it (sql/source_catalog.sql). True with
 * shape filled; false with err holding one or more lines, each a problem
 * and its fix. Nothing is written.
 */
bool source_check(PGconn *conn, const struct source_config *sc, struct source_shape *shape, char *err,
                  size_t errlen);

/*
 * Whether the claim can use an index: EXPLAINs claim_sql (the filled
 * claim of sc, with nparams text parameters params) with sequential scans
 * and sorts discouraged, in a transaction rolled back. True when the plan
 * reads one of the table's partial indexes in claim order; else false
 * with advice holding the CREATE INDEX CONCURRENTLY ... WHERE ... to run.
 * A failure to explain is reported in advice too, as a warning.
 */
bool source_check_index(PGconn *conn, const struct source_config *sc, const struct source_shape *shape,
                        const char *claim_sql, int nparams, const char *const *params, char *advice,
                        size_t len);

#endif
