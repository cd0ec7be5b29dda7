/*
 * Tasks in flight: one slot per claimed task, from its claim until its
 * outcome is in the outbox.
 *
 * A slot hands its task to the handler type the config names (handler.h),
 * whatever that type is, and when the type reports how the run ended
 * (slots_done()), decides the outcome (complete, retry with backoff,
 * failed for good, or released untried) and hands it to the outbox
 * (outbox.c). The daemon's loop (daemon.c) owns the when; the handler
 * types own running things; this module owns what a run's end means.
 */
#ifndef PGDISPATCH_SLOTS_H
#define PGDISPATCH_SLOTS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "handler.h"
#include "task.h"

/* Once, before anything else: instance is locked_by (borrowed, must outlive
 * the slots). */
void slots_setup(const char *instance);

/* Makes room for want slots (never shrinks). */
void slots_grow(int want);

/* Tasks in flight. */
int slots_running(void);

/* True once since a slot was freed (room for the next claim). */
bool slots_take_freed(void);

/*
 * Takes a freshly claimed task (ownership of its strings) and starts its
 * handler per cfg; conninfo is for SQL handlers' connections. A task over
 * its handler's concurrency limit is released untried; one with no handler
 * is a failed attempt.
 */
void slots_start(const struct config *cfg, const char *conninfo, struct task *t);

/* The kinds with a concurrency limit of their own, and the room each has
 * left (names borrowed from cfg; both arrays of room cap, at least
 * cfg->nhandlers); returns how many. */
size_t slots_kind_rooms(const struct config *cfg, const char **names, int *rooms, size_t cap);

/* How many fds the handlers watch, and those fds into pfds (room for
 * slots_nfds()); returns how many. */
int slots_nfds(void);
int slots_pollfds(struct pollfd *pfds);

/* Handles readiness of one of those fds (routed to its handler type). */
void slots_on_ready(int fd, short revents);

/* Reaps exited children (after SIGCHLD) and routes each to its type. */
void slots_reap(void);

/* Deadlines: timeouts, the SIGKILL after a SIGTERM, builtin sleeps. */
void slots_check(int64_t now);

/* The nearest deadline among running tasks, or due if none is nearer. */
int64_t slots_next_due(int64_t due);

/* The claims of running tasks, whose leases need renewing, into
 * ids/tokens[0..cap) (and their sources and keys into sources and keys,
 * unless NULL; keys borrowed); returns how many. */
size_t slots_leased(long long *ids, long long *tokens, int *sources, const char **keys, size_t cap);
int slots_capacity(void);

/* The claim id/token was lost: when a task in flight holds it, stop its
 * handler, record no outcome, and return true. cancelled: NULL when the
 * lease was lost (another instance reaped the task, an operator reset
 * it), else the reason the task was cancelled with (dispatch.cancel()),
 * for the log. */
bool slots_lease_lost(long long id, long long token, const char *cancelled);

/* A handler of this daemon runs task id (and has not lost it yet). */
bool slots_runs(long long id);

/* Shutdown past its grace: stop every handler; their tasks go back
 * untried (unless they finish with success first). */
void slots_stop_all(int64_t now);

/* A second signal: kill every handler now and release every task. */
void slots_kill_all(void);

/* Frees the slots (at exit; none may be running). */
void slots_free(void);

/*
 * A handler type reports how ht's run ended; the slot decides the outcome
 * with the task's policy, hands it to the outcome sink and is free again.
 * ht is gone once this returns; r->result is taken.
 */
void slots_done(struct handler_task *ht, struct handler_report *r);

/* Where outcomes go: outbox_add() unless set (the tests capture them). */
void slots_outcome_sink(void (*sink)(struct outcome o));

#endif
