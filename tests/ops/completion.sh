#!/usr/bin/env bash
# completion.sh COMPLETION SNAPBACK: the bash completion of snapback completes commands
# and per-command options, and offers exactly the options `snapback --help` lists.
set -uo pipefail
comp=$1 bin=$2 fails=0
# shellcheck source=/dev/null
source "$comp"
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _snapback; echo "${COMPREPLY[*]}"; }
expect() { local want=$1; shift; local got; got=$(complete_words "$@")
  [ "$got" = "$want" ] || { echo "FAIL completing '$*': got '$got', expected '$want'"; fails=$((fails + 1)); }; }
expect "backup backups" snapback ba
expect "--keep-last --keep-daily --keep-weekly" snapback prune --keep
expect "--workers" snapback backup web --wo
expect "" snapback backup --workers ""
offered=$(for c in init backup backups restore verify prune gc; do complete_words snapback "$c" --; done |
          tr ' ' '\n' | grep -- '^--' | sort -u)
offered=$(printf '%s\n--help\n--version\n' "$offered" | sort -u)
helped=$("$bin" --help | grep -E '^\s+--' | grep -oE '(^|[ ,])--[a-z][a-z-]*' | tr -d ' ,' | sort -u)
if [ "$offered" != "$helped" ]; then
  echo "FAIL the completion's options differ from snapback --help:"; diff <(echo "$offered") <(echo "$helped")
  fails=$((fails + 1))
fi
echo "completion: $fails problems"
[ "$fails" -eq 0 ]
