-- Every example of the API reference runs as the complete program it claims to be, on the
-- interpreter running the specs, and prints exactly what the reference says it prints.
--
-- The examples come from the API description (doc/api.lua), which doc/api.md is generated from
-- (reference_spec.lua checks that it is up to date). Each runs in a process of its own, with the
-- LUA_PATH / LUA_CPATH the specs run with, so it loads this build. Under the GC stress helper
-- (tests/gc_stress.lua) the example processes run under it too: an example that forgot to keep
-- an event referenced fails there. They always run on libevent's default backend.
local h = dofile((debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or ".") .. "/reference_helpers.lua")
local root, shell_quote = h.root, h.shell_quote
local gen = assert(loadfile(root .. "/scripts/gen-docs.lua"))("--library")

local interpreter = arg and arg[-1] or (rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d+%.%d+"))
local GC_STRESS = rawget(_G, "LUAEVENT_GC_STRESS") and true or false

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- Runs `code` as a program; returns whether it exited with status 0, its stdout and its stderr.
local function run_program(code)
  local program, out, err = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(program, "wb"))
  f:write(code)
  f:close()
  local stress = GC_STRESS and ("-e " .. shell_quote("dofile(" .. ("%q"):format(root .. "/tests/gc_stress.lua") .. ")") .. " ") or ""
  -- The examples show a default Linux system: the backend settings of the poll and select
  -- runs of the suite are not passed on.
  local command = ("env -u EVENT_NOEPOLL -u EVENT_NOPOLL timeout 60 %s %s%s >%s 2>%s"):format(
    shell_quote(interpreter), stress, shell_quote(program), shell_quote(out), shell_quote(err))
  local status = os.execute(command)
  local ok = status == true or status == 0
  local stdout, stderr = read_all(out), read_all(err)
  os.remove(program)
  os.remove(out)
  os.remove(err)
  return ok, stdout, stderr
end

local api = gen.load(root)

describe("examples of the API reference (doc/api.lua)", function()
  -- The guides ("Getting started", ...) first, then every entry.
  local owners = {}
  for _, guide in ipairs(api.guides or {}) do owners[#owners + 1] = { name = guide.title, examples = guide.examples } end
  for _, entry in ipairs(api.entries) do owners[#owners + 1] = entry end
  for _, entry in ipairs(owners) do
    for i, example in ipairs(entry.examples or {}) do
      it(("%s, example %d, prints what the reference shows"):format(entry.name, i), function()
        local ok, stdout, stderr = run_program(example.code)
        assert.is_true(ok, "the example failed:\n" .. stderr .. stdout)
        assert.are.equal("", stderr, "the example wrote to stderr")
        assert.are.equal(example.output, stdout)
      end)
    end
  end
end)
