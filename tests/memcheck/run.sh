#!/usr/bin/env bash
# The busted spec suite, and small runs of the soak and load scripts, under valgrind memcheck for
# each interpreter. Every error valgrind reports is attributed: an error with a stack frame in
# luaevent.core (the module's .so, in any of its stacks: where it happened, where the block was
# allocated or freed) is this module's; the others are listed as not attributed.
#
#   tests/memcheck/run.sh [interpreter...]        default: lua5.4 luajit
#
# Exit status 0 when, for every interpreter and program: valgrind ran it to its end (it printed
# its summary: busted's counts, or the script's PASS/FAIL line; no signal, no timeout, and an
# exit status that is 0, or 1 after a summary that reports failures), and no error is
# attributed to the module (definite or indirect leaks, invalid reads/writes/frees, uses of
# uninitialised values, bad syscall params; "possibly lost" blocks are listed but do not fail).
# Errors not attributed to the module are listed; they fail the run only with MEMCHECK_STRICT=1.
# Failing specs and script FAIL verdicts are reported; they fail the run only with
# MEMCHECK_STRICT_SPECS=1 (timing specs may fail under valgrind's slowdown; make test and make
# load judge those). Specs that cannot make their check under valgrind print "SKIP <file>:<line>:
# <why>" (helpers.skip): listed, and counted in the summary line as "N skipped".
#
# Environment:
#   MEMCHECK_BUILD=debug|release  debug (default): `cargo build --features "module <lua>"` without
#                          --release, for file:line stacks; release: build/<lua>/luaevent/core.so
#                          (run `make build LUA=<lua>` first)
#   MEMCHECK_SO=<file>     check this luaevent/core.so instead of building one (one interpreter)
#   MEMCHECK_SCRIPTS=0     only the spec suite; by default the soak (scale 0.01), echo_load (200
#                          connections) and signals (20 signals) scripts also run under valgrind,
#                          and on lua5.4 the threads driver (tests/threads, 4 threads)
#   MEMCHECK_SPECS         busted arguments (default: tests/spec)
#   MEMCHECK_TIMEOUT       seconds per program before it is stopped and failed (3600)
#   MEMCHECK_OUT           where logs go (default: ${TMPDIR:-/tmp}/luaevent-memcheck)
#   MEMCHECK_STRICT=1      also fail on errors not attributed to the module
#   MEMCHECK_STRICT_SPECS=1  also fail on failing specs
#   VALGRIND, BUSTED, CARGO  the tools (valgrind, /usr/bin/busted, cargo)
#
# LuaJIT: Debian's luajit runs under valgrind unchanged (valgrind's default --smc-check, which is
# all-non-file, already covers code that the JIT writes into anonymous mappings; it is passed
# explicitly below). LuaJIT allocates Lua objects with its own allocator on top of mmap, so
# memcheck sees neither Lua objects nor their frees: on luajit the check covers the module's own
# (Rust) heap, libevent's heap and all syscalls, but not reads of freed Lua objects. Lua 5.4 uses
# malloc for everything, so there the check covers Lua objects too.
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)

VALGRIND=${VALGRIND:-valgrind}
BUSTED=${BUSTED:-/usr/bin/busted}
CARGO=${CARGO:-cargo}
BUILD=${MEMCHECK_BUILD:-debug}
SPECS=${MEMCHECK_SPECS:-tests/spec}
TIMEOUT=${MEMCHECK_TIMEOUT:-3600}
OUT=${MEMCHECK_OUT:-${TMPDIR:-/tmp}/luaevent-memcheck}
SUPP="$root/tests/memcheck/lua.supp"

interpreters=("$@")
[ ${#interpreters[@]} -gt 0 ] || interpreters=(lua5.4 luajit)

command -v "$VALGRIND" >/dev/null || { echo "memcheck: valgrind not found"; exit 2; }
mkdir -p "$OUT"

feature_of() {
  case $1 in lua5.1) echo lua51 ;; lua5.2) echo lua52 ;; lua5.3) echo lua53 ;; lua5.4) echo lua54 ;;
    luajit) echo luajit ;; *) return 1 ;; esac
}

# Puts luaevent/core.so and luaevent.lua for $1 under $OUT/$1/lib; prints the .so path.
prepare_module() {
  local lua=$1 feature lib="$OUT/$1/lib"
  feature=$(feature_of "$lua") || { echo "memcheck: unknown interpreter $lua" >&2; return 1; }
  rm -rf "$lib"
  mkdir -p "$lib/luaevent"
  if [ -n "${MEMCHECK_SO:-}" ]; then
    cp "$MEMCHECK_SO" "$lib/luaevent/core.so" || return 1
  elif [ "$BUILD" = debug ]; then
    # target/debug is shared by every feature set: copy the library right after its build.
    "$CARGO" build --locked --features "module $feature" >"$OUT/$lua/cargo.log" 2>&1 ||
      { cat "$OUT/$lua/cargo.log" >&2; echo "memcheck: debug build for $lua failed" >&2; return 1; }
    cp target/debug/libluaevent_core.so "$lib/luaevent/core.so"
  else
    [ -f "build/$lua/luaevent/core.so" ] ||
      { echo "memcheck: build/$lua/luaevent/core.so missing (make build LUA=$lua)" >&2; return 1; }
    cp "build/$lua/luaevent/core.so" "$lib/luaevent/core.so"
  fi
  cp lua/luaevent.lua "$lib/luaevent.lua"
  echo "$lib/luaevent/core.so"
}

# Reads valgrind's XML; prints one line per error and the totals as shell assignments on the
# last lines (module_errors, module_possible, other_errors, suppressed, total_errors,
# xml_complete, errors_listed_and_counted).
analyse() { # xml-file module-so
  perl -e '
    use strict; use warnings;
    my ($file, $so) = @ARGV;
    local $/; open(my $fh, "<", $file) or die "cannot read $file: $!"; my $xml = <$fh>; close $fh;
    sub unxml { my $s = shift // ""; $s =~ s/&lt;/</g; $s =~ s/&gt;/>/g; $s =~ s/&quot;/"/g; $s =~ s/&apos;/\x27/g; $s =~ s/&amp;/&/g; $s }
    my ($module, $possible, $other, $total, $nonleak) = (0, 0, 0, 0, 0);
    my %kinds;
    for my $err ($xml =~ m{<error>(.*?)</error>}gs) {
      my ($kind) = $err =~ m{<kind>(.*?)</kind>}s;
      my ($what) = $err =~ m{<what>(.*?)</what>}s;
      ($what) = $err =~ m{<xwhat>\s*<text>(.*?)</text>}s unless defined $what;
      $what = unxml($what);
      my @objs = map { unxml($_) } $err =~ m{<obj>(.*?)</obj>}gs;
      my $ours = grep { $_ eq $so } @objs;
      # Where it happened: the first frame in the module if any, else the first frame.
      my @frames = $err =~ m{<frame>(.*?)</frame>}gs;
      my $where = "";
      for my $f (@frames) {
        my ($obj) = $f =~ m{<obj>(.*?)</obj>}s; $obj = unxml($obj);
        next if $ours && $obj ne $so;
        my ($fn) = $f =~ m{<fn>(.*?)</fn>}s;
        my ($file) = $f =~ m{<file>(.*?)</file>}s;
        my ($line) = $f =~ m{<line>(.*?)</line>}s;
        $where = unxml($fn // "?") . (defined $file ? " (" . unxml($file) . ":" . ($line // "?") . ")" : " in $obj");
        last;
      }
      $total++;
      $nonleak++ unless $kind =~ /^Leak_/;
      my $label;
      if ($ours && $kind eq "Leak_PossiblyLost") { $possible++; $label = "module, possibly lost (not counted)"; }
      elsif ($ours) { $module++; $kinds{$kind}++; $label = "MODULE"; }
      else { $other++; $label = "not attributed"; }
      print "  [$label] $kind: $what\n      at $where\n";
    }
    my $suppressed = 0;
    for my $pair ($xml =~ m{<suppcounts>(.*?)</suppcounts>}gs) {
      for my $p ($pair =~ m{<pair>(.*?)</pair>}gs) {
        my ($count) = $p =~ m{<count>(\d+)</count>}; my ($name) = $p =~ m{<name>(.*?)</name>}s;
        $suppressed += $count; print "  suppressed $count x " . unxml($name) . "\n";
      }
    }
    my $complete = ($xml =~ m{</valgrindoutput>}) ? 1 : 0;
    # Every error other than a leak is listed once, and counted again at the end: the two agree.
    my ($counts) = $xml =~ m{<errorcounts>(.*?)</errorcounts>}s;
    my $counted = () = ($counts // "") =~ m{<pair>}g;
    print "errors_listed_and_counted=\"" . ($counted == $nonleak ? "1" : "0 ($nonleak listed, $counted counted)") . "\"\n";
    print "module_kinds=\"" . join(" ", map { "$_=$kinds{$_}" } sort keys %kinds) . "\"\n";
    print "module_errors=$module\nmodule_possible=$possible\nother_errors=$other\nsuppressed=$suppressed\ntotal_errors=$total\nxml_complete=$complete\n";
  ' "$1" "$2"
}

# No --error-exitcode: valgrind's exit status is then the program's own, which is judged too (the
# XML says which errors there were).
VALGRIND_ARGS=(--tool=memcheck
  --leak-check=full --show-leak-kinds=definite,indirect,possible
  --errors-for-leak-kinds=definite,indirect --num-callers=40
  --keep-debuginfo=yes --child-silent-after-fork=yes --suppressions="$SUPP" --gen-suppressions=all)

status=0
summary=()

# True when a program's summary line (busted's, or a script's PASS/FAIL) reports failures.
reports_failures() { # summary
  echo "$1" | grep -qE ': FAIL$' && return 0
  echo "$1" | grep -qE '^[0-9]+ success' && ! echo "$1" | grep -qE ' 0 failures / 0 errors'
}

# One program under valgrind, attributed and judged. Arguments: interpreter, label, the .so,
# NAME=VALUE settings for the program's environment, then the command (run with the module copy
# on LUA_CPATH / LUA_PATH). The settings go to valgrind's environment: valgrind does not follow
# an exec, so the command itself must be the interpreter.
# LUAEVENT_UNDER_VALGRIND=1 tells specs that measure resident memory to leave leaks to valgrind:
# its own allocator holds freed blocks back, so resident memory grows under it anyway.
memcheck_one() {
  local lua=$1 label=$2 so=$3; shift 3
  local settings=()
  while [ $# -gt 0 ] && [[ $1 == [A-Z]*=* ]]; do settings+=("$1"); shift; done
  local dir="$OUT/$lua/$label"
  mkdir -p "$dir"
  local xml="$dir/memcheck.xml" log="$dir/memcheck.log" out="$dir/output.txt"
  local extra=()
  [ "$lua" = luajit ] && extra+=(--smc-check=all-non-file)
  echo "-- $lua: $label"
  local started rc elapsed
  started=$(date +%s)
  # The braces keep bash's own "Segmentation fault" notice out: the "!!" line says it.
  { env "LUA_CPATH=$OUT/$lua/lib/?.so;;" "LUA_PATH=$OUT/$lua/lib/?.lua;;" "LUAEVENT_EXPECT_CORE=$so" \
    LUAEVENT_UNDER_VALGRIND=1 "${settings[@]}" timeout -k 30 "$TIMEOUT" "$VALGRIND" "${VALGRIND_ARGS[@]}" "${extra[@]}" \
      --xml=yes --xml-file="$xml" --log-file="$log" "$@" >"$out" 2>&1; } 2>/dev/null
  rc=$?
  elapsed=$(( $(date +%s) - started ))
  # What the program itself said: busted's summary, or the scripts' PASS/FAIL line.
  local verdict
  verdict=$(grep -aE '^[0-9]+ success|^[a-z_]+: (PASS|FAIL)$' "$out" | tail -n 1)
  echo "   valgrind exit status $rc after ${elapsed} s; program: ${verdict:-NO SUMMARY}"
  module_errors=0 module_possible=0 other_errors=0 suppressed=0 total_errors=0 xml_complete=0 module_kinds=""
  errors_listed_and_counted=0
  local report
  report=$(analyse "$xml" "$so") || { echo "!! cannot read $xml"; report=""; }
  echo "$report" | grep -vE '^(module_kinds|module_errors|module_possible|other_errors|suppressed|total_errors|xml_complete|errors_listed_and_counted)='
  eval "$(echo "$report" | grep -E '^(module_kinds|module_errors|module_possible|other_errors|suppressed|total_errors|xml_complete|errors_listed_and_counted)=')"
  # Specs that could not make their check under valgrind say so (helpers.skip): listed, counted.
  local skips
  skips=$(grep -acE '^SKIP ' "$out")
  grep -aE '^SKIP ' "$out" | sed 's/^SKIP /   skipped: /'
  local line
  line="$lua $label: $module_errors module errors${module_kinds:+ ($module_kinds)}, $module_possible module possibly-lost, $other_errors not attributed, $suppressed suppressed; ${verdict:-no summary}$([ "$skips" -eq 0 ] || echo ", $skips skipped"); ${elapsed} s"
  summary+=("$line")
  local fail=0
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "!! $lua $label: stopped after $TIMEOUT s"; fail=1
  elif [ "$rc" -gt 128 ]; then
    # valgrind ends itself by the signal that killed the program.
    echo "!! $lua $label: died by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo "NAL $((rc - 128))"); see $log"; fail=1
  elif [ "$rc" -ne 0 ] && ! { [ "$rc" -eq 1 ] && reports_failures "$verdict"; }; then
    # 1 is busted's or a script's exit after failures it reported; any other status came from
    # somewhere else (an error after the summary, a C-level exit, valgrind itself).
    echo "!! $lua $label: exit status $rc, which the program's summary does not explain (${verdict:-none}); see $out"; fail=1
  fi
  [ "$xml_complete" = 1 ] || { echo "!! $lua $label: valgrind's report is incomplete (crash or timeout)"; fail=1; }
  [ -n "$verdict" ] || { echo "!! $lua $label: the program printed no summary (crash?); see $out"; fail=1; }
  [ "$module_errors" -eq 0 ] || { echo "!! $lua $label: $module_errors errors attributed to luaevent.core"; fail=1; }
  if [ "${MEMCHECK_STRICT:-0}" = 1 ] && [ "$other_errors" -gt 0 ]; then echo "!! $lua $label: $other_errors errors not attributed"; fail=1; fi
  if [ "${MEMCHECK_STRICT_SPECS:-0}" = 1 ] && ! echo "$verdict" | grep -qE ' 0 failures / 0 errors|: PASS$'; then
    echo "!! $lua $label: the program reported failures"; fail=1
  fi
  if [ "$errors_listed_and_counted" != 1 ]; then
    echo "!! $lua $label: the errors valgrind listed and counted in its XML disagree: ${errors_listed_and_counted#0 }; see $xml"; fail=1
  fi
  [ $fail -eq 0 ] || status=1
  echo "   logs: $dir/"
}

for lua in "${interpreters[@]}"; do
  echo "== memcheck: $lua (${MEMCHECK_SO:+given }$BUILD build of luaevent.core)"
  command -v "$lua" >/dev/null || { echo "!! $lua not installed"; status=1; summary+=("$lua: not installed"); continue; }
  mkdir -p "$OUT/$lua"
  so=$(prepare_module "$lua") || { status=1; summary+=("$lua: build failed"); continue; }
  # shellcheck disable=SC2086 # MEMCHECK_SPECS is a list of busted arguments
  memcheck_one "$lua" specs "$so" "$lua" "$BUSTED" $SPECS
  if [ "${MEMCHECK_SCRIPTS:-1}" = 1 ]; then
    # Real traffic and garbage collection of every kind of object, then lua_close (the scripts
    # end with os.exit(code, true)), at sizes that valgrind runs in a minute or two.
    memcheck_one "$lua" soak "$so" SOAK_SCALE=0.01 SOAK_GC_EVERY=500 SOAK_RSS_BOUND_KIB=1000000 "$lua" tests/soak/soak.lua
    memcheck_one "$lua" echo_load "$so" LOAD_CONNECTIONS=200 LOAD_BYTES=16384 "$lua" tests/load/echo_load.lua
    memcheck_one "$lua" signals "$so" SIG_CONNECTIONS=20 SIG_SIGNALS=20 "$lua" tests/load/signals.lua
    # Four Lua states on four threads (tests/threads): the per-thread reserve freed with each
    # thread, nothing shared left behind. The driver embeds Lua 5.4.
    if [ "$lua" = lua5.4 ]; then
      if gcc -O2 -pthread -I/usr/include/lua5.4 -o "$OUT/$lua/threads-driver" tests/threads/threads.c -llua5.4; then
        memcheck_one "$lua" threads "$so" THREADS_SECONDS=120 "$OUT/$lua/threads-driver" "$OUT/$lua/lib" "$(pwd)/tests" 4
      else
        echo "!! $lua threads: cannot build tests/threads/threads.c"; status=1; summary+=("$lua threads: build failed")
      fi
    fi
  fi
done

echo "== memcheck summary"
for line in "${summary[@]}"; do echo "$line"; done
[ $status -eq 0 ] && echo "memcheck: PASS" || echo "memcheck: FAIL"
exit $status
