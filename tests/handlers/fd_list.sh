#!/bin/sh
# Test handler: its result is the file descriptors it was started with, as
# `ls -l /proc/self/fd` shows them ("N -> target" at the end of each line).
# ls's own descriptor on the directory is among them.
cat >/dev/null
exec ls -l /proc/self/fd
