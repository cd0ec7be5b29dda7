/*
 * libFuzzer target: config_parse() on arbitrary bytes (`make fuzz`).
 *
 * A config file is operator input, but a daemon that crashes on a typo is
 * still a bug, and libyaml hands config.c every odd event sequence it can
 * produce. Besides what the sanitizers catch, the target checks what every
 * caller relies on: NULL comes with a "PATH:..." message, and a config that
 * loads is complete (each handler has a kind and the body of its type, the
 * queues are counted right, the bounds in config.c hold, an http handler's
 * templates are parsed and its headers are single lines).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define FUZZ_PATH "fuzz.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_require(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: invariant broken: %s\n", what);
		abort();
	}
}

static void
fuzz_check_list(char **list, const char *what)
{
	fuzz_require(list != NULL && list[0] != NULL, what);
	for (char **s = list; *s != NULL; s++)
		fuzz_require((*s)[0] != '\0', what);
}

static void
fuzz_check_config(const struct config *cfg)
{
	size_t n = 0;

	fuzz_require(strcmp(cfg->path, FUZZ_PATH) == 0, "path kept");
	fuzz_check_list(cfg->queues, "queues: at least one, none empty");
	while (cfg->queues[n] != NULL)
		n++;
	fuzz_require(n == cfg->nqueues, "nqueues counts queues");
	fuzz_require(cfg->concurrency >= 1 && cfg->concurrency <= 1024, "concurrency in bounds");
	fuzz_require(cfg->lease_ms >= 1000, "lease in bounds");
	fuzz_require(cfg->backoff_initial_ms <= cfg->backoff_max_ms, "backoff ordered");
	fuzz_require(cfg->database == NULL || cfg->database[0] != '\0', "empty database is unset");
	for (size_t i = 0; i < cfg->nhandlers; i++) {
		const struct handler_config *h = &cfg->handlers[i];

		fuzz_require(h->kind != NULL && h->kind[0] != '\0', "handler has a kind");
		fuzz_require(config_handler(cfg, h->kind) == h, "kinds are unique");
		fuzz_require(h->type != NULL, "handler type known");
		if (strcmp(h->type, "command") == 0) {
			fuzz_check_list(h->argv, "command: a program");
			fuzz_require(h->sql == NULL, "command has no sql");
		} else if (strcmp(h->type, "sql") == 0) {
			fuzz_require(h->sql != NULL && h->sql[0] != '\0', "sql: a statement");
			fuzz_require(h->argv == NULL, "sql has no command");
		} else if (strcmp(h->type, "builtin") == 0) {
			fuzz_require(h->argv == NULL && h->sql == NULL, "builtin has no body");
			fuzz_require(h->builtin != NULL, "builtin: a name");
		} else if (strcmp(h->type, "http") == 0) {
			fuzz_require(h->argv == NULL && h->sql == NULL && h->builtin == NULL, "http has no other body");
			fuzz_require(h->http_url != NULL && h->http_url_tpl != NULL, "http: a url, parsed");
			fuzz_require((h->http_idempotency_key == NULL) == (h->http_idempotency_tpl == NULL),
			             "http: the idempotency key parsed");
			fuzz_require(h->http_method != NULL && h->env_passthrough == NULL, "http: a method, no environment");
			for (char **hd = h->http_headers; hd != NULL && *hd != NULL; hd++)
				fuzz_require(strstr(*hd, ": ") != NULL && strpbrk(*hd, "\r\n") == NULL,
				             "http: headers are \"Name: value\" lines");
		} else {
			fuzz_require(0, "handler type known");
		}
		fuzz_require(h->timeout_ms >= 10 && h->max_attempts >= 1, "inherited values filled in");
		fuzz_require(h->backoff_initial_ms >= 1 && h->backoff_initial_ms <= h->backoff_max_ms,
		             "handler backoff filled in and ordered");
		fuzz_require(h->breaker_failures >= 0 && h->breaker_failures <= 1000
		             && h->breaker_open_for_ms <= h->breaker_open_max_ms, "breaker in bounds and ordered");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct config *cfg;

	/* A sentinel shows whether the error was written at all. */
	memset(err, 'X', sizeof err);
	cfg = config_parse(FUZZ_PATH, (const char *) data, size, err, sizeof err);
	if (cfg == NULL) {
		fuzz_require(memchr(err, '\0', sizeof err) != NULL, "error is NUL-terminated");
		fuzz_require(strncmp(err, FUZZ_PATH ":", strlen(FUZZ_PATH ":")) == 0,
		             "error starts with the path");
		return 0;
	}
	fuzz_check_config(cfg);
	config_free(cfg);
	return 0;
}
