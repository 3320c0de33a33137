-- A spec file for tests/selftest/run.sh, which runs it through the test drivers: what it does
-- is chosen by SELFTEST_FAKE. Not in tests/spec, and no "_spec" in its name: only given by name.
--   pass          two specs that pass (the control: the drivers must call this a pass)
--   crash-after   passes, then dies by SIGSEGV at interpreter shutdown, after busted's summary
--   hang-after    passes, then hangs at interpreter shutdown, after busted's summary
--   exit-after    passes, then exits with status 3 at interpreter shutdown
--   crash-before  dies by SIGABRT in the middle of a spec: no summary at all
--   pending       one spec passes, one is pending
--   skip          one spec passes, one says it cannot make its check here (helpers.skip)
--   c-exit        (LuaJIT) calls C's exit(1) in the middle of a spec, as libevent's event_err does
local fake = os.getenv("SELFTEST_FAKE") or "pass"

-- Runs f when the interpreter closes its state, after busted printed its summary (flushed, so
-- that the summary reaches the log although the process then dies).
local function at_close(f)
  local function finalizer() io.stdout:flush(); f() end
  if rawget(_G, "newproxy") then
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = finalizer
    rawset(_G, "selftest_at_close", proxy)
  else
    rawset(_G, "selftest_at_close", setmetatable({}, { __gc = finalizer }))
  end
end

-- os.execute's shell is a child of this process: $PPID is the interpreter running busted.
local function kill_self(signal)
  io.stdout:flush()
  os.execute("kill -" .. signal .. " $PPID")
end

if fake == "crash-after" then at_close(function() kill_self("SEGV") end)
elseif fake == "hang-after" then at_close(function() while true do end end)
elseif fake == "exit-after" then at_close(function() os.exit(3) end)
end

describe("a fake spec file (" .. fake .. ")", function()
  it("passes", function()
    assert.is_true(true)
  end)
  if fake == "pass" then
    it("passes again", function() assert.are.equal(2, 1 + 1) end)
  elseif fake == "crash-before" then
    it("dies", function() kill_self("ABRT") end)
  elseif fake == "pending" then
    pending("is not written yet")
  elseif fake == "skip" then
    it("cannot make its check here", function()
      local helpers = dofile("tests/spec/helpers.lua")
      helpers.skip("the self-test's own skip")
    end)
  elseif fake == "c-exit" then
    it("exits from C", function()
      local ffi = require "ffi"
      ffi.cdef "void exit(int status);"
      ffi.C.exit(1)
    end)
  end
end)
