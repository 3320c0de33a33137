-- The API description (doc/api.lua) against the loaded modules, and the files generated from it
-- (doc/api.md, the LuaLS addon in types/, the generated part of doc/migrating.md) against what
-- scripts/gen-docs.lua makes of it now.
--
-- - Everything `luaevent.core` and `luaevent` export (functions of the module tables and their
--   sub-tables, methods and metamethods of every object they hand out, constants and fields) is
--   described, and everything described exists, with the constants' and fixed fields' values.
-- - Every function, method and callback has a summary, typed and explained parameters and
--   returns, and at least one example (examples_spec.lua runs them).
-- - Every difference from the C module that an entry names exists, and each is named by an entry
--   unless it is marked general; links between the reference and migrating.md resolve.
-- - Regenerating gives the files on disk byte for byte, on every interpreter.
local core = require "luaevent.core"
local luaevent = require "luaevent"
local socket = require "socket"

local h = dofile((debug.getinfo(1, "S").source:match("^@(.*)[/\\]") or ".") .. "/reference_helpers.lua")
local root, calm = h.root, h.calm
local gen = assert(loadfile(root .. "/scripts/gen-docs.lua"))("--library")

local function check(description, body)
  it(description, function() calm(body) end)
end

local function assert_none(problems, what)
  assert(#problems == 0, what .. ":\n  " .. table.concat(problems, "\n  "))
end

local sorted_keys = h.sorted_keys

------------------------------------------------------------------------ live modules ----

-- How to make a live object of each class the description names, and what to close after.
local MAKERS = {
  Base = function() return core.new() end,
  Event = function()
    local base = core.new()
    return base:addevent(nil, core.EV_TIMEOUT, function() end, 60), base
  end,
  Buffer = function() return core.buffer.new() end,
  BufferEvent = function()
    local base = core.new()
    local listener = assert(socket.bind("127.0.0.1", 0))
    return core.bufferevent.new(base, listener, nil, nil, function() end), base, listener
  end,
  Listener = function()
    local base = core.new()
    return core.listener.new(base, { host = "127.0.0.1" }, function() end), base
  end,
  Resolver = function()
    local base = core.new()
    return core.dns.new(base, { nameservers = { "127.0.0.1:53" }, hosts = false }), base
  end,
  DnsRequest = function()
    local base = core.new()
    local resolver = core.dns.new(base, { nameservers = { "127.0.0.1:53" }, hosts = false })
    return resolver:resolve("127.0.0.1", function() end), base, resolver
  end,
  WrappedSocket = function() return luaevent.wrap({}) end,
  TlsContext = function() return core.tls.context { mode = "server" } end,
}

-- Metatable fields that are no part of the API.
local NOT_API = { __index = true, __name = true, __metatable = true }

-- name (as the reference writes it) -> { kind = "function" | "value", value = ... } for every
-- export: module table functions and values, methods ("base:addevent") and metamethods
-- ("Buffer.__len").
local function live_exports(api)
  local exports = {}
  local modules = { core = core, luaevent = luaevent }
  local function walk(prefix, t)
    for name, value in pairs(t) do
      if type(name) == "string" then
        local full = prefix .. "." .. name
        exports[full] = { kind = type(value) == "function" and "function" or "value", value = value }
        if type(value) == "table" and value ~= core and value ~= luaevent then walk(full, value) end
      end
    end
  end
  for var, module in pairs(modules) do walk(var, module) end
  for _, class in ipairs(api.classes) do
    local make = assert(MAKERS[class.name], "reference_spec has no maker for class " .. class.name)
    local made = { make() }
    local mt = getmetatable(made[1])
    assert(type(mt) == "table", class.name .. " object has no metatable")
    for name, value in pairs(type(mt.__index) == "table" and mt.__index or {}) do
      if type(name) == "string" and type(value) == "function" then
        exports[class.var .. ":" .. name] = { kind = "function", value = value }
      end
    end
    for name in pairs(mt) do
      if type(name) == "string" and name:sub(1, 2) == "__" and not NOT_API[name] then
        exports[class.name .. "." .. name] = { kind = "metamethod" }
      end
    end
    for _, object in ipairs(made) do
      local ok, close = pcall(function() return object.close end)
      if ok and type(close) == "function" then pcall(close, object) end
    end
  end
  return exports
end

-- The same names from the description.
local function described(api)
  local names = {}
  for _, entry in ipairs(api.entries) do
    if entry.kind == "function" or entry.kind == "method" then
      names[entry.name] = { kind = "function", entry = entry }
    elseif entry.kind == "field" or entry.kind == "constant" then
      names[entry.name] = { kind = "value", entry = entry }
    end
  end
  for _, class in ipairs(api.classes) do
    for _, mm in ipairs(class.metamethods) do
      names[class.name .. "." .. mm.name] = { kind = "metamethod" }
    end
  end
  return names
end

-------------------------------------------------------------------------------- specs ----

describe("API description (doc/api.lua)", function()
  local api, exports, names

  setup(function()
    calm(function()
      api = gen.load(root)
      exports = live_exports(api)
      names = described(api)
    end)
  end)

  check("describes every function, method, metamethod, constant and field the modules export", function()
    local missing = {}
    for _, name in ipairs(sorted_keys(exports)) do
      local d = names[name]
      if not d then
        missing[#missing + 1] = exports[name].kind .. " " .. name
      elseif d.kind ~= exports[name].kind then
        missing[#missing + 1] = name .. " is a " .. exports[name].kind .. ", described as a " .. d.kind
      end
    end
    assert_none(missing, "exported but not described")
  end)

  check("describes nothing the modules lack, with the values and types they have", function()
    local stale = {}
    for _, name in ipairs(sorted_keys(names)) do
      local live, entry = exports[name], names[name].entry
      if not live then
        stale[#stale + 1] = name .. " does not exist"
      elseif entry and names[name].kind == "value" then
        local value = live.value
        if entry.value ~= nil and value ~= entry.value then
          stale[#stale + 1] = ("%s is %s, described as %s"):format(name, tostring(value), tostring(entry.value))
        end
        if entry.kind == "constant" and math.type and math.type(value) ~= "integer" then
          stale[#stale + 1] = name .. " is not an integer"
        end
        local want = entry.type or "integer"
        if entry.value_is then
          if value ~= package.loaded[entry.value_is] then stale[#stale + 1] = name .. " is not the module " .. entry.value_is end
        elseif type(value) ~= (want == "integer" and "number" or want) then
          stale[#stale + 1] = ("%s is a %s, described as %s"):format(name, type(value), want)
        end
      end
    end
    assert_none(stale, "described but not so in the modules")
  end)

  check("gives every function, method and callback a summary, typed parameters and returns, and an example", function()
    local problems = {}
    local function need(cond, entry, what)
      if not cond then problems[#problems + 1] = entry.name .. ": " .. what end
    end
    for _, entry in ipairs(api.entries) do
      need(type(entry.summary) == "string" or entry.kind == "constant", entry, "no summary")
      if entry.kind == "function" or entry.kind == "method" or entry.kind == "callback" then
        need(type(entry.params) == "table", entry, "no params list")
        need(type(entry.returns) == "table", entry, "no returns list")
        for _, p in ipairs(entry.params or {}) do
          need(type(p.type) == "string" and type(p.text) == "string" and p.text ~= "", entry, "parameter " .. tostring(p.name) .. " lacks a type or text")
        end
        for _, r in ipairs(entry.returns or {}) do
          need(type(r.name) == "string" and type(r.type) == "string" and type(r.text) == "string", entry, "a return value lacks a name, type or text")
        end
        need(entry.examples and #entry.examples > 0, entry, "no example")
        for _, e in ipairs(entry.errors or {}) do
          local ok, text = pcall(gen.error_text, entry, e)
          need(ok and type(text) == "string", entry, "error entry not understood: " .. tostring(text))
        end
      elseif entry.kind == "field" then
        need(type(entry.type) == "string", entry, "no type")
      end
      for _, example in ipairs(entry.examples or {}) do
        need(type(example.code) == "string" and type(example.output) == "string", entry, "an example without code or output")
      end
    end
    assert_none(problems, "incomplete entries")
  end)

  check("names only differences from the C module that it lists, and every listed one is named or general", function()
    local problems, named = {}, {}
    local function scan(owner, what)
      for _, id in ipairs(owner.differences or {}) do
        named[id] = true
        if not api.differences_by_id[id] then problems[#problems + 1] = what .. " names unknown difference " .. id end
      end
    end
    for _, module in ipairs(api.modules) do scan(module, module.name) end
    for _, class in ipairs(api.classes) do scan(class, class.name) end
    for _, entry in ipairs(api.entries) do scan(entry, entry.name) end
    local groups = { fix = true, stricter = true, checked = true, wording = true, other = true, wrapper = true }
    local ids = {}
    for _, d in ipairs(api.differences) do
      if ids[d.id] then problems[#problems + 1] = "difference " .. d.id .. " listed twice" end
      ids[d.id] = true
      if not groups[d.group] then problems[#problems + 1] = d.id .. ": unknown group " .. tostring(d.group) end
      if not named[d.id] and not d.general then problems[#problems + 1] = d.id .. " is named by no entry and not marked general" end
      if d.group == "checked" and not (d.call and d.argument and d.c and d.now) then problems[#problems + 1] = d.id .. ": a checked-argument row needs call, argument, c, now" end
      if d.group == "wording" and not (d.c and d.now) then problems[#problems + 1] = d.id .. ": a wording row needs c, now" end
      if d.group ~= "checked" and d.group ~= "wording" and not (d.title and d.text) then problems[#problems + 1] = d.id .. ": needs a title and text" end
      if d.group == "other" and not d.topic then problems[#problems + 1] = d.id .. ": needs a topic" end
    end
    assert_none(problems, "differences")
  end)
end)

describe("generated files", function()
  local files

  setup(function()
    calm(function() files = gen.render_all(root) end)
  end)

  check("are what scripts/gen-docs.lua makes of doc/api.lua now (run `make docs`)", function()
    local stale = gen.stale(root, files)
    assert_none(stale, "stale (run `make docs`)")
    assert.are.equal(5, #gen.paths(files))
  end)

  check("have links between doc/api.md and doc/migrating.md that resolve to headings", function()
    local anchors = {}
    for _, path in ipairs({ "doc/api.md", "doc/migrating.md" }) do
      local seen, list = {}, {}
      local in_code = false
      for line in (files[path] .. "\n"):gmatch("(.-)\n") do
        if line:match("^```") then in_code = not in_code end
        local heading = not in_code and line:match("^#+%s+(.*)$")
        if heading then
          local a = gen.anchor(heading)
          if seen[a] then
            seen[a] = seen[a] + 1
            a = a .. "-" .. seen[a]
          else
            seen[a] = 0
          end
          list[a] = true
        end
      end
      anchors[path:match("[^/]+$")] = list
    end
    local broken = {}
    for _, path in ipairs({ "doc/api.md", "doc/migrating.md" }) do
      local own = path:match("[^/]+$")
      for target in files[path]:gmatch("%]%(([^)%s]*)%)") do
        local file, anchor = target:match("^([%w_%.%-]*)#(.+)$")
        if anchor and (file == "" or anchors[file]) then
          if not anchors[file == "" and own or file][anchor] then broken[#broken + 1] = own .. ": " .. target end
        end
      end
    end
    assert_none(broken, "links to missing headings")
  end)

  check("give LuaLS hover text without links an editor cannot follow or places it cannot see", function()
    local problems = {}
    for _, path in ipairs(gen.paths(files)) do
      if path:match("%.lua$") then
        local n = 0
        for line in (files[path] .. "\n"):gmatch("(.-)\n") do
          n = n + 1
          local link = line:match("%]%(([^)%s]*)%)")
          if link and not link:match("^%a[%w+.-]*://") then
            problems[#problems + 1] = ("%s:%d: link to %s"):format(path, n, link)
          end
          if line:match("^%-%-%-.*[Ss]ee [^.;]- above") then
            problems[#problems + 1] = ("%s:%d: %s"):format(path, n, line)
          end
        end
      end
    end
    assert_none(problems, "hover text")
  end)

  check("show a fixed field value once, and differences table rows as a list, not one long line", function()
    local api_md = files["doc/api.md"]
    assert.is_nil(api_md:find('`"luaevent"`. `"luaevent"`', 1, true))
    for line in api_md:gmatch("[^\n]+") do
      assert(not (line:find("(migrating.md#arguments-that-are-now-checked): ", 1, true)
        or line:find("(migrating.md#other-messages-changed-wording): ", 1, true)), line)
    end
  end)

  check("include LuaLS definition files that load as Lua and return their module table", function()
    for _, path in ipairs(gen.paths(files)) do
      if path:match("%.lua$") then
        local chunk, err = (loadstring or load)(files[path], "@" .. path)
        assert(chunk, err)
        assert.is_table(chunk())
      end
    end
  end)
end)
