/*
 * The config file's sources map (docs/sources.md): each entry an
 * application's table whose rows are dispatched in place (struct
 * source_config), read through its table of keys and its columns map,
 * then checked; once the whole file is read, each source's handler.
 */
#include "config_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct config_source_marks {
	yaml_mark_t name;
	struct config_seen seen[RK_COUNT];
	struct config_seen columns[SOURCE_COL_COUNT];
};

/*
 * A source's columns map (its MAPPING_START is the current event): each
 * key one of config_source_columns[], its value the name of the table's
 * column that holds that state. Read here rather than through a table of
 * keys because an unknown key is likely a state the daemon does not keep,
 * and its message lists the ones it does.
 */
bool
config_sources_read_columns(struct config_parser *p, struct source_config *sc, const char *scope)
{
	struct config_seen *seen = p->sources[p->nsources - 1].columns;

	for (;;) {
		char name[512], allowed[256];
		struct config_key key = {NULL, CONFIG_STRING, 0, 0, 1, 0};
		yaml_mark_t at;
		size_t n = 0;
		int c;

		if (!config_parser_next(p))
			return false;
		if (p->event.type == YAML_MAPPING_END_EVENT)
			return true;
		at = p->event.start_mark;
		if (p->event.type != YAML_SCALAR_EVENT)
			return config_parser_error(p, at, "%s: expected a key, got %s", scope,
			                           config_parser_node_name(p->event.type));
		snprintf(name, sizeof name, "%s.%.100s", scope, config_parser_scalar(p));
		for (c = 0; c < SOURCE_COL_COUNT; c++)
			if (strcmp(config_source_columns[c], config_parser_scalar(p)) == 0)
				break;
		if (c == SOURCE_COL_COUNT) {
			for (int i = 0; i < SOURCE_COL_COUNT && n < sizeof allowed; i++)
				n += (size_t) snprintf(allowed + n, sizeof allowed - n, "%s%s", i > 0 ? ", " : "",
				                       config_source_columns[i]);
			return config_parser_error(p, at, "%s: unknown key (the columns the daemon can keep: %s)", name,
			                           allowed);
		}
		if (seen[c].set)
			return config_parser_error(p, at, "%s: duplicate key (first at line %zu)", name,
			                           seen[c].key.line + 1);
		if (!config_parser_next(p))
			return false;
		seen[c] = (struct config_seen) {true, at, p->event.start_mark};
		key.name = config_source_columns[c];
		key.offset = offsetof(struct source_config, columns) + (size_t) c * sizeof sc->columns[0];
		if (!config_parser_read_value(p, sc, &key, name))
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
			return config_parser_error(p, later->value, "sources.%s.%s%s: '%.64s' is also %s%s (a column "
			                           "holds one thing)", sc->name, j >= 2 ? "columns." : "", keys[j],
			                           names[j], i >= 2 ? "columns." : "", keys[i]);
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
		return config_parser_error(p, m->name, "sources.%s: needs table (schema.table, such as "
		                           "public.configuration_update)", sc->name);
	if (sc->status_column == NULL)
		return config_parser_error(p, m->name, "sources.%s: needs status.column (the enum or text column "
		                           "that holds each row's state)", sc->name);
	if (!config_has_schema(sc->table))
		return config_parser_error(p, seen[RK_TABLE].value, "sources.%s.table: '%.64s' is not schema.table "
		                           "(name the schema too, such as public.%.64s)", sc->name, sc->table, sc->table);
	for (int i = 0; i < SOURCE_STATE_COUNT; i++)
		if (sc->status[i] == NULL && (sc->status[i] = strdup(config_source_state_defaults[i])) == NULL)
			return config_parser_error(p, m->name, "out of memory");
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
			return config_parser_error(p, seen[config_source_state_keys[at]].set
			                           ? seen[config_source_state_keys[at]].value : m->name,
			                           "sources.%s.%s: '%.64s' is also %s (each state needs a value of its "
			                           "own)", sc->name,
			                           config_source_keys[config_source_state_keys[at]].name, sc->status[at],
			                           config_source_keys[config_source_state_keys[other]].name);
		}
	if (sc->channel != NULL && strncmp(sc->channel, "dispatch_", 9) == 0)
		return config_parser_error(p, seen[RK_CHANNEL].value, "sources.%s.channel: '%.64s': channels "
		                           "starting with dispatch_ are pgdispatch's own", sc->name, sc->channel);
	/* payload: row is the default, spelled out. */
	if (sc->payload != NULL && strcmp(sc->payload, "row") == 0) {
		free(sc->payload);
		sc->payload = NULL;
	}
	return config_check_source_columns(p, sc, m);
}

/* Reads the sources map (its MAPPING_START is the current event). */
bool
config_sources_read(struct config_parser *p, struct config *cfg)
{
	for (;;) {
		struct source_config *sc;
		struct config_source_marks *m;
		char scope[160];
		yaml_mark_t at;
		size_t n = cfg->nsources;
		int entry = config_parser_entry_name(p, "sources", "a source name");

		if (entry <= 0)
			return entry == 0;
		at = p->event.start_mark;
		for (size_t i = 0; i < n; i++)
			if (strcmp(cfg->sources[i].name, config_parser_scalar(p)) == 0)
				return config_parser_error(p, at, "sources.%.64s: duplicate key (first at line %zu)",
				                           config_parser_scalar(p), p->sources[i].name.line + 1);

		/* nsources counts only a source already zeroed, so config_free()
		 * can always run; p->nsources follows it. */
		if ((sc = config_parser_grow(p, at, cfg->sources, n, sizeof *sc)) == NULL)
			return false;
		cfg->sources = sc;
		if ((m = config_parser_grow(p, at, p->sources, n, sizeof *m)) == NULL)
			return false;
		p->sources = m;
		sc = &cfg->sources[n];
		m = &p->sources[n];
		cfg->nsources++;
		p->nsources = cfg->nsources;
		m->name = at;
		if ((sc->name = strdup(config_parser_scalar(p))) == NULL)
			return config_parser_error(p, at, "out of memory");
		snprintf(scope, sizeof scope, "sources.%s", sc->name);

		if (!config_parser_entry_map(p, scope, "source")
		    || !config_parser_read_map(p, sc, config_source_keys, RK_COUNT, m->seen, "", scope)
		    || !config_check_source(p, sc, m))
			return false;
	}
}

/* A source's rows are run by the handler of its name; without one every
 * row would fail, so it is an error here rather than at the first row. */
bool
config_sources_check_handlers(struct config_parser *p, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nsources; i++) {
		const char *name = cfg->sources[i].name;

		if (config_handler(cfg, name) == NULL)
			return config_parser_error(p, p->sources[i].name, "sources.%s: no handler named %s; add "
			                           "handlers.%s", name, name, name);
	}
	return true;
}
