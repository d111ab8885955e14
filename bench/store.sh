#!/bin/sh
# bench/store.sh [BUILD_DIR [SOURCE_DIR]]: turns per second the store sustains through its
# real write path (batches -> writer thread -> group commit -> completion on
# the loop), with synchronous=NORMAL and FULL, in the same run, and the
# group sizes the writer saw. One "turn" is one batch: the user's turn, the
# bot's reply and the conversation's saved state, as chorusd writes them.
# The database goes on the disk that holds TMPDIR (default /tmp); set TMPDIR
# to the data_dir's file system to measure that one.
set -eu
build=${1:-build}
ctl="$build/chorusctl"
[ -x "$ctl" ] || { echo "bench/store.sh: $ctl not found (build first)" >&2; exit 2; }
turns=${TURNS:-50000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "store benchmark: $turns turns per run, 1000 conversations, 64 batches in flight"
echo "file system: $(df -PT "$dir" | awk 'NR==2 {print $2 " on " $1}')"
for inflight in 1 64 256; do
    for sync in normal full; do
        rm -f "$dir"/b.db*
        n=$turns
        [ "$inflight" -eq 1 ] && n=$((turns / 10))
        printf 'inflight=%-4s ' "$inflight"
        "$ctl" store-load --db "$dir/b.db" --turns "$n" --inflight "$inflight" \
            --synchronous "$sync" 2>/dev/null | sed 's/^store-load: //' | tr '\n' ' '
        echo
    done
done
rm -f "$dir"/b.db*
printf 'inflight=64   :memory: '
"$ctl" store-load --db :memory: --turns "$turns" --inflight 64 2>/dev/null |
    sed 's/^store-load: //' | tr '\n' ' '
echo

# End to end: chorusd over the chat REST API, store on a file vs :memory:.
src=${2:-$(cd "$(dirname "$0")/.." && pwd)}
python3 "$(dirname "$0")/store_e2e.py" "$build" "$src" "${E2E_SECONDS:-10}"
