/* PostgreSQL array literals for statement parameters; see pg_array.h. */
#include "pg_array.h"

/* Appends "{1,2,3}". */
void
pg_array_ll(struct json_buf *b, const long long *v, size_t n)
{
	json_buf_append(b, "{", 1);
	for (size_t i = 0; i < n; i++)
		json_buf_printf(b, "%s%lld", i > 0 ? "," : "", v[i]);
	json_buf_append(b, "}", 1);
}

void
pg_array_int(struct json_buf *b, const int *v, size_t n)
{
	json_buf_append(b, "{", 1);
	for (size_t i = 0; i < n; i++)
		json_buf_printf(b, "%s%d", i > 0 ? "," : "", v[i]);
	json_buf_append(b, "}", 1);
}

/* Appends one array element: NULL, or the text double-quoted with " and \
 * backslash-escaped (the array input syntax). */
void
pg_array_elem(struct json_buf *b, const char *s)
{
	if (s == NULL) {
		json_buf_append(b, "NULL", 4);
		return;
	}
	json_buf_append(b, "\"", 1);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			json_buf_append(b, "\\", 1);
		json_buf_append(b, p, 1);
	}
	json_buf_append(b, "\"", 1);
}

void
pg_array_text(struct json_buf *b, const char *const *v, size_t n)
{
	json_buf_append(b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			json_buf_append(b, ",", 1);
		pg_array_elem(b, v[i]);
	}
	json_buf_append(b, "}", 1);
}

void
pg_array_bool(struct json_buf *b, const bool *v, size_t n)
{
	json_buf_append(b, "{", 1);
	for (size_t i = 0; i < n; i++)
		json_buf_printf(b, "%s%s", i > 0 ? "," : "", v[i] ? "t" : "f");
	json_buf_append(b, "}", 1);
}
