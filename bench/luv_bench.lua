-- The luv (libuv) analogues of bench/luaevent_bench.lua, for the benchmarks that have one.
--
--   lua5.4 bench/luv_bench.lua <benchmark> [size]
--
-- Same output format and the same sizes as luaevent_bench.lua (see bench/common.lua):
--   timer_rearm N        one 0 ms timer restarted from its own callback, N callbacks; wall s.
--                        (libuv 1.44 runs a timer restarted with 0 ms again in the same loop
--                        iteration, without polling; libevent polls once per callback.)
--   timers_1000 R        1,000 timers of 1 ms, each restarted from its callback, R rounds; CPU s
--   pingpong N           N 1-byte round trips over loopback TCP (uv_tcp read/write); round trips/s
--   echo_bev BYTES       BYTES through a luv TCP echo server (read_start -> write) and back, the
--                        client keeping at most 4 x 64 KiB writes in flight; MiB/s
--   accept N             N short-lived connections to a luv TCP echo server (read_start ->
--                        write, close at end of file), from bench/net_client.c (BENCH_CLIENT)
--   echo_1000 M          1,000 connections at once to the same server, M echoes of 64 bytes each
--                        (timed from the 1,000th accept)
package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local common = require "common"
local uv = common.load("luv")

local now, cpu, result, timed, fail = common.now, common.cpu, common.result, common.timed, common.fail
local CHUNK = 65536

local benches = {}

function benches.timer_rearm(n)
  n = n or 1000000
  local count = 0
  local timer = uv.new_timer()
  local function cb()
    count = count + 1
    if count < n then timer:start(0, 0, cb) else timer:close() end
  end
  timer:start(0, 0, cb)
  local c0, t0 = cpu(), now()
  uv.run()
  local t, c = now() - t0, cpu() - c0
  if count ~= n then fail(("timer_rearm: %d callbacks, expected %d"):format(count, n)) end
  timed("timer_rearm", n, t, c)
end

function benches.timers_1000(rounds)
  rounds = rounds or 200
  local K, T = 1000, 1
  local total = 0
  for _ = 1, K do
    local fired = 0
    local timer = uv.new_timer()
    local function cb()
      fired = fired + 1
      total = total + 1
      if fired < rounds then timer:start(T, 0, cb) else timer:close() end
    end
    timer:start(T, 0, cb)
  end
  local c0, t0 = cpu(), now()
  uv.run()
  local t, c = now() - t0, cpu() - c0
  if total ~= K * rounds then fail(("timers_1000: %d callbacks, expected %d"):format(total, K * rounds)) end
  timed("timers_1000", total, t, c)
end

-- A connected loopback TCP pair of uv_tcp handles (client, server side).
local function tcp_pair()
  local listener = uv.new_tcp()
  assert(listener:bind("127.0.0.1", 0))
  local port = listener:getsockname().port
  local a, b = uv.new_tcp(), nil
  assert(listener:listen(16, function(err)
    assert(not err, err)
    b = uv.new_tcp()
    assert(listener:accept(b))
    listener:close()
  end))
  local connected = false
  a:connect("127.0.0.1", port, function(err) assert(not err, err) connected = true end)
  while not (connected and b) do uv.run("once") end
  a:nodelay(true)
  b:nodelay(true)
  return a, b
end

function benches.pingpong(n)
  n = n or 100000
  local a, b = tcp_pair()
  local trips = 0
  a:read_start(function(err, data)
    if err or not data then fail("pingpong: client read: " .. tostring(err)) end
    trips = trips + #data
    if trips >= n then
      a:close() b:close()
    else
      a:write("x")
    end
  end)
  b:read_start(function(err, data)
    if err then fail("pingpong: server read: " .. tostring(err)) end
    if data then b:write(data) end
  end)
  local c0, t0 = cpu(), now()
  a:write("x")
  uv.run()
  local t, c = now() - t0, cpu() - c0
  if trips ~= n then fail(("pingpong: %d round trips, expected %d"):format(trips, n)) end
  timed("pingpong", n, t, c)
end

function benches.echo_bev(size)
  size = size or 64 * 1048576
  local a, b = tcp_pair()
  local chunk = common.payload(CHUNK)
  b:read_start(function(err, data)
    if err then fail("echo: server read: " .. tostring(err)) end
    if data then b:write(data) end
  end)
  local queued, inflight, received = 0, 0, 0
  local pump
  local function written(err)
    if err then fail("echo: client write: " .. tostring(err)) end
    inflight = inflight - 1
    pump()
  end
  function pump()
    while inflight < 4 and queued < size do
      local want = math.min(CHUNK, size - queued)
      inflight = inflight + 1
      queued = queued + want
      a:write(want == CHUNK and chunk or chunk:sub(1, want), written)
    end
  end
  a:read_start(function(err, data)
    if err or not data then fail("echo: client read: " .. tostring(err)) end
    received = received + #data
    if received >= size then a:close() b:close() end
  end)
  local c0, t0 = cpu(), now()
  pump()
  uv.run()
  local t, c = now() - t0, cpu() - c0
  if received ~= size then fail(("echo: %d bytes back, expected %d"):format(received, size)) end
  timed("echo_bev", size, t, c)
end

-- A TCP echo server on luv, the twin of `echo_server` in luaevent_bench.lua: every accepted
-- connection writes back what it reads and is closed at its end of file; the client is
-- bench/net_client.c in its own process; the figure is this process's CPU time (with
-- `from_last_accept`, from the last connection's accept, as in luaevent_bench.lua).
local function echo_server(name, expected, from_last_accept, mode, ...)
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", 0))
  local accepted, closed = 0, 0
  local c0
  assert(server:listen(common.BACKLOG, function(err)
    if err then fail(name .. ": listen: " .. tostring(err)) end
    local conn = uv.new_tcp()
    assert(server:accept(conn))
    accepted = accepted + 1
    if from_last_accept and accepted == expected then c0 = cpu() end
    conn:read_start(function(rerr, data)
      if data then
        conn:write(data)
      else
        conn:close()
        closed = closed + 1
        if closed == expected then server:close() end
      end
    end)
  end))
  local port = server:getsockname().port
  local client = common.start_client(mode, port, ...)
  local cap = uv.new_timer()              -- a cap: the client gives up (100 s) before that
  cap:start(120000, 0, function() server:close() end)
  cap:unref()
  if not from_last_accept then c0 = cpu() end
  uv.run()
  local c = cpu() - (c0 or 0)
  local work, wall = common.client_result(client)
  if closed ~= expected then fail(("%s: %d connections ended, expected %d"):format(name, closed, expected)) end
  timed(name, work, wall, c)
end

function benches.accept(n)
  n = n or 10000
  echo_server("accept", n, false, "accept", n)
end

function benches.echo_1000(m)
  m = m or 100
  echo_server("echo_1000", common.ECHO_CONNECTIONS, true, "echo", common.ECHO_CONNECTIONS, m)
end

local name = arg[1]
if not name or not benches[name] then
  local names = {}
  for k in pairs(benches) do names[#names + 1] = k end
  table.sort(names)
  io.stderr:write("usage: luv_bench.lua <benchmark> [size]\nbenchmarks: ", table.concat(names, " "), "\n")
  os.exit(2)
end
benches[name](arg[2] and assert(tonumber(arg[2]), "size must be a number"))
os.exit(0)
