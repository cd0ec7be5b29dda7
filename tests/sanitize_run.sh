#!/bin/sh
# Runs a sanitized build's tests and fails on any sanitizer report
# (`make check SANITIZE=1`).
#
#   tests/sanitize_run.sh REPORT_DIR COMMAND [ARG...]
#
# The tests start the daemon as a child process and read its stderr, so a
# report printed there could be missed, or break a test that compares the
# log. Every sanitized process (the test runner, each test's fork, each
# daemon, each `pgdispatch migrate`) instead writes its reports to
# REPORT_DIR/report.PID, and this script fails when
# any such file exists after COMMAND, printing them, whatever COMMAND
# returned. LeakSanitizer is on: a daemon stopped with SIGTERM exits through
# main() and is leak-checked like any other process.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 REPORT_DIR COMMAND [ARG...]" >&2
	exit 2
fi
dir=$1
shift
rm -rf "$dir"
mkdir -p "$dir"

# Options the caller already set come first, so ours win for the ones that
# decide whether a report is seen. clang's runtime reads both variables
# for the one log_path that ASan, LSan and UBSan share.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:detect_stack_use_after_return=1:log_path=$dir/report"
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1:log_path=$dir/report"
export ASAN_OPTIONS UBSAN_OPTIONS

rc=0
"$@" || rc=$?

reports=$(find "$dir" -type f | sort)
if [ -n "$reports" ]; then
	for f in $reports; do
		echo "==== sanitizer report: $f ====" >&2
		cat "$f" >&2
	done
	echo "sanitize_run: $(echo "$reports" | wc -l) sanitizer report(s) in $dir" >&2
	[ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
