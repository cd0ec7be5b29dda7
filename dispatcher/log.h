/*
 * Logging: one line per event to stderr, context first.
 *
 * Messages are written "key=value key=value free text", e.g.
 * log_info("task=%lld kind=%s attempt=%d complete", ...). In text format the
 * line is printed after a timestamp and level; in JSON format the leading
 * key=value pairs become fields and the rest becomes "msg", so both formats
 * carry the same facts. Lower-case messages, no trailing period, never a
 * password (see db_conninfo_safe()).
 *
 * Keys are read from the format string only; whatever a conversion prints
 * (a task's kind, an error text) is a value, however it looks: the text
 * format quotes it logfmt-style when it has spaces, '=', quotes, control
 * characters or invalid UTF-8 (kind="x level=error"), JSON keeps it in one
 * string, with invalid UTF-8 replaced. Pass task data as arguments, never
 * as part of the format.
 */
#ifndef PGDISPATCH_LOG_H
#define PGDISPATCH_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_TEXT, LOG_JSON };

/* Sets the threshold and format; before any call: info, text. */
void log_setup(enum log_level level, enum log_format format);

/* Parses "debug|info|warn|error" and "text|json"; false if unknown. */
bool log_level_parse(const char *s, enum log_level *out);
bool log_format_parse(const char *s, enum log_format *out);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Room for any rendered line: no message is ever cut mid-escape. */
#define LOG_LINE_MAX 32768

/*
 * Renders one line as log_msg() would, into buf, without the timestamp
 * (for tests). With len >= LOG_LINE_MAX the line is whole; a smaller buf
 * may cut it.
 */
void log_render(enum log_format format, enum log_level level, char *buf, size_t len,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
