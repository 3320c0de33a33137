-- The TLS server benchmarks, two ways in Lua, against the same client (bench/tls_client.c):
--
--   LUA_CPATH="build/lua5.4/?.so;;" lua5.4 bench/tls_bench.lua ours <benchmark> <size>
--   LUA_CPATH="build/lua5.4/?.so;;" lua5.4 bench/tls_bench.lua luasec <benchmark> <size>
--
--   ours     core.listener with options.tls (TLS in C under the bufferevent; the server moves
--            input to output with out:add(in))
--   luasec   the way Prosody does TLS today: a LuaSocket server socket, each accepted socket
--            wrapped by LuaSec (ssl.wrap), every socket driven by one luaevent.core event whose
--            callback calls the non-blocking dohandshake / receive("*a") / send and switches the
--            event between EV_READ and EV_WRITE on "wantread" / "wantwrite"; while a reply is
--            not all sent, the connection does not read (back-pressure). The events run on the
--            luaevent.core that LUA_CPATH names (run.lua: ours, so the comparison is of the TLS
--            paths, not of the event loops).
--
-- Benchmarks and their size argument:
--   tls_echo_1 BYTES     one TLS connection echoing BYTES (the client keeps 256 KiB in flight)
--   tls_echo_100 BYTES   100 connections echoing BYTES in all
--   tls_handshake N      N short connections, 8 at a time: full handshake, then the client closes
--
-- Every server: 127.0.0.1, a free port, backlog 1,024; TLS 1.3 only with TLS_AES_128_GCM_SHA256
-- only; the certificate and key BENCH_CERTS/server.pem, server.key (an ECDSA P-256 certificate
-- made by bench/run.sh); OpenSSL's defaults otherwise (X25519 key exchange, two session tickets
-- that the client never uses). The client is BENCH_TLS_CLIENT. The echo benchmarks time the
-- server's CPU from the last connection's completed handshake; tls_handshake from the start.
-- Prints "loaded" lines for the modules (and the LuaSec file) and one "result" line.
package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local common = require "common"

local impl, bench, size = arg[1], arg[2], tonumber(arg[3])
if (impl ~= "ours" and impl ~= "luasec") or not bench or not size then
  io.stderr:write("usage: tls_bench.lua ours|luasec tls_echo_1|tls_echo_100|tls_handshake SIZE\n")
  os.exit(2)
end

local core = common.load("luaevent.core")
local EV_READ, EV_WRITE = core.EV_READ, core.EV_WRITE
local cpu, fail = common.cpu, common.fail

local certs = os.getenv("BENCH_CERTS")
local client_exe = os.getenv("BENCH_TLS_CLIENT")
if not certs or certs == "" then fail("BENCH_CERTS (the folder with server.pem and server.key) is not set") end
if not client_exe or client_exe == "" then fail("BENCH_TLS_CLIENT (the compiled bench/tls_client.c) is not set") end
local CERT, KEY = certs .. "/server.pem", certs .. "/server.key"
local SUITE = "TLS_AES_128_GCM_SHA256"

local expected, client_args, from_last_handshake
if bench == "tls_echo_1" or bench == "tls_echo_100" then
  expected = bench == "tls_echo_1" and 1 or 100
  client_args = { "echo", expected, size }
  from_last_handshake = true
elseif bench == "tls_handshake" then
  expected = size
  client_args = { "handshake", size }
else
  fail("unknown benchmark " .. bench)
end

local function start_client(port)
  local parts = { "'" .. client_exe:gsub("'", "'\\''") .. "'", client_args[1], tostring(port) }
  for i = 2, #client_args do parts[#parts + 1] = tostring(client_args[i]) end
  return assert(io.popen(table.concat(parts, " "), "r"))
end

local base = core.new()
local handshakes, closed = 0, 0
local c0

local function handshake_done()
  handshakes = handshakes + 1
  if from_last_handshake and handshakes == expected then c0 = cpu() end
end

local function ended()
  closed = closed + 1
  if closed == expected then base:loopexit() end
end

local listen_close, port

if impl == "ours" then
  if not core.tls then fail("this module has no core.tls") end
  local context = core.tls.context({ mode = "server", protocol = "tlsv1_3", ciphersuites = SUITE,
    certificate = CERT, key = KEY })
  local connections = {}
  local function on_read(bev)
    bev:get_write():add(bev:get_read())
  end
  local function on_event(bev, what)
    if what == core.EVBUFFER_CONNECTED then handshake_done() return end
    connections[bev] = nil
    bev:close()
    ended()
  end
  local listener = core.listener.new(base, { host = "127.0.0.1", port = 0, backlog = common.BACKLOG, tls = context },
    function(bev)
      connections[bev] = true
      bev:set_callbacks(on_read, nil, on_event)
      bev:enable(EV_READ)
    end)
  _, port = listener:address()
  listen_close = function() listener:close() end
else
  local socket = require "socket"
  local ssl = common.load("ssl")
  local context = assert(ssl.newcontext({ mode = "server", protocol = "tlsv1_3", ciphersuites = SUITE,
    certificate = CERT, key = KEY }))
  local server = assert(socket.bind("127.0.0.1", 0, common.BACKLOG))
  server:settimeout(0)
  _, port = server:getsockname()

  -- The events (an event nothing references is collected), by socket.
  local events = {}

  -- One connection: its LuaSec socket, the reply not yet sent (and from where), its state.
  local function serve(raw)
    raw:settimeout(0)
    local conn = assert(ssl.wrap(raw, context))
    conn:settimeout(0)
    local ready, out, from = false, nil, 1
    local function finish()
      events[raw] = nil
      conn:close()
      ended()
      return -1
    end
    -- Returns the event mask the socket waits for next, or -1 once the connection is over.
    return function()
      if not ready then
        local ok, err = conn:dohandshake()
        if not ok then
          if err == "wantread" then return EV_READ end
          if err == "wantwrite" then return EV_WRITE end
          return finish()
        end
        ready = true
        handshake_done()
      end
      while true do
        if out then
          local last, err, partial = conn:send(out, from)
          if not last then
            if err == "wantwrite" or err == "timeout" or err == "wantread" then
              from = partial + 1
              return err == "wantread" and EV_READ or EV_WRITE
            end
            return finish()
          end
          out = nil
        end
        local data, err, partial = conn:receive("*a")
        data = data or partial
        if data and #data > 0 then
          out, from = data, 1
        elseif err == "wantread" or err == "timeout" then
          return EV_READ
        elseif err == "wantwrite" then
          return EV_WRITE
        else
          return finish()
        end
      end
    end
  end

  events[server] = base:addevent(server:getfd(), EV_READ, function()
    while true do
      local raw = server:accept()
      if not raw then return EV_READ end
      events[raw] = base:addevent(raw:getfd(), EV_READ, serve(raw))
    end
  end)
  listen_close = function() server:close() end
end

local client = start_client(port)
base:loopexit(300)              -- a cap: the client gives up (300 s) before that
if not from_last_handshake then c0 = cpu() end
local ok, err = pcall(base.loop, base)
local c = cpu() - (c0 or 0)
if not ok then fail(bench .. ": loop raised: " .. tostring(err)) end
local work, wall = common.client_result(client)
if closed ~= expected then fail(("%s: %d connections ended, expected %d"):format(bench, closed, expected)) end
listen_close()
common.timed(bench, work, wall, c)
