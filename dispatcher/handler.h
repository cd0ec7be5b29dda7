/*
 * The handler interface: what a type of handler (command, sql, builtin ...)
 * implements, and the services the daemon gives every type.
 *
 * Vocabulary. A handler type is a table of operations (struct
 * handler_ops) over state the type keeps for itself. A handler task is one
 * task in flight as its type sees it (struct handler_task): the slot table
 * (slots.c) owns it from start() until the type reports how it ended with
 * slots_done(). A watch ties an fd (or a child's pid) to the type that
 * wants to hear about it, and to an argument of the type's choosing: one
 * task (a command's pipes), or the type's own shared state (one socket
 * serving many tasks, one worker's pipes serving several), so nothing
 * here assumes one process or one fd per task.
 *
 * A type reports what happened (struct handler_report); what that means
 * for the task (complete, retry after a backoff, failed for good, released
 * untried) is decided in one place, slots_done(), with the task's policy.
 *
 * Adding a type: a file that defines a `const struct handler_ops`, and a
 * line in the table of types in handler.c. Its settings, if it needs keys
 * of its own, are entries in config.c's table of handler keys.
 */
#ifndef PGDISPATCH_HANDLER_H
#define PGDISPATCH_HANDLER_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "policy.h"
#include "task.h"

/* One task in flight, as its handler type sees it. Owned by the slot
 * table and at a fixed address until the type calls slots_done(). */
struct handler_task {
	const struct task *task;      /* the claimed row */
	const struct policy *policy;  /* attempts, backoff, timeout */
	int64_t started_ms;           /* monotonic */
	int64_t deadline_ms;          /* started_ms + policy->timeout_ms */
	void *state;                  /* the type's own, per task; the type frees it */
};

/* What a start() may need besides the task. All borrowed for the call. */
struct handler_env {
	const struct config *cfg;     /* the config the task was claimed under */
	const char *conninfo;         /* for handlers that connect to the database */
	const char *instance;         /* locked_by: valid for the daemon's life */
};

/* How a handler's run of a task ended: what happened, not what it means. */
enum handler_end {
	HANDLER_SUCCEEDED,   /* result is to be recorded (the outbox writes it) */
	HANDLER_COMMITTED,   /* succeeded, and the handler recorded it itself (a SQL
	                      * handler's completion commits with its work) */
	HANDLER_FAILED,      /* error says why: a failed attempt */
	HANDLER_NOT_RUN,     /* never ran (no connection could be had): error says why;
	                      * tried again after delay_ms, the attempt given back */
	HANDLER_LEASE_LOST,  /* the handler's own fenced write found the claim gone:
	                      * nothing committed, nothing to record */
};

struct handler_report {
	enum handler_end end;
	char *result;        /* SUCCEEDED: JSON text or NULL; slots_done() takes it */
	const char *error;   /* FAILED, NOT_RUN: valid UTF-8 text; borrowed */
	int64_t delay_ms;    /* NOT_RUN: the delay; FAILED: the least delay before a
	                      * retry (a server's Retry-After), 0 for none */
	bool final;          /* FAILED: no retry can fix it (a request the service
	                      * refused as bad): failed for good now, whatever
	                      * attempts remain */
};

/*
 * A handler type. Every operation runs in the daemon's loop and must not
 * block. Every task started must end with exactly one slots_done() call,
 * which may come from inside start(), stop() or kill() themselves; after it
 * the handler_task is gone.
 */
struct handler_ops {
	/* The config key that selects this type ("command", "sql", "builtin"). */
	const char *name;
	/* What log lines call a handler of this type ("handler", "SQL handler"). */
	const char *label;
	/* Once at startup and at exit; either may be NULL. */
	void (*setup)(void);
	void (*teardown)(void);
	/* Starts ht with the handler's settings hc (borrowed for the call: a
	 * reload may free it while the task runs). A start that fails is a
	 * report like any other. */
	void (*start)(struct handler_task *ht, const struct handler_config *hc,
	              const struct handler_env *env);
	/* An fd the type watches (handler_watch()) is ready; arg as watched. */
	void (*ready)(int fd, short revents, void *arg);
	/* A child the type watches (handler_watch_pid()) has exited and was
	 * reaped with status; arg as watched. The watch is already gone. */
	void (*exited)(pid_t pid, int status, void *arg);
	/* The type's nearest deadline over all its tasks (timeouts, a kill
	 * after a stop, a sleep, a library's own timer), INT64_MAX for none;
	 * tick() is then called at or after it to act on what is due. Either
	 * may be NULL (no deadlines of its own). */
	int64_t (*next_deadline)(void);
	void (*tick)(int64_t now);
	/* Asks ht to end soon (shutdown, lease lost): SIGTERM to a command's
	 * process group, a cancel for SQL. It ends later, or at once. */
	void (*stop)(struct handler_task *ht);
	/* Ends ht now (a second signal): before returning, its resources are
	 * released and slots_done() was called. */
	void (*kill)(struct handler_task *ht);
};

/* The type named name ("command", ...), or NULL. */
const struct handler_ops *handler_find(const char *name);

/* Adds a type to the table at run time (the tests' fake type); false when
 * the table is full. ops must outlive the process. */
bool handler_register(const struct handler_ops *ops);

/* Every type's setup() (at startup) and teardown() (at exit). */
void handler_setup_all(void);
void handler_teardown_all(void);

/*
 * Watches fd for events on behalf of ops; its readiness goes to
 * ops->ready(fd, revents, arg). Watching an fd already watched replaces
 * the watch (new events, say). Unwatch an fd before closing it.
 */
void handler_watch(int fd, short events, const struct handler_ops *ops, void *arg);
void handler_unwatch(int fd);

/* Watches a child: its exit goes to ops->exited(pid, status, arg). */
void handler_watch_pid(pid_t pid, const struct handler_ops *ops, void *arg);
void handler_unwatch_pid(pid_t pid);

/* For the loop: how many fds are watched, and those fds into pfds (room
 * for handler_nfds()); returns how many. */
int handler_nfds(void);
int handler_pollfds(struct pollfd *pfds);

/* Routes readiness of fd to its watcher (an fd no longer watched is
 * ignored). O(1): the watch table is indexed by fd. */
void handler_on_ready(int fd, short revents);

/* Reaps every exited child and routes each to its watcher; a child nobody
 * watches is a handler's orphan (we are their subreaper). */
void handler_reap(void);

/* The nearest deadline of any type (or due if none is nearer), and
 * every type's tick(). */
int64_t handler_next_deadline(int64_t due);
void handler_tick(int64_t now);

#endif
