/*
 * PostgreSQL array literals ("{1,2}", "{\"a\",NULL}") for the parameters
 * of the daemon's statements: a set of rows travels as arrays fed to
 * unnest(), one round trip and one plan for any number of rows.
 */
#ifndef PGDISPATCH_PG_ARRAY_H
#define PGDISPATCH_PG_ARRAY_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

/* Each appends the whole array, braces included, to b. */
void pg_array_ll(struct json_buf *b, const long long *v, size_t n);
void pg_array_int(struct json_buf *b, const int *v, size_t n);
void pg_array_bool(struct json_buf *b, const bool *v, size_t n);
/* Elements NULL (a NULL pointer) or double-quoted and escaped. */
void pg_array_text(struct json_buf *b, const char *const *v, size_t n);

/* Appends one text element as pg_array_text() writes it. */
void pg_array_elem(struct json_buf *b, const char *s);

#endif
