#!/bin/sh
# Demo command handler: the task arrives as one JSON object on stdin.
task=$(cat)
echo "hello.sh: got task $PGDISPATCH_TASK_ID ($PGDISPATCH_TASK_KIND), attempt $PGDISPATCH_TASK_ATTEMPT" >&2
printf '{"greeting": "hello", "input_bytes": %d}\n' "${#task}"
