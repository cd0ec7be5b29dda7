/*
 * The command line: picks the subcommand, parses its options, and maps the
 * outcome to an exit code (0 success, 1 runtime failure, 2 usage or
 * configuration error). The work itself lives in the modules.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin_ops.h"
#include "admin_status.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "embed.h"
#include "fds.h"
#include "log.h"
#include "privs.h"
#include "source.h"
#include "version.h"

#define EXIT_USAGE 2

static const char main_usage[] =
	"pgdispatch " PGDISPATCH_VERSION ": a PostgreSQL task dispatcher\n"
	"\n"
	"Usage:\n"
	"  pgdispatch run [-c FILE] [-d CONNINFO]     run the daemon (foreground, logs to stderr)\n"
	"  pgdispatch migrate [-d CONNINFO]           apply pending schema migrations\n"
	"  pgdispatch roles [-d CONNINFO] [--print]   set up roles dispatch_producer and\n"
	"                                             dispatch_worker (--print: show the SQL)\n"
	"  pgdispatch check-config [-c FILE] [-d CONNINFO]\n"
	"                                             validate a config file; with -d, also check\n"
	"                                             each source's table, as the role the\n"
	"                                             daemon will log in as\n"
	"  pgdispatch enqueue [-d CONNINFO] [--queue Q] [--run-at TIME] [--priority N]\n"
	"                     [--max-attempts N] [--dedupe-key K] KIND [JSON]\n"
	"                                             add a task; prints its id (with a dedupe\n"
	"                                             key taken: the live task's id)\n"
	"  pgdispatch status [-d CONNINFO]            queues, circuit breakers, daemons, running\n"
	"                                             tasks, recent failures, NOTIFY queue use\n"
	"\n"
	"Operating (each calls the dispatch.* function of the same name, and\n"
	"breaker-open dispatch.breaker_trip; needs dispatch_admin):\n"
	"  pgdispatch retry [-d CONNINFO] ID          a failed or cancelled task runs again\n"
	"  pgdispatch retry-failed [-d CONNINFO] [--queue Q] [KIND]\n"
	"                                             every failed task (of KIND) runs again\n"
	"  pgdispatch cancel [-d CONNINFO] [--reason TEXT] ID\n"
	"                                             a pending task never runs; a running one\n"
	"                                             is stopped\n"
	"  pgdispatch cancel-many [-d CONNINFO] [--status pending|in_progress] [--queue Q]\n"
	"                     [--reason TEXT] [KIND]  cancel every such task of KIND, of Q, or both\n"
	"  pgdispatch pause [-d CONNINFO] QUEUE       no daemon claims from QUEUE\n"
	"  pgdispatch resume [-d CONNINFO] QUEUE      ... until it is resumed\n"
	"  pgdispatch purge [-d CONNINFO] INTERVAL    delete tasks finished longer ago than\n"
	"                                             INTERVAL ('30 days')\n"
	"  pgdispatch breaker-reset [-d CONNINFO] KIND\n"
	"                                             close KIND's circuit breaker: its tasks\n"
	"                                             are claimed again\n"
	"  pgdispatch breaker-open [-d CONNINFO] KIND [DURATION]\n"
	"                                             open it: no daemon claims KIND's tasks for\n"
	"                                             DURATION (30s, 5m, 1h; absent: until\n"
	"                                             breaker-reset), then one probe task decides\n"
	"  pgdispatch --version | --help\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE         YAML config (default: pgdispatch.yaml)\n"
	"  -d, --database CONNINFO   libpq connection string or URI; overrides the\n"
	"                            config's database; without either, libpq's PG*\n"
	"                            environment variables apply. Keep a password\n"
	"                            out of it: ps shows it to every user until it\n"
	"                            is read (then it is hidden). PGPASSFILE\n"
	"                            (~/.pgpass), a service file (PGSERVICEFILE) or\n"
	"                            the config's database are better places\n"
	"\n"
	"Signals to run: SIGTERM/SIGINT stop gracefully (a second one stops at once),\n"
	"SIGHUP reloads the config.\n"
	"Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.\n";

#define MAIN_DEFAULT_CONFIG "pgdispatch.yaml"

/* Prints a usage error and the hint to --help; returns EXIT_USAGE. */
static int
main_usage_error(const char *what)
{
	fprintf(stderr, "pgdispatch: %s\nTry 'pgdispatch --help' for more information.\n", what);
	return EXIT_USAGE;
}

/* Everything any command accepts; each command says which it allows. */
struct main_opts {
	const char *database;   /* -d; NULL: config or the PG* environment */
	const char *config;     /* -c */
	const char *queue;      /* --queue */
	const char *run_at;     /* --run-at */
	const char *priority;   /* --priority */
	const char *max_attempts;  /* --max-attempts */
	const char *dedupe_key; /* --dedupe-key */
	const char *reason;     /* --reason */
	const char *status;     /* --status */
	bool print;             /* --print */
	char **args;            /* positional arguments */
	int nargs;
};

/*
 * Takes -d's value, the string arg in argv. What a process was started
 * with stays readable in ps and /proc/PID/cmdline by every user and every
 * handler for as long as it runs, and a conninfo may carry a password
 * (password=... or postgresql://user:secret@host). So the value is copied
 * for our own use, and arg itself is rewritten in place as
 * db_conninfo_safe() renders it, without any password: cut to arg's length
 * and padded with NULs, since the kernel shows argv's original bytes and
 * no more. The copy lives as long as the process (the daemon reconnects
 * with it).
 */
static const char *
main_take_conninfo(char *arg)
{
	static char *copy;
	char safe[1024];
	size_t len = strlen(arg), n;

	free(copy);
	copy = strdup(arg);
	if (copy == NULL)
		abort();
	db_conninfo_safe(copy, safe, sizeof safe);
	n = strlen(safe);
	memset(arg, '\0', len);
	memcpy(arg, safe, n < len ? n : len);
	return copy;
}

/*
 * Parses argv after the command name. allowed lists the short names of the
 * options the command takes ('d', 'c', 'q' queue, 'r' run-at, 'p'
 * priority, 'm' max-attempts, 'k' dedupe-key, 'R' reason, 's' status,
 * 'P' print); max_args bounds the positional arguments.
 * Returns 0, or EXIT_USAGE having said why.
 */
static int
main_parse(int argc, char **argv, const char *allowed, int min_args, int max_args,
           struct main_opts *opts)
{
	static const struct option longopts[] = {
		{"database", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"queue", required_argument, NULL, 'q'},
		{"run-at", required_argument, NULL, 'r'},
		{"priority", required_argument, NULL, 'p'},
		{"max-attempts", required_argument, NULL, 'm'},
		{"dedupe-key", required_argument, NULL, 'k'},
		{"reason", required_argument, NULL, 'R'},
		{"status", required_argument, NULL, 's'},
		{"print", no_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	char msg[200];
	int c, longindex = -1;

	opterr = 0;
	optind = 1;
	/* '+': stop at the first positional argument, so a JSON payload that
	 * starts with '-' is never taken for an option after it. */
	while ((c = getopt_long(argc, argv, "+:d:c:", longopts, &longindex)) != -1) {
		if (c == ':') {
			snprintf(msg, sizeof msg, "option '%s' needs a value", argv[optind - 1]);
			return main_usage_error(msg);
		}
		if (c == '?') {
			snprintf(msg, sizeof msg, "unknown option '%s'", argv[optind - 1]);
			return main_usage_error(msg);
		}
		if (strchr(allowed, c) == NULL) {
			/* An option of another command; argv[optind - 1] may be its
			 * value, so name it from the table. */
			if (longindex >= 0)
				snprintf(msg, sizeof msg, "unknown option '--%s'", longopts[longindex].name);
			else
				snprintf(msg, sizeof msg, "unknown option '-%c'", c);
			return main_usage_error(msg);
		}
		longindex = -1;
		switch (c) {
		case 'd': opts->database = main_take_conninfo(optarg); break;
		case 'c': opts->config = optarg; break;
		case 'q': opts->queue = optarg; break;
		case 'r': opts->run_at = optarg; break;
		case 'p': opts->priority = optarg; break;
		case 'm': opts->max_attempts = optarg; break;
		case 'k': opts->dedupe_key = optarg; break;
		case 'R': opts->reason = optarg; break;
		case 's': opts->status = optarg; break;
		case 'P': opts->print = true; break;
		}
	}
	opts->args = argv + optind;
	opts->nargs = argc - optind;
	if (opts->nargs > max_args) {
		snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind + max_args]);
		return main_usage_error(msg);
	}
	if (opts->nargs < min_args)
		return main_usage_error("missing argument");
	return 0;
}

static int
main_migrate(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "d", 0, 0, &opts);

	return rc != 0 ? rc : admin_migrate(opts.database);
}

/*
 * The roles script is compiled in like the migrations, so an installed
 * pgdispatch can set up roles with no source tree at hand; --print hands it
 * to a DBA who would rather read it first or run it with psql. It is not
 * part of migrate: creating roles needs CREATEROLE, which the schema owner
 * that migrates need not have, and roles are a choice, not a schema change.
 */
static int
main_roles(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "dP", 0, 0, &opts);

	if (rc != 0)
		return rc;
	if (opts.print) {
		if (opts.database != NULL)
			return main_usage_error("--print connects nowhere; drop -d");
		fputs(embed_sql("roles"), stdout);
		return EXIT_SUCCESS;
	}
	return admin_roles(opts.database);
}

/* Loads the config named by -c (or the default); NULL after saying why. */
static struct config *
main_load_config(const struct main_opts *opts)
{
	char err[1024];
	struct config *cfg = config_load(opts->config != NULL ? opts->config : MAIN_DEFAULT_CONFIG,
	                                 err, sizeof err);

	if (cfg == NULL)
		fprintf(stderr, "%s\n", err);
	return cfg;
}

/* Prints each line of text (lines joined by '\n') after prefix. */
static void
main_print_lines(FILE *out, const char *prefix, const char *text)
{
	while (*text != '\0') {
		size_t n = strcspn(text, "\n");

		fprintf(out, "%s%.*s\n", prefix, (int) n, text);
		text += n + (text[n] == '\n');
	}
}

/*
 * check-config -d: each source prepared against the database as the
 * daemon would at startup (source_prepare()), on the connection of the
 * role the daemon will run as. Errors exit 2, as a bad file does; a
 * missing index is a warning only, since the daemon runs without one.
 */
static int
main_check_sources(const struct config *cfg, const char *database)
{
	char err[4096], advice[2048], prefix[1100];
	int rc = EXIT_SUCCESS;
	PGconn *conn = admin_connect(database, "pgdispatch check-config");

	if (conn == NULL)
		return EXIT_FAILURE;
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct source src = {0};

		if (source_prepare(conn, &cfg->sources[i], &src, err, sizeof err, advice, sizeof advice)) {
			snprintf(prefix, sizeof prefix, "%s: warning: ", cfg->path);
			main_print_lines(stderr, prefix, advice);
		} else {
			snprintf(prefix, sizeof prefix, "%s: ", cfg->path);
			main_print_lines(stderr, prefix, err);
			rc = EXIT_USAGE;
		}
		source_clear(&src);
	}
	PQfinish(conn);
	return rc;
}

static int
main_check_config(int argc, char **argv)
{
	struct main_opts opts = {0};
	struct config *cfg;
	int rc = main_parse(argc, argv, "cd", 0, 0, &opts);

	if (rc != 0)
		return rc;
	cfg = main_load_config(&opts);
	if (cfg == NULL)
		return EXIT_USAGE;
	if (opts.database != NULL)
		rc = main_check_sources(cfg, opts.database);
	if (rc == EXIT_SUCCESS && cfg->nsources == 0)
		printf("%s: ok (%zu handlers, %zu queues, %zu schedules)\n", cfg->path, cfg->nhandlers, cfg->nqueues,
		       cfg->nschedules);
	else if (rc == EXIT_SUCCESS)
		printf("%s: ok (%zu handlers, %zu queues, %zu schedules, %zu sources: %s)\n", cfg->path, cfg->nhandlers,
		       cfg->nqueues, cfg->nschedules, cfg->nsources,
		       opts.database != NULL ? "tables checked" : "tables not checked, give -d CONNINFO");
	config_free(cfg);
	return rc;
}

static int
main_run(int argc, char **argv)
{
	char err[1024];
	struct main_opts opts = {0};
	struct config *cfg;
	int rc;

	/* First, before the daemon opens anything: no handler may get a
	 * descriptor whatever started us left open (fds.h). */
	fds_close_inherited();
	rc = main_parse(argc, argv, "cd", 0, 0, &opts);
	if (rc != 0)
		return rc;
	cfg = main_load_config(&opts);
	if (cfg == NULL)
		return EXIT_USAGE;
	/* Before the first connection: every connection, the first and each
	 * reconnect, is made as the same user. */
	log_setup(cfg->log_level, cfg->log_format);
	switch (privs_drop(cfg, err, sizeof err)) {
	case PRIVS_OK:
		break;
	case PRIVS_REFUSED:
		log_error("%s", err);
		config_free(cfg);
		return EXIT_USAGE;
	case PRIVS_FAILED:
		log_error("%s", err);
		config_free(cfg);
		return EXIT_FAILURE;
	}
	privs_protect();
	return daemon_run(cfg, opts.database);
}

/* Prints a statement's failure; returns EXIT_FAILURE. */
static int
main_enqueue(int argc, char **argv)
{
	struct main_opts opts = {0};
	const char *params[7];
	int rc = main_parse(argc, argv, "dqrpmk", 1, 2, &opts);

	if (rc != 0)
		return rc;
	params[0] = opts.args[0];
	params[1] = opts.nargs > 1 ? opts.args[1] : NULL;
	params[2] = opts.queue;
	params[3] = opts.run_at;
	params[4] = opts.priority;
	params[5] = opts.max_attempts;
	params[6] = opts.dedupe_key;
	return admin_enqueue(opts.database, params);
}

static int
main_status(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "d", 0, 0, &opts);

	return rc != 0 ? rc : admin_status(opts.database);
}

/* A task id as the operator typed it: digits only, so that a typo is a
 * usage error here rather than a cast error from the server. */
static bool
main_task_id(const char *arg)
{
	return arg[0] != '\0' && strspn(arg, "0123456789") == strlen(arg) && strlen(arg) <= 18;
}

static int
main_retry(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "d", 1, 1, &opts);

	if (rc != 0)
		return rc;
	if (!main_task_id(opts.args[0]))
		return main_usage_error("retry: the task id must be a number");
	return admin_ops_call(opts.database, "retry", 1, (const char *const *) opts.args);
}

static int
main_retry_failed(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "dq", 0, 1, &opts);
	const char *params[2];

	if (rc != 0)
		return rc;
	params[0] = opts.nargs > 0 ? opts.args[0] : NULL;
	params[1] = opts.queue;
	return admin_ops_call(opts.database, "retry-failed", 2, params);
}

static int
main_cancel(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "dR", 1, 1, &opts);
	const char *params[2];

	if (rc != 0)
		return rc;
	if (!main_task_id(opts.args[0]))
		return main_usage_error("cancel: the task id must be a number");
	params[0] = opts.args[0];
	params[1] = opts.reason;
	return admin_ops_call(opts.database, "cancel", 2, params);
}

static int
main_cancel_many(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "dqRs", 0, 1, &opts);
	const char *params[4];

	if (rc != 0)
		return rc;
	if (opts.status != NULL && strcmp(opts.status, "pending") != 0 && strcmp(opts.status, "in_progress") != 0)
		return main_usage_error("cancel-many: --status is pending or in_progress");
	/* Without either it would cancel every task of every queue: too much
	 * for a mistyped command line (dispatch.cancel_many(NULL) does it on
	 * purpose). */
	if (opts.nargs == 0 && opts.queue == NULL)
		return main_usage_error("cancel-many: name a KIND, a --queue, or both");
	params[0] = opts.nargs > 0 ? opts.args[0] : NULL;
	params[1] = opts.status;
	params[2] = opts.reason;
	params[3] = opts.queue;
	return admin_ops_call(opts.database, "cancel-many", 4, params);
}

/* breaker-reset KIND. */
static int
main_breaker_reset(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "d", 1, 1, &opts);

	if (rc != 0)
		return rc;
	if (opts.args[0][0] == '\0')
		return main_usage_error("breaker-reset: KIND must not be empty");
	return admin_ops_call(opts.database, "breaker-reset", 1, (const char *const *) opts.args);
}

/*
 * breaker-open KIND [DURATION]. DURATION is written as in the config
 * (breaker.open_for: 30s, 5m), so it is read by the config's parser, and a
 * typo is a usage error here rather than the server's cast error; the
 * statement gets milliseconds, and the words as written for its sentence.
 */
static int
main_breaker_open(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "d", 1, 2, &opts);
	const char *params[3];
	char ms_text[32];
	int64_t ms;

	if (rc != 0)
		return rc;
	if (opts.args[0][0] == '\0')
		return main_usage_error("breaker-open: KIND must not be empty");
	params[0] = opts.args[0];
	params[1] = NULL;
	params[2] = NULL;
	if (opts.nargs > 1) {
		/* At most 100 years: beyond, now() + DURATION leaves timestamptz. */
		if (!config_parse_duration(opts.args[1], &ms) || ms <= 0 || ms > 100LL * 365 * 24 * 3600 * 1000)
			return main_usage_error("breaker-open: DURATION is a positive number and a unit (ms, s, m, h, d):"
			                        " 30s, 5m, 1h; leave it out to open until breaker-reset");
		snprintf(ms_text, sizeof ms_text, "%lld", (long long) ms);
		params[1] = ms_text;
		params[2] = opts.args[1];
	}
	return admin_ops_call(opts.database, "breaker-open", 3, params);
}

/* pause, resume and purge: one argument, passed on as it is. */
static int
main_one_arg_op(int argc, char **argv)
{
	struct main_opts opts = {0};
	int rc = main_parse(argc, argv, "d", 1, 1, &opts);

	return rc != 0 ? rc : admin_ops_call(opts.database, argv[0], 1, (const char *const *) opts.args);
}

static const struct main_command {
	const char *name;
	int (*run)(int argc, char **argv);  /* argv[0] is the command name */
} main_commands[] = {
	{"run", main_run},
	{"migrate", main_migrate},
	{"roles", main_roles},
	{"check-config", main_check_config},
	{"enqueue", main_enqueue},
	{"status", main_status},
	{"retry", main_retry},
	{"retry-failed", main_retry_failed},
	{"cancel", main_cancel},
	{"cancel-many", main_cancel_many},
	{"pause", main_one_arg_op},
	{"resume", main_one_arg_op},
	{"purge", main_one_arg_op},
	{"breaker-reset", main_breaker_reset},
	{"breaker-open", main_breaker_open},
};

int
main(int argc, char **argv)
{
	if (argc < 2)
		return main_usage_error("no command given");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(main_usage, stdout);
		return EXIT_SUCCESS;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("pgdispatch %s\n", PGDISPATCH_VERSION);
		return EXIT_SUCCESS;
	}
	for (size_t i = 0; i < sizeof main_commands / sizeof main_commands[0]; i++)
		if (strcmp(argv[1], main_commands[i].name) == 0)
			return main_commands[i].run(argc - 1, argv + 1);

	{
		char msg[200];

		snprintf(msg, sizeof msg, "unknown command '%s'", argv[1]);
		return main_usage_error(msg);
	}
}
