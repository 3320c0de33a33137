-- Mixed load through the coroutine wrapper (require "luaevent"): hundreds of client coroutines
-- at once against two servers in the same process and the same event base, every byte checked.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 tests/load/wrapper_load.lua
--
-- Environment:
--   LOAD_CLIENTS     client coroutines (default 1000; each takes 2 fds; lowered to the fd limit)
--   LOAD_ROUNDS      request/response rounds per client (default 20)
--   LOAD_BULK        extra clients that each send one block larger than the socket buffers
--                    (default 4), so that luaevent.send must resume after partial writes
--   LOAD_BULK_BYTES  size of that block (default 8 MiB)
--   LOAD_TIMEOUT     seconds before the run is stopped and failed (default 120)
--
-- Server A (luaevent.addserver, one coroutine per client, luaevent.receive / luaevent.send on the
-- raw socket) speaks a small line protocol:
--   "L <text>"  -> the same line back
--   "B <n>"     -> n bytes read with receive(n), sent back after "B <n>"
--   "P <n>"     -> n bytes read with receivePartial, each piece echoed as it comes
--   "Q"         -> "BYE", then the server closes
-- Server B is a byte echo made of luaevent.core bufferevents in the wrapper's own event base: the
-- listening socket is watched with luaevent.addevent, and each client gets
-- core.bufferevent.new(fd, read, write, error), the documented form without a base, which binds to
-- the base most recently made by core.new(): the wrapper's.
-- Clients are luaevent.addthread coroutines using luaevent.wrap(socket): two in three talk to
-- server A (a mix of lines, blocks of 1..48 KiB and partial reads), one in three sends blocks to
-- server B and reads them back. The LOAD_BULK clients send one big block each to server A ("B n")
-- while the others run: a send that the socket takes in several pieces. A timer made with luaevent.addevent ticks every 10 ms meanwhile.
-- The loop is stopped by an error raised from a timer callback once every client is done (the
-- wrapper has no loopexit); the script checks that loop() raised exactly that error.
-- Prints connections, bytes, errors and lost bytes; exits 0 only when all clients completed,
-- errors = 0 and lost bytes = 0.

package.path = (arg and arg[0] and arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local common = require "common"
local socket = require "socket"
local luaevent = require "luaevent"
local core = luaevent.core

local EV_READ, EV_TIMEOUT = core.EV_READ, core.EV_TIMEOUT
local has = common.has

local CLIENTS = common.env_number("LOAD_CLIENTS", 1000)
local ROUNDS = common.env_number("LOAD_ROUNDS", 20)
local BULK = common.env_number("LOAD_BULK", 4)
local BULK_BYTES = common.env_number("LOAD_BULK_BYTES", 8 * 1024 * 1024)
local TIMEOUT = common.env_number("LOAD_TIMEOUT", 120)

local limit = common.fd_limit()
if limit then
  local fit = math.floor((limit - 64) / 2)
  if CLIENTS > fit then
    print(string.format("wrapper_load: fd limit %d allows %d clients, not %d: using %d", limit, fit, CLIENTS, fit))
    CLIENTS = fit
  end
end

local stats = {
  a_clients = 0, b_clients = 0, bulk_clients = 0, bulk_done = 0, done = 0, failed = 0,
  lines = 0, blocks = 0, partials = 0, b_blocks = 0,
  sent = 0, expected = 0, verified = 0, mismatched = 0,
  server_a_sessions = 0, server_a_closed = 0, server_b_open = 0, server_b_peak = 0, server_b_closed = 0,
  server_errors = 0, ticks = 0,
}
local errors_seen = {}
local function note_error(message)
  stats.failed = stats.failed + 1
  if #errors_seen < 10 then errors_seen[#errors_seen + 1] = tostring(message) end
end

-- Server A: the wrapper's addserver ----------------------------------------------------------

local server_a = assert(socket.bind("127.0.0.1", 0, 1024))
server_a:settimeout(0)
local _, port_a = server_a:getsockname()

luaevent.addserver(server_a, function(client)
  stats.server_a_sessions = stats.server_a_sessions + 1
  while true do
    local line, err = luaevent.receive(client, "*l")
    if not line then
      if err ~= "closed" then stats.server_errors = stats.server_errors + 1 end
      break
    end
    local cmd, arg = line:match("^(%u) ?(.*)$")
    if cmd == "L" then
      luaevent.send(client, line .. "\n")
    elseif cmd == "B" then
      local n = tonumber(arg)
      local data = luaevent.receive(client, n)
      if not data then stats.server_errors = stats.server_errors + 1; break end
      luaevent.send(client, "B " .. n .. "\n" .. data)
    elseif cmd == "P" then
      local left = tonumber(arg)
      while left > 0 do
        local data, err2, part = luaevent.receivePartial(client, left)
        local piece = data or part
        if piece and #piece > 0 then
          left = left - #piece
          luaevent.send(client, piece)
        elseif err2 ~= "timeout" then
          stats.server_errors = stats.server_errors + 1
          break
        end
      end
    elseif cmd == "Q" then
      luaevent.send(client, "BYE\n")
      break
    else
      stats.server_errors = stats.server_errors + 1
      break
    end
  end
  client:close()
  stats.server_a_closed = stats.server_a_closed + 1
end)

-- Server B: core bufferevents on the wrapper's base ------------------------------------------

local server_b = assert(socket.bind("127.0.0.1", 0, 1024))
server_b:settimeout(0)
local _, port_b = server_b:getsockname()
local b_conns = {}

local function b_close(bev)
  local sock = b_conns[bev]
  if not sock then return end
  b_conns[bev] = nil
  bev:close()
  sock:close()
  stats.server_b_open = stats.server_b_open - 1
  stats.server_b_closed = stats.server_b_closed + 1
end

local acceptor_b = luaevent.addevent(server_b, EV_READ, function()
  while true do
    local client = server_b:accept()
    if not client then break end
    client:settimeout(0)
    local bev = core.bufferevent.new(client, function(bev)
      bev:get_write():add(bev:get_read())
    end, nil, function(bev, what)
      if not has(what, core.EVBUFFER_EOF) or has(what, core.EVBUFFER_ERROR) then
        stats.server_errors = stats.server_errors + 1
      end
      b_close(bev)
    end)
    b_conns[bev] = client
    bev:enable(EV_READ)
    stats.server_b_open = stats.server_b_open + 1
    if stats.server_b_open > stats.server_b_peak then stats.server_b_peak = stats.server_b_open end
  end
end)

-- Clients --------------------------------------------------------------------------------------

local function expect(got, want, what)
  stats.expected = stats.expected + #want
  if got == want then
    stats.verified = stats.verified + #want
    return true
  end
  local bad = 0
  got = got or ""
  for i = 1, #want do
    if got:byte(i) ~= want:byte(i) then bad = bad + 1 end
  end
  stats.mismatched = stats.mismatched + bad
  stats.verified = stats.verified + #want - bad
  note_error(string.format("%s: %d of %d bytes differ or are missing", what, bad, #want))
  return false
end

local function client_a(i)
  local s = luaevent.wrap(socket.tcp())
  local ok, err = s:connect("127.0.0.1", port_a)
  if not ok then return note_error("connect A: " .. tostring(err)) end
  local rnd = common.lcg(i * 31 + 7)
  local offset, pos = (i * 104729) % common.PERIOD, 0
  for r = 1, ROUNDS do
    local kind = (i + r) % 3
    if kind == 0 then
      local text = common.text(offset, pos, rnd(2000))
      pos = pos + #text
      s:send("L " .. text .. "\n")
      stats.sent = stats.sent + #text
      if not expect(s:receive("*l"), "L " .. text, "line") then break end
      stats.lines = stats.lines + 1
    elseif kind == 1 then
      local n = rnd(48 * 1024)
      local data = common.stream(offset, pos, n)
      pos = pos + n
      s:send("B " .. n .. "\n" .. data)
      stats.sent = stats.sent + n
      if not expect(s:receive("*l"), "B " .. n, "block header") then break end
      if not expect(s:receive(n), data, "block of " .. n) then break end
      stats.blocks = stats.blocks + 1
    else
      local n = rnd(16 * 1024)
      local data = common.stream(offset, pos, n)
      pos = pos + n
      s:send("P " .. n .. "\n" .. data)
      stats.sent = stats.sent + n
      if not expect(s:receive(n), data, "partial echo of " .. n) then break end
      stats.partials = stats.partials + 1
    end
  end
  s:send("Q\n")
  if expect(s:receive("*l"), "BYE", "goodbye") then stats.done = stats.done + 1 end
  s:close()
end

local function client_b(i)
  local s = luaevent.wrap(socket.tcp())
  local ok, err = s:connect("127.0.0.1", port_b)
  if not ok then return note_error("connect B: " .. tostring(err)) end
  local rnd = common.lcg(i * 17 + 3)
  local offset, pos = (i * 7919) % common.PERIOD, 0
  local good = true
  for _ = 1, ROUNDS do
    local n = rnd(32 * 1024)
    local data = common.stream(offset, pos, n)
    pos = pos + n
    s:send(data)
    stats.sent = stats.sent + n
    if not expect(s:receive(n), data, "bufferevent echo of " .. n) then good = false; break end
    stats.b_blocks = stats.b_blocks + 1
  end
  if good then stats.done = stats.done + 1 end
  s:close()
end

-- One block of BULK_BYTES, sent with a single wrapped send (the wrapper's send loops over the
-- partial writes; the server reads the whole block before it answers, so nothing deadlocks),
-- then read back. One coroutine per socket, as the wrapper requires.
local function client_bulk(i)
  local s = luaevent.wrap(socket.tcp())
  local ok, err = s:connect("127.0.0.1", port_a)
  if not ok then return note_error("connect bulk: " .. tostring(err)) end
  local data = common.stream((i * 65537) % common.PERIOD, 0, BULK_BYTES)
  local request = "B " .. BULK_BYTES .. "\n" .. data
  local last, err2, sent = s:send(request)
  stats.sent = stats.sent + BULK_BYTES
  if last ~= #request then
    -- The socket did not take exactly the bytes asked for: the peer would wait forever.
    note_error(string.format("bulk send of %d bytes returned %s, %s, %s", #request, tostring(last), tostring(err2), tostring(sent)))
    stats.expected = stats.expected + BULK_BYTES
    s:close()
    return
  end
  if expect(s:receive("*l"), "B " .. BULK_BYTES, "bulk header")
    and expect(s:receive(BULK_BYTES), data, "bulk block of " .. BULK_BYTES) then
    s:send("Q\n")
    if expect(s:receive("*l"), "BYE", "bulk goodbye") then
      stats.done = stats.done + 1
      stats.bulk_done = stats.bulk_done + 1
    end
  end
  s:close()
end

print(string.format("wrapper_load: %s, luaevent %s on libevent %s, %d clients x %d rounds + %d bulk clients x %d bytes, timeout %d s",
  common.interpreter(), luaevent._VERSION, core.libevent_version(), CLIENTS, ROUNDS, BULK, BULK_BYTES, TIMEOUT))
io.stdout:flush()

local started = socket.gettime()
for i = 1, CLIENTS do
  if i % 3 == 0 then
    stats.b_clients = stats.b_clients + 1
    luaevent.addthread(client_b, i)
  else
    stats.a_clients = stats.a_clients + 1
    luaevent.addthread(client_a, i)
  end
end
for i = 1, BULK do
  stats.bulk_clients = stats.bulk_clients + 1
  luaevent.addthread(client_bulk, i)
end
local ALL = CLIENTS + BULK

-- A core timer through the wrapper, ticking while the load runs; it also ends the run.
local DONE, TIMED_OUT = "wrapper_load: all clients done", "wrapper_load: timed out"
local ticker = luaevent.addevent(nil, EV_TIMEOUT, function()
  stats.ticks = stats.ticks + 1
  if stats.done + stats.failed >= ALL and stats.server_b_open == 0
    and stats.server_a_closed >= stats.server_a_sessions then
    error(DONE, 0)
  end
  if socket.gettime() - started > TIMEOUT then error(TIMED_OUT, 0) end
end, 0.01)

local ok, err = pcall(luaevent.loop)
local elapsed = socket.gettime() - started
ticker:close()
acceptor_b:close()
local stopped_as_planned = not ok and tostring(err):find(DONE, 1, true) == 1
if not stopped_as_planned then
  note_error("loop ended with: " .. tostring(ok) .. " " .. tostring(err))
end

local lost = stats.expected - stats.verified
local errors = stats.failed + stats.server_errors
print(string.format("wrapper_load: connections %d (%d to the coroutine server, %d to the bufferevent server, %d bulk; %d bufferevents open at once), completed %d (bulk %d)",
  ALL, stats.a_clients, stats.b_clients, stats.bulk_clients, stats.server_b_peak, stats.done, stats.bulk_done))
print(string.format("wrapper_load: exchanges: %d lines, %d blocks, %d partial echoes, %d bufferevent echoes; timer ticks %d",
  stats.lines, stats.blocks, stats.partials, stats.b_blocks, stats.ticks))
print(string.format("wrapper_load: payload bytes sent %d, checked back %d of %d expected, mismatched %d",
  stats.sent, stats.verified, stats.expected, stats.mismatched))
print(string.format("wrapper_load: errors %d (clients %d, servers %d), lost bytes %d, %.2f s, RSS %d KiB",
  errors, stats.failed, stats.server_errors, lost, elapsed, common.rss_kib()))
for i = 1, #errors_seen do print("wrapper_load: error: " .. errors_seen[i]) end
local pass = stopped_as_planned and errors == 0 and lost == 0 and stats.done == ALL
print(pass and "wrapper_load: PASS" or "wrapper_load: FAIL")
os.exit(pass and 0 or 1, true) -- closing the state runs every finalizer
