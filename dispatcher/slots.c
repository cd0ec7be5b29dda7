/* Tasks in flight and their handlers; see slots.h. */
#include "slots.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "clock.h"
#include "handler_cmd.h"
#include "handler_sql.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "outbox.h"
#include "policy.h"

#define SLOTS_KILL_GRACE_MS 2000     /* SIGTERM, then SIGKILL this much later */
#define SLOTS_SLEEP_DEFAULT_MS 1000  /* builtin sleep without "ms" in the payload */

/* One task in flight, from its claim until its outcome is queued. */
struct slot {
	bool used;
	struct task task;
	enum handler_type type;
	enum handler_builtin builtin;
	struct policy policy;        /* attempts, backoff, timeout for this task */
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
	struct slot *slots;
	int nslots;
	int free_hint;               /* a slot likely to be free */
	int running;
	bool freed;                  /* a slot was freed since slots_take_freed() */
	const char *instance;        /* locked_by, borrowed */
} slots_local;

void
slots_setup(const char *instance)
{
	slots_local.instance = instance;
	cmd_setup();
}

int
slots_running(void)
{
	return slots_local.running;
}

int
slots_capacity(void)
{
	return slots_local.nslots;
}

bool
slots_take_freed(void)
{
	bool freed = slots_local.freed;

	slots_local.freed = false;
	return freed;
}

/*
 * A failed attempt: retried after a backoff while attempts remain, else
 * failed for good (policy_after_failure()). error must be valid text; it
 * is copied.
 */
static void
slots_failed(struct slot *s, const char *error)
{
	const struct task *t = &s->task;
	struct outcome o = {.id = t->id, .token = t->token, .attempt = t->attempt, .error = mem_strdup(error)};

	if (policy_after_failure(&s->policy, t->attempt, &o.delay_ms) == POLICY_FAIL) {
		o.type = OUTCOME_FAIL;
		log_error("task=%lld kind=%s attempt=%d/%d failed for good: %s", t->id, t->kind,
		          t->attempt, s->policy.max_attempts, error);
	} else {
		o.type = OUTCOME_RETRY;
		log_warn("task=%lld kind=%s attempt=%d/%d retry_in_ms=%lld failed: %s", t->id, t->kind,
		         t->attempt, s->policy.max_attempts, (long long) o.delay_ms, error);
	}
	outbox_add(o);
}

static void
slots_complete(const struct task *t, char *result, int64_t ms)
{
	struct outcome o = {.id = t->id, .token = t->token, .attempt = t->attempt, .type = OUTCOME_COMPLETE,
	                    .result = result};

	log_info("task=%lld kind=%s attempt=%d ms=%lld complete", t->id, t->kind, t->attempt,
	         (long long) ms);
	outbox_add(o);
}

static void
slots_release(const struct task *t, const char *why)
{
	struct outcome o = {.id = t->id, .token = t->token, .attempt = t->attempt, .type = OUTCOME_RELEASE};

	log_info("task=%lld kind=%s attempt=%d returned to pending untried: %s", t->id, t->kind,
	         t->attempt, why);
	outbox_add(o);
}

static int
slots_running_of(const char *kind)
{
	int n = 0;

	for (int i = 0; i < slots_local.nslots; i++)
		if (slots_local.slots[i].used && strcmp(slots_local.slots[i].task.kind, kind) == 0)
			n++;
	return n;
}

size_t
slots_kind_rooms(const struct config *cfg, const char **names, int *rooms, size_t cap)
{
	size_t n = 0;

	for (size_t h = 0; h < cfg->nhandlers && n < cap; h++) {
		const struct handler_config *hc = &cfg->handlers[h];
		int running;

		if (hc->concurrency <= 0)
			continue;
		running = slots_running_of(hc->kind);
		names[n] = hc->kind;
		rooms[n++] = running < hc->concurrency ? hc->concurrency - running : 0;
	}
	return n;
}

/*
 * "ms" from a builtin sleep's payload, e.g. {"ms": 250}, clamped to
 * [0, limit]. A test and demo aid: it looks for the key, it does not parse
 * JSON.
 */
static int64_t
slots_sleep_ms(const char *payload, int64_t limit)
{
	const char *p = strstr(payload, "\"ms\"");
	long long ms;

	if (p == NULL)
		return SLOTS_SLEEP_DEFAULT_MS < limit ? SLOTS_SLEEP_DEFAULT_MS : limit;
	p += 4;
	while (*p == ' ' || *p == ':')
		p++;
	ms = strtoll(p, NULL, 10);
	return ms < 0 ? 0 : ms > limit ? limit : ms;
}

static void
slots_free_one(struct slot *s)
{
	if (s->type == HANDLER_COMMAND)
		cmd_free(&s->child);
	else if (s->type == HANDLER_SQL)
		sql_finish(&s->sql);
	task_clear(&s->task);
	memset(s, 0, sizeof *s);
	slots_local.free_hint = (int) (s - slots_local.slots);
	slots_local.running--;
	/* A free slot is room for the next task: claim at once. */
	slots_local.freed = true;
}

/*
 * No connection could be had for a SQL handler: it never ran, so the task
 * goes back to pending with its attempt given back, with libpq's reason in
 * last_error and after the handler module's connect backoff. Counting the
 * attempt would fail tasks for good while connections cannot be had (the
 * role's connection limit, say) without ever running them.
 */
static void
slots_sql_no_conn(struct slot *s)
{
	struct outcome o = {.id = s->task.id, .token = s->task.token, .attempt = s->task.attempt,
	                    .type = OUTCOME_RELEASE, .delay_ms = s->sql.retry_in_ms};
	struct json_buf msg = {0};
	char text[1200];

	json_buf_printf(&msg, "no database connection for the SQL handler: ");
	db_error_text(&s->sql.err, text, sizeof text);
	json_append_text(&msg, text, strlen(text));
	json_buf_printf(&msg, "; the attempt was not counted");
	log_warn("task=%lld kind=%s attempt=%d retry_in_ms=%lld returned to pending untried: %s", s->task.id,
	         s->task.kind, s->task.attempt, (long long) o.delay_ms, msg.data);
	o.error = mem_strdup(msg.data);
	json_buf_free(&msg);
	outbox_add(o);
}

/* A SQL handler's transaction has ended: log or queue what it means. */
static void
slots_sql_done(struct slot *s)
{
	const struct sql_run *r = &s->sql;
	int64_t ms = clock_now_ms() - s->started_ms;
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
		slots_release(&s->task, "stopped by shutdown");
	else if (r->result == SQL_NO_CONN)
		slots_sql_no_conn(s);
	else {
		/* Failed, or the connection died: nothing of it committed that
		 * we know of, and if the COMMIT did land, the fence keeps this
		 * failure from overwriting it. */
		struct json_buf clean = {0};

		if (r->result == SQL_CONN_LOST)
			json_buf_printf(&clean, "database connection lost while the SQL handler ran: ");
		db_error_text(&r->err, text, sizeof text);
		json_append_text(&clean, text, strlen(text));
		slots_failed(s, clean.data);
		json_buf_free(&clean);
	}
	slots_free_one(s);
}

/* Starts a SQL handler on a connection of its own (handler_sql.c); the
 * loop then polls it (slots_pollfds) and minds its connect deadline
 * (slots_next_due, slots_check). */
static void
slots_start_sql(struct slot *s, const char *conninfo, const char *sql)
{
	char appname[64];

	snprintf(appname, sizeof appname, "pgdispatch %.52s", slots_local.instance);
	sql_start(&s->sql, conninfo, appname, slots_local.instance, &s->task, sql, s->policy.timeout_ms,
	          s->started_ms);
	if (s->sql.state == SQL_DONE)
		slots_sql_done(s);
}

/* Moves a SQL handler on (its socket was ready, or its deadline came)
 * and queues its outcome once it has ended. */
static void
slots_sql_step(struct slot *s, short revents, int64_t now)
{
	sql_on_ready(&s->sql, revents, now);
	if (s->sql.state == SQL_DONE)
		slots_sql_done(s);
}

/* Stops a SQL handler (lease lost, shutdown). One still connecting ends
 * at once; a running statement is cancelled and ends when the server
 * says so. */
static void
slots_sql_stop(struct slot *s)
{
	sql_cancel(&s->sql);
	if (s->sql.state == SQL_DONE)
		slots_sql_done(s);
}

/* Takes a freshly claimed task: finds its handler and starts it. */
void
slots_start(const struct config *cfg, const char *conninfo, struct task *t)
{
	const struct handler_config *h = config_handler(cfg, t->kind);
	struct slot *s = NULL;
	char why[512];

	/* Start at the last freed slot: with a thousand slots, searching from
	 * the first for every task was a measurable share of a batch. */
	for (int k = 0; k < slots_local.nslots && s == NULL; k++) {
		int i = (slots_local.free_hint + k) % slots_local.nslots;

		if (!slots_local.slots[i].used)
			s = &slots_local.slots[i];
	}
	if (s == NULL || (h != NULL && h->concurrency > 0 && slots_running_of(t->kind) >= h->concurrency)) {
		/* Claimed beyond a limit (a batch can hold several of one kind). */
		slots_release(t, "handler concurrency limit reached");
		task_clear(t);
		return;
	}
	memset(s, 0, sizeof *s);
	s->used = true;
	s->task = *t;
	slots_local.running++;
	s->started_ms = clock_now_ms();
	s->policy = policy_for(cfg, t->kind, t->max_attempts);
	s->deadline_ms = s->started_ms + s->policy.timeout_ms;
	s->type = h != NULL ? h->type : HANDLER_BUILTIN;

	if (t->attempt > s->policy.max_attempts) {
		/* Claimed with its attempts already used (an instance with another
		 * limit returned it): record, do not run. */
		snprintf(why, sizeof why, "no attempts left (attempt %d of %d)", t->attempt, s->policy.max_attempts);
		slots_failed(s, why);
		slots_free_one(s);
		return;
	}
	log_info("task=%lld kind=%s attempt=%d/%d queue=%s started", t->id, t->kind, t->attempt,
	         s->policy.max_attempts, t->queue);
	if (h == NULL) {
		/* A failed attempt, not a lost task: a later deployment with a
		 * handler may still pick it up before its attempts run out. */
		struct json_buf msg = {0};

		json_buf_printf(&msg, "no handler for kind ");
		json_append_text(&msg, t->kind, strlen(t->kind));
		slots_failed(s, msg.data);
		json_buf_free(&msg);
		slots_free_one(s);
		return;
	}
	switch (h->type) {
	case HANDLER_BUILTIN:
		s->builtin = h->builtin;
		if (h->builtin == BUILTIN_NOOP) {
			slots_complete(&s->task, NULL, 0);
			slots_free_one(s);
		} else if (h->builtin == BUILTIN_FAIL) {
			slots_failed(s, "builtin fail handler");
			slots_free_one(s);
		} else {
			s->sleeping = true;
			s->done_at_ms = s->started_ms + slots_sleep_ms(t->payload, s->policy.timeout_ms + 1);
		}
		return;
	case HANDLER_SQL:
		slots_start_sql(s, conninfo, h->sql);
		return;
	case HANDLER_COMMAND:
		if (!cmd_start(&s->child, h->argv, h->env_passthrough != NULL ? h->env_passthrough : cfg->env_passthrough,
		               &s->task, s->policy.max_attempts, h->max_output, why, sizeof why)) {
			slots_failed(s, why);
			s->type = HANDLER_BUILTIN;  /* nothing to free in child */
			slots_free_one(s);
		}
		return;
	}
}

/* "SIGSEGV" for 11: the name people search for, then the description. */
static void
slots_signal_text(struct json_buf *msg, int sig)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev != NULL)
		json_buf_printf(msg, "killed by SIG%s (signal %d, %s)", abbrev, sig, strsignal(sig));
	else
		json_buf_printf(msg, "killed by signal %d (%s)", sig, strsignal(sig));
}

/*
 * last_error for a command that did not exit 0: what ended it, then what
 * else went wrong with its pipes, then the tail of its stderr. Every part
 * is bounded, whatever the handler wrote.
 */
static void
slots_command_error(struct slot *s, struct json_buf *msg)
{
	const struct cmd_child *c = &s->child;
	int st = c->status;

	if (s->timed_out) {
		json_buf_printf(msg, "timed out after %lld ms", (long long) s->policy.timeout_ms);
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			json_buf_printf(msg, "; it ignored SIGTERM and was killed with SIGKILL %d ms later",
			                SLOTS_KILL_GRACE_MS);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 75) {
		json_buf_printf(msg, "exit 75 (handler asked for a retry)");
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && c->err_total == 0) {
		/* Where posix_spawn cannot report a failed exec (some libcs, or
		 * under valgrind), the child exits 127 without a word. */
		json_buf_printf(msg, "exit 127: cannot run %s: not found or not executable", c->program);
	} else if (WIFEXITED(st)) {
		json_buf_printf(msg, "exit %d", WEXITSTATUS(st));
	} else if (WIFSIGNALED(st)) {
		slots_signal_text(msg, WTERMSIG(st));
		if (WCOREDUMP(st))
			json_buf_printf(msg, ", core dumped");
	}
	if (c->input_off < c->input.len)
		json_buf_printf(msg, "; its stdin closed after %zu of the task's %zu bytes", c->input_off,
		                c->input.len);
	if (c->out_truncated)
		json_buf_printf(msg, "; stdout truncated to max_output (%lld of %lld bytes kept)",
		                (long long) c->max_output, (long long) c->out_total);
	if (c->err_len > 0) {
		size_t from = 0;

		if (c->err_truncated) {
			/* The buffer holds at least the last CMD_STDERR_TAIL bytes. */
			from = c->err_len > CMD_STDERR_TAIL ? c->err_len - CMD_STDERR_TAIL : 0;
			json_buf_printf(msg, ": stderr, last %zu of %lld bytes: ", c->err_len - from,
			                (long long) c->err_total);
		} else {
			json_buf_printf(msg, ": stderr: ");
		}
		json_append_text(msg, c->err_tail + from, c->err_len - from);
		while (msg->len > 0 && (msg->data[msg->len - 1] == '\n' || msg->data[msg->len - 1] == ' '))
			msg->data[--msg->len] = '\0';
	}
}

/* A command handler's process has exited: decide and queue the outcome. */
static void
slots_command_done(struct slot *s)
{
	int st = s->child.status;
	int64_t ms = clock_now_ms() - s->started_ms;

	if (s->lease_lost) {
		log_warn("task=%lld kind=%s attempt=%d handler ended after its lease was lost; "
		         "outcome not recorded", s->task.id, s->task.kind, s->task.attempt);
	} else if (!s->timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		/* Success counts even when shutdown asked the handler to stop:
		 * its work is done and must not run again. */
		struct json_buf *out = &s->child.out;
		char *result = NULL;

		if (s->child.out_truncated)
			log_warn("task=%lld kind=%s stdout truncated to %lld bytes (of %lld)", s->task.id,
			         s->task.kind, (long long) s->child.max_output, (long long) s->child.out_total);
		if (out->len > 0 && !s->child.out_truncated && json_valid(out->data, out->len)) {
			result = mem_strdup(out->data);
		} else if (out->len > 0) {
			struct json_buf quoted = {0};

			json_append_string(&quoted, out->data, out->len);
			result = mem_strdup(quoted.data);
			json_buf_free(&quoted);
		}
		slots_complete(&s->task, result, ms);
	} else if (s->shutdown_stopped) {
		slots_release(&s->task, "stopped by shutdown");
	} else {
		struct json_buf msg = {0};

		slots_command_error(s, &msg);
		slots_failed(s, msg.data);
		json_buf_free(&msg);
	}
	slots_free_one(s);
}

void
slots_reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		int i;

		if (pid <= 0)
			return;
		for (i = 0; i < slots_local.nslots; i++) {
			struct slot *s = &slots_local.slots[i];

			if (s->used && s->type == HANDLER_COMMAND && s->child.pid == pid) {
				cmd_on_exit(&s->child, status);
				/* Anything it left behind in its group goes too. */
				cmd_signal(&s->child, SIGKILL);
				slots_command_done(s);
				break;
			}
		}
		if (i == slots_local.nslots)
			/* A handler's orphan, reparented to us (cmd_setup()). */
			log_debug("pid=%d reaped a process a handler left behind", (int) pid);
	}
}

/* Deadlines of running tasks: timeouts, kill escalation, builtin sleeps. */
void
slots_check(int64_t now)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		struct slot *s = &slots_local.slots[i];

		if (!s->used)
			continue;
		if (s->sleeping) {
			if (now >= s->done_at_ms && s->done_at_ms - s->started_ms <= s->policy.timeout_ms) {
				slots_complete(&s->task, NULL, now - s->started_ms);
				slots_free_one(s);
			} else if (now >= s->deadline_ms) {
				char why[64];

				snprintf(why, sizeof why, "timed out after %lld ms", (long long) s->policy.timeout_ms);
				slots_failed(s, why);
				slots_free_one(s);
			}
			continue;
		}
		if (s->type == HANDLER_SQL) {
			/* A connect's deadline is ours to keep; a statement's is the
			 * server's (statement_timeout). */
			if (now >= sql_deadline(&s->sql))
				slots_sql_step(s, 0, now);
			continue;
		}
		if (s->type != HANDLER_COMMAND)
			continue;
		if (!s->timed_out && !s->shutdown_stopped && now >= s->deadline_ms) {
			log_warn("task=%lld kind=%s attempt=%d timed out after %lld ms, stopping it", s->task.id,
			         s->task.kind, s->task.attempt, (long long) s->policy.timeout_ms);
			s->timed_out = true;
			cmd_signal(&s->child, SIGTERM);
			s->kill_at_ms = now + SLOTS_KILL_GRACE_MS;
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
slots_lease_lost_one(struct slot *s)
{
	log_warn("task=%lld kind=%s attempt=%d lease lost while its handler ran; stopping it",
	         s->task.id, s->task.kind, s->task.attempt);
	s->lease_lost = true;
	if (s->type == HANDLER_COMMAND) {
		cmd_signal(&s->child, SIGTERM);
		s->kill_at_ms = clock_now_ms() + SLOTS_KILL_GRACE_MS;
	} else if (s->type == HANDLER_SQL) {
		slots_sql_stop(s);
	} else {
		slots_free_one(s);
	}
}

/* Past the grace: stop every handler; their tasks go back untried. */
void
slots_stop_all(int64_t now)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		struct slot *s = &slots_local.slots[i];

		if (!s->used)
			continue;
		if (s->type == HANDLER_COMMAND) {
			s->shutdown_stopped = true;
			cmd_signal(&s->child, SIGTERM);
			s->kill_at_ms = now + SLOTS_KILL_GRACE_MS;
		} else if (s->type == HANDLER_SQL) {
			s->shutdown_stopped = true;
			slots_sql_stop(s);
		} else {
			slots_release(&s->task, "stopped by shutdown");
			slots_free_one(s);
		}
	}
}

void
slots_grow(int want)
{
	if (want <= slots_local.nslots)
		return;
	struct slot *n = realloc(slots_local.slots, (size_t) want * sizeof *n);

	if (n == NULL)
		abort();
	memset(n + slots_local.nslots, 0, (size_t) (want - slots_local.nslots) * sizeof *n);
	slots_local.slots = n;
	slots_local.nslots = want;
	/* A running SQL handler borrows its slot's task: point it at the move. */
	for (int i = 0; i < slots_local.nslots; i++)
		if (n[i].used && n[i].type == HANDLER_SQL)
			n[i].sql.task = &n[i].task;
}

int
slots_pollfds(struct pollfd *pfds)
{
	int n = 0;

	for (int i = 0; i < slots_local.nslots; i++) {
		struct slot *s = &slots_local.slots[i];

		if (s->used && s->type == HANDLER_COMMAND)
			n += cmd_pollfds(&s->child, pfds + n);
		else if (s->used && s->type == HANDLER_SQL && sql_socket(&s->sql) >= 0)
			pfds[n++] = (struct pollfd){.fd = sql_socket(&s->sql), .events = sql_events(&s->sql)};
	}
	return n;
}

void
slots_on_ready(int fd, short revents)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		struct slot *s = &slots_local.slots[i];

		if (s->used && s->type == HANDLER_COMMAND
		    && (fd == s->child.in_fd || fd == s->child.out_fd || fd == s->child.err_fd)) {
			cmd_on_ready(&s->child, fd, revents);
			return;
		}
		if (s->used && s->type == HANDLER_SQL && fd == sql_socket(&s->sql)) {
			slots_sql_step(s, revents, clock_now_ms());
			return;
		}
	}
}

int64_t
slots_next_due(int64_t due)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		const struct slot *s = &slots_local.slots[i];

		if (!s->used)
			continue;
		if (s->sleeping && s->done_at_ms < due)
			due = s->done_at_ms;
		if (s->sleeping && s->deadline_ms < due)
			due = s->deadline_ms;
		if (!s->sleeping && s->type == HANDLER_COMMAND && !s->timed_out && !s->shutdown_stopped
		    && s->deadline_ms < due)
			due = s->deadline_ms;
		if (s->kill_at_ms > 0 && s->kill_at_ms < due)
			due = s->kill_at_ms;
		if (s->type == HANDLER_SQL && sql_deadline(&s->sql) < due)
			due = sql_deadline(&s->sql);
	}
	return due;
}

size_t
slots_leased(long long *ids, long long *tokens, size_t cap)
{
	size_t n = 0;

	for (int i = 0; i < slots_local.nslots && n < cap; i++)
		if (slots_local.slots[i].used && !slots_local.slots[i].lease_lost) {
			ids[n] = slots_local.slots[i].task.id;
			tokens[n++] = slots_local.slots[i].task.token;
		}
	return n;
}

bool
slots_lease_lost(long long id, long long token)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		struct slot *s = &slots_local.slots[i];

		if (s->used && !s->lease_lost && s->task.id == id && s->task.token == token) {
			slots_lease_lost_one(s);
			return true;
		}
	}
	return false;
}

void
slots_kill_all(void)
{
	for (int i = 0; i < slots_local.nslots; i++) {
		struct slot *s = &slots_local.slots[i];

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
		slots_release(&s->task, "stopped at once by a second signal");
		slots_free_one(s);
	}
}

void
slots_free(void)
{
	free(slots_local.slots);
	memset(&slots_local, 0, sizeof slots_local);
}
