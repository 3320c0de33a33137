-- luaevent-rs from a checkout: luaevent.core, the libevent binding for Lua, reimplemented in
-- Rust as a drop-in replacement for the C rock luaevent, with its coroutine wrapper `luaevent`.
--
-- `luarocks make` in the repository root picks this rockspec (LuaRocks ranks dev above 0.1.0)
-- and builds the working tree; `luarocks install --dev luaevent-rs` clones the main branch.
-- Unlike the release tarball, a checkout has no vendored crates: cargo takes them from its
-- cache or fetches them from crates.io. Building needs Rust's cargo 1.88 or newer on the PATH,
-- pkg-config, libevent 2 with its headers and libclang (Debian: pkg-config libevent-dev
-- libclang-dev); scripts/rock-build.sh names a missing cargo,
-- pkg-config or libevent in one sentence before compiling.
--
-- Everything below `source` must stay the same as in the release rockspec (tests/rock/run.sh
-- checks).
rockspec_format = "3.0"
package = "luaevent-rs"
version = "dev-1"
source = {
  url = "git+https://github.com/luaevent-rs/luaevent-rs.git",
  branch = "main",
}
description = {
  summary = "libevent binding for Lua (luaevent.core), reimplemented in Rust",
  detailed = [[
    A drop-in replacement for the C module luaevent 0.4.x: require "luaevent.core" and
    require "luaevent" work unchanged on Lua 5.1 to 5.5 and LuaJIT, with the C module's
    bufferevent, timeout and crash bugs fixed. luaevent.core._NAME and _VERSION say which
    module was loaded.
  ]],
  homepage = "https://github.com/luaevent-rs/luaevent-rs",
  issues_url = "https://github.com/luaevent-rs/luaevent-rs/issues",
  license = "MIT",
  labels = { "libevent", "event", "networking", "prosody" },
}
-- Built and tested on Linux (x86_64), the only platform the build script and specs cover.
supported_platforms = { "linux" }
dependencies = {
  "lua >= 5.1, < 5.6",
}
external_dependencies = {
  LIBEVENT = { header = "event2/event.h" },
  OPENSSL = { header = "openssl/ssl.h" }, -- OpenSSL 3 or newer, for TLS (Debian: libssl-dev)
}
build = {
  type = "command",
  build_command = [[sh scripts/rock-build.sh "$(LUA)" "$(PREFIX)"]],
  install = {
    lib = { ["luaevent.core"] = "target/rock/core.so" },
    lua = {
      ["luaevent"] = "lua/luaevent.lua",
      -- The LuaLS addon, at a path that does not change with the version:
      -- <tree>/share/lua/<version>/luaevent-rs/types (config.json and library/), see README.
      ["luaevent-rs.types.config"] = "types/config.json",
      ["luaevent-rs.types.library.luaevent"] = "types/library/luaevent.lua",
      ["luaevent-rs.types.library.luaevent.core"] = "types/library/luaevent/core.lua",
    },
  },
  -- doc/ (API reference, migration notes) is copied whole into the rock's folder;
  -- `luarocks show luaevent-rs` prints where.
  copy_directories = { "doc" },
}
-- `luarocks test` in the source folder builds the module for the interpreter luarocks targets
-- and runs the busted specs against it.
test = {
  type = "command",
  script = "tests/luarocks_test.lua",
}
