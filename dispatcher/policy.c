/* Task policy; see policy.h. */
#include "policy.h"

#include <stdlib.h>

struct policy
policy_for(const struct config *cfg, const char *kind, int row_max_attempts)
{
	return policy_of(cfg, config_handler(cfg, kind), row_max_attempts);
}

struct policy
policy_of(const struct config *cfg, const struct handler_config *h, int row_max_attempts)
{
	struct policy p = {
		.max_attempts = cfg->max_attempts,
		.backoff_initial_ms = cfg->backoff_initial_ms,
		.backoff_max_ms = cfg->backoff_max_ms,
		.timeout_ms = cfg->timeout_ms,
		.concurrency = 0,
	};

	if (h != NULL) {
		p.max_attempts = h->max_attempts;
		p.backoff_initial_ms = h->backoff_initial_ms;
		p.backoff_max_ms = h->backoff_max_ms;
		p.timeout_ms = h->timeout_ms;
		p.concurrency = h->concurrency;
	}
	if (row_max_attempts > 0)
		p.max_attempts = row_max_attempts;
	return p;
}

int64_t
policy_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms)
{
	int64_t delay = initial_ms;

	for (int i = 1; i < attempt && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
	if (delay < 2)
		return delay;
	return delay / 2 + (int64_t) (random() % (delay - delay / 2 + 1));
}

enum policy_verdict
policy_after_failure(const struct policy *p, int attempt, int64_t min_delay_ms, int64_t *delay_ms)
{
	if (attempt >= p->max_attempts) {
		*delay_ms = 0;
		return POLICY_FAIL;
	}
	*delay_ms = policy_backoff_ms(attempt, p->backoff_initial_ms, p->backoff_max_ms);
	/* A service that said when to come back is taken at its word, no
	 * sooner and with no jitter on top: it is the service's own pacing. */
	if (min_delay_ms > *delay_ms)
		*delay_ms = min_delay_ms;
	return POLICY_RETRY;
}
