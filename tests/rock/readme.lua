-- Splits README.md into its code blocks for tests/rock/run.sh, and checks the rules its run
-- commands follow:
--   lua5.4 tests/rock/readme.lua README.md OUTDIR
-- Writes OUTDIR/install.sh (the first sh block under "## Install with luarocks"),
-- OUTDIR/luajit.sh (the block naming the LuaJIT interpreter), OUTDIR/examples.sh (the sh block
-- under "## Examples") and OUTDIR/lua-N.lua for each lua block that is not announced as a
-- fragment (the line before it says "fragment"). Exits 1, saying why, when
--   * one of those sh blocks is missing;
--   * a command runs an interpreter (lua5.x, luajit) without LUA_PATH and LUA_CPATH set on the
--     same line, by an `export` of both or by `eval "$(luarocks ... path)"` earlier in its block;
--   * a file in examples/ is not run by the Examples block.

local readme, outdir = arg[1], arg[2]
assert(readme and outdir, "usage: readme.lua README.md OUTDIR")

local blocks, section, previous = {}, "", ""
local current
for line in io.lines(readme) do
  local fence, lang = line:match("^(%s*)```(%w*)%s*$")
  if current then
    if fence and lang == "" then
      blocks[#blocks + 1] = current
      current = nil
    else
      current.lines[#current.lines + 1] = line:sub(#current.indent + 1)
    end
  elseif fence and lang ~= "" then
    current = { lang = lang, indent = fence, section = section, before = previous, lines = {} }
  else
    section = line:match("^## (.*)") or section
    if line:match("%S") then previous = line end
  end
end

local problems = {}
local function problem(text) problems[#problems + 1] = text end

local function write(name, lines)
  local file = assert(io.open(outdir .. "/" .. name, "w"))
  file:write(table.concat(lines, "\n"), "\n")
  file:close()
end

local wanted = {}
local lua_count = 0
for _, block in ipairs(blocks) do
  if block.lang == "sh" then
    local paths_set = false
    for _, line in ipairs(block.lines) do
      if line:match('^eval "%$%(luarocks .*path%)"') or
         (line:match("^export ") and line:match("LUA_PATH=") and line:match("LUA_CPATH=")) then
        paths_set = true
      end
      -- An interpreter as a command: after a blank or a shell separator, before a blank
      -- (`make build LUA=lua5.4` and `--lua-version=5.4` name one without running it).
      local padded = " " .. line .. " "
      local runs = padded:match("[%s;&|](lua5%.%d)%s") or padded:match("[%s;&|](luajit)%s")
      if runs and not paths_set and not (line:match("LUA_PATH=") and line:match("LUA_CPATH=")) then
        problem("runs " .. runs .. " without LUA_PATH and LUA_CPATH: " .. line)
      end
    end
    if block.section == "Install with luarocks" and not wanted.install and block.indent == "" then
      wanted.install = block.lines
    elseif block.section == "Install with luarocks" and table.concat(block.lines, "\n"):match('lua_interpreter = "luajit"') then
      wanted.luajit = block.lines
    elseif block.section == "Examples" then
      wanted.examples = block.lines
    end
  elseif block.lang == "lua" and not block.before:lower():match("fragment") then
    lua_count = lua_count + 1
    write(("lua-%d.lua"):format(lua_count), block.lines)
  end
end

for _, name in ipairs({ "install", "luajit", "examples" }) do
  if wanted[name] then
    write(name .. ".sh", wanted[name])
  else
    problem("no " .. name .. " block found")
  end
end

local examples_text = table.concat(wanted.examples or {}, "\n")
local listing = io.popen("ls examples/*.lua")
for file in listing:lines() do
  if not examples_text:find(" " .. file, 1, true) then
    problem(file .. " is not run by the README's Examples block")
  end
end
listing:close()

if #problems > 0 then
  io.stderr:write(table.concat(problems, "\n"), "\n")
  os.exit(1)
end
print(("README: %d code blocks, %d lua blocks to run"):format(#blocks, lua_count))
