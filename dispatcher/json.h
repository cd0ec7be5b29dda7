/*
 * The little JSON the daemon writes and checks itself: escaping strings for
 * the task object a command handler reads on stdin, deciding whether a
 * handler's stdout is JSON (then it is stored as is) or not (then it is
 * stored as a JSON string), making arbitrary bytes valid text for
 * PostgreSQL (last_error, result), and reading one field of a payload for
 * an HTTP handler's URL and headers (http_template.c).
 *
 * All output goes through a growable buffer owned by the caller.
 */
#ifndef PGDISPATCH_JSON_H
#define PGDISPATCH_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* A growable NUL-terminated byte buffer. Zero-initialise; json_buf_free()
 * releases. Allocation failure aborts (the daemon cannot go on without
 * memory, and a half-written task would be worse). */
struct json_buf {
	char *data;
	size_t len;
	size_t cap;
};

void json_buf_append(struct json_buf *b, const char *s, size_t n);
void json_buf_printf(struct json_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void json_buf_reset(struct json_buf *b);   /* len = 0, keeps the memory */
void json_buf_free(struct json_buf *b);

/*
 * Appends s[0..n) as a JSON string literal, quotes included. Invalid UTF-8
 * sequences and NUL bytes become U+FFFD (one per maximal ill-formed subpart,
 * see json.c), so the result is always accepted by PostgreSQL's jsonb (which
 * rejects \u0000).
 */
void json_append_string(struct json_buf *b, const char *s, size_t n);

/*
 * True when s[0..n) is one complete JSON value (RFC 8259; surrounding
 * whitespace allowed) that PostgreSQL's jsonb accepts: valid UTF-8, no
 * \u0000 escape, no unpaired surrogate escape, numbers within numeric's
 * range, nesting at most 1000 deep. Reads s[0..n) only; linear time.
 */
bool json_valid(const char *s, size_t n);

/*
 * Appends s[0..n) as text PostgreSQL accepts: invalid UTF-8 and NUL bytes
 * become U+FFFD.
 */
void json_append_text(struct json_buf *b, const char *s, size_t n);

enum json_kind { JSON_NONE, JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

/*
 * Looks up a dot path ("a.b") of object members in the JSON text
 * doc[0..n) (assumed valid: jsonb text from the server). Appends a string's
 * unescaped value (UTF-8), or a number's or boolean's text, to out; returns
 * the kind found (JSON_NONE: missing; nothing appended for null, array,
 * object). Each name between dots is one member's name, compared after
 * unescaping; of two members with one name (not in jsonb) the first wins.
 * Malformed text reads as missing, never past doc[n-1].
 */
enum json_kind json_get(const char *doc, size_t n, const char *path, struct json_buf *out);

#endif
