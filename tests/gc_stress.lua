-- busted helper: run the whole suite with the garbage collector collecting all the time, so that
-- lifetime bugs (a userdata collected while C still points at it, __gc order) show up.
--
-- By default (what `make test` runs) the pause is 0: a new cycle starts as soon as the previous
-- one ends, so the collector never rests and every object is collected soon after it becomes
-- garbage, at a cost of a few times the normal run time. LUAEVENT_GC_FULL=1 selects the much
-- harsher mode described below: a full collection cycle (finalizers included) at nearly every
-- allocation, which makes the suite some 20-50 times slower (LuaJIT far more).
--
--   busted --helper=tests/gc_stress.lua tests/spec
--
-- pause 0 makes a new cycle start as soon as the previous one ends; the step multiplier (and on
-- 5.4 the step size) makes every step run the whole cycle at once. What each interpreter accepts:
--   5.1, LuaJIT  setpause/setstepmul; stepmul 0 means "no limit": each step is a full cycle.
--   5.2, 5.3     setpause/setstepmul; stepmul is clamped to >= 40 and its product with the debt
--                saturates, so a huge stepmul runs the cycle to its end.
--   5.4          setpause still exists (pause 0 is stored as is; collectgarbage("incremental", 0)
--                would NOT do it: 0 there means "keep the current value"). stepmul is a byte
--                (value/4, wraps above 1023), so the full cycle comes from the step size instead:
--                2^63 bytes and more per step (stepsize > 62) means "no limit".
--   5.5          no setpause/setstepmul: collectgarbage("param", name, value), values in percent
--                (the step size in bytes), each kept as a one-byte float that saturates at its
--                largest (about 400000). The step size is also the allocation between steps, so
--                the full mode takes a small one (a step every 100 bytes) with the largest
--                multiplier (each step does some 4000 times its size in work).
--
-- LUAEVENT_GC_PAUSE=<n> (default 0) starts each cycle only once the heap has grown to n% of what
-- survived the last one (e.g. 110): still one whole cycle at a time, far fewer of them.
local version = _VERSION
local jit = rawget(_G, "jit")

-- LuaJIT (2.1.0-beta3, Debian 12) livelocks in JIT-compiled code when a collection cycle is due
-- at every allocation (pause 0 with stepmul 0, and with 1000 too): its GC will not run the atomic
-- phase on a trace, so it leaves the trace, the interpreter enters it again at once, and round
-- it goes. The misuse spec hung that way in about one run in five. This never ends under luajit
-- (with `luajit -joff`, or under lua5.1, it takes milliseconds):
--   collectgarbage("setpause", 0); collectgarbage("setstepmul", 0)
--   local src = { a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8 }
--   for iter = 1, 100 do
--     local list = {}; for k, v in pairs(src) do list[#list + 1] = { k, v } end
--   end
-- So under this helper LuaJIT runs interpreted: collection timing is what these runs test.
if jit then jit.off() end
local pause = math.floor(tonumber(os.getenv("LUAEVENT_GC_PAUSE") or "") or 0)

if not os.getenv("LUAEVENT_GC_FULL") then
  -- The step multiplier stays at the interpreter's default: with pause 0 that already keeps a
  -- cycle running at all times, while a large one made Lua 5.2 some 50 times slower.
  if version == "Lua 5.2" or version == "Lua 5.4" or version == "Lua 5.5" then
    collectgarbage("incremental")
  end
  if version == "Lua 5.5" then
    collectgarbage("param", "pause", pause)
  else
    collectgarbage("setpause", pause)
  end
  collectgarbage("restart")
else
  if version == "Lua 5.5" then
    collectgarbage("incremental")
    collectgarbage("param", "pause", pause)
    collectgarbage("param", "stepsize", 100)
    collectgarbage("param", "stepmul", 1000000) -- saturates at the largest value
  elseif version == "Lua 5.4" then
    collectgarbage("incremental", 0, 0, 63) -- mode incremental, step size "unlimited"
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", 1000)      -- the largest that fits (stored as 1000/4 = 250)
  elseif version == "Lua 5.2" or version == "Lua 5.3" then
    if version == "Lua 5.2" then collectgarbage("incremental") end -- not the generational mode
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", 2 ^ 30)
  else -- Lua 5.1, LuaJIT
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", 0)
  end
  collectgarbage("restart")
  collectgarbage()
end

-- Specs may scale their work down under this helper (misuse_spec.lua does).
LUAEVENT_GC_STRESS = jit and jit.version or version
