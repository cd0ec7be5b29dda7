/*
 * ${VAR} in config values (an HTTP handler's headers) and the redaction of
 * what they expanded to.
 *
 * A token belongs in the daemon's environment, not in a config file that is
 * copied, committed and shown; the file names it as ${NAME}. Once expanded,
 * its value must still never reach a log line or last_error, yet a server
 * may echo an Authorization header back in an error body: so every value
 * expanded is remembered, and text the daemon stores or logs from outside
 * can pass through secrets_redact() first.
 */
#ifndef PGDISPATCH_SECRETS_H
#define PGDISPATCH_SECRETS_H

#include <stddef.h>

#include "json.h"

/* Expands ${NAME} ([A-Za-z_][A-Za-z0-9_]*) from getenv(); "$$" is one "$";
 * any other "$" is literal. NULL with why on an unset variable
 * ("${NAME} is not set in the daemon's environment") or a bad ${ (messages
 * name variables, never values). Every expanded value of at least 4 bytes is
 * remembered, process-wide and once, for secrets_redact(). The caller frees
 * the result. */
char *secrets_expand(const char *in, char *why, size_t whylen)
	__attribute__((warn_unused_result));

/* Appends text[0..n) to out with every remembered value replaced by
 * "[redacted]". */
void secrets_redact(struct json_buf *out, const char *text, size_t n);

/* Forgets every value (at exit, for the leak checker; and tests). */
void secrets_clear(void);

#endif
