#!/bin/sh
# Called by the rockspecs' build_command: builds luaevent.core for the Lua interpreter luarocks
# targets and leaves it at target/rock/core.so for the rockspec's install table.
#   scripts/rock-build.sh LUA_INTERPRETER [ROCK_PREFIX]
# ROCK_PREFIX is luarocks' $(PREFIX), this rock's folder inside the tree being installed into;
# with it, the tree is first checked for a rock that would keep `require "luaevent.core"` for
# itself (scripts/rock-conflict.lua). The build honours CARGO (the cargo to run) and cargo's own
# settings, CARGO_TARGET_DIR among them.
set -eu
lua=${1:?usage: rock-build.sh LUA_INTERPRETER [ROCK_PREFIX]}
prefix=${2:-}
here=$(dirname "$0")
cargo=${CARGO:-cargo}

fail() {
  echo "luaevent-rs: $*" >&2
  exit 1
}

# What the user can fix in one step is checked before minutes of compiling.
command -v "$cargo" >/dev/null 2>&1 ||
  fail "building needs Rust's cargo (1.88 or newer) on the PATH: install it with rustup (https://rustup.rs), which puts it in ~/.cargo/bin, and run luarocks again."
command -v pkg-config >/dev/null 2>&1 ||
  fail "building needs pkg-config to find libevent: install it (Debian: apt install pkg-config) and run luarocks again."
pkg-config --atleast-version=2 libevent_core 2>/dev/null || pkg-config --atleast-version=2 libevent 2>/dev/null ||
  fail "pkg-config finds no libevent 2: install libevent's development files (Debian: apt install libevent-dev), or add the folder of its libevent.pc to PKG_CONFIG_PATH, and run luarocks again."
pkg-config --atleast-version=3.0 openssl 2>/dev/null ||
  fail "pkg-config finds no OpenSSL 3 or newer: install its development files (Debian: apt install libssl-dev), or add the folder of its openssl.pc to PKG_CONFIG_PATH, and run luarocks again."
pkg-config --exists libevent_openssl 2>/dev/null ||
  fail "pkg-config finds no libevent_openssl: install a libevent built with OpenSSL support and its development files (Debian: apt install libevent-dev), and run luarocks again."

# Ask the interpreter itself, so LuaJIT (which reports _VERSION "Lua 5.1") is told apart.
version=$("$lua" -e 'print(rawget(_G, "jit") and "luajit" or _VERSION)')
case $version in
  luajit) feature=luajit ;;
  "Lua 5.1") feature=lua51 ;;
  "Lua 5.2") feature=lua52 ;;
  "Lua 5.3") feature=lua53 ;;
  "Lua 5.4") feature=lua54 ;;
  "Lua 5.5") feature=lua55 ;;
  *) fail "unsupported interpreter $lua ($version): luaevent-rs builds for Lua 5.1 to 5.5 and LuaJIT." ;;
esac

if [ -n "$prefix" ]; then
  "$lua" "$here/rock-conflict.lua" "$prefix" || exit 1
fi

# A release tarball carries its crates in vendor/ (scripts/dist.sh), and its .cargo/config.toml
# points cargo there: such a build must not reach for the network. A checkout fetches them from
# crates.io unless cargo's cache has them.
offline=
vendored=
if [ -d vendor ]; then
  offline=--offline
  # cargo tells a vendored crate's build apart by the crate's path, and luarocks unpacks every
  # build in a new folder: with a target folder of the user's, the crates are copied next to it
  # (one copy per Cargo.lock), so builds that share CARGO_TARGET_DIR share compiled crates too.
  if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    lock=$(cksum <Cargo.lock | cut -d ' ' -f 1)
    kept=$CARGO_TARGET_DIR/luaevent-rs-vendor/$lock
    if [ ! -d "$kept" ]; then
      mkdir -p "$CARGO_TARGET_DIR/luaevent-rs-vendor"
      copy=$(mktemp -d "$CARGO_TARGET_DIR/luaevent-rs-vendor/copy.XXXXXX")
      cp -R vendor/. "$copy/"
      mv -T "$copy" "$kept" 2>/dev/null || rm -rf "$copy" # another build got there first
    fi
    vendored="source.vendored-sources.directory=\"$kept\""
  fi
fi

# cargo names the file it built in its JSON messages; reading it from there finds the library
# wherever the target folder is (CARGO_TARGET_DIR, build.target-dir, a --target triple).
messages=$(mktemp)
trap 'rm -f "$messages"' EXIT
set -- build --release --locked --features "module $feature" --message-format=json-render-diagnostics
[ -z "$offline" ] || set -- "$@" "$offline"
[ -z "$vendored" ] || set -- "$@" --config "$vendored"
"$cargo" "$@" >"$messages"
library=$(grep -o '"[^"]*/libluaevent_core\.so"' "$messages" | tail -n 1 | tr -d '"')
[ -n "$library" ] && [ -f "$library" ] || fail "cargo built no libluaevent_core.so (see its output above)."

mkdir -p target/rock
cp "$library" target/rock/core.so
