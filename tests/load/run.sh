#!/usr/bin/env bash
# Runs the load scripts for each interpreter and prints a summary line per script.
#
#   tests/load/run.sh [interpreter...]     default: lua5.4 luajit; "all" for all six
#
# Per interpreter, on a private copy of build/<lua>/ (so that a concurrent `make build` cannot
# rewrite the .so under a running test):
#   echo_load.lua       thousands of concurrent connections through a bufferevent echo server
#                       (fd limit raised to the hard limit first)
#   listener_load.lua   10,000 concurrent connections through core.listener, made by
#                       core.bufferevent.connect in a second process, every byte checked
#   wrapper_load.lua    mixed load through the coroutine wrapper (require "luaevent")
#   signals.lua         EV_SIGNAL while sockets are busy
#   fd_exhaustion.lua   accept failing with EMFILE, in a subshell with `ulimit -n 64`
#   repro_new_base_emfile.lua  core.new() with 2 fds left, in a subshell with `ulimit -n 32`:
#                       must raise, not end the process (regression check, fixed in e9414b0)
# Exit status 0 only when every script passed.
#
# Environment: LOAD_QUICK=1 for a short run (1000 connections, 1000 through the listener, 200
# wrapper clients, 50 signals;
# otherwise echo_load opens as many connections as the fd limit allows, up to 25000);
# the scripts' own settings (LOAD_CONNECTIONS, LOAD_BYTES, LOAD_CLIENTS, LOAD_ROUNDS, LOAD_BULK,
# SIG_CONNECTIONS, SIG_SIGNALS, ...) pass through. LOAD_SCRIPT_TIMEOUT: seconds per script (600).
set -u
cd "$(dirname "$0")/../.."

interpreters=("$@")
[ ${#interpreters[@]} -gt 0 ] || interpreters=(lua5.4 luajit)
[ "${interpreters[0]}" = all ] && interpreters=(lua5.1 lua5.2 lua5.3 lua5.4 lua5.5 luajit)

if [ "${LOAD_QUICK:-0}" = 1 ]; then
  export LOAD_CONNECTIONS=${LOAD_CONNECTIONS:-1000} LOAD_BYTES=${LOAD_BYTES:-16384}
  export LOAD_CLIENTS=${LOAD_CLIENTS:-200} LOAD_ROUNDS=${LOAD_ROUNDS:-10} LOAD_BULK=${LOAD_BULK:-2}
  export SIG_CONNECTIONS=${SIG_CONNECTIONS:-100} SIG_SIGNALS=${SIG_SIGNALS:-50}
  export LOAD_LISTENER_CONNECTIONS=${LOAD_LISTENER_CONNECTIONS:-1000}
else
  # As many as the fd limit allows (echo_load lowers it to (limit - 64) / 2, with a note), up to
  # 25000, below the 28,232 ephemeral ports of Linux's default range towards one server port.
  export LOAD_CONNECTIONS=${LOAD_CONNECTIONS:-25000}
fi
SCRIPT_TIMEOUT=${LOAD_SCRIPT_TIMEOUT:-600}

# As many fds as allowed: echo_load needs two per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "load: fd limit $(ulimit -n) (hard $(ulimit -Hn)), $(nproc) cores, $(uname -sr)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
summary=()

run() { # lua, label, command...
  local lua=$1 label=$2; shift 2
  local out="$work/$lua-$label.out"
  echo "== $label ($lua)"
  timeout -k 10 "$SCRIPT_TIMEOUT" "$@" >"$out" 2>&1
  local rc=$?
  grep -v '^\[warn\]' "$out"
  local verdict=PASS
  [ $rc -eq 0 ] || verdict="FAIL (exit status $rc$([ $rc -eq 124 ] && echo ", timed out"))"
  [ $rc -eq 0 ] || status=1
  summary+=("$(printf '%-8s %-22s %s' "$lua" "$label" "$verdict")")
}

for lua in "${interpreters[@]}"; do
  if ! command -v "$lua" >/dev/null; then summary+=("$lua: not installed"); status=1; continue; fi
  if [ ! -f "build/$lua/luaevent/core.so" ]; then
    summary+=("$lua: build/$lua/luaevent/core.so missing (make build LUA=$lua)"); status=1; continue
  fi
  lib="$work/lib-$lua"
  mkdir -p "$lib"
  cp -r "build/$lua/." "$lib/"
  env_lua=(env "LUA_CPATH=$lib/?.so;;" "LUA_PATH=$lib/?.lua;;")
  run "$lua" echo_load "${env_lua[@]}" "$lua" tests/load/echo_load.lua
  run "$lua" listener_load "${env_lua[@]}" "$lua" tests/load/listener_load.lua
  run "$lua" tls_load "${env_lua[@]}" "$lua" tests/load/tls_load.lua
  run "$lua" wrapper_load "${env_lua[@]}" "$lua" tests/load/wrapper_load.lua
  run "$lua" signals "${env_lua[@]}" "$lua" tests/load/signals.lua
  run "$lua" fd_exhaustion bash -c 'ulimit -n 64 && exec "$@"' -- "${env_lua[@]}" "$lua" tests/load/fd_exhaustion.lua
  run "$lua" new_base_emfile bash -c 'ulimit -n 32 && exec "$@"' -- "${env_lua[@]}" "$lua" tests/load/repro_new_base_emfile.lua 2
done

echo "== load summary"
for line in "${summary[@]}"; do echo "$line"; done
[ $status -eq 0 ] && echo "load: PASS" || echo "load: FAIL"
exit $status
