-- Load test: concurrent TLS connections of the module (bufferevent.connect with options.tls)
-- through a TLS echo server of the module (listener.new with options.tls), in one process and
-- one event base; every byte that comes back is checked.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 tests/load/tls_load.lua
--
-- Environment:
--   LOAD_TLS_CONNECTIONS  connections at the same time (default 500)
--   LOAD_TLS_BYTES        bytes each connection sends and must get back (default 65536)
--   LOAD_TIMEOUT          seconds for the whole run before it is stopped and failed (default 120)
-- Each client sends a per-connection byte pattern in one write once connected (verified against
-- the test CA, with the name checked); the server moves its input into its output. Exits 0 only
-- when every connection got every byte back, in order, and no error was reported.
local core = require "luaevent.core"
local socket = require "socket"
local here = (arg and arg[0] and arg[0]:match("^(.*/)")) or "./"
local certs = dofile(here .. "../spec/certs.lua")()

local CONNECTIONS = tonumber(os.getenv("LOAD_TLS_CONNECTIONS")) or 500
local BYTES = tonumber(os.getenv("LOAD_TLS_BYTES")) or 65536
local TIMEOUT = tonumber(os.getenv("LOAD_TIMEOUT")) or 120

local base = core.new()
local server_context = core.tls.context { mode = "server", certificate = certs.server, key = certs.key }
local client_context = core.tls.context { mode = "client", cafile = certs.ca }

local server_errors, accepted = 0, {}
local listener = core.listener.new(base, { host = "127.0.0.1", port = 0, backlog = 1024, tls = server_context }, function(bev)
  accepted[bev] = true
  bev:set_callbacks(function(b)
    b:get_write():add(b:get_read())
  end, nil, function(b, what, message)
    if what ~= core.EVBUFFER_CONNECTED then
      if what ~= core.EVBUFFER_EOF + core.EVBUFFER_READ then
        server_errors = server_errors + 1
        io.stderr:write("server: ", what, " ", tostring(message), "\n")
      end
      accepted[b] = nil
      b:close()
    end
  end)
  bev:enable(core.EV_READ)
end)
local port = select(2, listener:address())

local function pattern(i)
  local unit = ("%06d"):format(i) .. string.rep(string.char(65 + i % 26), 58)
  return string.rep(unit, math.ceil(BYTES / #unit)):sub(1, BYTES)
end

local done, wrong, client_errors, clients = 0, 0, 0, {}
local started = socket.gettime()
for i = 1, CONNECTIONS do
  local expected, got = pattern(i), {}
  local received = 0
  clients[i] = core.bufferevent.connect(base, "127.0.0.1", port, function(b)
    local input = b:get_read()
    local n = #input
    got[#got + 1] = input:get_data()
    input:drain(n)
    received = received + n
    if received >= BYTES then
      if table.concat(got) ~= expected then wrong = wrong + 1 end
      done = done + 1
      b:close()
      if done + client_errors == CONNECTIONS then base:loopexit() end
    end
  end, nil, function(b, what, message)
    if what == core.EVBUFFER_CONNECTED then
      b:get_write():add(expected)
    else
      client_errors = client_errors + 1
      io.stderr:write("client ", i, ": ", what, " ", tostring(message), "\n")
      b:close()
      if done + client_errors == CONNECTIONS then base:loopexit() end
    end
  end, { tls = client_context, servername = "localhost", timeout = TIMEOUT })
end
base:loopexit(TIMEOUT)
base:loop()
local seconds = socket.gettime() - started
listener:close()
certs.remove()
print(("tls_load: %d connections, %d completed, %d wrong, %d client errors, %d server errors, %.1f s"):format(
  CONNECTIONS, done, wrong, client_errors, server_errors, seconds))
local ok = done == CONNECTIONS and wrong == 0 and client_errors == 0 and server_errors == 0
print(ok and "tls_load: PASS" or "tls_load: FAIL")
os.exit(ok and 0 or 1, true)
