-- Soak test: millions of create/close cycles of every luaevent.core object, with RSS and Lua heap
-- checked for growth. Exits 0 when memory stays flat, 1 otherwise (2 on a failed check of data).
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 tests/soak/soak.lua
--
-- Environment:
--   SOAK_QUICK=1        0.15 of the work (about 10 s); the same checks
--   SOAK_SCALE=<x>      multiply every cycle count by x (default 1; SOAK_QUICK sets 0.15)
--   SOAK_RSS_BOUND_KIB  allowed RSS growth from the middle to the end, KiB (default 2048)
--   SOAK_HEAP_BOUND_KIB allowed Lua heap growth from the middle to the end, KiB (default 512)
--   SOAK_GC_EVERY=<n>   a full collection every n cycles of each kind (default 2000; 0: only the
--                       collector's own pace). Objects dropped to the GC hold C memory (libevent
--                       structures, buffers) that the collector does not see, so with its own pace
--                       alone the amount waiting to be collected, and with it malloc's high-water
--                       mark, depends on when the collector happens to run: on LuaJIT RSS then
--                       swings by 10 MB between reports. Collecting on a schedule keeps that amount
--                       bounded, so that RSS growth means memory the module keeps.
--   SOAK_ONLY=<kinds>   comma-separated subset of events,buffers,bufferevents,bases
--   SOAK_DEBUG_FDS=1    list the open fds at every report (stderr)
--   SOAK_GC=<mode>      Lua 5.4 and 5.5 only: incremental (the default here) or generational (the
--                       default of their executables). In generational mode Lua 5.4.4's own peak heap
--                       between collections climbs by about 1.5x per 250,000 finalized objects
--                       before it levels off (14 MB peak after ~2.5 million, shown by a pure-Lua
--                       loop of setmetatable({}, {__gc = f}) with no module loaded), so RSS would
--                       measure the collector's pacing rather than this module.
--
-- The work is split into ROUNDS equal rounds; each round runs a share of every kind of cycle:
--   events       addevent/close of timers, fd events (LuaSocket object and integer fd), signal
--                events; events dropped to the garbage collector; every 500 cycles a loop in which
--                events fire and leave (LEAVE, close() in their own callback, close() of others
--                that are already active in the same round, which then must not run)
--   buffers      add/drain cycles on a long-lived buffer (strings, numbers, binary, other buffers),
--                readline, get_data ranges, plus short-lived buffers closed or left to the GC;
--                every byte that comes out is compared with what went in
--   bufferevents bufferevent.new/close on one end of a loopback TCP pair (with and without the
--                base argument, with timeouts, watermarks, enable/disable, get_read/get_write);
--                every 100 cycles a full round trip through the loop (peer sends, read callback
--                checks every byte, answers, write callback closes the bufferevent)
--   bases        core.new() left to the garbage collector (each holds an epoll fd and a
--                socketpair), some with a timer or a seed-form bufferevent (no base argument)
-- One base serves the events and bufferevents for the whole run, so that anything a base
-- accumulates per event shows as growth.
-- RSS (from /proc/self/statm), the Lua heap (collectgarbage "count", after a full collection)
-- and the number of open fds are printed at the start, at every quarter, and at the end.
-- Pass: RSS(end) - RSS(middle) < SOAK_RSS_BOUND_KIB, heap(end) - heap(middle) <
-- SOAK_HEAP_BOUND_KIB, open fds(end) == open fds(start), and every data check passed.

local core = require "luaevent.core"
local socket = require "socket"

local EV_READ, EV_WRITE, EV_TIMEOUT, EV_SIGNAL = core.EV_READ, core.EV_WRITE, core.EV_TIMEOUT, core.EV_SIGNAL
local LEAVE = core.LEAVE

local quick = (os.getenv("SOAK_QUICK") or "") ~= "" and os.getenv("SOAK_QUICK") ~= "0"
local scale = tonumber(os.getenv("SOAK_SCALE") or "") or (quick and 0.15 or 1)
local RSS_BOUND_KIB = tonumber(os.getenv("SOAK_RSS_BOUND_KIB") or "") or 2048
local HEAP_BOUND_KIB = tonumber(os.getenv("SOAK_HEAP_BOUND_KIB") or "") or 512
local GC_EVERY = tonumber(os.getenv("SOAK_GC_EVERY") or "") or 2000

local ROUNDS = 20
-- Totals over the whole run at scale 1.
local EVENT_CYCLES = 3000000
local BUFFER_CYCLES = 3000000
local BEV_CYCLES = 1000000
local BASE_CYCLES = 20000
local function per_round(total)
  return math.max(1, math.floor(total * scale / ROUNDS + 0.5))
end
local events_per_round = per_round(EVENT_CYCLES)
local buffers_per_round = per_round(BUFFER_CYCLES)
local bevs_per_round = per_round(BEV_CYCLES)
local bases_per_round = per_round(BASE_CYCLES)

local interpreter = (jit and jit.version) or _VERSION

local gc_mode = "incremental"
if _VERSION == "Lua 5.4" or _VERSION == "Lua 5.5" then
  gc_mode = os.getenv("SOAK_GC") or "incremental"
  assert(gc_mode == "incremental" or gc_mode == "generational", "SOAK_GC: incremental or generational")
  collectgarbage(gc_mode)
end

-- The highest Lua heap seen between the forced collections of the reports (sampled).
local peak_heap = 0
local function sample_heap()
  local c = collectgarbage("count")
  if c > peak_heap then peak_heap = c end
end

-- Called once per cycle by every kind: the scheduled full collection.
local since_gc = 0
local function gc_tick()
  if GC_EVERY <= 0 then return end
  since_gc = since_gc + 1
  if since_gc >= GC_EVERY then
    since_gc = 0
    sample_heap()
    collectgarbage("collect")
  end
end

-- Memory probes -------------------------------------------------------------------------------

local PAGE = 4096
do
  local h = io.popen("getconf PAGESIZE 2>/dev/null")
  local v = h and tonumber(h:read("*l") or "")
  if h then h:close() end
  if v then PAGE = v end
end

local function rss_kib()
  local f = assert(io.open("/proc/self/statm", "r"))
  local line = f:read("*l")
  f:close()
  local resident = tonumber(line:match("^%d+%s+(%d+)"))
  return resident * PAGE / 1024
end

local function open_fds()
  -- Lists /proc/<pid>/fd of the Lua process from a child shell, leaving out the popen's own
  -- pipe (both of its ends may show while the child starts).
  local f = assert(io.open("/proc/self/stat", "r"))
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  local h = assert(io.popen('t=$(readlink /proc/$$/fd/1); ls -l /proc/' .. pid .. '/fd | grep -vF -- "$t"'))
  local n, list = 0, {}
  for line in h:lines() do
    local fd, target = line:match("(%d+) %-> (.*)$")
    if fd then n = n + 1; list[#list + 1] = fd .. ":" .. target end
  end
  h:close()
  if os.getenv("SOAK_DEBUG_FDS") then io.stderr:write(table.concat(list, " "), "\n") end
  return n
end

local function heap_kib()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count")
end

-- SOAK_ONLY=events,buffers,bufferevents,bases runs only the kinds named (to locate growth).
local only = os.getenv("SOAK_ONLY")
local function enabled(kind)
  return not only or only == "" or ("," .. only .. ","):find("," .. kind .. ",", 1, true) ~= nil
end

local failures = 0
local function check(ok, message)
  if not ok then
    failures = failures + 1
    io.stderr:write("soak: CHECK FAILED: ", message, "\n")
    if failures > 20 then
      io.stderr:write("soak: too many failures, giving up\n")
      os.exit(2)
    end
  end
  return ok
end

-- Fixtures ------------------------------------------------------------------------------------

local base = core.new()

-- A connected loopback TCP pair: `a` is watched by events and bufferevents, `b` is the peer.
local function tcp_pair()
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local b = assert(socket.connect("127.0.0.1", port))
  local a = assert(server:accept())
  server:close()
  a:settimeout(0)
  b:settimeout(10)
  a:setoption("tcp-nodelay", true)
  b:setoption("tcp-nodelay", true)
  return a, b
end
local a, b = tcp_pair()

-- A signal nobody sends in this test (SIGUSR2): registering and removing it exercises the
-- signal path without touching the process's behaviour.
local SIGUSR2 = 12

local function noop() end

-- Events ----------------------------------------------------------------------------------------

local event_cycles, fired_total = 0, 0

local function fire_round()
  -- Events that really fire and go away by the three routes the API offers. The loop ends by
  -- loopexit once all 12 fired (events dropped to the collector may still be registered).
  local fired, victims = 0, {}
  local function bump()
    fired = fired + 1
    if fired == 12 then base:loopexit() end
  end
  local events = {}
  for k = 1, 10 do
    events[#events + 1] = base:addevent(nil, EV_TIMEOUT, function()
      bump()
      return LEAVE
    end, 0)
  end
  local self_closing
  self_closing = base:addevent(a, EV_WRITE, function()
    self_closing:close()
    bump()
  end)
  -- Six events due at once: the first to run closes the five others, which then must not run
  -- even though they are already active in the same round. Exactly one of them runs.
  for k = 1, 6 do
    victims[k] = base:addevent(nil, EV_TIMEOUT, function()
      for j = 1, #victims do
        if j ~= k then victims[j]:close() end
      end
      bump()
      return LEAVE
    end, 0)
  end
  local guard = base:addevent(nil, EV_TIMEOUT, function() error("soak: fire round stuck") end, 10)
  base:loop()
  guard:close()
  check(fired == 12, "fire round: " .. fired .. " of 12 events fired")
  fired_total = fired_total + fired
  for k = 1, #events do events[k]:close() end
  for k = 1, #victims do victims[k]:close() end
end

local function event_round(n)
  local fd = a:getfd()
  for i = 1, n do
    local k = i % 8
    local ev
    if k == 0 then
      ev = base:addevent(nil, EV_TIMEOUT, noop, 10)
    elseif k == 1 then
      ev = base:addevent(a, EV_READ, noop)
    elseif k == 2 then
      ev = base:addevent(fd, EV_WRITE, noop, 1.5)
    elseif k == 3 then
      ev = base:addevent(a, EV_READ + EV_WRITE, noop, 0.000001)
    elseif k == 4 then
      ev = base:addevent(SIGUSR2, EV_SIGNAL, noop)
    elseif k == 5 then
      ev = base:addevent(nil, 0, noop, 0)
    elseif k == 6 then
      -- Dropped without close(): the collector removes it.
      base:addevent(nil, EV_TIMEOUT, noop, 60)
    else
      ev = base:addevent(fd, EV_READ, function() return LEAVE end, 3600)
      ev:close()
    end
    if ev then ev:close() end
    if i % 500 == 0 then fire_round(); sample_heap() end
    gc_tick()
  end
  event_cycles = event_cycles + n
end

-- Buffers ---------------------------------------------------------------------------------------

local buffer_cycles = 0
local long_lived = core.buffer.new()
local binary = {}
for i = 0, 255 do binary[#binary + 1] = string.char(i) end
binary = table.concat(binary)
local pieces = {
  "hello",
  binary,
  string.rep("x", 1000),
  string.rep("\0", 4096),
  string.rep(binary, 64), -- 16 KiB
}

local function buffer_round(n)
  local buf = core.buffer
  for i = 1, n do
    local piece = pieces[i % #pieces + 1]
    local k = i % 6
    if k == 0 then
      -- add/drain on the long-lived buffer, bytes checked
      local before = long_lived:length()
      check(long_lived:add(piece) == #piece, "add returned a wrong count")
      check(long_lived:get_data(before + 1, #piece) == piece, "bytes changed in the buffer")
      long_lived:drain(before + #piece)
      check(long_lived:length() == 0, "drain left bytes")
    elseif k == 1 then
      -- numbers and several arguments; readline
      long_lived:add("line ", i, "\r\n", piece == "hello" and "tail" or "")
      local line = long_lived:readline()
      check(line == "line " .. i, "readline gave " .. tostring(line))
      long_lived:drain(-1)
    elseif k == 2 then
      -- a short-lived buffer moved into the long-lived one, closed explicitly
      local t = buf.new()
      t:add(piece)
      long_lived:add(t)
      check(t:length() == 0, "moved buffer not empty")
      t:close()
      check(tostring(long_lived) == piece, "moved bytes differ")
      long_lived:drain(#piece)
    elseif k == 3 then
      -- a short-lived buffer left to the garbage collector
      local t = buf.new()
      t:add(piece, piece)
      check(#t == 2 * #piece, "length after add")
      check(t:get_data(-1 - #piece + 1, -1) == piece, "get_data from the end")
    elseif k == 4 then
      -- growth then partial drains: exercises evbuffer chain reuse
      for _ = 1, 4 do long_lived:add(piece) end
      while long_lived:length() > 0 do long_lived:drain(1000) end
    else
      -- get_data copies of the long-lived buffer while it holds data
      long_lived:add(piece)
      check(long_lived:get_data(3) == piece:sub(1, 3), "get_data(len)")
      check(long_lived:get_data() == piece, "get_data()")
      long_lived:drain(#piece + 1)
    end
    if i % 500 == 0 then sample_heap() end
    gc_tick()
  end
  buffer_cycles = buffer_cycles + n
end

-- Bufferevents --------------------------------------------------------------------------------

local bev_cycles, round_trips, round_trip_bytes = 0, 0, 0

local function round_trip(i)
  -- Nothing else may read from `a` while the round trip runs: dropped bufferevents are
  -- collected first.
  collectgarbage("collect")
  local size = (i * 7919) % 16000 + 1
  local payload = string.rep(binary, math.ceil(size / 256)):sub(1, size)
  local reply = "ok:" .. size .. "\n"
  local got, err_what = {}, nil
  local received = 0
  local guard
  guard = base:addevent(nil, EV_TIMEOUT, function() error("soak: round trip stuck") end, 10)
  local bev
  bev = core.bufferevent.new(base, a, function(self, what)
    check(rawequal(self, bev), "read callback got another object")
    local input = self:get_read()
    local chunk = input:get_data()
    input:drain(#chunk)
    got[#got + 1] = chunk
    received = received + #chunk
    if received >= size then
      self:get_write():add(reply)
    end
  end, function(self, what)
    if received >= size then
      guard:close()
      self:close()
      base:loopexit()
    end
  end, function(self, what)
    err_what = what
    guard:close()
    self:close()
    base:loopexit()
  end)
  bev:set_timeouts(10, 10)
  bev:enable(EV_READ)
  assert(b:send(payload))
  base:loop()
  check(err_what == nil, "bufferevent error callback: " .. tostring(err_what))
  check(table.concat(got) == payload, "round trip: payload differs (" .. received .. " of " .. size .. " bytes)")
  local answer, err = b:receive("*l")
  check(answer == "ok:" .. size, "round trip: reply " .. tostring(answer) .. " " .. tostring(err))
  round_trips = round_trips + 1
  round_trip_bytes = round_trip_bytes + size + #reply
end

local function bev_round(n)
  local new = core.bufferevent.new
  for i = 1, n do
    local k = i % 5
    if i % 100 == 0 then
      sample_heap()
      round_trip(bev_cycles + i)
    elseif k == 0 then
      local bev = new(base, a, noop, noop, noop)
      bev:close()
    elseif k == 1 then
      local bev = new(base, a:getfd(), nil, nil, noop)
      bev:set_timeouts(5, 5)
      bev:set_read_watermarks(0, 65536)
      bev:set_write_watermarks(0, 0)
      bev:enable(EV_READ)
      bev:disable(EV_WRITE)
      local input, output = bev:get_read(), bev:get_write()
      output:add("not sent")
      check(#input == 0, "fresh input not empty")
      bev:close()
      check(not pcall(input.length, input), "buffer of a closed bufferevent still usable")
    elseif k == 2 then
      local bev = new(base, a, noop, nil, noop)
      bev:get_write():close() -- detaches only
      bev:close()
      bev:close() -- idempotent
    elseif k == 3 then
      -- Left to the garbage collector, reading enabled.
      local bev = new(base, a, noop, noop, noop)
      bev:enable(EV_READ)
    else
      -- Left to the garbage collector, with its buffers still referenced until the end of the
      -- iteration.
      local bev = new(base, a, noop, noop, noop)
      local _ = bev:get_read(), bev:get_write()
    end
    gc_tick()
  end
  bev_cycles = bev_cycles + n
end

-- Bases ---------------------------------------------------------------------------------------

local base_cycles = 0
local function base_round(n)
  for i = 1, n do
    local other = core.new()
    if i % 4 == 0 then
      other:addevent(nil, EV_TIMEOUT, noop, 1)
    elseif i % 4 == 1 then
      -- The documented form without a base binds to the most recent core.new(): `other`.
      local bev = core.bufferevent.new(a, noop, nil, noop)
      bev:enable(EV_READ)
      if i % 8 == 1 then bev:close() end
    end
    if i % 100 == 0 then collectgarbage("collect") end
  end
  base_cycles = base_cycles + n
end

-- Main ----------------------------------------------------------------------------------------

local function report(label, round)
  sample_heap()
  local h = heap_kib() -- a full collection first: RSS without the garbage waiting for the GC
  local r, f = rss_kib(), open_fds()
  io.write(string.format(
    "%-6s round %2d/%d  RSS %7.0f KiB  Lua heap %7.1f KiB (peak since last %7.0f)  fds %2d  cycles: events %d, buffers %d, bufferevents %d, bases %d  cpu %.1f s\n",
    label, round, ROUNDS, r, h, peak_heap, f, event_cycles, buffer_cycles, bev_cycles, base_cycles, os.clock()))
  peak_heap = 0
  io.stdout:flush()
  return r, h, f
end

io.write(string.format("soak: %s (%s GC, full collection every %d cycles), luaevent.core on libevent %s, %s mode (scale %g), %d rounds\n",
  interpreter, gc_mode, GC_EVERY, core.libevent_version(), quick and "quick" or "full", scale, ROUNDS))
io.write(string.format("soak: per round: %d event cycles, %d buffer cycles, %d bufferevent cycles, %d bases\n",
  events_per_round, buffers_per_round, bevs_per_round, bases_per_round))

local started = socket.gettime()
local rss0, heap0, fds0 = report("start", 0)
local rss_mid, heap_mid, fds_mid
for round = 1, ROUNDS do
  if enabled("bases") then base_round(bases_per_round) end
  if enabled("events") then event_round(events_per_round) end
  if enabled("buffers") then buffer_round(buffers_per_round) end
  if enabled("bufferevents") then bev_round(bevs_per_round) end
  if round == ROUNDS / 2 then
    rss_mid, heap_mid, fds_mid = report("middle", round)
  elseif round % (ROUNDS / 4) == 0 and round ~= ROUNDS then
    report("", round)
  end
end
local rss1, heap1, fds1 = report("end", ROUNDS)
local elapsed = socket.gettime() - started

a:close()
b:close()

local rss_growth, heap_growth = rss1 - rss_mid, heap1 - heap_mid
io.write(string.format("soak: %d event cycles (%d fired in loops), %d buffer cycles, %d bufferevent cycles, %d round trips (%d bytes), %d bases in %.1f s (cpu %.1f s)\n",
  event_cycles, fired_total, buffer_cycles, bev_cycles, round_trips, round_trip_bytes, base_cycles, elapsed, os.clock()))
io.write(string.format("soak: RSS start %.0f KiB, middle %.0f KiB, end %.0f KiB: end - middle = %+.0f KiB (bound %d KiB)\n",
  rss0, rss_mid, rss1, rss_growth, RSS_BOUND_KIB))
io.write(string.format("soak: Lua heap start %.1f KiB, middle %.1f KiB, end %.1f KiB: end - middle = %+.1f KiB (bound %d KiB)\n",
  heap0, heap_mid, heap1, heap_growth, HEAP_BOUND_KIB))
io.write(string.format("soak: open fds start %d, middle %d, end %d\n", fds0, fds_mid, fds1))

local ok = true
if rss_growth >= RSS_BOUND_KIB then
  io.write("soak: FAIL: RSS grew by more than the bound\n"); ok = false
end
if heap_growth >= HEAP_BOUND_KIB then
  io.write("soak: FAIL: Lua heap grew by more than the bound\n"); ok = false
end
if fds1 ~= fds0 then
  io.write("soak: FAIL: open fds changed (leaked or closed fds)\n"); ok = false
end
if failures > 0 then
  io.write("soak: FAIL: ", failures, " data checks failed\n"); ok = false
end
io.write(ok and "soak: PASS\n" or "soak: FAIL\n")
os.exit(ok and 0 or 1, true) -- closing the state runs every finalizer
