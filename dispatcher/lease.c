/* Lease renewal, the reaper and the NOTIFY queue check; see lease.h. */
#include "lease.h"

#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "notify_queue.h"
#include "outbox.h"
#include "policy.h"
#include "queue.h"
#include "slots.h"
#include "work.h"

static struct {
	int64_t next_ms;
	bool in_flight;              /* a tick's statements are queued or running */
	bool requeued;
	int warn_percent;            /* notify_queue_warn_percent at the tick */
	long long *ids, *tokens;     /* the claims a renewal on its way covers */
	size_t n;
} lease_local;

void
lease_reset(int64_t now)
{
	lease_local.next_ms = now;
}

int64_t
lease_next_ms(void)
{
	return lease_local.in_flight ? INT64_MAX : lease_local.next_ms;
}

bool
lease_take_requeued(void)
{
	bool r = lease_local.requeued;

	lease_local.requeued = false;
	return r;
}

/* Logs a failed statement of the tick; a lost connection is the daemon's
 * to notice, and the next tick tries again. */
static void
lease_failed(const char *what, const struct db_error *err)
{
	char text[1200];

	if (work_attached())
		log_error("%s failed: %s", what, db_error_text(err, text, sizeof text));
}

static void
lease_renewed(void *ctx, PGresult *res, const struct db_error *err)
{
	bool *lost;
	const char **cancelled;

	if (res == NULL) {
		lease_failed("lease renewal", err);
		return;
	}
	lost = calloc(lease_local.n + 1, sizeof *lost);
	cancelled = calloc(lease_local.n + 1, sizeof *cancelled);
	if (lost == NULL || cancelled == NULL)
		abort();
	queue_renew_result(res, lease_local.ids, lease_local.tokens, lease_local.n, lost, cancelled);
	/* A cancelled task is a lost claim like any other (the fence says
	 * so), only logged as what it is. */
	for (size_t i = 0; i < lease_local.n; i++)
		if (lost[i] && !slots_lease_lost(lease_local.ids[i], lease_local.tokens[i], cancelled[i]))
			outbox_lost(lease_local.ids[i], lease_local.tokens[i]);
	free(lost);
	free(cancelled);
}

static void
lease_reaped(void *ctx, PGresult *res, const struct db_error *err)
{
	if (res == NULL) {
		lease_failed("lease reaper", err);
		return;
	}
	if (queue_reap_result(res) > 0)
		lease_local.requeued = true;
}

/* Last of the tick: judges the NOTIFY queue and ends the tick. */
static void
lease_notify_checked(void *ctx, PGresult *res, const struct db_error *err)
{
	free(lease_local.ids);
	free(lease_local.tokens);
	lease_local.ids = lease_local.tokens = NULL;
	lease_local.n = 0;
	lease_local.in_flight = false;
	if (res == NULL) {
		lease_failed("NOTIFY queue check", err);
		return;
	}
	/* Checked whether or not this instance listens: producers notify for
	 * other daemons too, and their commits are what a full queue breaks. */
	notify_queue_judge(notify_queue_result(res), lease_local.warn_percent, clock_now_ms());
}

void
lease_tick(const struct config *cfg, int64_t now)
{
	const char *kinds[cfg->nhandlers + 1];
	int limits[cfg->nhandlers + 1];
	struct queue_kinds known = {kinds, cfg->nhandlers};
	size_t cap = (size_t) slots_capacity() + outbox_count() + 1;
	int64_t every = cfg->lease_ms / 3 < cfg->poll_interval_ms ? cfg->lease_ms / 3 : cfg->poll_interval_ms;

	if (lease_local.in_flight || now < lease_local.next_ms || !work_attached())
		return;
	lease_local.next_ms = now + every;
	lease_local.in_flight = true;
	lease_local.ids = malloc(cap * sizeof *lease_local.ids);
	lease_local.tokens = malloc(cap * sizeof *lease_local.tokens);
	if (lease_local.ids == NULL || lease_local.tokens == NULL)
		abort();
	lease_local.n = slots_leased(lease_local.ids, lease_local.tokens, cap);
	lease_local.n = outbox_held(lease_local.ids, lease_local.tokens, lease_local.n, cap);
	if (lease_local.n > 0)
		queue_renew_send(lease_local.ids, lease_local.tokens, lease_local.n, cfg->lease_ms, lease_renewed, NULL);
	for (size_t h = 0; h < cfg->nhandlers; h++) {
		kinds[h] = cfg->handlers[h].kind;
		limits[h] = policy_of(cfg, &cfg->handlers[h], 0).max_attempts;
	}
	queue_reap_send(&known, limits, cfg->max_attempts, lease_local.ids, lease_local.n, lease_reaped, NULL);
	lease_local.warn_percent = cfg->notify_queue_warn_percent;
	work_send("notify_queue_usage", 0, NULL, lease_notify_checked, NULL);
}

void
lease_free(void)
{
	free(lease_local.ids);
	free(lease_local.tokens);
	lease_local.ids = lease_local.tokens = NULL;
	lease_local.in_flight = false;
}
