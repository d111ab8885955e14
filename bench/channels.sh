#!/bin/bash
# bench/channels.sh [BUILD_DIR [SOURCE_DIR]]: the channels benchmark, in one run
# on this machine, side by side:
#   1. nginx's static response (the HTTP ceiling): wrk POST, -c64
#   2. chorusd, chat REST (keep-alive): 3-turn conversations spread over
#      CONVERSATIONS conversations, wrk + bench/channels/chat_rest.lua, -c64
#      (each round on a fresh daemon with new conversations: wrk starts every
#      conversation at its first turn)
#   3. the Microsoft Bot Framework SDK for JavaScript (botbuilder 4.23.3, a
#      3-step WaterfallDialog over MemoryStorage, deliveryMode expectReplies):
#      the same 3-turn conversations, wrk + botframework.lua, -c64
#   1-3 run in turn ROUNDS times, and the ratios are of their means; then
#      chorusd REST once more at -c256
#   4. chorusd, WebSocket (the web widget's protocol): BUILD_DIR/ws_load
#      (bench/channels/ws_load.c, two epoll threads like wrk -t2) with 64 and
#      1,000 concurrent visitors, each holding one 3-turn conversation per
#      socket and then opening the next (so each stays within the guardrails'
#      per-conversation rate limit, as REST's spread over CONVERSATIONS does)
#   5. chorusd holding IDLE (100,000 by default) idle WebSocket conversations:
#      its RSS (as many as the open-file limit allows; bench/idle_vm.sh holds
#      the full number where the limit is lower and cannot be raised)
# and prints the ratios. Both bots run the same three steps (name, city,
# confirmation; bench/channels/flows/signup.json for chorus). chorusd runs
# with store.path ":memory:" like the peer's MemoryStorage. Loopback only;
# the load generators share the machine's cores with the servers.
# Environment: SECONDS_RUN (default 10), ROUNDS (default 3), IDLE (default
# 100000), CONVERSATIONS (default 100000).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
src=$(cd "${2:-$(dirname "$0")/..}" && pwd)
here="$src/bench/channels"
run=${SECONDS_RUN:-10}
idle=${IDLE:-100000}
# Turns are spread over this many conversations. A person sends a few turns
# a minute, and the guardrails hold a conversation to 20 a minute (burst 8,
# docs/guardrails.md): at 15,000 turns/s, 100,000 conversations take about 9
# a minute each. With 10,000 they took 90 a minute, the rate limit answered
# and escalated them, and the run measured that instead of conversations.
convs=${CONVERSATIONS:-100000}
chorusd="$build/chorusd"
for exe in "$chorusd" "$build/ws_load"; do
    [ -x "$exe" ] || { echo "bench/channels.sh: $exe not found (build first)" >&2; exit 2; }
done
for tool in wrk nginx node python3; do
    command -v "$tool" > /dev/null || { echo "bench/channels.sh: $tool is needed" >&2; exit 2; }
done
export NODE_PATH="$src/tests/node/node_modules"
[ -d "$NODE_PATH/ws" ] || sh "$src/scripts/install-node-deps.sh"
if [ ! -d "$here/node_modules/botbuilder-dialogs" ]; then
    # botbuilder's postinstall runs npx, which asks unless told yes
    (cd "$here" && npm_config_yes=true npm install --no-audit --no-fund --loglevel=error)
fi
ulimit -n 1048576 2> /dev/null || ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# Waits until file $1 has a line matching $2; prints the port it names.
wait_port() {
    for _ in $(seq 600); do
        if grep -q "$2" "$1" 2> /dev/null; then
            grep -o "$2.*port=[0-9]*" "$1" | head -1 | sed 's/.*port=//'
            return 0
        fi
        sleep 0.1
    done
    echo "bench/channels.sh: never saw $2 in $1:" >&2
    cat "$1" >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# wrk figures: "turns/s p50 p99 errors"
wrk_run() {
    local out
    out=$(wrk "$@")
    echo "$out" > "$tmp/wrk.last"
    awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
         /Non-2xx/ {err=$5} /Socket errors/ {err2=$0}
         END {printf "%s %s %s %s\n", rps, p50, p99, (err == "" ? 0 : err)}' <<< "$out"
}
ms() { # wrk latency (850.00us, 1.20ms, 2.01s) in ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0;
                           else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}
# One result line: label, unit (req/s or turns/s), rate, p50 and p99 (as wrk
# prints them), errors and, when given, server cores.
row() {
    printf '%-34s %10s %-7s p50 %8s ms  p99 %8s ms  errors %s' "$1" "$3" "$2" "$(ms "$4")" \
        "$(ms "$5")" "$6"
    if [ -n "${7:-}" ]; then printf '  server cores %s' "$7"; fi
    printf '\n'
}
hz=$(getconf CLK_TCK)

echo "channels benchmark: ${run}s per run, $(nproc) cores (shared with the load generators" \
     "and, on a shared machine, other work: load average $(cut -d' ' -f1 /proc/loadavg))"

# ---- 1. nginx ---------------------------------------------------------------
mkdir -p "$tmp/nginx/logs"
cat > "$tmp/nginx/nginx.conf" << EOF
daemon off;
master_process off;
worker_processes 1;
error_log $tmp/nginx/logs/error.log;
pid $tmp/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx;
    server {
        listen 127.0.0.1:0;
        location / { default_type application/json; return 200 '{"ok":true}'; }
    }
}
EOF
# nginx cannot listen on port 0, and chorusd logs its port only at info: pick free ones
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
nport=$(free_port)
sed -i "s/127.0.0.1:0/127.0.0.1:$nport/" "$tmp/nginx/nginx.conf"
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
npid=$!
pids+=("$npid")
sleep 0.5

# ---- 2. chorusd over REST: its configuration and helpers ----------------------
key="bench-key-$$"
keyhash=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
# (bench/idle_vm.sh's too: the limits above what the runs hold, and an
# in-memory store like the peer's MemoryStorage)
sed "s/@KEYHASH@/$keyhash/" "$here/chorusd.json.in" > "$tmp/chorusd.json"
mkdir -p "$tmp/data"
# Starts chorusd on a fresh port (and so a fresh :memory: store), logging to
# chorusd-$1.log: sets cport, cpid.
start_chorusd() {
    cport=$(free_port)
    "$chorusd" --listen "127.0.0.1:$cport" --config "$tmp/chorusd.json" --data-dir "$tmp/data" \
        --flows "$here/flows" 2> "$tmp/chorusd-$1.log" &
    cpid=$!
    pids+=("$cpid")
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$cport/readyz" > /dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$cport/readyz" > /dev/null || { cat "$tmp"/chorusd*.log >&2; exit 1; }
}
restart_chorusd() {
    kill "$cpid"
    wait "$cpid" 2> /dev/null || true
    start_chorusd "$1"
}
# Creates $convs conversations on the running chorusd, their ids in $tmp/ids.
create_conversations() {
    python3 - "$cport" "$key" "$tmp/ids" "$convs" << 'EOF'
import http.client, json, sys
port, key, out, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
c = http.client.HTTPConnection("127.0.0.1", port)
with open(out, "w") as f:
    for i in range(n):
        c.request("POST", "/v1/chat/conversations", b"", {"Authorization": "Bearer " + key})
        r = c.getresponse()
        body = r.read()
        assert r.status == 201, body
        f.write(json.loads(body)["conversation"] + "\n")
EOF
}
# ---- 3. the Bot Framework: a fresh process each round -------------------------
# (a peer left running between its runs would collect garbage while the
# others are measured)
start_bf() {
    node "$here/botframework.js" 0 > "$tmp/bf.log" 2>&1 &
    bpid=$!
    pids+=("$bpid")
    bport=$(wait_port "$tmp/bf.log" "READY")
    wrk -t2 -c64 -d2s -s "$here/botframework.lua" "http://127.0.0.1:$bport/" > /dev/null # JIT warm-up
}

# Runs wrk ($2...) against server pid $1 for $run seconds; prints "rate p50 p99
# errors cores" (cores: the server's CPU seconds per second of the run).
measured() {
    local pid=$1 t0 rps p50 p99 err
    shift
    t0=$(cpu_ticks "$pid")
    read -r rps p50 p99 err < <(wrk_run -t2 -c64 -d"${run}s" --latency "$@")
    echo "$rps $p50 $p99 $err $(awk -v a="$t0" -v b="$(cpu_ticks "$pid")" -v hz="$hz" -v s="$run" \
        'BEGIN {printf "%.2f", (b - a) / hz / s}')"
}

# ---- rounds: nginx, chorus REST and the Bot Framework in turn ------------------
# The three share two cores with wrk, and how the scheduler places four busy
# threads on them moves one run's rate by a fifth or more; alternating the
# three ROUNDS times and comparing the means keeps that out of the ratios.
rounds=${ROUNDS:-3}
: > "$tmp/rounds"
export CHORUS_IDS_FILE="$tmp/ids" CHORUS_KEY="$key" CHORUS_THREADS=2
for round in $(seq "$rounds"); do
    read -r n_rps n_p50 n_p99 n_err n_cpu < <(measured "$npid" -s "$here/post.lua" \
        "http://127.0.0.1:$nport/")
    row "nginx static, c64, round $round" req/s "$n_rps" "$n_p50" "$n_p99" "$n_err" "$n_cpu"
    if [ "$round" -eq 1 ]; then start_chorusd rest; else restart_chorusd "rest$round"; fi
    create_conversations
    read -r r_rps r_p50 r_p99 r_err r_cpu < <(measured "$cpid" -s "$here/chat_rest.lua" \
        "http://127.0.0.1:$cport/")
    row "chorus REST 3-turn, c64, round $round" turns/s "$r_rps" "$r_p50" "$r_p99" "$r_err" "$r_cpu"
    start_bf
    read -r b_rps b_p50 b_p99 b_err b_cpu < <(measured "$bpid" -s "$here/botframework.lua" \
        "http://127.0.0.1:$bport/")
    kill "$bpid"
    wait "$bpid" 2> /dev/null || true
    row "Bot Framework 3-turn, c64, round $round" turns/s "$b_rps" "$b_p50" "$b_p99" "$b_err" \
        "$b_cpu"
    echo "$n_rps $n_cpu $r_rps $r_cpu $b_rps $b_cpu" >> "$tmp/rounds"
done
kill "$npid"

# wrk starts every conversation at its first turn: the c256 row gets new ones
restart_chorusd rest256
create_conversations
read -r r2_rps r2_p50 r2_p99 r2_err < <(wrk_run -t2 -c256 -d"${run}s" --latency \
    -s "$here/chat_rest.lua" "http://127.0.0.1:$cport/")
row "chorus REST 3-turn, c256" turns/s "$r2_rps" "$r2_p50" "$r2_p99" "$r2_err"

# ---- 4. chorusd over WebSocket ------------------------------------------------
# A fresh daemon: the REST runs left 100,000 live conversations in its table,
# which a :memory: store keeps in memory for as long as the daemon runs.
restart_chorusd ws
for conns in 64 1000; do
    "$build/ws_load" "$cport" "$conns" "$run" | sed "s/^ws /chorus WebSocket 3-turn, c$conns: /"
done

# ---- ratios -------------------------------------------------------------------
# Of the means over the rounds; each round's own ratio in brackets.
awk '{n += $1; nc += $2; r += $3; rc += $4; b += $5; bc += $6
      rb = rb sep sprintf("%.1fx", $3 / $5); rn = rn sep sprintf("%.0f%%", 100 * $3 / $1); sep = ", "}
     END {
    printf "ratio chorus REST / Bot Framework turns/s: %.1fx over %d rounds [%s] (target >= 20x)\n",
        r / b, NR, rb
    if (rc > 0 && bc > 0)
        printf "ratio per server core: %.1fx\n", (r / rc) / (b / bc)
    printf "ratio chorus REST turns/s / nginx static req/s: %.1f%% over %d rounds [%s] (target >= 50%%)\n",
        100 * r / n, NR, rn
    if (rc > 0 && nc > 0)
        printf "per server core, chorus REST turns / nginx requests: %.0f%%\n", 100 * (r / rc) / (n / nc)
}' "$tmp/rounds"

# ---- 5. idle WebSocket conversations -----------------------------------------
restart_chorusd idle
# one socket is one descriptor on each side: a process limited to fewer than
# IDLE descriptors (ulimit -Hn; sandboxes cap it) can only hold so many
fdmax=$(ulimit -n)
if [ "$idle" -gt $((fdmax - 1000)) ]; then
    echo "note: open files are limited to $fdmax per process here (ulimit -Hn $(ulimit -Hn));" \
         "holding $((fdmax - 1000)) idle conversations instead of $idle" \
         "(bench/idle_vm.sh holds $idle in an emulated machine)"
    idle=$((fdmax - 1000))
fi
node --max-old-space-size=8192 "$here/ws_idle.mjs" "$cport" "$cpid" "$idle" 2 |
    sed "s/^idle /chorus idle WebSocket conversations: /" | tee "$tmp/idle.out"
echo "(target: 100,000 idle conversations in <= 512 MiB RSS; at this size per conversation:" \
     "$(awk -v b="$(grep -o 'bytes_per_conversation=[0-9]*' "$tmp/idle.out" | cut -d= -f2)" \
        'BEGIN {printf "%.0f MiB for 100,000", b * 100000 / 1048576}'))"
