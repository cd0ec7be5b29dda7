/* The table of handler types and their watches of fds and children; see handler.h. */
#include "handler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "handler_builtin.h"
#include "handler_cmd.h"
#include "handler_http.h"
#include "handler_sql.h"
#include "log.h"

#define HANDLER_TYPES_MAX 16

/* One watched fd. */
struct handler_fd {
	const struct handler_ops *ops;   /* NULL: not watched */
	void *arg;
	short events;
	int at;                          /* its index in handler_local.live */
};

/* One watched child, in an open-addressed table (pid 0: empty). */
struct handler_pid {
	pid_t pid;
	const struct handler_ops *ops;
	void *arg;
};

static struct {
	/* The handler types, one line each, up to the first NULL. */
	const struct handler_ops *types[HANDLER_TYPES_MAX + 1];
	bool set_up;
	/* Watched fds, indexed by fd (fds are small and reused), and the
	 * watched ones packed, for filling the poll set. */
	struct handler_fd *fds;
	int nfds;                        /* room in fds */
	int *live;
	int nlive;
	/* Watched children by pid; cap a power of two, at most half full. */
	struct handler_pid *pids;
	size_t npids, pid_cap;
} handler_local = {
	.types = {
		&handler_cmd_ops,
		&handler_sql_ops,
		&handler_builtin_ops,
		&handler_http_ops,
	},
};

const struct handler_ops *
handler_find(const char *name)
{
	for (int i = 0; handler_local.types[i] != NULL; i++)
		if (strcmp(handler_local.types[i]->name, name) == 0)
			return handler_local.types[i];
	return NULL;
}

bool
handler_register(const struct handler_ops *ops)
{
	int n = 0;

	while (handler_local.types[n] != NULL)
		n++;
	if (n == HANDLER_TYPES_MAX)
		return false;
	handler_local.types[n] = ops;
	if (handler_local.set_up && ops->setup != NULL)
		ops->setup();
	return true;
}

void
handler_setup_all(void)
{
	handler_local.set_up = true;
	for (int i = 0; handler_local.types[i] != NULL; i++)
		if (handler_local.types[i]->setup != NULL)
			handler_local.types[i]->setup();
}

void
handler_teardown_all(void)
{
	for (int i = 0; handler_local.types[i] != NULL; i++)
		if (handler_local.types[i]->teardown != NULL)
			handler_local.types[i]->teardown();
	handler_local.set_up = false;
	free(handler_local.fds);
	free(handler_local.live);
	free(handler_local.pids);
	handler_local.fds = NULL;
	handler_local.live = NULL;
	handler_local.pids = NULL;
	handler_local.nfds = handler_local.nlive = 0;
	handler_local.npids = handler_local.pid_cap = 0;
}

/* --- fds --------------------------------------------------------------- */

static void *
handler_realloc(void *p, size_t n, size_t size)
{
	void *q = realloc(p, n * size);

	if (q == NULL)
		abort();
	return q;
}

void
handler_watch(int fd, short events, const struct handler_ops *ops, void *arg)
{
	struct handler_fd *w;

	if (fd < 0)
		return;
	if (fd >= handler_local.nfds) {
		int n = handler_local.nfds > 0 ? handler_local.nfds : 64;

		while (n <= fd)
			n *= 2;
		handler_local.fds = handler_realloc(handler_local.fds, (size_t) n, sizeof *handler_local.fds);
		handler_local.live = handler_realloc(handler_local.live, (size_t) n, sizeof *handler_local.live);
		memset(handler_local.fds + handler_local.nfds, 0,
		       (size_t) (n - handler_local.nfds) * sizeof *handler_local.fds);
		handler_local.nfds = n;
	}
	w = &handler_local.fds[fd];
	if (w->ops == NULL) {
		w->at = handler_local.nlive;
		handler_local.live[handler_local.nlive++] = fd;
	}
	w->ops = ops;
	w->arg = arg;
	w->events = events;
}

void
handler_unwatch(int fd)
{
	struct handler_fd *w;
	int last;

	if (fd < 0 || fd >= handler_local.nfds || handler_local.fds[fd].ops == NULL)
		return;
	w = &handler_local.fds[fd];
	/* The last packed fd takes its place. */
	last = handler_local.live[--handler_local.nlive];
	handler_local.live[w->at] = last;
	handler_local.fds[last].at = w->at;
	memset(w, 0, sizeof *w);
}

int
handler_nfds(void)
{
	return handler_local.nlive;
}

int
handler_pollfds(struct pollfd *pfds)
{
	for (int i = 0; i < handler_local.nlive; i++) {
		int fd = handler_local.live[i];

		pfds[i] = (struct pollfd){.fd = fd, .events = handler_local.fds[fd].events};
	}
	return handler_local.nlive;
}

void
handler_on_ready(int fd, short revents)
{
	struct handler_fd *w;

	if (fd < 0 || fd >= handler_local.nfds || handler_local.fds[fd].ops == NULL)
		return;
	w = &handler_local.fds[fd];
	w->ops->ready(fd, revents, w->arg);
}

/* --- children ---------------------------------------------------------- */

static size_t
handler_pid_home(pid_t pid)
{
	/* Fibonacci hashing: consecutive pids spread over the table. */
	return (size_t) (((uint32_t) pid * 2654435769u) >> 8) & (handler_local.pid_cap - 1);
}

static struct handler_pid *
handler_pid_find(pid_t pid)
{
	if (handler_local.pid_cap == 0)
		return NULL;
	for (size_t i = handler_pid_home(pid);; i = (i + 1) & (handler_local.pid_cap - 1)) {
		if (handler_local.pids[i].pid == pid)
			return &handler_local.pids[i];
		if (handler_local.pids[i].pid == 0)
			return NULL;
	}
}

static void
handler_pid_put(struct handler_pid e)
{
	size_t i = handler_pid_home(e.pid);

	while (handler_local.pids[i].pid != 0 && handler_local.pids[i].pid != e.pid)
		i = (i + 1) & (handler_local.pid_cap - 1);
	if (handler_local.pids[i].pid == 0)
		handler_local.npids++;
	handler_local.pids[i] = e;
}

void
handler_watch_pid(pid_t pid, const struct handler_ops *ops, void *arg)
{
	if ((handler_local.npids + 1) * 2 > handler_local.pid_cap) {
		struct handler_pid *old = handler_local.pids;
		size_t cap = handler_local.pid_cap;

		handler_local.pid_cap = cap > 0 ? cap * 2 : 64;
		handler_local.pids = calloc(handler_local.pid_cap, sizeof *handler_local.pids);
		if (handler_local.pids == NULL)
			abort();
		handler_local.npids = 0;
		for (size_t i = 0; i < cap; i++)
			if (old[i].pid != 0)
				handler_pid_put(old[i]);
		free(old);
	}
	handler_pid_put((struct handler_pid){pid, ops, arg});
}

void
handler_unwatch_pid(pid_t pid)
{
	struct handler_pid *e = handler_pid_find(pid);
	size_t i, mask = handler_local.pid_cap - 1;

	if (e == NULL)
		return;
	/* Backward-shift deletion: later entries of the run move up, so a
	 * lookup never needs tombstones. */
	i = (size_t) (e - handler_local.pids);
	for (size_t j = (i + 1) & mask; handler_local.pids[j].pid != 0; j = (j + 1) & mask) {
		size_t home = handler_pid_home(handler_local.pids[j].pid);

		/* j's entry may move to i when its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			handler_local.pids[i] = handler_local.pids[j];
			i = j;
		}
	}
	handler_local.pids[i].pid = 0;
	handler_local.npids--;
}

void
handler_reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		struct handler_pid *e;
		struct handler_pid w;

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		e = handler_pid_find(pid);
		if (e == NULL) {
			/* A handler's orphan, reparented to us (cmd_setup()). */
			log_debug("pid=%d reaped a process a handler left behind", (int) pid);
			continue;
		}
		w = *e;
		handler_unwatch_pid(pid);
		w.ops->exited(pid, status, w.arg);
	}
}

/* --- deadlines --------------------------------------------------------- */

int64_t
handler_next_deadline(int64_t due)
{
	for (int i = 0; handler_local.types[i] != NULL; i++) {
		const struct handler_ops *t = handler_local.types[i];
		int64_t d = t->next_deadline != NULL ? t->next_deadline() : INT64_MAX;

		if (d < due)
			due = d;
	}
	return due;
}

void
handler_tick(int64_t now)
{
	for (int i = 0; handler_local.types[i] != NULL; i++)
		if (handler_local.types[i]->tick != NULL)
			handler_local.types[i]->tick(now);
}
