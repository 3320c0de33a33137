#!/bin/sh
# Called by the rockspec: builds luaevent.core for the Lua interpreter luarocks targets and
# leaves it at target/rock/core.so for the rockspec's install table.
#   scripts/rock-build.sh /path/to/lua-interpreter
set -eu
lua=${1:?usage: rock-build.sh LUA_INTERPRETER}

# Ask the interpreter itself, so LuaJIT (which reports _VERSION "Lua 5.1") is told apart.
version=$("$lua" -e 'print(rawget(_G, "jit") and "luajit" or _VERSION)')
case $version in
  luajit) feature=luajit ;;
  "Lua 5.1") feature=lua51 ;;
  "Lua 5.2") feature=lua52 ;;
  "Lua 5.3") feature=lua53 ;;
  "Lua 5.4") feature=lua54 ;;
  *) echo "rock-build.sh: unsupported interpreter $lua ($version)" >&2; exit 1 ;;
esac

cargo build --release --locked --features "module $feature"
mkdir -p target/rock
cp target/release/libluaevent_core.so target/rock/core.so
