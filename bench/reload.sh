#!/bin/sh
# bench/reload.sh [BUILD_DIR]: hot reload of the flows directory. For 10 and
# then 200 generated flows (each with its own intent and examples, so each
# reload retrains the router for real), a Release chorusd watching the
# directory with the default debounce (200 ms):
#   1. reload latency: a flow file is saved the way editors do (temp file +
#      rename) with one more training example and a new answer; a client
#      polls a turn until the new answer is served (TRIALS times);
#   2. under load: THREADS clients run chat turns back to back, first for
#      BASELINE_S seconds without reloads (the no-reload p99), then during
#      RELOADS edits, each waited for until it is in force; prints failed
#      requests and how many took longer than the no-reload p99.
# Driver: bench/reload.py. FLOWS="10 200" selects the sizes.
# BUILD_DIR (default build-release) is configured as Release and chorusd
# built there when missing.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-release}
sizes=${FLOWS:-10 200}
trials=${TRIALS:-10}
reloads=${RELOADS:-100}
threads=${THREADS:-4}
baseline=${BASELINE_S:-10}
if [ ! -x "$build/chorusd" ]; then
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j2 --target chorusd >/dev/null
fi
dir=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

key=gw-bench-reload
token=adm-bench-reload
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

echo "bench/reload.sh: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $sizes; do
    rm -rf "$dir/flows" "$dir/var"
    python3 "$src/bench/reload.py" gen "$dir/flows" "$n"
    port=$(free_port)
    cat >"$dir/chorusd.json" <<JSON
{ "listen": "127.0.0.1:$port", "data_dir": "$dir/var", "flows_dir": "$dir/flows",
  "log_level": "warn",
  "chat": { "api_keys": "bench:$(sha $key)" },
  "admin": { "tokens": "bench:operator:$(sha $token)" } }
JSON
    "$build/chorusd" --config "$dir/chorusd.json" 2>"$dir/chorusd-$n.log" &
    pid=$!
    i=0
    until curl -sf -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$port/v1/admin/flows/status" 2>/dev/null | grep -q '"in_force": *{'; do
        i=$((i + 1))
        [ $i -lt 600 ] || { echo "bench/reload.sh: flows never loaded" >&2; cat "$dir/chorusd-$n.log" >&2; exit 1; }
        sleep 0.1
    done
    python3 "$src/bench/reload.py" run --port "$port" --dir "$dir/flows" --token "$token" \
        --key "$key" --flows "$n" --trials "$trials" --reloads "$reloads" \
        --threads "$threads" --baseline-s "$baseline" --pid "$pid"
    kill "$pid"
    wait "$pid" || true
    pid=""
    grep -c 'level=error' "$dir/chorusd-$n.log" | sed "s/^/flows=$n daemon error lines: /"
done
