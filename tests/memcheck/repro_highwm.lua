-- luaevent.core over two libevent 2.1.12 problems of a bufferevent whose input reaches its read
-- high watermark while more data waits in the kernel (plain libevent: repro_libevent_highwm.c):
--   1. libevent runs the read callback again and again while the input stays at the high
--      watermark (libevent issue #891); the module stops reading until the input is drained, so
--      the callback runs once here;
--   2. libevent leaks the bufferevent when it is closed and its base freed without the loop
--      running again in between (the free is finished by a finalizer that only the loop runs);
--      the module runs one non-blocking loop round before freeing a base, so valgrind
--      --leak-check=full reports nothing lost.
--
--   LUA_CPATH="build/lua5.4/?.so;;" lua5.4 tests/memcheck/repro_highwm.lua
--   LUA_CPATH="build/lua5.4/?.so;;" valgrind --leak-check=full lua5.4 tests/memcheck/repro_highwm.lua
--
-- Exits 1 if the read callback spins (more than 100 calls in 0.2 s), else 0. Found by
-- tests/memcheck/run.sh (luajit, spec "never reads past the read high watermark"); the specs
-- "at the read high watermark" in tests/spec/bufferevent_spec.lua guard both fixes.
local core = require "luaevent.core"
local socket = require "socket"

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local a = assert(socket.connect("127.0.0.1", port))
local b = assert(server:accept())
server:close()
a:settimeout(0)
b:settimeout(0)
assert(a:send(("x"):rep(40000)) == 40000)
socket.sleep(0.05)

local base = core.new()
local calls = 0
local bev = core.bufferevent.new(base, b, function() calls = calls + 1 end, nil, function() end)
bev:set_read_watermarks(0, 10000)
bev:enable(core.EV_READ)
local stop = base:addevent(nil, core.EV_TIMEOUT, function() base:loopexit() return core.LEAVE end, 0.2)
base:loop()
print(string.format("read callback ran %d times in 0.2 s; the input holds %d bytes (high watermark 10000)",
  calls, #bev:get_read()))
bev:close() -- then the base goes without another loop
stop:close()
base = nil
a:close()
b:close()
collectgarbage()
collectgarbage()
os.exit(calls > 100 and 1 or 0, true)
