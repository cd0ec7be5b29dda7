/*
 * NOTIFY queue health: see notify_queue.h.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "embed.h"
#include "log.h"
#include "notify_queue.h"

#define NOTIFY_QUEUE_REPEAT_MS 60000  /* a standing warning, once a minute */

static struct {
	bool warned;             /* usage is at or over the threshold */
	int64_t last_warn_ms;
} notify_queue_local;

double
notify_queue_result(PGresult *res)
{
	return PQntuples(res) > 0 ? atof(PQgetvalue(res, 0, 0)) : 0;
}

double
notify_queue_usage(PGconn *conn, struct db_error *err)
{
	PGresult *res = db_exec(conn, embed_sql("notify_queue_usage"), 0, NULL, err);
	double usage;

	if (res == NULL)
		return -1;
	usage = notify_queue_result(res);
	PQclear(res);
	return usage;
}

void
notify_queue_judge(double usage, int warn_percent, int64_t now_ms)
{
	if (usage >= warn_percent) {
		if (!notify_queue_local.warned || now_ms - notify_queue_local.last_warn_ms >= NOTIFY_QUEUE_REPEAT_MS) {
			/* PostgreSQL's own log names the blocking PID once the queue
			 * is half full; until then, long transactions are the lead. */
			log_warn("usage=%.2f%% threshold=%d%% NOTIFY queue is filling: a session that ran LISTEN "
			         "and stays inside a transaction keeps it from being emptied (look for old "
			         "xact_start in pg_stat_activity); when it is full, every insert into "
			         "dispatch.tasks that notifies fails at commit",
			         usage, warn_percent);
			notify_queue_local.last_warn_ms = now_ms;
		}
		notify_queue_local.warned = true;
	} else if (notify_queue_local.warned) {
		log_info("usage=%.2f%% NOTIFY queue back under its warning threshold", usage);
		notify_queue_local.warned = false;
	}
}
