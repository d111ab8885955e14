#!/bin/sh
# run-fuzz.sh FUZZER TARGET_DIR RUNS: run a libFuzzer binary for RUNS inputs
# (or FUZZ_SECONDS, 20 by default, whichever comes first, so the suite's time
# stays bounded) with a fixed seed, starting from TARGET_DIR/corpus, and
# TARGET_DIR/*.dict if present. New inputs go to a scratch directory, never into the source tree.
# For a longer campaign see docs/fuzzing.md.
set -eu
fuzzer=$1; dir=$2; runs=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dict=""
for d in "$dir"/*.dict; do
    [ -f "$d" ] && dict="-dict=$d"
done
# shellcheck disable=SC2086
"$fuzzer" -seed=1 -runs="$runs" -max_total_time="${FUZZ_SECONDS:-20}" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$scratch/" $dict "$scratch" "$dir/corpus"
