/*
 * The daemon's configuration: the YAML file read into plain structs.
 *
 * Only the config*.c files include <yaml.h> (through their private
 * config_parser.h): config_parser.c reads YAML by tables of keys (type,
 * default, bounds); config.c has the top level and the handlers (a map
 * from task kind to handler settings, which fall back to the top-level
 * defaults); config_http.c an HTTP handler's settings and the breakers';
 * config_schedules.c and config_sources.c their maps. Every error names
 * the file, line and column.
 */
#ifndef PGDISPATCH_CONFIG_H
#define PGDISPATCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cron.h"
#include "log.h"

struct http_template;   /* http_template.h */

/*
 * One handler: plain data. Which type runs it is named by type, the key
 * that set it; handler.c's table of types maps the name to the code.
 */
struct handler_config {
	char *kind;                  /* the map key: the task kind it serves */
	const char *type;            /* "command", "sql", "builtin" or "http" (static) */
	char **argv;                 /* command: NULL-terminated, argv[0] the program */
	char *sql;                   /* sql: $1 payload (jsonb), $2 task id (bigint) */
	char *builtin;               /* builtin: "noop", "sleep" or "fail" */
	int64_t timeout_ms;          /* default: top-level timeout */
	int max_attempts;            /* default: top-level max_attempts */
	int64_t backoff_initial_ms;  /* default: top-level backoff.initial */
	int64_t backoff_max_ms;      /* default: top-level backoff.max */
	int concurrency;             /* 0: only the global limit applies */
	int64_t max_output;          /* bytes of stdout kept as result; default 1 MiB */
	char **env_passthrough;      /* NULL-terminated names; NULL: the top level's list */
	/* http: a request per task (handler_http.c, docs/http.md) */
	char *http_url;              /* http.url as written: {id}, {payload.FIELD} */
	struct http_template *http_url_tpl;      /* ... parsed */
	const char *http_method;     /* http.method: "POST" (default), "GET", "PUT", "PATCH", "DELETE" (static) */
	char **http_headers;         /* http.headers: NULL-terminated "Name: value" with
	                              * ${VAR} expanded (secrets.h): never logged */
	bool http_follow_redirects;  /* http.follow_redirects, default false */
	char *http_ca_file;          /* http.ca_file: NULL: the system's CAs */
	char *http_idempotency_key;  /* http.idempotency_key: NULL: the task id (or SOURCE:KEY) */
	struct http_template *http_idempotency_tpl;  /* ... parsed */
	/* breaker: any type (breaker.c) */
	int breaker_failures;        /* breaker.failures; 0: no breaker */
	int64_t breaker_window_ms;   /* breaker.window, default 30s */
	int64_t breaker_open_for_ms; /* breaker.open_for, default 30s */
	int64_t breaker_open_max_ms; /* breaker.open_max, default 10m: the cap of the doubling */
};

/*
 * One periodic task (the schedules map): each tick of cron, in timezone,
 * enqueues one task of kind with payload (schedule.c, sql/schedule_tick.sql).
 */
struct schedule_config {
	char *name;                  /* the map key; dispatch.schedules.name */
	char *cron;                  /* the expression as written, for messages */
	struct cron spec;            /* ... parsed */
	char *kind;                  /* required */
	char *payload;               /* a JSON object's text; default "{}" */
	char *queue;                 /* default "default" */
	int priority;                /* default 0 */
	int max_attempts;            /* 0: not set (the kind's handler decides) */
	char *timezone;              /* an IANA zone name; NULL: UTC */
	bool catch_up;               /* after downtime, every missed tick (else one); default false */
};

/*
 * The optional columns of a source's table that the daemon keeps current
 * when the config maps them (sources.NAME.columns): where a table has no
 * such column, the state lives in dispatch.source_rows (docs/sources.md).
 * run_at and priority are inputs: the claim reads them.
 */
enum source_column {
	SOURCE_COL_ATTEMPTS,
	SOURCE_COL_RUN_AT,
	SOURCE_COL_LAST_ERROR,
	SOURCE_COL_RESULT,
	SOURCE_COL_LOCKED_BY,
	SOURCE_COL_LEASE_EXPIRES_AT,
	SOURCE_COL_STARTED_AT,
	SOURCE_COL_FINISHED_AT,
	SOURCE_COL_PRIORITY,
	SOURCE_COL_COUNT
};

/* The names of the mapped columns' keys ("attempts", "run_at", ...),
 * indexed by enum source_column. */
extern const char *const config_source_columns[SOURCE_COL_COUNT];

/* The four states of a source row: indexes of source_config.status. */
enum source_state { SOURCE_PENDING, SOURCE_IN_PROGRESS, SOURCE_COMPLETE, SOURCE_FAILED, SOURCE_STATE_COUNT };

/*
 * One source (the sources map): an application's own table whose rows
 * are dispatched in place (docs/sources.md). Its name is also its kind:
 * the handler named like it runs its rows. Column names are the names as
 * the catalog has them (no quoting, case kept); table is SQL: one
 * schema-qualified name, parsed by PostgreSQL's parse_ident() (unquoted
 * parts fold to lower case, "Quoted" parts keep theirs).
 */
struct source_config {
	char *name;                  /* the map key */
	char *table;                 /* required, as written: schema.table */
	char *key;                   /* NULL: the table's one-column primary key */
	char *status_column;         /* status.column, required */
	char *status[SOURCE_STATE_COUNT];  /* status.pending ...; defaults "pending",
	                                    * "in_progress", "complete", "failed" */
	char *channel;               /* NULL: no LISTEN of its own (poll and sweeps) */
	char *payload;               /* NULL: the row (row_to_json: every column); else a column */
	char *order_by;              /* NULL: the key; else a column (ascending) */
	char *columns[SOURCE_COL_COUNT];   /* mapped columns; NULL when not mapped */
};

struct config {
	char *path;                  /* as given to config_load() */
	char *database;              /* NULL: libpq's PG* environment */
	char *instance_name;         /* NULL: the host name (locked_by adds #pid); printable
	                              * ASCII, at most CONFIG_INSTANCE_NAME_MAX bytes */
	char **queues;               /* at least one; default ["default"] */
	size_t nqueues;
	int concurrency;             /* tasks in flight at once; default 8 */
	int64_t poll_interval_ms;    /* default 5s */
	bool notify;                 /* default true */
	int notify_queue_warn_percent;  /* warn when the NOTIFY queue is this full; default 10 */
	int64_t lease_ms;            /* default 30s */
	int64_t shutdown_grace_ms;   /* default 30s */
	enum log_level log_level;    /* log.level, default info */
	enum log_format log_format;  /* log.format, default text */
	/* Defaults for handlers, and the settings for kinds with no handler. */
	int64_t timeout_ms;          /* default 5m */
	int max_attempts;            /* default 5 */
	int64_t backoff_initial_ms;  /* backoff.initial, default 1s */
	int64_t backoff_max_ms;      /* backoff.max, default 1h */
	/* retention: finished rows older than this are deleted
	 * (dispatcher/retention.c); 0: kept for ever (0 or off in the file). */
	struct {
		int64_t complete_ms;     /* default 7d */
		int64_t failed_ms;       /* default 30d */
		int64_t cancelled_ms;    /* default 7d */
		int64_t attempts_ms;     /* dispatch.attempts, the failed-attempt log; default 30d */
	} retention;
	struct handler_config *handlers;
	size_t nhandlers;
	struct schedule_config *schedules;
	size_t nschedules;
	struct source_config *sources;
	size_t nsources;
	/* The daemon's environment variables a command handler gets, by name
	 * (NULL-terminated, possibly empty); default CONFIG_ENV_DEFAULT. */
	char **env_passthrough;
	/* Run as this user (and group, default the user's primary group) once
	 * started as root; NULL: stay as started. Checked to exist on this
	 * host when the file is read; privs.c does the switch. */
	char *user;
	char *group;
};

/* "pgdispatch " + NAME + "#" + a pid of up to 7 digits fits in the 63
 * bytes PostgreSQL keeps of application_name. */
#define CONFIG_INSTANCE_NAME_MAX 44

/* The default env_passthrough: what programs need to find their tools,
 * their home, their locale and their time zone, and nothing secret. */
#define CONFIG_ENV_DEFAULT "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"

/*
 * Reads and validates the file at path. Returns a config that the caller
 * releases with config_free(), or NULL with err set to
 * "FILE:LINE:COL: message" (a file that cannot be opened: "FILE: reason").
 */
struct config *config_load(const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* config_load() refuses larger files: a configuration is a few kB, and a
 * path to something endless (/dev/zero) must not exhaust memory. */
#define CONFIG_MAX_BYTES (1024 * 1024)

/*
 * Parses text[0..len) (it need not end in NUL) as config_load() parses a
 * file; path names it in messages and becomes cfg->path. Same ownership
 * and errors as config_load().
 */
struct config *config_parse(const char *path, const char *text, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

void config_free(struct config *cfg);

/* The handler for kind, or NULL. Borrowed from cfg. */
const struct handler_config *config_handler(const struct config *cfg, const char *kind);

/* The source named name, or NULL. Borrowed from cfg. */
const struct source_config *config_source(const struct config *cfg, const char *name);

/* Parses a duration such as "250ms", "30s", "5m", "1h" into milliseconds. */
bool config_parse_duration(const char *s, int64_t *ms);

#endif
