/*
 * SQL compiled into the binary.
 *
 * The build turns every file under sql/ and migrations/ into a string
 * (dispatcher/embed_gen.sh writes build/embed_files.c), so an installed
 * pgdispatch needs no source tree. Files are named by their path in the
 * repository, e.g. "sql/migrate_lock.sql".
 */
#ifndef PGDISPATCH_EMBED_H
#define PGDISPATCH_EMBED_H

#include <stddef.h>

struct embed_file {
	const char *path;  /* "migrations/0001_init.sql" */
	const char *text;  /* the file's bytes, NUL-terminated */
};

/* Sorted by path: migrations in number order, then sql/. */
extern const struct embed_file embed_files[];
extern const size_t embed_file_count;

/*
 * The text of sql/NAME.sql ("claim" finds sql/claim.sql). A missing name is
 * a build mistake, not a runtime condition: it aborts with a message.
 */
const char *embed_sql(const char *name);

#endif
