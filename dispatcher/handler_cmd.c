/* Command handler child processes: spawn, feed, capture; see handler_cmd.h. */
#include "handler_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "slots.h"

extern char **environ;

/* One task's command, as the handler type keeps it. */
struct cmd_task {
	struct cmd_child child;
	struct handler_task *ht;
	bool timed_out;
	bool stopping;              /* stop() sent SIGTERM: no timeout of its own now */
	int64_t kill_at_ms;         /* SIGKILL after a SIGTERM; 0: none due */
	struct cmd_task *next, **prev;
};

static struct {
	struct cmd_task *running;   /* a list: deadlines are looked at once a turn */
} cmd_local;

/* Closes one of our pipe ends; watched fds are unwatched first, so a
 * later fd of the same number is nobody's stale watch. */
static void
cmd_close(int *fd)
{
	if (*fd >= 0) {
		handler_unwatch(*fd);
		close(*fd);
		*fd = -1;
	}
}

/*
 * The child's environment: the variables of ours that passthrough names,
 * plus the task variables, and nothing else. Inheriting the daemon's whole
 * environment would hand every handler PGPASSWORD, PGSERVICEFILE and
 * whatever secrets the service manager gave the daemon; a handler gets
 * only what the config names. The returned array borrows environ's strings
 * and vars; the caller frees the array.
 */
static char **
cmd_build_env(const struct task *t, char *const *passthrough, char vars[3][96])
{
	size_t n = 0, k = 0;
	char **env;

	while (passthrough != NULL && passthrough[n] != NULL)
		n++;
	env = calloc(n + 4, sizeof *env);
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(passthrough[i]);

		/* The config refuses these names; the task's own values win. */
		if (strncmp(passthrough[i], "PGDISPATCH_TASK_", 16) == 0)
			continue;
		for (char **e = environ; *e != NULL; e++)
			if (strncmp(*e, passthrough[i], len) == 0 && (*e)[len] == '=') {
				env[k++] = *e;
				break;
			}
	}
	if (t->key != NULL)
		snprintf(vars[0], 96, "PGDISPATCH_TASK_ID=%.70s", t->key);
	else
		snprintf(vars[0], 96, "PGDISPATCH_TASK_ID=%lld", t->id);
	snprintf(vars[1], 96, "PGDISPATCH_TASK_KIND=%.70s", t->kind);
	snprintf(vars[2], 96, "PGDISPATCH_TASK_ATTEMPT=%d", t->attempt);
	env[k++] = vars[0];
	env[k++] = vars[1];
	env[k++] = vars[2];
	env[k] = NULL;
	return env;
}

/*
 * posix_spawnp() rather than fork(): glibc runs it as a vfork-style clone
 * that does not copy the daemon's page tables, which measured about 35%
 * faster per handler on our test machine (tests/bench). The child gets its
 * own process group, default signal handling, an empty signal mask and the
 * pipes as fds 0-2, and no other fd: ours are close-on-exec, and the
 * child also closes everything from 3 up before the exec, because a
 * library may hold fds we cannot mark (libcurl's resolver threads create
 * socket pairs of their own, not close-on-exec before curl 8.17). No shell
 * is involved at any point. An exec failure comes back as the return value.
 */
static bool
cmd_spawn(struct cmd_child *c, char *const *argv, char **env, const int in[2], const int out[2],
          const int err[2], char *why, size_t whylen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t defaults, none;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
	posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
	posix_spawnattr_init(&attr);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGHUP);
	sigaddset(&defaults, SIGCHLD);
	sigaddset(&defaults, SIGPIPE);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF
	                                | POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawnp(&c->pid, argv[0], &fa, &attr, argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		/* execvp() would hand a script without "#!" to /bin/sh;
		 * posix_spawnp() does not, and we do not guess. */
		snprintf(why, whylen, "cannot run %s: %s%s", argv[0], strerror(rc),
		         rc == ENOEXEC ? " (a script needs a #! line)" : "");
		c->pid = 0;
		return false;
	}
	return true;
}

/*
 * A handler's descendant that outlives it (a daemonized helper, a
 * grandchild the handler did not wait for) is reparented to the nearest
 * subreaper, else to init. In a container init may be a process that never
 * reaps, and each such orphan would stay a zombie. As the subreaper, the
 * daemon reaps them in its loop (handler_reap() waits for any child).
 */
void
cmd_setup(void)
{
#ifdef PR_SET_CHILD_SUBREAPER
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warn("cannot become the subreaper of handlers' orphans: %s", strerror(errno));
#endif
}

bool
cmd_start(struct cmd_child *c, char *const *argv, char *const *passthrough, const struct task *t,
          int max_attempts, int64_t max_output, char *why, size_t whylen)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	char vars[3][96];
	char **env;

	memset(c, 0, sizeof *c);
	c->in_fd = c->out_fd = c->err_fd = -1;
	c->program = strdup(argv[0]);
	if (c->program == NULL)
		abort();
	c->max_output = max_output;
	task_input_json(&c->input, t, max_attempts);

	env = cmd_build_env(t, passthrough, vars);
	/* O_CLOEXEC everywhere: no child inherits another child's pipes or our
	 * database sockets (libpq sets FD_CLOEXEC on its own). */
	if (env == NULL || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0
	    || pipe2(err, O_CLOEXEC) != 0) {
		snprintf(why, whylen, "cannot start handler: %s", strerror(errno));
		goto fail;
	}
	if (!cmd_spawn(c, argv, env, in, out, err, why, whylen))
		goto fail;
	free(env);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	c->in_fd = in[1];
	c->out_fd = out[0];
	c->err_fd = err[0];
	fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(c->err_fd, F_SETFL, O_NONBLOCK);
	return true;

fail:
	free(env);
	for (int i = 0; i < 2; i++) {
		cmd_close(&in[i]);
		cmd_close(&out[i]);
		cmd_close(&err[i]);
	}
	json_buf_free(&c->input);
	free(c->program);
	c->program = NULL;
	c->pid = 0;
	return false;
}

/* Keeps bytes of stdout up to max_output; the rest is read and dropped so
 * the child never blocks on a full pipe. */
static void
cmd_keep_out(struct cmd_child *c, const char *buf, size_t n)
{
	size_t room = c->out.len < (size_t) c->max_output ? (size_t) c->max_output - c->out.len : 0;

	if (n > room) {
		c->out_truncated = true;
		n = room;
	}
	if (n > 0)
		json_buf_append(&c->out, buf, n);
}

/* Keeps the last CMD_STDERR_TAIL bytes (at least) of stderr. */
static void
cmd_keep_err(struct cmd_child *c, const char *buf, size_t n)
{
	if (c->err_tail == NULL) {
		c->err_tail = malloc(CMD_STDERR_TAIL * 2);
		if (c->err_tail == NULL)
			abort();
	}
	if (n >= CMD_STDERR_TAIL) {
		buf += n - CMD_STDERR_TAIL;
		n = CMD_STDERR_TAIL;
		c->err_truncated = true;
		c->err_len = 0;
	}
	if (c->err_len + n > CMD_STDERR_TAIL * 2) {
		size_t drop = c->err_len + n - CMD_STDERR_TAIL;

		memmove(c->err_tail, c->err_tail + drop, c->err_len - drop);
		c->err_len -= drop;
		c->err_truncated = true;
	}
	memcpy(c->err_tail + c->err_len, buf, n);
	c->err_len += n;
}

/* Reads what fd has now; closes it on EOF or error. Bounded per call so a
 * flood on one pipe cannot starve the loop. */
static void
cmd_read(struct cmd_child *c, int *fd, bool is_out)
{
	char buf[65536];

	for (int i = 0; i < 16 && *fd >= 0; i++) {
		ssize_t r = read(*fd, buf, sizeof buf);

		if (r > 0) {
			*(is_out ? &c->out_total : &c->err_total) += r;
			if (is_out)
				cmd_keep_out(c, buf, (size_t) r);
			else
				cmd_keep_err(c, buf, (size_t) r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		cmd_close(fd);
	}
}

static void
cmd_write_input(struct cmd_child *c)
{
	while (c->in_fd >= 0 && c->input_off < c->input.len) {
		ssize_t w = write(c->in_fd, c->input.data + c->input_off, c->input.len - c->input_off);

		if (w > 0) {
			c->input_off += (size_t) w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			return;
		} else {
			/* EPIPE: the handler closed stdin without reading. Its
			 * business; its exit status tells the outcome. */
			break;
		}
	}
	cmd_close(&c->in_fd);
}

void
cmd_on_ready(struct cmd_child *c, int fd, short revents)
{
	if (fd == c->in_fd)
		cmd_write_input(c);
	else if (fd == c->out_fd)
		cmd_read(c, &c->out_fd, true);
	else if (fd == c->err_fd)
		cmd_read(c, &c->err_fd, false);
}

void
cmd_on_exit(struct cmd_child *c, int status)
{
	c->exited = true;
	c->status = status;
	cmd_close(&c->in_fd);
	/* Whatever the handler wrote before exiting is in the pipe now. */
	cmd_read(c, &c->out_fd, true);
	cmd_read(c, &c->err_fd, false);
	cmd_close(&c->out_fd);
	cmd_close(&c->err_fd);
}

void
cmd_signal(const struct cmd_child *c, int sig)
{
	if (c->pid > 0)
		kill(-c->pid, sig);
}

void
cmd_free(struct cmd_child *c)
{
	cmd_close(&c->in_fd);
	cmd_close(&c->out_fd);
	cmd_close(&c->err_fd);
	json_buf_free(&c->input);
	json_buf_free(&c->out);
	free(c->err_tail);
	c->err_tail = NULL;
	free(c->program);
	c->program = NULL;
}

/* --- the handler type ------------------------------------------------- */

/* "SIGSEGV" for 11: the name people search for, then the description. */
static void
cmd_signal_text(struct json_buf *msg, int sig)
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
cmd_error_text(const struct cmd_task *ct, struct json_buf *msg)
{
	const struct cmd_child *c = &ct->child;
	int st = c->status;

	if (ct->timed_out) {
		json_buf_printf(msg, "timed out after %lld ms", (long long) ct->ht->policy->timeout_ms);
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			json_buf_printf(msg, "; it ignored SIGTERM and was killed with SIGKILL %d ms later",
			                CMD_KILL_GRACE_MS);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 75) {
		json_buf_printf(msg, "exit 75 (handler asked for a retry)");
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && c->err_total == 0) {
		/* Where posix_spawn cannot report a failed exec (some libcs, or
		 * under valgrind), the child exits 127 without a word. */
		json_buf_printf(msg, "exit 127: cannot run %s: not found or not executable", c->program);
	} else if (WIFEXITED(st)) {
		json_buf_printf(msg, "exit %d", WEXITSTATUS(st));
	} else if (WIFSIGNALED(st)) {
		cmd_signal_text(msg, WTERMSIG(st));
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

/* The result of a command that exited 0: its stdout as JSON when it is
 * JSON, else as a JSON string; NULL when it wrote nothing. */
static char *
cmd_result(const struct cmd_task *ct)
{
	const struct cmd_child *c = &ct->child;
	const struct task *t = ct->ht->task;
	struct json_buf quoted = {0};
	char *result;

	if (c->out_truncated)
		log_warn("task=%s kind=%s stdout truncated to %lld bytes (of %lld)", task_name(t), t->kind,
		         (long long) c->max_output, (long long) c->out_total);
	if (c->out.len == 0)
		return NULL;
	if (!c->out_truncated && json_valid(c->out.data, c->out.len))
		return mem_strdup(c->out.data);
	json_append_string(&quoted, c->out.data, c->out.len);
	result = mem_strdup(quoted.data);
	json_buf_free(&quoted);
	return result;
}

/* Off the list, fds closed, buffers freed: then the report (which frees
 * the handler_task). */
static void
cmd_end(struct cmd_task *ct, struct handler_report *r)
{
	struct handler_task *ht = ct->ht;

	*ct->prev = ct->next;
	if (ct->next != NULL)
		ct->next->prev = ct->prev;
	cmd_free(&ct->child);
	free(ct);
	ht->state = NULL;
	slots_done(ht, r);
}

/* The command's process has exited: report what it did. */
static void
cmd_exited(pid_t pid, int status, void *arg)
{
	struct cmd_task *ct = arg;
	struct handler_report r = {.end = HANDLER_FAILED};
	struct json_buf msg = {0};

	cmd_on_exit(&ct->child, status);
	/* Anything it left behind in its group goes too. */
	cmd_signal(&ct->child, SIGKILL);
	if (!ct->timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		r.end = HANDLER_SUCCEEDED;
		r.result = cmd_result(ct);
	} else {
		cmd_error_text(ct, &msg);
		r.error = msg.data;
	}
	cmd_end(ct, &r);
	json_buf_free(&msg);
}

static void
cmd_ready(int fd, short revents, void *arg)
{
	struct cmd_task *ct = arg;

	cmd_on_ready(&ct->child, fd, revents);
}

static void
cmd_start_task(struct handler_task *ht, const struct handler_config *hc, const struct handler_env *env)
{
	struct cmd_task *ct = calloc(1, sizeof *ct);
	char why[512];

	if (ct == NULL)
		abort();
	if (!cmd_start(&ct->child, hc->argv, hc->env_passthrough != NULL ? hc->env_passthrough
	               : env->cfg->env_passthrough, ht->task, ht->policy->max_attempts, hc->max_output,
	               why, sizeof why)) {
		struct handler_report r = {.end = HANDLER_FAILED, .error = why};

		free(ct);
		slots_done(ht, &r);
		return;
	}
	ct->ht = ht;
	ht->state = ct;
	ct->next = cmd_local.running;
	ct->prev = &cmd_local.running;
	if (ct->next != NULL)
		ct->next->prev = &ct->next;
	cmd_local.running = ct;
	handler_watch(ct->child.in_fd, POLLOUT, &handler_cmd_ops, ct);
	handler_watch(ct->child.out_fd, POLLIN, &handler_cmd_ops, ct);
	handler_watch(ct->child.err_fd, POLLIN, &handler_cmd_ops, ct);
	handler_watch_pid(ct->child.pid, &handler_cmd_ops, ct);
}

static int64_t
cmd_next_deadline(void)
{
	int64_t due = INT64_MAX;

	for (const struct cmd_task *ct = cmd_local.running; ct != NULL; ct = ct->next) {
		if (!ct->timed_out && !ct->stopping && ct->ht->deadline_ms < due)
			due = ct->ht->deadline_ms;
		if (ct->kill_at_ms > 0 && ct->kill_at_ms < due)
			due = ct->kill_at_ms;
	}
	return due;
}

/* Timeouts: SIGTERM to the group, then SIGKILL if it is still there. */
static void
cmd_tick(int64_t now)
{
	for (struct cmd_task *ct = cmd_local.running; ct != NULL; ct = ct->next) {
		const struct task *t = ct->ht->task;

		if (!ct->timed_out && !ct->stopping && now >= ct->ht->deadline_ms) {
			log_warn("task=%s kind=%s attempt=%d timed out after %lld ms, stopping it", task_name(t),
			         t->kind, t->attempt, (long long) ct->ht->policy->timeout_ms);
			ct->timed_out = true;
			cmd_signal(&ct->child, SIGTERM);
			ct->kill_at_ms = now + CMD_KILL_GRACE_MS;
		} else if (ct->kill_at_ms > 0 && now >= ct->kill_at_ms) {
			cmd_signal(&ct->child, SIGKILL);
			ct->kill_at_ms = 0;
		}
	}
}

static void
cmd_stop(struct handler_task *ht)
{
	struct cmd_task *ct = ht->state;

	ct->stopping = true;
	cmd_signal(&ct->child, SIGTERM);
	ct->kill_at_ms = clock_now_ms() + CMD_KILL_GRACE_MS;
}

/* SIGKILL and wait for it: the daemon is about to leave. */
static void
cmd_kill(struct handler_task *ht)
{
	struct cmd_task *ct = ht->state;
	struct handler_report r = {.end = HANDLER_FAILED, .error = "killed"};
	int status;

	cmd_signal(&ct->child, SIGKILL);
	while (waitpid(ct->child.pid, &status, 0) < 0 && errno == EINTR)
		;
	handler_unwatch_pid(ct->child.pid);
	cmd_end(ct, &r);
}

const struct handler_ops handler_cmd_ops = {
	.name = "command",
	.label = "handler",
	.setup = cmd_setup,
	.start = cmd_start_task,
	.ready = cmd_ready,
	.exited = cmd_exited,
	.next_deadline = cmd_next_deadline,
	.tick = cmd_tick,
	.stop = cmd_stop,
	.kill = cmd_kill,
};
