/*
 * Dropping root: the daemon switches to the config's user (and group)
 * once it has read its config, before it connects or starts a handler,
 * the way PgBouncer's `user` setting works.
 *
 * Vocabulary: "drop" is the one-way switch of real, effective and saved
 * user and group ids plus the supplementary groups; there is no way back.
 */
#ifndef PGDISPATCH_PRIVS_H
#define PGDISPATCH_PRIVS_H

#include <stddef.h>

#include "config.h"

enum privs_result {
	PRIVS_OK,        /* switched, or nothing to do */
	PRIVS_REFUSED,   /* the config asks for what cannot be done: exit 2 */
	PRIVS_FAILED,    /* a system call failed: exit 1 */
};

/*
 * Switches the whole process to cfg->user and cfg->group when they are
 * set, and checks that it cannot regain root. Running as root without
 * them is allowed, with a warning. Started as someone else, it succeeds
 * only when the process already is that user and group. On failure err
 * says why ("FILE: user: ...").
 */
enum privs_result privs_drop(const struct config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Keeps handlers, which run as the daemon's user, out of the daemon's
 * memory: /proc/PID/environ (PGPASSWORD), /proc/PID/mem, ptrace. A clean
 * handler environment (env_passthrough) means little if a handler can
 * read `/proc/$PPID/environ`. Handlers are unaffected: exec resets it.
 */
void privs_protect(void);

#endif
