/*
 * The latency floor for `make bench`: what PostgreSQL itself allows from a
 * producer's commit to a claim starting, with no daemon logic in between.
 *
 * It LISTENs on the daemon's channel and, for every notification, at once
 * runs one prepared statement on a second connection, as the daemon's
 * claim would: an UPDATE that marks every pending task complete with
 * started_at = now(), the same clock as a claim's started_at. The bench
 * measures these rows exactly as it measures the daemon's, so the gap
 * between the two distributions is what the daemon adds.
 *
 * Usage: notify_floor SECONDS (connection from the PG* environment); it
 * exits after SECONDS without a notification and prints how many it got.
 * Producers notify only queues with a registered sleeper
 * (migrations/0003_wakeup_only_sleepers.sql): the bench registers one.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

static PGconn *
floor_connect(void)
{
	PGconn *conn = PQconnectdb("application_name=notify_floor");

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "notify_floor: %s", PQerrorMessage(conn));
		exit(1);
	}
	return conn;
}

static void
floor_ok(PGresult *res, PGconn *conn)
{
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fprintf(stderr, "notify_floor: %s", PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
}

int
main(int argc, char **argv)
{
	int idle_ms = (argc > 1 ? atoi(argv[1]) : 5) * 1000;
	PGconn *listen = floor_connect(), *work = floor_connect();
	long seen = 0;

	floor_ok(PQexec(listen, "LISTEN dispatch_tasks"), listen);
	floor_ok(PQprepare(work, "seen",
	                   "UPDATE dispatch.tasks SET status = 'complete', attempts = 1, "
	                   "started_at = now(), finished_at = now() "
	                   "WHERE status = 'pending' AND queue = 'default'",
	                   0, NULL),
	         work);
	for (;;) {
		struct pollfd p = {PQsocket(listen), POLLIN, 0};
		PGnotify *n;
		int got = 0;

		if (poll(&p, 1, idle_ms) <= 0)
			break;
		if (!PQconsumeInput(listen)) {
			fprintf(stderr, "notify_floor: %s", PQerrorMessage(listen));
			return 1;
		}
		while ((n = PQnotifies(listen)) != NULL) {
			got++;
			PQfreemem(n);
		}
		if (got > 0) {
			floor_ok(PQexecPrepared(work, "seen", 0, NULL, NULL, NULL, 0), work);
			seen += got;
		}
	}
	printf("%ld\n", seen);
	PQfinish(listen);
	PQfinish(work);
	return 0;
}
