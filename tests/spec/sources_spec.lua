-- The project's own Lua files against Lua 5.5's stricter rules: a `for` loop's control variable
-- is read-only there, and `global` is a keyword in declarations. The specs load only some of
-- these files (the wrapper, the examples); the scripts, benchmarks and test drivers are
-- compiled here, so that code written on an older Lua cannot break them on 5.5 unnoticed.

if _VERSION ~= "Lua 5.5" then return end

-- The folders that hold the project's Lua files, as `luarocks test` and a checkout both have
-- them (build products, vendored crates and release files left out).
local FOLDERS = { "lua", "examples", "scripts", "bench", "tests", "doc", "types" }

local function lua_files()
  local command = "find " .. table.concat(FOLDERS, " ") .. " -name '*.lua' -type f 2>/dev/null | sort"
  local pipe = assert(io.popen(command))
  local files = {}
  for line in pipe:lines() do files[#files + 1] = line end
  pipe:close()
  return files
end

describe("the project's Lua files on Lua 5.5", function()
  it("all compile (no assignment to a loop variable, no `global` misread)", function()
    local files = lua_files()
    assert.is_true(#files > 20, "found only " .. #files .. " Lua files: not run from the source folder?")
    local failures = {}
    for _, file in ipairs(files) do
      local chunk, err = loadfile(file)
      if not chunk then failures[#failures + 1] = err end
    end
    assert.same({}, failures)
  end)

  it("refuses a loop that assigns to its control variable, which is what the check above catches", function()
    local chunk, err = load("for i = 1, 2 do i = i + 1 end")
    assert.is_nil(chunk)
    assert.truthy(err:find("attempt to assign to const variable 'i'", 1, true), err)
  end)
end)
