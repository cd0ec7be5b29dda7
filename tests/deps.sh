#!/bin/sh
# Makes sure the build and test dependencies are installed (`make deps`);
# `tests/deps.sh fuzz` also the fuzzing toolchain (`make fuzz`): clang-14
# and its libFuzzer runtime, libclang-rt-14-dev.
#
# A no-op when everything is present. Otherwise, as root, installs the
# missing Debian packages with apt-get; as anyone else, prints the one
# command to run and fails.
set -eu

missing=""
need() { missing="$missing $1"; }

command -v cc >/dev/null 2>&1 || need gcc
command -v make >/dev/null 2>&1 || need make
command -v pkg-config >/dev/null 2>&1 || need pkg-config
if command -v pkg-config >/dev/null 2>&1; then
	pkg-config --exists libpq || need libpq-dev
	pkg-config --exists yaml-0.1 || need libyaml-dev
	pkg-config --exists check || need check
else
	need libpq-dev
	need libyaml-dev
	need check
fi
# The scratch server for tests and the demo: initdb, pg_ctl and postgres.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
	need postgresql
fi
command -v psql >/dev/null 2>&1 || need postgresql-client
if [ "${1:-}" = fuzz ]; then
	command -v clang-14 >/dev/null 2>&1 || need clang-14
	if ! command -v clang-14 >/dev/null 2>&1 \
	   || ! ls "$(clang-14 --print-runtime-dir)"/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
		need libclang-rt-14-dev
	fi
fi

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "pgdispatch needs these packages:$missing" >&2
	echo "install them with:  sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
