/*
 * `pgdispatch migrate`: brings a database's dispatch schema up to date from
 * the migrations compiled into the binary.
 *
 * Vocabulary: a migration is a file migrations/NNNN_name.sql; its version is
 * the file name without ".sql"; the ledger is dispatch.schema_migrations.
 */
#ifndef PGDISPATCH_MIGRATE_H
#define PGDISPATCH_MIGRATE_H

#include <stdio.h>

#include <libpq-fe.h>

/*
 * Applies every pending migration, each in its own transaction together with
 * its ledger row, under an advisory lock. Refuses (applying nothing) when an
 * applied file's checksum differs from the compiled-in one. Reports progress
 * on out and problems on err. Returns 0 on success, 1 on failure. Borrows
 * conn, which must not be inside a transaction.
 */
int migrate_run(PGconn *conn, FILE *out, FILE *err);

/* Number of migrations compiled in, and the version of the i-th (0-based,
 * in apply order) written into buf. */
size_t migrate_count(void);
const char *migrate_version(size_t i, char *buf, size_t len);

#endif
