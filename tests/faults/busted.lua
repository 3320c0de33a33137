-- busted for the fault runs (tests/faults/run.sh), with a verdict line of its own. Under failing
-- allocations specs fail and Lua errors may escape busted itself: both are expected. What must
-- not happen is a run that vanishes (a crash, a C-level exit, a hang), so busted's runner runs
-- here under a pcall, its os.exit caught, and whatever happened inside, the shim is disarmed
-- and the last line says how the run ended:
--   faults-busted: END status N (busted's own exit status: 0, or 1 when specs failed)
--   faults-busted: END status 1 (a Lua error escaped busted: <its first line>)
-- Then the process exits with that status, closing the Lua state as busted does. run.sh requires
-- this line, and the same exit status from the process.
--
--   lua5.4 tests/faults/busted.lua [busted arguments]
local exit = os.exit
local EXIT = {} -- raised by the os.exit below, so that the pcall here returns
local status

-- busted ends through os.exit(code, true) when specs failed, and returns when none did.
os.exit = function(code) -- luacheck: ignore 122
  if code == nil or code == true then status = 0
  elseif code == false then status = 1
  else status = tonumber(code) or 1 end
  error(EXIT, 0)
end

-- Called from here through pcall, busted's runner takes the process's arguments (arg) and, with
-- no Lua caller to name, always ends through os.exit rather than raising.
local ok, err = pcall(require("busted.runner"), { standalone = false })
os.getenv("FAILALLOC_DISARM")

local how
if ok then
  status, how = 0, "busted returned"
elseif err == EXIT then
  how = "busted's exit status"
else
  status = 1
  how = "a Lua error escaped busted: " .. (tostring(err):match("^[^\n]*") or "?")
end
io.stdout:write(("\nfaults-busted: END status %d (%s)\n"):format(status, how))
io.stdout:flush()
exit(status, true)
