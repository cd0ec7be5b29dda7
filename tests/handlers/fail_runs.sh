#!/bin/sh
# Test handler: fail_runs.sh LOGFILE N
# Counts its runs in LOGFILE (one line each: "id attempt epoch-seconds") and
# fails the first N runs with a message naming the run, then succeeds.
# Unlike attempts.sh it counts runs, not the attempt number, so it tells a
# retried task (attempts reset to 0) from a fresh one.
cat >/dev/null
echo "$PGDISPATCH_TASK_ID $PGDISPATCH_TASK_ATTEMPT $(date +%s.%N)" >>"$1"
run=$(wc -l <"$1")
if [ "$run" -gt "$2" ]; then
	echo '"ok"'
	exit 0
fi
echo "fail_runs.sh: failing run $run on purpose" >&2
exit 3
