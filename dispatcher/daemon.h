/*
 * `pgdispatch run`: the daemon's event loop.
 *
 * One thread, one poll(): the LISTEN connection's socket, the self-pipe for
 * signals, the pipes of running command handlers and the connections of
 * running SQL handlers (handler_sql.c). The timeout is the nearest of: the
 * next due task (asked of the database), the next lease renewal, the safety
 * poll, a handler's deadline, the reconnect attempt and the end of the
 * shutdown grace. Claims, outcomes, lease renewal and the reaper run on a
 * second, "work" connection as short synchronous statements (queue.c).
 *
 * Vocabulary: a slot (slots.c) is one task in flight, claimed and not yet
 * recorded; the sweep is claiming until a batch comes back short.
 */
#ifndef PGDISPATCH_DAEMON_H
#define PGDISPATCH_DAEMON_H

#include "config.h"

/*
 * Runs until stopped by SIGTERM/SIGINT. Takes ownership of cfg (reloaded
 * on SIGHUP from cfg->path). database overrides cfg->database when not
 * NULL (the -d option). Returns the process exit code.
 */
int daemon_run(struct config *cfg, const char *database);

#endif
