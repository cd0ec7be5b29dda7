#!/bin/sh
# Test handler: its result is exactly what it was given, stdin and
# environment, so a test can compare them with the row.
task=$(cat)
printf '{"stdin": %s, "env_id": "%s", "env_kind": "%s", "env_attempt": "%s"}\n' \
	"$task" "$PGDISPATCH_TASK_ID" "$PGDISPATCH_TASK_KIND" "$PGDISPATCH_TASK_ATTEMPT"
