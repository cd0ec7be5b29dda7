/* Circuit breakers: this daemon's view and counting; see breaker.h. */
#include "breaker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claimer.h"
#include "clock.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "pg_array.h"
#include "policy.h"
#include "work.h"

/* Bytes of the last failure's error kept for the table's last_error. */
#define BREAKER_ERROR_MAX 512

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

/* A probe's verdict, as sql/breaker_report.sql takes it. */
enum breaker_verdict { VERDICT_NONE, VERDICT_SUCCESS, VERDICT_FAILURE, VERDICT_VOID };

static const char *const breaker_verdict_names[] = {NULL, "success", "failure", "void"};

/* One kind's breaker. */
struct breaker {
	char *kind;
	/* breaker: in the config; failures 0: none (an operator may still
	 * open the kind's breaker by hand: dispatch.breaker_trip) */
	int failures;
	int64_t window_ms, open_for_ms, open_max_ms;
	int64_t probe_ms;              /* how long a won probe is ours: timeout + lease */
	/* the table's state, as last seen */
	enum breaker_state state;
	int64_t until_ms;              /* open: the probe's earliest time (INT64_MAX: until reset);
	                                * half-open, not ours: when the probe lapses */
	int recorded;                  /* failures the row holds */
	/* the probe, when this daemon holds it */
	bool mine;
	unsigned won_in_pass;          /* the pass counter when it was won */
	bool probe_started;
	long long probe_id, probe_token;
	int64_t next_probe_ms;         /* after giving one back unused: not before */
	/* to report */
	int fails;                     /* counted failures since the last success */
	bool success;
	enum breaker_verdict verdict;
	char *last_error;
};

static struct {
	const char *instance;
	struct breaker *all;
	size_t n;
	bool config_due;               /* the settings are to be written */
	int64_t sync_every_ms, next_sync_ms;
	int64_t poll_interval_ms;
	bool sync_in_flight, report_in_flight, probe_in_flight, config_in_flight;
	bool synced;                   /* the state was read since the last connect or config */
	bool quiet;                    /* no kind has breaker: and none is open or half-open:
	                                * a task's start and end need no lookup */
	bool stopping;                 /* the daemon is stopping: no more probes */
	int64_t warned_ms;             /* the last warning of a failed statement */
	unsigned passes;
} breaker_local;

void
breaker_setup(const char *instance)
{
	breaker_local.instance = instance;
}

/* After anything that changes the settings or a state. */
static void
breaker_recount(void)
{
	breaker_local.quiet = true;
	for (size_t i = 0; i < breaker_local.n; i++)
		if (breaker_local.all[i].failures > 0 || breaker_local.all[i].state != BREAKER_CLOSED)
			breaker_local.quiet = false;
}

static struct breaker *
breaker_find(const char *kind)
{
	/* A kind is NULL once breaker_config() moved its breaker. */
	for (size_t i = 0; i < breaker_local.n; i++)
		if (breaker_local.all[i].kind != NULL && strcmp(breaker_local.all[i].kind, kind) == 0)
			return &breaker_local.all[i];
	return NULL;
}

static void
breaker_clear(struct breaker *b)
{
	free(b->kind);
	free(b->last_error);
}

void
breaker_config(const struct config *cfg)
{
	struct breaker *fresh = mem_calloc(cfg->nhandlers + 1, sizeof *fresh);

	/* Every handler's kind: one an operator opened by hand is skipped
	 * too, with or without breaker: in its config. */
	for (size_t h = 0; h < cfg->nhandlers; h++) {
		const struct handler_config *hc = &cfg->handlers[h];
		struct breaker *old = breaker_find(hc->kind);
		struct breaker *b = &fresh[h];

		if (old != NULL) {
			*b = *old;
			old->kind = old->last_error = NULL;
		} else {
			b->kind = mem_strdup(hc->kind);
			b->state = BREAKER_CLOSED;
		}
		b->failures = hc->breaker_failures;
		b->window_ms = hc->breaker_window_ms;
		b->open_for_ms = hc->breaker_open_for_ms;
		b->open_max_ms = hc->breaker_open_max_ms;
		b->probe_ms = policy_of(cfg, hc, 0).timeout_ms + cfg->lease_ms;
	}
	for (size_t i = 0; i < breaker_local.n; i++)
		breaker_clear(&breaker_local.all[i]);
	free(breaker_local.all);
	breaker_local.all = fresh;
	breaker_local.n = cfg->nhandlers;
	breaker_local.poll_interval_ms = cfg->poll_interval_ms;
	/* As often as leases are renewed: an opening elsewhere is seen
	 * within a poll interval. */
	breaker_local.sync_every_ms = cfg->lease_ms / 3 < cfg->poll_interval_ms ? cfg->lease_ms / 3 : cfg->poll_interval_ms;
	breaker_local.config_due = true;
	breaker_local.next_sync_ms = 0;
	/* Claims wait for the first read: a kind opened elsewhere (or by
	 * hand) must not be claimed by a daemon that just started. */
	breaker_local.synced = false;
	breaker_recount();
}

void
breaker_connected(void)
{
	breaker_local.config_due = true;
	breaker_local.next_sync_ms = 0;
	breaker_local.synced = false;
	/* Statements lost with the connection are not in flight any more. */
	breaker_local.sync_in_flight = breaker_local.report_in_flight = false;
	breaker_local.probe_in_flight = breaker_local.config_in_flight = false;
}

void
breaker_free(void)
{
	for (size_t i = 0; i < breaker_local.n; i++)
		breaker_clear(&breaker_local.all[i]);
	free(breaker_local.all);
	breaker_local.all = NULL;
	breaker_local.n = 0;
}

static enum breaker_state
breaker_state_of(const char *name)
{
	if (strcmp(name, "open") == 0)
		return BREAKER_OPEN;
	if (strcmp(name, "half_open") == 0)
		return BREAKER_HALF_OPEN;
	return BREAKER_CLOSED;
}

/* ms_left as the statements return it: NULL is "until reset". */
static int64_t
breaker_until(const PGresult *res, int r, int col, int64_t now)
{
	if (PQgetisnull(res, r, col))
		return INT64_MAX;
	return now + atoll(PQgetvalue(res, r, col));
}

static void
breaker_failed(const char *what, const struct db_error *err)
{
	char text[1200];

	/* A report that met another daemon's lock only delays an opening;
	 * the next failure reports again. Anything else (a database not
	 * migrated to 0011, a missing grant) leaves breakers without effect:
	 * said at warn, once a minute at most. */
	if (!work_attached())
		return;
	if (strcmp(err->sqlstate, "55P03") == 0 || clock_now_ms() - breaker_local.warned_ms < 60000) {
		log_debug("breaker %s failed: %s", what, db_error_text(err, text, sizeof text));
		return;
	}
	breaker_local.warned_ms = clock_now_ms();
	log_warn("breaker %s failed: %s", what, db_error_text(err, text, sizeof text));
}

/* A state this daemon did not cause (an operator, another daemon). A
 * breaker that closed frees its kind's tasks at once. */
static void
breaker_seen(struct breaker *b, enum breaker_state state)
{
	if (b->state != BREAKER_CLOSED && state == BREAKER_CLOSED)
		claimer_sweep(false);
	b->state = state;
}

/* --- settings ------------------------------------------------------------ */

static void
breaker_configured(void *ctx, PGresult *res, const struct db_error *err)
{
	breaker_local.config_in_flight = false;
	if (res == NULL) {
		breaker_failed("settings", err);
		breaker_local.config_due = true;
	}
}

/* Upserts the settings of every kind with breaker: in the config (last
 * writer wins: daemons with different settings take turns). */
static void
breaker_send_config(void)
{
	struct json_buf kinds = {0}, failures = {0}, window = {0}, open_for = {0}, open_max = {0};
	const char *kv[breaker_local.n + 1];
	int fv[breaker_local.n + 1];
	long long wv[breaker_local.n + 1], ov[breaker_local.n + 1], mv[breaker_local.n + 1];
	size_t n = 0;

	breaker_local.config_due = false;
	for (size_t i = 0; i < breaker_local.n; i++) {
		const struct breaker *b = &breaker_local.all[i];

		if (b->failures == 0)
			continue;
		kv[n] = b->kind;
		fv[n] = b->failures;
		wv[n] = b->window_ms;
		ov[n] = b->open_for_ms;
		mv[n++] = b->open_max_ms;
	}
	if (n == 0)
		return;
	pg_array_text(&kinds, kv, n);
	pg_array_int(&failures, fv, n);
	pg_array_ll(&window, wv, n);
	pg_array_ll(&open_for, ov, n);
	pg_array_ll(&open_max, mv, n);
	breaker_local.config_in_flight = true;
	work_send("breaker_config", 5,
	          (const char *[]){kinds.data, failures.data, window.data, open_for.data, open_max.data},
	          breaker_configured, NULL);
	json_buf_free(&kinds);
	json_buf_free(&failures);
	json_buf_free(&window);
	json_buf_free(&open_for);
	json_buf_free(&open_max);
}

/* --- the state ----------------------------------------------------------- */

static void
breaker_synced(void *ctx, PGresult *res, const struct db_error *err)
{
	int64_t now = clock_now_ms();

	breaker_local.sync_in_flight = false;
	/* Even a failed read ends the wait: claims must not hang on it (the
	 * failure is logged, and the next read comes a sync period later). */
	breaker_local.synced = true;
	if (res == NULL) {
		breaker_failed("state read", err);
		return;
	}
	/* A kind with no row is closed with nothing recorded. */
	for (size_t i = 0; i < breaker_local.n; i++)
		breaker_local.all[i].recorded = -1;
	for (int r = 0; r < PQntuples(res); r++) {
		struct breaker *b = breaker_find(PQgetvalue(res, r, 0));
		enum breaker_state state;

		if (b == NULL)
			continue;
		state = breaker_state_of(PQgetvalue(res, r, 1));
		b->recorded = atoi(PQgetvalue(res, r, 4));
		if (state == BREAKER_HALF_OPEN && PQgetvalue(res, r, 2)[0] == 't') {
			/* Ours: keep what we know of it (started or not). */
			b->state = state;
			continue;
		}
		b->mine = false;
		if (state != BREAKER_CLOSED)
			b->until_ms = breaker_until(res, r, 3, now);
		breaker_seen(b, state);
	}
	for (size_t i = 0; i < breaker_local.n; i++) {
		struct breaker *b = &breaker_local.all[i];

		if (b->recorded < 0) {
			b->recorded = 0;
			b->mine = false;
			breaker_seen(b, BREAKER_CLOSED);
		}
	}
	breaker_recount();
}

static void
breaker_send_sync(int64_t now)
{
	struct json_buf kinds = {0};
	const char *kv[breaker_local.n + 1];

	for (size_t i = 0; i < breaker_local.n; i++)
		kv[i] = breaker_local.all[i].kind;
	pg_array_text(&kinds, kv, breaker_local.n);
	breaker_local.next_sync_ms = now + breaker_local.sync_every_ms;
	breaker_local.sync_in_flight = true;
	work_send("breaker_sync", 2, (const char *[]){kinds.data, breaker_local.instance}, breaker_synced, NULL);
	json_buf_free(&kinds);
}

/* --- counting ------------------------------------------------------------ */

/* What a report's row says happened, logged by the one daemon that made
 * it happen. */
static void
breaker_log_change(const struct breaker *b, enum breaker_state was, int64_t open_ms, const char *error,
                   bool probe_succeeded)
{
	if (was == BREAKER_CLOSED && b->state == BREAKER_OPEN)
		log_warn("breaker kind=%s opened for %lld ms: %d failed attempts within %lld ms; last: %s", b->kind,
		         (long long) open_ms, b->failures, (long long) b->window_ms, error != NULL ? error : "");
	else if (was == BREAKER_HALF_OPEN && b->state == BREAKER_OPEN)
		log_warn("breaker kind=%s opened again for %lld ms: the probe task failed: %s", b->kind,
		         (long long) open_ms, error != NULL ? error : "");
	else if (was != BREAKER_CLOSED && b->state == BREAKER_CLOSED && probe_succeeded)
		log_info("breaker kind=%s closed: the probe task succeeded", b->kind);
	else if (was != BREAKER_CLOSED && b->state == BREAKER_CLOSED)
		/* A task claimed before it opened, or another daemon's lapsed
		 * probe: the service answers again all the same. */
		log_info("breaker kind=%s closed: a task of the kind succeeded", b->kind);
}

/* The report as sent: each kind's last error, for the log lines. */
struct breaker_sent {
	size_t n;
	char **kinds, **errors;
	bool *probe_succeeded;
};

static void
breaker_reported(void *ctx, PGresult *res, const struct db_error *err)
{
	struct breaker_sent *sent = ctx;
	int64_t now = clock_now_ms();

	breaker_local.report_in_flight = false;
	if (res == NULL)
		breaker_failed("report", err);
	for (int r = 0; res != NULL && r < PQntuples(res); r++) {
		struct breaker *b = breaker_find(PQgetvalue(res, r, 0));
		enum breaker_state was = breaker_state_of(PQgetvalue(res, r, 1));
		const char *error = NULL;
		bool probe_succeeded = false;

		if (b == NULL)
			continue;
		for (size_t i = 0; i < sent->n; i++)
			if (strcmp(sent->kinds[i], b->kind) == 0) {
				error = sent->errors[i];
				probe_succeeded = sent->probe_succeeded[i];
			}
		b->state = breaker_state_of(PQgetvalue(res, r, 2));
		b->until_ms = b->state == BREAKER_CLOSED ? 0 : breaker_until(res, r, 3, now);
		if (b->state != BREAKER_CLOSED)
			b->recorded = 0;
		if (b->state != BREAKER_HALF_OPEN)
			b->mine = false;
		if (was != b->state)
			breaker_log_change(b, was, PQgetisnull(res, r, 4) ? 0 : atoll(PQgetvalue(res, r, 4)), error,
			                   probe_succeeded);
		if (b->state == BREAKER_CLOSED && was != BREAKER_CLOSED)
			claimer_sweep(false);
	}
	breaker_recount();
	for (size_t i = 0; i < sent->n; i++) {
		free(sent->kinds[i]);
		free(sent->errors[i]);
	}
	free(sent->kinds);
	free(sent->errors);
	free(sent->probe_succeeded);
	free(sent);
}

/* True when b has something the table needs to hear. A success matters
 * only when the row holds failures or a probe: a healthy kind writes
 * nothing. */
static bool
breaker_to_report(const struct breaker *b)
{
	return b->fails > 0 || b->verdict != VERDICT_NONE
	       || (b->success && (b->recorded > 0 || b->state != BREAKER_CLOSED));
}

static void
breaker_send_report(void)
{
	struct json_buf kinds = {0}, successes = {0}, fails = {0}, verdicts = {0}, errors = {0};
	size_t n = 0, cap = breaker_local.n + 1;
	const char *kv[cap], *vv[cap], *ev[cap];
	bool sv[cap];
	int fv[cap];
	struct breaker_sent *sent;

	/* Most turns have nothing to say: look before allocating. A success
	 * with nothing recorded is forgotten here. */
	for (size_t i = 0; i < breaker_local.n; i++) {
		if (breaker_to_report(&breaker_local.all[i]))
			n++;
		else
			breaker_local.all[i].success = false;
	}
	if (n == 0)
		return;
	n = 0;
	sent = mem_calloc(1, sizeof *sent);
	sent->kinds = mem_calloc(cap, sizeof *sent->kinds);
	sent->errors = mem_calloc(cap, sizeof *sent->errors);
	sent->probe_succeeded = mem_calloc(cap, sizeof *sent->probe_succeeded);
	for (size_t i = 0; i < breaker_local.n; i++) {
		struct breaker *b = &breaker_local.all[i];

		if (!breaker_to_report(b))
			continue;
		kv[n] = b->kind;
		sv[n] = b->success;
		fv[n] = b->fails;
		vv[n] = breaker_verdict_names[b->verdict];
		ev[n] = b->last_error;
		sent->kinds[n] = mem_strdup(b->kind);
		sent->errors[n] = b->last_error;   /* moves */
		sent->probe_succeeded[n] = b->verdict == VERDICT_SUCCESS;
		n++;
		/* What the row will hold (a sync corrects it). */
		b->recorded = b->success ? b->fails : b->recorded + b->fails;
		b->fails = 0;
		b->success = false;
		b->verdict = VERDICT_NONE;
		b->last_error = NULL;
	}
	sent->n = n;
	pg_array_text(&kinds, kv, n);
	pg_array_bool(&successes, sv, n);
	pg_array_int(&fails, fv, n);
	pg_array_text(&verdicts, vv, n);
	pg_array_text(&errors, ev, n);
	breaker_local.report_in_flight = true;
	work_send("breaker_report", 6,
	          (const char *[]){kinds.data, successes.data, fails.data, verdicts.data, errors.data,
	                           breaker_local.instance},
	          breaker_reported, sent);
	json_buf_free(&kinds);
	json_buf_free(&successes);
	json_buf_free(&fails);
	json_buf_free(&verdicts);
	json_buf_free(&errors);
}

void
breaker_note(const struct task *t, enum breaker_event ev, const char *error)
{
	struct breaker *b = breaker_local.quiet ? NULL : breaker_find(t->kind);

	if (b == NULL)
		return;
	if (b->mine && b->probe_started && b->probe_id == t->id && b->probe_token == t->token) {
		/* The probe's verdict: the table decides what it means. */
		b->verdict = ev == BREAKER_SUCCESS ? VERDICT_SUCCESS : ev == BREAKER_FAILURE ? VERDICT_FAILURE : VERDICT_VOID;
		b->mine = b->probe_started = false;
	}
	if (ev == BREAKER_SUCCESS) {
		/* Failures before it do not count any more. */
		b->success = true;
		b->fails = 0;
	} else if (ev == BREAKER_FAILURE && b->failures > 0) {
		b->fails++;
	} else if (b->verdict == VERDICT_NONE) {
		return;
	}
	if (ev == BREAKER_FAILURE && error != NULL) {
		size_t n = strlen(error);
		bool cut = n > BREAKER_ERROR_MAX;

		if (cut)
			n = BREAKER_ERROR_MAX;
		free(b->last_error);
		b->last_error = mem_calloc(n + 1, 1);
		memcpy(b->last_error, error, n);
		/* Cut inside a UTF-8 sequence: drop what is left of it (the
		 * column takes valid UTF-8 only). */
		while (cut && n > 0 && ((unsigned char) b->last_error[n - 1] & 0xC0) == 0x80)
			b->last_error[--n] = '\0';
		if (cut && n > 0 && ((unsigned char) b->last_error[n - 1] & 0x80))
			b->last_error[--n] = '\0';
	}
}

/* --- the probe ------------------------------------------------------------ */

static void
breaker_probed(void *ctx, PGresult *res, const struct db_error *err)
{
	char *kind = ctx;
	struct breaker *b = breaker_find(kind);

	breaker_local.probe_in_flight = false;
	if (res == NULL)
		breaker_failed("probe", err);
	if (b != NULL && res != NULL && PQntuples(res) == 1) {
		b->state = BREAKER_HALF_OPEN;
		b->mine = true;
		b->probe_started = false;
		b->won_in_pass = breaker_local.passes;
		log_info("breaker kind=%s half-open: letting one probe task through", b->kind);
		breaker_recount();
		claimer_sweep(false);
	} else if (b != NULL) {
		/* Another daemon has it, or an operator changed it: read again. */
		breaker_local.next_sync_ms = 0;
		b->next_probe_ms = clock_now_ms() + breaker_local.poll_interval_ms;
	}
	free(kind);
}

/* An open breaker whose time is up, or a half-open one whose probe
 * lapsed: this daemon may try to take the probe. */
static bool
breaker_probe_due(const struct breaker *b, int64_t now)
{
	if (b->state == BREAKER_OPEN || (b->state == BREAKER_HALF_OPEN && !b->mine))
		return b->until_ms != INT64_MAX && now >= b->until_ms && now >= b->next_probe_ms;
	return false;
}

static void
breaker_send_probe(struct breaker *b)
{
	char ms[32];

	snprintf(ms, sizeof ms, "%lld", (long long) b->probe_ms);
	breaker_local.probe_in_flight = true;
	work_send("breaker_probe", 3, (const char *[]){b->kind, breaker_local.instance, ms}, breaker_probed,
	          mem_strdup(b->kind));
}

void
breaker_pass_start(void)
{
	breaker_local.passes++;
}

void
breaker_pass_end(bool short_everywhere, int64_t now)
{
	if (!short_everywhere)
		return;
	for (size_t i = 0; i < breaker_local.n; i++) {
		struct breaker *b = &breaker_local.all[i];

		/* A whole pass since the win, and no task of the kind was due. */
		if (b->mine && !b->probe_started && b->won_in_pass != breaker_local.passes) {
			b->mine = false;
			b->verdict = VERDICT_VOID;
			b->next_probe_ms = now + breaker_local.poll_interval_ms;
		}
	}
}

void
breaker_started(const struct task *t)
{
	struct breaker *b = breaker_local.quiet ? NULL : breaker_find(t->kind);

	if (b != NULL && b->mine && !b->probe_started) {
		b->probe_started = true;
		b->probe_id = t->id;
		b->probe_token = t->token;
	}
}

void
breaker_kinds(const char **skip, size_t *nskip, const char **limited, int *rooms, size_t *nlimited, size_t cap)
{
	if (breaker_local.quiet)
		return;
	for (size_t i = 0; i < breaker_local.n; i++) {
		const struct breaker *b = &breaker_local.all[i];
		bool probe = b->state == BREAKER_HALF_OPEN && b->mine && !b->probe_started;
		size_t at = SIZE_MAX;

		if (b->state == BREAKER_CLOSED)
			continue;
		for (size_t k = 0; k < *nskip; k++)
			if (strcmp(skip[k], b->kind) == 0)
				goto next;
		for (size_t k = 0; k < *nlimited; k++)
			if (strcmp(limited[k], b->kind) == 0)
				at = k;
		if (probe && at != SIZE_MAX) {
			rooms[at] = 1;
		} else if (probe && *nlimited < cap) {
			limited[*nlimited] = b->kind;
			rooms[(*nlimited)++] = 1;
		} else if (!probe && at != SIZE_MAX) {
			/* Out of the limited list, into the skip list. */
			limited[at] = limited[*nlimited - 1];
			rooms[at] = rooms[*nlimited - 1];
			(*nlimited)--;
			if (*nskip < cap)
				skip[(*nskip)++] = b->kind;
		} else if (!probe && *nskip < cap) {
			skip[(*nskip)++] = b->kind;
		}
next:;
	}
}

/* --- the tick --------------------------------------------------------------- */

bool
breaker_busy(void)
{
	if (breaker_local.report_in_flight || (breaker_local.n > 0 && !breaker_local.synced))
		return true;
	/* Failures are counted only for kinds with breaker: (never quiet). */
	for (size_t i = 0; !breaker_local.quiet && i < breaker_local.n; i++)
		if (breaker_local.all[i].fails > 0)
			return true;
	return false;
}

int64_t
breaker_next_ms(void)
{
	int64_t due = breaker_local.sync_in_flight ? INT64_MAX : breaker_local.next_sync_ms;

	if (breaker_local.n == 0)
		return INT64_MAX;
	for (size_t i = 0; i < breaker_local.n; i++) {
		const struct breaker *b = &breaker_local.all[i];

		if (!breaker_local.report_in_flight && breaker_to_report(b))
			return 0;
		if (!breaker_local.probe_in_flight && (b->state == BREAKER_OPEN || (b->state == BREAKER_HALF_OPEN && !b->mine))) {
			int64_t at = b->until_ms > b->next_probe_ms ? b->until_ms : b->next_probe_ms;

			if (at < due)
				due = at;
		}
	}
	return due;
}

void
breaker_stop(void)
{
	breaker_local.stopping = true;
	/* A probe won and not started goes back at once, for another daemon. */
	for (size_t i = 0; i < breaker_local.n; i++) {
		struct breaker *b = &breaker_local.all[i];

		if (b->mine && !b->probe_started) {
			b->mine = false;
			b->verdict = VERDICT_VOID;
		}
	}
}

void
breaker_tick(int64_t now, bool room)
{
	if (breaker_local.n == 0 || !work_attached())
		return;
	if (!breaker_local.report_in_flight)
		breaker_send_report();
	/* The settings go with a read of the state, so a statement that
	 * fails (a database not migrated yet) is tried again at that pace. */
	if (!breaker_local.sync_in_flight && now >= breaker_local.next_sync_ms) {
		if (breaker_local.config_due && !breaker_local.config_in_flight)
			breaker_send_config();
		breaker_send_sync(now);
	}
	/* A probe is taken only by a daemon that can run it now. */
	if (!breaker_local.probe_in_flight && room && !breaker_local.stopping)
		for (size_t i = 0; i < breaker_local.n; i++)
			if (breaker_probe_due(&breaker_local.all[i], now)) {
				breaker_send_probe(&breaker_local.all[i]);
				break;
			}
}
