-- Lua code that runs inside the module's own calls: a socket's getfd method, and finalizers
-- (__gc) that a collection step runs while the module allocates. Such code can close the very
-- object the call is working on, or raise an error in the middle of it. The call must then
-- see the object closed (an error that says so) or finish normally; the process never dies,
-- and every error is a plain string.
--
-- luaevent.core only: the C module reads freed memory in several of these cases (#cbug).
local core = require "luaevent.core"
local helpers = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "") .. "helpers.lua")

local EV_TIMEOUT = core.EV_TIMEOUT

-- An object whose finalizer runs `fn`: a userdata from newproxy on 5.1 and LuaJIT, a table
-- elsewhere (tables have finalizers from 5.2 on).
local function with_finalizer(fn)
  if rawget(_G, "newproxy") then
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = fn
    return proxy
  end
  return setmetatable({}, { __gc = fn })
end

-- Calls fn(i) until it returns true or `limit` rounds pass, making garbage as it goes so that
-- collection steps (and so finalizers) run inside the calls fn makes.
local function churn(limit, fn)
  for i = 1, limit do
    local garbage = {}
    for j = 1, 20 do garbage[j] = { j } end
    if fn(i) then return true end
  end
  return false
end

describe("Lua code run inside the module's calls #cbug", function()
  describe("a getfd method that closes the object being used", function()
    it("buf:read(obj): the buffer is found closed, nothing is read into freed memory", function()
      local buf = core.buffer.new()
      local a, b = helpers.tcp_pair()
      a:send("hello")
      local obj = { getfd = function() buf:close(); return b:getfd() end }
      local ok, err = pcall(buf.read, buf, obj, 5)
      assert.is_false(ok)
      assert.equal("string", type(err))
      assert.truthy(err:find("attempt to use a closed buffer", 1, true), err)
      a:close(); b:close()
    end)

    it("buf:write(obj): the buffer is found closed", function()
      local buf = core.buffer.new()
      buf:add("data")
      local a, b = helpers.tcp_pair()
      local obj = { getfd = function() buf:close(); return a:getfd() end }
      local ok, err = pcall(buf.write, buf, obj)
      assert.is_false(ok)
      assert.truthy(err:find("attempt to use a closed buffer", 1, true), err)
      a:close(); b:close()
    end)

    it("bufferevent.new(base, obj, ...): a getfd that raises is a bad argument naming its error", function()
      local base = core.new()
      local obj = { getfd = function() error("no descriptor today", 0) end }
      local ok, err = pcall(core.bufferevent.new, base, obj, nil, nil, function() end)
      assert.is_false(ok)
      assert.truthy(err:find("getfd failed: no descriptor today", 1, true), err)
    end)
  end)

  describe("a finalizer that closes the object while the module allocates", function()
    it("buf:get_data() of a long string returns all of it or says the buffer is closed", function()
      local payload = string.rep("0123456789", 1000) -- longer than the module's scratch space
      local buf = core.buffer.new()
      buf:add(payload)
      local closed_seen = false
      local finalized = false
      churn(2000, function()
        local _ = with_finalizer(function() finalized = true; buf:close() end)
        _ = nil
        local ok, data = pcall(buf.get_data, buf)
        if ok then
          assert.equal(payload, data)
        else
          assert.equal("string", type(data))
          assert.truthy(data:find("closed buffer", 1, true), data)
          closed_seen = true
        end
        return closed_seen
      end)
      collectgarbage()
      assert.is_true(finalized, "no finalizer ran: the test proved nothing")
    end)

    it("bev:get_read() made while a finalizer closes the bufferevent: a closed buffer, never a dangling one", function()
      local base = core.new()
      local finalized = 0
      churn(300, function()
        local a, b = helpers.tcp_pair()
        local bev = core.bufferevent.new(base, b, nil, nil, function() end)
        local _ = with_finalizer(function() finalized = finalized + 1; bev:close() end)
        _ = nil
        local ok, input = pcall(bev.get_read, bev)
        if ok then
          -- Open: it works. Closed by the finalizer meanwhile: every use says so.
          local fine, err = pcall(input.length, input)
          assert.is_true(fine or err:find("closed buffer", 1, true) ~= nil, tostring(err))
        else
          assert.truthy(input:find("closed bufferevent", 1, true), input)
        end
        bev:close(); a:close(); b:close()
      end)
      collectgarbage()
      assert.is_true(finalized > 0, "no finalizer ran: the test proved nothing")
    end)
  end)

  describe("a finalizer that raises while the module allocates", function()
    -- Lua 5.1-5.3 and LuaJIT pass a finalizer's error on to whatever allocation ran the
    -- collection step; 5.4 and 5.5 only warn. Inside the module's calls that error must arrive as an
    -- ordinary error of the call. On LuaJIT, errors unwind like C++ exceptions, and one that
    -- crossed the module's Rust frames used to abort the process.
    local CALLS = [[
      local core = require "luaevent.core"
      local buf = core.buffer.new()
      buf:add(string.rep("x", 100))
      local base = core.new()
      return buf, base, {
        function() return buf:get_data(50) end,
        function() local ev = base:addevent(nil, core.EV_TIMEOUT, function() end, 1); ev:close() end,
        function() return core.buffer.new() end,
      }
    ]]

    if rawget(_G, "jit") or rawget(_G, "LUAEVENT_GC_STRESS") then
      -- LuaJIT itself does not survive erroring finalizers reliably (with the JIT on it can
      -- crash on its own), and under the GC stress helper such an error surfaces at nearly any
      -- call, the test's own included. So the calls run in a child interpreter, and what is
      -- judged is how it ends: it must get through every round (each under a pcall made once,
      -- so that nothing outside a pcall allocates), collect the erroring objects, print its
      -- "survived" line and exit with status 0 through lua_close. Any signal, any error that
      -- got out, a child that never loaded the module: all fail.
      it("never aborts the process (in a child interpreter)", function()
        local out = helpers.child_output("local buf, base, calls = (function() " .. CALLS .. " end)()\n" .. [[
          -- Lua 5.5 warns about each erroring finalizer by default: the output is judged.
          if warn then warn("@off") end
          -- The finalizers raise only while the calls run. Lua 5.2 also steps its collector
          -- when a C function is called, so one raising at the call of a top-level pcall (or
          -- at io.write) would end this driver, not the module's call.
          local raised, inside = 0, false
          local function finalizer()
            if inside then raised = raised + 1; error("finalizer failed", 0) end
          end
          local function round()
            local p
            if newproxy then
              p = newproxy(true)
              getmetatable(p).__gc = finalizer
            else
              p = setmetatable({}, { __gc = finalizer })
            end
            p = nil
            inside = true
            for _, call in ipairs(calls) do pcall(call) end
            inside = false
          end
          -- A round cut short by a raising finalizer leaves inside set: reset before each call.
          for i = 1, 5000 do inside = false; pcall(round) end
          inside = false
          collectgarbage()
          io.write("survived: ", raised, " finalizers raised\n")
        ]], '$LUA ' .. (rawget(_G, "jit") and "-joff" or "") .. ' "$SCRIPT" 2>&1; echo "status $?"')
        assert.falsy(out:find("Rust cannot catch", 1, true), out)
        assert.falsy(out:find("panicked", 1, true), out)
        local status = tonumber(out:match("status (%d+)%s*$"))
        assert.is_number(status, out)
        -- The shell reports a death by signal N as status 128 + N.
        assert.are.equal(0, status, status > 128 and ("the child died by signal " .. status - 128 .. ":\n" .. out) or out)
        local raised = tonumber(out:match("^survived: (%d+) finalizers raised\nstatus 0%s*$"))
        assert.is_number(raised, "the child did not end with its \"survived\" line:\n" .. out)
        assert.is_true(raised > 0, "no finalizer ran in the child: the test proved nothing")
      end)
      return
    end

    it("reaches the caller of get_data, addevent and buffer.new as a plain error", function()
      local buf, base, calls = (loadstring or load)(CALLS)()
      -- Lua 5.5 starts with warnings on: without this, thousands of "error in __gc" lines.
      if _VERSION == "Lua 5.5" then
        warn("@off")
        finally(function() warn("@on") end)
      end
      -- Objects finalized after the test must not raise into busted itself.
      local armed = true
      local completed, wrong = 0, {}
      local function finalizer() if armed then error("finalizer failed", 0) end end
      -- The finalizer's error may also surface outside the module (in this function's own
      -- allocations): the pcall around it takes those; only the module's calls are judged.
      -- Made once, so that the loop below allocates nothing outside that pcall.
      local function round()
        local _ = with_finalizer(finalizer)
        _ = nil
        for _, call in ipairs(calls) do
          local ok, err = pcall(call)
          if not ok and not (type(err) == "string" and err:find("finalizer failed", 1, true)) then
            wrong[#wrong + 1] = tostring(err)
          end
          completed = completed + 1
        end
      end
      for _ = 1, 3000 do
        pcall(round)
      end
      armed = false
      collectgarbage()
      assert.is_true(completed > 3000, "the calls did not run (" .. completed .. ")")
      assert.same({}, wrong)
      -- The buffer and the base still work afterwards.
      assert.equal(string.rep("x", 10), buf:get_data(10))
      assert.equal(1, base:loop()) -- no event left
    end)
  end)
end)
