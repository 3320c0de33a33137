-- The event base: new, loop, loopexit, method, and how callback errors and
-- argument errors reach the caller. Every loop here is bounded by loopexit or
-- by a guard timer, so a broken module fails a spec instead of hanging.
local core = require "luaevent.core"
local socket = require "socket"
-- The helpers shared by the spec files, found beside this one.
local helpers = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "") .. "helpers.lua")
local run, error_of = helpers.run, helpers.error_of

local LEAVE, EV_TIMEOUT = core.LEAVE, core.EV_TIMEOUT
local now = socket.gettime

local function is_linux()
  local h = io.popen("uname -s 2>/dev/null")
  local s = h and h:read("*l")
  if h then h:close() end
  return s == "Linux"
end

describe("event base", function()
  it("core.new() gives a distinct base each time", function()
    local a, b = core.new(), core.new()
    assert.equal("userdata", type(a))
    assert.are_not.equal(a, b)
  end)

  it("method() names the backend (epoll on Linux, unless libevent is told to avoid it)", function()
    local m = core.new():method()
    assert.is_string(m)
    if not is_linux() then
      assert.truthy(#m > 0)
    elseif os.getenv("EVENT_NOEPOLL") and os.getenv("EVENT_NOPOLL") then
      assert.equal("select", m)
    elseif os.getenv("EVENT_NOEPOLL") then
      assert.equal("poll", m)
    else
      assert.equal("epoll", m)
    end
  end)

  describe("loop()", function()
    it("returns 1 at once when no event is registered", function()
      local base = core.new()
      local t0 = now()
      assert.equal(1, base:loop())
      assert.truthy(now() - t0 < 0.5)
    end)

    it("returns 1 once every event has left by itself", function()
      local base = core.new()
      -- Guard bounds the loop; the timer closes it, so only a working LEAVE
      -- lets loop() end on "no events".
      local guard = base:addevent(nil, 0, function()
        base:loopexit()
        return LEAVE
      end, 2)
      local n = 0
      local ev = base:addevent(nil, 0, function()
        n = n + 1
        if n == 1 then guard:close() else base:loopexit() end
        return LEAVE
      end, 0.01)
      assert.equal(1, base:loop())
      assert.equal(1, n)
      ev:close()
    end)

    it("returns 0 when loopexit stops it while events remain", function()
      local base = core.new()
      local n = 0
      local ev = base:addevent(nil, 0, function() n = n + 1 end, 0.01)
      assert.equal(0, run(base, 0.05))
      assert.truthy(n >= 1)
      ev:close()
    end)

    it("is an error when the base is already looping #cbug", function()
      -- C: libevent prints a warning and loop() returns -1.
      local base = core.new()
      local err, inner
      local ev = base:addevent(nil, 0, function()
        err = error_of(function() inner = base:loop() end)
        base:loopexit()
        return LEAVE
      end, 0.01)
      run(base, 1)
      assert.is_nil(inner)
      assert.equal("string", type(err))
      assert.truthy(err:find("already", 1, true), err)
      -- The outer loop was not disturbed: the base still works.
      local n = 0
      local ev2 = base:addevent(nil, 0, function()
        n = n + 1
        base:loopexit()
        return LEAVE
      end, 0)
      assert.equal(0, base:loop())
      assert.equal(1, n)
      ev:close(); ev2:close()
    end)
  end)

  describe("loopexit()", function()
    it("returns 0 and exits the loop after the given seconds", function()
      local base = core.new()
      local n = 0
      local ev = base:addevent(nil, 0, function() n = n + 1 end, 0.01)
      local t0 = now()
      assert.equal(0, base:loopexit(0.1))
      assert.equal(0, base:loop())
      local dt = now() - t0
      assert.truthy(dt >= 0.09, "exited after " .. dt)
      assert.truthy(dt < 1, "exited after " .. dt)
      -- The persistent 0.01 s timer kept firing meanwhile.
      assert.truthy(n >= 3, "timer fired " .. n .. " times")
      ev:close()
    end)

    it("without seconds exits once the current callbacks have run", function()
      local base = core.new()
      local n = 0
      local ev = base:addevent(nil, 0, function()
        n = n + 1
        assert.equal(0, base:loopexit())
      end, 0.01)
      base:loopexit(1) -- bound only
      assert.equal(0, base:loop())
      assert.equal(1, n)
      ev:close()
    end)

    -- What the reference's "Loop lifetime" section says a pending loopexit does.
    it("a pending loopexit(t) keeps an empty base looping for the whole t, then returns 0", function()
      local base = core.new()
      local t0 = now()
      assert.equal(0, base:loopexit(0.2))
      assert.equal(0, base:loop())
      local dt = now() - t0
      assert.truthy(dt >= 0.19 and dt < 1, "returned after " .. dt)
    end)

    it("a pending loopexit(t) carries over a callback error into the next loop, at its first deadline", function()
      local base = core.new()
      local t0 = now()
      base:loopexit(0.3)
      local failing = base:addevent(nil, 0, function() error("early", 0) end, 0.01)
      assert.equal("early", (error_of(base.loop, base) or ""):match("^[^\n]*"))
      failing:close()
      assert.truthy(now() - t0 < 0.25)
      local ticker = base:addevent(nil, 0, function() end, 0.01)
      assert.equal(0, base:loop())
      ticker:close()
      local dt = now() - t0
      assert.truthy(dt >= 0.29 and dt < 1.5, "the second loop ended after " .. dt)
    end)

    it("loopexit() outside a loop ends the next loop before any callback, and is used up", function()
      local base = core.new()
      local n = 0
      local ev = base:addevent(nil, 0, function() n = n + 1 end, 0.01)
      base:loopexit()
      assert.equal(0, base:loop())
      assert.equal(0, n)
      assert.equal(0, run(base, 0.05))
      assert.truthy(n >= 1)
      ev:close()
    end)

    it("accepts fractional seconds", function()
      local base = core.new()
      local ev = base:addevent(nil, 0, function() end, 0.01)
      local t0 = now()
      assert.equal(0, run(base, 0.025))
      local dt = now() - t0
      assert.truthy(dt >= 0.02 and dt < 0.5, "exited after " .. dt)
      ev:close()
    end)
  end)

  describe("callback errors", function()
    it("stop the loop, which raises them as a string with a traceback", function()
      local base = core.new()
      local n = 0
      local ev = base:addevent(nil, 0, function()
        n = n + 1
        error("boom in callback")
      end, 0.01)
      base:loopexit(1)
      local err = error_of(base.loop, base)
      assert.equal("string", type(err))
      -- "<where>: boom in callback\nstack traceback:\n..."
      assert.truthy(err:find("boom in callback\nstack traceback:", 1, true), err)
      assert.equal(1, n) -- the loop stopped right after the failing callback
      ev:close()
    end)

    it("keep the message intact when raised with level 0", function()
      local base = core.new()
      local ev = base:addevent(nil, 0, function() error("plain", 0) end, 0)
      base:loopexit(1)
      local err = error_of(base.loop, base)
      assert.equal("string", type(err))
      assert.equal(1, err:find("plain\nstack traceback:", 1, true))
      ev:close()
    end)

    it("leave the event registered and the base usable", function()
      local base = core.new()
      local n = 0
      local ev = base:addevent(nil, 0, function()
        n = n + 1
        if n == 1 then error("first time only") end
      end, 0.01)
      base:loopexit(1)
      local err = error_of(base.loop, base)
      assert.truthy(err and err:find("first time only", 1, true))
      assert.equal(1, n)
      -- Loop again: the same event fires again (it was neither removed nor
      -- made dormant), and loop() returns normally.
      local ok, res = pcall(function()
        local guard = base:addevent(nil, 0, function()
          base:loopexit()
          return LEAVE
        end, 0.1)
        local r = base:loop()
        guard:close()
        return r
      end)
      assert.is_true(ok, res)
      assert.equal(0, res)
      assert.truthy(n >= 3, "fired " .. n .. " times")
      ev:close()
    end)

    it("raised with a table still reach loop() as a string #cbug", function()
      -- C: loop() raises the table itself.
      local base = core.new()
      local ev = base:addevent(nil, 0, function() error({ code = 42 }) end, 0)
      base:loopexit(1)
      local err = error_of(base.loop, base)
      assert.equal("string", type(err))
      assert.truthy(err:find("stack traceback", 1, true), err)
      ev:close()
    end)

    it("raised with nil still reach loop() as a string #cbug", function()
      -- C on 5.1/LuaJIT: loop() raises nil.
      local base = core.new()
      local ev = base:addevent(nil, 0, function() error(nil) end, 0)
      base:loopexit(1)
      local ok, err = pcall(base.loop, base)
      assert.is_false(ok)
      assert.equal("string", type(err))
      assert.truthy(err:find("stack traceback", 1, true), err)
      ev:close()
    end)
  end)

  describe("argument errors are Lua-style strings", function()
    it("loopexit with a non-number", function()
      local base = core.new()
      local err = error_of(function() base:loopexit("soon") end)
      assert.equal("string", type(err))
      assert.truthy(err:find("bad argument #1 to 'loopexit' (", 1, true), err)
    end)

    it("a method called on something that is not a base", function()
      local base = core.new()
      local err = error_of(base.loop, {})
      assert.equal("string", type(err))
      assert.truthy(err:match("bad argument #1 to '.-' %(.+%)"), err)
    end)

    it("addevent with a non-function callback", function()
      local base = core.new()
      local err = error_of(function() local ev = base:addevent(nil, 0, "f", 1) end)
      assert.equal("string", type(err))
      assert.truthy(err:find("bad argument #3 to 'addevent' (", 1, true), err)
    end)

    it("addevent(nil, nil, f, 1) names argument #2 #cbug", function()
      -- C allocates the event before checking, then may crash collecting it.
      local base = core.new()
      local err = error_of(function()
        local ev = base:addevent(nil, nil, function() end, 1)
      end)
      assert.equal("string", type(err))
      assert.truthy(err:match("bad argument #2 to 'addevent' %(.+%)"), err)
    end)
  end)
  describe("regressions", function()
    it("core.new() raises instead of ending the process when no fds are left #cbug", function()
      -- libevent exits(1) when it cannot make an epoll base's signal socketpair; the module must
      -- check first. Run in a child interpreter with a small fd limit, all but two fds taken.
      local script = [[
        local core = require "luaevent.core"
        local hoard = {}
        while true do
          local f = io.open("/dev/null", "r")
          if not f then break end
          hoard[#hoard + 1] = f
        end
        for _ = 1, 2 do table.remove(hoard):close() end
        local ok, err = pcall(core.new)
        io.write(ok and "created" or ("raised: " .. tostring(err)), "\n")
        io.write("survived\n")
      ]]
      local out = helpers.child_output(script, 'ulimit -n 32; $LUA "$SCRIPT" 2>/dev/null')
      assert.truthy(out:find("survived", 1, true), "the child died: " .. out)
      assert.truthy(out:find("raised: core.new: could not create an event base", 1, true), out)
    end)
  end)
end)
