-- luaevent: a copas-like coroutine wrapper over one event base of luaevent.core.
--
-- Same API and coroutine behaviour as the 0.4.7 wrapper of the C module: each socket helper
-- retries while LuaSocket answers "timeout", suspending the calling coroutine until the socket
-- is readable or writable. Fixed here: the per-socket event table really is weak-keyed, a
-- wrapped socket can be closed before it ever waited, an event whose coroutine has ended
-- removes itself instead of resuming a dead coroutine, and send no longer loses data after
-- several partial writes.
--
-- Also unlike 0.4.7, no coroutine fails silently: an error raised by a coroutine the loop resumes,
-- or by an addserver handler before its first wait, stops luaevent.loop(), which raises it with
-- the coroutine's own traceback. A wait outside a coroutine says so, and luaevent.loopexit ends
-- the loop.

local core = require "luaevent.core"

local M = {
  _NAME = "luaevent",
  -- The API version this wrapper implements, as the C module's wrapper reports it.
  _VERSION = "0.4.7",
  -- Which core it runs on: "luaevent-rs 0.1.0", or "luaevent (C)" for the C module, which
  -- carries no _NAME of its own.
  _CORE = core._NAME and (core._NAME .. " " .. tostring(core._VERSION)) or "luaevent (C)",
  core = core,
}

local EV_READ, EV_WRITE, LEAVE = core.EV_READ, core.EV_WRITE, core.LEAVE
local unpack = table.unpack or unpack
local base = core.new()

-- socket -> the event that resumes the coroutine waiting on it. Weak keys: once a socket is
-- unreachable its event goes too (and is closed when collected).
local socket_events = setmetatable({}, { __mode = "k" })

local function pack(...)
  return { n = select("#", ...), ... }
end

-- A coroutine's error with the coroutine's own traceback (where the mistake is); the core adds
-- the traceback of the callback that resumed it. Error objects other than strings stay as they are.
local function with_traceback(co, err)
  if type(err) == "string" then
    return debug.traceback(co, err)
  end
  return err
end

-- An event callback that resumes the current coroutine with the fired bits. Whatever the
-- coroutine yields next (the event it waits for) becomes the event's new mask.
local function resumer(sock)
  local co = coroutine.running()
  -- The socket is held weakly: the event's callback is anchored in the registry, and a strong
  -- reference from it would keep the socket (and so its table entry) alive forever.
  local weak_sock = setmetatable({ sock }, { __mode = "v" })
  local function forget(close)
    local s = weak_sock[1]
    local event = s and socket_events[s]
    if event then
      socket_events[s] = nil
      -- A coroutine that failed cannot say LEAVE: close its event, or it would keep the loop
      -- running until the garbage collector found it.
      if close then event:close() end
    end
  end
  return function(...)
    -- The coroutine may have ended while waiting on another socket: this event is done.
    if coroutine.status(co) == "dead" then
      forget()
      return LEAVE
    end
    local results = pack(coroutine.resume(co, ...))
    if not results[1] then
      forget(true)
      error(with_traceback(co, results[2]), 0)
    end
    if coroutine.status(co) == "dead" then
      forget()
      return LEAVE
    end
    return unpack(results, 2, results.n)
  end
end

-- Whether the caller can wait: it runs in a coroutine (not the main program) that may yield.
local function can_wait()
  local co, is_main = coroutine.running()
  if co == nil or is_main then return false end
  return not coroutine.isyieldable or coroutine.isyieldable()
end

-- Suspends the calling coroutine until `sock` is ready for `event`. `name` is the function the
-- program called, for the error when there is no coroutine to suspend.
local function wait(sock, event, name)
  if not can_wait() then
    error(name .. ": the socket is not ready, and only a coroutine can wait for it: call "
      .. name .. " inside a function run by luaevent.addthread or an addserver handler", 0)
  end
  if not socket_events[sock] then
    socket_events[sock] = base:addevent(sock, event, resumer(sock))
  end
  coroutine.yield(event)
end

function M.addevent(...)
  return base:addevent(...)
end

-- On a partial write LuaSocket answers nil, "timeout", and the index of the last byte it sent,
-- so the next attempt starts right after that index. (The 0.4.7 wrapper added that index to its
-- start instead and skipped data after the second partial write.)
function M.send(sock, data, i, j)
  local from = i or 1
  while true do
    local last, err, sent = sock:send(data, from, j)
    if last or err ~= "timeout" then
      return last, err, sent
    end
    from = sent + 1
    wait(sock, EV_WRITE, "luaevent.send")
  end
end

function M.receive(sock, pattern, part)
  pattern = pattern or "*l"
  while true do
    local data, err
    data, err, part = sock:receive(pattern, part)
    if data or err ~= "timeout" then
      return data, err, part
    end
    wait(sock, EV_READ, "luaevent.receive")
  end
end

-- Like receive, but a byte-count read returns as soon as any data arrived. Partial "*l" and
-- "*a" reads are carried over to the next attempt (the 0.4.7 wrapper dropped them).
function M.receivePartial(sock, pattern)
  pattern = pattern or "*l"
  local data, err, part
  while true do
    if type(pattern) == "number" then
      data, err, part = sock:receive(pattern)
    else
      data, err, part = sock:receive(pattern, part)
    end
    if data or err ~= "timeout" or (type(pattern) == "number" and part ~= nil and part ~= "") then
      return data, err, part
    end
    wait(sock, EV_READ, "luaevent.receivePartial")
  end
end

function M.connect(sock, ...)
  sock:settimeout(0)
  local ok, err = sock:connect(...)
  if ok or err ~= "timeout" then
    return ok, err
  end
  wait(sock, EV_WRITE, "luaevent.connect")
  ok, err = sock:connect(...)
  if err == "already connected" then
    return 1
  end
  return ok, err
end

-- Kept for compatibility: sends are never buffered here.
function M.flush(sock) -- luacheck: ignore 212
end

-- Accepts clients on `sock`, running handler(client) in a coroutine of its own for each. A
-- handler that fails before its first wait stops the loop with its error (the server stays);
-- the returned event is the server: close it to stop accepting.
function M.addserver(sock, handler)
  local listening
  listening = M.addevent(sock, EV_READ, function()
    local _ = listening -- the callback holds its event: it stays registered until closed
    local client = sock:accept()
    if client then
      client:settimeout(0)
      local co = coroutine.create(handler)
      local ok, err = coroutine.resume(co, client)
      if not ok then error(with_traceback(co, err), 0) end
    end
  end)
  return listening
end

-- An error before the first wait is returned, as coroutine.resume returns it (0.4.7's contract);
-- one after a wait stops the loop.
function M.addthread(func, ...)
  return coroutine.resume(coroutine.create(func), ...)
end

local wrapped = {}
wrapped.__index = wrapped

function wrapped:connect(...)
  return M.connect(self.socket, ...)
end

function wrapped:send(data)
  return M.send(self.socket, data)
end

function wrapped:receive(pattern)
  if self.timeout == 0 then
    return M.receivePartial(self.socket, pattern)
  end
  return M.receive(self.socket, pattern)
end

function wrapped:flush()
  return M.flush(self.socket)
end

function wrapped:settimeout(timeout)
  self.timeout = timeout
end

function wrapped:close()
  local event = socket_events[self.socket]
  if event then
    socket_events[self.socket] = nil
    event:close()
  end
  return self.socket:close()
end

function M.wrap(sock)
  return setmetatable({ socket = sock }, wrapped)
end

function M.loop(...)
  return base:loop(...)
end

-- Makes luaevent.loop() return after `seconds` (nil: once the current callbacks have run).
function M.loopexit(seconds)
  return base:loopexit(seconds)
end

return M
