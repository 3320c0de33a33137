-- Shared by the specs that read the API description: where the repository is, a way to do heavy
-- text work without the GC stress helper's collections at every allocation, and shell quoting.
-- Loaded with dofile; busted does not take it for a spec (no "_spec" in its name).
local helpers = {}

-- The repository root: two levels above this file.
local dir = debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or "."
helpers.root = dir .. "/../.."

-- Runs fn(...) with the collector stopped when tests/gc_stress.lua is active. Generating the
-- reference there would take minutes and prove nothing about lifetimes; the objects made for the
-- checks are still collected under stress afterwards.
local function restart_then(ok, ...)
  collectgarbage("restart")
  if not ok then error((...), 0) end
  return ...
end
function helpers.calm(fn, ...)
  if not rawget(_G, "LUAEVENT_GC_STRESS") then return fn(...) end
  collectgarbage("stop")
  return restart_then(pcall(fn, ...))
end

-- A string as one word for /bin/sh.
function helpers.shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The keys of a table, sorted: for reports that read the same on every run.
function helpers.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

return helpers
