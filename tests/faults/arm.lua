-- busted helper for runs under tests/faults/failalloc.c (FAILALLOC_WAIT=1): loads what the
-- specs load, then arms the shim, so that allocations fail while the specs run rather than
-- while the interpreter, busted and the shared libraries start.
--
--   busted --helper=tests/faults/arm.lua tests/spec/...
require "luaevent.core"
require "socket"
pcall(require, "luaevent")
os.getenv("FAILALLOC_ARM")
