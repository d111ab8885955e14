#!/bin/sh
# Intent router benchmark: chorusctl nlu eval and nlp.js (npm node-nlp) on
# the same CLINC150 splits in the same run, printed side by side.
#
#   bench/nlu.sh [DATA_JSON]
#
# Protocol (CLINC150 "oos-train"): train on train + oos_train, tune the
# out-of-scope threshold on val + oos_val pooled with the training items'
# out-of-fold scores (chorus; nlp.js has its fixed 0.5 cut-off), report on
# test + oos_test. CHORUSCTL picks the binary (default build/chorusctl);
# NLU_MAX_DROP the tuning budget in accuracy points (default 0.5); NLU_FOLDS
# the folds (default 5; 0 tunes on val alone); NLU_SKIP_PEER=1 skips nlp.js. Both run on one core
# each, one after the other; on a shared machine the wall-clock figures
# move with the load, the CPU seconds less so.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$root/../shared/data/clinc150/data_full.json}
ctl=${CHORUSCTL:-$root/build/chorusctl}
drop=${NLU_MAX_DROP:-0.5}
folds=${NLU_FOLDS:-5}
[ -x "$ctl" ] || { echo "nlu.sh: $ctl not built (make, or set CHORUSCTL)" >&2; exit 2; }
[ -r "$data" ] || { echo "nlu.sh: $data not readable" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "chorus: training, tuning on val, testing ..." >&2
"$ctl" nlu eval --train "$data" --test "$data" --val "$data" --max-drop "$drop" \
    --folds "$folds" --json \
    >"$tmp/chorus.json"

if [ "${NLU_SKIP_PEER:-0}" != 1 ]; then
    (
        cd "$root/bench/nlu"
        if [ ! -d node_modules/node-nlp ]; then
            echo "nlp.js: installing node-nlp (npm ci) ..." >&2
            npm ci --no-audit --no-fund --loglevel=error >&2
        fi
        echo "nlp.js: training (about a minute and a half) and testing ..." >&2
        node nlpjs_eval.mjs "$data" >"$tmp/nlpjs.json"
    )
else
    echo '{}' >"$tmp/nlpjs.json"
fi

python3 - "$tmp/chorus.json" "$tmp/nlpjs.json" "$data" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
rows = [
    ("in-scope accuracy", "in_scope_accuracy", "pct"),
    ("oos recall", "oos_recall", "pct"),
    ("oos precision", "oos_precision", "pct"),
    ("training (wall)", "train_seconds", "s"),
    ("training (CPU)", "train_cpu_seconds", "s"),
    ("tuning (CPU)", "tune_cpu_seconds", "s"),
    ("classify p50", "classify_us_p50", "us"),
    ("classify p99", "classify_us_p99", "us"),
    ("peak RSS", "peak_rss_kib", "mib"),
]
def fmt(v, kind):
    if v is None:
        return "-"
    if kind == "pct":
        return "%.2f%%" % (100 * v)
    if kind == "s":
        return "%.2f s" % v
    if kind == "us":
        return "%.1f us" % v
    return "%.0f MiB" % (v / 1024)
print("CLINC150 full, oos-train protocol: %s" % sys.argv[3])
print("%d in-scope and %d out-of-scope test utterances; chorus threshold %.3f, temperature"
      " %.2f, tuned on val and %d folds of train" % (c["n_in_scope"], c["n_oos"], c["threshold"],
                                                   c["temperature"], c.get("tune_folds", 0)))
print()
print("%-20s %14s %14s %10s" % ("", "chorus", "nlp.js", "ratio"))
for label, key, kind in rows:
    a, b = c.get(key), p.get(key)
    ratio = ""
    if a and b and kind in ("s", "us", "mib"):
        ratio = "%.1fx" % (b / a)
    print("%-20s %14s %14s %10s" % (label, fmt(a, kind), fmt(b, kind), ratio))
print()
print("targets: in-scope >= 93.5%, oos recall >= 50%, training <= 5 s, classify p50 <= 20 us")
EOF
