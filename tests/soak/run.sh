#!/usr/bin/env bash
# Runs tests/soak/soak.lua for each interpreter and prints its verdicts.
#
#   tests/soak/run.sh [interpreter...]     default: lua5.4 luajit; "all" for all six
#
# Each run uses a private copy of build/<lua>/ (a concurrent `make build` rewrites the .so in
# place, which would change the code under a running process). SOAK_QUICK=1 for a ~10 s run per
# interpreter; other SOAK_* settings pass through (see soak.lua). SOAK_TIMEOUT: seconds per
# interpreter before the run is stopped and failed (default 1800).
set -u
cd "$(dirname "$0")/../.."

interpreters=("$@")
[ ${#interpreters[@]} -gt 0 ] || interpreters=(lua5.4 luajit)
[ "${interpreters[0]}" = all ] && interpreters=(lua5.1 lua5.2 lua5.3 lua5.4 lua5.5 luajit)
TIMEOUT=${SOAK_TIMEOUT:-1800}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
summary=()
for lua in "${interpreters[@]}"; do
  echo "== soak ($lua)"
  if [ ! -f "build/$lua/luaevent/core.so" ]; then
    summary+=("$lua: build/$lua/luaevent/core.so missing (make build LUA=$lua)"); status=1; continue
  fi
  mkdir -p "$work/$lua"
  cp -r "build/$lua/." "$work/$lua/"
  LUA_CPATH="$work/$lua/?.so;;" LUA_PATH="$work/$lua/?.lua;;" \
    timeout -k 10 "$TIMEOUT" "$lua" tests/soak/soak.lua 2>"$work/$lua.err" | tee "$work/$lua.out"
  rc=${PIPESTATUS[0]}
  grep -v '^\[warn\]' "$work/$lua.err"
  [ $rc -eq 0 ] || status=1
  verdict=$(grep -E '^soak: RSS start' "$work/$lua.out" | sed 's/^soak: //')
  summary+=("$lua: $([ $rc -eq 0 ] && echo PASS || echo "FAIL (exit status $rc)"); ${verdict:-no RSS figures}")
done
echo "== soak summary"
for line in "${summary[@]}"; do echo "$line"; done
exit $status
