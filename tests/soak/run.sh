#!/usr/bin/env bash
# `make soak`: three daemons on one PostgreSQL, killed over and over.
#
# Runs inside tests/pg_scratch.sh with a durable server (fsync and
# synchronous_commit on, as in production), in three phases, each on its own
# queue with a pre-queued backlog:
#
#   kill   command handlers (build/soak-record from tests/soak/record.c, one
#          line per invocation);
#          every ~2 s a random daemon gets SIGKILL and is started again, and
#          once, half-way, PostgreSQL is restarted with `pg_ctl restart -m
#          immediate` (the daemons must reconnect by themselves)
#   term   the same with SIGTERM instead of SIGKILL: zero duplicates
#   lock   command handlers that take 200 ms, SIGKILL every ~2 s, while a
#          hostile session keeps locking the phase's running rows: three
#          random in_progress rows FOR UPDATE held 2-4 s (around the 3 s
#          lease), and now and then the whole table IN EXCLUSIVE MODE for
#          1-2 s, each round in a transaction of its own
#   noop   `builtin: noop` at full speed under the SIGKILLs (and one more
#          PostgreSQL restart)
#
# Then it asserts, per phase: every task complete, none lost, none stuck in
# pending or in_progress, no daemon exited on its own, every daemon stops
# cleanly on SIGTERM within its grace, no daemon process ran a task twice,
# duplicates within the bound below, and (lock phase) no daemon went
# STUCK_S seconds without starting a handler while work was waiting; and
# prints a table. Exit status 0 only when everything held. Daemon logs, the
# invocation records and the table are left in build/soak/.
#
# The duplicate bound. A daemon holds at most `concurrency` tasks whose
# outcome is not yet committed: a slot is freed only as its outcome enters
# the outbox, and claims fill free slots only, with the outbox's successes
# committed in the same statement (sql/complete_and_claim.sql). A SIGKILL
# can therefore leave at most `concurrency` tasks whose handler ran (the
# orphaned handler may even finish after its daemon died) but whose outcome
# never landed; each runs once more after its lease expires. A PostgreSQL
# restart can cost every daemon its leases at once, when reconnecting takes
# longer than the lease: at most daemons x concurrency. So
#   bound = concurrency x SIGKILLs + daemons x concurrency x restarts.
# The same holds for re-claims (sum of attempts - 1), which also count the
# claimed-but-not-yet-started tasks of a killed daemon; for builtin noop
# handlers that is the only figure there is.
#
# The lock phase adds one run per row the hostile session locked: a daemon
# cannot renew a lease on a row someone else holds, so a row held past its
# lease (2-4 s against 3 s) can, once let go, be reaped by another daemon
# before its owner's outcome lands; the owner then records nothing (its
# fence fails) and the task runs again elsewhere, once.
set -euo pipefail
cd "$(dirname "$0")/../.."

# SOAK_SCALE=N divides every task count by N (for developing this script).
scale=${SOAK_SCALE:-1}
KILL_TASKS=$((20000 / scale))
TERM_TASKS=$((8000 / scale))
LOCK_TASKS=$((6000 / scale))
LOCK_SLEEP_MS=200         # the lock phase's handlers: long enough to be locked, and a phase of ~30 s
STUCK_S=15                # no handler started for this long, with work waiting: stuck
NOOP_TASKS=$((200000 / scale))
DAEMONS="a b c"
NDAEMONS=3
CMD_CONC=16
NOOP_CONC=64
LEASE=3s
GRACE_S=10
KILL_EVERY_MS=2000        # mean; each pause is drawn from 1.5-2.5 s

bin=$PWD/build/pgdispatch
out=$PWD/build/soak
rm -rf "$out"
mkdir -p "$out"
failed=0
table=""

q() { psql -X -Atq -v ON_ERROR_STOP=1 -c "$1"; }
say() { printf 'soak: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; failed=1; }
now_ms() { local us=${EPOCHREALTIME/./}; echo $((us / 1000)); }

"$bin" migrate >/dev/null
q "CREATE TABLE soak_invocations (id bigint, attempt int, run text)"

# --- daemons ------------------------------------------------------------

declare -A pid runs
phase="" conc="" level="" handler="" extra=""

# config CONCURRENCY LOG_LEVEL HANDLER_YAML: the phase's daemon settings.
# In HANDLER_YAML, @RUN@ becomes the name of one daemon process, as "b3"
# for the third start of daemon b: the handler records it.
config() { conc=$1 level=$2 handler=$3; }

# The daemon runs under a subshell that records its exit status: bash
# would print a "Killed" line for every SIGKILLed child of its own, and we
# need the status to tell a crash from a kill.
start() {  # start NAME
	local f=$out/pid.$1
	runs[$1]=$((${runs[$1]:-0} + 1))
	cat >"$out/$phase-$1.yaml" <<YAML
instance_name: soak-$1
queues: [$phase]
concurrency: $conc
lease: $LEASE
poll_interval: 1s
shutdown_grace: ${GRACE_S}s
max_attempts: 1000
log: {level: $level}
handlers:
  ${handler//@RUN@/$1${runs[$1]}}
YAML
	rm -f "$f"
	echo "soak: starting $1${runs[$1]} at $(date +%T.%N)" >>"$out/$phase-$1.log"
	( "$bin" run -c "$out/$phase-$1.yaml" 2>>"$out/$phase-$1.log" &
	  echo $! >"$f.tmp" && mv "$f.tmp" "$f"
	  rc=0; wait $! || rc=$?
	  echo "$rc" >"$out/rc.$!.tmp" && mv "$out/rc.$!.tmp" "$out/rc.$!" ) 2>/dev/null &
	until [ -s "$f" ]; do sleep 0.01; done
	pid[$1]=$(cat "$f")
}

# A zombie still answers `kill -0`, so look at its state.
alive() { [ -r "/proc/$1/status" ] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }

# The exit status of a daemon that is gone (128+N for signal N).
status_of() {  # status_of PID
	until [ -s "$out/rc.$1" ]; do sleep 0.01; done
	cat "$out/rc.$1"
}

# stop NAME SIGNAL: signals the daemon, waits for it to exit, returns its
# exit status (128+N for signal N). A daemon that outlives its shutdown
# grace by 10 s is reported as hung, then killed.
stop() {
	local p=${pid[$1]} rc=0 end
	kill "-$2" "$p" 2>/dev/null || true
	end=$((SECONDS + GRACE_S + 10))
	while alive "$p"; do
		if [ $SECONDS -ge $end ]; then
			fail "daemon $1 (pid $p) still running $((GRACE_S + 10)) s after SIG$2"
			kill -KILL "$p" 2>/dev/null || true
		fi
		sleep 0.05
	done
	rc=$(status_of "$p")
	pid[$1]=""
	return "$rc"
}

# A daemon that exited without being told to is a crash.
check_alive() {
	local n rc
	for n in $DAEMONS; do
		[ -n "${pid[$n]}" ] || continue
		alive "${pid[$n]}" && continue
		rc=$(status_of "${pid[$n]}")
		fail "daemon $n (pid ${pid[$n]}) exited by itself with status $rc; see $out/$phase-$n.log"
		tail -n 20 "$out/$phase-$n.log" >&2
		start "$n"
	done
}

stop_all() {
	local n rc t
	for n in $DAEMONS; do
		[ -n "${pid[$n]:-}" ] || continue
		t=$(now_ms)
		rc=0; stop "$n" TERM || rc=$?
		t=$(($(now_ms) - t))
		[ "$rc" = 0 ] || fail "daemon $n exited with status $rc on SIGTERM; see $out/$phase-$n.log"
		[ "$t" -le $((GRACE_S * 1000)) ] ||
			fail "daemon $n took $t ms to stop on SIGTERM, past its ${GRACE_S} s grace; see $out/$phase-$n.log"
	done
}
trap 'rm -f "$out/hostile.on"; for n in $DAEMONS; do [ -n "${pid[$n]:-}" ] && kill -KILL "${pid[$n]}" 2>/dev/null; done; true' EXIT

# --- the hostile session (lock phase) --------------------------------------

# hostile_loop: until $out/hostile.on goes, one round after another, each
# in a session and transaction of its own: mostly three random running rows
# of the phase locked FOR UPDATE for 2-4 s (a daemon's renewal or outcome
# for them waits that long, around the lease), one round in five the whole
# table IN EXCLUSIVE MODE for 1-2 s (claims wait too; reads go on). Each
# round is logged in $out/hostile.log. Deadlocks with a daemon are allowed
# to happen: PostgreSQL picks the victim.
hostile_loop() {
	local ms
	while [ -e "$out/hostile.on" ]; do
		if [ $((RANDOM % 5)) = 0 ]; then
			ms=$((1000 + RANDOM % 1001))
			echo "$(date +%T.%N) table $ms ms" >>"$out/hostile.log"
			psql -X -Atq -v ON_ERROR_STOP=1 >>"$out/hostile.log" 2>&1 <<SQL || true
BEGIN;
LOCK TABLE dispatch.tasks IN EXCLUSIVE MODE;
SELECT pg_sleep($ms / 1000.0);
COMMIT;
SQL
		else
			ms=$((2000 + RANDOM % 2001))
			echo "$(date +%T.%N) rows $ms ms" >>"$out/hostile.log"
			psql -X -Atq -v ON_ERROR_STOP=1 >>"$out/hostile.log" 2>&1 <<SQL || true
BEGIN;
SELECT 'locked ' || count(*) || ': ' || coalesce(string_agg(id::text, ' '), '')
  FROM (SELECT id FROM dispatch.tasks
         WHERE status = 'in_progress' AND queue = '$phase'
         ORDER BY random() LIMIT 3 FOR UPDATE) l;
SELECT pg_sleep($ms / 1000.0);
COMMIT;
SQL
		fi
		sleep "0.$((2 + RANDOM % 4))"
	done
}

hostile_start() { : >"$out/hostile.log"; touch "$out/hostile.on"; hostile_loop & hostile_pid=$!; }
# Ends after its current round (at most 4 s).
hostile_stop() { rm -f "$out/hostile.on"; wait "$hostile_pid" || true; }

# --- progress (lock phase) ----------------------------------------------

# check_progress LEFT: with more than a claim's worth of work per daemon
# waiting, a daemon process that has started no handler for STUCK_S
# seconds (its records in $progress say so) is stuck. A hostile lock holds
# a daemon up for at most 4 s at a time, each release lets it claim again.
declare -A seen_n seen_ms stuck
progress=""
check_progress() {
	local n r c t
	[ -n "$progress" ] || return 0
	t=$(now_ms)
	for n in $DAEMONS; do
		[ -n "${pid[$n]:-}" ] || continue
		r=$n${runs[$n]}
		c=$(grep -c " $r\$" "$progress" || true)
		if [ -z "${seen_ms[$r]:-}" ] || [ "$c" != "${seen_n[$r]}" ]; then
			seen_n[$r]=$c seen_ms[$r]=$t
		elif [ $((t - seen_ms[$r])) -ge $((STUCK_S * 1000)) ] && [ "$1" -gt $((NDAEMONS * conc * 2)) ] \
		     && [ -z "${stuck[$r]:-}" ]; then
			stuck[$r]=1
			fail "$phase: daemon process $r (pid ${pid[$n]}) started no handler for $STUCK_S s with $1 tasks left; see $out/$phase-$n.log"
			tail -n 10 "$out/$phase-$n.log" >&2
		fi
	done
}

pg_restart() {
	local as=()
	[ -n "${PGDISPATCH_PG_AS:-}" ] && as=(runuser -u "$PGDISPATCH_PG_AS" --)
	"${as[@]}" "$PGDISPATCH_PGBIN/pg_ctl" -D "$PGDISPATCH_PGDATA" -m immediate -w -t 60 \
		restart -l "$PGDISPATCH_PGDATA/../server.log" >/dev/null
}

# --- one phase ----------------------------------------------------------

# run_phase SIGNAL PG_RESTARTS TIMEOUT_S: starts the daemons, kills one every ~2 s
# with SIGNAL and starts it again, restarts PostgreSQL once half the tasks
# are done (when PG_RESTARTS is 1), until no task is pending or in
# progress; then stops every daemon with SIGTERM. Sets kills, restarts,
# elapsed.
run_phase() {
	local sig=$1 want_restart=$2 timeout_s=$3 total left t0 next victim rc names=($DAEMONS)
	kills=0 restarts=0
	total=$(q "SELECT count(*) FROM dispatch.tasks WHERE queue = '$phase'")
	t0=$(now_ms)
	for n in $DAEMONS; do start "$n"; done
	next=$((t0 + KILL_EVERY_MS / 2 + RANDOM % KILL_EVERY_MS))
	while :; do
		sleep 0.2
		check_alive
		# While PostgreSQL restarts the count fails: not done yet.
		left=$(q "SELECT count(*) FROM dispatch.tasks WHERE queue = '$phase'
		            AND status IN ('pending', 'in_progress')" 2>/dev/null) || left=-1
		[ "$left" = 0 ] && break
		[ "$left" -lt 0 ] || check_progress "$left"
		if [ $(($(now_ms) - t0)) -gt $((timeout_s * 1000)) ]; then
			fail "$phase: $left tasks still pending or in progress after $timeout_s s"
			break
		fi
		if [ "$want_restart" = 1 ] && [ "$restarts" = 0 ] && [ "$left" -ge 0 ] \
		   && [ "$left" -le $((total / 2)) ]; then
			say "$phase: restarting PostgreSQL (-m immediate) with $left tasks left"
			pg_restart
			restarts=1
		fi
		if [ "$(now_ms)" -ge "$next" ]; then
			victim=${names[RANDOM % NDAEMONS]}
			rc=0; stop "$victim" "$sig" || rc=$?
			case "$sig:$rc" in
			KILL:137 | TERM:0) ;;
			*) fail "daemon $victim exited with status $rc on SIG$sig; see $out/$phase-$victim.log" ;;
			esac
			start "$victim"
			kills=$((kills + 1))
			next=$(($(now_ms) + KILL_EVERY_MS / 2 + RANDOM % KILL_EVERY_MS))
		fi
	done
	stop_all
	elapsed=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
}

# tally CONCURRENCY BOUND RECORDS [SLACK]: checks the phase's rows (and,
# for command phases, its invocation records), prints the figures, adds a
# row to the table. SLACK (the lock phase's locked rows) is added to the
# bound and to what one process may leave.
tally() {
	local conc=$1 bound=$(($2 + ${4:-0})) records=$3 slack=${4:-0} row tasks complete pending inprog nfailed reclaims
	local invocations=- duplicates=- doubled=- unrecorded=- worst=- same_run=-
	row=$(q "SELECT count(*), count(*) FILTER (WHERE status = 'complete'),
	                count(*) FILTER (WHERE status = 'pending'),
	                count(*) FILTER (WHERE status = 'in_progress'),
	                count(*) FILTER (WHERE status = 'failed'),
	                coalesce(sum(attempts - 1), 0)
	           FROM dispatch.tasks WHERE queue = '$phase'")
	IFS='|' read -r tasks complete pending inprog nfailed reclaims <<<"$row"
	if [ -n "$records" ]; then
		q "TRUNCATE soak_invocations"
		psql -X -q -v ON_ERROR_STOP=1 -c "\\copy soak_invocations FROM '$records' (DELIMITER ' ')"
		# unrecorded: complete, yet no invocation of its final attempt was
		# recorded (an outcome without a handler run, or a lost record).
		row=$(q "SELECT (SELECT count(*) FROM soak_invocations),
		                (SELECT count(*) - count(DISTINCT id) FROM soak_invocations),
		                (SELECT count(*) FROM (SELECT 1 FROM soak_invocations
		                                        GROUP BY id, attempt HAVING count(*) > 1) d),
		                (SELECT count(*) FROM dispatch.tasks t
		                  WHERE t.queue = '$phase' AND t.status = 'complete'
		                    AND NOT EXISTS (SELECT 1 FROM soak_invocations i
		                                     WHERE i.id = t.id AND i.attempt = t.attempts)),
		                -- worst: the most handler runs of one daemon process
		                -- that were run again: what one kill cost at most.
		                (SELECT coalesce(max(n), 0) FROM
		                   (SELECT count(*) AS n FROM soak_invocations i
		                     WHERE EXISTS (SELECT 1 FROM soak_invocations j
		                                    WHERE j.id = i.id AND j.attempt > i.attempt)
		                     GROUP BY i.run) w),
		                -- same_run: tasks one daemon process ran more than once
		                (SELECT count(*) FROM (SELECT 1 FROM soak_invocations
		                                        GROUP BY id, run HAVING count(*) > 1) s)")
		IFS='|' read -r invocations duplicates doubled unrecorded worst same_run <<<"$row"
	fi
	say "$phase: $tasks tasks: $complete complete, $pending pending, $inprog in_progress, $nfailed failed;" \
	    "$kills kills, $restarts PostgreSQL restarts; invocations $invocations, duplicates $duplicates," \
	    "most from one daemon process $worst, same attempt twice $doubled, run twice by one process $same_run," \
	    "re-claims $reclaims, bound $bound; $elapsed s${extra:+; $extra}"
	[ "$complete" = "$tasks" ] || fail "$phase: only $complete of $tasks tasks complete"
	[ "$inprog" = 0 ] || fail "$phase: $inprog tasks stuck in_progress"
	[ "$pending" = 0 ] || fail "$phase: $pending tasks stuck pending"
	[ "$nfailed" = 0 ] || fail "$phase: $nfailed tasks failed"
	[ "$reclaims" -le "$bound" ] || fail "$phase: $reclaims re-claims, more than the bound $bound"
	if [ -n "$records" ]; then
		[ "$unrecorded" = 0 ] || fail "$phase: $unrecorded complete tasks without a recorded run (lost)"
		[ "$duplicates" -le "$bound" ] || fail "$phase: $duplicates duplicate runs, more than the bound $bound"
		[ "$worst" -le $((conc * (1 + restarts) + slack)) ] ||
			fail "$phase: one daemon process left $worst runs to be run again, more than $conc per kill or restart"
		# Only a graceful stop past its grace gives an attempt back, and
		# handlers here take milliseconds: one attempt, one run.
		[ "$doubled" = 0 ] || fail "$phase: $doubled attempts ran twice"
		# A daemon process runs a task again only by claiming it again:
		# after losing its lease, it must have let the first run go.
		[ "$same_run" = 0 ] || fail "$phase: $same_run tasks ran more than once in one daemon process"
	fi
	if [ "$failed" != 0 ]; then
		# The server goes with pg_scratch.sh: keep what a diagnosis needs.
		q "COPY (SELECT id, status, attempts, locked_by, lease_expires_at, run_at, started_at,
		                finished_at, last_error FROM dispatch.tasks WHERE queue = '$phase' ORDER BY id)
		     TO STDOUT (FORMAT csv, HEADER)" >"$out/$phase-tasks.csv"
		say "$phase: rows saved in $out/$phase-tasks.csv"
	fi
	table+=$(printf '| %-5s | %6s | %5s | %8s | %11s | %10s | %13s | %8s | %9s | %5s | %6s s |' \
	         "$phase" "$tasks" "$kills" "$restarts" "$invocations" "$duplicates" "$worst" "$same_run" "$reclaims" \
	         "$bound" "$elapsed")$'\n'
}

fill() {  # fill COUNT KIND
	q "INSERT INTO dispatch.tasks (queue, kind) SELECT '$phase', '$2' FROM generate_series(1, $1)"
	q "VACUUM ANALYZE dispatch.tasks"
}

t_start=$SECONDS

# --- kill: command handlers, SIGKILL, one PostgreSQL restart -------------
phase=kill
say "$phase: $KILL_TASKS command tasks, $NDAEMONS daemons x concurrency $CMD_CONC, SIGKILL every ~2 s"
: >"$out/$phase.records"
config "$CMD_CONC" warn "record: {command: [$PWD/build/soak-record, $out/$phase.records, @RUN@]}"
fill "$KILL_TASKS" record
run_phase KILL 1 180
tally "$CMD_CONC" $((CMD_CONC * kills + NDAEMONS * CMD_CONC * restarts)) "$out/$phase.records"

# --- term: command handlers, SIGTERM ---------------------------------------
phase=term
say "$phase: $TERM_TASKS command tasks, SIGTERM every ~2 s"
: >"$out/$phase.records"
config "$CMD_CONC" warn "record: {command: [$PWD/build/soak-record, $out/$phase.records, @RUN@]}"
fill "$TERM_TASKS" record
run_phase TERM 0 90
tally "$CMD_CONC" 0 "$out/$phase.records"

# --- lock: command handlers, SIGKILL, a hostile session locking rows -----
phase=lock
say "$phase: $LOCK_TASKS command tasks of $LOCK_SLEEP_MS ms, SIGKILL every ~2 s, a hostile session locking running rows"
: >"$out/$phase.records"
config "$CMD_CONC" warn "record: {command: [$PWD/build/soak-record, $out/$phase.records, @RUN@, '$LOCK_SLEEP_MS']}"
fill "$LOCK_TASKS" record
progress=$out/$phase.records
hostile_start
run_phase KILL 0 180
hostile_stop
progress=""
locked_rows=$(grep -o '^locked [0-9]*' "$out/hostile.log" | awk '{ n += $2 } END { print n + 0 }')
extra="hostile rounds: $(grep -c ' rows ' "$out/hostile.log" || true) on rows ($locked_rows rows locked), $(grep -c ' table ' "$out/hostile.log" || true) on the table"
tally "$CMD_CONC" $((CMD_CONC * kills)) "$out/$phase.records" "$locked_rows"
extra=""

# --- noop: builtin noop at full speed, SIGKILL, one PostgreSQL restart ---
phase=noop
say "$phase: $NOOP_TASKS builtin noop tasks, $NDAEMONS daemons x concurrency $NOOP_CONC, SIGKILL every ~2 s"
config "$NOOP_CONC" warn "noop: {builtin: noop}"
fill "$NOOP_TASKS" noop
run_phase KILL 1 90
tally "$NOOP_CONC" $((NOOP_CONC * kills + NDAEMONS * NOOP_CONC * restarts)) ""

{
	echo
	echo "pgdispatch soak ($(nproc) cores, PostgreSQL $(q "SHOW server_version"), fsync on, lease $LEASE," \
	     "$((SECONDS - t_start)) s in all): $([ "$failed" = 0 ] && echo PASS || echo FAIL)"
	echo
	echo "| phase | tasks  | kills | restarts | invocations | duplicates | worst process | one proc | re-claims | bound | duration |"
	echo "|-------|--------|-------|----------|-------------|------------|---------------|----------|-----------|-------|----------|"
	printf '%s' "$table"
	echo
	echo "kills: SIGKILL (kill, lock, noop) or SIGTERM (term) of a random daemon, each started again;"
	echo "restarts: pg_ctl restart -m immediate; duplicates: recorded handler runs beyond one per task;"
	echo "worst process: most duplicates from one daemon process (at most concurrency per kill or restart);"
	echo "one proc: tasks run more than once by one daemon process (must be 0);"
	echo "lock: a hostile session held random running rows 2-4 s and the table 1-2 s throughout;"
	echo "re-claims: sum of attempts - 1; bound: concurrency x kills + daemons x concurrency x restarts."
	echo "Logs and records: $out/"
} | tee "$out/table.md"
exit "$failed"
