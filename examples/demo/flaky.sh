#!/bin/sh
# Demo command handler: fails on the first attempt, succeeds after.
cat >/dev/null
if [ "$PGDISPATCH_TASK_ATTEMPT" = 1 ]; then
	echo "flaky.sh: the first attempt always fails" >&2
	exit 1
fi
echo '"worked on the retry"'
