/*
 * Unit tier: config.c reads every key, fills defaults, lets handlers
 * inherit, and rejects bad files with "FILE:LINE:COL: message".
 *
 * Each case writes its YAML to a temporary file, so the text and the line
 * and column it expects sit side by side in the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "http_template.h"
#include "secrets.h"

/* Writes text to a new temporary file and puts its name in path. */
static void
config_test_write(const char *text, char *path, size_t len)
{
	const char *dir = getenv("PGDISPATCH_TMP");
	size_t n = strlen(text);
	int fd;

	snprintf(path, len, "%s/pgdispatch-config-XXXXXX", dir != NULL ? dir : "/tmp");
	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp %s failed", path);
	ck_assert_int_eq(write(fd, text, n), (ssize_t) n);
	close(fd);
}

/* Loads text as a config file; err gets "PATH:..." with the file's name
 * replaced by "cfg.yaml", so expected messages can be written out whole. */
static struct config *
config_test_load(const char *text, char *err, size_t len)
{
	char path[512], raw[1024];
	struct config *cfg;

	config_test_write(text, path, sizeof path);
	cfg = config_load(path, raw, sizeof raw);
	unlink(path);
	if (cfg == NULL) {
		ck_assert_msg(strncmp(raw, path, strlen(path)) == 0, "error lacks the path: %s", raw);
		snprintf(err, len, "cfg.yaml%s", raw + strlen(path));
	} else {
		ck_assert_str_eq(cfg->path, path);
		err[0] = '\0';
	}
	return cfg;
}

/* Loads text that must be valid. */
static struct config *
config_test_ok(const char *text)
{
	char err[1024];
	struct config *cfg = config_test_load(text, err, sizeof err);

	ck_assert_msg(cfg != NULL, "rejected: %s", err);
	return cfg;
}

static const char config_full[] =
	"# every key, none at its default\n"
	"database: \"dbname=app host=/tmp\"\n"
	"instance_name: web-1\n"
	"queues: [default, mail]\n"
	"concurrency: 16\n"
	"poll_interval: 250ms\n"
	"notify: false\n"
	"lease: 1m\n"
	"shutdown_grace: 0s\n"
	"log: {level: debug, format: json}\n"
	"timeout: 10m\n"
	"max_attempts: 7\n"
	"backoff:\n"
	"  initial: 500ms\n"
	"  max: 2h\n"
	"env_passthrough: [PATH, app_token_2]\n"
	"user: root\n"
	"group: root\n"
	"handlers:\n"
	"  send_email:\n"
	"    command:\n"
	"      - /usr/local/bin/send-email\n"
	"      - --json\n"
	"    timeout: 30s\n"
	"    max_attempts: 10\n"
	"    backoff: {initial: 2s, max: 1d}\n"
	"    concurrency: 4\n"
	"    max_output: 4096\n"
	"    env_passthrough: [SMTP_PASSWORD]\n"
	"  apply_config:\n"
	"    sql: \"SELECT app.apply_config($1)\"\n"
	"  nap:\n"
	"    builtin: sleep\n"
	"  doomed:\n"
	"    builtin: fail\n"
	"    max_attempts: 1\n"
	"  nothing:\n"
	"    builtin: noop\n";

START_TEST(test_full_config_reads_every_key)
{
	struct config *cfg = config_test_ok(config_full);
	const struct handler_config *h;

	ck_assert_str_eq(cfg->database, "dbname=app host=/tmp");
	ck_assert_str_eq(cfg->instance_name, "web-1");
	ck_assert_uint_eq(cfg->nqueues, 2);
	ck_assert_str_eq(cfg->queues[0], "default");
	ck_assert_str_eq(cfg->queues[1], "mail");
	ck_assert_ptr_null(cfg->queues[2]);
	ck_assert_int_eq(cfg->concurrency, 16);
	ck_assert_int_eq(cfg->poll_interval_ms, 250);
	ck_assert(!cfg->notify);
	ck_assert_int_eq(cfg->lease_ms, 60000);
	ck_assert_int_eq(cfg->shutdown_grace_ms, 0);
	ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
	ck_assert_int_eq(cfg->log_format, LOG_JSON);
	ck_assert_int_eq(cfg->timeout_ms, 600000);
	ck_assert_int_eq(cfg->max_attempts, 7);
	ck_assert_int_eq(cfg->backoff_initial_ms, 500);
	ck_assert_int_eq(cfg->backoff_max_ms, 7200000);
	ck_assert_str_eq(cfg->env_passthrough[0], "PATH");
	ck_assert_str_eq(cfg->env_passthrough[1], "app_token_2");
	ck_assert_ptr_null(cfg->env_passthrough[2]);
	ck_assert_str_eq(cfg->user, "root");
	ck_assert_str_eq(cfg->group, "root");
	ck_assert_uint_eq(cfg->nhandlers, 5);

	h = config_handler(cfg, "send_email");
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->kind, "send_email");
	ck_assert_str_eq(h->type, "command");
	ck_assert_str_eq(h->argv[0], "/usr/local/bin/send-email");
	ck_assert_str_eq(h->argv[1], "--json");
	ck_assert_ptr_null(h->argv[2]);
	ck_assert_ptr_null(h->sql);
	ck_assert_int_eq(h->timeout_ms, 30000);
	ck_assert_int_eq(h->max_attempts, 10);
	ck_assert_int_eq(h->backoff_initial_ms, 2000);
	ck_assert_int_eq(h->backoff_max_ms, 86400000);
	ck_assert_int_eq(h->concurrency, 4);
	ck_assert_int_eq(h->max_output, 4096);
	ck_assert_str_eq(h->env_passthrough[0], "SMTP_PASSWORD");
	ck_assert_ptr_null(h->env_passthrough[1]);

	h = config_handler(cfg, "apply_config");
	ck_assert_ptr_nonnull(h);
	/* Not given: the top level's list applies. */
	ck_assert_ptr_null(h->env_passthrough);
	ck_assert_str_eq(h->type, "sql");
	ck_assert_str_eq(h->sql, "SELECT app.apply_config($1)");
	ck_assert_ptr_null(h->argv);

	h = config_handler(cfg, "nap");
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->type, "builtin");
	ck_assert_str_eq(h->builtin, "sleep");
	h = config_handler(cfg, "doomed");
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->builtin, "fail");
	ck_assert_int_eq(h->max_attempts, 1);
	h = config_handler(cfg, "nothing");
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->type, "builtin");
	ck_assert_str_eq(h->builtin, "noop");

	ck_assert_ptr_null(config_handler(cfg, "send"));
	config_free(cfg);
}
END_TEST

START_TEST(test_empty_map_gives_every_default)
{
	struct config *cfg = config_test_ok("{}\n");

	ck_assert_ptr_null(cfg->database);
	ck_assert_ptr_null(cfg->instance_name);
	ck_assert_uint_eq(cfg->nqueues, 1);
	ck_assert_str_eq(cfg->queues[0], "default");
	ck_assert_ptr_null(cfg->queues[1]);
	ck_assert_int_eq(cfg->concurrency, 8);
	ck_assert_int_eq(cfg->poll_interval_ms, 5000);
	ck_assert(cfg->notify);
	ck_assert_int_eq(cfg->lease_ms, 30000);
	ck_assert_int_eq(cfg->shutdown_grace_ms, 30000);
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	ck_assert_int_eq(cfg->log_format, LOG_TEXT);
	ck_assert_int_eq(cfg->timeout_ms, 300000);
	ck_assert_int_eq(cfg->max_attempts, 5);
	ck_assert_int_eq(cfg->backoff_initial_ms, 1000);
	ck_assert_int_eq(cfg->backoff_max_ms, 3600000);
	ck_assert_uint_eq(cfg->nhandlers, 0);
	ck_assert_ptr_null(cfg->handlers);
	ck_assert_ptr_null(config_handler(cfg, "anything"));
	ck_assert_ptr_null(cfg->user);
	ck_assert_ptr_null(cfg->group);
	/* Retention, as the README states it. */
	ck_assert_int_eq(cfg->retention.complete_ms, 7 * 86400000LL);
	ck_assert_int_eq(cfg->retention.failed_ms, 30 * 86400000LL);
	ck_assert_int_eq(cfg->retention.cancelled_ms, 7 * 86400000LL);
	ck_assert_int_eq(cfg->retention.attempts_ms, 30 * 86400000LL);
	{
		const char *want[] = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", NULL};

		for (int i = 0; want[i] != NULL; i++)
			ck_assert_str_eq(cfg->env_passthrough[i], want[i]);
		ck_assert_ptr_null(cfg->env_passthrough[6]);
	}
	config_free(cfg);
}
END_TEST

/* retention: each age a duration, 0 or off (kept for ever); keys left
 * out keep their defaults. */
START_TEST(test_retention_reads_ages_and_off)
{
	struct config *cfg = config_test_ok("retention:\n  complete: 12h\n  failed: off\n  cancelled: 0\n");

	ck_assert_int_eq(cfg->retention.complete_ms, 12 * 3600000LL);
	ck_assert_int_eq(cfg->retention.failed_ms, 0);
	ck_assert_int_eq(cfg->retention.cancelled_ms, 0);
	ck_assert_int_eq(cfg->retention.attempts_ms, 30 * 86400000LL);
	config_free(cfg);
	cfg = config_test_ok("retention: {attempts: 0d, complete: 90s}\n");
	ck_assert_int_eq(cfg->retention.attempts_ms, 0);
	ck_assert_int_eq(cfg->retention.complete_ms, 90000);
	ck_assert_int_eq(cfg->retention.failed_ms, 30 * 86400000LL);
	config_free(cfg);
}
END_TEST

/* instance_name fits application_name with #PID after it. */
START_TEST(test_instance_name_of_44_bytes_is_the_longest)
{
	struct config *cfg = config_test_ok("instance_name: abcdefghijabcdefghijabcdefghijabcdefghij-234\n");

	ck_assert_uint_eq(strlen(cfg->instance_name), CONFIG_INSTANCE_NAME_MAX);
	config_free(cfg);
}
END_TEST

/* [] passes nothing through, which is not the same as leaving the key
 * out; a handler's [] overrides a top-level list. */
START_TEST(test_empty_env_passthrough_passes_nothing)
{
	struct config *cfg = config_test_ok("env_passthrough: []\nuser: ~\n"
	                                    "handlers:\n  a: {builtin: noop}\n"
	                                    "  b: {builtin: noop, env_passthrough: []}\n");

	ck_assert_ptr_nonnull(cfg->env_passthrough);
	ck_assert_ptr_null(cfg->env_passthrough[0]);
	ck_assert_ptr_null(config_handler(cfg, "a")->env_passthrough);
	ck_assert_ptr_nonnull(config_handler(cfg, "b")->env_passthrough);
	ck_assert_ptr_null(config_handler(cfg, "b")->env_passthrough[0]);
	ck_assert_ptr_null(cfg->user);
	config_free(cfg);
}
END_TEST

/* The issue's example, a block-style entry with every key, and one with
 * only what is required. */
START_TEST(test_schedules_read_every_key_and_payload_as_json)
{
	struct config *cfg = config_test_ok(
		"schedules:\n"
		"  nightly_report: {cron: \"0 3 * * *\", kind: report, payload: {format: pdf}, queue: default,"
		" timezone: Europe/Berlin}\n"
		"  every_second:\n"
		"    cron: \"*/5 * * * * *\"\n"
		"    kind: tick\n"
		"    queue: fast\n"
		"    priority: -3\n"
		"    max_attempts: 2\n"
		"    catch_up: true\n"
		"    payload:\n"
		"      n: 1\n"
		"      f: -2.5e3\n"
		"      s: \"7\"\n"
		"      t: 'true'\n"
		"      b: [true, false, ~, '', x y, \"quote \\\" \\u00e9\"]\n"
		"      nested: {a: {b: []}, \"k 2\": 0x10}\n"
		"  hourly: {cron: '@hourly', kind: h}\n");
	const struct schedule_config *s;

	ck_assert_uint_eq(cfg->nschedules, 3);
	s = &cfg->schedules[0];
	ck_assert_str_eq(s->name, "nightly_report");
	ck_assert_str_eq(s->cron, "0 3 * * *");
	ck_assert_uint_eq(s->spec.hours, 1u << 3);
	ck_assert_str_eq(s->kind, "report");
	ck_assert_str_eq(s->payload, "{\"format\":\"pdf\"}");
	ck_assert_str_eq(s->queue, "default");
	ck_assert_str_eq(s->timezone, "Europe/Berlin");
	ck_assert_int_eq(s->priority, 0);
	ck_assert_int_eq(s->max_attempts, 0);
	ck_assert(!s->catch_up);

	s = &cfg->schedules[1];
	ck_assert_str_eq(s->name, "every_second");
	ck_assert_uint_eq(s->spec.seconds, 0x84210842108421ULL);
	ck_assert_str_eq(s->queue, "fast");
	ck_assert_int_eq(s->priority, -3);
	ck_assert_int_eq(s->max_attempts, 2);
	ck_assert(s->catch_up);
	ck_assert_ptr_null(s->timezone);
	/* Plain scalars keep YAML's types, quoted ones are strings. */
	ck_assert_str_eq(s->payload, "{\"n\":1,\"f\":-2.5e3,\"s\":\"7\",\"t\":\"true\","
	                             "\"b\":[true,false,null,\"\",\"x y\",\"quote \\\" \u00e9\"],"
	                             "\"nested\":{\"a\":{\"b\":[]},\"k 2\":\"0x10\"}}");

	/* Only cron and kind: the defaults. */
	s = &cfg->schedules[2];
	ck_assert_str_eq(s->payload, "{}");
	ck_assert_str_eq(s->queue, "default");
	ck_assert_uint_eq(s->spec.minutes, 1);
	ck_assert_ptr_null(s->timezone);
	config_free(cfg);

	cfg = config_test_ok("{}\n");
	ck_assert_uint_eq(cfg->nschedules, 0);
	config_free(cfg);
}
END_TEST

/* The contract's example with every key set, a source with only what
 * is required (every default), and one whose name is also a queue's. */
START_TEST(test_sources_read_every_key_and_fill_defaults)
{
	struct config *cfg = config_test_ok(
		"queues: [default, mail]\n"
		"sources:\n"
		"  configuration_update:\n"
		"    table: public.configuration_update\n"
		"    key: id\n"
		"    status:\n"
		"      column: status\n"
		"      pending: new\n"
		"      in_progress: working\n"
		"      complete: done\n"
		"      failed: broken\n"
		"    channel: configuration_update_created\n"
		"    payload: content\n"
		"    order_by: created_at\n"
		"    columns:\n"
		"      attempts: tries\n"
		"      run_at: due\n"
		"      last_error: err\n"
		"      result: res\n"
		"      locked_by: owner\n"
		"      lease_expires_at: lease_end\n"
		"      started_at: began\n"
		"      finished_at: ended\n"
		"      priority: Prio\n"
		"  mail:\n"
		"    table: '\"My Schema\".\"My.Table\"'\n"
		"    status: {column: State}\n"
		"    payload: row\n"
		"    key: ''\n"
		"handlers:\n"
		"  configuration_update: {command: [/usr/local/bin/push-config]}\n"
		"  mail: {builtin: noop}\n");
	const struct source_config *sc;
	static const char *const mapped[SOURCE_COL_COUNT] = {
		[SOURCE_COL_ATTEMPTS] = "tries", [SOURCE_COL_RUN_AT] = "due", [SOURCE_COL_LAST_ERROR] = "err",
		[SOURCE_COL_RESULT] = "res", [SOURCE_COL_LOCKED_BY] = "owner",
		[SOURCE_COL_LEASE_EXPIRES_AT] = "lease_end", [SOURCE_COL_STARTED_AT] = "began",
		[SOURCE_COL_FINISHED_AT] = "ended", [SOURCE_COL_PRIORITY] = "Prio",
	};
	static const char *const keys[SOURCE_COL_COUNT] = {"attempts", "run_at", "last_error", "result",
	                                                   "locked_by", "lease_expires_at", "started_at",
	                                                   "finished_at", "priority"};

	ck_assert_uint_eq(cfg->nsources, 2);
	sc = config_source(cfg, "configuration_update");
	ck_assert_ptr_eq(sc, &cfg->sources[0]);
	ck_assert_str_eq(sc->name, "configuration_update");
	ck_assert_str_eq(sc->table, "public.configuration_update");
	ck_assert_str_eq(sc->key, "id");
	ck_assert_str_eq(sc->status_column, "status");
	ck_assert_str_eq(sc->status[SOURCE_PENDING], "new");
	ck_assert_str_eq(sc->status[SOURCE_IN_PROGRESS], "working");
	ck_assert_str_eq(sc->status[SOURCE_COMPLETE], "done");
	ck_assert_str_eq(sc->status[SOURCE_FAILED], "broken");
	ck_assert_str_eq(sc->channel, "configuration_update_created");
	ck_assert_str_eq(sc->payload, "content");
	ck_assert_str_eq(sc->order_by, "created_at");
	for (int c = 0; c < SOURCE_COL_COUNT; c++) {
		ck_assert_str_eq(config_source_columns[c], keys[c]);
		ck_assert_str_eq(sc->columns[c], mapped[c]);
	}

	/* Names as written, capitals and quotes kept; payload: row is the
	 * default spelled out; an empty key is the default too. */
	sc = config_source(cfg, "mail");
	ck_assert_ptr_eq(sc, &cfg->sources[1]);
	ck_assert_str_eq(sc->table, "\"My Schema\".\"My.Table\"");
	ck_assert_str_eq(sc->status_column, "State");
	ck_assert_ptr_null(sc->key);
	ck_assert_str_eq(sc->status[SOURCE_PENDING], "pending");
	ck_assert_str_eq(sc->status[SOURCE_IN_PROGRESS], "in_progress");
	ck_assert_str_eq(sc->status[SOURCE_COMPLETE], "complete");
	ck_assert_str_eq(sc->status[SOURCE_FAILED], "failed");
	ck_assert_ptr_null(sc->channel);
	ck_assert_ptr_null(sc->payload);
	ck_assert_ptr_null(sc->order_by);
	for (int c = 0; c < SOURCE_COL_COUNT; c++)
		ck_assert_ptr_null(sc->columns[c]);
	ck_assert_ptr_null(config_source(cfg, "configuration"));
	config_free(cfg);

	cfg = config_test_ok("sources: {}\n");
	ck_assert_uint_eq(cfg->nsources, 0);
	ck_assert_ptr_null(config_source(cfg, "anything"));
	config_free(cfg);
}
END_TEST

START_TEST(test_empty_and_null_strings_leave_defaults)
{
	struct config *cfg = config_test_ok("database: \"\"\ninstance_name: ~\nlog: {}\nhandlers: {}\n");

	ck_assert_ptr_null(cfg->database);
	ck_assert_ptr_null(cfg->instance_name);
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	ck_assert_uint_eq(cfg->nhandlers, 0);
	config_free(cfg);
}
END_TEST

/* Handlers come first here: what they inherit is only known at the end. */
START_TEST(test_handlers_inherit_top_level_after_whole_file)
{
	struct config *cfg = config_test_ok(
		"handlers:\n"
		"  plain:\n"
		"    builtin: sleep\n"
		"  partial:\n"
		"    command: [/bin/echo, hi]\n"
		"    timeout: 2s\n"
		"    backoff: {initial: 10ms}\n"
		"timeout: 1m\n"
		"max_attempts: 9\n"
		"backoff: {initial: 2s, max: 2h}\n");
	const struct handler_config *plain = config_handler(cfg, "plain");
	const struct handler_config *partial = config_handler(cfg, "partial");

	ck_assert_ptr_nonnull(plain);
	ck_assert_int_eq(plain->timeout_ms, 60000);
	ck_assert_int_eq(plain->max_attempts, 9);
	ck_assert_int_eq(plain->backoff_initial_ms, 2000);
	ck_assert_int_eq(plain->backoff_max_ms, 7200000);
	ck_assert_int_eq(plain->concurrency, 0);
	ck_assert_int_eq(plain->max_output, 1048576);

	ck_assert_ptr_nonnull(partial);
	ck_assert_int_eq(partial->timeout_ms, 2000);
	ck_assert_int_eq(partial->max_attempts, 9);
	ck_assert_int_eq(partial->backoff_initial_ms, 10);
	ck_assert_int_eq(partial->backoff_max_ms, 7200000);
	config_free(cfg);
}
END_TEST

/* Fills a handler's template for a task with this payload (URL-encoded
 * when url) and returns the text in a static buffer. */
static const char *
config_test_fill(const struct http_template *tpl, long long id, const char *payload, bool url)
{
	static char text[512];
	struct task t = {.id = id, .payload = (char *) payload};
	struct json_buf b = {0};
	char why[256];

	ck_assert_ptr_nonnull(tpl);
	ck_assert_msg(http_template_fill(tpl, &t, url, &b, why, sizeof why), "fill: %s", why);
	snprintf(text, sizeof text, "%s", b.data);
	json_buf_free(&b);
	return text;
}

/* Every http and breaker key, none at its default; an http handler with
 * only its url; breakers on other types; a source run by an http handler. */
START_TEST(test_http_and_breaker_keys_read_every_key)
{
	char ca[512], text[4096];
	struct config *cfg;
	const struct handler_config *h;
	struct json_buf redacted = {0};

	secrets_clear();
	ck_assert_int_eq(setenv("PGD_CFG_TOKEN", "tok-3xpanded", 1), 0);
	config_test_write("-----BEGIN CERTIFICATE-----\n", ca, sizeof ca);
	snprintf(text, sizeof text,
	         "timeout: 2m\n"
	         "handlers:\n"
	         "  ship:\n"
	         "    http:\n"
	         "      url: \"https://api.example.com:8443/orders/{payload.order.id}/ship?via={id}\"\n"
	         "      method: PUT\n"
	         "      headers:\n"
	         "        Authorization: Bearer ${PGD_CFG_TOKEN}\n"
	         "        X-Price: $$5\n"
	         "        x-count: 5\n"
	         "        X-Flag: true\n"
	         "      follow_redirects: false\n"
	         "      ca_file: %s\n"
	         "      idempotency_key: \"order-{payload.order.id}\"\n"
	         "    timeout: 10s\n"
	         "    max_attempts: 3\n"
	         "    concurrency: 50\n"
	         "    max_output: 65536\n"
	         "    breaker: {failures: 5, window: 1m, open_for: 10s, open_max: 1h}\n"
	         "  s:\n"
	         "    http: {url: 'http://localhost:8080/rows/{id}'}\n"
	         "  cmd: {command: [/bin/true], breaker: {failures: 1}}\n"
	         "  long_open:\n"
	         "    builtin: noop\n"
	         "    breaker: {failures: 1000, open_for: 1d}\n"
	         "sources:\n"
	         "  s: {table: public.t, status: {column: st}}\n", ca);
	cfg = config_test_ok(text);
	unlink(ca);

	h = config_handler(cfg, "ship");
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->type, "http");
	ck_assert_str_eq(h->http_url, "https://api.example.com:8443/orders/{payload.order.id}/ship?via={id}");
	ck_assert_str_eq(config_test_fill(h->http_url_tpl, 42, "{\"order\": {\"id\": \"A/7\"}}", true),
	                 "https://api.example.com:8443/orders/A%2F7/ship?via=42");
	ck_assert_str_eq(h->http_method, "PUT");
	ck_assert_str_eq(h->http_headers[0], "Authorization: Bearer tok-3xpanded");
	ck_assert_str_eq(h->http_headers[1], "X-Price: $5");
	ck_assert_str_eq(h->http_headers[2], "x-count: 5");
	ck_assert_str_eq(h->http_headers[3], "X-Flag: true");
	ck_assert_ptr_null(h->http_headers[4]);
	ck_assert(!h->http_follow_redirects);
	ck_assert_str_eq(h->http_ca_file, ca);
	ck_assert_str_eq(h->http_idempotency_key, "order-{payload.order.id}");
	ck_assert_str_eq(config_test_fill(h->http_idempotency_tpl, 42, "{\"order\": {\"id\": \"A/7\"}}", false),
	                 "order-A/7");
	ck_assert_int_eq(h->timeout_ms, 10000);
	ck_assert_int_eq(h->max_attempts, 3);
	ck_assert_int_eq(h->concurrency, 50);
	ck_assert_int_eq(h->max_output, 65536);
	ck_assert_ptr_null(h->argv);
	ck_assert_ptr_null(h->sql);
	ck_assert_ptr_null(h->builtin);
	ck_assert_int_eq(h->breaker_failures, 5);
	ck_assert_int_eq(h->breaker_window_ms, 60000);
	ck_assert_int_eq(h->breaker_open_for_ms, 10000);
	ck_assert_int_eq(h->breaker_open_max_ms, 3600000);

	/* Only the url: every default, the top level's timeout; the source
	 * of the same name is run by it. */
	h = config_handler(cfg, "s");
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->type, "http");
	ck_assert_str_eq(config_test_fill(h->http_url_tpl, -1, "{}", true), "http://localhost:8080/rows/-1");
	ck_assert_str_eq(h->http_method, "POST");
	ck_assert_ptr_null(h->http_headers);
	ck_assert(!h->http_follow_redirects);
	ck_assert_ptr_null(h->http_ca_file);
	ck_assert_ptr_null(h->http_idempotency_key);
	ck_assert_ptr_null(h->http_idempotency_tpl);
	ck_assert_ptr_null(h->env_passthrough);
	ck_assert_int_eq(h->timeout_ms, 120000);
	ck_assert_int_eq(h->breaker_failures, 0);
	ck_assert_int_eq(h->breaker_window_ms, 30000);
	ck_assert_int_eq(h->breaker_open_for_ms, 30000);
	ck_assert_int_eq(h->breaker_open_max_ms, 600000);
	ck_assert_ptr_eq(config_source(cfg, "s"), &cfg->sources[0]);

	/* A breaker on another type, at its defaults; open_max's default rises
	 * to an open_for above it. */
	h = config_handler(cfg, "cmd");
	ck_assert_str_eq(h->type, "command");
	ck_assert_int_eq(h->breaker_failures, 1);
	ck_assert_int_eq(h->breaker_window_ms, 30000);
	ck_assert_int_eq(h->breaker_open_for_ms, 30000);
	ck_assert_int_eq(h->breaker_open_max_ms, 600000);
	ck_assert_ptr_null(h->http_url_tpl);
	h = config_handler(cfg, "long_open");
	ck_assert_int_eq(h->breaker_failures, 1000);
	ck_assert_int_eq(h->breaker_open_for_ms, 86400000);
	ck_assert_int_eq(h->breaker_open_max_ms, 86400000);

	/* The expanded value is remembered for redaction. */
	secrets_redact(&redacted, "echoed: Bearer tok-3xpanded", 27);
	ck_assert_str_eq(redacted.data, "echoed: Bearer [redacted]");
	json_buf_free(&redacted);
	config_free(cfg);
	secrets_clear();
}
END_TEST

static const char *const config_http_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

START_TEST(test_http_method_takes_each_method)
{
	char text[256];
	struct config *cfg;

	snprintf(text, sizeof text, "handlers:\n  h: {http: {url: 'http://h/', method: %s}}\n",
	         config_http_methods[_i]);
	cfg = config_test_ok(text);
	ck_assert_str_eq(config_handler(cfg, "h")->http_method, config_http_methods[_i]);
	config_free(cfg);
}
END_TEST

/* Each load expands ${VAR} again, as a reload (SIGHUP) does: a rotated
 * token is read, and a variable since unset refuses the file. */
START_TEST(test_each_load_expands_variables_again)
{
	static const char text[] = "handlers:\n  h:\n    http:\n      url: http://h/\n"
	                           "      headers: {Authorization: \"Bearer ${PGD_CFG_TOKEN}\"}\n";
	struct config *cfg;
	char err[1024];

	ck_assert_int_eq(setenv("PGD_CFG_TOKEN", "first-token", 1), 0);
	cfg = config_test_ok(text);
	ck_assert_str_eq(config_handler(cfg, "h")->http_headers[0], "Authorization: Bearer first-token");
	config_free(cfg);
	ck_assert_int_eq(setenv("PGD_CFG_TOKEN", "second-token", 1), 0);
	cfg = config_test_ok(text);
	ck_assert_str_eq(config_handler(cfg, "h")->http_headers[0], "Authorization: Bearer second-token");
	config_free(cfg);
	ck_assert_int_eq(unsetenv("PGD_CFG_TOKEN"), 0);
	ck_assert_ptr_null(config_test_load(text, err, sizeof err));
	ck_assert_str_eq(err, "cfg.yaml:5:32: handlers.h.http.headers.Authorization: ${PGD_CFG_TOKEN} is not set "
	                 "in the daemon's environment");
	secrets_clear();
}
END_TEST

/* A header's value is a secret: no message about it quotes it, as
 * written or expanded. */
START_TEST(test_header_errors_never_quote_a_value)
{
	static const char *const values[] = {
		"\"Bearer s3cr3t\\nX-Evil: 1\"", "\"Bearer s3cr3t ${PGD_CFG_BREAK}\"",
		"\"Bearer s3cr3t ${PGD_CFG_UNSET}\"", "\"Bearer s3cr3t ${\"", "[s3cr3t]", "{s3cr3t: 1}",
		"\"Bearer s3cr3t\\0\"",
	};
	static const char prefix[] = "cfg.yaml:6:24: handlers.h.http.headers.Authorization: ";
	char text[512], err[1024];

	ck_assert_int_eq(setenv("PGD_CFG_BREAK", "v4lue\r\nX-Evil: 1", 1), 0);
	unsetenv("PGD_CFG_UNSET");
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		snprintf(text, sizeof text, "handlers:\n  h:\n    http:\n      url: http://h/\n"
		         "      headers:\n        Authorization: %s\n", values[i]);
		ck_assert_ptr_null(config_test_load(text, err, sizeof err));
		ck_assert_msg(strstr(err, "s3cr3t") == NULL && strstr(err, "v4lue") == NULL, "%s", err);
		ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s", err);
	}
	secrets_clear();
}
END_TEST

static const struct {
	const char *text;
	bool value;
} config_bools[] = {
	{"true", true}, {"True", true}, {"TRUE", true},
	{"false", false}, {"False", false}, {"FALSE", false},
	{"\"false\"", false},
};

START_TEST(test_bool_accepts_true_and_false_spellings)
{
	char text[64];
	struct config *cfg;

	snprintf(text, sizeof text, "notify: %s\n", config_bools[_i].text);
	cfg = config_test_ok(text);
	ck_assert_int_eq(cfg->notify, config_bools[_i].value);
	config_free(cfg);
}
END_TEST

static const struct {
	const char *text;
	int64_t ms;
} config_good_durations[] = {
	{"0ms", 0},
	{"0s", 0},
	{"250ms", 250},
	{"30s", 30000},
	{"5m", 300000},
	{"1h", 3600000},
	{"2d", 172800000},
	{"007s", 7000},
	{"9223372036854775807ms", INT64_MAX},
	{"106751991167d", INT64_C(106751991167) * 86400000},
};

START_TEST(test_duration_parses)
{
	int64_t ms = -1;

	ck_assert_msg(config_parse_duration(config_good_durations[_i].text, &ms), "rejected %s",
	              config_good_durations[_i].text);
	ck_assert_int_eq(ms, config_good_durations[_i].ms);
}
END_TEST

static const char *const config_bad_durations[] = {
	"", "5", "-5s", "+5s", " 5s", "5s ", "5 s", "5S", "5sec", "1h30m", "ms", "5.5s",
	"0x10s", "1e3ms", "9223372036854775808ms", "106751991168d", "99999999999999999999999s",
};

START_TEST(test_duration_rejects)
{
	int64_t ms = 42;

	ck_assert_msg(!config_parse_duration(config_bad_durations[_i], &ms), "accepted '%s'",
	              config_bad_durations[_i]);
	ck_assert_int_eq(ms, 42);
}
END_TEST

START_TEST(test_duration_rejects_null)
{
	int64_t ms;

	ck_assert(!config_parse_duration(NULL, &ms));
}
END_TEST

/*
 * Bad files and the exact error each gives, after "cfg.yaml:". Lines and
 * columns count from 1 and point at the key for key errors (unknown,
 * duplicate, handler type) and at the value for value errors. A want
 * ending in "..." is a prefix: the rest is libyaml's own wording.
 */
static const struct {
	const char *name;
	const char *text;
	const char *want;
} config_bad[] = {
	{"unknown top-level key", "concurrency: 4\nfrobnicate: 1\n",
	 "2:1: frobnicate: unknown key"},
	{"unknown handler key", "handlers:\n  email:\n    command: [a]\n    retries: 3\n",
	 "4:5: handlers.email.retries: unknown key"},
	{"unknown nested key", "log: {level: info, colour: red}\n",
	 "1:20: log.colour: unknown key"},
	{"unknown handler backoff key",
	 "handlers:\n  e:\n    builtin: noop\n    backoff: {initial: 1s, cap: 2s}\n",
	 "4:28: handlers.e.backoff.cap: unknown key"},
	{"dotted key", "log.level: debug\n",
	 "1:1: log.level: unknown key"},
	{"list for an integer", "concurrency: [1, 2]\n",
	 "1:14: concurrency: expected an integer, got a list"},
	{"map for a string", "database:\n  host: x\n",
	 "2:3: database: expected a string, got a map"},
	{"word for an integer", "max_attempts: abc\n",
	 "1:15: max_attempts: 'abc' is not an integer"},
	{"fraction for an integer", "max_attempts: 2.5\n",
	 "1:15: max_attempts: '2.5' is not an integer"},
	{"hex for an integer", "max_attempts: 0x10\n",
	 "1:15: max_attempts: '0x10' is not an integer"},
	{"scalar for a list", "queues: default\n",
	 "1:9: queues: expected a list of strings, got a scalar"},
	{"scalar for a map", "log: debug\n",
	 "1:6: log: expected a map, got a scalar"},
	{"yes for a bool", "notify: yes\n",
	 "1:9: notify: 'yes' is not true or false"},
	{"unknown log level", "log:\n  level: loud\n",
	 "2:10: log.level: 'loud' is not one of debug, info, warn, error"},
	{"unknown log format", "log: {format: xml}\n",
	 "1:15: log.format: 'xml' is not one of text, json"},
	{"concurrency zero", "database: x\nqueues: [a]\nnotify: true\nconcurrency: 0\n",
	 "4:14: concurrency: 0 is out of range (1..1024)"},
	{"negative concurrency", "concurrency: -3\n",
	 "1:14: concurrency: -3 is out of range (1..1024)"},
	{"integer overflow", "concurrency: 99999999999999999999\n",
	 "1:14: concurrency: 99999999999999999999 is out of range (1..1024)"},
	{"max_attempts too high", "max_attempts: 1001\n",
	 "1:15: max_attempts: 1001 is out of range (1..1000)"},
	{"poll_interval too short", "poll_interval: 5ms\n",
	 "1:16: poll_interval: 5ms is out of range (10ms..1h)"},
	{"lease too long", "lease: 2d\n",
	 "1:8: lease: 2d is out of range (1s..1d)"},
	{"duration overflow", "timeout: 9999999999999999999d\n",
	 "1:10: timeout: 9999999999999999999d is out of range (10ms..7d)"},
	{"handler max_output negative", "handlers:\n  e:\n    builtin: noop\n    max_output: -1\n",
	 "4:17: handlers.e.max_output: -1 is out of range (0..1073741824)"},
	{"handler concurrency too high", "handlers:\n  e: {builtin: noop, concurrency: 1025}\n",
	 "2:35: handlers.e.concurrency: 1025 is out of range (0..1024)"},
	{"bare number for a duration", "lease: 30\n",
	 "1:8: lease: '30' is not a duration: an integer followed by ms, s, m, h or d, "
	 "such as 250ms, 30s or 5m"},
	{"unknown duration unit", "handlers:\n  e:\n    builtin: noop\n    timeout: 3 weeks\n",
	 "4:14: handlers.e.timeout: '3 weeks' is not a duration: an integer followed by ms, s, m, "
	 "h or d, such as 250ms, 30s or 5m"},
	{"negative duration", "shutdown_grace: -1s\n",
	 "1:17: shutdown_grace: '-1s' is not a duration: an integer followed by ms, s, m, h or d, "
	 "such as 250ms, 30s or 5m"},
	{"duplicate top-level key", "notify: true\nconcurrency: 2\nnotify: false\n",
	 "3:1: notify: duplicate key (first at line 1)"},
	{"duplicate nested map", "log: {level: info}\nlog: {format: json}\n",
	 "2:1: log: duplicate key (first at line 1)"},
	{"duplicate handler", "handlers:\n  e: {builtin: noop}\n  e: {builtin: fail}\n",
	 "3:3: handlers.e: duplicate key (first at line 2)"},
	{"duplicate handler key", "handlers:\n  e:\n    builtin: noop\n    timeout: 1s\n    timeout: 2s\n",
	 "5:5: handlers.e.timeout: duplicate key (first at line 4)"},
	/* Two equal queue names would LISTEN and sleep twice on one queue, and
	 * its wake-ups would never reach the loop. */
	{"duplicate queue", "queues: [default, default]\n",
	 "1:19: queues: default is listed twice"},
	{"duplicate queue in a block list", "queues:\n  - mail\n  - default\n  - mail\n",
	 "4:5: queues: mail is listed twice"},
	{"handler with no type", "handlers:\n  e:\n    timeout: 1s\n",
	 "2:3: handlers.e: needs one of command, sql, builtin or http"},
	{"handler with an empty map", "handlers:\n  a: {builtin: noop}\n  e: {}\n",
	 "3:3: handlers.e: needs one of command, sql, builtin or http"},
	{"handler with two types",
	 "handlers:\n  e:\n    sql: select 1\n    timeout: 1s\n    builtin: noop\n",
	 "5:5: handlers.e: has more than one of command, sql, builtin and http (give one)"},
	{"handler with three types", "handlers:\n  e: {builtin: noop, command: [x], sql: y}\n",
	 "2:36: handlers.e: has more than one of command, sql, builtin and http (give one)"},
	{"empty command list", "handlers:\n  e:\n    command: []\n",
	 "3:14: handlers.e.command: must not be empty"},
	{"empty string in command", "handlers:\n  e:\n    command: [a, '']\n",
	 "3:18: handlers.e.command: item 2 is empty"},
	{"list in command", "handlers:\n  e:\n    command:\n      - a\n      - [b]\n",
	 "5:9: handlers.e.command: item 2 is a list, expected a string"},
	{"scalar for command", "handlers:\n  e:\n    command: /bin/true\n",
	 "3:14: handlers.e.command: expected a list of strings, got a scalar"},
	{"empty sql", "handlers:\n  e: {sql: ''}\n",
	 "2:12: handlers.e.sql: must not be empty"},
	{"unknown builtin", "handlers:\n  e: {builtin: explode}\n",
	 "2:16: handlers.e.builtin: 'explode' is not one of noop, sleep, fail"},
	{"handler that is not a map", "handlers:\n  e: noop\n",
	 "2:6: handlers.e: expected a map of handler settings, got a scalar"},
	{"handlers that are not a map", "handlers: [a]\n",
	 "1:11: handlers: expected a map, got a list"},
	{"empty handler kind", "handlers:\n  '': {builtin: noop}\n",
	 "2:3: handlers: expected a task kind, got an empty string"},
	{"empty queues list", "queues: []\n",
	 "1:9: queues: must not be empty"},
	{"empty queue name", "queues:\n  - a\n  - \"\"\n",
	 "3:5: queues: item 2 is empty"},
	{"backoff max below initial", "backoff:\n  initial: 2h\n  max: 1h\n",
	 "3:8: backoff.max: 1h is less than backoff.initial (2h)"},
	{"handler backoff initial above inherited max",
	 "backoff: {max: 1m}\nhandlers:\n  e:\n    builtin: noop\n    backoff: {initial: 5m}\n",
	 "5:24: handlers.e.backoff.initial: 5m is more than backoff.max (1m)"},
	{"handler backoff above a later top-level max",
	 "handlers:\n  e:\n    builtin: noop\n    backoff: {initial: 5m}\nbackoff: {max: 1m}\n",
	 "4:24: handlers.e.backoff.initial: 5m is more than backoff.max (1m)"},
	{"alias", "timeout: &t 1s\nlease: *t\n",
	 "2:8: *t: aliases are not supported"},
	{"complex key", "? [a]\n: 1\n",
	 "1:3: expected a key, got a list"},
	{"complex key in a handler's backoff", "handlers:\n  e:\n    backoff: {[a]: 1}\n",
	 "3:15: handlers.e.backoff: expected a key, got a list"},
	{"yaml syntax error: bad indentation", "log:\n  level: info\n format: json\n",
	 "3:2: invalid yaml: did not find expected key..."},
	{"yaml syntax error: unclosed flow list", "queues: [a, b\nconcurrency: 4\n",
	 "2:12: invalid yaml: did not find expected ',' or ']'..."},
	{"yaml syntax error: tab indentation", "log:\n\tlevel: info\n",
	 "2:1: invalid yaml: found character that cannot start any token..."},
	{"yaml syntax error: two values", "concurrency: 4: 5\n",
	 "1:15: invalid yaml: mapping values are not allowed in this context..."},
	{"yaml syntax error: unclosed quote", "database: \"dbname=x\n",
	 "2:1: invalid yaml: found unexpected end of stream..."},
	{"invalid utf-8", "concurrency: 4\nlease: 1\xffs\n",
	 "2:9: invalid yaml: invalid leading UTF-8 octet..."},
	{"nul character", "database: \"a\\0b\"\n",
	 "1:11: database: contains a NUL character"},
	{"top level is a list", "- a\n- b\n",
	 "1:1: expected a map of settings at the top level, got a list"},
	{"top level is a scalar", "\n\nhello\n",
	 "3:1: expected a map of settings at the top level, got a scalar"},
	{"empty file", "",
	 "1:1: the file is empty, expected a map of settings (write {} for all defaults)"},
	{"two documents", "{}\n---\n{}\n",
	 "2:1: expected one yaml document, found a second"},
	{"scalar for env_passthrough", "env_passthrough: PATH\n",
	 "1:18: env_passthrough: expected a list of environment variable names, got a scalar"},
	{"env_passthrough name with =", "env_passthrough: [PATH, 'A=b']\n",
	 "1:25: env_passthrough: 'A=b' is not an environment variable name (letters, digits and _, "
	 "not starting with a digit)"},
	{"env_passthrough name starting with a digit", "handlers:\n  e:\n    builtin: noop\n"
	 "    env_passthrough:\n      - HOME\n      - 1PASSWORD\n",
	 "6:9: handlers.e.env_passthrough: '1PASSWORD' is not an environment variable name (letters, "
	 "digits and _, not starting with a digit)"},
	{"env_passthrough of a task variable", "env_passthrough: [PGDISPATCH_TASK_ID]\n",
	 "1:19: env_passthrough: PGDISPATCH_TASK_ID is set by the daemon for each task"},
	{"env_passthrough name twice", "env_passthrough: [PATH, HOME, PATH]\n",
	 "1:31: env_passthrough: PATH is listed twice"},
	{"unknown user", "concurrency: 2\nuser: no-such-user-pgdispatch\n",
	 "2:7: user: no-such-user-pgdispatch: no such user on this host"},
	{"unknown group", "user: root\ngroup: no-such-group-pgdispatch\n",
	 "2:8: group: no-such-group-pgdispatch: no such group on this host"},
	{"group without user", "group: root\n",
	 "1:1: group: needs user (the daemon switches both or neither)"},
	{"list for user", "user: [root]\n",
	 "1:7: user: expected a string, got a list"},
	{"retention word", "concurrency: 2\nretention:\n  complete: forever\n",
	 "3:13: retention.complete: 'forever' is not a duration such as 12h or 7d, or 0 or off (keep for ever)"},
	{"retention bare number", "retention: {failed: 30}\n",
	 "1:21: retention.failed: '30' is not a duration such as 12h or 7d, or 0 or off (keep for ever)"},
	{"retention too short", "retention: {cancelled: 500ms}\n",
	 "1:24: retention.cancelled: 500ms is out of range (1s..36500d)"},
	{"retention unknown key", "retention:\n  pending: 1d\n",
	 "2:3: retention.pending: unknown key"},
	{"retention as a scalar", "retention: 7d\n",
	 "1:12: retention: expected a map, got a scalar"},
	{"instance_name too long", "instance_name: abcdefghijabcdefghijabcdefghijabcdefghij-2345\n",
	 "1:16: instance_name: longer than 44 bytes (with #PID it must fit in application_name)"},
	{"instance_name not ASCII", "instance_name: caf\xc3\xa9\n",
	 "1:16: instance_name: only printable ASCII characters (PostgreSQL's application_name keeps no others)"},
	{"schedule without cron", "schedules:\n  r: {kind: report}\n",
	 "2:3: schedules.r: needs cron (such as \"0 3 * * *\")"},
	{"schedule without kind", "schedules:\n  r:\n    cron: '@daily'\n",
	 "2:3: schedules.r: needs kind (the task kind each tick enqueues)"},
	{"schedule with a bad hour", "schedules:\n  r: {cron: '0 25 * * *', kind: k}\n",
	 "2:13: schedules.r.cron: hour: '25' is out of range (0..23)"},
	{"schedule with four fields", "schedules:\n  r:\n    kind: k\n    cron: '0 3 * *'\n",
	 "4:11: schedules.r.cron: expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
	 "(second first), got 4"},
	{"schedule that never matches", "schedules:\n  r: {cron: '0 0 31 2 *', kind: k}\n",
	 "2:13: schedules.r.cron: '0 0 31 2 *' never matches a day"},
	{"schedule with an unknown time zone",
	 "schedules:\n  r:\n    cron: '@daily'\n    kind: k\n    timezone: Europe/Berlinn\n",
	 "5:15: schedules.r.timezone: 'Europe/Berlinn' is not a time zone of the tz database (such as "
	 "Europe/Berlin, or UTC)"},
	{"schedule with an unknown key", "schedules:\n  r: {cron: '@daily', kind: k, every: 5m}\n",
	 "2:32: schedules.r.every: unknown key"},
	{"schedule with a scalar payload", "schedules:\n  r: {cron: '@daily', kind: k, payload: 5}\n",
	 "2:41: schedules.r.payload: expected a map, got a scalar"},
	{"schedule with a list payload", "schedules:\n  r: {cron: '@daily', kind: k, payload: [1]}\n",
	 "2:41: schedules.r.payload: expected a map, got a list"},
	{"schedule payload with a list key", "schedules:\n  r:\n    cron: '@daily'\n    kind: k\n"
	 "    payload: {a: 1, [b]: 2}\n",
	 "5:21: schedules.r.payload: expected a key, got a list"},
	{"schedule with catch_up yes", "schedules:\n  r: {cron: '@daily', kind: k, catch_up: yes}\n",
	 "2:42: schedules.r.catch_up: 'yes' is not true or false"},
	{"schedule with max_attempts 0", "schedules:\n  r: {cron: '@daily', kind: k, max_attempts: 0}\n",
	 "2:46: schedules.r.max_attempts: 0 is out of range (1..1000)"},
	{"schedule with an empty kind", "schedules:\n  r: {cron: '@daily', kind: ''}\n",
	 "2:29: schedules.r.kind: must not be empty"},
	{"duplicate schedule", "schedules:\n  r: {cron: '@daily', kind: k}\n  r: {cron: '@hourly', kind: k}\n",
	 "3:3: schedules.r: duplicate key"},
	{"schedule that is not a map", "schedules:\n  r: '@daily'\n",
	 "2:6: schedules.r: expected a map of schedule settings, got a scalar"},
	{"schedules that are not a map", "schedules: [r]\n",
	 "1:12: schedules: expected a map, got a list"},
	/* Sources: SRC_H is a handler for source s, after the source so that
	 * the check for it is seen to wait for the whole file. */
#define SRC_H "handlers:\n  s: {builtin: noop}\n"
	{"source with an unknown key", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "    batch: 5\n" SRC_H,
	 "5:5: sources.s.batch: unknown key"},
	{"source with an unknown status key", "sources:\n  s:\n    table: public.t\n"
	 "    status: {column: st, done: ok}\n" SRC_H,
	 "4:26: sources.s.status.done: unknown key"},
	{"source with an unknown columns key", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "    columns:\n      attempts: n\n      tries: m\n" SRC_H,
	 "7:7: sources.s.columns.tries: unknown key (the columns the daemon can keep: attempts, run_at, "
	 "last_error, result, locked_by, lease_expires_at, started_at, finished_at, priority)"},
	{"source with a columns key twice", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "    columns: {attempts: n, attempts: m}\n" SRC_H,
	 "5:28: sources.s.columns.attempts: duplicate key (first at line 5)"},
	{"source with an empty mapped column", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "    columns: {last_error: ''}\n" SRC_H,
	 "5:27: sources.s.columns.last_error: must not be empty"},
	{"source with a list for a mapped column", "sources:\n  s:\n    table: public.t\n"
	 "    status: {column: st}\n    columns: {last_error: [a]}\n" SRC_H,
	 "5:27: sources.s.columns.last_error: expected a string, got a list"},
	{"source without table", "sources:\n  s:\n    status: {column: st}\n" SRC_H,
	 "2:3: sources.s: needs table (schema.table, such as public.configuration_update)"},
	{"source with an empty table", "sources:\n  s:\n    table: ''\n    status: {column: st}\n" SRC_H,
	 "3:12: sources.s.table: must not be empty"},
	{"source without status.column", "sources:\n  s:\n    table: public.t\n    status: {pending: new}\n" SRC_H,
	 "2:3: sources.s: needs status.column (the enum or text column that holds each row's state)"},
	{"source without status", "sources:\n  s: {table: public.t}\n" SRC_H,
	 "2:3: sources.s: needs status.column (the enum or text column that holds each row's state)"},
	{"source table without a schema", "sources:\n  s:\n    table: configuration_update\n"
	 "    status: {column: st}\n" SRC_H,
	 "3:12: sources.s.table: 'configuration_update' is not schema.table (name the schema too, such as "
	 "public.configuration_update)"},
	{"source table whose only dot is quoted", "sources:\n  s:\n    table: '\"public.t\"'\n"
	 "    status: {column: st}\n" SRC_H,
	 "3:12: sources.s.table: '\"public.t\"' is not schema.table (name the schema too, such as "
	 "public.\"public.t\")"},
	{"source with an empty status value", "sources:\n  s:\n    table: public.t\n"
	 "    status: {column: st, pending: ''}\n" SRC_H,
	 "4:35: sources.s.status.pending: must not be empty"},
	{"source with a null status value", "sources:\n  s:\n    table: public.t\n"
	 "    status:\n      column: st\n      failed: ~\n" SRC_H,
	 "6:15: sources.s.status.failed: must not be empty"},
	{"source with two equal status values", "sources:\n  s:\n    table: public.t\n"
	 "    status:\n      column: st\n      complete: done\n      failed: done\n" SRC_H,
	 "7:15: sources.s.status.failed: 'done' is also status.complete (each state needs a value of its own)"},
	{"source with a status value equal to a default", "sources:\n  s:\n    table: public.t\n"
	 "    status:\n      column: st\n      complete: pending\n" SRC_H,
	 "6:17: sources.s.status.complete: 'pending' is also status.pending (each state needs a value of its own)"},
	{"source with a channel of ours", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "    channel: dispatch_tasks\n" SRC_H,
	 "5:14: sources.s.channel: 'dispatch_tasks': channels starting with dispatch_ are pgdispatch's own"},
	{"source mapping the status column", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "    columns: {last_error: st}\n" SRC_H,
	 "5:27: sources.s.columns.last_error: 'st' is also status.column (a column holds one thing)"},
	{"source mapping one column twice", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "    columns:\n      locked_by: who\n      last_error: who\n" SRC_H,
	 "7:19: sources.s.columns.last_error: 'who' is also columns.locked_by (a column holds one thing)"},
	{"source mapping its key", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "    columns: {attempts: id}\n    key: id\n" SRC_H,
	 "6:10: sources.s.key: 'id' is also columns.attempts (a column holds one thing)"},
	{"source without a handler", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "handlers:\n  t: {builtin: noop}\n",
	 "2:3: sources.s: no handler named s; add handlers.s"},
	{"source with only a queue of its name", "queues: [s]\nsources:\n  s: {table: public.t, status: {column: st}}\n",
	 "3:3: sources.s: no handler named s; add handlers.s"},
	{"duplicate source", "sources:\n  s: {table: public.t, status: {column: st}}\n"
	 "  s: {table: public.u, status: {column: st}}\n" SRC_H,
	 "3:3: sources.s: duplicate key (first at line 2)"},
	{"source that is not a map", "sources:\n  s: public.t\n" SRC_H,
	 "2:6: sources.s: expected a map of source settings, got a scalar"},
	{"sources that are not a map", "sources: [s]\n",
	 "1:10: sources: expected a map, got a list"},
	{"empty source name", "sources:\n  '': {table: public.t, status: {column: st}}\n",
	 "2:3: sources: expected a source name, got an empty string"},
	{"source columns that are not a map", "sources:\n  s:\n    table: public.t\n    status: {column: st}\n"
	 "    columns: [attempts]\n" SRC_H,
	 "5:14: sources.s.columns: expected a map, got a list"},
#undef SRC_H
	/* HTTP handlers. HTTP_H is one with its url on line 4; more http keys
	 * follow from line 5, at column 7. */
#define HTTP_H "handlers:\n  h:\n    http:\n      url: http://h/x\n"
#define DAEMON_SETS " set by the daemon on every request (not configurable)"
#define NOT_TOKEN " is not a header name (letters, digits and !#$%&'*+-.^_`|~)"
	{"http as a scalar", "handlers:\n  h:\n    http: https://x/\n",
	 "3:11: handlers.h.http: expected a map, got a scalar"},
	{"http without url", "handlers:\n  h:\n    http: {method: GET}\n",
	 "3:5: handlers.h.http: needs url (such as https://api.example.com/tasks/{id})"},
	{"http with an empty url", "handlers:\n  h:\n    http: {url: ''}\n",
	 "3:17: handlers.h.http.url: must not be empty"},
	{"http url of another scheme", "handlers:\n  h:\n    http: {url: 'ftp://h/x'}\n",
	 "3:17: handlers.h.http.url: must start with http:// or https://"},
	{"http url with a placeholder in the host", "handlers:\n  h:\n    http:\n      url: 'https://{payload.host}/x'\n",
	 "4:12: handlers.h.http.url: a placeholder or brace before the path (the scheme, host and port are fixed; "
	 "{id} and {payload...} may only follow them)"},
	{"http url with a placeholder in the port", "handlers:\n  h:\n    http:\n      url: 'http://h:{id}/'\n",
	 "4:12: handlers.h.http.url: a placeholder or brace before the path (the scheme, host and port are fixed; "
	 "{id} and {payload...} may only follow them)"},
	{"http url without a host", "handlers:\n  h:\n    http:\n      url: 'http:///x/{id}'\n",
	 "4:12: handlers.h.http.url: has no host"},
	{"http url with a stray brace", "handlers:\n  h:\n    http:\n      url: 'http://h/{id}}'\n",
	 "4:12: handlers.h.http.url: stray '}' at byte 14 (write }} for a literal brace)"},
	{"http url with an unclosed brace", "handlers:\n  h:\n    http:\n      url: 'http://h/{id'\n",
	 "4:12: handlers.h.http.url: '{' at byte 10 is not closed (write {{ for a literal brace)"},
	{"http url with an unknown placeholder", "handlers:\n  h:\n    http:\n      url: 'http://h/{task}'\n",
	 "4:12: handlers.h.http.url: unknown placeholder {task} at byte 10 (use {id} or {payload.FIELD})"},
	{"http url with a space", "handlers:\n  h:\n    http:\n      url: 'http://h/a b'\n",
	 "4:12: handlers.h.http.url: has a space or control character at byte 11 (write a space as %20)"},
	{"http and command", "handlers:\n  h:\n    command: [a]\n    http: {url: 'http://h/'}\n",
	 "4:5: handlers.h: has more than one of command, sql, builtin and http (give one)"},
	{"unknown http key", "handlers:\n  h:\n    http: {url: 'http://h/', retries: 3}\n",
	 "3:30: handlers.h.http.retries: unknown key"},
	{"duplicate http key", HTTP_H "      url: http://h/y\n",
	 "5:7: handlers.h.http.url: duplicate key (first at line 4)"},
	/* http.* keys outside http: */
	{"url beside http", "handlers:\n  h:\n    command: [a]\n    url: http://h/\n",
	 "4:5: handlers.h.url: unknown key (did you mean http.url?)"},
	{"headers beside http", HTTP_H "    headers: {X-A: b}\n",
	 "5:5: handlers.h.headers: unknown key (did you mean http.headers?)"},
	{"dotted http key", "handlers:\n  h:\n    builtin: noop\n    http.url: http://h/\n",
	 "4:5: handlers.h.http.url: unknown key"},
	{"http at the top level", "http: {url: 'http://h/'}\n",
	 "1:1: http: unknown key"},
	{"backoff key at the top level", "initial: 1s\n",
	 "1:1: initial: unknown key (did you mean backoff.initial?)"},
	{"http method in lower case", HTTP_H "      method: get\n",
	 "5:15: handlers.h.http.method: 'get' is not one of GET, POST, PUT, PATCH, DELETE"},
	{"http method as a list", HTTP_H "      method: [GET]\n",
	 "5:15: handlers.h.http.method: expected one of GET, POST, PUT, PATCH, DELETE, got a list"},
	{"http follow_redirects yes", HTTP_H "      follow_redirects: yes\n",
	 "5:25: handlers.h.http.follow_redirects: 'yes' is not true or false"},
	{"http headers as a list", HTTP_H "      headers: [a]\n",
	 "5:16: handlers.h.http.headers: expected a map, got a list"},
	{"http header name with a space", HTTP_H "      headers:\n        'Bad Name': x\n",
	 "6:9: handlers.h.http.headers: 'Bad Name'" NOT_TOKEN},
	{"http header name with a colon", HTTP_H "      headers:\n        'X-A:': x\n",
	 "6:9: handlers.h.http.headers: 'X-A:'" NOT_TOKEN},
	{"empty http header name", HTTP_H "      headers:\n        '': x\n",
	 "6:9: handlers.h.http.headers: ''" NOT_TOKEN},
	{"http header name as a list", HTTP_H "      headers: {[a]: b}\n",
	 "5:17: handlers.h.http.headers: expected a header name, got a list"},
	{"http header Content-Type", HTTP_H "      headers:\n        Content-Type: text/plain\n",
	 "6:9: handlers.h.http.headers.Content-Type:" DAEMON_SETS},
	{"http header content-length", HTTP_H "      headers:\n        content-length: 5\n",
	 "6:9: handlers.h.http.headers.content-length:" DAEMON_SETS},
	{"http header Idempotency-Key", HTTP_H "      headers:\n        Idempotency-Key: k\n",
	 "6:9: handlers.h.http.headers.Idempotency-Key:" DAEMON_SETS},
	{"http header X-Pgdispatch-Attempt", HTTP_H "      headers:\n        X-PGDISPATCH-ATTEMPT: 1\n",
	 "6:9: handlers.h.http.headers.X-PGDISPATCH-ATTEMPT:" DAEMON_SETS},
	{"http header Host", HTTP_H "      headers:\n        Host: other\n",
	 "6:9: handlers.h.http.headers.Host:" DAEMON_SETS},
	{"http header Transfer-Encoding", HTTP_H "      headers:\n        Transfer-Encoding: chunked\n",
	 "6:9: handlers.h.http.headers.Transfer-Encoding:" DAEMON_SETS},
	{"http header Expect", HTTP_H "      headers:\n        Expect: 100-continue\n",
	 "6:9: handlers.h.http.headers.Expect:" DAEMON_SETS},
	{"http follow_redirects with headers", HTTP_H "      follow_redirects: true\n      headers:\n        X-A: 1\n",
	 "5:7: handlers.h.http.follow_redirects: not with http.headers (a redirect may name any host, and "
	 "libcurl would send it the headers: a ${VAR} secret with them)"},
	{"http header twice", HTTP_H "      headers:\n        X-A: 1\n        x-a: 2\n",
	 "7:9: handlers.h.http.headers.x-a: duplicate header (first at line 6; header names ignore case)"},
	{"http header value as a list", HTTP_H "      headers:\n        X-A: [1]\n",
	 "6:14: handlers.h.http.headers.X-A: expected a string, got a list"},
	{"empty http header value", HTTP_H "      headers:\n        X-A: ''\n",
	 "6:14: handlers.h.http.headers.X-A: must not be empty"},
	{"null http header value", HTTP_H "      headers: {X-A: ~}\n",
	 "5:22: handlers.h.http.headers.X-A: must not be empty"},
	{"http header value with a line break", HTTP_H "      headers:\n        X-A: \"a\\nX-B: b\"\n",
	 "6:14: handlers.h.http.headers.X-A: contains a line break"},
	{"http header value with a NUL", HTTP_H "      headers:\n        X-A: \"a\\0b\"\n",
	 "6:14: handlers.h.http.headers.X-A: contains a NUL character"},
	{"http header of an unset variable", HTTP_H "      headers:\n        Authorization: Bearer ${PGD_CFG_UNSET}\n",
	 "6:24: handlers.h.http.headers.Authorization: ${PGD_CFG_UNSET} is not set in the daemon's environment"},
	{"http header with a bad ${", HTTP_H "      headers:\n        X-A: 'a ${1}'\n",
	 "6:14: handlers.h.http.headers.X-A: '${' at byte 3 does not start ${NAME} (NAME: letters, digits and _, "
	 "not starting with a digit; write $$ for a literal $)"},
	{"http header of a variable with a line break",
	 HTTP_H "      headers:\n        X-A: ${PGD_CFG_TOKEN}-${PGD_CFG_BREAK}\n",
	 "6:14: handlers.h.http.headers.X-A: the value of ${PGD_CFG_BREAK} contains a line break"},
	{"http header of a blank variable", HTTP_H "      headers:\n        X-A: ' ${PGD_CFG_BLANK}'\n",
	 "6:14: handlers.h.http.headers.X-A: empty once ${VAR} are expanded (a header needs a value)"},
	{"http ca_file missing", HTTP_H "      ca_file: /nonexistent-pgdispatch/ca.pem\n",
	 "5:16: handlers.h.http.ca_file: /nonexistent-pgdispatch/ca.pem: No such file or directory"},
	{"http ca_file a directory", HTTP_H "      ca_file: /\n",
	 "5:16: handlers.h.http.ca_file: /: Is a directory"},
	{"http ca_file a device", HTTP_H "      ca_file: /dev/null\n",
	 "5:16: handlers.h.http.ca_file: /dev/null: not a regular file"},
	{"http idempotency_key with a stray brace", HTTP_H "      idempotency_key: 'k-{id}}'\n",
	 "5:24: handlers.h.http.idempotency_key: stray '}' at byte 7 (write }} for a literal brace)"},
	{"http idempotency_key with a line break", HTTP_H "      idempotency_key: \"k\\n{id}\"\n",
	 "5:24: handlers.h.http.idempotency_key: has a line break at byte 2"},
	{"http idempotency_key of the whole payload", HTTP_H "      idempotency_key: '{payload}'\n",
	 "5:24: handlers.h.http.idempotency_key: {payload} at byte 1 needs a field, such as {payload.id}"},
	{"http handler with env_passthrough", HTTP_H "    env_passthrough: [TOKEN]\n",
	 "5:5: handlers.h.env_passthrough: an http handler runs no program (pass a secret as a header: ${VAR})"},
	/* Breakers. */
	{"breaker without failures", "handlers:\n  h:\n    builtin: noop\n    breaker: {window: 1m}\n",
	 "4:5: handlers.h.breaker: needs failures (how many failures within window open it)"},
	{"empty breaker", "handlers:\n  h:\n    builtin: noop\n    breaker: {}\n",
	 "4:5: handlers.h.breaker: needs failures (how many failures within window open it)"},
	{"breaker as a scalar", "handlers:\n  h:\n    builtin: noop\n    breaker: 5\n",
	 "4:14: handlers.h.breaker: expected a map, got a scalar"},
	{"breaker failures 0", "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: 0}\n",
	 "4:25: handlers.h.breaker.failures: 0 is out of range (1..1000)"},
	{"breaker failures 1001", "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: 1001}\n",
	 "4:25: handlers.h.breaker.failures: 1001 is out of range (1..1000)"},
	{"breaker failures a word", "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: many}\n",
	 "4:25: handlers.h.breaker.failures: 'many' is not an integer"},
	{"breaker window too short", "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: 1, window: 500ms}\n",
	 "4:36: handlers.h.breaker.window: 500ms is out of range (1s..1d)"},
	{"breaker window too long", "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: 1, window: 2d}\n",
	 "4:36: handlers.h.breaker.window: 2d is out of range (1s..1d)"},
	{"breaker open_for 0", "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: 1, open_for: 0s}\n",
	 "4:38: handlers.h.breaker.open_for: 0s is out of range (1s..1d)"},
	{"breaker open_for not a duration", "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: 1, open_for: 30}\n",
	 "4:38: handlers.h.breaker.open_for: '30' is not a duration: an integer followed by ms, s, m, h or d, such "
	 "as 250ms, 30s or 5m"},
	{"breaker open_max too long", "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: 1, open_max: 8d}\n",
	 "4:38: handlers.h.breaker.open_max: 8d is out of range (1s..7d)"},
	{"breaker open_max below open_for",
	 "handlers:\n  h:\n    builtin: noop\n    breaker:\n      failures: 1\n      open_for: 1m\n      open_max: 10s\n",
	 "7:17: handlers.h.breaker.open_max: 10s is less than breaker.open_for (1m)"},
	{"breaker open_max below the default open_for",
	 "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: 1, open_max: 10s}\n",
	 "4:38: handlers.h.breaker.open_max: 10s is less than breaker.open_for (30s)"},
	{"unknown breaker key", "handlers:\n  h:\n    builtin: noop\n    breaker: {failures: 1, threshold: 2}\n",
	 "4:28: handlers.h.breaker.threshold: unknown key"},
	{"duplicate breaker key", "handlers:\n  h:\n    builtin: noop\n    breaker:\n      failures: 1\n      failures: 2\n",
	 "6:7: handlers.h.breaker.failures: duplicate key (first at line 5)"},
	{"breaker key beside breaker", "handlers:\n  h:\n    builtin: noop\n    failures: 3\n",
	 "4:5: handlers.h.failures: unknown key (did you mean breaker.failures?)"},
	{"breaker inside http", HTTP_H "      breaker: {failures: 1}\n",
	 "5:7: handlers.h.http.breaker: unknown key"},
	{"breaker at the top level", "breaker: {failures: 1}\n",
	 "1:1: breaker: unknown key"},
	/* A source's handler may be http, and its breaker is the source's;
	 * the handler's own errors still come first. */
	{"source whose http handler has no url",
	 "sources:\n  s: {table: public.t, status: {column: st}}\nhandlers:\n  s: {http: {}}\n",
	 "4:7: handlers.s.http: needs url (such as https://api.example.com/tasks/{id})"},
#undef HTTP_H
#undef DAEMON_SETS
#undef NOT_TOKEN
};

START_TEST(test_bad_config_names_file_line_column)
{
	char err[1024];
	struct config *cfg;
	const char *want = config_bad[_i].want;
	size_t n = strlen(want);
	bool prefix = n > 3 && strcmp(want + n - 3, "...") == 0;
	char full[1024];

	/* The variables the http header cases name. */
	ck_assert_int_eq(setenv("PGD_CFG_TOKEN", "tok-value", 1), 0);
	ck_assert_int_eq(setenv("PGD_CFG_BREAK", "line\r\nX-Evil: 1", 1), 0);
	ck_assert_int_eq(setenv("PGD_CFG_BLANK", " \t", 1), 0);
	ck_assert_int_eq(unsetenv("PGD_CFG_UNSET"), 0);
	cfg = config_test_load(config_bad[_i].text, err, sizeof err);
	ck_assert_msg(cfg == NULL, "%s: accepted", config_bad[_i].name);
	snprintf(full, sizeof full, "cfg.yaml:%.*s", (int) (prefix ? n - 3 : n), want);
	if (prefix)
		ck_assert_msg(strncmp(err, full, strlen(full)) == 0, "%s: got \"%s\", want \"%s...\"",
		              config_bad[_i].name, err, full);
	else
		ck_assert_msg(strcmp(err, full) == 0, "%s: got \"%s\", want \"%s\"",
		              config_bad[_i].name, err, full);
}
END_TEST

START_TEST(test_missing_file_says_cannot_open)
{
	char err[256];
	struct config *cfg = config_load("/nonexistent-pgdispatch/cfg.yaml", err, sizeof err);

	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, "/nonexistent-pgdispatch/cfg.yaml: cannot open: No such file or directory");
	cfg = config_load("/", err, sizeof err);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, "/: cannot open: Is a directory");
}
END_TEST

START_TEST(test_parse_reads_memory_that_does_not_end_in_nul)
{
	/* What follows len must not be read: the fuzzer passes such buffers. */
	static const char text[] = "queues: [mail]queues: [again]";
	char err[256];
	struct config *cfg = config_parse("inline", text, strlen("queues: [mail]"), err, sizeof err);

	ck_assert_msg(cfg != NULL, "rejected: %s", err);
	ck_assert_str_eq(cfg->path, "inline");
	ck_assert_uint_eq(cfg->nqueues, 1);
	ck_assert_str_eq(cfg->queues[0], "mail");
	config_free(cfg);

	cfg = config_parse("inline", "a: 1\n  \xff", 8, err, sizeof err);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, "inline:2:3: invalid yaml: invalid leading UTF-8 octet");
}
END_TEST

/* Writes n bytes: a valid config padded with a comment to exactly n. */
static void
config_test_write_sized(size_t n, char *path, size_t len)
{
	char *text = malloc(n + 1);

	ck_assert_ptr_nonnull(text);
	memset(text, '#', n);
	memcpy(text, "{}\n", 3);
	text[n - 1] = '\n';
	text[n] = '\0';
	config_test_write(text, path, len);
	free(text);
}

START_TEST(test_file_over_the_size_limit_is_refused)
{
	char path[512], err[1024], want[1024];
	struct config *cfg;

	config_test_write_sized(CONFIG_MAX_BYTES, path, sizeof path);
	cfg = config_load(path, err, sizeof err);
	unlink(path);
	ck_assert_msg(cfg != NULL, "a file of exactly the limit was rejected: %s", err);
	config_free(cfg);

	config_test_write_sized(CONFIG_MAX_BYTES + 1, path, sizeof path);
	cfg = config_load(path, err, sizeof err);
	unlink(path);
	ck_assert_ptr_null(cfg);
	snprintf(want, sizeof want, "%s: larger than 1048576 bytes, too large for a configuration file", path);
	ck_assert_str_eq(err, want);

	/* An endless file ends too. */
	cfg = config_load("/dev/zero", err, sizeof err);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, "/dev/zero: larger than 1048576 bytes, too large for a configuration file");
}
END_TEST

Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("valid");
	TCase *dur = tcase_create("duration");
	TCase *bad = tcase_create("invalid");

	tcase_add_test(tc, test_full_config_reads_every_key);
	tcase_add_test(tc, test_empty_map_gives_every_default);
	tcase_add_test(tc, test_empty_and_null_strings_leave_defaults);
	tcase_add_test(tc, test_schedules_read_every_key_and_payload_as_json);
	tcase_add_test(tc, test_sources_read_every_key_and_fill_defaults);
	tcase_add_test(tc, test_empty_env_passthrough_passes_nothing);
	tcase_add_test(tc, test_retention_reads_ages_and_off);
	tcase_add_test(tc, test_instance_name_of_44_bytes_is_the_longest);
	tcase_add_test(tc, test_handlers_inherit_top_level_after_whole_file);
	tcase_add_test(tc, test_http_and_breaker_keys_read_every_key);
	tcase_add_loop_test(tc, test_http_method_takes_each_method, 0,
	                    sizeof config_http_methods / sizeof config_http_methods[0]);
	tcase_add_test(tc, test_each_load_expands_variables_again);
	tcase_add_test(tc, test_header_errors_never_quote_a_value);
	tcase_add_loop_test(tc, test_bool_accepts_true_and_false_spellings, 0,
	                    sizeof config_bools / sizeof config_bools[0]);
	suite_add_tcase(s, tc);

	tcase_add_loop_test(dur, test_duration_parses, 0,
	                    sizeof config_good_durations / sizeof config_good_durations[0]);
	tcase_add_loop_test(dur, test_duration_rejects, 0,
	                    sizeof config_bad_durations / sizeof config_bad_durations[0]);
	tcase_add_test(dur, test_duration_rejects_null);
	suite_add_tcase(s, dur);

	tcase_add_loop_test(bad, test_bad_config_names_file_line_column, 0,
	                    sizeof config_bad / sizeof config_bad[0]);
	tcase_add_test(bad, test_missing_file_says_cannot_open);
	tcase_add_test(bad, test_file_over_the_size_limit_is_refused);
	tcase_add_test(tc, test_parse_reads_memory_that_does_not_end_in_nul);
	suite_add_tcase(s, bad);
	return s;
}
