#!/bin/sh
# Test handler: sleeper.sh PIDFILE SECONDS
# Records its pid (one line per task), then sleeps.
cat >/dev/null
echo "$$" >>"$1"
exec sleep "$2"
