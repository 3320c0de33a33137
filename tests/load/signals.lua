-- Signals under load: EV_SIGNAL events fire, exactly once per signal, while hundreds of loopback
-- connections stream data through a bufferevent echo server in the same base; no byte is lost
-- and no socket sees an error because of the interruptions.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 tests/load/signals.lua
--
-- Environment:
--   SIG_CONNECTIONS  streaming connections (default 200)
--   SIG_SIGNALS      signals to send, SIGUSR1 and SIGUSR2 alternately (default 300)
--   SIG_INTERVAL     seconds between two signals (default 0.01)
--   SIG_TIMEOUT      seconds before the run is stopped and failed (default 120)
--
-- The process sends the signals to itself with io.popen("kill -USR1 <pid>"), the pid read from
-- /proc/self/stat by the Lua process itself. popen's close waits for the shell, and the signal is
-- caught (libevent's handler writes to its internal pipe) before that wait returns, so every
-- signal is recorded before the next is sent: the callbacks must count exactly as many signals of
-- each kind as were sent. Each client keeps streaming until every signal has been delivered and
-- it has sent at least 256 KiB, so the signals always arrive while sockets are busy (counted:
-- signals that arrived while echoed bytes were still in flight). Exits 0 only when the counts
-- match, every byte came back (lost bytes 0) and there were no errors.

package.path = (arg and arg[0] and arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local common = require "common"
local core = require "luaevent.core"
local socket = require "socket"

local EV_READ, EV_WRITE, EV_TIMEOUT, EV_SIGNAL = core.EV_READ, core.EV_WRITE, core.EV_TIMEOUT, core.EV_SIGNAL
local LEAVE = core.LEAVE
local has = common.has

local N = common.env_number("SIG_CONNECTIONS", 200)
local SIGNALS = common.env_number("SIG_SIGNALS", 300)
local INTERVAL = common.env_number("SIG_INTERVAL", 0.01)
local TIMEOUT = common.env_number("SIG_TIMEOUT", 120)
local MIN_BYTES = 256 * 1024

-- Linux numbering on x86 and ARM; checked with the shell's kill -l (dash prints the name of a
-- number, not the number of a name).
local SIGUSR1, SIGUSR2 = 10, 12
do
  local h = io.popen("kill -l " .. SIGUSR1 .. " 2>/dev/null; kill -l " .. SIGUSR2 .. " 2>/dev/null")
  local a, b = h:read("*l"), h:read("*l")
  h:close()
  if a ~= "USR1" or b ~= "USR2" then
    print(string.format("signals: SIGUSR1/SIGUSR2 are not %d/%d here (kill -l says %s/%s)", SIGUSR1, SIGUSR2, tostring(a), tostring(b)))
    os.exit(2)
  end
end

local pid = common.pid()
local base = core.new()
local started = socket.gettime()

local stats = {
  sent_usr1 = 0, sent_usr2 = 0, got_usr1 = 0, got_usr2 = 0, wrong_bits = 0, during_traffic = 0,
  sent = 0, verified = 0, mismatched = 0, errors = 0, clients_done = 0, server_closed = 0,
}
local errors_seen = {}
local function note_error(message)
  stats.errors = stats.errors + 1
  if #errors_seen < 10 then errors_seen[#errors_seen + 1] = tostring(message) end
end

-- Echo server ----------------------------------------------------------------------------------

local server = assert(socket.bind("127.0.0.1", 0, 1024))
server:settimeout(0)
local _, port = server:getsockname()
local conns = {}

local function server_close(bev)
  local conn = conns[bev]
  if not conn then return end
  conns[bev] = nil
  bev:close()
  conn.sock:close()
  stats.server_closed = stats.server_closed + 1
end

local acceptor = base:addevent(server, EV_READ, function()
  while true do
    local client = server:accept()
    if not client then break end
    client:settimeout(0)
    local bev
    bev = core.bufferevent.new(base, client, function(b)
      b:get_write():add(b:get_read())
    end, function(b)
      if conns[b] and conns[b].closing then server_close(b) end
    end, function(b, what)
      if has(what, core.EVBUFFER_EOF) and not has(what, core.EVBUFFER_ERROR) then
        if #b:get_write() == 0 then server_close(b) else conns[b].closing = true; b:disable(EV_READ) end
      else
        note_error(string.format("server bufferevent error 0x%x", what))
        server_close(b)
      end
    end)
    conns[bev] = { sock = client }
    bev:enable(EV_READ)
  end
end)

-- Signals --------------------------------------------------------------------------------------

local function in_flight()
  return stats.sent > stats.verified
end

local usr1 = base:addevent(SIGUSR1, EV_SIGNAL, function(what)
  if not has(what, EV_SIGNAL) then stats.wrong_bits = stats.wrong_bits + 1 end
  stats.got_usr1 = stats.got_usr1 + 1
  if in_flight() then stats.during_traffic = stats.during_traffic + 1 end
end)
local usr2 = base:addevent(SIGUSR2, EV_SIGNAL, function(what)
  if not has(what, EV_SIGNAL) then stats.wrong_bits = stats.wrong_bits + 1 end
  stats.got_usr2 = stats.got_usr2 + 1
  if in_flight() then stats.during_traffic = stats.during_traffic + 1 end
end)

local signals_done = false
local sender
sender = base:addevent(nil, EV_TIMEOUT, function()
  local total = stats.sent_usr1 + stats.sent_usr2
  if total >= SIGNALS then
    -- Delivered means counted by the callbacks (they run in the round after the signal).
    if stats.got_usr1 + stats.got_usr2 >= total or socket.gettime() - started > TIMEOUT then
      signals_done = true
      return LEAVE
    end
    return
  end
  -- Only while data is in flight, so that every signal interrupts a busy loop.
  if not in_flight() then return end
  local name = total % 2 == 0 and "USR1" or "USR2"
  local h = io.popen("kill -" .. name .. " " .. pid .. " 2>&1")
  local out = h:read("*a")
  h:close()
  if out ~= "" then note_error("kill: " .. out) end
  if name == "USR1" then stats.sent_usr1 = stats.sent_usr1 + 1 else stats.sent_usr2 = stats.sent_usr2 + 1 end
end, INTERVAL)

-- Streaming clients -----------------------------------------------------------------------------

local clients = {}
for i = 1, N do
  local sock = socket.tcp()
  sock:settimeout(5)
  assert(sock:connect("127.0.0.1", port))
  sock:settimeout(0)
  local c = { sock = sock, sent = 0, received = 0, offset = (i * 7919) % common.PERIOD, chunk = common.lcg(i) }
  clients[i] = c
  c.event = base:addevent(sock, EV_READ + EV_WRITE, function(what)
    if has(what, EV_WRITE) and not c.finished_sending then
      if signals_done and c.sent >= MIN_BYTES then
        c.finished_sending = true
        sock:shutdown("send")
      elseif c.sent - c.received < 512 * 1024 then
        local data = common.stream(c.offset, c.sent, c.chunk(16384))
        local last, err, partial = sock:send(data)
        local n = last or partial or 0
        c.sent = c.sent + n
        stats.sent = stats.sent + n
        if not last and err ~= "timeout" then note_error("client send: " .. tostring(err)) end
      end
    end
    if has(what, EV_READ) then
      local data, err, partial = sock:receive(65536)
      local got = data or partial
      if got and #got > 0 then
        local bad = common.mismatches(c.offset, c.received, got)
        stats.mismatched = stats.mismatched + bad
        if bad > 0 then note_error(bad .. " bytes differ") end
        c.received = c.received + #got
        stats.verified = stats.verified + #got - bad
      end
      if not data and err == "closed" then
        if c.received ~= c.sent then note_error("closed after " .. c.received .. " of " .. c.sent .. " bytes") end
        sock:close()
        stats.clients_done = stats.clients_done + 1
        if stats.clients_done == N then base:loopexit() end
        return LEAVE
      elseif not data and err ~= "timeout" then
        note_error("client receive: " .. tostring(err))
      end
    end
    if c.finished_sending then return EV_READ end
  end)
end

local guard = base:addevent(nil, EV_TIMEOUT, function()
  note_error("timed out")
  base:loopexit()
  return LEAVE
end, TIMEOUT)

print(string.format("signals: %s, libevent %s (%s), pid %d (from /proc/self/stat), %d connections, %d signals every %g s",
  common.interpreter(), core.libevent_version(), base:method(), pid, N, SIGNALS, INTERVAL))
io.stdout:flush()
base:loop()
local elapsed = socket.gettime() - started
guard:close(); usr1:close(); usr2:close(); acceptor:close(); sender:close()
for _, c in ipairs(clients) do c.event:close() end
server:close()

local sent_signals = stats.sent_usr1 + stats.sent_usr2
local lost = stats.sent - stats.verified
print(string.format("signals: sent USR1 %d, USR2 %d; callbacks USR1 %d, USR2 %d; %d arrived while data was in flight; wrong what bits %d",
  stats.sent_usr1, stats.sent_usr2, stats.got_usr1, stats.got_usr2, stats.during_traffic, stats.wrong_bits))
print(string.format("signals: connections %d, completed %d, server closed %d; bytes sent %d, checked back %d, mismatched %d, lost %d",
  N, stats.clients_done, stats.server_closed, stats.sent, stats.verified, stats.mismatched, lost))
print(string.format("signals: errors %d, %.2f s, RSS %d KiB", stats.errors, elapsed, common.rss_kib()))
for _, e in ipairs(errors_seen) do print("signals: error: " .. e) end
local ok = stats.errors == 0 and lost == 0 and sent_signals == SIGNALS
  and stats.got_usr1 == stats.sent_usr1 and stats.got_usr2 == stats.sent_usr2 and stats.wrong_bits == 0
  and stats.clients_done == N and stats.during_traffic > 0
print(ok and "signals: PASS" or "signals: FAIL")
os.exit(ok and 0 or 1, true) -- closing the state runs every finalizer
