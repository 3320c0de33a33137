#!/usr/bin/env bash
# Self-test of the test drivers: a green run must mean that everything it claims to have run, ran
# and passed. Made-up runs that crash, hang, exit oddly or end without their verdict go through
# the real drivers, and each must be judged a failure, named; controls that pass must pass:
#   1. tests/run (files mode) on tests/selftest/fake.lua: a spec file whose process dies by a
#      signal or hangs or exits 3 after busted's summary, one that dies before it, a pending spec,
#      a spec that reports a skip;
#   2. the fault harness's verdict (tests/faults/judge.sh) on made-up logs and exit statuses;
#   3. tests/faults/busted.lua, the fault runs' busted, on real processes: a Lua error that
#      escapes busted (expected under failing allocations: must still end with its END line),
#      C's exit(1) from inside a spec (as libevent's event_err does: no END line), a crash;
#   4. tests/memcheck/run.sh on fake.lua under valgrind: a death by a signal, an odd exit
#      status, a skip.
# Prints one "ok - ..." or "not ok - ..." line per check and last "selftest: N ok, N not ok"
# (tests/run counts them); exit status 0 when every check passed. Runs in seconds; needs lua5.4,
# luajit, valgrind and build/lua5.4 (for the memcheck part: its module copy).
set -u
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$work/out
passes=0
failures=0
ok() { echo "ok - $*"; passes=$((passes + 1)); }
not_ok() {
  echo "not ok - $*"
  failures=$((failures + 1))
  sed 's/^/    | /' "$out" | tail -n 25
}
FAKE=tests/selftest/fake.lua

# --- 1. tests/run -------------------------------------------------------------------------------
# Runs the fake spec file as SELFTEST_FAKE=$2 through tests/run and checks the driver's exit
# status (pass: 0, fail: not 0), its closing line, and a line it must have printed (a regex).
driver() { # description fake want closing-line [line-regex]
  local description=$1 fake=$2 want=$3 closing=$4 named=${5:-} status good=1
  SELFTEST_FAKE=$fake SPEC_TIMEOUT=2 tests/run files lua5.4 "$FAKE" >"$out" 2>&1
  status=$?
  [ "$(tail -n 1 "$out")" = "$closing" ] || good=0
  if [ "$want" = pass ]; then [ $status -eq 0 ] || good=0; else [ $status -ne 0 ] || good=0; fi
  [ -z "$named" ] || grep -qE -- "$named" "$out" || good=0
  if [ $good = 1 ]; then ok "tests/run: $description"; else not_ok "tests/run: $description (exit status $status)"; fi
}
part="spec files on lua5.4 \\($FAKE\\)"
driver "a spec file that passes, passes" pass pass "2 passed, 0 failed"
driver "a process that dies by SIGSEGV after busted's summary fails, named" crash-after fail "1 passed, 1 failed" \
  "^!! $part: died by SIGSEGV after busted's summary"
driver "a process that hangs after busted's summary fails at the timeout, named" hang-after fail "1 passed, 1 failed" \
  "^!! $part: did not end within 2 s"
driver "a process that exits 3 after a clean summary fails, named" exit-after fail "1 passed, 1 failed" \
  "^!! $part: exit status 3 after busted's summary"
driver "a process that dies before busted's summary fails, named" crash-before fail "0 passed, 1 failed" \
  "^!! $part: no busted summary, died by SIGABRT"
driver "a pending spec fails" pending fail "1 passed, 1 failed"
driver "a spec that cannot make its check is a counted, listed skip" skip pass "1 passed, 0 failed, 1 skipped" \
  "^-- skipped in $part: $FAKE:[0-9]+: the self-test's own skip"

# --- 2. the fault harness's verdict -------------------------------------------------------------
# shellcheck source=tests/faults/judge.sh
. tests/faults/judge.sh
SHIM='failalloc: pid 1 counted 900 injected 3 bursts 1 mmaps 0 (at exit)'
# judge() on a made-up run: the log's lines, then the exit status and program.
verdict() { # description want-verdict detail-regex rc program log-lines...
  local description=$1 want=$2 detail=$3 rc=$4 prog=$5
  shift 5
  printf '%s\n' "$@" "$SHIM" >"$out"
  judge "$rc" "$out" "$prog"
  echo "judged: $VERDICT: $DETAIL" >>"$out"
  if [ "$VERDICT" = "$want" ] && echo "$DETAIL" | grep -qE -- "$detail"; then ok "faults: $description"
  else not_ok "faults: $description"; fi
}
verdict "an api run with its PASS line and status 0 passes" PASS 'steps' 0 api 'api: 40 steps, 3 raised' 'api: PASS'
verdict "an api run that ends by an error that escaped every pcall fails (no verdict)" FAIL '^NO VERDICT.*exit status 1: lua5.4: not enough memory' \
  1 api 'lua5.4: not enough memory'
verdict "an echo run that exits 0 without its verdict fails" FAIL '^NO VERDICT' 0 echo 'echo: connections 16, complete 16'
verdict "an echo run that dies by SIGSEGV after its PASS line fails" FAIL '^died by SIGSEGV' 139 echo 'echo: PASS'
verdict "an api run that says PASS but exits 1 fails" FAIL '^exit status 1 after' 1 api 'api: PASS'
verdict "a tls part run with its PASS line and status 0 passes" PASS 'steps' 0 tls_connections 'tls: 70 steps, 3 raised' 'tls: PASS'
verdict "a tls part run that exits 0 without its verdict fails" FAIL '^NO VERDICT.*"tls: PASS"' 0 tls_contexts 'tls: 50 steps, 41 raised'
verdict "a tls part run whose fds leaked fails" FAIL '^tls: FAIL \(1 fd' 1 tls_store 'tls: FAIL (1 fd(s) leaked)'
verdict "a tls part run that prints another program's PASS line fails" FAIL '^NO VERDICT' 0 tls_connections 'api: PASS'
verdict "an echo FAIL verdict fails" FAIL '^echo: FAIL \(1 connection' 1 echo 'echo: FAIL (1 connection(s) got wrong bytes back)'
verdict "a specs run with failing specs and its END line passes (expected under faults)" PASS 'busted: 3 successes / 2 failures' \
  1 specs '3 successes / 2 failures / 0 errors / 0 pending : 1.5 seconds' "faults-busted: END status 1 (busted's exit status)"
verdict "a specs run that C's exit(1) ended (no END line) fails" FAIL '^NO VERDICT' 1 specs '[libevent] event_err: fatal'
verdict "a misuse run whose status disagrees with its END line fails" FAIL '^exit status 2 after' \
  2 misuse "faults-busted: END status 0 (busted returned)"
verdict "a misuse run stopped by the timeout fails" FAIL '^HANG' 124 misuse
verdict "a run with Rust's allocation-failure message fails, END line or not" FAIL 'Rust allocation-failure abort' \
  0 specs 'memory allocation of 16 bytes failed' "faults-busted: END status 0 (busted returned)"

# --- 3. tests/faults/busted.lua on real processes -----------------------------------------------
# Runs a command (output in $out), then judges it as a run of program $1 with the shim's report.
judged_run() { # description want detail-regex program command...
  local description=$1 want=$2 detail=$3 prog=$4 rc
  shift 4
  { "$@" >"$out" 2>&1 </dev/null; } 2>/dev/null
  rc=$?
  echo "$SHIM" >>"$out"
  judge "$rc" "$out" "$prog"
  echo "exit status $rc; judged: $VERDICT: $DETAIL" >>"$out"
  if [ "$VERDICT" = "$want" ] && echo "$DETAIL" | grep -qE -- "$detail"; then ok "faults: $description"
  else not_ok "faults: $description"; fi
}
judged_run "busted.lua: passing specs end with END status 0, and pass" PASS 'busted: 2 successes .*; status 0 \(busted returned\)' specs \
  env SELFTEST_FAKE=pass lua5.4 tests/faults/busted.lua "$FAKE"
judged_run "busted.lua: a Lua error out of busted still ends with its END line, and passes" PASS 'status 1 \(a Lua error escaped busted: not enough memory\)' specs \
  env "LUA_PATH=tests/selftest/?.lua;;" lua5.4 tests/faults/busted.lua "$FAKE"
judged_run "busted.lua: C's exit(1) inside a spec leaves no END line, and fails" FAIL '^NO VERDICT' specs \
  env SELFTEST_FAKE=c-exit luajit tests/faults/busted.lua "$FAKE"
judged_run "busted.lua: a crash after busted's end fails" FAIL '^died by SIGSEGV' misuse \
  env SELFTEST_FAKE=crash-after lua5.4 tests/faults/busted.lua "$FAKE"
judged_run "an api-like program ended by an error outside every pcall fails" FAIL '^NO VERDICT' api \
  lua5.4 -e 'print("api: 10 steps") error("not enough memory")'

# --- 4. tests/memcheck/run.sh -------------------------------------------------------------------
memcheck() { # description fake want line-regex
  local description=$1 fake=$2 want=$3 named=$4 status good=1
  SELFTEST_FAKE=$fake MEMCHECK_OUT=$work/memcheck MEMCHECK_SO=build/lua5.4/luaevent/core.so MEMCHECK_SCRIPTS=0 \
    MEMCHECK_SPECS=$FAKE tests/memcheck/run.sh lua5.4 >"$out" 2>&1
  status=$?
  if [ "$want" = pass ]; then
    [ $status -eq 0 ] && [ "$(tail -n 1 "$out")" = "memcheck: PASS" ] || good=0
  else
    [ $status -ne 0 ] && [ "$(tail -n 1 "$out")" = "memcheck: FAIL" ] || good=0
  fi
  grep -qE -- "$named" "$out" || good=0
  if [ $good = 1 ]; then ok "memcheck: $description"; else not_ok "memcheck: $description (exit status $status)"; fi
}
memcheck "a spec file that passes, passes" pass pass '^lua5.4 specs: 0 module errors.*2 successes'
memcheck "a process that dies by SIGSEGV after its summary fails, named" crash-after fail '^!! lua5.4 specs: died by SIGSEGV'
memcheck "a process that exits 3 after a clean summary fails, named" exit-after fail '^!! lua5.4 specs: exit status 3'
memcheck "a spec that cannot make its check is listed and counted" skip pass \
  '^lua5.4 specs: .*2 successes / 0 failures / 0 errors / 0 pending.*, 1 skipped;'

echo "selftest: $passes ok, $failures not ok"
[ "$failures" -eq 0 ]
