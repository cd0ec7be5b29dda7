/* Unit tier: log lines in both formats carry the same facts. */
#include "harness.h"
#include "log.h"

START_TEST(test_text_line_is_level_then_message)
{
	char buf[256];

	log_render(LOG_TEXT, LOG_WARN, "task=42 kind=send_email attempt=2 failed: exit 3", buf, sizeof buf);
	ck_assert_str_eq(buf, "warn task=42 kind=send_email attempt=2 failed: exit 3");
}
END_TEST

START_TEST(test_json_line_turns_leading_pairs_into_fields)
{
	char buf[256];

	log_render(LOG_JSON, LOG_INFO, "task=42 kind=send_email started \"quoted\" \\ path", buf, sizeof buf);
	ck_assert_str_eq(buf, "\"level\":\"info\",\"task\":\"42\",\"kind\":\"send_email\","
	                      "\"msg\":\"started \\\"quoted\\\" \\\\ path\"");
	log_render(LOG_JSON, LOG_ERROR, "no pairs here", buf, sizeof buf);
	ck_assert_str_eq(buf, "\"level\":\"error\",\"msg\":\"no pairs here\"");
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
	tcase_add_test(tc, test_level_and_format_names_parse);
	suite_add_tcase(s, tc);
	return s;
}
