/* Unit tier: db.c's password redaction and safe conninfo rendering. */
#include <string.h>

#include "db.h"
#include "harness.h"

START_TEST(test_redact_replaces_keyword_password)
{
	char out[256];

	db_redact("failed for x S3cret and S3cret again\n", "host=h password=S3cret", out, sizeof out);
	ck_assert_str_eq(out, "failed for x ******** and ******** again");
}
END_TEST

START_TEST(test_redact_replaces_uri_password)
{
	char out[256];

	db_redact("bad S3cret", "postgresql://user:S3cret@localhost/db", out, sizeof out);
	ck_assert_str_eq(out, "bad ********");
}
END_TEST

START_TEST(test_redact_withholds_unparsable_conninfo_with_password)
{
	char out[256];

	db_redact("missing \"=\" after \"S3cret\" in connection info string\n",
	          "host=h password S3cret", out, sizeof out);
	ck_assert_ptr_null(strstr(out, "S3cret"));
	ck_assert_ptr_nonnull(strstr(out, "withheld"));
}
END_TEST

START_TEST(test_redact_keeps_message_without_password)
{
	char out[256];

	db_redact("line one\nline two\n", "host=h", out, sizeof out);
	ck_assert_str_eq(out, "line one; line two");
}
END_TEST

START_TEST(test_conninfo_safe_drops_password)
{
	char out[256];

	db_conninfo_safe("host=h dbname=app password=S3cret user=u", out, sizeof out);
	ck_assert_ptr_null(strstr(out, "S3cret"));
	ck_assert_ptr_nonnull(strstr(out, "dbname=app"));
	ck_assert_ptr_nonnull(strstr(out, "user=u"));
	db_conninfo_safe("postgres://u:S3cret@h/app", out, sizeof out);
	ck_assert_ptr_null(strstr(out, "S3cret"));
	ck_assert_ptr_nonnull(strstr(out, "host=h"));
}
END_TEST

Suite *
db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("redaction");

	tcase_add_test(tc, test_redact_replaces_keyword_password);
	tcase_add_test(tc, test_redact_replaces_uri_password);
	tcase_add_test(tc, test_redact_withholds_unparsable_conninfo_with_password);
	tcase_add_test(tc, test_redact_keeps_message_without_password);
	tcase_add_test(tc, test_conninfo_safe_drops_password);
	suite_add_tcase(s, tc);
	return s;
}
