#!/bin/sh
# Demo command handler: never succeeds.
cat >/dev/null
echo "doomed.sh: cannot reach the mail server (attempt $PGDISPATCH_TASK_ATTEMPT)" >&2
exit 3
