/*
 * End to end: the README's "Operating" section, run as written. Every
 * fenced block of the section is executed in order against a live daemon,
 * as an operator holding only dispatch_admin would run it: sql blocks
 * through libpq, sh blocks as pgdispatch commands (with -d added), yaml
 * blocks through `pgdispatch check-config`. Each block must succeed, and
 * after each recipe ("### " heading) the state it promises is asserted.
 * A recipe that stops working, or a section rewritten without its test,
 * fails here.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_test.h"
#include "harness.h"

#define OPS_MAX_BLOCKS 64

struct ops_block {
	char heading[128];           /* the "### " heading it sits under */
	char lang[16];               /* sql, sh, yaml */
	char *text;
};

static struct ops_block ops_blocks[OPS_MAX_BLOCKS];
static int ops_nblocks;

/* Reads README.md's "## Operating" section into ops_blocks. */
static void
ops_read_readme(void)
{
	char path[512], line[4096], heading[128] = "";
	const char *src = getenv("PGDISPATCH_SRC");
	bool in_section = false, in_block = false;
	struct ops_block *b = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_msg(src != NULL, "PGDISPATCH_SRC is not set (run through make check)");
	snprintf(path, sizeof path, "%s/README.md", src);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot read %s", path);
	ops_nblocks = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (!in_block && strncmp(line, "## ", 3) == 0) {
			in_section = strcmp(line, "## Operating\n") == 0;
			continue;
		}
		if (!in_section)
			continue;
		if (!in_block && strncmp(line, "### ", 4) == 0) {
			snprintf(heading, sizeof heading, "%.*s", (int) strcspn(line + 4, "\n"), line + 4);
		} else if (!in_block && strncmp(line, "```", 3) == 0) {
			ck_assert_int_lt(ops_nblocks, OPS_MAX_BLOCKS);
			b = &ops_blocks[ops_nblocks++];
			snprintf(b->heading, sizeof b->heading, "%s", heading);
			snprintf(b->lang, sizeof b->lang, "%.*s", (int) strcspn(line + 3, "\n"), line + 3);
			b->text = calloc(1, 1);
			len = 0;
			in_block = true;
		} else if (in_block && strncmp(line, "```", 3) == 0) {
			in_block = false;
		} else if (in_block) {
			size_t n = strlen(line);

			b->text = realloc(b->text, len + n + 1);
			ck_assert_ptr_nonnull(b->text);
			memcpy(b->text + len, line, n + 1);
			len += n;
		}
	}
	fclose(f);
	ck_assert_msg(ops_nblocks >= 10, "README.md's Operating section has %d code blocks", ops_nblocks);
}

/* Splits a command line as sh would for the plain words and 'quoted'
 * strings the README uses; returns the number of words. */
static int
ops_split(char *line, char **words, int max)
{
	int n = 0;
	char *p = line, *out;

	while (*p != '\0' && n < max - 1) {
		while (*p == ' ')
			p++;
		if (*p == '\0' || *p == '#')
			break;
		words[n++] = out = p;
		while (*p != '\0' && *p != ' ') {
			if (*p == '\'') {
				for (p++; *p != '\0' && *p != '\''; p++)
					*out++ = *p;
				if (*p == '\'')
					p++;
			} else {
				*out++ = *p++;
			}
		}
		if (*p == ' ')
			p++;
		*out = '\0';
	}
	words[n] = NULL;
	return n;
}

/* Runs one line of an sh block: a pgdispatch command, as the admin. */
static void
ops_run_command(const char *admin, const char *text, char *out, size_t outlen)
{
	char line[1024];
	char *words[32];
	const char *args[40];
	struct harness_proc p;
	int n, a = 0;

	snprintf(line, sizeof line, "%s", text);
	n = ops_split(line, words, 32);
	if (n == 0)
		return;
	ck_assert_msg(strcmp(words[0], "pgdispatch") == 0, "README sh block runs '%s', not pgdispatch", text);
	args[a++] = words[1];
	args[a++] = "-d";
	args[a++] = admin;
	for (int i = 2; i < n; i++)
		args[a++] = words[i];
	args[a] = NULL;
	ck_assert_msg(harness_run(&p, args) == 0, "README: `%s` failed:\n%s%s", text, p.out, p.err);
	snprintf(out + strlen(out), outlen - strlen(out), "%s", p.out);
	harness_proc_free(&p);
}

/* Runs one block; what it printed (an sh block's stdout, an sql block's
 * values) is appended to out. */
static void
ops_run_block(PGconn *admin_conn, const char *admin, const struct ops_block *b, char *out, size_t outlen)
{
	if (strcmp(b->lang, "sql") == 0) {
		PGresult *res;

		/* Several statements in one simple query: the last result counts,
		 * and an error in any ends it. */
		ck_assert_int_eq(PQsendQuery(admin_conn, b->text), 1);
		while ((res = PQgetResult(admin_conn)) != NULL) {
			ExecStatusType st = PQresultStatus(res);

			ck_assert_msg(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "README (%s):\n%s\nfailed: %s",
			              b->heading, b->text, PQresultErrorMessage(res));
			for (int r = 0; r < PQntuples(res); r++)
				for (int c = 0; c < PQnfields(res); c++)
					snprintf(out + strlen(out), outlen - strlen(out), "%s%s", PQgetvalue(res, r, c),
					         c + 1 < PQnfields(res) ? "|" : "\n");
			PQclear(res);
		}
	} else if (strcmp(b->lang, "sh") == 0) {
		char *copy = strdup(b->text), *save = NULL;

		for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save))
			ops_run_command(admin, l, out, outlen);
		free(copy);
	} else if (strcmp(b->lang, "yaml") == 0) {
		char yaml[4096];
		const char *path;
		const char *args[] = {"check-config", "-c", NULL, NULL};
		struct harness_proc p;

		snprintf(yaml, sizeof yaml, "queues: [email]\nhandlers:\n  send_email: {builtin: noop}\n%s", b->text);
		path = harness_write_temp(yaml);
		args[2] = path;
		ck_assert_msg(harness_run(&p, args) == 0, "README (%s) yaml:\n%s\ncheck-config: %s%s", b->heading,
		              b->text, p.out, p.err);
		harness_proc_free(&p);
		unlink(path);
	} else {
		ck_abort_msg("README's Operating section has a ```%s block; the test runs sql, sh and yaml", b->lang);
	}
}

/*
 * The state each recipe promises, checked after its blocks ran: a heading
 * prefix, a query, and the value it must reach (waited for: the daemon
 * acts on its own time).
 */
static const struct ops_promise {
	const char *heading;
	const char *said;            /* in what the recipe's blocks printed */
	const char *sql;
	const char *want;
} ops_promises[] = {
	{"What is running", "report", "SELECT count(*) FROM dispatch.running WHERE id = 43", "1"},
	{"Which daemons", "running", "SELECT count(*) FROM dispatch.instances WHERE state = 'running'", "1"},
	{"Why tasks fail", "failing on purpose",
	 "SELECT count(DISTINCT task_id) FROM dispatch.failures WHERE kind = 'send_email' AND outcome = 'failed'", "4"},
	{"Retry one", "pending again",
	 "SELECT string_agg(status::text, ',' ORDER BY id) FROM dispatch.tasks WHERE kind = 'send_email' AND id <> 44",
	 "complete,complete,complete,complete"},
	/* 43's handler stopped: the daemon runs nothing any more. */
	{"Cancel", "task 44 cancelled",
	 "SELECT (SELECT string_agg(concat_ws(':', id, status, last_error), ',' ORDER BY id) FROM dispatch.tasks"
	 "         WHERE id IN (43, 44, 48))"
	 "       || '|' || (SELECT sum(running) FROM dispatch.instances)",
	 "43:cancelled:the customer withdrew the order,44:cancelled:sent by hand,"
	 "48:cancelled:provider outage: resend later|0"},
	{"Pause", "queue email paused", "SELECT count(*) FROM dispatch.queue_pauses", "0"},
	{"Throughput", "send_email", "SELECT sum(completed) >= 4 FROM dispatch.throughput WHERE queue = 'email'", "t"},
	/* The SQL purge took 41; the command after it found nothing left. */
	{"Retention", "1\n0 finished task(s) deleted", "SELECT count(*) FROM dispatch.tasks WHERE id = 41", "0"},
};

START_TEST(test_readme_operating_recipes_work_as_written)
{
	struct harness_daemon d;
	char config[1024], flag[] = "/tmp/pgdispatch-ops-flag-XXXXXX", *out;
	const char *admin;
	PGconn *admin_conn;
	int fd, promised = 0;
	size_t outlen = 1 << 16;

	ops_read_readme();
	fd = mkstemp(flag);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* The cast of the recipes: 42 and three more send_email tasks fail
	 * while the flag exists (max_attempts 1); 43 runs for a minute; 44
	 * and a newsletter, 48, wait for tomorrow; 41 finished long ago. */
	harness_exec(dt_conn,
	             "INSERT INTO dispatch.tasks (id, kind, queue, max_attempts) OVERRIDING SYSTEM VALUE"
	             " VALUES (42, 'send_email', 'email', 1), (45, 'send_email', 'email', 1),"
	             "        (46, 'send_email', 'email', 1), (47, 'send_email', 'email', 1);"
	             "INSERT INTO dispatch.tasks (id, kind, payload) OVERRIDING SYSTEM VALUE"
	             " VALUES (43, 'report', '{\"ms\": 60000}');"
	             "INSERT INTO dispatch.tasks (id, kind, queue, run_at) OVERRIDING SYSTEM VALUE"
	             " VALUES (44, 'send_email', 'email', now() + interval '1 day'),"
	             "        (48, 'send_newsletter', 'email', now() + interval '1 day');"
	             "INSERT INTO dispatch.tasks (id, kind, status, finished_at) OVERRIDING SYSTEM VALUE"
	             " VALUES (41, 'report', 'complete', now() - interval '100 days');"
	             "SELECT setval(pg_get_serial_sequence('dispatch.tasks', 'id'), 100)");
	snprintf(config, sizeof config,
	         /* Retention off: 41 is the purge recipe's to delete. */
	         "queues: [default, email]\nconcurrency: 4\npoll_interval: 1s\nlease: 2s\n"
	         "retention: {complete: off}\n"
	         "log: {level: debug}\nhandlers:\n"
	         "  send_email:\n    command: [%s, %s]\n"
	         "  report:\n    builtin: sleep\n    timeout: 2m\n",
	         harness_handler("fail_while.sh"), flag);
	harness_daemon_start(&d, dt_db, config);
	harness_wait_value(dt_conn,
	                   "SELECT count(*) FILTER (WHERE status = 'failed') || ':'"
	                   "    || count(*) FILTER (WHERE id = 43 AND status = 'in_progress')"
	                   "  FROM dispatch.tasks",
	                   "4:1", 15000, &d);

	admin = harness_as(dt_db, HARNESS_ADMIN);
	admin_conn = harness_connect(admin);
	out = calloc(1, outlen);
	ck_assert_ptr_nonnull(out);
	for (int i = 0; i < ops_nblocks; i++) {
		const struct ops_block *b = &ops_blocks[i];

		/* "Fix the cause first": the recipe's own first words. */
		if (strncmp(b->heading, "Retry", 5) == 0)
			unlink(flag);
		if (i == 0 || strcmp(ops_blocks[i - 1].heading, b->heading) != 0)
			out[0] = '\0';
		ops_run_block(admin_conn, admin, b, out, outlen);
		/* The promise of a recipe is checked after its last block. */
		if (i + 1 < ops_nblocks && strcmp(ops_blocks[i + 1].heading, b->heading) == 0)
			continue;
		for (size_t p = 0; p < sizeof ops_promises / sizeof ops_promises[0]; p++) {
			const struct ops_promise *pr = &ops_promises[p];

			if (strncmp(b->heading, pr->heading, strlen(pr->heading)) != 0)
				continue;
			ck_assert_msg(strstr(out, pr->said) != NULL, "README (%s) printed no '%s':\n%s", b->heading,
			              pr->said, out);
			harness_wait_value(dt_conn, pr->sql, pr->want, 10000, &d);
			promised++;
		}
	}
	ck_assert_int_eq(promised, sizeof ops_promises / sizeof ops_promises[0]);
	/* What the recipes showed along the way. */
	ck_assert_str_eq(harness_value(dt_conn, "SELECT count(*) >= 4 FROM dispatch.failures"
	                                        " WHERE kind = 'send_email' AND error LIKE '%failing on purpose%'"),
	                 "t");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	PQfinish(admin_conn);
	free(out);
	for (int i = 0; i < ops_nblocks; i++)
		free(ops_blocks[i].text);
	unlink(flag);
}
END_TEST

Suite *
recipes_suite(void)
{
	Suite *s = suite_create("recipes");
	TCase *tc = tcase_create("recipes");

	tcase_add_checked_fixture(tc, dt_setup, dt_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_readme_operating_recipes_work_as_written);
	suite_add_tcase(s, tc);
	return s;
}
