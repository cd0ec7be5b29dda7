/*
 * Sources as the daemon serves them (docs/sources.md): for each source of
 * the config, its table's shape (source_check.h) and its statements,
 * filled once at startup from the templates sql/source_*.sql and sent
 * by name on the work connection like the daemon's own (work.h).
 *
 * A source is numbered from 1 (struct task.source; 0 is dispatch.tasks).
 * The set is fixed for the process's life: a reload that changes sources
 * keeps the old ones and says so.
 */
#ifndef PGDISPATCH_SOURCE_H
#define PGDISPATCH_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "source_check.h"

/* The statements of a source, each from sql/source_NAME.sql. */
enum source_stmt {
	SOURCE_STMT_CLAIM,              /* claim up to $2 rows */
	SOURCE_STMT_COMPLETE_AND_CLAIM, /* successes riding along with a claim */
	SOURCE_STMT_OUTCOMES,           /* every outcome type, fenced */
	SOURCE_STMT_RENEW,              /* lease renewal */
	SOURCE_STMT_REAP,               /* others' expired leases */
	SOURCE_STMT_NEXT_DUE,           /* ms until a row is due */
	SOURCE_STMT_COMPLETE_ONE,       /* a SQL handler's completion, in its transaction */
	SOURCE_STMT_COUNT
};

struct source {
	int index;                          /* 1..source_count() */
	char *name;                         /* the source's name: its kind */
	char *channel;                      /* NULL: none */
	struct source_shape shape;
	char *sql[SOURCE_STMT_COUNT];       /* filled texts */
	char stmt_name[SOURCE_STMT_COUNT][32];  /* prepared as: "s<index>_<stmt>" */
};

/*
 * Checks sc on conn (source_check()), fills its statements into out and
 * checks that the claim can use an index. False with err when the source
 * cannot be served. advice gets a warning ("" if none): the index to
 * create. out is cleared with source_clear().
 */
bool source_prepare(PGconn *conn, const struct source_config *sc, struct source *out, char *err, size_t errlen,
                    char *advice, size_t advlen);

void source_clear(struct source *s);

/* The claim's example parameters, for EXPLAIN: 5 of them. */
#define SOURCE_CLAIM_NPARAMS 5
extern const char *const source_claim_example[SOURCE_CLAIM_NPARAMS];

/*
 * The daemon's sources: prepared once at startup over a blocking
 * connection to conninfo (source_prepare() for each), and recorded in
 * dispatch.sources. Returns false (errors logged) when one cannot be
 * served; a connection that fails is retried with a growing pause.
 */
bool source_setup_all(const struct config *cfg, const char *conninfo);

size_t source_count(void);

/* Source i (1..source_count()), or NULL. */
const struct source *source_get(int i);

/* A number for a source's row this daemon has just claimed: its id while
 * the daemon holds it (below zero, so never a task's id; each claim gets a
 * new one). */
long long source_row_id(void);

/* The source whose name is name, or NULL. */
const struct source *source_find(const char *name);

/* At exit. */
void source_free_all(void);

/* a and b describe the same sources (a reload may not change them). */
bool source_configs_same(const struct config *a, const struct config *b);

#endif
