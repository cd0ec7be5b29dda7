/*
 * Templates for an HTTP handler's URL and Idempotency-Key (http.url,
 * http.idempotency_key): text with placeholders filled from each task.
 *
 * Parsed once when the config is read, so a bad template is a config error
 * with its line, and filled per request without libcurl or libpq, so both
 * are unit-tested and fuzzed (tests/fuzz/fuzz_http_template.c).
 *
 * Vocabulary: a placeholder is {id} or {payload.a.b} (a dot path of members
 * of the payload object); "{{" and "}}" are literal braces.
 */
#ifndef PGDISPATCH_HTTP_TEMPLATE_H
#define PGDISPATCH_HTTP_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"
#include "task.h"

struct http_template;

/* Parses s: literal text, {id}, {payload.a.b} (dot path into the payload
 * object), "{{" and "}}" for literal braces. A stray "{" or "}", an empty or
 * unknown placeholder, is an error. url=true: s must start http:// or https://
 * with a non-empty host, and no placeholder may come before the path
 * (scheme, host or port). NULL with why (no trailing period) on error.
 * url=true also refuses spaces and control characters, which no URL holds
 * as written; url=false refuses CR and LF, which end a header. The caller
 * releases the result with http_template_free(). */
struct http_template *http_template_parse(const char *s, bool url, char *why, size_t whylen)
	__attribute__((warn_unused_result));

/* Appends the filled template to out. {id}: the task's id, or a source
 * row's key (t->key != NULL). {payload.x}: a string's value (unescaped),
 * a number's or boolean's text; missing, null, object or array: false with
 * why ("payload.x is missing" / "payload.x is an object"). urlencode: every
 * byte outside A-Za-z0-9-._~ becomes %XX (upper-case hex), so '/', '?', ' '
 * become %2F %3F %20; literal text is copied as written. With urlencode
 * false (a header value) a value containing CR, LF or NUL is refused.
 * On false, out is left as it was. */
bool http_template_fill(const struct http_template *tpl, const struct task *t, bool urlencode,
                        struct json_buf *out, char *why, size_t whylen)
	__attribute__((warn_unused_result));

void http_template_free(struct http_template *tpl);

#endif
