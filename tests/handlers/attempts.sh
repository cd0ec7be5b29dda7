#!/bin/sh
# Test handler: attempts.sh LOGFILE EXIT_CODE [SUCCEED_FROM_ATTEMPT]
# Appends "id attempt epoch-seconds" to LOGFILE, then exits EXIT_CODE with a
# message on stderr, or 0 from attempt SUCCEED_FROM_ATTEMPT on.
cat >/dev/null
echo "$PGDISPATCH_TASK_ID $PGDISPATCH_TASK_ATTEMPT $(date +%s.%N)" >>"$1"
if [ -n "${3:-}" ] && [ "$PGDISPATCH_TASK_ATTEMPT" -ge "$3" ]; then
	echo '"ok"'
	exit 0
fi
echo "attempts.sh: failing attempt $PGDISPATCH_TASK_ATTEMPT on purpose" >&2
exit "$2"
