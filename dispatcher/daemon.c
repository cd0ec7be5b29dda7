/*
 * The daemon's event loop and the life of a task in flight; see daemon_local.h.
 *
 * Startup and every reconnect follow one order: connect, LISTEN, then
 * sweep (claim until a batch comes back short), then wait. LISTEN takes
 * effect at commit, so a task inserted after it is announced, and one
 * inserted before it is found by the sweep: nothing falls in between
 * (../shared/research/pg-pitfalls.md, 1.1). Notifications are only
 * wake-ups; the table is the truth, and a safety poll catches anything a
 * lost notification would have missed.
 */
#include "daemon.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "embed.h"
#include "handler_cmd.h"
#include "handler_sql.h"
#include "json.h"
#include "log.h"
#include "outbox.h"
#include "queue.h"
#include "signals.h"

#define DAEMON_KILL_GRACE_MS 2000     /* SIGTERM, then SIGKILL this much later */
#define DAEMON_RECONNECT_MIN_MS 100
#define DAEMON_RECONNECT_MAX_MS 30000
#define DAEMON_CONTENDED_WAIT_MS 20   /* due rows exist but others hold them: first wait */
#define DAEMON_OUTCOME_WAIT_MS 5000   /* after the grace, to write the last outcomes */
#define DAEMON_SLEEP_DEFAULT_MS 1000  /* builtin sleep without "ms" in the payload */

/* One task in flight, from its claim until its outcome is queued. */
struct slot {
	bool used;
	struct task task;
	enum handler_type type;
	enum handler_builtin builtin;
	int max_attempts;            /* the limit that applies to this task */
	int64_t backoff_initial_ms;
	int64_t backoff_max_ms;
	int64_t timeout_ms;
	int64_t started_ms;          /* monotonic */
	int64_t deadline_ms;         /* timeout */
	int64_t kill_at_ms;          /* SIGKILL after a SIGTERM; 0: none sent */
	bool sleeping;               /* builtin sleep, until done_at_ms */
	int64_t done_at_ms;
	bool timed_out;
	bool shutdown_stopped;       /* stopped by shutdown: attempt given back */
	bool lease_lost;             /* reaped by another instance: stopped, no outcome */
	struct cmd_child child;      /* HANDLER_COMMAND */
	struct sql_run sql;          /* HANDLER_SQL */
};

static struct {
	struct config *cfg;
	const char *database;        /* -d, overriding cfg->database */
	char instance[256];          /* locked_by; fixed for the process's life */
	char sleeper[300];           /* instance#pid: this process in dispatch.sleepers */
	PGconn *listen;              /* LISTEN only; never in a transaction */
	PGconn *work;                /* claims, outcomes, leases, the reaper */
	int signal_fd;
	struct slot *slots;
	int nslots;
	int free_hint;               /* a slot likely to be free */
	int running;
	size_t next_queue;           /* round-robin start among queues */
	bool sweep;                  /* claim at once */
	enum {
		DAEMON_AWAKE,            /* not registered for wake-ups */
		DAEMON_REGISTERING,      /* registered, not yet confirmed */
		DAEMON_ASLEEP,           /* registered and confirmed: notifications will come */
	} wake;
	int64_t confirm_wait_ms;     /* next pause while registration is unconfirmed */
	int64_t contended_ms;        /* wait before looking again at rows others hold */
	int64_t next_claim_ms;
	int64_t next_lease_ms;
	int64_t reconnect_at_ms;     /* when disconnected */
	int64_t reconnect_delay_ms;
	bool stopping;
	int64_t stop_deadline_ms;
	bool stop_handlers_sent;
} daemon_local;

static int64_t
daemon_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
daemon_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static bool
daemon_connected(void)
{
	return daemon_local.work != NULL;
}

static const char *
daemon_conninfo(void)
{
	return daemon_local.database != NULL ? daemon_local.database : daemon_local.cfg->database;
}

/* --- outcomes --------------------------------------------------------- */

static char *
daemon_strdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

/*
 * A failed attempt: retried after a backoff while attempts remain, else
 * failed for good. error must be valid text; it is copied.
 */
static void
daemon_attempt_failed(const struct task *t, int max_attempts, int64_t initial_ms, int64_t max_ms,
                      const char *error)
{
	struct outcome o = {.id = t->id, .attempt = t->attempt, .error = daemon_strdup(error)};

	if (t->attempt >= max_attempts) {
		o.type = OUTCOME_FAIL;
		log_error("task=%lld kind=%s attempt=%d/%d failed for good: %s", t->id, t->kind,
		          t->attempt, max_attempts, error);
	} else {
		o.type = OUTCOME_RETRY;
		o.delay_ms = task_backoff_ms(t->attempt, initial_ms, max_ms);
		log_warn("task=%lld kind=%s attempt=%d/%d retry_in_ms=%lld failed: %s", t->id, t->kind,
		         t->attempt, max_attempts, (long long) o.delay_ms, error);
	}
	outbox_add(o);
}

static void
daemon_slot_failed(struct slot *s, const char *error)
{
	daemon_attempt_failed(&s->task, s->max_attempts, s->backoff_initial_ms, s->backoff_max_ms, error);
}

static void
daemon_complete(const struct task *t, char *result, int64_t ms)
{
	struct outcome o = {.id = t->id, .attempt = t->attempt, .type = OUTCOME_COMPLETE, .result = result};

	log_info("task=%lld kind=%s attempt=%d ms=%lld complete", t->id, t->kind, t->attempt,
	         (long long) ms);
	outbox_add(o);
}

static void
daemon_release(const struct task *t, const char *why)
{
	struct outcome o = {.id = t->id, .attempt = t->attempt, .type = OUTCOME_RELEASE};

	log_info("task=%lld kind=%s attempt=%d returned to pending untried: %s", t->id, t->kind,
	         t->attempt, why);
	outbox_add(o);
}

static void daemon_disconnect(const char *why);

/* Writes what handlers finished with (outbox.c); reconnects if the
 * connection turns out to be gone. */
static void
daemon_flush_outcomes(void)
{
	struct db_error err;

	if (daemon_connected()
	    && outbox_flush(daemon_local.work, daemon_local.instance, daemon_now(), &err) == OUTBOX_CONN_LOST)
		daemon_disconnect(err.message);
}

/* --- connections ------------------------------------------------------ */

static void
daemon_disconnect(const char *why)
{
	if (daemon_local.listen != NULL)
		PQfinish(daemon_local.listen);
	if (daemon_local.work != NULL)
		PQfinish(daemon_local.work);
	daemon_local.listen = daemon_local.work = NULL;
	/* Idle SQL handler connections most likely died with the others. */
	sql_pool_close();
	daemon_local.reconnect_at_ms = daemon_now() + daemon_local.reconnect_delay_ms;
	log_warn("database connection lost: %s; reconnecting in %lld ms", why,
	         (long long) daemon_local.reconnect_delay_ms);
	daemon_local.reconnect_delay_ms *= 2;
	if (daemon_local.reconnect_delay_ms > DAEMON_RECONNECT_MAX_MS)
		daemon_local.reconnect_delay_ms = DAEMON_RECONNECT_MAX_MS;
}

/* Server notices go to our log, not to libpq's stderr default. */
static void
daemon_notice(void *arg, const char *message)
{
	log_info("server says: %s", message);
}

/* Connects, LISTENs, then asks for a sweep. false: retry later. */
static bool
daemon_connect(void)
{
	char appname[64], safe[512];
	struct db_error err;
	PGresult *res;

	/* application_name holds 63 bytes; longer is cut by the server anyway. */
	snprintf(appname, sizeof appname, "pgdispatch %.52s", daemon_local.instance);
	if (daemon_local.cfg->notify) {
		daemon_local.listen = db_connect(daemon_conninfo(), appname, &err);
		if (daemon_local.listen == NULL)
			goto fail;
		PQsetNoticeProcessor(daemon_local.listen, daemon_notice, NULL);
		res = db_exec(daemon_local.listen, embed_sql("listen"), 0, NULL, &err);
		if (res == NULL)
			goto fail;
		PQclear(res);
	}
	daemon_local.work = db_connect(daemon_conninfo(), appname, &err);
	if (daemon_local.work == NULL || !queue_prepare(daemon_local.work, &err))
		goto fail;
	PQsetNoticeProcessor(daemon_local.work, daemon_notice, NULL);
	db_conninfo_safe(daemon_conninfo(), safe, sizeof safe);
	log_info("connected database=\"%s\" listen=%s", safe, daemon_local.cfg->notify ? "yes" : "no");
	daemon_local.reconnect_delay_ms = DAEMON_RECONNECT_MIN_MS;
	daemon_local.sweep = true;
	daemon_local.wake = DAEMON_AWAKE;
	daemon_local.next_lease_ms = daemon_now();
	return true;

fail:
	daemon_disconnect(err.message);
	return false;
}

/* After a statement failed: reconnect if the connection is gone, else
 * log and let the safety poll try again. */
static void
daemon_statement_failed(const char *what, const struct db_error *err)
{
	char text[1200];

	if (daemon_local.work == NULL || PQstatus(daemon_local.work) != CONNECTION_OK) {
		daemon_disconnect(err->message);
		return;
	}
	log_error("%s failed: %s", what, db_error_text(err, text, sizeof text));
}

/* Drains notifications; any for a queue we serve asks for a sweep. */
static void
daemon_drain_notifications(void)
{
	PGnotify *n;

	if (PQconsumeInput(daemon_local.listen) == 0) {
		char msg[1024];

		db_redact(PQerrorMessage(daemon_local.listen), daemon_conninfo(), msg, sizeof msg);
		daemon_disconnect(msg);
		return;
	}
	while ((n = PQnotifies(daemon_local.listen)) != NULL) {
		for (size_t q = 0; q < daemon_local.cfg->nqueues; q++)
			if (strcmp(n->extra, daemon_local.cfg->queues[q]) == 0) {
				daemon_local.sweep = true;
				daemon_local.contended_ms = DAEMON_CONTENDED_WAIT_MS;
			}
		PQfreemem(n);
	}
}

/* --- starting tasks --------------------------------------------------- */

static int
daemon_running_of(const char *kind)
{
	int n = 0;

	for (int i = 0; i < daemon_local.nslots; i++)
		if (daemon_local.slots[i].used && strcmp(daemon_local.slots[i].task.kind, kind) == 0)
			n++;
	return n;
}

/* Kinds whose handler is at its own concurrency limit: the claim skips
 * them. names[] borrows from the config. */
static size_t
daemon_full_kinds(const char **names, size_t cap)
{
	size_t n = 0;

	for (size_t h = 0; h < daemon_local.cfg->nhandlers && n < cap; h++) {
		const struct handler_config *hc = &daemon_local.cfg->handlers[h];

		if (hc->concurrency > 0 && daemon_running_of(hc->kind) >= hc->concurrency)
			names[n++] = hc->kind;
	}
	return n;
}

/*
 * "ms" from a builtin sleep's payload, e.g. {"ms": 250}, clamped to
 * [0, limit]. A test and demo aid: it looks for the key, it does not parse
 * JSON.
 */
static int64_t
daemon_sleep_ms(const char *payload, int64_t limit)
{
	const char *p = strstr(payload, "\"ms\"");
	long long ms;

	if (p == NULL)
		return DAEMON_SLEEP_DEFAULT_MS < limit ? DAEMON_SLEEP_DEFAULT_MS : limit;
	p += 4;
	while (*p == ' ' || *p == ':')
		p++;
	ms = strtoll(p, NULL, 10);
	return ms < 0 ? 0 : ms > limit ? limit : ms;
}

static void
daemon_slot_free(struct slot *s)
{
	if (s->type == HANDLER_COMMAND)
		cmd_free(&s->child);
	else if (s->type == HANDLER_SQL)
		sql_finish(&s->sql);
	task_clear(&s->task);
	memset(s, 0, sizeof *s);
	daemon_local.free_hint = (int) (s - daemon_local.slots);
	daemon_local.running--;
	/* A free slot is room for the next task: claim at once. */
	daemon_local.sweep = true;
}

/* A SQL handler's transaction has ended: log or queue what it means. */
static void
daemon_sql_done(struct slot *s)
{
	const struct sql_run *r = &s->sql;
	int64_t ms = daemon_now() - s->started_ms;
	char text[1200];

	if (s->lease_lost)
		log_warn("task=%lld kind=%s attempt=%d SQL handler stopped after its lease was lost",
		         s->task.id, s->task.kind, s->task.attempt);
	else if (r->result == SQL_OK)
		log_info("task=%lld kind=%s attempt=%d ms=%lld complete", s->task.id, s->task.kind,
		         s->task.attempt, (long long) ms);
	else if (r->result == SQL_LEASE_LOST)
		log_warn("task=%lld kind=%s attempt=%d lease lost; SQL handler rolled back", s->task.id,
		         s->task.kind, s->task.attempt);
	else if (s->shutdown_stopped)
		daemon_release(&s->task, "stopped by shutdown");
	else {
		/* Failed, or the connection died: nothing of it committed that
		 * we know of, and if the COMMIT did land, the fence keeps this
		 * failure from overwriting it. */
		struct json_buf clean = {0};

		if (r->result == SQL_CONN_LOST)
			json_buf_printf(&clean, "database connection lost while the SQL handler ran: ");
		db_error_text(&r->err, text, sizeof text);
		json_append_text(&clean, text, strlen(text));
		daemon_slot_failed(s, clean.data);
		json_buf_free(&clean);
	}
	daemon_slot_free(s);
}

/* Starts a SQL handler on a connection of its own (handler_sql.c). */
static void
daemon_start_sql(struct slot *s, const char *sql)
{
	struct db_error err;
	char appname[64];

	snprintf(appname, sizeof appname, "pgdispatch %.52s", daemon_local.instance);
	if (!sql_start(&s->sql, daemon_conninfo(), appname, daemon_local.instance, &s->task, sql,
	               s->timeout_ms, &err)) {
		s->type = HANDLER_BUILTIN;  /* no run to finish */
		daemon_slot_failed(s, "no database connection for the SQL handler");
		daemon_slot_free(s);
		return;
	}
	if (s->sql.state == SQL_DONE)
		daemon_sql_done(s);
}

/* Takes a freshly claimed task: finds its handler and starts it. */
static void
daemon_start(struct task *t)
{
	const struct config *cfg = daemon_local.cfg;
	const struct handler_config *h = config_handler(cfg, t->kind);
	struct slot *s = NULL;
	char why[512];

	/* Start at the last freed slot: with a thousand slots, searching from
	 * the first for every task was a measurable share of a batch. */
	for (int k = 0; k < daemon_local.nslots && s == NULL; k++) {
		int i = (daemon_local.free_hint + k) % daemon_local.nslots;

		if (!daemon_local.slots[i].used)
			s = &daemon_local.slots[i];
	}
	if (s == NULL || (h != NULL && h->concurrency > 0 && daemon_running_of(t->kind) >= h->concurrency)) {
		/* Claimed beyond a limit (a batch can hold several of one kind). */
		daemon_release(t, "handler concurrency limit reached");
		task_clear(t);
		return;
	}
	memset(s, 0, sizeof *s);
	s->used = true;
	s->task = *t;
	daemon_local.running++;
	s->started_ms = daemon_now();
	s->max_attempts = t->max_attempts > 0 ? t->max_attempts : h != NULL ? h->max_attempts : cfg->max_attempts;
	s->backoff_initial_ms = h != NULL ? h->backoff_initial_ms : cfg->backoff_initial_ms;
	s->backoff_max_ms = h != NULL ? h->backoff_max_ms : cfg->backoff_max_ms;
	s->timeout_ms = h != NULL ? h->timeout_ms : cfg->timeout_ms;
	s->deadline_ms = s->started_ms + s->timeout_ms;
	s->type = h != NULL ? h->type : HANDLER_BUILTIN;

	if (t->attempt > s->max_attempts) {
		/* Claimed with its attempts already used (an instance with another
		 * limit returned it): record, do not run. */
		snprintf(why, sizeof why, "no attempts left (attempt %d of %d)", t->attempt, s->max_attempts);
		daemon_slot_failed(s, why);
		daemon_slot_free(s);
		return;
	}
	log_info("task=%lld kind=%s attempt=%d/%d queue=%s started", t->id, t->kind, t->attempt,
	         s->max_attempts, t->queue);
	if (h == NULL) {
		/* A failed attempt, not a lost task: a later deployment with a
		 * handler may still pick it up before its attempts run out. */
		struct json_buf msg = {0};

		json_buf_printf(&msg, "no handler for kind ");
		json_append_text(&msg, t->kind, strlen(t->kind));
		daemon_slot_failed(s, msg.data);
		json_buf_free(&msg);
		daemon_slot_free(s);
		return;
	}
	switch (h->type) {
	case HANDLER_BUILTIN:
		s->builtin = h->builtin;
		if (h->builtin == BUILTIN_NOOP) {
			daemon_complete(&s->task, NULL, 0);
			daemon_slot_free(s);
		} else if (h->builtin == BUILTIN_FAIL) {
			daemon_slot_failed(s, "builtin fail handler");
			daemon_slot_free(s);
		} else {
			s->sleeping = true;
			s->done_at_ms = s->started_ms + daemon_sleep_ms(t->payload, s->timeout_ms + 1);
		}
		return;
	case HANDLER_SQL:
		daemon_start_sql(s, h->sql);
		return;
	case HANDLER_COMMAND:
		if (!cmd_start(&s->child, h->argv, &s->task, s->max_attempts, h->max_output, why, sizeof why)) {
			daemon_slot_failed(s, why);
			s->type = HANDLER_BUILTIN;  /* nothing to free in child */
			daemon_slot_free(s);
		}
		return;
	}
}

/* A claim came back full: there is a backlog, and this instance will claim
 * again as soon as it has room, so it needs no notifications. */
static void
daemon_wake_busy(void)
{
	struct db_error err;

	if (daemon_local.wake == DAEMON_AWAKE)
		return;
	if (!queue_sleep_unregister(daemon_local.work, daemon_local.sleeper, &err)) {
		daemon_statement_failed("wake-up unregistration", &err);
		return;
	}
	daemon_local.wake = DAEMON_AWAKE;
}

/*
 * Every claim came back short: this instance is about to wait, so it asks
 * producers for notifications, and confirms that no insert which missed
 * the request is still open before it trusts them
 * (migrations/0003_wakeup_only_sleepers.sql). Returns how long it may wait
 * before claiming again on its own: unlimited once confirmed, a short and
 * growing pause until then.
 */
static int64_t
daemon_wake_idle(void)
{
	const struct config *cfg = daemon_local.cfg;
	struct db_error err;
	int confirmed;

	if (daemon_local.wake == DAEMON_ASLEEP)
		return INT64_MAX;
	if (daemon_local.wake == DAEMON_AWAKE) {
		if (!queue_sleep_register(daemon_local.work, daemon_local.sleeper,
		                          (const char *const *) cfg->queues, cfg->nqueues, &err)) {
			daemon_statement_failed("wake-up registration", &err);
			return cfg->poll_interval_ms;
		}
		daemon_local.wake = DAEMON_REGISTERING;
		daemon_local.confirm_wait_ms = DAEMON_CONTENDED_WAIT_MS;
	}
	confirmed = queue_sleep_confirm(daemon_local.work, &err);
	if (confirmed < 0) {
		daemon_statement_failed("wake-up confirmation", &err);
		return cfg->poll_interval_ms;
	}
	if (confirmed) {
		/* One more claim sees whatever the stragglers committed. */
		daemon_local.wake = DAEMON_ASLEEP;
		daemon_local.sweep = true;
		return INT64_MAX;
	}
	{
		int64_t wait = daemon_local.confirm_wait_ms;

		daemon_local.confirm_wait_ms = daemon_min(wait * 2, cfg->poll_interval_ms);
		return wait;
	}
}

/*
 * Claims while there are free slots and batches come back full, one queue
 * after another; then sets the timer to the next due task or the safety
 * poll, whichever is sooner.
 */
static void
daemon_claim(void)
{
	const struct config *cfg = daemon_local.cfg;
	struct queue_claimer who = {daemon_local.instance, cfg->lease_ms};
	const char *full[64];
	struct queue_kinds skip = {full, 0};
	int64_t next = cfg->poll_interval_ms, now;
	bool short_batch_everywhere = true, contended = false, claimed_any = false, full_batch = false;
	struct task *batch;

	daemon_local.sweep = false;
	batch = calloc((size_t) cfg->concurrency, sizeof *batch);
	if (batch == NULL)
		abort();
	for (size_t k = 0; k < cfg->nqueues && daemon_connected(); k++) {
		const char *queue = cfg->queues[(daemon_local.next_queue + k) % cfg->nqueues];

		for (;;) {
			int free_slots = cfg->concurrency - daemon_local.running;
			const struct outcome *done = NULL;
			struct db_error err;
			size_t ndone;
			bool *kept;
			int n;

			if (!daemon_connected())
				break;
			if (free_slots <= 0) {
				short_batch_everywhere = false;
				break;
			}
			skip.count = daemon_full_kinds(full, 64);
			/* Successes waiting in the outbox ride along with the claim:
			 * one commit for both (sql/complete_and_claim.sql). Anything
			 * else is written on its own first. */
			ndone = outbox_completes(&done);
			if (ndone == 0) {
				daemon_flush_outcomes();
				if (!daemon_connected())
					break;
			}
			kept = ndone > 0 ? calloc(ndone, sizeof *kept) : NULL;
			if (ndone > 0 && kept == NULL)
				abort();
			n = queue_claim(daemon_local.work, &who, queue, free_slots, &skip, done, ndone, kept,
			                batch, &err);
			if (n >= 0 && ndone > 0)
				outbox_written(kept);
			free(kept);
			if (n < 0 && ndone > 0 && daemon_connected()
			    && PQstatus(daemon_local.work) == CONNECTION_OK) {
				/* Perhaps the successes were refused, not the claim: let
				 * the outbox write them its careful way, then claim alone. */
				daemon_flush_outcomes();
				continue;
			}
			if (n < 0) {
				daemon_statement_failed("claim", &err);
				break;
			}
			claimed_any = claimed_any || n > 0;
			for (int i = 0; i < n; i++)
				daemon_start(&batch[i]);
			if (n < free_slots)
				break;
			full_batch = true;
		}
		if (!daemon_connected())
			break;
		if (short_batch_everywhere) {
			struct db_error err;
			int64_t due;

			skip.count = daemon_full_kinds(full, 64);
			due = queue_next_due(daemon_local.work, queue, &skip, &err);
			if (due < 0)
				daemon_statement_failed("next due time", &err);
			else if (due == 0)
				/* Due rows we could not lock: another instance is
				 * claiming them, or a long transaction holds them. Look
				 * again soon, then less and less often. */
				contended = true;
			else if (due < next)
				next = due;
		}
	}
	free(batch);
	if (claimed_any || !contended)
		daemon_local.contended_ms = DAEMON_CONTENDED_WAIT_MS;
	if (contended) {
		next = daemon_min(next, daemon_local.contended_ms);
		daemon_local.contended_ms = daemon_min(daemon_local.contended_ms * 2, cfg->poll_interval_ms);
	}
	if (daemon_connected() && cfg->notify) {
		if (full_batch)
			daemon_wake_busy();
		else if (short_batch_everywhere)
			next = daemon_min(next, daemon_wake_idle());
	}
	daemon_local.next_queue++;
	now = daemon_now();
	daemon_local.next_claim_ms = now + next;
}

/* --- running tasks ---------------------------------------------------- */

/* last_error for a command that did not exit 0. */
static void
daemon_command_error(struct slot *s, struct json_buf *msg)
{
	int st = s->child.status;

	if (s->timed_out)
		json_buf_printf(msg, "timed out after %lld ms", (long long) s->timeout_ms);
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 75)
		json_buf_printf(msg, "exit 75 (handler asked for a retry)");
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && s->child.err_len == 0)
		/* Where posix_spawn cannot report a failed exec (some libcs, or
		 * under valgrind), the child exits 127 without a word. */
		json_buf_printf(msg, "exit 127: cannot run %s: not found or not executable",
		                s->child.program);
	else if (WIFEXITED(st))
		json_buf_printf(msg, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		json_buf_printf(msg, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	if (s->child.err_len > 0) {
		json_buf_printf(msg, s->child.err_truncated ? ": ...stderr tail: " : ": stderr: ");
		json_append_text(msg, s->child.err_tail, s->child.err_len);
		while (msg->len > 0 && (msg->data[msg->len - 1] == '\n' || msg->data[msg->len - 1] == ' '))
			msg->data[--msg->len] = '\0';
	}
}

/* A command handler's process has exited: decide and queue the outcome. */
static void
daemon_command_done(struct slot *s)
{
	int st = s->child.status;
	int64_t ms = daemon_now() - s->started_ms;

	if (s->lease_lost) {
		log_warn("task=%lld kind=%s attempt=%d handler ended after its lease was lost; "
		         "outcome not recorded", s->task.id, s->task.kind, s->task.attempt);
	} else if (!s->timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		/* Success counts even when shutdown asked the handler to stop:
		 * its work is done and must not run again. */
		struct json_buf *out = &s->child.out;
		char *result = NULL;

		if (s->child.out_truncated)
			log_warn("task=%lld kind=%s stdout truncated to %lld bytes", s->task.id, s->task.kind,
			         (long long) s->child.max_output);
		if (out->len > 0 && !s->child.out_truncated && json_valid(out->data, out->len)) {
			result = daemon_strdup(out->data);
		} else if (out->len > 0) {
			struct json_buf quoted = {0};

			json_append_string(&quoted, out->data, out->len);
			result = daemon_strdup(quoted.data);
			json_buf_free(&quoted);
		}
		daemon_complete(&s->task, result, ms);
	} else if (s->shutdown_stopped) {
		daemon_release(&s->task, "stopped by shutdown");
	} else {
		struct json_buf msg = {0};

		daemon_command_error(s, &msg);
		daemon_slot_failed(s, msg.data);
		json_buf_free(&msg);
	}
	daemon_slot_free(s);
}

static void
daemon_reap_children(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid <= 0)
			return;
		for (int i = 0; i < daemon_local.nslots; i++) {
			struct slot *s = &daemon_local.slots[i];

			if (s->used && s->type == HANDLER_COMMAND && s->child.pid == pid) {
				cmd_on_exit(&s->child, status);
				/* Anything it left behind in its group goes too. */
				cmd_signal(&s->child, SIGKILL);
				daemon_command_done(s);
				break;
			}
		}
	}
}

/* Deadlines of running tasks: timeouts, kill escalation, builtin sleeps. */
static void
daemon_check_slots(int64_t now)
{
	for (int i = 0; i < daemon_local.nslots; i++) {
		struct slot *s = &daemon_local.slots[i];

		if (!s->used)
			continue;
		if (s->sleeping) {
			if (now >= s->done_at_ms && s->done_at_ms - s->started_ms <= s->timeout_ms) {
				daemon_complete(&s->task, NULL, now - s->started_ms);
				daemon_slot_free(s);
			} else if (now >= s->deadline_ms) {
				char why[64];

				snprintf(why, sizeof why, "timed out after %lld ms", (long long) s->timeout_ms);
				daemon_slot_failed(s, why);
				daemon_slot_free(s);
			}
			continue;
		}
		if (s->type != HANDLER_COMMAND)
			continue;
		if (!s->timed_out && !s->shutdown_stopped && now >= s->deadline_ms) {
			log_warn("task=%lld kind=%s attempt=%d timed out after %lld ms, stopping it", s->task.id,
			         s->task.kind, s->task.attempt, (long long) s->timeout_ms);
			s->timed_out = true;
			cmd_signal(&s->child, SIGTERM);
			s->kill_at_ms = now + DAEMON_KILL_GRACE_MS;
		} else if (s->kill_at_ms > 0 && now >= s->kill_at_ms) {
			cmd_signal(&s->child, SIGKILL);
			s->kill_at_ms = 0;
		}
	}
}

/*
 * Another instance reaped this task (our renewals stopped reaching the
 * database for longer than a lease): it may already run elsewhere, so stop
 * ours rather than run it twice at once. No outcome is written.
 */
static void
daemon_lease_lost(struct slot *s)
{
	log_warn("task=%lld kind=%s attempt=%d lease lost while its handler ran; stopping it",
	         s->task.id, s->task.kind, s->task.attempt);
	s->lease_lost = true;
	if (s->type == HANDLER_COMMAND) {
		cmd_signal(&s->child, SIGTERM);
		s->kill_at_ms = daemon_now() + DAEMON_KILL_GRACE_MS;
	} else if (s->type == HANDLER_SQL) {
		sql_cancel(&s->sql);
	} else {
		daemon_slot_free(s);
	}
}

/* Renews the leases of running tasks and reaps others' expired ones. */
static void
daemon_lease_tick(void)
{
	const struct config *cfg = daemon_local.cfg;
	struct queue_claimer who = {daemon_local.instance, cfg->lease_ms};
	struct db_error err;
	long long ids[daemon_local.nslots + 1];
	int attempts[daemon_local.nslots + 1];
	bool kept[daemon_local.nslots + 1];
	const char *kinds[cfg->nhandlers + 1];
	int limits[cfg->nhandlers + 1];
	struct queue_kinds known = {kinds, cfg->nhandlers};
	size_t n = 0;
	int back;

	int at[daemon_local.nslots + 1];

	for (int i = 0; i < daemon_local.nslots; i++)
		if (daemon_local.slots[i].used && !daemon_local.slots[i].lease_lost) {
			at[n] = i;
			ids[n] = daemon_local.slots[i].task.id;
			attempts[n++] = daemon_local.slots[i].task.attempt;
		}
	if (n > 0) {
		if (!queue_renew(daemon_local.work, &who, ids, attempts, n, kept, &err)) {
			daemon_statement_failed("lease renewal", &err);
			return;
		}
		for (size_t i = 0; i < n; i++)
			if (!kept[i])
				daemon_lease_lost(&daemon_local.slots[at[i]]);
	}
	for (size_t h = 0; h < cfg->nhandlers; h++) {
		kinds[h] = cfg->handlers[h].kind;
		limits[h] = cfg->handlers[h].max_attempts;
	}
	back = queue_reap(daemon_local.work, &known, limits, cfg->max_attempts, &err);
	if (back < 0)
		daemon_statement_failed("lease reaper", &err);
	else if (back > 0)
		daemon_local.sweep = true;
}

/* --- shutdown and reload ---------------------------------------------- */

static void
daemon_begin_stop(int64_t now)
{
	daemon_local.stopping = true;
	/* No more claims: producers need not wake this instance. */
	if (daemon_connected())
		daemon_wake_busy();
	daemon_local.stop_deadline_ms = now + daemon_local.cfg->shutdown_grace_ms;
	log_info("stopping: no new claims; waiting up to %lld ms for %d running handlers "
	         "(signal again to stop at once)", (long long) daemon_local.cfg->shutdown_grace_ms,
	         daemon_local.running);
}

/* Past the grace: stop every handler; their tasks go back untried. */
static void
daemon_stop_handlers(int64_t now)
{
	daemon_local.stop_handlers_sent = true;
	for (int i = 0; i < daemon_local.nslots; i++) {
		struct slot *s = &daemon_local.slots[i];

		if (!s->used)
			continue;
		if (s->type == HANDLER_COMMAND) {
			s->shutdown_stopped = true;
			cmd_signal(&s->child, SIGTERM);
			s->kill_at_ms = now + DAEMON_KILL_GRACE_MS;
		} else if (s->type == HANDLER_SQL) {
			s->shutdown_stopped = true;
			sql_cancel(&s->sql);
		} else {
			daemon_release(&s->task, "stopped by shutdown");
			daemon_slot_free(s);
		}
	}
}

/* Second signal: kill every handler now, give their tasks back, leave. */
static void
daemon_stop_now(void)
{
	log_warn("stopping at once: killing %d handlers", daemon_local.running);
	for (int i = 0; i < daemon_local.nslots; i++) {
		struct slot *s = &daemon_local.slots[i];

		if (!s->used)
			continue;
		if (s->type == HANDLER_COMMAND) {
			int status;

			cmd_signal(&s->child, SIGKILL);
			while (waitpid(s->child.pid, &status, 0) < 0 && errno == EINTR)
				;
		} else if (s->type == HANDLER_SQL) {
			/* Closing the connection mid-transaction rolls it back. */
			sql_cancel(&s->sql);
		}
		daemon_release(&s->task, "stopped at once by a second signal");
		daemon_slot_free(s);
	}
	daemon_flush_outcomes();
}

static bool
daemon_str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static bool
daemon_queues_differ(const struct config *a, const struct config *b)
{
	if (a->nqueues != b->nqueues)
		return true;
	for (size_t i = 0; i < a->nqueues; i++)
		if (strcmp(a->queues[i], b->queues[i]) != 0)
			return true;
	return false;
}

static void
daemon_grow_slots(int want)
{
	if (want <= daemon_local.nslots)
		return;
	struct slot *n = realloc(daemon_local.slots, (size_t) want * sizeof *n);

	if (n == NULL)
		abort();
	memset(n + daemon_local.nslots, 0, (size_t) (want - daemon_local.nslots) * sizeof *n);
	daemon_local.slots = n;
	daemon_local.nslots = want;
	/* A running SQL handler borrows its slot's task: point it at the move. */
	for (int i = 0; i < daemon_local.nslots; i++)
		if (n[i].used && n[i].type == HANDLER_SQL)
			n[i].sql.task = &n[i].task;
}

/* SIGHUP: read the file again; a bad new config is logged and the old one
 * kept. Running tasks keep the settings they started with. */
static void
daemon_reload(void)
{
	char err[1024];
	struct config *fresh = config_load(daemon_local.cfg->path, err, sizeof err);
	struct config *old = daemon_local.cfg;
	bool reconnect;

	if (fresh == NULL) {
		log_error("reload failed, keeping the running config: %s", err);
		return;
	}
	if (daemon_str_differs(fresh->instance_name, old->instance_name))
		log_warn("instance_name changes only on restart: tasks in flight are claimed under "
		         "the current name");
	/* The database cannot change under tasks in flight: their fences
	 * (id, locked_by, attempt) could match another database's rows. */
	if (daemon_str_differs(fresh->database, old->database)) {
		log_warn("database changes only on restart; keeping the current one");
		free(fresh->database);
		fresh->database = old->database != NULL ? daemon_strdup(old->database) : NULL;
	}
	reconnect = fresh->notify != old->notify;
	/* A registration names the queues served: re-register from scratch
	 * (at the next short claim) when they change, or leave when notify
	 * goes off. */
	if (daemon_connected() && (reconnect || daemon_queues_differ(fresh, old)))
		daemon_wake_busy();
	daemon_local.cfg = fresh;
	config_free(old);
	log_setup(fresh->log_level, fresh->log_format);
	daemon_grow_slots(fresh->concurrency);
	log_info("config reloaded from %s", fresh->path);
	if (reconnect && daemon_connected()) {
		daemon_disconnect("notify setting changed");
		daemon_local.reconnect_at_ms = daemon_now();
	}
	daemon_local.sweep = true;
}

/* --- the loop --------------------------------------------------------- */

/* Milliseconds poll() may sleep: until the nearest thing that is due. */
static int
daemon_poll_timeout(int64_t now)
{
	int64_t due = now + 60000;

	if (daemon_connected()) {
		if (daemon_local.sweep && !daemon_local.stopping)
			return 0;
		if (outbox_count() > 0)
			due = daemon_min(due, outbox_next_try_ms());
		if (!daemon_local.stopping && daemon_local.running < daemon_local.cfg->concurrency)
			due = daemon_min(due, daemon_local.next_claim_ms);
		due = daemon_min(due, daemon_local.next_lease_ms);
	} else {
		due = daemon_min(due, daemon_local.reconnect_at_ms);
	}
	if (daemon_local.stopping && !daemon_local.stop_handlers_sent)
		due = daemon_min(due, daemon_local.stop_deadline_ms);
	for (int i = 0; i < daemon_local.nslots; i++) {
		const struct slot *s = &daemon_local.slots[i];

		if (!s->used)
			continue;
		if (s->sleeping)
			due = daemon_min(due, daemon_min(s->done_at_ms, s->deadline_ms));
		else if (s->type == HANDLER_COMMAND && !s->timed_out && !s->shutdown_stopped)
			due = daemon_min(due, s->deadline_ms);
		if (s->kill_at_ms > 0)
			due = daemon_min(due, s->kill_at_ms);
	}
	if (due <= now)
		return 0;
	return (int) daemon_min(due - now, INT_MAX);
}

static void
daemon_instance_name(void)
{
	char host[200];

	if (daemon_local.cfg->instance_name != NULL) {
		snprintf(daemon_local.instance, sizeof daemon_local.instance, "%s", daemon_local.cfg->instance_name);
		return;
	}
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(daemon_local.instance, sizeof daemon_local.instance, "%s:%d", host, (int) getpid());
}

int
daemon_run(struct config *cfg, const char *database)
{
	int pfd_cap;
	struct pollfd *pfds;

	daemon_local.cfg = cfg;
	daemon_local.database = database;
	log_setup(cfg->log_level, cfg->log_format);
	daemon_instance_name();
	snprintf(daemon_local.sleeper, sizeof daemon_local.sleeper, "%s#%d", daemon_local.instance,
	         (int) getpid());
	daemon_local.signal_fd = signals_setup();
	if (daemon_local.signal_fd < 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		return EXIT_FAILURE;
	}
	daemon_grow_slots(cfg->concurrency);
	daemon_local.reconnect_delay_ms = DAEMON_RECONNECT_MIN_MS;
	daemon_local.contended_ms = DAEMON_CONTENDED_WAIT_MS;
	srandom((unsigned) (getpid() ^ daemon_now()));
	log_info("instance=%s queues=%zu concurrency=%d starting", daemon_local.instance, cfg->nqueues,
	         cfg->concurrency);
	(void) daemon_connect();

	for (;;) {
		int64_t now = daemon_now();
		struct signals_seen sig;
		const struct outcome *ignored;
		int npfd = 0, listen_at = -1;
		bool claim_now;

		pfd_cap = 2 + 3 * daemon_local.nslots;
		pfds = calloc((size_t) pfd_cap, sizeof *pfds);
		if (pfds == NULL)
			abort();
		pfds[npfd++] = (struct pollfd){.fd = daemon_local.signal_fd, .events = POLLIN};
		if (daemon_local.listen != NULL) {
			listen_at = npfd;
			pfds[npfd++] = (struct pollfd){.fd = PQsocket(daemon_local.listen), .events = POLLIN};
		}
		for (int i = 0; i < daemon_local.nslots; i++) {
			struct slot *s = &daemon_local.slots[i];

			if (s->used && s->type == HANDLER_COMMAND)
				npfd += cmd_pollfds(&s->child, pfds + npfd);
			else if (s->used && s->type == HANDLER_SQL && sql_socket(&s->sql) >= 0)
				pfds[npfd++] = (struct pollfd){.fd = sql_socket(&s->sql), .events = POLLIN};
		}

		if (poll(pfds, (nfds_t) npfd, daemon_poll_timeout(now)) < 0 && errno != EINTR) {
			log_error("poll failed: %s", strerror(errno));
			free(pfds);
			return EXIT_FAILURE;
		}
		now = daemon_now();

		sig = signals_take();
		if (sig.stop > 0 && (daemon_local.stopping || sig.stop > 1)) {
			free(pfds);
			daemon_stop_now();
			break;
		}
		if (sig.stop > 0)
			daemon_begin_stop(now);
		if (sig.reload > 0)
			daemon_reload();

		if (listen_at >= 0 && daemon_local.listen != NULL && pfds[listen_at].revents != 0)
			daemon_drain_notifications();
		for (int p = (listen_at >= 0 ? listen_at + 1 : 1); p < npfd; p++) {
			if (pfds[p].revents == 0)
				continue;
			for (int i = 0; i < daemon_local.nslots; i++) {
				struct slot *s = &daemon_local.slots[i];

				if (s->used && s->type == HANDLER_COMMAND
				    && (pfds[p].fd == s->child.in_fd || pfds[p].fd == s->child.out_fd
				        || pfds[p].fd == s->child.err_fd)) {
					cmd_on_ready(&s->child, pfds[p].fd, pfds[p].revents);
					break;
				}
				if (s->used && s->type == HANDLER_SQL && pfds[p].fd == sql_socket(&s->sql)) {
					sql_on_ready(&s->sql);
					if (s->sql.state == SQL_DONE)
						daemon_sql_done(s);
					break;
				}
			}
		}
		free(pfds);
		daemon_reap_children();
		daemon_check_slots(now);
		if (daemon_local.stopping && !daemon_local.stop_handlers_sent && now >= daemon_local.stop_deadline_ms
		    && daemon_local.running > 0) {
			log_warn("shutdown grace over: stopping %d handlers", daemon_local.running);
			daemon_stop_handlers(now);
		}

		if (!daemon_connected() && now >= daemon_local.reconnect_at_ms)
			(void) daemon_connect();
		/* Successes wait for the claim below when there is one: it
		 * records them in the same commit (sql/complete_and_claim.sql). */
		claim_now = daemon_connected() && !daemon_local.stopping
		            && daemon_local.running < daemon_local.cfg->concurrency
		            && (daemon_local.sweep || now >= daemon_local.next_claim_ms);
		if (!claim_now || outbox_completes(&ignored) == 0)
			daemon_flush_outcomes();
		if (daemon_connected() && now >= daemon_local.next_lease_ms) {
			int64_t every = daemon_min(daemon_local.cfg->lease_ms / 3, daemon_local.cfg->poll_interval_ms);

			daemon_local.next_lease_ms = now + every;
			daemon_lease_tick();
		}
		if (claim_now && daemon_connected())
			daemon_claim();
		daemon_flush_outcomes();

		if (daemon_local.stopping && daemon_local.running == 0) {
			if (outbox_count() == 0)
				break;
			/* Outcomes still to write: keep reconnecting a while. */
			if (now >= daemon_local.stop_deadline_ms + DAEMON_OUTCOME_WAIT_MS) {
				log_warn("%zu outcomes could not be written; their leases will expire and "
				         "the tasks run again", outbox_count());
				break;
			}
		}
	}
	log_info("stopped");
	outbox_free();
	free(daemon_local.slots);
	if (daemon_local.listen != NULL)
		PQfinish(daemon_local.listen);
	if (daemon_local.work != NULL)
		PQfinish(daemon_local.work);
	config_free(daemon_local.cfg);
	return EXIT_SUCCESS;
}
