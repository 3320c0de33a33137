-- luaevent-rs: luaevent.core in Rust, a drop-in replacement for the C module, plus the
-- coroutine wrapper `luaevent`. Build from a checkout with
--   luarocks make rockspec/luaevent-rs-0.1.0-1.rockspec
-- (Rust's cargo must be on the PATH; crates come from cargo's cache or crates.io).
rockspec_format = "3.0"
package = "luaevent-rs"
version = "0.1.0-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "libevent binding for Lua (luaevent.core), reimplemented in Rust",
  detailed = [[
    A drop-in replacement for the C module luaevent 0.4.x: require "luaevent.core" and
    require "luaevent" work unchanged on Lua 5.1-5.4 and LuaJIT, with the C module's
    bufferevent, timeout and crash bugs fixed.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  LIBEVENT = { header = "event2/event.h" },
}
build = {
  type = "command",
  build_command = [[sh scripts/rock-build.sh "$(LUA)"]],
  install = {
    lib = { ["luaevent.core"] = "target/rock/core.so" },
    lua = { ["luaevent"] = "lua/luaevent.lua" },
  },
  copy_directories = { "doc", "types" },
}
