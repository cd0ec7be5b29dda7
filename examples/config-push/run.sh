#!/usr/bin/env bash
# The config-push example, end to end, against the database libpq's PG*
# variables name (`make config-push` runs it on a scratch PostgreSQL;
# `make check` runs it in a database of its own, from
# tests/check_examples.c). It
#
#   1. migrates, creates the roles, and a login role config_push for the
#      daemon (a member of dispatch_worker);
#   2. creates the application's table (schema.sql), with its trigger, the
#      claim's index and config_push's grants;
#   3. starts the listener (config-push-sink) on 127.0.0.1;
#   4. inserts 20 rows, starts the daemon, inserts 20 more;
#   5. waits until every row is `complete` in the table's own enum, and
#      checks that every row's content arrived at the listener.
#
# Exits 0 when all of that held. PGDISPATCH_BIN names the pgdispatch
# binary (default build/pgdispatch), CONFIG_PUSH_SINK the listener
# (default: config-push-sink next to the binary; `make
# build/config-push-sink` builds it).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${PGDISPATCH_BIN:-build/pgdispatch}
sink=${CONFIG_PUSH_SINK:-$(dirname "$bin")/config-push-sink}
rows_before=20
rows_after=20
total=$((rows_before + rows_after))

for f in "$bin" "$sink"; do
	if [ ! -x "$f" ]; then
		echo "config-push: $f is missing; run: make $bin $sink" >&2
		exit 1
	fi
done

say() { echo "config-push: $*"; }
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
value() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/config-push.XXXXXX")
daemon=""
sinkpid=""
cleanup() {
	local rc=$?
	trap - EXIT
	if [ -n "$daemon" ]; then
		kill -TERM "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	if [ -n "$sinkpid" ]; then
		kill -TERM "$sinkpid" 2>/dev/null || true
		wait "$sinkpid" 2>/dev/null || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

# Waits until the query's value is $2, for at most $3 seconds.
wait_for() {
	local deadline=$((SECONDS + $3)) got
	while :; do
		if [ -n "$daemon" ] && ! kill -0 "$daemon" 2>/dev/null; then
			echo "config-push: the daemon exited (its log is above)" >&2
			return 1
		fi
		got=$(value "$1")
		[ "$got" = "$2" ] && return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "config-push: after $3 s, $1 returns $got, want $2" >&2
			return 1
		fi
		sleep 0.1
	done
}

if [ "$(value "SELECT to_regclass('public.configuration_update') IS NOT NULL")" = t ]; then
	echo "config-push: this database already has a configuration_update table;" \
	     "run the example on a scratch database (make config-push)" >&2
	exit 1
fi

say "migrate, roles, and a login role config_push for the daemon"
"$bin" migrate >/dev/null
"$bin" roles >/dev/null
sql <<'SQL'
DO $$
BEGIN
    CREATE ROLE config_push LOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
GRANT dispatch_worker TO config_push;
SQL

say "the application's table, its trigger, the claim's index, the grants"
sql -v daemon_role=config_push -f examples/config-push/schema.sql

# The listener: its port goes to the handler through the daemon's
# environment (pgdispatch.yaml: env_passthrough).
"$sink" "$work/port" "$work/received" &
sinkpid=$!
for _ in $(seq 50); do
	[ -s "$work/port" ] && break
	sleep 0.1
done
if [ ! -s "$work/port" ]; then
	echo "config-push: the listener did not start" >&2
	exit 1
fi
CONFIG_PUSH_PORT=$(cat "$work/port")
export CONFIG_PUSH_PORT
say "listener on 127.0.0.1:$CONFIG_PUSH_PORT"

# Contents with quotes, backslashes and non-ASCII text, which must arrive
# as they are.
insert_rows() {
	sql -c "INSERT INTO configuration_update (content, status, destination)
	        SELECT jsonb_build_object('host', 'edge-' || i, 'version', i,
	                                  'motd', 'say \"hi\" \\ ünïcode'),
	               'pending', '127.0.0.1'
	          FROM generate_series($1, $2) AS i"
}

say "$rows_before rows before the daemon starts"
insert_rows 1 "$rows_before"

"$bin" run -c examples/config-push/pgdispatch.yaml -d "user=config_push" 2> >(sed 's/^/  daemon | /' >&2) &
daemon=$!
wait_for "SELECT count(*) > 0 FROM pg_stat_activity
           WHERE usename = 'config_push' AND application_name LIKE 'pgdispatch %'" t 15

say "$rows_after rows while it runs, one transaction each"
for i in $(seq $((rows_before + 1)) "$total"); do
	insert_rows "$i" "$i"
done

wait_for "SELECT count(*) FROM configuration_update WHERE status = 'complete'" "$total" 60
sql -c "SELECT status, count(*) FROM configuration_update GROUP BY status"

# What the listener received, one push a line, compared as JSON with the
# table's content. CSV with quote and delimiter characters that JSON text
# never holds: each line is one value, backslashes untouched.
missing=$(psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE received (body text);
\copy received FROM '$work/received' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
SELECT count(*) FROM configuration_update c
 WHERE NOT EXISTS (SELECT 1 FROM received r WHERE r.body::jsonb = c.content);
SQL
)
pushes=$(wc -l <"$work/received")
if [ "$missing" != 0 ]; then
	echo "config-push: $missing row(s) complete but their content never arrived" >&2
	exit 1
fi

kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
daemon=""
if [ "$rc" != 0 ]; then
	echo "config-push: the daemon exited $rc after SIGTERM" >&2
	exit 1
fi
say "every row complete, every content received ($total rows, $pushes pushes)"
