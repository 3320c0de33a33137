-- Which luaevent a Lua program gets, for tests/rock/run.sh. Run under the interpreter of a rock
-- tree, with LUA_PATH and LUA_CPATH set as a user of that tree would set them:
--   lua tests/rock/load_check.lua CORE_FILE WRAPPER_FILE WANT
-- CORE_FILE and WRAPPER_FILE are the files `require "luaevent.core"` and `require "luaevent"`
-- must load; WANT is "luaevent-rs VERSION" for ours, or "C" for the C module (which has no
-- _NAME). Exits 0 and prints what it found when all of it holds.

local want_core_file, want_wrapper_file, want = arg[1], arg[2], arg[3]
assert(want_core_file and want_wrapper_file and want, "usage: load_check.lua CORE_FILE WRAPPER_FILE WANT")

local DIRSEP, PATHSEP, MARK = package.config:match("^(.-)\n(.-)\n(.-)\n")

-- The file `require` takes for a C module: the first readable match on package.cpath
-- (package.searchpath does not exist on 5.1 and LuaJIT).
local function search_cpath(name)
  local file = name:gsub("%.", DIRSEP)
  for template in package.cpath:gmatch("[^" .. PATHSEP .. "]+") do
    local path = template:gsub(MARK:gsub("%p", "%%%0"), file)
    local f = io.open(path, "rb")
    if f then
      f:close()
      return path
    end
  end
end

local failures = {}
local function check(ok, message)
  if not ok then failures[#failures + 1] = message end
end

assert(package.preload["luaevent.core"] == nil and package.preload["luaevent"] == nil)
local core_file = search_cpath("luaevent.core")
check(core_file == want_core_file,
  ("luaevent.core resolves to %s, not %s"):format(tostring(core_file), want_core_file))

local core = require "luaevent.core"
local wrapper = require "luaevent"
-- A function defined in the wrapper's file tells which file that was.
local wrapper_file = debug.getinfo(wrapper.addthread, "S").source:gsub("^@", "")
check(wrapper_file == want_wrapper_file,
  ("luaevent came from %s, not %s"):format(wrapper_file, want_wrapper_file))
check(wrapper.core == core, "the wrapper runs on another luaevent.core")

local found
if core._NAME then
  found = core._NAME .. " " .. tostring(core._VERSION)
  check(wrapper._CORE == found, ("the wrapper's _CORE is %s, not %s"):format(tostring(wrapper._CORE), found))
  check(wrapper._VERSION == "0.4.7", "the wrapper's _VERSION is " .. tostring(wrapper._VERSION))
else
  found = "C"
end
check(found == want, ("luaevent.core is %s, not %s"):format(found, want))

-- The library works on this interpreter: a timer fires and the loop ends.
local base, fired = core.new(), 0
local timer = base:addevent(nil, core.EV_TIMEOUT, function()
  fired = fired + 1
  return core.LEAVE
end, 0.001)
base:loop()
check(fired == 1, "a 1 ms timer fired " .. fired .. " times")

if #failures > 0 then
  io.stderr:write(table.concat(failures, "\n"), "\n")
  os.exit(1)
end
print(("%s: luaevent.core %s (libevent %s) from %s, luaevent %s from %s"):format(
  _VERSION .. (rawget(_G, "jit") and " (" .. jit.version .. ")" or ""), found,
  core.libevent_version and core.libevent_version() or "?", core_file, wrapper._VERSION, wrapper_file))
