-- A program that uses every function of luaevent.core and luaevent correctly, with the types the
-- reference gives. The LuaLS definitions must accept it without a warning
-- (tests/spec/types_spec.lua runs emmylua_check on it); every `---@type` below pins a return type.
local core = require "luaevent.core"
local luaevent = require "luaevent"

---@type string, string, string
local name, version, libevent = core._NAME, core._VERSION, core.libevent_version()
---@type integer
local mask = core.EV_READ + core.EV_WRITE + core.EV_TIMEOUT + core.EV_SIGNAL + core.EV_PERSIST
  + core.EVBUFFER_READ + core.EVBUFFER_WRITE + core.EVBUFFER_EOF + core.EVBUFFER_ERROR + core.EVBUFFER_TIMEOUT

---@type luaevent.core.Base
local base = core.new()

-- Callbacks: a function, a callable table, a coroutine.wrap function.
---@type luaevent.core.Event
local timer = base:addevent(nil, core.EV_TIMEOUT, function(what)
  if what == core.EV_TIMEOUT then return core.LEAVE end
  return core.EV_READ, 0.5
end, 0.01)
local handler = setmetatable({ calls = 0 }, { __call = function(self, what) self.calls = self.calls + 1 end })
local on_fd = base:addevent(0, core.EV_READ, handler)
local resumer = coroutine.wrap(function(what) coroutine.yield() end)
local on_signal = base:addevent(10, core.EV_SIGNAL, resumer)
---@type luaevent.core.Fd
local socket_like = { getfd = function(self) return 3 end }
local on_socket = base:addevent(socket_like, core.EV_WRITE, print, 1)
timer:close()
on_fd:close()
on_signal:close()
on_socket:close()

---@type integer, integer, string
local looped, exited, method = base:loop(), base:loopexit(0.5), base:method()
base:loopexit()

---@type luaevent.core.Buffer
local buf = core.buffer.new()
---@type integer
local added = buf:add("text", 42, core.buffer.new())
---@type integer
local length = buf:length() + #buf
---@type string
local data = buf:get_data() .. buf:get_data(3) .. buf:get_data(-3, -1) .. tostring(buf)
local line = buf:readline()
if line then print(line:upper()) end
buf:drain(2)
---@type integer, integer
local read, written = buf:read(0, 1024), buf:write(1)
buf:close()

---@type luaevent.core.BufferEvent
local bev = core.bufferevent.new(base, 0, function(b, what)
  ---@type luaevent.core.Buffer
  local input = b:get_read()
  b:get_write():add(input)
end, nil, function(b, what) b:close() end)
local baseless = core.bufferevent.new(0, nil, nil, handler)
bev:set_read_watermarks(0, 4096)
bev:set_write_watermarks(0)
bev:set_timeouts(1.5, nil)
---@type integer, integer
local enabled, disabled = bev:enable(core.EV_READ), bev:disable(core.EV_READ + core.EV_WRITE)
bev:close()
baseless:close()

-- The wrapper.
---@type string, string, string
local wname, wversion, wcore = luaevent._NAME, luaevent._VERSION, luaevent._CORE
---@type luaevent.core.Event
local wtimer = luaevent.addevent(nil, luaevent.core.EV_TIMEOUT, function() return core.LEAVE end, 0.1)
---@type luaevent.Socket
local sock = ...
---@type boolean
local started = luaevent.addthread(function(s)
  local ok, err = luaevent.connect(s, "127.0.0.1", 8080)
  local last, send_err, partial = luaevent.send(s, "hello", 1, 3)
  ---@type string?
  local got = luaevent.receive(s, "*l")
  local some = luaevent.receivePartial(s, 100)
  luaevent.flush(s)
  print(ok, err, last, send_err, partial, got, some)
end, sock)
---@type luaevent.core.Event
local server = luaevent.addserver(sock, function(client) client:close() end)
server:close()
---@type integer
local stopping = luaevent.loopexit() + luaevent.loopexit(0.5)
---@type luaevent.WrappedSocket
local wrapped = luaevent.wrap(sock)
wrapped:settimeout(0)
wrapped:connect("127.0.0.1", 8080)
wrapped:send("x")
---@type string?
local received = wrapped:receive(10)
wrapped:flush()
---@type integer
local closed = wrapped:close()
---@type integer
local result = luaevent.loop()

print(name, version, libevent, mask, looped, exited, method, added, length, data, read, written,
  enabled, disabled, wname, wversion, wcore, wtimer, started, received, closed, result, wrapped.socket, stopping)
