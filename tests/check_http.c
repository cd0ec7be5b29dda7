/*
 * End to end, HTTP handlers (README "HTTP handlers"): the real daemon
 * delivering tasks to build/http-stub (tests/stub/http_stub.c), a real
 * process listening on 127.0.0.1, in the mode each test sets. Every test
 * asserts the row (status, attempts, result, last_error, run_at) and what
 * the service received, read from the stub's log into the table requests:
 * method, path, Idempotency-Key, X-Pgdispatch-Attempt, headers and body.
 * Breakers in general (two daemons, probes, sources) are check_breakers_daemon.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_test.h"
#include "harness.h"

/* Retries that come fast and run out: a test never waits on a backoff. */
#define HTTP_FAST "    max_attempts: 3\n    backoff: {initial: 100ms, max: 200ms}\n    timeout: 5s\n"

/* How much the daemon's peak RSS may grow while a 100 MB answer goes
 * through it: max_output (64 KiB) and libcurl's buffers, plus allocator
 * and libpq noise; 100 MB kept whole fails it. */
#define HTTP_RSS_GROWTH_KB (16384 + DT_ASAN_SLACK_KB)

/* A value of ${PGD_HTTP_TEST_TOKEN}, and what must never show it. */
#define HTTP_SECRET "tok-5f1e9a-never-shown"

/* ---- the stub as a process of the test ---- */

struct stub {
	pid_t pid;
	int ctl;              /* its stdin: "mode M" lines */
	int port;
	int modes;            /* "mode " lines it has said so far */
	char log_path[256];   /* a JSON line per request */
	char out_path[256];   /* what it says: modes, closed connections */
	char port_path[256];
};

/* How many times text occurs in what the stub said. */
static int
stub_said(const struct stub *s, const char *text)
{
	char *out = harness_slurp(s->out_path);
	int n = 0;

	for (const char *p = strstr(out, text); p != NULL; p = strstr(p + 1, text))
		n++;
	free(out);
	return n;
}

static void
stub_check_alive(const struct stub *s)
{
	int status;

	if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
		char *out = harness_slurp(s->out_path);

		ck_abort_msg("http-stub exited (status %d):\n%s", status, out);
	}
}

/* Waits until the stub said text n times. */
static void
stub_wait_said(const struct stub *s, const char *text, int n, int timeout_ms)
{
	long long end = harness_now_ms() + timeout_ms;

	while (stub_said(s, text) < n) {
		stub_check_alive(s);
		if (harness_now_ms() >= end) {
			char *out = harness_slurp(s->out_path);

			ck_abort_msg("http-stub did not say \"%s\" %d times within %d ms:\n%s", text, n, timeout_ms, out);
		}
		harness_sleep_ms(10);
	}
}

/*
 * Starts build/http-stub (next to the daemon under test) in mode, with
 * more arguments (NULL-ended), and waits until it listens. Tied to the
 * test's life: a failed test leaves no stub behind.
 */
static void stub_start(struct stub *s, const char *mode, ...) __attribute__((sentinel));

static void
stub_start(struct stub *s, const char *mode, ...)
{
	const char *bin = getenv("PGDISPATCH_BIN"), *slash, *argv[24], *arg;
	char path[512];
	long long end;
	int n = 0, in[2], out_fd;
	va_list ap;

	ck_assert_msg(bin != NULL && (slash = strrchr(bin, '/')) != NULL, "PGDISPATCH_BIN is not set (run through make check)");
	snprintf(path, sizeof path, "%.*s/http-stub", (int) (slash - bin), bin);
	ck_assert_msg(access(path, X_OK) == 0, "%s: %s (make check builds it)", path, strerror(errno));
	memset(s, 0, sizeof *s);
	snprintf(s->log_path, sizeof s->log_path, "%s", harness_write_temp(""));
	snprintf(s->out_path, sizeof s->out_path, "%s", harness_write_temp(""));
	snprintf(s->port_path, sizeof s->port_path, "%s", harness_write_temp(""));
	argv[n++] = path;
	argv[n++] = "--port-file";
	argv[n++] = s->port_path;
	argv[n++] = "--log";
	argv[n++] = s->log_path;
	argv[n++] = "--mode";
	argv[n++] = mode;
	va_start(ap, mode);
	while ((arg = va_arg(ap, const char *)) != NULL && n < 23)
		argv[n++] = arg;
	va_end(ap);
	argv[n] = NULL;

	/* A stub that died must fail the test, not kill it on a write. */
	signal(SIGPIPE, SIG_IGN);
	ck_assert(pipe2(in, O_CLOEXEC) == 0);
	out_fd = open(s->out_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert(out_fd >= 0);
	fflush(NULL);
	s->pid = fork();
	ck_assert(s->pid >= 0);
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], STDIN_FILENO);
		dup2(out_fd, STDOUT_FILENO);
		dup2(out_fd, STDERR_FILENO);
		execv(path, (char *const *) argv);
		dprintf(STDERR_FILENO, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out_fd);
	s->ctl = in[1];
	s->modes = 1;
	for (end = harness_now_ms() + 10000; s->port == 0; harness_sleep_ms(10)) {
		char *text = harness_slurp(s->port_path);

		s->port = atoi(text);
		free(text);
		stub_check_alive(s);
		ck_assert_msg(harness_now_ms() < end, "http-stub wrote no port within 10 s");
	}
}

/* Changes the stub's mode and waits until it took effect. */
static void
stub_mode(struct stub *s, const char *mode)
{
	char line[512];
	int n = snprintf(line, sizeof line, "mode %s\n", mode);

	ck_assert_int_eq(write(s->ctl, line, (size_t) n), n);
	stub_wait_said(s, "mode ", ++s->modes, 5000);
	ck_assert_int_eq(stub_said(s, "bad line"), 0);
}

/* SIGUSR1: down, or back to the mode before down. */
static void
stub_toggle(struct stub *s)
{
	ck_assert_int_eq(kill(s->pid, SIGUSR1), 0);
	stub_wait_said(s, "mode ", ++s->modes, 5000);
}

/* Stops the stub (SIGTERM: it must exit 0, or it crashed) and removes its
 * files. */
static void
stub_stop(struct stub *s)
{
	int status;

	ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
	while (waitpid(s->pid, &status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *out = harness_slurp(s->out_path);

		ck_abort_msg("http-stub ended with status %d:\n%s", status, out);
	}
	close(s->ctl);
	unlink(s->log_path);
	unlink(s->out_path);
	unlink(s->port_path);
}

/* Requests the stub has logged so far. */
static int
stub_requests(const struct stub *s)
{
	char *log = harness_slurp(s->log_path);
	int n = 0;

	for (const char *p = log; (p = strchr(p, '\n')) != NULL; p++)
		n++;
	free(log);
	return n;
}

static void
stub_wait_requests(const struct stub *s, int n, int timeout_ms, const struct harness_daemon *d)
{
	long long end = harness_now_ms() + timeout_ms;
	int got;

	while ((got = stub_requests(s)) < n) {
		stub_check_alive(s);
		ck_assert_msg(harness_now_ms() < end, "the stub got %d requests, not %d, within %d ms\n%s", got, n,
		              timeout_ms, harness_daemon_log(d));
		harness_sleep_ms(20);
	}
}

/*
 * Loads the stub's log into table requests (stub: name, n: the line's
 * number, j: the line), replacing what name had there. Returns how many
 * requests it loaded.
 */
static long
stub_load(const struct stub *s, const char *name)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long n = 0;
	FILE *f;

	if (strcmp(harness_value(dt_conn, "SELECT to_regclass('requests') IS NULL"), "t") == 0)
		harness_exec(dt_conn, "CREATE TABLE requests (stub text, n int, j jsonb NOT NULL)");
	{
		const char *params[1] = {name};
		PGresult *res = PQexecParams(dt_conn, "DELETE FROM requests WHERE stub = $1", 1, NULL, params, NULL, NULL, 0);

		ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(dt_conn));
		PQclear(res);
	}
	f = fopen(s->log_path, "r");
	ck_assert_msg(f != NULL, "%s: %s", s->log_path, strerror(errno));
	while ((len = getline(&line, &cap, f)) > 0) {
		char num[24];
		const char *params[3] = {name, num, line};
		PGresult *res;

		snprintf(num, sizeof num, "%ld", ++n);
		res = PQexecParams(dt_conn, "INSERT INTO requests VALUES ($1, $2::int, $3::jsonb)", 3, NULL, params, NULL,
		                   NULL, 0);
		ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "line %ld of the stub's log is not JSON (%s): %s", n,
		              PQerrorMessage(dt_conn), line);
		PQclear(res);
	}
	free(line);
	fclose(f);
	return n;
}

/* ---- config and queries ---- */

/* Appends to yaml an http handler for kind: the stub's URL with path, then
 * more (lines of the http: map at 6 spaces first, then the handler's at 4). */
static void
http_handler(char *yaml, size_t len, const char *kind, const struct stub *s, const char *path, const char *more)
{
	size_t at = strlen(yaml);
	int n = snprintf(yaml + at, len - at, "  %s:\n    http:\n      url: \"http://127.0.0.1:%d%s\"\n%s", kind, s->port,
	                 path, more != NULL ? more : "");

	ck_assert_msg(n > 0 && (size_t) n < len - at, "handlers YAML does not fit");
}

static const char *http_value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* harness_value() on the test's database, with the SQL formatted. */
static const char *
http_value(const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	ck_assert(n > 0 && (size_t) n < sizeof sql);
	return harness_value(dt_conn, sql);
}

/* "kind:status:attempts" of every task, in id order. */
#define HTTP_STATES "SELECT string_agg(concat_ws(':', kind, status, attempts), ',' ORDER BY id) FROM dispatch.tasks"

/* ---- what an answer means ---- */

/* 2xx completes at the first attempt: a JSON body is the result as is,
 * any other body a JSON string, no body NULL. The service got one POST
 * with the task as a command reads it, and our headers. */
START_TEST(test_2xx_completes_with_a_json_text_or_empty_result)
{
	struct harness_daemon d;
	struct stub ok, text, empty;
	char yaml[4096] = "";

	stub_start(&ok, "ok", NULL);
	stub_start(&text, "text", NULL);
	stub_start(&empty, "empty", NULL);
	http_handler(yaml, sizeof yaml, "json", &ok, "/orders?src=test", HTTP_FAST);
	http_handler(yaml, sizeof yaml, "text", &text, "/text", HTTP_FAST);
	http_handler(yaml, sizeof yaml, "empty", &empty, "/empty", HTTP_FAST);
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES"
	                      " ('json', '{\"order\": 7, \"note\": \"caf\\u00e9 \\\"q\\\"\"}'), ('text', '{}'), ('empty', '{}')");
	harness_wait_value(dt_conn, HTTP_STATES, "json:complete:1,text:complete:1,empty:complete:1", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(concat_ws('|', kind, coalesce(result::text, 'NULL'), last_error IS NULL), ','"
	        "                  ORDER BY id) FROM dispatch.tasks"),
	        "json|{\"ok\": true}|t,text|\"hello\"|t,empty|NULL|t");

	ck_assert_int_eq(stub_load(&ok, "ok"), 1);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', r.j->>'method', r.j->>'path', r.j->>'idempotency_key' = t.id::text,"
	        "       r.j->>'attempt', r.j->'headers'->>'content-type',"
	        "       r.j->'body' = jsonb_build_object('id', t.id, 'queue', 'default', 'kind', 'json',"
	        "                                        'payload', t.payload, 'attempt', 1, 'max_attempts', 3),"
	        "       r.j->>'status')"
	        "  FROM requests r, dispatch.tasks t WHERE r.stub = 'ok' AND t.kind = 'json'"),
	        "POST|/orders?src=test|t|1|application/json|t|200");
	ck_assert_int_eq(stub_load(&text, "text"), 1);
	ck_assert_int_eq(stub_load(&empty, "empty"), 1);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&ok);
	stub_stop(&text);
	stub_stop(&empty);
}
END_TEST

/* The statuses no retry can fix: any 4xx but 408, 425, 429, and a 3xx
 * (redirects are not followed): failed for good at the first attempt,
 * whatever attempts remain, with the status line and the body's start. */
START_TEST(test_other_4xx_and_an_unfollowed_3xx_fail_at_once)
{
	static const int codes[] = {400, 404, 422, 302};
	struct harness_daemon d;
	struct stub s[4];
	char yaml[4096] = "", kind[16], mode[32], path[16];

	for (int i = 0; i < 4; i++) {
		snprintf(mode, sizeof mode, "status=%d", codes[i]);
		stub_start(&s[i], mode, NULL);
		snprintf(kind, sizeof kind, "k%d", codes[i]);
		snprintf(path, sizeof path, "/%d", codes[i]);
		http_handler(yaml, sizeof yaml, kind, &s[i], path, HTTP_FAST);
	}
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('k400'), ('k404'), ('k422'), ('k302')");
	harness_wait_value(dt_conn, HTTP_STATES, "k400:failed:1,k404:failed:1,k422:failed:1,k302:failed:1", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(last_error, E'\\n' ORDER BY id) FROM dispatch.tasks"
	                                        " WHERE kind <> 'k302'"),
	                 "HTTP 400 Bad Request: stub: status 400 on purpose\n"
	                 "HTTP 404 Not Found: stub: status 404 on purpose\n"
	                 "HTTP 422 Unprocessable Content: stub: status 422 on purpose");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT left(last_error, 43) FROM dispatch.tasks WHERE kind = 'k302'"),
	                 "HTTP 302 Found: stub: status 302 on purpose");
	/* One attempt each in the history, failed for good. */
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(concat_ws(':', attempt, outcome), ',' ORDER BY task_id)"
	                                        "  FROM dispatch.attempts"),
	                 "1:failed,1:failed,1:failed,1:failed");
	/* One request each; the redirect's Location was never asked for. */
	for (int i = 0; i < 4; i++) {
		snprintf(kind, sizeof kind, "k%d", codes[i]);
		ck_assert_int_eq(stub_load(&s[i], kind), 1);
	}
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(j->>'path', ',' ORDER BY stub) FROM requests"),
	                 "/302,/400,/404,/422");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	for (int i = 0; i < 4; i++)
		stub_stop(&s[i]);
}
END_TEST

/* 408, 425, 429 and 5xx are failed attempts: retried with backoff until
 * max_attempts, each request with the same Idempotency-Key and the next
 * X-Pgdispatch-Attempt, the last status line in last_error. */
START_TEST(test_408_425_429_and_5xx_are_retried_with_backoff_then_fail)
{
	static const int codes[] = {408, 425, 429, 500, 502, 503};
	enum { N = sizeof codes / sizeof codes[0] };
	struct harness_daemon d;
	struct stub s[N];
	char yaml[4096] = "", kind[16], mode[32];

	for (int i = 0; i < N; i++) {
		snprintf(mode, sizeof mode, "status=%d", codes[i]);
		stub_start(&s[i], mode, NULL);
		snprintf(kind, sizeof kind, "k%d", codes[i]);
		http_handler(yaml, sizeof yaml, kind, &s[i], "/retry", HTTP_FAST);
	}
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('k408'), ('k425'), ('k429'), ('k500'), ('k502'),"
	                      " ('k503')");
	harness_wait_value(dt_conn, HTTP_STATES,
	                   "k408:failed:3,k425:failed:3,k429:failed:3,k500:failed:3,k502:failed:3,k503:failed:3", 15000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(last_error, E'\\n' ORDER BY id) FROM dispatch.tasks"),
	                 "HTTP 408 Request Timeout: stub: status 408 on purpose\n"
	                 "HTTP 425 Too Early: stub: status 425 on purpose\n"
	                 "HTTP 429 Too Many Requests: stub: status 429 on purpose\n"
	                 "HTTP 500 Internal Server Error: stub: status 500 on purpose\n"
	                 "HTTP 502 Bad Gateway: stub: status 502 on purpose\n"
	                 "HTTP 503 Service Unavailable: stub: status 503 on purpose");
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(DISTINCT h, ',') FROM (SELECT string_agg(outcome, ',' ORDER BY attempt) AS h"
	        "  FROM dispatch.attempts GROUP BY task_id) AS a"),
	        "retry,retry,failed");
	for (int i = 0; i < N; i++) {
		snprintf(kind, sizeof kind, "k%d", codes[i]);
		ck_assert_int_eq(stub_load(&s[i], kind), 3);
		/* attempt header : the body's attempt : the key is the task id :
		 * the wait since the last request is at least the backoff's
		 * lower half (100 ms, then 200 ms, jittered down to half). */
		ck_assert_str_eq(http_value(
		        "SELECT string_agg(concat_ws(':', r.j->>'attempt', r.j->'body'->>'attempt',"
		        "                            r.j->>'idempotency_key' = t.id::text,"
		        "                            coalesce((r.j->>'t_ms')::bigint - (p.j->>'t_ms')::bigint >= 45, true)),"
		        "                  ',' ORDER BY r.n)"
		        "  FROM requests r JOIN dispatch.tasks t ON t.kind = r.stub"
		        "  LEFT JOIN requests p ON p.stub = r.stub AND p.n = r.n - 1"
		        " WHERE r.stub = '%s'", kind),
		        "1:1:t:t,2:2:t:t,3:3:t:t");
	}
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	for (int i = 0; i < N; i++)
		stub_stop(&s[i]);
}
END_TEST

/* A service that fails twice then answers: the task completes at its
 * third attempt, every request under the same Idempotency-Key, so the
 * service can tell it applied the task once. */
START_TEST(test_a_task_keeps_its_idempotency_key_on_every_attempt)
{
	struct harness_daemon d;
	struct stub s;
	char yaml[1024] = "";

	stub_start(&s, "status=503", NULL);
	http_handler(yaml, sizeof yaml, "flaky", &s, "/flaky",
	             "    max_attempts: 5\n    backoff: {initial: 400ms, max: 400ms}\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('flaky', '{\"n\": 1}')");
	/* The next attempt is at least 200 ms away: time to change modes. */
	stub_wait_requests(&s, 2, 10000, &d);
	stub_mode(&s, "ok");
	harness_wait_value(dt_conn, HTTP_STATES, "flaky:complete:3", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT result::text FROM dispatch.tasks"), "{\"ok\": true}");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(outcome, ',' ORDER BY attempt) FROM dispatch.attempts"),
	                 "retry,retry");
	ck_assert_int_eq(stub_load(&s, "s"), 3);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(concat_ws(':', r.j->>'attempt', r.j->>'status', r.j->>'applied',"
	        "                            r.j->>'idempotency_key' = t.id::text, r.j->'body'->>'attempt'),"
	        "                  ',' ORDER BY r.n)"
	        "  FROM requests r, dispatch.tasks t"),
	        "1:503:false:t:1,2:503:false:t:2,3:200:true:t:3");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

/*
 * Retry-After sets the next run when it is later than the backoff: in
 * seconds, and as an HTTP date. A backoff longer than Retry-After wins; a
 * date in the past asks for nothing. Each kind has two attempts; the
 * backoff alone would retry within 200 ms.
 */
START_TEST(test_retry_after_in_seconds_or_as_a_date_sets_the_next_run)
{
	struct harness_daemon d;
	struct stub sec, date, longer, past;
	char yaml[4096] = "", mode[128], http_date[64];
	time_t when;
	struct tm tm;
	long long run_at_ms, longer_run_at_ms;

	stub_start(&sec, "status=503,retry_after=2", NULL);
	stub_start(&date, "status=503", NULL);
	stub_start(&longer, "status=503,retry_after=1", NULL);
	stub_start(&past, "status=503,retry_after=Wed, 21 Oct 2015 07:28:00 GMT", NULL);
	http_handler(yaml, sizeof yaml, "sec", &sec, "/", "    max_attempts: 2\n    backoff: {initial: 100ms, max: 100ms}\n");
	http_handler(yaml, sizeof yaml, "date", &date, "/", "    max_attempts: 2\n    backoff: {initial: 100ms, max: 100ms}\n");
	http_handler(yaml, sizeof yaml, "longer", &longer, "/", "    max_attempts: 2\n    backoff: {initial: 10s, max: 10s}\n");
	http_handler(yaml, sizeof yaml, "past", &past, "/", "    max_attempts: 2\n    backoff: {initial: 100ms, max: 100ms}\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	/* A date 4 to 5 s from now, in the C locale's (and HTTP's) English. */
	when = time(NULL) + 5;
	gmtime_r(&when, &tm);
	strftime(http_date, sizeof http_date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(mode, sizeof mode, "status=503,retry_after=%s", http_date);
	stub_mode(&date, mode);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('sec'), ('date'), ('longer'), ('past')");

	harness_wait_value(dt_conn, "SELECT concat_ws(':', status, attempts) FROM dispatch.tasks WHERE kind = 'sec'",
	                   "pending:1", 5000, &d);
	run_at_ms = harness_int(dt_conn, "SELECT (extract(epoch FROM run_at) * 1000)::bigint FROM dispatch.tasks"
	                                 " WHERE kind = 'sec'");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error FROM dispatch.tasks WHERE kind = 'sec'"),
	                 "HTTP 503 Service Unavailable: stub: status 503 on purpose; retry not before 2 s (Retry-After)");
	harness_wait_value(dt_conn, "SELECT concat_ws(':', status, attempts) FROM dispatch.tasks WHERE kind = 'longer'",
	                   "pending:1", 5000, &d);
	longer_run_at_ms = harness_int(dt_conn, "SELECT (extract(epoch FROM run_at) * 1000)::bigint FROM dispatch.tasks"
	                                        " WHERE kind = 'longer'");
	harness_wait_value(dt_conn, HTTP_STATES, "sec:failed:2,date:failed:2,longer:pending:1,past:failed:2", 15000, &d);

	/* sec: run_at 2 s after the answer (and the outcome's commit); the
	 * second request no sooner. */
	ck_assert_int_eq(stub_load(&sec, "sec"), 2);
	ck_assert_str_eq(http_value("SELECT concat_ws('|', %lld - (a.j->>'t_ms')::bigint BETWEEN 1950 AND 3000,"
	                            "       (b.j->>'t_ms')::bigint - (a.j->>'t_ms')::bigint >= 1950)"
	                            "  FROM requests a, requests b WHERE a.stub = 'sec' AND b.stub = 'sec'"
	                            "   AND a.n = 1 AND b.n = 2", run_at_ms),
	                 "t|t");
	/* date: the second request no sooner than a second before the date
	 * (libcurl counts whole seconds), and not long after it. */
	ck_assert_int_eq(stub_load(&date, "date"), 2);
	ck_assert_str_eq(http_value("SELECT concat_ws('|', (j->>'t_ms')::bigint >= %lld, (j->>'t_ms')::bigint <= %lld)"
	                            "  FROM requests WHERE stub = 'date' AND n = 2",
	                            (long long) when * 1000 - 1000, (long long) when * 1000 + 2500),
	                 "t|t");
	/* longer: the backoff (10 s jittered down to no less than 5 s), not
	 * Retry-After's 1 s. */
	ck_assert_int_eq(stub_load(&longer, "longer"), 1);
	ck_assert_str_eq(http_value("SELECT %lld - (j->>'t_ms')::bigint >= 4900 FROM requests WHERE stub = 'longer'",
	                            longer_run_at_ms),
	                 "t");
	/* past: the backoff alone. */
	ck_assert_int_eq(stub_load(&past, "past"), 2);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT (b.j->>'t_ms')::bigint - (a.j->>'t_ms')::bigint < 1500"
	                                        "  FROM requests a, requests b WHERE a.stub = 'past' AND b.stub = 'past'"
	                                        "   AND a.n = 1 AND b.n = 2"),
	                 "t");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&sec);
	stub_stop(&date);
	stub_stop(&longer);
	stub_stop(&past);
}
END_TEST

/*
 * No answer: a service that never answers (the timeout ends the attempt
 * and its connection), one that closes the connection unanswered, one that
 * is down (connection refused). Each is a failed attempt, retried; the
 * refused one completes once the service is back.
 */
START_TEST(test_timeout_closed_connection_and_refusal_are_retried)
{
	struct harness_daemon d;
	struct stub hang, closing, down;
	char yaml[4096] = "", want[256];

	stub_start(&hang, "hang", NULL);
	stub_start(&closing, "close", NULL);
	stub_start(&down, "down", NULL);
	http_handler(yaml, sizeof yaml, "hang", &hang, "/hang",
	             "    timeout: 500ms\n    max_attempts: 2\n    backoff: {initial: 100ms, max: 100ms}\n");
	http_handler(yaml, sizeof yaml, "closing", &closing, "/close",
	             "    max_attempts: 2\n    backoff: {initial: 100ms, max: 100ms}\n");
	http_handler(yaml, sizeof yaml, "refused", &down, "/down",
	             "    max_attempts: 3\n    backoff: {initial: 800ms, max: 800ms}\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('hang'), ('closing'), ('refused')");

	harness_wait_value(dt_conn, "SELECT concat_ws(':', status, attempts) FROM dispatch.tasks WHERE kind = 'refused'",
	                   "pending:1", 5000, &d);
	snprintf(want, sizeof want, "Failed to connect to 127.0.0.1 port %d ", down.port);
	ck_assert_str_eq(http_value("SELECT left(last_error, %zu) FROM dispatch.tasks WHERE kind = 'refused'", strlen(want)),
	                 want);
	/* Back up before the retry (at least 400 ms away). */
	stub_toggle(&down);
	harness_wait_value(dt_conn, HTTP_STATES, "hang:failed:2,closing:failed:2,refused:complete:2", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(concat_ws('|', kind, last_error), ',' ORDER BY id)"
	                                        "  FROM dispatch.tasks WHERE kind <> 'refused'"),
	                 "hang|timed out after 500 ms,closing|Empty reply from server");
	/* Each request reached the service; none was answered, and the
	 * timed-out ones' connections were closed by the daemon. */
	ck_assert_int_eq(stub_load(&hang, "hang"), 2);
	ck_assert_int_eq(stub_load(&closing, "closing"), 2);
	ck_assert_int_eq(stub_load(&down, "down"), 1);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(concat_ws(':', stub, j->>'attempt',"
	                                        "  coalesce(j->>'status', 'none')), ',' ORDER BY stub, n) FROM requests"),
	                 "closing:1:none,closing:2:none,down:2:200,hang:1:none,hang:2:none");
	stub_wait_said(&hang, "closed conn=", 2, 2000);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&hang);
	stub_stop(&closing);
	stub_stop(&down);
}
END_TEST

/* ---- the request ---- */

/*
 * Each method as configured, a body (the task) for POST, PUT and PATCH and
 * none for GET and DELETE; an Idempotency-Key from http.idempotency_key
 * instead of the task id; and connections kept: 106 tasks at concurrency
 * 4 use at most 4 connections.
 */
START_TEST(test_each_method_and_connections_kept_across_tasks)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
	struct harness_daemon d;
	struct stub s;
	char yaml[4096] = "", kind[16], path[32], more[128];

	stub_start(&s, "ok", NULL);
	for (int i = 0; i < 5; i++) {
		snprintf(kind, sizeof kind, "m_%s", methods[i]);
		snprintf(path, sizeof path, "/m/%s", methods[i]);
		snprintf(more, sizeof more, "      method: %s\n" HTTP_FAST, methods[i]);
		http_handler(yaml, sizeof yaml, kind, &s, path, more);
	}
	http_handler(yaml, sizeof yaml, "bulk", &s, "/bulk/{id}", HTTP_FAST);
	http_handler(yaml, sizeof yaml, "keyed", &s, "/keyed", "      idempotency_key: \"order-{payload.order}\"\n" HTTP_FAST);
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('m_GET'), ('m_POST'), ('m_PUT'), ('m_PATCH'),"
	                      " ('m_DELETE');"
	                      "INSERT INTO dispatch.tasks (kind) SELECT 'bulk' FROM generate_series(1, 100);"
	                      "INSERT INTO dispatch.tasks (kind, payload) VALUES ('keyed', '{\"order\": \"A 7/b\"}')");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete' AND attempts = 1",
	                   "106", 20000, &d);
	ck_assert_int_eq(stub_load(&s, "s"), 106);
	/* A header value is not URL-encoded. */
	ck_assert_str_eq(harness_value(dt_conn, "SELECT j->>'idempotency_key' FROM requests WHERE j->>'path' = '/keyed'"),
	                 "order-A 7/b");
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(concat_ws(' ', j->>'method', j->>'path', j->>'body_len' = '0',"
	        "                            coalesce(j->'body'->>'kind', 'none')), ',' ORDER BY j->>'path')"
	        "  FROM requests WHERE j->>'path' LIKE '/m/%'"),
	        "DELETE /m/DELETE t none,GET /m/GET t none,PATCH /m/PATCH f m_PATCH,POST /m/POST f m_POST,"
	        "PUT /m/PUT f m_PUT");
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT count(*) FROM requests r JOIN dispatch.tasks t ON r.j->>'path' = '/bulk/' || t.id"
	        " WHERE r.j->>'method' = 'POST' AND (r.j->'body'->>'id')::bigint = t.id"),
	        "100");
	ck_assert_int_le(harness_int(dt_conn, "SELECT count(DISTINCT j->>'conn') FROM requests"), 4);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

/*
 * {payload.FIELD} in a URL is percent-encoded: a value's '/', '?', ' ',
 * '&' cannot change the path or the query. A field the payload lacks (or
 * holds an object) fails the task at once, without a request.
 */
START_TEST(test_url_template_encodes_payload_values_and_a_missing_one_fails_at_once)
{
	struct harness_daemon d;
	struct stub s;
	char yaml[1024] = "", want[512];
	long long a, b;

	stub_start(&s, "ok", NULL);
	http_handler(yaml, sizeof yaml, "item", &s, "/items/{payload.name}?task={id}&n={payload.n}", HTTP_FAST);
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	a = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('item', '{\"name\": \"a/b?c d\", \"n\": 7}')"
	                         " RETURNING id");
	b = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind, payload)"
	                         " VALUES ('item', '{\"name\": \"\\u00e9&=#%\", \"n\": 1.5}') RETURNING id");
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload) VALUES ('item', '{\"n\": 3}'),"
	                      " ('item', '{\"name\": {\"x\": 1}, \"n\": 4}')");
	harness_wait_value(dt_conn, HTTP_STATES, "item:complete:1,item:complete:1,item:failed:1,item:failed:1", 10000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(last_error, ',' ORDER BY id) FROM dispatch.tasks"
	                                        " WHERE status = 'failed'"),
	                 "cannot build the URL: payload.name is missing,cannot build the URL: payload.name is an object");
	ck_assert_int_eq(stub_load(&s, "s"), 2);
	snprintf(want, sizeof want, "/items/a%%2Fb%%3Fc%%20d?task=%lld&n=7,/items/%%C3%%A9%%26%%3D%%23%%25?task=%lld&n=1.5",
	         a, b);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(j->>'path', ',' ORDER BY (j->>'idempotency_key')::bigint)"
	                                        "  FROM requests"),
	                 want);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

/*
 * A source's row (the application's own table) goes out with
 * Idempotency-Key SOURCE:KEY, the same on its retry, {id} its key; its
 * result and attempts land in the row's mapped columns.
 */
START_TEST(test_source_row_is_sent_with_source_colon_key)
{
	struct harness_daemon d;
	struct stub s;
	char yaml[1024] = "";

	harness_exec(dt_conn,
	             "CREATE SCHEMA app;"
	             "CREATE TABLE app.jobs (id bigint PRIMARY KEY, status text NOT NULL, body jsonb,"
	             "    attempts int NOT NULL DEFAULT 0, last_error text, result jsonb);"
	             "CREATE INDEX jobs_claim ON app.jobs (id) WHERE status = 'pending';"
	             "GRANT USAGE ON SCHEMA app TO " HARNESS_WORKER ";"
	             "GRANT SELECT, UPDATE (status, attempts, last_error, result) ON app.jobs TO " HARNESS_WORKER ";"
	             "INSERT INTO app.jobs (id, status, body) VALUES (41, 'pending', '{\"n\": 1}'), (42, 'pending', '{\"n\": 2}')");
	stub_start(&s, "status=503", NULL);
	http_handler(yaml, sizeof yaml, "jobs", &s, "/jobs/{id}",
	             "    max_attempts: 3\n    backoff: {initial: 600ms, max: 600ms}\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml,
	        "poll_interval: 200ms\n"
	        "sources:\n"
	        "  jobs:\n"
	        "    table: app.jobs\n"
	        "    status: {column: status}\n"
	        "    payload: body\n"
	        "    columns: {attempts: attempts, last_error: last_error, result: result}\n"));
	stub_wait_requests(&s, 2, 10000, &d);
	stub_mode(&s, "ok");
	harness_wait_value(dt_conn, "SELECT string_agg(concat_ws('|', id, status, attempts, result), ',' ORDER BY id)"
	                            "  FROM app.jobs",
	                   "41|complete|2|{\"ok\": true},42|complete|2|{\"ok\": true}", 10000, &d);
	ck_assert_int_eq(stub_load(&s, "s"), 4);
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT string_agg(concat_ws(':', j->>'path', j->>'idempotency_key', j->>'attempt', j->'body'->>'id',"
	        "                            j->'body'->'payload'->>'n'), ',' ORDER BY j->>'path', j->>'attempt')"
	        "  FROM requests"),
	        "/jobs/41:jobs:41:1:41:1,/jobs/41:jobs:41:2:41:1,/jobs/42:jobs:42:1:42:2,/jobs/42:jobs:42:2:42:2");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

/*
 * ${VAR} in a header reaches the service, and nothing else: a service
 * that echoes the request's headers in its error page (the stub's echo
 * mode) gets them replaced by [redacted] in last_error and the attempts'
 * history; the daemon's log and check-config never show the value. An
 * unset variable is a config error that names it.
 */
/* A source's text key with a line break cannot become a header (it would
 * add one of its own): that row fails at once, the other is delivered. */
START_TEST(test_source_key_with_a_line_break_fails_and_adds_no_header)
{
	struct harness_daemon d;
	struct stub s;
	char yaml[1024] = "";

	harness_exec(dt_conn,
	             "CREATE SCHEMA app;"
	             "CREATE TABLE app.notes (k text PRIMARY KEY, status text NOT NULL);"
	             "CREATE INDEX notes_claim ON app.notes (k) WHERE status = 'pending';"
	             "GRANT USAGE ON SCHEMA app TO " HARNESS_WORKER ";"
	             "GRANT SELECT, UPDATE (status) ON app.notes TO " HARNESS_WORKER ";"
	             "INSERT INTO app.notes VALUES (E'a\\r\\nX-Injected: yes', 'pending'), ('b', 'pending')");
	stub_start(&s, "ok", NULL);
	http_handler(yaml, sizeof yaml, "notes", &s, "/n", "    max_attempts: 3\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml,
	        "sources:\n"
	        "  notes:\n"
	        "    table: app.notes\n"
	        "    status: {column: status}\n"));
	harness_wait_value(dt_conn, "SELECT string_agg(status, ',' ORDER BY k) FROM app.notes", "failed,complete", 10000, &d);
	ck_assert_ptr_nonnull(strstr(harness_value(dt_conn, "SELECT last_error FROM dispatch.source_rows"
	                                                    " WHERE source = 'notes'"), "line break"));
	ck_assert_int_eq(stub_load(&s, "s"), 1);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(concat_ws('|', j->>'idempotency_key',"
	                                        "  j->'headers' ? 'x-injected'), ',') FROM requests"),
	                 "notes:b|f");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

START_TEST(test_secret_header_values_reach_the_service_and_nothing_else)
{
	struct harness_daemon d;
	struct harness_proc p;
	struct stub s;
	char yaml[1024] = "", config[256];
	const char *check[] = {"check-config", "-c", config, NULL};

	ck_assert_int_eq(setenv("PGD_HTTP_TEST_TOKEN", HTTP_SECRET, 1), 0);
	stub_start(&s, "echo", NULL);
	http_handler(yaml, sizeof yaml, "echo", &s, "/echo",
	             "      headers: {Authorization: \"Bearer ${PGD_HTTP_TEST_TOKEN}\", X-Api-Key: \"${PGD_HTTP_TEST_TOKEN}\"}\n"
	             "    max_attempts: 2\n    backoff: {initial: 100ms, max: 100ms}\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('echo')");
	harness_wait_value(dt_conn, HTTP_STATES, "echo:failed:2", 10000, &d);

	/* The service got the value on both attempts. */
	ck_assert_int_eq(stub_load(&s, "s"), 2);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(DISTINCT concat_ws('|', j->'headers'->>'authorization',"
	                                        "  j->'headers'->>'x-api-key'), ',') FROM requests"),
	                 "Bearer " HTTP_SECRET "|" HTTP_SECRET);
	/* The echo came back in last_error, with the value taken out. */
	ck_assert_str_eq(harness_value(dt_conn,
	        "SELECT concat_ws('|', left(last_error, 51), strpos(last_error, 'Authorization: Bearer [redacted]') > 0,"
	        "       strpos(last_error, 'X-Api-Key: [redacted]') > 0, strpos(last_error, '" HTTP_SECRET "'))"
	        "  FROM dispatch.tasks"),
	        "HTTP 500 Internal Server Error: POST /echo HTTP/1.1|t|t|0");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', count(*), count(*) FILTER"
	                                        "  (WHERE strpos(error, '" HTTP_SECRET "') > 0)) FROM dispatch.attempts"),
	                 "2|0");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	ck_assert_msg(strstr(d.proc.err, HTTP_SECRET) == NULL, "the daemon logged the secret:\n%s", d.proc.err);
	ck_assert_ptr_nonnull(strstr(d.proc.err, "HTTP 500 Internal Server Error"));

	snprintf(config, sizeof config, "%s", d.config_path);
	ck_assert_int_eq(harness_run(&p, check), 0);
	ck_assert_msg(strstr(p.out, HTTP_SECRET) == NULL && strstr(p.err, HTTP_SECRET) == NULL, "%s%s", p.out, p.err);
	harness_proc_free(&p);
	/* Unset: refused at load, naming the variable. */
	ck_assert_int_eq(unsetenv("PGD_HTTP_TEST_TOKEN"), 0);
	ck_assert_int_eq(harness_run(&p, check), 2);
	ck_assert_msg(strstr(p.err, "${PGD_HTTP_TEST_TOKEN} is not set in the daemon's environment") != NULL, "%s", p.err);
	harness_proc_free(&p);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

/* ---- the daemon under load ---- */

/*
 * A 100 MB answer: the result is its first max_output bytes, stored as a
 * string, and the daemon's memory stays flat. An error page's body is
 * quoted in last_error 512 bytes at most, with its size.
 */
START_TEST(test_100_mb_answer_is_cut_at_max_output_with_memory_flat)
{
	struct harness_daemon d;
	struct stub flood, big_error;
	char yaml[1024] = "";
	long before, after;

	stub_start(&flood, "flood=104857600", NULL);
	stub_start(&big_error, "status=500,body=1000000", NULL);
	http_handler(yaml, sizeof yaml, "flood", &flood, "/flood", "    max_output: 65536\n    timeout: 60s\n    max_attempts: 1\n");
	http_handler(yaml, sizeof yaml, "big_error", &big_error, "/error", "    max_attempts: 1\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	before = dt_peak_rss_kb(d.proc.pid);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('flood'), ('big_error')");
	harness_wait_value(dt_conn, HTTP_STATES, "flood:complete:1,big_error:failed:1", 60000, &d);
	after = dt_peak_rss_kb(d.proc.pid);
	ck_assert_msg(after - before < HTTP_RSS_GROWTH_KB, "peak RSS grew from %ld kB to %ld kB", before, after);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', jsonb_typeof(result), length(result #>> '{}'),"
	                                        "       result #>> '{}' ~ '^x+$', last_error IS NULL)"
	                                        "  FROM dispatch.tasks WHERE kind = 'flood'"),
	                 "string|65536|t|t");
	harness_daemon_wait_log(&d, "answer truncated to 65536 bytes (max_output)", 1000);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT last_error = 'HTTP 500 Internal Server Error: ' || repeat('x', 512)"
	                                        "       || ' ... (1000000 bytes)'"
	                                        "  FROM dispatch.tasks WHERE kind = 'big_error'"),
	                 "t");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&flood);
	stub_stop(&big_error);
}
END_TEST

/*
 * 200 requests in flight at once (the service holds each answer 3 s):
 * the loop stays responsive, so a task of another kind, woken by its
 * NOTIFY (polling is 30 s away), completes within 500 ms, before any of
 * the 200; then each of the 200 completes once, on a connection of its own.
 */
START_TEST(test_200_requests_in_flight_leave_the_loop_responsive)
{
	struct harness_daemon d;
	struct stub s;
	char yaml[1024] = "";

	stub_start(&s, "ok", "--delay-ms", "3000", NULL);
	http_handler(yaml, sizeof yaml, "slow", &s, "/slow/{id}", "    timeout: 30s\n");
	strcat(yaml, "  ping:\n    builtin: noop\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml, "concurrency: 210\npoll_interval: 30s\n"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'slow' FROM generate_series(1, 200)");
	stub_wait_requests(&s, 200, 15000, &d);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('ping')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'ping'", "complete", 2000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT finished_at - created_at < interval '500 ms' FROM dispatch.tasks"
	                                        " WHERE kind = 'ping'"),
	                 "t");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete' AND attempts = 1",
	                   "201", 20000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT count(*) FROM dispatch.tasks s, dispatch.tasks p"
	                                        " WHERE s.kind = 'slow' AND p.kind = 'ping' AND s.finished_at > p.finished_at"),
	                 "200");
	ck_assert_int_eq(stub_load(&s, "s"), 200);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', count(DISTINCT j->>'idempotency_key'),"
	                                        "       count(DISTINCT j->>'conn')) FROM requests"),
	                 "200|200");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

/*
 * While 50 requests to "localhost" are in flight (a name: libcurl's
 * resolver thread and its socket pairs), a command handler starts with no
 * descriptor of libcurl's, or of the daemon's.
 */
START_TEST(test_command_handler_gets_no_descriptor_of_requests_in_flight)
{
	struct harness_daemon d;
	struct stub s;
	char yaml[1024];

	stub_start(&s, "ok", "--delay-ms", "2000", NULL);
	snprintf(yaml, sizeof yaml,
	         "  remote:\n    http:\n      url: \"http://localhost:%d/slow\"\n    timeout: 20s\n"
	         "  fds:\n    command: [%s]\n",
	         s.port, harness_handler("fd_list.sh"));
	harness_daemon_start(&d, dt_db, dt_config(yaml, "concurrency: 64\n"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'remote' FROM generate_series(1, 50)");
	stub_wait_requests(&s, 50, 15000, &d);
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('fds')");
	harness_wait_value(dt_conn, "SELECT status FROM dispatch.tasks WHERE kind = 'fds'", "complete", 5000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE kind = 'remote'"
	                                        "   AND status = 'in_progress'"),
	                 "50");
	{
		const char *fds = harness_value(dt_conn, "SELECT result #>> '{}' FROM dispatch.tasks WHERE kind = 'fds'");

		ck_assert_msg(strstr(fds, "socket:") == NULL && strstr(fds, "anon_inode:") == NULL,
		              "the command handler started with the daemon's sockets:\n%s", fds);
	}
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "51", 15000, &d);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

/*
 * A cancelled task's request is abandoned at once (the service sees its
 * connection closed) and its outcome is not recorded; SIGTERM past the
 * grace abandons the rest and gives their attempt back.
 */
START_TEST(test_cancel_abandons_the_request_and_sigterm_gives_the_attempt_back)
{
	PGconn *admin = harness_connect(harness_as(dt_db, HARNESS_ADMIN));
	struct harness_daemon d;
	struct stub s;
	char yaml[1024] = "", sql[256];
	long long a;

	stub_start(&s, "hang", NULL);
	http_handler(yaml, sizeof yaml, "stuck", &s, "/stuck/{id}", "    timeout: 60s\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml, "poll_interval: 1h\nlease: 30s\nshutdown_grace: 300ms\n"));
	a = harness_int(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('stuck') RETURNING id");
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) VALUES ('stuck')");
	stub_wait_requests(&s, 2, 10000, &d);

	snprintf(sql, sizeof sql, "SELECT dispatch.cancel(%lld, 'operator says stop')", a);
	ck_assert_str_eq(harness_value(admin, sql), "t");
	stub_wait_said(&s, "closed conn=", 1, 2000);
	harness_daemon_wait_log(&d, "outcome not recorded", 3000);
	harness_sleep_ms(300);
	ck_assert_str_eq(harness_value(dt_conn, HTTP_STATES), "stuck:cancelled:1,stuck:in_progress:1");

	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT string_agg(concat_ws(':', status, attempts, last_error,"
	                                        "       lease_expires_at IS NULL), ',' ORDER BY id) FROM dispatch.tasks"),
	                 "cancelled:1:operator says stop:t,pending:0:t");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT count(*) FROM dispatch.attempts"), "0");
	stub_wait_said(&s, "closed conn=", 2, 2000);
	harness_daemon_free(&d);
	stub_stop(&s);
	PQfinish(admin);
}
END_TEST

/* ---- breakers over HTTP ---- */

/*
 * A service answering 503 opens the kind's breaker after `failures`
 * attempts (plus those already in flight); while it is open no request
 * reaches the service; once it answers again the probe closes the breaker
 * and the tasks drain. The breaker's log line quotes the status line.
 */
START_TEST(test_5xx_opens_the_breaker_and_a_good_answer_closes_it)
{
	struct harness_daemon d;
	struct stub s;
	char yaml[1024] = "", opening[128];
	int at_open;

	stub_start(&s, "status=503", NULL);
	http_handler(yaml, sizeof yaml, "flaky", &s, "/flaky/{id}",
	             "    max_attempts: 1000\n    backoff: {initial: 50ms, max: 100ms}\n"
	             "    breaker: {failures: 3, window: 30s, open_for: 2s}\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml, "concurrency: 2\n"));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind) SELECT 'flaky' FROM generate_series(1, 10)");
	harness_wait_value(dt_conn, "SELECT coalesce((SELECT state FROM dispatch.breakers WHERE kind = 'flaky'), 'none')",
	                   "open", 10000, &d);
	/* Stragglers claimed before the opening end within moments. */
	harness_sleep_ms(300);
	at_open = stub_requests(&s);
	ck_assert_msg(at_open >= 3 && at_open <= 3 + 2, "%d requests reached the failing service (failures 3, "
	              "concurrency 2)", at_open);
	snprintf(opening, sizeof opening, "%s",
	         harness_value(dt_conn, "SELECT state || ' ' || opened_at FROM dispatch.breakers WHERE kind = 'flaky'"));
	harness_sleep_ms(800);
	if (strcmp(harness_value(dt_conn, "SELECT state || ' ' || opened_at FROM dispatch.breakers WHERE kind = 'flaky'"),
	           opening) == 0)
		ck_assert_int_eq(stub_requests(&s), at_open);
	harness_daemon_wait_log(&d, "breaker kind=flaky opened for 2000 ms: 3 failed attempts within 30000 ms;"
	                        " last: HTTP 503 Service Unavailable", 1000);

	stub_mode(&s, "ok");
	harness_wait_value(dt_conn, "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'", "10", 20000, &d);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT state FROM dispatch.breakers WHERE kind = 'flaky'"), "closed");
	harness_daemon_wait_log(&d, "breaker kind=flaky closed", 1000);
	/* Every task was applied once: one 200 per Idempotency-Key. */
	stub_load(&s, "s");
	ck_assert_str_eq(harness_value(dt_conn, "SELECT concat_ws('|', count(*), count(DISTINCT j->>'idempotency_key'))"
	                                        "  FROM requests WHERE j->>'status' = '200'"),
	                 "10|10");
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

/*
 * What is the task's own fault never counts toward a breaker: 4xx answers
 * and URLs the payload cannot fill, far more than `failures` of them,
 * leave it closed with no failure recorded, and every such task failed
 * for good at its first attempt.
 */
START_TEST(test_4xx_and_unfillable_urls_never_open_the_breaker)
{
	struct harness_daemon d;
	struct stub s;
	char yaml[1024] = "";

	stub_start(&s, "status=422", NULL);
	http_handler(yaml, sizeof yaml, "picky", &s, "/picky/{payload.name}",
	             "    max_attempts: 5\n    backoff: {initial: 50ms, max: 100ms}\n"
	             "    breaker: {failures: 2, window: 30s, open_for: 30s}\n");
	harness_daemon_start(&d, dt_db, dt_config(yaml, NULL));
	harness_exec(dt_conn, "INSERT INTO dispatch.tasks (kind, payload)"
	                      "  SELECT 'picky', CASE WHEN i % 2 = 0 THEN jsonb_build_object('name', 'n' || i)"
	                      "                       ELSE '{}' END FROM generate_series(1, 10) AS i");
	harness_wait_value(dt_conn, "SELECT string_agg(DISTINCT concat_ws(':', status, attempts), ',') FROM dispatch.tasks",
	                   "failed:1", 10000, &d);
	ck_assert_int_eq(stub_requests(&s), 5);
	/* Reports go out before the next claim: give a wrong count time to land. */
	harness_sleep_ms(500);
	ck_assert_str_eq(harness_value(dt_conn, "SELECT coalesce((SELECT state || ':' || cardinality(recent)"
	                                        "  FROM dispatch.breakers WHERE kind = 'picky'), 'closed:0')"),
	                 "closed:0");
	ck_assert_int_eq(harness_daemon_log_count(&d, "breaker kind=picky"), 0);
	ck_assert_int_eq(harness_daemon_stop(&d, SIGTERM), 0);
	harness_daemon_free(&d);
	stub_stop(&s);
}
END_TEST

Suite *
http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *answers = tcase_create("answers");
	TCase *request = tcase_create("request");
	TCase *load = tcase_create("load");
	TCase *breaker = tcase_create("breaker");

	tcase_add_checked_fixture(answers, dt_setup, dt_teardown);
	tcase_set_timeout(answers, 60);
	tcase_add_test(answers, test_2xx_completes_with_a_json_text_or_empty_result);
	tcase_add_test(answers, test_other_4xx_and_an_unfollowed_3xx_fail_at_once);
	tcase_add_test(answers, test_408_425_429_and_5xx_are_retried_with_backoff_then_fail);
	tcase_add_test(answers, test_a_task_keeps_its_idempotency_key_on_every_attempt);
	tcase_add_test(answers, test_retry_after_in_seconds_or_as_a_date_sets_the_next_run);
	tcase_add_test(answers, test_timeout_closed_connection_and_refusal_are_retried);
	suite_add_tcase(s, answers);

	tcase_add_checked_fixture(request, dt_setup, dt_teardown);
	tcase_set_timeout(request, 60);
	tcase_add_test(request, test_each_method_and_connections_kept_across_tasks);
	tcase_add_test(request, test_url_template_encodes_payload_values_and_a_missing_one_fails_at_once);
	tcase_add_test(request, test_source_row_is_sent_with_source_colon_key);
	tcase_add_test(request, test_source_key_with_a_line_break_fails_and_adds_no_header);
	tcase_add_test(request, test_secret_header_values_reach_the_service_and_nothing_else);
	suite_add_tcase(s, request);

	tcase_add_checked_fixture(load, dt_setup, dt_teardown);
	tcase_set_timeout(load, 120);
	tcase_add_test(load, test_100_mb_answer_is_cut_at_max_output_with_memory_flat);
	tcase_add_test(load, test_200_requests_in_flight_leave_the_loop_responsive);
	tcase_add_test(load, test_command_handler_gets_no_descriptor_of_requests_in_flight);
	tcase_add_test(load, test_cancel_abandons_the_request_and_sigterm_gives_the_attempt_back);
	suite_add_tcase(s, load);

	tcase_add_checked_fixture(breaker, dt_setup, dt_teardown);
	tcase_set_timeout(breaker, 60);
	tcase_add_test(breaker, test_5xx_opens_the_breaker_and_a_good_answer_closes_it);
	tcase_add_test(breaker, test_4xx_and_unfillable_urls_never_open_the_breaker);
	suite_add_tcase(s, breaker);
	return s;
}
