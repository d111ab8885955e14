#!/bin/sh
# gen-config-doc.sh CHORUSD [--check]: regenerates the option table of
# docs/configuration.md from `chorusd --help-config` (the config table in
# src/core/core_config.c is the single source), or with --check fails when
# the committed page is out of date.
set -eu
chorusd=$1
doc="$(dirname "$0")/../docs/configuration.md"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed '/<!-- options:begin -->/q' "$doc" > "$tmp"
"$chorusd" --help-config >> "$tmp"
sed -n '/<!-- options:end -->/,$p' "$doc" >> "$tmp"
if [ "${2:-}" = "--check" ]; then
    if ! cmp -s "$tmp" "$doc"; then
        echo "docs/configuration.md is out of date: run scripts/gen-config-doc.sh build/chorusd"
        diff "$doc" "$tmp" || true
        exit 1
    fi
    echo "docs/configuration.md matches chorusd --help-config"
else
    cp "$tmp" "$doc"
fi
