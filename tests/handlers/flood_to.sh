#!/bin/sh
# Test handler: flood_to.sh stdout|stderr BYTES EXIT_CODE
# Writes BYTES bytes of text lines to the stream, then exits EXIT_CODE.
cat >/dev/null
if [ "$1" = stderr ]; then
	exec 1>&2
fi
yes 'the quick brown fox jumps over the lazy dog, and again, and again, and again' | head -c "$2"
exit "$3"
