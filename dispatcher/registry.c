/* The daemon's row in dispatch.instances; see registry.h. */
#include "registry.h"

#include "log.h"
#include "queue.h"
#include "version.h"
#include "work.h"

static struct {
	const char *name, *host;     /* borrowed */
	int pid;
	int64_t started_ms;
	int64_t next_ms;
	bool in_flight;              /* a beat is queued or running */
	bool stopping;
	bool leave_sent, left;
} registry_local;

void
registry_setup(const char *name, const char *host, int pid, int64_t started_ms)
{
	registry_local.name = name;
	registry_local.host = host;
	registry_local.pid = pid;
	registry_local.started_ms = started_ms;
}

void
registry_reset(int64_t now)
{
	registry_local.next_ms = now;
}

int64_t
registry_next_ms(void)
{
	return registry_local.in_flight || registry_local.leave_sent ? INT64_MAX : registry_local.next_ms;
}

void
registry_stopping(int64_t now)
{
	registry_local.stopping = true;
	registry_local.next_ms = now;
}

static void
registry_beaten(void *ctx, PGresult *res, const struct db_error *err)
{
	char text[1200];

	registry_local.in_flight = false;
	if (res == NULL) {
		/* A lost connection is the daemon's to notice; the beat after the
		 * reconnect (at once) registers again. */
		if (work_attached())
			log_error("instance registry refresh failed: %s", db_error_text(err, text, sizeof text));
		return;
	}
	queue_instance_beat_result(res);
}

void
registry_tick(const struct config *cfg, int running, int64_t now)
{
	/* The lease tick's rhythm: others judge this row by its lease. */
	int64_t every = cfg->lease_ms / 3 < cfg->poll_interval_ms ? cfg->lease_ms / 3 : cfg->poll_interval_ms;
	struct queue_instance me = {
		.name = registry_local.name, .host = registry_local.host, .version = PGDISPATCH_VERSION,
		.pid = registry_local.pid, .uptime_ms = now - registry_local.started_ms,
		.queues = (const char *const *) cfg->queues, .nqueues = cfg->nqueues,
		.concurrency = cfg->concurrency, .running = running,
		.state = registry_local.stopping ? "stopping" : "running", .lease_ms = cfg->lease_ms,
	};

	if (registry_local.in_flight || registry_local.leave_sent || now < registry_local.next_ms
	    || !work_attached())
		return;
	registry_local.next_ms = now + every;
	registry_local.in_flight = true;
	queue_instance_beat_send(&me, registry_beaten, NULL);
}

static void
registry_gone(void *ctx, PGresult *res, const struct db_error *err)
{
	char text[1200];

	registry_local.left = true;
	if (res == NULL && work_attached())
		log_warn("could not delete this instance's registry row (others will mark it gone): %s",
		         db_error_text(err, text, sizeof text));
}

bool
registry_leave(void)
{
	if (registry_local.left || !work_attached())
		return true;
	if (!registry_local.leave_sent) {
		registry_local.leave_sent = true;
		queue_instance_leave_send(registry_local.name, registry_local.host, registry_local.pid,
		                          registry_gone, NULL);
	}
	return false;
}
