#!/usr/bin/env bash
# The demo, run by `make demo` inside tests/pg_scratch.sh (PGHOST points at a
# scratch server): migrate, start the daemon, add one task for every path,
# and print dispatch.queue_stats whenever it changes. Ctrl-C stops it all;
# pg_scratch.sh then removes the database. DEMO_EXIT=1 leaves by itself
# once every task has settled.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=build/pgdispatch

"$bin" migrate
psql -q -c "CREATE TABLE demo_events (task_id bigint, payload jsonb, at timestamptz DEFAULT now())"

"$bin" run -c examples/demo/pgdispatch.yaml 2> >(sed 's/^/  daemon | /' >&2) &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT

sleep 0.5
echo "adding tasks: one completes, one fails then succeeds, one is scheduled 5 s ahead,"
echo "one fails for good, one runs SQL in the same transaction as its completion"
"$bin" enqueue hello '{"name": "world"}' >/dev/null
"$bin" enqueue flaky >/dev/null
"$bin" enqueue --run-at "$(psql -Atc "SELECT now() + interval '5 seconds'")" hello '{"scheduled": true}' >/dev/null
"$bin" enqueue doomed >/dev/null
psql -q -c "INSERT INTO dispatch.tasks (kind, payload) VALUES ('record', '{\"event\": \"signup\"}')"

last=""
while :; do
	now=$(psql -c "TABLE dispatch.queue_stats")
	if [ "$now" != "$last" ]; then
		echo "$now"
		last=$now
	fi
	open=$(psql -Atc "SELECT count(*) FROM dispatch.tasks WHERE status IN ('pending', 'in_progress')")
	if [ "$open" = 0 ]; then
		psql -c "SELECT id, kind, status, attempts, result, last_error FROM dispatch.tasks ORDER BY id"
		psql -c "TABLE demo_events"
		if [ "${DEMO_EXIT:-0}" = 1 ]; then
			break
		fi
		echo "every task has settled. The daemon keeps running: in another shell,"
		echo "  PGHOST=$PGHOST $bin enqueue hello '{}'"
		echo "adds one. Ctrl-C stops the demo and removes the scratch database."
		wait "$daemon"
		break
	fi
	sleep 0.5
done
