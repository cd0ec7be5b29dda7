/*
 * Command handlers: one child process per attempt, no shell.
 *
 * The child gets the task as one JSON object on stdin and
 * PGDISPATCH_TASK_{ID,KIND,ATTEMPT} in its environment, runs in a process
 * group of its own (so a timeout can stop everything it started), and its
 * stdout (up to max_output bytes) and the tail of its stderr are captured
 * without blocking the loop. What the daemon does with the exit status is
 * decided in daemon.c.
 */
#ifndef PGDISPATCH_HANDLER_CMD_H
#define PGDISPATCH_HANDLER_CMD_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"
#include "task.h"

#define CMD_STDERR_TAIL 2048  /* bytes of stderr kept for last_error */

struct cmd_child {
	pid_t pid;              /* also the process group id */
	char *program;          /* argv[0], for messages */
	int in_fd, out_fd, err_fd;  /* ours; -1 once closed */
	struct json_buf input;  /* the task JSON, written as the pipe allows */
	size_t input_off;
	struct json_buf out;    /* stdout, at most max_output bytes */
	int64_t max_output;
	bool out_truncated;
	char *err_tail;         /* the last CMD_STDERR_TAIL bytes, at least; allocated
	                         * (2 * CMD_STDERR_TAIL) on the first byte, so a slot
	                         * that never runs a command stays small */
	size_t err_len;
	bool err_truncated;
	bool exited;
	int status;             /* from waitpid, once exited */
};

/*
 * Starts argv for task t. Returns true with c running, or false with
 * why[] set: pipes or processes ran out, or the program cannot be executed
 * ("cannot run PROGRAM: No such file or directory"). Either way the
 * attempt fails and the daemon goes on.
 */
bool cmd_start(struct cmd_child *c, char *const *argv, const struct task *t, int max_attempts,
               int64_t max_output, char *why, size_t whylen);

/* Adds c's open pipes to pfds (room for 3 more); returns how many added. */
int cmd_pollfds(const struct cmd_child *c, struct pollfd *pfds);

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
