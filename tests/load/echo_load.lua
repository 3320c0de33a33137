-- Load test: thousands of concurrent loopback connections through a bufferevent echo server, in
-- one process and one event base; every byte that comes back is checked.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 tests/load/echo_load.lua
--   (tests/load/run.sh raises the fd limit first and runs every load script)
--
-- Environment:
--   LOAD_CONNECTIONS  connections open at the same time (default 2000; each takes 2 fds here,
--                     one per side; lowered to what the fd limit allows, with a note)
--   LOAD_BYTES        bytes each connection sends and must get back (default 65536)
--   LOAD_TIMEOUT      seconds for the whole run before it is stopped and failed (default 120)
--
-- Server: a listening LuaSocket socket watched by base:addevent(EV_READ); each accepted socket
-- gets a bufferevent whose read callback moves the input buffer into the output buffer
-- (buf:add(other_buf)), with flow control (reading disabled above 1 MiB of pending output,
-- enabled again from the write callback), and an orderly close on EOF once the output is
-- flushed. Clients: non-blocking LuaSocket sockets driven by base:addevent(EV_READ|EV_WRITE)
-- (switched to EV_READ by the callback's return value once everything is sent), sending a
-- per-connection pseudo-random byte stream in chunks of 1..16384 bytes and comparing every byte
-- received with the stream. All connections are established (and accepted) before any data
-- flows, so they are all open at once.
-- Prints connections, bytes, errors and lost bytes; exits 0 only when every connection
-- completed, errors = 0 and lost bytes = 0.

package.path = (arg and arg[0] and arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local common = require "common"
local core = require "luaevent.core"
local socket = require "socket"

local EV_READ, EV_WRITE, EV_TIMEOUT = core.EV_READ, core.EV_WRITE, core.EV_TIMEOUT
local EVBUFFER_EOF, EVBUFFER_ERROR, EVBUFFER_TIMEOUT = core.EVBUFFER_EOF, core.EVBUFFER_ERROR, core.EVBUFFER_TIMEOUT
local LEAVE = core.LEAVE
local has = common.has

local N = common.env_number("LOAD_CONNECTIONS", 2000)
local BYTES = common.env_number("LOAD_BYTES", 65536)
local TIMEOUT = common.env_number("LOAD_TIMEOUT", 120)
local BATCH = 256
local MAX_PENDING_OUTPUT = 1024 * 1024

local limit = common.fd_limit()
if limit then
  local fit = math.floor((limit - 64) / 2)
  if N > fit then
    print(string.format("echo_load: fd limit %d allows %d connections, not %d: using %d", limit, fit, N, fit))
    N = fit
  end
end

local base = core.new()
local started = socket.gettime()
local deadline = started + TIMEOUT

local stats = {
  accepted = 0, accept_errors = 0, server_open = 0, server_peak = 0, server_closed = 0,
  server_eof = 0, server_errors = 0, echoed = 0, read_pauses = 0,
  connected = 0, connect_errors = 0, clients_done = 0, client_errors = 0,
  sent = 0, verified = 0, mismatched = 0,
}
local errors_seen = {}
local function note_error(kind, message)
  errors_seen[#errors_seen + 1] = kind .. ": " .. tostring(message)
end

-- Server --------------------------------------------------------------------------------------

local server = assert(socket.bind("127.0.0.1", 0, 1024))
server:settimeout(0)
local _, port = server:getsockname()
local conns = {} -- bufferevent -> { sock = ..., closing = bool }
local accept_target = 0

local function server_close(bev)
  local conn = conns[bev]
  if not conn then return end
  conns[bev] = nil
  bev:close()
  conn.sock:close()
  stats.server_open = stats.server_open - 1
  stats.server_closed = stats.server_closed + 1
end

local function on_server_read(bev)
  local input, output = bev:get_read(), bev:get_write()
  stats.echoed = stats.echoed + #input
  output:add(input)
  if #output > MAX_PENDING_OUTPUT then
    bev:disable(EV_READ)
    conns[bev].paused = true
    stats.read_pauses = stats.read_pauses + 1
  end
end

local function on_server_write(bev)
  local conn = conns[bev]
  if not conn then return end
  if conn.closing then
    server_close(bev)
  elseif conn.paused then
    conn.paused = false
    bev:enable(EV_READ)
  end
end

local function on_server_error(bev, what)
  local conn = conns[bev]
  if not conn then return end
  if has(what, EVBUFFER_EOF) and not has(what, EVBUFFER_ERROR) and not has(what, EVBUFFER_TIMEOUT) then
    stats.server_eof = stats.server_eof + 1
    if #bev:get_write() == 0 then
      server_close(bev)
    else
      conn.closing = true
      bev:disable(EV_READ)
    end
  else
    stats.server_errors = stats.server_errors + 1
    note_error("server bufferevent", string.format("what = 0x%x", what))
    server_close(bev)
  end
end

local acceptor = base:addevent(server, EV_READ, function()
  while true do
    local client, err = server:accept()
    if not client then
      if err ~= "timeout" then
        stats.accept_errors = stats.accept_errors + 1
        note_error("accept", err)
      end
      break
    end
    client:settimeout(0)
    client:setoption("tcp-nodelay", true)
    local bev = core.bufferevent.new(base, client, on_server_read, on_server_write, on_server_error)
    conns[bev] = { sock = client }
    bev:set_timeouts(TIMEOUT, TIMEOUT)
    bev:enable(EV_READ)
    stats.accepted = stats.accepted + 1
    stats.server_open = stats.server_open + 1
    if stats.server_open > stats.server_peak then stats.server_peak = stats.server_open end
    if stats.accepted >= accept_target then base:loopexit() end
  end
end)

-- A timer that stops everything at the deadline (kept registered only while the loop runs).
local timed_out = false
local function run_loop()
  local guard = base:addevent(nil, EV_TIMEOUT, function()
    timed_out = true
    base:loopexit()
    return LEAVE
  end, math.max(0.001, deadline - socket.gettime()))
  base:loop()
  guard:close()
end

-- Clients -------------------------------------------------------------------------------------

local clients = {}

-- Phase 1: every connection established and accepted before any data flows.
print(string.format("echo_load: %s, libevent %s (%s), %d connections x %d bytes each way, timeout %d s",
  common.interpreter(), core.libevent_version(), base:method(), N, BYTES, TIMEOUT))
io.stdout:flush()
while stats.connected < N and not timed_out do
  local batch = math.min(BATCH, N - stats.connected)
  for _ = 1, batch do
    local sock = socket.tcp()
    sock:settimeout(5)
    local ok, err = sock:connect("127.0.0.1", port)
    if not ok then
      stats.connect_errors = stats.connect_errors + 1
      note_error("connect", err)
      sock:close()
      break
    end
    sock:settimeout(0)
    sock:setoption("tcp-nodelay", true)
    stats.connected = stats.connected + 1
    clients[stats.connected] = { sock = sock, sent = 0, received = 0, offset = (stats.connected * 7919) % common.PERIOD }
  end
  accept_target = stats.connected
  if stats.accepted < accept_target then run_loop() end
  if stats.connect_errors > 0 then break end
end
local connect_time = socket.gettime() - started
print(string.format("echo_load: %d connected, %d accepted, %d open on the server side at once, in %.2f s",
  stats.connected, stats.accepted, stats.server_peak, connect_time))
io.stdout:flush()

-- Phase 2: all clients send and check at once.
local transfer_started = socket.gettime()
local function client_finish(c, failed)
  if c.done then return end
  c.done = true
  c.sock:close()
  c.event:close()
  if failed then stats.client_errors = stats.client_errors + 1 end
  stats.clients_done = stats.clients_done + 1
  if stats.clients_done == stats.connected then
    -- The server side closes on EOF; stop once it has.
    base:loopexit()
  end
end

local function client_callback(c)
  return function(what)
    if has(what, EV_WRITE) and c.sent < BYTES then
      local n = math.min(c.chunk(16384), BYTES - c.sent)
      local data = common.stream(c.offset, c.sent, n)
      local last, err, partial = c.sock:send(data)
      local done = last or partial or 0
      c.sent = c.sent + done
      stats.sent = stats.sent + done
      if not last and err ~= "timeout" then
        note_error("client send", err)
        client_finish(c, true)
        return LEAVE
      end
    end
    if has(what, EV_READ) then
      local data, err, partial = c.sock:receive(BYTES - c.received)
      local got = data or partial
      if got and #got > 0 then
        local bad = common.mismatches(c.offset, c.received, got)
        if bad > 0 then
          stats.mismatched = stats.mismatched + bad
          note_error("client", bad .. " bytes differ at offset " .. c.received)
        end
        c.received = c.received + #got
        stats.verified = stats.verified + #got - bad
      end
      if c.received >= BYTES then
        client_finish(c, false)
        return LEAVE
      end
      if not data and err ~= "timeout" then
        note_error("client receive", err .. " after " .. c.received .. " bytes")
        client_finish(c, true)
        return LEAVE
      end
    end
    if c.sent >= BYTES then return EV_READ end
  end
end

for i = 1, stats.connected do
  local c = clients[i]
  c.chunk = common.lcg(i)
  c.event = base:addevent(c.sock, EV_READ + EV_WRITE, client_callback(c))
end
if stats.connected > 0 then run_loop() end
-- Let the server side see the last EOFs.
if stats.server_closed < stats.accepted and not timed_out then
  local settle = base:addevent(nil, EV_TIMEOUT, function()
    if stats.server_closed >= stats.accepted then base:loopexit() end
  end, 0.01)
  run_loop()
  settle:close()
end
local transfer_time = socket.gettime() - transfer_started
acceptor:close()
server:close()

-- Report --------------------------------------------------------------------------------------

local expected = stats.connected * BYTES
local lost = expected - stats.verified
local errors = stats.accept_errors + stats.connect_errors + stats.server_errors + stats.client_errors
  + (stats.mismatched > 0 and 1 or 0)
print(string.format("echo_load: connections %d (all open at once: %d), completed %d, server closed %d (%d on EOF)",
  stats.connected, stats.server_peak, stats.clients_done - stats.client_errors, stats.server_closed, stats.server_eof))
print(string.format("echo_load: bytes sent %d, echoed by the server %d, checked back %d of %d expected; mismatched bytes %d",
  stats.sent, stats.echoed, stats.verified, expected, stats.mismatched))
print(string.format("echo_load: errors %d (accept %d, connect %d, server %d, client %d), lost bytes %d, read pauses %d",
  errors, stats.accept_errors, stats.connect_errors, stats.server_errors, stats.client_errors, lost, stats.read_pauses))
print(string.format("echo_load: connect %.2f s, transfer %.2f s (%.1f MB/s each way), RSS %d KiB, cpu %.1f s%s",
  connect_time, transfer_time, stats.sent / 1e6 / math.max(transfer_time, 1e-6), common.rss_kib(), os.clock(),
  timed_out and ", TIMED OUT" or ""))
for i = 1, math.min(#errors_seen, 10) do print("echo_load: error: " .. errors_seen[i]) end
local ok = not timed_out and errors == 0 and lost == 0 and stats.connected == N and stats.clients_done == N
  and stats.server_closed == stats.accepted
print(ok and "echo_load: PASS" or "echo_load: FAIL")
os.exit(ok and 0 or 1, true) -- closing the state runs every finalizer
