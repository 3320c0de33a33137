-- Run by rock-build.sh, under the interpreter luarocks builds for, before anything is compiled:
--   lua scripts/rock-conflict.lua ROCK_PREFIX
-- ROCK_PREFIX is luarocks' $(PREFIX), <tree>/lib/luarocks/rocks-<lua version>/luaevent-rs/<version>.
--
-- When two rocks in one tree provide the same module, LuaRocks 3 deploys it under its plain file
-- name for the rock whose name sorts first, and under a renamed file that `require` never finds
-- for the other (luarocks/repos.lua, check_spot_if_available). "luaevent", the C rock, sorts
-- before "luaevent-rs": installed next to it, luaevent-rs would be built and installed, and
-- `require "luaevent.core"` would go on loading the C module without a word. So the install
-- stops here, and says what to run.

local prefix = assert(arg[1], "usage: rock-conflict.lua ROCK_PREFIX")
local ours = "luaevent-rs"
local our_modules = { "luaevent.core", "luaevent" }

local rocks_dir = prefix:gsub("/+$", ""):match("^(.*)/[^/]+/[^/]+$")
local tree, lua_version = (rocks_dir or ""):match("^(.*)/lib/luarocks/rocks%-([%d.]+)$")
if not tree then
  -- Not a tree layout this script knows: nothing to compare with.
  return
end

local file = io.open(rocks_dir .. "/manifest", "r")
if not file then
  return -- a new tree
end
local text = file:read("*a")
file:close()

-- The manifest is a Lua file of assignments (modules = {...}, repository = {...}).
local manifest = {}
local chunk, err
if setfenv then
  chunk, err = loadstring(text, "=" .. rocks_dir .. "/manifest")
  if chunk then setfenv(chunk, manifest) end
else
  chunk, err = load(text, "=" .. rocks_dir .. "/manifest", "t", manifest)
end
if not chunk or not pcall(chunk) then
  io.stderr:write("luaevent-rs: cannot read the tree's manifest (", tostring(err or "it fails to run"),
    "), so cannot tell whether another rock provides luaevent.core; installing anyway.\n")
  return
end

-- Rocks other than ours that provide one of our modules and sort first, so keep it.
local winners, seen = {}, {}
for _, module in ipairs(our_modules) do
  for _, provider in ipairs((manifest.modules or {})[module] or {}) do
    local name, version = provider:match("^([^/]+)/(.+)$")
    if name and name ~= ours and name < ours then
      local key = name .. " " .. version
      if not seen[key] then
        seen[key] = { name = name, version = version, modules = {} }
        winners[#winners + 1] = seen[key]
      end
      local modules = seen[key].modules
      modules[#modules + 1] = module
    end
  end
end
if #winners == 0 then
  return
end

local luarocks = ("luarocks --lua-version=%s --tree=%s"):format(lua_version, tree)
local lines = {}
local function say(line) lines[#lines + 1] = line end
for _, rock in ipairs(winners) do
  say(("luaevent-rs: not installed: this tree has the rock %s %s, which provides %s too,"):format(
    rock.name, rock.version, table.concat(rock.modules, " and ")))
end
say("and LuaRocks keeps a module's name for the rock whose name sorts first, so require")
say('"luaevent.core" would go on loading that rock and luaevent-rs would never be loaded.')
say("Remove it and run this install again (add --force to the remove if another rock needs it):")
for _, rock in ipairs(winners) do
  say("    " .. luarocks .. " remove " .. rock.name)
end
say("or keep both, with luaevent-rs in a tree of its own that comes first on package.path and")
say("package.cpath (see doc/migrating.md in luaevent-rs):")
say(("    luarocks --lua-version=%s --tree=/opt/luaevent-rs install luaevent-rs"):format(lua_version))
io.stderr:write(table.concat(lines, "\n"), "\n")
os.exit(1)
