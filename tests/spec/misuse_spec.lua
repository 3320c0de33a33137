-- Randomized misuse of luaevent.core: a seeded, reproducible fuzz run.
--
-- A pool of bases, events, buffers, bufferevents (when core.bufferevent.new works) and loopback
-- LuaSocket sockets is kept, and every step does one random thing: calls a random method of a
-- random type on a random receiver (right type, wrong type, closed, nil, numbers, strings) with
-- random arguments, calls a metamethod or a module function by hand, makes objects, drops
-- references, runs the garbage collector, or runs a base's loop (always bounded by a loopexit
-- placed just before it). Event and bufferevent callbacks do random things in turn: more steps,
-- closing their own or other events, errors with any kind of value, collectgarbage, re-entrant
-- loops, yields, and they return random values.
--
-- What is asserted: the process survives to the end; every error caught by pcall is a string
-- (a deliberately thrown non-string error of a user `getfd`/metamethod may come back unchanged);
-- once everything is closed or dropped and collected, no fd is left open (no base survives);
-- a fresh base with a timer still works afterwards.
--
--   LUAEVENT_SEED=<n>            seed (default below); printed on failure
--   LUAEVENT_MISUSE_CALLS=<n>    calls to make (default 30000)
--   LUAEVENT_MISUSE_SECONDS=<s>  stop earlier after this long (default: none, but 12 s under
--                                tests/gc_stress.lua)
--   LUAEVENT_MISUSE_TRACE=1      print every call to stderr before making it: after a crash, the
--                                last lines are the calls that led to it (steps are reproducible
--                                for a seed, though timing and collection can vary a little)
--   LUAEVENT_MISUSE_VERBOSE=1    print statistics and the most frequent error messages
--
-- Never run this against the C module: it aborts or segfaults within a few dozen calls, at the
-- latest when the bufferevent probed at the start is collected (hence #cbug).

local core = require "luaevent.core"
local socket = require "socket"
-- The helpers shared by the spec files, found beside this one (here only skip()).
local helpers = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "") .. "helpers.lua")

local unpack = table.unpack or unpack
local gettime = socket.gettime
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local function envnum(name)
  local v = os.getenv(name)
  return v and tonumber(v) or nil
end

local DEFAULT_SEED = 20240611
local SEED = math.floor(envnum("LUAEVENT_SEED") or DEFAULT_SEED)
local GC_STRESS = rawget(_G, "LUAEVENT_GC_STRESS") and true or false -- set by tests/gc_stress.lua
local CALLS = math.floor(envnum("LUAEVENT_MISUSE_CALLS") or 30000)
-- Under tests/gc_stress.lua a call costs 10 to 1000 times more, depending on the interpreter and
-- the helper's mode: the run also stops after a time budget. The calls made are a prefix of the
-- same sequence, so a seed still reproduces (LUAEVENT_MISUSE_CALLS=<the count reached> and a
-- large LUAEVENT_MISUSE_SECONDS).
local SECONDS = envnum("LUAEVENT_MISUSE_SECONDS") or (GC_STRESS and 12 or nil)
local TRACE = os.getenv("LUAEVENT_MISUSE_TRACE")
local VERBOSE = os.getenv("LUAEVENT_MISUSE_VERBOSE")
local MAXDEPTH = 3 -- callbacks run steps, which may run loops, whose callbacks run steps...

local EV_TIMEOUT, EV_READ, EV_WRITE = core.EV_TIMEOUT, core.EV_READ, core.EV_WRITE
local EV_SIGNAL, LEAVE = core.EV_SIGNAL, core.LEAVE
local NaN, INF = 0 / 0, math.huge
local NEGZERO = -(0.0)

-- The C functions documented in API.md, per type, so a missing one is noticed.
local DOCUMENTED = {
  base = { "addevent", "loop", "loopexit", "method" },
  event = { "close" },
  buffer = { "add", "length", "get_data", "readline", "drain", "read", "write", "close" },
  bev = { "get_read", "get_write", "set_read_watermarks", "set_write_watermarks", "set_timeouts",
          "enable", "disable", "close", "set_callbacks", "getfd", "starttls", "tls" },
  listener = { "address", "getfd", "enable", "disable", "close" },
  resolver = { "resolve", "close" },
  request = { "cancel" },
}

---------------------------------------------------------------------------------------------
-- A deterministic generator, the same on every interpreter (Park-Miller, exact in doubles).
-- Each callback gets a generator of its own, so how often it fires does not shift the others.
---------------------------------------------------------------------------------------------
local M31 = 2147483647
local function newRng(seed)
  local s = seed % (M31 - 1) + 1
  local r = {}
  function r.next() s = (s * 48271) % M31; return s end
  function r.float() return (r.next() - 1) / (M31 - 1) end
  function r.int(a, b) return a + r.next() % (b - a + 1) end
  function r.chance(p) return r.float() < p end
  function r.pick(t) local n = #t; if n == 0 then return nil end; return t[r.int(1, n)] end
  function r.fork() return newRng(r.next()) end
  return r
end

---------------------------------------------------------------------------------------------
-- Run state (reset by run())
---------------------------------------------------------------------------------------------
local opTime = {} -- wall time per kind of top-level step
local callCounts = {} -- name -> { calls, successes } (verbose)
local P           -- pools: base, event, buffer, bev, sock, co
local stats, failures, errorCounts
local labels = setmetatable({}, { __mode = "k" })
local passthrough = setmetatable({}, { __mode = "k" }) -- non-string errors our own hooks throw
local staleFds, listener
local strongCells
local T, F, METAMETHODS, MODULEFNS, TYPES, mtType, bevWorks, bevNew
local step -- forward

local function fmtnum(v)
  if v ~= v then return "0/0" end
  if v == INF then return "math.huge" elseif v == -INF then return "-math.huge" end
  if math.type and math.type(v) == "integer" then return tostring(v) end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    if v == 0 and 1 / v < 0 then return "-0.0" end
    return string.format("%.1f", v)
  end
  return string.format("%.17g", v)
end

local function show(v)
  local t = type(v)
  if t == "number" then return fmtnum(v)
  elseif t == "string" then
    if #v > 40 then return string.format("string(len %d)", #v) end
    return (string.format("%q", v):gsub("\n", "n"))
  elseif labels[v] then return labels[v]
  elseif t == "table" or t == "userdata" then
    local ok, s = pcall(tostring, v)
    return t .. "<" .. (ok and type(s) == "string" and s:sub(1, 30) or "?") .. ">"
  end
  return t
end

local function describeCall(name, args)
  local parts = {}
  for i = 1, args.n do parts[i] = show(args[i]) end
  return name .. "(" .. table.concat(parts, ", ") .. ")"
end

local function label(v, kind)
  stats.objects = stats.objects + 1
  labels[v] = kind .. "#" .. stats.objects
  return v
end

---------------------------------------------------------------------------------------------
-- Calling the module
---------------------------------------------------------------------------------------------
local function recordError(err, what)
  stats.errors = stats.errors + 1
  if type(err) == "string" then
    if VERBOSE then
      local key = err:gsub("\n.*", ""):gsub("0x%x+", "0x?"):gsub("%d+", "N"):sub(1, 90)
      errorCounts[key] = (errorCounts[key] or 0) + 1
    end
  elseif not passthrough[err] then
    local ok, s = pcall(tostring, err)
    failures[#failures + 1] = string.format("step %d: %s raised a %s error (%s)", stats.steps,
      what(), type(err), ok and tostring(s) or "?")
  end
end

-- Signal numbers that must never get a libevent handler: a handler on SIGSEGV & co would turn a
-- crash into a hang, one on SIGINT/SIGTERM would make the run hard to stop. An fd given to
-- addevent doubles as a signal number (EV_SIGNAL, or a callback returning EV_SIGNAL), so plain
-- numbers that could end up as one of these are moved out of the way (C truncation included).
local BADSIG = { [0] = true, true, true, true, true, true, true, true, true, [11] = true, [15] = true,
  [31] = true }
local function sanitizeEventFd(v)
  if type(v) == "number" and v == math.floor(v) and v > -INF and v < INF then
    if BADSIG[v % 4294967296] or BADSIG[v % 65536] then return v + 64 end
  end
  return v
end
-- Buffers and bufferevents must never read from or write to an fd that is not ours: stdin,
-- stdout, stderr (a terminal would block), or anything the process was started with (a make
-- jobserver pipe, a log file...). `foreignFds` holds the fds open before the run.
local foreignFds = {}
local function isForeign(fd) return fd <= 2 or foreignFds[fd] end
local function sanitizeIoFd(v)
  if type(v) == "number" and v == math.floor(v) and v > -INF and v < INF then
    if isForeign(v % 4294967296) or isForeign(v % 65536) then return -1 end
  end
  return v
end

-- `name` is "kind:method" (receiver first), "addevent"/"loop"/... (base methods), "kind.__meta"
-- or a module function; the arguments always start with the receiver for methods.
-- A resolver must never ask the system's name servers: every core.dns.new gets a name server
-- list, pointing at the discard port of loopback (nothing answers there).
local QUIET_NAMESERVERS = { "127.0.0.1:9" }
local function sanitizeDnsOptions(v)
  if type(v) ~= "table" then return { nameservers = QUIET_NAMESERVERS, timeout = 0.01, attempts = 1 } end
  -- A copy (the table may be anything: the module table itself, a pool...), with its other
  -- keys kept so that the option checks still see them.
  local copy = {}
  for key, value in next, v do copy[key] = value end
  -- Kept only when it cannot name a server (a list of non-strings: an argument error).
  local list, usable = rawget(copy, "nameservers"), true
  if type(list) == "table" then
    usable = false
    for _, item in next, list do usable = usable or type(item) == "string" end
  end
  if usable then copy.nameservers = QUIET_NAMESERVERS end
  return copy
end

local function sanitize(name, args)
  local method = name:match(":([%w_]+)$") or name
  if name == "dns.new" then args[2] = sanitizeDnsOptions(args[2]); args.n = math.max(args.n, 2)
  elseif method == "addevent" then args[2] = sanitizeEventFd(args[2])
  elseif method == "read" or method == "write" then args[2] = sanitizeIoFd(args[2])
  elseif name == "bufferevent.new" then
    args[1] = sanitizeIoFd(args[1]); args[2] = sanitizeIoFd(args[2])
  end
  return args
end

local function adopt(r)
  for i = 2, r.n do
    local v = r[i]
    local kind = type(v) == "userdata" and mtType[getmetatable(v)]
    if kind and not labels[v] then
      label(v, kind)
      local pool = P[kind]
      pool[#pool + 1] = v
    end
  end
end

-- pcall(fn, args) with bookkeeping; returns the packed pcall results.
local function invoke(name, fn, args)
  stats.calls = stats.calls + 1
  sanitize(name, args)
  if TRACE then
    io.stderr:write(string.format("[%d/%d] %s\n", stats.steps, stats.calls, describeCall(name, args)))
  end
  local t0 = gettime()
  local r = pack(pcall(fn, unpack(args, 1, args.n)))
  local dt = gettime() - t0
  if dt > stats.slowest then
    stats.slowest, stats.slowestCall = dt, string.format("step %d: %s", stats.steps, describeCall(name, args))
  end
  if TRACE and dt > 0.05 then io.stderr:write(string.format("  ... took %.3f s\n", dt)) end
  if VERBOSE then
    local c = callCounts[name] or { 0, 0 }
    callCounts[name] = c
    c[1] = c[1] + 1
    if r[1] then c[2] = c[2] + 1 end
  end
  if r[1] then adopt(r) else recordError(r[2], function() return describeCall(name, args) end) end
  return r
end

---------------------------------------------------------------------------------------------
-- Random values
---------------------------------------------------------------------------------------------
local NUMBERS = { 0, 1, -1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 31, 255, 256, 1000, 65536, 0.5, 1.5,
  2.0, 1e-6, 1e-7, 4e-7, 0.001, 2 ^ 31 - 1, 2 ^ 31, -2 ^ 31, -2 ^ 31 - 1, 2 ^ 32, 2 ^ 32 + 3,
  2 ^ 53, 2 ^ 63, -2 ^ 63, 2 ^ 64, 1e308, -1e308, 1e-308, 5e-324, INF, -INF, NaN, NEGZERO }
if math.maxinteger then
  for _, v in ipairs { math.maxinteger, math.mininteger, math.maxinteger - 1, math.mininteger + 1 } do
    NUMBERS[#NUMBERS + 1] = v
  end
end
local TIMEOUTS = { 0, 1e-6, 1e-7, 0.0005, 0.001, 0.01, 1, 3600, -1, -1e-9, NEGZERO, 1e308, INF,
  -INF, NaN, 2 ^ 31, 2 ^ 53, 2 ^ 63, "0.001", "x" }
local MASKS = { 0, 1, 2, 4, 6, 3, 5, 7, 8, 9, 10, 16, 18, 20, 22, 255, 256 + 2, -1, -2, 0.5, 2.5,
  2 ^ 31 + 2, 2 ^ 32 + 2, NaN, INF, "2", "6" }
local SAFE_SIGNALS = { 10, 12, 23, 28 } -- SIGUSR1, SIGUSR2, SIGURG, SIGWINCH
local STRINGS = { "", "a", "1", "-1", "0x10", "nan", "inf", "1e400", " 5 ", "3.0",
  "line1\r\nline2\n\n\rpartial", "\r", "\n\n", "\0", "a\0b\0\r\n", "getfd", "close",
  "EVENT_BASE_MT", "luaevent.core.buffer" }
local BINARY = {}

local randomValue -- forward
local makeCallback -- forward

local function randomNumber(rng)
  local k = rng.int(1, 4)
  if k == 1 then return rng.int(-10, 100000)
  elseif k == 2 then return rng.float() * 0.01
  end
  return rng.pick(NUMBERS)
end

local function randomString(rng)
  local k = rng.int(1, 10)
  if k <= 6 then return rng.pick(STRINGS)
  elseif k <= 8 then return rng.pick(BINARY)
  elseif k == 9 then return string.rep(rng.pick(STRINGS), rng.int(1, 300))
  end
  return string.rep(rng.pick(BINARY), rng.int(1, 300)) -- up to ~90 KB
end

local function randomMask(rng)
  if rng.chance(0.7) then return rng.pick { 0, EV_READ, EV_WRITE, EV_READ + EV_WRITE, EV_TIMEOUT,
    EV_TIMEOUT + EV_READ } end
  return rng.pick(MASKS)
end

local function randomTimeout(rng)
  local k = rng.int(1, 10)
  if k == 1 then return nil elseif k <= 4 then return rng.pick { 0, 0.0005, 0.001, 1e-6 } end
  return rng.pick(TIMEOUTS)
end

local function poolPick(rng, kind)
  return rng.pick(P[kind])
end

-- A base that is not freed yet, mostly: loops and events on freed bases reach little.
local function liveBase(rng)
  if rng.chance(0.15) then return poolPick(rng, "base") end
  local live = {}
  for _, b in ipairs(P.base) do
    if pcall(F.base.method, b) then live[#live + 1] = b end
  end
  return rng.pick(live) or poolPick(rng, "base")
end

local function anyObject(rng)
  local kinds = { "base", "event", "buffer", "bev", "sock", "tls", "resolver", "request" }
  local v = poolPick(rng, rng.pick(kinds))
  return v
end

-- A number usable as a (possibly bad) file descriptor; never a foreign fd nor a dangerous signal.
local randomFdNumber0
local function randomFdNumber(rng)
  return sanitizeIoFd(randomFdNumber0(rng))
end
function randomFdNumber0(rng)
  local k = rng.int(1, 8)
  if k <= 3 then
    local s = poolPick(rng, "sock")
    local ok, fd = pcall(function() return s:getfd() end)
    if ok and type(fd) == "number" then return fd end
    return -1
  elseif k == 4 then return rng.pick(staleFds) or 99999
  elseif k == 5 then return rng.pick(SAFE_SIGNALS)
  elseif k == 6 then return rng.pick { -1, -2, -2 ^ 31, 2 ^ 31 - 1, 2 ^ 31, 2 ^ 40, 1e308, 99999, 3.5, 1e-9 }
  elseif k == 7 then return rng.pick { NaN, INF, -INF, NEGZERO, 65, 64, 1023, 1024, 4096 }
  end
  return rng.int(32, 60) -- the dummy files, our sockets, libevent's own fds
end

-- Objects with a getfd method, mostly misbehaving.
local function fdObject(rng)
  local k = rng.int(1, 14)
  local fd = randomFdNumber(rng)
  if k <= 4 then return { getfd = function() return fd end }
  elseif k == 5 then return { getfd = function() return nil end }
  elseif k == 6 then return { getfd = function() return tostring(fd) end }
  elseif k == 7 then return { getfd = function() return {} end }
  elseif k == 8 then return { getfd = function() error("getfd fails") end }
  elseif k == 9 then
    local e = {}
    passthrough[e] = true
    return { getfd = function() error(e) end }
  elseif k == 10 then return { getfd = fd }
  elseif k == 11 then return { getfd = function() return coroutine.yield(fd) end }
  elseif k == 12 then
    return setmetatable({}, { __index = function(_, key)
      if key == "getfd" then return function() return fd end end
    end })
  elseif k == 13 then
    local e = setmetatable({}, { __tostring = function() error("no") end })
    passthrough[e] = true
    return setmetatable({}, { __index = function() error(e) end })
  end
  return { getfd = function() return fd, "extra", fd end }
end

local function randomFd(rng)
  local k = rng.int(1, 10)
  if k <= 3 then return poolPick(rng, "sock") or randomFdNumber(rng)
  elseif k <= 5 then return randomFdNumber(rng)
  elseif k == 6 then return nil
  elseif k <= 8 then return fdObject(rng)
  end
  return randomValue(rng, 1)
end

local ERRVALUES -- filled in run(): values a callback may throw
local function randomErrorValue(rng)
  return rng.pick(ERRVALUES)
end

local FOREIGN = {} -- values of other types: filled in run()

function randomValue(rng, depth)
  local k = rng.int(1, 20)
  if k == 1 then return nil
  elseif k == 2 then return rng.chance(0.5)
  elseif k <= 6 then return randomNumber(rng)
  elseif k <= 9 then return randomString(rng)
  elseif k <= 13 then return anyObject(rng)
  elseif k == 14 then return fdObject(rng)
  elseif k == 15 then return (makeCallback(rng, depth or 1))
  elseif k == 16 then return rng.pick(FOREIGN)
  elseif k == 17 then
    local t = {}
    for i = 1, rng.int(0, 3) do t[i] = randomNumber(rng) end
    return t
  elseif k == 18 then return randomMask(rng)
  elseif k == 19 then return randomTimeout(rng)
  end
  return core
end

local function randomArgs(rng, lo, hi, depth)
  local a = { n = rng.int(lo, hi) }
  for i = 1, a.n do a[i] = randomValue(rng, depth) end
  return a
end

-- Arguments that make sense for a method, mostly: this reaches the states random junk cannot.
local function plausibleArgs(rng, name, depth)
  local r = rng
  if name == "addevent" then
    local fd = randomFd(r)
    local mask = randomMask(r)
    if r.chance(0.03) then
      fd, mask = r.pick(SAFE_SIGNALS), EV_SIGNAL
    end
    local cb, cell = makeCallback(r, depth)
    local a = pack(fd, mask, cb, randomTimeout(r))
    if fd == nil and a[4] == nil and r.chance(0.8) then a[4] = r.pick { 0, 0.0005, 0.001 } end
    a.cell = cell
    return a
  elseif name == "loopexit" then return pack(randomTimeout(r))
  elseif name == "add" then
    local a = { n = r.int(1, 3) }
    for i = 1, a.n do
      local k = r.int(1, 6)
      if k <= 3 then a[i] = randomString(r)
      elseif k == 4 then a[i] = randomNumber(r)
      elseif k == 5 then a[i] = poolPick(r, "buffer")
      else a[i] = randomValue(r, depth) end
    end
    return a
  elseif name == "get_data" then
    local k = r.int(1, 3)
    if k == 1 then return pack() end
    if k == 2 then return pack(r.int(-5, 50)) end
    return pack(r.int(-10, 50), r.int(-10, 50))
  elseif name == "drain" then return pack(r.chance(0.7) and r.int(-3, 100) or randomNumber(r))
  elseif name == "read" then return pack(randomFd(r), r.chance(0.7) and r.int(-1, 5000) or randomNumber(r))
  elseif name == "write" then return pack(randomFd(r))
  elseif name == "set_read_watermarks" or name == "set_write_watermarks" then
    return pack(r.int(-1, 100), r.int(-1, 1000))
  elseif name == "set_timeouts" then return pack(randomTimeout(r), randomTimeout(r))
  elseif name == "enable" or name == "disable" then return pack(randomMask(r))
  elseif name == "set_callbacks" then
    local a = pack(makeCallback(r, depth), makeCallback(r, depth), makeCallback(r, depth))
    for i = 1, 3 do if r.chance(0.2) then a[i] = nil end end
    return a
  elseif name == "starttls" then
    local context = r.chance(0.8) and poolPick(r, "tls") or randomValue(r, depth)
    local k = r.int(1, 4)
    if k == 1 then return pack(context) end
    if k == 2 then return pack(context, { servername = r.pick { "localhost", "127.0.0.1", "", "x\0y", string.rep("n", 300) } }) end
    if k == 3 then return pack(context, randomValue(r, depth)) end
    return pack(context, { servername = randomValue(r, depth) })
  elseif name == "resolve" then
    local cb, cell = makeCallback(r, depth)
    local a = pack(r.pick { "127.0.0.1", "::1", "localhost", "x.invalid", "2001:db8::5", "", "a\0b", 5 },
      cb, r.pick { nil, "any", "inet", "inet6", "ipv4", 6 })
    a.cell = cell
    return a
  end
  return pack()
end

---------------------------------------------------------------------------------------------
-- Callbacks
---------------------------------------------------------------------------------------------
local function randomReturn(rng)
  if rng.chance(0.6) then -- what real callbacks return
    local k = rng.int(1, 6)
    if k == 1 then return
    elseif k == 2 then return LEAVE
    elseif k == 3 then return rng.pick { EV_READ, EV_WRITE, EV_READ + EV_WRITE, EV_TIMEOUT, 0 }
    elseif k == 4 then return rng.pick { EV_READ, EV_WRITE, EV_TIMEOUT }, rng.pick { 0, 1e-6, 0.0005, 0.001, -1 }
    elseif k == 5 then return nil, rng.pick { 0, 1e-6, 0.0005, 0.001, -1 }
    end
    return 0, 0.001
  end
  local k = rng.int(1, 16)
  if k == 1 then return
  elseif k == 2 then return nil
  elseif k <= 4 then return LEAVE
  elseif k == 5 then return 0
  elseif k == 6 then return rng.pick { EV_READ, EV_WRITE, EV_READ + EV_WRITE, EV_TIMEOUT }
  elseif k == 7 then return randomMask(rng), randomTimeout(rng)
  elseif k == 8 then return nil, randomTimeout(rng)
  elseif k == 9 then return randomNumber(rng), randomNumber(rng)
  elseif k == 10 then return randomString(rng)
  elseif k == 11 then return {}
  elseif k == 12 then return true, false
  elseif k == 13 then return NaN, NaN
  elseif k == 14 then return EV_TIMEOUT, rng.pick { 0, 1e-6, 0.0005, 0.001 }
  elseif k == 15 then return INF, INF
  end
  return randomValue(rng, MAXDEPTH), randomValue(rng, MAXDEPTH), randomValue(rng, MAXDEPTH)
end

local boundedLoop -- forward

-- A callback that holds its own event strongly keeps it registered (through the registry) after
-- the last other reference is gone, and with it its base and the base's fds. Such leaked events
-- are left alone for a while, then closed, or a long run would run out of file descriptors.
strongCells = setmetatable({}, { __mode = "k" })
local function closeLeakedEvents()
  local inPool, leaked = {}, {}
  for _, e in ipairs(P.event) do inPool[e] = true end
  for cell in pairs(strongCells) do
    local o = cell.obj
    if o ~= nil and not inPool[o] and mtType[getmetatable(o)] == "event" then leaked[#leaked + 1] = o end
  end
  if #leaked > 32 then
    for _, o in ipairs(leaked) do invoke("leaked:close", F.event.close, pack(o)) end
  end
end

-- Returns a callback and a cell whose .obj and .base get the event/bufferevent it is given to and
-- its base (weakly for half of the callbacks, so they do not keep them alive).
function makeCallback(rng, depth)
  local crng = rng.fork()
  local cell = setmetatable({}, { __mode = "v" })
  if crng.chance(0.5) then
    cell = {}
    strongCells[cell] = true
  end
  local function body(...)
    stats.callbacks = stats.callbacks + 1
    if ... == EV_SIGNAL then stats.signalled = stats.signalled + 1 end
    if stats.calls >= CALLS then
      if crng.chance(0.5) then return LEAVE end
      return
    end
    local d = depth + 1
    if d < MAXDEPTH then
      for _ = 1, crng.int(0, 2) do step(crng, d) end
    end
    local r = crng.float()
    if r < 0.08 then
      if cell.obj then invoke("own:close", F[mtType[getmetatable(cell.obj)] or "event"].close or F[mtType[getmetatable(cell.obj)] or "event"].cancel or F.event.close, pack(cell.obj)) end
    elseif r < 0.125 then
      local other = poolPick(crng, "event")
      if other then invoke("other:close", F.event.close, pack(other)) end
    elseif r < 0.14 then
      -- finalize our own object or our base by hand (getmetatable(x).__gc(x)), then collect
      local target = crng.chance(0.5) and cell.obj or cell.base
      local kind = type(target) == "userdata" and mtType[getmetatable(target)]
      if kind then invoke(kind .. ".__gc(own)", getmetatable(target).__gc, pack(target)) end
      if crng.chance(0.5) then collectgarbage() end
    elseif r < 0.16 then collectgarbage()
    elseif r < 0.18 then collectgarbage("step")
    elseif r < 0.21 then error(randomErrorValue(crng), crng.int(0, 2))
    elseif r < 0.22 then coroutine.yield(crng.int(1, 4))
    elseif r < 0.25 and d < MAXDEPTH then boundedLoop(crng, d, poolPick(crng, "base"))
    elseif r < 0.30 then
      -- use what we were given (a bufferevent, a mask) as a receiver
      local a1 = ...
      local kind = crng.pick(TYPES)
      local m = crng.pick(T[kind])
      local args = crng.chance(0.5) and plausibleArgs(crng, m.name, d) or randomArgs(crng, 0, 3, d)
      if m.name == "loop" then
        if d < MAXDEPTH then boundedLoop(crng, d, a1, args) end
      else
        table.insert(args, 1, a1); args.n = args.n + 1
        invoke(kind .. ":" .. m.name, m.fn, args)
      end
    end
    return randomReturn(crng)
  end
  local style = crng.int(1, 14)
  if style == 1 then -- a coroutine.wrap function that lives forever
    return coroutine.wrap(function(...)
      local a = pack(...)
      while true do a = pack(coroutine.yield(body(unpack(a, 1, a.n)))) end
    end), cell
  elseif style == 2 then -- a coroutine.wrap function that dies after one call
    return coroutine.wrap(body), cell
  elseif style == 3 then -- a C function
    return crng.pick { error, collectgarbage, coroutine.yield, tostring, type, math.floor, select }, cell
  elseif style == 4 then -- a callable table (not a function)
    return setmetatable({}, { __call = function(_, ...) return body(...) end }), cell
  end
  return body, cell
end

---------------------------------------------------------------------------------------------
-- Operations
---------------------------------------------------------------------------------------------
local function trim(pool, max, rng)
  while #pool > max do table.remove(pool, rng.int(1, #pool)) end
end

local function pickReceiver(rng, kind)
  local k = rng.int(1, 10)
  if k <= 7 then
    local v = poolPick(rng, kind)
    if v ~= nil or k > 1 then return v end
  end
  return randomValue(rng, MAXDEPTH)
end

function boundedLoop(rng, depth, recv, extra)
  if depth >= MAXDEPTH then return end
  -- A loop must never block: events on sockets that are never ready and no timer would.
  local exit = invoke("loopexit", F.base.loopexit, pack(recv, rng.pick { 0, 0, 0.0005, 0.001, 0.002 }))
  -- loopexit returns -1 when libevent cannot schedule the exit (out of memory, under the fault
  -- harness): then a real base's loop could block for good, so it is not run. (A receiver that
  -- is not a base made loopexit raise, and makes loop raise too: that call is still made.)
  if exit[1] and exit[2] ~= 0 then return end
  local timer
  if rng.chance(0.2) then
    local r = invoke("addevent", F.base.addevent, pack(recv, nil, EV_TIMEOUT, function()
      pcall(F.base.loopexit, recv)
      return LEAVE
    end, rng.pick { 0, 0.0005 }))
    timer = r[2]
  end
  stats.loops = stats.loops + 1
  local args = pack(recv)
  if extra then
    for i = 1, extra.n do args[i + 1] = extra[i] end
    args.n = extra.n + 1
  end
  invoke("loop", F.base.loop, args)
  return timer
end

local function opMethod(rng, depth)
  local kind = rng.pick(TYPES)
  local m = rng.pick(T[kind])
  local recv = pickReceiver(rng, kind)
  local args = rng.chance(0.6) and plausibleArgs(rng, m.name, depth) or randomArgs(rng, 0, 4, depth)
  if m.name == "loop" then
    boundedLoop(rng, depth, recv, args)
    return
  end
  local r
  table.insert(args, 1, recv); args.n = args.n + 1
  if mtType[type(recv) == "userdata" and getmetatable(recv) or false] == kind and rng.chance(0.5) then
    local name = m.name
    r = invoke(kind .. ":" .. name, function(o, ...) return o[name](o, ...) end, args) -- through __index
  else
    r = invoke(kind .. ":" .. m.name, m.fn, args)
  end
  if args.cell and r[1] then args.cell.obj, args.cell.base = r[2], recv end
end

local function opMeta(rng, depth)
  local mm = rng.pick(METAMETHODS)
  if mm.name == "__gc" and rng.chance(0.5) then mm = rng.pick(METAMETHODS) end -- bases die fast enough
  local recv = rng.chance(0.7) and poolPick(rng, mm.kind) or randomValue(rng, depth)
  local args = randomArgs(rng, 0, 2, depth)
  table.insert(args, 1, recv); args.n = args.n + 1
  invoke(mm.kind .. "." .. mm.name, mm.fn, args)
end

local function opOperator(rng, depth)
  local recv = rng.chance(0.7) and poolPick(rng, rng.pick { "buffer", "buffer", "base", "event", "bev" })
    or randomValue(rng, depth)
  local k = rng.int(1, 4)
  if k == 1 then invoke("#", function(o) return #o end, pack(recv))
  elseif k == 2 then invoke("tostring", tostring, pack(recv))
  elseif k == 3 then invoke("index", function(o, key) return o[key] end, pack(recv, randomValue(rng, depth)))
  elseif type(recv) == "userdata" then -- (never on _G, string or the module table)
    invoke("newindex", function(o, key, v) o[key] = v end, pack(recv, randomString(rng), randomValue(rng, depth)))
  end
end

-- core.tls.context parameters: LuaSec's keys with good and bad values, real certificate files
-- (an encrypted key makes OpenSSL call the password function, which does random things too).
local TLS_CERTS -- made in run() when the openssl command works
local TLS_KEYS = { "mode", "protocol", "certificate", "key", "password", "cafile", "capath", "verify", "depth",
  "ciphers", "ciphersuites", "curve", "curveslist", "dhparam", "alpn", "options", "verifyext", "dane" }
local function tlsFile(rng, ...)
  if not TLS_CERTS then return "/nonexistent" end
  return TLS_CERTS[rng.pick { ... }] or "/nonexistent"
end
local function tlsValue(rng, key, depth)
  local r = rng
  if r.chance(0.1) then return randomValue(r, depth) end
  if key == "mode" then return r.pick { "client", "server", "both", "" }
  elseif key == "protocol" then return r.pick { "tlsv1_2", "tlsv1_3", "any", "sslv23", "tlsv1", "x" }
  elseif key == "certificate" then return tlsFile(r, "server", "chain", "self", "garbage", "missing")
  elseif key == "key" then return tlsFile(r, "key", "encrypted", "encrypted", "other_key", "self_key", "garbage")
  elseif key == "password" then
    local password = TLS_CERTS and TLS_CERTS.password or "x"
    local k = r.int(1, 9)
    if k == 1 then return password
    elseif k == 2 then return "wrong"
    elseif k == 3 then return function() return password end
    elseif k == 4 then
      local e = randomErrorValue(r)
      return function() error(e) end
    elseif k == 5 then return function() collectgarbage() return password end
    elseif k == 6 then
      local crng = r.fork()
      return function() if depth + 1 < MAXDEPTH then step(crng, depth + 1) end return password end
    elseif k == 7 then return function() return coroutine.yield(password) end
    elseif k == 8 then return function() return randomValue(r, MAXDEPTH) end
    end
    return (makeCallback(r, depth))
  elseif key == "cafile" then return tlsFile(r, "ca", "ca", "garbage", "missing")
  elseif key == "capath" then return tlsFile(r, "capath", "missing")
  elseif key == "verify" then return r.pick { "none", "peer", { "peer", "fail_if_no_peer_cert" }, { "bogus" }, {}, { peer = true } }
  elseif key == "depth" then return r.pick { 0, 3, -1, 1.5, "2", 2 ^ 40 }
  elseif key == "ciphers" then return r.pick { "HIGH", { "HIGH", "!aNULL" }, "NOPE", "" }
  elseif key == "ciphersuites" then return r.pick { "TLS_AES_128_GCM_SHA256", "NOPE", { "TLS_AES_128_GCM_SHA256" } }
  elseif key == "curve" then return r.pick { "P-256", "nope", false }
  elseif key == "curveslist" then return r.pick { "X25519:P-256", { "X25519" }, "x" }
  elseif key == "dhparam" then
    local dh = TLS_CERTS and TLS_CERTS.read(TLS_CERTS.dh) or "junk"
    return r.pick { tlsFile(r, "dh", "garbage"), function() return dh end, function() return "junk" end,
      function() error("no dh") end, function() collectgarbage() return dh end }
  elseif key == "alpn" then return r.pick { "h2", { "h2", "http/1.1" }, {}, "", string.rep("x", 300), function() end }
  elseif key == "options" then return r.pick { "no_ticket", { "all", "no_sslv2" }, { no_ticket = true }, { "bogus" } }
  elseif key == "verifyext" then return r.pick { "lsec_continue", { "lsec_continue", "lsec_ignore_purpose" }, "x" }
  end
  return randomValue(r, depth)
end
local function plausibleTlsParams(rng, depth)
  local t = { mode = rng.chance(0.9) and rng.pick { "client", "server" } or tlsValue(rng, "mode", depth) }
  if rng.chance(0.4) then
    t.certificate, t.key = tlsValue(rng, "certificate", depth), tlsValue(rng, "key", depth)
    t.password = rng.chance(0.7) and tlsValue(rng, "password", depth) or nil
  end
  for _ = 1, rng.int(0, 5) do
    local key = rng.pick(TLS_KEYS)
    t[key] = tlsValue(rng, key, depth)
  end
  -- A client without a CA of its own loads the system's store (milliseconds): mostly give one.
  if t.mode == "client" and t.cafile == nil and t.capath == nil and rng.chance(0.9) then t.cafile = tlsFile(rng, "ca") end
  return t
end

local function opModule(rng, depth)
  local f = rng.pick(MODULEFNS)
  if f.name == "tls.context" and rng.chance(0.7) then
    invoke(f.name, f.fn, pack(plausibleTlsParams(rng, depth)))
    trim(P.tls, 8, rng)
    return
  end
  invoke(f.name, f.fn, randomArgs(rng, 0, 5, depth))
  trim(P.base, 6, rng)
  trim(P.tls, 8, rng)
end

local function opNewBase(rng)
  invoke("core.new", core.new, pack())
  trim(P.base, 6, rng)
end

local function opNewEvent(rng, depth)
  local recv = rng.chance(0.9) and liveBase(rng) or randomValue(rng, depth)
  local args = plausibleArgs(rng, "addevent", depth)
  local cell = args.cell
  table.insert(args, 1, recv); args.n = args.n + 1
  local r = invoke("base:addevent", F.base.addevent, args)
  if r[1] then cell.obj, cell.base = r[2], recv end
  trim(P.event, 48, rng)
end

-- A well-formed event that will fire: a timer, or a socket that is writable or has data.
local function opGoodEvent(rng, depth)
  local base = liveBase(rng)
  local fd, mask, timeout
  if rng.chance(0.3) then
    mask, timeout = rng.pick { 0, EV_TIMEOUT }, rng.pick { 0, 0, 1e-6, 0.0005, 0.001 }
  else
    fd = poolPick(rng, "sock")
    if rng.chance(0.5) then fd = fd and fd:getfd() end
    mask = rng.pick { EV_READ, EV_WRITE, EV_WRITE, EV_READ + EV_WRITE }
    if rng.chance(0.6) then timeout = rng.pick { 0, 0.0005, 0.01 } end
  end
  local cb, cell = makeCallback(rng, depth)
  local r = invoke("base:addevent", F.base.addevent, pack(base, fd, mask, cb, timeout))
  if r[1] then cell.obj, cell.base = r[2], base end
  trim(P.event, 48, rng)
end

local function opNewBuffer(rng, depth)
  local r = invoke("buffer.new", core.buffer.new, pack())
  if r[1] and rng.chance(0.7) then
    invoke("buffer:add", F.buffer.add, pack(r[2], randomString(rng), randomString(rng)))
  end
  trim(P.buffer, 24, rng)
end

local function opNewBev(rng, depth)
  if not bevWorks then return opNewBuffer(rng, depth) end
  local rcb, rcell = makeCallback(rng, depth)
  local wcb, wcell = makeCallback(rng, depth)
  local ecb, ecell = makeCallback(rng, depth)
  if rng.chance(0.2) then rcb = nil end
  if rng.chance(0.2) then wcb = nil end
  if rng.chance(0.05) then ecb = randomValue(rng, depth) end
  local fd = rng.chance(0.8) and poolPick(rng, "sock") or randomFd(rng)
  local args
  if bevNew == "fd-first" or rng.chance(0.2) then
    args = pack(fd, rcb, wcb, ecb)
  else
    args = pack(rng.chance(0.9) and liveBase(rng) or randomValue(rng, depth), fd, rcb, wcb, ecb)
  end
  local r = invoke("bufferevent.new", core.bufferevent.new, args)
  if r[1] then
    local bev = r[2]
    rcell.obj, wcell.obj, ecell.obj = bev, bev, bev
    if args.n == 5 then rcell.base, wcell.base, ecell.base = args[1], args[1], args[1] end
    if rng.chance(0.7) then invoke("bev:enable", F.bev.enable, pack(bev, rng.pick { EV_READ, EV_READ + EV_WRITE })) end
    if rng.chance(0.5) then
      local out = invoke("bev:get_write", F.bev.get_write, pack(bev))
      if out[1] then invoke("buffer:add", F.buffer.add, pack(out[2], randomString(rng))) end
    end
  end
  trim(P.bev, 10, rng)
end

-- A loopback address for listeners and connections: IPv4 mostly, IPv6 too.
local function loopback(rng)
  return rng.chance(0.8) and "127.0.0.1" or "::1"
end

-- Options for listener.new or bufferevent.connect: mostly good, sometimes not.
local function netOptions(rng, depth, good)
  if rng.chance(0.1) then return randomValue(rng, depth) end
  local t = {}
  for name, value in pairs(good) do
    if rng.chance(0.8) then t[name] = value end
  end
  if rng.chance(0.1) then t[randomString(rng)] = randomValue(rng, depth) end
  if rng.chance(0.1) then t[rng.pick { "port", "backlog", "reuseaddr", "host", "timeout", "tls" }] = randomValue(rng, depth) end
  return t
end

local function opNewListener(rng, depth)
  if not core.listener then return opNewBuffer(rng, depth) end
  local acb, acell = makeCallback(rng, depth)
  local base = rng.chance(0.9) and liveBase(rng) or randomValue(rng, depth)
  local keep = rng.chance(0.5)
  local on_accept = function(bev, ...)
    if keep and type(bev) == "userdata" and not labels[bev] then
      label(bev, "accepted")
      P.bev[#P.bev + 1] = bev
      invoke("bev:set_callbacks", F.bev.set_callbacks, pack(bev, makeCallback(rng, depth), nil, makeCallback(rng, depth)))
      invoke("bev:enable", F.bev.enable, pack(bev, EV_READ))
    end
    return acb(bev, ...)
  end
  local options = netOptions(rng, depth, { host = loopback(rng), port = 0, backlog = rng.pick { 1, 8, 128 }, reuseaddr = rng.chance(0.5),
    tls = rng.chance(0.4) and poolPick(rng, "tls") or nil })
  local r = invoke("listener.new", core.listener.new, pack(base, options, rng.chance(0.95) and on_accept or randomValue(rng, depth)))
  if r[1] then
    acell.obj = r[2]
    acell.base = base
  end
  trim(P.listener, 4, rng)
end

local function opConnect(rng, depth)
  if not core.bufferevent.connect then return opNewBuffer(rng, depth) end
  local host, port = loopback(rng), rng.int(1, 65535)
  local l = poolPick(rng, "listener")
  if l and rng.chance(0.8) then
    local ok, h, p = pcall(F.listener.address, l)
    if ok then host, port = h, p end
  end
  local resolver = core.dns and rng.chance(0.3) and poolPick(rng, "resolver")
  if resolver then
    -- By name, through a resolver that asks only the silent loopback name server.
    host = rng.pick { "localhost", "x.invalid", "nosuch.test", "::1" }
  end
  local rcb, rcell = makeCallback(rng, depth)
  local ecb, ecell = makeCallback(rng, depth)
  local options = netOptions(rng, depth, { timeout = rng.pick { 0, 0.001, 0.05, 1 }, dns = resolver or nil,
    tls = rng.chance(0.4) and poolPick(rng, "tls") or nil, servername = rng.chance(0.3) and rng.pick { "localhost", "x" } or nil })
  local base = rng.chance(0.9) and liveBase(rng) or randomValue(rng, depth)
  local r = invoke("bufferevent.connect", core.bufferevent.connect,
    pack(base, rng.chance(0.95) and host or randomValue(rng, depth), port, rcb, nil, ecb, options))
  if r[1] then
    rcell.obj, ecell.obj, rcell.base, ecell.base = r[2], r[2], base, base
    if rng.chance(0.5) then
      local out = invoke("bev:get_write", F.bev.get_write, pack(r[2]))
      if out[1] then invoke("buffer:add", F.buffer.add, pack(out[2], randomString(rng))) end
    end
  end
  trim(P.bev, 10, rng)
end

-- TLS misuse on purpose: starttls and tls() on bufferevents in every state (closed, still
-- connecting, TLS already, plain), options.tls of the wrong type or role or finalized, and real
-- STARTTLS handshakes between a listener's connection and a connect's, which later steps may
-- close, collect or upgrade again at any point.
local TLS_GOOD -- { server =, client =, lenient = } contexts, made in run() when certificates exist
local function opTls(rng, depth)
  if not TLS_GOOD or not core.listener then return opNewBuffer(rng, depth) end
  local k = rng.int(1, 5)
  local function someContext()
    local k2 = rng.int(1, 5)
    if k2 == 1 then return TLS_GOOD.server elseif k2 == 2 then return TLS_GOOD.client
    elseif k2 == 3 then return TLS_GOOD.lenient elseif k2 == 4 then return poolPick(rng, "tls") end
    return randomValue(rng, depth)
  end
  local function someOptions()
    return rng.pick { nil, {}, { servername = "localhost" }, { servername = "127.0.0.1" }, { servername = "wrong.test" } }
  end
  if k == 1 then
    -- A bufferevent of the pool, whatever its state: starttls, then tls().
    local bev = poolPick(rng, "bev")
    invoke("bev:starttls", F.bev.starttls, pack(bev, someContext(), someOptions()))
    invoke("bev:tls", F.bev.tls, pack(bev))
  elseif k == 2 then
    -- Closed, then upgraded and asked again.
    local bev = poolPick(rng, "bev")
    invoke("bev:close", F.bev.close, pack(bev))
    invoke("bev:starttls", F.bev.starttls, pack(bev, someContext(), someOptions()))
    invoke("bev:tls", F.bev.tls, pack(bev))
  elseif k == 3 then
    -- options.tls that is not a context of the right role, or one finalized by hand.
    local wrong = rng.pick { "context", 1, true, {}, print, poolPick(rng, "bev"), poolPick(rng, "base"),
      poolPick(rng, "buffer"), TLS_GOOD.server, TLS_GOOD.client, "finalized" }
    if wrong == "finalized" then
      local r = invoke("tls.context", core.tls.context, pack({ mode = rng.pick { "client", "server" }, cafile = TLS_CERTS.ca }))
      if r[1] then invoke("tls.__gc(own)", getmetatable(r[2]).__gc, pack(r[2])); wrong = r[2] end
    end
    local base = liveBase(rng)
    invoke("listener.new", core.listener.new, pack(base, { host = "127.0.0.1", port = 0, tls = wrong }, function(b) b:close() end))
    invoke("bufferevent.connect", core.bufferevent.connect,
      pack(base, "127.0.0.1", rng.int(1, 65535), nil, nil, function(b) b:close() end, { tls = wrong, timeout = 0.01 }))
    trim(P.listener, 4, rng)
  else
    -- A real STARTTLS: a plain listener whose connection upgrades as a server at once, a
    -- connect that upgrades as a client once up (its host checked, or another name, or none
    -- with a context that checks nothing); sometimes closed while the handshake runs.
    local base = liveBase(rng)
    local client_context = rng.pick { TLS_GOOD.client, TLS_GOOD.lenient, TLS_GOOD.server }
    local options = someOptions()
    -- Callbacks draw from a generator of their own: when they run depends on timing.
    local crng = rng.fork()
    local r = invoke("listener.new", core.listener.new, pack(base, { host = "127.0.0.1", port = 0 }, function(b)
      label(b, "accepted")
      P.bev[#P.bev + 1] = b
      invoke("bev:set_callbacks", F.bev.set_callbacks, pack(b, nil, nil, makeCallback(crng, depth)))
      invoke("bev:starttls", F.bev.starttls, pack(b, crng.chance(0.9) and TLS_GOOD.server or TLS_GOOD.client))
      invoke("bev:enable", F.bev.enable, pack(b, EV_READ))
    end))
    if not r[1] then return end
    local l = r[2]
    local a = invoke("listener:address", F.listener.address, pack(l))
    if not a[1] or type(a[3]) ~= "number" then return end
    local ecb = makeCallback(rng, depth)
    local c = invoke("bufferevent.connect", core.bufferevent.connect, pack(base, "127.0.0.1", a[3], nil, nil, function(b, what, ...)
      if what == core.EVBUFFER_CONNECTED then
        local plain = invoke("bev:tls", F.bev.tls, pack(b))
        if plain[1] and plain[2] == nil then invoke("bev:starttls", F.bev.starttls, pack(b, client_context, options)) end
      end
      return ecb(b, what, ...)
    end, { timeout = 1 }))
    if c[1] and rng.chance(0.5) then
      local out = invoke("bev:get_write", F.bev.get_write, pack(c[2]))
      if out[1] then invoke("buffer:add", F.buffer.add, pack(out[2], randomString(rng))) end
    end
    for _ = 1, rng.int(0, 3) do boundedLoop(rng, depth, base) end
    if c[1] and rng.chance(0.3) then invoke("bev:close", F.bev.close, pack(c[2])) end
    if rng.chance(0.5) then invoke("listener:close", F.listener.close, pack(l)) end
    trim(P.listener, 4, rng)
  end
  trim(P.bev, 10, rng)
end

-- A resolver on a live base (asking only the silent loopback name server), with a few lookups.
local function opNewResolver(rng, depth)
  local options = rng.pick {
    { nameservers = QUIET_NAMESERVERS, timeout = 0.01, attempts = 1 },
    { nameservers = QUIET_NAMESERVERS, hosts = false, timeout = 0.002 },
    { nameservers = { "[::1]:9", "127.0.0.1:9" }, timeout = 0.005, attempts = 2 },
  }
  local r = invoke("dns.new", core.dns.new, pack(liveBase(rng), options))
  if not r[1] then return end
  for _ = 1, rng.int(0, 3) do
    local args = plausibleArgs(rng, "resolve", depth)
    table.insert(args, 1, r[2]); args.n = args.n + 1
    local q = invoke("resolver:resolve", F.resolver.resolve, args)
    if args.cell and q[1] then args.cell.obj, args.cell.base = q[2], r[2] end
  end
  trim(P.resolver, 8, rng)
  trim(P.request, 24, rng)
end

local function opLoop(rng, depth)
  local recv = rng.chance(0.95) and liveBase(rng) or randomValue(rng, depth)
  boundedLoop(rng, depth, recv)
end

local function opGc(rng)
  stats.gcs = stats.gcs + 1
  if rng.chance(0.3) then collectgarbage() else collectgarbage("step", rng.int(0, 100)) end
end

local function opDrop(rng)
  local kind = rng.pick { "base", "event", "event", "buffer", "bev", "co", "listener", "resolver", "request" }
  local pool = P[kind]
  if #pool == 0 then return end
  if rng.chance(0.05) then
    for i = #pool, 1, -1 do pool[i] = nil end
  else
    table.remove(pool, rng.int(1, #pool))
  end
end

-- Accepts whatever waits in the listener's backlog (a full backlog makes connect() hang).
local pendingConnections = 0
local function drainBacklog()
  listener:settimeout(0)
  for _ = 1, 64 do
    local s = listener:accept()
    if not s then break end
    s:close()
  end
  pendingConnections = 0
end

local function newSocketPair()
  if not listener then return end
  if pendingConnections > 6 then drainBacklog() end
  local c = socket.tcp()
  c:settimeout(0.5)
  local ip, port = listener:getsockname()
  if not c:connect(ip, port) then c:close(); return end
  local _, cport = c:getsockname()
  local s
  listener:settimeout(0.5)
  for _ = 1, 64 do -- the connection may queue behind pending ones
    local a = listener:accept()
    if not a then break end
    local _, aport = a:getpeername()
    if tostring(aport) == tostring(cport) then s = a; break end
    a:close()
  end
  pendingConnections = 0
  listener:settimeout(0)
  c:settimeout(0)
  label(c, "client")
  P.sock[#P.sock + 1] = c
  if s then
    s:settimeout(0)
    label(s, "server")
    P.sock[#P.sock + 1] = s
  end
end

local function closeSocket(s)
  local fd = s:getfd()
  if type(fd) == "number" and fd >= 0 then staleFds[#staleFds + 1] = fd end
  s:close()
end

local function opSocket(rng)
  local k = rng.int(1, 6)
  if k == 1 and #P.sock < 14 then newSocketPair()
  elseif k == 2 and #P.sock > 2 then
    local i = rng.int(1, #P.sock)
    local s = table.remove(P.sock, i)
    if s ~= listener then closeSocket(s) end
    newSocketPair()
  elseif k <= 4 then
    local s = poolPick(rng, "sock")
    if s and s.send then pcall(s.send, s, randomString(rng)) end
  elseif k == 5 then
    local s = poolPick(rng, "sock")
    if s and s.receive then pcall(s.receive, s, rng.int(1, 100000)) end
  elseif pendingConnections < 6 then -- a connection waiting in the listener's backlog makes it readable
    pendingConnections = pendingConnections + 1
    local c = socket.tcp()
    c:settimeout(0.5)
    local ip, port = listener:getsockname()
    c:connect(ip, port)
    c:settimeout(0)
    label(c, "pending")
    P.sock[#P.sock + 1] = c
  end
  while #P.sock > 16 do
    local s = table.remove(P.sock, rng.int(1, #P.sock))
    if s ~= listener then closeSocket(s) end
  end
end

local function opCoroutine(rng, depth)
  if #P.co > 0 and rng.chance(0.5) then
    local i = rng.int(1, #P.co)
    local co = P.co[i]
    local r = pack(coroutine.resume(co, randomValue(rng, depth)))
    if not r[1] then recordError(r[2], function() return "coroutine.resume" end) end
    if coroutine.status(co) == "dead" then
      -- The coroutine's own steps may have changed P.co meanwhile: look it up again.
      for j = #P.co, 1, -1 do
        if P.co[j] == co then table.remove(P.co, j) break end
      end
    end
    return
  end
  local crng = rng.fork()
  local co = coroutine.create(function()
    for _ = 1, crng.int(1, 4) do
      step(crng, depth + 1, true)
      if crng.chance(0.3) then coroutine.yield() end
    end
  end)
  local r = pack(coroutine.resume(co))
  if not r[1] then recordError(r[2], function() return "coroutine.resume (new)" end) end
  if coroutine.status(co) == "suspended" then
    P.co[#P.co + 1] = co
    trim(P.co, 6, rng)
  end
end

-- Sends ourselves SIGWINCH or SIGURG (ignored by default, so harmless when no event wants them)
-- and loops a base that mostly just got an EV_SIGNAL event for it. Costs a fork, hence rare.
local PID
local function opSignal(rng, depth)
  if not PID or not rng.chance(0.3) then return end
  local base = liveBase(rng)
  local number, name = unpack(rng.pick { { 28, "WINCH" }, { 23, "URG" } })
  if rng.chance(0.8) then
    local cb, cell = makeCallback(rng, depth)
    local r = invoke("base:addevent", F.base.addevent, pack(base, number, EV_SIGNAL, cb,
      rng.chance(0.3) and 0.001 or nil))
    if r[1] then cell.obj, cell.base = r[2], base end
    trim(P.event, 48, rng)
  end
  stats.signals = stats.signals + 1
  os.execute(string.format("kill -%s %d", name, PID))
  boundedLoop(rng, depth, base)
end

local OPS = {
  { 34, "method", opMethod },
  { 5, "meta", opMeta },
  { 3, "operator", opOperator },
  { 4, "module", opModule },
  { 2, "newbase", opNewBase },
  { 8, "newevent", opNewEvent },
  { 6, "goodevent", opGoodEvent },
  { 4, "newbuffer", opNewBuffer },
  { 4, "newbev", opNewBev },
  { 2, "newlistener", opNewListener },
  { 3, "connect", opConnect },
  { 3, "newresolver", opNewResolver },
  { 2, "tls", opTls },
  { 4, "loop", opLoop },
  { 3, "gc", opGc },
  { 4, "drop", opDrop },
  { 3, "socket", opSocket },
  { 2, "coroutine", opCoroutine },
  { 1, "signal", opSignal },
}
-- Inside callbacks (and coroutines) no sockets are made: only things that touch the module.
local NESTED_OPS = {}
local TOTAL, NESTED_TOTAL = 0, 0
for _, op in ipairs(OPS) do
  TOTAL = TOTAL + op[1]
  if op[2] ~= "socket" and op[2] ~= "signal" then
    NESTED_OPS[#NESTED_OPS + 1] = op
    NESTED_TOTAL = NESTED_TOTAL + op[1]
  end
end

function step(rng, depth, inCoroutine)
  local ops, total = OPS, TOTAL
  if depth > 0 then ops, total = NESTED_OPS, NESTED_TOTAL end
  local x = rng.int(1, total)
  for _, op in ipairs(ops) do
    x = x - op[1]
    if x <= 0 then
      if op[2] == "coroutine" and inCoroutine then return end
      if depth > 0 then return op[3](rng, depth) end
      local t0 = gettime()
      op[3](rng, depth)
      opTime[op[2]] = (opTime[op[2]] or 0) + gettime() - t0
      return
    end
  end
end

---------------------------------------------------------------------------------------------
-- Setup: method tables from the metatables, plus the documented names
---------------------------------------------------------------------------------------------
local function collect(kind, obj, missing)
  local mt = getmetatable(obj)
  assert(type(mt) == "table", kind .. " has no metatable")
  mtType[mt] = kind
  local byName = {}
  if type(mt.__index) == "table" then
    for k, v in pairs(mt.__index) do
      if type(k) == "string" and type(v) == "function" then byName[k] = v end
    end
  end
  for _, name in ipairs(DOCUMENTED[kind]) do
    if not byName[name] then
      local ok, v = pcall(function() return obj[name] end)
      if ok and type(v) == "function" then byName[name] = v else missing[#missing + 1] = kind .. ":" .. name end
    end
  end
  local list, fns = {}, {}
  for name, fn in pairs(byName) do list[#list + 1] = { name = name, fn = fn }; fns[name] = fn end
  table.sort(list, function(a, b) return a.name < b.name end)
  T[kind], F[kind] = list, fns
  local names = {}
  for k, v in pairs(mt) do
    if type(v) == "function" and type(k) == "string" then names[#names + 1] = k end
  end
  table.sort(names)
  for _, k in ipairs(names) do METAMETHODS[#METAMETHODS + 1] = { kind = kind, name = k, fn = mt[k] } end
end

local function probeBufferevent(base, sock)
  if type(core.bufferevent) ~= "table" or type(core.bufferevent.new) ~= "function" then return nil end
  local cb = function() end
  local ok, bev = pcall(core.bufferevent.new, base, sock, cb, cb, cb)
  if ok and type(bev) == "userdata" then return bev, "base-first" end
  return nil
end

-- How many fds the process has open, and which (nil where /proc is missing).
local function openFds()
  local ls = PID and io.popen("ls /proc/" .. PID .. "/fd")
  if not ls then return nil end
  local n, set = 0, {}
  for line in ls:lines() do
    n = n + 1
    if tonumber(line) then set[tonumber(line)] = true end
  end
  ls:close()
  if n == 0 then return nil end
  return n, set
end

local function moduleLoadedFrom()
  local file = ("luaevent.core"):gsub("%.", "/")
  for tmpl in package.cpath:gmatch("[^;]+") do
    local path = tmpl:gsub("%?", file)
    local f = io.open(path, "rb")
    if f then f:close(); return path end
  end
end

local function run()
  local rng = newRng(SEED)
  P = { base = {}, event = {}, buffer = {}, bev = {}, sock = {}, co = {}, listener = {}, tls = {}, resolver = {}, request = {} }
  stats = { calls = 0, steps = 0, errors = 0, loops = 0, callbacks = 0, gcs = 0, objects = 0,
    signals = 0, signalled = 0, slowest = 0 }
  failures, errorCounts, staleFds = {}, {}, {}
  T, F, METAMETHODS, mtType, TYPES = {}, {}, {}, {}, { "base", "event", "buffer", "resolver", "request" }
  for i = 1, 8 do
    local t = {}
    for j = 1, rng.int(1, 300) do t[j] = rng.int(0, 255) end
    BINARY[i] = string.char(unpack(t))
  end

  do
    local f = io.open("/proc/self/stat", "r")
    PID = f and tonumber(f:read("*l"):match("^(%d+)"))
    if f then f:close() end
  end
  local fdsBefore, open = openFds()
  foreignFds = open
  if not open then -- no /proc: keep away from the low fds, where inherited ones are
    foreignFds = {}
    for fd = 0, 63 do foreignFds[fd] = true end
  end

  -- Fill fds 3.. so that our sockets and libevent's fds are all >= 32: an fd given to addevent
  -- may become a signal number (see sanitizeEventFd).
  local dummies = {}
  for i = 1, 40 do dummies[i] = assert(io.open("/dev/null", "r")) end

  listener = assert(socket.bind("127.0.0.1", 0))
  pendingConnections = 0
  listener:settimeout(0)
  label(listener, "listener")
  P.sock[1] = listener
  for _ = 1, 3 do newSocketPair() end
  local udp = socket.udp()
  label(udp, "udp")
  P.sock[#P.sock + 1] = udp

  local missing = {}
  local base = core.new()
  collect("base", base, missing)
  collect("event", base:addevent(nil, EV_TIMEOUT, function() end, 1), missing)
  collect("buffer", core.buffer.new(), missing)
  do
    local resolver = core.dns.new(base, { nameservers = QUIET_NAMESERVERS })
    collect("resolver", resolver, missing)
    collect("request", resolver:resolve("127.0.0.1", function() end), missing)
    resolver:close()
  end
  local bev, form = probeBufferevent(base, P.sock[2])
  if bev then
    bevWorks, bevNew = true, form
    collect("bev", bev, missing)
    TYPES[#TYPES + 1] = "bev"
    pcall(F.bev.close, bev)
  else
    bevWorks = false
    T.bev, F.bev = {}, {}
  end
  if core.listener then
    local l = core.listener.new(base, { host = "127.0.0.1" }, function() end)
    collect("listener", l, missing)
    TYPES[#TYPES + 1] = "listener"
    l:close()
  else
    T.listener, F.listener = {}, {}
  end
  assert(#missing == 0, "documented methods missing: " .. table.concat(missing, ", "))
  base, bev = nil, nil -- (a closed bufferevent still holds its base and socket until collected)

  MODULEFNS = {
    { name = "core.new", fn = core.new },
    { name = "core.libevent_version", fn = core.libevent_version },
    { name = "buffer.new", fn = core.buffer.new },
    { name = "dns.new", fn = core.dns.new },
  }
  if type(core.bufferevent) == "table" and type(core.bufferevent.new) == "function" then
    MODULEFNS[#MODULEFNS + 1] = { name = "bufferevent.new", fn = core.bufferevent.new }
  end
  if core.listener then
    MODULEFNS[#MODULEFNS + 1] = { name = "listener.new", fn = core.listener.new }
    MODULEFNS[#MODULEFNS + 1] = { name = "bufferevent.connect", fn = core.bufferevent.connect }
  end
  if type(core.tls) == "table" and type(core.tls.context) == "function" then
    MODULEFNS[#MODULEFNS + 1] = { name = "tls.context", fn = core.tls.context }
    local probe = core.tls.context { mode = "server" }
    mtType[getmetatable(probe)] = "tls"
    METAMETHODS[#METAMETHODS + 1] = { kind = "tls", name = "__gc", fn = getmetatable(probe).__gc }
    local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
    local ok, certs = pcall(function() return dofile(here .. "certs.lua")() end)
    TLS_CERTS = ok and certs or nil
    if TLS_CERTS then
      TLS_CERTS.missing = TLS_CERTS.dir .. "/missing.pem"
      TLS_GOOD = {
        server = core.tls.context { mode = "server", certificate = TLS_CERTS.chain, key = TLS_CERTS.key },
        client = core.tls.context { mode = "client", cafile = TLS_CERTS.ca },
        lenient = core.tls.context { mode = "client", cafile = TLS_CERTS.ca, verify = "none" },
      }
    end
  end

  ERRVALUES = { "boom", "", 42, NaN, true, {}, core, print, coroutine.create(function() end),
    setmetatable({}, { __tostring = function() return "custom error" end }),
    setmetatable({}, { __tostring = function() error("__tostring fails") end }),
    setmetatable({}, { __tostring = function() return {} end }),
    string.rep("long error ", 10000), "with\0nul" }
  FOREIGN = { io.stdout, listener, udp, coroutine.create(function() end), print, string, _G,
    setmetatable({}, { __index = function() error("index fails") end }),
    setmetatable({}, { __len = function() return 5 end, __tostring = function() return {} end }),
    setmetatable({}, { __call = function() return 1 end }) }
  if newproxy then FOREIGN[#FOREIGN + 1] = newproxy(true) end

  -- Closed objects from the start.
  do
    local b = core.new()
    label(b, "base")
    P.base[1] = b
    local e = b:addevent(nil, EV_TIMEOUT, function() end, 1)
    e:close()
    label(e, "event(closed)")
    P.event[1] = e
    local buf = core.buffer.new()
    buf:close()
    label(buf, "buffer(closed)")
    P.buffer[1] = buf
    local b2 = core.new()
    label(b2, "base")
    P.base[2] = b2
  end

  if TRACE or VERBOSE then
    io.stderr:write(string.format("misuse: seed %d, %d calls%s, module %s%s\n", SEED, CALLS,
      SECONDS and string.format(" or %g s", SECONDS) or "",
      tostring(moduleLoadedFrom()), bevWorks and ", bufferevents" or ", no bufferevents"))
  end

  local started = os.clock()
  local wall = socket.gettime()
  local deadline = SECONDS and gettime() + SECONDS
  while stats.calls < CALLS do
    if deadline and gettime() > deadline then
      stats.timedOut = true
      break
    end
    stats.steps = stats.steps + 1
    step(rng, 0)
    if stats.steps % 500 == 0 then -- keep memory and fds bounded
      closeLeakedEvents()
      for _, b in ipairs(P.buffer) do
        local ok, n = pcall(F.buffer.length, b)
        if ok and type(n) == "number" and n > 1000000 then pcall(F.buffer.drain, b, n) end
      end
    end
  end

  local function report(when)
    collectgarbage()
    io.stderr:write(string.format("misuse: %s: %.0f KB of Lua heap, %s open fds\n", when,
      collectgarbage("count"), tostring(openFds())))
  end
  if VERBOSE then report("before the final collection") end
  -- Close what our callbacks leaked, drop everything else and collect it, while the sockets are
  -- still open. Then every base must be gone, and its fds with it.
  for cell in pairs(strongCells) do
    if type(cell.obj) == "userdata" and mtType[getmetatable(cell.obj)] == "event" then pcall(F.event.close, cell.obj) end
  end
  for k in pairs(P) do P[k] = {} end
  collectgarbage()
  collectgarbage()
  for _, s in ipairs { listener, udp } do pcall(s.close, s) end
  if TLS_CERTS then TLS_CERTS.remove() end
  for _, f in ipairs(dummies) do f:close() end
  collectgarbage()
  stats.fdsBefore, stats.fdsAfter = fdsBefore, openFds()
  if VERBOSE then
    report("after it")
    io.stderr:write(string.format("misuse: open fds before %s, after %s\n", tostring(stats.fdsBefore), tostring(stats.fdsAfter)))
  end
  stats.cpu, stats.wall = os.clock() - started, socket.gettime() - wall

  if VERBOSE then
    io.stderr:write(string.format(
      "misuse: seed %d: %d calls in %d steps, %d errors, %d loops, %d callbacks, %d objects, "
      .. "%d signals sent, %d EV_SIGNAL callbacks, %.2f s cpu, %.2f s wall\n", SEED, stats.calls,
      stats.steps, stats.errors, stats.loops, stats.callbacks, stats.objects, stats.signals,
      stats.signalled, stats.cpu, stats.wall))
    local t = {}
    for k, v in pairs(opTime) do t[#t + 1] = string.format("%s %.2f", k, v) end
    table.sort(t)
    local c = {}
    for k, v in pairs(callCounts) do c[#c + 1] = string.format("%s %d/%d", k, v[2], v[1]) end
    table.sort(c)
    io.stderr:write("misuse: successes/calls: " .. table.concat(c, ", ") .. "\n")
    io.stderr:write("misuse: wall time per step kind: " .. table.concat(t, ", ") .. "\n")
    io.stderr:write(string.format("misuse: slowest call %.3f s: %s\n", stats.slowest, tostring(stats.slowestCall)))
    local keys = {}
    for k in pairs(errorCounts) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return errorCounts[a] > errorCounts[b] end)
    for i = 1, math.min(#keys, 60) do io.stderr:write(string.format("%7d  %s\n", errorCounts[keys[i]], keys[i])) end
  end
  return stats
end

-- What reproduces a run: the seed, and the calls made.
local function repro()
  return string.format("LUAEVENT_SEED=%d LUAEVENT_MISUSE_CALLS=%d%s", SEED, stats and stats.calls or CALLS,
    SECONDS and " LUAEVENT_MISUSE_SECONDS=1e9" or "")
end

describe("luaevent.core under random misuse", function()
  local title = SECONDS and string.format("%d random calls (or %g s of them)", CALLS, SECONDS)
    or string.format("%d random calls", CALLS)
  it("survives " .. title .. ", raising only string errors #misuse #cbug", function()
    local expected = os.getenv("LUAEVENT_EXPECT_CORE")
    if expected and expected ~= "" then
      assert.are.equal(expected, moduleLoadedFrom(), "the module under test was not loaded")
    end

    local ok, err = xpcall(run, debug.traceback)
    assert(ok, string.format("misuse run failed (%s): %s", repro(), tostring(err)))
    assert(stats.calls >= CALLS or stats.timedOut and stats.calls > 0)
    assert(#failures == 0, string.format(
      "%s: %d errors were not strings:\n%s", repro(), #failures, table.concat(failures, "\n", 1, math.min(#failures, 20))))

    -- Everything was closed or dropped and collected: no base may still hold its fds (an epoll
    -- fd and a pipe each; a slack of 2 for whatever else comes and goes). Where /proc is there
    -- they must have been counted; without it the check is reported as skipped, below.
    if PID then
      assert(stats.fdsBefore and stats.fdsAfter, string.format(
        "%s: could not count the open fds in /proc/%d/fd (before: %s, after: %s)", repro(), PID,
        tostring(stats.fdsBefore), tostring(stats.fdsAfter)))
      assert(stats.fdsAfter <= stats.fdsBefore + 2, string.format(
        "%s: %d fds open before the run, %d after everything was collected", repro(),
        stats.fdsBefore, stats.fdsAfter))
    end

    -- The module still works: a fresh base runs a timer and loop returns.
    local base = core.new()
    local fired = 0
    local ev = base:addevent(nil, EV_TIMEOUT, function(what)
      fired = fired + 1
      assert.are.equal(EV_TIMEOUT, what)
      return LEAVE
    end, 0.001)
    local result = base:loop()
    assert.are.equal(1, fired)
    assert.is_true(result == 0 or result == 1)
    ev:close()
    local buf = core.buffer.new()
    assert.are.equal(6, buf:add("abc\0", 12))
    assert.are.equal("abc\0" .. "12", buf:get_data())
    buf:close()
    if not PID then
      helpers.skip("no /proc/self: whether every fd was closed again was not checked")
    end
  end)
end)
