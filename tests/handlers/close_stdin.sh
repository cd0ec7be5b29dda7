#!/bin/sh
# Test handler: closes stdin without reading a byte, lets the daemon's
# next write hit the closed pipe, then fails.
exec 0<&-
sleep 0.3
echo "close_stdin.sh: closed stdin unread" >&2
exit 3
