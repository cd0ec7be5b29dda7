/*
 * libFuzzer target: http_template.c and json_get() on arbitrary bytes
 * (`make fuzz`).
 *
 * The input is a template, parsed as a URL and as a header value, then
 * filled from fixed tasks: a task whose payload holds every kind of value
 * and a source's row. When the input is valid JSON it is also the payload
 * of fixed templates, since a payload is what a producer controls. Besides
 * what the sanitizers catch, the target checks what the HTTP handler relies
 * on: the scheme and host of a filled URL are the template's own, a filled
 * URL holds no space or control byte, a filled header value no CR, LF or
 * NUL; a refused fill leaves the buffer as it was, with a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_template.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_payload[] =
	"{\"a\": {\"b\": {\"c\": \"d/e?f g\"}}, \"arr\": [1, {\"x\": \"}\"}], \"n\": -1.5e3, \"t\": true, "
	"\"z\": null, \"s\": \"line\\r\\nX-Evil: 1\", \"u\": \"\\u00e9\\ud83d\\ude00\\u0000\", \"\": \"empty\"}";

static const char *const fuzz_templates[] = {
	"http://h/{payload.a}", "http://h/{payload.a.b}", "http://h/{payload.a.b.c}/{id}", "{payload.x.y.z}",
	"{payload.arr}", "{payload.n}-{payload.t}", "{payload.z}", "{payload.s}", "{payload.u}",
};

static void
fuzz_require(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_http_template: invariant broken: %s\n", what);
		abort();
	}
}

static void
fuzz_require_why(const char *why, size_t len)
{
	size_t n;

	fuzz_require(memchr(why, '\0', len) != NULL, "why is NUL-terminated");
	n = strlen(why);
	fuzz_require(n > 0 && why[n - 1] != '.', "why is given, without a trailing period");
}

/* The scheme and authority: up to the first '/', '?' or '#' after "//". */
static size_t
fuzz_authority_end(const char *s, size_t n)
{
	const char *sep = memmem(s, n, "//", 2);
	size_t i;

	fuzz_require(sep != NULL, "a URL has //");
	for (i = (size_t) (sep - s) + 2; i < n; i++)
		if (s[i] == '/' || s[i] == '?' || s[i] == '#')
			break;
	return i;
}

/* Fills tpl (parsed from s, as a URL when url) for t both ways. */
static void
fuzz_fill(const struct http_template *tpl, const char *s, bool url, const struct task *t)
{
	for (int enc = 0; enc < 2; enc++) {
		struct json_buf out = {0};
		char why[256];
		bool ok;

		json_buf_append(&out, "pre", 3);
		memset(why, 'X', sizeof why);
		ok = http_template_fill(tpl, t, enc, &out, why, sizeof why);
		fuzz_require(out.data[out.len] == '\0', "out is terminated");
		if (!ok) {
			fuzz_require(out.len == 3 && strcmp(out.data, "pre") == 0, "a refused fill leaves out as it was");
			fuzz_require_why(why, sizeof why);
		} else if (url && enc) {
			size_t a = fuzz_authority_end(s, strlen(s));

			fuzz_require(out.len - 3 >= a && memcmp(out.data + 3, s, a) == 0,
			             "the scheme and host are the template's");
			for (size_t i = 3; i < out.len; i++)
				fuzz_require((unsigned char) out.data[i] > 0x20 && out.data[i] != 0x7f,
				             "a URL has no space or control byte");
		} else if (!enc) {
			fuzz_require(memchr(out.data, '\r', out.len) == NULL && memchr(out.data, '\n', out.len) == NULL
			             && strlen(out.data) == out.len, "a header value has no CR, LF or NUL");
		}
		json_buf_free(&out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct task task = {.id = 42, .kind = (char *) "k", .queue = (char *) "q", .payload = (char *) fuzz_payload};
	struct task row = {.id = -7, .key = (char *) "ord/1\r\n2", .kind = (char *) "k", .queue = (char *) "q",
	                   .payload = (char *) "{}"};
	char *s = malloc(size + 1);

	fuzz_require(s != NULL, "memory");
	memcpy(s, data, size);
	s[size] = '\0';   /* a config value holds no NUL: the template ends at the first */

	for (int url = 0; url < 2; url++) {
		char why[256];
		struct http_template *tpl;

		memset(why, 'X', sizeof why);
		tpl = http_template_parse(s, url, why, sizeof why);
		if (tpl == NULL) {
			fuzz_require_why(why, sizeof why);
			continue;
		}
		fuzz_fill(tpl, s, url, &task);
		fuzz_fill(tpl, s, url, &row);
		http_template_free(tpl);
	}

	/* The input as a payload: copied to its exact length, so a read past
	 * it is caught, and with the NUL after it for the task. */
	if (json_valid((const char *) data, size)) {
		struct task p = task;

		p.payload = s;
		for (size_t i = 0; i < sizeof fuzz_templates / sizeof fuzz_templates[0]; i++) {
			char why[256];
			struct http_template *tpl = http_template_parse(fuzz_templates[i], false, why, sizeof why);

			fuzz_require(tpl != NULL, "fixed templates parse");
			fuzz_fill(tpl, fuzz_templates[i], false, &p);
			http_template_free(tpl);
		}
		for (size_t i = 0; i < 4; i++) {
			static const char *const paths[] = {"a", "a.b", "", "a.b.c.d"};
			struct json_buf out = {0};
			enum json_kind kind = json_get((const char *) data, size, paths[i], &out);

			if (kind == JSON_BOOL)
				fuzz_require(strcmp(out.data, "true") == 0 || strcmp(out.data, "false") == 0, "a boolean's text");
			else if (kind == JSON_NUMBER)
				fuzz_require(json_valid(out.data, out.len), "a number's text is a JSON number");
			else if (kind != JSON_STRING)
				fuzz_require(out.len == 0, "nothing appended but a value");
			json_buf_free(&out);
		}
	}
	free(s);
	return 0;
}
