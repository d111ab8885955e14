#!/bin/sh
# Installs the Node.js packages the tests use (tests/node/package.json, pinned
# by its package-lock.json) when they are missing or out of date.
set -eu
dir="$(dirname "$0")/../tests/node"
[ -f "$dir/package.json" ] || exit 0
cd "$dir"
stamp=node_modules/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ]; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
touch "$stamp"
