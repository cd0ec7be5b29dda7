/*
 * End to end, with hostile command handlers: one that crashes, hangs
 * ignoring SIGTERM, floods stdout or stderr with hundreds of MB, closes
 * stdin unread, leaves a grandchild holding its pipes (in its process
 * group, or escaped with setsid), is missing, or is not executable. Each
 * costs exactly one attempt with a last_error that says what happened, and
 * never the daemon: it stays up, its memory stays flat, and no process of
 * the handler's group outlives the attempt.
 *
 * Also what a handler gets besides its task: a clean environment
 * (env_passthrough), no descriptor the daemon inherited and, under a root
 * daemon with user:/group:, the dropped ids. And what a producer or a
 * neighbour must not get from the daemon: a password from its command line,
 * or a forged field in its log from a task's kind.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_test.h"
#include "harness.h"
#include "json.h"

/* A flood: far more than any buffer of ours, small enough for a shared
 * 2-core machine to push through a pipe in a few seconds. */
#define HOSTILE_FLOOD_BYTES "300000000"
/* How much the daemon's peak RSS may grow while a flood goes through it:
 * the captured output is bounded to 64 KiB of stdout and a few KiB of
 * stderr; the rest is allocator and libpq noise. */
#define HOSTILE_RSS_GROWTH_KB (8192 + DT_ASAN_SLACK_KB)

/* A process's state letter from /proc (R, S, Z...), or 0 if it is gone. */
static char
hostile_proc_state(pid_t pid, pid_t *ppid)
{
	char path[64], buf[512], *paren;
	char state = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	/* "pid (comm) S ppid ...": comm may hold anything but ends at the
	 * last ')'. */
	if (fgets(buf, sizeof buf, f) != NULL && (paren = strrchr(buf, ')')) != NULL) {
		int pp = 0;

		if (sscanf(paren + 1, " %c %d", &state, &pp) == 2 && ppid != NULL)
			*ppid = (pid_t) pp;
	}
	fclose(f);
	return state;
}

/* Waits until pid is gone entirely: not running and not a zombie either
 * (someone reaped it). Fails after timeout_ms. */
static void
hostile_wait_gone(pid_t pid, const char *what, int timeout_ms, const struct harness_daemon *d)
{
	char state = 0;

	for (int waited = 0; waited < timeout_ms; waited += 20) {
		state = hostile_proc_state(pid, NULL);
		if (state == 0)
			return;
		harness_sleep_ms(20);
	}
	ck_abort_msg("%s (pid %d) still exists in state %c after %d ms\n%s", what, (int) pid, state,
	             timeout_ms, harness_daemon_log(d));
}

/* Reads up to n pids (whitespace-separated) from path; returns how many. */
static int
hostile_read_pids(const char *path, pid_t *pids, int n)
{
	FILE *f = fopen(path, "r");
	int got = 0, v;

	ck_assert_ptr_nonnull(f);
	while (got < n && fscanf(f, "%d", &v) == 1)
		pids[got++] = (pid_t) v;
	fclose(f);
	return got;
}

/* The daemon is still running, and still takes work. */
static void
hostile_daemon_goes_on(struct harness_daemon *d)
{
	ck_assert_msg(kill(d->proc.pid, 0) == 0, "daemon died:\n%s", harness_daemon_log(d));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('after')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'after'", "complete",
	                   10000, d);
	ck_assert_int_eq(harness_daemon_stop(d, SIGTERM), 0);
}

/* The handlers of a test, plus the noop that hostile_daemon_goes_on()
 * uses. Static buffer. */
static const char *
hostile_handlers(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *
hostile_handlers(const char *fmt, ...)
{
	static char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	ck_assert(n > 0 && (size_t) n < sizeof buf - 64);
	strcat(buf, "  after:\n    builtin: noop\n");
	return buf;
}

START_TEST(test_segfaulting_handler_costs_one_attempt_and_names_the_signal)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  crash:\n    command: [%s]\n    max_attempts: 3\n    backoff: {initial: 1h, max: 1h}\n",
	        harness_handler("segfault.sh")), NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('crash')");
	/* Retried later (the backoff is jittered down to half), one attempt
	 * spent. */
	harness_wait_value(dt_conn, "SELECT concat_ws('|', status, attempts, run_at > now() + interval '20 minutes')"
	                            "  FROM dispatch.tasks WHERE kind = 'crash'",
	                   "pending|1|t", 10000, &d);
	/* A prefix: with a piped core_pattern (systemd-coredump) the kernel
	 * dumps whatever ulimit -c says, and ", core dumped" follows. */
	ck_assert_str_eq(harness_value(dt_conn, "SELECT left(last_error, 49) FROM dispatch.tasks WHERE kind = 'crash'"),
	                 "killed by SIGSEGV (signal 11, Segmentation fault)");
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_handler_ignoring_sigterm_is_killed_with_its_group_at_timeout)
{
	struct harness_daemon d;
	char pid_path[256];
	pid_t pids[2];

	snprintf(pid_path, sizeof pid_path, "%s", harness_write_temp(""));
	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  stuck:\n    command: [%s, %s]\n    timeout: 1s\n    max_attempts: 1\n",
	        harness_handler("hang.sh"), pid_path), NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('stuck')");
	harness_wait_value(dt_conn, "SELECT concat_ws('|', status, attempts) FROM dispatch.tasks", "failed|1", 15000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks"),
	                 "timed out after 1000 ms; it ignored SIGTERM and was killed with SIGKILL 2000 ms later");
	/* The handler and the grandchild in its group are not just dead but
	 * reaped: no zombie is left, wherever they were reparented. */
	ck_assert_int_eq(hostile_read_pids(pid_path, pids, 2), 2);
	hostile_wait_gone(pids[0], "handler", 5000, &d);
	hostile_wait_gone(pids[1], "grandchild in the handler's group", 5000, &d);
	unlink(pid_path);
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_stdout_flood_is_truncated_with_memory_flat)
{
	struct harness_daemon d;
	long before, after;

	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  flood_ok:\n    command: [%s, stdout, " HOSTILE_FLOOD_BYTES ", '0']\n"
	        "    max_output: 65536\n    max_attempts: 1\n"
	        "  flood_fail:\n    command: [%s, stdout, " HOSTILE_FLOOD_BYTES ", '1']\n"
	        "    max_output: 65536\n    max_attempts: 1\n",
	        harness_handler("flood_to.sh"), harness_handler("flood_to.sh")), NULL));
	before = dt_peak_rss_kb(d.proc.pid);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('flood_ok'), ('flood_fail')");
	harness_wait_value(dt_conn, "SELECT string_agg(concat_ws(':', kind, status, attempts), ',' ORDER BY id)"
	                            "  FROM dispatch.tasks",
	                   "flood_ok:complete:1,flood_fail:failed:1", 60000, &d);
	after = dt_peak_rss_kb(d.proc.pid);
	ck_assert_msg(after - before < HOSTILE_RSS_GROWTH_KB, "peak RSS grew from %ld kB to %ld kB", before, after);
	/* Exit 0: the work is done, and the result is the first 64 KiB. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', jsonb_typeof(result), length(result #>> '{}'), last_error IS NULL)"
	        "  FROM dispatch.tasks WHERE kind = 'flood_ok'"),
	        "string|65536|t");
	harness_daemon_wait_log(&d, "stdout truncated to 65536 bytes (of " HOSTILE_FLOOD_BYTES ")", 1000);
	/* Exit 1: a failed attempt that says its output was cut. */
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks WHERE kind = 'flood_fail'"),
	                 "exit 1; stdout truncated to max_output (65536 of " HOSTILE_FLOOD_BYTES " bytes kept)");
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_stderr_flood_keeps_a_bounded_tail_with_memory_flat)
{
	struct harness_daemon d;
	long before, after;

	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  noisy:\n    command: [%s, stderr, " HOSTILE_FLOOD_BYTES ", '1']\n    max_attempts: 1\n",
	        harness_handler("flood_to.sh")), NULL));
	before = dt_peak_rss_kb(d.proc.pid);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noisy')");
	harness_wait_value(dt_conn, "SELECT concat_ws('|', status, attempts) FROM dispatch.tasks", "failed|1", 60000, &d);
	after = dt_peak_rss_kb(d.proc.pid);
	ck_assert_msg(after - before < HOSTILE_RSS_GROWTH_KB, "peak RSS grew from %ld kB to %ld kB", before, after);
	/* The last 2 KiB of the flood, and how much there was. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', last_error LIKE 'exit 1: stderr, last 2048 of " HOSTILE_FLOOD_BYTES
	        " bytes: %, and again, and again%', length(last_error) < 2048 + 64)"
	        "  FROM dispatch.tasks"),
	        "t|t");
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_handler_closing_stdin_unread_costs_one_attempt)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  deaf:\n    command: [%s]\n    max_attempts: 1\n", harness_handler("close_stdin.sh")), NULL));
	/* 4 MB of task: the daemon is still writing when stdin closes. */
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload)"
	                      "  VALUES ('deaf', jsonb_build_object('blob', repeat('x', 4000000)))");
	harness_wait_value(dt_conn, "SELECT concat_ws('|', status, attempts) FROM dispatch.tasks", "failed|1", 15000, &d);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT regexp_replace(last_error, '[0-9]+ of the task''s [0-9]+', 'W of the task''s N')"
	        "  FROM dispatch.tasks"),
	        "exit 3; its stdin closed after W of the task's N bytes: stderr: close_stdin.sh: closed stdin unread");
	/* Written: what the pipe took before it closed, far from all of it. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT m[1]::bigint < m[2]::bigint AND m[2]::bigint > 4000000"
	        "  FROM dispatch.tasks, regexp_match(last_error, 'after ([0-9]+) of the task''s ([0-9]+) bytes') m"),
	        "t");
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

/*
 * A grandchild in the handler's group holds stdout and stderr open after
 * the handler exits: the attempt ends with the handler, not at EOF, and
 * the grandchild is killed with the group and reaped.
 */
START_TEST(test_grandchild_holding_pipes_in_the_group_is_killed_and_reaped)
{
	struct harness_daemon d;
	char pid_path[256];
	pid_t pid;

	snprintf(pid_path, sizeof pid_path, "%s", harness_write_temp(""));
	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  leaver:\n    command: [%s, %s, group, '1']\n    max_attempts: 1\n",
	        harness_handler("leave_child.sh"), pid_path), NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('leaver')");
	/* Well before the grandchild's 300 s are up. */
	harness_wait_value(dt_conn, "SELECT concat_ws('|', status, attempts) FROM dispatch.tasks", "failed|1", 15000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks"),
	                 "exit 1: stderr: leave_child.sh: left a grandchild behind");
	ck_assert_int_eq(hostile_read_pids(pid_path, &pid, 1), 1);
	hostile_wait_gone(pid, "grandchild in the handler's group", 5000, &d);
	unlink(pid_path);
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

/*
 * A grandchild that escaped into a session of its own is out of the
 * group's reach: the daemon must still end the attempt when the handler
 * exits. The escapee is reparented to the daemon (the subreaper), which
 * reaps it when it dies rather than leave a zombie.
 */
START_TEST(test_grandchild_escaped_with_setsid_does_not_hold_up_the_attempt)
{
	struct harness_daemon d;
	char pid_path[256];
	pid_t pid, ppid = 0;

	snprintf(pid_path, sizeof pid_path, "%s", harness_write_temp(""));
	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  escaper:\n    command: [%s, %s, setsid, '1']\n    max_attempts: 1\n",
	        harness_handler("leave_child.sh"), pid_path), NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('escaper')");
	harness_wait_value(dt_conn, "SELECT concat_ws('|', status, attempts) FROM dispatch.tasks", "failed|1", 15000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks"),
	                 "exit 1: stderr: leave_child.sh: left a grandchild behind");
	ck_assert_int_eq(hostile_read_pids(pid_path, &pid, 1), 1);
	ck_assert_msg(hostile_proc_state(pid, &ppid) != 0, "the escaped grandchild is gone already");
	ck_assert_msg(ppid == d.proc.pid, "escaped grandchild %d has parent %d, not the daemon %d", (int) pid,
	              (int) ppid, (int) d.proc.pid);
	kill(pid, SIGKILL);
	hostile_wait_gone(pid, "escaped grandchild", 5000, &d);
	harness_daemon_wait_log(&d, "reaped a process a handler left behind", 1000);
	unlink(pid_path);
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_missing_executable_costs_one_attempt)
{
	struct harness_daemon d;

	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  ghost:\n    command: [/nonexistent/handler]\n    max_attempts: 1\n"
	        "  unlisted:\n    command: [pgdispatch-no-such-handler, --flag]\n    max_attempts: 1\n"), NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('ghost'), ('unlisted')");
	harness_wait_value(dt_conn, "SELECT string_agg(concat_ws(':', status, attempts, last_error), ',' ORDER BY id)"
	                            "  FROM dispatch.tasks",
	                   "failed:1:cannot run /nonexistent/handler: No such file or directory,"
	                   "failed:1:cannot run pgdispatch-no-such-handler: No such file or directory",
	                   10000, &d);
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_file_without_execute_permission_costs_one_attempt)
{
	struct harness_daemon d;
	char path[256], want[512];

	/* mkstemp makes it 0600: no execute bit for anyone, root included. */
	snprintf(path, sizeof path, "%s", harness_write_temp("#!/bin/sh\nexit 0\n"));
	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  noexec:\n    command: [%s]\n    max_attempts: 1\n", path), NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('noexec')");
	harness_wait_value(dt_conn, "SELECT concat_ws('|', status, attempts) FROM dispatch.tasks", "failed|1", 10000, &d);
	snprintf(want, sizeof want, "cannot run %s: Permission denied", path);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks"), want);
	unlink(path);
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

/* The environment a handler of kind saw (env_dump.sh's result), one
 * "NAME=value\n" a line, with a leading "\n" so that "\nNAME=" matches a
 * whole name. Static buffer. */
static const char *
hostile_env_of(const char *kind)
{
	static char env[8192];
	char sql[256];

	snprintf(sql, sizeof sql, "SELECT E'\\n' || (result #>> '{}') FROM dispatch.tasks WHERE kind = '%s'", kind);
	snprintf(env, sizeof env, "%s", harness_value(dt_conn, sql));
	return env;
}

static void
hostile_assert_env(const char *env, const char *needle, bool want)
{
	ck_assert_msg((strstr(env, needle) != NULL) == want, "handler environment %s \"%s\":%s",
	              want ? "lacks" : "has", needle, env);
}

START_TEST(test_handler_environment_is_clean_by_default)
{
	struct harness_daemon d;
	const char *env;

	/* The daemon inherits these from the test; PGHOST comes from
	 * pg_scratch.sh. */
	setenv("PGPASSWORD", "hunter2-secret", 1);
	setenv("PGDISPATCH_TEST_UNLISTED", "unlisted-value", 1);
	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  env:\n    command: [%s]\n", harness_handler("env_dump.sh")), NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('env')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 10000, &d);
	env = hostile_env_of("env");

	hostile_assert_env(env, "\nPATH=", true);
	hostile_assert_env(env, "\nPGDISPATCH_TASK_KIND=env\n", true);
	hostile_assert_env(env, "\nPGDISPATCH_TASK_ATTEMPT=1\n", true);
	hostile_assert_env(env, "PGPASSWORD", false);
	hostile_assert_env(env, "hunter2", false);
	hostile_assert_env(env, "\nPGHOST=", false);
	hostile_assert_env(env, "UNLISTED", false);
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

START_TEST(test_env_passthrough_passes_only_the_named_variables)
{
	struct harness_daemon d;
	const char *env;

	setenv("PGPASSWORD", "hunter2-secret", 1);
	setenv("PGDISPATCH_TEST_PASSED", "passed-value", 1);
	setenv("PGDISPATCH_TEST_SECRET", "only-for-special", 1);
	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  plain:\n    command: [%s]\n"
	        "  special:\n    command: [%s]\n    env_passthrough: [PATH, PGDISPATCH_TEST_SECRET]\n",
	        harness_handler("env_dump.sh"), harness_handler("env_dump.sh")),
	        "env_passthrough: [PATH, PGDISPATCH_TEST_PASSED, PGDISPATCH_TEST_ABSENT]"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('plain'), ('special')");
	harness_wait_value(dt_conn, "SELECT string_agg(status::text, ',') FROM dispatch.tasks", "complete,complete",
	                   10000, &d);

	env = hostile_env_of("plain");
	hostile_assert_env(env, "\nPATH=", true);
	hostile_assert_env(env, "\nPGDISPATCH_TEST_PASSED=passed-value\n", true);
	hostile_assert_env(env, "\nPGDISPATCH_TASK_KIND=plain\n", true);
	hostile_assert_env(env, "PGDISPATCH_TEST_SECRET", false);
	hostile_assert_env(env, "PGDISPATCH_TEST_ABSENT", false);
	hostile_assert_env(env, "\nHOME=", false);   /* in the default list, not in this one */
	hostile_assert_env(env, "PGPASSWORD", false);

	env = hostile_env_of("special");
	hostile_assert_env(env, "\nPGDISPATCH_TEST_SECRET=only-for-special\n", true);
	hostile_assert_env(env, "\nPGDISPATCH_TASK_KIND=special\n", true);
	hostile_assert_env(env, "PGDISPATCH_TEST_PASSED", false);
	hostile_assert_env(env, "PGPASSWORD", false);
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

/*
 * The user a root daemon can drop to and still reach the test server:
 * pg_scratch.sh's server user owns the socket directory (mode 0700), so
 * that user; with a server of the caller's, nobody.
 */
static const char *
hostile_drop_user(void)
{
	const char *as = getenv("PGDISPATCH_PG_AS");

	return as != NULL ? as : "nobody";
}

/* True if every directory above path lets others through (and so the
 * dropped user can run a handler from the source tree). */
static bool
hostile_reachable_by_others(const char *path)
{
	char dir[512];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof dir, "%s", path);
	while ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (stat(dir, &st) != 0 || (st.st_mode & S_IXOTH) == 0)
			return false;
	}
	return true;
}

START_TEST(test_root_daemon_drops_to_user_and_group_for_itself_and_handlers)
{
	struct harness_daemon d;
	const char *user = hostile_drop_user();
	struct passwd *pw = getpwnam(user);
	struct group *gr = getgrnam("nogroup");
	char extra[256], want[512], status_path[64], line[256];
	unsigned uids[4] = {1, 1, 1, 1};
	FILE *f;

	if (geteuid() != 0 || pw == NULL || gr == NULL
	    || !hostile_reachable_by_others(harness_handler("whoami.sh"))) {
		printf("skipped %s: needs root, users %s and group nogroup, and a source tree others can "
		       "reach\n", __func__, user);
		return;
	}
	snprintf(extra, sizeof extra, "user: %s\ngroup: nogroup", user);
	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  who:\n    command: [%s]\n", harness_handler("whoami.sh")), extra));
	harness_daemon_wait_log(&d, "dropped root", 1000);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('who')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 10000, &d);

	/* The handler runs as the user, in the group, with neither root's
	 * supplementary groups nor root's home. */
	snprintf(want, sizeof want, "%d|%d|f|%s", (int) pw->pw_uid, (int) gr->gr_gid, pw->pw_dir);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', result->>'uid', result->>'gid',"
	        "       '0' = ANY (string_to_array(result->>'groups', ' ')), result->>'home')"
	        "  FROM dispatch.tasks"), want);

	/* So does the daemon itself: real, effective, saved and fs uid. */
	snprintf(status_path, sizeof status_path, "/proc/%d/status", (int) d.proc.pid);
	f = fopen(status_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f) != NULL)
		sscanf(line, "Uid: %u %u %u %u", &uids[0], &uids[1], &uids[2], &uids[3]);
	fclose(f);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(uids[i], (unsigned) pw->pw_uid);

	/* The config file is root's (mode 0600): the daemon said so at
	 * startup, and a reload fails clearly and keeps the running config. */
	harness_daemon_wait_log(&d, "cannot be read as user", 1000);
	kill(d.proc.pid, SIGHUP);
	harness_daemon_wait_log(&d, "reload failed, keeping the running config", 5000);
	ck_assert_ptr_nonnull(strstr(harness_daemon_log(&d), "cannot open: Permission denied"));
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

/* Run as a user other than root, a daemon configured to switch users
 * refuses to start, with exit 2 and the reason. */
START_TEST(test_user_given_to_a_daemon_not_started_as_root_is_refused)
{
	const char *bin = getenv("PGDISPATCH_BIN");
	struct passwd *pw = getpwnam(hostile_drop_user());
	char config[256], err_path[256], buf[2048];
	int status, fd;
	ssize_t n;
	pid_t pid;

	if (geteuid() == 0 && (pw == NULL || !hostile_reachable_by_others(bin))) {
		printf("skipped %s: no user to run the daemon as\n", __func__);
		return;
	}
	snprintf(config, sizeof config, "%s", harness_write_temp("user: root\nqueues: [default]\n"));
	chmod(config, 0644);
	snprintf(err_path, sizeof err_path, "%s", harness_write_temp(""));
	chmod(err_path, 0666);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		int err_fd = open(err_path, O_WRONLY);

		dup2(err_fd, STDERR_FILENO);
		/* As root, become someone else first. */
		if (geteuid() == 0 && (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
			_exit(99);
		execl(bin, bin, "run", "-c", config, "-d", dt_db, (char *) NULL);
		_exit(98);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	fd = open(err_path, O_RDONLY);
	ck_assert(fd >= 0);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %d: %s", status, buf);
	ck_assert_msg(strstr(buf, ": user: switching to root (uid 0, gid 0) needs root, and the daemon runs as uid ")
	              != NULL, "%s", buf);
	unlink(config);
	unlink(err_path);
}
END_TEST

/* Descriptor number and target of each "... N -> target" line of ls -l
 * output that is not 0-2 or ls's own directory: what a handler was given
 * beyond its pipes. Static buffer, "" when none. */
static const char *
hostile_extra_fds(const char *ls)
{
	static char extra[4096];
	const char *line = ls;

	extra[0] = '\0';
	while (line != NULL && *line != '\0') {
		const char *eol = strchr(line, '\n'), *arrow = strstr(line, " -> ");
		size_t len = eol != NULL ? (size_t) (eol - line) : strlen(line);

		if (arrow != NULL && arrow < line + len) {
			const char *num = arrow, *target = arrow + 4;
			size_t tlen = len - (size_t) (target - line);

			while (num > line && num[-1] != ' ')
				num--;
			if (!(arrow - num == 1 && *num >= '0' && *num <= '2')
			    && !(strncmp(target, "/proc/", 6) == 0 && tlen > 3
			         && strncmp(target + tlen - 3, "/fd", 3) == 0))
				snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "%.*s; ",
				         (int) (line + len - num), num);
		}
		line = eol != NULL ? eol + 1 : NULL;
	}
	return extra;
}

/*
 * Whatever started the daemon may leave descriptors open without
 * close-on-exec (a shell's `exec 7</etc/shadow`, a careless supervisor).
 * The daemon closes them at startup: else every handler, after a root
 * drop too, could read through them.
 */
START_TEST(test_descriptors_the_daemon_inherited_never_reach_a_handler)
{
	struct harness_daemon d;
	char secret[256], fd_dir[64], link[512], target[512];
	const char *extra;
	int fd;

	snprintf(secret, sizeof secret, "%s", harness_write_temp("root-only secret\n"));
	/* No O_CLOEXEC: the daemon inherits it as fd 7. */
	fd = open(secret, O_RDONLY);
	ck_assert(fd >= 0);
	ck_assert_int_eq(dup2(fd, 7), 7);
	close(fd);
	harness_daemon_start(&d, dt_db, dt_config(hostile_handlers(
	        "  fds:\n    command: [%s]\n", harness_handler("fd_list.sh")), NULL));
	close(7);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('fds')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks", "complete", 10000, &d);
	extra = hostile_extra_fds(harness_value(dt_conn, "SELECT result #>> '{}' FROM dispatch.tasks"));
	ck_assert_msg(extra[0] == '\0', "handler started with descriptors beyond 0-2: %s", extra);

	/* Nor does the daemon keep it. */
	snprintf(fd_dir, sizeof fd_dir, "/proc/%d/fd", (int) d.proc.pid);
	for (int i = 3; i < 64; i++) {
		ssize_t n;

		snprintf(link, sizeof link, "%s/%d", fd_dir, i);
		n = readlink(link, target, sizeof target - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		ck_assert_msg(strcmp(target, secret) != 0, "daemon still holds %s as fd %d", secret, i);
	}
	unlink(secret);
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

/* Two ways to put a password on the command line. Each needs %s for the
 * database name, then %s for the login role. */
static const char *const hostile_password_forms[] = {
	"dbname=%s user=%s password=sekret123",
	"postgresql://%2$s:sekret123@/%1$s",
};

/*
 * ps and /proc/PID/cmdline show a process's arguments to every user on the
 * host, handlers included: a password given with -d is scrubbed from them
 * as soon as the daemon has read it.
 */
START_TEST(test_password_given_with_d_is_gone_from_the_command_line)
{
	struct harness_daemon d;
	char conninfo[256], path[64], cmdline[4096];
	const char *args[] = {"run", "-c", d.config_path, "-d", conninfo, NULL};
	size_t n;
	FILE *f;

	memset(&d, 0, sizeof d);
	/* dt_db is "dbname=NAME". */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(conninfo, sizeof conninfo, hostile_password_forms[_i], dt_db + strlen("dbname="),
	         HARNESS_WORKER);
#pragma GCC diagnostic pop
	snprintf(d.config_path, sizeof d.config_path, "%s",
	         harness_write_temp(dt_config(hostile_handlers("  noop:\n    builtin: noop\n"), NULL)));
	harness_start(&d.proc, args);
	harness_daemon_wait_log(&d, " connected ", 10000);

	snprintf(path, sizeof path, "/proc/%d/cmdline", (int) d.proc.pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(cmdline, 1, sizeof cmdline - 1, f);
	fclose(f);
	cmdline[n] = '\0';
	ck_assert_msg(n > 0 && memmem(cmdline, n, "sekret123", 9) == NULL, "%s: /proc/PID/cmdline shows "
	              "the password: %.*s", conninfo, (int) n, cmdline);
	/* The rest of the command line still says what runs. */
	ck_assert_msg(memmem(cmdline, n, "run\0-c\0", 7) != NULL, "%.*s", (int) n, cmdline);
	ck_assert_ptr_null(strstr(harness_daemon_log(&d), "sekret123"));
	hostile_daemon_goes_on(&d);
	harness_daemon_free(&d);
}
END_TEST

/* True if text (one log line) has " key=" outside double quotes. */
static bool
hostile_unquoted_key(const char *line, size_t len, const char *key)
{
	size_t klen = strlen(key);
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\\' && quoted)
			i++;
		else if (line[i] == '"')
			quoted = !quoted;
		else if (!quoted && line[i] == ' ' && i + 1 + klen < len
		         && strncmp(line + i + 1, key, klen) == 0 && line[i + 1 + klen] == '=')
			return true;
	}
	return false;
}

/* A JSON log line's count of key (json keeps duplicate keys), and
 * whether its field "kind" is kind, asked of the server. */
static void
hostile_json_fields(const char *line, size_t len, long long *levels, long long *msgs, bool *is_kind)
{
	char *copy = strndup(line, len);
	const char *params[1] = {copy};
	PGresult *res = PQexecParams(dt_conn,
	        "SELECT count(*) FILTER (WHERE k = 'level'), count(*) FILTER (WHERE k = 'msg'),"
	        "       coalesce(bool_or(k = 'kind') AND $1::json->>'kind' = 'x level=error msg=spoofed', false)"
	        "  FROM json_object_keys($1::json) AS k", 1, NULL, params, NULL, NULL, 0);

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", copy, PQerrorMessage(dt_conn));
	*levels = atoll(PQgetvalue(res, 0, 0));
	*msgs = atoll(PQgetvalue(res, 0, 1));
	*is_kind = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	PQclear(res);
	free(copy);
}

/*
 * A producer chooses a task's kind, and the daemon logs it. A kind written
 * as log fields ("x level=error msg=spoofed") must stay one value: quoted
 * in the text format, a string in JSON, never a key of its own. _i: 0
 * text, 1 JSON.
 */
START_TEST(test_task_kind_cannot_forge_log_fields)
{
	struct harness_daemon d;
	const char *log, *line;
	bool json = _i == 1, kind_seen = false;

	char worker[256];
	const char *args[] = {"run", "-c", d.config_path, "-d", worker, NULL};

	/* harness_daemon_start() waits for the text format's " connected ". */
	memset(&d, 0, sizeof d);
	snprintf(worker, sizeof worker, "%s", harness_as(dt_db, HARNESS_WORKER));
	/* No handler for the kind: one failed attempt, logged at warn with
	 * its kind, then a retry an hour away. */
	snprintf(d.config_path, sizeof d.config_path, "%s", harness_write_temp(dt_config(
	        hostile_handlers("  noop:\n    builtin: noop\n"),
	        json ? "backoff: {initial: 1h, max: 1h}\nlog: {level: debug, format: json}"
	             : "backoff: {initial: 1h, max: 1h}")));
	harness_start(&d.proc, args);
	harness_daemon_wait_log(&d, "connected database=", 10000);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('x level=error msg=spoofed')");
	harness_wait_value(dt_conn, "SELECT concat_ws('|', status, attempts) FROM dispatch.tasks", "pending|1",
	                   10000, &d);
	harness_daemon_wait_log(&d, "spoofed", 2000);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	log = d.proc.err;
	for (line = log; *line != '\0';) {
		const char *eol = strchr(line, '\n');
		size_t len = eol != NULL ? (size_t) (eol - line) : strlen(line);

		if (json) {
			long long levels, msgs;
			bool is_kind;

			ck_assert_msg(json_valid(line, len), "not JSON: %.*s", (int) len, line);
			hostile_json_fields(line, len, &levels, &msgs, &is_kind);
			ck_assert_msg(levels == 1 && msgs <= 1, "forged fields: %.*s", (int) len, line);
			kind_seen |= is_kind;
		} else {
			ck_assert_msg(!hostile_unquoted_key(line, len, "level") && !hostile_unquoted_key(line, len, "msg"),
			              "forged field: %.*s", (int) len, line);
			kind_seen |= memmem(line, len, "kind=\"x level=error msg=spoofed\"", 32) != NULL;
		}
		line += len + (eol != NULL);
	}
	ck_assert_msg(kind_seen, "no line carries the kind as one value:\n%s", log);
	harness_daemon_free(&d);
}
END_TEST

Suite *
hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("handlers");
	TCase *env = tcase_create("environment");
	TCase *user = tcase_create("user");
	TCase *exposure = tcase_create("exposure");

	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_segfaulting_handler_costs_one_attempt_and_names_the_signal);
	tcase_add_test(tc, test_handler_ignoring_sigterm_is_killed_with_its_group_at_timeout);
	tcase_add_test(tc, test_stdout_flood_is_truncated_with_memory_flat);
	tcase_add_test(tc, test_stderr_flood_keeps_a_bounded_tail_with_memory_flat);
	tcase_add_test(tc, test_handler_closing_stdin_unread_costs_one_attempt);
	tcase_add_test(tc, test_grandchild_holding_pipes_in_the_group_is_killed_and_reaped);
	tcase_add_test(tc, test_grandchild_escaped_with_setsid_does_not_hold_up_the_attempt);
	tcase_add_test(tc, test_missing_executable_costs_one_attempt);
	tcase_add_test(tc, test_file_without_execute_permission_costs_one_attempt);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(env, dt_setup, dt_teardown);
	tcase_set_timeout(env, 60);
	tcase_add_test(env, test_handler_environment_is_clean_by_default);
	tcase_add_test(env, test_env_passthrough_passes_only_the_named_variables);
	suite_add_tcase(s, env);

	tcase_add_checked_fixture(exposure, dt_setup, dt_teardown);
	tcase_set_timeout(exposure, 60);
	tcase_add_test(exposure, test_descriptors_the_daemon_inherited_never_reach_a_handler);
	tcase_add_loop_test(exposure, test_password_given_with_d_is_gone_from_the_command_line, 0,
	                    sizeof hostile_password_forms / sizeof hostile_password_forms[0]);
	tcase_add_loop_test(exposure, test_task_kind_cannot_forge_log_fields, 0, 2);
	suite_add_tcase(s, exposure);

	tcase_add_checked_fixture(user, dt_setup, dt_teardown);
	tcase_set_timeout(user, 60);
	tcase_add_test(user, test_root_daemon_drops_to_user_and_group_for_itself_and_handlers);
	tcase_add_test(user, test_user_given_to_a_daemon_not_started_as_root_is_refused);
	suite_add_tcase(s, user);
	return s;
}
