/*
 * The LISTEN connection: it sends LISTEN once connected (without waiting
 * for the answer) and then only drains notifications. A notification is a
 * wake-up for the claimer, never the work list: the table is the truth.
 */
#ifndef PGDISPATCH_LISTENER_H
#define PGDISPATCH_LISTENER_H

#include <stdbool.h>

#include "config.h"
#include "db.h"

/* Takes conn (owned: listener_detach() closes it) and sends LISTEN.
 * Returns false with err filled when libpq refused. */
bool listener_attach(PGconn *conn, struct db_error *err) DB_MUSTCHECK;

void listener_detach(void);

/* LISTEN is in effect: a claim from now on cannot miss a task that is
 * not announced. */
bool listener_listening(void);

/* The socket to poll for input, or -1. */
int listener_socket(void);

/*
 * Reads what arrived: LISTEN's answer, notifications. Returns true when a
 * notification named a queue of cfg's (claim now); sets *broken with err
 * filled when the connection failed.
 */
bool listener_drain(const struct config *cfg, bool *broken, struct db_error *err);

#endif
