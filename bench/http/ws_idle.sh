#!/bin/sh
# bench/http/ws_idle.sh CHORUSD [N]: memory per idle WebSocket connection.
# Starts CHORUSD (log_level warn, long ping interval) on a loopback port,
# opens N (default 16000) idle connections to /v1/echo/ws with
# bench/http/ws_idle.mjs and prints the daemon's RSS before and after. N is
# bounded by the open-file limit (ulimit -n) of both processes.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
chorusd=$1
n=${2:-16000}
dir=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/c.json" <<JSON
{ "listen": "127.0.0.1:$port", "data_dir": "$dir/var", "flows_dir": "$src/flows",
  "log_level": "warn", "http": { "max_connections": 1000000 },
  "websocket": { "ping_interval_ms": 3600000 } }
JSON
"$chorusd" --config "$dir/c.json" 2>"$dir/log" &
pid=$!
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$dir/log" >&2; exit 1; }; sleep 0.1
done
node "$src/bench/http/ws_idle.mjs" "$port" "$n" "$pid"
