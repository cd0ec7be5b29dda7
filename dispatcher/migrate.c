/*
 * Applies the compiled-in migrations; see migrate.h.
 *
 * Order of work: take the migrate lock, create the ledger if missing, check
 * every applied file's checksum (refusing before any change if one
 * differs), then apply what is missing, one transaction per file.
 */
#include "migrate.h"

#include <stdbool.h>
#include <string.h>

#include "db.h"
#include "embed.h"

#define MIGRATE_PREFIX "migrations/"

/* The i-th migration in embed_files (they sort first, by path). */
static const struct embed_file *
migrate_file(size_t i)
{
	size_t seen = 0;

	for (size_t f = 0; f < embed_file_count; f++) {
		if (strncmp(embed_files[f].path, MIGRATE_PREFIX, strlen(MIGRATE_PREFIX)) != 0)
			continue;
		if (seen++ == i)
			return &embed_files[f];
	}
	return NULL;
}

size_t
migrate_count(void)
{
	size_t n = 0;

	while (migrate_file(n) != NULL)
		n++;
	return n;
}

const char *
migrate_version(size_t i, char *buf, size_t len)
{
	const struct embed_file *f = migrate_file(i);
	const char *name = f->path + strlen(MIGRATE_PREFIX);
	size_t n = strlen(name);

	if (n > 4 && strcmp(name + n - 4, ".sql") == 0)
		n -= 4;
	snprintf(buf, len, "%.*s", (int) n, name);
	return buf;
}

/* Server NOTICEs ("schema already exists, skipping") are noise here;
 * warnings and worse still reach the operator. */
static void
migrate_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	if (sev != NULL && strcmp(sev, "NOTICE") != 0 && strcmp(sev, "DEBUG") != 0
	    && strcmp(sev, "LOG") != 0 && strcmp(sev, "INFO") != 0)
		fprintf((FILE *) arg, "pgdispatch: %s", PQresultErrorMessage(res));
}

/* Runs a statement whose result only matters for success; reports failure. */
static bool
migrate_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
             const char *what, FILE *err)
{
	struct db_error e;
	char text[1200];
	PGresult *res = db_exec(conn, sql, nparams, params, &e);

	if (res == NULL) {
		fprintf(err, "pgdispatch: %s: %s\n", what, db_error_text(&e, text, sizeof text));
		return false;
	}
	PQclear(res);
	return true;
}

/* Runs a multi-statement script (simple query protocol). */
static bool
migrate_script(PGconn *conn, const char *sql, const char *what, FILE *err)
{
	PGresult *res = PQexec(conn, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		fprintf(err, "pgdispatch: %s: %s%s%s", what, state != NULL ? state : "",
		        state != NULL ? ": " : "", PQerrorMessage(conn));
	}
	PQclear(res);
	return ok;
}

/* sha256 of text, as the ledger records it, into buf (65 bytes). */
static bool
migrate_checksum(PGconn *conn, const char *text, char *buf, size_t len, FILE *err)
{
	struct db_error e;
	char msg[1200];
	const char *params[1] = {text};
	PGresult *res = db_exec(conn, embed_sql("migrate_checksum"), 1, params, &e);

	if (res == NULL) {
		fprintf(err, "pgdispatch: computing a checksum: %s\n", db_error_text(&e, msg, sizeof msg));
		return false;
	}
	snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

/*
 * Checks the ledger against the compiled-in files. Fills applied[i] for
 * each migration already recorded. Returns false (having said why) when a
 * recorded checksum differs: the database holds a migration that this
 * binary describes differently, and applying more on top would be a guess.
 */
static bool
migrate_check_ledger(PGconn *conn, bool *applied, size_t count, FILE *out, FILE *err)
{
	struct db_error e;
	char msg[1200];
	bool ok = true;
	PGresult *res = db_exec(conn, embed_sql("migrate_applied"), 0, NULL, &e);

	if (res == NULL) {
		fprintf(err, "pgdispatch: reading dispatch.schema_migrations: %s\n",
		        db_error_text(&e, msg, sizeof msg));
		return false;
	}
	for (int r = 0; r < PQntuples(res) && ok; r++) {
		const char *version = PQgetvalue(res, r, 0);
		const char *recorded = PQgetvalue(res, r, 1);
		char v[256], sum[80];
		size_t i;

		for (i = 0; i < count; i++)
			if (strcmp(migrate_version(i, v, sizeof v), version) == 0)
				break;
		if (i == count) {
			fprintf(out, "note: migration %s is applied but unknown to this pgdispatch "
			        "(a newer version applied it)\n", version);
			continue;
		}
		applied[i] = true;
		if (!migrate_checksum(conn, migrate_file(i)->text, sum, sizeof sum, err)) {
			ok = false;
		} else if (strcmp(sum, recorded) != 0) {
			fprintf(err, "pgdispatch: migration %s was applied with checksum %.12s but "
			        "this pgdispatch has %.12s: an applied migration must never change; "
			        "nothing was applied (put new changes in a new migration file)\n",
			        version, recorded, sum);
			ok = false;
		}
	}
	PQclear(res);
	return ok;
}

/* Applies migration i in one transaction with its ledger row. */
static bool
migrate_apply(PGconn *conn, size_t i, FILE *err)
{
	const struct embed_file *f = migrate_file(i);
	char version[256], sum[80], what[300];
	const char *params[2];

	migrate_version(i, version, sizeof version);
	snprintf(what, sizeof what, "migration %s failed, rolled back", version);
	if (!migrate_checksum(conn, f->text, sum, sizeof sum, err))
		return false;
	params[0] = version;
	params[1] = sum;
	if (!migrate_exec(conn, "BEGIN", 0, NULL, what, err))
		return false;
	if (migrate_script(conn, f->text, what, err)
	    && migrate_exec(conn, embed_sql("migrate_record"), 2, params, what, err)
	    && migrate_exec(conn, "COMMIT", 0, NULL, what, err))
		return true;
	PQclear(PQexec(conn, "ROLLBACK"));
	return false;
}

int
migrate_run(PGconn *conn, FILE *out, FILE *err)
{
	size_t count = migrate_count(), done = 0, already = 0;
	bool applied[count + 1];
	bool ok = false;
	struct db_error e;
	PGresult *res;

	memset(applied, 0, sizeof applied);
	PQsetNoticeReceiver(conn, migrate_notice, err);

	res = db_exec(conn, embed_sql("migrate_try_lock"), 0, NULL, &e);
	if (res != NULL && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		fprintf(out, "waiting for another pgdispatch migrate to finish\n");
		fflush(out);
		PQclear(res);
		res = db_exec(conn, embed_sql("migrate_lock"), 0, NULL, &e);
	}
	if (res == NULL) {
		char msg[1200];

		fprintf(err, "pgdispatch: taking the migrate lock: %s\n", db_error_text(&e, msg, sizeof msg));
		return 1;
	}
	PQclear(res);

	if (!migrate_script(conn, embed_sql("migrate_bootstrap"), "creating dispatch.schema_migrations", err)
	    || !migrate_check_ledger(conn, applied, count, out, err))
		goto unlock;

	for (size_t i = 0; i < count; i++) {
		char version[256];

		if (applied[i]) {
			already++;
			continue;
		}
		if (!migrate_apply(conn, i, err))
			goto unlock;
		fprintf(out, "applied %s\n", migrate_version(i, version, sizeof version));
		done++;
	}
	if (done == 0)
		fprintf(out, "nothing to apply: all %zu migrations are already applied\n", already);
	ok = true;

unlock:
	/* Disconnecting would release the lock too; unlocking says it plainly. */
	if (!migrate_exec(conn, embed_sql("migrate_unlock"), 0, NULL, "releasing the migrate lock", err))
		ok = false;
	return ok ? 0 : 1;
}
