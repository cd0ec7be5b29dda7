#!/usr/bin/env bash
# A throwaway PostgreSQL for tests, the demo and people.
#
#   tests/pg_scratch.sh COMMAND [ARG...]   run COMMAND against a fresh server
#   tests/pg_scratch.sh                    open a shell with one (psql works)
#
# The server lives in a new temporary directory: initdb, Unix socket only
# (no TCP port to collide with), fsync off, started with `pg_ctl -w`. It is
# stopped and the directory removed on every exit path: success, failure,
# Ctrl-C, SIGTERM. When COMMAND fails, the end of the server log is printed.
# COMMAND sees PGHOST, PGPORT, PGUSER and PGDATABASE.
#
# PGDISPATCH_SCRATCH_DURABLE=1 keeps fsync and synchronous_commit on, as in
# production (for benchmarks), and PGDISPATCH_SCRATCH_CONF adds lines to
# postgresql.conf.
#
# When PGHOST is already set, that server is used and nothing is started.
# PostgreSQL refuses to run as root, so under root the server runs as the
# `postgres` user (Debian's server package creates it).
set -euo pipefail

if [ -n "${PGHOST:-}" ]; then
	if [ $# -eq 0 ]; then exec "${SHELL:-/bin/sh}"; fi
	exec "$@"
fi

bindir=""
if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
	bindir=$(pg_config --bindir)
else
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && bindir=$d
	done
fi
if [ -z "$bindir" ]; then
	echo "pg_scratch: no PostgreSQL server found (initdb); run 'make deps'" >&2
	exit 1
fi

as_server=()
if [ "$(id -u)" -eq 0 ]; then
	as_server=(runuser -u postgres --)
fi

# A short path: the socket's full name must fit in 107 bytes.
dir=$(mktemp -d /tmp/pgdispatch-pg.XXXXXX)
started=0

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [ "$started" = 1 ]; then
		"${as_server[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ "$rc" -ne 0 ] && [ -s "$dir/server.log" ]; then
		echo "---- pg_scratch: last lines of the server log ($rc) ----" >&2
		tail -n 60 "$dir/server.log" >&2 || true
		echo "---- end of server log ----" >&2
	fi
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ ${#as_server[@]} -gt 0 ]; then
	chown postgres: "$dir"
fi
chmod 700 "$dir"

"${as_server[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
	--locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
	cat "$dir/initdb.log" >&2
	exit 1
}
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 200
log_min_messages = warning
log_checkpoints = off
log_line_prefix = '%m [%p] %q%a '
CONF
if [ "${PGDISPATCH_SCRATCH_DURABLE:-0}" != 1 ]; then
	printf 'fsync = off\nfull_page_writes = off\n' >>"$dir/data/postgresql.conf"
fi
if [ -n "${PGDISPATCH_SCRATCH_CONF:-}" ]; then
	printf '%s\n' "$PGDISPATCH_SCRATCH_CONF" >>"$dir/data/postgresql.conf"
fi

started=1
"${as_server[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null

export PGHOST="$dir" PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
# Tests that restart the server need to know how (see tests/harness.c).
export PGDISPATCH_PGDATA="$dir/data" PGDISPATCH_PGBIN="$bindir"
# Test scratch files live here too, so they go when the server goes.
mkdir "$dir/tmp"
export PGDISPATCH_TMP="$dir/tmp"
if [ ${#as_server[@]} -gt 0 ]; then
	export PGDISPATCH_PG_AS=postgres
fi

if [ $# -eq 0 ]; then
	echo "scratch PostgreSQL at PGHOST=$PGHOST (psql works here); exit the shell to remove it"
	"${SHELL:-/bin/bash}" || true
else
	"$@"
fi
