/* The operator's commands' database side; see admin_ops.h. */
#include "admin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "db.h"
#include "embed.h"

int
admin_ops_call(const char *database, const char *command, int nparams,
               const char *const *params)
{
	struct db_error err;
	char app[64], statement[64], text[1200];
	PGconn *conn;
	PGresult *res;
	int rc;

	snprintf(app, sizeof app, "pgdispatch %s", command);
	snprintf(statement, sizeof statement, "admin_%s", command);
	for (char *c = statement; *c != '\0'; c++)
		if (*c == '-')
			*c = '_';
	conn = admin_connect(database, app);
	if (conn == NULL)
		return EXIT_FAILURE;
	res = db_exec(conn, embed_sql(statement), nparams, params, &err);
	if (res == NULL) {
		fprintf(stderr, "pgdispatch: %s\n", db_error_text(&err, text, sizeof text));
		rc = EXIT_FAILURE;
	} else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		printf("%s\n", PQgetvalue(res, 0, 1));
		rc = EXIT_SUCCESS;
	} else {
		fprintf(stderr, "pgdispatch: %s\n", PQgetvalue(res, 0, 1));
		rc = EXIT_FAILURE;
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}
