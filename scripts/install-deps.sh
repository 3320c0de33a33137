#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing luaevent-rs need, skipping those
# already installed, then Lua 5.5 (scripts/install-lua5.5.sh). Run as root. Rust (cargo) must already be on the PATH: Debian's own cargo
# is too old for mlua.
set -euo pipefail

packages=(
  pkg-config libevent-dev libclang-dev     # libevent-sys: pkg-config lookup and bindgen
  libssl-dev openssl                       # TLS: OpenSSL 3's headers; the command makes the specs' certificates
  gcc libc6-dev make                       # linking the cdylib; make (lua5.5: LuaSocket's build too)
  lua5.1 lua5.2 lua5.3 lua5.4 luajit       # the interpreters we build for (lua5.5: see the end)
  liblua5.4-dev                            # cargo test links the system Lua 5.4
  lua-socket lua-busted                    # the specs and examples
  lua-event                                # the C module, for the differential specs and bench
  lua-luv                                  # bench: luv, the other libuv-based event loop
  lua-sec                                  # bench: LuaSec (TLS over LuaSocket, as Prosody does it), Lua 5.1-5.4 and LuaJIT
  luarocks                                 # the rockspecs, make dist and the rock checks
  liblua5.1-0-dev liblua5.2-dev liblua5.3-dev libluajit-5.1-dev  # luarocks wants each Lua's headers (5.1: the real package, not the virtual liblua5.1-dev)
  valgrind gdb                             # make memcheck, make faults (valgrind sample, backtraces)
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && echo "cargo is in ~/.cargo/bin: add it to PATH" >&2
  echo "cargo not found: install Rust (rustup) first" >&2
  exit 1
fi
# The type checker the specs run on the LuaLS addon (tests/spec/types_spec.lua): EmmyLua's
# emmylua_check, which reads LuaLS annotations. Pinned, so that its diagnostics stay the ones the
# sample programs in tests/types/ expect; a fresh machine builds it once (a few minutes).
EMMYLUA_CHECK_VERSION=0.25.1
if [ "$(emmylua_check --version 2>/dev/null)" != "emmylua_check $EMMYLUA_CHECK_VERSION" ]; then
  echo "installing emmylua_check $EMMYLUA_CHECK_VERSION (cargo install)"
  cargo install --quiet --locked emmylua_check --version "$EMMYLUA_CHECK_VERSION"
fi
# Lua 5.5, which Debian 12 does not package: built from the lua-src crate and Debian's source
# packages, with LuaSocket and busted for it, into /usr/local (scripts/install-lua5.5.sh says
# how; a few seconds, and nothing on a second run).
bash "$(dirname "$0")/install-lua5.5.sh"
echo "dependencies ready"
