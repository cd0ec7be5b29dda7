/*
 * Reads the YAML configuration file into struct config; see config.h.
 *
 * Here are the entry points, the top level and the handlers, and the
 * checks that can only be made once the whole file is read. The reading
 * itself is config_parser.c's (config_parser.h: the tables of keys, the
 * parser, its rules); config_http.c, config_schedules.c and
 * config_sources.c read the other parts.
 *
 * Handler settings that the file leaves out are taken from the top level
 * only after the whole file is read, because top-level keys may follow
 * "handlers"; for the same reason a source's handler is looked for only
 * then.
 */
#include "config_parser.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "http_template.h"

/* A handler default that is filled in from the top level after the file. */
#define CONFIG_INHERIT (-1)

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

/* The bounds of inherited keys repeat the top level's: a handler may not
 * set what the top level could not. */
#define HANDLER(field) offsetof(struct handler_config, field)
const struct config_key config_handler_keys[HK_COUNT] = {
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

struct config_handler_marks {
	yaml_mark_t kind;
	struct config_seen seen[HK_COUNT];
};

/* The values a CONFIG_CHOICE or CONFIG_KEYWORD key takes. */
const char *const *
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

bool
config_parse_duration(const char *s, int64_t *ms)
{
	return s != NULL && config_parser_duration(s, ms) == 0;
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
		return config_parser_error(p, m->kind, "handlers.%s: needs one of %s", h->kind,
		                           config_type_names(" or ", names, sizeof names));
	if (given > 1)
		return config_parser_error(p, last->key, "handlers.%s: has more than one of %s (give one)", h->kind,
		                           config_type_names(" and ", names, sizeof names));
	return true;
}

/* Reads the handlers map (its MAPPING_START is the current event). */
bool
config_read_handlers(struct config_parser *p, struct config *cfg)
{
	for (;;) {
		struct handler_config *h;
		struct config_handler_marks *m;
		char scope[160];
		yaml_mark_t at;
		size_t n = cfg->nhandlers;
		int entry = config_parser_entry_name(p, "handlers", "a task kind");

		if (entry <= 0)
			return entry == 0;
		at = p->event.start_mark;
		for (size_t i = 0; i < n; i++)
			if (strcmp(cfg->handlers[i].kind, config_parser_scalar(p)) == 0)
				return config_parser_error(p, at, "handlers.%s: duplicate key (first at line %zu)",
				                           config_parser_scalar(p), p->handlers[i].kind.line + 1);

		/* nhandlers counts only a handler already zeroed, so
		 * config_free() can always run. */
		if ((h = config_parser_grow(p, at, cfg->handlers, n, sizeof *h)) == NULL)
			return false;
		cfg->handlers = h;
		if ((m = config_parser_grow(p, at, p->handlers, n, sizeof *m)) == NULL)
			return false;
		p->handlers = m;
		h = &cfg->handlers[n];
		m = &p->handlers[n];
		cfg->nhandlers++;
		m->kind = at;
		config_parser_defaults(h, config_handler_keys, HK_COUNT);
		if ((h->kind = strdup(config_parser_scalar(p))) == NULL)
			return config_parser_error(p, at, "out of memory");
		snprintf(scope, sizeof scope, "handlers.%s", h->kind);

		if (!config_parser_entry_map(p, scope, "handler")
		    || !config_parser_read_map(p, h, config_handler_keys, HK_COUNT, m->seen, "", scope)
		    || !config_handler_type(p, h, m) || !config_http_check(p, h, m->seen)
		    || !config_http_check_breaker(p, h, m->seen))
			return false;
	}
}

/* The stream must hold one document whose top level is a map. */
static bool
config_read_file(struct config_parser *p, struct config *cfg)
{
	if (!config_parser_next(p) || !config_parser_next(p))   /* STREAM_START, then the document */
		return false;
	if (p->event.type == YAML_STREAM_END_EVENT)
		return config_parser_error(p, p->event.start_mark, "the file is empty, expected a map of "
		                           "settings (write {} for all defaults)");
	if (!config_parser_next(p))
		return false;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return config_parser_error(p, p->event.start_mark, "expected a map of settings at the top "
		                           "level, got %s", config_parser_node_name(p->event.type));
	if (!config_parser_read_map(p, cfg, config_top_keys, TK_COUNT, p->top, "", ""))
		return false;
	if (!config_parser_next(p) || !config_parser_next(p))   /* DOCUMENT_END, then STREAM_END */
		return false;
	if (p->event.type != YAML_STREAM_END_EVENT)
		return config_parser_error(p, p->event.start_mark, "expected one yaml document, found a second");
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
	config_parser_format_duration(initial, a, sizeof a);
	config_parser_format_duration(max, b, sizeof b);
	if (max_seen->set)
		return config_parser_error(p, max_seen->value, "%sbackoff.max: %s is less than backoff.initial (%s)",
		                           scope, b, a);
	return config_parser_error(p, initial_seen->value, "%sbackoff.initial: %s is more than backoff.max (%s)",
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
		return config_parser_error(p, seen->value, "out of memory");
	return true;
}

/* The default env_passthrough, when the file gives none. */
static bool
config_env_default(struct config_parser *p, struct config *cfg)
{
	static const char *const names[] = {CONFIG_ENV_DEFAULT};
	size_t n = sizeof names / sizeof names[0];

	if ((cfg->env_passthrough = calloc(n + 1, sizeof *cfg->env_passthrough)) == NULL)
		return config_parser_error(p, p->event.start_mark, "out of memory");
	for (size_t i = 0; i < n; i++)
		if ((cfg->env_passthrough[i] = strdup(names[i])) == NULL)
			return config_parser_error(p, p->event.start_mark, "out of memory");
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
		return config_parser_error(p, user->value, "user: %.64s: %s", cfg->user,
		                           errno != 0 ? strerror(errno) : "no such user on this host");
	errno = 0;
	if (cfg->group != NULL && getgrnam(cfg->group) == NULL)
		return config_parser_error(p, group->value, "group: %.64s: %s", cfg->group,
		                           errno != 0 ? strerror(errno) : "no such group on this host");
	if (cfg->group != NULL && cfg->user == NULL)
		return config_parser_error(p, group->key, "group: needs user (the daemon switches both or neither)");
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
		return config_parser_error(p, seen->value, "instance_name: longer than %d bytes (with #PID it must "
		                           "fit in application_name)", CONFIG_INSTANCE_NAME_MAX);
	for (const char *c = cfg->instance_name; *c != '\0'; c++)
		if (*c < 0x20 || *c > 0x7e)
			return config_parser_error(p, seen->value, "instance_name: only printable ASCII characters "
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
			return config_parser_error(p, p->event.start_mark, "out of memory");
	}
	for (cfg->nqueues = 0; cfg->queues[cfg->nqueues] != NULL; cfg->nqueues++)
		;
	if (!config_check_backoff(p, "", cfg->backoff_initial_ms, cfg->backoff_max_ms,
	                          &p->top[TK_BACKOFF_INITIAL], &p->top[TK_BACKOFF_MAX]))
		return false;
	if (!p->top[TK_ENV_PASSTHROUGH].set && !config_env_default(p, cfg))
		return false;
	if (!config_empty_list(p, &cfg->env_passthrough, &p->top[TK_ENV_PASSTHROUGH])
	    || !config_check_user(p, cfg) || !config_sources_check_handlers(p, cfg))
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
	config_parser_defaults(cfg, config_top_keys, TK_COUNT);
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
