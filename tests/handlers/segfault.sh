#!/bin/sh
# Test handler: dies of SIGSEGV, as a crashing program would (no core file).
cat >/dev/null
ulimit -c 0
kill -SEGV $$
