/*
 * Command handlers: one child process per attempt, no shell.
 *
 * The child gets the task as one JSON object on stdin and a clean
 * environment: the variables the config passes through (env_passthrough)
 * and PGDISPATCH_TASK_{ID,KIND,ATTEMPT}, nothing else of the daemon's. It
 * runs in a process group of its own (so a timeout can stop everything it
 * started), and its stdout (up to max_output bytes) and the tail of its
 * stderr are captured without blocking the loop. What the daemon does with
 * the exit status is decided in slots.c, from this type's report.
 *
 * Hostile handlers are expected: one that floods a pipe costs the daemon a
 * bounded buffer, one that closes stdin unread costs an EPIPE, one that
 * leaves a descendant holding its pipes open ends when its own process
 * does. The daemon is a child subreaper (Linux), so descendants orphaned by
 * a handler are reaped by the daemon's loop (handler_reap()) rather than
 * left as zombies wherever init may or may not reap them.
 *
 * As a handler type (handler_cmd_ops): each task's three pipes and its pid
 * are watched for that task; a timeout sends SIGTERM to the process group
 * and SIGKILL CMD_KILL_GRACE_MS later; the exit status, the captured
 * output and what went wrong with the pipes become the report.
 */
#ifndef PGDISPATCH_HANDLER_CMD_H
#define PGDISPATCH_HANDLER_CMD_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "handler.h"
#include "json.h"
#include "task.h"

#define CMD_STDERR_TAIL 2048  /* bytes of stderr kept for last_error */
#define CMD_KILL_GRACE_MS 2000  /* SIGTERM, then SIGKILL this much later */

extern const struct handler_ops handler_cmd_ops;

struct cmd_child {
	pid_t pid;              /* also the process group id */
	char *program;          /* argv[0], for messages */
	int in_fd, out_fd, err_fd;  /* ours; -1 once closed */
	struct json_buf input;  /* the task JSON, written as the pipe allows */
	size_t input_off;
	struct json_buf out;    /* stdout, at most max_output bytes */
	int64_t max_output;
	bool out_truncated;
	int64_t out_total;      /* bytes of stdout read, kept or not */
	int64_t err_total;      /* bytes of stderr read */
	char *err_tail;         /* the last CMD_STDERR_TAIL bytes, at least; allocated
	                         * (2 * CMD_STDERR_TAIL) on the first byte, so a slot
	                         * that never runs a command stays small */
	size_t err_len;
	bool err_truncated;
	bool exited;
	int status;             /* from waitpid, once exited */
};

/* Once, at startup: makes this process the subreaper of its handlers'
 * orphans (a no-op where the system has no such thing). */
void cmd_setup(void);

/*
 * Starts argv for task t, with the variables of ours named in passthrough
 * (NULL-terminated, borrowed) in its environment. Returns true with c
 * running, or false with why[] set: pipes or processes ran out, or the
 * program cannot be executed ("cannot run PROGRAM: No such file or
 * directory"). Either way the attempt fails and the daemon goes on.
 */
bool cmd_start(struct cmd_child *c, char *const *argv, char *const *passthrough,
               const struct task *t, int max_attempts, int64_t max_output, char *why,
               size_t whylen);

/* Handles readiness of one of c's fds. */
void cmd_on_ready(struct cmd_child *c, int fd, short revents);

/*
 * Records that the child exited with status and reads what it left in the
 * pipes. Pipes are then closed even if a grandchild still holds them open:
 * the attempt is over when the handler's own process is.
 */
void cmd_on_exit(struct cmd_child *c, int status);

/* Sends sig to the child's whole process group. */
void cmd_signal(const struct cmd_child *c, int sig);

/* Closes fds and frees buffers; the child must have exited. */
void cmd_free(struct cmd_child *c);

#endif
