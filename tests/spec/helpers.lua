-- Small helpers shared by the spec files: bounded loops, loopback socket pairs, errors as
-- values, child interpreters. Loaded with dofile from the spec's own directory (see the top of
-- each spec), so it needs no entry on package.path; busted does not take it for a spec (no
-- "_spec" in its name). It uses only luaevent.core's documented API, so it serves the C-module
-- run as well; the wrapper and this module's own additions are loaded only by the helpers that
-- use them.
local socket = require "socket"

local helpers = {}

helpers.now = socket.gettime

-- Whether tests/gc_stress.lua runs the specs: they scale their work down under it.
helpers.GC_STRESS = rawget(_G, "LUAEVENT_GC_STRESS") and true or false

-- Seconds a loop that waits for a spec's own end may run before the spec fails instead of hanging.
-- Under stop-the-world GC and under valgrind (tests/memcheck/run.sh), handshakes are many
-- times slower.
helpers.GUARD = (helpers.GC_STRESS or os.getenv("LUAEVENT_UNDER_VALGRIND")) and 120 or 20

-- Raises a plain string (not a luassert object), so that loop() can carry it out of a callback
-- or a coroutine; returns `cond`.
function helpers.check(cond, msg)
  if not cond then error(msg, 0) end
  return cond
end

-- loop() appends a traceback to callback errors: their first line only.
function helpers.first_line(err)
  return (tostring(err):match("^[^\n]*"))
end

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

-- Runs body(finish), then the wrapper's loop (luaevent.loop) until finish() is called: a
-- 0-timeout timer that raises "done". A guard timer raises "timeout" after `seconds` (default
-- GUARD), so a broken wrapper fails the spec instead of hanging; both timers are closed
-- afterwards. Returns nil when the loop ended by finish(), else how it ended.
function helpers.wrapper_loop(body, seconds)
  local luaevent = require "luaevent"
  local stop
  local function finish()
    stop = stop or luaevent.addevent(nil, 0, function() error("done", 0) end, 0)
  end
  local guard = luaevent.addevent(nil, 0, function() error("timeout", 0) end, seconds or helpers.GUARD)
  local ok, err = pcall(body, finish)
  if ok then ok, err = pcall(luaevent.loop) end
  guard:close()
  if stop then stop:close() end
  if ok then return "loop() returned without being stopped" end
  if helpers.first_line(err) == "done" then return nil end
  return err
end

-- As wrapper_loop, failing the spec unless the loop ended by finish().
function helpers.wrapper_run(body, seconds)
  local err = helpers.wrapper_loop(body, seconds)
  assert(err == nil, "the loop ended with: " .. tostring(err))
end

-- A port on which nothing listens: one a listener on `host` (default 127.0.0.1) had a moment
-- ago. The listener is made on `base`, or on a base of its own.
function helpers.closed_port(base, host)
  local core = require "luaevent.core"
  local l = core.listener.new(base or core.new(), { host = host or "127.0.0.1" }, function() end)
  local port = select(2, l:address())
  l:close()
  return port
end

-- Writes `text` to a new temporary file; returns its path (the caller removes the file).
function helpers.temp_file(text)
  local path = os.tmpname()
  local file = assert(io.open(path, "wb"))
  assert(file:write(text))
  file:close()
  return path
end

-- Runs the Lua program `script` in a child process of this interpreter (as busted started it,
-- with this process's package.path and package.cpath) and returns all it wrote to the pipe once
-- it ended. `command` is the shell command, in which $LUA is the interpreter and $SCRIPT the
-- program's file (default: both outputs to the pipe, no time limit).
function helpers.child_output(script, command)
  local path = helpers.temp_file(script)
  local interpreter = arg and arg[-1] or "lua"
  local pipe = assert(io.popen(("LUA=%q; SCRIPT=%q; export LUA_PATH=%q LUA_CPATH=%q; ")
    :format(interpreter, path, package.path, package.cpath) .. (command or '$LUA "$SCRIPT" 2>&1')))
  local out = pipe:read("*a")
  pipe:close()
  os.remove(path)
  return out
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
