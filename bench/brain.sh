#!/bin/sh
# bench/brain.sh [BUILD_DIR]: the brain alone, in process, no HTTP, on the
# example flows: turns per second over a population of conversations (effects
# answered with canned bodies) and bytes per idle conversation, with the
# guardrails on and off; then the conversational peer's dialog engine
# (Bot Framework SDK for JavaScript, ../shared/PEERS.md) measured the same way
# in the same run, and the ratios. The peer is installed from npm into
# $PEER_DIR (default /tmp/chorus-brain-peer) the first time; without node/npm
# only chorus is measured.
set -eu
build=${1:-build}
ctl="$build/chorusctl"
here=$(cd "$(dirname "$0")" && pwd)
flows="$here/../flows"
[ -x "$ctl" ] || { echo "bench/brain.sh: $ctl not found (build first)" >&2; exit 2; }
n=${CONVERSATIONS:-10000}
turns=${TURNS:-2000000}
peer_turns=${PEER_TURNS:-20000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "== chorus brain, guardrails on"
"$ctl" bench-brain --flows "$flows" --conversations "$n" --turns "$turns" 2>/dev/null | tee "$out"
echo "== chorus brain, guardrails off"
"$ctl" bench-brain --flows "$flows" --conversations "$n" --turns "$turns" --no-guard 2>/dev/null |
    tee -a "$out"

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
    echo "(node/npm not found: peer not measured)"
    exit 0
}
peer=${PEER_DIR:-/tmp/chorus-brain-peer}
if [ ! -d "$peer/node_modules/botbuilder-dialogs" ]; then
    mkdir -p "$peer"
    (cd "$peer" && npm_config_yes=true npm install --silent --no-audit --no-fund \
        botbuilder-core@4.23.3 botbuilder-dialogs@4.23.3 >/dev/null 2>&1) || {
        echo "(could not install the peer from npm: peer not measured)"
        exit 0
    }
fi
echo "== peer: Bot Framework dialogs, same population"
PEER_DIR="$peer" node --expose-gc "$here/brain_peer.mjs" "$n" "$peer_turns" | tee -a "$out"

awk '
function before(word, k,    i, seen) {
    for (i = 2; i <= NF; i++) if ($i == word && ++seen == k) return $(i-1) + 0
    return 0
}
/^simple/ && !s { s = before("per", 1) }
/^slot \+ action/ && !a { a = before("per", 1) }
/^idle conversation/ && !m { m = before("bytes", 2) }
/^peer botbuilder/ { p = before("per", 1) }
/^peer idle/ { pm = before("bytes", 1) }
END {
    if (p > 0) printf "ratio per CPU-second (guardrails on): simple turns %.0fx, slot+action turns %.0fx the peer\n", s / p, a / p
    if (m > 0 && pm > 0) printf "memory per idle conversation: chorus %d B, peer %d B (%.1fx less)\n", m, pm, pm / m
}' "$out"
