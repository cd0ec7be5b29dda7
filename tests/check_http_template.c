/*
 * Unit tier: http_template.c parses URL and header templates, refuses bad
 * ones with a reason, and fills them from a task: values percent-encoded
 * in a URL, refused in a header when they would break its line.
 */
#include <string.h>

#include "harness.h"
#include "http_template.h"

/* Every kind of value a placeholder can meet, nested, in jsonb's spacing. */
static const char tpl_payload[] =
	"{\"a\": {\"b\": {\"c\": \"deep\"}}, \"arr\": [1], \"f\": false, \"n\": -1.5e3, \"i\": 7, "
	"\"p\": \"a/b?c d%e&f=g#h\\u00e9~-._\", \"t\": true, \"z\": null, "
	"\"crlf\": \"x\\r\\nX-Evil: 1\", \"lf\": \"x\\ny\", \"nul\": \"a\\u0000b\", \"plain\": \"a/b c\", "
	"\"up\": \"..\", \"here\": \".\", \"dots\": \"...\"}";

static struct task
tpl_task(long long id, const char *key, const char *payload)
{
	struct task t = {.id = id, .key = (char *) key, .payload = (char *) payload, .kind = (char *) "k",
	                 .queue = (char *) "default", .attempt = 1};

	return t;
}

/* Parses s (which must parse) and fills it for t. */
static bool
tpl_fill(const char *s, bool url, const struct task *t, bool urlencode, struct json_buf *out, char *why,
         size_t whylen)
{
	char perr[256];
	struct http_template *tpl = http_template_parse(s, url, perr, sizeof perr);
	bool ok;

	ck_assert_msg(tpl != NULL, "%s: %s", s, perr);
	ok = http_template_fill(tpl, t, urlencode, out, why, whylen);
	http_template_free(tpl);
	return ok;
}

static const struct {
	const char *tpl;
	const char *want;
} tpl_url_cases[] = {
	/* Unreserved bytes stay; '/', '?', ' ', '%', '&', '=', '#' and each
	 * byte of UTF-8 become %XX, upper-case. */
	{"https://h.example/x/{payload.p}", "https://h.example/x/a%2Fb%3Fc%20d%25e%26f%3Dg%23h%C3%A9~-._"},
	{"http://h/{id}", "http://h/42"},
	{"http://h/{payload.a.b.c}", "http://h/deep"},
	{"http://h/{payload.n}/{payload.i}", "http://h/-1.5e3/7"},
	{"http://h/?t={payload.t}&f={payload.f}", "http://h/?t=true&f=false"},
	/* Literal text is copied as written, escapes included. */
	{"https://h:8443/a%20b/{{x}}/{{{id}}}?q=1#frag", "https://h:8443/a%20b/{x}/{42}?q=1#frag"},
	{"HTTPS://user:pw@[::1]:80/{id}", "HTTPS://user:pw@[::1]:80/42"},
	{"https://h", "https://h"},
	{"https://h?{id}", "https://h?42"},
	{"https://h#{id}", "https://h#42"},
	/* A value that is a whole dot segment cannot climb the path. */
	{"http://h/api/v1/{payload.up}/{payload.here}/{payload.dots}/x", "http://h/api/v1/%2E%2E/%2E/.../x"},
	/* A value's own '{' is data, not a placeholder. */
	{"http://h/{payload.a.b.c}{id}{payload.i}", "http://h/deep427"},
};

START_TEST(test_url_fill_encodes_values_and_keeps_literals)
{
	struct task t = tpl_task(42, NULL, tpl_payload);
	struct json_buf out = {0};
	char why[256];

	ck_assert_msg(tpl_fill(tpl_url_cases[_i].tpl, true, &t, true, &out, why, sizeof why), "%s: %s",
	              tpl_url_cases[_i].tpl, why);
	ck_assert_str_eq(out.data, tpl_url_cases[_i].want);
	json_buf_free(&out);
}
END_TEST

/* {id} is a source row's key when the task is a row: its daemon id is
 * the daemon's own negative number, meaningless to the server. */
START_TEST(test_id_is_a_source_rows_key)
{
	struct task row = tpl_task(-3, "ord/1 2", "{}");
	struct task task = tpl_task(9007199254740993LL, NULL, "{}");
	struct json_buf out = {0};
	char why[256];

	ck_assert(tpl_fill("http://h/{id}", true, &row, true, &out, why, sizeof why));
	ck_assert_str_eq(out.data, "http://h/ord%2F1%202");
	json_buf_reset(&out);
	ck_assert(tpl_fill("key-{id}", false, &row, false, &out, why, sizeof why));
	ck_assert_str_eq(out.data, "key-ord/1 2");
	json_buf_reset(&out);
	ck_assert(tpl_fill("http://h/{id}", true, &task, true, &out, why, sizeof why));
	ck_assert_str_eq(out.data, "http://h/9007199254740993");
	json_buf_free(&out);
}
END_TEST

/* Refused values leave out as it was, and why names the field. */
static const struct {
	const char *tpl;
	bool urlencode;
	const char *why;
} tpl_unfillable[] = {
	{"http://h/{payload.x}", true, "payload.x is missing"},
	{"http://h/{payload.a.b.x}", true, "payload.a.b.x is missing"},
	{"http://h/{payload.p.x}", true, "payload.p.x is missing"},
	{"http://h/{payload.z}", true, "payload.z is null"},
	{"http://h/{payload.a}", true, "payload.a is an object"},
	{"http://h/{payload.a.b}", true, "payload.a.b is an object"},
	{"http://h/{payload.arr}", true, "payload.arr is an array"},
	{"{payload.crlf}", false, "payload.crlf contains a line break"},
	{"{payload.lf}", false, "payload.lf contains a line break"},
	{"{payload.nul}", false, "payload.nul contains a NUL character"},
	{"{id}-{payload.arr}", false, "payload.arr is an array"},
};

START_TEST(test_fill_refuses_what_cannot_be_a_value)
{
	struct task t = tpl_task(1, NULL, tpl_payload);
	struct json_buf out = {0};
	char why[256];

	json_buf_append(&out, "before", 6);
	ck_assert_msg(!tpl_fill(tpl_unfillable[_i].tpl, tpl_unfillable[_i].urlencode, &t, tpl_unfillable[_i].urlencode,
	                        &out, why, sizeof why), "%s: filled", tpl_unfillable[_i].tpl);
	ck_assert_str_eq(why, tpl_unfillable[_i].why);
	ck_assert_uint_eq(out.len, 6);
	ck_assert_str_eq(out.data, "before");
	json_buf_free(&out);
}
END_TEST

/* A header value is copied as is; what a URL would encode passes, and
 * a line break in the key of a source row is refused like a payload's. */
START_TEST(test_header_fill_copies_values_unencoded)
{
	struct task t = tpl_task(5, NULL, tpl_payload);
	struct task row = tpl_task(-1, "a\nb", "{}");
	struct json_buf out = {0};
	char why[256];

	ck_assert(tpl_fill("{payload.plain}:{payload.p}:{id}", false, &t, false, &out, why, sizeof why));
	ck_assert_str_eq(out.data, "a/b c:a/b?c d%e&f=g#h\xc3\xa9~-._:5");
	json_buf_reset(&out);
	ck_assert(!tpl_fill("{id}", false, &row, false, &out, why, sizeof why));
	ck_assert_str_eq(why, "id contains a line break");
	/* The same key in a URL is encoded, not refused. */
	ck_assert(tpl_fill("http://h/{id}", true, &row, true, &out, why, sizeof why));
	ck_assert_str_eq(out.data, "http://h/a%0Ab");
	json_buf_free(&out);
}
END_TEST

/* No payload at all (a source's payload column may be NULL): every field
 * is missing. */
START_TEST(test_fill_without_payload_says_missing)
{
	struct task t = tpl_task(5, NULL, NULL);
	struct json_buf out = {0};
	char why[256];

	ck_assert(!tpl_fill("http://h/{payload.a}", true, &t, true, &out, why, sizeof why));
	ck_assert_str_eq(why, "payload.a is missing");
	json_buf_free(&out);
}
END_TEST

static const struct {
	const char *tpl;
	bool url;
	const char *why;
} tpl_bad[] = {
	/* Braces. */
	{"http://h/{id", true, "'{' at byte 10 is not closed (write {{ for a literal brace)"},
	{"http://h/{a{id}", true, "'{' at byte 10 is not closed (write {{ for a literal brace)"},
	{"http://h/id}", true, "stray '}' at byte 12 (write }} for a literal brace)"},
	{"http://h/{id}}", true, "stray '}' at byte 14 (write }} for a literal brace)"},
	{"{", false, "'{' at byte 1 is not closed (write {{ for a literal brace)"},
	{"}", false, "stray '}' at byte 1 (write }} for a literal brace)"},
	{"a{{{", false, "'{' at byte 4 is not closed (write {{ for a literal brace)"},
	/* Placeholders. */
	{"http://h/{}", true, "empty placeholder {} at byte 10 (write {{}} for literal braces)"},
	{"http://h/{ID}", true, "unknown placeholder {ID} at byte 10 (use {id} or {payload.FIELD})"},
	{"x{ id }", false, "unknown placeholder { id } at byte 2 (use {id} or {payload.FIELD})"},
	{"x{task.id}", false, "unknown placeholder {task.id} at byte 2 (use {id} or {payload.FIELD})"},
	{"x{payloadx}", false, "unknown placeholder {payloadx} at byte 2 (use {id} or {payload.FIELD})"},
	{"x{payload}", false, "{payload} at byte 2 needs a field, such as {payload.id}"},
	{"x{payload.}", false, "unknown placeholder {payload.} at byte 2 (use {id} or {payload.FIELD})"},
	{"x{payload..a}", false, "{payload..a} at byte 2 has an empty field name"},
	{"x{payload.a.}", false, "{payload.a.} at byte 2 has an empty field name"},
	{"x{payload.a..b}", false, "{payload.a..b} at byte 2 has an empty field name"},
	/* A URL's scheme and host are fixed. */
	{"ftp://h/x", true, "must start with http:// or https://"},
	{"//h/x", true, "must start with http:// or https://"},
	{"h/x", true, "must start with http:// or https://"},
	{"{payload.scheme}://h/", true, "must start with http:// or https://"},
	{"https://{payload.host}/x", true, "a placeholder or brace before the path (the scheme, host and port are "
	 "fixed; {id} and {payload...} may only follow them)"},
	{"https://api.{payload.region}.example/x", true, "a placeholder or brace before the path (the scheme, "
	 "host and port are fixed; {id} and {payload...} may only follow them)"},
	{"http://h:{payload.port}/x", true, "a placeholder or brace before the path (the scheme, host and port "
	 "are fixed; {id} and {payload...} may only follow them)"},
	{"http://{id}@h/x", true, "a placeholder or brace before the path (the scheme, host and port are fixed; "
	 "{id} and {payload...} may only follow them)"},
	{"http://h{{x}}/", true, "a placeholder or brace before the path (the scheme, host and port are fixed; "
	 "{id} and {payload...} may only follow them)"},
	{"https://", true, "has no host"},
	{"https:///x", true, "has no host"},
	{"http://:80/x", true, "has no host"},
	{"http://user@/x", true, "has no host"},
	{"http://[]:80/", true, "has no host"},
	{"https://h/a b", true, "has a space or control character at byte 12 (write a space as %20)"},
	{"https://h/\t", true, "has a space or control character at byte 11 (write a space as %20)"},
	{"https://h/\r\nHost: x", true, "has a space or control character at byte 11 (write a space as %20)"},
	/* A header's line ends nowhere but where the daemon ends it. */
	{"key\r\nX-Evil: 1", false, "has a line break at byte 4"},
	{"key-{id}\n", false, "has a line break at byte 9"},
};

START_TEST(test_parse_refuses_with_reason)
{
	char why[256];
	struct http_template *tpl;

	memset(why, 'X', sizeof why);
	tpl = http_template_parse(tpl_bad[_i].tpl, tpl_bad[_i].url, why, sizeof why);
	ck_assert_msg(tpl == NULL, "%s: parsed", tpl_bad[_i].tpl);
	ck_assert_str_eq(why, tpl_bad[_i].why);
}
END_TEST

/* Templates that are not URLs need no scheme, and may be nothing but a
 * placeholder or nothing at all. */
START_TEST(test_header_templates_parse_without_url_rules)
{
	struct task t = tpl_task(3, NULL, tpl_payload);
	struct json_buf out = {0};
	char why[256];

	ck_assert(tpl_fill("{payload.i}", false, &t, false, &out, why, sizeof why));
	ck_assert_str_eq(out.data, "7");
	json_buf_reset(&out);
	ck_assert(tpl_fill("", false, &t, false, &out, why, sizeof why));
	ck_assert_str_eq(out.data, "");
	ck_assert(tpl_fill("order {{{payload.a.b.c}}} #{id}", false, &t, false, &out, why, sizeof why));
	ck_assert_str_eq(out.data, "order {deep} #3");
	json_buf_free(&out);
}
END_TEST

/* A template filled many times gives the same text each time (the
 * Idempotency-Key on every attempt); filling appends. */
START_TEST(test_fill_is_repeatable_and_appends)
{
	char why[256];
	struct http_template *tpl = http_template_parse("k-{id}-{payload.i}", false, why, sizeof why);
	struct task t = tpl_task(11, NULL, tpl_payload);
	struct json_buf out = {0};

	ck_assert_ptr_nonnull(tpl);
	for (int i = 0; i < 3; i++)
		ck_assert(http_template_fill(tpl, &t, false, &out, why, sizeof why));
	ck_assert_str_eq(out.data, "k-11-7k-11-7k-11-7");
	http_template_free(tpl);
	http_template_free(NULL);
	json_buf_free(&out);
}
END_TEST

Suite *
http_template_suite(void)
{
	Suite *s = suite_create("http_template");
	TCase *fill = tcase_create("fill");
	TCase *parse = tcase_create("parse");

	tcase_add_loop_test(fill, test_url_fill_encodes_values_and_keeps_literals, 0,
	                    (int) (sizeof tpl_url_cases / sizeof tpl_url_cases[0]));
	tcase_add_test(fill, test_id_is_a_source_rows_key);
	tcase_add_loop_test(fill, test_fill_refuses_what_cannot_be_a_value, 0,
	                    (int) (sizeof tpl_unfillable / sizeof tpl_unfillable[0]));
	tcase_add_test(fill, test_header_fill_copies_values_unencoded);
	tcase_add_test(fill, test_fill_without_payload_says_missing);
	tcase_add_test(fill, test_fill_is_repeatable_and_appends);
	suite_add_tcase(s, fill);

	tcase_add_loop_test(parse, test_parse_refuses_with_reason, 0, (int) (sizeof tpl_bad / sizeof tpl_bad[0]));
	tcase_add_test(parse, test_header_templates_parse_without_url_rules);
	suite_add_tcase(s, parse);
	return s;
}
