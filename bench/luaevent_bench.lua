-- Benchmarks on the luaevent.core API only, so the same script runs on this project's module and
-- on Debian's C module (lua-event): LUA_CPATH decides which `luaevent.core` loads.
--
--   LUA_CPATH="build/lua5.4/?.so;;" lua5.4 bench/luaevent_bench.lua <benchmark> [size]
--   lua5.4 bench/luaevent_bench.lua <benchmark> [size]          (C module: default cpath)
--
-- Finds bench/common.lua next to itself. Prints the file the module was loaded from, then one or
-- more "result" lines (see bench/common.lua): work done with wall and CPU seconds, or bytes.
-- bench/run.lua runs all of them, interleaved with the C module, luv and raw libevent, and
-- prints the table.
--
-- Benchmarks and their size argument (each ran about 1 s at the full-run sizes):
--   timer_rearm N        one 0-timeout timer re-armed by returning 0 (Prosody), N callbacks
--   timers_1000 R        1,000 timers of 1 ms re-armed by returning (0, 0.001), R rounds
--   pingpong N           N 1-byte round trips over loopback TCP (LuaSocket), events switching
--                        EV_WRITE <-> EV_READ by return value
--   buffer_lines N       buffer:add + buffer:readline of N short lines, in batches of 1,000
--   buffer_getdata N     buffer:get_data(64) + buffer:drain(64), N times (refilled by 64 KiB)
--   echo_socket BYTES    BYTES through an echo server and back on one base: addevent + LuaSocket
--                        send/receive, 64 KiB chunks
--   echo_evbuf BYTES     the same with core.buffer read/write on the fds instead of LuaSocket
--   echo_bev BYTES       the same with bufferevents, the server moving input to output with
--                        out:add(in) (does not work on the C module: its callbacks fail)
--   mem_event N          N idle EV_READ events: bytes/event of RSS and Lua heap
--   mem_bev N            N idle bufferevents: bytes/bufferevent of RSS and Lua heap
--   accept N             N short-lived connections to a core.listener echo server (connect,
--                        64 bytes there and back, close), from bench/net_client.c (BENCH_CLIENT)
--   echo_1000 M          1,000 connections at once to the same server, M echoes of 64 bytes each
--                        (timed from the 1,000th accept)
--   mem_conn N           N idle accepted connections: bytes/connection of RSS and Lua heap (C
--                        module: LuaSocket accept + core.bufferevent on the socket)
-- Socket events carry a 60 s timeout, on both modules (see IDLE below).
package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local common = require "common"
local core = common.load("luaevent.core")
local socket = require "socket"

local EV_READ, EV_WRITE, EV_TIMEOUT = core.EV_READ, core.EV_WRITE, core.EV_TIMEOUT
local LEAVE = core.LEAVE
local now, cpu, result, timed, fail = common.now, common.cpu, common.result, common.timed, common.fail

-- Socket events carry a long timeout: the C module re-registers a switched event with its stored
-- timeout, or with a zero one when it has none (it would then fire at once and go dormant).
local IDLE = 60
local CHUNK = 65536

local benches = {}

---------------------------------------------------------------- timers ----
function benches.timer_rearm(n)
  n = n or 1000000
  local base = core.new()
  local count = 0
  local ev = base:addevent(nil, 0, function()
    count = count + 1
    if count < n then return 0 end
    return LEAVE
  end, 0)
  local c0, t0 = cpu(), now()
  base:loop()
  local t, c = now() - t0, cpu() - c0
  if count ~= n then fail(("timer_rearm: %d callbacks, expected %d"):format(count, n)) end
  ev:close()
  timed("timer_rearm", n, t, c)
end

function benches.timers_1000(rounds)
  rounds = rounds or 200
  local K, T = 1000, 0.001
  local base = core.new()
  local events, total = {}, 0
  for i = 1, K do
    local fired = 0
    events[i] = base:addevent(nil, 0, function()
      fired = fired + 1
      total = total + 1
      if fired < rounds then return 0, T end
      return LEAVE
    end, T)
  end
  local c0, t0 = cpu(), now()
  base:loop()
  local t, c = now() - t0, cpu() - c0
  if total ~= K * rounds then fail(("timers_1000: %d callbacks, expected %d"):format(total, K * rounds)) end
  timed("timers_1000", total, t, c)
end

-------------------------------------------------------------- ping-pong ----
function benches.pingpong(n)
  n = n or 100000
  local base = core.new()
  local a, b = common.tcp_pair()
  local trips = 0
  local ev_a, ev_b
  ev_a = base:addevent(a, EV_WRITE, function(what)
    if what == EV_WRITE then
      if a:send("x") ~= 1 then return EV_WRITE end
      return EV_READ
    elseif what == EV_READ then
      local d = a:receive(1)
      if not d then return EV_READ end
      trips = trips + 1
      if trips >= n then ev_b:close() return LEAVE end
      return EV_WRITE
    end
    fail("pingpong: client event fired with " .. what)
  end, IDLE)
  ev_b = base:addevent(b, EV_READ, function(what)
    if what == EV_READ then
      local d = b:receive(1)
      if not d then return EV_READ end
      return EV_WRITE
    elseif what == EV_WRITE then
      if b:send("x") ~= 1 then return EV_WRITE end
      return EV_READ
    end
    fail("pingpong: server event fired with " .. what)
  end, IDLE)
  local c0, t0 = cpu(), now()
  base:loop()
  local t, c = now() - t0, cpu() - c0
  if trips ~= n then fail(("pingpong: %d round trips, expected %d"):format(trips, n)) end
  a:close() b:close()
  timed("pingpong", n, t, c)
end

---------------------------------------------------------------- buffers ----
function benches.buffer_lines(n)
  n = n or 1000000
  local B = 1000
  local line = "PRIVMSG #room :hello there\n" -- 27 bytes, one "\n"-terminated line
  local expect = line:sub(1, -2)
  local buf = core.buffer.new()
  local got = 0
  local c0, t0 = cpu(), now()
  for _ = 1, math.floor(n / B) do
    for _ = 1, B do buf:add(line) end
    for _ = 1, B do
      local l = buf:readline()
      if l then got = got + 1 end
    end
  end
  local t, c = now() - t0, cpu() - c0
  if got ~= math.floor(n / B) * B or buf:length() ~= 0 then fail("buffer_lines: lost lines") end
  if buf:add(line) and buf:readline() ~= expect then fail("buffer_lines: wrong line") end
  timed("buffer_lines", got, t, c)
end

function benches.buffer_getdata(n)
  n = n or 2000000
  local P = 64
  local payload = common.payload(CHUNK)
  local per_fill = CHUNK / P
  local buf = core.buffer.new()
  local left, bytes = 0, 0
  local c0, t0 = cpu(), now()
  for _ = 1, n do
    if left == 0 then buf:add(payload) left = per_fill end
    local s = buf:get_data(P)
    buf:drain(P)
    bytes = bytes + #s
    left = left - 1
  end
  local t, c = now() - t0, cpu() - c0
  if bytes ~= n * P then fail("buffer_getdata: short reads") end
  timed("buffer_getdata", n, t, c)
end

------------------------------------------------------------------- echo ----
-- addevent + LuaSocket: the server reads a chunk and writes it straight back, switching to
-- EV_WRITE only while the socket pushes back; the client has a writer and a reader event.
function benches.echo_socket(size)
  size = size or 64 * 1048576
  local base = core.new()
  local a, b = common.tcp_pair()
  local chunk = common.payload(CHUNK)
  local pending, pi -- server: data not yet echoed, and the index of its first unsent byte
  local ev_server, ev_writer, ev_reader
  local function server_send()
    local last, err, plast = b:send(pending, pi)
    last = last or plast
    if not last then fail("echo_socket: server send: " .. tostring(err)) end
    if last >= #pending then pending = nil return true end
    pi = last + 1
    return false
  end
  ev_server = base:addevent(b, EV_READ, function(what)
    if what == EV_READ then
      local data, err, partial = b:receive(CHUNK)
      data = data or partial
      if err == "closed" then fail("echo_socket: client hung up") end
      if #data == 0 then return EV_READ end
      pending, pi = data, 1
      if server_send() then return EV_READ end
      return EV_WRITE
    elseif what == EV_WRITE then
      if server_send() then return EV_READ end
      return EV_WRITE
    end
    fail("echo_socket: server event fired with " .. what)
  end, IDLE)
  -- client: bytes sent, index of the next byte in the current chunk, and that chunk's length
  local sent, ci, want = 0, 1, 0
  ev_writer = base:addevent(a, EV_WRITE, function(what)
    if what ~= EV_WRITE then fail("echo_socket: writer fired with " .. what) end
    while sent < size do
      if ci == 1 then want = math.min(CHUNK, size - sent) end
      local last, err, plast = a:send(chunk, ci, want)
      last = last or plast
      if not last then fail("echo_socket: client send: " .. tostring(err)) end
      if last >= want then
        sent, ci = sent + want - ci + 1, 1
      else
        sent, ci = sent + last - ci + 1, last + 1
        return
      end
    end
    return LEAVE
  end, IDLE)
  local received = 0
  ev_reader = base:addevent(a, EV_READ, function(what)
    if what ~= EV_READ then fail("echo_socket: reader fired with " .. what) end
    local data, err, partial = a:receive(CHUNK)
    data = data or partial
    if err == "closed" then fail("echo_socket: server hung up") end
    received = received + #data
    if received >= size then
      ev_server:close()
      ev_writer:close()
      return LEAVE
    end
  end, IDLE)
  local c0, t0 = cpu(), now()
  base:loop()
  local t, c = now() - t0, cpu() - c0
  if received ~= size then fail(("echo_socket: %d bytes back, expected %d"):format(received, size)) end
  a:close() b:close()
  timed("echo_socket", size, t, c)
end

-- addevent + core.buffer read/write on the raw fds (no LuaSocket on the data path).
function benches.echo_evbuf(size)
  size = size or 64 * 1048576
  local base = core.new()
  local a, b = common.tcp_pair()
  local chunk = common.payload(CHUNK)
  local sbuf, cout, cin = core.buffer.new(), core.buffer.new(), core.buffer.new()
  local ev_server, ev_writer, ev_reader
  ev_server = base:addevent(b, EV_READ, function(what)
    if what == EV_READ then
      local n = sbuf:read(b, CHUNK)
      if n == 0 then fail("echo_evbuf: client hung up") end
      if sbuf:length() == 0 then return EV_READ end
      sbuf:write(b)
      if sbuf:length() == 0 then return EV_READ end
      return EV_WRITE
    elseif what == EV_WRITE then
      if sbuf:write(b) < 0 then fail("echo_evbuf: server write failed") end
      if sbuf:length() == 0 then return EV_READ end
      return EV_WRITE
    end
    fail("echo_evbuf: server event fired with " .. what)
  end, IDLE)
  local queued = 0
  ev_writer = base:addevent(a, EV_WRITE, function(what)
    if what ~= EV_WRITE then fail("echo_evbuf: writer fired with " .. what) end
    while queued < size and cout:length() < 2 * CHUNK do
      local want = math.min(CHUNK, size - queued)
      if want == CHUNK then cout:add(chunk) else cout:add(chunk:sub(1, want)) end
      queued = queued + want
    end
    if cout:write(a) < 0 then fail("echo_evbuf: client write failed") end
    if queued >= size and cout:length() == 0 then return LEAVE end
  end, IDLE)
  local received = 0
  ev_reader = base:addevent(a, EV_READ, function(what)
    if what ~= EV_READ then fail("echo_evbuf: reader fired with " .. what) end
    local n = cin:read(a, CHUNK)
    if n == 0 then fail("echo_evbuf: server hung up") end
    local len = cin:length()
    received = received + len
    cin:drain(len)
    if received >= size then
      ev_server:close()
      ev_writer:close()
      return LEAVE
    end
  end, IDLE)
  local c0, t0 = cpu(), now()
  base:loop()
  local t, c = now() - t0, cpu() - c0
  if received ~= size then fail(("echo_evbuf: %d bytes back, expected %d"):format(received, size)) end
  a:close() b:close()
  timed("echo_evbuf", size, t, c)
end

-- Bufferevents: the server moves its input into its output (out:add(in)); the client keeps its
-- output between LOW and HIGH from the write callback and drains its input in the read callback.
function benches.echo_bev(size)
  size = size or 64 * 1048576
  local LOW, HIGH = 2 * CHUNK, 4 * CHUNK
  local base = core.new()
  local a, b = common.tcp_pair()
  local chunk = common.payload(CHUNK)
  local failure
  local function on_error(_, what)
    failure = failure or ("echo_bev: error callback with " .. tostring(what))
    base:loopexit()
  end
  local sin, sout
  local server = core.bufferevent.new(base, b, function()
    sout:add(sin)
  end, nil, on_error)
  sin, sout = server:get_read(), server:get_write()
  local cout, cin
  local queued, received = 0, 0
  local function refill()
    while queued < size and cout:length() < HIGH do
      local want = math.min(CHUNK, size - queued)
      if want == CHUNK then cout:add(chunk) else cout:add(chunk:sub(1, want)) end
      queued = queued + want
    end
  end
  local client
  client = core.bufferevent.new(base, a, function()
    local len = cin:length()
    received = received + len
    cin:drain(len)
    if received >= size then
      client:close()
      server:close()
      base:loopexit()
    end
  end, refill, on_error)
  cin, cout = client:get_read(), client:get_write()
  client:set_write_watermarks(LOW, HIGH)
  server:enable(EV_READ)
  client:enable(EV_READ)
  refill()
  local c0, t0 = cpu(), now()
  local ok, err = pcall(base.loop, base)
  local t, c = now() - t0, cpu() - c0
  if not ok then fail("echo_bev: loop raised: " .. tostring(err)) end
  if failure then fail(failure) end
  if received ~= size then fail(("echo_bev: %d bytes back, expected %d"):format(received, size)) end
  a:close() b:close()
  timed("echo_bev", size, t, c)
end

------------------------------------------------------- network servers ----
-- A TCP echo server on core.listener: every accepted bufferevent echoes what it reads
-- (out:add(in)) and is closed at its end of file. The client is bench/net_client.c in its own
-- process (the same client for luv and raw libevent); the figure is this process's CPU time,
-- from the start of the loop, or with `from_last_accept` from the last connection's accept (the
-- echo alone: the client starts sending once all its connections are up).
local function echo_server(name, expected, from_last_accept, mode, ...)
  if not core.listener then fail(name .. ": this module has no core.listener") end
  local base = core.new()
  local connections, accepted, closed = {}, 0, 0
  local c0
  local function on_read(bev)
    bev:get_write():add(bev:get_read())
  end
  local function on_event(bev)
    connections[bev] = nil
    bev:close()
    closed = closed + 1
    if closed == expected then base:loopexit() end
  end
  local listener = core.listener.new(base, { host = "127.0.0.1", port = 0, backlog = common.BACKLOG },
    function(bev)
      connections[bev] = true
      bev:set_callbacks(on_read, nil, on_event)
      bev:enable(EV_READ)
      accepted = accepted + 1
      if from_last_accept and accepted == expected then c0 = cpu() end
    end)
  local _, port = listener:address()
  local client = common.start_client(mode, port, ...)
  base:loopexit(120)                 -- a cap: the client gives up (100 s) before that
  if not from_last_accept then c0 = cpu() end
  local ok, err = pcall(base.loop, base)
  local c = cpu() - (c0 or 0)
  if not ok then fail(name .. ": loop raised: " .. tostring(err)) end
  local work, wall = common.client_result(client)
  if closed ~= expected then fail(("%s: %d connections ended, expected %d"):format(name, closed, expected)) end
  listener:close()
  timed(name, work, wall, c)
end

-- N short-lived connections, accepted, echoed (one 64-byte message) and closed.
function benches.accept(n)
  n = n or 10000
  echo_server("accept", n, false, "accept", n)
end

-- 1,000 connections at once, each echoing M messages of 64 bytes one after the other; timed
-- from the last accept.
function benches.echo_1000(m)
  m = m or 100
  echo_server("echo_1000", common.ECHO_CONNECTIONS, true, "echo", common.ECHO_CONNECTIONS, m)
end

----------------------------------------------------------------- memory ----
local function measure_memory(name, n, make)
  local objects = {}
  for i = 1, n do objects[i] = false end -- the table's slots are not part of the measure
  local h0 = common.heap()
  local r0 = common.rss()
  for i = 1, n do objects[i] = make(i) end
  local h1 = common.heap()
  local r1 = common.rss()
  result(name .. "_rss", { n = n, bytes = (r1 - r0) / n })
  result(name .. "_heap", { n = n, bytes = (h1 - h0) / n })
  io.stdout:flush()
  return objects
end

-- libevent counts the events of one fd in 16 bits: at most 65,535 per fd, so spread them.
local PER_FD = 50000
local function fds_for(n)
  local sockets, fds = {}, {}
  for i = 1, math.ceil(n / PER_FD) do
    local a, b = common.tcp_pair()
    sockets[#sockets + 1], sockets[#sockets + 2] = a, b
    fds[i] = a:getfd()
  end
  return fds, sockets
end

function benches.mem_event(n)
  n = n or 100000
  local base = core.new()
  local fds, sockets = fds_for(n)
  local cb = function() end
  measure_memory("mem_event", n, function(i)
    return base:addevent(fds[math.ceil(i / PER_FD)], EV_READ, cb)
  end)
  -- No cleanup: the process exits without closing the Lua state (the C module's bufferevents
  -- abort in their __gc at exit), and the sockets stay referenced until then.
  os.exit(0, false)
  return sockets
end

function benches.mem_bev(n)
  n = n or 100000
  local base = core.new()
  local fds, sockets = fds_for(n)
  local cb = function() end
  measure_memory("mem_bev", n, function(i)
    return core.bufferevent.new(base, fds[math.ceil(i / PER_FD)], cb, cb, cb)
  end)
  os.exit(0, false)
  return sockets
end

-- N idle TCP connections from another process (net_client hold): ours accepts them with
-- core.listener (a bufferevent each, callbacks set, reading enabled, held in a table); the C
-- module has no listener, so there a LuaSocket server accepts them and each socket gets a
-- core.bufferevent (the way a program on the C module serves TCP). RSS and Lua heap growth
-- per connection.
function benches.mem_conn(n)
  n = n or 10000
  local base = core.new()
  local objects = {}
  local per = core.listener and 1 or 2   -- C: the socket and its bufferevent
  for i = 1, per * n do objects[i] = false end
  local cb = function() end
  local client, h0, r0
  if core.listener then
    local accepted = 0
    local listener = core.listener.new(base, { host = "127.0.0.1", port = 0, backlog = common.BACKLOG },
      function(bev)
        accepted = accepted + 1
        objects[accepted] = bev
        bev:set_callbacks(cb, nil, cb)
        bev:enable(EV_READ)
        if accepted == n then base:loopexit() end
      end)
    local _, port = listener:address()
    h0, r0 = common.heap(), common.rss()
    client = common.start_client("hold", port, n)
    base:loopexit(120)
    base:loop()
    if accepted ~= n then fail(("mem_conn: %d connections accepted, expected %d"):format(accepted, n)) end
  else
    local server = assert(socket.bind("127.0.0.1", 0, common.BACKLOG))
    local _, port = server:getsockname()
    server:settimeout(10)
    h0, r0 = common.heap(), common.rss()
    client = common.start_client("hold", port, n)
    for i = 1, n do
      local s = server:accept()
      if not s then fail(("mem_conn: %d connections accepted, expected %d"):format(i - 1, n)) end
      s:settimeout(0)
      local bev = core.bufferevent.new(base, s, cb, cb, cb)
      bev:enable(EV_READ)
      objects[2 * i - 1], objects[2 * i] = s, bev
    end
  end
  local h1, r1 = common.heap(), common.rss()
  result("mem_conn_rss", { n = n, bytes = (r1 - r0) / n })
  result("mem_conn_heap", { n = n, bytes = (h1 - h0) / n })
  io.stdout:flush()
  -- The client ends when our sockets close, at exit; the C module's bufferevents abort in their
  -- __gc, so the state is not closed.
  os.exit(0, false)
  return client
end

----------------------------------------------------------------------------
local name = arg[1]
if not name or not benches[name] then
  local names = {}
  for k in pairs(benches) do names[#names + 1] = k end
  table.sort(names)
  io.stderr:write("usage: luaevent_bench.lua <benchmark> [size]\nbenchmarks: ", table.concat(names, " "), "\n")
  os.exit(2)
end
benches[name](arg[2] and assert(tonumber(arg[2]), "size must be a number"))
os.exit(0)
