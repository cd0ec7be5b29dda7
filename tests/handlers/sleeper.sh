#!/bin/sh
# Test handler: sleeper.sh PIDFILE SECONDS
# Records its pid (one line per task), then sleeps. The pid comes first, so
# that a short timeout on a busy machine cannot kill it unrecorded.
echo "$$" >>"$1"
cat >/dev/null
exec sleep "$2"
