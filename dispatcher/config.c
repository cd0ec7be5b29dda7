/*
 * Reads the YAML configuration file into struct config; see config.h.
 *
 * The file is walked as a stream of libyaml events, one event held at a
 * time: a map is read key by key, each key looked up in a table of keys
 * (type, field offset, default, bounds), and its value checked and stored at
 * once, so every error still has the mark of the node that caused it.
 * Handler settings that the file leaves out are taken from the top level
 * only after the whole file is read, because top-level keys may follow
 * "handlers"; for the same reason a source's handler is looked for only
 * then.
 *
 * Reading rules: a scalar is read by the type its key expects, quoted or
 * not. Integers are decimal; durations are an integer and one unit.
 * Booleans are true or false (also True, TRUE, False, FALSE, as in YAML
 * 1.2); yes, no, on and off are rejected, because YAML 1.1 and 1.2 disagree
 * on them. Aliases (*name) are rejected; anchors alone are harmless. An
 * empty or null string value (database:, ~) leaves the key at its default.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "http_template.h"
#include "json.h"
#include "secrets.h"

enum config_type {
	CONFIG_STRING,       /* char *; min is the least length, 0: empty means unset */
	CONFIG_LIST,         /* char **, NULL-terminated; min is the least count */
	CONFIG_ENV_NAMES,    /* a CONFIG_LIST of environment variable names, each once */
	CONFIG_NAMES,        /* a CONFIG_LIST of names, each once */
	CONFIG_BOOL,         /* bool */
	CONFIG_INT,          /* int */
	CONFIG_INT64,        /* int64_t */
	CONFIG_DURATION,     /* int64_t milliseconds */
	CONFIG_AGE,          /* a CONFIG_DURATION, or 0 or off: 0 (kept for ever) */
	CONFIG_LOG_LEVEL,    /* enum log_level */
	CONFIG_LOG_FORMAT,   /* enum log_format */
	CONFIG_CHOICE,       /* char *: one of the key's names */
	CONFIG_KEYWORD,      /* const char *: one of the key's names, the static string; def: its index */
	CONFIG_MAP,          /* a nested map whose keys are "name.key" in the same table */
	CONFIG_HANDLERS,     /* the map of handlers, top level only */
	CONFIG_SCHEDULES,    /* the map of schedules, top level only */
	CONFIG_SOURCES,      /* the map of sources, top level only */
	CONFIG_SOURCE_COLUMNS,  /* a source's columns map: config_source_columns[] to names */
	CONFIG_JSON,         /* char *: any map, stored as a JSON object's text */
	CONFIG_HEADERS,      /* char **: a map of HTTP header names to values, as "Name: value",
	                      * ${VAR} expanded (secrets.h) */
};

/* One key of a map: where its value goes and what values it takes. */
struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;
	int64_t def;
	int64_t min;
	int64_t max;
};

#define CONFIG_SEC (INT64_C(1000))
#define CONFIG_MIN (60 * CONFIG_SEC)
#define CONFIG_HOUR (60 * CONFIG_MIN)
#define CONFIG_DAY (24 * CONFIG_HOUR)
/* A handler default that is filled in from the top level after the file. */
#define CONFIG_INHERIT (-1)

/* Indexes into config_top_keys, for the checks that span keys. */
enum {
	TK_DATABASE, TK_INSTANCE_NAME, TK_QUEUES, TK_CONCURRENCY, TK_POLL_INTERVAL,
	TK_NOTIFY, TK_NOTIFY_QUEUE_WARN, TK_LEASE, TK_SHUTDOWN_GRACE, TK_LOG, TK_LOG_LEVEL, TK_LOG_FORMAT,
	TK_TIMEOUT, TK_MAX_ATTEMPTS, TK_BACKOFF, TK_BACKOFF_INITIAL, TK_BACKOFF_MAX,
	TK_RETENTION, TK_RETENTION_COMPLETE, TK_RETENTION_FAILED, TK_RETENTION_CANCELLED,
	TK_RETENTION_ATTEMPTS, TK_HANDLERS, TK_ENV_PASSTHROUGH, TK_USER, TK_GROUP, TK_SCHEDULES,
	TK_SOURCES, TK_COUNT
};

#define TOP(field) offsetof(struct config, field)
static const struct config_key config_top_keys[TK_COUNT] = {
	[TK_DATABASE] = {"database", CONFIG_STRING, TOP(database), 0, 0, 0},
	[TK_INSTANCE_NAME] = {"instance_name", CONFIG_STRING, TOP(instance_name), 0, 0, 0},
	/* Each once: the daemon LISTENs and sleeps per name, and a second
	 * entry for one queue broke its wake-ups. */
	[TK_QUEUES] = {"queues", CONFIG_NAMES, TOP(queues), 0, 1, 0},
	[TK_CONCURRENCY] = {"concurrency", CONFIG_INT, TOP(concurrency), 8, 1, 1024},
	[TK_POLL_INTERVAL] = {"poll_interval", CONFIG_DURATION, TOP(poll_interval_ms),
	                      5 * CONFIG_SEC, 10, CONFIG_HOUR},
	[TK_NOTIFY] = {"notify", CONFIG_BOOL, TOP(notify), true, 0, 0},
	[TK_NOTIFY_QUEUE_WARN] = {"notify_queue_warn_percent", CONFIG_INT, TOP(notify_queue_warn_percent),
	                          10, 1, 100},
	[TK_LEASE] = {"lease", CONFIG_DURATION, TOP(lease_ms), 30 * CONFIG_SEC, CONFIG_SEC, CONFIG_DAY},
	[TK_SHUTDOWN_GRACE] = {"shutdown_grace", CONFIG_DURATION, TOP(shutdown_grace_ms),
	                       30 * CONFIG_SEC, 0, CONFIG_HOUR},
	[TK_LOG] = {"log", CONFIG_MAP, 0, 0, 0, 0},
	[TK_LOG_LEVEL] = {"log.level", CONFIG_LOG_LEVEL, TOP(log_level), LOG_INFO, 0, 0},
	[TK_LOG_FORMAT] = {"log.format", CONFIG_LOG_FORMAT, TOP(log_format), LOG_TEXT, 0, 0},
	[TK_TIMEOUT] = {"timeout", CONFIG_DURATION, TOP(timeout_ms), 5 * CONFIG_MIN, 10, 7 * CONFIG_DAY},
	[TK_MAX_ATTEMPTS] = {"max_attempts", CONFIG_INT, TOP(max_attempts), 5, 1, 1000},
	[TK_BACKOFF] = {"backoff", CONFIG_MAP, 0, 0, 0, 0},
	[TK_BACKOFF_INITIAL] = {"backoff.initial", CONFIG_DURATION, TOP(backoff_initial_ms),
	                        CONFIG_SEC, 1, CONFIG_DAY},
	[TK_BACKOFF_MAX] = {"backoff.max", CONFIG_DURATION, TOP(backoff_max_ms),
	                    CONFIG_HOUR, 1, 30 * CONFIG_DAY},
	/* How long finished rows are kept (dispatcher/retention.c). */
	[TK_RETENTION] = {"retention", CONFIG_MAP, 0, 0, 0, 0},
	[TK_RETENTION_COMPLETE] = {"retention.complete", CONFIG_AGE, TOP(retention.complete_ms),
	                           7 * CONFIG_DAY, CONFIG_SEC, 36500 * CONFIG_DAY},
	[TK_RETENTION_FAILED] = {"retention.failed", CONFIG_AGE, TOP(retention.failed_ms),
	                         30 * CONFIG_DAY, CONFIG_SEC, 36500 * CONFIG_DAY},
	[TK_RETENTION_CANCELLED] = {"retention.cancelled", CONFIG_AGE, TOP(retention.cancelled_ms),
	                            7 * CONFIG_DAY, CONFIG_SEC, 36500 * CONFIG_DAY},
	[TK_RETENTION_ATTEMPTS] = {"retention.attempts", CONFIG_AGE, TOP(retention.attempts_ms),
	                           30 * CONFIG_DAY, CONFIG_SEC, 36500 * CONFIG_DAY},
	[TK_HANDLERS] = {"handlers", CONFIG_HANDLERS, 0, 0, 0, 0},
	[TK_ENV_PASSTHROUGH] = {"env_passthrough", CONFIG_ENV_NAMES, TOP(env_passthrough), 0, 0, 0},
	[TK_USER] = {"user", CONFIG_STRING, TOP(user), 0, 0, 0},
	[TK_GROUP] = {"group", CONFIG_STRING, TOP(group), 0, 0, 0},
	[TK_SCHEDULES] = {"schedules", CONFIG_SCHEDULES, 0, 0, 0, 0},
	[TK_SOURCES] = {"sources", CONFIG_SOURCES, 0, 0, 0, 0},
};

/* Indexes into config_handler_keys. */
enum {
	HK_COMMAND, HK_SQL, HK_BUILTIN, HK_HTTP, HK_TIMEOUT, HK_MAX_ATTEMPTS, HK_BACKOFF,
	HK_BACKOFF_INITIAL, HK_BACKOFF_MAX, HK_CONCURRENCY, HK_MAX_OUTPUT, HK_ENV_PASSTHROUGH,
	HK_HTTP_URL, HK_HTTP_METHOD, HK_HTTP_HEADERS, HK_HTTP_FOLLOW_REDIRECTS, HK_HTTP_CA_FILE,
	HK_HTTP_IDEMPOTENCY_KEY, HK_BREAKER, HK_BREAKER_FAILURES, HK_BREAKER_WINDOW, HK_BREAKER_OPEN_FOR,
	HK_BREAKER_OPEN_MAX, HK_COUNT
};

/* The bounds of inherited keys repeat the top level's: a handler may not
 * set what the top level could not. */
#define HANDLER(field) offsetof(struct handler_config, field)
static const struct config_key config_handler_keys[HK_COUNT] = {
	[HK_COMMAND] = {"command", CONFIG_LIST, HANDLER(argv), 0, 1, 0},
	[HK_SQL] = {"sql", CONFIG_STRING, HANDLER(sql), 0, 1, 0},
	[HK_BUILTIN] = {"builtin", CONFIG_CHOICE, HANDLER(builtin), 0, 0, 0},
	[HK_HTTP] = {"http", CONFIG_MAP, 0, 0, 0, 0},
	[HK_TIMEOUT] = {"timeout", CONFIG_DURATION, HANDLER(timeout_ms), CONFIG_INHERIT,
	                10, 7 * CONFIG_DAY},
	[HK_MAX_ATTEMPTS] = {"max_attempts", CONFIG_INT, HANDLER(max_attempts), CONFIG_INHERIT, 1, 1000},
	[HK_BACKOFF] = {"backoff", CONFIG_MAP, 0, 0, 0, 0},
	[HK_BACKOFF_INITIAL] = {"backoff.initial", CONFIG_DURATION, HANDLER(backoff_initial_ms),
	                        CONFIG_INHERIT, 1, CONFIG_DAY},
	[HK_BACKOFF_MAX] = {"backoff.max", CONFIG_DURATION, HANDLER(backoff_max_ms),
	                    CONFIG_INHERIT, 1, 30 * CONFIG_DAY},
	[HK_CONCURRENCY] = {"concurrency", CONFIG_INT, HANDLER(concurrency), 0, 0, 1024},
	[HK_MAX_OUTPUT] = {"max_output", CONFIG_INT64, HANDLER(max_output), 1048576, 0, 1073741824},
	/* Replaces the top-level list for this handler: a secret in the
	 * daemon's environment can go to the one handler that needs it. */
	[HK_ENV_PASSTHROUGH] = {"env_passthrough", CONFIG_ENV_NAMES, HANDLER(env_passthrough), 0, 0, 0},
	/* An HTTP handler's request (handler_http.c); the url and the
	 * idempotency_key are templates, parsed when the handler's map ends. */
	[HK_HTTP_URL] = {"http.url", CONFIG_STRING, HANDLER(http_url), 0, 1, 0},
	[HK_HTTP_METHOD] = {"http.method", CONFIG_KEYWORD, HANDLER(http_method), 1, 0, 0},
	[HK_HTTP_HEADERS] = {"http.headers", CONFIG_HEADERS, HANDLER(http_headers), 0, 0, 0},
	[HK_HTTP_FOLLOW_REDIRECTS] = {"http.follow_redirects", CONFIG_BOOL, HANDLER(http_follow_redirects),
	                              false, 0, 0},
	[HK_HTTP_CA_FILE] = {"http.ca_file", CONFIG_STRING, HANDLER(http_ca_file), 0, 0, 0},
	[HK_HTTP_IDEMPOTENCY_KEY] = {"http.idempotency_key", CONFIG_STRING, HANDLER(http_idempotency_key),
	                             0, 0, 0},
	/* A circuit breaker for the kind (breaker.c), on any type; without
	 * failures there is none. open_max's default rises to open_for. */
	[HK_BREAKER] = {"breaker", CONFIG_MAP, 0, 0, 0, 0},
	[HK_BREAKER_FAILURES] = {"breaker.failures", CONFIG_INT, HANDLER(breaker_failures), 0, 1, 1000},
	[HK_BREAKER_WINDOW] = {"breaker.window", CONFIG_DURATION, HANDLER(breaker_window_ms),
	                       30 * CONFIG_SEC, CONFIG_SEC, CONFIG_DAY},
	[HK_BREAKER_OPEN_FOR] = {"breaker.open_for", CONFIG_DURATION, HANDLER(breaker_open_for_ms),
	                         30 * CONFIG_SEC, CONFIG_SEC, CONFIG_DAY},
	[HK_BREAKER_OPEN_MAX] = {"breaker.open_max", CONFIG_DURATION, HANDLER(breaker_open_max_ms),
	                         10 * CONFIG_MIN, CONFIG_SEC, 7 * CONFIG_DAY},
};

/* Indexes into config_schedule_keys. */
enum {
	SK_CRON, SK_KIND, SK_PAYLOAD, SK_QUEUE, SK_PRIORITY, SK_MAX_ATTEMPTS, SK_TIMEZONE, SK_CATCH_UP, SK_COUNT
};

/* A schedule's task takes the columns a producer sets; max_attempts 0 is
 * "not set", so the kind's handler decides, as for any task. */
#define SCHEDULE(field) offsetof(struct schedule_config, field)
static const struct config_key config_schedule_keys[SK_COUNT] = {
	[SK_CRON] = {"cron", CONFIG_STRING, SCHEDULE(cron), 0, 1, 0},
	[SK_KIND] = {"kind", CONFIG_STRING, SCHEDULE(kind), 0, 1, 0},
	[SK_PAYLOAD] = {"payload", CONFIG_JSON, SCHEDULE(payload), 0, 0, 0},
	[SK_QUEUE] = {"queue", CONFIG_STRING, SCHEDULE(queue), 0, 1, 0},
	[SK_PRIORITY] = {"priority", CONFIG_INT, SCHEDULE(priority), 0, INT32_MIN, INT32_MAX},
	[SK_MAX_ATTEMPTS] = {"max_attempts", CONFIG_INT, SCHEDULE(max_attempts), 0, 1, 1000},
	[SK_TIMEZONE] = {"timezone", CONFIG_STRING, SCHEDULE(timezone), 0, 1, 0},
	[SK_CATCH_UP] = {"catch_up", CONFIG_BOOL, SCHEDULE(catch_up), false, 0, 0},
};

/* Indexes into config_source_keys. */
enum {
	RK_TABLE, RK_KEY, RK_STATUS, RK_STATUS_COLUMN, RK_PENDING, RK_IN_PROGRESS, RK_COMPLETE, RK_FAILED,
	RK_CHANNEL, RK_PAYLOAD, RK_ORDER_BY, RK_COLUMNS, RK_COUNT
};

/*
 * A source's keys. Names are the catalog's (source_check.c looks them up
 * as written); the status values must be given as something, so they
 * cannot be empty, while an empty key, channel, payload or order_by means
 * its default, as everywhere else in the file.
 */
#define SOURCE(field) offsetof(struct source_config, field)
static const struct config_key config_source_keys[RK_COUNT] = {
	[RK_TABLE] = {"table", CONFIG_STRING, SOURCE(table), 0, 1, 0},
	[RK_KEY] = {"key", CONFIG_STRING, SOURCE(key), 0, 0, 0},
	[RK_STATUS] = {"status", CONFIG_MAP, 0, 0, 0, 0},
	[RK_STATUS_COLUMN] = {"status.column", CONFIG_STRING, SOURCE(status_column), 0, 1, 0},
	[RK_PENDING] = {"status.pending", CONFIG_STRING, SOURCE(status[SOURCE_PENDING]), 0, 1, 0},
	[RK_IN_PROGRESS] = {"status.in_progress", CONFIG_STRING, SOURCE(status[SOURCE_IN_PROGRESS]), 0, 1, 0},
	[RK_COMPLETE] = {"status.complete", CONFIG_STRING, SOURCE(status[SOURCE_COMPLETE]), 0, 1, 0},
	[RK_FAILED] = {"status.failed", CONFIG_STRING, SOURCE(status[SOURCE_FAILED]), 0, 1, 0},
	[RK_CHANNEL] = {"channel", CONFIG_STRING, SOURCE(channel), 0, 0, 0},
	[RK_PAYLOAD] = {"payload", CONFIG_STRING, SOURCE(payload), 0, 0, 0},
	[RK_ORDER_BY] = {"order_by", CONFIG_STRING, SOURCE(order_by), 0, 0, 0},
	[RK_COLUMNS] = {"columns", CONFIG_SOURCE_COLUMNS, 0, 0, 0, 0},
};

/* The status keys in enum source_state order, and their defaults. */
static const int config_source_state_keys[SOURCE_STATE_COUNT] = {RK_PENDING, RK_IN_PROGRESS, RK_COMPLETE,
                                                                 RK_FAILED};
static const char *const config_source_state_defaults[SOURCE_STATE_COUNT] = {"pending", "in_progress",
                                                                             "complete", "failed"};

const char *const config_source_columns[SOURCE_COL_COUNT] = {
	[SOURCE_COL_ATTEMPTS] = "attempts",
	[SOURCE_COL_RUN_AT] = "run_at",
	[SOURCE_COL_LAST_ERROR] = "last_error",
	[SOURCE_COL_RESULT] = "result",
	[SOURCE_COL_LOCKED_BY] = "locked_by",
	[SOURCE_COL_LEASE_EXPIRES_AT] = "lease_expires_at",
	[SOURCE_COL_STARTED_AT] = "started_at",
	[SOURCE_COL_FINISHED_AT] = "finished_at",
	[SOURCE_COL_PRIORITY] = "priority",
};

/* How deep a payload may nest: a config is written by hand. */
#define CONFIG_JSON_DEPTH 32

static const char *const config_builtin_names[] = {"noop", "sleep", "fail", NULL};

/* The methods an HTTP handler sends; POST, index 1, is http.method's
 * default. */
static const char *const config_http_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};

/* The values of the CONFIG_KEYWORD keys. */
static const struct {
	int key;
	const char *const *names;
} config_keyword_keys[] = {
	{HK_HTTP_METHOD, config_http_methods},
};

/* Headers the daemon sets on every request itself (handler_http.c): one
 * from the config as well would be sent twice or contradict the body. */
static const char *const config_http_daemon_headers[] = {
	"Content-Type", "Idempotency-Key", "X-Pgdispatch-Attempt", "Host", "Content-Length",
	"Transfer-Encoding", "Expect", NULL
};

/*
 * The handler keys that select a handler's type: each is named after a
 * type in handler.c's table and holds that type's main setting, and a
 * handler gives exactly one of them. names: the values a CONFIG_CHOICE
 * key takes.
 */
static const struct {
	int key;
	const char *const *names;
} config_type_keys[] = {
	{HK_COMMAND, NULL},
	{HK_SQL, NULL},
	{HK_BUILTIN, config_builtin_names},
	{HK_HTTP, NULL},
};
#define CONFIG_NTYPES (sizeof config_type_keys / sizeof config_type_keys[0])

/* Names of enum values, indexed by the value, for messages (log.c parses
 * the log ones; the lists must agree). */
static const char *const config_level_names[] = {
	[LOG_DEBUG] = "debug", [LOG_INFO] = "info", [LOG_WARN] = "warn", [LOG_ERROR] = "error", NULL
};
static const char *const config_format_names[] = {[LOG_TEXT] = "text", [LOG_JSON] = "json", NULL};

/* Where a key was set in the file, for duplicates and for checks made
 * after the map (or the whole file) was read. */
struct config_seen {
	bool set;
	yaml_mark_t key;
	yaml_mark_t value;
};

struct config_handler_marks {
	yaml_mark_t kind;
	struct config_seen seen[HK_COUNT];
};

struct config_source_marks {
	yaml_mark_t name;
	struct config_seen seen[RK_COUNT];
	struct config_seen columns[SOURCE_COL_COUNT];
};

/* One config_load() call: the libyaml parser and its current event. */
struct config_parser {
	yaml_parser_t yaml;
	yaml_event_t event;          /* owned; deleted before the next is read */
	const char *path;
	const unsigned char *text;   /* the whole file, borrowed */
	size_t len;
	char *err;
	size_t errlen;
	struct config_seen top[TK_COUNT];
	struct config_handler_marks *handlers;   /* parallel to cfg->handlers */
	struct config_source_marks *sources;     /* parallel to cfg->sources */
	size_t nsources;
};

/* Writes "FILE:LINE:COL: message"; libyaml's marks count from 0. Returns
 * false so that callers can fail with one statement. */
static bool config_error(struct config_parser *p, yaml_mark_t mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool
config_error(struct config_parser *p, yaml_mark_t mark, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err, p->errlen, "%s:%zu:%zu: ", p->path, mark.line + 1, mark.column + 1);

	if (n >= 0 && (size_t) n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t) n, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* The line and column of a byte offset. libyaml's reader reports bad
 * encoding by offset alone, having read ahead of the scanner's mark. */
static yaml_mark_t
config_offset_mark(struct config_parser *p, size_t offset)
{
	yaml_mark_t mark = {0, 0, 0};

	for (size_t i = 0; i < offset && i < p->len; i++) {
		unsigned char c = p->text[i];

		if (c == '\n') {
			mark.line++;
			mark.column = 0;
		} else if ((c & 0xC0) != 0x80) {   /* columns count characters, as libyaml's do */
			mark.column++;
		}
	}
	return mark;
}

/* Reads the next event into p->event, turning libyaml's errors into ours. */
static bool
config_next(struct config_parser *p)
{
	yaml_parser_t *y = &p->yaml;

	yaml_event_delete(&p->event);
	if (!yaml_parser_parse(y, &p->event)) {
		yaml_mark_t at = y->problem_mark;

		if (y->error == YAML_READER_ERROR)
			at = config_offset_mark(p, y->problem_offset);

		if (y->error == YAML_MEMORY_ERROR)
			return config_error(p, at, "out of memory");
		if (y->context != NULL)
			return config_error(p, at, "invalid yaml: %s (%s at %zu:%zu)",
			                    y->problem, y->context, y->context_mark.line + 1,
			                    y->context_mark.column + 1);
		return config_error(p, at, "invalid yaml: %s", y->problem != NULL ? y->problem : "unknown error");
	}
	/* An alias would make one value appear under several keys; the few
	 * repeated settings of a dispatcher do not need that. */
	if (p->event.type == YAML_ALIAS_EVENT)
		return config_error(p, p->event.start_mark, "*%s: aliases are not supported",
		                    (const char *) p->event.data.alias.anchor);
	return true;
}

static const char *
config_scalar(const struct config_parser *p)
{
	return (const char *) p->event.data.scalar.value;
}

/* A plain ~, null or empty scalar: YAML's null. */
static bool
config_is_null(const struct config_parser *p)
{
	const char *s = config_scalar(p);

	return p->event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
	       && (s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

static const char *
config_node_name(yaml_event_type_t type)
{
	switch (type) {
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a map";
	default:
		return "a scalar";
	}
}

/* Finds s in a NULL-terminated list of names; its index is the enum value. */
static bool
config_lookup(const char *const *names, const char *s, int *out)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], s) == 0) {
			*out = i;
			return true;
		}
	return false;
}

/* config_lookup() ignoring ASCII case. */
static bool
config_lookup_case(const char *const *names, const char *s, int *out)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strcasecmp(names[i], s) == 0) {
			*out = i;
			return true;
		}
	return false;
}

/* The values a CONFIG_CHOICE or CONFIG_KEYWORD key takes. */
static const char *const *
config_choices(const struct config_key *key)
{
	static const char *const none[] = {NULL};

	for (size_t i = 0; i < CONFIG_NTYPES; i++)
		if (key == &config_handler_keys[config_type_keys[i].key] && config_type_keys[i].names != NULL)
			return config_type_keys[i].names;
	for (size_t i = 0; i < sizeof config_keyword_keys / sizeof config_keyword_keys[0]; i++)
		if (key == &config_handler_keys[config_keyword_keys[i].key])
			return config_keyword_keys[i].names;
	return none;
}

/* What a key expects, for messages. */
static const char *
config_expect(const struct config_key *key, char *buf, size_t len)
{
	const char *const *names = NULL;
	size_t n;

	switch (key->type) {
	case CONFIG_STRING:
		return "a string";
	case CONFIG_LIST:
	case CONFIG_NAMES:
		return "a list of strings";
	case CONFIG_ENV_NAMES:
		return "a list of environment variable names";
	case CONFIG_BOOL:
		return "true or false";
	case CONFIG_INT:
	case CONFIG_INT64:
		return "an integer";
	case CONFIG_DURATION:
		return "a duration: an integer followed by ms, s, m, h or d, such as 250ms, 30s or 5m";
	case CONFIG_AGE:
		return "a duration such as 12h or 7d, or 0 or off (keep for ever)";
	case CONFIG_MAP:
	case CONFIG_HANDLERS:
	case CONFIG_SCHEDULES:
	case CONFIG_SOURCES:
	case CONFIG_SOURCE_COLUMNS:
	case CONFIG_JSON:
	case CONFIG_HEADERS:
		return "a map";
	case CONFIG_LOG_LEVEL:
		names = config_level_names;
		break;
	case CONFIG_LOG_FORMAT:
		names = config_format_names;
		break;
	case CONFIG_CHOICE:
	case CONFIG_KEYWORD:
		names = config_choices(key);
		break;
	}
	n = (size_t) snprintf(buf, len, "one of");
	for (int i = 0; names[i] != NULL && n < len; i++)
		n += (size_t) snprintf(buf + n, len - n, "%s %s", i > 0 ? "," : "", names[i]);
	return buf;
}

static const int64_t config_units[] = {CONFIG_DAY, CONFIG_HOUR, CONFIG_MIN, CONFIG_SEC, 1};
static const char *const config_unit_names[] = {"d", "h", "m", "s", "ms"};

/* 0: ok; -1: not a duration; 1: a duration too large for int64_t. */
static int
config_duration(const char *s, int64_t *ms)
{
	int64_t n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (INT64_MAX - (*p - '0')) / 10)
			n = -1;   /* overflow; the unit is still checked */
		if (n >= 0)
			n = n * 10 + (*p - '0');
	}
	for (size_t u = 0; u < sizeof config_units / sizeof config_units[0]; u++) {
		if (strcmp(p, config_unit_names[u]) != 0)
			continue;
		if (n < 0 || n > INT64_MAX / config_units[u])
			return 1;
		*ms = n * config_units[u];
		return 0;
	}
	return -1;
}

bool
config_parse_duration(const char *s, int64_t *ms)
{
	return s != NULL && config_duration(s, ms) == 0;
}

/* ms in the largest unit that divides it, the way a person would write it. */
static const char *
config_format_duration(int64_t ms, char *buf, size_t len)
{
	size_t u = 0;

	while (ms != 0 && ms % config_units[u] != 0)
		u++;
	if (ms == 0)
		u = 3;
	snprintf(buf, len, "%" PRId64 "%s", ms / config_units[u], config_unit_names[u]);
	return buf;
}

/* Integers in base 10 only: 0x10 and 010 in a config are more likely
 * mistakes than intentions. 0: ok; -1: not an integer; 1: overflow. */
static int
config_integer(const char *s, int64_t *out)
{
	char *end;

	if (!((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	if (*end != '\0')
		return -1;
	return errno == ERANGE ? 1 : 0;
}

/* Stores a number, boolean or enum value in the field key describes. */
static void
config_store(void *base, const struct config_key *key, int64_t v)
{
	char *field = (char *) base + key->offset;

	switch (key->type) {
	case CONFIG_BOOL:
		*(bool *) field = v != 0;
		break;
	case CONFIG_INT:
		*(int *) field = (int) v;
		break;
	case CONFIG_INT64:
	case CONFIG_DURATION:
	case CONFIG_AGE:
		*(int64_t *) field = v;
		break;
	case CONFIG_LOG_LEVEL:
		*(enum log_level *) field = (enum log_level) v;
		break;
	case CONFIG_LOG_FORMAT:
		*(enum log_format *) field = (enum log_format) v;
		break;
	case CONFIG_KEYWORD:
		*(const char **) field = config_choices(key)[v];
		break;
	default:
		break;
	}
}

static void
config_defaults(void *base, const struct config_key *keys, size_t nkeys)
{
	for (size_t i = 0; i < nkeys; i++)
		config_store(base, &keys[i], keys[i].def);
}

static void
config_free_list(char **list)
{
	if (list == NULL)
		return;
	for (char **s = list; *s != NULL; s++)
		free(*s);
	free(list);
}

/* An item of a list (the current event) that must not be in list[0..n-1]. */
static bool
config_once(struct config_parser *p, const char *name, char *const *list, size_t n)
{
	const char *s = config_scalar(p);

	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return config_error(p, p->event.start_mark, "%s: %.64s is listed twice", name, s);
	return true;
}

/*
 * An item of an env_passthrough list (the current event): a name as the
 * shell writes one, not yet in list[0..n-1], and not a variable the daemon
 * sets per task.
 */
static bool
config_env_name(struct config_parser *p, const char *name, char *const *list, size_t n)
{
	const char *s = config_scalar(p);

	for (const char *c = s; *c != '\0'; c++)
		if (!(*c == '_' || (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z')
		      || (c > s && *c >= '0' && *c <= '9')))
			return config_error(p, p->event.start_mark, "%s: '%.64s' is not an environment "
			                    "variable name (letters, digits and _, not starting with a digit)",
			                    name, s);
	if (strncmp(s, "PGDISPATCH_TASK_", 16) == 0)
		return config_error(p, p->event.start_mark, "%s: %.64s is set by the daemon for each task",
		                    name, s);
	return config_once(p, name, list, n);
}

/* Reads a list of non-empty strings; the current event starts it. */
static bool
config_read_list(struct config_parser *p, const struct config_key *key, const char *name,
                 char ***out)
{
	yaml_mark_t start = p->event.start_mark;
	char **list;
	size_t n = 0;

	for (;;) {
		char **grown;

		if (!config_next(p))
			return false;
		if (p->event.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (p->event.type != YAML_SCALAR_EVENT)
			return config_error(p, p->event.start_mark, "%s: item %zu is %s, expected a string",
			                    name, n + 1, config_node_name(p->event.type));
		if (config_scalar(p)[0] == '\0')
			return config_error(p, p->event.start_mark, "%s: item %zu is empty", name, n + 1);
		if (key->type == CONFIG_ENV_NAMES && !config_env_name(p, name, *out, n))
			return false;
		if (key->type == CONFIG_NAMES && !config_once(p, name, *out, n))
			return false;
		/* *out always holds what is read so far, so an error frees it. */
		grown = realloc(*out, (n + 2) * sizeof *grown);
		if (grown == NULL)
			return config_error(p, p->event.start_mark, "out of memory");
		*out = list = grown;
		list[n + 1] = NULL;
		if ((list[n] = strdup(config_scalar(p))) == NULL)
			return config_error(p, p->event.start_mark, "out of memory");
		n++;
	}
	if ((int64_t) n < key->min)
		return config_error(p, start, "%s: must not be empty", name);
	return true;
}

/* Reads the value of key, the current event, into its field. */
static bool
config_read_value(struct config_parser *p, void *base, const struct config_key *key,
                  const char *name)
{
	char *field = (char *) base + key->offset;
	yaml_mark_t at = p->event.start_mark;
	char expect[96], lo[32], hi[32];
	const char *s;
	int64_t v = 0;
	int rc = 0;
	bool list = key->type == CONFIG_LIST || key->type == CONFIG_ENV_NAMES || key->type == CONFIG_NAMES;

	if (list && p->event.type == YAML_SEQUENCE_START_EVENT)
		return config_read_list(p, key, name, (char ***) field);
	if (list || p->event.type != YAML_SCALAR_EVENT)
		return config_error(p, at, "%s: expected %s, got %s", name,
		                    config_expect(key, expect, sizeof expect),
		                    config_node_name(p->event.type));
	s = config_scalar(p);
	if (strlen(s) != p->event.data.scalar.length)
		return config_error(p, at, "%s: contains a NUL character", name);

	switch (key->type) {
	case CONFIG_STRING:
		if (s[0] == '\0' || config_is_null(p))
			return key->min > 0 ? config_error(p, at, "%s: must not be empty", name) : true;
		if ((*(char **) field = strdup(s)) == NULL)
			return config_error(p, at, "out of memory");
		return true;
	case CONFIG_BOOL:
		if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
			v = 1;
		else if (strcmp(s, "false") != 0 && strcmp(s, "False") != 0 && strcmp(s, "FALSE") != 0)
			rc = -1;
		break;
	case CONFIG_INT:
	case CONFIG_INT64:
		rc = config_integer(s, &v);
		break;
	case CONFIG_DURATION:
		rc = config_duration(s, &v);
		break;
	case CONFIG_AGE:
		rc = config_duration(s, &v);
		/* Off (0, 0d, off) is no age at all, not one below the least. */
		if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0 || (rc == 0 && v == 0)) {
			config_store(base, key, 0);
			return true;
		}
		break;
	case CONFIG_LOG_LEVEL: {
		enum log_level level;

		rc = log_level_parse(s, &level) ? 0 : -1;
		v = level;
		break;
	}
	case CONFIG_LOG_FORMAT: {
		enum log_format format;

		rc = log_format_parse(s, &format) ? 0 : -1;
		v = format;
		break;
	}
	case CONFIG_CHOICE: {
		int i;

		if (!config_lookup(config_choices(key), s, &i)) {
			rc = -1;
			break;
		}
		if ((*(char **) field = strdup(s)) == NULL)
			return config_error(p, at, "out of memory");
		return true;
	}
	case CONFIG_KEYWORD: {
		int i = 0;

		rc = config_lookup(config_choices(key), s, &i) ? 0 : -1;
		v = i;
		break;
	}
	default:
		break;
	}
	if (rc < 0)
		return config_error(p, at, "%s: '%.64s' is not %s", name, s,
		                    config_expect(key, expect, sizeof expect));
	/* Bools and enums have no bounds: min == max. */
	if (key->min < key->max && (rc > 0 || v < key->min || v > key->max)) {
		if (key->type == CONFIG_DURATION || key->type == CONFIG_AGE) {
			config_format_duration(key->min, lo, sizeof lo);
			config_format_duration(key->max, hi, sizeof hi);
		} else {
			snprintf(lo, sizeof lo, "%" PRId64, key->min);
			snprintf(hi, sizeof hi, "%" PRId64, key->max);
		}
		return config_error(p, at, "%s: %.64s is out of range (%s..%s)", name, s, lo, hi);
	}
	config_store(base, key, v);
	return true;
}

static bool config_read_handlers(struct config_parser *p, struct config *cfg);
static bool config_read_schedules(struct config_parser *p, struct config *cfg);
static bool config_read_sources(struct config_parser *p, struct config *cfg);
static bool config_read_source_columns(struct config_parser *p, struct source_config *sc, const char *scope);
static bool config_read_json(struct config_parser *p, char **out, const char *name);
static bool config_read_headers(struct config_parser *p, char ***out, const char *name);

/*
 * For an unknown key: the nested key of that name in another section,
 * such as url written beside http: rather than in it, as " (did you mean
 * http.url?)"; "" when there is none.
 */
static const char *
config_hint(const struct config_key *keys, size_t nkeys, const char *section, const char *key, char *buf,
            size_t len)
{
	size_t slen = strlen(section);

	buf[0] = '\0';
	if (strchr(key, '.') != NULL)
		return buf;
	for (size_t i = 0; i < nkeys; i++) {
		const char *dot = strrchr(keys[i].name, '.');

		if (dot == NULL || strcmp(dot + 1, key) != 0
		    || ((size_t) (dot - keys[i].name) == slen && strncmp(keys[i].name, section, slen) == 0))
			continue;
		snprintf(buf, len, " (did you mean %s?)", keys[i].name);
		break;
	}
	return buf;
}

/*
 * Reads a map whose MAPPING_START is the current event. section is the
 * table prefix of its keys ("" or "backoff"); scope prefixes the key names
 * in messages ("" or "handlers.KIND").
 */
static bool
config_read_map(struct config_parser *p, void *base, const struct config_key *keys, size_t nkeys,
                struct config_seen *seen, const char *section, const char *scope)
{
	char where[256];

	snprintf(where, sizeof where, "%s%s%s", scope, scope[0] != '\0' && section[0] != '\0' ? "." : "",
	         section);
	for (;;) {
		char key[128], name[384], hint[160];
		yaml_mark_t at;
		size_t i;

		if (!config_next(p))
			return false;
		if (p->event.type == YAML_MAPPING_END_EVENT)
			return true;
		at = p->event.start_mark;
		if (p->event.type != YAML_SCALAR_EVENT)
			return config_error(p, at, "%s%sexpected a key, got %s", where,
			                    where[0] != '\0' ? ": " : "", config_node_name(p->event.type));
		snprintf(key, sizeof key, "%s%s%s", section, section[0] != '\0' ? "." : "", config_scalar(p));
		snprintf(name, sizeof name, "%s%s%s", where, where[0] != '\0' ? "." : "", config_scalar(p));
		for (i = 0; i < nkeys; i++)
			if (strcmp(keys[i].name, key) == 0)
				break;
		/* A dotted key ("log.level: x") would find a nested entry. */
		if (i == nkeys || strchr(config_scalar(p), '.') != NULL)
			return config_error(p, at, "%s: unknown key%s", name,
			                    config_hint(keys, nkeys, section, config_scalar(p), hint, sizeof hint));
		if (seen[i].set)
			return config_error(p, at, "%s: duplicate key (first at line %zu)", name,
			                    seen[i].key.line + 1);
		if (!config_next(p))
			return false;
		seen[i] = (struct config_seen) {true, at, p->event.start_mark};

		if (keys[i].type == CONFIG_MAP || keys[i].type == CONFIG_HANDLERS
		    || keys[i].type == CONFIG_SCHEDULES || keys[i].type == CONFIG_SOURCES
		    || keys[i].type == CONFIG_SOURCE_COLUMNS || keys[i].type == CONFIG_JSON
		    || keys[i].type == CONFIG_HEADERS) {
			char expect[96];

			if (p->event.type != YAML_MAPPING_START_EVENT)
				return config_error(p, p->event.start_mark, "%s: expected %s, got %s", name,
				                    config_expect(&keys[i], expect, sizeof expect),
				                    config_node_name(p->event.type));
			if (keys[i].type == CONFIG_HANDLERS) {
				if (!config_read_handlers(p, base))
					return false;
			} else if (keys[i].type == CONFIG_SCHEDULES) {
				if (!config_read_schedules(p, base))
					return false;
			} else if (keys[i].type == CONFIG_SOURCES) {
				if (!config_read_sources(p, base))
					return false;
			} else if (keys[i].type == CONFIG_SOURCE_COLUMNS) {
				if (!config_read_source_columns(p, base, name))
					return false;
			} else if (keys[i].type == CONFIG_JSON) {
				if (!config_read_json(p, (char **) ((char *) base + keys[i].offset), name))
					return false;
			} else if (keys[i].type == CONFIG_HEADERS) {
				if (!config_read_headers(p, (char ***) ((char *) base + keys[i].offset), name))
					return false;
			} else if (!config_read_map(p, base, keys, nkeys, seen, key, scope)) {
				return false;
			}
		} else if (!config_read_value(p, base, &keys[i], name)) {
			return false;
		}
	}
}

/* The names of the keys that select a handler's type, for messages:
 * "command, sql or builtin" (conj " or "). */
static const char *
config_type_names(const char *conj, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < CONFIG_NTYPES && n < len; i++)
		n += (size_t) snprintf(buf + n, len - n, "%s%s", i == 0 ? "" : i + 1 == CONFIG_NTYPES ? conj : ", ",
		                       config_handler_keys[config_type_keys[i].key].name);
	return buf;
}

/* Sets h->type from the one key naming a handler type that was given. */
static bool
config_handler_type(struct config_parser *p, struct handler_config *h,
                    const struct config_handler_marks *m)
{
	const struct config_seen *last = NULL;
	int given = 0;
	char names[128];

	for (size_t i = 0; i < CONFIG_NTYPES; i++) {
		const struct config_seen *s = &m->seen[config_type_keys[i].key];

		if (!s->set)
			continue;
		/* Of two, report the later: the first one read as intended. */
		if (last == NULL || s->key.index > last->key.index)
			last = s;
		h->type = config_handler_keys[config_type_keys[i].key].name;
		given++;
	}
	if (given == 0)
		return config_error(p, m->kind, "handlers.%s: needs one of %s", h->kind,
		                    config_type_names(" or ", names, sizeof names));
	if (given > 1)
		return config_error(p, last->key, "handlers.%s: has more than one of %s (give one)", h->kind,
		                    config_type_names(" and ", names, sizeof names));
	return true;
}

/*
 * The start of one entry of a named map (handlers, schedules): its name,
 * the current event after this. Returns 1 for an entry, 0 at the map's
 * end, -1 after an error (section names the map, what its keys).
 */
static int
config_entry_name(struct config_parser *p, const char *section, const char *what)
{
	if (!config_next(p))
		return -1;
	if (p->event.type == YAML_MAPPING_END_EVENT)
		return 0;
	if (p->event.type != YAML_SCALAR_EVENT || config_scalar(p)[0] == '\0') {
		config_error(p, p->event.start_mark, "%s: expected %s, got %s", section, what,
		             p->event.type == YAML_SCALAR_EVENT ? "an empty string" : config_node_name(p->event.type));
		return -1;
	}
	return 1;
}

/* The entry's value, which must be a map of settings (noun says of what). */
static bool
config_entry_map(struct config_parser *p, const char *scope, const char *noun)
{
	if (!config_next(p))
		return false;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return config_error(p, p->event.start_mark, "%s: expected a map of %s settings, got %s", scope, noun,
		                    config_node_name(p->event.type));
	return true;
}

/*
 * base (an array of n elements of size bytes) grown by one zeroed element,
 * or NULL after saying so at at. Entries of the handlers, schedules and
 * sources maps are grown one at a time: a config has few of each.
 */
static void *
config_grow(struct config_parser *p, yaml_mark_t at, void *base, size_t n, size_t size)
{
	char *grown = realloc(base, (n + 1) * size);

	if (grown == NULL) {
		config_error(p, at, "out of memory");
		return NULL;
	}
	memset(grown + n * size, 0, size);
	return grown;
}

/* Handler key k's template (http.url, with url set, or
 * http.idempotency_key), when given, parsed into *tpl. */
static bool
config_template(struct config_parser *p, const struct handler_config *h, int k, bool url,
                const struct config_seen *seen, struct http_template **tpl)
{
	const char *s = *(char *const *) ((const char *) h + config_handler_keys[k].offset);
	char why[256];

	if (s == NULL)
		return true;
	if ((*tpl = http_template_parse(s, url, why, sizeof why)) == NULL)
		return config_error(p, seen[k].value, "handlers.%s.%s: %s", h->kind, config_handler_keys[k].name, why);
	return true;
}

/* Why path cannot be read as a file, or NULL when it can. Opened without
 * blocking, so a FIFO named by mistake does not hang the load. */
static const char *
config_unreadable(const char *path)
{
	struct stat st;
	const char *why = NULL;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return strerror(errno);
	if (fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (S_ISDIR(st.st_mode))
		why = strerror(EISDIR);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	close(fd);
	return why;
}

/*
 * What an http handler needs once its map is read: a url, templates that
 * parse, a CA file it can read (a typo there would otherwise fail every
 * request), and no env_passthrough, which is for a program's environment:
 * an http handler runs none, and a token meant for the server belongs in
 * a header as ${VAR}.
 */
static bool
config_check_http(struct config_parser *p, struct handler_config *h, const struct config_seen *seen)
{
	const char *why;

	if (strcmp(h->type, config_handler_keys[HK_HTTP].name) != 0)
		return true;
	if (h->http_url == NULL)
		return config_error(p, seen[HK_HTTP].key, "handlers.%s.http: needs url (such as "
		                    "https://api.example.com/tasks/{id})", h->kind);
	if (!config_template(p, h, HK_HTTP_URL, true, seen, &h->http_url_tpl)
	    || !config_template(p, h, HK_HTTP_IDEMPOTENCY_KEY, false, seen, &h->http_idempotency_tpl))
		return false;
	if (h->http_ca_file != NULL && (why = config_unreadable(h->http_ca_file)) != NULL)
		return config_error(p, seen[HK_HTTP_CA_FILE].value, "handlers.%s.http.ca_file: %.128s: %s", h->kind,
		                    h->http_ca_file, why);
	if (seen[HK_ENV_PASSTHROUGH].set)
		return config_error(p, seen[HK_ENV_PASSTHROUGH].key, "handlers.%s.env_passthrough: an http handler "
		                    "runs no program (pass a secret as a header: ${VAR})", h->kind);
	return true;
}

/* A breaker needs its threshold; the longest open time cannot be below
 * the first, and rises to it when left at its default. */
static bool
config_check_breaker(struct config_parser *p, struct handler_config *h, const struct config_seen *seen)
{
	char a[32], b[32];

	if (seen[HK_BREAKER].set && !seen[HK_BREAKER_FAILURES].set)
		return config_error(p, seen[HK_BREAKER].key, "handlers.%s.breaker: needs failures (how many "
		                    "failures within window open it)", h->kind);
	if (h->breaker_open_max_ms >= h->breaker_open_for_ms)
		return true;
	if (!seen[HK_BREAKER_OPEN_MAX].set) {
		h->breaker_open_max_ms = h->breaker_open_for_ms;
		return true;
	}
	config_format_duration(h->breaker_open_max_ms, a, sizeof a);
	config_format_duration(h->breaker_open_for_ms, b, sizeof b);
	return config_error(p, seen[HK_BREAKER_OPEN_MAX].value, "handlers.%s.breaker.open_max: %s is less than "
	                    "breaker.open_for (%s)", h->kind, a, b);
}

/* Reads the handlers map (its MAPPING_START is the current event). */
static bool
config_read_handlers(struct config_parser *p, struct config *cfg)
{
	for (;;) {
		struct handler_config *h;
		struct config_handler_marks *m;
		char scope[160];
		yaml_mark_t at;
		size_t n = cfg->nhandlers;
		int entry = config_entry_name(p, "handlers", "a task kind");

		if (entry <= 0)
			return entry == 0;
		at = p->event.start_mark;
		for (size_t i = 0; i < n; i++)
			if (strcmp(cfg->handlers[i].kind, config_scalar(p)) == 0)
				return config_error(p, at, "handlers.%s: duplicate key (first at line %zu)",
				                    config_scalar(p), p->handlers[i].kind.line + 1);

		/* nhandlers counts only a handler already zeroed, so
		 * config_free() can always run. */
		if ((h = config_grow(p, at, cfg->handlers, n, sizeof *h)) == NULL)
			return false;
		cfg->handlers = h;
		if ((m = config_grow(p, at, p->handlers, n, sizeof *m)) == NULL)
			return false;
		p->handlers = m;
		h = &cfg->handlers[n];
		m = &p->handlers[n];
		cfg->nhandlers++;
		m->kind = at;
		config_defaults(h, config_handler_keys, HK_COUNT);
		if ((h->kind = strdup(config_scalar(p))) == NULL)
			return config_error(p, at, "out of memory");
		snprintf(scope, sizeof scope, "handlers.%s", h->kind);

		if (!config_entry_map(p, scope, "handler")
		    || !config_read_map(p, h, config_handler_keys, HK_COUNT, m->seen, "", scope)
		    || !config_handler_type(p, h, m) || !config_check_http(p, h, m->seen)
		    || !config_check_breaker(p, h, m->seen))
			return false;
	}
}

/* --- schedules ---------------------------------------------------------- */

/* A plain scalar YAML reads as a boolean, null or number keeps that type
 * in JSON; anything else, and every quoted scalar, is a string. */
static void
config_json_scalar(struct config_parser *p, struct json_buf *b)
{
	const char *s = config_scalar(p);
	size_t n = p->event.data.scalar.length;
	bool plain = p->event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

	if (plain && config_is_null(p))
		json_buf_append(b, "null", 4);
	else if (plain && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0))
		json_buf_append(b, "true", 4);
	else if (plain && (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0))
		json_buf_append(b, "false", 5);
	else if (plain && ((s[0] >= '0' && s[0] <= '9') || s[0] == '-') && json_valid(s, n))
		json_buf_append(b, s, n);
	else
		json_append_string(b, s, n);
}

/* The node that starts at the current event, as JSON. */
static bool
config_json_node(struct config_parser *p, struct json_buf *b, const char *name, int depth)
{
	yaml_event_type_t end;
	bool map;

	if (p->event.type == YAML_SCALAR_EVENT) {
		config_json_scalar(p, b);
		return true;
	}
	if (depth >= CONFIG_JSON_DEPTH)
		return config_error(p, p->event.start_mark, "%s: nested more than %d deep", name, CONFIG_JSON_DEPTH);
	map = p->event.type == YAML_MAPPING_START_EVENT;
	end = map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
	json_buf_append(b, map ? "{" : "[", 1);
	for (size_t i = 0;; i++) {
		if (!config_next(p))
			return false;
		if (p->event.type == end)
			break;
		if (i > 0)
			json_buf_append(b, ",", 1);
		if (map) {
			if (p->event.type != YAML_SCALAR_EVENT)
				return config_error(p, p->event.start_mark, "%s: expected a key, got %s", name,
				                    config_node_name(p->event.type));
			json_append_string(b, config_scalar(p), p->event.data.scalar.length);
			json_buf_append(b, ":", 1);
			if (!config_next(p))
				return false;
		}
		if (!config_json_node(p, b, name, depth + 1))
			return false;
	}
	json_buf_append(b, map ? "}" : "]", 1);
	return true;
}

/* Reads a map (its MAPPING_START is the current event) into *out as a
 * JSON object's text. */
static bool
config_read_json(struct config_parser *p, char **out, const char *name)
{
	struct json_buf b = {0};

	if (!config_json_node(p, &b, name, 0)) {
		json_buf_free(&b);
		return false;
	}
	*out = b.data;
	return true;
}

/* --- http headers ------------------------------------------------------- */

/* An HTTP token (RFC 9110 5.6.2): what a header name is made of. */
static bool
config_http_token(const char *s)
{
	if (s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
		      || strchr("!#$%&'*+-.^_`|~", *s) != NULL))
			return false;
	return true;
}

/* The first ${NAME} in v (which secrets_expand() took) whose value holds a
 * line break: the message names the variable to fix, never its value. */
static void
config_break_var(const char *v, char *var, size_t len)
{
	snprintf(var, len, "?");
	for (const char *c = v; *c != '\0'; c++) {
		const char *value;
		size_t n;

		if (c[0] == '$' && c[1] == '$') {
			c++;
			continue;
		}
		if (c[0] != '$' || c[1] != '{')
			continue;
		n = strcspn(c + 2, "}");
		snprintf(var, len, "%.*s", (int) n, c + 2);
		value = getenv(var);
		if (value != NULL && strpbrk(value, "\r\n") != NULL)
			return;
		c += n + 2;
	}
}

/*
 * One header's value (the current event) for "Name: value": a string with
 * ${VAR} expanded. CR and LF would end the header and start another, so
 * they are refused as written and as expanded. Values are secrets: no
 * message quotes one.
 */
static char *
config_header_value(struct config_parser *p, const char *name)
{
	yaml_mark_t at = p->event.start_mark;
	const char *v;
	char why[256], var[160];
	char *out;

	if (p->event.type != YAML_SCALAR_EVENT) {
		config_error(p, at, "%s: expected a string, got %s", name, config_node_name(p->event.type));
		return NULL;
	}
	v = config_scalar(p);
	if (strlen(v) != p->event.data.scalar.length) {
		config_error(p, at, "%s: contains a NUL character", name);
		return NULL;
	}
	if (v[0] == '\0' || config_is_null(p)) {
		config_error(p, at, "%s: must not be empty", name);
		return NULL;
	}
	if (strpbrk(v, "\r\n") != NULL) {
		config_error(p, at, "%s: contains a line break", name);
		return NULL;
	}
	if ((out = secrets_expand(v, why, sizeof why)) == NULL) {
		config_error(p, at, "%s: %s", name, why);
		return NULL;
	}
	if (strpbrk(out, "\r\n") != NULL) {
		config_break_var(v, var, sizeof var);
		config_error(p, at, "%s: the value of ${%s} contains a line break", name, var);
	} else if (out[strspn(out, " \t")] == '\0') {
		/* libcurl drops a header with nothing after its colon. */
		config_error(p, at, "%s: empty once ${VAR} are expanded (a header needs a value)", name);
	} else {
		return out;
	}
	free(out);
	return NULL;
}

/* An http handler's headers map (its MAPPING_START is the current event):
 * names that are tokens, once each (ignoring case, as HTTP does), none
 * that the daemon sets itself. */
static bool
config_read_headers(struct config_parser *p, char ***out, const char *scope)
{
	size_t n = 0, *lines = NULL;   /* lines[i]: where (*out)[i] was written */
	bool ok = false;

	for (;;) {
		struct json_buf header = {0};
		char name[512], *value, **grown;
		const char *h;
		size_t *grown_lines, len;
		yaml_mark_t at;
		int daemon;

		if (!config_next(p))
			goto done;
		if (p->event.type == YAML_MAPPING_END_EVENT)
			break;
		at = p->event.start_mark;
		if (p->event.type != YAML_SCALAR_EVENT) {
			config_error(p, at, "%s: expected a header name, got %s", scope, config_node_name(p->event.type));
			goto done;
		}
		h = config_scalar(p);
		len = strlen(h);
		snprintf(name, sizeof name, "%s.%.100s", scope, h);
		if (!config_http_token(h) || len != p->event.data.scalar.length) {
			config_error(p, at, "%s: '%.64s' is not a header name (letters, digits and "
			             "!#$%%&'*+-.^_`|~)", scope, h);
			goto done;
		}
		if (config_lookup_case(config_http_daemon_headers, h, &daemon)) {
			config_error(p, at, "%s: set by the daemon on every request (not configurable)", name);
			goto done;
		}
		for (size_t i = 0; i < n; i++)
			if (strncasecmp((*out)[i], h, len) == 0 && (*out)[i][len] == ':') {
				config_error(p, at, "%s: duplicate header (first at line %zu; header names ignore case)",
				             name, lines[i] + 1);
				goto done;
			}
		json_buf_append(&header, h, len);
		json_buf_append(&header, ": ", 2);
		if (!config_next(p) || (value = config_header_value(p, name)) == NULL) {
			json_buf_free(&header);
			goto done;
		}
		json_buf_append(&header, value, strlen(value));
		free(value);
		/* *out always holds what is read so far, so an error frees it. */
		grown = realloc(*out, (n + 2) * sizeof *grown);
		grown_lines = grown != NULL ? realloc(lines, (n + 1) * sizeof *lines) : NULL;
		if (grown != NULL) {
			*out = grown;
			grown[n] = NULL;
		}
		if (grown_lines != NULL)
			lines = grown_lines;
		if (grown == NULL || grown_lines == NULL) {
			json_buf_free(&header);
			config_error(p, at, "out of memory");
			goto done;
		}
		lines[n] = at.line;
		grown[n++] = header.data;
		grown[n] = NULL;
	}
	ok = true;
done:
	free(lines);
	return ok;
}

/* What a schedule needs once its map is read: cron and kind, an
 * expression that parses and matches some day, a zone that exists. */
static bool
config_check_schedule(struct config_parser *p, struct schedule_config *s, yaml_mark_t at,
                      const struct config_seen *seen)
{
	char err[256];
	time_t next;

	if (s->cron == NULL)
		return config_error(p, at, "schedules.%s: needs cron (such as \"0 3 * * *\")", s->name);
	if (s->kind == NULL)
		return config_error(p, at, "schedules.%s: needs kind (the task kind each tick enqueues)", s->name);
	if (!cron_parse(s->cron, &s->spec, err, sizeof err))
		return config_error(p, seen[SK_CRON].value, "schedules.%s.cron: %s", s->name, err);
	if (!cron_next(&s->spec, NULL, 0, &next))
		return config_error(p, seen[SK_CRON].value, "schedules.%s.cron: '%.64s' never matches a day",
		                    s->name, s->cron);
	if (s->timezone != NULL && !cron_tz_valid(s->timezone))
		return config_error(p, seen[SK_TIMEZONE].value, "schedules.%s.timezone: '%.64s' is not a time zone "
		                    "of the tz database (such as Europe/Berlin, or UTC)", s->name, s->timezone);
	if (s->queue == NULL && (s->queue = strdup("default")) == NULL)
		return config_error(p, at, "out of memory");
	if (s->payload == NULL && (s->payload = strdup("{}")) == NULL)
		return config_error(p, at, "out of memory");
	return true;
}

/* Reads the schedules map (its MAPPING_START is the current event). */
static bool
config_read_schedules(struct config_parser *p, struct config *cfg)
{
	for (;;) {
		struct config_seen seen[SK_COUNT];
		struct schedule_config *s;
		char scope[160];
		yaml_mark_t at;
		size_t n = cfg->nschedules;
		int entry = config_entry_name(p, "schedules", "a schedule name");

		if (entry <= 0)
			return entry == 0;
		at = p->event.start_mark;
		for (size_t i = 0; i < n; i++)
			if (strcmp(cfg->schedules[i].name, config_scalar(p)) == 0)
				return config_error(p, at, "schedules.%.64s: duplicate key", config_scalar(p));

		/* nschedules counts only a schedule already zeroed, so
		 * config_free() can always run. */
		if ((s = config_grow(p, at, cfg->schedules, n, sizeof *s)) == NULL)
			return false;
		cfg->schedules = s;
		s = &cfg->schedules[n];
		memset(seen, 0, sizeof seen);
		cfg->nschedules++;
		config_defaults(s, config_schedule_keys, SK_COUNT);
		if ((s->name = strdup(config_scalar(p))) == NULL)
			return config_error(p, at, "out of memory");
		snprintf(scope, sizeof scope, "schedules.%s", s->name);

		if (!config_entry_map(p, scope, "schedule")
		    || !config_read_map(p, s, config_schedule_keys, SK_COUNT, seen, "", scope)
		    || !config_check_schedule(p, s, at, seen))
			return false;
	}
}

/* --- sources ------------------------------------------------------------ */

/*
 * A source's columns map (its MAPPING_START is the current event): each
 * key one of config_source_columns[], its value the name of the table's
 * column that holds that state. Read here rather than through a table of
 * keys because an unknown key is likely a state the daemon does not keep,
 * and its message lists the ones it does.
 */
static bool
config_read_source_columns(struct config_parser *p, struct source_config *sc, const char *scope)
{
	struct config_seen *seen = p->sources[p->nsources - 1].columns;

	for (;;) {
		char name[512], allowed[256];
		struct config_key key = {NULL, CONFIG_STRING, 0, 0, 1, 0};
		yaml_mark_t at;
		size_t n = 0;
		int c;

		if (!config_next(p))
			return false;
		if (p->event.type == YAML_MAPPING_END_EVENT)
			return true;
		at = p->event.start_mark;
		if (p->event.type != YAML_SCALAR_EVENT)
			return config_error(p, at, "%s: expected a key, got %s", scope, config_node_name(p->event.type));
		snprintf(name, sizeof name, "%s.%.100s", scope, config_scalar(p));
		for (c = 0; c < SOURCE_COL_COUNT; c++)
			if (strcmp(config_source_columns[c], config_scalar(p)) == 0)
				break;
		if (c == SOURCE_COL_COUNT) {
			for (int i = 0; i < SOURCE_COL_COUNT && n < sizeof allowed; i++)
				n += (size_t) snprintf(allowed + n, sizeof allowed - n, "%s%s", i > 0 ? ", " : "",
				                       config_source_columns[i]);
			return config_error(p, at, "%s: unknown key (the columns the daemon can keep: %s)", name,
			                    allowed);
		}
		if (seen[c].set)
			return config_error(p, at, "%s: duplicate key (first at line %zu)", name, seen[c].key.line + 1);
		if (!config_next(p))
			return false;
		seen[c] = (struct config_seen) {true, at, p->event.start_mark};
		key.name = config_source_columns[c];
		key.offset = offsetof(struct source_config, columns) + (size_t) c * sizeof sc->columns[0];
		if (!config_read_value(p, sc, &key, name))
			return false;
	}
}

/* Whether a table name has a '.' outside double quotes: schema.table.
 * parse_ident() does the rest when source_check.c resolves it. */
static bool
config_has_schema(const char *table)
{
	bool quoted = false;

	for (const char *c = table; *c != '\0'; c++) {
		if (*c == '"')
			quoted = !quoted;   /* a doubled "" inside quotes flips twice */
		else if (*c == '.' && !quoted)
			return true;
	}
	return false;
}

/*
 * The status column, the key and the mapped columns must be different
 * columns: the daemon writes each mapped column for its own state, and
 * an UPDATE that set one column twice would fail on every row.
 */
static bool
config_check_source_columns(struct config_parser *p, const struct source_config *sc,
                            const struct config_source_marks *m)
{
	const char *names[2 + SOURCE_COL_COUNT];
	const char *keys[2 + SOURCE_COL_COUNT];
	const struct config_seen *seen[2 + SOURCE_COL_COUNT];
	size_t n = 0;

	names[n] = sc->status_column, keys[n] = "status.column", seen[n++] = &m->seen[RK_STATUS_COLUMN];
	names[n] = sc->key, keys[n] = "key", seen[n++] = &m->seen[RK_KEY];
	for (int c = 0; c < SOURCE_COL_COUNT; c++) {
		names[n] = sc->columns[c];
		keys[n] = config_source_columns[c];
		seen[n++] = &m->columns[c];
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			const struct config_seen *later;

			if (i == j || names[i] == NULL || names[j] == NULL || strcmp(names[i], names[j]) != 0)
				continue;
			/* Report the one further down the file, once. */
			if (seen[j]->value.index < seen[i]->value.index)
				continue;
			later = seen[j];
			return config_error(p, later->value, "sources.%s.%s%s: '%.64s' is also %s%s (a column holds "
			                    "one thing)", sc->name, j >= 2 ? "columns." : "", keys[j], names[j],
			                    i >= 2 ? "columns." : "", keys[i]);
		}
	return true;
}

/* What a source needs once its map is read: the table as schema.table,
 * the status column, four distinct status values, a channel of its own. */
static bool
config_check_source(struct config_parser *p, struct source_config *sc, const struct config_source_marks *m)
{
	const struct config_seen *seen = m->seen;

	if (sc->table == NULL)
		return config_error(p, m->name, "sources.%s: needs table (schema.table, such as "
		                    "public.configuration_update)", sc->name);
	if (sc->status_column == NULL)
		return config_error(p, m->name, "sources.%s: needs status.column (the enum or text column "
		                    "that holds each row's state)", sc->name);
	if (!config_has_schema(sc->table))
		return config_error(p, seen[RK_TABLE].value, "sources.%s.table: '%.64s' is not schema.table "
		                    "(name the schema too, such as public.%.64s)", sc->name, sc->table, sc->table);
	for (int i = 0; i < SOURCE_STATE_COUNT; i++)
		if (sc->status[i] == NULL && (sc->status[i] = strdup(config_source_state_defaults[i])) == NULL)
			return config_error(p, m->name, "out of memory");
	for (int i = 0; i < SOURCE_STATE_COUNT; i++)
		for (int j = 0; j < i; j++) {
			const struct config_seen *a = &seen[config_source_state_keys[j]];
			const struct config_seen *b = &seen[config_source_state_keys[i]];
			/* Of two, the one further down the file (a default counts as
			 * written where the source starts). */
			bool later_b = !a->set || (b->set && b->value.index > a->value.index);
			int at = later_b ? i : j, other = later_b ? j : i;

			if (strcmp(sc->status[i], sc->status[j]) != 0)
				continue;
			return config_error(p, seen[config_source_state_keys[at]].set
			                    ? seen[config_source_state_keys[at]].value : m->name,
			                    "sources.%s.%s: '%.64s' is also %s (each state needs a value of its own)",
			                    sc->name, config_source_keys[config_source_state_keys[at]].name,
			                    sc->status[at], config_source_keys[config_source_state_keys[other]].name);
		}
	if (sc->channel != NULL && strncmp(sc->channel, "dispatch_", 9) == 0)
		return config_error(p, seen[RK_CHANNEL].value, "sources.%s.channel: '%.64s': channels starting with "
		                    "dispatch_ are pgdispatch's own", sc->name, sc->channel);
	/* payload: row is the default, spelled out. */
	if (sc->payload != NULL && strcmp(sc->payload, "row") == 0) {
		free(sc->payload);
		sc->payload = NULL;
	}
	return config_check_source_columns(p, sc, m);
}

/* Reads the sources map (its MAPPING_START is the current event). */
static bool
config_read_sources(struct config_parser *p, struct config *cfg)
{
	for (;;) {
		struct source_config *sc;
		struct config_source_marks *m;
		char scope[160];
		yaml_mark_t at;
		size_t n = cfg->nsources;
		int entry = config_entry_name(p, "sources", "a source name");

		if (entry <= 0)
			return entry == 0;
		at = p->event.start_mark;
		for (size_t i = 0; i < n; i++)
			if (strcmp(cfg->sources[i].name, config_scalar(p)) == 0)
				return config_error(p, at, "sources.%.64s: duplicate key (first at line %zu)",
				                    config_scalar(p), p->sources[i].name.line + 1);

		/* nsources counts only a source already zeroed, so config_free()
		 * can always run; p->nsources follows it. */
		if ((sc = config_grow(p, at, cfg->sources, n, sizeof *sc)) == NULL)
			return false;
		cfg->sources = sc;
		if ((m = config_grow(p, at, p->sources, n, sizeof *m)) == NULL)
			return false;
		p->sources = m;
		sc = &cfg->sources[n];
		m = &p->sources[n];
		cfg->nsources++;
		p->nsources = cfg->nsources;
		m->name = at;
		if ((sc->name = strdup(config_scalar(p))) == NULL)
			return config_error(p, at, "out of memory");
		snprintf(scope, sizeof scope, "sources.%s", sc->name);

		if (!config_entry_map(p, scope, "source")
		    || !config_read_map(p, sc, config_source_keys, RK_COUNT, m->seen, "", scope)
		    || !config_check_source(p, sc, m))
			return false;
	}
}

/* A source's rows are run by the handler of its name; without one every
 * row would fail, so it is an error here rather than at the first row. */
static bool
config_check_source_handlers(struct config_parser *p, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nsources; i++) {
		const char *name = cfg->sources[i].name;

		if (config_handler(cfg, name) == NULL)
			return config_error(p, p->sources[i].name, "sources.%s: no handler named %s; add handlers.%s",
			                    name, name, name);
	}
	return true;
}

/* The stream must hold one document whose top level is a map. */
static bool
config_read_file(struct config_parser *p, struct config *cfg)
{
	if (!config_next(p) || !config_next(p))   /* STREAM_START, then the document */
		return false;
	if (p->event.type == YAML_STREAM_END_EVENT)
		return config_error(p, p->event.start_mark, "the file is empty, expected a map of "
		                    "settings (write {} for all defaults)");
	if (!config_next(p))
		return false;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return config_error(p, p->event.start_mark, "expected a map of settings at the top "
		                    "level, got %s", config_node_name(p->event.type));
	if (!config_read_map(p, cfg, config_top_keys, TK_COUNT, p->top, "", ""))
		return false;
	if (!config_next(p) || !config_next(p))   /* DOCUMENT_END, then STREAM_END */
		return false;
	if (p->event.type != YAML_STREAM_END_EVENT)
		return config_error(p, p->event.start_mark, "expected one yaml document, found a second");
	return true;
}

/* backoff.max below backoff.initial, reported where the file set one. */
static bool
config_check_backoff(struct config_parser *p, const char *scope, int64_t initial, int64_t max,
                     const struct config_seen *initial_seen, const struct config_seen *max_seen)
{
	char a[32], b[32];

	if (max >= initial)
		return true;
	config_format_duration(initial, a, sizeof a);
	config_format_duration(max, b, sizeof b);
	if (max_seen->set)
		return config_error(p, max_seen->value, "%sbackoff.max: %s is less than backoff.initial (%s)",
		                    scope, b, a);
	return config_error(p, initial_seen->value, "%sbackoff.initial: %s is more than backoff.max (%s)",
	                    scope, a, b);
}

/* A list that was given as [] is empty, not absent: NULL would mean "not
 * set" (the default, or the top level's list) to its users. */
static bool
config_empty_list(struct config_parser *p, char ***list, const struct config_seen *seen)
{
	if (*list != NULL || !seen->set)
		return true;
	if ((*list = calloc(1, sizeof **list)) == NULL)
		return config_error(p, seen->value, "out of memory");
	return true;
}

/* The default env_passthrough, when the file gives none. */
static bool
config_env_default(struct config_parser *p, struct config *cfg)
{
	static const char *const names[] = {CONFIG_ENV_DEFAULT};
	size_t n = sizeof names / sizeof names[0];

	if ((cfg->env_passthrough = calloc(n + 1, sizeof *cfg->env_passthrough)) == NULL)
		return config_error(p, p->event.start_mark, "out of memory");
	for (size_t i = 0; i < n; i++)
		if ((cfg->env_passthrough[i] = strdup(names[i])) == NULL)
			return config_error(p, p->event.start_mark, "out of memory");
	return true;
}

/*
 * user and group must exist on this host: a typo is a config error with
 * its line, not a daemon that fails at its first start as root. Whether
 * the switch is possible at all (are we root?) is settled when the daemon
 * starts (privs.c), so check-config works for anyone.
 */
static bool
config_check_user(struct config_parser *p, const struct config *cfg)
{
	const struct config_seen *user = &p->top[TK_USER], *group = &p->top[TK_GROUP];

	errno = 0;
	if (cfg->user != NULL && getpwnam(cfg->user) == NULL)
		return config_error(p, user->value, "user: %.64s: %s", cfg->user,
		                    errno != 0 ? strerror(errno) : "no such user on this host");
	errno = 0;
	if (cfg->group != NULL && getgrnam(cfg->group) == NULL)
		return config_error(p, group->value, "group: %.64s: %s", cfg->group,
		                    errno != 0 ? strerror(errno) : "no such group on this host");
	if (cfg->group != NULL && cfg->user == NULL)
		return config_error(p, group->key, "group: needs user (the daemon switches both or neither)");
	return true;
}

/*
 * instance_name, with #PID after it, is tasks.locked_by, the daemon's row
 * in dispatch.instances and the end of its connections' application_name
 * ("pgdispatch NAME#PID"). The server keeps 63 bytes of application_name
 * and turns every byte outside printable ASCII into '?', so a longer or
 * non-ASCII name would make the three differ.
 */
static bool
config_check_instance_name(struct config_parser *p, const struct config *cfg)
{
	const struct config_seen *seen = &p->top[TK_INSTANCE_NAME];

	if (cfg->instance_name == NULL)
		return true;
	if (strlen(cfg->instance_name) > CONFIG_INSTANCE_NAME_MAX)
		return config_error(p, seen->value, "instance_name: longer than %d bytes (with #PID it must "
		                    "fit in application_name)", CONFIG_INSTANCE_NAME_MAX);
	for (const char *c = cfg->instance_name; *c != '\0'; c++)
		if (*c < 0x20 || *c > 0x7e)
			return config_error(p, seen->value, "instance_name: only printable ASCII characters "
			                    "(PostgreSQL's application_name keeps no others)");
	return true;
}

/* What can only be settled once the whole file is read. */
static bool
config_finish(struct config_parser *p, struct config *cfg)
{
	if (!config_check_instance_name(p, cfg))
		return false;
	if (cfg->queues == NULL) {
		if ((cfg->queues = calloc(2, sizeof *cfg->queues)) == NULL
		    || (cfg->queues[0] = strdup("default")) == NULL)
			return config_error(p, p->event.start_mark, "out of memory");
	}
	for (cfg->nqueues = 0; cfg->queues[cfg->nqueues] != NULL; cfg->nqueues++)
		;
	if (!config_check_backoff(p, "", cfg->backoff_initial_ms, cfg->backoff_max_ms,
	                          &p->top[TK_BACKOFF_INITIAL], &p->top[TK_BACKOFF_MAX]))
		return false;
	if (!p->top[TK_ENV_PASSTHROUGH].set && !config_env_default(p, cfg))
		return false;
	if (!config_empty_list(p, &cfg->env_passthrough, &p->top[TK_ENV_PASSTHROUGH])
	    || !config_check_user(p, cfg) || !config_check_source_handlers(p, cfg))
		return false;
	for (size_t i = 0; i < cfg->nhandlers; i++) {
		struct handler_config *h = &cfg->handlers[i];
		const struct config_seen *seen = p->handlers[i].seen;
		char scope[160];

		if (h->timeout_ms == CONFIG_INHERIT)
			h->timeout_ms = cfg->timeout_ms;
		if (h->max_attempts == CONFIG_INHERIT)
			h->max_attempts = cfg->max_attempts;
		if (h->backoff_initial_ms == CONFIG_INHERIT)
			h->backoff_initial_ms = cfg->backoff_initial_ms;
		if (h->backoff_max_ms == CONFIG_INHERIT)
			h->backoff_max_ms = cfg->backoff_max_ms;
		if (!config_empty_list(p, &h->env_passthrough, &seen[HK_ENV_PASSTHROUGH]))
			return false;
		snprintf(scope, sizeof scope, "handlers.%s.", h->kind);
		if (!config_check_backoff(p, scope, h->backoff_initial_ms, h->backoff_max_ms,
		                          &seen[HK_BACKOFF_INITIAL], &seen[HK_BACKOFF_MAX]))
			return false;
	}
	return true;
}

/* Reads all of f into a new buffer of *len bytes plus a NUL, or returns
 * NULL with errno set: EFBIG past CONFIG_MAX_BYTES. */
static char *
config_slurp(FILE *f, size_t *len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL, *grown;

	for (;;) {
		if (n == cap) {
			/* One byte past the limit: a file of exactly the limit is
			 * read whole, one byte more is refused. */
			if (cap > CONFIG_MAX_BYTES) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap = cap == 0 ? 4096 : cap * 2;
			if (cap > CONFIG_MAX_BYTES)
				cap = CONFIG_MAX_BYTES + 1;
			if ((grown = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = grown;
		}
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
	}
	if (ferror(f)) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/*
 * The whole file is read first and parsed from memory: config_parse() is
 * then the one path for files, tests and the fuzzer (tests/fuzz/), and a
 * reader error's offset maps to a line without reading the file twice.
 */
struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	f = fopen(path, "rbe");   /* close-on-exec, as everything the daemon opens (fds.h) */
	if (f != NULL && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		f = NULL;
		errno = EISDIR;
	}
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	text = config_slurp(f, &len);
	fclose(f);
	if (text == NULL) {
		if (errno == EFBIG)
			snprintf(err, errlen, "%s: larger than %d bytes, too large for a configuration file",
			         path, CONFIG_MAX_BYTES);
		else
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return NULL;
	}
	cfg = config_parse(path, text, len, err, errlen);
	free(text);
	return cfg;
}

struct config *
config_parse(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
	struct config_parser p = {.path = path, .text = (const unsigned char *) text, .len = len,
	                          .err = err, .errlen = errlen};
	struct config *cfg;
	bool ok;

	cfg = calloc(1, sizeof *cfg);
	if (cfg == NULL || (cfg->path = strdup(path)) == NULL || !yaml_parser_initialize(&p.yaml)) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(cfg != NULL ? cfg->path : NULL);
		free(cfg);
		return NULL;
	}
	yaml_parser_set_input_string(&p.yaml, p.text, len);
	config_defaults(cfg, config_top_keys, TK_COUNT);
	ok = config_read_file(&p, cfg) && config_finish(&p, cfg);
	yaml_event_delete(&p.event);
	yaml_parser_delete(&p.yaml);
	free(p.handlers);
	free(p.sources);
	if (!ok) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nhandlers; i++) {
		free(cfg->handlers[i].kind);
		config_free_list(cfg->handlers[i].argv);
		config_free_list(cfg->handlers[i].env_passthrough);
		free(cfg->handlers[i].sql);
		free(cfg->handlers[i].builtin);
		free(cfg->handlers[i].http_url);
		http_template_free(cfg->handlers[i].http_url_tpl);
		config_free_list(cfg->handlers[i].http_headers);
		free(cfg->handlers[i].http_ca_file);
		free(cfg->handlers[i].http_idempotency_key);
		http_template_free(cfg->handlers[i].http_idempotency_tpl);
	}
	free(cfg->handlers);
	for (size_t i = 0; i < cfg->nschedules; i++) {
		struct schedule_config *s = &cfg->schedules[i];

		free(s->name);
		free(s->cron);
		free(s->kind);
		free(s->payload);
		free(s->queue);
		free(s->timezone);
	}
	free(cfg->schedules);
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct source_config *sc = &cfg->sources[i];

		free(sc->name);
		free(sc->table);
		free(sc->key);
		free(sc->status_column);
		for (int j = 0; j < SOURCE_STATE_COUNT; j++)
			free(sc->status[j]);
		free(sc->channel);
		free(sc->payload);
		free(sc->order_by);
		for (int j = 0; j < SOURCE_COL_COUNT; j++)
			free(sc->columns[j]);
	}
	free(cfg->sources);
	config_free_list(cfg->queues);
	config_free_list(cfg->env_passthrough);
	free(cfg->user);
	free(cfg->group);
	free(cfg->instance_name);
	free(cfg->database);
	free(cfg->path);
	free(cfg);
}

const struct handler_config *
config_handler(const struct config *cfg, const char *kind)
{
	for (size_t i = 0; i < cfg->nhandlers; i++)
		if (strcmp(cfg->handlers[i].kind, kind) == 0)
			return &cfg->handlers[i];
	return NULL;
}

const struct source_config *
config_source(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return &cfg->sources[i];
	return NULL;
}
