/*
 * HTTP templates: parsed into parts once, filled per request; see
 * http_template.h.
 *
 * A template is a list of parts: literal text (braces already undoubled),
 * {id}, or {payload.PATH}. Filling appends each part; a value is
 * percent-encoded for a URL, so a payload can never add a path segment, a
 * query or a fragment of its own, and checked for line breaks for a header,
 * so a payload can never add a header of its own.
 */
#include "http_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "why.h"

enum http_template_type { HTTP_TEMPLATE_TEXT, HTTP_TEMPLATE_ID, HTTP_TEMPLATE_PAYLOAD };

struct http_template_part {
	enum http_template_type type;
	char *text;          /* TEXT: the literal; PAYLOAD: the path after "payload." */
	size_t len;          /* TEXT: its length */
};

struct http_template {
	struct http_template_part *parts;
	size_t nparts;
};

/* Adds a part whose text is s[0..n) (copied). */
static bool
http_template_add(struct http_template *tpl, enum http_template_type type, const char *s, size_t n)
{
	struct http_template_part *parts = realloc(tpl->parts, (tpl->nparts + 1) * sizeof *parts);
	char *text;

	if (parts == NULL)
		return false;
	tpl->parts = parts;
	if ((text = malloc(n + 1)) == NULL)
		return false;
	if (n > 0)
		memcpy(text, s, n);
	text[n] = '\0';
	parts[tpl->nparts++] = (struct http_template_part) {type, text, n};
	return true;
}

/*
 * The checks a URL's text needs before its braces are read: the scheme,
 * a host, and nothing to fill before the path. The host decides where a
 * request goes and the scheme whether it is encrypted, so neither may come
 * from a task's payload: a payload could otherwise send the request, and
 * the configured secrets in its headers, anywhere.
 */
static bool
http_template_check_url(const char *s, char *why, size_t whylen)
{
	size_t start, end, host, host_end;

	if (strncasecmp(s, "http://", 7) == 0)
		start = 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		start = 8;
	else
		return why_printf(why, whylen, "must start with http:// or https://");
	for (size_t i = 0; s[i] != '\0'; i++)
		if ((unsigned char) s[i] <= 0x20 || s[i] == 0x7f)
			return why_printf(why, whylen, "has a space or control character at byte %zu "
			                           "(write a space as %%20)", i + 1);
	end = start + strcspn(s + start, "/?#");
	if (memchr(s + start, '{', end - start) != NULL || memchr(s + start, '}', end - start) != NULL)
		return why_printf(why, whylen, "a placeholder or brace before the path (the scheme, host "
		                           "and port are fixed; {id} and {payload...} may only follow them)");
	/* The host: after any user:password@, before any :port. */
	host = start;
	for (size_t i = start; i < end; i++)
		if (s[i] == '@')
			host = i + 1;
	if (s[host] == '[') {
		host_end = host + 1 + strcspn(s + host + 1, "]");
		host++;
	} else {
		host_end = host + strcspn(s + host, ":/?#");
	}
	if (host_end > end)
		host_end = end;
	if (host_end <= host)
		return why_printf(why, whylen, "has no host");
	return true;
}

/* The placeholder name[0..n), whose '{' is at byte at (from 1). */
static bool
http_template_placeholder(struct http_template *tpl, const char *name, size_t n, size_t at,
                          char *why, size_t whylen)
{
	static const char payload[] = "payload.";
	size_t plen = sizeof payload - 1;

	if (n == 0)
		return why_printf(why, whylen, "empty placeholder {} at byte %zu (write {{}} for "
		                           "literal braces)", at);
	if (n == 2 && memcmp(name, "id", 2) == 0)
		return http_template_add(tpl, HTTP_TEMPLATE_ID, "", 0)
		       || why_printf(why, whylen, "out of memory");
	if (n == 7 && memcmp(name, "payload", 7) == 0)
		return why_printf(why, whylen, "{payload} at byte %zu needs a field, such as "
		                           "{payload.id}", at);
	if (n <= plen || memcmp(name, payload, plen) != 0)
		return why_printf(why, whylen, "unknown placeholder {%.*s} at byte %zu (use {id} or "
		                           "{payload.FIELD})", (int) (n > 64 ? 64 : n), name, at);
	/* Every name between dots must be there: "a..b" names nothing. */
	if (name[plen] == '.' || name[n - 1] == '.' || memmem(name, n, "..", 2) != NULL)
		return why_printf(why, whylen, "{%.*s} at byte %zu has an empty field name",
		                           (int) (n > 64 ? 64 : n), name, at);
	return http_template_add(tpl, HTTP_TEMPLATE_PAYLOAD, name + plen, n - plen)
	       || why_printf(why, whylen, "out of memory");
}

/* Reads s into tpl's parts. A URL has been checked for line breaks (and every
 * other control character) already. */
static bool
http_template_read(struct http_template *tpl, const char *s, char *why, size_t whylen)
{
	struct json_buf lit = {0};
	bool ok = true;

	for (size_t i = 0; ok && s[i] != '\0';) {
		size_t n;

		if (s[i] == '\r' || s[i] == '\n') {
			ok = why_printf(why, whylen, "has a line break at byte %zu", i + 1);
		} else if ((s[i] == '{' || s[i] == '}') && s[i + 1] == s[i]) {
			json_buf_append(&lit, s + i, 1);
			i += 2;
		} else if (s[i] == '}') {
			ok = why_printf(why, whylen, "stray '}' at byte %zu (write }} for a literal brace)",
			                         i + 1);
		} else if (s[i] == '{') {
			n = strcspn(s + i + 1, "{}");
			if (s[i + 1 + n] != '}')
				ok = why_printf(why, whylen, "'{' at byte %zu is not closed (write {{ for a "
				                         "literal brace)", i + 1);
			else if (lit.len > 0 && !http_template_add(tpl, HTTP_TEMPLATE_TEXT, lit.data, lit.len))
				ok = why_printf(why, whylen, "out of memory");
			else
				ok = http_template_placeholder(tpl, s + i + 1, n, i + 1, why, whylen);
			json_buf_reset(&lit);
			i += n + 2;
		} else {
			n = strcspn(s + i, "{}\r\n");
			json_buf_append(&lit, s + i, n);
			i += n;
		}
	}
	if (ok && lit.len > 0 && !http_template_add(tpl, HTTP_TEMPLATE_TEXT, lit.data, lit.len))
		ok = why_printf(why, whylen, "out of memory");
	json_buf_free(&lit);
	return ok;
}

struct http_template *
http_template_parse(const char *s, bool url, char *why, size_t whylen)
{
	struct http_template *tpl;

	if (url && !http_template_check_url(s, why, whylen))
		return NULL;
	if ((tpl = calloc(1, sizeof *tpl)) == NULL) {
		why_printf(why, whylen, "out of memory");
		return NULL;
	}
	if (!http_template_read(tpl, s, why, whylen)) {
		http_template_free(tpl);
		return NULL;
	}
	return tpl;
}

/* RFC 3986's unreserved characters, the only ones a value keeps in a URL
 * (curl_easy_escape() keeps the same). */
static bool
http_template_unreserved(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'
	       || c == '_' || c == '~';
}

/*
 * Appends one filled value: percent-encoded for a URL, as is for a header,
 * where CR and LF would end the header and NUL the string libcurl sends.
 */
static bool
http_template_value(struct json_buf *out, const char *v, size_t n, bool urlencode, const char *name,
                    char *why, size_t whylen)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!urlencode) {
		if (memchr(v, '\r', n) != NULL || memchr(v, '\n', n) != NULL)
			return why_printf(why, whylen, "%s contains a line break", name);
		if (memchr(v, '\0', n) != NULL)
			return why_printf(why, whylen, "%s contains a NUL character", name);
		json_buf_append(out, v, n);
		return true;
	}
	/* "." and ".." as a whole value would be a dot segment, which libcurl
	 * (and any server) resolves: a payload could climb the path. Encoded,
	 * they are a name like any other. */
	if ((n == 1 && v[0] == '.') || (n == 2 && v[0] == '.' && v[1] == '.')) {
		json_buf_append(out, n == 1 ? "%2E" : "%2E%2E", n == 1 ? 3 : 6);
		return true;
	}
	for (size_t i = 0; i < n;) {
		size_t run = 0;
		char pct[3];

		while (i + run < n && http_template_unreserved(v[i + run]))
			run++;
		json_buf_append(out, v + i, run);
		i += run;
		if (i < n) {
			pct[0] = '%';
			pct[1] = hex[(unsigned char) v[i] >> 4];
			pct[2] = hex[(unsigned char) v[i] & 0xF];
			json_buf_append(out, pct, 3);
			i++;
		}
	}
	return true;
}

bool
http_template_fill(const struct http_template *tpl, const struct task *t, bool urlencode,
                   struct json_buf *out, char *why, size_t whylen)
{
	static const char *const kinds[] = {
		[JSON_NONE] = "missing", [JSON_NULL] = "null", [JSON_ARRAY] = "an array", [JSON_OBJECT] = "an object",
	};
	struct json_buf v = {0};
	size_t start = out->len;
	bool ok = true;

	for (size_t i = 0; ok && i < tpl->nparts; i++) {
		const struct http_template_part *p = &tpl->parts[i];
		char name[160], id[24];
		enum json_kind kind;

		switch (p->type) {
		case HTTP_TEMPLATE_TEXT:
			json_buf_append(out, p->text, p->len);
			break;
		case HTTP_TEMPLATE_ID:
			if (t->key == NULL)
				snprintf(id, sizeof id, "%lld", t->id);
			ok = http_template_value(out, t->key != NULL ? t->key : id,
			                         strlen(t->key != NULL ? t->key : id), urlencode, "id", why, whylen);
			break;
		case HTTP_TEMPLATE_PAYLOAD:
			snprintf(name, sizeof name, "payload.%.140s", p->text);
			json_buf_reset(&v);
			kind = json_get(t->payload, t->payload != NULL ? strlen(t->payload) : 0, p->text, &v);
			if (kind == JSON_STRING || kind == JSON_NUMBER || kind == JSON_BOOL)
				ok = http_template_value(out, v.data, v.len, urlencode, name, why, whylen);
			else
				ok = why_printf(why, whylen, "%s is %s", name, kinds[kind]);
			break;
		}
	}
	json_buf_free(&v);
	if (!ok) {
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
	}
	return ok;
}

void
http_template_free(struct http_template *tpl)
{
	if (tpl == NULL)
		return;
	for (size_t i = 0; i < tpl->nparts; i++)
		free(tpl->parts[i].text);
	free(tpl->parts);
	free(tpl);
}
