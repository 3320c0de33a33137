-- The LuaLS addon (types/library, generated from doc/api.lua) checked by a type checker that
-- reads LuaLS annotations, EmmyLua's emmylua_check (scripts/install-deps.sh installs it):
--
-- - tests/types/good.lua uses every function correctly, including callbacks given as callable
--   tables and coroutine.wrap functions, and pins return types with `---@type`: no warning.
-- - tests/types/luasocket.lua passes sockets typed by classes of LuaSocket's own names (a stub
--   of a LuaSocket addon) to every function that takes one: no warning.
-- - tests/types/bad.lua holds one mistake per line, each marked `-- expect: <code>[, <code>]`:
--   exactly those diagnostics, on exactly those lines.
--
-- EMMYLUA_CHECK names the checker's binary when it is not on the PATH or in ~/.cargo/bin.
local h = dofile((debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or ".") .. "/reference_helpers.lua")
local root, shell_quote = h.root, h.shell_quote

local function first_line_of(command)
  local p = io.popen(command)
  local line = p and p:read("*l")
  if p then p:close() end
  return line
end

local function find_checker()
  local home = os.getenv("HOME")
  local candidates = {
    os.getenv("EMMYLUA_CHECK") or false,
    first_line_of("command -v emmylua_check 2>/dev/null") or false,
    home and (home .. "/.cargo/bin/emmylua_check") or false,
  }
  for _, path in ipairs(candidates) do
    if path and path ~= "" then
      local f = io.open(path, "rb")
      if f then
        f:close()
        return path
      end
    end
  end
end

-- The checker's warnings for one sample file: { ["<line>:<code>"] = true }, and their text.
local function diagnostics(checker, file)
  local config = os.tmpname()
  local f = assert(io.open(config, "wb"))
  -- Absolute paths: emmylua_check resolves a relative library path against its own working
  -- directory, not the workspace.
  local absolute_root = first_line_of("cd " .. shell_quote(root) .. " && pwd")
  f:write(('{ "workspace.library": ["%s/types/library"], "runtime.version": "Lua 5.4" }\n'):format(absolute_root))
  f:close()
  -- A workspace of the one sample file, so that each run reports on that file alone.
  local workspace = os.tmpname()
  os.remove(workspace)
  os.execute(("mkdir -p %s && cp %s %s/"):format(shell_quote(workspace),
    shell_quote(root .. "/tests/types/" .. file), shell_quote(workspace)))
  local p = assert(io.popen(("%s -c %s --severity warn %s 2>&1; echo \"exit status $?\""):format(
    shell_quote(checker), shell_quote(config), shell_quote(workspace))))
  local output = p:read("*a")
  p:close()
  os.execute("rm -rf " .. shell_quote(workspace) .. " " .. shell_quote(config))
  local found, code = {}, nil
  for line in output:gmatch("[^\n]+") do
    local c = line:match("^%a+: .-%[([%w%-]+)%]%s*$")
    if c then code = c end
    local n = line:match("^%s+%-%->%s+[^:]+:(%d+):%d+")
    if n and code then
      found[n .. ":" .. code] = true
      code = nil
    end
  end
  return found, output
end

local function expected(file)
  local want, n = {}, 0
  for line in io.lines(root .. "/tests/types/" .. file) do
    n = n + 1
    local codes = line:match("%-%- expect: ([%w%-, ]+)$")
    for c in (codes or ""):gmatch("[%w%-]+") do want[n .. ":" .. c] = true end
  end
  return want
end

local keys = h.sorted_keys

describe("LuaLS addon (types/library) under emmylua_check", function()
  local checker = find_checker()

  it("is checked by an installed emmylua_check (scripts/install-deps.sh installs it)", function()
    assert(checker, "emmylua_check not found: run scripts/install-deps.sh, or set EMMYLUA_CHECK")
  end)

  it("accepts a program that uses every function correctly (tests/types/good.lua)", function()
    assert(checker, "emmylua_check not found")
    local found, output = diagnostics(checker, "good.lua")
    assert(next(found) == nil, "unexpected diagnostics:\n" .. output)
    assert(output:find("No issues found", 1, true) and output:find("exit status 0", 1, true), output)
  end)

  it("accepts sockets typed by a LuaSocket addon's classes (tests/types/luasocket.lua)", function()
    assert(checker, "emmylua_check not found")
    local found, output = diagnostics(checker, "luasocket.lua")
    assert(next(found) == nil, "unexpected diagnostics:\n" .. output)
    assert(output:find("No issues found", 1, true) and output:find("exit status 0", 1, true), output)
  end)

  it("flags exactly the marked mistakes of tests/types/bad.lua", function()
    assert(checker, "emmylua_check not found")
    local found, output = diagnostics(checker, "bad.lua")
    local want = expected("bad.lua")
    assert(next(want), "bad.lua marks no expected diagnostic")
    local missing, extra = {}, {}
    for _, k in ipairs(keys(want)) do if not found[k] then missing[#missing + 1] = k end end
    for _, k in ipairs(keys(found)) do if not want[k] then extra[#extra + 1] = k end end
    assert(#missing == 0 and #extra == 0, ("missing (line:code): %s\nunexpected: %s\n%s"):format(
      table.concat(missing, " "), table.concat(extra, " "), output))
  end)
end)
