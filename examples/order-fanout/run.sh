#!/usr/bin/env bash
# The order-fanout example, end to end, against the database libpq's PG*
# variables name (`make order-fanout` runs it on a scratch PostgreSQL;
# `make check` runs it in a database of its own, from
# tests/check_examples.c). It
#
#   1. migrates, creates the roles, a login role order_fanout for the
#      daemon (dispatch_worker) and one, order_service, for the
#      application (dispatch_producer);
#   2. creates app.orders and its trigger (schema.sql), which adds an
#      order.created.inventory and an order.created.email task in each
#      order's own transaction;
#   3. starts two http-stub services, inventory and email, on ports the
#      kernel picks, and the daemon on pgdispatch.yaml with those ports;
#   4. inserts 20 orders: both services get each;
#   5. switches the email service down (SIGUSR1: connection refused) and
#      inserts 20 more: inventory keeps completing, email tasks fail and
#      retry until the email breaker opens; then no attempt is spent;
#   6. switches the email service up: one probe task closes the breaker
#      and the email tasks drain;
#   7. checks that all 80 tasks are complete, and from each service's
#      log that it applied every order exactly once (by Idempotency-Key).
#
# Exits 0 when all of that held. PGDISPATCH_BIN names the pgdispatch
# binary (default build/pgdispatch), HTTP_STUB the services (default:
# http-stub next to the binary; `make build/http-stub` builds it).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${PGDISPATCH_BIN:-build/pgdispatch}
stub=${HTTP_STUB:-$(dirname "$bin")/http-stub}
before=20     # orders while both services are up
during=20     # orders while the email service is down
orders=$((before + during))
email=order.created.email
inventory=order.created.inventory

for f in "$bin" "$stub"; do
	if [ ! -x "$f" ]; then
		echo "order-fanout: $f is missing; run: make $bin $stub" >&2
		exit 1
	fi
done

say() { echo "order-fanout: $*"; }
fail() {
	echo "order-fanout: FAILED: $*" >&2
	exit 1
}
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
value() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
now_ms() {
	local t=$EPOCHREALTIME
	echo $((${t/[.,]/} / 1000))
}

work=$(mktemp -d "${TMPDIR:-/tmp}/order-fanout.XXXXXX")
daemon=""
stubs=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$daemon" ]; then
		kill -TERM "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	for pid in "${stubs[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ends the run when the daemon or a service is gone: the wait would be in
# vain. One that exited 0 was stopped (Ctrl-C reaches the whole process
# group, and psql, running at that moment, keeps the shell from seeing it).
gone() {
	local rc=0
	wait "$2" 2>/dev/null || rc=$?
	if [ "$rc" = 0 ]; then
		echo "order-fanout: $1 stopped; so does the run" >&2
		exit 130
	fi
	fail "$1 exited with status $rc${3:+ ($3)}"
}
alive() {
	if [ -n "$daemon" ] && ! kill -0 "$daemon" 2>/dev/null; then
		gone "the daemon" "$daemon" "its log is above"
	fi
	for pid in "${stubs[@]}"; do
		kill -0 "$pid" 2>/dev/null || gone "a service (http-stub, pid $pid)" "$pid"
	done
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

# Waits until the service's stdout has said $2 $3 times (it says "down"
# and "up" when SIGUSR1 took effect).
wait_said() {
	local deadline=$((SECONDS + 10))
	while [ "$(grep -cx "$2" "$work/$1.out" || true)" -lt "$3" ]; do
		alive
		[ "$SECONDS" -lt "$deadline" ] || fail "the $1 service did not say $2"
		sleep 0.05
	done
}

# Starts a service named $1 and sets port to the port the kernel gave it
# (not in a subshell: stubs must keep its pid).
start_service() {
	"$stub" --port 0 --port-file "$work/$1.port" --log "$work/$1.log" --dedupe \
		</dev/null >"$work/$1.out" 2>&1 &
	stubs+=($!)
	for _ in $(seq 100); do
		[ -s "$work/$1.port" ] && break
		alive
		sleep 0.05
	done
	[ -s "$work/$1.port" ] || fail "the $1 service did not start: $(cat "$work/$1.out")"
	port=$(cat "$work/$1.port")
}

# Inserts orders $1..$2 as the order service, one transaction each, and
# sets ms to how long that took.
insert_orders() {
	local t0 i
	t0=$(now_ms)
	for i in $(seq "$1" "$2"); do
		printf "INSERT INTO app.orders (customer, email, items, total) VALUES ('customer %d', 'c%d@example.com', '[{\"sku\": \"sku-%d\", \"qty\": %d}]', %d.99);\n" \
			"$i" "$i" $((i % 7)) $((i % 3 + 1)) $((10 + i))
	done | sql "user=order_service"
	ms=$(($(now_ms) - t0))
}

tasks() { value "SELECT count(*) FROM dispatch.tasks WHERE kind = '$1' AND status = '$2'"; }
breaker() { value "SELECT coalesce((SELECT state FROM dispatch.breaker_status WHERE kind = '$email'), 'none')"; }

if [ "$(value "SELECT to_regnamespace('app') IS NOT NULL")" = t ]; then
	echo "order-fanout: this database already has a schema app;" \
	     "run the example on a scratch database (make order-fanout)" >&2
	exit 1
fi

say "migrate, roles, a login role for the daemon (order_fanout) and one for the order service (order_service)"
"$bin" migrate >/dev/null
"$bin" roles >/dev/null
sql <<'SQL'
DO $$
BEGIN
    CREATE ROLE order_fanout LOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
DO $$
BEGIN
    CREATE ROLE order_service LOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
GRANT dispatch_worker TO order_fanout;
GRANT dispatch_producer TO order_service;
SQL

say "app.orders, and its trigger: each order adds an inventory and an email task in its own transaction"
sql -v service_role=order_service -f examples/order-fanout/schema.sql

start_service inventory
inventory_port=$port
start_service email
email_port=$port
email_pid=${stubs[1]}
say "inventory service on 127.0.0.1:$inventory_port, email service on 127.0.0.1:$email_port"

# The checked-in config names ports 8081 and 8082; this run's are the
# kernel's.
sed -e "s/127\.0\.0\.1:8081/127.0.0.1:$inventory_port/" -e "s/127\.0\.0\.1:8082/127.0.0.1:$email_port/" \
	examples/order-fanout/pgdispatch.yaml >"$work/pgdispatch.yaml"
# The email handler's header takes its token from the daemon's
# environment; it is never logged.
export EMAIL_API_TOKEN=example-token-not-a-secret

# The daemon's log, less its lines for each task started and complete.
"$bin" run -c "$work/pgdispatch.yaml" -d "user=order_fanout" \
	2> >(tee "$work/daemon.log" | grep --line-buffered -Ev ' task=[^ ]+ kind=[^ ]+ attempt=[^ ]+ .*(started|complete)$' |
		sed -u 's/^/  daemon | /' >&2) &
daemon=$!
wait_for "SELECT count(*) > 0 FROM pg_stat_activity
           WHERE usename = 'order_fanout' AND application_name LIKE 'pgdispatch %'" t 15
say "the daemon runs (breaker on $email: 3 failures within 10 s open it for 2 s)"

t0=$(now_ms)
insert_orders 1 "$before"
say "$before orders inserted in $ms ms, one transaction each"
wait_for "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'" $((2 * before)) 30
say "both services got all $before: $((2 * before)) tasks complete after $(($(now_ms) - t0)) ms"

say "the email service goes down (connection refused)"
kill -USR1 "$email_pid" 2>/dev/null || alive
wait_said email down 1

t0=$(now_ms)
insert_orders $((before + 1)) "$orders"
say "$during more orders inserted in $ms ms: the order service does not wait for its followers"

wait_for "SELECT state FROM dispatch.breaker_status WHERE kind = '$email'" open 30
failed=$(value "SELECT count(*) FROM dispatch.attempts WHERE kind = '$email'")
say "the email breaker is open after $(($(now_ms) - t0)) ms and $failed failed attempts; its tasks wait:"
sql -c "SELECT kind, state, open_s, seconds_left, last_error FROM dispatch.breaker_status"
wait_for "SELECT count(*) FROM dispatch.tasks WHERE kind = '$inventory' AND status = 'complete'" "$orders" 30
say "meanwhile inventory completed all $orders of its tasks; email: $(tasks "$email" complete) complete, $(tasks "$email" pending) pending"

# While open, no daemon claims an email task: their attempts stay put.
# (Counted only if the breaker was open all along: after open_for it lets
# one probe through.)
spent="SELECT sum(attempts) FROM dispatch.tasks WHERE kind = '$email'"
a1=$(value "$spent")
sleep 1
a2=$(value "$spent")
if [ "$(breaker)" = open ]; then
	[ "$a1" = "$a2" ] || fail "the email breaker is open, yet attempts went from $a1 to $a2 within 1 s"
	say "for 1 s with the breaker open, no email task was claimed: their attempts stayed at $a2"
else
	say "the breaker let a probe through within the second; attempts not compared"
fi

say "the email service is back up"
kill -USR1 "$email_pid" 2>/dev/null || alive
wait_said email up 1
t0=$(now_ms)
wait_for "SELECT state FROM dispatch.breaker_status WHERE kind = '$email'" closed 30
say "the breaker let one probe task through after open_for; it succeeded: closed after $(($(now_ms) - t0)) ms"
wait_for "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'" $((2 * orders)) 30
say "all $((2 * orders)) tasks complete $(($(now_ms) - t0)) ms after the email service came back:"
sql -c "SELECT t.kind, count(*) AS tasks,
               count(*) FILTER (WHERE t.status = 'complete') AS complete,
               sum(t.attempts) AS attempts,
               (SELECT count(*) FROM dispatch.attempts a WHERE a.kind = t.kind) AS failed_attempts
          FROM dispatch.tasks t GROUP BY t.kind ORDER BY t.kind"
sql -c "SELECT task_id, attempt, error FROM dispatch.attempts WHERE kind = '$email' ORDER BY id LIMIT 3"

# What each service applied, from its log (one JSON line per request):
# every order once, by its Idempotency-Key "order-ID", and only tasks of
# its own kind. The email service may have seen more requests than orders:
# those the outage cut, and repeats of a key it had applied, which
# --dedupe answers without applying again. The email requests carry the
# token of the daemon's environment, the inventory ones none (when the
# log records headers).
check_service() {
	local name=$1 kind=$2 auth=$3 out requests applied missing twice unknown strays badauth
	out=$(psql -X -q -At -F ' ' -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE requests (n serial, line jsonb);
\copy requests (line) FROM '$work/$name.log' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
CREATE TEMP VIEW applied AS
SELECT line->>'idempotency_key' AS key, count(*) AS times
  FROM requests WHERE (line->>'applied')::boolean GROUP BY 1;
SELECT (SELECT count(*) FROM requests),
       (SELECT coalesce(sum(times), 0) FROM applied),
       (SELECT count(*) FROM app.orders o
         WHERE NOT EXISTS (SELECT 1 FROM applied a WHERE a.key = 'order-' || o.id)),
       (SELECT count(*) FROM applied WHERE times > 1),
       (SELECT count(*) FROM applied a
         WHERE NOT EXISTS (SELECT 1 FROM app.orders o WHERE a.key = 'order-' || o.id)),
       (SELECT count(*) FROM requests WHERE line->'body'->>'kind' IS DISTINCT FROM '$kind'),
       (SELECT count(*) FROM requests
         WHERE line ? 'headers' AND line->'headers'->>'authorization' IS DISTINCT FROM nullif('$auth', ''));
SQL
)
	read -r requests applied missing twice unknown strays badauth <<<"$out"
	[ "$missing" = 0 ] || fail "the $name service never applied $missing order(s)"
	[ "$twice" = 0 ] || fail "the $name service applied $twice order(s) more than once"
	[ "$unknown" = 0 ] || fail "the $name service applied $unknown key(s) of no order"
	[ "$strays" = 0 ] || fail "the $name service got $strays request(s) that were not $kind tasks"
	[ "$badauth" = 0 ] || fail "the $name service got $badauth request(s) without the Authorization header expected"
	say "the $name service applied each of the $orders orders once ($requests requests, $applied applied)"
}
check_service inventory "$inventory" ""
check_service email "$email" "Bearer $EMAIL_API_TOKEN"

# Each change of the breaker is logged once. A probe that failed (the
# service came back late) reopens it, logged as "opened again".
opened=$(grep -c "breaker kind=$email opened for" "$work/daemon.log" || true)
closed=$(grep -c "breaker kind=$email closed" "$work/daemon.log" || true)
if [ "$opened" != 1 ] || [ "$closed" != 1 ]; then
	fail "the daemon logged the email breaker opening $opened and closing $closed time(s), want once each"
fi
if grep -q "$EMAIL_API_TOKEN" "$work/daemon.log"; then
	fail "the daemon's log holds the email token"
fi

kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
daemon=""
[ "$rc" = 0 ] || fail "the daemon exited $rc after SIGTERM"
say "every order reached both services exactly once ($orders orders, $((2 * orders)) tasks);" \
    "the email breaker opened and closed once"
