-- What `luarocks test` runs (the rockspecs' test table), under the interpreter luarocks targets:
--   luarocks test                        Lua 5.4, or whatever luarocks is set up for
--   luarocks --lua-version=5.1 test      Lua 5.1 (LuaJIT: a luarocks config naming it)
--   luarocks test -- --filter=buffer     anything after -- goes to busted
-- It builds luaevent.core for that interpreter the way the rock does (scripts/rock-build.sh),
-- puts it and the wrapper in target/rock/test/, and runs the busted specs in tests/spec against
-- them. busted is taken from $BUSTED, or the PATH.

-- The interpreter is the lowest-numbered entry of arg (luarocks runs `LUA script args...`).
local first = 0
while arg[first - 1] do first = first - 1 end
local lua = arg[first]

local function quote(s)
  return "'" .. (s:gsub("'", "'\\''")) .. "'"
end

-- os.execute says success as true (5.2+) or 0 (5.1, LuaJIT).
local function run(command)
  io.stdout:flush()
  local status = os.execute(command)
  return status == true or status == 0
end

local function fail(message)
  io.stderr:write("luarocks_test: ", message, "\n")
  os.exit(1)
end

local function exists(path)
  local file = io.open(path, "r")
  if file then file:close() end
  return file ~= nil
end

if not exists("scripts/rock-build.sh") or not exists("tests/spec/core_spec.lua") then
  fail("run luarocks test in the luaevent-rs source folder (the checkout or the unpacked release)")
end

if not run("sh scripts/rock-build.sh " .. quote(lua)) then
  fail("the build failed (see above)")
end

local dir = "target/rock/test"
if not run(("mkdir -p %s/luaevent && cp target/rock/core.so %s/luaevent/core.so && cp lua/luaevent.lua %s/luaevent.lua")
    :format(dir, dir, dir)) then
  fail("could not copy the build to " .. dir)
end

local function find_busted()
  local busted = os.getenv("BUSTED")
  if busted and busted ~= "" then return busted end
  for folder in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    if exists(folder .. "/busted") then return folder .. "/busted" end
  end
  fail("busted not found: install it (Debian: apt install lua-busted; or luarocks install busted), or set BUSTED")
end
local busted = find_busted()

-- A busted that is a Lua script runs under this interpreter; a LuaRocks wrapper (a shell script)
-- runs the interpreter it was installed for.
local command
local file = io.open(busted, "r")
local shebang = file and file:read("*l") or ""
if file then file:close() end
if shebang:match("^#!.*lua") then
  command = quote(lua) .. " " .. quote(busted)
else
  command = quote(busted)
end

local args, has_root = {}, false
for i = 1, #arg do
  args[#args + 1] = quote(arg[i])
  if arg[i]:sub(1, 1) ~= "-" then has_root = true end
end
if not has_root then args[#args + 1] = "tests/spec" end

-- The same settings as tests/run's spec run: the module and the wrapper from the folder above,
-- and the core spec checks the loaded file is that one.
local env = ("LUA_CPATH=%s LUA_PATH=%s LUAEVENT_EXPECT_CORE=%s"):format(
  quote(dir .. "/?.so;;"), quote(dir .. "/?.lua;;"), quote(dir .. "/luaevent/core.so"))
print(("luarocks_test: busted on %s against %s/"):format(lua, dir))
if not run("env " .. env .. " " .. command .. " " .. table.concat(args, " ")) then
  os.exit(1)
end
