#!/bin/sh
# bench/guard.sh [BUILD_DIR]: the latency the guardrails add to one turn (the
# full input rail set on a user utterance bound for an LLM, then the full
# output rail set on an LLM reply), median / p99 / mean in microseconds, over
# a realistic mix: the CLINC150 test and out-of-scope test utterances plus the
# input lines of the adversarial corpus (PII, injection, abuse, look-alikes).
# Then the detection figures: precision and recall per rule on the labelled
# corpus, and the sentiment scorer's accuracy.
set -eu
build=${1:-build}
ctl="$build/chorusctl"
[ -x "$ctl" ] || { echo "bench/guard.sh: $ctl not found (build first)" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
data=${CHORUS_DATA_DIR:-$src/../shared/data}
corpus="$src/tests/data/guardrails/corpus.jsonl"
turns=${TURNS:-200000}
set -- --corpus "$corpus" --turns "$turns"
if [ -f "$data/clinc150/data_full.json" ]; then
    set -- "$@" --utterances "$data/clinc150/data_full.json"
else
    echo "bench/guard.sh: no CLINC150 at $data/clinc150; corpus lines only" >&2
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$ctl" guard bench "$@"
echo
"$ctl" guard eval "$corpus"
echo
for f in "$src"/tests/data/guardrails/holdout.jsonl "$src"/tests/data/guardrails/holdout2.jsonl \
    "$src"/tests/data/guardrails/sentiment.jsonl; do
    [ -f "$f" ] || continue
    echo "== $(basename "$f")"
    "$ctl" guard eval "$f"
    echo
done
