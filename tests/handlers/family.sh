#!/bin/sh
# Test handler: family.sh PIDFILE
# Starts a child in its process group, appends "HANDLER_PID CHILD_PID" to
# PIDFILE, then waits for it. Unlike hang.sh it ignores nothing: a SIGTERM
# to the process group ends both at once. The pids come first, before
# stdin is read.
sleep 600 &
echo "$$ $!" >>"$1"
cat >/dev/null
wait
