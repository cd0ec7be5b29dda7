/* Unit tier: the command line's help, version and usage errors. */
#include <string.h>

#include "harness.h"
#include "version.h"

/* Runs the binary with args and returns its exit code; p keeps the output. */
static int
cli_run(struct harness_proc *p, const char *const *args)
{
	return harness_run(p, args);
}

START_TEST(test_version_prints_version_and_exits_0)
{
	struct harness_proc p;
	const char *args[] = {"--version", NULL};

	ck_assert_int_eq(cli_run(&p, args), 0);
	ck_assert_str_eq(p.out, "pgdispatch " PGDISPATCH_VERSION "\n");
	harness_proc_free(&p);
}
END_TEST

START_TEST(test_help_lists_commands_and_exits_0)
{
	struct harness_proc p;
	const char *args[] = {"--help", NULL};

	ck_assert_int_eq(cli_run(&p, args), 0);
	ck_assert_ptr_nonnull(strstr(p.out, "pgdispatch migrate [-d CONNINFO]"));
	ck_assert_str_eq(p.err, "");
	harness_proc_free(&p);
}
END_TEST

/* An installed pgdispatch hands out sql/roles.sql with no source tree
 * and no database. */
START_TEST(test_roles_print_shows_the_roles_script)
{
	struct harness_proc p;
	const char *args[] = {"roles", "--print", NULL};

	ck_assert_int_eq(cli_run(&p, args), 0);
	ck_assert_ptr_nonnull(strstr(p.out, "GRANT USAGE ON SCHEMA dispatch TO dispatch_producer, dispatch_worker, dispatch_admin;"));
	ck_assert_ptr_nonnull(strstr(p.out, "\nCOMMIT;\n"));
	ck_assert_str_eq(p.err, "");
	harness_proc_free(&p);
}
END_TEST

/* Each of these is a usage error: exit 2 and a message that says why. */
static const struct {
	const char *args[5];
	const char *says;
} cli_bad[] = {
	{{NULL}, "no command given"},
	{{"frobnicate", NULL}, "unknown command 'frobnicate'"},
	{{"migrate", "--bogus", NULL}, "unknown option '--bogus'"},
	{{"migrate", "-d", NULL}, "needs a value"},
	{{"migrate", "extra", NULL}, "unexpected argument 'extra'"},
	{{"roles", "--print", "-d", "dbname=x", NULL}, "--print connects nowhere"},
	{{"enqueue", "--print", "k", NULL}, "unknown option '--print'"},
	{{"retry", NULL}, "missing argument"},
	{{"retry", "12a", NULL}, "the task id must be a number"},
	{{"cancel", "-1", NULL}, "unknown option '-1'"},
	{{"cancel", "x", NULL}, "the task id must be a number"},
	{{"cancel-many", "--status", "complete", NULL}, "--status is pending or in_progress"},
	{{"cancel-many", "--reason", "oops", NULL}, "name a KIND, a --queue, or both"},
	{{"pause", NULL}, "missing argument"},
	{{"resume", "a", "b", NULL}, "unexpected argument 'b'"},
	{{"purge", "--queue", "q", "1 day", NULL}, "unknown option '--queue'"},
};

START_TEST(test_usage_errors_exit_2_with_reason)
{
	struct harness_proc p;

	ck_assert_int_eq(cli_run(&p, cli_bad[_i].args), 2);
	ck_assert_msg(strstr(p.err, cli_bad[_i].says) != NULL, "stderr %s lacks %s", p.err,
	              cli_bad[_i].says);
	ck_assert_ptr_nonnull(strstr(p.err, "--help"));
	harness_proc_free(&p);
}
END_TEST

/* A connection that fails must not echo the password, in any form. */
static const char *const cli_secret_conninfos[] = {
	"host=/nonexistent-pgdispatch user=u password=S3cretPw connect_timeout=2",
	"postgresql://u:S3cretPw@/db?host=/nonexistent-pgdispatch",
	"host=/nonexistent-pgdispatch password=S3cretPw bogus_option=1",
	"host=/nonexistent-pgdispatch password S3cretPw",
};

START_TEST(test_connection_error_never_shows_password)
{
	struct harness_proc p;
	const char *args[] = {"migrate", "-d", cli_secret_conninfos[_i], NULL};

	ck_assert_int_eq(cli_run(&p, args), 1);
	ck_assert_msg(strstr(p.err, "cannot connect") != NULL, "stderr: %s", p.err);
	ck_assert_msg(strstr(p.err, "S3cretPw") == NULL, "password leaked: %s", p.err);
	ck_assert_msg(strstr(p.out, "S3cretPw") == NULL, "password leaked: %s", p.out);
	harness_proc_free(&p);
}
END_TEST

Suite *
cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_version_prints_version_and_exits_0);
	tcase_add_test(tc, test_help_lists_commands_and_exits_0);
	tcase_add_test(tc, test_roles_print_shows_the_roles_script);
	tcase_add_loop_test(tc, test_usage_errors_exit_2_with_reason, 0,
	                    (int) (sizeof cli_bad / sizeof cli_bad[0]));
	tcase_add_loop_test(tc, test_connection_error_never_shows_password, 0,
	                    (int) (sizeof cli_secret_conninfos / sizeof cli_secret_conninfos[0]));
	suite_add_tcase(s, tc);
	return s;
}
