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

-- What a coroutine waiting on a connection yields, and what its wake passes first (telling it
-- from any other resume of the coroutine).
local WOKEN = {}

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
    -- Ended, or now waiting on a connection (dial, serve): this event is done.
    if coroutine.status(co) == "dead" or results[2] == WOKEN then
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

-- What is left of a read by `pattern` whose first attempt timed out with `part`. After each
-- wait it asks LuaSocket only for what is still missing, and the pieces are joined once at the
-- end: handing LuaSocket what came so far as its prefix (as 0.4.7 did) copies it again on every
-- attempt, which made a large read quadratic in the number of waits.
local function receive_rest(sock, pattern, part, name)
  -- A count (LuaSocket takes numeric strings too) includes what came already.
  local count = type(pattern) == "number" and pattern or tonumber(pattern)
  local parts, received = { part }, #part
  while true do
    wait(sock, EV_READ, name)
    local data, err, more = sock:receive(count and count - received or pattern)
    if data then
      parts[#parts + 1] = data
      return table.concat(parts)
    end
    more = more or ""
    parts[#parts + 1] = more
    received = received + #more
    if err ~= "timeout" then
      return nil, err, table.concat(parts)
    end
  end
end

function M.receive(sock, pattern, part)
  pattern = pattern or "*l"
  local data, err
  data, err, part = sock:receive(pattern, part)
  if data or err ~= "timeout" then
    return data, err, part
  end
  return receive_rest(sock, pattern, part, "luaevent.receive")
end

-- Like receive, but a byte-count read returns as soon as any data arrived. Partial "*l" and
-- "*a" reads are carried over to the next attempt (the 0.4.7 wrapper dropped them).
function M.receivePartial(sock, pattern)
  pattern = pattern or "*l"
  if type(pattern) ~= "number" then
    local data, err, part = sock:receive(pattern)
    if data or err ~= "timeout" then
      return data, err, part
    end
    return receive_rest(sock, pattern, part, "luaevent.receivePartial")
  end
  while true do
    local data, err, part = sock:receive(pattern)
    if data or err ~= "timeout" or (part ~= nil and part ~= "") then
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

------------------------------------------------------------------------------ connections ----
-- luaevent.dial and luaevent.serve: connections on the core's own bufferevents, no LuaSocket.
--
-- A connection is a table around one bufferevent. Its callbacks (held by the bufferevent, so the
-- pair is collected together) only record what happened and wake the coroutine waiting on it;
-- the methods do the work. At most one coroutine waits per role: "reader" (receive), "writer"
-- (send's back-pressure), "handshaker" (dial, starttls). While one waits, `waiting` holds the
-- connection, since nothing else may: the coroutine is referenced only by the callbacks; and
-- `sending` holds it until what send buffered has gone out. A connection nobody waits on, with
-- nothing left to send and nobody referring to it, is collected, and its socket closed.

local EVBUFFER_EOF, EVBUFFER_ERROR, EVBUFFER_TIMEOUT, EVBUFFER_CONNECTED =
  core.EVBUFFER_EOF, core.EVBUFFER_ERROR, core.EVBUFFER_TIMEOUT, core.EVBUFFER_CONNECTED

-- send waits while the output buffer holds more than this; reading from the socket pauses while
-- the input buffer holds this much that no receive has asked for.
local HIGH_WATER = 64 * 1024
-- How long a closed connection may take to hand its last bytes to a peer that takes none.
local LINGER = 30
-- How long serve waits by default for an accepted TLS connection's handshake.
local HANDSHAKE_LIMIT = 30

local waiting = {}   -- connection -> true while a coroutine waits on it
local sending = {}   -- connection -> true while its output buffer holds bytes: none are lost
local closing = {}   -- bufferevent -> true while close() flushes it in the background
local listeners = {} -- listener -> true until it is closed (see serve)
local accepting = {} -- TLS connection -> true while serve waits for its handshake

-- Whether `what` (an event callback's argument) has the bit `flag` (no bit operators in 5.1).
local function has(what, flag)
  return what % (flag * 2) >= flag
end

-- The peer went: LuaSocket's "closed" for a reset or a broken pipe, as for an orderly close.
local function reason(message)
  if message == "Connection reset by peer" or message == "Broken pipe" then return "closed" end
  return message or "unknown error"
end

-- Resumes the coroutine waiting on `conn` as `role`, if any, with WOKEN and `...`.
local function wake(conn, role, ...)
  local co = conn[role]
  if co == nil then return end
  conn[role] = nil
  if coroutine.status(co) ~= "suspended" then return end
  local ok, err = coroutine.resume(co, WOKEN, ...)
  if not ok then error(with_traceback(co, err), 0) end
end

local function wake_all(conn)
  wake(conn, "reader")
  wake(conn, "writer")
  wake(conn, "handshaker")
end

-- Runs fn from the loop, once, as soon as possible: wakes from a method call happen there, so
-- that an error of the woken coroutine stops loop() instead of surfacing in the caller.
local function soon(fn)
  local event
  event = base:addevent(nil, 0, function()
    event = nil
    fn()
    return LEAVE
  end, 0)
end

local function outside_error(name, what)
  error(name .. ": " .. what .. ", and only a coroutine can wait: call " .. name
    .. " inside a function run by luaevent.addthread or a luaevent.serve handler", 0)
end

-- Suspends the running coroutine as `conn`'s `role` until woken (or `seconds` pass: then it
-- returns nil, "timeout"). Returns what the waker passed. `name` and `what` make the error raised
-- outside a coroutine.
local function suspend(conn, role, seconds, name, what)
  if not can_wait() then outside_error(name, what) end
  local co = coroutine.running()
  if conn[role] then
    error(name .. ": another coroutine is already waiting on this connection for the same thing", 0)
  end
  conn[role] = co
  waiting[conn] = true
  local timer
  if seconds then
    timer = base:addevent(nil, 0, function()
      wake(conn, role, nil, "timeout")
      return LEAVE
    end, seconds)
  end
  -- Another resume (an event of a LuaSocket helper this coroutine used before) is not the wake.
  local results
  repeat
    results = pack(coroutine.yield(WOKEN))
  until results[1] == WOKEN
  if timer then timer:close() end
  if conn[role] == co then conn[role] = nil end
  if not (conn.reader or conn.writer or conn.handshaker) then waiting[conn] = nil end
  return unpack(results, 2, results.n)
end

local Connection = {}
Connection.__index = Connection

-- Closes an accepted TLS connection whose handshake failed or took too long: no handler saw it.
local function abandon(conn)
  conn.start = nil
  accepting[conn] = nil
  if conn.handshake_timer then
    conn.handshake_timer:close()
    conn.handshake_timer = nil
  end
  conn.closed = true
  conn.bev:close()
end

-- The bufferevent's callbacks for `conn`. They refer to the connection, the connection to the
-- bufferevent: both live in the bufferevent's own keep table, so the pair is collectable.
local function callbacks(conn)
  local function on_read()
    wake(conn, "reader")
  end
  -- The output buffer fell to its low watermark: 0, or HIGH_WATER while send waits.
  local function on_written(bev)
    if bev:get_write():length() == 0 then sending[conn] = nil end
    wake(conn, "writer")
  end
  local function on_event(_, what, message)
    if has(what, EVBUFFER_CONNECTED) then
      conn.handshaken = true
      local start = conn.start
      if start then
        conn.start = nil
        start()
        return
      end
      wake(conn, "handshaker", true)
      return
    end
    if conn.start then
      -- An accepted TLS connection whose handshake failed: its handler never starts.
      abandon(conn)
      return
    end
    sending[conn] = nil -- nothing more goes out
    if has(what, EVBUFFER_ERROR) then
      conn.err = reason(message)
    elseif has(what, EVBUFFER_TIMEOUT) then
      conn.err = "timeout"
    elseif has(what, EVBUFFER_EOF) then
      conn.eof = true
    end
    wake_all(conn)
  end
  return on_read, on_written, on_event
end

-- A connection around `bev` (connected, or connecting), its callbacks set and reading on.
local function connection(bev)
  local conn = setmetatable({
    bev = bev,
    buf = "", -- bytes taken from the input buffer that no receive has returned yet
    pos = 1,  -- where they start in buf
  }, Connection)
  conn.on_read, conn.on_written, conn.on_event = callbacks(conn)
  bev:set_callbacks(conn.on_read, conn.on_written, conn.on_event)
  bev:set_read_watermarks(0, HIGH_WATER)
  bev:enable(EV_READ)
  return conn
end

-- A plain string argument error, as Lua's own read.
local function argument_error(n, name, expected, value)
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, name, expected, type(value)), 0)
end

-- The core's argument numbers for bufferevent.connect, as dial's.
local DIAL_ARGUMENTS = { ["2"] = 1, ["3"] = 2, ["7"] = 3 }

function M.dial(host, port, options)
  if type(host) ~= "string" then argument_error(1, "dial", "string", host) end
  if type(port) ~= "number" then argument_error(2, "dial", "number", port) end
  if options ~= nil and type(options) ~= "table" then argument_error(3, "dial", "table or nil", options) end
  if not can_wait() then outside_error("luaevent.dial", "connecting takes a while") end
  local conn = setmetatable({ buf = "", pos = 1 }, Connection)
  local on_read, on_written, on_event = callbacks(conn)
  conn.on_read, conn.on_written, conn.on_event = on_read, on_written, on_event
  local ok, bev = pcall(core.bufferevent.connect, base, host, port, on_read, on_written, on_event, options)
  if not ok then
    local n, rest = tostring(bev):match("^bad argument #(%d+) to '[^']*' (.*)$")
    if n and DIAL_ARGUMENTS[n] then
      error(("bad argument #%d to 'dial' %s"):format(DIAL_ARGUMENTS[n], rest), 0)
    end
    error(bev, 0)
  end
  conn.bev = bev
  bev:set_read_watermarks(0, HIGH_WATER)
  while not conn.handshaken and not conn.err and not conn.eof do
    suspend(conn, "handshaker", nil, "luaevent.dial", "connecting takes a while")
  end
  if conn.handshaken then return conn end
  bev:close()
  conn.closed = true
  return nil, conn.err or "closed"
end

-- A resolver on the wrapper's base, for dial's options.dns (one on another base cannot serve it).
function M.resolver(options)
  if not core.dns then error("luaevent.resolver: this luaevent.core has no core.dns", 0) end
  local ok, resolver = pcall(core.dns.new, base, options)
  if ok then return resolver end
  local rest = tostring(resolver):match("^bad argument #2 to '[^']*' (.*)$")
  if rest then error("bad argument #1 to 'resolver' " .. rest, 0) end
  error((tostring(resolver):gsub("^core%.dns%.new:", "luaevent.resolver:")), 0)
end

-- Listeners that were closed are let go here: the core has no way to tell the wrapper.
local function forget_closed_listeners()
  for listener in pairs(listeners) do
    if not pcall(listener.getfd, listener) then listeners[listener] = nil end
  end
end

function M.serve(options, handler)
  if type(options) ~= "table" then argument_error(1, "serve", "table", options) end
  if type(handler) ~= "function" and not (getmetatable(handler) or {}).__call then
    argument_error(2, "serve", "function", handler)
  end
  forget_closed_listeners()
  local limit = options.handshake_timeout
  if limit ~= nil and (type(limit) ~= "number" or limit <= 0) then
    error("bad argument #1 to 'serve' (options.handshake_timeout: positive number expected, got "
      .. (type(limit) == "number" and tostring(limit) or type(limit)) .. ")", 0)
  end
  limit = limit or HANDSHAKE_LIMIT
  if options.handshake_timeout ~= nil then
    -- The wrapper's own option: the core's listener does not know it.
    local copy = {}
    for key, value in pairs(options) do copy[key] = value end
    copy.handshake_timeout = nil
    options = copy
  end
  local tls = options.tls ~= nil
  local ok, listener = pcall(core.listener.new, base, options, function(bev, host, port)
    local conn = connection(bev)
    local function start()
      accepting[conn] = nil
      if conn.handshake_timer then
        conn.handshake_timer:close()
        conn.handshake_timer = nil
      end
      local co = coroutine.create(handler)
      local started, err = coroutine.resume(co, conn, host, port)
      if not started then error(with_traceback(co, err), 0) end
    end
    if not tls then return start() end
    -- The handler starts once the handshake has succeeded (see callbacks); until then the
    -- wrapper holds the connection, as nothing else does.
    conn.start = start
    accepting[conn] = true
    conn.handshake_timer = base:addevent(nil, 0, function()
      conn.handshake_timer = nil
      if conn.start then abandon(conn) end
      return LEAVE
    end, limit)
  end)
  if not ok then
    local rest = tostring(listener):match("^bad argument #2 to '[^']*' (.*)$")
    if rest then error("bad argument #1 to 'serve' " .. rest, 0) end
    error((tostring(listener):gsub("^core%.listener%.new:", "luaevent.serve:")), 0)
  end
  listeners[listener] = true
  return listener
end

-- Moves what the input buffer holds to conn.buf (which the caller has used up), waiting for
-- bytes if there are none. Returns true, or nil and why no more will come.
local function fill(conn, name)
  while true do
    if conn.closed then return nil, "closed" end
    local input = conn.bev:get_read()
    local n = input:length()
    if n > 0 then
      conn.buf, conn.pos = input:get_data(), 1
      input:drain(n)
      return true
    end
    if conn.err then return nil, conn.err end
    if conn.eof then return nil, "closed" end
    local woken, err = suspend(conn, "reader", conn.timeout, name, "no data has come yet")
    if woken == nil and err then return nil, err end
  end
end

-- A line without its CRs.
local function without_cr(line)
  if line:find("\r", 1, true) then return (line:gsub("\r", "")) end
  return line
end

local function receive_line(conn, parts)
  while true do
    local buf, pos = conn.buf, conn.pos
    local lf = buf:find("\n", pos, true)
    if lf then
      conn.pos = lf + 1
      if #parts == 0 then return without_cr(buf:sub(pos, lf - 1)) end
      parts[#parts + 1] = buf:sub(pos, lf - 1)
      return without_cr(table.concat(parts))
    end
    if pos <= #buf then parts[#parts + 1] = buf:sub(pos) end
    conn.buf, conn.pos = "", 1
    local ok, err = fill(conn, "connection:receive")
    if not ok then return nil, err, without_cr(table.concat(parts)) end
  end
end

-- As LuaSocket: the end of the stream ends "*a" successfully, unless nothing came before it.
local function receive_all(conn, parts)
  local received = 0
  while true do
    if conn.pos <= #conn.buf then
      parts[#parts + 1] = conn.buf:sub(conn.pos)
      received = received + #conn.buf - conn.pos + 1
    end
    conn.buf, conn.pos = "", 1
    local ok, err = fill(conn, "connection:receive")
    if not ok then
      if err == "closed" and received > 0 then return table.concat(parts) end
      return nil, err, table.concat(parts)
    end
  end
end

local function receive_count(conn, parts, count)
  while true do
    local buf, pos = conn.buf, conn.pos
    local held = #buf - pos + 1
    if held >= count then
      parts[#parts + 1] = buf:sub(pos, pos + count - 1)
      conn.pos = pos + count
      return table.concat(parts)
    end
    if held > 0 then parts[#parts + 1] = buf:sub(pos) end
    count = count - held
    conn.buf, conn.pos = "", 1
    local ok, err = fill(conn, "connection:receive")
    if not ok then return nil, err, table.concat(parts) end
  end
end

-- LuaSocket's receive: "*l" (a line ended by LF, its CRs removed), "*a" (up to the end of the
-- stream) or a byte count; `prefix` goes before what is received. As in LuaSocket 3, a count
-- includes the prefix, so that the partial result of a timeout given back as `prefix` completes
-- the same request.
function Connection:receive(pattern, prefix)
  pattern = pattern == nil and "*l" or pattern
  if prefix ~= nil and type(prefix) ~= "string" then argument_error(2, "receive", "string or nil", prefix) end
  local parts = { prefix }
  if type(pattern) == "number" then
    if pattern < 0 or pattern ~= math.floor(pattern) then
      error("bad argument #1 to 'receive' (invalid receive pattern)", 0)
    end
    local wanted = pattern - #(prefix or "")
    if wanted <= 0 then return prefix or "" end
    return receive_count(self, parts, wanted)
  elseif pattern == "*l" or pattern == "l" then
    return receive_line(self, parts)
  elseif pattern == "*a" or pattern == "a" then
    return receive_all(self, parts)
  end
  error("bad argument #1 to 'receive' (invalid receive pattern)", 0)
end

-- Waits until the output buffer holds at most `level` bytes. true, or nil and the reason.
local function drain_to(conn, level, name)
  local output = conn.bev:get_write()
  while not conn.closed and not conn.err and output:length() > level do
    local bev = conn.bev
    bev:set_write_watermarks(level, 0)
    local woken, err = suspend(conn, "writer", conn.timeout, name, "the peer has not taken the data sent before")
    if not conn.closed then bev:set_write_watermarks(0, 0) end
    if woken == nil and err then return nil, err end
  end
  if conn.closed then return nil, "closed" end
  if conn.err then return nil, conn.err end
  return true
end

-- LuaSocket's send: returns the index of the last byte sent, or nil, the reason and the index of
-- the last byte that left the buffer. Waits while the peer lags HIGH_WATER bytes behind.
function Connection:send(data, i, j)
  if type(data) ~= "string" and type(data) ~= "number" then argument_error(1, "send", "string", data) end
  if i ~= nil and type(i) ~= "number" then argument_error(2, "send", "number", i) end
  if j ~= nil and type(j) ~= "number" then argument_error(3, "send", "number", j) end
  data = tostring(data)
  local from, to = i or 1, j or #data
  if from < 0 then from = #data + from + 1 end
  if to < 0 then to = #data + to + 1 end
  if from < 1 then from = 1 end
  if to > #data then to = #data end
  if self.closed then return nil, "closed", from - 1 end
  if self.err then return nil, self.err, from - 1 end
  local output = self.bev:get_write()
  local count = to - from + 1
  if count > 0 then
    output:add(from == 1 and to == #data and data or data:sub(from, to))
    sending[self] = true
  end
  local ok, err = drain_to(self, HIGH_WATER, "connection:send")
  if not ok then
    local left = self.closed and count or output:length()
    return nil, err, from - 1 + math.max(0, math.min(count, count - left))
  end
  return to
end

-- Closes the connection. What send buffered still goes out: the bufferevent lives on, out of
-- sight, until its output is empty, the peer has gone, or it took nothing for LINGER seconds.
function Connection:close()
  if self.closed then return 1 end
  self.closed = true
  -- Until the write callback says so, bytes may still wait beneath a TLS layer (its output
  -- buffer holds the plain text, which it empties as soon as it has encrypted it).
  local sent = not sending[self]
  sending[self] = nil
  local bev = self.bev
  if self.err or (sent and bev:get_write():length() == 0) then
    bev:close()
  else
    closing[bev] = true
    local function done()
      closing[bev] = nil
      bev:close()
    end
    bev:disable(EV_READ)
    bev:set_write_watermarks(0, 0)
    bev:set_timeouts(0, LINGER)
    bev:set_callbacks(nil, done, done)
  end
  if self.reader or self.writer or self.handshaker then
    soon(function() wake_all(self) end)
  end
  return 1
end

-- Seconds receive and send may wait before they return nil, "timeout"; nil (or a negative
-- number) waits for ever. LuaSocket's `mode` argument is accepted and changes nothing.
function Connection:settimeout(seconds)
  if seconds ~= nil and type(seconds) ~= "number" then argument_error(1, "settimeout", "number or nil", seconds) end
  if seconds and seconds < 0 then seconds = nil end
  self.timeout = seconds
  return 1
end

function Connection:getfd()
  if self.closed then return -1 end
  return self.bev:getfd()
end

-- Upgrades the connection to TLS in place (bev:starttls) and waits for the handshake. The core
-- hands bytes still in the input buffer to the handshake, but receive has already taken what
-- arrived out of that buffer, and libevent lets nothing be put back into it. Such bytes came
-- after the STARTTLS command and before the peer could have seen the answer: a peer that does
-- not wait (RFC 3207 says it must), or plain text injected to pass for TLS data. Refused.
function Connection:starttls(context, options)
  if self.closed then return nil, "closed" end
  if self.err then return nil, self.err end
  if self.eof then return nil, "closed" end
  if self.handshaker then
    error("connection:starttls: another coroutine is already waiting on this connection for the same thing", 0)
  end
  if not can_wait() then outside_error("connection:starttls", "the handshake takes a while") end
  local bev = self.bev
  if self.pos <= #self.buf or bev:get_read():length() > 0 then
    return nil, "connection:starttls: bytes received before the handshake are still unread"
  end
  local was = self.handshaken
  self.handshaken = false
  local ok, err = pcall(bev.starttls, bev, context, options)
  if not ok then
    self.handshaken = was
    local n, rest = tostring(err):match("^bad argument #(%d+) to '[^']*' (.*)$")
    if n then error(("bad argument #%d to 'starttls' %s"):format(n - 1, rest), 0) end
    error((tostring(err):gsub("^bev:starttls:", "connection:starttls:")), 0)
  end
  while not self.handshaken and not self.err and not self.eof and not self.closed do
    local woken, why = suspend(self, "handshaker", self.timeout, "connection:starttls", "the handshake takes a while")
    if woken == nil and why then return nil, why end
  end
  if self.handshaken then return true end
  if self.err then return nil, self.err end
  return nil, "closed"
end

-- bev:tls(): nil for a plain connection, else what the handshake agreed.
function Connection:tls()
  if self.closed then return nil, "closed" end
  return self.bev:tls()
end

function M.loop(...)
  return base:loop(...)
end

-- Makes luaevent.loop() return after `seconds` (nil: once the current callbacks have run).
function M.loopexit(seconds)
  return base:loopexit(seconds)
end

return M
