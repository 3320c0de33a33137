#!/usr/bin/env bash
# Fault injection: luaevent.core with memory allocations failing (tests/faults/failalloc.c) and
# with reads and writes failing on chosen connections (tests/faults/iofault.c), each an
# LD_PRELOAD shim built here with gcc into build/faults/.
#
#   tests/faults/run.sh [interpreter...]      default: lua5.4 luajit
#
# Allocation failures. Five programs, each run many times per interpreter with allocations
# failing at different points (a first run with the shim armed but failing nothing counts the
# allocations, so that the failure points can be spread over the whole run):
#   api     tests/faults/api.lua, every function of the module once or twice; swept: every
#           allocation of the run fails in some run (every ~40th in the quick run), alone and
#           with the next one; it also fails when fds leaked
#   tls_contexts, tls_store, tls_connections
#           the three parts of tests/faults/tls.lua (TLS contexts; contexts that load the
#           system's certificates; handshakes, STARTTLS and closes during handshakes): OpenSSL
#           makes 80,000 to 470,000 allocations a part, so each is a sampled sweep: TLS_POINTS
#           failure points spread evenly over its first 80% (a random one in each slice), bursts of
#           1 and 2 in turn; it also fails when fds leaked
#   tls_layer
#           the layer part of tests/faults/tls.lua (STARTTLS on both ends of a plain pair, then
#           closed; ~150 allocations), swept as api is: every allocation fails in some run, alone
#           and with the next one, in the quick run too
#   specs   the busted specs (--helper=tests/faults/arm.lua arms the shim once they are loaded)
#   misuse  tests/spec/misuse_spec.lua, the randomized misuse run, LUAEVENT_MISUSE_CALLS calls
#   echo    tests/faults/echo.lua, a bufferevent echo that checks every byte that comes back
# Settings for the last three, drawn from FAULTS_SEED: a burst of 1..32 failures after SKIP
# allocations, repeated every PERIOD allocations, or then at random (odds 1/ODDS per
# allocation); on LuaJIT one run in four fails anonymous mmap instead (LuaJIT's own allocator),
# so that Lua itself runs out of memory there too. LuaJIT runs with its JIT off (see program()).
# Lua errors, failing specs and connections ended by errors are expected. A run FAILS when:
#   - it died by a signal (SIGABRT, SIGSEGV, SIGBUS, SIGILL, ...): Rust's "memory allocation of
#     N bytes failed" abort, a panic, a Lua panic, a crash;
#   - its output holds Rust's allocation-failure or panic message ("memory allocation of",
#     "panicked at", "fatal runtime error");
#   - it did not end within its timeout (a hang);
#   - it ended without the program's own end-of-run line, or with an exit status other than
#     that line's: api and echo print "api: PASS" / "echo: PASS" and exit 0; specs and misuse
#     run busted through tests/faults/busted.lua, which catches busted's end and any Lua error
#     out of it, disarms the shim and prints "faults-busted: END status N", then exits with N.
#     So an expected Lua error still ends the run properly, and a run that vanished (an error
#     that escaped every pcall, libevent's event_err calling exit(1)) fails;
#   - the program's own verdict says so (echo: a wrong byte, or a connection stalled with no
#     error seen anywhere; api: fds still open after everything was closed and collected).
# The verdict is judge() in tests/faults/judge.sh; tests/selftest/run.sh feeds it made-up runs.
# A run in which the shim injected nothing proves nothing: it is counted as "no injection",
# which fails like a failure (the settings are chosen so that it does not happen).
# A valgrind sample (FAULTS_VALGRIND runs per interpreter) reruns some settings under memcheck:
# errors attributed to luaevent.core (any frame of any stack in the module's .so, as in
# tests/memcheck/run.sh: definite/indirect leaks, invalid accesses) fail the run.
#
# I/O faults: tests/faults/io_faults.lua under iofault.so (hard and transient faults on chosen
# connections, buffer:read/write errors, a real reset); it prints its own PASS/FAIL.
#
# Every run prints one line: its verdict, the settings, and what happened. Failures also print
# a command line that reproduces them (the shims stay in build/faults/), and with
# FAULTS_BACKTRACE=1 (default when gdb is installed and not FAULTS_QUICK) a gdb backtrace.
# Logs: FAULTS_OUT (default ${TMPDIR:-/tmp}/luaevent-faults). Last line:
# "faults: N passed, N failed" (then PASS or FAIL); exit status 0 only when nothing failed.
#
# Environment:
#   FAULTS_QUICK=1       the short run of `make test` (under a minute): fewer runs, a spec subset
#   FAULTS_SEED          seed of the settings (default 1)
#   FAULTS_RUNS          runs per program and interpreter (default: 4 quick, 16 long; echo 2x)
#   FAULTS_ONLY          alloc or io: one half only
#   FAULTS_PROGRAMS      which allocation programs (default "api tls_contexts tls_store
#                        tls_connections tls_layer specs misuse echo")
#   FAULTS_API_STRIDE    fail every STRIDE-th allocation point of api.lua (default 1, quick ~1/40)
#   FAULTS_TLS_POINTS    failure points per part of tls.lua: "contexts store connections"
#                        (default "12 2 16" quick, "120 12 160" long)
#   FAULTS_VALGRIND      valgrind runs per interpreter (default 0 quick, 5 long: api, echo, misuse,
#                        specs, tls_connections in turn)
#   FAULTS_TIMEOUT       seconds per run before it counts as a hang (default 300; valgrind 1800)
#   FAULTS_MISUSE_CALLS  calls per misuse run (default 3000 quick, 20000 long)
#   FAULTS_BUILD=debug   test a debug build (cargo build without --release, kept in
#                        build/faults/debug/<lua>) for file:line in backtraces; default release:
#                        build/<lua>/luaevent/core.so (run make build first)
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)

interpreters=("$@")
[ ${#interpreters[@]} -gt 0 ] || interpreters=(lua5.4 luajit)
QUICK=${FAULTS_QUICK:-0}
SEED=${FAULTS_SEED:-1}
OUT=${FAULTS_OUT:-${TMPDIR:-/tmp}/luaevent-faults}
ONLY=${FAULTS_ONLY:-}
PROGRAMS=${FAULTS_PROGRAMS:-api tls_contexts tls_store tls_connections tls_layer specs misuse echo}
TIMEOUT=${FAULTS_TIMEOUT:-300}
BUILD=${FAULTS_BUILD:-release}
if [ "$QUICK" = 1 ]; then
  RUNS=${FAULTS_RUNS:-4}
  VALGRIND_RUNS=${FAULTS_VALGRIND:-0}
  MISUSE_CALLS=${FAULTS_MISUSE_CALLS:-3000}
  # The fast spec files; bufferevent_spec waits on real time and takes 10 s a run.
  SPECS="tests/spec/core_spec.lua tests/spec/base_spec.lua tests/spec/event_spec.lua tests/spec/buffer_spec.lua"
  BACKTRACE=${FAULTS_BACKTRACE:-0}
  TLS_POINTS=${FAULTS_TLS_POINTS:-12 2 16}
else
  RUNS=${FAULTS_RUNS:-16}
  VALGRIND_RUNS=${FAULTS_VALGRIND:-5}
  MISUSE_CALLS=${FAULTS_MISUSE_CALLS:-20000}
  SPECS="tests/spec"
  BACKTRACE=${FAULTS_BACKTRACE:-$(command -v gdb >/dev/null && echo 1 || echo 0)}
  TLS_POINTS=${FAULTS_TLS_POINTS:-120 12 160}
fi

mkdir -p "$OUT" build/faults
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
status=0
summary=()

# The shims, built from source every time (a few hundred milliseconds). A soname keeps
# valgrind from taking failalloc's malloc for the program's own (it replaces malloc in every
# object without one), so that under valgrind the shim still decides.
build_shim() { # name
  gcc -shared -fPIC -O2 -Wall -Wextra -Wl,-soname,"$1.so" -o "build/faults/$1.so.tmp" "tests/faults/$1.c" -ldl &&
    mv "build/faults/$1.so.tmp" "build/faults/$1.so"
}
build_shim failalloc && build_shim iofault || { echo "faults: cannot build the shims (gcc)"; echo "faults: 0 passed, 1 failed"; exit 1; }
FAILALLOC="$root/build/faults/failalloc.so"
IOFAULT="$root/build/faults/iofault.so"

# A deterministic generator for the settings (the same sequence for a seed on any machine).
rng=$((SEED * 7919 + 17))
rand() { # bound -> R in [0, bound)
  rng=$(( (rng * 1103515245 + 12345) % 2147483648 ))
  R=$(( (rng / 65536) % $1 ))
}
pick() { rand $#; shift "$R"; R=$1; }

feature_of() {
  case $1 in lua5.1) echo lua51 ;; lua5.2) echo lua52 ;; lua5.3) echo lua53 ;; lua5.4) echo lua54 ;; luajit) echo luajit ;; esac
}

# signal_name, pass_line, judge: the verdict of one run.
# shellcheck source=tests/faults/judge.sh
. tests/faults/judge.sh

# The command of a program: sets CMD (argv) and PENV (NAME=VALUE settings) for interpreter $1.
program() { # lua program lib
  local lua=$1 prog=$2 lib=$3
  PENV=("LUA_CPATH=$lib/?.so;;" "LUA_PATH=$lib/?.lua;;" "LUAEVENT_EXPECT_CORE=$lib/luaevent/core.so")
  local interpreter=("$lua")
  # LuaJIT's JIT itself crashes when allocations fail, with no frame of this module on the
  # stack, in two ways reproduced by pure-Lua loops without the module (doc/reliability.md):
  # a SIGSEGV in libgcc's __register_frame_info_bases when malloc fails while a trace's unwind
  # info is registered (every run), and a SIGSEGV in JIT code when an mmap fails (one run in
  # ten). With the JIT off LuaJIT survives both, so LuaJIT runs here use the interpreter only:
  # the C API and the error unwinding through the module's frames are the same. Through
  # LUA_INIT rather than -joff, which would shift arg[-1] (a spec runs a child interpreter).
  [ "$lua" = luajit ] && PENV+=("LUA_INIT=jit.off()")
  case $prog in
    # busted through tests/faults/busted.lua, which ends every run with a line of its own.
    # shellcheck disable=SC2206 # SPECS is a list of busted arguments
    specs) CMD=("${interpreter[@]}" tests/faults/busted.lua --helper=tests/faults/arm.lua $SPECS) ;;
    misuse) CMD=("${interpreter[@]}" tests/faults/busted.lua --helper=tests/faults/arm.lua tests/spec/misuse_spec.lua)
      PENV+=("LUAEVENT_MISUSE_CALLS=$MISUSE_CALLS") ;;
    echo) CMD=("${interpreter[@]}" tests/faults/echo.lua) ;;
    api) CMD=("${interpreter[@]}" tests/faults/api.lua) ;;
    tls_*) CMD=("${interpreter[@]}" tests/faults/tls.lua "${prog#tls_}") ;;
  esac
}

# Prints a command line that reruns a setting outside this script.
repro_line() { # lua settings...
  local lua=$1; shift
  local cmd=("${CMD[@]}") lib="build/$lua"
  [ "$BUILD" = debug ] && lib=$LIB
  printf '      repro: LD_PRELOAD=%s' "$FAILALLOC"
  printf ' %s' "$@" "LUA_CPATH='$lib/?.so;;'" "LUA_PATH='$lib/?.lua;;'"
  [ "${#PENV[@]}" -gt 3 ] && printf ' %q' "${PENV[@]:3}"
  printf ' %q' "${cmd[@]}"
  printf '\n'
}

# gdb's backtrace of a crashing setting, rerun without the output of the program.
backtrace() { # logfile settings...
  local log=$1; shift
  local args=(-q -batch -ex 'set startup-with-shell off' -ex 'set pagination off' -ex 'set print thread-events off'
    -ex "set environment LD_PRELOAD=$FAILALLOC")
  local kv
  for kv in "$@" "${PENV[@]}"; do args+=(-ex "set environment $kv"); done
  args+=(-ex run -ex bt --args "${CMD[@]}")
  timeout 600 gdb "${args[@]}" >"$log" 2>&1
  if grep -qE '^#0 ' "$log"; then
    # Where it went wrong: below the outermost frame of Rust's abort machinery (its
    # allocation-failure hook allocates too, so the same abort can nest), the first frames
    # with a name; frames in the module are what matters.
    echo "      backtrace ($log):"
    grep -E '^#[0-9]+ ' "$log" | awk '
      /handle_alloc_error|rust_oom|__rust_panic_cleanup|rust_panic_with_hook|begin_panic_handler|abort_internal|process::abort/ { n = NR }
      { line[NR] = $0 }
      END { for (i = n + 1; i <= NR && shown < 10; i++)
              if (line[i] !~ / in \?\? \(\)|catch_unwind|__rust_try|call_once|unwind_safe/) { print line[i]; shown++ } }' |
      sed -E 's/ \(.*\) at / at /; s/^/        /' | cut -c1-220
  else
    echo "      backtrace: the rerun under gdb did not crash ($log)"
  fi
}

# One run; adds to the totals. Arguments: lua program label valgrind(0/1) settings...
run_one() {
  local lua=$1 prog=$2 label=$3 vg=$4; shift 4
  local log="$OUT/$lua/$prog-$label.log" rc limit=$TIMEOUT
  local cmd=("${CMD[@]}")
  local extra=()
  if [ "$vg" = 1 ]; then
    limit=${FAULTS_TIMEOUT:-1800}
    local xml="$OUT/$lua/$prog-$label.xml"
    cmd=(valgrind --tool=memcheck --soname-synonyms=somalloc=nouserintercepts --leak-check=full
      --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --num-callers=40
      --keep-debuginfo=yes --suppressions="$root/tests/memcheck/lua.supp" --xml=yes --xml-file="$xml"
      --log-file="$OUT/$lua/$prog-$label.valgrind.log" "${cmd[@]}")
    [ "$lua" = luajit ] && cmd=("${cmd[0]}" --smc-check=all-non-file "${cmd[@]:1}")
    extra=(ECHO_SECONDS=60)
  fi
  local started=$SECONDS
  # The braces take bash's own "Aborted" / "Segmentation fault" notice off the terminal: the
  # verdict line says it.
  { timeout -k 10 "$limit" env LD_PRELOAD="$FAILALLOC" FAILALLOC_WAIT=1 FAILALLOC_VERBOSE=1 "$@" "${PENV[@]}" \
    "${extra[@]}" "${cmd[@]}" >"$log" 2>&1 </dev/null; } 2>/dev/null
  rc=$?
  judge "$rc" "$log" "$prog"
  if [ "$vg" = 1 ]; then
    local counts
    counts=$(attribute "$OUT/$lua/$prog-$label.xml" "$LIB/luaevent/core.so")
    local module=${counts%% *} rest=${counts#* }
    if [ "$module" != 0 ]; then
      [ "$VERDICT" = FAIL ] && DETAIL="$DETAIL; " || DETAIL=""
      VERDICT=FAIL; DETAIL="${DETAIL}valgrind: $module error(s) attributed to luaevent.core: $rest"
    else DETAIL="valgrind: 0 errors attributed to luaevent.core ($rest); $DETAIL"; fi
  fi
  local elapsed=$((SECONDS - started))
  [ "$VERDICT" = PASS ] && [ "${QUIET_PASS:-0}" = 1 ] ||
  printf '%-8s %-4s %s %-6s %s: %s (injected %s, %d s)\n' "$VERDICT" "$lua" "$prog" "$label" "$*" "$DETAIL" "$INJECTED" "$elapsed" |
    sed -E 's/FAILALLOC_//g'
  TOTAL_INJECTED=$((TOTAL_INJECTED + INJECTED))
  case $VERDICT in
    PASS) passed=$((passed + 1)); P_PASS=$((P_PASS + 1)) ;;
    NOINJECT) failed=$((failed + 1)); P_NOINJECT=$((P_NOINJECT + 1)); status=1 ;;
    FAIL) failed=$((failed + 1)); P_FAIL=$((P_FAIL + 1)); status=1
      P_KINDS+=("$(echo "$DETAIL" | sed -E 's/"memory allocation of [0-9]+ bytes failed"/"memory allocation of N bytes failed"/')")
      repro_line "$lua" "FAILALLOC_WAIT=1" "$@"
      echo "      log: $log"
      [ "$BACKTRACE" = 1 ] && [ "$vg" = 0 ] && [ "$rc" -gt 128 ] && [ "$rc" -ne 137 ] &&
        backtrace "$OUT/$lua/$prog-$label.gdb" FAILALLOC_WAIT=1 "$@" ;;
  esac
}

# Counts valgrind errors with a frame in the module: prints "<module errors> <description>".
attribute() { # xml so
  [ -f "$1" ] || { echo "1 no valgrind report"; return; }
  perl -e '
    my ($file, $so) = @ARGV;
    local $/; open(my $fh, "<", $file) or die; my $xml = <$fh>;
    my ($module, $other, %kinds) = (0, 0);
    for my $err ($xml =~ m{<error>(.*?)</error>}gs) {
      my ($kind) = $err =~ m{<kind>(.*?)</kind>}s;
      next if $kind eq "Leak_PossiblyLost";
      if (grep { $_ eq $so } ($err =~ m{<obj>(.*?)</obj>}gs)) { $module++; $kinds{$kind}++ } else { $other++ }
    }
    my $complete = $xml =~ m{</valgrindoutput>} ? "" : ", report incomplete";
    print "$module " . join(" ", map { "$_=$kinds{$_}" } sort keys %kinds) . ($module ? "; " : "") . "$other not attributed$complete\n";
  ' "$1" "$2"
}

# Counts the allocations of a whole run with the shim armed and failing nothing; sets COUNT
# and MMAPS. The run must not crash (it is the program's baseline). The busted programs (specs,
# misuse) vary from run to run (misuse: 40,000 to 290,000 allocations on LuaJIT, as a call that
# loads the system's certificates happens or not), so they are counted three times and the
# smallest count is taken: points chosen from a long baseline can lie past the end of a short run.
calibrate() { # lua prog
  local tries=1 try counts=() best_count="" best_mmaps=""
  case $2 in specs | misuse) tries=3 ;; esac
  for ((try = 1; try <= tries; try++)); do
    calibrate_once "$1" "$2" || return 1
    counts+=("$COUNT")
    if [ -z "$best_count" ] || [ "$COUNT" -lt "$best_count" ]; then best_count=$COUNT best_mmaps=$MMAPS; fi
  done
  COUNT=$best_count MMAPS=$best_mmaps
  local of=""
  [ "$tries" -gt 1 ] && of=" (the smallest of ${counts[*]})"
  echo "baseline $1 $2: $COUNT allocations and $MMAPS anonymous mmaps after arming$of"
}

calibrate_once() { # lua prog
  local log="$OUT/$1/$2-baseline.log"
  { timeout -k 10 "$TIMEOUT" env LD_PRELOAD="$FAILALLOC" FAILALLOC_WAIT=1 FAILALLOC_SKIP=999999999999 \
    "${PENV[@]}" "${CMD[@]}" >"$log" 2>&1 </dev/null; } 2>/dev/null
  local rc=$? report
  report=$(grep -aoE 'failalloc: pid [0-9]+ counted .*' "$log" | tail -n 1)
  COUNT=$(echo "$report" | sed -nE 's/.* counted ([0-9]+) .*/\1/p')
  MMAPS=$(echo "$report" | sed -nE 's/.* mmaps ([0-9]+) .*/\1/p')
  local ok=1
  [ "$rc" -eq 0 ] || ok=0
  grep -qaE "$(pass_line "$2")" "$log" || ok=0
  if [ "$ok" = 0 ] || [ -z "$COUNT" ] || [ "$COUNT" -eq 0 ]; then
    echo "FAIL     $1 $2 baseline (no failure injected): exit status $rc, ${COUNT:-no} allocations counted, $(grep -qaE "$(pass_line "$2")" "$log" && echo "its verdict line" || echo "NO verdict line \"$(pass_line "$2")\""); log $log"
    failed=$((failed + 1)); status=1
    return 1
  fi
}

alloc_sweep() { # lua
  local lua=$1 prog runs k
  for prog in $PROGRAMS; do
    program "$lua" "$prog" "$LIB"
    calibrate "$lua" "$prog" || continue
    local count=$COUNT mmaps=$MMAPS
    runs=$RUNS
    [ "$prog" = echo ] && runs=$((RUNS * 2))
    P_PASS=0 P_FAIL=0 P_NOINJECT=0 P_KINDS=() TOTAL_INJECTED=0
    if [ "$prog" = api ] || [ "$prog" = tls_layer ]; then
      # Every allocation of the run fails in some run (for api every STRIDE-th one in the
      # quick run), alone and with the next one (Lua 5.4 retries a failed allocation once,
      # after an emergency collection: a burst of 2 makes Lua itself raise "not enough memory").
      local stride=${FAULTS_API_STRIDE:-$([ "$QUICK" = 1 ] && echo $(( count / 40 + 1 )) || echo 1)} skip burst
      [ "$prog" = tls_layer ] && stride=1
      runs=0
      QUIET_PASS=1
      for burst in 1 2; do
        for ((skip = 0; skip < count; skip += stride)); do
          run_one "$lua" "$prog" "s$skip-b$burst" 0 "FAILALLOC_SKIP=$skip" "FAILALLOC_BURST=$burst"
          runs=$((runs + 1))
        done
      done
      QUIET_PASS=0
    elif [[ $prog == tls_* ]]; then
      # A sampled sweep: point k fails at a random allocation of the k-th of `points` equal
      # slices of the run, alone or with the next one, in turn. The slices cover the first 80%
      # of the baseline: a run's count varies by about 5% (the connections part counts 77,395
      # or 81,434 on Lua 5.4, by how the handshakes interleave), so a point in the last few
      # percent may lie beyond the end of the run and inject nothing.
      local points
      case $prog in tls_contexts) points=${TLS_POINTS%% *} ;; tls_store) points=$(echo "$TLS_POINTS" | cut -d' ' -f2) ;;
        *) points=${TLS_POINTS##* } ;; esac
      local slice=$(( count * 8 / 10 / points + 1 )) skip
      runs=0
      for ((k = 0; k < points; k++)); do
        rand "$slice"; skip=$(( k * slice + R ))
        run_one "$lua" "$prog" "s$skip-b$((k % 2 + 1))" 0 "FAILALLOC_SKIP=$skip" "FAILALLOC_BURST=$((k % 2 + 1))"
        runs=$((runs + 1))
      done
    fi
    [ "$prog" = api ] || [[ $prog == tls_* ]] || for ((k = 1; k <= runs; k++)); do
      local settings=() skip burst
      # Runs are spread over the whole program: run k starts failing in the k-th slice of its
      # allocations (the first 80%, so that a run that goes a little differently still fails some).
      local slice=$(( count * 8 / 10 / runs + 1 ))
      rand "$slice"; skip=$(( (k - 1) * slice + R ))
      pick 1 1 2 3 4 8 32; burst=$R
      if [ "$lua" = luajit ] && [ $((k % 4)) -eq 2 ] && [ "${mmaps:-0}" -gt 0 ]; then
        # LuaJIT's own heap: fail its anonymous mmaps, so that Lua code itself runs out of memory.
        # Early in the run: how many mmaps a run makes follows its collector's timing (misuse:
        # 29 in the baseline, 9 or fewer in some runs), and a later first failure can miss.
        rand $(( mmaps / 8 + 1 ))
        settings=(FAILALLOC_WHAT=mmap "FAILALLOC_SKIP=$R" "FAILALLOC_BURST=$burst")
        pick 0 1 2 5; [ "$R" -gt 0 ] && settings+=("FAILALLOC_PERIOD=$R")
      elif [ $((k % 4)) -eq 3 ]; then
        # About 3, 20 or 100 bursts in the run, at random points.
        pick 3 20 100
        settings=("FAILALLOC_SKIP=$skip" "FAILALLOC_BURST=$burst" "FAILALLOC_ODDS=$(( (count - skip) / R + 1))" "FAILALLOC_SEED=$k")
      else
        # One burst, or a burst every 1/8, 1/40 or 1/200 of the run's allocations (an odd
        # number, so that the bursts do not keep landing on the same step of a loop).
        pick 0 8 40 200
        settings=("FAILALLOC_SKIP=$skip" "FAILALLOC_BURST=$burst")
        [ "$R" -gt 0 ] && settings+=("FAILALLOC_PERIOD=$((count / R / 2 * 2 + 1))")
      fi
      run_one "$lua" "$prog" "run$k" 0 "${settings[@]}"
    done
    local kinds=""
    [ ${#P_KINDS[@]} -gt 0 ] && kinds=" [$(printf '%s\n' "${P_KINDS[@]}" | sed -E 's/;.*//' | sort | uniq -c | sed -E 's/^ *([0-9]+) /\1x /' | paste -sd, -)]"
    summary+=("$(printf '%-7s %-7s %3d runs: %3d pass, %3d FAIL%s, %d no injection; %d failures injected, from %d allocations a run' \
      "$lua" "$prog" "$runs" "$P_PASS" "$P_FAIL" "$kinds" "$P_NOINJECT" "$TOTAL_INJECTED" "$count")")
  done
}

valgrind_sample() { # lua
  local lua=$1 k prog
  command -v valgrind >/dev/null || { echo "FAIL     $lua valgrind sample: valgrind not installed"; failed=$((failed + 1)); status=1; return; }
  P_PASS=0 P_FAIL=0 P_NOINJECT=0 P_KINDS=() TOTAL_INJECTED=0
  declare -A VCOUNTS=()
  local saved_specs=$SPECS saved_calls=$MISUSE_CALLS
  # Smaller programs: valgrind is 20-50 times slower.
  SPECS="tests/spec/buffer_spec.lua tests/spec/event_spec.lua" MISUSE_CALLS=2000
  for ((k = 1; k <= VALGRIND_RUNS; k++)); do
    case $((k % 5)) in 1) prog=api ;; 2) prog=echo ;; 3) prog=misuse ;; 4) prog=specs ;; 0) prog=tls_connections ;; esac
    program "$lua" "$prog" "$LIB"
    # The smaller specs and misuse runs have their own allocation counts (counted natively:
    # valgrind allocates the same way, apart from a few calls of its own).
    if [ -z "${VCOUNTS[$prog]:-}" ]; then
      calibrate "$lua" "$prog" || continue
      VCOUNTS[$prog]=$COUNT
    fi
    local settings=() count=${VCOUNTS[$prog]}
    if [ "$prog" = api ] || [[ $prog == tls_* ]]; then
      # One failure point, as in the sweep; a burst of 2 lets Lua raise "not enough memory".
      rand "$count"; settings=("FAILALLOC_SKIP=$R" FAILALLOC_BURST=2)
    else
      pick 1 2 4 8; local burst=$R
      pick 8 40 200; local period=$(( count / R / 2 * 2 + 1 ))
      rand $(( count / 2 + 1 )); settings=("FAILALLOC_SKIP=$R" "FAILALLOC_BURST=$burst" "FAILALLOC_PERIOD=$period")
    fi
    run_one "$lua" "$prog" "valgrind$k" 1 "${settings[@]}"
  done
  SPECS=$saved_specs MISUSE_CALLS=$saved_calls
  summary+=("$(printf '%-7s %-7s %3d runs: %3d pass, %3d FAIL, %d no injection; %d failures injected' \
    "$lua" valgrind "$VALGRIND_RUNS" "$P_PASS" "$P_FAIL" "$P_NOINJECT" "$TOTAL_INJECTED")")
}

io_run() { # lua
  local lua=$1 log="$OUT/$1/io_faults.log"
  echo "-- $lua: io_faults.lua under iofault.so"
  timeout -k 10 120 env LD_PRELOAD="$IOFAULT" "LUA_CPATH=$LIB/?.so;;" "LUA_PATH=$LIB/?.lua;;" \
    "$lua" tests/faults/io_faults.lua >"$log" 2>&1 </dev/null
  local rc=$?
  sed 's/^/   /' "$log"
  local verdict=PASS why=""
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then verdict=FAIL why="hang: no end within 120 s"
  elif [ $rc -gt 128 ]; then verdict=FAIL why="died by $(signal_name $rc)"
  elif [ $rc -ne 0 ] || ! grep -qa '^io_faults: PASS' "$log"; then verdict=FAIL why=$(grep -a '^io_faults: FAIL' "$log" || echo "exit status $rc")
  fi
  if [ $verdict = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
  summary+=("$(printf '%-7s %-7s %s%s' "$lua" io_faults "$verdict" "${why:+: $why}")")
  echo "$verdict $lua io_faults${why:+: $why}"
}

echo "faults: seed $SEED, $([ "$QUICK" = 1 ] && echo quick || echo long) run, logs in $OUT"
for lua in "${interpreters[@]}"; do
  command -v "$lua" >/dev/null || { echo "FAIL     $lua not installed"; failed=$((failed + 1)); status=1; continue; }
  mkdir -p "$OUT/$lua"
  if [ "$BUILD" = release ]; then
    [ -f "build/$lua/luaevent/core.so" ] ||
      { echo "FAIL     build/$lua/luaevent/core.so missing (make build LUA=$lua)"; failed=$((failed + 1)); status=1; continue; }
    # A private copy, as the other reliability scripts do: a concurrent `make build` cannot
    # change the module under a running test.
    LIB="$work/$lua"
    mkdir -p "$LIB"
    cp -r "build/$lua/." "$LIB/"
  else
    # Stacks with file:line. Kept in build/faults/debug/<lua> so that repro lines work later.
    LIB="$root/build/faults/debug/$lua"
    mkdir -p "$LIB/luaevent"
    cargo build --locked --features "module $(feature_of "$lua")" >"$OUT/$lua/cargo.log" 2>&1 &&
      cp target/debug/libluaevent_core.so "$LIB/luaevent/core.so.tmp" && mv "$LIB/luaevent/core.so.tmp" "$LIB/luaevent/core.so" &&
      cp lua/luaevent.lua "$LIB/luaevent.lua" ||
      { echo "FAIL     $lua: debug build failed ($OUT/$lua/cargo.log)"; failed=$((failed + 1)); status=1; continue; }
  fi
  echo "== $lua ($BUILD build)"
  if [ "$ONLY" != io ]; then
    alloc_sweep "$lua"
    [ "$VALGRIND_RUNS" -gt 0 ] && valgrind_sample "$lua"
  fi
  [ "$ONLY" != alloc ] && io_run "$lua"
done

echo "== faults summary"
for line in "${summary[@]}"; do echo "$line"; done
echo "faults: $passed passed, $failed failed"
[ $status -eq 0 ] && echo "faults: PASS" || echo "faults: FAIL"
exit $status
