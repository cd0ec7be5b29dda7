/*
 * The command line: picks the subcommand, parses its options, and maps the
 * outcome to an exit code (0 success, 1 runtime failure, 2 usage or
 * configuration error). The work itself lives in the modules.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "migrate.h"
#include "version.h"

#define EXIT_USAGE 2

static const char main_usage[] =
	"pgdispatch " PGDISPATCH_VERSION ": a PostgreSQL task dispatcher\n"
	"\n"
	"Usage:\n"
	"  pgdispatch migrate [-d CONNINFO]   apply pending schema migrations\n"
	"  pgdispatch --version               print the version\n"
	"  pgdispatch --help                  print this help\n"
	"\n"
	"Options:\n"
	"  -d, --database CONNINFO   libpq connection string or URI; without it,\n"
	"                            libpq's PG* environment variables apply\n"
	"\n"
	"Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.\n";

/* Prints a usage error and the hint to --help; returns EXIT_USAGE. */
static int
main_usage_error(const char *what)
{
	fprintf(stderr, "pgdispatch: %s\nTry 'pgdispatch --help' for more information.\n", what);
	return EXIT_USAGE;
}

/* Options shared by the commands that talk to a database. */
struct main_opts {
	const char *database;  /* -d; NULL: the PG* environment */
};

/* Parses argv after the command name; returns 0, or EXIT_USAGE. */
static int
main_parse(int argc, char **argv, struct main_opts *opts)
{
	static const struct option longopts[] = {
		{"database", required_argument, NULL, 'd'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":d:", longopts, NULL)) != -1) {
		char msg[200];

		switch (c) {
		case 'd':
			opts->database = optarg;
			break;
		case ':':
			snprintf(msg, sizeof msg, "option '%s' needs a value", argv[optind - 1]);
			return main_usage_error(msg);
		default:
			snprintf(msg, sizeof msg, "unknown option '%s'", argv[optind - 1]);
			return main_usage_error(msg);
		}
	}
	if (optind < argc) {
		char msg[200];

		snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
		return main_usage_error(msg);
	}
	return 0;
}

static int
main_migrate(int argc, char **argv)
{
	struct main_opts opts = {0};
	struct db_error err;
	PGconn *conn;
	int rc = main_parse(argc, argv, &opts);

	if (rc != 0)
		return rc;
	conn = db_connect(opts.database, "pgdispatch migrate", &err);
	if (conn == NULL) {
		fprintf(stderr, "pgdispatch: cannot connect: %s\n", err.message);
		return EXIT_FAILURE;
	}
	rc = migrate_run(conn, stdout, stderr);
	PQfinish(conn);
	return rc;
}

static const struct main_command {
	const char *name;
	int (*run)(int argc, char **argv);  /* argv[0] is the command name */
} main_commands[] = {
	{"migrate", main_migrate},
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
