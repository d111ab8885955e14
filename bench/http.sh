#!/bin/sh
# bench/http.sh [BUILD_DIR]: HTTP throughput and latency of chorusd next to
# nginx (one worker each) on loopback, with wrk keep-alive -t2 at 64 and 256
# connections: chorusd GET /healthz, chorusd POST /v1/echo (small JSON body)
# and nginx POST (a fixed JSON answer). Prints req/s, p99 and the CPU seconds
# each server used (so per-core rates compare on a shared machine), and the
# chorusd/nginx ratio. chorusd runs at log_level warn, then once more at info
# (one log line per request) so the cost of request logs shows.
# BUILD_DIR (default build-release) is configured as Release and chorusd
# built there when missing. DURATION (default 10s) sets each wrk run.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-release}
dur=${DURATION:-10s}
me=bench/http.sh tools="wrk nginx python3" hint="apt-get install wrk nginx-light"
. "$src/bench/lib.sh"
# run NAME PID URL [LUA] CONNS: one wrk run; prints a line, sets rps and p99
run() {
    name=$1 pid=$2 url=$3 script=$4 conns=$5
    before=$(cpu_s "$pid")
    if [ -n "$script" ]; then
        wrk -t2 -c"$conns" -d"$dur" --latency -s "$script" "$url" >"$dir/wrk.out"
    else
        wrk -t2 -c"$conns" -d"$dur" --latency "$url" >"$dir/wrk.out"
    fi
    after=$(cpu_s "$pid")
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$dir/wrk.out")
    p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
            f = (u == "us") ? 0.001 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1;
            printf "%.2f", v * f }' "$dir/wrk.out")
    errs=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$dir/wrk.out")
    cpu=$(awk -v a="$after" -v b="$before" 'BEGIN {printf "%.2f", a - b}')
    per=$(awk -v r="$rps" -v c="$cpu" -v d="${dur%s}" \
        'BEGIN { if (c > 0) printf "%.0f", r * d / c; else print "-" }')
    printf '%-22s c=%-4s %9s req/s  p99 %7s ms  server cpu %6s s  %8s req/cpu-s %s\n' \
        "$name" "$conns" "$rps" "$p99" "$cpu" "$per" "$errs"
}

start_chorusd() {
    cport=$(free_port)
    cat >"$dir/chorusd.json" <<JSON
{ "listen": "127.0.0.1:$cport", "data_dir": "$dir/var", "flows_dir": "$src/flows",
  "log_level": "$1", "http": { "max_connections": 10000 } }
JSON
    "$build/chorusd" --config "$dir/chorusd.json" 2>"$dir/chorusd-$1.log" &
    cpid=$!
    wait_port "$cport"
}
stop_chorusd() {
    kill "$cpid"; wait "$cpid" 2>/dev/null || true; cpid=""
}

nport=$(free_port)
mkdir -p "$dir/body" "$dir/logs"
sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$nport|g" "$src/bench/http/nginx.conf.in" >"$dir/nginx.conf"
"$nginx" -p "$dir" -c "$dir/nginx.conf" -e stderr 2>"$dir/nginx.log" &
npid=$!
wait_port "$nport"
lua="$src/bench/http/post_json.lua"

echo "bench/http.sh: wrk -t2 --latency -d$dur, keep-alive; $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "chorusd $("$build/chorusd" --version 2>&1 | head -n 1) (Release, one loop), $("$nginx" -v 2>&1 | sed 's/.*: //') (1 worker)"
start_chorusd warn
for c in 64 256; do
    run "chorusd GET /healthz" "$cpid" "http://127.0.0.1:$cport/healthz" "" "$c"
    run "chorusd POST /v1/echo" "$cpid" "http://127.0.0.1:$cport/v1/echo" "$lua" "$c"
    eval "c_$c=\$rps c99_$c=\$p99"
    run "nginx POST /" "$npid" "http://127.0.0.1:$nport/" "$lua" "$c"
    eval "n_$c=\$rps n99_$c=\$p99"
done
stop_chorusd
start_chorusd info
run "chorusd POST (info)" "$cpid" "http://127.0.0.1:$cport/v1/echo" "$lua" 64
stop_chorusd
for c in 64 256; do
    eval "cr=\$c_$c nr=\$n_$c cp=\$c99_$c np=\$n99_$c"
    awk -v c="$c" -v a="$cr" -v b="$nr" -v pa="$cp" -v pb="$np" 'BEGIN {
        printf "ratio chorusd/nginx POST c=%s: %.2f (p99 %s ms vs %s ms)\n", c, a / b, pa, pb }'
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
