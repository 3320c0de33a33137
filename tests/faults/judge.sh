# The verdict of one fault run, sourced by tests/faults/run.sh (and tests/selftest/run.sh, which
# feeds it made-up runs). Bash; defines signal_name, pass_line and judge.

signal_name() { # exit status > 128
  case $1 in 132) echo SIGILL ;; 134) echo SIGABRT ;; 135) echo SIGBUS ;; 136) echo SIGFPE ;;
    137) echo SIGKILL ;; 139) echo SIGSEGV ;; *) echo "signal $(($1 - 128))" ;; esac
}

# The line a program prints at the end of a run that went well (an extended regex): api.lua,
# echo.lua and tls.lua (programs tls_<part>) print their PASS line; the busted runs (specs,
# misuse) go through tests/faults/busted.lua, whose last line gives busted's exit status, 0 when
# every spec passed.
pass_line() { # program
  case $1 in
    api | echo) echo "^$1: PASS\$" ;;
    tls_*) echo '^tls: PASS$' ;;
    specs | misuse) echo '^faults-busted: END status 0 ' ;;
  esac
}

# The verdict of a finished run from its exit status and output: sets VERDICT (PASS, NOINJECT
# or FAIL), DETAIL and INJECTED. Failing allocations make Lua errors and failing specs expected,
# so a run passes when it ended the way the program itself says it ended: api and echo with
# exit status 0 after their PASS line; specs and misuse with the "faults-busted: END status N"
# line and then exit status N. A run without that line vanished (an error that escaped every
# pcall, a C-level exit such as libevent's event_err, a crash) and fails, as does any death by a
# signal, a hang, Rust's allocation-failure or panic message, a Lua panic, or a FAIL verdict.
judge() { # rc log program
  local rc=$1 log=$2 prog=$3 report injected end said
  local name=${prog%%_*} # tls_contexts prints "tls: ..."
  report=$(grep -aoE 'failalloc: pid [0-9]+ counted .*' "$log" | tail -n 1)
  injected=$(echo "$report" | sed -nE 's/.* injected ([0-9]+) .*/\1/p')
  # A process that died writes no report: count the shim's line per failure instead.
  [ -n "$injected" ] || injected=$(grep -acE 'failalloc: failing ' "$log")
  INJECTED=${injected:-0}
  local why=()
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then why+=("HANG (no end within the timeout)")
  elif [ "$rc" -gt 128 ]; then why+=("died by $(signal_name "$rc")"); fi
  grep -qaE 'memory allocation of [0-9]+ bytes failed' "$log" &&
    why+=("Rust allocation-failure abort: \"$(grep -aoE 'memory allocation of [0-9]+ bytes failed' "$log" | head -n 1)\"")
  grep -qaE "panicked at|fatal runtime error|Rust cannot catch foreign exceptions" "$log" &&
    why+=("Rust: \"$(grep -aoE "(panicked at|fatal runtime error|Rust cannot catch foreign exceptions).{0,80}" "$log" | head -n 1)\"")
  grep -qaE 'PANIC: unprotected error' "$log" && why+=("Lua panic: \"$(grep -aoE 'PANIC: unprotected error.{0,60}' "$log" | head -n 1)\"")
  case $prog in
    echo | api | tls_*)
      if grep -qa "^$name: FAIL" "$log"; then why+=("$(grep -a "^$name: FAIL" "$log" | tail -n 1)")
      elif [ "$rc" -le 128 ] && ! grep -qaE "$(pass_line "$prog")" "$log"; then
        why+=("NO VERDICT: the run ended without its \"$name: PASS\" line (exit status $rc: $(last_words "$log"))")
      elif [ "$rc" -ne 0 ] && [ "$rc" -le 128 ]; then why+=("exit status $rc after \"$name: PASS\"")
      fi ;;
    specs | misuse)
      end=$(grep -aE '^faults-busted: END status [0-9]+ ' "$log" | tail -n 1)
      said=$(echo "$end" | sed -nE 's/^faults-busted: END status ([0-9]+) .*/\1/p')
      if [ "$rc" -le 128 ] && [ -z "$said" ]; then
        why+=("NO VERDICT: the run ended without busted's END line (exit status $rc: $(last_words "$log"))")
      elif [ "$rc" -le 128 ] && [ "$rc" -ne "$said" ]; then why+=("exit status $rc after \"$end\"")
      fi ;;
    *) why+=("unknown program $prog") ;;
  esac
  if [ ${#why[@]} -gt 0 ]; then
    VERDICT=FAIL; DETAIL=$(IFS=';'; echo "${why[*]}")
  elif [ "$INJECTED" -eq 0 ]; then
    VERDICT=NOINJECT; DETAIL="the shim injected nothing (exit status $rc)"
  else
    VERDICT=PASS
    case $prog in
      echo) DETAIL=$(grep -aE '^echo: connections' "$log" | tail -n 1 | sed -E 's/^echo: //') ;;
      api | tls_*) DETAIL=$(grep -aE "^$name: [0-9]+ steps" "$log" | tail -n 1 | sed -E "s/^$name: //") ;;
      *) DETAIL=$(grep -aE '^[0-9]+ successes? /' "$log" | tail -n 1 | sed -E 's/ : [0-9.]+ seconds//')
         DETAIL="exit status $rc; busted: ${DETAIL:-no summary}; ${end#faults-busted: END }" ;;
    esac
  fi
}

# The last line of a log that is not the shim's own, cut short: what the program said last.
last_words() { # log
  grep -avE '^failalloc: ' "$1" | grep -av '^[[:space:]]*$' | tail -n 1 | cut -c1-100
}
