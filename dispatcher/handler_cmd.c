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
#include <unistd.h>

#include "log.h"

extern char **environ;

static void
cmd_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* The task as the handler reads it on stdin. */
static void
cmd_build_input(struct json_buf *b, const struct task *t, int max_attempts)
{
	json_buf_printf(b, "{\"id\":%lld,\"queue\":", t->id);
	json_append_string(b, t->queue, strlen(t->queue));
	json_buf_printf(b, ",\"kind\":");
	json_append_string(b, t->kind, strlen(t->kind));
	/* payload is jsonb text from the server: already valid JSON. */
	json_buf_printf(b, ",\"payload\":%s,\"attempt\":%d,\"max_attempts\":%d}\n", t->payload,
	                t->attempt, max_attempts);
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
 * pipes as fds 0-2; every other fd of ours is close-on-exec. No shell is
 * involved at any point. An exec failure comes back as the return value.
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
 * daemon reaps them in its loop (slots_reap() waits for any child).
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
	cmd_build_input(&c->input, t, max_attempts);

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

int
cmd_pollfds(const struct cmd_child *c, struct pollfd *pfds)
{
	int n = 0;

	if (c->in_fd >= 0)
		pfds[n++] = (struct pollfd){.fd = c->in_fd, .events = POLLOUT};
	if (c->out_fd >= 0)
		pfds[n++] = (struct pollfd){.fd = c->out_fd, .events = POLLIN};
	if (c->err_fd >= 0)
		pfds[n++] = (struct pollfd){.fd = c->err_fd, .events = POLLIN};
	return n;
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
