/*
 * The LISTEN connection: it sends LISTEN once connected (without waiting
 * for the answer) and then only drains notifications. A notification is a
 * wake-up, never the work list: the table is the truth. Two channels:
 * dispatch_tasks (a queue has work: claim) and dispatch_cancel (a running
 * task was cancelled: if it is ours, renew the leases now, and the
 * renewal's fence reports the claim lost).
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

/* What the notifications of one drain asked for. */
struct listener_news {
	bool claim;                  /* a queue of cfg's has work: claim now */
	bool cancel;                 /* a task runs(id) says is ours was cancelled */
};

/*
 * Reads what arrived: LISTEN's answer, notifications, into *news. runs(id)
 * tells whether this daemon runs task id. Returns false with err filled
 * when the connection failed.
 */
bool listener_drain(const struct config *cfg, bool (*runs)(long long id), struct listener_news *news,
                    struct db_error *err) DB_MUSTCHECK;

#endif
