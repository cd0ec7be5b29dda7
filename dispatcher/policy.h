/*
 * Task policy: one home for what the config says about running a task.
 *
 * Given the config, a task's kind and the row's own max_attempts,
 * policy_for() answers how many attempts it gets, its backoff, its
 * timeout and its kind's concurrency limit. The claim, the slots, the
 * reaper and retries all ask here, so a limit is worked out in one place.
 * policy_after_failure() is the retry-or-fail decision, pure but for the
 * jitter it draws.
 */
#ifndef PGDISPATCH_POLICY_H
#define PGDISPATCH_POLICY_H

#include <stdint.h>

#include "config.h"

struct policy {
	int max_attempts;            /* the row's own limit, else the handler's, else the default */
	int64_t backoff_initial_ms;
	int64_t backoff_max_ms;
	int64_t timeout_ms;
	int concurrency;             /* the kind's own limit; 0: only the global one */
};

/* The policy for a task of kind whose row says row_max_attempts (0: NULL,
 * the handler decides). A kind with no handler gets the defaults. */
struct policy policy_for(const struct config *cfg, const char *kind, int row_max_attempts);

/* The same for handler h of cfg (NULL: no handler), without looking it up. */
struct policy policy_of(const struct config *cfg, const struct handler_config *h, int row_max_attempts);

/*
 * Backoff before retry number `attempt` (1 after the first failure):
 * initial * 2^(attempt-1), capped at max, with "equal jitter" (a random
 * point in the upper half) so that a burst of failures does not come back
 * as a burst, while each delay stays at least half its nominal value.
 */
int64_t policy_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms);

enum policy_verdict {
	POLICY_RETRY,                /* pending again after *delay_ms */
	POLICY_FAIL,                 /* failed for good: attempts used up */
};

/* After failed attempt number attempt under p: retry (filling *delay_ms:
 * the backoff, or min_delay_ms when that is longer, as a server's
 * Retry-After asks) or fail for good. */
enum policy_verdict policy_after_failure(const struct policy *p, int attempt, int64_t min_delay_ms,
                                         int64_t *delay_ms);

#endif
