/*
 * Unit tier: secrets.c expands ${VAR} from the environment, says which
 * variable is missing without ever printing a value, and redacts every
 * value it expanded from text the daemon stores or logs.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "secrets.h"

#define TOKEN "s3cr3t-T0ken"

static void
secrets_test_setup(void)
{
	secrets_clear();
	ck_assert_int_eq(setenv("PGD_TEST_TOKEN", TOKEN, 1), 0);
	ck_assert_int_eq(setenv("PGD_TEST_USER", "alice", 1), 0);
	ck_assert_int_eq(setenv("PGD_TEST_EMPTY", "", 1), 0);
	ck_assert_int_eq(setenv("PGD_TEST_SHORT", "abc", 1), 0);
	ck_assert_int_eq(setenv("_x9", "four", 1), 0);
	unsetenv("PGD_TEST_UNSET");
}

/* Expands in, which must expand, and returns a static copy. */
static const char *
secrets_test_expand(const char *in)
{
	static char copy[512];
	char why[256];
	char *out = secrets_expand(in, why, sizeof why);

	ck_assert_msg(out != NULL, "%s: %s", in, why);
	snprintf(copy, sizeof copy, "%s", out);
	free(out);
	return copy;
}

/* Redacts text (to its NUL) and returns a static copy. */
static const char *
secrets_test_redact(const char *text)
{
	static char copy[512];
	struct json_buf b = {0};

	secrets_redact(&b, text, strlen(text));
	snprintf(copy, sizeof copy, "%s", b.data != NULL ? b.data : "");
	json_buf_free(&b);
	return copy;
}

static const struct {
	const char *in;
	const char *want;
} secrets_expansions[] = {
	{"Bearer ${PGD_TEST_TOKEN}", "Bearer " TOKEN},
	{"${PGD_TEST_USER}:${PGD_TEST_TOKEN}", "alice:" TOKEN},
	{"${PGD_TEST_USER}${PGD_TEST_USER}", "alicealice"},
	{"${_x9}", "four"},
	{"[${PGD_TEST_EMPTY}]", "[]"},
	{"no variables", "no variables"},
	{"", ""},
	/* $$ is one $, so $${X} is the text ${X}, expanded or not. */
	{"cost: $$5", "cost: $5"},
	{"$${PGD_TEST_UNSET}", "${PGD_TEST_UNSET}"},
	{"$$$${PGD_TEST_USER}", "$${PGD_TEST_USER}"},
	{"$$${PGD_TEST_USER}", "$alice"},
	/* Any other $ is literal. */
	{"$", "$"},
	{"a$b $PGD_TEST_USER $5 $(x) $ {y}", "a$b $PGD_TEST_USER $5 $(x) $ {y}"},
	{"${PGD_TEST_USER}$", "alice$"},
};

START_TEST(test_expand_table)
{
	ck_assert_str_eq(secrets_test_expand(secrets_expansions[_i].in), secrets_expansions[_i].want);
}
END_TEST

static const struct {
	const char *in;
	const char *why;
} secrets_refusals[] = {
	{"Bearer ${PGD_TEST_UNSET}", "${PGD_TEST_UNSET} is not set in the daemon's environment"},
	/* The variable before the unset one was expanded: its value is not in
	 * the message. */
	{"${PGD_TEST_TOKEN}${PGD_TEST_UNSET}", "${PGD_TEST_UNSET} is not set in the daemon's environment"},
	{"${", "'${' at byte 1 does not start ${NAME} (NAME: letters, digits and _, not starting with a "
	 "digit; write $$ for a literal $)"},
	{"ab${}", "'${' at byte 3 does not start ${NAME} (NAME: letters, digits and _, not starting with a "
	 "digit; write $$ for a literal $)"},
	{"${1A}", "'${' at byte 1 does not start ${NAME} (NAME: letters, digits and _, not starting with a "
	 "digit; write $$ for a literal $)"},
	{"${PGD-TEST}", "'${' at byte 1 does not start ${NAME} (NAME: letters, digits and _, not starting with "
	 "a digit; write $$ for a literal $)"},
	{"${PGD_TEST_TOKEN", "'${' at byte 1 does not start ${NAME} (NAME: letters, digits and _, not starting "
	 "with a digit; write $$ for a literal $)"},
	{"${ PGD_TEST_TOKEN }", "'${' at byte 1 does not start ${NAME} (NAME: letters, digits and _, not "
	 "starting with a digit; write $$ for a literal $)"},
};

START_TEST(test_expand_refuses_naming_the_variable_only)
{
	char why[256];
	char *out;

	memset(why, 'X', sizeof why);
	out = secrets_expand(secrets_refusals[_i].in, why, sizeof why);
	ck_assert_ptr_null(out);
	ck_assert_str_eq(why, secrets_refusals[_i].why);
	ck_assert_ptr_null(strstr(why, TOKEN));
}
END_TEST

/* Every occurrence of every value expanded so far becomes [redacted]. */
START_TEST(test_redact_replaces_every_remembered_value)
{
	/* Nothing expanded yet: nothing to redact. */
	ck_assert_str_eq(secrets_test_redact("Bearer " TOKEN), "Bearer " TOKEN);
	(void) secrets_test_expand("Bearer ${PGD_TEST_TOKEN}");
	(void) secrets_test_expand("${PGD_TEST_USER}");
	ck_assert_str_eq(secrets_test_redact("401: header was 'Bearer " TOKEN "' for alice; " TOKEN TOKEN),
	                 "401: header was 'Bearer [redacted]' for [redacted]; [redacted][redacted]");
	ck_assert_str_eq(secrets_test_redact(""), "");
	ck_assert_str_eq(secrets_test_redact("s3cr3t-T0ke"), "s3cr3t-T0ke");
	ck_assert_str_eq(secrets_test_redact("xs3cr3t-T0ken"), "x[redacted]");

	/* Length-counted: a NUL inside the text is copied, not an end. */
	{
		static const char text[] = "a\0alice\0b";
		struct json_buf b = {0};

		secrets_redact(&b, text, sizeof text - 1);
		ck_assert_uint_eq(b.len, 14);
		ck_assert(memcmp(b.data, "a\0[redacted]\0b", 14) == 0);
		json_buf_free(&b);
	}
}
END_TEST

/* Under 4 bytes a value is no secret worth garbling text for: "abc" stays,
 * while a value of exactly 4 bytes is remembered. Empty values neither. */
START_TEST(test_redact_skips_values_under_4_bytes)
{
	(void) secrets_test_expand("${PGD_TEST_SHORT}-${PGD_TEST_EMPTY}-${_x9}");
	ck_assert_str_eq(secrets_test_redact("abc abcd four fourth"), "abc abcd [redacted] [redacted]th");
}
END_TEST

/* Overlapping values: at each position the longest value that starts
 * there wins, so no tail of a longer secret is left behind. */
START_TEST(test_redact_prefers_the_longest_value_at_a_position)
{
	ck_assert_int_eq(setenv("PGD_TEST_A", "tok-", 1), 0);
	ck_assert_int_eq(setenv("PGD_TEST_B", "tok-extended", 1), 0);
	ck_assert_int_eq(setenv("PGD_TEST_C", "endedXYZ", 1), 0);
	(void) secrets_test_expand("${PGD_TEST_A}${PGD_TEST_B}${PGD_TEST_C}");
	ck_assert_str_eq(secrets_test_redact("tok-extended!"), "[redacted]!");
	ck_assert_str_eq(secrets_test_redact("tok-x"), "[redacted]x");
	/* The leftmost starts first. */
	ck_assert_str_eq(secrets_test_redact("tok-extendedXYZ"), "[redacted]XYZ");
	ck_assert_str_eq(secrets_test_redact("xendedXYZ"), "x[redacted]");
}
END_TEST

/* A value is remembered once however often it is expanded (each reload
 * expands the config again), and secrets_clear() forgets them all. */
START_TEST(test_values_are_remembered_once_and_cleared)
{
	for (int i = 0; i < 1000; i++)
		(void) secrets_test_expand("${PGD_TEST_TOKEN}");
	ck_assert_str_eq(secrets_test_redact(TOKEN), "[redacted]");
	secrets_clear();
	ck_assert_str_eq(secrets_test_redact(TOKEN), TOKEN);
	secrets_clear();
}
END_TEST

Suite *
secrets_suite(void)
{
	Suite *s = suite_create("secrets");
	TCase *tc = tcase_create("secrets");

	/* Each test starts with nothing remembered, forked or not. */
	tcase_add_checked_fixture(tc, secrets_test_setup, secrets_clear);
	tcase_add_loop_test(tc, test_expand_table, 0, (int) (sizeof secrets_expansions / sizeof secrets_expansions[0]));
	tcase_add_loop_test(tc, test_expand_refuses_naming_the_variable_only, 0,
	                    (int) (sizeof secrets_refusals / sizeof secrets_refusals[0]));
	tcase_add_test(tc, test_redact_replaces_every_remembered_value);
	tcase_add_test(tc, test_redact_skips_values_under_4_bytes);
	tcase_add_test(tc, test_redact_prefers_the_longest_value_at_a_position);
	tcase_add_test(tc, test_values_are_remembered_once_and_cleared);
	suite_add_tcase(s, tc);
	return s;
}
