#!/usr/bin/env bash
# `make bench`: pgdispatch against PostgreSQL's own ceiling, in one run.
#
# Runs inside tests/pg_scratch.sh with a durable server (fsync and
# synchronous_commit on, as in production). Prints a table, writes
# build/bench/results.csv and, when gnuplot is there, PNG plots. QUICK=1
# shrinks every figure for development (about 3 minutes); the full run
# stays under 20. What each figure means is in README.md, "Benchmarks".
#
# A benchmark is not a test: nothing here fails on a slow figure; the
# targets are printed next to the figures for a person to judge.
set -euo pipefail
cd "$(dirname "$0")/../.."

QUICK=${QUICK:-0}
# SECTIONS="latency backlog" runs only those (for development); default all.
SECTIONS=${SECTIONS:-ceiling throughput latency backlog command http enqueue source}
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
best_ceiling=0 best_thru=0 best_conc=256 default_thru=0 ratio=0 p50=- p95=- p99=- pmax=-
big_rate=0 small_rate=0 backlog_ratio=0 best_cmd=0 rss_small=- rss_after=- rss_peak=-
enq_notify=0 enq_plain=0 enq_ratio=0 src_rate=0 src_tasks=0 src_ratio=0 src_conc=-
floor50=- floor99=- floor50_off=- floor99_off=- d50_off=- d99_off=-
http_best=0 http_conc=- http_stub=0 http_curl=0 http_hwm=- http_stub_ratio=0 http_noop_ratio=-
bin=$PWD/build/pgdispatch
out=$PWD/build/bench
pgbench="$PGDISPATCH_PGBIN/pgbench"
mkdir -p "$out"
csv=$out/results.csv
echo "section,name,value,unit" >"$csv"

if [ "$QUICK" = 1 ]; then
	CEIL_BATCHES="10 100 1000"; CEIL_CLIENTS="1 4 8"; CEIL_SECS=1; CEIL_ROWS=60000
	THRU_TASKS=30000; THRU_CONC="8 256 1024"
	LAT_RATE=200; LAT_SECS=4
	SMALL_BACKLOG=10000; BIG_BACKLOG=100000; FINISHED=100000
	CMD_TASKS=2000; ENQ_SECS=4; ENQ_BACKLOG=100000; SRC_ROWS=100000
	HTTP_CONC="64 256 1024"; HTTP_FLOOR_SECS=2
else
	CEIL_BATCHES="10 100 1000"; CEIL_CLIENTS="1 2 4 8"; CEIL_SECS=5; CEIL_ROWS=300000
	THRU_TASKS=100000; THRU_CONC="8 64 256 1024"
	LAT_RATE=200; LAT_SECS=10
	SMALL_BACKLOG=10000; BIG_BACKLOG=1000000; FINISHED=1000000
	CMD_TASKS=10000; ENQ_SECS=10; ENQ_BACKLOG=400000; SRC_ROWS=200000
	HTTP_CONC="64 256 1024"; HTTP_FLOOR_SECS=5
fi

q() { psql -X -Atq -v ON_ERROR_STOP=1 -c "$1"; }
record() { echo "$1,$2,$3,$4" >>"$csv"; }
say() { printf '%s\n' "$*" >&2; }

"$bin" migrate >/dev/null
q "CREATE TABLE bench_commits (id bigint PRIMARY KEY, xid xid8 NOT NULL)"

# Pending rows, due now, then a vacuum so every run starts from a clean table.
fill() {  # fill N [KIND] [STATUS]
	q "INSERT INTO dispatch.tasks (kind, status) SELECT '${2:-noop}', '${3:-pending}' FROM generate_series(1, $1)"
	q "VACUUM ANALYZE dispatch.tasks"
}
reset() { q "TRUNCATE dispatch.tasks, bench_commits"; }

# Rows per second from the rows' own timestamps: first claim to last outcome.
rate() {  # rate [WHERE]
	q "SELECT round(count(*) / greatest(extract(epoch FROM max(finished_at) - min(started_at)), 0.001))
	     FROM dispatch.tasks WHERE status = 'complete' ${1:-}"
}

daemon_pid=""
start_daemon() {  # start_daemon CONFIG_TEXT
	printf '%s\n' "$1" >"$out/daemon.yaml"
	"$bin" run -c "$out/daemon.yaml" 2>"$out/daemon.log" &
	daemon_pid=$!
	# Logs are at warn (a line per task would cost throughput), so look for
	# its connection instead.
	for _ in $(seq 1 200); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgdispatch %'")" -ge 2 ] && return 0
		sleep 0.05
	done
	say "daemon did not connect:"; cat "$out/daemon.log" >&2; exit 1
}
stop_daemon() {
	[ -n "$daemon_pid" ] || return 0
	kill -TERM "$daemon_pid" 2>/dev/null || true
	wait "$daemon_pid" 2>/dev/null || true
	daemon_pid=""
}
stub_pid=""
stop_stub() {
	[ -n "$stub_pid" ] || return 0
	kill -TERM "$stub_pid" 2>/dev/null || true
	wait "$stub_pid" 2>/dev/null || true
	stub_pid=""
}
trap 'stop_daemon; stop_stub' EXIT
# Waits until no task is pending or in progress. The check reads only the two
# partial indexes, and runs twice a second: the figures come from the rows'
# timestamps, so polling faster buys nothing, and a count(*) over the table
# every 0.1 s took a quarter of a core from the server the daemon is measured
# on (the ceiling's pgbench runs have no such poller).
wait_done() {  # wait_done [TIMEOUT_S]
	local end=$((SECONDS + ${1:-600}))
	while [ "$(q "SELECT EXISTS (SELECT 1 FROM dispatch.tasks WHERE status = 'pending')
	               OR EXISTS (SELECT 1 FROM dispatch.tasks WHERE status = 'in_progress')")" = t ]; do
		[ $SECONDS -lt $end ] || { say "timed out waiting for the tasks"; tail -5 "$out/daemon.log" >&2; exit 1; }
		sleep 0.5
	done
}
pct() { awk -v a="$1" 'BEGIN { printf "%d%%", a * 100 }'; }
rss_kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

noop_config() {  # noop_config CONCURRENCY
	printf 'concurrency: %s\nlog: {level: warn}\nhandlers:\n  noop: {builtin: noop}\n  true: {command: [/bin/true]}\n' "$1"
}

# --- ceiling ------------------------------------------------------------
if want ceiling; then
# pgbench runs the daemon's own statements, printed whole (the build's
# --@include expansion: dispatcher/embed_gen.sh --print): sql/claim.sql (its
# rows gathered into arrays, as the daemon reads them) and
# sql/outcomes.sql, prepared and with custom plans, as the daemon runs them
# (sql/work_session.sql). Each client claims with a token of its own
# (:client_id + 1) and records its batch with it.
say "== ceiling: pgbench with the daemon's claim and complete statements"
strip() { sh dispatcher/embed_gen.sh --print "$1" | sed -e 's/--.*$//' -e '/^[[:space:]]*$/d'; }
# The claim's parameters as pgbench variables ($8 before $1: no $1 in $10).
claim_vars='s/\$8/:rooms/g; s/\$7/:limited/g; s/\$6/:token/g; s/\$5/:skip/g; s/\$4/:lease/g; s/\$3/:me/g; s/\$2/:batch/g; s/\$1/:queue/g'
# Shape "separate": claim.sql, then outcomes.sql, each its own commit.
{
	echo "\\set token :client_id + 1"
	strip sql/claim.sql | sed -e '/^SELECT .c. AS tag/,$d' | sed -e "$claim_vars"
	echo "SELECT coalesce((SELECT array_agg(id) FROM claimed), '{}') AS ids,"
	echo "       coalesce((SELECT array_agg(:token::bigint) FROM claimed), '{}') AS toks,"
	echo "       coalesce((SELECT array_agg('complete'::text) FROM claimed), '{}') AS types \\gset"
	strip sql/outcomes.sql |
		sed -e 's/\$5/'"'{}'"'/g; s/\$4/'"'{}'"'/g; s/\$3/:types/g; s/\$2/:toks/g; s/\$1/:ids/g'
	echo ";"
} >"$out/ceiling-separate.pgbench"
# Shape "combined": complete_and_claim.sql records the previous batch and
# claims the next in one commit, as the daemon does while it has a backlog.
{
	echo "\\set token :client_id + 1"
	strip sql/complete_and_claim.sql | sed -e '/^SELECT .c. AS tag/,$d' |
		sed -e 's/\$11::jsonb\[\]/'"'{}'"'::jsonb[]/g; s/\$10/:toks/g; s/\$9/:ids/g' -e "$claim_vars"
	echo "SELECT coalesce((SELECT array_agg(id) FROM claimed), '{}') AS ids,"
	echo "       coalesce((SELECT array_agg(:token::bigint) FROM claimed), '{}') AS toks,"
	echo "       (SELECT count(*) FROM done) AS ndone \\gset"
} >"$out/ceiling-combined.pgbench"
for shape in separate combined; do
	for batch in $CEIL_BATCHES; do
		for clients in $CEIL_CLIENTS; do
			reset; fill "$CEIL_ROWS"
			PGOPTIONS="-c plan_cache_mode=force_custom_plan" \
			"$pgbench" -n -M prepared -c "$clients" -j "$clients" -T "$CEIL_SECS" -f "$out/ceiling-$shape.pgbench" \
				-D queue=default -D batch="$batch" -D me=bench -D lease=30000 -D skip='{}' \
				-D limited='{}' -D rooms='{}' -D ids='{}' -D toks='{}' >/dev/null 2>"$out/pgbench.err" ||
				{ cat "$out/pgbench.err" >&2; exit 1; }
			r=$(rate)
			record ceiling "shape=$shape batch=$batch clients=$clients" "$r" rows/s
			say "  $shape, batch $batch, $clients clients: $r rows/s"
			[ "$r" -gt "$best_ceiling" ] && best_ceiling=$r
		done
	done
done
record ceiling best "$best_ceiling" rows/s
fi

# --- throughput ---------------------------------------------------------
if want throughput; then
say "== throughput: $THRU_TASKS pre-queued builtin noop tasks"
for conc in $THRU_CONC; do
	reset; fill "$THRU_TASKS"
	start_daemon "$(noop_config "$conc")"
	wait_done
	stop_daemon
	r=$(rate)
	record throughput "concurrency=$conc" "$r" tasks/s
	say "  concurrency $conc: $r tasks/s"
	[ "$conc" = 8 ] && default_thru=$r
	if [ "$r" -gt "$best_thru" ]; then best_thru=$r; best_conc=$conc; fi
done
record throughput default "$default_thru" tasks/s
record throughput best "$best_thru" tasks/s
record throughput best_concurrency "$best_conc" tasks
ratio=$(awk -v a="$best_thru" -v b="$best_ceiling" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
record throughput ratio_to_ceiling "$ratio" ratio
fi

# --- latency ------------------------------------------------------------
if want latency; then
# Commit time of each insert from track_commit_timestamp, through a bench
# trigger that records the inserting transaction's id; handler start is the
# claim's started_at. The same producers also run against
# tests/bench/notify_floor.c, a bare listener that marks the tasks started
# the moment a notification arrives: the floor PostgreSQL sets on this box.
# Producers commit with synchronous_commit on (as in production), then off:
# a commit's timestamp is taken before its WAL flush, and its NOTIFY goes
# out only after it, so "on" puts one fdatasync into every figure.
say "== latency: $LAT_RATE inserts/s for $LAT_SECS s into an idle daemon"
cc -O2 -o "$out/notify_floor" tests/bench/notify_floor.c $(pkg-config --cflags --libs libpq)
q "CREATE OR REPLACE FUNCTION bench_note_xid() RETURNS trigger LANGUAGE plpgsql AS
   \$\$ BEGIN INSERT INTO bench_commits VALUES (NEW.id, pg_current_xact_id()); RETURN NULL; END \$\$"
q "CREATE TRIGGER bench_note_xid AFTER INSERT ON dispatch.tasks FOR EACH ROW EXECUTE FUNCTION bench_note_xid()"
echo "INSERT INTO dispatch.tasks (kind) VALUES ('noop');" >"$out/insert.pgbench"
produce() {  # produce SYNCHRONOUS_COMMIT
	PGOPTIONS="-c synchronous_commit=$1" \
		"$pgbench" -n -c 1 -R "$LAT_RATE" -T "$LAT_SECS" -f "$out/insert.pgbench" >/dev/null 2>&1
}
latencies() {  # latencies: started_at minus commit time, in ms, per task
	echo "SELECT extract(epoch FROM t.started_at - pg_xact_commit_timestamp(c.xid::text::xid)) * 1000 AS ms
	        FROM dispatch.tasks t JOIN bench_commits c USING (id)"
}
percentiles() {  # percentiles: p50,p95,p99,max,count
	q "SELECT concat_ws(',', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3),
	                         round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 3),
	                         round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3),
	                         round(max(ms)::numeric, 3), count(*))
	     FROM ($(latencies)) l"
}
# Four runs: the daemon, then the bare listener, each with producers at
# synchronous_commit on and off.
for who in daemon floor; do
	for sc in on off; do
		reset
		if [ "$who" = daemon ]; then
			start_daemon "$(noop_config 8)"
		else
			# No backend_pid: psql's session ends at once, and a
			# registration (sql/sleep_register.sql) would remove the row.
			q "INSERT INTO dispatch.sleepers (instance, queue, backend_pid) VALUES ('notify_floor', 'default', NULL)"
			"$out/notify_floor" 3 >/dev/null &
			floor_pid=$!
		fi
		sleep 0.5
		produce "$sc"
		if [ "$who" = daemon ]; then
			wait_done 30
			stop_daemon
		else
			wait "$floor_pid"
			q "DELETE FROM dispatch.sleepers WHERE instance = 'notify_floor'"
		fi
		IFS=, read -r l50 l95 l99 lmax ln <<<"$(percentiles)"
		say "  $who, producer synchronous_commit $sc: p50 $l50 ms, p95 $l95 ms, p99 $l99 ms, max $lmax ms ($ln tasks)"
		if [ "$who/$sc" = daemon/on ]; then
			p50=$l50 p95=$l95 p99=$l99 pmax=$lmax
			record latency p50 "$p50" ms; record latency p95 "$p95" ms; record latency p99 "$p99" ms
			record latency max "$pmax" ms; record latency samples "$ln" tasks
			q "COPY (SELECT round(ms::numeric, 3) FROM ($(latencies)) l ORDER BY 1) TO STDOUT" >"$out/latency.dat"
		else
			record latency "${who}_sync_commit_${sc}_p50" "$l50" ms
			record latency "${who}_sync_commit_${sc}_p99" "$l99" ms
		fi
		case $who/$sc in
		daemon/off) d50_off=$l50 d99_off=$l99 ;;
		floor/on) floor50=$l50 floor99=$l99 ;;
		floor/off) floor50_off=$l50 floor99_off=$l99 ;;
		esac
	done
done
q "DROP TRIGGER bench_note_xid ON dispatch.tasks"
fi

# --- backlog scaling and memory -----------------------------------------
if want backlog; then
say "== backlog: $SMALL_BACKLOG and $BIG_BACKLOG due tasks, with $FINISHED finished rows"
for backlog in $SMALL_BACKLOG $BIG_BACKLOG; do
	reset
	fill "$FINISHED" noop complete
	q "UPDATE dispatch.tasks SET started_at = now() - interval '1 day', finished_at = now() - interval '1 day'"
	q "VACUUM ANALYZE dispatch.tasks"
	fill "$backlog"
	start_daemon "$(noop_config "$best_conc")"
	[ "$backlog" = "$SMALL_BACKLOG" ] && rss_small=$(rss_kb "$daemon_pid" VmRSS)
	wait_done 1200
	rss_after=$(rss_kb "$daemon_pid" VmRSS); rss_peak=$(rss_kb "$daemon_pid" VmHWM)
	stop_daemon
	r=$(rate "AND finished_at > now() - interval '1 hour'")
	record backlog "due=$backlog" "$r" tasks/s
	say "  $backlog due: $r tasks/s"
	[ "$backlog" = "$SMALL_BACKLOG" ] && small_rate=$r || big_rate=$r
done
record memory rss_start_kb "$rss_small" kB
record memory rss_after_big_backlog_kb "$rss_after" kB
record memory peak_rss_kb "$rss_peak" kB
backlog_ratio=$(awk -v a="$big_rate" -v b="$small_rate" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
record backlog ratio_big_to_small "$backlog_ratio" ratio
say "  memory: $rss_small kB at start, $rss_after kB after $BIG_BACKLOG tasks, peak $rss_peak kB"
fi

# --- command handlers ---------------------------------------------------
if want command; then
say "== command handlers: $CMD_TASKS tasks running /bin/true"
for conc in 8 32; do
	reset; fill "$CMD_TASKS" true
	start_daemon "$(noop_config "$conc")"
	wait_done
	stop_daemon
	r=$(rate)
	record command "concurrency=$conc" "$r" tasks/s
	say "  concurrency $conc: $r tasks/s"
	[ "$r" -gt "$best_cmd" ] && best_cmd=$r
done
record command best "$best_cmd" tasks/s
fi

# --- HTTP handlers ------------------------------------------------------
if want http; then
# pgdispatch delivering tasks to build/http-stub in ok mode (keep-alive,
# 200 {"ok":true}), beside what the stub and libcurl allow on their own.
# tests/bench/http_floor.c keeps N keep-alive connections busy, one request
# at a time on each (no pipelining), with the daemon's request header for
# header: on raw sockets it measures the stub's ceiling; on libcurl, driven
# as handler_http.c drives it, the libcurl + stub floor (no database). Then
# THRU_TASKS pre-queued http.bench tasks at each concurrency, first claim to
# last outcome. The stub, the daemon and PostgreSQL share the 2 cores, so
# each run also notes the CPU time each spent per task (from /proc), and
# the whole machine's: which one a run was short of.
say "== http: $THRU_TASKS pre-queued http.bench tasks against build/http-stub"
hz=$(getconf CLK_TCK)
proc_ms() { awk -v hz="$hz" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }
# PostgreSQL's: the postmaster, the children it has reaped and those alive.
pg_pid=$(head -1 "$(q "SHOW data_directory")/postmaster.pid" 2>/dev/null || true)
pg_ms() {
	[ -n "$pg_pid" ] || { echo 0; return; }
	# shellcheck disable=SC2046
	cat "/proc/$pg_pid/stat" $(ps -o pid= --ppid "$pg_pid" | awk '{ print "/proc/" $1 "/stat" }') 2>/dev/null |
		awk -v hz="$hz" -v pm="$pg_pid" '{ t += $14 + $15 } $1 == pm { t += $16 + $17 } END { printf "%d", t * 1000 / hz }'
}
busy_ms() { awk -v hz="$hz" '$1 == "cpu" { printf "%d", ($2 + $3 + $4 + $7 + $8 + $9) * 1000 / hz }' /proc/stat; }
rm -f "$out/http-stub.port"
build/http-stub --port-file "$out/http-stub.port" --mode ok </dev/null >"$out/http-stub.out" 2>&1 &
stub_pid=$!
for _ in $(seq 1 100); do [ -s "$out/http-stub.port" ] && break; sleep 0.05; done
[ -s "$out/http-stub.port" ] || { say "http-stub did not start:"; cat "$out/http-stub.out" >&2; exit 1; }
stub_port=$(cat "$out/http-stub.port")
# The floor runs compete for the 2 cores with whatever else runs, so beside
# requests/s they give the CPU time per request of the stub and the client,
# and how long the stub waited for a core (its schedstat): a low ceiling
# with a long wait was the box's, not the stub's.
http_floor() {  # http_floor CLIENT CONNS: "REQUESTS/S STUB_US CLIENT_US STUB_WAIT%"
	local s0 w0 line
	s0=$(proc_ms "$stub_pid") w0=$(awk '{ printf "%d", $2 / 1e6 }' "/proc/$stub_pid/schedstat")
	line=$(build/http-floor --port "$stub_port" --client "$1" --conns "$2" --seconds "$HTTP_FLOOR_SECS")
	case $line in *" errors=0") ;; *) say "http_floor: $line"; exit 1 ;; esac
	awk -v l="$line" -v s="$(($(proc_ms "$stub_pid") - s0))" \
		-v w="$(($(awk '{ printf "%d", $2 / 1e6 }' "/proc/$stub_pid/schedstat") - w0))" 'BEGIN {
		n = split(l, kv, /[ =]/); for (i = 1; i < n; i += 2) f[kv[i]] = kv[i + 1]
		printf "%d %d %d %d%%", f["rate"], s * 1000 / f["requests"], f["cpu_ms"] * 1000 / f["requests"],
			w * 100 / (f["seconds"] * 1000) }'
}
http_config() {  # http_config CONCURRENCY
	printf 'concurrency: %s\nlog: {level: warn}\nhandlers:\n  http.bench:\n    http: {url: "http://127.0.0.1:%s/bench"}\n' \
		"$1" "$stub_port"
}
us() { awk -v ms="$1" -v n="$2" 'BEGIN { printf "%d", n ? ms * 1000 / n : 0 }'; }
for conc in $HTTP_CONC; do
	line=$(http_floor raw "$conc"); read -r raw raw_stub_us raw_client_us raw_wait <<<"$line"
	line=$(http_floor curl "$conc"); read -r curl _ curl_us curl_wait <<<"$line"
	record http "stub_ceiling conns=$conc" "$raw" requests/s
	record http "stub_cpu_per_request conns=$conc" "$raw_stub_us" us
	record http "libcurl_floor conns=$conc" "$curl" requests/s
	record http "libcurl_cpu_per_request conns=$conc" "$curl_us" us
	say "  $conc connections: stub ceiling $raw requests/s (CPU per request: stub $raw_stub_us us," \
		"raw client $raw_client_us us; the stub waited for a core $raw_wait of the time);" \
		"libcurl + stub floor $curl requests/s (libcurl client $curl_us us; stub waited $curl_wait)"
	[ "$conc" = 64 ] && http_stub=$raw http_curl=$curl
	reset; fill "$THRU_TASKS" http.bench
	s0=$(proc_ms "$stub_pid") p0=$(pg_ms) m0=$(busy_ms)
	start_daemon "$(http_config "$conc")"
	wait_done
	d=$(proc_ms "$daemon_pid")
	[ "$conc" = 1024 ] && http_hwm=$(rss_kb "$daemon_pid" VmHWM)
	s=$(($(proc_ms "$stub_pid") - s0)) p=$(($(pg_ms) - p0)) m=$(($(busy_ms) - m0))
	stop_daemon
	r=$(rate)
	n=$(q "SELECT count(*) FROM dispatch.tasks WHERE status = 'complete'")
	[ "$n" = "$THRU_TASKS" ] || say "  ($n of $THRU_TASKS tasks complete: see $out/daemon.log)"
	record http "concurrency=$conc" "$r" tasks/s
	for who in daemon:$d stub:$s postgres:$p machine:$m; do
		record http "cpu_per_task ${who%%:*} concurrency=$conc" "$(us "${who#*:}" "$n")" us
	done
	say "  concurrency $conc: $r tasks/s; CPU per task: daemon $(us "$d" "$n") us, stub $(us "$s" "$n") us," \
		"PostgreSQL $(us "$p" "$n") us, anything else on the box $(us $((m - d - s - p)) "$n") us;" \
		"$(nproc) cores give $(us $((1000 * $(nproc))) "$r") us a task at that rate"
	if [ "$r" -gt "$http_best" ]; then http_best=$r; http_conc=$conc; fi
done
stop_stub
http_stub_ratio=$(awk -v a="$http_best" -v b="$http_stub" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
record http best "$http_best" tasks/s
record http best_concurrency "$http_conc" tasks
record http ratio_to_stub_ceiling "$http_stub_ratio" ratio
[ "$http_hwm" = - ] || record memory http_peak_rss_kb_concurrency_1024 "$http_hwm" kB
if [ "$best_thru" -gt 0 ]; then
	http_noop_ratio=$(awk -v a="$http_best" -v b="$best_thru" 'BEGIN { printf "%.2f", a / b }')
	record http ratio_to_builtin_noop "$http_noop_ratio" ratio
fi
say "  best: $http_best tasks/s at concurrency $http_conc = $(pct "$http_stub_ratio") of the stub's ceiling" \
	"($http_stub requests/s, 64 connections)$( [ "$http_noop_ratio" = - ] || echo ", $(pct "$http_noop_ratio") of builtin noop ($best_thru)");" \
	"peak RSS at 1024 in flight $http_hwm kB"
fi

# --- enqueue cost -------------------------------------------------------
if want enqueue; then
# 8 producers insert one task per transaction while a daemon works a
# backlog, with the wake-up trigger and without it.
say "== enqueue: 8 producers while a daemon works a backlog"
echo "INSERT INTO dispatch.tasks (kind, queue) VALUES ('noop', 'produced');" >"$out/produce.pgbench"
enqueue_rate() {
	"$pgbench" -n -M extended -c 8 -j 8 -T "$ENQ_SECS" -f "$out/produce.pgbench" 2>/dev/null |
		awk '/^tps = / { printf "%d", $3 }'
}
for mode in notify plain; do
	reset; fill "$ENQ_BACKLOG"
	[ "$mode" = plain ] && q "ALTER TABLE dispatch.tasks DISABLE TRIGGER tasks_notify"
	start_daemon "$(noop_config 64)"
	r=$(enqueue_rate)
	stop_daemon
	[ "$mode" = plain ] && q "ALTER TABLE dispatch.tasks ENABLE TRIGGER tasks_notify"
	record enqueue "$mode" "$r" inserts/s
	say "  $mode: $r inserts/s"
	[ "$mode" = notify ] && enq_notify=$r || enq_plain=$r
done
enq_ratio=$(awk -v a="$enq_notify" -v b="$enq_plain" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
record enqueue ratio_notify_to_plain "$enq_ratio" ratio
fi

# --- source -------------------------------------------------------------
if want source; then
# A source (docs/sources.md) on the seed table, exactly its four columns,
# against dispatch.tasks in the same run, same concurrency, same builtin
# noop handler. The seed table has no timestamps to take a rate from, so
# both are timed the same way: the wall clock from the daemon's start
# until nothing is pending or in progress (polled every 50 ms; the
# in_progress check reads the whole table, but only once nothing is
# pending, at the very end). Each is drained twice, alternating, and the
# better run of each counts: on a shared 2-core machine one run's figure
# swings by a third.
src_conc=${SRC_CONC:-$best_conc}
say "== source: $SRC_ROWS rows of the seed table vs dispatch.tasks, concurrency $src_conc"
q "CREATE TYPE configuration_update_status AS ENUM ('pending', 'in_progress', 'complete', 'failed')"
q "CREATE TABLE configuration_update (id serial PRIMARY KEY, content jsonb,
                                      status configuration_update_status, destination inet)"
q "CREATE INDEX configuration_update_pending ON configuration_update (id) WHERE status = 'pending'"
src_config() {
	printf 'concurrency: %s\nlog: {level: warn}\nsources:\n  configuration_update:\n' "$1"
	printf '    table: public.configuration_update\n    status: {column: status}\n'
	printf 'handlers:\n  noop: {builtin: noop}\n  configuration_update: {builtin: noop}\n'
}
timed_drain() {  # timed_drain CONFIG PENDING_SQL IN_PROGRESS_SQL: prints rows/s of SRC_ROWS rows
	local t0 t1
	t0=$(date +%s.%N)
	start_daemon "$1"
	while [ "$(q "$2")" = t ]; do sleep 0.05; done
	while [ "$(q "$3")" = t ]; do sleep 0.05; done
	t1=$(date +%s.%N)
	stop_daemon
	awk -v n="$SRC_ROWS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }'
}
for round in 1 2; do
	reset; fill "$SRC_ROWS"
	r=$(timed_drain "$(src_config "$src_conc")" \
		"SELECT EXISTS (SELECT 1 FROM dispatch.tasks WHERE status = 'pending')" \
		"SELECT EXISTS (SELECT 1 FROM dispatch.tasks WHERE status = 'in_progress')")
	say "  round $round, dispatch.tasks: $r tasks/s"
	[ "$r" -gt "$src_tasks" ] && src_tasks=$r
	reset
	q "TRUNCATE configuration_update"
	q "INSERT INTO configuration_update (content, status, destination)
	   SELECT jsonb_build_object('n', g), 'pending', '127.0.0.1' FROM generate_series(1, $SRC_ROWS) g"
	q "VACUUM ANALYZE configuration_update"
	r=$(timed_drain "$(src_config "$src_conc")" \
		"SELECT EXISTS (SELECT 1 FROM configuration_update WHERE status = 'pending')" \
		"SELECT EXISTS (SELECT 1 FROM configuration_update WHERE status = 'in_progress')")
	say "  round $round, source: $r rows/s"
	[ "$r" -gt "$src_rate" ] && src_rate=$r
done
src_ratio=$(awk -v a="$src_rate" -v b="$src_tasks" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
record source tasks "$src_tasks" tasks/s
record source rows "$src_rate" rows/s
record source ratio_to_tasks "$src_ratio" ratio
say "  dispatch.tasks: $src_tasks tasks/s; source: $src_rate rows/s ($(awk -v r="$src_ratio" 'BEGIN { printf "%d%%", r * 100 }'))"
fi

# --- the table ----------------------------------------------------------
http_noop_pct=-
[ "$http_noop_ratio" = - ] || http_noop_pct=$(pct "$http_noop_ratio")
cat <<TABLE

pgdispatch benchmark ($( [ "$QUICK" = 1 ] && echo quick || echo full ) run, $(nproc) cores, PostgreSQL $(q "SHOW server_version"), fsync on)

| figure                                   | measured                       | target              |
|------------------------------------------|--------------------------------|---------------------|
| ceiling, best pgbench cell               | $best_ceiling rows/s                  |                     |
| throughput, default config (conc. 8)     | $default_thru tasks/s                 |                     |
| throughput, best config (conc. $best_conc)     | $best_thru tasks/s = $(pct "$ratio") of ceiling | >= 80% of ceiling   |
| latency p50 / p95 / p99 / max            | $p50 / $p95 / $p99 / $pmax ms | p50 < 0.5, p99 < 3  |
| latency, producers at sync. commit off   | p50 $d50_off / p99 $d99_off ms     |                     |
| latency floor, bare listener: on / off   | p50 $floor50 / $floor50_off, p99 $floor99 / $floor99_off ms |                     |
| backlog $BIG_BACKLOG vs $SMALL_BACKLOG due          | $big_rate vs $small_rate tasks/s = $(pct "$backlog_ratio") | within 10%          |
| command handlers (/bin/true)             | $best_cmd tasks/s                     | >= 2,000            |
| HTTP handlers, best (conc. $http_conc)          | $http_best tasks/s = $(pct "$http_stub_ratio") of stub ceiling, $http_noop_pct of noop | >= 5,000            |
| HTTP stub ceiling / libcurl floor (64 conns) | $http_stub / $http_curl requests/s    |                     |
| daemon peak RSS, 1024 HTTP in flight     | $http_hwm kB                          |                     |
| daemon RSS start / after / peak          | $rss_small / $rss_after / $rss_peak kB   | < 10 MB, no growth  |
| enqueue, notify vs plain (8 producers)   | $enq_notify vs $enq_plain inserts/s = $(pct "$enq_ratio") | >= 80%              |
| source (seed table) vs tasks, conc. $src_conc | $src_rate vs $src_tasks rows/s = $(pct "$src_ratio") | >= 80%              |

Figures: $csv
TABLE

if command -v gnuplot >/dev/null 2>&1 && want ceiling && want latency; then
	grep '^ceiling,shape=' "$csv" |
		sed 's/ceiling,shape=\([a-z]*\) batch=\([0-9]*\) clients=\([0-9]*\),\([0-9]*\),.*/\1-\2 \3 \4/' >"$out/ceiling.dat"
	gnuplot <<GP
set terminal pngcairo size 900,500 noenhanced
set output "$out/ceiling.png"
set title "Ceiling: the daemon's claim + complete under pgbench (rows/s)"
set xlabel "pgbench clients"; set ylabel "rows/s"; set key outside right; set grid
series = "$(awk '{print $1}' "$out/ceiling.dat" | sort -u | tr '\n' ' ')"
plot for [b in series] "< awk '\$1 == \"".b."\"' $out/ceiling.dat" using 2:3 with linespoints title b, \
     $best_thru title "pgdispatch, best config" with lines dashtype 2
set output "$out/latency.png"
set title "Insert commit to handler start, $LAT_RATE tasks/s into an idle daemon"
set xlabel "latency (ms)"; set ylabel "share of tasks at or below"; set key off; set xrange [0:*]
stats "$out/latency.dat" using 1 nooutput
plot "$out/latency.dat" using 1:(\$0 / STATS_records) with steps
GP
	echo "Plots: $out/ceiling.png $out/latency.png"
fi
