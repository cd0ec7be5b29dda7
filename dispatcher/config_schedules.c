/*
 * The config file's schedules map: each entry a periodic task (struct
 * schedule_config), read through its table of keys, then checked: a cron
 * expression that parses and matches some day, a time zone that exists.
 */
#include "config_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* What a schedule needs once its map is read: cron and kind, an
 * expression that parses and matches some day, a zone that exists. */
static bool
config_check_schedule(struct config_parser *p, struct schedule_config *s, yaml_mark_t at,
                      const struct config_seen *seen)
{
	char err[256];
	time_t next;

	if (s->cron == NULL)
		return config_parser_error(p, at, "schedules.%s: needs cron (such as \"0 3 * * *\")", s->name);
	if (s->kind == NULL)
		return config_parser_error(p, at, "schedules.%s: needs kind (the task kind each tick enqueues)", s->name);
	if (!cron_parse(s->cron, &s->spec, err, sizeof err))
		return config_parser_error(p, seen[SK_CRON].value, "schedules.%s.cron: %s", s->name, err);
	if (!cron_next(&s->spec, NULL, 0, &next))
		return config_parser_error(p, seen[SK_CRON].value, "schedules.%s.cron: '%.64s' never matches a day",
		                           s->name, s->cron);
	if (s->timezone != NULL && !cron_tz_valid(s->timezone))
		return config_parser_error(p, seen[SK_TIMEZONE].value, "schedules.%s.timezone: '%.64s' is not a "
		                           "time zone of the tz database (such as Europe/Berlin, or UTC)", s->name,
		                           s->timezone);
	if (s->queue == NULL && (s->queue = strdup("default")) == NULL)
		return config_parser_error(p, at, "out of memory");
	if (s->payload == NULL && (s->payload = strdup("{}")) == NULL)
		return config_parser_error(p, at, "out of memory");
	return true;
}

/* Reads the schedules map (its MAPPING_START is the current event). */
bool
config_schedules_read(struct config_parser *p, struct config *cfg)
{
	for (;;) {
		struct config_seen seen[SK_COUNT];
		struct schedule_config *s;
		char scope[160];
		yaml_mark_t at;
		size_t n = cfg->nschedules;
		int entry = config_parser_entry_name(p, "schedules", "a schedule name");

		if (entry <= 0)
			return entry == 0;
		at = p->event.start_mark;
		for (size_t i = 0; i < n; i++)
			if (strcmp(cfg->schedules[i].name, config_parser_scalar(p)) == 0)
				return config_parser_error(p, at, "schedules.%.64s: duplicate key",
				                           config_parser_scalar(p));

		/* nschedules counts only a schedule already zeroed, so
		 * config_free() can always run. */
		if ((s = config_parser_grow(p, at, cfg->schedules, n, sizeof *s)) == NULL)
			return false;
		cfg->schedules = s;
		s = &cfg->schedules[n];
		memset(seen, 0, sizeof seen);
		cfg->nschedules++;
		config_parser_defaults(s, config_schedule_keys, SK_COUNT);
		if ((s->name = strdup(config_parser_scalar(p))) == NULL)
			return config_parser_error(p, at, "out of memory");
		snprintf(scope, sizeof scope, "schedules.%s", s->name);

		if (!config_parser_entry_map(p, scope, "schedule")
		    || !config_parser_read_map(p, s, config_schedule_keys, SK_COUNT, seen, "", scope)
		    || !config_check_schedule(p, s, at, seen))
			return false;
	}
}
