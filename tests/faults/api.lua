-- Every luaevent.core function once or twice, each step under pcall, meant to run under
-- failalloc with the failure point swept over every allocation of the run (tests/faults/run.sh
-- does: FAILALLOC_SKIP=0, 1, 2, ... with bursts of 1 and 2), so that each allocation the module,
-- libevent or Lua makes on the way fails in some run.
--
--   LD_PRELOAD=failalloc.so FAILALLOC_WAIT=1 FAILALLOC_SKIP=<n> FAILALLOC_BURST=2 lua5.4 tests/faults/api.lua
--
-- Steps: bases (core.new, loop, loopexit, method), timers and fd events with callbacks that
-- return new masks, raise errors and close events, buffers (add of strings, numbers and
-- buffers, get_data in every form, readline, drain, read, write, close), bufferevents (both
-- constructor forms, enable/disable, watermarks, timeouts, get_read/get_write, callbacks on real
-- traffic, close, collection), listeners and connections (accept, echo, refused, timed out,
-- closed and collected), resolvers (answers from a loopback DNS server, the hosts file and literals,
-- cancel, close and collection with lookups pending), argument errors (their messages are
-- built when they happen). TLS has a program of its own, tls.lua.
-- Errors are expected and counted. After the shim is disarmed, everything is dropped and
-- collected: then every fd opened by the module must be closed again. Prints "api: PASS", or
-- "api: FAIL (...)" when fds leaked.
local core = require "luaevent.core"

local EV_READ, EV_WRITE, EV_TIMEOUT = core.EV_READ, core.EV_WRITE, core.EV_TIMEOUT

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local sockets = dofile(here .. "sockets.lua")
local open_fds = sockets.open_fds
local pair = sockets.pairs_maker()
local a1, b1 = pair()
local a2, b2 = pair()
local a3, b3 = pair()
pair.close()
local other = core.buffer.new()
local dns_server = dofile("tests/spec/dns_server.lua")
local hosts_path = os.tmpname()
do
  local f = assert(io.open(hosts_path, "w"))
  f:write("192.0.2.1 fromhosts.test\n")
  f:close()
end
collectgarbage()
collectgarbage()
local fds_before = open_fds()

local steps, failures, callbacks = 0, 0, 0
local function step(f, ...)
  steps = steps + 1
  local ok = pcall(f, ...)
  if not ok then failures = failures + 1 end
end

local function round(k)
  local base, ev, timer, bev, bev2, buf
  step(function() base = core.new() end)
  step(function() timer = base:addevent(nil, EV_TIMEOUT, function() return core.LEAVE end, 0.001) end)
  step(function()
    ev = base:addevent(a1, EV_READ, function(what)
      local data = a1:receive(1)
      return EV_READ + EV_WRITE, 0.5 -- re-registered with a new mask and timeout
    end)
  end)
  step(function() assert(b1:send("x")) end)
  step(function() base:addevent(nil, EV_TIMEOUT, function() error("from a callback " .. k) end, 0) end)
  step(function() base:loopexit(0.01) end)
  step(function() base:loop() end)
  step(function() base:method() end)

  step(function() buf = core.buffer.new() end)
  step(function() buf:add("hello\r\n", 42, 1.5, string.rep("z", 5000)) end)
  step(function() other:add("moved in"); buf:add(other) end)
  step(function() return buf:get_data(), buf:get_data(3), buf:get_data(2, 4), buf:get_data(-3, -1), tostring(buf), #buf end)
  step(function() return buf:readline() end)
  step(function() buf:drain(3) end)
  step(function() return buf:write(b2), buf:read(a2, 100) end)
  step(function() buf:close() end)

  step(function()
    bev = core.bufferevent.new(base, a3, function(b) callbacks = callbacks + 1; b:get_write():add(b:get_read()) end,
      function() end, function(b) b:close() end)
  end)
  step(function() bev:enable(EV_READ) end)
  step(function() bev:set_read_watermarks(0, 65536); bev:set_write_watermarks(0, 0) end)
  step(function() bev:set_timeouts(1, 1) end)
  step(function() bev:get_write():add("ping " .. k) end)
  step(function() assert(b3:send("pong " .. k)) end)
  step(function() base:loopexit(0.02) end)
  step(function() base:loop() end)
  step(function() return b3:receive(6) end)
  step(function() bev:disable(EV_READ) end)
  step(function() base:loopexit() end)
  step(function() bev2 = core.bufferevent.new(b3, nil, nil, function() end) end) -- the seed's form
  step(function() return bev2:get_read(), bev2:get_write() end)

  -- Listening and connecting: accepted and connected bufferevents (the module's own sockets,
  -- closed with them), the messages of failed connections, a deadline, set_callbacks, getfd.
  local listener, client, refused, late
  step(function()
    listener = core.listener.new(base, { host = "127.0.0.1", backlog = 4 }, function(b, host, port)
      b:set_callbacks(function(s) s:get_write():add(s:get_read()) end, nil, function(s) s:close() end)
      b:enable(EV_READ)
    end)
  end)
  step(function() return listener:address() end)
  step(function() return listener:getfd(), listener:disable(), listener:enable() end)
  step(function()
    client = core.bufferevent.connect(base, "127.0.0.1", select(2, listener:address()), function(b)
      callbacks = callbacks + 1
      b:get_read():drain(-1)
    end, nil, function(b, what, message) if what ~= core.EVBUFFER_CONNECTED then b:close() end end, { timeout = 1 })
  end)
  step(function() client:get_write():add("before connect " .. k) end)
  step(function() refused = core.bufferevent.connect(base, "::1", 1, nil, nil, function(b, what, message) b:close() end) end)
  step(function() late = core.bufferevent.connect(base, "127.0.0.1", 1, nil, nil, function() end, { timeout = 0 }) end)
  step(function() base:loopexit(0.05) end)
  step(function() base:loop() end)
  step(function() client:set_callbacks(nil, nil, nil); return client:getfd() end)
  step(function() core.listener.new(base, { host = "127.0.0.1", port = select(2, listener:address()) }, print) end)
  step(function() core.listener.new(base, { nosuch = 1 }, print) end)
  step(function() core.bufferevent.connect(base, "127.0.0.1", 1, nil, nil, nil, { timeout = -1 }) end)
  step(function() listener:close() end)
  step(function() if client then client:close() end; if refused then refused:close() end end)
  -- `late` is left to the collector.
  listener, client, refused, late = nil, nil, nil, nil

  -- Argument errors: their messages are made when they happen.
  step(function() base:addevent("not an fd", EV_READ, print) end)
  step(function() base:addevent(nil, EV_TIMEOUT, print, -1) end)
  step(function() core.buffer.new():add({}) end)
  step(function() bev:enable(99) end)
  step(function() core.bufferevent.new(base, {}, nil, nil, print) end)

  -- Resolvers: answers from a loopback server, the hosts file and literals, a cancel, a close
  -- with lookups pending, and one left to the collector with a lookup pending.
  local server, resolver, doomed
  step(function() server = dns_server.start(base) end)
  step(function() resolver = core.dns.new(base, { nameservers = { server.address }, hosts = hosts_path, timeout = 0.05, attempts = 1 }) end)
  step(function() resolver:resolve("both.test", function(list) callbacks = callbacks + 1 end) end)
  step(function() resolver:resolve("fromhosts.test", function(list) callbacks = callbacks + 1 end, "inet") end)
  step(function() resolver:resolve("::1", function() end, "inet6") end)
  step(function() resolver:resolve("nxdomain.test", function() end) end)
  step(function() resolver:resolve("silent.test", function() end, "inet"):cancel() end)
  step(function() resolver:resolve(nil, print) end)
  -- Connecting by name: refused on both addresses, a name that does not exist, one closed
  -- while it resolves, one left to the collector while it resolves.
  step(function()
    core.bufferevent.connect(base, "both.test", 1, nil, nil, function(b, what, message) b:close() end, { dns = resolver, timeout = 1 })
  end)
  step(function() core.bufferevent.connect(base, "nxdomain.test", 1, nil, nil, function(b) b:close() end, { dns = resolver }) end)
  step(function() core.bufferevent.connect(base, "silent.test", 1, nil, nil, print, { dns = resolver }):close() end)
  step(function() core.bufferevent.connect(base, "silent.test", 1, nil, nil, print, { dns = resolver, timeout = 0.02 }) end)
  step(function() core.dns.new(base, { nameservers = { "nowhere" } }) end)
  step(function() base:loopexit(0.1) end)
  step(function() base:loop() end)
  step(function() resolver:resolve("silent.test", function() end, "inet") end)
  step(function() resolver:close() end)
  step(function() doomed = core.dns.new(base, { nameservers = { server.address } }) end)
  step(function() doomed:resolve("silent.test", function() end, "inet") end)
  step(function() base:loopexit(0.01) end)
  step(function() base:loop() end)
  step(function() server:close() end)
  server, resolver, doomed = nil, nil, nil

  step(function() bev:close() end)
  step(function() if ev then ev:close() end; if timer then timer:close() end end)
  -- bev2 and base are left to the collector.
  base, ev, timer, bev, bev2, buf = nil, nil, nil, nil, nil, nil
  step(collectgarbage)
end

os.getenv("FAILALLOC_ARM")
for k = 1, 2 do step(round, k) end
os.getenv("FAILALLOC_DISARM")

collectgarbage()
collectgarbage()
local fds_after = open_fds()
print(string.format("api: %d steps, %d raised, %d read callbacks; open fds before %d, after %d", steps, failures,
  callbacks, fds_before, fds_after))
for _, s in ipairs { a1, b1, a2, b2, a3, b3 } do s:close() end
os.remove(hosts_path)
local why = fds_after > fds_before and (fds_after - fds_before) .. " fd(s) leaked" or nil
print(why and ("api: FAIL (" .. why .. ")") or "api: PASS")
-- Flushed before the shim's own report at exit: when the failed allocation was stdout's buffer,
-- glibc keeps the line's end in a one-byte buffer until exit, after that report.
io.stdout:flush()
os.exit(why and 1 or 0, true)
