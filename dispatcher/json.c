/*
 * JSON escaping, validation and text cleaning; see json.h.
 *
 * Vocabulary: a "sequence" is one well-formed UTF-8 encoding of a scalar
 * value (Unicode Table 3-7: no overlongs, no surrogates, nothing above
 * U+10FFFF). Where bytes are not a sequence, each maximal ill-formed
 * subpart becomes one U+FFFD, the practice Unicode recommends (chapter 3,
 * "U+FFFD Substitution of Maximal Subparts") and WHATWG and Python follow:
 * a lead byte and as many continuation bytes as could still have completed
 * it are one subpart; any other byte is a subpart of its own. So "\xE2\x82A"
 * (a truncated euro sign) gives one U+FFFD then "A", and a surrogate encoded
 * as "\xED\xA0\x80" gives three, because ED A0 can never start a sequence.
 */
#include "json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL's jsonb parser has no fixed limit (it stops at the stack
 * limit); 1000 is far beyond any task result and keeps our own stack small. */
#define JSON_MAX_DEPTH 1000

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
#define JSON_REPLACEMENT "\xEF\xBF\xBD"

static void
json_buf_oom(size_t want)
{
	fprintf(stderr, "pgdispatch: out of memory (json buffer of %zu bytes)\n", want);
	abort();
}

/* Makes room for extra more bytes plus the terminating NUL. */
static void
json_buf_reserve(struct json_buf *b, size_t extra)
{
	size_t need, cap;
	char *data;

	if (extra > SIZE_MAX - 1 - b->len)
		json_buf_oom(SIZE_MAX);
	need = b->len + extra + 1;
	if (b->data != NULL && need <= b->cap)
		return;
	/* Doubling keeps a long run of small appends linear overall. */
	cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	data = realloc(b->data, cap);
	if (data == NULL)
		json_buf_oom(cap);
	b->data = data;
	b->cap = cap;
}

void
json_buf_append(struct json_buf *b, const char *s, size_t n)
{
	json_buf_reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
json_buf_printf(struct json_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	json_buf_reserve(b, 0);
	va_start(ap, fmt);
	r = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (r < 0) {
		/* Only a bad format or wide character gets here: a bug. */
		fprintf(stderr, "pgdispatch: json_buf_printf: cannot format \"%s\"\n", fmt);
		abort();
	}
	if ((size_t)r >= b->cap - b->len) {
		json_buf_reserve(b, (size_t)r);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)r;
}

void
json_buf_reset(struct json_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
json_buf_free(struct json_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/*
 * Returns the length (1 to 4) of the sequence at s[0..n), or 0 when it is
 * ill-formed, with *bad set to the length of the maximal subpart to replace
 * (at least 1). NUL counts as a sequence; callers decide what it means.
 */
static size_t
json_utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xBF;   /* range of the second byte */
	size_t need;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0;   /* below is overlong */
		else if (c == 0xED)
			hi = 0x9F;   /* above is a surrogate */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90;   /* below is overlong */
		else if (c == 0xF4)
			hi = 0x8F;   /* above is past U+10FFFF */
	} else {
		*bad = 1;    /* a continuation byte, C0, C1 or F5..FF */
		return 0;
	}
	for (size_t i = 1; i < need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return need;
}

/*
 * Appends s[0..n) with ill-formed UTF-8 and NUL replaced, and with quotes,
 * backslashes and control characters escaped when escape is set. Runs of
 * bytes that pass unchanged are copied in one go.
 */
static void
json_append_clean(struct json_buf *b, const unsigned char *s, size_t n, bool escape)
{
	size_t start = 0, i = 0;

	json_buf_reserve(b, n);
	while (i < n) {
		unsigned char c = s[i];
		size_t len, bad = 1;
		char esc[8];

		if (c >= 0x80) {
			len = json_utf8_seq(s + i, n - i, &bad);
			if (len > 0) {
				i += len;
				continue;
			}
		} else if (c != '\0' && (!escape || (c >= 0x20 && c != '"' && c != '\\'))) {
			i++;
			continue;
		}
		json_buf_append(b, (const char *)s + start, i - start);
		if (c == '\0' || c >= 0x80) {
			/* PostgreSQL text cannot hold NUL, nor jsonb \u0000. */
			json_buf_append(b, JSON_REPLACEMENT, 3);
			i += bad;
		} else {
			switch (c) {
			case '"': memcpy(esc, "\\\"", 3); break;
			case '\\': memcpy(esc, "\\\\", 3); break;
			case '\b': memcpy(esc, "\\b", 3); break;
			case '\f': memcpy(esc, "\\f", 3); break;
			case '\n': memcpy(esc, "\\n", 3); break;
			case '\r': memcpy(esc, "\\r", 3); break;
			case '\t': memcpy(esc, "\\t", 3); break;
			default: snprintf(esc, sizeof esc, "\\u%04x", (unsigned)c); break;
			}
			json_buf_append(b, esc, strlen(esc));
			i++;
		}
		start = i;
	}
	json_buf_append(b, (const char *)s + start, n - start);
}

void
json_append_string(struct json_buf *b, const char *s, size_t n)
{
	json_buf_append(b, "\"", 1);
	json_append_clean(b, (const unsigned char *)s, n, true);
	json_buf_append(b, "\"", 1);
}

void
json_append_text(struct json_buf *b, const char *s, size_t n)
{
	json_append_clean(b, (const unsigned char *)s, n, false);
}

/* The validator's cursor. It only moves forward, so validation is linear,
 * and every read checks pos < n first: the input need not end in NUL. */
struct json_scan {
	const unsigned char *s;
	size_t n;
	size_t pos;
};

static bool
json_at(const struct json_scan *sc, unsigned char c)
{
	return sc->pos < sc->n && sc->s[sc->pos] == c;
}

static bool
json_at_digit(const struct json_scan *sc)
{
	return sc->pos < sc->n && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9';
}

static void
json_skip_ws(struct json_scan *sc)
{
	while (sc->pos < sc->n) {
		unsigned char c = sc->s[sc->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		sc->pos++;
	}
}

/* Reads the four hex digits of a \u escape into *cp. */
static bool
json_scan_hex4(struct json_scan *sc, unsigned *cp)
{
	unsigned v = 0;

	if (sc->n - sc->pos < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		unsigned char c = sc->s[sc->pos++];

		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v * 16 + (c - 'A' + 10);
		else
			return false;
	}
	*cp = v;
	return true;
}

/*
 * Reads one escape, the backslash under the cursor. jsonb turns \u escapes
 * into characters, so it rejects what is no character: \u0000 (text cannot
 * hold it), a high surrogate not followed by a \u low surrogate, and a low
 * surrogate on its own.
 */
static bool
json_scan_escape(struct json_scan *sc)
{
	unsigned cp, low;

	sc->pos++;
	if (sc->pos >= sc->n)
		return false;
	switch (sc->s[sc->pos++]) {
	case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
		return true;
	case 'u':
		if (!json_scan_hex4(sc, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
			return false;
		if (cp < 0xD800 || cp > 0xDBFF)
			return true;
		if (!json_at(sc, '\\'))
			return false;
		sc->pos++;
		if (!json_at(sc, 'u'))
			return false;
		sc->pos++;
		return json_scan_hex4(sc, &low) && low >= 0xDC00 && low <= 0xDFFF;
	default:
		return false;
	}
}

/* Reads one string, the opening quote under the cursor. */
static bool
json_scan_string(struct json_scan *sc)
{
	sc->pos++;
	while (sc->pos < sc->n) {
		unsigned char c = sc->s[sc->pos];
		size_t len, bad;

		if (c == '"') {
			sc->pos++;
			return true;
		}
		if (c == '\\') {
			if (!json_scan_escape(sc))
				return false;
		} else if (c < 0x20) {
			return false;
		} else if (c < 0x80) {
			sc->pos++;
		} else {
			len = json_utf8_seq(sc->s + sc->pos, sc->n - sc->pos, &bad);
			if (len == 0)
				return false;
			sc->pos += len;
		}
	}
	return false;
}

/* Counts saturate here, far above any limit below, so they cannot
 * overflow however long the number is. */
#define JSON_COUNT_CAP 1000000000000LL

/* Skips a run of digits and returns how many there were; adds their value
 * to *value when asked. */
static long long
json_count_digits(struct json_scan *sc, long long *value)
{
	long long count = 0;

	while (json_at_digit(sc)) {
		if (value != NULL && *value < JSON_COUNT_CAP)
			*value = *value * 10 + (sc->s[sc->pos] - '0');
		if (count < JSON_COUNT_CAP)
			count++;
		sc->pos++;
	}
	return count;
}

/*
 * Reads one number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 *
 * jsonb stores numbers as numeric, whose range is narrower than JSON's, and
 * rejects the rest with "value overflows numeric format". As numeric_in
 * counts (checked against PostgreSQL 15): the exponent must be below
 * INT_MAX/2 in magnitude, at most 16383 digits may follow the decimal point
 * once the exponent has moved it, and the first significant digit may stand
 * for at most 10^131071 (a base-10000 weight of 32767).
 */
static bool
json_scan_number(struct json_scan *sc)
{
	long long int_digits = 0, frac_digits = 0, frac_zeros = 0, exp = 0, scale;
	bool nonzero = false;

	if (json_at(sc, '-'))
		sc->pos++;
	if (json_at(sc, '0')) {
		sc->pos++;
	} else if (json_at_digit(sc)) {
		nonzero = true;
		int_digits = json_count_digits(sc, NULL);
	} else {
		return false;
	}
	if (json_at(sc, '.')) {
		sc->pos++;
		if (!json_at_digit(sc))
			return false;
		if (!nonzero) {
			while (json_at(sc, '0')) {
				if (frac_zeros < JSON_COUNT_CAP)
					frac_zeros++;
				sc->pos++;
			}
			nonzero = json_at_digit(sc);
		}
		frac_digits = frac_zeros + json_count_digits(sc, NULL);
	}
	if (json_at(sc, 'e') || json_at(sc, 'E')) {
		bool negative;

		sc->pos++;
		negative = json_at(sc, '-');
		if (negative || json_at(sc, '+'))
			sc->pos++;
		if (!json_at_digit(sc))
			return false;
		json_count_digits(sc, &exp);
		if (negative)
			exp = -exp;
	}
	if (exp >= 1073741823 || exp <= -1073741823)
		return false;
	scale = frac_digits - exp;
	if (scale > 16383)
		return false;
	if (nonzero) {
		/* Power of ten of the first significant digit. */
		long long first = int_digits > 0 ? int_digits - 1 + exp : exp - frac_zeros - 1;

		if (first > 131071)
			return false;
	}
	return true;
}

/* Reads the literal word (true, false, null) under the cursor. */
static bool
json_scan_word(struct json_scan *sc, const char *word, size_t len)
{
	if (sc->n - sc->pos < len || memcmp(sc->s + sc->pos, word, len) != 0)
		return false;
	sc->pos += len;
	return true;
}

/* Reads an object member's key and colon, up to its value. */
static bool
json_scan_key(struct json_scan *sc)
{
	if (!json_at(sc, '"') || !json_scan_string(sc))
		return false;
	json_skip_ws(sc);
	if (!json_at(sc, ':'))
		return false;
	sc->pos++;
	json_skip_ws(sc);
	return true;
}

/*
 * A loop over an explicit stack of open containers rather than recursion,
 * so that nesting is bounded by JSON_MAX_DEPTH bytes of stack however much
 * '[' a handler prints.
 */
bool
json_valid(const char *s, size_t n)
{
	struct json_scan sc = { (const unsigned char *)s, n, 0 };
	unsigned char stack[JSON_MAX_DEPTH];   /* '{' or '[' per open container */
	size_t depth = 0;

	json_skip_ws(&sc);
	for (;;) {
		/* A value starts at the cursor. */
		if (sc.pos >= sc.n)
			return false;
		switch (sc.s[sc.pos]) {
		case '{':
		case '[':
			if (depth == JSON_MAX_DEPTH)
				return false;
			stack[depth++] = sc.s[sc.pos++];
			json_skip_ws(&sc);
			if (json_at(&sc, stack[depth - 1] == '{' ? '}' : ']')) {
				sc.pos++;
				depth--;
				break;
			}
			if (stack[depth - 1] == '{' && !json_scan_key(&sc))
				return false;
			continue;
		case '"':
			if (!json_scan_string(&sc))
				return false;
			break;
		case 't':
			if (!json_scan_word(&sc, "true", 4))
				return false;
			break;
		case 'f':
			if (!json_scan_word(&sc, "false", 5))
				return false;
			break;
		case 'n':
			if (!json_scan_word(&sc, "null", 4))
				return false;
			break;
		default:
			if (!json_scan_number(&sc))
				return false;
			break;
		}

		/* A value has ended: close containers until one goes on. */
		for (;;) {
			json_skip_ws(&sc);
			if (depth == 0)
				return sc.pos == sc.n;
			if (json_at(&sc, ',')) {
				sc.pos++;
				json_skip_ws(&sc);
				if (stack[depth - 1] == '{' && !json_scan_key(&sc))
					return false;
				break;
			}
			if (!json_at(&sc, stack[depth - 1] == '{' ? '}' : ']'))
				return false;
			sc.pos++;
			depth--;
		}
	}
}

/* --- json_get ------------------------------------------------------------ */

/* Appends code point cp as UTF-8. */
static void
json_append_utf8(struct json_buf *b, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	json_buf_append(b, u, n);
}

/*
 * Decodes the \u escape whose 'u' was just read into out. A surrogate pair
 * is one character; a surrogate on its own (jsonb refuses it, plain json
 * may hold it) is no character and becomes U+FFFD.
 */
static bool
json_get_unicode(struct json_scan *sc, struct json_buf *out)
{
	unsigned cp, low;
	size_t after;

	if (!json_scan_hex4(sc, &cp))
		return false;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		after = sc->pos;
		if (sc->n - sc->pos >= 6 && sc->s[sc->pos] == '\\' && sc->s[sc->pos + 1] == 'u') {
			sc->pos += 2;
			if (json_scan_hex4(sc, &low) && low >= 0xDC00 && low <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
				if (out != NULL)
					json_append_utf8(out, cp);
				return true;
			}
		}
		sc->pos = after;   /* the next escape is read on its own */
		cp = 0xFFFD;
	} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
		cp = 0xFFFD;
	}
	if (out != NULL)
		json_append_utf8(out, cp);
	return true;
}

/*
 * Reads the string whose opening quote is under the cursor, appending its
 * unescaped value to out unless out is NULL (skipping). Raw bytes are
 * copied in runs. False when the text ends inside it or an escape is bad.
 */
static bool
json_get_string(struct json_scan *sc, struct json_buf *out)
{
	size_t start = ++sc->pos;

	while (sc->pos < sc->n) {
		unsigned char c = sc->s[sc->pos];
		char e;

		if (c != '"' && c != '\\') {
			sc->pos++;
			continue;
		}
		if (out != NULL)
			json_buf_append(out, (const char *)sc->s + start, sc->pos - start);
		sc->pos++;
		if (c == '"')
			return true;
		if (sc->pos >= sc->n)
			return false;
		switch (sc->s[sc->pos++]) {
		case '"': e = '"'; break;
		case '\\': e = '\\'; break;
		case '/': e = '/'; break;
		case 'b': e = '\b'; break;
		case 'f': e = '\f'; break;
		case 'n': e = '\n'; break;
		case 'r': e = '\r'; break;
		case 't': e = '\t'; break;
		case 'u':
			if (!json_get_unicode(sc, out))
				return false;
			start = sc->pos;
			continue;
		default:
			return false;
		}
		if (out != NULL)
			json_buf_append(out, &e, 1);
		start = sc->pos;
	}
	return false;
}

/* Moves the cursor past a number or word: to the next delimiter. */
static void
json_get_token(struct json_scan *sc)
{
	while (sc->pos < sc->n && strchr(",:]} \t\r\n", sc->s[sc->pos]) == NULL)
		sc->pos++;
}

/*
 * Moves the cursor past the value under it. Containers are skipped by
 * counting brackets outside strings, with no stack: the text is assumed
 * valid, and a count cannot overflow the C stack whatever the nesting.
 */
static bool
json_get_skip(struct json_scan *sc)
{
	size_t depth = 0;

	do {
		if (sc->pos >= sc->n)
			return false;
		switch (sc->s[sc->pos]) {
		case '"':
			if (!json_get_string(sc, NULL))
				return false;
			break;
		case '{':
		case '[':
			depth++;
			sc->pos++;
			break;
		case '}':
		case ']':
			if (depth == 0)
				return false;
			depth--;
			sc->pos++;
			break;
		default:
			if (depth == 0)
				json_get_token(sc);
			else
				sc->pos++;
			break;
		}
	} while (depth > 0);
	return true;
}

/* The value under the cursor: its kind, and its text appended to out
 * for a string, number or boolean. */
static enum json_kind
json_get_value(struct json_scan *sc, struct json_buf *out)
{
	size_t start = sc->pos, len = out->len;

	if (sc->pos >= sc->n)
		return JSON_NONE;
	switch (sc->s[sc->pos]) {
	case '{':
		return JSON_OBJECT;
	case '[':
		return JSON_ARRAY;
	case '"':
		if (json_get_string(sc, out))
			return JSON_STRING;
		out->len = len;   /* no half a value */
		if (out->data != NULL)
			out->data[len] = '\0';
		return JSON_NONE;
	case 'n':
		return json_scan_word(sc, "null", 4) ? JSON_NULL : JSON_NONE;
	case 't':
	case 'f':
		if (!json_scan_word(sc, "true", 4) && !json_scan_word(sc, "false", 5))
			return JSON_NONE;
		json_buf_append(out, (const char *)sc->s + start, sc->pos - start);
		return JSON_BOOL;
	default:
		if (sc->s[sc->pos] != '-' && (sc->s[sc->pos] < '0' || sc->s[sc->pos] > '9'))
			return JSON_NONE;
		json_get_token(sc);
		json_buf_append(out, (const char *)sc->s + start, sc->pos - start);
		return JSON_NUMBER;
	}
}

enum json_kind
json_get(const char *doc, size_t n, const char *path, struct json_buf *out)
{
	struct json_scan sc = { (const unsigned char *)doc, n, 0 };
	struct json_buf key = {0};
	enum json_kind kind = JSON_NONE;
	const char *name = path;

	if (doc == NULL)
		return JSON_NONE;
	json_skip_ws(&sc);
	for (;;) {
		size_t len = strcspn(name, ".");
		bool found = false;

		/* The cursor is on the value that must hold member name. */
		if (!json_at(&sc, '{'))
			goto done;
		sc.pos++;
		json_skip_ws(&sc);
		while (json_at(&sc, '"')) {
			json_buf_reset(&key);
			if (!json_get_string(&sc, &key))
				goto done;
			json_skip_ws(&sc);
			if (!json_at(&sc, ':'))
				goto done;
			sc.pos++;
			json_skip_ws(&sc);
			if (key.len == len && (len == 0 || memcmp(key.data, name, len) == 0)) {
				found = true;
				break;
			}
			if (!json_get_skip(&sc))
				goto done;
			json_skip_ws(&sc);
			if (!json_at(&sc, ','))
				goto done;
			sc.pos++;
			json_skip_ws(&sc);
		}
		if (!found)
			goto done;
		if (name[len] == '\0')
			break;
		name += len + 1;
	}
	kind = json_get_value(&sc, out);
done:
	json_buf_free(&key);
	return kind;
}
