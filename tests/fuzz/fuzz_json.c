/*
 * libFuzzer target: json.c and the JSON log renderer on arbitrary bytes
 * (`make fuzz`).
 *
 * These see what the daemon does not control: a handler's stdout and
 * stderr, task kinds, queues and payload text, error messages. Besides what
 * the sanitizers catch, the target checks the promises json.h makes, the
 * ones that decide whether PostgreSQL accepts what the daemon stores:
 * json_append_string() always gives one valid JSON string, and
 * json_append_text() gives valid UTF-8 without NUL; text that is already
 * clean passes unchanged. json_valid() must simply return, in linear time
 * (libFuzzer's -timeout catches a hang).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_require(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_json: invariant broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *) data;
	struct json_buf quoted = {0}, text = {0}, again = {0};
	static char line[LOG_LINE_MAX + 2];
	char *msg;
	bool valid = json_valid(s, size);

	json_append_string(&quoted, s, size);
	fuzz_require(quoted.len >= 2 && quoted.data[quoted.len] == '\0', "string is terminated");
	fuzz_require(json_valid(quoted.data, quoted.len), "json_append_string gives valid JSON");

	json_append_text(&text, s, size);
	fuzz_require(text.data[text.len] == '\0' && strlen(text.data) == text.len, "text has no NUL");
	/* Clean text is a fixed point: cleaning it again changes nothing. */
	json_append_text(&again, text.data, text.len);
	fuzz_require(again.len == text.len && memcmp(again.data, text.data, text.len) == 0,
	             "json_append_text gives valid UTF-8");
	/* Valid JSON is valid UTF-8 without NUL, so cleaning keeps it. */
	if (valid)
		fuzz_require(text.len == size && memcmp(text.data, s, size) == 0,
		             "valid JSON passes json_append_text unchanged");

	/* The log renderers take arbitrary bytes as arguments: a JSON line
	 * stays valid JSON, in a bounded buffer. */
	msg = malloc(size + 1);
	fuzz_require(msg != NULL, "memory");
	memcpy(msg, s, size);
	msg[size] = '\0';
	log_render(LOG_JSON, LOG_INFO, line + 1, sizeof line - 2, "task=1 kind=%s queue=\"%s\" %s", msg, msg, msg);
	fuzz_require(strlen(line + 1) < sizeof line - 2, "log line bounded");
	line[0] = '{';
	strcat(line, "}");
	fuzz_require(json_valid(line, strlen(line)), "JSON log line is valid JSON");
	log_render(LOG_TEXT, LOG_WARN, line, sizeof line, "kind=%s failed: %s", msg, msg);
	fuzz_require(strchr(line, '\n') == NULL, "text log line is one line");
	free(msg);

	json_buf_free(&quoted);
	json_buf_free(&text);
	json_buf_free(&again);
	return 0;
}
