/* Test harness: scratch databases, SQL helpers, the binary as a process,
 * a PgBouncer in front of the server. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
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

char *
harness_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
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
	"                                      ['" HARNESS_PRODUCER "', 'dispatch_producer'],\n"
	"                                      ['" HARNESS_ADMIN "', 'dispatch_admin']] LOOP\n"
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

/* Reads the last len - 1 bytes of path (all of it when shorter) into buf,
 * NUL-terminated; "" when it cannot be read. The tail matters most when a
 * log is long. */
static const char *
harness_read_tail(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f != NULL) {
		fseek(f, 0, SEEK_END);
		if (ftell(f) > (long) len - 1)
			fseek(f, -(long) (len - 1), SEEK_END);
		else
			rewind(f);
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

const char *
harness_daemon_log(const struct harness_daemon *d)
{
	static char buf[1 << 20];

	return harness_read_tail(d->proc.err_path, buf, sizeof buf);
}

long long
harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
harness_daemon_log_count(const struct harness_daemon *d, const char *text)
{
	const char *log = harness_daemon_log(d);
	int n = 0;

	for (const char *p = strstr(log, text); p != NULL; p = strstr(p + 1, text))
		n++;
	return n;
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

/*
 * PgBouncer for the pooling tests. Its directory holds the config, the
 * auth_file, the log and the Unix socket; it lives inside the directory
 * that harness_pgbouncer_prepare() made in the runner, so that
 * harness_pgbouncer_cleanup() finds whatever a failed test left.
 */
#define HARNESS_PGBOUNCER_PORT 6432

static struct {
	char outer[256];    /* made by prepare() in the runner, removed by cleanup() */
	char dir[320];      /* this PgBouncer's, inside outer */
	char conninfo[400];
	pid_t pid;
} harness_bouncer;

static int
harness_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void
harness_rm_tree(const char *path)
{
	if (path[0] != '\0')
		(void) nftw(path, harness_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The pgbouncer binary: on PATH, or where Debian puts it (/usr/sbin is not
 * on every user's PATH). NULL when there is none. */
static const char *
harness_pgbouncer_bin(void)
{
	static char path[512];
	const char *env = getenv("PATH");
	char dirs[4096];

	snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/local/sbin", env != NULL ? env : "");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof path, "%s/pgbouncer", d);
		if (access(path, X_OK) == 0)
			return path;
	}
	return NULL;
}

void
harness_pgbouncer_prepare(void)
{
	snprintf(harness_bouncer.outer, sizeof harness_bouncer.outer, "%s/pgbouncer.XXXXXX", harness_tmpdir());
	if (mkdtemp(harness_bouncer.outer) == NULL || chmod(harness_bouncer.outer, 0711) != 0)
		harness_bouncer.outer[0] = '\0';  /* start() fails the test with the reason */
}

void
harness_pgbouncer_cleanup(void)
{
	harness_rm_tree(harness_bouncer.outer);
	harness_bouncer.outer[0] = '\0';
}

const char *
harness_pgbouncer_log(void)
{
	static char buf[6001];
	char path[400];

	snprintf(path, sizeof path, "%s/pgbouncer.log", harness_bouncer.dir);
	return harness_read_tail(path, buf, sizeof buf);
}

/* Writes text to dir/name, or fails the test. */
static void
harness_write_file(const char *dir, const char *name, const char *text)
{
	char path[400];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert(fputs(text, f) >= 0);
	ck_assert_int_eq(fclose(f), 0);
}

const char *
harness_pgbouncer_start(int pool_size)
{
	const char *bin = harness_pgbouncer_bin(), *host = getenv("PGHOST"), *port = getenv("PGPORT");
	const char *pguser = getenv("PGUSER");
	struct passwd *as = NULL, *me = getpwuid(geteuid());
	char ini[2048], users[512], ini_path[400], log_path[400], probe[512];
	long long end;
	pid_t parent = getpid();
	int log_fd;

	if (bin == NULL) {
		/* The harness's own server means `make check`, whose `make deps`
		 * installs it: missing there is a broken setup, not a skip. */
		ck_assert_msg(getenv("PGDISPATCH_PGDATA") == NULL,
		              "pgbouncer is not installed: run `make deps` (Debian package pgbouncer)");
		fprintf(stderr, "pgbouncer is not installed; skipping (the server in PGHOST is not the harness's)\n");
		return NULL;
	}
	ck_assert_msg(host != NULL, "PgBouncer needs PGHOST");
	ck_assert_msg(harness_bouncer.pid == 0, "a PgBouncer is already running");
	harness_tie_to_parent();
	if (geteuid() == 0) {
		const char *name = getenv("PGDISPATCH_PG_AS") != NULL ? getenv("PGDISPATCH_PG_AS") : "postgres";

		as = getpwnam(name);
		ck_assert_msg(as != NULL, "PgBouncer refuses to run as root, and there is no user %s to run it as", name);
	}

	if (harness_bouncer.outer[0] == '\0')
		harness_pgbouncer_prepare();
	ck_assert_msg(harness_bouncer.outer[0] != '\0', "cannot make a directory in %s: %s", harness_tmpdir(),
	              strerror(errno));
	snprintf(harness_bouncer.dir, sizeof harness_bouncer.dir, "%s/b.XXXXXX", harness_bouncer.outer);
	ck_assert_msg(mkdtemp(harness_bouncer.dir) != NULL, "%s: %s", harness_bouncer.dir, strerror(errno));
	if (as != NULL)
		ck_assert_msg(chown(harness_bouncer.dir, as->pw_uid, as->pw_gid) == 0, "chown %s: %s",
		              harness_bouncer.dir, strerror(errno));

	/* trust still wants each user in the auth_file: the daemons' role,
	 * the producer's, and whoever the test itself connects as. */
	snprintf(users, sizeof users, "\"%s\" \"\"\n\"%s\" \"\"\n\"%s\" \"\"\n\"%s\" \"\"\n", HARNESS_WORKER,
	         HARNESS_PRODUCER, pguser != NULL ? pguser : "postgres", me != NULL ? me->pw_name : "root");
	harness_write_file(harness_bouncer.dir, "users.txt", users);
	/* No listen_addr: the Unix socket only, in a directory of its own, so
	 * no port can collide. A pool smaller than the clients is the point:
	 * a client's consecutive transactions then land on different server
	 * connections. */
	snprintf(ini, sizeof ini,
	         "[databases]\n"
	         "* = host=%s port=%s\n"
	         "[pgbouncer]\n"
	         "unix_socket_dir = %s\n"
	         "listen_port = %d\n"
	         "auth_type = trust\n"
	         "auth_file = %s/users.txt\n"
	         "pool_mode = transaction\n"
	         "default_pool_size = %d\n"
	         "min_pool_size = 0\n"
	         "reserve_pool_size = 0\n"
	         "max_client_conn = 500\n"
	         "server_lifetime = 3600\n"
	         "server_idle_timeout = 600\n"
	         "ignore_startup_parameters = extra_float_digits\n"
	         "log_connections = 0\n"
	         "log_disconnections = 0\n",
	         host, port != NULL ? port : "5432", harness_bouncer.dir, HARNESS_PGBOUNCER_PORT,
	         harness_bouncer.dir, pool_size);
	harness_write_file(harness_bouncer.dir, "pgbouncer.ini", ini);
	snprintf(ini_path, sizeof ini_path, "%s/pgbouncer.ini", harness_bouncer.dir);
	snprintf(log_path, sizeof log_path, "%s/pgbouncer.log", harness_bouncer.dir);
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	ck_assert_msg(log_fd >= 0, "%s: %s", log_path, strerror(errno));

	fflush(NULL);
	harness_bouncer.pid = fork();
	ck_assert(harness_bouncer.pid >= 0);
	if (harness_bouncer.pid == 0) {
		int null_fd = open("/dev/null", O_RDONLY);

		dup2(null_fd, STDIN_FILENO);
		dup2(log_fd, STDOUT_FILENO);
		dup2(log_fd, STDERR_FILENO);
		if (as != NULL && (initgroups(as->pw_name, as->pw_gid) != 0 || setgid(as->pw_gid) != 0 ||
		                   setuid(as->pw_uid) != 0)) {
			dprintf(STDERR_FILENO, "cannot become %s: %s\n", as->pw_name, strerror(errno));
			_exit(127);
		}
		/* After setuid(), which clears it; and the parent may be gone by now. */
		harness_tie_to_parent();
		if (getppid() != parent)
			_exit(127);
		execl(bin, bin, ini_path, (char *) NULL);
		dprintf(STDERR_FILENO, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(log_fd);

	snprintf(harness_bouncer.conninfo, sizeof harness_bouncer.conninfo, "host=%s port=%d", harness_bouncer.dir,
	         HARNESS_PGBOUNCER_PORT);
	/* Ready when a query goes through it to the server. */
	snprintf(probe, sizeof probe, "dbname=postgres %s connect_timeout=2", harness_bouncer.conninfo);
	end = harness_now_ms() + 10000;
	for (;;) {
		PGconn *conn;
		int status;

		ck_assert_msg(waitpid(harness_bouncer.pid, &status, WNOHANG) == 0,
		              "pgbouncer exited at startup (status %d):\n%s", status, harness_pgbouncer_log());
		conn = PQconnectdb(probe);
		if (PQstatus(conn) == CONNECTION_OK) {
			PGresult *res = PQexec(conn, "SELECT 1");
			bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;

			PQclear(res);
			PQfinish(conn);
			if (ok)
				break;
		} else {
			PQfinish(conn);
		}
		ck_assert_msg(harness_now_ms() < end, "pgbouncer does not answer after 10 s (%s):\n%s", probe,
		              harness_pgbouncer_log());
		harness_sleep_ms(50);
	}
	return harness_bouncer.conninfo;
}

void
harness_pgbouncer_stop(void)
{
	long long end = harness_now_ms() + 10000;
	int status;

	if (harness_bouncer.pid <= 0)
		return;
	/* SIGTERM: PgBouncer's immediate shutdown (SIGINT would wait for
	 * clients to leave). */
	kill(harness_bouncer.pid, SIGTERM);
	while (waitpid(harness_bouncer.pid, &status, WNOHANG) == 0) {
		if (harness_now_ms() >= end) {
			kill(harness_bouncer.pid, SIGKILL);
			(void) waitpid(harness_bouncer.pid, &status, 0);
			break;
		}
		harness_sleep_ms(20);
	}
	harness_bouncer.pid = 0;
	harness_rm_tree(harness_bouncer.dir);
	harness_bouncer.dir[0] = '\0';
}
