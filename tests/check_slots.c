/*
 * Unit tier: the slot table and the handler interface, with a fake handler
 * type and no database. The fake type watches a pipe per task (kind
 * "fake"), one pipe for all its tasks (kind "shared") or a child process
 * (kind "proc"); a test writes to a pipe what the handler is to report,
 * and checks that readiness reaches the right task, that the report
 * becomes the outcome the policy calls for, and that stop and kill work.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "handler.h"
#include "harness.h"
#include "slots.h"

#define FAKE_MAX 16

/* --- the fake type ------------------------------------------------------ */

struct fake_task {
	struct handler_task *ht;
	int rd, wr;                  /* its own pipe; -1 for the shared one */
	pid_t pid;                   /* kind "proc" */
	bool stopped;
};

static struct {
	struct fake_task tasks[FAKE_MAX];
	int shared_rd, shared_wr;    /* one pipe serving every "shared" task */
	int starts, stops, kills;
} fake;

static const struct handler_ops fake_ops;

static struct fake_task *
fake_find(long long id)
{
	for (int i = 0; i < FAKE_MAX; i++)
		if (fake.tasks[i].ht != NULL && fake.tasks[i].ht->task->id == id)
			return &fake.tasks[i];
	return NULL;
}

/* Ends ft with what c stands for: o ok, c committed, f failed, F failed
 * for good (final), r failed with a least delay (a Retry-After), n not
 * run, l lease lost (its own fence). */
static void
fake_end(struct fake_task *ft, char c, const char *error)
{
	struct handler_task *ht = ft->ht;
	struct handler_report r = {.end = HANDLER_FAILED, .error = error != NULL ? error : "fake failed"};
	char result[64];

	if (c == 'o') {
		snprintf(result, sizeof result, "{\"n\":%lld}", ht->task->id);
		r.end = HANDLER_SUCCEEDED;
		r.result = strdup(result);
	} else if (c == 'c') {
		r.end = HANDLER_COMMITTED;
	} else if (c == 'n') {
		r.end = HANDLER_NOT_RUN;
		r.error = "not run";
		r.delay_ms = 77;
	} else if (c == 'l') {
		r.end = HANDLER_LEASE_LOST;
	} else if (c == 'F') {
		r.final = true;
	} else if (c == 'r') {
		r.delay_ms = 5000;
	}
	if (ft->rd >= 0) {
		handler_unwatch(ft->rd);
		close(ft->rd);
		close(ft->wr);
	}
	memset(ft, 0, sizeof *ft);
	slots_done(ht, &r);
}

static void
fake_start(struct handler_task *ht, const struct handler_config *hc, const struct handler_env *env)
{
	struct fake_task *ft = NULL;
	int p[2];

	fake.starts++;
	for (int i = 0; i < FAKE_MAX && ft == NULL; i++)
		if (fake.tasks[i].ht == NULL)
			ft = &fake.tasks[i];
	ck_assert_ptr_nonnull(ft);
	ft->ht = ht;
	ft->rd = ft->wr = -1;
	ht->state = ft;
	if (strcmp(ht->task->kind, "shared") == 0) {
		if (fake.shared_rd == 0) {
			ck_assert_int_eq(pipe(p), 0);
			fake.shared_rd = p[0];
			fake.shared_wr = p[1];
			handler_watch(fake.shared_rd, POLLIN, &fake_ops, NULL);
		}
	} else if (strcmp(ht->task->kind, "proc") == 0) {
		ft->pid = fork();
		ck_assert_int_ge(ft->pid, 0);
		if (ft->pid == 0)
			_exit(3);
		handler_watch_pid(ft->pid, &fake_ops, ft);
	} else {
		ck_assert_int_eq(pipe(p), 0);
		ft->rd = p[0];
		ft->wr = p[1];
		handler_watch(ft->rd, POLLIN, &fake_ops, ft);
	}
}

/* arg NULL: the shared pipe, lines of "ID C"; else one task's pipe, one C. */
static void
fake_ready(int fd, short revents, void *arg)
{
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf - 1);

	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	if (arg != NULL) {
		fake_end(arg, buf[0], NULL);
		return;
	}
	for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		long long id;
		char c;

		ck_assert_int_eq(sscanf(line, "%lld %c", &id, &c), 2);
		ck_assert_ptr_nonnull(fake_find(id));
		fake_end(fake_find(id), c, NULL);
	}
}

static void
fake_exited(pid_t pid, int status, void *arg)
{
	struct fake_task *ft = arg;
	char why[64];

	ck_assert_int_eq(ft->pid, pid);
	snprintf(why, sizeof why, "exit %d", WEXITSTATUS(status));
	fake_end(ft, 'f', why);
}

static int64_t
fake_next_deadline(void)
{
	int64_t due = INT64_MAX;

	for (int i = 0; i < FAKE_MAX; i++)
		if (fake.tasks[i].ht != NULL && !fake.tasks[i].stopped && fake.tasks[i].ht->deadline_ms < due)
			due = fake.tasks[i].ht->deadline_ms;
	return due;
}

static void
fake_tick(int64_t now)
{
	for (int i = 0; i < FAKE_MAX; i++) {
		struct fake_task *ft = &fake.tasks[i];

		if (ft->ht != NULL && !ft->stopped && now >= ft->ht->deadline_ms) {
			char why[64];

			snprintf(why, sizeof why, "timed out after %lld ms", (long long) ft->ht->policy->timeout_ms);
			fake_end(ft, 'f', why);
		}
	}
}

/* Graceful: noted; the task ends when the test says how. */
static void
fake_stop(struct handler_task *ht)
{
	struct fake_task *ft = ht->state;

	fake.stops++;
	ft->stopped = true;
}

static void
fake_kill(struct handler_task *ht)
{
	fake.kills++;
	fake_end(ht->state, 'f', "killed");
}

static const struct handler_ops fake_ops = {
	.name = "fake",
	.label = "fake handler",
	.start = fake_start,
	.ready = fake_ready,
	.exited = fake_exited,
	.next_deadline = fake_next_deadline,
	.tick = fake_tick,
	.stop = fake_stop,
	.kill = fake_kill,
};

/* --- the fixture -------------------------------------------------------- */

#define FAKE_HANDLER(k, timeout, conc) \
	{.kind = (k), .type = "fake", .timeout_ms = (timeout), .max_attempts = 2, \
	 .backoff_initial_ms = 10, .backoff_max_ms = 10, .concurrency = (conc)}

static struct handler_config slots_handlers[] = {
	FAKE_HANDLER("fake", 60000, 0), FAKE_HANDLER("shared", 60000, 0), FAKE_HANDLER("proc", 60000, 0),
	FAKE_HANDLER("quick", 50, 0), FAKE_HANDLER("limited", 60000, 1),
};

static struct config slots_cfg = {
	.concurrency = 8, .timeout_ms = 60000, .max_attempts = 5, .backoff_initial_ms = 10,
	.backoff_max_ms = 10, .handlers = slots_handlers,
	.nhandlers = sizeof slots_handlers / sizeof slots_handlers[0],
};

static struct outcome captured[64];
static int ncaptured;

static void
capture(struct outcome o)
{
	ck_assert_int_lt(ncaptured, 64);
	captured[ncaptured++] = o;
}

static void
slots_fixture_setup(void)
{
	memset(&fake, 0, sizeof fake);
	for (int i = 0; i < ncaptured; i++)
		outcome_clear(&captured[i]);
	ncaptured = 0;
	if (handler_find("fake") == NULL)
		ck_assert(handler_register(&fake_ops));
	slots_setup("test#1");
	slots_grow(8);
	slots_outcome_sink(capture);
}

static void
slots_fixture_teardown(void)
{
	slots_kill_all();
	if (fake.shared_rd > 0) {
		handler_unwatch(fake.shared_rd);
		close(fake.shared_rd);
		close(fake.shared_wr);
	}
	slots_free();
}

/* Starts a task of kind at attempt (the slots take its strings). */
static void
start(long long id, const char *kind, int attempt)
{
	struct task t = {.id = id, .queue = strdup("default"), .kind = strdup(kind), .payload = strdup("{}"),
	                 .attempt = attempt, .token = id * 1000};

	slots_start(&slots_cfg, "dbname=none", &t);
}

/* Polls the watched fds once and routes what is ready, as the loop does. */
static void
turn(void)
{
	struct pollfd pfds[64];
	int n;

	ck_assert_int_le(slots_nfds(), 64);
	n = slots_pollfds(pfds);
	ck_assert_int_ge(poll(pfds, (nfds_t) n, 1000), 1);
	for (int i = 0; i < n; i++)
		if (pfds[i].revents != 0)
			slots_on_ready(pfds[i].fd, pfds[i].revents);
}

static void
say(long long id, char c)
{
	ck_assert_int_eq(write(fake_find(id)->wr, &c, 1), 1);
}

/* --- the tests ---------------------------------------------------------- */

START_TEST(test_ready_fd_reaches_its_own_task)
{
	start(1, "fake", 1);
	start(2, "fake", 1);
	start(3, "fake", 1);
	ck_assert_int_eq(slots_running(), 3);
	ck_assert_int_eq(slots_nfds(), 3);
	/* Growing the table moves no running task. */
	slots_grow(200);
	slots_take_freed();
	say(2, 'o');
	turn();
	ck_assert_int_eq(ncaptured, 1);
	ck_assert_int_eq(captured[0].id, 2);
	ck_assert_int_eq(captured[0].token, 2000);
	ck_assert_int_eq(captured[0].type, OUTCOME_COMPLETE);
	ck_assert_str_eq(captured[0].result, "{\"n\":2}");
	ck_assert_int_eq(slots_running(), 2);
	ck_assert_int_eq(slots_nfds(), 2);
	ck_assert(slots_take_freed());
	ck_assert_ptr_nonnull(fake_find(1));
	ck_assert_ptr_nonnull(fake_find(3));
}
END_TEST

START_TEST(test_failure_is_retried_then_fails_for_good)
{
	start(1, "fake", 1);
	start(2, "fake", 2);
	say(1, 'f');
	say(2, 'f');
	turn();
	if (ncaptured < 2)
		turn();
	ck_assert_int_eq(ncaptured, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_str_eq(captured[i].error, "fake failed");
		if (captured[i].id == 1) {
			/* Attempt 1 of 2: back after the backoff (10 ms, jittered). */
			ck_assert_int_eq(captured[i].type, OUTCOME_RETRY);
			ck_assert_int_ge(captured[i].delay_ms, 5);
			ck_assert_int_le(captured[i].delay_ms, 10);
		} else {
			ck_assert_int_eq(captured[i].type, OUTCOME_FAIL);
		}
	}
}
END_TEST

/* A final failure fails for good at its first attempt, with attempts
 * left; a failure with a least delay is retried after that delay, not
 * the 10 ms backoff. */
START_TEST(test_final_failure_fails_at_once_and_a_least_delay_holds)
{
	start(1, "fake", 1);
	start(2, "fake", 1);
	say(1, 'F');
	say(2, 'r');
	turn();
	if (ncaptured < 2)
		turn();
	ck_assert_int_eq(ncaptured, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(captured[i].attempt, 1);
		if (captured[i].id == 1) {
			ck_assert_int_eq(captured[i].type, OUTCOME_FAIL);
		} else {
			ck_assert_int_eq(captured[i].type, OUTCOME_RETRY);
			ck_assert_int_eq(captured[i].delay_ms, 5000);
		}
	}
}
END_TEST

START_TEST(test_not_run_goes_back_untried_after_its_delay)
{
	start(1, "fake", 1);
	say(1, 'n');
	turn();
	ck_assert_int_eq(ncaptured, 1);
	ck_assert_int_eq(captured[0].type, OUTCOME_RELEASE);
	ck_assert_int_eq(captured[0].delay_ms, 77);
	ck_assert_str_eq(captured[0].error, "not run");
}
END_TEST

START_TEST(test_success_already_committed_is_not_written_again)
{
	start(1, "fake", 1);
	start(2, "fake", 1);
	say(1, 'c');
	say(2, 'l');
	turn();
	if (slots_running() > 0)
		turn();
	ck_assert_int_eq(slots_running(), 0);
	/* The outbox hears of it, as committed: nothing for it to write. */
	ck_assert_int_eq(ncaptured, 1);
	ck_assert_int_eq(captured[0].type, OUTCOME_COMMITTED);
	ck_assert_int_eq(captured[0].id, 1);
}
END_TEST

START_TEST(test_one_fd_serves_several_tasks)
{
	const char lines[] = "11 o\n13 f\n";

	start(11, "shared", 1);
	start(12, "shared", 1);
	start(13, "shared", 1);
	ck_assert_int_eq(slots_nfds(), 1);
	ck_assert_int_eq(write(fake.shared_wr, lines, strlen(lines)), (ssize_t) strlen(lines));
	turn();
	ck_assert_int_eq(ncaptured, 2);
	ck_assert_int_eq(captured[0].id, 11);
	ck_assert_int_eq(captured[0].type, OUTCOME_COMPLETE);
	ck_assert_int_eq(captured[1].id, 13);
	ck_assert_int_eq(captured[1].type, OUTCOME_RETRY);
	ck_assert_int_eq(slots_running(), 1);
	ck_assert_ptr_nonnull(fake_find(12));
}
END_TEST

START_TEST(test_shutdown_stop_releases_unless_it_succeeded)
{
	start(1, "fake", 1);
	start(2, "fake", 1);
	slots_stop_all(clock_now_ms());
	ck_assert_int_eq(fake.stops, 2);
	ck_assert_int_eq(ncaptured, 0);
	/* Stopped tasks have no timeout of their own any more. */
	ck_assert_int_eq(slots_next_due(INT64_MAX), INT64_MAX);
	say(1, 'f');
	say(2, 'o');
	turn();
	if (ncaptured < 2)
		turn();
	ck_assert_int_eq(ncaptured, 2);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(captured[i].type, captured[i].id == 1 ? OUTCOME_RELEASE : OUTCOME_COMPLETE);
}
END_TEST

START_TEST(test_second_signal_kills_and_releases_everything)
{
	start(1, "fake", 1);
	start(2, "shared", 1);
	slots_kill_all();
	ck_assert_int_eq(fake.kills, 2);
	ck_assert_int_eq(slots_running(), 0);
	ck_assert_int_eq(ncaptured, 2);
	ck_assert_int_eq(captured[0].type, OUTCOME_RELEASE);
	ck_assert_int_eq(captured[1].type, OUTCOME_RELEASE);
	ck_assert_ptr_null(captured[0].error);
}
END_TEST

START_TEST(test_lost_lease_stops_the_handler_and_records_nothing)
{
	long long ids[8], tokens[8];

	start(1, "fake", 1);
	start(2, "fake", 1);
	ck_assert(!slots_lease_lost(1, 999, NULL));
	ck_assert(slots_lease_lost(1, 1000, NULL));
	ck_assert_int_eq(fake.stops, 1);
	ck_assert_int_eq(slots_leased(ids, tokens, NULL, NULL, 8), 1);
	ck_assert_int_eq(ids[0], 2);
	ck_assert_int_eq(tokens[0], 2000);
	say(1, 'o');
	turn();
	ck_assert_int_eq(ncaptured, 0);
	ck_assert_int_eq(slots_running(), 1);
}
END_TEST

START_TEST(test_type_deadline_is_the_loop_deadline)
{
	int64_t due;

	start(1, "fake", 1);
	start(2, "quick", 2);
	due = slots_next_due(INT64_MAX);
	ck_assert_int_le(due, clock_now_ms() + 50);
	slots_check(due - 1);
	ck_assert_int_eq(ncaptured, 0);
	slots_check(due);
	ck_assert_int_eq(ncaptured, 1);
	ck_assert_int_eq(captured[0].id, 2);
	ck_assert_int_eq(captured[0].type, OUTCOME_FAIL);
	ck_assert_str_eq(captured[0].error, "timed out after 50 ms");
	ck_assert_int_gt(slots_next_due(INT64_MAX), clock_now_ms() + 1000);
}
END_TEST

START_TEST(test_child_exit_reaches_its_task_by_pid)
{
	pid_t stray = fork();

	ck_assert_int_ge(stray, 0);
	if (stray == 0)
		_exit(0);
	/* Many watches come and go around the real ones. */
	for (pid_t p = 4000000; p < 4000300; p++)
		handler_watch_pid(p, &fake_ops, NULL);
	start(1, "proc", 1);
	start(2, "proc", 2);
	for (pid_t p = 4000000; p < 4000300; p++)
		handler_unwatch_pid(p);
	for (int i = 0; i < 200 && ncaptured < 2; i++) {
		usleep(10000);
		slots_reap();
	}
	usleep(50000);
	slots_reap();
	ck_assert_int_eq(ncaptured, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_str_eq(captured[i].error, "exit 3");
		ck_assert_int_eq(captured[i].type, captured[i].id == 1 ? OUTCOME_RETRY : OUTCOME_FAIL);
	}
	/* The stray child was reaped too, as nobody's. */
	ck_assert_int_eq(waitpid(stray, NULL, WNOHANG), -1);
}
END_TEST

START_TEST(test_no_handler_limits_and_used_attempts_never_start)
{
	start(1, "unheard_of", 1);
	start(2, "limited", 1);
	start(3, "limited", 1);
	start(4, "fake", 3);
	ck_assert_int_eq(fake.starts, 1);
	ck_assert_int_eq(slots_running(), 1);
	ck_assert_int_eq(ncaptured, 3);
	ck_assert_int_eq(captured[0].type, OUTCOME_RETRY);
	ck_assert_str_eq(captured[0].error, "no handler for kind unheard_of");
	ck_assert_int_eq(captured[1].id, 3);
	ck_assert_int_eq(captured[1].type, OUTCOME_RELEASE);
	ck_assert_int_eq(captured[2].type, OUTCOME_FAIL);
	ck_assert_str_eq(captured[2].error, "no attempts left (attempt 3 of 2)");
}
END_TEST

START_TEST(test_watch_table_grows_and_forgets)
{
	struct pollfd pfds[4];
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_ge(dup2(p[0], 700), 0);
	handler_watch(700, POLLIN, &fake_ops, NULL);
	handler_watch(p[0], POLLIN, &fake_ops, NULL);
	handler_watch(p[0], POLLOUT, &fake_ops, NULL);
	ck_assert_int_eq(handler_nfds(), 2);
	handler_unwatch(700);
	handler_unwatch(700);
	ck_assert_int_eq(handler_pollfds(pfds), 1);
	ck_assert_int_eq(pfds[0].fd, p[0]);
	ck_assert_int_eq(pfds[0].events, POLLOUT);
	/* Readiness of an fd nobody watches goes nowhere. */
	handler_on_ready(700, POLLIN);
	handler_on_ready(100000, POLLIN);
	handler_unwatch(p[0]);
	ck_assert_int_eq(handler_nfds(), 0);
	close(700);
	close(p[0]);
	close(p[1]);
}
END_TEST

Suite *
slots_suite(void)
{
	Suite *s = suite_create("slots");
	TCase *tc = tcase_create("fake handler");

	tcase_add_checked_fixture(tc, slots_fixture_setup, slots_fixture_teardown);
	tcase_add_test(tc, test_ready_fd_reaches_its_own_task);
	tcase_add_test(tc, test_failure_is_retried_then_fails_for_good);
	tcase_add_test(tc, test_final_failure_fails_at_once_and_a_least_delay_holds);
	tcase_add_test(tc, test_not_run_goes_back_untried_after_its_delay);
	tcase_add_test(tc, test_success_already_committed_is_not_written_again);
	tcase_add_test(tc, test_one_fd_serves_several_tasks);
	tcase_add_test(tc, test_shutdown_stop_releases_unless_it_succeeded);
	tcase_add_test(tc, test_second_signal_kills_and_releases_everything);
	tcase_add_test(tc, test_lost_lease_stops_the_handler_and_records_nothing);
	tcase_add_test(tc, test_type_deadline_is_the_loop_deadline);
	tcase_add_test(tc, test_child_exit_reaches_its_task_by_pid);
	tcase_add_test(tc, test_no_handler_limits_and_used_attempts_never_start);
	tcase_add_test(tc, test_watch_table_grows_and_forgets);
	suite_add_tcase(s, tc);
	return s;
}
