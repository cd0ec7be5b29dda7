#!/bin/sh
# Makes sure the build and test dependencies are installed (`make deps`).
# `tests/deps.sh clang` adds clang-14 and its sanitizer and libFuzzer
# runtimes (libclang-rt-14-dev), for `make check SANITIZE=1` and `make fuzz`.
#
# Debian's pgbouncer package installs an init script that stays off here
# (policy-rc.d in containers, and nothing uses its system instance): the
# tests start their own PgBouncer, as they start their own PostgreSQL.
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
	pkg-config --exists libcurl || need libcurl4-openssl-dev
else
	need libpq-dev
	need libyaml-dev
	need check
	need libcurl4-openssl-dev
fi
# The scratch server for tests and the demo: initdb, pg_ctl and postgres.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
	need postgresql
fi
command -v psql >/dev/null 2>&1 || need postgresql-client
# Schedules' time zones come from the system tz database (tests/check_cron.c
# uses Europe/Berlin).
[ -e /usr/share/zoneinfo/Europe/Berlin ] || need tzdata
# PgBouncer in transaction pooling, in front of the scratch server, for the
# poll-only tests (tests/check_pgbouncer.c; Debian's is 1.18).
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need pgbouncer
if [ "${1:-}" = clang ]; then
	command -v clang-14 >/dev/null 2>&1 || need clang-14
	rt=$(clang-14 --print-runtime-dir 2>/dev/null || true)
	if ! ls "$rt"/libclang_rt.asan-*.a "$rt"/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
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
