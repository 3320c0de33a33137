-- A bufferevent echo, server and clients in one process, meant to run under failalloc (see
-- tests/faults/failalloc.c): allocations fail while it runs, and it checks that whatever bytes
-- come back are the right ones, in order, and that every connection either completes or saw an
-- error that explains why it did not.
--
--   LD_PRELOAD=failalloc.so FAILALLOC_WAIT=1 FAILALLOC_SKIP=... lua5.4 tests/faults/echo.lua
--
-- The loopback socket pairs are made before the shim is armed (os.getenv "FAILALLOC_ARM"), so
-- that LuaSocket's connect/accept is not what is tested; everything after that runs with
-- allocations failing: making the bufferevents, their buffers, every callback, every add/drain.
-- Each client sends its own pseudo-random stream (all 256 byte values) as messages of 1..4096
-- bytes, keeping up to WINDOW bytes in flight; the server moves its input into its output; the
-- client compares each byte that comes back with the stream and only then drains it. Every
-- step is written so that a Lua error anywhere (out of memory included) leaves the state as if
-- the step had not happened, and the main loop retries what a failed callback left undone, so
-- under short bursts of failures most connections still complete, byte for byte.
--
-- Environment: ECHO_CONNECTIONS (default 16), ECHO_BYTES per connection (default 65536),
-- ECHO_SECONDS before it stops waiting (default 10).
-- Prints one summary line, then "echo: PASS" or "echo: FAIL (why)"; exits 0 only on PASS.
-- FAIL means: a byte came back wrong (mismatch), or a connection stalled although no error of
-- any kind was seen (a failure swallowed without a trace).
local core = require "luaevent.core"
local socket = require "socket"

local function env_number(name, default)
  return tonumber(os.getenv(name) or "") or default
end

local N = env_number("ECHO_CONNECTIONS", 16)
local BYTES = env_number("ECHO_BYTES", 65536)
local SECONDS = env_number("ECHO_SECONDS", 10)
local WINDOW = 16384
local TICK = "echo-faults-tick"
local EV_READ, EV_TIMEOUT = core.EV_READ, core.EV_TIMEOUT

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

local base = core.new()
local listener = assert(socket.bind("127.0.0.1", 0, N))
local _, port = listener:getsockname()
local conns = {}
for i = 1, N do
  local c = assert(socket.tcp())
  assert(c:connect("127.0.0.1", port))
  listener:settimeout(2)
  local s = assert(listener:accept())
  c:settimeout(0)
  s:settimeout(0)
  conns[i] = {
    index = i, client = c, server = s, data = stream(i),
    sent = 0, verified = 0, next_size = (i * 37) % 4096 + 1,
    errored = false, done = false, closed = false,
    client_bev = false, server_bev = false,
  }
end
listener:close()

local stats = { loop_errors = 0, callback_errors = 0, round_errors = 0, mismatched = 0, retries = 0 }
local first_errors = {}
local function note(kind, message)
  if #first_errors < 5 then
    first_errors[#first_errors + 1] = kind .. ": " .. tostring(message):gsub("\n.*", "")
  end
end

-- Each Lua step below either completes or leaves the state as it found it.
local function top_up(conn)
  local out = conn.client_bev:get_write()
  while conn.sent < BYTES and conn.sent - conn.verified < WINDOW do
    local size = math.min(conn.next_size, BYTES - conn.sent)
    out:add(conn.data:sub(conn.sent + 1, conn.sent + size))
    conn.sent = conn.sent + size
    conn.next_size = (conn.next_size * 31 + 7) % 4096 + 1
  end
end

local function verify(conn)
  local input = conn.client_bev:get_read()
  local n = input:length()
  if n == 0 then return end
  local got = input:get_data()
  if got ~= conn.data:sub(conn.verified + 1, conn.verified + n) then
    stats.mismatched = stats.mismatched + 1
    note("mismatch", string.format("connection %d: get_data gave %d bytes for the %d held, at offset %d, not the ones sent",
      conn.index, #got, n, conn.verified))
    conn.errored = true
    conn.done = true
    return
  end
  input:drain(n)
  conn.verified = conn.verified + n
  if conn.verified == BYTES then conn.done = true end
end

local function echo(conn)
  local input = conn.server_bev:get_read()
  if input:length() > 0 then conn.server_bev:get_write():add(input) end
end

local function on_error(conn, side)
  return function(_, what)
    conn.errored = true
    stats.callback_errors = stats.callback_errors + 1
    note("error callback", side .. " of connection " .. conn.index .. ": what=" .. what)
  end
end

local function open(conn)
  if not conn.server_bev then
    local bev = core.bufferevent.new(base, conn.server, function() echo(conn) end, nil, on_error(conn, "server"))
    conn.server_bev = bev
    bev:enable(EV_READ)
  end
  if not conn.client_bev then
    local bev = core.bufferevent.new(base, conn.client, function() verify(conn); top_up(conn) end, nil,
      on_error(conn, "client"))
    conn.client_bev = bev
    bev:enable(EV_READ)
  end
  top_up(conn)
end

local function close(conn)
  if conn.closed then return end
  if conn.client_bev then conn.client_bev:close() end
  if conn.server_bev then conn.server_bev:close() end
  conn.client:close()
  conn.server:close()
  conn.closed = true
end

-- Made before arming: the loop gets its turn back every 20 ms whatever fails, since raising an
-- error from a callback stops the loop through event_base_loopbreak, which allocates nothing
-- (loopexit schedules an event, which allocates).
local ticker = base:addevent(nil, EV_TIMEOUT, function() error(TICK, 0) end, 0.02)
local deadline = socket.gettime() + SECONDS

os.getenv("FAILALLOC_ARM")

-- Whatever a failed callback left undone: make the bufferevents, echo, verify, send.
local function step(conn)
  if not conn.server_bev or not conn.client_bev then open(conn) end
  echo(conn)
  verify(conn)
  if not conn.done then top_up(conn) end
end

-- One round: catch up on every connection, then run the loop until the next tick. True once
-- every connection is done or the time is up. Called under pcall, as is everything that may
-- allocate, so that the program itself survives running out of memory.
local function round()
  local all_done = true
  for _, conn in ipairs(conns) do
    if not conn.done and not conn.errored then
      all_done = false
      local ok, err = pcall(step, conn)
      if not ok then
        stats.retries = stats.retries + 1
        note("step", err)
      end
    elseif not conn.closed then
      pcall(close, conn)
    end
  end
  if all_done or socket.gettime() > deadline then return true end
  local ok, err = pcall(base.loop, base)
  if not ok and not tostring(err):find(TICK, 1, true) then
    stats.loop_errors = stats.loop_errors + 1
    note("loop", err)
  end
  return false
end

while true do
  local ok, finished = pcall(round)
  if ok and finished then break end
  if not ok then stats.round_errors = stats.round_errors + 1 end
  if socket.gettime() > deadline + 1 then break end
end

os.getenv("FAILALLOC_DISARM")

local complete, errored, incomplete = 0, 0, 0
for _, conn in ipairs(conns) do
  if conn.done and not conn.errored then complete = complete + 1
  elseif conn.errored then errored = errored + 1
  else incomplete = incomplete + 1 end
end
local seen = stats.loop_errors + stats.callback_errors + stats.retries + stats.round_errors
print(string.format("echo: connections %d, complete %d (every byte checked), ended by an error %d, " ..
  "incomplete %d; errors: loop %d, error callbacks %d, failed steps %d, failed rounds %d; mismatches %d",
  N, complete, errored, incomplete, stats.loop_errors, stats.callback_errors, stats.retries, stats.round_errors,
  stats.mismatched))
for _, line in ipairs(first_errors) do print("  " .. line) end

for _, conn in ipairs(conns) do close(conn) end
ticker:close()

local why
if stats.mismatched > 0 then
  why = stats.mismatched .. " connection(s) got wrong bytes back"
elseif incomplete > 0 and seen == 0 then
  why = incomplete .. " connection(s) stalled although no error was seen"
end
print(why and ("echo: FAIL (" .. why .. ")") or "echo: PASS")
-- Flushed before the shim's own report at exit: when the failed allocation was stdout's buffer,
-- glibc keeps the line's end in a one-byte buffer until exit, after that report.
io.stdout:flush()
os.exit(why and 1 or 0, true)
