#!/bin/sh
# Test handler: fail_while.sh FLAGFILE
# Fails, with a message on stderr, while FLAGFILE exists ("the bug"), and
# succeeds once it is gone ("the fix"), whatever the attempt.
cat >/dev/null
if [ -e "$1" ]; then
	echo "fail_while.sh: $1 exists, failing on purpose" >&2
	exit 1
fi
echo '"sent"'
