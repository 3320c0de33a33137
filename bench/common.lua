-- Shared helpers for the benchmark scripts (bench/luaevent_bench.lua, bench/luv_bench.lua).
--
-- Every benchmark process prints
--   loaded <module> <file>            the file `require` took the module from (proof of what ran)
--   result <bench> key=value ...      work=, wall=, cpu= for timed runs; bytes= for memory
-- and nothing else on stdout; bench/run.lua parses these lines.
local socket = require "socket"

local M = {}

M.now = socket.gettime     -- wall clock, seconds
M.cpu = os.clock           -- process CPU time (user + system), seconds

-- Walks package.cpath the way require does and returns the first file that exists for `name`.
function M.find_c_module(name)
  if package.searchpath then
    return package.searchpath(name, package.cpath)
  end
  local file = name:gsub("%.", "/")
  for template in package.cpath:gmatch("[^;]+") do
    local path = template:gsub("%?", file)
    local f = io.open(path, "rb")
    if f then f:close() return path end
  end
end

-- require + print which file it came from. The C module and ours are both `luaevent.core`;
-- only LUA_CPATH decides which one loads.
function M.load(name)
  local path = M.find_c_module(name) or "?"
  local mod = require(name)
  print(("loaded %s %s"):format(name, path))
  return mod
end

-- "result <name> key=value ...", keys sorted; numbers with 9 significant digits.
function M.result(name, fields)
  local keys = {}
  for k in pairs(fields) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = { "result", name }
  for _, k in ipairs(keys) do
    local v = fields[k]
    if type(v) == "number" then v = ("%.9g"):format(v) end
    parts[#parts + 1] = ("%s=%s"):format(k, tostring(v))
  end
  print(table.concat(parts, " "))
  io.stdout:flush()
end

-- A timed benchmark: `work` units (callbacks, round trips, lines, bytes) in `wall` seconds of
-- wall-clock time and `cpu` seconds of process CPU time. bench/run.lua derives the figures.
function M.timed(name, work, wall, cpu)
  M.result(name, { work = work, wall = wall, cpu = cpu })
end

-- Resident set size in bytes, from /proc/self/statm (second field, in pages).
local PAGE = 4096
do
  local p = io.popen("getconf PAGESIZE 2>/dev/null")
  if p then PAGE = tonumber(p:read("*l") or "") or PAGE; p:close() end
end
function M.rss()
  local f = assert(io.open("/proc/self/statm", "r"))
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * PAGE
end

-- Lua heap in bytes, after full collections.
function M.heap()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count") * 1024
end

-- A connected loopback TCP pair (LuaSocket, non-blocking), plus the listener.
function M.tcp_pair()
  local listener = assert(socket.bind("127.0.0.1", 0))
  local _, port = listener:getsockname()
  local a = assert(socket.tcp())
  assert(a:connect("127.0.0.1", port))
  listener:settimeout(5)
  local b = assert(listener:accept())
  listener:close()
  a:settimeout(0)
  b:settimeout(0)
  a:setoption("tcp-nodelay", true)
  b:setoption("tcp-nodelay", true)
  return a, b
end

-- A string of `n` bytes of varied content.
function M.payload(n)
  local unit = {}
  for i = 0, 255 do unit[#unit + 1] = string.char(i) end
  local s = table.concat(unit)
  while #s < n do s = s .. s end
  return s:sub(1, n)
end

-- The network server benchmarks: starts the client (bench/net_client.c, compiled by run.sh and
-- named by BENCH_CLIENT) against our port, without waiting. `args`: the client's mode and counts.
-- ECHO_CONNECTIONS and BACKLOG are the same in bench/raw_accept.c.
M.ECHO_CONNECTIONS = 1000
M.BACKLOG = 1024
function M.start_client(mode, port, ...)
  local client = os.getenv("BENCH_CLIENT")
  if not client or client == "" then M.fail("BENCH_CLIENT (the compiled bench/net_client.c) is not set") end
  local parts = { "'" .. client:gsub("'", "'\\''") .. "'", mode, tostring(port) }
  for _, v in ipairs({ ... }) do parts[#parts + 1] = tostring(v) end
  return assert(io.popen(table.concat(parts, " "), "r"))
end

-- Waits for the client's end and returns its work count and wall-clock seconds.
function M.client_result(handle)
  local out = handle:read("*a")
  local ok = handle:close()
  local work, wall = out:match("client work=(%d+) wall=(%S+)")
  if not work or not ok then M.fail("the client failed: " .. out) end
  return tonumber(work), tonumber(wall)
end

function M.fail(msg)
  io.stderr:write("bench: FAILED: ", msg, "\n")
  os.exit(1)
end

return M
