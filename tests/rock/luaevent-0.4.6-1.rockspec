-- A stand-in for the C rock luaevent 0.4.6, for tests/rock/run.sh: the same package name and
-- the same two modules, installed from Debian's lua-event files, which the test copies beside
-- it (building the C rock itself would need its sources from the network).
rockspec_format = "3.0"
package = "luaevent"
version = "0.4.6-1"
source = {
  url = "git+https://github.com/harningt/luaevent.git",
  tag = "v0.4.6",
}
description = {
  summary = "Stand-in for the C rock luaevent, from Debian's lua-event",
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
}
build = {
  type = "none",
  install = {
    lib = { ["luaevent.core"] = "core.so" },
    lua = { ["luaevent"] = "luaevent.lua" },
  },
}
