/*
 * The daemon's connections to PostgreSQL: the LISTEN connection (when
 * notify is on) and the work connection, made without blocking the loop,
 * with a growing pause between failed attempts and, with several hosts,
 * each attempt starting one host further along (db_connect_start()).
 *
 * Once both are up they go to their owners: the work connection to
 * work.c, the LISTEN connection to listener.c. session_lost() takes them
 * back and schedules the next attempt. Part of the database layer: the
 * daemon's loop sees states and fds, never libpq.
 */
#ifndef PGDISPATCH_SESSION_H
#define PGDISPATCH_SESSION_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

/* Once: the conninfo (borrowed for the process's life; NULL: libpq's PG*
 * environment) and the name for application_name (copied). */
void session_setup(const char *conninfo, const char *name);

/* Starts connecting (listen: a LISTEN connection too, and the work
 * connection's statements prepared; else poll-only mode). */
void session_start(bool listen, int64_t now);

/* Connecting, or waiting to reconnect. */
bool session_connecting(void);

/* Up: handed over to work.c (and listener.c). */
bool session_up(void);

/* Adds the sockets of connections on their way up; returns how many
 * (room for 2). */
int session_pollfds(struct pollfd *pfds);

/*
 * After poll(): moves connections on their way up (revents of the fds
 * session_pollfds() added, in order) or starts the next attempt when it is
 * due (with a LISTEN connection or not, as listen says). Returns true
 * once, when both connections have just come up.
 */
bool session_step(const struct pollfd *pfds, int n, int64_t now, bool listen);

/* Monotonic ms of the next thing to do while not up (a deadline, the next
 * attempt), or INT64_MAX. */
int64_t session_next_ms(void);

/* Connections lost or given up (why, any password in it is masked in the
 * log): closes them and schedules the next attempt. */
void session_lost(const char *why);

/* At exit. */
void session_close(void);

#endif
