#!/bin/sh
# Test handler: hang.sh PIDFILE
# Ignores SIGTERM, as does the grandchild it starts in its process group
# (an ignored signal stays ignored across fork and exec); appends
# "HANDLER_PID GRANDCHILD_PID" to PIDFILE, then waits forever.
cat >/dev/null
trap '' TERM
sleep 600 &
echo "$$ $!" >>"$1"
while :; do
	wait
done
