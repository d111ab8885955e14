#!/bin/sh
# bench/tls.sh [BUILD_DIR]: TLS handshakes per second and requests per second
# over TLS keep-alive, chorusd next to nginx (one worker each) in the same
# run, with the same ECDSA P-256 certificate (made here with the openssl
# CLI), TLS 1.2 + 1.3 and the same TLS 1.2 cipher list; wrk -t2 on loopback.
#   handshakes: wrk -c16 with `Connection: close`, so every request is a new
#               TCP connection and a full handshake (wrk does not resume);
#   keep-alive: wrk -c64, GET /healthz (chorusd) and GET / (nginx, a fixed
#               JSON answer of the same size).
# Prints req/s, p99 and the CPU seconds each server used (per-core rates
# compare on a shared machine), then the chorusd/nginx ratios.
# BUILD_DIR (default build-release) is configured as Release and chorusd
# built there when missing. DURATION (default 10s) sets each wrk run.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-release}
dur=${DURATION:-10s}
ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
me=bench/tls.sh tools="wrk nginx openssl python3" hint="apt-get install wrk nginx-light openssl"
. "$src/bench/lib.sh"
# run NAME PID URL CONNS [HEADER]: one wrk run; prints a line, sets rps and per
run() {
    name=$1 pid=$2 url=$3 conns=$4 hdr=${5:-}
    before=$(cpu_s "$pid")
    if [ -n "$hdr" ]; then
        wrk -t2 -c"$conns" -d"$dur" --latency -H "$hdr" "$url" >"$dir/wrk.out"
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
        'BEGIN { if (c > 0) printf "%.0f", r * d / c; else print "0" }')
    printf '%-26s c=%-3s %8s req/s  p99 %7s ms  server cpu %6s s  %7s req/cpu-s %s\n' \
        "$name" "$conns" "$rps" "$p99" "$cpu" "$per" "$errs"
}

# one certificate for both: a throwaway CA and an ECDSA P-256 leaf
(cd "$dir" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
        -out ca.pem -days 2 -subj "/CN=bench CA" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
        -out leaf.csr -subj "/CN=localhost" &&
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext &&
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem \
        -days 2 -extfile san.ext) >/dev/null 2>&1

cport=$(free_port) tport=$(free_port) nport=$(free_port)
cat >"$dir/chorusd.json" <<JSON
{ "listen": "127.0.0.1:$cport", "data_dir": "$dir/var", "flows_dir": "$src/flows",
  "log_level": "warn", "http": { "max_connections": 10000 },
  "tls": { "listen": "127.0.0.1:$tport", "cert_file": "$dir/cert.pem",
           "key_file": "$dir/key.pem", "ciphers": "$ciphers" } }
JSON
"$build/chorusd" --config "$dir/chorusd.json" 2>"$dir/chorusd.log" &
cpid=$!
mkdir -p "$dir/body"
sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$nport|g" -e "s|@CIPHERS@|$ciphers|g" \
    "$src/bench/tls/nginx.conf.in" >"$dir/nginx.conf"
"$nginx" -p "$dir" -c "$dir/nginx.conf" -e stderr 2>"$dir/nginx.log" &
npid=$!
wait_port "$tport"
wait_port "$nport"

echo "bench/tls.sh: wrk -t2 --latency -d$dur; $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "chorusd $("$build/chorusd" --version 2>&1 | head -n 1) (Release, one loop), $("$nginx" -v 2>&1 | sed 's/.*: //') (1 worker), $(openssl version | cut -d' ' -f1-2), ECDSA P-256"
proto=$(echo | openssl s_client -connect 127.0.0.1:"$tport" -servername localhost 2>/dev/null |
    awk '/^New,/ {print $2, $NF; exit}')
echo "negotiated with chorusd: $proto"
# ROUNDS (default 2) alternate chorusd and nginx so that load from other
# work on the machine falls on both; the ratios are of the summed rates.
ch=0 nh=0 ck=0 nk=0 chp=0 nhp=0 ckp=0 nkp=0
i=0
while [ $i -lt "${ROUNDS:-2}" ]; do
    i=$((i + 1))
    run "chorusd handshakes" "$cpid" "https://127.0.0.1:$tport/healthz" 16 "Connection: close"
    ch=$((ch + rps)) chp=$((chp + per))
    run "nginx handshakes" "$npid" "https://127.0.0.1:$nport/" 16 "Connection: close"
    nh=$((nh + rps)) nhp=$((nhp + per))
    run "chorusd keep-alive" "$cpid" "https://127.0.0.1:$tport/healthz" 64
    ck=$((ck + rps)) ckp=$((ckp + per))
    run "nginx keep-alive" "$npid" "https://127.0.0.1:$nport/" 64
    nk=$((nk + rps)) nkp=$((nkp + per))
done
ratio() {
    awk -v w="$1" -v a="$2" -v b="$3" -v pa="$4" -v pb="$5" 'BEGIN {
        printf "ratio chorusd/nginx %s: %.2f (per server cpu-second: %.2f)\n", w, a / b,
            (pb > 0 ? pa / pb : 0) }'
}
ratio "handshakes/s" "$ch" "$nh" "$chp" "$nhp"
ratio "keep-alive req/s" "$ck" "$nk" "$ckp" "$nkp"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
