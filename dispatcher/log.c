/*
 * Logging to stderr, text or JSON; see log.h.
 *
 * Values from tasks are chosen by whoever inserts a task: a kind
 * "x level=error msg=spoofed" logged through "kind=%s" added a level to
 * the text line and a second "level" and "msg" to the JSON one. So keys
 * come from the format string only, which is the programmer's, and what an
 * argument printed is always a value. log_msg() formats the message one
 * conversion at a time and remembers which bytes came from arguments; the
 * renderers then never split an argument into fields: the text renderer
 * quotes it logfmt-style (kind="x level=error") when it would read as more
 * than one value, the JSON one ends a field only at a space of the format
 * string, and both escape control characters and invalid UTF-8. Callers
 * mark nothing, and so cannot forget to: the alternative, a quoting helper
 * wrapped around each task value, is only as safe as every call site.
 */
#include "log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* A message's bytes before rendering. Rendered, each byte becomes at most
 * 6 (\u00XX, or \xXX plus its share of a pair of quotes), so every line
 * fits in LOG_LINE_MAX whole. */
#define LOG_MSG_MAX 4096
_Static_assert(LOG_LINE_MAX > 6 * LOG_MSG_MAX + 64, "a rendered message fits in a line");

/* A formatted message: text[i] came from an argument when arg[i]. */
struct log_message {
	char text[LOG_MSG_MAX];
	bool arg[LOG_MSG_MAX];
	size_t len;
};

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

static void
log_literal(struct log_message *m, char c)
{
	if (m->len + 1 < sizeof m->text) {
		/* One line per event, whatever the format carried in. */
		m->text[m->len] = c == '\n' || c == '\r' ? ' ' : c;
		m->arg[m->len++] = false;
	}
}

/*
 * Formats fmt into m, each conversion with its own snprintf() so that its
 * bytes can be marked. The format attribute on log_msg() has checked every
 * format against its arguments at compile time; this walks the same
 * grammar (flags, width, precision, length, conversion) to take each
 * argument with its type. Wide characters and %n are not supported: no
 * message uses them, and they print "?".
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void
log_format(struct log_message *m, const char *fmt, va_list ap)
{
	const char *f = fmt;

	m->len = 0;
	while (*f != '\0') {
		enum { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_J, LEN_Z, LEN_T, LEN_BIG_L } lm = LEN_NONE;
		const char *start = f;
		char spec[32], *out = m->text + m->len;
		size_t room = sizeof m->text - m->len;
		int stars[2] = {0, 0}, nstars = 0, w = 0;
		char conv;

		if (*f != '%' || f[1] == '%') {
			log_literal(m, *f);
			f += *f == '%' ? 2 : 1;
			continue;
		}
		f++;
		while (*f != '\0' && strchr("-+ #0'", *f) != NULL)
			f++;
		if (*f == '*') {
			stars[nstars++] = va_arg(ap, int);
			f++;
		}
		while (*f >= '0' && *f <= '9')
			f++;
		if (*f == '.') {
			f++;
			if (*f == '*') {
				stars[nstars++] = va_arg(ap, int);
				f++;
			}
			while (*f >= '0' && *f <= '9')
				f++;
		}
		if (f[0] == 'h' && f[1] == 'h')
			lm = LEN_HH, f += 2;
		else if (f[0] == 'l' && f[1] == 'l')
			lm = LEN_LL, f += 2;
		else if (*f == 'h')
			lm = LEN_H, f++;
		else if (*f == 'l')
			lm = LEN_L, f++;
		else if (*f == 'j')
			lm = LEN_J, f++;
		else if (*f == 'z')
			lm = LEN_Z, f++;
		else if (*f == 't')
			lm = LEN_T, f++;
		else if (*f == 'L')
			lm = LEN_BIG_L, f++;
		conv = *f;
		if (conv == '\0' || (size_t) (f + 1 - start) >= sizeof spec)
			break;
		f++;
		memcpy(spec, start, (size_t) (f - start));
		spec[f - start] = '\0';

#define LOG_CONV(v) (nstars == 0 ? snprintf(out, room, spec, v) \
                     : nstars == 1 ? snprintf(out, room, spec, stars[0], v) \
                     : snprintf(out, room, spec, stars[0], stars[1], v))
		switch (conv) {
		case 'd':
		case 'i':
			switch (lm) {
			case LEN_L: w = LOG_CONV(va_arg(ap, long)); break;
			case LEN_LL: w = LOG_CONV(va_arg(ap, long long)); break;
			case LEN_J: w = LOG_CONV(va_arg(ap, intmax_t)); break;
			case LEN_Z: w = LOG_CONV(va_arg(ap, ssize_t)); break;
			case LEN_T: w = LOG_CONV(va_arg(ap, ptrdiff_t)); break;
			default: w = LOG_CONV(va_arg(ap, int)); break;
			}
			break;
		case 'u':
		case 'o':
		case 'x':
		case 'X':
			switch (lm) {
			case LEN_L: w = LOG_CONV(va_arg(ap, unsigned long)); break;
			case LEN_LL: w = LOG_CONV(va_arg(ap, unsigned long long)); break;
			case LEN_J: w = LOG_CONV(va_arg(ap, uintmax_t)); break;
			case LEN_Z: w = LOG_CONV(va_arg(ap, size_t)); break;
			case LEN_T: w = LOG_CONV(va_arg(ap, ptrdiff_t)); break;
			default: w = LOG_CONV(va_arg(ap, unsigned int)); break;
			}
			break;
		case 'e': case 'E': case 'f': case 'F': case 'g': case 'G': case 'a': case 'A':
			if (lm == LEN_BIG_L)
				w = LOG_CONV(va_arg(ap, long double));
			else
				w = LOG_CONV(va_arg(ap, double));
			break;
		case 'c':
			if (lm == LEN_L) {
				(void) va_arg(ap, unsigned int);   /* wint_t */
				w = snprintf(out, room, "?");
			} else {
				w = LOG_CONV(va_arg(ap, int));
			}
			break;
		case 's':
			if (lm == LEN_L) {
				(void) va_arg(ap, void *);
				w = snprintf(out, room, "?");
			} else {
				w = LOG_CONV(va_arg(ap, const char *));
			}
			break;
		case 'p':
			w = LOG_CONV(va_arg(ap, void *));
			break;
		default:
			(void) va_arg(ap, void *);   /* %n: never written through */
			w = snprintf(out, room, "?");
			break;
		}
#undef LOG_CONV
		if (w < 0)
			w = 0;
		if ((size_t) w >= room)
			w = (int) room - 1;
		memset(m->arg + m->len, true, (size_t) w);
		m->len += (size_t) w;
	}
	m->text[m->len] = '\0';
}
#pragma GCC diagnostic pop

/* Length of the valid UTF-8 sequence at s[0..n), 0 if there is none. */
static size_t
log_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned min;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f, min = 0x80;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Output into a bounded buffer; at < len always, buf[at] == '\0'. */
struct log_out {
	char *buf;
	size_t len;
	size_t at;
};

/* Appends n bytes, or nothing if they do not fit (never half an escape). */
static void
log_out_put(struct log_out *o, const char *s, size_t n)
{
	if (o->at + n + 1 > o->len)
		return;
	memcpy(o->buf + o->at, s, n);
	o->at += n;
	o->buf[o->at] = '\0';
}

static void
log_out_str(struct log_out *o, const char *s)
{
	log_out_put(o, s, strlen(s));
}

/*
 * Appends s[0..n) escaped for inside double quotes. JSON: \" \\ \n \r
 * \t, other control characters as \u00XX, invalid UTF-8 as U+FFFD. Text:
 * the same, but \xXX for control and invalid bytes (logfmt, as Go's %q).
 */
static void
log_out_escaped(struct log_out *o, const char *s, size_t n, bool json)
{
	const unsigned char *u = (const unsigned char *) s;

	for (size_t i = 0; i < n;) {
		size_t k = log_utf8_len(u + i, n - i);
		char esc[8];

		if (k == 0) {
			if (json)
				log_out_str(o, "\xef\xbf\xbd");
			else
				snprintf(esc, sizeof esc, "\\x%02x", u[i]), log_out_str(o, esc);
			i++;
			continue;
		}
		if (k > 1) {
			log_out_put(o, s + i, k);
		} else if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\', esc[1] = (char) u[i];
			log_out_put(o, esc, 2);
		} else if (u[i] == '\n') {
			log_out_str(o, "\\n");
		} else if (u[i] == '\r') {
			log_out_str(o, "\\r");
		} else if (u[i] == '\t') {
			log_out_str(o, "\\t");
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			snprintf(esc, sizeof esc, json ? "\\u%04x" : "\\x%02x", u[i]);
			log_out_str(o, esc);
		} else {
			log_out_put(o, s + i, 1);
		}
		i += k;
	}
}

/*
 * Whether an argument's bytes s[0..n) must be quoted in the text format.
 * As a value (after "key="), anything that would end it or start
 * another: a space, '=', a quote. In free text only what could make a
 * key or break the line: '=' or a quote. Anywhere, a control character,
 * DEL or invalid UTF-8.
 */
static bool
log_text_needs_quotes(const char *s, size_t n, bool value)
{
	const unsigned char *u = (const unsigned char *) s;

	if (value && n == 0)
		return true;
	for (size_t i = 0; i < n;) {
		size_t k = log_utf8_len(u + i, n - i);

		if (k == 0 || u[i] < 0x20 || u[i] == 0x7f || u[i] == '=' || u[i] == '"'
		    || (value && u[i] == ' '))
			return true;
		i += k;
	}
	return false;
}

static void
log_render_text(enum log_level level, const struct log_message *m, struct log_out *o)
{
	log_out_str(o, log_level_names[level]);
	log_out_str(o, " ");
	for (size_t i = 0; i < m->len;) {
		size_t j = i;
		bool after_eq, in_quotes;

		if (!m->arg[i]) {
			log_out_put(o, m->text + i, 1);
			i++;
			continue;
		}
		while (j < m->len && m->arg[j])
			j++;
		after_eq = i > 0 && m->text[i - 1] == '=';
		/* "key=\"%s\"": the format quoted it already. */
		in_quotes = i > 0 && m->text[i - 1] == '"' && j < m->len && m->text[j] == '"';
		if (in_quotes) {
			log_out_escaped(o, m->text + i, j - i, false);
		} else if (log_text_needs_quotes(m->text + i, j - i, after_eq)
		           || (j < m->len && m->text[j] == '=')) {
			log_out_str(o, "\"");
			log_out_escaped(o, m->text + i, j - i, false);
			log_out_str(o, "\"");
		} else {
			log_out_put(o, m->text + i, j - i);
		}
		i = j;
	}
}

/*
 * JSON: each leading "key=value" of the format becomes a field: the key
 * written in the format ([a-z_]), the value up to the format's next space
 * (an argument's spaces are part of the value), without the quotes when
 * the format quoted it. The rest of the message is "msg".
 */
static void
log_render_json(enum log_level level, const struct log_message *m, struct log_out *o)
{
	size_t p = 0;

	log_out_str(o, "\"level\":\"");
	log_out_str(o, log_level_names[level]);
	log_out_str(o, "\"");
	for (;;) {
		size_t key = p, eq, start, end;

		while (key < m->len && !m->arg[key] && m->text[key] == ' ')
			key++;
		eq = key;
		while (eq < m->len && !m->arg[eq] && ((m->text[eq] >= 'a' && m->text[eq] <= 'z') || m->text[eq] == '_'))
			eq++;
		if (eq == key || eq >= m->len || m->arg[eq] || m->text[eq] != '=')
			break;
		start = eq + 1;
		if (start < m->len && !m->arg[start] && m->text[start] == '"') {
			/* Quoted by the format: up to its closing quote. */
			end = start + 1;
			while (end < m->len && (m->arg[end] || m->text[end] != '"'))
				end++;
			if (end >= m->len)
				break;
			start++;
			p = end + 1;
		} else {
			end = start;
			while (end < m->len && (m->arg[end] || m->text[end] != ' '))
				end++;
			p = end;
		}
		log_out_str(o, ",\"");
		log_out_put(o, m->text + key, eq - key);
		log_out_str(o, "\":\"");
		log_out_escaped(o, m->text + start, end - start, true);
		log_out_str(o, "\"");
	}
	while (p < m->len && !m->arg[p] && m->text[p] == ' ')
		p++;
	log_out_str(o, ",\"msg\":\"");
	log_out_escaped(o, m->text + p, m->len - p, true);
	log_out_str(o, "\"");
}

static void
log_render_message(enum log_format format, enum log_level level, const struct log_message *m,
                   char *buf, size_t len)
{
	struct log_out o = {buf, len, 0};

	if (len == 0)
		return;
	buf[0] = '\0';
	if (format == LOG_JSON)
		log_render_json(level, m, &o);
	else
		log_render_text(level, m, &o);
}

void
log_render(enum log_format format, enum log_level level, char *buf, size_t len, const char *fmt, ...)
{
	struct log_message m;
	va_list ap;

	va_start(ap, fmt);
	log_format(&m, fmt, ap);
	va_end(ap);
	log_render_message(format, level, &m, buf, len);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	struct log_message m;
	char line[LOG_LINE_MAX], ts[96];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (level < log_local.level)
		return;
	va_start(ap, fmt);
	log_format(&m, fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
	log_render_message(log_local.format, level, &m, line, sizeof line);
	if (log_local.format == LOG_JSON)
		fprintf(stderr, "{\"ts\":\"%s\",%s}\n", ts, line);
	else
		fprintf(stderr, "%s %s\n", ts, line);
	fflush(stderr);
}
