/* Test harness: scratch databases, SQL helpers, the binary as a process. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define HARNESS_MAX_DBS 8

static struct {
	char names[HARNESS_MAX_DBS][64];
	char conninfo[HARNESS_MAX_DBS][96];
	int count;
	int serial;
} harness_local;

PGconn *
harness_connect(const char *conninfo)
{
	PGconn *conn = PQconnectdb(conninfo);

	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect %s: %s", conninfo,
	              PQerrorMessage(conn));
	return conn;
}

void
harness_exec(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s\n-> %s", sql,
	              PQerrorMessage(conn));
	PQclear(res);
}

const char *
harness_value(PGconn *conn, const char *sql)
{
	static char buf[8192];
	PGresult *res = PQexec(conn, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s\n-> %s", sql, PQerrorMessage(conn));
	ck_assert_msg(PQntuples(res) == 1 && PQnfields(res) == 1, "%s: %d rows, %d columns, want one value",
	              sql, PQntuples(res), PQnfields(res));
	snprintf(buf, sizeof buf, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return buf;
}

long long
harness_int(PGconn *conn, const char *sql)
{
	return atoll(harness_value(conn, sql));
}

/*
 * Check runs each test in a child of the runner. If the runner is
 * interrupted (Ctrl-C in `make check`), that child and any daemon it
 * started must not live on against a server that is being removed: tie
 * each to its parent's life.
 */
static void
harness_tie_to_parent(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Temporary files go inside the scratch server's directory when there is
 * one, so that pg_scratch.sh removes them on every exit path. */
static const char *
harness_tmpdir(void)
{
	const char *dir = getenv("PGDISPATCH_TMP");

	return dir != NULL ? dir : "/tmp";
}

const char *
harness_db_create(void)
{
	PGconn *admin;
	char sql[160];
	int i = harness_local.count;

	ck_assert_msg(getenv("PGHOST") != NULL, "DB tier test run without PGHOST");
	harness_tie_to_parent();
	ck_assert(i < HARNESS_MAX_DBS);
	snprintf(harness_local.names[i], sizeof harness_local.names[i], "pgdispatch_test_%d_%d",
	         (int) getpid(), ++harness_local.serial);
	snprintf(harness_local.conninfo[i], sizeof harness_local.conninfo[i],
	         "dbname=pgdispatch_test_%d_%d", (int) getpid(), harness_local.serial);
	/* "postgres" exists on every server initdb made; PGDATABASE may not. */
	admin = harness_connect("dbname=postgres");
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", harness_local.names[i]);
	harness_exec(admin, sql);
	PQfinish(admin);
	harness_local.count++;
	return harness_local.conninfo[i];
}

void
harness_teardown(void)
{
	PGconn *admin;

	if (harness_local.count == 0)
		return;
	admin = PQconnectdb("dbname=postgres");
	for (int i = 0; i < harness_local.count && PQstatus(admin) == CONNECTION_OK; i++) {
		char sql[160];

		snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", harness_local.names[i]);
		PQclear(PQexec(admin, sql));
	}
	PQfinish(admin);
	harness_local.count = 0;
}

void
harness_start(struct harness_proc *p, const char *const *args)
{
	const char *bin = getenv("PGDISPATCH_BIN");
	const char *argv[32];
	int n = 0, out_fd, err_fd;

	ck_assert_msg(bin != NULL, "PGDISPATCH_BIN is not set (run through make check)");
	memset(p, 0, sizeof *p);
	harness_tie_to_parent();
	snprintf(p->out_path, sizeof p->out_path, "%s/pgdispatch-test-out.XXXXXX", harness_tmpdir());
	snprintf(p->err_path, sizeof p->err_path, "%s/pgdispatch-test-err.XXXXXX", harness_tmpdir());
	out_fd = mkstemp(p->out_path);
	err_fd = mkstemp(p->err_path);
	ck_assert(out_fd >= 0 && err_fd >= 0);

	argv[n++] = bin;
	for (; args[n - 1] != NULL && n < 31; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;

	fflush(NULL);
	p->pid = fork();
	ck_assert(p->pid >= 0);
	if (p->pid == 0) {
		int null_fd = open("/dev/null", O_RDONLY);

		harness_tie_to_parent();
		dup2(null_fd, STDIN_FILENO);
		dup2(out_fd, STDOUT_FILENO);
		dup2(err_fd, STDERR_FILENO);
		execv(bin, (char *const *) argv);
		dprintf(STDERR_FILENO, "exec %s failed\n", bin);
		_exit(127);
	}
	close(out_fd);
	close(err_fd);
}

static char *
harness_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	ck_assert(f != NULL);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t) len + 1);
	ck_assert(buf != NULL);
	buf[fread(buf, 1, (size_t) len, f)] = '\0';
	fclose(f);
	return buf;
}

int
harness_finish(struct harness_proc *p)
{
	while (waitpid(p->pid, &p->status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	p->out = harness_slurp(p->out_path);
	p->err = harness_slurp(p->err_path);
	if (WIFEXITED(p->status))
		return WEXITSTATUS(p->status);
	return 128 + WTERMSIG(p->status);
}

void
harness_proc_free(struct harness_proc *p)
{
	free(p->out);
	free(p->err);
	unlink(p->out_path);
	unlink(p->err_path);
	p->out = p->err = NULL;
}

int
harness_run(struct harness_proc *p, const char *const *args)
{
	harness_start(p, args);
	return harness_finish(p);
}

/*
 * The login roles are cluster-wide and outlive the test's database, so each
 * is made only when missing; a concurrent run on a shared $PGHOST may make
 * it first.
 */
static const char harness_login_roles_sql[] =
	"DO $$\n"
	"DECLARE\n"
	"    r text[];\n"
	"BEGIN\n"
	"    FOREACH r SLICE 1 IN ARRAY ARRAY[['" HARNESS_WORKER "', 'dispatch_worker'],\n"
	"                                      ['" HARNESS_PRODUCER "', 'dispatch_producer']] LOOP\n"
	"        BEGIN\n"
	"            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r[1]) THEN\n"
	"                EXECUTE format('CREATE ROLE %I LOGIN', r[1]);\n"
	"            END IF;\n"
	"            IF NOT pg_has_role(r[1], r[2], 'MEMBER') THEN\n"
	"                EXECUTE format('GRANT %I TO %I', r[2], r[1]);\n"
	"            END IF;\n"
	"        EXCEPTION WHEN duplicate_object OR unique_violation THEN\n"
	"            NULL;\n"
	"        END;\n"
	"    END LOOP;\n"
	"END\n"
	"$$";

void
harness_migrate(const char *conninfo)
{
	struct harness_proc p;
	const char *migrate[] = {"migrate", "-d", conninfo, NULL};
	const char *roles[] = {"roles", "-d", conninfo, NULL};
	PGconn *conn;
	int rc = harness_run(&p, migrate);

	ck_assert_msg(rc == 0, "migrate exited %d: %s", rc, p.err);
	harness_proc_free(&p);
	rc = harness_run(&p, roles);
	ck_assert_msg(rc == 0, "roles exited %d: %s", rc, p.err);
	harness_proc_free(&p);
	conn = harness_connect(conninfo);
	harness_exec(conn, harness_login_roles_sql);
	PQfinish(conn);
}

const char *
harness_as(const char *conninfo, const char *role)
{
	static char buf[256];

	snprintf(buf, sizeof buf, "%s user=%s", conninfo, role);
	return buf;
}

void
harness_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

const char *
harness_write_temp(const char *text)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof path, "%s/pgdispatch-test-file.XXXXXX", harness_tmpdir());
	fd = mkstemp(path);
	ck_assert(fd >= 0);
	ck_assert(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
	close(fd);
	return path;
}

const char *
harness_handler(const char *name)
{
	static char path[512];
	const char *src = getenv("PGDISPATCH_SRC");

	ck_assert_msg(src != NULL, "PGDISPATCH_SRC is not set (run through make check)");
	snprintf(path, sizeof path, "%s/tests/handlers/%s", src, name);
	return path;
}

/* The last few kB of a log: enough to see what happened, small enough for
 * Check's failure message. */
static const char *
harness_log_tail(const char *log)
{
	size_t n = strlen(log);

	return n > 6000 ? log + n - 6000 : log;
}

const char *
harness_daemon_log(const struct harness_daemon *d)
{
	static char buf[1 << 20];
	FILE *f = fopen(d->proc.err_path, "r");
	size_t n = 0;

	if (f != NULL) {
		/* The tail matters most when a log is long. */
		fseek(f, 0, SEEK_END);
		if (ftell(f) > (long) sizeof buf - 1)
			fseek(f, -(long) (sizeof buf - 1), SEEK_END);
		else
			rewind(f);
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static long long
harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
harness_daemon_wait_log(const struct harness_daemon *d, const char *text, int timeout_ms)
{
	long long end = harness_now_ms() + timeout_ms;

	while (strstr(harness_daemon_log(d), text) == NULL) {
		ck_assert_msg(harness_now_ms() < end, "daemon log lacks \"%s\" after %d ms:\n%s", text,
		              timeout_ms, harness_log_tail(harness_daemon_log(d)));
		harness_sleep_ms(20);
	}
}

void
harness_daemon_start(struct harness_daemon *d, const char *conninfo, const char *yaml)
{
	harness_daemon_start_as(d, conninfo, HARNESS_WORKER, yaml);
}

void
harness_daemon_start_as(struct harness_daemon *d, const char *conninfo, const char *role, const char *yaml)
{
	char worker[256];
	const char *args[] = {"run", "-c", d->config_path, "-d", worker, NULL};

	snprintf(worker, sizeof worker, "%s", harness_as(conninfo, role));
	memset(d, 0, sizeof *d);
	snprintf(d->config_path, sizeof d->config_path, "%s", harness_write_temp(yaml));
	harness_start(&d->proc, args);
	harness_daemon_wait_log(d, " connected ", 10000);
}

int
harness_daemon_stop(struct harness_daemon *d, int sig)
{
	kill(d->proc.pid, sig);
	return harness_finish(&d->proc);
}

void
harness_daemon_free(struct harness_daemon *d)
{
	harness_proc_free(&d->proc);
	unlink(d->config_path);
}

void
harness_wait_value(PGconn *conn, const char *sql, const char *want, int timeout_ms,
                   const struct harness_daemon *d)
{
	long long end = harness_now_ms() + timeout_ms;

	for (;;) {
		const char *got = harness_value(conn, sql);

		if (strcmp(got, want) == 0)
			return;
		if (harness_now_ms() >= end)
			ck_abort_msg("%s\n  want %s, still %s after %d ms\n%s", sql, want, got, timeout_ms,
			             d != NULL ? harness_log_tail(harness_daemon_log(d)) : "");
		harness_sleep_ms(25);
	}
}

bool
harness_restart_server(void)
{
	const char *data = getenv("PGDISPATCH_PGDATA"), *bin = getenv("PGDISPATCH_PGBIN");
	const char *as = getenv("PGDISPATCH_PG_AS");
	char cmd[1024];

	if (data == NULL || bin == NULL)
		return false;
	if (as != NULL)
		snprintf(cmd, sizeof cmd, "runuser -u %s -- %s/pg_ctl -D %s -m fast -w restart -l %s/../server.log >/dev/null",
		         as, bin, data, data);
	else
		snprintf(cmd, sizeof cmd, "%s/pg_ctl -D %s -m fast -w restart -l %s/../server.log >/dev/null", bin,
		         data, data);
	ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
	return true;
}
