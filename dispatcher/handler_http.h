/*
 * HTTP handlers: each task is one request to a service, made with
 * libcurl's multi interface inside the daemon's own poll() loop.
 *
 * The request: the method and URL of the handler's config (the URL filled
 * from the task: {id}, {payload.FIELD}, URL-encoded), the task as JSON for
 * a body (as a command reads it on stdin), the config's headers (${VAR}
 * expanded at load, never logged), and two headers of ours: Idempotency-Key
 * (the task id, or SOURCE:KEY for a source's row; the same on every
 * attempt) and X-Pgdispatch-Attempt.
 *
 * What the answer means (README "HTTP handlers"):
 *   2xx                       complete; a JSON body is the result, any other
 *                             body a JSON string, none NULL (max_output bounds it)
 *   408, 425, 429, 5xx,       a failed attempt, retried with backoff; a
 *   no answer, a timeout      Retry-After later than the backoff wins
 *   any other 4xx, a 3xx      failed for good at once: no retry can fix a
 *   not followed, a URL the   request the service refused as bad (these are
 *   task cannot fill          the task's fault: a breaker does not count them)
 *
 * "No threads" is the daemon's: libcurl resolves host names on a thread of
 * its own per lookup (its threaded resolver); an IP address starts none.
 * Connections are kept in the multi handle and reused across tasks.
 */
#ifndef PGDISPATCH_HANDLER_HTTP_H
#define PGDISPATCH_HANDLER_HTTP_H

#include "handler.h"

extern const struct handler_ops handler_http_ops;

/* The longest Retry-After honoured: a day. Longer is a service's mistake. */
#define HTTP_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

/* Bytes of an error answer's body quoted in last_error. */
#define HTTP_ERROR_EXCERPT 512

#endif
