#!/bin/sh
# Bans C functions that have a bounded replacement (STYLE.md, as curl's checksrc):
#   sprintf -> snprintf, strcpy/strcat -> memcpy with a length or core_buf,
#   strtok -> strtok_r or a hand-written splitter, atoi -> strtol with checks,
#   gets -> fgets.
set -u
files=$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 2>/dev/null)
[ -n "$files" ] || exit 0
# shellcheck disable=SC2086
hits=$(grep -nE '(^|[^_a-zA-Z0-9])(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\(' $files)
if [ -n "$hits" ]; then
    echo "checksrc: banned functions:"
    echo "$hits"
    exit 1
fi
echo "checksrc: $(echo "$files" | wc -w) files clean"
