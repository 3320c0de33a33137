#!/usr/bin/env bash
# One command for the whole benchmark suite:
#
#   bench/run.sh [interpreter ...]          default: lua5.4 luajit
#   BENCH_QUICK=1 bench/run.sh              quick mode, about a minute per interpreter
#
# For each interpreter it runs every benchmark on this project's build (build/<interpreter>),
# Debian's C module (lua-event), luv (lua-luv) and raw libevent (bench/raw_echo.c, raw_accept.c) where they
# have an analogue, and the TLS servers against LuaSec (lua-sec) and raw libevent_openssl
# (bench/tls_accept.c), interleaved per repetition, and prints the table of medians, ratios and
# targets. Expects the builds to exist (make build LUA=<interpreter>); other settings are
# described at the top of bench/run.lua.
#
# Our module is copied to a temporary folder first, so a rebuild during the run cannot change
# what is measured; the header names the build file and its sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

DRIVER=${BENCH_DRIVER:-lua5.4}
if [ $# -gt 0 ]; then interpreters=("$@"); else interpreters=(lua5.4 luajit); fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gcc -O2 -o "$tmp/raw_echo" bench/raw_echo.c $(pkg-config --cflags --libs libevent)
gcc -O2 -o "$tmp/raw_accept" bench/raw_accept.c $(pkg-config --cflags --libs libevent)
gcc -O2 -o "$tmp/net_client" bench/net_client.c $(pkg-config --cflags --libs libevent)
gcc -O2 -o "$tmp/tls_client" bench/tls_client.c $(pkg-config --cflags --libs libevent_openssl openssl)
gcc -O2 -o "$tmp/tls_accept" bench/tls_accept.c $(pkg-config --cflags --libs libevent_openssl openssl)

# The TLS servers' certificate: ECDSA P-256, self-signed, made now (the client does not verify it).
mkdir "$tmp/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/certs/server.key" -out "$tmp/certs/server.pem" 2>/dev/null

# mem_conn holds thousands of connections at once (its size follows the limit: see run.lua).
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

for lua in "${interpreters[@]}"; do
  so=build/$lua/luaevent/core.so
  if [ ! -f "$so" ]; then
    echo "bench/run.sh: $so is missing: run 'make build LUA=$lua' first" >&2
    exit 1
  fi
  mkdir -p "$tmp/$lua/luaevent"
  cp "$so" "$tmp/$lua/luaevent/core.so"
  sum=$(sha256sum "$so" | cut -c1-16)
  BENCH_OURS="$tmp/$lua" \
  BENCH_OURS_LABEL="$so (sha256 $sum..., $(date -r "$so" '+%F %T'); measured from a copy)" \
  BENCH_RAW="$tmp/raw_echo" \
  BENCH_RAW_ACCEPT="$tmp/raw_accept" \
  BENCH_CLIENT="$tmp/net_client" \
  BENCH_TLS_CLIENT="$tmp/tls_client" \
  BENCH_RAW_TLS="$tmp/tls_accept" \
  BENCH_CERTS="$tmp/certs" \
    "$DRIVER" bench/run.lua "$lua"
  echo
done
