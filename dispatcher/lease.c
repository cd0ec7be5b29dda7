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
#include "source.h"
#include "work.h"

static struct {
	int64_t next_ms;
	bool in_flight;              /* a tick's statements are queued or running */
	bool requeued;
	int warn_percent;            /* notify_queue_warn_percent at the tick */
	long long *ids, *tokens;     /* the claims this tick covers */
	int *sources;                /* ... and the table each is in (0: dispatch.tasks) */
	const char **keys;           /* ... and a source row's key (borrowed: for the tick's sending only) */
	size_t n;
} lease_local;

/* One renewal on its way: the claims of one table it covers. */
struct lease_renewal {
	size_t n;
	long long *ids, *tokens;
};

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
lease_renewal_free(struct lease_renewal *r)
{
	free(r->ids);
	free(r->tokens);
	free(r);
}

static void
lease_renewed(void *ctx, PGresult *res, const struct db_error *err)
{
	struct lease_renewal *r = ctx;
	bool *lost;
	const char **cancelled;

	if (res == NULL) {
		lease_failed("lease renewal", err);
		lease_renewal_free(r);
		return;
	}
	lost = calloc(r->n + 1, sizeof *lost);
	cancelled = calloc(r->n + 1, sizeof *cancelled);
	if (lost == NULL || cancelled == NULL)
		abort();
	queue_renew_result(res, r->ids, r->tokens, r->n, lost, cancelled);
	/* A cancelled task is a lost claim like any other (the fence says
	 * so), only logged as what it is. */
	for (size_t i = 0; i < r->n; i++)
		if (lost[i] && !slots_lease_lost(r->ids[i], r->tokens[i], cancelled[i]))
			outbox_lost(r->ids[i], r->tokens[i]);
	free(lost);
	free(cancelled);
	lease_renewal_free(r);
}

/* Sends the renewal of the claims of table source (0: dispatch.tasks). */
static void
lease_renew(const struct config *cfg, int source)
{
	struct lease_renewal *r = calloc(1, sizeof *r);
	const char **keys = malloc((lease_local.n + 1) * sizeof *keys);

	if (r == NULL || keys == NULL || (r->ids = malloc((lease_local.n + 1) * sizeof *r->ids)) == NULL
	    || (r->tokens = malloc((lease_local.n + 1) * sizeof *r->tokens)) == NULL)
		abort();
	for (size_t i = 0; i < lease_local.n; i++)
		if (lease_local.sources[i] == source) {
			keys[r->n] = lease_local.keys[i];
			r->ids[r->n] = lease_local.ids[i];
			r->tokens[r->n++] = lease_local.tokens[i];
		}
	if (r->n == 0)
		lease_renewal_free(r);
	else if (source == 0)
		queue_renew_send(r->ids, r->tokens, r->n, cfg->lease_ms, lease_renewed, r);
	else
		queue_source_renew_send(source_get(source), r->ids, keys, r->tokens, r->n, cfg->lease_ms, lease_renewed,
		                        r);
	free(keys);
}

static void
lease_source_reaped(void *ctx, PGresult *res, const struct db_error *err)
{
	if (res == NULL) {
		lease_failed("lease reaper", err);
		return;
	}
	if (queue_source_reap_result(res) > 0)
		lease_local.requeued = true;
}

/* Sends the reaper of a source's table: never the claims this daemon
 * holds there, named by their tokens (its own numbers for the rows are
 * not in the table). */
static void
lease_reap_source(const struct config *cfg, const struct source *src)
{
	long long *held = malloc((lease_local.n + 1) * sizeof *held);
	size_t nheld = 0;

	if (held == NULL)
		abort();
	for (size_t i = 0; i < lease_local.n; i++)
		if (lease_local.sources[i] == src->index)
			held[nheld++] = lease_local.tokens[i];
	queue_source_reap_send(src, policy_of(cfg, config_handler(cfg, src->name), 0).max_attempts, held, nheld,
	                       lease_source_reaped, NULL);
	free(held);
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
	free(lease_local.sources);
	free(lease_local.keys);
	lease_local.ids = lease_local.tokens = NULL;
	lease_local.sources = NULL;
	lease_local.keys = NULL;
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
	lease_local.sources = malloc(cap * sizeof *lease_local.sources);
	lease_local.keys = malloc(cap * sizeof *lease_local.keys);
	if (lease_local.ids == NULL || lease_local.tokens == NULL || lease_local.sources == NULL
	    || lease_local.keys == NULL)
		abort();
	lease_local.n = slots_leased(lease_local.ids, lease_local.tokens, lease_local.sources, lease_local.keys, cap);
	lease_local.n = outbox_held(lease_local.ids, lease_local.tokens, lease_local.sources, lease_local.keys,
	                            lease_local.n, cap);
	/* One renewal per table: tasks, then each source. */
	for (size_t src = 0; src <= source_count(); src++)
		lease_renew(cfg, (int) src);
	for (size_t h = 0; h < cfg->nhandlers; h++) {
		kinds[h] = cfg->handlers[h].kind;
		limits[h] = policy_of(cfg, &cfg->handlers[h], 0).max_attempts;
	}
	queue_reap_send(&known, limits, cfg->max_attempts, lease_local.ids, lease_local.n, lease_reaped, NULL);
	for (size_t src = 1; src <= source_count(); src++)
		lease_reap_source(cfg, source_get((int) src));
	lease_local.warn_percent = cfg->notify_queue_warn_percent;
	work_send("notify_queue_usage", 0, NULL, lease_notify_checked, NULL);
}

void
lease_free(void)
{
	free(lease_local.ids);
	free(lease_local.tokens);
	free(lease_local.sources);
	free(lease_local.keys);
	lease_local.sources = NULL;
	lease_local.keys = NULL;
	lease_local.ids = lease_local.tokens = NULL;
	lease_local.in_flight = false;
}
