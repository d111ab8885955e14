#!/bin/sh
# bench/flywheel.sh [BUILD_DIR [SOURCE_DIR]]: the flywheel's two speed
# figures (docs/benchmarks.md, "Flywheel"):
#  1. chorusctl learn over a database of about a million stored turns
#     (the flywheel fixture: a planted need, decoys, noise and bulk understood
#     turns), wall time and peak memory;
#  2. chorusctl simulate over HTTP against a running chorusd: one load
#     generator, then two side by side. If two generators get no more turns
#     per second than one, one core of load generation already drives the
#     daemon at its full throughput. The CPU each side used is printed too.
set -eu
build=${1:-build}
src=${2:-.}
ctl="$build/chorusctl"
chorusd="$build/chorusd"
[ -x "$ctl" ] && [ -x "$chorusd" ] || { echo "bench/flywheel.sh: build first" >&2; exit 2; }
turns=${TURNS:-1000000}
convs=${CONVERSATIONS:-20000}
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
pid=

echo "== learn over ~$turns stored turns"
"$chorusd" --data-dir "$dir/db" --listen 127.0.0.1:0 --flows "$src/flows" >"$dir/d0.log" 2>&1 &
pid=$!
until grep -q "event=ready" "$dir/d0.log"; do sleep 0.1; done
kill "$pid"; wait "$pid" || true
pid=
python3 - "$dir/db/chorus.db" "$turns" "$src" <<'PY'
import sys
sys.path.insert(0, sys.argv[3] + "/tests/integration")
import flywheel_fixture
flywheel_fixture.populate(sys.argv[1], extra_turn_pairs=int(sys.argv[2]) // 2)
PY
python3 - "$dir/db/chorus.db" <<'PY'
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM turns").fetchone()[0]
print("stored turns: %d" % n)
PY
/usr/bin/time -f "learn: %e s wall, %U s user, %M KiB peak" \
    "$ctl" learn --db "$dir/db/chorus.db" --flows "$src/flows" >"$dir/learn.txt"
sed -n '1,4p' "$dir/learn.txt"

echo "== simulate over HTTP: one generator, then two side by side"
key=bench-flywheel-key
hash=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
printf '{"chat": {"api_keys": "bench:%s"}, "http": {"requests_per_second": 1000000, "request_burst": 1000000}}' \
    "$hash" >"$dir/chorusd.json"
"$chorusd" --config "$dir/chorusd.json" --data-dir "$dir/sim" --listen 127.0.0.1:0 \
    --flows "$src/flows" >"$dir/d1.log" 2>&1 &
pid=$!
until grep -q "event=flows_loaded" "$dir/d1.log"; do sleep 0.1; done
port=$(sed -n 's/.*event=ready .*port=\([0-9]*\).*/\1/p' "$dir/d1.log")
cat >"$dir/script.json" <<'JSON'
{"goals": [
  {"name": "small talk", "weight": 3, "turns": [
    {"say": ["how are you", "how's it going"]}, {"say": ["thanks"]}, {"say": ["goodbye"]}]},
  {"name": "agent", "weight": 1, "slots": {"topic": ["booking", "baggage", "refund"]},
   "turns": [{"say": ["I want to talk to a human agent"]}, {"say": ["{topic}"]}]}]}
JSON
run_sim() { # seed -> prints turns/s; CPU seconds into $dir/cpu.$1
    /usr/bin/time -f "%U %S" -o "$dir/cpu.$1" "$ctl" simulate --url "http://127.0.0.1:$port" \
        --api-key "$key" --script "$dir/script.json" --conversations "$convs" \
        --concurrency 64 --seed "$1" --format json --progress off |
        python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f %d %.3f" % (r["turns_per_s"], r["turns"], r["elapsed_s"]))'
}
tck=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$pid/stat"; }
c0=$(cpu_of)
one=$(run_sim 1)
c1=$(cpu_of)
set -- $one
gen=$(awk '{print $1+$2}' "$dir/cpu.1")
dcpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')
echo "one generator:  $1 turns/s ($2 turns in $3 s); generator CPU $gen s, chorusd CPU $dcpu s"
awk -v g="$gen" -v d="$dcpu" -v n="$2" 'BEGIN {
    printf "CPU per turn: generator %.0f us, chorusd %.0f us: one generator core drives %.1f daemon cores\n",
        g / n * 1e6, d / n * 1e6, (g > 0 ? d / g : 0) }'
run_sim 2 >"$dir/two.a" & a=$!
run_sim 3 >"$dir/two.b" & b=$!
wait $a $b
two=$(awk '{t+=$1} END {printf "%.0f", t}' "$dir/two.a" "$dir/two.b")
echo "two generators: $two turns/s together"
awk -v one="$1" -v two="$two" 'BEGIN {printf "ratio two/one: %.2f (1.00: one generator already saturates the daemon)\n", two/one}'
