/* `pgdispatch status`; see admin_status.h. */
#include "admin_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "db.h"
#include "embed.h"
#include "notify_queue.h"

/* The sections, in order: a title, the statement, and what to print when
 * it returns no rows (NULL: leave the section out). */
static const struct admin_status_section {
	const char *title;
	const char *statement;
	const char *none;
} admin_status_sections[] = {
	{"queues", "status", "(no tasks)"},
	{"sources (rows per status)", "status_sources", NULL},
	{"breakers (open, half-open or counting failures)", "status_breakers", NULL},
	{"daemons", "status_instances", "(no daemon has registered)"},
	{"running (longest first)", "status_running", "(nothing running)"},
	{"latest failed attempts", "status_failures", "(none recorded)"},
};

/* Prints res as a table, each column as wide as its widest value, numbers
 * right-aligned. */
static void
admin_status_table(const PGresult *res)
{
	int ncols = PQnfields(res), nrows = PQntuples(res);
	int width[ncols];
	bool numeric[ncols];

	for (int c = 0; c < ncols; c++) {
		Oid type = PQftype(res, c);

		/* int2, int4, int8, numeric */
		numeric[c] = type == 21 || type == 23 || type == 20 || type == 1700;
		width[c] = (int) strlen(PQfname(res, c));
		for (int r = 0; r < nrows; r++) {
			int len = PQgetlength(res, r, c);

			if (len > width[c])
				width[c] = len;
		}
	}
	for (int c = 0; c < ncols; c++)
		printf(c == 0 ? "  %-*s" : "  %*s", numeric[c] ? width[c] : -width[c], PQfname(res, c));
	putchar('\n');
	for (int r = 0; r < nrows; r++) {
		for (int c = 0; c < ncols; c++)
			printf("  %*s", numeric[c] ? width[c] : -width[c], PQgetvalue(res, r, c));
		putchar('\n');
	}
}

int
admin_status(const char *database)
{
	struct db_error err;
	char text[1200];
	PGconn *conn;
	int rc = EXIT_SUCCESS;
	double usage;

	conn = admin_connect(database, "pgdispatch status");
	if (conn == NULL)
		return EXIT_FAILURE;
	/* Counting a source's rows reads its whole table: a huge one must not
	 * hold the command (or the table) for long. */
	PQclear(PQexec(conn, "SET statement_timeout = '5s'"));
	for (size_t i = 0; i < sizeof admin_status_sections / sizeof admin_status_sections[0]; i++) {
		const struct admin_status_section *s = &admin_status_sections[i];
		PGresult *res = db_exec(conn, embed_sql(s->statement), 0, NULL, &err);

		if (s->none == NULL && (res == NULL || PQntuples(res) == 0)) {
			if (res == NULL && strcmp(err.sqlstate, "57014") == 0)
				printf("\n%s\n  (too many rows to count in 5 s: SELECT * FROM dispatch.source_stats)\n",
				       s->title);
			PQclear(res);
			continue;
		}
		printf("%s%s\n", i > 0 ? "\n" : "", s->title);
		if (res == NULL && strcmp(err.sqlstate, "42501") == 0 && i > 0) {
			/* A producer may see its queues but not the daemons. */
			printf("  (not visible to this role)\n");
			continue;
		}
		if (res == NULL) {
			fprintf(stderr, "pgdispatch: status: %s\n", db_error_text(&err, text, sizeof text));
			rc = EXIT_FAILURE;
			break;
		}
		if (PQntuples(res) == 0)
			printf("  %s\n", s->none);
		else
			admin_status_table(res);
		PQclear(res);
	}
	if (rc == EXIT_SUCCESS) {
		usage = notify_queue_usage(conn, &err);
		if (usage < 0) {
			fprintf(stderr, "pgdispatch: NOTIFY queue usage: %s\n", db_error_text(&err, text, sizeof text));
			rc = EXIT_FAILURE;
		} else {
			printf("\nNOTIFY queue: %.2f%% full\n", usage);
		}
	}
	PQfinish(conn);
	return rc;
}
