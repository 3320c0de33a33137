#!/usr/bin/env bash
# The long randomized misuse run: tests/spec/misuse_spec.lua with many calls, per interpreter,
# on a private copy of the build. Prints calls made and crashes found (a run that dies without
# busted's summary, or whose spec fails) for each; exit status 0 only with no crash anywhere.
#
#   tests/fuzz/run.sh [interpreter...]   default: all six
#   FUZZ_CALLS   calls per interpreter (default 1000000), FUZZ_SEED (default: the spec's own)
#   FUZZ_OUT     where the logs are kept (default ${TMPDIR:-/tmp}/luaevent-fuzz)
set -u
cd "$(dirname "$0")/../.."

interpreters=("$@")
[ ${#interpreters[@]} -gt 0 ] || interpreters=(lua5.1 lua5.2 lua5.3 lua5.4 lua5.5 luajit)
calls=${FUZZ_CALLS:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${FUZZ_OUT:-${TMPDIR:-/tmp}/luaevent-fuzz}
mkdir -p "$out"
total_crashes=0

for lua in "${interpreters[@]}"; do
  mkdir -p "$work/$lua"
  cp -r "build/$lua/." "$work/$lua/"
  start=$(date +%s)
  env LUA_CPATH="$work/$lua/?.so;;" LUA_PATH="$work/$lua/?.lua;;" LUAEVENT_MISUSE_CALLS="$calls" \
    ${FUZZ_SEED:+LUAEVENT_SEED=$FUZZ_SEED} "$lua" /usr/bin/busted tests/spec/misuse_spec.lua \
    >"$out/$lua.log" 2>&1
  status=$?
  crashes=0
  if [ $status -ne 0 ] || ! grep -qaE '^1 success / 0 failures / 0 errors' "$out/$lua.log"; then
    crashes=1
    grep -aE -A12 '^(Failure|Error) ->' "$out/$lua.log" | head -n 30
    echo "(full log: $out/$lua.log)"
  fi
  total_crashes=$((total_crashes + crashes))
  echo "fuzz $lua: $calls calls${FUZZ_SEED:+, seed $FUZZ_SEED}, crashes found: $crashes (exit status $status, $(( $(date +%s) - start )) s)"
done

echo "fuzz: $total_crashes crash(es) in ${#interpreters[@]} interpreter(s)"
[ "$total_crashes" -eq 0 ]
