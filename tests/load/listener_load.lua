-- Load test: 10,000 concurrent connections through core.listener, made by
-- core.bufferevent.connect, every byte echoed back and checked. No LuaSocket anywhere.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 tests/load/listener_load.lua
--   (tests/load/run.sh raises the fd limit first and runs every load script)
--
-- Two processes, so that each needs one descriptor per connection (the usual hard limit is
-- 20,000 per process): this one makes the connections and checks what comes back; a child
-- started with `server` as argument runs the listener, echoes, and reports the most
-- connections it held open at once.
--
-- Environment:
--   LOAD_LISTENER_CONNECTIONS  connections open at the same time (default 10000; lowered to what
--                              the fd limit allows, with a note)
--   LOAD_LISTENER_BYTES        bytes each connection sends and must get back (default 4096)
--   LOAD_TIMEOUT               seconds for the whole run (default 120)
-- All connections are up (and accepted) before any data flows. Exits 0 only when every
-- connection completed with every byte intact, no error was seen, and the server held all of
-- them open at once.

package.path = (arg and arg[0] and arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local common = require "common"
local core = require "luaevent.core"

local EV_READ = core.EV_READ
local EVBUFFER_EOF, EVBUFFER_CONNECTED = core.EVBUFFER_EOF, core.EVBUFFER_CONNECTED

local N = common.env_number("LOAD_LISTENER_CONNECTIONS", 10000)
local BYTES = common.env_number("LOAD_LISTENER_BYTES", 4096)
local TIMEOUT = common.env_number("LOAD_TIMEOUT", 120)
local BATCH = 512

local limit = common.fd_limit()
if limit and N > limit - 64 then
  io.stderr:write(string.format("listener_load: fd limit %d allows %d connections, not %d\n", limit, limit - 64, N))
  N = limit - 64
end

local function now() return os.time() end

-------------------------------------------------------------------------------- server ----
if arg[1] == "server" then
  local base = core.new()
  local open, peak, accepted, errors = 0, 0, 0, 0
  local listener
  local held = {} -- a bufferevent nothing references is collected, and its socket closed
  listener = core.listener.new(base, { host = "127.0.0.1", backlog = 4096 }, function(bev)
    held[bev] = true
    accepted = accepted + 1
    open = open + 1
    if open > peak then peak = open end
    bev:set_callbacks(function(b)
      b:get_write():add(b:get_read())
    end, nil, function(b, what, message)
      if what ~= EVBUFFER_EOF + core.EVBUFFER_READ then
        errors = errors + 1
        io.stderr:write("server: ", what, " ", tostring(message), "\n")
      end
      open = open - 1
      held[b] = nil
      b:close()
      if accepted == N and open == 0 then
        listener:close()
        base:loopexit() -- (the loopexit below is an event too: the loop would wait for it)
      end
    end)
    bev:enable(EV_READ)
  end)
  io.write(select(2, listener:address()), "\n")
  io.flush()
  base:loopexit(TIMEOUT)
  base:loop()
  io.write(string.format("%d %d %d\n", accepted, peak, errors))
  os.exit(0)
end

-------------------------------------------------------------------------------- client ----
local server = assert(io.popen(("%s %s server"):format(arg[-1] or "lua", arg[0])))
local port = tonumber(server:read("*l"))
assert(port, "the server did not start")

local base = core.new()
local started = now()
local stats = { connected = 0, done = 0, errors = 0, mismatched = 0, received = 0 }
local clients = {}
local errors_seen = {}

local function fail(what, message)
  stats.errors = stats.errors + 1
  local key = tostring(what) .. " " .. tostring(message)
  errors_seen[key] = (errors_seen[key] or 0) + 1
end

local function start(i)
  local got = 0
  local bev
  bev = core.bufferevent.connect(base, "127.0.0.1", port, function(b)
    local input = b:get_read()
    local data = input:get_data()
    input:drain(#data)
    stats.mismatched = stats.mismatched + common.mismatches(i, got, data)
    got = got + #data
    stats.received = stats.received + #data
    if got >= BYTES then
      stats.done = stats.done + 1
      clients[i] = nil
      b:close()
    end
  end, nil, function(b, what, message)
    if what == EVBUFFER_CONNECTED then
      stats.connected = stats.connected + 1
    else
      fail(what, message)
      clients[i] = nil
      b:close()
    end
  end, { timeout = 30 })
  clients[i] = bev
end

-- Connect everything first, a batch at a time (the backlog holds 4096 at most).
local next_client = 1
while next_client <= N and now() - started < TIMEOUT do
  local upto = math.min(N, stats.connected + stats.errors + BATCH)
  while next_client <= upto do
    start(next_client)
    next_client = next_client + 1
  end
  base:loopexit(0.01)
  base:loop()
end
while stats.connected + stats.errors < N and now() - started < TIMEOUT do
  base:loopexit(0.05)
  base:loop()
end
local all_up = stats.connected

-- Then every connection sends its stream.
for i, bev in pairs(clients) do
  bev:get_write():add(common.stream(i, 0, BYTES))
end
while stats.done + stats.errors < N and now() - started < TIMEOUT do
  base:loopexit(0.1)
  base:loop()
end
for _, bev in pairs(clients) do bev:close() end

local report = server:read("*l") or "0 0 -1"
server:close()
local accepted, peak, server_errors = report:match("^(%d+) (%d+) (%-?%d+)$")
accepted, peak, server_errors = tonumber(accepted), tonumber(peak), tonumber(server_errors)

print(string.format("listener_load: %s, %d connections (%d up at once, server peak %s), %d bytes each: "
  .. "%d done, %d bytes back, %d errors, %d mismatched bytes, server: %s accepted, %s errors; %d s",
  common.interpreter(), N, all_up, tostring(peak), BYTES, stats.done, stats.received, stats.errors,
  stats.mismatched, tostring(accepted), tostring(server_errors), now() - started))
for key, count in pairs(errors_seen) do print(string.format("  %6d  %s", count, key)) end
local ok = stats.done == N and stats.errors == 0 and stats.mismatched == 0 and peak == N and server_errors == 0
print(ok and "listener_load: PASS" or "listener_load: FAIL")
os.exit(ok and 0 or 1)
