/*
 * Signals as events: handlers only count the signal and write a byte to a
 * self-pipe; the loop polls the pipe's read end and acts (PgBouncer: the
 * handle_* functions "are not actual signal handlers").
 */
#ifndef PGDISPATCH_SIGNALS_H
#define PGDISPATCH_SIGNALS_H

struct signals_seen {
	int stop;    /* SIGTERM or SIGINT */
	int reload;  /* SIGHUP */
	int child;   /* SIGCHLD */
};

/* Installs the handlers and ignores SIGPIPE; returns the fd to poll for
 * input, or -1 with errno set. */
int signals_setup(void);

/* Drains the pipe and returns what arrived since the last call. */
struct signals_seen signals_take(void);

#endif
