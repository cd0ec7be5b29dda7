#!/bin/sh
# Test handler: leave_child.sh PIDFILE group|setsid EXIT_CODE
# Starts a grandchild that keeps stdout and stderr open and outlives the
# handler: in the handler's process group, or in a new session of its own
# (setsid), where a kill of the group cannot reach it. The grandchild
# appends its pid to PIDFILE. Then the handler exits EXIT_CODE at once.
cat >/dev/null
if [ "$2" = setsid ]; then
	setsid sh -c 'echo $$ >>"$1"; exec sleep 300' sh "$1" &
else
	sh -c 'echo $$ >>"$1"; exec sleep 300' sh "$1" &
fi
# The pid is in the file before the handler exits.
while [ ! -s "$1" ]; do
	sleep 0.05
done
echo "leave_child.sh: left a grandchild behind" >&2
exit "$3"
