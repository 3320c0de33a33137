-- A bufferevent echo server and its clients, in one process, on one event base.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 examples/bufferevent_echo.lua
--
-- LuaSocket listens, accepts and connects; after that every byte goes through
-- luaevent.core bufferevents:
--   * server side, each connection is a bufferevent whose read callback moves
--     its input buffer into its output buffer (out:add(in)). When the output
--     backs up past HIGH bytes the server stops reading (disable(EV_READ)) and
--     starts again from the write callback once the output has fallen to LOW
--     (set_write_watermarks), so a slow client cannot make it buffer without end;
--   * each client sends its own pseudo-random payload in PIECE-sized pieces,
--     topping up from its write callback (write low watermark PIECE), and checks
--     every echoed byte, in order, as it arrives;
--   * the error callbacks see the end: clients hang up when they have everything
--     back, the server closes each connection on its EOF;
--   * read timeouts (set_timeouts) and a deadline timer fail a stuck run.
-- Prints what it moved and exits 0; on any failure it prints why on stderr and
-- exits 1.
local core = require "luaevent.core"
local socket = require "socket"

local CLIENTS = 20
local BYTES = 100 * 1024   -- per client
local PIECE = 16 * 1024    -- client write size, and its write low watermark
local HIGH = 256 * 1024    -- server: stop reading when this much waits to go out
local LOW = 64 * 1024      -- server: read again when the output has fallen to this
local IDLE = 5             -- read timeout of every bufferevent, seconds
local DEADLINE = 10        -- the whole run must finish within this

local EV_READ, EV_TIMEOUT = core.EV_READ, core.EV_TIMEOUT
local EVBUFFER_READ, EVBUFFER_EOF = core.EVBUFFER_READ, core.EVBUFFER_EOF
local EVBUFFER_ERROR, EVBUFFER_TIMEOUT = core.EVBUFFER_ERROR, core.EVBUFFER_TIMEOUT

-- Whether `mask` has `flag` set (no bit operators on Lua 5.1 / 5.2).
local function has(mask, flag)
  return math.floor(mask / flag) % 2 == 1
end

-- A readable name for an error callback's `what`.
local function describe(what)
  local names = {}
  for _, f in ipairs({ { EVBUFFER_EOF, "EOF" }, { EVBUFFER_ERROR, "ERROR" }, { EVBUFFER_TIMEOUT, "TIMEOUT" } }) do
    if has(what, f[1]) then names[#names + 1] = f[2] end
  end
  names[#names + 1] = has(what, EVBUFFER_READ) and "while reading" or "while writing"
  return table.concat(names, " ")
end

-- Client i's payload: BYTES pseudo-random bytes (all 256 values, NULs too).
local unpack = table.unpack or unpack
local function payload(i)
  local state = i * 7919
  local chunks, bytes = {}, {}
  for n = 1, BYTES do
    state = (state * 1103515245 + 12345) % 2147483648
    bytes[#bytes + 1] = math.floor(state / 65536) % 256
    if #bytes == 256 or n == BYTES then
      chunks[#chunks + 1] = string.char(unpack(bytes))
      bytes = {}
    end
  end
  return table.concat(chunks)
end

local base = core.new()
local failure -- set by fail(); checked after the loop
local function fail(why)
  failure = failure or why
  base:loopexit()
end

------------------------------------------------------------------ server ----
local listener = assert(socket.bind("127.0.0.1", 0, CLIENTS))
listener:settimeout(0)
local _, port = listener:getsockname()
local server = { connections = {}, open = 0, echoed = 0, pauses = 0 }
local clients = {}
local done = 0 -- clients that got all their bytes back

local function check_finished()
  if done == CLIENTS and server.open == 0 and #server.connections == CLIENTS then base:loopexit() end
end

local function serve(conn)
  conn:settimeout(0)
  local bev = core.bufferevent.new(base, conn,
    function(bev) -- read: echo what came in
      local input, output = bev:get_read(), bev:get_write()
      server.echoed = server.echoed + output:add(input)
      if output:length() > HIGH then
        bev:disable(EV_READ) -- let the client catch up first
        server.pauses = server.pauses + 1
      end
    end,
    function(bev) -- write: the output fell to LOW
      bev:enable(EV_READ)
    end,
    function(bev, what) -- error: the client hung up (or something broke)
      if what ~= EVBUFFER_EOF + EVBUFFER_READ then
        return fail("server: connection failed: " .. describe(what))
      end
      bev:close()
      conn:close()
      server.open = server.open - 1
      check_finished()
    end)
  bev:set_write_watermarks(LOW, HIGH)
  bev:set_timeouts(IDLE, IDLE)
  bev:enable(EV_READ)
  server.connections[#server.connections + 1] = bev -- a bufferevent lives while referenced
  server.open = server.open + 1
end

local acceptor = base:addevent(listener, EV_READ, function()
  while true do
    local conn = listener:accept()
    if not conn then return end
    serve(conn)
  end
end)

------------------------------------------------------------------ client ----
local function start_client(i)
  local sock = assert(socket.connect("127.0.0.1", port))
  sock:settimeout(0)
  local c = { sock = sock, data = payload(i), sent = 0, received = 0 }
  clients[i] = c

  local function send_more(bev)
    if c.sent < #c.data then
      bev:get_write():add(c.data:sub(c.sent + 1, c.sent + PIECE))
      c.sent = math.min(c.sent + PIECE, #c.data)
    end
  end

  c.bev = core.bufferevent.new(base, sock,
    function(bev) -- read: check the echo against what was sent
      local input = bev:get_read()
      local got = input:get_data()
      input:drain(#got)
      if got ~= c.data:sub(c.received + 1, c.received + #got) then
        return fail(("client %d: echo differs within bytes %d..%d"):format(i, c.received + 1, c.received + #got))
      end
      c.received = c.received + #got
      if c.received == #c.data then -- all back: hang up
        bev:close()
        sock:close()
        done = done + 1
        check_finished()
      end
    end,
    send_more, -- write: the output fell to PIECE, top it up
    function(_, what)
      fail(("client %d: connection failed: %s"):format(i, describe(what)))
    end)
  c.bev:set_write_watermarks(PIECE, 0)
  c.bev:set_timeouts(IDLE, IDLE)
  c.bev:enable(EV_READ)
  send_more(c.bev)
  send_more(c.bev)
end

-- The deadline: fails the run if it is not over by then.
local deadline = base:addevent(nil, EV_TIMEOUT, function()
  fail(("timed out after %g s: %d/%d clients done"):format(DEADLINE, done, CLIENTS))
end, DEADLINE)

-------------------------------------------------------------------- run -----
print(("luaevent.core on libevent %s (%s), %s, port %d"):format(
  core.libevent_version(), base:method(), _VERSION, port))
local t0 = socket.gettime()
for i = 1, CLIENTS do start_client(i) end
local ok, err = pcall(base.loop, base)
local elapsed = socket.gettime() - t0

deadline:close()
acceptor:close()
listener:close()
for _, bev in ipairs(server.connections) do bev:close() end
for _, c in pairs(clients) do
  c.bev:close()
  c.sock:close()
end

if not ok then failure = "callback error: " .. tostring(err) end
local total = CLIENTS * BYTES
if not failure then
  if done ~= CLIENTS then
    failure = ("loop ended early: %d/%d clients done"):format(done, CLIENTS)
  elseif server.echoed ~= total then
    failure = ("the server echoed %d bytes, expected %d"):format(server.echoed, total)
  elseif server.open ~= 0 then
    failure = ("%d server connections still open"):format(server.open)
  end
end
if failure then
  io.stderr:write("bufferevent_echo: FAILED: ", failure, "\n")
  os.exit(1)
end
print(("server: %d connections, %d bytes echoed, reading paused %d times for slow output"):format(
  #server.connections, server.echoed, server.pauses))
print(("bufferevent echo: %d clients, %d bytes (%.2f MiB) echoed, all bytes verified (%.2f s)"):format(
  CLIENTS, total, total / 1048576, elapsed))
os.exit(0)
