-- The luaevent.core module table: constructors, constants, and proof of which
-- library file was actually loaded (ours or the C reference module).
local core = require "luaevent.core"

-- package.config: directory separator, path separator, substitution mark.
local DIRSEP, PATHSEP, MARK = package.config:match("^(.-)\n(.-)\n(.-)\n")

-- The file `require` picks for a C module: the first readable match on
-- package.cpath (package.searchpath does not exist on 5.1 / LuaJIT).
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

-- Absolute, symlink-free form of a path, so that "build/x.so" and
-- "/work/main/build/x.so" compare equal.
local function canonical(path)
  local quoted = "'" .. path:gsub("'", "'\\''") .. "'"
  local h = io.popen("readlink -f -- " .. quoted .. " 2>/dev/null")
  local out = h and h:read("*l")
  if h then h:close() end
  assert(out and out ~= "", "cannot resolve " .. path)
  return out
end

describe("luaevent.core module", function()
  it("is the table registered in package.loaded", function()
    assert.is_table(core)
    assert.equal(core, package.loaded["luaevent.core"])
  end)

  it("is loaded from the file package.cpath resolves to (LUAEVENT_EXPECT_CORE)", function()
    -- Nothing may shadow the C loader: no preload entry, no Lua file first.
    assert.is_nil(package.preload["luaevent.core"])
    local found = search_cpath("luaevent.core")
    assert.is_string(found, "luaevent/core not found on package.cpath")
    local expected = os.getenv("LUAEVENT_EXPECT_CORE")
    if expected and expected ~= "" then
      assert.equal(canonical(expected), canonical(found))
    end
  end)

  it("has new() returning an event base", function()
    assert.is_function(core.new)
    assert.equal("userdata", type(core.new()))
  end)

  it("has libevent_version() returning libevent's version string", function()
    assert.is_function(core.libevent_version)
    local v = core.libevent_version()
    assert.is_string(v)
    -- e.g. "2.1.12-stable"
    assert.truthy(v:match("^%d+%.%d+%.%d+%-%a+$"), "unexpected version " .. v)
  end)

  -- The C module has neither field: this names our implementation alone.
  it("says who it is: _NAME is luaevent-rs, _VERSION the crate version in Cargo.toml #ours", function()
    assert.equal("luaevent-rs", core._NAME)
    local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
    local cargo = assert(io.open(dir .. "/../../Cargo.toml", "r"))
    local manifest = cargo:read("*a")
    cargo:close()
    local version = manifest:match('%[package%][^%[]-\nversion%s*=%s*"([^"]+)"')
    assert.is_string(version, "no package version in Cargo.toml")
    assert.equal(version, core._VERSION)
  end)

  it("has the buffer and bufferevent subtables with their constructors", function()
    assert.is_table(core.buffer)
    assert.is_function(core.buffer.new)
    assert.is_table(core.bufferevent)
    assert.is_function(core.bufferevent.new)
  end)

  describe("constants", function()
    local expected = {
      LEAVE = -1,
      EV_TIMEOUT = 1, EV_READ = 2, EV_WRITE = 4, EV_SIGNAL = 8, EV_PERSIST = 16,
      EVBUFFER_READ = 1, EVBUFFER_WRITE = 2, EVBUFFER_EOF = 16,
      EVBUFFER_ERROR = 32, EVBUFFER_TIMEOUT = 64,
    }
    for name, value in pairs(expected) do
      it(name .. " is " .. value, function()
        assert.equal(value, core[name])
        -- The C module pushes integers: tostring() must not give "2.0".
        if math.type then
          assert.equal("integer", math.type(core[name]))
        end
        assert.equal(tostring(value), tostring(core[name]))
      end)
    end
  end)
end)
