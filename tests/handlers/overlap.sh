#!/bin/sh
# Test handler: overlap.sh LOGFILE LABEL SECONDS
# Appends "start LABEL TIME" to LOGFILE, sleeps SECONDS, appends
# "end LABEL TIME" (epoch seconds), so a test can count how many runs of
# each label overlapped.
cat >/dev/null
echo "start $2 $(date +%s.%N)" >>"$1"
sleep "$3"
echo "end $2 $(date +%s.%N)" >>"$1"
