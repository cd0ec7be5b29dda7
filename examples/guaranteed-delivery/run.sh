#!/usr/bin/env bash
# The guaranteed-delivery example, end to end, against the database
# libpq's PG* variables name (`make guaranteed-delivery` runs it on a
# scratch PostgreSQL with ORDERED=1; `make check` runs it in a database of
# its own, from tests/check_examples.c). It
#
#   1. migrates, creates the roles, and a login role guaranteed_delivery
#      for the daemon (a member of dispatch_worker);
#   2. starts the consumer: http-stub --dedupe --chaos, which answers 503
#      at random, drops connections before and after applying an event,
#      and sometimes answers later than the handler's 1 s timeout; it
#      applies each Idempotency-Key once and answers a repeat 200 without
#      applying it again;
#   3. starts the daemon, and adds 500 events over 10 keys, payload
#      {key, seq}, in 10 transactions of 50 while it runs; with ORDERED=1
#      each event's order_key is its key;
#   4. waits until every task is complete, and checks from the consumer's
#      log that every event was applied exactly once, with its own
#      payload, and with ORDERED=1 that each key's seq increased in the
#      order the consumer applied them.
#
# Exits 0 when all of that held. ORDERED=1 (per-key order; `make
# guaranteed-delivery` sets it) or 0 (the default here), SEED the chaos's
# seed (default 1; requests arrive in a different order each run, so a
# seed does not replay a run exactly). PGDISPATCH_BIN names the pgdispatch
# binary (default build/pgdispatch), HTTP_STUB the consumer (default:
# http-stub next to the binary; `make build/http-stub` builds it).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${PGDISPATCH_BIN:-build/pgdispatch}
stub=${HTTP_STUB:-$(dirname "$bin")/http-stub}
ordered=${ORDERED:-0}
seed=${SEED:-1}
events=500
keys=10
kind=event.deliver
chaos="seed=$seed,fail=0.2,drop=0.1,drop_after_apply=0.05,slow=0.05,slow_ms=1500"

for f in "$bin" "$stub"; do
	if [ ! -x "$f" ]; then
		echo "guaranteed-delivery: $f is missing; run: make $bin $stub" >&2
		exit 1
	fi
done
case $ordered in
0 | 1) ;;
*)
	echo "guaranteed-delivery: ORDERED is 0 or 1, not $ordered" >&2
	exit 1
	;;
esac

say() { echo "guaranteed-delivery: $*"; }
fail() {
	echo "guaranteed-delivery: FAILED: $*" >&2
	exit 1
}
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
value() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/guaranteed-delivery.XXXXXX")
daemon=""
consumer=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in $daemon $consumer; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ends the run when the daemon or the consumer is gone: the wait would be
# in vain. One that exited 0 was stopped (Ctrl-C reaches the whole process
# group, and psql, running at that moment, keeps the shell from seeing it).
gone() {
	local rc=0
	wait "$2" 2>/dev/null || rc=$?
	if [ "$rc" = 0 ]; then
		echo "guaranteed-delivery: $1 stopped; so does the run" >&2
		exit 130
	fi
	fail "$1 exited with status $rc${3:+ ($3)}"
}
alive() {
	if [ -n "$daemon" ] && ! kill -0 "$daemon" 2>/dev/null; then
		gone "the daemon" "$daemon" "its log is above"
	fi
	if [ -n "$consumer" ] && ! kill -0 "$consumer" 2>/dev/null; then
		gone "the consumer (http-stub)" "$consumer" "$(tail -n 3 "$work/consumer.out")"
	fi
}

# Waits until the query's value is $2, for at most $3 seconds.
wait_for() {
	local deadline=$((SECONDS + $3)) got
	while :; do
		alive
		got=$(value "$1")
		[ "$got" = "$2" ] && return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			fail "after $3 s, $1 returns $got, want $2"
		fi
		sleep 0.1
	done
}

if [ "$(value "SELECT to_regclass('dispatch.tasks') IS NOT NULL")" = t ] &&
	[ "$(value "SELECT EXISTS (SELECT 1 FROM dispatch.tasks WHERE kind = '$kind')")" = t ]; then
	echo "guaranteed-delivery: this database already has $kind tasks;" \
	     "run the example on a scratch database (make guaranteed-delivery)" >&2
	exit 1
fi

say "migrate, roles, and a login role guaranteed_delivery for the daemon"
"$bin" migrate >/dev/null
"$bin" roles >/dev/null
sql <<'SQL'
DO $$
BEGIN
    CREATE ROLE guaranteed_delivery LOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
GRANT dispatch_worker TO guaranteed_delivery;
SQL

"$stub" --port 0 --port-file "$work/port" --log "$work/consumer.log" --dedupe --chaos "$chaos" \
	</dev/null >"$work/consumer.out" 2>&1 &
consumer=$!
for _ in $(seq 100); do
	[ -s "$work/port" ] && break
	alive
	sleep 0.05
done
[ -s "$work/port" ] || fail "the consumer did not start: $(cat "$work/consumer.out")"
port=$(cat "$work/port")
say "the consumer on 127.0.0.1:$port: of its answers, 20% are 503, 10% drop the connection before"
say "applying the event and 5% after, 5% come 1.5 s late (past the 1 s timeout); a repeated"
say "Idempotency-Key gets 200 without a second apply (chaos $chaos)"

# The checked-in config names port 8090; this run's is the kernel's.
sed -e "s/127\.0\.0\.1:8090/127.0.0.1:$port/" examples/guaranteed-delivery/pgdispatch.yaml >"$work/pgdispatch.yaml"

# The daemon's log goes to a file: it has a line for every attempt, and
# with this consumer a few hundred of them fail. Shown here: what is not
# about one attempt (startup, shutdown, anything unexpected).
"$bin" run -c "$work/pgdispatch.yaml" -d "user=guaranteed_delivery" \
	2> >(tee "$work/daemon.log" | grep --line-buffered -Ev ' task=[^ ]+ kind=' | sed -u 's/^/  daemon | /' >&2) &
daemon=$!
wait_for "SELECT count(*) > 0 FROM pg_stat_activity
           WHERE usename = 'guaranteed_delivery' AND application_name LIKE 'pgdispatch %'" t 15

if [ "$ordered" = 1 ]; then
	say "adding $events events over $keys keys, each with order_key = its key: one at a time per key, in order"
else
	say "adding $events events over $keys keys, without order_key (ORDERED=1 adds it)"
fi
start=$SECONDS
t0=$EPOCHREALTIME
per_tx=$((events / 10))
for first in $(seq 0 "$per_tx" $((events - 1))); do
	# Event i is seq i/keys+1 of key-(i%keys): ids grow with seq within a
	# key, and per-key order is id order.
	sql -v first="$first" -v last=$((first + per_tx - 1)) -v keys="$keys" -v ordered="$ordered" <<SQL
INSERT INTO dispatch.tasks (kind, payload, order_key)
SELECT '$kind',
       jsonb_build_object('key', 'key-' || i % :keys, 'seq', i / :keys + 1),
       CASE WHEN :ordered = 1 THEN 'key-' || i % :keys END
  FROM generate_series(:first, :last) AS i
 ORDER BY i;
SQL
done

# Progress, once a second, until every task is complete.
deadline=$((SECONDS + 120))
while :; do
	alive
	read -r complete failed running attempts < <(value "SELECT count(*) FILTER (WHERE status = 'complete'),
	       count(*) FILTER (WHERE status IN ('failed', 'cancelled')), count(*) FILTER (WHERE status = 'in_progress'),
	       coalesce(sum(attempts), 0) FROM dispatch.tasks WHERE kind = '$kind'" | tr '|' ' ')
	say "$((SECONDS - start)) s: $complete of $events complete, $running in flight, $attempts attempts so far"
	[ "$failed" = 0 ] || fail "$failed task(s) failed or were cancelled"
	[ "$complete" = "$events" ] && break
	[ "$SECONDS" -lt "$deadline" ] || fail "not every event complete after 120 s"
	sleep 1
done
t1=$EPOCHREALTIME
elapsed_ms=$(((${t1/[.,]/} - ${t0/[.,]/}) / 1000))
say "all $events events delivered in $elapsed_ms ms; the attempts that failed on the way:"
sql -c "SELECT CASE WHEN error LIKE 'HTTP 503%' THEN 'HTTP 503: the consumer failed'
                    WHEN error ILIKE '%timed out%' THEN 'no answer within the 1 s timeout'
                    WHEN error LIKE '%Empty reply from server%' OR error LIKE '%Recv failure%'
                    THEN 'the connection closed without an answer'
                    ELSE left(error, 60) END AS failed_attempt,
               count(*)
          FROM dispatch.attempts WHERE kind = '$kind' GROUP BY 1 ORDER BY 2 DESC"

# The consumer's log, one JSON line per request in the order it decided
# them: n is that order. Applied requests are the effects; the rest are
# the ones it failed, dropped before applying, or answered as repeats.
out=$(psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE requests (n serial, line jsonb);
\copy requests (line) FROM '$work/consumer.log' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
CREATE TEMP VIEW applied AS
SELECT n, line->>'idempotency_key' AS key, line->'body'->'payload' AS payload
  FROM requests WHERE (line->>'applied')::boolean;
CREATE TEMP VIEW tasks AS
SELECT id::text AS key, payload FROM dispatch.tasks WHERE kind = '$kind';
SELECT (SELECT count(*) FROM requests),
       (SELECT count(*) FROM applied),
       -- events never applied
       (SELECT count(*) FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM applied a WHERE a.key = t.key)),
       -- events applied more than once
       (SELECT count(*) FROM (SELECT key FROM applied GROUP BY key HAVING count(*) > 1) AS d),
       -- applied with a payload other than its task's, or a key of no task
       (SELECT count(*) FROM applied a
         WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.key = a.key AND t.payload = a.payload)),
       -- an event of a key applied after a later one of the same key
       (SELECT count(*) FROM (SELECT (payload->>'seq')::int < max((payload->>'seq')::int)
                                     OVER (PARTITION BY payload->>'key' ORDER BY n
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS late
                                FROM applied) AS o WHERE late),
       (SELECT count(*) FROM requests WHERE NOT (line->>'applied')::boolean
                                        AND (line->>'status')::int BETWEEN 200 AND 299);
SQL
)
read -r requests applied missing twice wrong late repeats <<<"$out"
say "the consumer got $requests requests: $applied applied, $repeats repeats of applied events answered 200" \
    "without applying, the rest failed or dropped before applying"
[ "$missing" = 0 ] || fail "$missing event(s) complete but never applied by the consumer"
[ "$twice" = 0 ] || fail "$twice event(s) applied more than once"
[ "$wrong" = 0 ] || fail "$wrong applied request(s) match no event's id and payload"
say "every event applied exactly once ($events events, $applied applies)"
if [ "$ordered" = 1 ]; then
	[ "$late" = 0 ] || fail "$late event(s) applied after a later event of their key"
	say "and in order: each key's seq increased in the order the consumer applied them"
else
	say "$late event(s) were applied after a later one of their key (no order_key; ORDERED=1 prevents that)"
fi

kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
daemon=""
[ "$rc" = 0 ] || fail "the daemon exited $rc after SIGTERM"
if [ "$ordered" = 1 ]; then
	say "delivered: $events events, each applied once, in order per key"
else
	say "delivered: $events events, each applied once"
fi
