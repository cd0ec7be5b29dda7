#!/bin/sh
# Test handler: its result is its environment, one NAME=value a line.
cat >/dev/null
env
