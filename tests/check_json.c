/*
 * Unit tier: json.c's buffer, string escaping, text cleaning, validator and
 * json_get.
 *
 * Besides tables of known answers, outputs are checked by means that do not
 * share json.c's code: every escaped string must pass the validator and
 * decode back to the cleaned text, and every cleaned text must be valid
 * UTF-8 by this file's own decoder. Inputs are copied into buffers of their
 * exact length, so valgrind would catch a read past s[n-1].
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "json.h"

#define FFFD "\xEF\xBF\xBD"

/* A JSON input and whether json_valid() must accept it. The length comes
 * from sizeof, so embedded NUL bytes count. */
struct valid_case {
	const char *text;
	size_t len;
};

#define CASE(s) { s, sizeof(s) - 1 }

static const struct valid_case valid_inputs[] = {
	/* Scalars and whitespace. */
	CASE("0"), CASE("-0"), CASE("1e5"), CASE("1E+5"), CASE("1e-5"), CASE("-1.5e10"),
	CASE("123.456"), CASE("0.0"), CASE("1.0E-0"), CASE("-0.0e-0"), CASE("9007199254740993"),
	CASE("true"), CASE("false"), CASE("null"), CASE(" \t\r\n true \n"),
	/* Numbers at the edges of what jsonb's numeric can hold. */
	CASE("1e131071"), CASE("9.9e131071"), CASE("1e-16383"), CASE("0e-16383"),
	CASE("1.5e-16382"), CASE("0e1073741822"), CASE("-1e131071"),
	/* Strings: every escape, surrogate pairs, raw UTF-8 at range edges. */
	CASE("\"\""), CASE("\"abc\""),
	CASE("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\uFFFF \\u0001\""),
	CASE("\"\\ud83d\\ude00\""), CASE("\"\\uD83D\\uDE00\""), CASE("\"\\udbff\\udfff\""),
	CASE("\"\\ud7ff \\ue000\""), CASE("\"\\ud800\\udc00\""),
	CASE("\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""),
	CASE("\"\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf\""),
	CASE("\"\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf\""),
	CASE("\"\x7f\""), CASE("\"/\""),
	/* Containers. */
	CASE("[]"), CASE("{}"), CASE("[ ]"), CASE("{ }"), CASE("[1,2,3]"), CASE("[[[]]]"),
	CASE("{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}"),
	CASE(" { \"a\" : 1 , \"b\" : [ 2 , { } ] } "), CASE("{\"\":{}}"),
	CASE("{\"a\":1,\"a\":2}"),
	CASE("[-0,0.5,1e1,\"s\",true,false,null,[],{}]"),
};

static const struct valid_case invalid_inputs[] = {
	/* Nothing there. */
	CASE(""), CASE(" "), CASE("\t\r\n "),
	/* Numbers outside the RFC grammar. */
	CASE("01"), CASE("-01"), CASE("00"), CASE("1."), CASE(".5"), CASE("-"), CASE("+1"),
	CASE("1e"), CASE("1e+"), CASE("1.e5"), CASE("0x10"), CASE("1.5.3"), CASE("- 1"),
	CASE("Infinity"), CASE("-Infinity"), CASE("NaN"), CASE("1_000"), CASE("-.5"),
	/* Numbers jsonb's numeric cannot hold. */
	CASE("1e131072"), CASE("1e-16384"), CASE("0e-16384"), CASE("1.5e-16383"),
	CASE("0e1073741823"), CASE("1e99999999999999999999999"), CASE("-1e131072"),
	/* Literals. */
	CASE("tru"), CASE("True"), CASE("nul"), CASE("nulll"), CASE("falsey"), CASE("undefined"),
	/* Strings: unterminated, bad escapes, escapes jsonb refuses. */
	CASE("\"abc"), CASE("\""), CASE("\"\\x\""), CASE("\"\\u12\""), CASE("\"\\u12G4\""),
	CASE("\"\\U0041\""), CASE("\"\\'\""), CASE("\"\\\""), CASE("\"\\"), CASE("\"\\u004"),
	CASE("\"\\u0000\""), CASE("\"a\\u0000b\""),
	CASE("\"\\ud83d\""), CASE("\"\\ude00\""), CASE("\"\\ud83d\\u0041\""), CASE("\"\\ud83dx\""),
	CASE("\"\\udc00\""), CASE("\"\\udfff\""), CASE("\"\\ud800\\udbff\""),
	CASE("\"\\udbff\\ue000\""), CASE("\"\\ud83d\\ud83d\""), CASE("\"\\ude00\\ud83d\""), CASE("\"\\ud83d\\n\""),
	CASE("\"\\ud83d\\"), CASE("\"\\ud83d\\u"), CASE("\"\\ud83d\\ude0\""),
	/* Raw control characters and NUL in strings. */
	CASE("\"a\nb\""), CASE("\"\t\""), CASE("\"\x1f\""), CASE("\"a\0b\""),
	/* Raw bytes that are not UTF-8. */
	CASE("\"\x80\""), CASE("\"\xbf\""), CASE("\"\xc0\xaf\""), CASE("\"\xc1\xbf\""),
	CASE("\"\xe0\x80\xaf\""), CASE("\"\xe0\x9f\xbf\""), CASE("\"\xed\xa0\x80\""),
	CASE("\"\xed\xbf\xbf\""), CASE("\"\xf0\x80\x80\x80\""), CASE("\"\xf0\x8f\xbf\xbf\""),
	CASE("\"\xf4\x90\x80\x80\""), CASE("\"\xf5\x80\x80\x80\""), CASE("\"\xff\""),
	CASE("\"\xc3\""), CASE("\"\xe2\x82\""), CASE("\"\xf0\x9f\x98\""), CASE("\"\xc3"),
	CASE("\xef\xbb\xbf{}"), CASE("[\"\xe2\x82\xac\"]\x80"),
	/* Container punctuation. */
	CASE("[1,]"), CASE("[1,,2]"), CASE("[,1]"), CASE("[,]"), CASE("{\"a\":1,}"),
	CASE("{,}"), CASE("{\"a\"}"), CASE("{\"a\":}"), CASE("{a:1}"), CASE("{1:1}"),
	CASE("{\"a\" 1}"), CASE("{\"a\"::1}"), CASE("[1 2]"), CASE("[1"), CASE("["), CASE("{"),
	CASE("]"), CASE("}"), CASE("[}"), CASE("{]"), CASE("{\"a\":1]"), CASE("[1}"),
	CASE("{'a':1}"), CASE("['a']"),
	/* Trailing garbage. */
	CASE("[1]]"), CASE("{\"a\":1}}"), CASE("1 2"), CASE("{} x"), CASE("true false"),
	CASE("\"a\"\"b\""), CASE("[] ,"), CASE("0 0"), CASE("1true"), CASE("[]\x0b"),
	CASE("/* c */ 1"), CASE("1 // c"),
	/* NUL bytes counted by n. */
	CASE("\0"), CASE("[1]\0"), CASE("[1\0]"), CASE("\0[1]"), CASE("{\"a\"\0:1}"),
};

/* Cases whose n stops before the end of the C string: the validator must
 * judge the first n bytes only. */
static const struct {
	const char *text;
	size_t len;
	bool valid;
} prefix_inputs[] = {
	{ "truex", 4, true },
	{ "12", 1, true },
	{ "[1]garbage", 3, true },
	{ "\"ab\"", 3, false },
	{ "[1]", 2, false },
	{ "nullnull", 4, true },
	{ "1e5", 2, false },
	{ "\"\\ud83d\\ude00\"", 8, false },
};

/* Calls json_valid() on an exact-size heap copy of s[0..n). */
static bool
valid_copy(const char *s, size_t n)
{
	char *copy = malloc(n > 0 ? n : 1);
	bool ok;

	ck_assert_ptr_nonnull(copy);
	if (n > 0)
		memcpy(copy, s, n);
	ok = json_valid(copy, n);
	free(copy);
	return ok;
}

/*
 * Length of a well-formed UTF-8 character at s, or 0. Written apart from
 * json.c on purpose: it decodes the code point and then checks it, where
 * json.c checks byte ranges.
 */
static size_t
test_utf8_char(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2;
		cp = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3;
		cp = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
		return 0;
	if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return len;
}

/* True when s[0..n) is well-formed UTF-8 without NUL. */
static bool
test_utf8_clean(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t len = test_utf8_char(u + i, n - i);

		if (len == 0 || u[i] == '\0')
			return false;
		i += len;
	}
	return true;
}

static int
test_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Decodes a string literal as json_append_string() writes it (only the
 * escapes it uses) into out; fails the test on anything else, such as a raw
 * control character.
 */
static void
test_unescape(const char *s, size_t n, struct json_buf *out)
{
	ck_assert_uint_ge(n, 2);
	ck_assert_int_eq(s[0], '"');
	ck_assert_int_eq(s[n - 1], '"');
	json_buf_append(out, "", 0);
	for (size_t i = 1; i < n - 1; i++) {
		char c = s[i];

		ck_assert_msg((unsigned char)c >= 0x20, "raw control byte 0x%02x at %zu", (unsigned char)c, i);
		ck_assert_msg(c != '"', "unescaped quote at %zu", i);
		if (c != '\\') {
			json_buf_append(out, &c, 1);
			continue;
		}
		ck_assert_uint_lt(i + 1, n - 1);
		switch (s[++i]) {
		case '"': c = '"'; break;
		case '\\': c = '\\'; break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u':
			ck_assert_uint_lt(i + 4, n - 1);
			ck_assert(s[i + 1] == '0' && s[i + 2] == '0');
			ck_assert(test_hex(s[i + 3]) == 0 || test_hex(s[i + 3]) == 1);
			ck_assert_int_ge(test_hex(s[i + 4]), 0);
			c = (char)(test_hex(s[i + 3]) * 16 + test_hex(s[i + 4]));
			ck_assert_int_ne(c, 0);
			i += 4;
			break;
		default:
			ck_abort_msg("unexpected escape \\%c", s[i]);
		}
		json_buf_append(out, &c, 1);
	}
}

/* A small deterministic generator, so a failure can be reproduced. */
static uint32_t
test_rand(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

/* Random bytes drawn mostly from the awkward ones: lead and continuation
 * bytes, NUL, controls, quote and backslash. */
static size_t
test_random_bytes(uint32_t *state, char *out, size_t max)
{
	static const unsigned char pool[] = {
		0x00, 0x01, 0x08, 0x09, 0x0a, 0x1f, '"', '\\', '/', 'a', 'u', 0x7f,
		0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1,
		0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff,
	};
	size_t n = test_rand(state) % (max + 1);

	for (size_t i = 0; i < n; i++) {
		uint32_t r = test_rand(state);

		out[i] = (char)(r % 4 == 0 ? r >> 8 : pool[(r >> 8) % sizeof pool]);
	}
	return n;
}

/* "[[...1...]]" or {"k":{"k":...1}} nested depth times. */
static void
test_nested(struct json_buf *b, int depth, bool objects)
{
	for (int i = 0; i < depth; i++)
		json_buf_append(b, objects ? "{\"k\":" : "[", objects ? 5 : 1);
	json_buf_append(b, "1", 1);
	for (int i = 0; i < depth; i++)
		json_buf_append(b, objects ? "}" : "]", 1);
}

/* [{"k":[{"k":...inner...}]}] with pairs of array and object. */
static void
test_nested_mixed(struct json_buf *b, int pairs, const char *inner)
{
	for (int i = 0; i < pairs; i++)
		json_buf_append(b, "[{\"k\":", 6);
	json_buf_append(b, inner, strlen(inner));
	for (int i = 0; i < pairs; i++)
		json_buf_append(b, "}]", 2);
}

/* ---- the buffer ---- */

START_TEST(test_buf_empty_append_on_fresh_buffer_gives_empty_string)
{
	struct json_buf b = { 0 };

	json_buf_append(&b, NULL, 0);
	ck_assert_ptr_nonnull(b.data);
	ck_assert_str_eq(b.data, "");
	ck_assert_uint_eq(b.len, 0);
	json_buf_free(&b);
}
END_TEST

START_TEST(test_buf_grows_geometrically_and_stays_terminated)
{
	struct json_buf b = { 0 };
	size_t reallocs = 0;
	char *last = NULL;
	size_t last_cap = 0;

	for (size_t i = 0; i < 100000; i++) {
		char c = (char)('a' + i % 26);

		json_buf_append(&b, &c, 1);
		ck_assert_uint_eq(b.len, i + 1);
		ck_assert_int_eq(b.data[b.len], '\0');
		ck_assert_int_eq(b.data[i], c);
		ck_assert_uint_ge(b.cap, b.len + 1);
		if (b.cap != last_cap || b.data != last)
			reallocs++;
		last = b.data;
		last_cap = b.cap;
	}
	/* Doubling from 64 reaches 100001 bytes in 12 steps. */
	ck_assert_uint_le(reallocs, 12);
	ck_assert_uint_eq(strlen(b.data), 100000);
	json_buf_free(&b);
}
END_TEST

START_TEST(test_buf_printf_appends_formatted_text_longer_than_capacity)
{
	struct json_buf b = { 0 };
	char expect[400];

	json_buf_printf(&b, "%s", "");
	ck_assert_ptr_nonnull(b.data);
	ck_assert_str_eq(b.data, "");
	json_buf_printf(&b, "id=%d ", 42);
	json_buf_printf(&b, "%0300d|%s", 7, "end");
	snprintf(expect, sizeof expect, "id=42 %0300d|end", 7);
	ck_assert_str_eq(b.data, expect);
	ck_assert_uint_eq(b.len, strlen(expect));
	json_buf_free(&b);
}
END_TEST

START_TEST(test_buf_reset_empties_and_keeps_memory)
{
	struct json_buf b = { 0 };
	char *data;
	size_t cap;

	json_buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	json_buf_append(&b, "hello", 5);
	data = b.data;
	cap = b.cap;
	json_buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(b.data, "");
	ck_assert_ptr_eq(b.data, data);
	ck_assert_uint_eq(b.cap, cap);
	json_buf_append(&b, "x", 1);
	ck_assert_str_eq(b.data, "x");
	json_buf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, 0);
	json_buf_free(&b);   /* a freed buffer is a fresh one */
}
END_TEST

START_TEST(test_buf_impossible_size_aborts_with_message)
{
	int fds[2], status;
	char msg[512];
	ssize_t got;
	size_t len = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct json_buf b = { 0 };

		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		json_buf_append(&b, "x", 1);
		json_buf_append(&b, "", SIZE_MAX);
		_exit(0);
	}
	close(fds[1]);
	while (len + 1 < sizeof msg && (got = read(fds[0], msg + len, sizeof msg - 1 - len)) > 0)
		len += (size_t)got;
	msg[len] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %d", status);
	ck_assert_ptr_nonnull(strstr(msg, "out of memory"));
}
END_TEST

/* ---- json_append_string ---- */

/* An input, its length by sizeof (NUL bytes count), and the output. */
#define IO(in, out) { in, sizeof(in) - 1, out }

static const struct {
	const char *in;
	size_t len;
	const char *out;
} string_cases[] = {
	IO("", "\"\""),
	IO("abc", "\"abc\""),
	IO("\"\\", "\"\\\"\\\\\""),
	IO("a/b", "\"a/b\""),
	IO("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""),
	IO("\x01\x0b\x1f", "\"\\u0001\\u000b\\u001f\""),
	IO("\x7f", "\"\x7f\""),
	IO("a\0b", "\"a" FFFD "b\""),
	IO("\0", "\"" FFFD "\""),
	/* Multibyte characters pass unchanged, edges of each length included. */
	IO("h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""),
	IO("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
	   "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\""),
	/* Ill-formed UTF-8: one U+FFFD per maximal subpart. */
	IO("\x80", "\"" FFFD "\""),
	IO("a\xbf" "b", "\"a" FFFD "b\""),
	IO("\xc3", "\"" FFFD "\""),
	IO("\xc3(", "\"" FFFD "(\""),
	IO("\xe2\x82" "A", "\"" FFFD "A\""),
	IO("\xe2\x82", "\"" FFFD "\""),
	IO("\xf0\x9f\x98", "\"" FFFD "\""),
	IO("\xf0\x9f\x98\"", "\"" FFFD "\\\"\""),
	IO("\xc0\xaf", "\"" FFFD FFFD "\""),
	IO("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\""),
	IO("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\""),
	IO("\xf0\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""),
	IO("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""),
	IO("\xf5\x80", "\"" FFFD FFFD "\""),
	IO("\xff\xfe", "\"" FFFD FFFD "\""),
	IO("\xe2\xe2\x82\xac", "\"" FFFD "\xe2\x82\xac\""),
	IO("\xc3\n", "\"" FFFD "\\n\""),
};

START_TEST(test_string_escapes_table)
{
	struct json_buf b = { 0 };
	char *in = malloc(string_cases[_i].len > 0 ? string_cases[_i].len : 1);

	memcpy(in, string_cases[_i].in, string_cases[_i].len);
	json_append_string(&b, in, string_cases[_i].len);
	ck_assert_msg(strcmp(b.data, string_cases[_i].out) == 0,
	              "case %d: got %s, want %s", _i, b.data, string_cases[_i].out);
	ck_assert_uint_eq(b.len, strlen(string_cases[_i].out));
	ck_assert_msg(json_valid(b.data, b.len), "case %d: output not valid JSON", _i);
	free(in);
	json_buf_free(&b);
}
END_TEST

START_TEST(test_string_appends_after_existing_content)
{
	struct json_buf b = { 0 };

	json_buf_append(&b, "{\"k\":", 5);
	json_append_string(&b, "v\n", 2);
	json_buf_append(&b, "}", 1);
	ck_assert_str_eq(b.data, "{\"k\":\"v\\n\"}");
	ck_assert(json_valid(b.data, b.len));
	json_buf_free(&b);
}
END_TEST

/*
 * For random bytes: the escaped string is valid JSON, holds no raw control
 * byte, and decodes to exactly what json_append_text() makes of the same
 * bytes, which is clean UTF-8 by this file's decoder. Clean input comes
 * back unchanged.
 */
START_TEST(test_string_random_bytes_escape_to_valid_json)
{
	struct json_buf esc = { 0 }, text = { 0 }, dec = { 0 };
	uint32_t state = 20240601;
	char in[96];

	for (int round = 0; round < 5000; round++) {
		size_t n = test_random_bytes(&state, in, sizeof in);

		json_buf_reset(&esc);
		json_buf_reset(&text);
		json_buf_reset(&dec);
		json_append_string(&esc, in, n);
		json_append_text(&text, in, n);
		ck_assert_msg(json_valid(esc.data, esc.len), "round %d: %s", round, esc.data);
		test_unescape(esc.data, esc.len, &dec);
		ck_assert_uint_eq(dec.len, text.len);
		ck_assert_msg(memcmp(dec.data, text.data, text.len) == 0, "round %d", round);
		ck_assert_msg(test_utf8_clean(text.data, text.len), "round %d", round);
		if (test_utf8_clean(in, n)) {
			ck_assert_uint_eq(text.len, n);
			ck_assert(memcmp(text.data, in, n) == 0);
		}
	}
	json_buf_free(&esc);
	json_buf_free(&text);
	json_buf_free(&dec);
}
END_TEST

/* Every character of every UTF-8 length survives escaping and validation. */
START_TEST(test_string_every_code_point_passes_through)
{
	struct json_buf b = { 0 };

	for (uint32_t cp = 1; cp <= 0x10FFFF; cp += (cp < 0x1000 ? 1 : 97)) {
		char in[4];
		size_t n;

		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		if (cp < 0x80) {
			in[0] = (char)cp;
			n = 1;
		} else if (cp < 0x800) {
			in[0] = (char)(0xC0 | cp >> 6);
			in[1] = (char)(0x80 | (cp & 0x3F));
			n = 2;
		} else if (cp < 0x10000) {
			in[0] = (char)(0xE0 | cp >> 12);
			in[1] = (char)(0x80 | (cp >> 6 & 0x3F));
			in[2] = (char)(0x80 | (cp & 0x3F));
			n = 3;
		} else {
			in[0] = (char)(0xF0 | cp >> 18);
			in[1] = (char)(0x80 | (cp >> 12 & 0x3F));
			in[2] = (char)(0x80 | (cp >> 6 & 0x3F));
			in[3] = (char)(0x80 | (cp & 0x3F));
			n = 4;
		}
		json_buf_reset(&b);
		json_append_string(&b, in, n);
		ck_assert_msg(json_valid(b.data, b.len), "U+%04X", cp);
		if (cp >= 0x20 && cp != '"' && cp != '\\') {
			ck_assert_msg(b.len == n + 2 && memcmp(b.data + 1, in, n) == 0, "U+%04X changed", cp);
		}
	}
	json_buf_free(&b);
}
END_TEST

/* ---- json_append_text ---- */

static const struct {
	const char *in;
	size_t len;
	const char *out;
} text_cases[] = {
	IO("", ""),
	IO("plain text", "plain text"),
	IO("a\nb\tc\"d\\e\x01\x7f", "a\nb\tc\"d\\e\x01\x7f"),
	IO("a\0b", "a" FFFD "b"),
	IO("\0\0", FFFD FFFD),
	IO("h\xc3\xa9 \xf0\x9f\x98\x80", "h\xc3\xa9 \xf0\x9f\x98\x80"),
	IO("x\x80y", "x" FFFD "y"),
	IO("\xe2\x82", FFFD),
	IO("\xed\xa0\x80", FFFD FFFD FFFD),
	IO("\xc0\x80", FFFD FFFD),
	IO("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD),
	IO("ok " FFFD, "ok " FFFD),
};

START_TEST(test_text_cleans_table)
{
	struct json_buf b = { 0 };
	char *in = malloc(text_cases[_i].len > 0 ? text_cases[_i].len : 1);

	memcpy(in, text_cases[_i].in, text_cases[_i].len);
	json_append_text(&b, in, text_cases[_i].len);
	ck_assert_ptr_nonnull(b.data);
	ck_assert_uint_eq(b.len, strlen(text_cases[_i].out));
	ck_assert_msg(memcmp(b.data, text_cases[_i].out, b.len) == 0 && b.data[b.len] == '\0',
	              "case %d: got %s", _i, b.data);
	ck_assert(test_utf8_clean(b.data, b.len));
	free(in);
	json_buf_free(&b);
}
END_TEST

/* ---- json_valid ---- */

START_TEST(test_valid_accepts_table)
{
	const struct valid_case *c = &valid_inputs[_i];

	ck_assert_msg(valid_copy(c->text, c->len), "case %d rejected: %s", _i, c->text);
}
END_TEST

START_TEST(test_valid_rejects_table)
{
	const struct valid_case *c = &invalid_inputs[_i];

	ck_assert_msg(!valid_copy(c->text, c->len), "case %d accepted: %s", _i, c->text);
}
END_TEST

START_TEST(test_valid_judges_only_the_first_n_bytes)
{
	ck_assert_msg(valid_copy(prefix_inputs[_i].text, prefix_inputs[_i].len) == prefix_inputs[_i].valid,
	              "case %d: %.*s", _i, (int)prefix_inputs[_i].len, prefix_inputs[_i].text);
}
END_TEST

START_TEST(test_valid_rejects_every_truncation_of_a_document)
{
	static const char doc[] =
		" {\"id\": 42, \"name\": \"h\xc3\xa9llo \\\"w\\u00f6rld\\\"\", \"tags\": [\"a\", \"\\ud83d\\ude00\"],"
		" \"n\": [-0, 1.5e-3, 1E+2, true, false, null], \"o\": {\"\": {}}} ";
	size_t n = sizeof doc - 1;

	ck_assert(valid_copy(doc, n));
	/* Every proper prefix leaves the object open. */
	for (size_t i = 0; i < n - 1; i++)
		ck_assert_msg(!valid_copy(doc, i), "prefix of %zu bytes accepted", i);
}
END_TEST

START_TEST(test_valid_accepts_nesting_1000_deep)
{
	struct json_buf b = { 0 };

	test_nested(&b, 1000, false);
	ck_assert(json_valid(b.data, b.len));
	json_buf_reset(&b);
	test_nested(&b, 1000, true);
	ck_assert(json_valid(b.data, b.len));
	json_buf_reset(&b);
	/* Depth counts open containers of both kinds. */
	test_nested_mixed(&b, 500, "1");
	ck_assert(json_valid(b.data, b.len));
	json_buf_reset(&b);
	/* The limit is on depth, not on the number of containers. */
	json_buf_append(&b, "[", 1);
	test_nested(&b, 999, false);
	json_buf_append(&b, ",", 1);
	test_nested(&b, 999, true);
	json_buf_append(&b, "]", 1);
	ck_assert(json_valid(b.data, b.len));
	json_buf_free(&b);
}
END_TEST

START_TEST(test_valid_rejects_nesting_1001_deep)
{
	struct json_buf b = { 0 };

	test_nested(&b, 1001, false);
	ck_assert(!json_valid(b.data, b.len));
	json_buf_reset(&b);
	test_nested(&b, 1001, true);
	ck_assert(!json_valid(b.data, b.len));
	json_buf_reset(&b);
	test_nested_mixed(&b, 500, "[]");
	ck_assert(!json_valid(b.data, b.len));
	json_buf_free(&b);
}
END_TEST

/* A hostile handler printing megabytes of '[' must not exhaust the stack. */
START_TEST(test_valid_rejects_megabytes_of_open_brackets)
{
	size_t n = 16 * 1024 * 1024;
	char *s = malloc(n);

	ck_assert_ptr_nonnull(s);
	memset(s, '[', n);
	ck_assert(!json_valid(s, n));
	memset(s, '{', n);
	ck_assert(!json_valid(s, n));
	free(s);
}
END_TEST

START_TEST(test_valid_accepts_2mb_array)
{
	struct json_buf b = { 0 };
	size_t last_len;

	json_buf_append(&b, "[", 1);
	for (int i = 0; b.len < 2 * 1024 * 1024; i++) {
		if (i > 0)
			json_buf_append(&b, ",", 1);
		switch (i % 5) {
		case 0: json_buf_printf(&b, "%d", i); break;
		case 1: json_buf_printf(&b, "-%d.%de-%d", i, i % 97, i % 300); break;
		case 2: json_append_string(&b, "t\xc3\xa9xt \"q\"\n\xf0\x9f\x98\x80", 14); break;
		case 3: json_buf_printf(&b, "{\"k%d\": [true, false, null]}", i); break;
		default: json_buf_append(&b, " \"\\ud83d\\ude00\\u0041\" ", 22); break;
		}
	}
	json_buf_append(&b, "]", 1);
	ck_assert_uint_ge(b.len, 2 * 1024 * 1024);
	ck_assert(json_valid(b.data, b.len));
	/* One bad byte anywhere spoils it. */
	last_len = b.len;
	b.data[last_len - 1] = ',';
	ck_assert(!json_valid(b.data, b.len));
	b.data[last_len - 1] = ']';
	b.data[last_len / 2] = '\x01';
	ck_assert(!json_valid(b.data, b.len));
	json_buf_free(&b);
}
END_TEST

/* Shapes that make naive validators quadratic or deep: long numbers,
 * long strings of escapes, many members. Each must still finish. */
START_TEST(test_valid_handles_long_tokens)
{
	struct json_buf b = { 0 };

	json_buf_append(&b, "0.", 2);
	for (int i = 0; i < 16383; i++)
		json_buf_append(&b, "7", 1);
	ck_assert(json_valid(b.data, b.len));
	json_buf_append(&b, "7", 1);   /* 16384 digits after the point */
	ck_assert(!json_valid(b.data, b.len));

	json_buf_reset(&b);
	json_buf_append(&b, "\"", 1);
	for (int i = 0; i < 200000; i++)
		json_buf_append(&b, "\\n\\u00e9\\ud83d\\ude00", 20);
	json_buf_append(&b, "\"", 1);
	ck_assert(json_valid(b.data, b.len));

	json_buf_reset(&b);
	json_buf_append(&b, "{", 1);
	for (int i = 0; i < 100000; i++)
		json_buf_printf(&b, "%s\"k%d\":%d", i > 0 ? "," : "", i, i);
	json_buf_append(&b, "}", 1);
	ck_assert(json_valid(b.data, b.len));
	json_buf_free(&b);
}
END_TEST

/* --- json_get ----------------------------------------------------------- */

/* A payload as PostgreSQL prints jsonb (", " and ": " between members),
 * with what only plain json holds besides: \u0000, lone surrogates and a
 * name twice. */
static const char get_doc[] =
	"{\"\": \"empty\", \"a\": {\"b\": {\"c\": \"deep\"}}, \"f\": false, \"i\": 42, "
	"\"n\": -1.5e3, \"s\": \"h\\u00e9 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\", \"t\": true, \"z\": null, "
	"\"\\u00e9\": \"escaped key\", \"arr\": [1, {\"x\": \"}\"}, \"]\", [[]]], \"nul\": \"a\\u0000b\", "
	"\"obj\": {\"k\": [{\"y\": 1}], \"q\": \"{\\\"\"}, \"emoji\": \"\\ud83d\\ude00\", "
	"\"lone\": \"\\ud800x\\udc00\", \"dot.ted\": 1, \"esc\\\"key\": \"ek\", \"dup\": 1, \"dup\": 2, "
	"\"raw\": \"\xc3\xa9\xe2\x82\xac\", \"last\": \"L\"}";

static const struct {
	const char *path;
	enum json_kind kind;
	const char *text;
	size_t len;
} get_cases[] = {
	{"a.b.c", JSON_STRING, "deep", 4},
	{"a.b", JSON_OBJECT, "", 0},
	{"a", JSON_OBJECT, "", 0},
	{"arr", JSON_ARRAY, "", 0},
	{"obj.k", JSON_ARRAY, "", 0},
	{"z", JSON_NULL, "", 0},
	{"s", JSON_STRING, "h\xc3\xa9 \"q\" \\ / \b\f\n\r\t", 17},
	{"n", JSON_NUMBER, "-1.5e3", 6},
	{"i", JSON_NUMBER, "42", 2},
	{"t", JSON_BOOL, "true", 4},
	{"f", JSON_BOOL, "false", 5},
	{"", JSON_STRING, "empty", 5},
	/* Keys compare after unescaping. */
	{"\xc3\xa9", JSON_STRING, "escaped key", 11},
	{"esc\"key", JSON_STRING, "ek", 2},
	/* A pair is one character; a lone surrogate is none (U+FFFD). */
	{"emoji", JSON_STRING, "\xf0\x9f\x98\x80", 4},
	{"lone", JSON_STRING, FFFD "x" FFFD, 7},
	{"nul", JSON_STRING, "a\0b", 3},
	{"raw", JSON_STRING, "\xc3\xa9\xe2\x82\xac", 5},
	/* Reached past arrays and strings holding brackets. */
	{"last", JSON_STRING, "L", 1},
	{"obj.q", JSON_STRING, "{\"", 2},
	{"dup", JSON_NUMBER, "1", 1},
	/* Missing: no such member, a member of a scalar, an array index, a
	 * name with a dot (dots always separate names). */
	{"missing", JSON_NONE, "", 0},
	{"a.x", JSON_NONE, "", 0},
	{"a.b.c.d", JSON_NONE, "", 0},
	{"s.x", JSON_NONE, "", 0},
	{"arr.0", JSON_NONE, "", 0},
	{"dot.ted", JSON_NONE, "", 0},
	{"a.", JSON_NONE, "", 0},
	{"A", JSON_NONE, "", 0},
};

START_TEST(test_get_finds_each_kind_table)
{
	struct json_buf b = {0};
	size_t n = sizeof get_doc - 1;
	char *doc = malloc(n);   /* exact length: no NUL after it */
	enum json_kind kind;

	ck_assert_ptr_nonnull(doc);
	memcpy(doc, get_doc, n);
	json_buf_append(&b, "pre:", 4);
	kind = json_get(doc, n, get_cases[_i].path, &b);
	ck_assert_msg(kind == get_cases[_i].kind, "%s: kind %d, want %d", get_cases[_i].path, kind,
	              get_cases[_i].kind);
	ck_assert_uint_eq(b.len, 4 + get_cases[_i].len);
	ck_assert_msg(memcmp(b.data, "pre:", 4) == 0 && memcmp(b.data + 4, get_cases[_i].text, get_cases[_i].len) == 0,
	              "%s: got \"%s\"", get_cases[_i].path, b.data);
	ck_assert_int_eq(b.data[b.len], '\0');
	json_buf_free(&b);
	free(doc);
}
END_TEST

START_TEST(test_get_reads_compact_text_and_other_roots)
{
	struct json_buf b = {0};

	ck_assert_int_eq(json_get("{\"a\":{\"b\":7},\"c\":\"x\"}", 21, "a.b", &b), JSON_NUMBER);
	ck_assert_str_eq(b.data, "7");
	json_buf_reset(&b);
	ck_assert_int_eq(json_get(" \n{ \"c\" :\t\"x\" } ", 16, "c", &b), JSON_STRING);
	ck_assert_str_eq(b.data, "x");
	/* A document that is no object has no members. */
	ck_assert_int_eq(json_get("[{\"a\":1}]", 9, "a", &b), JSON_NONE);
	ck_assert_int_eq(json_get("\"a\"", 3, "a", &b), JSON_NONE);
	ck_assert_int_eq(json_get("null", 4, "a", &b), JSON_NONE);
	ck_assert_int_eq(json_get("{}", 2, "a", &b), JSON_NONE);
	ck_assert_int_eq(json_get("", 0, "a", &b), JSON_NONE);
	ck_assert_int_eq(json_get(NULL, 0, "a", &b), JSON_NONE);
	ck_assert_str_eq(b.data, "x");
	json_buf_free(&b);
}
END_TEST

/* Only doc[0..n) is read: a value cut short is missing, never half there. */
START_TEST(test_get_reads_only_n_bytes)
{
	static const char doc[] = "{\"k\": \"value\", \"m\": 12345}";
	struct json_buf b = {0};

	for (size_t n = 0; n < sizeof doc - 1; n++) {
		char *copy = malloc(n + 1);
		enum json_kind kind;

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, doc, n);
		json_buf_reset(&b);
		kind = json_get(n > 0 ? copy : NULL, n, "k", &b);
		if (n >= 13)
			ck_assert_int_eq(kind, JSON_STRING);
		else
			ck_assert_msg(kind == JSON_NONE && b.len == 0, "n=%zu: kind %d, \"%s\"", n, kind,
			              b.data != NULL ? b.data : "");
		/* A number at the cut reads as the digits that are there. */
		kind = json_get(copy, n, "m", &b);
		ck_assert_int_eq(kind, n >= 21 ? JSON_NUMBER : JSON_NONE);
		free(copy);
	}
	json_buf_free(&b);
}
END_TEST

/* Skipping a member does not recurse: nesting far past any stack limit is
 * stepped over. */
START_TEST(test_get_skips_deep_nesting)
{
	struct json_buf doc = {0}, b = {0};
	int depth = 1000000;

	json_buf_append(&doc, "{\"deep\": ", 9);
	for (int i = 0; i < depth; i++)
		json_buf_append(&doc, i % 2 ? "[" : "{\"k\":", i % 2 ? 1 : 5);
	json_buf_append(&doc, "1", 1);
	for (int i = depth - 1; i >= 0; i--)
		json_buf_append(&doc, i % 2 ? "]" : "}", 1);
	json_buf_append(&doc, ", \"after\": \"yes\"}", 17);
	ck_assert_int_eq(json_get(doc.data, doc.len, "after", &b), JSON_STRING);
	ck_assert_str_eq(b.data, "yes");
	ck_assert_int_eq(json_get(doc.data, doc.len, "deep", &b), JSON_OBJECT);
	json_buf_free(&doc);
	json_buf_free(&b);
}
END_TEST

Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *buf = tcase_create("buffer");
	TCase *str = tcase_create("string");
	TCase *text = tcase_create("text");
	TCase *valid = tcase_create("valid");
	TCase *get = tcase_create("get");

	tcase_add_test(buf, test_buf_empty_append_on_fresh_buffer_gives_empty_string);
	tcase_add_test(buf, test_buf_grows_geometrically_and_stays_terminated);
	tcase_add_test(buf, test_buf_printf_appends_formatted_text_longer_than_capacity);
	tcase_add_test(buf, test_buf_reset_empties_and_keeps_memory);
	tcase_add_test(buf, test_buf_impossible_size_aborts_with_message);
	suite_add_tcase(s, buf);

	tcase_add_loop_test(str, test_string_escapes_table, 0, (int)(sizeof string_cases / sizeof string_cases[0]));
	tcase_add_test(str, test_string_appends_after_existing_content);
	tcase_add_test(str, test_string_random_bytes_escape_to_valid_json);
	tcase_add_test(str, test_string_every_code_point_passes_through);
	suite_add_tcase(s, str);

	tcase_add_loop_test(text, test_text_cleans_table, 0, (int)(sizeof text_cases / sizeof text_cases[0]));
	suite_add_tcase(s, text);

	tcase_add_loop_test(valid, test_valid_accepts_table, 0, (int)(sizeof valid_inputs / sizeof valid_inputs[0]));
	tcase_add_loop_test(valid, test_valid_rejects_table, 0, (int)(sizeof invalid_inputs / sizeof invalid_inputs[0]));
	tcase_add_loop_test(valid, test_valid_judges_only_the_first_n_bytes, 0,
	                    (int)(sizeof prefix_inputs / sizeof prefix_inputs[0]));
	tcase_add_test(valid, test_valid_rejects_every_truncation_of_a_document);
	tcase_add_test(valid, test_valid_accepts_nesting_1000_deep);
	tcase_add_test(valid, test_valid_rejects_nesting_1001_deep);
	tcase_add_test(valid, test_valid_rejects_megabytes_of_open_brackets);
	tcase_add_test(valid, test_valid_accepts_2mb_array);
	tcase_add_test(valid, test_valid_handles_long_tokens);
	/* Valgrind slows the large inputs down well past Check's default. */
	tcase_set_timeout(valid, 120);
	tcase_set_timeout(str, 120);
	suite_add_tcase(s, valid);

	tcase_add_loop_test(get, test_get_finds_each_kind_table, 0, (int)(sizeof get_cases / sizeof get_cases[0]));
	tcase_add_test(get, test_get_reads_compact_text_and_other_roots);
	tcase_add_test(get, test_get_reads_only_n_bytes);
	tcase_add_test(get, test_get_skips_deep_nesting);
	suite_add_tcase(s, get);
	return s;
}
