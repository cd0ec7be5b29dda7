#!/bin/sh
# Test handler: its result is the ids it runs under and its HOME.
cat >/dev/null
printf '{"uid": %s, "gid": %s, "groups": "%s", "home": "%s"}\n' "$(id -u)" "$(id -g)" "$(id -G)" "$HOME"
