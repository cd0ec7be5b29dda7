/* Logging to stderr, text or JSON; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static struct {
	enum log_level level;
	enum log_format format;
} log_local = {LOG_INFO, LOG_TEXT};

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void
log_setup(enum log_level level, enum log_format format)
{
	log_local.level = level;
	log_local.format = format;
}

bool
log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level) i;
			return true;
		}
	return false;
}

bool
log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_JSON;
	else
		return false;
	return true;
}

/* Appends s[0..n) to buf as JSON string content (no quotes). */
static size_t
log_json_escape(char *buf, size_t len, size_t at, const char *s, size_t n)
{
	for (size_t i = 0; i < n && at + 7 < len; i++) {
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\') {
			buf[at++] = '\\';
			buf[at++] = (char) c;
		} else if (c < 0x20) {
			at += (size_t) snprintf(buf + at, len - at, "\\u%04x", c);
		} else {
			buf[at++] = (char) c;
		}
	}
	buf[at] = '\0';
	return at;
}

static size_t
log_put(char *buf, size_t len, size_t at, const char *s)
{
	size_t n = strlen(s);

	if (at + n + 1 > len)
		n = len - at - 1;
	memcpy(buf + at, s, n);
	at += n;
	buf[at] = '\0';
	return at;
}

/*
 * JSON: each leading "key=value" token (key of [a-z_], value without
 * spaces) becomes a field; the rest of the message is "msg".
 */
static void
log_render_json(enum log_level level, const char *msg, char *buf, size_t len)
{
	const char *p = msg;
	size_t at = 0;

	at = log_put(buf, len, at, "\"level\":\"");
	at = log_put(buf, len, at, log_level_names[level]);
	at = log_put(buf, len, at, "\"");
	for (;;) {
		const char *key = p, *eq, *end;

		while (*key == ' ')
			key++;
		eq = key;
		while ((*eq >= 'a' && *eq <= 'z') || *eq == '_')
			eq++;
		if (eq == key || *eq != '=')
			break;
		end = eq + 1;
		while (*end != '\0' && *end != ' ')
			end++;
		at = log_put(buf, len, at, ",\"");
		at = log_json_escape(buf, len, at, key, (size_t) (eq - key));
		at = log_put(buf, len, at, "\":\"");
		at = log_json_escape(buf, len, at, eq + 1, (size_t) (end - eq - 1));
		at = log_put(buf, len, at, "\"");
		p = end;
	}
	while (*p == ' ')
		p++;
	at = log_put(buf, len, at, ",\"msg\":\"");
	at = log_json_escape(buf, len, at, p, strlen(p));
	log_put(buf, len, at, "\"");
}

void
log_render(enum log_format format, enum log_level level, const char *msg, char *buf, size_t len)
{
	if (format == LOG_JSON)
		log_render_json(level, msg, buf, len);
	else
		snprintf(buf, len, "%s %s", log_level_names[level], msg);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[4096], line[8192], ts[96];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (level < log_local.level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* One line per event, whatever a message carried in. */
	for (char *c = msg; *c != '\0'; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
	log_render(log_local.format, level, msg, line, sizeof line);
	if (log_local.format == LOG_JSON)
		fprintf(stderr, "{\"ts\":\"%s\",%s}\n", ts, line);
	else
		fprintf(stderr, "%s %s\n", ts, line);
	fflush(stderr);
}
