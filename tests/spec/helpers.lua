-- Small helpers shared by the spec files: bounded loops, loopback socket pairs, errors as
-- values. Loaded with dofile from the spec's own directory (see the top of each spec), so it
-- needs no entry on package.path; busted does not take it for a spec (no "_spec" in its name).
-- It uses only luaevent.core's documented API, so it serves the C-module run as well.
local socket = require "socket"

local helpers = {}

helpers.now = socket.gettime

-- Runs the loop for at most `seconds`; returns what base:loop() returns.
function helpers.run(base, seconds)
  assert(base:loopexit(seconds) == 0, "loopexit failed")
  return base:loop()
end

-- Loops in short rounds until cond() is true; false if `limit` seconds (default 3) pass first.
function helpers.wait(base, cond, limit)
  local deadline = helpers.now() + (limit or 3)
  while not cond() do
    if helpers.now() > deadline then return false end
    helpers.run(base, 0.01)
  end
  return true
end

-- A connected loopback TCP pair, both non-blocking (LuaSocket timeout 0).
function helpers.tcp_pair()
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local a = assert(socket.tcp())
  assert(a:connect("127.0.0.1", port))
  server:settimeout(2)
  local b = assert(server:accept())
  server:close()
  a:settimeout(0)
  b:settimeout(0)
  return a, b
end

-- Writes until the kernel takes nothing more: `sock` is then not writable until its peer reads.
function helpers.fill(sock)
  local chunk = string.rep("x", 65536)
  local quiet = 0
  while quiet < 3 do
    local n, err, last = sock:send(chunk)
    if n then
      quiet = 0
    else
      assert(err == "timeout", err)
      if (last or 0) == 0 then
        quiet = quiet + 1
        socket.select(nil, nil, 0.002)
      end
    end
  end
  local _, writable = socket.select(nil, { sock }, 0)
  assert(#writable == 0, "socket still writable after fill")
end

-- The error of f(...) as pcall returns it, or nil when f succeeds.
function helpers.error_of(f, ...)
  local ok, err = pcall(f, ...)
  if ok then return nil end
  return err
end

-- Full collections (twice: finalizers run in the first, their victims go in the second).
function helpers.full_gc()
  collectgarbage()
  collectgarbage()
end

-- For a spec that cannot make its check here (under valgrind, without /proc): says so on a line
-- of its own, "SKIP <file>:<line>: <why>", which the drivers (tests/run, tests/memcheck/run.sh,
-- tests/rock/run.sh) count as a skip instead of a pass and list. Call it at the end of the spec,
-- after whatever it could still check, then return (not `return helpers.skip(...)`: a tail call
-- would hide the line that called it).
-- Runs `script` (Lua source) in a child interpreter on libevent's select backend, with room for
-- more than 1024 descriptors and a global `hold_fds_until(n)` that keeps UDP sockets open until
-- one gets descriptor n or above (so that the next socket made is beyond FD_SETSIZE). Returns
-- what it printed (stdout and stderr), or nil when the limit on descriptors cannot be raised.
function helpers.on_select_backend(script)
  local prelude = [[
    local socket = require "socket"
    local held = {}
    function hold_fds_until(n)
      while true do
        local s = assert(socket.udp4()) -- made at once (socket.tcp() waits until used)
        held[#held + 1] = s
        if s:getfd() >= n then return end
        assert(#held < 4000, "no fd reached " .. n)
      end
    end
  ]]
  local path = os.tmpname()
  local file = assert(io.open(path, "w"))
  file:write(prelude, script)
  file:close()
  local interpreter = arg and arg[-1] or "lua"
  local command = ("ulimit -n 2048 2>/dev/null || { echo NO-ULIMIT; exit 0; }; EVENT_NOEPOLL=1 EVENT_NOPOLL=1 LUA_CPATH=%q LUA_PATH=%q %s %s 2>&1")
    :format(package.cpath, package.path, interpreter, path)
  local pipe = assert(io.popen(command))
  local out = pipe:read("*a")
  pipe:close()
  os.remove(path)
  if out:find("NO-ULIMIT", 1, true) then return nil end
  return out
end

function helpers.skip(why)
  local caller = debug.getinfo(2, "Sl")
  local where = caller.currentline > 0 and (caller.short_src .. ":" .. caller.currentline) or "?"
  -- On stderr, after a newline: busted's progress dots share the line otherwise.
  io.stderr:write(("\nSKIP %s: %s\n"):format(where, why))
end

return helpers
