#!/bin/sh
# Test handler: record.sh LOGFILE [SUCCEED_FROM_ATTEMPT]
# Appends the task JSON it was given to LOGFILE as one line, so a test can
# load what every run received into a table and compare it with the rows.
# A task whose JSON contains "fail_always" fails every attempt; otherwise
# attempts before SUCCEED_FROM_ATTEMPT (default 1) fail with a message
# naming the attempt, and the rest print "ok" and exit 0.
task=$(tr -d '\n')
printf '%s\n' "$task" >>"$1"
case $task in
*'"fail_always"'*)
	echo "record.sh: failing always on purpose" >&2
	exit 3
	;;
esac
if [ "$PGDISPATCH_TASK_ATTEMPT" -lt "${2:-1}" ]; then
	echo "record.sh: failing attempt $PGDISPATCH_TASK_ATTEMPT on purpose" >&2
	exit 3
fi
echo '"ok"'
