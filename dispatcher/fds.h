/*
 * Descriptors the daemon inherited: whatever started it may have left
 * files open without close-on-exec (a shell's `exec 7</etc/shadow`, a
 * careless supervisor), and each would pass to every handler, across the
 * root drop. `pgdispatch run` closes them before anything else; what the
 * daemon opens itself is close-on-exec (O_CLOEXEC, pipe2, fopen "e";
 * libpq marks its sockets), so a handler starts with its three pipes only.
 */
#ifndef PGDISPATCH_FDS_H
#define PGDISPATCH_FDS_H

/* Closes every descriptor above 2: close_range(), else each one /proc
 * lists, else every number below RLIMIT_NOFILE. */
void fds_close_inherited(void);

#endif
