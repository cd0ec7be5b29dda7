#!/bin/sh
# Test handler: writes 100 MB to stdout, then succeeds.
cat >/dev/null
head -c 100000000 /dev/zero | tr '\0' 'x'
