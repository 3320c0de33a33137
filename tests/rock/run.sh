#!/usr/bin/env bash
# The release checks: what a Lua user gets from the rockspecs, `make dist` and the README, and
# what happens next to the C rock luaevent. Prints one "ok - ..." or "not ok - ..." line per
# check (tests/run counts them), "skip - ..." for a spec that could not make its check here, notes
# on "# ..." lines, and last "rock: N ok, N not ok"; exits 0 when every check passed.
#   tests/rock/run.sh [INTERPRETER...]     default: lua5.1 lua5.2 lua5.3 lua5.4 lua5.5 luajit
# Expects build/lua5.4 (make build LUA=lua5.4) for the README's examples and busted.
#
# 1. README: its run commands set LUA_PATH and LUA_CPATH, every example is listed; the Examples
#    block and every lua block not announced as a fragment run as written; plain `busted` in
#    the repository root passes against build/lua5.4.
# 2. Both rockspecs pass `luarocks lint` and agree on everything but version and source.
# 3. `make dist` makes the tarball (crates vendored), the .src.rock and a rocks server.
# 4. For each interpreter, a rock installed from dist/, CARGO_TARGET_DIR outside the source:
#    lua5.4 by the README's install block, run as written as root into a /usr/local of its own
#    (a private mount namespace); the others into a new --tree, from the server, the rewritten
#    rockspec, or a copy of the .src.rock with dist/ out of sight. `require "luaevent.core"`
#    and `require "luaevent"` must then load that tree's files, named luaevent-rs.
# 5. With lua5.4: without cargo on the PATH the build stops with one sentence. Next to a stand-in
#    for the C rock made from Debian's lua-event files: C rock first, then ours (stops and says
#    what to run; doing it works); ours first, then the C rock (luarocks hands it the names; the
#    documented remedy gives them back); both kept in separate trees. `luarocks test` from the
#    checkout.
#
# dist and the installs run without network, in a new network namespace (`unshare -n`), when
# the machine allows it. Rocks only ever go into temporary trees or the private /usr/local: the
# system trees and Debian's lua-event are left alone.
set -u
cd "$(dirname "$0")/../.."

interpreters=("$@")
[ ${#interpreters[@]} -gt 0 ] || interpreters=(lua5.1 lua5.2 lua5.3 lua5.4 lua5.5 luajit)
has() { case " ${interpreters[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

checks_started=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/log

failures=0
passes=0
ok() { echo "ok - $*"; passes=$((passes + 1)); }
not_ok() {
  echo "not ok - $*"
  failures=$((failures + 1))
  sed 's/^/    | /' "$log" | tail -n 40
}
check() { # description command...: runs the command, its output in $log
  local description=$1
  shift
  if "$@" >"$log" 2>&1; then ok "$description"; else not_ok "$description"; fi
}
note_log() { sed 's/^/# /' "$log"; }
# The closing line (tests/run requires it, and that it agrees with the lines above), then the
# exit status: 0 when every check passed.
finish() {
  echo "rock: $passes ok, $failures not ok"
  [ "$failures" -eq 0 ]
  exit
}
# A busted run passes with exit status 0 and a summary of no failures, errors or pending specs.
busted_passed() { # status output-file
  [ "$1" -eq 0 ] && grep -qaE '^[0-9]+ success[^/]*/ 0 failures / 0 errors / 0 pending' "$2"
}
# Specs that could not make their check here (helpers.skip) become "skip - ..." lines, which
# tests/run counts.
busted_skips() { # output-file what
  grep -aE '^SKIP ' "$1" | sed "s|^SKIP |skip - $2: |"
}

version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
name=luaevent-rs-$version

offline=(unshare -n)
if ! unshare -n true 2>/dev/null; then
  offline=()
  echo "# unshare -n is not allowed here: dist and the installs run with the network in reach"
fi

# --- 1. README ----------------------------------------------------------------------------------
readme=$work/readme
mkdir -p "$readme"
check "README: every run command sets LUA_PATH and LUA_CPATH, every example is listed" \
  lua5.4 tests/rock/readme.lua README.md "$readme"
note_log
check "README: the Examples block runs as written" bash -e "$readme/examples.sh"
for block in "$readme"/lua-*.lua; do
  [ -e "$block" ] || continue
  check "README: lua block ${block##*/lua-} runs as written (on build/lua5.4)" \
    env LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" timeout 60 lua5.4 "$block"
done

# Plain `busted` in the repository root (the .busted file): the specs against build/lua5.4,
# which core_spec proves by the file it loaded and by _NAME.
busted_ok() {
  busted >"$log.out" 2>&1
  local status=$?
  cat "$log.out"
  busted_passed $status "$log.out"
}
check "README: busted in the repository root runs the specs against build/lua5.4, all passing (none pending)" busted_ok
busted_skips "$log.out" "busted in the repository root"
grep -aE '^[0-9]+ success' "$log.out" | tail -n 1 | sed 's/^/# /'

# --- 2. rockspecs -------------------------------------------------------------------------------
for rockspec in rockspec/luaevent-rs-*.rockspec; do
  check "luarocks lint $rockspec" luarocks lint "$rockspec"
done
same_rockspecs() { # release dev: every field but version and source compared
  lua5.4 - "$@" <<'LUA'
local function load_rockspec(file)
  local env = {}
  assert(loadfile(file, "t", env))()
  env.version, env.source = nil, nil
  return env
end
local function dump(value, indent)
  if type(value) ~= "table" then return string.format("%q", value) end
  local keys = {}
  for key in pairs(value) do keys[#keys + 1] = key end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local lines = {}
  for _, key in ipairs(keys) do
    lines[#lines + 1] = indent .. tostring(key) .. " = " .. dump(value[key], indent .. "  ")
  end
  return "{\n" .. table.concat(lines, "\n") .. "\n" .. indent:sub(3) .. "}"
end
local a, b = dump(load_rockspec(arg[1]), "  "), dump(load_rockspec(arg[2]), "  ")
if a ~= b then
  io.stderr:write(arg[1], ":\n", a, "\n", arg[2], ":\n", b, "\n")
  os.exit(1)
end
LUA
}
check "the release and dev rockspecs agree but for version and source" \
  same_rockspecs "rockspec/$name-1.rockspec" rockspec/luaevent-rs-dev-1.rockspec

# --- 3. make dist -------------------------------------------------------------------------------
# The one step that may use the network: `cargo vendor` needs every crate of Cargo.lock in
# cargo's cache, those of other platforms too (nothing to do once they are there).
cargo fetch --locked --quiet >/dev/null 2>&1 || echo "# cargo fetch failed: make dist says what is missing"
dist_ok() {
  "${offline[@]}" make --no-print-directory dist &&
    [ -f "dist/$name.tar.gz" ] && [ -f "dist/$name-1.src.rock" ] && [ -f "dist/$name-1.rockspec" ] &&
    tar -tzf "dist/$name.tar.gz" "$name/.cargo/config.toml" "$name/vendor/mlua/Cargo.toml" \
      "$name/rockspec/$name-1.rockspec" "$name/scripts/rock-build.sh" "$name/LICENSE" >/dev/null &&
    grep -q '"src"' dist/manifest && grep -q '"luaevent-rs"' dist/manifest
}
if ! check "make dist: $name.tar.gz with vendored crates, $name-1.src.rock, a rocks manifest" dist_ok; then
  echo "# without dist/ nothing more can be checked"
  finish
fi
sed -n '/^-r/s/^/# /p' "$log"

# --- 4. install for each interpreter ------------------------------------------------------------
lua_version_of() { case $1 in luajit) echo 5.1 ;; *) echo "${1#lua}" ;; esac; }
# LuaJIT is a Lua 5.1 to luarocks: the config file the README's LuaJIT block writes names it.
(cd "$work" && bash -e -c "$(grep '^printf ' "$readme/luajit.sh")") || echo "# no LuaJIT config from the README"
luarocks_for() { # interpreter: sets the array LUAROCKS, the luarocks command for it
  if [ "$1" = luajit ]; then
    LUAROCKS=(env "LUAROCKS_CONFIG=$work/luajit-config.lua" luarocks --lua-version=5.1)
  else
    LUAROCKS=(luarocks --lua-version="$(lua_version_of "$1")")
  fi
}
load_ok() { # interpreter want core-file wrapper-file cpath-templates path-templates
  LUA_CPATH="$5;;" LUA_PATH="$6;;" "$1" tests/rock/load_check.lua "$3" "$4" "$2"
}
tree_load_ok() { # interpreter want tree: with that tree's paths first, as `luarocks --tree path` puts them
  local v
  v=$(lua_version_of "$1")
  load_ok "$1" "$2" "$3/lib/lua/$v/luaevent/core.so" "$3/share/lua/$v/luaevent.lua" \
    "$3/lib/lua/$v/?.so" "$3/share/lua/$v/?.lua"
}
rock_dir_ok() { # tree lua-version: the rock's folder holds doc/; the LuaLS addon is at its fixed path
  local addon="$1/share/lua/$2/luaevent-rs/types"
  [ -f "$1/lib/luarocks/rocks-$2/luaevent-rs/$version-1/doc/api.md" ] &&
    [ -f "$addon/config.json" ] && [ -f "$addon/library/luaevent.lua" ] && [ -f "$addon/library/luaevent/core.lua" ]
}

# The three ways to install from dist/, shared out over the interpreters other than lua5.4.
# The .src.rock is a copy elsewhere, installed with dist/ out of sight: it must carry all it needs.
cp "dist/$name-1.src.rock" "$work/"
install_source() {
  case $1 in
    lua5.2) echo "$work/$name-1.src.rock" ;;
    lua5.3) echo "dist/$name-1.rockspec" ;;
    *) echo "--server=dist/ luaevent-rs" ;;
  esac
}
# Every rock build goes to one CARGO_TARGET_DIR outside the source, as a user would set it:
# the builds share the compiled crates, and the library must turn up there.
export CARGO_TARGET_DIR=$work/target
built_in_target_ok() { # the last build's library is in CARGO_TARGET_DIR, not older than $1
  [ -f "$CARGO_TARGET_DIR/release/libluaevent_core.so" ] && [ "$CARGO_TARGET_DIR/release/libluaevent_core.so" -nt "$1" ]
}
install_ok() { # interpreter tree install-arguments...
  local lua=$1 tree=$2
  shift 2
  touch "$work/stamp"
  luarocks_for "$lua"
  if [ "$1" = "$work/$name-1.src.rock" ] && [ ${#offline[@]} -gt 0 ]; then
    # dist/ hidden under an empty tmpfs, in a mount namespace of this command's own.
    unshare -m -n sh -c 'mount -t tmpfs hidden dist && exec "$@"' sh "${LUAROCKS[@]}" --tree="$tree" install "$@"
  else
    "${offline[@]}" "${LUAROCKS[@]}" --tree="$tree" install "$@"
  fi &&
    built_in_target_ok "$work/stamp" && rock_dir_ok "$tree" "$(lua_version_of "$lua")"
}

# The README's install block, as written, as root: into /usr/local, here a tmpfs in a mount
# namespace of its own (and no network). Then, in the same namespace, Lua's default paths must
# lead to that rock, ahead of Debian's lua-event.
readme_install_ok() {
  touch "$work/stamp"
  unshare -m -n bash -c '
    mount -t tmpfs luaevent-rs-readme /usr/local || exit 1
    bash -e "$1" || exit 1
    lua5.4 tests/rock/load_check.lua /usr/local/lib/lua/5.4/luaevent/core.so \
      /usr/local/share/lua/5.4/luaevent.lua "luaevent-rs $2" || exit 1
    [ -f /usr/local/lib/luarocks/rocks-5.4/luaevent-rs/$2-1/doc/api.md ]
  ' readme "$readme/install.sh" "$version" &&
    built_in_target_ok "$work/stamp" &&
    grep -qxF "luaevent-rs	$version	luaevent-rs $version" "$log.readme"
}

for lua in "${interpreters[@]}"; do
  started=$(date +%s)
  if [ "$lua" = lua5.4 ]; then
    if readme_install_ok >"$log.readme" 2>&1; then cp "$log.readme" "$log"; ok "lua5.4: the README's install block, run as written (as root, into a private /usr/local, no network)"
    else cp "$log.readme" "$log"; not_ok "lua5.4: the README's install block, run as written (as root, into a private /usr/local, no network)"; fi
    grep -a '^Lua 5.4: ' "$log" | sed 's/^/# /'
  else
    tree=$(mktemp -d "$work/tree-$lua.XXXX")
    source=$(install_source "$lua")
    # shellcheck disable=SC2086 # $source is the install's arguments
    check "$lua: luarocks install ${source/#$work\//a copy of the .src.rock with dist\/ hidden: } into a new tree, built in CARGO_TARGET_DIR, no network" \
      install_ok "$lua" "$tree" $source
    check "$lua: require loads the tree's own luaevent.core ($name) and luaevent" \
      tree_load_ok "$lua" "luaevent-rs $version" "$tree"
    note_log
    rm -rf "$tree"
  fi
  echo "# $lua: $(($(date +%s) - started)) s"
done

# --- 5. next to the C rock, with lua5.4 ---------------------------------------------------------
if ! has lua5.4; then
  echo "# the C rock checks and luarocks test run with lua5.4 only"
  finish
fi
lua=lua5.4
luarocks_for $lua
install_ours() { # tree
  "${offline[@]}" "${LUAROCKS[@]}" --tree="$1" install --server=dist/ luaevent-rs
}

# Without cargo the build stops at once with one sentence (PATH without ~/.cargo/bin).
no_cargo_ok() {
  local path=/usr/local/bin:/usr/bin:/bin
  PATH=$path command -v cargo >/dev/null && { echo "cargo is in $path too"; return 1; }
  ! PATH=$path "${LUAROCKS[@]}" --tree="$work/tree-no-cargo" make rockspec/luaevent-rs-dev-1.rockspec \
    >"$log.out" 2>&1 &&
    grep -qx "luaevent-rs: building needs Rust's cargo (1.88 or newer) on the PATH: .*" "$log.out" &&
    [ "$(grep -c '^luaevent-rs: ' "$log.out")" -eq 1 ]
}
check "luarocks make without cargo on the PATH fails at once, with one sentence that says so" no_cargo_ok
grep '^luaevent-rs: ' "$log.out" | sed 's/^/# /'

# A stand-in for the C rock luaevent: the same package name and modules, Debian's files.
c_rock_into() { # tree
  local stage
  stage=$(mktemp -d "$work/c-rock.XXXX")
  cp tests/rock/luaevent-0.4.6-1.rockspec "$stage/" &&
    cp -L /usr/lib/x86_64-linux-gnu/lua/5.4/luaevent/core.so /usr/share/lua/5.4/luaevent.lua "$stage/" &&
    (cd "$stage" && "${LUAROCKS[@]}" --tree="$1" make luaevent-0.4.6-1.rockspec)
}
tree=$(mktemp -d "$work/tree-c.XXXX")
stand_in_ok() { c_rock_into "$tree" && tree_load_ok $lua C "$tree"; }
check "the stand-in C rock installs, and require then loads the C module" stand_in_ok

# C rock first, then ours: the install stops before building, says what to run, and leaves the
# tree as it was.
remove_command="luarocks --lua-version=5.4 --tree=$tree remove luaevent"
stops_ok() {
  install_ours "$tree" >"$log.out" 2>&1
  local status=$?
  cat "$log.out"
  [ $status -ne 0 ] &&
    grep -qxF "    $remove_command" "$log.out" &&
    grep -qxF "    luarocks --lua-version=5.4 --tree=/opt/luaevent-rs install luaevent-rs" "$log.out" &&
    ! grep -q "Compiling" "$log.out" &&
    [ ! -d "$tree/lib/luarocks/rocks-5.4/luaevent-rs" ] &&
    tree_load_ok $lua C "$tree"
}
check "C rock first: installing ours stops before building, says to run '$remove_command', changes nothing" stops_ok
sed -n '/^luaevent-rs: /,/^$/s/^/# /p' "$log.out"
# doc/migrating.md quotes that message, for a tree /usr/local.
quoted_ok() {
  diff <(sed -n '/^  luaevent-rs: not installed/,/^  *luarocks .*install luaevent-rs$/s/^  //p' doc/migrating.md) \
    <(sed -n '/^luaevent-rs: not installed/,/^ *luarocks .*install luaevent-rs$/p' "$log.out" | sed "s|--tree=$tree |--tree=/usr/local |")
}
check "doc/migrating.md quotes that message as it is printed" quoted_ok
# Doing what it says: the printed command, then the same install, gives a tree that loads ours.
follow_ok() {
  $remove_command && install_ours "$tree" && tree_load_ok $lua "luaevent-rs $version" "$tree" &&
    rock_dir_ok "$tree" 5.4
}
check "C rock first: after the printed remove command the install goes through, and require loads ours" follow_ok

# Ours first (the tree above now), then the C rock: luarocks hands the C rock the module names
# without a word (no rockspec field can stop another rock's install). Removing the C rock, the
# documented remedy, gives ours its names back without a rebuild.
c_after_ours() { c_rock_into "$tree" && tree_load_ok $lua C "$tree"; }
check "ours first: the C rock installed after it takes the module names (luarocks' rule)" c_after_ours
remedy_ok() {
  "${LUAROCKS[@]}" --tree="$tree" remove luaevent && tree_load_ok $lua "luaevent-rs $version" "$tree"
}
check "ours first: luarocks remove luaevent gives the module names back to ours" remedy_ok

# Both kept: ours in a tree of its own, first on the paths, the C rock's tree after it.
c_tree=$(mktemp -d "$work/tree-c2.XXXX")
both_ok() {
  c_rock_into "$c_tree" &&
    load_ok $lua "luaevent-rs $version" "$tree/lib/lua/5.4/luaevent/core.so" "$tree/share/lua/5.4/luaevent.lua" \
      "$tree/lib/lua/5.4/?.so;$c_tree/lib/lua/5.4/?.so" "$tree/share/lua/5.4/?.lua;$c_tree/share/lua/5.4/?.lua" &&
    load_ok $lua C "$c_tree/lib/lua/5.4/luaevent/core.so" "$c_tree/share/lua/5.4/luaevent.lua" \
      "$c_tree/lib/lua/5.4/?.so;$tree/lib/lua/5.4/?.so" "$c_tree/share/lua/5.4/?.lua;$tree/share/lua/5.4/?.lua"
}
check "both kept, in separate trees: the tree first on the paths is the one loaded" both_ok

# Ours first, the C rock after it, then ours installed again: that stops with the message too
# (luarocks itself removes the installed copy of the same version before any rebuild).
reinstall_stops() {
  c_rock_into "$tree" || return 1
  install_ours "$tree" >"$log.out" 2>&1
  local status=$?
  cat "$log.out"
  [ $status -ne 0 ] &&
    grep -qxF "    luarocks --lua-version=5.4 --tree=$tree remove luaevent" "$log.out" &&
    tree_load_ok $lua C "$tree"
}
check "ours first, then the C rock: installing ours again stops and names the C rock to remove" reinstall_stops

# `luarocks test` from the checkout: builds for lua5.4 the rock's way (into the checkout's
# target/, as a user's would) and runs the specs.
luarocks_test_ok() {
  env -u CARGO_TARGET_DIR "${LUAROCKS[@]}" test >"$log.out" 2>&1
  local status=$?
  cat "$log.out"
  busted_passed $status "$log.out"
}
check "luarocks test runs the specs on lua5.4, all passing (none pending)" luarocks_test_ok
busted_skips "$log.out" "luarocks test"
grep -aE '^[0-9]+ success' "$log.out" | tail -n 1 | sed 's/^/# /'

echo "# release checks: $(($(date +%s) - checks_started)) s"
finish
