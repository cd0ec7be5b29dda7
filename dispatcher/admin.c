/* The one-shot commands' database side; see admin.h. */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "embed.h"
#include "migrate.h"

PGconn *
admin_connect(const char *database, const char *what)
{
	struct db_error err;
	PGconn *conn = db_connect(database, what, &err);

	if (conn == NULL)
		fprintf(stderr, "pgdispatch: cannot connect: %s\n", err.message);
	return conn;
}

static int
admin_sql_failed(const char *what, const struct db_error *err)
{
	char text[1200];

	fprintf(stderr, "pgdispatch: %s: %s\n", what, db_error_text(err, text, sizeof text));
	return EXIT_FAILURE;
}

int
admin_migrate(const char *database)
{
	PGconn *conn = admin_connect(database, "pgdispatch migrate");
	int rc;

	if (conn == NULL)
		return EXIT_FAILURE;
	rc = migrate_run(conn, stdout, stderr);
	PQfinish(conn);
	return rc;
}

/* What sql/roles.sql says as it goes. NOTICEs ("created role ...") are
 * kept in arg (a struct admin_roles_said) and printed only once the script
 * has committed: a role created by a run that failed later was rolled back
 * with it. Anything graver goes to stderr at once. */
struct admin_roles_said {
	char text[512];
	size_t len;
};

static void
admin_roles_notice(void *arg, const PGresult *res)
{
	struct admin_roles_said *said = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (sev != NULL && strcmp(sev, "NOTICE") == 0 && msg != NULL) {
		int n = snprintf(said->text + said->len, sizeof said->text - said->len, "%s\n", msg);

		if (n > 0 && (size_t) n < sizeof said->text - said->len)
			said->len += (size_t) n;
	} else {
		fprintf(stderr, "pgdispatch: %s", PQresultErrorMessage(res));
	}
}

/*
 * The roles script is compiled in like the migrations, so an installed
 * pgdispatch can set up roles with no source tree at hand. It is not part
 * of migrate: creating roles needs CREATEROLE, which the schema owner that
 * migrates need not have, and roles are a choice, not a schema change.
 */
int
admin_roles(const char *database)
{
	struct admin_roles_said said = {.len = 0};
	PGconn *conn;
	PGresult *res;
	int rc = EXIT_SUCCESS;

	conn = admin_connect(database, "pgdispatch roles");
	if (conn == NULL)
		return EXIT_FAILURE;
	PQsetNoticeReceiver(conn, admin_roles_notice, &said);
	/* Several statements, one transaction (the script's own BEGIN and
	 * COMMIT): the simple query protocol, so PQexec. */
	res = PQexec(conn, embed_sql("roles"));
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		fprintf(stderr, "pgdispatch: roles: %s%s%s", state != NULL ? state : "",
		        state != NULL ? ": " : "", PQerrorMessage(conn));
		rc = EXIT_FAILURE;
	} else {
		fputs(said.text, stdout);
		printf("granted dispatch_producer, dispatch_worker and dispatch_admin their privileges in database %s\n",
		       PQdb(conn));
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

int
admin_enqueue(const char *database, const char *const params[7])
{
	struct db_error err;
	PGconn *conn;
	PGresult *res;
	int rc = EXIT_SUCCESS;

	conn = admin_connect(database, "pgdispatch enqueue");
	if (conn == NULL)
		return EXIT_FAILURE;
	res = db_exec(conn, embed_sql("enqueue"), 7, params, &err);
	if (res == NULL) {
		rc = admin_sql_failed("enqueue", &err);
	} else {
		printf("%s\n", PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	PQfinish(conn);
	return rc;
}
