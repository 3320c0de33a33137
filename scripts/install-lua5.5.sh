#!/usr/bin/env bash
# Lua 5.5 for building and testing luaevent-rs on Debian 12, which packages no Lua 5.5: a
# standard `lua5.5` interpreter with LuaSocket and busted, from package registries only.
# Called by scripts/install-deps.sh (as root, after the Debian packages are in).
#
# The route, all under /usr/local (Lua 5.5's default search paths):
#   1. Lua 5.5.1's library sources from the lua-src crate (pinned below), fetched by `cargo vendor`
#      in a throwaway manifest. lua-src carries no stand-alone interpreter, so lua.c comes from
#      Debian's lua5.4 source package: it builds against the 5.5 headers (given llimits.h, where
#      5.5 keeps the output macros it uses) and gives the usual command line (-e, -l, -i, -v,
#      arg, LUA_INIT_5_5).
#      Installed: bin/lua5.5, include/lua5.5/ (the headers luarocks looks for, lua.h with a
#      comment that luarocks 3.8 needs to recognise it as 5.5's),
#      lib/liblua5.5.a and lib/liblua5.5.so.
#   2. The C modules built for 5.5 from Debian's source packages (their upstream tarballs; the
#      mirror need not have Debian's packaging files): LuaSocket 3.1.0 with its own makefile
#      (its Lua files too), LuaFileSystem (lfs) and lua-term's term.core. Debian's luasystem
#      source is missing from some mirrors, and busted only needs its three clock functions:
#      scripts/lua5.5/system_core.c stands in for its system.core.
#   3. The pure-Lua parts of busted and its helpers (penlight, luassert, say, cliargs, mediator,
#      dkjson, term, system) copied from the Debian packages' /usr/share/lua/5.4 into
#      share/lua/5.5, then each file compiled by lua5.5: 5.5 refuses assignments to a `for`
#      loop's control variable, and the few loops that do so (in penlight and busted) are
#      rewritten by scripts/lua5.5/compile_all.lua. Busted then runs as `lua5.5 /usr/bin/busted`
#      (Debian's runner script, the interpreter named), as tests/run starts it.
#   4. A luarocks configuration for 5.5 (/etc/luarocks/config-5.5.lua): luarocks 3.8 does not
#      know 5.5 by itself; with it, `luarocks --lua-version=5.5 install ...` works as for 5.4.
# A second run does nothing when lib/lua/5.5/luaevent-rs-lua5.5.stamp says this same recipe
# (this script, the stand-in, the Debian package versions) built what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
self=scripts/install-lua5.5.sh

LUA_SRC_CRATE=551.1.0   # lua-src's version: Lua 5.5.1
LUA_RELEASE=5.5.1
prefix=/usr/local
# The Debian packages whose /usr/share/lua/5.4 files busted needs under 5.5.
lua_packages=(lua-busted lua-luassert lua-say lua-penlight lua-cliargs lua-mediator lua-dkjson
  lua-inifile lua-term lua-system)
# The Debian source packages whose upstream tarballs give the C modules (and lua.c).
source_packages=(lua5.4 luasocket lua-filesystem lua-term)

recipe() {
  cksum <"$self"
  cksum <scripts/lua5.5/system_core.c
  cksum <scripts/lua5.5/compile_all.lua
  dpkg-query -W -f='${Package} ${Version}\n' "${lua_packages[@]}"
}
# 4. luarocks (written on every run: cheap, and nothing else depends on it).
# Debian's luarocks 3.8 finds lua5.5, liblua5.5.a and include/lua5.5 under /usr/local by itself,
# but has a configuration file only for the versions Debian packages: without one, 5.5 knows
# only the user's tree. This one gives it the trees that Debian's config-5.4.lua gives 5.4.
if command -v luarocks >/dev/null; then
  mkdir -p /etc/luarocks
  cat >/etc/luarocks/config-5.5.lua <<'EOF'
-- Written by luaevent-rs's scripts/install-lua5.5.sh for the Lua 5.5 in /usr/local, like
-- Debian's config-5.4.lua: rocks go to ~/.luarocks with --local, else to /usr/local.
rocks_trees = {
  home .. [[/.luarocks]],
  [[/usr/local]],
}
EOF
fi
stamp=$prefix/lib/lua/5.5/luaevent-rs-lua5.5.stamp
if [ -x "$prefix/bin/lua5.5" ] && [ -f "$stamp" ] && [ "$(recipe)" = "$(cat "$stamp")" ] &&
  "$prefix/bin/lua5.5" -v 2>&1 | grep -q "^Lua $LUA_RELEASE "; then
  echo "lua5.5: Lua $LUA_RELEASE, LuaSocket and busted already installed"
  exit 0
fi
started=$(date +%s)
echo "lua5.5: building Lua $LUA_RELEASE, LuaSocket, lfs and busted's modules for it (well under a minute)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "install-lua5.5: $*" >&2
  exit 1
}
jobs=$(nproc 2>/dev/null || echo 2)

# --- 1. Lua 5.5 ---------------------------------------------------------------------------------
mkdir -p "$work/crate"
cat >"$work/crate/Cargo.toml" <<EOF
[package]
name = "lua55-sources"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "lib.rs"

[dependencies]
lua-src = "=$LUA_SRC_CRATE"
EOF
touch "$work/crate/lib.rs"
(cd "$work/crate" && cargo vendor --quiet vendor >/dev/null) || fail "cargo could not fetch lua-src $LUA_SRC_CRATE"
lua_src=$work/crate/vendor/lua-src/lua-$LUA_RELEASE
[ -f "$lua_src/lua.h" ] || fail "lua-src $LUA_SRC_CRATE has no lua-$LUA_RELEASE folder"

# Debian's source packages: a deb-src entry for the Debian mirror in use, added once.
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      >/etc/apt/sources.list.d/luaevent-rs-deb-src.sources
  else
    grep -hE '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' >/etc/apt/sources.list.d/luaevent-rs-deb-src.list
  fi
  apt-get update -qq
fi
mkdir -p "$work/debian"
chmod 777 "$work/debian" # apt downloads as its own user where it can
# Only the upstream tarballs are used: a mirror missing Debian's packaging files is no failure.
(cd "$work/debian" && apt-get source --download-only -qq "${source_packages[@]}" >/dev/null 2>&1) || true
unpack() { # source package: unpacks its upstream tarball, prints the folder
  local tarball
  tarball=$(ls "$work/debian/$1"_*.orig.tar.* 2>/dev/null | head -n 1)
  [ -n "$tarball" ] || fail "apt-get source $1 gave no upstream tarball (is there a deb-src entry?)"
  mkdir -p "$work/src/$1"
  tar -xf "$tarball" -C "$work/src/$1" --strip-components=1
  echo "$work/src/$1"
}
lua_c=$(unpack lua5.4)/src/lua.c

mkdir -p "$work/lua"
cp "$lua_src"/*.c "$lua_src"/*.h "$work/lua/"
cp "$lua_c" "$work/lua/lua.c"
(
  cd "$work/lua"
  cflags=(-O2 -Wall -fPIC -DLUA_USE_LINUX)
  ls *.c | grep -vx 'lua.c' | xargs -P "$jobs" -I{} gcc "${cflags[@]}" -c {}
  # 5.5 moved the output macros lua.c uses (lua_writestring...) into its llimits.h.
  gcc "${cflags[@]}" -include llimits.h -c lua.c -o lua.o.main
  library_objects=$(ls *.o)
  ar rcs liblua5.5.a $library_objects
  gcc -shared -Wl,-soname,liblua5.5.so.0 -o liblua5.5.so.0.0.0 $library_objects -lm -ldl
  # The interpreter exports the C API to the modules it loads (-Wl,-E), as Debian's do.
  gcc -o lua5.5 lua.o.main liblua5.5.a -Wl,-E -lm -ldl
) || fail "building Lua $LUA_RELEASE failed"
install -d "$prefix/bin" "$prefix/include/lua5.5" "$prefix/lib" "$prefix/lib/lua/5.5" "$prefix/share/lua/5.5"
install -m 755 "$work/lua/lua5.5" "$prefix/bin/lua5.5"
install -m 644 "$lua_src"/{lua.h,luaconf.h,lualib.h,lauxlib.h} "$prefix/include/lua5.5/"
# luarocks 3.8 (Debian 12's) tells a lua.h's version by the text "LUA_VERSION_NUM <number>", which
# 5.5's lua.h computes instead (LUA_VERSION_MAJOR_N * 100 + ...): without that text it refuses to
# build any rock for 5.5 ("Failed finding Lua header files"). A comment gives it the text.
grep -qE 'LUA_VERSION_NUM[[:space:]]*505' "$prefix/include/lua5.5/lua.h" ||
  printf '\n/* LUA_VERSION_NUM 505: the text LuaRocks 3.8 (Debian 12) looks for to tell the version. */\n' \
    >>"$prefix/include/lua5.5/lua.h"
install -m 644 "$work/lua/liblua5.5.a" "$prefix/lib/"
install -m 755 "$work/lua/liblua5.5.so.0.0.0" "$prefix/lib/"
ln -sf liblua5.5.so.0.0.0 "$prefix/lib/liblua5.5.so.0"
ln -sf liblua5.5.so.0 "$prefix/lib/liblua5.5.so"
ldconfig
lua=$prefix/bin/lua5.5
"$lua" -v 2>&1 | grep -q "^Lua $LUA_RELEASE " || fail "the new lua5.5 does not say Lua $LUA_RELEASE"

# --- 2. C modules -------------------------------------------------------------------------------
cmodule() { # output sources...: a Lua 5.5 C module (its Lua symbols come from the interpreter)
  local output=$1
  shift
  mkdir -p "$(dirname "$output")"
  gcc -O2 -Wall -fPIC -shared -I"$prefix/include/lua5.5" -o "$output" "$@"
}
socket_dir=$(unpack luasocket)
make -s -C "$socket_dir/src" -j "$jobs" linux LUAV=5.5 LUAINC_linux="$prefix/include/lua5.5" >/dev/null ||
  fail "building LuaSocket failed"
make -s -C "$socket_dir/src" install-unix LUAV=5.5 prefix="$prefix" >/dev/null || fail "installing LuaSocket failed"
lfs_dir=$(unpack lua-filesystem)
# lfs 1.8.0 lists the versions whose file handle (luaL_Stream) it knows; 5.5's is the same as 5.4's.
grep -q 'LUA_VERSION_NUM <= 504' "$lfs_dir/src/lfs.c" &&
  sed -i 's/LUA_VERSION_NUM <= 504/LUA_VERSION_NUM <= 505/' "$lfs_dir/src/lfs.c"
cmodule "$prefix/lib/lua/5.5/lfs.so" "$lfs_dir/src/lfs.c" || fail "building lfs failed"
term_dir=$(unpack lua-term)
cmodule "$prefix/lib/lua/5.5/term/core.so" "$term_dir/core.c" || fail "building term.core failed"
cmodule "$prefix/lib/lua/5.5/system/core.so" scripts/lua5.5/system_core.c || fail "building system.core failed"

# --- 3. busted's Lua modules --------------------------------------------------------------------
# Only these files are compiled (and maybe rewritten), never other rocks in share/lua/5.5.
copied=$work/copied
: >"$copied"
for package in "${lua_packages[@]}"; do
  dpkg -L "$package" | grep '^/usr/share/lua/5\.4/.*\.lua$' | while read -r file; do
    target=$prefix/share/lua/5.5/${file#/usr/share/lua/5.4/}
    mkdir -p "$(dirname "$target")"
    cp -L "$file" "$target"
    printf '%s\0' "$target" >>"$copied"
  done
done
# Each file compiled by lua5.5; loops that assign to their control variable, which 5.5 refuses,
# are rewritten (scripts/lua5.5/compile_all.lua says how). LuaSocket's own Lua files are checked.
xargs -0 "$lua" scripts/lua5.5/compile_all.lua <"$copied" ||
  fail "some Lua modules above do not compile under Lua 5.5"
"$lua" -e 'for _, file in ipairs(arg) do assert(loadfile(file)) end' /dev/null "$socket_dir"/src/*.lua ||
  fail "LuaSocket's Lua files do not compile under Lua 5.5"

"$lua" -e 'require "socket"; require "lfs"; require "busted.runner"; require "system"; require "term"' ||
  fail "LuaSocket or busted does not load under lua5.5"
recipe >"$stamp"
echo "lua5.5: ready in $(($(date +%s) - started)) s"
