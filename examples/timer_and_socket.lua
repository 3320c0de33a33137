-- A loopback TCP echo server and client on one luaevent.core event base.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 examples/timer_and_socket.lua
--
-- LuaSocket makes the sockets; luaevent.core does everything else:
--   * the server accepts on EV_READ, then echoes each connection by switching
--     its event between EV_READ (read into a core.buffer) and EV_WRITE (write
--     the buffer back out), simply by what the callback returns;
--   * a periodic timer paces the client: each tick queues a burst of messages
--     and registers the client's EV_WRITE event; the client callback switches
--     itself to EV_READ once its burst is out, checks every echoed line, and
--     removes itself (LEAVE) when the burst has come back;
--   * a one-shot deadline timer fails the run if it takes too long.
-- Prints what it moved and exits 0; on any failure it prints why on stderr
-- and exits 1.
local core = require "luaevent.core"
local socket = require "socket"

local MESSAGES = 100    -- messages the client sends, in bursts
local BURST = 10        -- messages per timer tick
local TICK = 0.02       -- seconds between ticks of the pacing timer
local IDLE = 5          -- a socket event that waits this long has failed
local DEADLINE = 5      -- the whole run must finish within this

local EV_READ, EV_WRITE, EV_TIMEOUT = core.EV_READ, core.EV_WRITE, core.EV_TIMEOUT
local LEAVE = core.LEAVE

-- Whether `mask` has `flag` set (no bit operators on Lua 5.1 / 5.2).
local function has(mask, flag)
  return math.floor(mask / flag) % 2 == 1
end

-- The i-th message: varying lengths, one line each.
local function message(i)
  return ("message %d: %s"):format(i, ("*"):rep(i % 23))
end

local base = core.new()
local failure   -- set by fail(); checked after the loop
local events = {} -- every event we registered: an event lives only while referenced

-- Records the first failure and stops the loop. Returns LEAVE for callbacks.
local function fail(why)
  failure = failure or why
  base:loopexit()
  return LEAVE
end

------------------------------------------------------------------ server ----
local listener = assert(socket.bind("127.0.0.1", 0))
listener:settimeout(0)
local _, port = listener:getsockname()
local connections = {} -- keeps the accepted sockets (and their events) alive
local server_echoed = 0

local function serve(conn)
  local state = { sock = conn, buf = core.buffer.new() }
  connections[#connections + 1] = state
  state.event = base:addevent(conn, EV_READ, function(what)
    if has(what, EV_TIMEOUT) then return fail("server: connection idle for " .. IDLE .. " s") end
    if has(what, EV_READ) then
      local n = state.buf:read(conn, 4096)
      if n == 0 then -- the client hung up
        conn:close()
        return LEAVE
      elseif n < 0 then -- nothing there after all (EAGAIN)
        return EV_READ
      end
      return EV_WRITE -- echo what came in before reading more
    end
    if has(what, EV_WRITE) then
      local n = state.buf:write(conn)
      if n < 0 then return fail("server: write failed") end
      server_echoed = server_echoed + n
      if state.buf:length() > 0 then return EV_WRITE end
      return EV_READ
    end
  end, IDLE) -- every socket event gets a timeout: see the note at the end
end

events.accept = base:addevent(listener, EV_READ, function(what)
  if has(what, EV_TIMEOUT) then return fail("server: nobody connected") end
  local conn = listener:accept()
  if conn then
    conn:settimeout(0)
    serve(conn)
  end
end, IDLE)

------------------------------------------------------------------ client ----
local client = assert(socket.tcp())
client:settimeout(2)
assert(client:connect("127.0.0.1", port)) -- the kernel completes it; accept comes later
client:settimeout(0)

local out, input = core.buffer.new(), core.buffer.new()
local sent, received, bytes, bursts = 0, 0, 0, 0

local function on_client(what)
  if has(what, EV_TIMEOUT) then return fail("client: no progress for " .. IDLE .. " s") end
  if has(what, EV_WRITE) then
    if out:write(client) < 0 then return fail("client: write failed") end
    if out:length() > 0 then return EV_WRITE end
    return EV_READ -- burst is out: now wait for the echoes
  end
  if has(what, EV_READ) then
    local n = input:read(client, 4096)
    if n == 0 then return fail("client: server closed the connection") end
    if n < 0 then return EV_READ end
    for line in function() return input:readline() end do
      received = received + 1
      if line ~= message(received) then
        return fail(("client: echo %d was %q, expected %q"):format(received, line, message(received)))
      end
      bytes = bytes + #line + 1
    end
    if received < sent then return EV_READ end
    -- The whole burst came back: go quiet until the next tick.
    events.client = nil
    if received == MESSAGES then base:loopexit() end
    return LEAVE
  end
end

-- The pacing timer: one burst per tick while the client is idle.
local ticks = 0
events.ticker = base:addevent(nil, EV_TIMEOUT, function()
  ticks = ticks + 1
  if events.client or sent >= MESSAGES then return end
  for _ = 1, BURST do
    sent = sent + 1
    out:add(message(sent), "\n")
  end
  bursts = bursts + 1
  print(("tick %d: burst %d queued, %d/%d messages echoed so far"):format(ticks, bursts, received, MESSAGES))
  events.client = base:addevent(client, EV_WRITE, on_client, IDLE)
end, TICK)

-- The deadline: fires once and fails the run.
events.deadline = base:addevent(nil, EV_TIMEOUT, function()
  return fail(("timed out after %g s: %d/%d messages echoed"):format(DEADLINE, received, MESSAGES))
end, DEADLINE)

-------------------------------------------------------------------- run -----
print(("luaevent.core on libevent %s (%s), %s, port %d"):format(
  core.libevent_version(), base:method(), _VERSION, port))
local t0 = socket.gettime()
local ok, err = pcall(base.loop, base)
local elapsed = socket.gettime() - t0

for _, ev in pairs(events) do ev:close() end
for _, c in ipairs(connections) do c.event:close(); c.sock:close() end
client:close()
listener:close()

if not ok then failure = "callback error: " .. tostring(err) end
if not failure and received ~= MESSAGES then
  failure = ("loop ended early: %d/%d messages echoed"):format(received, MESSAGES)
end
if failure then
  io.stderr:write("timer_and_socket: FAILED: ", failure, "\n")
  os.exit(1)
end
print(("echoed %d messages, %d bytes (server wrote %d) in %d bursts, %d timer ticks, %.2f s"):format(
  received, bytes, server_echoed, bursts, ticks, elapsed))
os.exit(0)

-- Note: every socket event is registered with a timeout. It catches a stuck
-- peer, and it also keeps the demo correct on the C luaevent module, which
-- re-registers an event whose mask changed with its stored timeout, or a zero
-- one when there is none (the event would then fire at once with a spurious
-- EV_TIMEOUT and go dormant).
