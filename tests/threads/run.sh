#!/usr/bin/env bash
# luaevent.core in several Lua states on several threads at once (tests/threads/threads.c
# running tests/threads/worker.lua in each), on lua5.4:
#   - plainly, 8 threads;
#   - under valgrind --tool=helgrind (4 threads): any data race or lock misuse fails, apart
#     from libevent's own process-global flags (tests/threads/helgrind.supp says which and why);
#   - under tests/faults/failalloc.c (4 threads): every deferred DNS reply callback of libevent
#     failing (FAILALLOC_SIZE, the size src/libevent.rs names), then failures at random points.
#     Lua errors are expected there; a crash, a hang, Rust's allocation-failure abort or a run
#     that injected nothing fails.
# Prints "ok - ..." / "not ok - ..." per run, then "threads: N ok, N not ok"; exit status 0 only
# when all passed. Takes about 15 s (THREADS_HELGRIND=0 skips helgrind).
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
LUA=lua5.4
MODULE="build/$LUA"
OUT=${THREADS_OUT:-${TMPDIR:-/tmp}/luaevent-threads}
mkdir -p "$OUT" build/faults
good=0
bad=0
result() { # ok(0/1) description
  if [ "$1" = 0 ]; then echo "ok - $2"; good=$((good + 1)); else echo "not ok - $2"; bad=$((bad + 1)); fi
}
finish() { echo "threads: $good ok, $bad not ok"; [ "$bad" -eq 0 ]; exit $?; }

if [ ! -f "$MODULE/luaevent/core.so" ]; then result 1 "$MODULE/luaevent/core.so missing (make build LUA=$LUA)"; finish; fi
# A private copy, so that a concurrent `make build` cannot change the module under a run.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$MODULE/." "$work/"
if ! gcc -O2 -Wall -Wextra -pthread -I/usr/include/lua5.4 -o build/threads tests/threads/threads.c -llua5.4 ||
   ! gcc -shared -fPIC -O2 -Wall -Wextra -Wl,-soname,failalloc.so -o build/faults/failalloc.so.tmp tests/faults/failalloc.c -ldl ||
   ! mv build/faults/failalloc.so.tmp build/faults/failalloc.so; then
  result 1 "build the driver and the failalloc shim (gcc, liblua5.4-dev)"; finish
fi

# The verdict of a run from its exit status and log: sets WHY (empty: passed).
judge() { # status log
  WHY=""
  if [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; then WHY="did not end within its time"
  elif [ "$1" -gt 128 ]; then WHY="died by SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))"
  elif grep -qaE 'memory allocation of|panicked at|fatal runtime error' "$2"; then WHY="Rust aborted: $(grep -aoE 'memory allocation of.*|panicked at.*|fatal runtime error.*' "$2" | head -n 1)"
  elif ! grep -qaE '^threads: [0-9]+ ok, 0 not ok$' "$2"; then WHY="$(grep -a '^not ok' "$2" | head -n 2 | tr '\n' ' ')exit status $1"
  elif [ "$1" -ne 0 ]; then WHY="exit status $1"
  fi
}

run() { # description timeout threads env...
  local what=$1 limit=$2 count=$3; shift 3
  local log="$OUT/$(echo "$what" | tr -c 'a-zA-Z0-9\n' '-').log"
  { timeout -k 5 "$limit" env "$@" build/threads "$work" "$root/tests" "$count" >"$log" 2>&1 </dev/null; } 2>/dev/null
  judge $? "$log"
}

run "8 threads" 60 8
result "$([ -z "$WHY" ] && echo 0 || echo 1)" "8 threads, each its own Lua state and base: timers, echo, DNS${WHY:+: $WHY} ($OUT)"

if [ "${THREADS_HELGRIND:-1}" = 1 ]; then
  if command -v valgrind >/dev/null; then
    log="$OUT/helgrind.log"
    { timeout -k 5 300 valgrind --tool=helgrind --error-exitcode=99 --suppressions=tests/threads/helgrind.supp \
      build/threads "$work" "$root/tests" 4 >"$log" 2>&1 </dev/null; } 2>/dev/null
    status=$?
    errors=$(grep -aoE 'ERROR SUMMARY: [0-9]+ errors' "$log" | grep -oE '[0-9]+' | head -n 1)
    if [ "$status" -eq 99 ] || [ "${errors:-1}" != 0 ]; then result 1 "helgrind, 4 threads: ${errors:-no} errors (log $log)"
    else judge "$status" "$log"; result "$([ -z "$WHY" ] && echo 0 || echo 1)" "helgrind, 4 threads: 0 errors${WHY:+; $WHY}"; fi
  else
    result 1 "helgrind: valgrind is not installed"
  fi
fi

# Under failing allocations: the shim arms when each worker asks for FAILALLOC_ARM.
failalloc_run() { # description settings...
  local what=$1; shift
  run "failalloc $what" 120 4 LD_PRELOAD="$root/build/faults/failalloc.so" FAILALLOC_WAIT=1 THREADS_EXPECT_ERRORS=1 "$@"
  local injected
  injected=$(grep -aoE 'failalloc: pid [0-9]+ counted [0-9]+ injected [0-9]+' "$OUT/failalloc-$(echo "$what" | tr -c 'a-zA-Z0-9\n' '-').log" | tail -n 1 | grep -oE '[0-9]+$')
  [ -n "$WHY" ] || [ "${injected:-0}" -gt 0 ] || WHY="no failure injected"
  result "$([ -z "$WHY" ] && echo 0 || echo 1)" "failalloc, 4 threads, $what: ${injected:-0} failures injected${WHY:+; $WHY}"
}
failalloc_run "every DNS reply callback" FAILALLOC_SIZE=600 FAILALLOC_PERIOD=1
for seed in 1 2 3; do
  failalloc_run "random bursts (seed $seed)" FAILALLOC_SKIP=$((seed * 300)) FAILALLOC_BURST=$seed FAILALLOC_ODDS=300 FAILALLOC_SEED=$seed
done
finish
