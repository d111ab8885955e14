# bench/lib.sh: what bench/http.sh and bench/tls.sh share, sourced after
# they set `me` (their name, for messages), `tools` (commands they need),
# `hint` (the packages that bring them) and `build` (the build directory).
# Checks the tools, builds a Release chorusd in $build when it is missing,
# makes $dir (removed at exit, with chorusd $cpid and nginx $npid stopped)
# and defines free_port, wait_port and cpu_s.
src=$(cd "$(dirname "$0")/.." && pwd)
for tool in $tools; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
        { echo "$me: $tool not found ($hint)" >&2; exit 2; }
done
nginx=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$build/chorusd" ]; then
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j2 --target chorusd >/dev/null
fi
dir=$(mktemp -d)
cpid=""; npid=""
cleanup() {
    [ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
    [ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    i=0
    until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "$me: nothing listens on $1" >&2; exit 1; }
        sleep 0.1
    done
}
# CPU seconds (user + system) a process and its children (nginx's worker)
# have used so far.
cpu_s() {
    pids="$1 $(cat /proc/"$1"/task/*/children 2>/dev/null)"
    for p in $pids; do cat "/proc/$p/stat"; done |
        awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); t += $12 + $13 }
            END { printf "%.2f", t / hz }'
}
