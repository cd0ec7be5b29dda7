/*
 * The config file's generic reader (config_parser.h): libyaml's events
 * turned into errors with the file, line and column; scalars read by the
 * type their key expects; a map read through its table of keys; the
 * entries of a named map (handlers, schedules, sources).
 *
 * The file is walked as a stream of libyaml events, one event held at a
 * time: a map is read key by key, each key looked up in a table of keys
 * (type, field offset, default, bounds), and its value checked and stored at
 * once, so every error still has the mark of the node that caused it.
 *
 * Reading rules: a scalar is read by the type its key expects, quoted or
 * not. Integers are decimal; durations are an integer and one unit.
 * Booleans are true or false (also True, TRUE, False, FALSE, as in YAML
 * 1.2); yes, no, on and off are rejected, because YAML 1.1 and 1.2 disagree
 * on them. Aliases (*name) are rejected; anchors alone are harmless. An
 * empty or null string value (database:, ~) leaves the key at its default.
 */
#include "config_parser.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"

/* How deep a payload may nest: a config is written by hand. */
#define CONFIG_JSON_DEPTH 32

/* Names of enum values, indexed by the value, for messages (log.c parses
 * the log ones; the lists must agree). */
static const char *const config_level_names[] = {
	[LOG_DEBUG] = "debug", [LOG_INFO] = "info", [LOG_WARN] = "warn", [LOG_ERROR] = "error", NULL
};
static const char *const config_format_names[] = {[LOG_TEXT] = "text", [LOG_JSON] = "json", NULL};

bool
config_parser_error(struct config_parser *p, yaml_mark_t mark, const char *fmt, ...)
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
bool
config_parser_next(struct config_parser *p)
{
	yaml_parser_t *y = &p->yaml;

	yaml_event_delete(&p->event);
	if (!yaml_parser_parse(y, &p->event)) {
		yaml_mark_t at = y->problem_mark;

		if (y->error == YAML_READER_ERROR)
			at = config_offset_mark(p, y->problem_offset);

		if (y->error == YAML_MEMORY_ERROR)
			return config_parser_error(p, at, "out of memory");
		if (y->context != NULL)
			return config_parser_error(p, at, "invalid yaml: %s (%s at %zu:%zu)",
			                           y->problem, y->context, y->context_mark.line + 1,
			                           y->context_mark.column + 1);
		return config_parser_error(p, at, "invalid yaml: %s", y->problem != NULL ? y->problem : "unknown error");
	}
	/* An alias would make one value appear under several keys; the few
	 * repeated settings of a dispatcher do not need that. */
	if (p->event.type == YAML_ALIAS_EVENT)
		return config_parser_error(p, p->event.start_mark, "*%s: aliases are not supported",
		                           (const char *) p->event.data.alias.anchor);
	return true;
}

const char *
config_parser_scalar(const struct config_parser *p)
{
	return (const char *) p->event.data.scalar.value;
}

/* A plain ~, null or empty scalar: YAML's null. */
bool
config_parser_is_null(const struct config_parser *p)
{
	const char *s = config_parser_scalar(p);

	return p->event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
	       && (s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

const char *
config_parser_node_name(yaml_event_type_t type)
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
bool
config_parser_lookup_case(const char *const *names, const char *s, int *out)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strcasecmp(names[i], s) == 0) {
			*out = i;
			return true;
		}
	return false;
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
int
config_parser_duration(const char *s, int64_t *ms)
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

/* ms in the largest unit that divides it, the way a person would write it. */
const char *
config_parser_format_duration(int64_t ms, char *buf, size_t len)
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

void
config_parser_defaults(void *base, const struct config_key *keys, size_t nkeys)
{
	for (size_t i = 0; i < nkeys; i++)
		config_store(base, &keys[i], keys[i].def);
}

/* An item of a list (the current event) that must not be in list[0..n-1]. */
static bool
config_once(struct config_parser *p, const char *name, char *const *list, size_t n)
{
	const char *s = config_parser_scalar(p);

	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return config_parser_error(p, p->event.start_mark, "%s: %.64s is listed twice", name, s);
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
	const char *s = config_parser_scalar(p);

	for (const char *c = s; *c != '\0'; c++)
		if (!(*c == '_' || (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z')
		      || (c > s && *c >= '0' && *c <= '9')))
			return config_parser_error(p, p->event.start_mark, "%s: '%.64s' is not an environment "
			                           "variable name (letters, digits and _, not starting with a digit)",
			                           name, s);
	if (strncmp(s, "PGDISPATCH_TASK_", 16) == 0)
		return config_parser_error(p, p->event.start_mark, "%s: %.64s is set by the daemon for each task",
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

		if (!config_parser_next(p))
			return false;
		if (p->event.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (p->event.type != YAML_SCALAR_EVENT)
			return config_parser_error(p, p->event.start_mark, "%s: item %zu is %s, expected a string",
			                           name, n + 1, config_parser_node_name(p->event.type));
		if (config_parser_scalar(p)[0] == '\0')
			return config_parser_error(p, p->event.start_mark, "%s: item %zu is empty", name, n + 1);
		if (key->type == CONFIG_ENV_NAMES && !config_env_name(p, name, *out, n))
			return false;
		if (key->type == CONFIG_NAMES && !config_once(p, name, *out, n))
			return false;
		/* *out always holds what is read so far, so an error frees it. */
		grown = realloc(*out, (n + 2) * sizeof *grown);
		if (grown == NULL)
			return config_parser_error(p, p->event.start_mark, "out of memory");
		*out = list = grown;
		list[n + 1] = NULL;
		if ((list[n] = strdup(config_parser_scalar(p))) == NULL)
			return config_parser_error(p, p->event.start_mark, "out of memory");
		n++;
	}
	if ((int64_t) n < key->min)
		return config_parser_error(p, start, "%s: must not be empty", name);
	return true;
}

/* Reads the value of key, the current event, into its field. */
bool
config_parser_read_value(struct config_parser *p, void *base, const struct config_key *key,
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
		return config_parser_error(p, at, "%s: expected %s, got %s", name,
		                           config_expect(key, expect, sizeof expect),
		                           config_parser_node_name(p->event.type));
	s = config_parser_scalar(p);
	if (strlen(s) != p->event.data.scalar.length)
		return config_parser_error(p, at, "%s: contains a NUL character", name);

	switch (key->type) {
	case CONFIG_STRING:
		if (s[0] == '\0' || config_parser_is_null(p))
			return key->min > 0 ? config_parser_error(p, at, "%s: must not be empty", name) : true;
		if ((*(char **) field = strdup(s)) == NULL)
			return config_parser_error(p, at, "out of memory");
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
		rc = config_parser_duration(s, &v);
		break;
	case CONFIG_AGE:
		rc = config_parser_duration(s, &v);
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
			return config_parser_error(p, at, "out of memory");
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
		return config_parser_error(p, at, "%s: '%.64s' is not %s", name, s,
		                           config_expect(key, expect, sizeof expect));
	/* Bools and enums have no bounds: min == max. */
	if (key->min < key->max && (rc > 0 || v < key->min || v > key->max)) {
		if (key->type == CONFIG_DURATION || key->type == CONFIG_AGE) {
			config_parser_format_duration(key->min, lo, sizeof lo);
			config_parser_format_duration(key->max, hi, sizeof hi);
		} else {
			snprintf(lo, sizeof lo, "%" PRId64, key->min);
			snprintf(hi, sizeof hi, "%" PRId64, key->max);
		}
		return config_parser_error(p, at, "%s: %.64s is out of range (%s..%s)", name, s, lo, hi);
	}
	config_store(base, key, v);
	return true;
}

static bool config_read_json(struct config_parser *p, char **out, const char *name);

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
bool
config_parser_read_map(struct config_parser *p, void *base, const struct config_key *keys, size_t nkeys,
                       struct config_seen *seen, const char *section, const char *scope)
{
	char where[256];

	snprintf(where, sizeof where, "%s%s%s", scope, scope[0] != '\0' && section[0] != '\0' ? "." : "",
	         section);
	for (;;) {
		char key[128], name[384], hint[160];
		yaml_mark_t at;
		size_t i;

		if (!config_parser_next(p))
			return false;
		if (p->event.type == YAML_MAPPING_END_EVENT)
			return true;
		at = p->event.start_mark;
		if (p->event.type != YAML_SCALAR_EVENT)
			return config_parser_error(p, at, "%s%sexpected a key, got %s", where,
			                           where[0] != '\0' ? ": " : "", config_parser_node_name(p->event.type));
		snprintf(key, sizeof key, "%s%s%s", section, section[0] != '\0' ? "." : "", config_parser_scalar(p));
		snprintf(name, sizeof name, "%s%s%s", where, where[0] != '\0' ? "." : "", config_parser_scalar(p));
		for (i = 0; i < nkeys; i++)
			if (strcmp(keys[i].name, key) == 0)
				break;
		/* A dotted key ("log.level: x") would find a nested entry. */
		if (i == nkeys || strchr(config_parser_scalar(p), '.') != NULL)
			return config_parser_error(p, at, "%s: unknown key%s", name,
			                           config_hint(keys, nkeys, section, config_parser_scalar(p), hint,
			                                       sizeof hint));
		if (seen[i].set)
			return config_parser_error(p, at, "%s: duplicate key (first at line %zu)", name,
			                           seen[i].key.line + 1);
		if (!config_parser_next(p))
			return false;
		seen[i] = (struct config_seen) {true, at, p->event.start_mark};

		if (keys[i].type == CONFIG_MAP || keys[i].type == CONFIG_HANDLERS
		    || keys[i].type == CONFIG_SCHEDULES || keys[i].type == CONFIG_SOURCES
		    || keys[i].type == CONFIG_SOURCE_COLUMNS || keys[i].type == CONFIG_JSON
		    || keys[i].type == CONFIG_HEADERS) {
			char expect[96];

			if (p->event.type != YAML_MAPPING_START_EVENT)
				return config_parser_error(p, p->event.start_mark, "%s: expected %s, got %s", name,
				                           config_expect(&keys[i], expect, sizeof expect),
				                           config_parser_node_name(p->event.type));
			if (keys[i].type == CONFIG_HANDLERS) {
				if (!config_read_handlers(p, base))
					return false;
			} else if (keys[i].type == CONFIG_SCHEDULES) {
				if (!config_schedules_read(p, base))
					return false;
			} else if (keys[i].type == CONFIG_SOURCES) {
				if (!config_sources_read(p, base))
					return false;
			} else if (keys[i].type == CONFIG_SOURCE_COLUMNS) {
				if (!config_sources_read_columns(p, base, name))
					return false;
			} else if (keys[i].type == CONFIG_JSON) {
				if (!config_read_json(p, (char **) ((char *) base + keys[i].offset), name))
					return false;
			} else if (keys[i].type == CONFIG_HEADERS) {
				if (!config_http_read_headers(p, (char ***) ((char *) base + keys[i].offset), name))
					return false;
			} else if (!config_parser_read_map(p, base, keys, nkeys, seen, key, scope)) {
				return false;
			}
		} else if (!config_parser_read_value(p, base, &keys[i], name)) {
			return false;
		}
	}
}

/*
 * The start of one entry of a named map (handlers, schedules): its name,
 * the current event after this. Returns 1 for an entry, 0 at the map's
 * end, -1 after an error (section names the map, what its keys).
 */
int
config_parser_entry_name(struct config_parser *p, const char *section, const char *what)
{
	if (!config_parser_next(p))
		return -1;
	if (p->event.type == YAML_MAPPING_END_EVENT)
		return 0;
	if (p->event.type != YAML_SCALAR_EVENT || config_parser_scalar(p)[0] == '\0') {
		config_parser_error(p, p->event.start_mark, "%s: expected %s, got %s", section, what,
		                    p->event.type == YAML_SCALAR_EVENT ? "an empty string"
		                    : config_parser_node_name(p->event.type));
		return -1;
	}
	return 1;
}

/* The entry's value, which must be a map of settings (noun says of what). */
bool
config_parser_entry_map(struct config_parser *p, const char *scope, const char *noun)
{
	if (!config_parser_next(p))
		return false;
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return config_parser_error(p, p->event.start_mark, "%s: expected a map of %s settings, got %s", scope,
		                           noun, config_parser_node_name(p->event.type));
	return true;
}

/*
 * base (an array of n elements of size bytes) grown by one zeroed element,
 * or NULL after saying so at at. Entries of the handlers, schedules and
 * sources maps are grown one at a time: a config has few of each.
 */
void *
config_parser_grow(struct config_parser *p, yaml_mark_t at, void *base, size_t n, size_t size)
{
	char *grown = realloc(base, (n + 1) * size);

	if (grown == NULL) {
		config_parser_error(p, at, "out of memory");
		return NULL;
	}
	memset(grown + n * size, 0, size);
	return grown;
}

/* A plain scalar YAML reads as a boolean, null or number keeps that type
 * in JSON; anything else, and every quoted scalar, is a string. */
static void
config_json_scalar(struct config_parser *p, struct json_buf *b)
{
	const char *s = config_parser_scalar(p);
	size_t n = p->event.data.scalar.length;
	bool plain = p->event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

	if (plain && config_parser_is_null(p))
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
		return config_parser_error(p, p->event.start_mark, "%s: nested more than %d deep", name,
		                           CONFIG_JSON_DEPTH);
	map = p->event.type == YAML_MAPPING_START_EVENT;
	end = map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
	json_buf_append(b, map ? "{" : "[", 1);
	for (size_t i = 0;; i++) {
		if (!config_parser_next(p))
			return false;
		if (p->event.type == end)
			break;
		if (i > 0)
			json_buf_append(b, ",", 1);
		if (map) {
			if (p->event.type != YAML_SCALAR_EVENT)
				return config_parser_error(p, p->event.start_mark, "%s: expected a key, got %s", name,
				                           config_parser_node_name(p->event.type));
			json_append_string(b, config_parser_scalar(p), p->event.data.scalar.length);
			json_buf_append(b, ":", 1);
			if (!config_parser_next(p))
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
