-- One thread's work for tests/threads/threads.c: in its own Lua state, on its own base, a
-- repeating timer, a listener echoing through bufferevents (with a read high watermark, which
-- arms the module's reserve), lookups on a resolver that asks a DNS server on this same base
-- (answered, cancelled, and ended by closing the resolver), all at once for ROUNDS rounds.
-- Returns a line saying what it did; raises an error when something went wrong. Under failing
-- allocations (FAILALLOC) errors are expected: the driver only checks that every thread ended
-- without a crash.
local core = require "luaevent.core"
local socket = require "socket"
local dns_server = dofile(TESTS_DIR .. "/spec/dns_server.lua")
local ROUNDS = tonumber(os.getenv("THREADS_ROUNDS") or "") or 20
local EV_READ, EV_WRITE = core.EV_READ, core.EV_WRITE

local base = core.new()
local ticks, echoed, answered, cancelled, closed = 0, 0, 0, 0, 0

local timer = base:addevent(nil, core.EV_TIMEOUT, function() ticks = ticks + 1 end, 0.001)

local accepted = {}
local listener = core.listener.new(base, { host = "127.0.0.1" }, function(bev)
  accepted[#accepted + 1] = bev
  bev:set_read_watermarks(0, 4096)
  bev:set_callbacks(function(b)
    local input = b:get_read()
    b:get_write():add(input:get_data())
    input:drain(-1)
  end, nil, function() end)
  bev:enable(EV_READ + EV_WRITE)
end)
local port = select(2, listener:address())

local server = dns_server.start(base)
local resolver = core.dns.new(base, { nameservers = { server.address }, hosts = false, timeout = 2 })

local clients = {}
local function connect(round)
  local message = ("round %d of thread %s"):format(round, THREAD_ID)
  local got = {}
  local bev
  bev = core.bufferevent.connect(base, "127.0.0.1", port, function(b)
    got[#got + 1] = b:get_read():get_data()
    b:get_read():drain(-1)
    if table.concat(got) == message then
      echoed = echoed + 1
      b:close()
    end
  end, nil, function(b, what)
    if what == core.EVBUFFER_CONNECTED then b:get_write():add(message) end
  end)
  clients[#clients + 1] = bev
end

local round = 0
local function next_round()
  round = round + 1
  connect(round)
  resolver:resolve("both.test", function(list)
    if type(list) == "table" and #list == 2 then answered = answered + 1 end
  end)
  local request = resolver:resolve("silent.test", function(list, message)
    if list == nil and tostring(message):find("cancel") then cancelled = cancelled + 1 end
  end)
  request:cancel()
  -- A resolver closed with a lookup waiting: libevent cancels it.
  local other = core.dns.new(base, { nameservers = { server.address }, hosts = false, timeout = 2 })
  other:resolve("silent.test", function() closed = closed + 1 end)
  other:close()
end

local function done()
  return echoed == ROUNDS and answered == ROUNDS and cancelled == ROUNDS and closed == ROUNDS
end

local errors = 0
local driver = base:addevent(nil, core.EV_TIMEOUT, function()
  if round < ROUNDS then
    -- Under failing allocations a round may fail part way: the next one goes on.
    if not pcall(next_round) then errors = errors + 1 end
  elseif done() then
    base:loopexit(0)
    return core.LEAVE
  end
end, 0.002)

-- Set up. Once every thread is (THREADS_READY waits for them), allocations may fail:
-- tests/faults/failalloc.c arms on this getenv.
THREADS_READY()
os.getenv("FAILALLOC_ARM")
-- A callback's error ends a loop; the next loop goes on. THREADS_SECONDS (3) at most in all
-- (the work takes a tenth of that; a round that failed under failing allocations leaves the
-- counts short).
local deadline = socket.gettime() + (tonumber(os.getenv("THREADS_SECONDS") or "") or 3)
repeat
  local ok = pcall(function()
    -- loopexit returns -1 when libevent cannot allocate its timer: a loop started then would
    -- never end (the repeating timer keeps it busy).
    assert(base:loopexit(0.5) == 0, "base:loopexit failed")
    base:loop()
  end)
  if not ok then errors = errors + 1 end
until done() or socket.gettime() > deadline

timer:close()
driver:close()
for _, bev in ipairs(accepted) do bev:close() end
for _, bev in ipairs(clients) do bev:close() end
listener:close()
resolver:close()
server:close()
local line = ("ticks %d, echoed %d/%d, answered %d/%d, cancelled %d/%d, closed %d/%d, errors %d"):format(
  ticks, echoed, ROUNDS, answered, ROUNDS, cancelled, ROUNDS, closed, ROUNDS, errors)
assert(done() and ticks > 0 and errors == 0, line)
return line
