-- Hard and transient I/O faults on chosen connections, injected by tests/faults/iofault.c:
--
--   LD_PRELOAD=iofault.so lua5.4 tests/faults/io_faults.lua
--
-- Part 1, bufferevents: IO_CONNECTIONS loopback connections (default 24), each a client
-- bufferevent sending its own pseudo-random stream in messages of 1..4096 bytes and a server
-- bufferevent echoing it back; the client checks every byte as it arrives. Some connections
-- get a fault on one side (see PLAN):
--   * hard faults (ECONNRESET, EIO, EPIPE on every call from some point on, or ECONNRESET
--     once, as the kernel reports a reset) must end that connection through the faulted
--     side's error callback, with what = EVBUFFER_ERROR + EVBUFFER_READ or + EVBUFFER_WRITE
--     for the direction faulted; the program then closes that side, as a server would, and
--     the peer must end through its own error callback too; bytes that did come back must
--     be the right ones;
--   * transient faults (EAGAIN, EINTR a few times) must change nothing: every byte back,
--     no error callback;
--   * every connection without a fault must complete, byte for byte, without an error.
-- Part 2, addevent with buffer:read and buffer:write: an injected error makes read/write
-- return -1 and leaves the buffer as it was; the next call, without the fault, succeeds.
-- Part 3, a real reset (no shim involved): 5 bytes then a reset from the peer must give a read
-- callback with the bytes, then EVBUFFER_ERROR + EVBUFFER_READ, as libevent alone does
-- (tests/faults/reset_libevent.c).
--
-- The whole run must end within IO_SECONDS (default 10): a connection still open then is a
-- hang. Each check that fails prints a line; the last line is "io_faults: PASS" or
-- "io_faults: FAIL (n checks failed)", and the exit status follows it.
local core = require "luaevent.core"
local socket = require "socket"

local N = tonumber(os.getenv("IO_CONNECTIONS") or "") or 24
local SECONDS = tonumber(os.getenv("IO_SECONDS") or "") or 10
local BYTES = 32768
local WINDOW = 16384

local EV_READ, EV_WRITE, EV_TIMEOUT = core.EV_READ, core.EV_WRITE, core.EV_TIMEOUT
local READ, WRITE = core.EVBUFFER_READ, core.EVBUFFER_WRITE
local EOF, ERROR, TIMEOUT = core.EVBUFFER_EOF, core.EVBUFFER_ERROR, core.EVBUFFER_TIMEOUT

-- The shim answers queries through getenv; without it nothing would be injected, and a run
-- without faults proves nothing.
assert(os.getenv("IOFAULT injected"), "io_faults.lua must run with LD_PRELOAD=iofault.so")

local failed_checks = 0
local function check(ok, message)
  if not ok then
    failed_checks = failed_checks + 1
    print("FAIL: " .. message)
  end
  return ok
end

local function describe(what)
  local names = {}
  for _, f in ipairs { { EOF, "EOF" }, { ERROR, "ERROR" }, { TIMEOUT, "TIMEOUT" }, { READ, "READ" }, { WRITE, "WRITE" } } do
    if math.floor(what / f[1]) % 2 == 1 then names[#names + 1] = f[2] end
  end
  return string.format("%d (%s)", what, table.concat(names, "|"))
end

-- Which side of which connection gets which fault. `expect` is the error callback's `what` on
-- the faulted side; transient faults have none.
local PLAN = {
  [2] = { side = "server", dir = "read", errno = "ECONNRESET", after = 2, count = 0, expect = ERROR + READ },
  [4] = { side = "server", dir = "read", errno = "EIO", after = 0, count = 0, expect = ERROR + READ },
  [6] = { side = "server", dir = "write", errno = "EPIPE", after = 1, count = 0, expect = ERROR + WRITE },
  [8] = { side = "client", dir = "write", errno = "ECONNRESET", after = 0, count = 0, expect = ERROR + WRITE },
  [10] = { side = "client", dir = "read", errno = "EIO", after = 3, count = 0, expect = ERROR + READ },
  [12] = { side = "server", dir = "read", errno = "EAGAIN", after = 1, count = 5 },
  [14] = { side = "server", dir = "read", errno = "EINTR", after = 0, count = 5 },
  [16] = { side = "server", dir = "write", errno = "EAGAIN", after = 0, count = 5 },
  [18] = { side = "client", dir = "write", errno = "EINTR", after = 2, count = 5 },
  [20] = { side = "client", dir = "read", errno = "EAGAIN", after = 0, count = 3 },
  -- A reset is reported once by the kernel (later reads see end of file): a one-shot
  -- ECONNRESET on the first read of a wakeup (libevent's own) ...
  [22] = { side = "server", dir = "read", errno = "ECONNRESET", after = 0, count = 1, expect = ERROR + READ },
  -- ... and on the second, which is the module's read-ahead in the read callback.
  [24] = { side = "server", dir = "read", errno = "ECONNRESET", after = 1, count = 1, expect = ERROR + READ },
}

local unpack = table.unpack or unpack
local function stream(i)
  local state = i * 7919 + 1
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

local listener = assert(socket.bind("127.0.0.1", 0, 64))
local _, port = listener:getsockname()
listener:settimeout(2)
local function pair()
  local c = assert(socket.tcp())
  assert(c:connect("127.0.0.1", port))
  local s = assert(listener:accept())
  c:settimeout(0)
  s:settimeout(0)
  return c, s
end

------------------------------------------------------------------------ part 1 ----
local base = core.new()
local conns = {}
local open_sides = 0
local function maybe_finish()
  if open_sides == 0 then base:loopexit() end
end

local function close_side(conn, side)
  if conn[side .. "_open"] then
    conn[side .. "_open"] = false
    conn[side .. "_bev"]:close()
    conn[side]:close()
    open_sides = open_sides - 1
    maybe_finish()
  end
end

local function top_up(conn)
  local out = conn.client_bev:get_write()
  while conn.sent < BYTES and conn.sent - conn.verified < WINDOW do
    local size = math.min(conn.next_size, BYTES - conn.sent)
    out:add(conn.data:sub(conn.sent + 1, conn.sent + size))
    conn.sent = conn.sent + size
    conn.next_size = (conn.next_size * 31 + 7) % 4096 + 1
  end
end

local function on_client_read(conn)
  local input = conn.client_bev:get_read()
  local n = input:length()
  local got = input:get_data()
  input:drain(n)
  if got ~= conn.data:sub(conn.verified + 1, conn.verified + n) then
    conn.mismatch = true
  end
  conn.verified = conn.verified + n
  if conn.verified == BYTES then
    conn.completed = true
    close_side(conn, "client") -- the server sees end of file and closes its side
  else
    top_up(conn)
  end
end

local function on_error(conn, side)
  return function(_, what)
    conn.errors[#conn.errors + 1] = { side = side, what = what }
    -- As a server would: close this side; the peer then sees end of file (or a reset).
    close_side(conn, side)
  end
end

for i = 1, N do
  local c, s = pair()
  local conn = {
    index = i, client = c, server = s, data = stream(i), plan = PLAN[i],
    sent = 0, verified = 0, next_size = (i * 37) % 4096 + 1, errors = {},
    client_open = true, server_open = true,
  }
  conns[i] = conn
  conn.server_bev = core.bufferevent.new(base, s, function(bev)
    bev:get_write():add(bev:get_read())
  end, nil, on_error(conn, "server"))
  conn.client_bev = core.bufferevent.new(base, c, function() on_client_read(conn) end, nil, on_error(conn, "client"))
  open_sides = open_sides + 2
  if conn.plan then
    local p = conn.plan
    local fd = (p.side == "client" and c or s):getfd()
    os.getenv(string.format("IOFAULT fd=%d dir=%s errno=%s after=%d count=%d", fd, p.dir, p.errno, p.after, p.count))
    conn.fault_fd = fd
  end
end

for _, conn in ipairs(conns) do
  conn.server_bev:enable(EV_READ)
  conn.client_bev:enable(EV_READ)
  top_up(conn)
end

local started = socket.gettime()
base:loopexit(SECONDS)
base:loop()
local elapsed = socket.gettime() - started

local completed, ended_by_fault = 0, 0
for _, conn in ipairs(conns) do
  local i, p = conn.index, conn.plan
  local label = string.format("connection %d (%s)", i,
    p and string.format("%s %s %s after %d%s", p.side, p.dir, p.errno, p.after,
      p.count > 0 and (" x" .. p.count) or " onwards") or "no fault")
  local injected = conn.fault_fd and tonumber(os.getenv(string.format("IOFAULT injected fd=%d", conn.fault_fd))) or 0
  local whats = {}
  for _, e in ipairs(conn.errors) do whats[#whats + 1] = e.side .. " " .. describe(e.what) end
  check(not conn.mismatch, label .. ": wrong bytes came back")
  check(not conn.client_open and not conn.server_open,
    label .. ": still open after " .. SECONDS .. " s (a hang); verified " .. conn.verified .. " of " .. BYTES)
  if p then
    check(injected > 0, label .. ": the shim injected nothing")
  end
  if p and p.expect then
    local first = conn.errors[1]
    if check(first ~= nil and first.side == p.side,
        label .. ": the faulted side's error callback never ran first (callbacks: " .. (#whats > 0 and table.concat(whats, ", ") or "none") .. ")") then
      check(first.what == p.expect, label .. ": error callback what = " .. describe(first.what) .. ", expected " .. describe(p.expect))
      ended_by_fault = ended_by_fault + 1
    end
    local peer = conn.errors[2]
    check(peer ~= nil and peer.side ~= p.side, label .. ": the peer side did not end through its error callback")
    check(not conn.completed, label .. ": completed despite a hard fault")
  else
    -- The client closes once it has every byte; the server must then see end of file.
    check(conn.completed and conn.verified == BYTES, label .. ": did not get every byte back (" .. conn.verified .. " of " .. BYTES .. ")")
    check(#conn.errors == 1 and conn.errors[1].side == "server" and conn.errors[1].what == EOF + READ,
      label .. ": expected only the server's end of file, got: " .. (#whats > 0 and table.concat(whats, ", ") or "no callback"))
    if conn.completed then completed = completed + 1 end
  end
  if p then
    print(string.format("  %s: injected %d, callbacks: %s, bytes back %d", label, injected,
      #whats > 0 and table.concat(whats, ", ") or "none", conn.verified))
  end
end
print(string.format("io_faults part 1: %d connections, %d complete byte for byte, %d ended by their hard fault, %.2f s",
  N, completed, ended_by_fault, elapsed))

------------------------------------------------------------------------ part 2 ----
do
  local base2 = core.new()
  local a, b = pair()
  local afd, bfd = a:getfd(), b:getfd()
  local buf = core.buffer.new()
  local results = {}
  -- A read error on the first try, then the data.
  os.getenv(string.format("IOFAULT fd=%d dir=read errno=EIO after=0 count=1", bfd))
  assert(a:send("hello"))
  local ev = base2:addevent(b, EV_READ, function()
    results[#results + 1] = buf:read(bfd, 100)
    if #results == 2 then
      base2:loopexit() -- the 2 s bound below is only a safety net
      return core.LEAVE
    end
  end)
  base2:loopexit(2)
  base2:loop()
  check(results[1] == -1 and results[2] == 5 and buf:get_data() == "hello",
    string.format("buffer:read under EIO returned %s then %s (expected -1 then 5), buffer %q",
      tostring(results[1]), tostring(results[2]), buf:get_data()))
  ev:close()
  -- Write errors: EPIPE for good, then a transient EAGAIN; the data stays until written.
  local out = core.buffer.new()
  out:add("world")
  os.getenv(string.format("IOFAULT fd=%d dir=write errno=EPIPE after=0 count=0", afd))
  local r1 = out:write(afd)
  local kept1 = out:length()
  os.getenv(string.format("IOFAULT fd=%d dir=write errno=EAGAIN after=0 count=1", afd))
  local r2 = out:write(afd)
  local kept2 = out:length()
  local r3 = out:write(afd)
  check(r1 == -1 and kept1 == 5 and r2 == -1 and kept2 == 5 and r3 == 5 and out:length() == 0,
    string.format("buffer:write under EPIPE, EAGAIN, then none returned %s, %s, %s (expected -1, -1, 5), kept %d, %d",
      tostring(r1), tostring(r2), tostring(r3), kept1, kept2))
  socket.select({ b }, nil, 1)
  local got = b:receive(5)
  check(got == "world", "the peer received " .. tostring(got) .. " instead of world")
  print(string.format("io_faults part 2: buffer:read %s, %s; buffer:write %s, %s, %s", tostring(results[1]),
    tostring(results[2]), tostring(r1), tostring(r2), tostring(r3)))
  a:close()
  b:close()
end

------------------------------------------------------------------------ part 3 ----
-- A real reset, no shim involved: the peer sends a few bytes and closes with SO_LINGER 0, so
-- the kernel holds the bytes and then the reset. The first read returns the bytes, the next
-- one ECONNRESET (once: later reads see end of file). libevent alone reports this as
-- EVBUFFER_ERROR + EVBUFFER_READ after a read callback with the 5 bytes, and so must we.
do
  local base3 = core.new()
  local a, b = pair()
  assert(a:send("hello"))
  assert(a:setoption("linger", { on = true, timeout = 0 }))
  a:close()
  socket.select(nil, nil, 0.05)
  local got, what = "", nil
  local bev
  bev = core.bufferevent.new(base3, b, function()
    got = got .. bev:get_read():get_data()
    bev:get_read():drain(-1)
  end, nil, function(_, w)
    what = w
    bev:close()
    base3:loopexit()
  end)
  bev:enable(EV_READ)
  base3:loopexit(2)
  base3:loop()
  check(got == "hello", "part 3: the bytes sent before the reset did not arrive: " .. string.format("%q", got))
  check(what == ERROR + READ, "part 3: a real reset from the peer ended the bufferevent with what = " ..
    (what and describe(what) or "nothing") .. ", expected " .. describe(ERROR + READ))
  print(string.format("io_faults part 3: real reset: read %q, error callback what = %s", got, what and describe(what) or "none"))
  b:close()
end
listener:close()

print("io_faults: injected " .. tostring(os.getenv("IOFAULT injected")) .. " faults in all")
print(failed_checks == 0 and "io_faults: PASS" or string.format("io_faults: FAIL (%d checks failed)", failed_checks))
os.exit(failed_checks == 0 and 0 or 1, true)
