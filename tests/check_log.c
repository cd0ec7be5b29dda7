/*
 * Unit tier: log lines in both formats carry the same facts, and what an
 * argument prints (a task's kind, an error text) never becomes a field.
 */
#include <string.h>

#include "harness.h"
#include "json.h"
#include "log.h"

START_TEST(test_text_line_is_level_then_message)
{
	char buf[256];

	log_render(LOG_TEXT, LOG_WARN, buf, sizeof buf, "task=%d kind=%s attempt=%d failed: %s", 42, "send_email",
	           2, "exit 3");
	ck_assert_str_eq(buf, "warn task=42 kind=send_email attempt=2 failed: exit 3");
}
END_TEST

START_TEST(test_json_line_turns_leading_pairs_into_fields)
{
	char buf[256];

	log_render(LOG_JSON, LOG_INFO, buf, sizeof buf, "task=42 kind=%s started \"quoted\" \\ path", "send_email");
	ck_assert_str_eq(buf, "\"level\":\"info\",\"task\":\"42\",\"kind\":\"send_email\","
	                      "\"msg\":\"started \\\"quoted\\\" \\\\ path\"");
	log_render(LOG_JSON, LOG_ERROR, buf, sizeof buf, "no pairs here");
	ck_assert_str_eq(buf, "\"level\":\"error\",\"msg\":\"no pairs here\"");
}
END_TEST

/* The kind a producer chose, as the daemon logs a failed attempt. */
#define LOG_TEST_FAILED "task=%d kind=%s attempt=%d/%d failed: %s"
#define LOG_TEST_KIND "x level=error msg=spoofed"
#define LOG_TEST_ERROR "no handler for kind x level=error msg=spoofed"

START_TEST(test_text_quotes_an_argument_that_would_forge_fields)
{
	char buf[LOG_LINE_MAX];

	log_render(LOG_TEXT, LOG_WARN, buf, sizeof buf, LOG_TEST_FAILED, 7, LOG_TEST_KIND, 1, 5, LOG_TEST_ERROR);
	ck_assert_str_eq(buf, "warn task=7 kind=\"x level=error msg=spoofed\" attempt=1/5 "
	                      "failed: \"no handler for kind x level=error msg=spoofed\"");
	/* Free text without '=' or quotes reads as it did. */
	log_render(LOG_TEXT, LOG_INFO, buf, sizeof buf, "server says: %s", "relation is gone: it was dropped");
	ck_assert_str_eq(buf, "info server says: relation is gone: it was dropped");
	/* An argument never ends in a key either. */
	log_render(LOG_TEXT, LOG_INFO, buf, sizeof buf, "%s=1", "level");
	ck_assert_str_eq(buf, "info \"level\"=1");
}
END_TEST

START_TEST(test_text_escapes_quotes_controls_and_invalid_utf8)
{
	char buf[LOG_LINE_MAX];

	log_render(LOG_TEXT, LOG_INFO, buf, sizeof buf, "kind=%s queue=%s done", "a\"b\\c\nd\x01\xff",
	           "caf\xc3\xa9");
	ck_assert_str_eq(buf, "info kind=\"a\\\"b\\\\c\\nd\\x01\\xff\" queue=caf\xc3\xa9 done");
	log_render(LOG_TEXT, LOG_INFO, buf, sizeof buf, "kind=%s queue=%s", "", "q");
	ck_assert_str_eq(buf, "info kind= queue=q");   /* logfmt's empty value */
	/* Quoted by the format: escaped inside those quotes, not quoted twice. */
	log_render(LOG_TEXT, LOG_INFO, buf, sizeof buf, "connected database=\"%s\" listen=%s",
	           "host=h dbname=a\"b", "yes");
	ck_assert_str_eq(buf, "info connected database=\"host=h dbname=a\\\"b\" listen=yes");
}
END_TEST

START_TEST(test_json_arguments_never_become_keys)
{
	char buf[LOG_LINE_MAX];

	log_render(LOG_JSON, LOG_WARN, buf, sizeof buf, LOG_TEST_FAILED, 7, LOG_TEST_KIND, 1, 5, LOG_TEST_ERROR);
	ck_assert_str_eq(buf, "\"level\":\"warn\",\"task\":\"7\",\"kind\":\"x level=error msg=spoofed\","
	                      "\"attempt\":\"1/5\",\"msg\":\"failed: no handler for kind x level=error msg=spoofed\"");
	log_render(LOG_JSON, LOG_INFO, buf, sizeof buf, "%s=1 %s", "level", "msg=x");
	ck_assert_str_eq(buf, "\"level\":\"info\",\"msg\":\"level=1 msg=x\"");
	/* "msg" is one string, whatever quotes it holds. A leading value the
	 * format quoted loses those quotes and keeps its own. */
	log_render(LOG_JSON, LOG_INFO, buf, sizeof buf, "connected database=\"%s\" listen=%s",
	           "host=h dbname=a\"b", "yes");
	ck_assert_str_eq(buf, "\"level\":\"info\",\"msg\":\"connected database=\\\"host=h dbname=a\\\"b\\\" listen=yes\"");
	log_render(LOG_JSON, LOG_INFO, buf, sizeof buf, "database=\"%s\" listen=%s", "host=h x=\"", "yes");
	ck_assert_str_eq(buf, "\"level\":\"info\",\"database\":\"host=h x=\\\"\",\"listen\":\"yes\",\"msg\":\"\"");
}
END_TEST

START_TEST(test_json_line_is_valid_utf8_whatever_the_arguments)
{
	char buf[LOG_LINE_MAX], line[LOG_LINE_MAX + 2], big[LOG_LINE_MAX];

	log_render(LOG_JSON, LOG_INFO, buf, sizeof buf, "kind=%s %s", "\xff\xc3(\x01\"", "ok \xe2\x82");
	ck_assert_str_eq(buf, "\"level\":\"info\",\"kind\":\"\xef\xbf\xbd\xef\xbf\xbd(\\u0001\\\"\","
	                      "\"msg\":\"ok \xef\xbf\xbd\xef\xbf\xbd\"");
	snprintf(line, sizeof line, "{%s}", buf);
	ck_assert(json_valid(line, strlen(line)));
	/* The worst case, a message of nothing but control bytes, fits whole. */
	memset(big, '\x01', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_render(LOG_JSON, LOG_INFO, buf, sizeof buf, "kind=%s", big);
	snprintf(line, sizeof line, "{%s}", buf);
	ck_assert(json_valid(line, strlen(line)));
}
END_TEST

START_TEST(test_level_and_format_names_parse)
{
	enum log_level level;
	enum log_format format;

	ck_assert(log_level_parse("warn", &level) && level == LOG_WARN);
	ck_assert(!log_level_parse("loud", &level));
	ck_assert(log_format_parse("json", &format) && format == LOG_JSON);
	ck_assert(!log_format_parse("xml", &format));
}
END_TEST

Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("render");

	tcase_add_test(tc, test_text_line_is_level_then_message);
	tcase_add_test(tc, test_json_line_turns_leading_pairs_into_fields);
	tcase_add_test(tc, test_text_quotes_an_argument_that_would_forge_fields);
	tcase_add_test(tc, test_text_escapes_quotes_controls_and_invalid_utf8);
	tcase_add_test(tc, test_json_arguments_never_become_keys);
	tcase_add_test(tc, test_json_line_is_valid_utf8_whatever_the_arguments);
	tcase_add_test(tc, test_level_and_format_names_parse);
	suite_add_tcase(s, tc);
	return s;
}
