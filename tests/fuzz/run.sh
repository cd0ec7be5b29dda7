#!/bin/sh
# Runs one libFuzzer target for a while (`make fuzz`).
#
#   tests/fuzz/run.sh BINARY NAME SECONDS SEED_DIR_OR_FILE...
#
# The working corpus, build/fuzz/corpus/NAME, is kept between runs so each
# run starts from what the last one found; the seeds (tests/fuzz/seeds/NAME
# and whatever else make passes, such as the example configs) are copied in
# first. A crash, a leak, a broken invariant or an input slower than
# FUZZ_TIMEOUT seconds stops the run, leaves the input in
# build/fuzz/artifacts/ and fails. Make it a regression case in
# tests/check_config.c or tests/check_json.c, then fix it.
set -eu

if [ $# -lt 3 ]; then
	echo "usage: $0 BINARY NAME SECONDS [SEED...]" >&2
	exit 2
fi
bin=$1 name=$2 seconds=$3
shift 3
dir=$(dirname "$bin")
corpus=$dir/corpus/$name
artifacts=$dir/artifacts
mkdir -p "$corpus" "$artifacts"
for seed in "$@"; do
	if [ -d "$seed" ]; then
		find "$seed" -type f -exec cp {} "$corpus/" \;
	elif [ -f "$seed" ]; then
		# Example configs share names (pgdispatch.yaml): keep their paths apart.
		cp "$seed" "$corpus/seed-$(echo "$seed" | tr '/' '_')"
	fi
done

src=$(cd "$(dirname "$0")" && pwd)
dict=""
[ -f "$src/$name.dict" ] && dict="-dict=$src/$name.dict"

echo "fuzz: $name for ${seconds}s, corpus $corpus ($(find "$corpus" -type f | wc -l) inputs)"
# shellcheck disable=SC2086
exec "$bin" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -max_len="${FUZZ_MAX_LEN:-8192}" \
	-print_final_stats=1 -artifact_prefix="$artifacts/$name-" $dict ${FUZZ_ARGS:-} "$corpus"
