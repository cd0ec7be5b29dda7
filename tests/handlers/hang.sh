#!/bin/sh
# Test handler: hang.sh PIDFILE
# Ignores SIGTERM, as does the grandchild it starts in its process group
# (an ignored signal stays ignored across fork and exec); appends
# "HANDLER_PID GRANDCHILD_PID" to PIDFILE, then waits forever. The trap and
# the pids come first: a timeout may arrive before stdin is read.
trap '' TERM
sleep 600 &
echo "$$ $!" >>"$1"
cat >/dev/null
while :; do
	wait
done
