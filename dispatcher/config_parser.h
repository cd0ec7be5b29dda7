/*
 * The config module's private interface: what config.c and the files that
 * read the config's parts (config_parser.c, config_http.c,
 * config_schedules.c, config_sources.c) share. Only those files include
 * it; the rest of the daemon sees config.h.
 *
 * Vocabulary: a table of keys (struct config_key[]) describes one kind of
 * map key by key: the type its value is read as, the field it goes to, its
 * default and its bounds. struct config_seen is where the file set a key;
 * struct config_parser is one config_load() call.
 */
#ifndef PGDISPATCH_CONFIG_PARSER_H
#define PGDISPATCH_CONFIG_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "config.h"

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

/* Indexes into config_top_keys (config.c), for the checks that span keys;
 * here because struct config_parser keeps where each key was set. */
enum {
	TK_DATABASE, TK_INSTANCE_NAME, TK_QUEUES, TK_CONCURRENCY, TK_POLL_INTERVAL,
	TK_NOTIFY, TK_NOTIFY_QUEUE_WARN, TK_LEASE, TK_SHUTDOWN_GRACE, TK_LOG, TK_LOG_LEVEL, TK_LOG_FORMAT,
	TK_TIMEOUT, TK_MAX_ATTEMPTS, TK_BACKOFF, TK_BACKOFF_INITIAL, TK_BACKOFF_MAX,
	TK_RETENTION, TK_RETENTION_COMPLETE, TK_RETENTION_FAILED, TK_RETENTION_CANCELLED,
	TK_RETENTION_ATTEMPTS, TK_HANDLERS, TK_ENV_PASSTHROUGH, TK_USER, TK_GROUP, TK_SCHEDULES,
	TK_SOURCES, TK_COUNT
};

/* Indexes into config_handler_keys (config.c); config_http.c checks some. */
enum {
	HK_COMMAND, HK_SQL, HK_BUILTIN, HK_HTTP, HK_TIMEOUT, HK_MAX_ATTEMPTS, HK_BACKOFF,
	HK_BACKOFF_INITIAL, HK_BACKOFF_MAX, HK_CONCURRENCY, HK_MAX_OUTPUT, HK_ENV_PASSTHROUGH,
	HK_HTTP_URL, HK_HTTP_METHOD, HK_HTTP_HEADERS, HK_HTTP_FOLLOW_REDIRECTS, HK_HTTP_CA_FILE,
	HK_HTTP_IDEMPOTENCY_KEY, HK_BREAKER, HK_BREAKER_FAILURES, HK_BREAKER_WINDOW, HK_BREAKER_OPEN_FOR,
	HK_BREAKER_OPEN_MAX, HK_COUNT
};

/* Where a key was set in the file, for duplicates and for checks made
 * after the map (or the whole file) was read. */
struct config_seen {
	bool set;
	yaml_mark_t key;
	yaml_mark_t value;
};

struct config_handler_marks;   /* config.c */
struct config_source_marks;    /* config_sources.c */

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

/* --- the reader (config_parser.c) --------------------------------------- */

/* Writes "FILE:LINE:COL: message"; libyaml's marks count from 0. Returns
 * false so that callers can fail with one statement. */
bool config_parser_error(struct config_parser *p, yaml_mark_t mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool config_parser_next(struct config_parser *p);
const char *config_parser_scalar(const struct config_parser *p);
bool config_parser_is_null(const struct config_parser *p);
const char *config_parser_node_name(yaml_event_type_t type);
bool config_parser_lookup_case(const char *const *names, const char *s, int *out);
int config_parser_duration(const char *s, int64_t *ms);
const char *config_parser_format_duration(int64_t ms, char *buf, size_t len);
void config_parser_defaults(void *base, const struct config_key *keys, size_t nkeys);
bool config_parser_read_value(struct config_parser *p, void *base, const struct config_key *key,
                              const char *name);
bool config_parser_read_map(struct config_parser *p, void *base, const struct config_key *keys, size_t nkeys,
                            struct config_seen *seen, const char *section, const char *scope);
int config_parser_entry_name(struct config_parser *p, const char *section, const char *what);
bool config_parser_entry_map(struct config_parser *p, const char *scope, const char *noun);
void *config_parser_grow(struct config_parser *p, yaml_mark_t at, void *base, size_t n, size_t size);

/* --- the parts: read where config_parser_read_map() meets their keys ---- */

/* config.c: the top level and the handlers. */
extern const struct config_key config_handler_keys[HK_COUNT];
const char *const *config_choices(const struct config_key *key);
bool config_read_handlers(struct config_parser *p, struct config *cfg);

/* config_http.c: an http handler's headers and checks, and a breaker's. */
bool config_http_read_headers(struct config_parser *p, char ***out, const char *scope);
bool config_http_check(struct config_parser *p, struct handler_config *h, const struct config_seen *seen);
bool config_http_check_breaker(struct config_parser *p, struct handler_config *h,
                               const struct config_seen *seen);

/* config_schedules.c */
bool config_schedules_read(struct config_parser *p, struct config *cfg);

/* config_sources.c; config_sources_check_handlers() once the whole file is read. */
bool config_sources_read(struct config_parser *p, struct config *cfg);
bool config_sources_read_columns(struct config_parser *p, struct source_config *sc, const char *scope);
bool config_sources_check_handlers(struct config_parser *p, const struct config *cfg);

#endif
