-- The LuaLS definition files (types/luaevent/core.lua, types/luaevent.lua) and the API
-- reference (doc/api.md) against the live modules: every function, method, metamethod,
-- constant and field that `require` gives must be annotated and documented, and nothing may be
-- annotated or documented that no longer exists.
--
-- The files are read as text, one line at a time; only lines starting in column 0 count.
--
-- Definition files (types/):
--   function core.NAME(a, b)         a function of the table `core`; the table path may be
--   function core.buffer.NAME(...)   nested (core.buffer, core.bufferevent). In core.lua the
--                                    module table is the local `core`, in luaevent.lua `luaevent`.
--   core.NAME = 16                   a field: an integer or "string" literal must equal the live
--   luaevent._NAME = "luaevent"      value; `{}` must be a live table; anything else
--   luaevent.core = require(...)     (an expression) must merely exist.
--   ---@class luaevent.core.Buffer   a class, bound to the `local Buffer = {}` line right after
--   ---Metamethods: `__len`, ...     its doc block; the `---Metamethods:` paragraph of that block
--   local Buffer = {}                lists the metatable's metamethods (every `__name` token).
--                                    A ---@class block not followed by such a line is a pure type.
--   function Buffer:NAME(a)          a method of the class bound to the local `Buffer`.
--   Each function must have a description line and exactly one `---@param` per parameter of its
--   signature (`...` included, `self` excluded).
--   Which live object each class local stands for is the CLASSES table below.
--
-- The reference (doc/api.md):
--   every function and method has a heading (a line starting with `#`) that contains it as
--   `core.new(`, `core.buffer.new(`, `base:addevent(`, `event:close(`, `buf:add(`,
--   `bev:enable(`, `luaevent.send(` or `wrapped:send(`; every constant and non-function field is
--   mentioned as `core.EV_READ` / `luaevent._NAME` in backquotes; and every such call written in
--   a heading names something that exists.
--
-- Files are found relative to this spec (debug.getinfo) or else the working directory.
--
-- Under tests/gc_stress.lua (a full collection at nearly every allocation) the text work would
-- take minutes and proves nothing about lifetimes, so every check runs with the collector stopped
-- there; the objects made for the checks are collected under stress afterwards.
local core = require "luaevent.core"
local luaevent = require "luaevent"

-- Runs fn(...) with the garbage collector stopped when the GC stress helper is active.
local function restart_then(ok, ...)
  collectgarbage("restart")
  if not ok then error((...), 0) end
  return ...
end
local function calm(fn, ...)
  if not rawget(_G, "LUAEVENT_GC_STRESS") then return fn(...) end
  collectgarbage("stop")
  return restart_then(pcall(fn, ...))
end

-- it(), with the body run through calm().
local function check(description, body)
  it(description, function() calm(body) end)
end

-------------------------------------------------------------------------- files ----

local function spec_dir()
  local source = debug.getinfo(1, "S").source
  if source:sub(1, 1) == "@" then
    return source:sub(2):match("^(.*)[/\\]") or "."
  end
end

-- The first of `relative` under the repository root (two levels above this spec) or the
-- working directory that can be opened.
local function find_file(relative)
  local roots = {}
  local dir = spec_dir()
  if dir then roots[#roots + 1] = dir .. "/../../" end
  roots[#roots + 1] = ""
  for _, root in ipairs(roots) do
    local path = root .. relative
    local f = io.open(path, "r")
    if f then
      f:close()
      return path
    end
  end
  error("cannot find " .. relative .. " (looked beside the spec and in the working directory)")
end

local function read_lines(path)
  local lines = {}
  for line in io.lines(path) do lines[#lines + 1] = (line:gsub("\r$", "")) end
  return lines
end

----------------------------------------------------------------- definitions ----

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- A field's value text as what the live value must be.
local function literal(text)
  text = trim(text)
  if text:match("^%-?%d+$") then return { kind = "integer", value = tonumber(text) } end
  local str = text:match('^"([^"\\]*)"$')
  if str then return { kind = "string", value = str } end
  if text == "{}" then return { kind = "table" } end
  return { kind = "expression", text = text }
end

-- Parses a definition file into
--   tables[path] = { functions = {name = info}, fields = {name = literal} }
--   classes[local] = { class = "luaevent.x.Y", metamethods = {name = true}, methods = {name = info} }
--   problems = { "file:line: message", ... } for doc blocks that break the rules.
-- info = { line = n }
local function parse_definitions(path)
  local tables, classes, problems = {}, {}, {}
  local block = { params = {}, described = false, meta = {}, in_meta = false }
  local pending_class
  local function table_at(name)
    tables[name] = tables[name] or { functions = {}, fields = {} }
    return tables[name]
  end
  local function check_params(n, signature)
    local where = path .. ":" .. n .. ": "
    local wanted = {}
    for param in signature:gmatch("[^,]+") do
      param = trim(param)
      if param ~= "" then wanted[#wanted + 1] = param end
    end
    local documented = {}
    for _, param in ipairs(block.params) do documented[param] = (documented[param] or 0) + 1 end
    for _, param in ipairs(wanted) do
      if documented[param] ~= 1 then
        problems[#problems + 1] = where .. "parameter '" .. param .. "' needs exactly one ---@param"
      end
      documented[param] = nil
    end
    for param in pairs(documented) do
      problems[#problems + 1] = where .. "---@param '" .. param .. "' is not in the signature"
    end
    if not block.described then
      problems[#problems + 1] = where .. "function without a description line"
    end
  end
  for n, line in ipairs(read_lines(path)) do
    if line:sub(1, 3) == "---" then
      local tag = line:match("^%-%-%-@(%w+)")
      if tag then
        block.in_meta = false
        if tag == "class" then
          pending_class = line:match("^%-%-%-@class%s+([%w_%.]+)")
        elseif tag == "param" then
          block.params[#block.params + 1] = line:match("^%-%-%-@param%s+([%w_%.]+)")
        end
      else
        block.described = true
        if line:match("^%-%-%-Metamethods:") then block.in_meta = true end
        if block.in_meta then
          for name in line:gmatch("__[%w_]+") do block.meta[name] = true end
        end
      end
    else
      local class_local = line:match("^local%s+([%w_]+)%s*=%s*{}%s*$")
      local owner, method, msig = line:match("^function%s+([%w_]+):([%w_]+)%s*%((.-)%)")
      local tpath, fname, fsig = line:match("^function%s+([%w_%.]+)%.([%w_]+)%s*%((.-)%)")
      local fpath, field, value = line:match("^([%w_]+[%w_%.]*)%.([%w_]+)%s*=%s*(.-)%s*$")
      if class_local and pending_class then
        classes[class_local] = { class = pending_class, metamethods = block.meta, methods = {}, line = n }
      elseif owner then
        check_params(n, msig)
        if not classes[owner] then
          problems[#problems + 1] = path .. ":" .. n .. ": method of '" .. owner .. "', which is no ---@class local"
        else
          classes[owner].methods[method] = { line = n }
        end
      elseif tpath then
        check_params(n, fsig)
        table_at(tpath).functions[fname] = { line = n }
      elseif fpath and not line:match("^local%s") then
        table_at(fpath).fields[field] = literal(value)
        table_at(fpath).fields[field].line = n
      end
      block = { params = {}, described = false, meta = {}, in_meta = false }
      pending_class = nil
    end
  end
  return { tables = tables, classes = classes, problems = problems, path = path }
end

------------------------------------------------------------------ live values ----

local socket_ok, socket = pcall(require, "socket")

-- An fd for the throwaway bufferevent: a listening LuaSocket socket when LuaSocket is there.
local function throwaway_fd()
  if socket_ok then
    local server = socket.bind("127.0.0.1", 0)
    if server then return server end
  end
  return 0
end

-- The live object each class local of the definition files stands for, and how to dispose of it.
local CLASSES = {
  ["luaevent/core.lua"] = {
    Base = { class = "luaevent.core.Base", make = function() return core.new() end },
    Event = {
      class = "luaevent.core.Event",
      make = function()
        local base = core.new()
        return base:addevent(nil, core.EV_TIMEOUT, function() end, 60), base
      end,
    },
    Buffer = { class = "luaevent.core.Buffer", make = function() return core.buffer.new() end },
    BufferEvent = {
      class = "luaevent.core.BufferEvent",
      make = function()
        local base, fd = core.new(), throwaway_fd()
        return core.bufferevent.new(base, fd, nil, nil, function() end), base, fd
      end,
    },
  },
  ["luaevent.lua"] = {
    WrappedSocket = { class = "luaevent.WrappedSocket", make = function() return luaevent.wrap({}) end },
  },
}

-- The two definition files: which live table their root local stands for.
local FILES = {
  { file = "luaevent/core.lua", root = "core", module = core },
  { file = "luaevent.lua", root = "luaevent", module = luaevent },
}

-- The live table at a dotted path below a file's root ("core.buffer" -> core.buffer).
local function live_table(file, path)
  local parts = {}
  for part in path:gmatch("[^%.]+") do parts[#parts + 1] = part end
  if parts[1] ~= file.root then return nil end
  local t = file.module
  for i = 2, #parts do
    if type(t) ~= "table" then return nil end
    t = rawget(t, parts[i])
  end
  return type(t) == "table" and t or nil
end

-- Every (path, name, value) of a module table, recursing into sub-tables of its own (core.buffer,
-- core.bufferevent) but not into other modules (luaevent.core).
local function live_entries(file)
  local entries = {}
  local function walk(path, t)
    for name, value in pairs(t) do
      if type(name) == "string" then
        entries[#entries + 1] = { path = path, name = name, value = value }
        if type(value) == "table" and value ~= core and value ~= luaevent then
          walk(path .. "." .. name, value)
        end
      end
    end
  end
  walk(file.root, file.module)
  table.sort(entries, function(a, b) return a.path .. "." .. a.name < b.path .. "." .. b.name end)
  return entries
end

-- The methods (from __index) and metamethods (the metatable's other "__" keys) of an object.
local IGNORED_METAFIELDS = { __index = true, __name = true, __metatable = true }
local function live_members(object)
  local mt = getmetatable(object)
  local methods, metamethods = {}, {}
  local index = type(mt) == "table" and rawget(mt, "__index")
  if type(index) == "table" then
    for name, value in pairs(index) do
      if type(name) == "string" and name:sub(1, 2) ~= "__" and type(value) == "function" then
        methods[name] = true
      end
    end
  end
  if type(mt) == "table" then
    for name in pairs(mt) do
      if type(name) == "string" and name:sub(1, 2) == "__" and not IGNORED_METAFIELDS[name] then
        metamethods[name] = true
      end
    end
  end
  return methods, metamethods
end

-- Makes the live object a class local stands for, reads its members, and disposes of
-- everything made for it (the object first, then its base or socket).
local function members_of(file, localname)
  local made = { CLASSES[file][localname].make() }
  local methods, metamethods = live_members(made[1])
  for _, object in ipairs(made) do
    if type(object) ~= "number" then
      local ok, close = pcall(function() return object.close end)
      if ok and type(close) == "function" then pcall(close, object) end
    end
  end
  return methods, metamethods
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function assert_none(problems, what)
  assert(#problems == 0, what .. ":\n  " .. table.concat(problems, "\n  "))
end

------------------------------------------------------------------------ specs ----

describe("LuaLS annotations (types/)", function()
  local defs = {}

  setup(function()
    calm(function()
      for _, file in ipairs(FILES) do
        defs[file.file] = parse_definitions(find_file("types/" .. file.file))
      end
    end)
  end)

  check("are meta files for the right modules, with the tables and classes the spec knows", function()
    local problems = {}
    for _, file in ipairs(FILES) do
      local path = defs[file.file].path
      local first = read_lines(path)[1]
      local module_name = file.file:gsub("%.lua$", ""):gsub("/", ".")
      if first ~= "---@meta " .. module_name then
        problems[#problems + 1] = path .. ": first line must be '---@meta " .. module_name .. "', is '" .. tostring(first) .. "'"
      end
      if not defs[file.file].tables[file.root] then
        problems[#problems + 1] = path .. ": no function or field of '" .. file.root .. "' found"
      end
      for localname, class in pairs(defs[file.file].classes) do
        local known = CLASSES[file.file][localname]
        if not known then
          problems[#problems + 1] = path .. ":" .. class.line .. ": class local '" .. localname .. "' is unknown to this spec"
        elseif known.class ~= class.class then
          problems[#problems + 1] = path .. ":" .. class.line .. ": '" .. localname .. "' should be ---@class " .. known.class
        end
      end
      for localname in pairs(CLASSES[file.file]) do
        if not defs[file.file].classes[localname] then
          problems[#problems + 1] = path .. ": no ---@class block for 'local " .. localname .. " = {}'"
        end
      end
    end
    assert_none(problems, "definition files")
  end)

  check("annotate every function, sub-table, constant and field of luaevent.core and luaevent", function()
    local missing = {}
    for _, file in ipairs(FILES) do
      local def = defs[file.file]
      for _, entry in ipairs(live_entries(file)) do
        local annotated = def.tables[entry.path]
        local full = entry.path .. "." .. entry.name
        if type(entry.value) == "function" then
          if not (annotated and annotated.functions[entry.name]) then
            missing[#missing + 1] = file.file .. ": function " .. full .. "(...)"
          end
        elseif not (annotated and annotated.fields[entry.name]) then
          missing[#missing + 1] = file.file .. ": " .. type(entry.value) .. " field " .. full
        end
      end
    end
    assert_none(missing, "not annotated")
  end)

  check("annotate every method and metamethod of bases, events, buffers, bufferevents and wrapped sockets", function()
    local missing = {}
    for _, file in ipairs(FILES) do
      for _, localname in ipairs(sorted_keys(CLASSES[file.file])) do
        local class = defs[file.file].classes[localname]
        local methods, metamethods = members_of(file.file, localname)
        for _, name in ipairs(sorted_keys(methods)) do
          if not (class and class.methods[name]) then
            missing[#missing + 1] = file.file .. ": method " .. localname .. ":" .. name .. "(...)"
          end
        end
        for _, name in ipairs(sorted_keys(metamethods)) do
          if not (class and class.metamethods[name]) then
            missing[#missing + 1] = file.file .. ": metamethod " .. name .. " of " .. localname .. " (---Metamethods: line)"
          end
        end
      end
    end
    assert_none(missing, "not annotated")
  end)

  check("annotate nothing that does not exist, and give constants and literal fields their live values", function()
    local stale = {}
    for _, file in ipairs(FILES) do
      local def = defs[file.file]
      for _, path in ipairs(sorted_keys(def.tables)) do
        local annotated = def.tables[path]
        local live = live_table(file, path)
        for _, name in ipairs(sorted_keys(annotated.functions)) do
          local where = def.path .. ":" .. annotated.functions[name].line .. ": "
          if type(live and rawget(live, name)) ~= "function" then
            stale[#stale + 1] = where .. path .. "." .. name .. " is not a function of the live module"
          end
        end
        for _, name in ipairs(sorted_keys(annotated.fields)) do
          local want = annotated.fields[name]
          local where = def.path .. ":" .. want.line .. ": "
          local value = live and rawget(live, name)
          if value == nil then
            stale[#stale + 1] = where .. path .. "." .. name .. " does not exist"
          elseif want.kind == "table" and type(value) ~= "table" then
            stale[#stale + 1] = where .. path .. "." .. name .. " is a " .. type(value) .. ", not a table"
          elseif (want.kind == "integer" or want.kind == "string") and value ~= want.value then
            stale[#stale + 1] = where .. path .. "." .. name .. " is " .. tostring(value) .. ", annotated as " .. tostring(want.value)
          elseif type(value) == "function" then
            stale[#stale + 1] = where .. path .. "." .. name .. " is a function: annotate it as one"
          end
        end
      end
      for _, localname in ipairs(sorted_keys(def.classes)) do
        local class = def.classes[localname]
        if CLASSES[file.file][localname] then
          local methods, metamethods = members_of(file.file, localname)
          for _, name in ipairs(sorted_keys(class.methods)) do
            if not methods[name] then
              stale[#stale + 1] = def.path .. ":" .. class.methods[name].line .. ": " .. localname .. ":" .. name .. " does not exist"
            end
          end
          for _, name in ipairs(sorted_keys(class.metamethods)) do
            if not metamethods[name] then
              stale[#stale + 1] = def.path .. ":" .. class.line .. ": metamethod " .. name .. " of " .. localname .. " does not exist"
            end
          end
        end
      end
    end
    assert_none(stale, "annotated but not in the live modules")
  end)

  check("describe every function and give each parameter exactly one ---@param", function()
    local problems = {}
    for _, file in ipairs(FILES) do
      for _, problem in ipairs(defs[file.file].problems) do problems[#problems + 1] = problem end
    end
    assert_none(problems, "definition file rules")
  end)
end)

describe("API reference (doc/api.md)", function()
  local headings, text

  -- How the reference writes each table path / class local.
  local PREFIX = {
    core = "core.", ["core.buffer"] = "core.buffer.", ["core.bufferevent"] = "core.bufferevent.",
    luaevent = "luaevent.",
    Base = "base:", Event = "event:", Buffer = "buf:", BufferEvent = "bev:", WrappedSocket = "wrapped:",
  }

  setup(function()
    calm(function()
      local lines = read_lines(find_file("doc/api.md"))
      headings = {}
      for _, line in ipairs(lines) do
        if line:match("^#") then headings[#headings + 1] = line end
      end
      text = table.concat(lines, "\n")
    end)
  end)

  local function has_heading(call)
    for _, heading in ipairs(headings) do
      if heading:find(call, 1, true) then return true end
    end
    return false
  end

  check("has a heading for every function and method, and mentions every constant and field", function()
    local missing = {}
    for _, file in ipairs(FILES) do
      for _, entry in ipairs(live_entries(file)) do
        local name = PREFIX[entry.path] .. entry.name
        if type(entry.value) == "function" then
          if not has_heading(name .. "(") then missing[#missing + 1] = "heading for " .. name .. "(" end
        elseif not text:find("`" .. name .. "`", 1, true) then
          missing[#missing + 1] = "`" .. name .. "`"
        end
      end
      for _, localname in ipairs(sorted_keys(CLASSES[file.file])) do
        local methods = members_of(file.file, localname)
        for _, name in ipairs(sorted_keys(methods)) do
          local call = PREFIX[localname] .. name .. "("
          if not has_heading(call) then missing[#missing + 1] = "heading for " .. call end
        end
      end
    end
    assert_none(missing, "not in doc/api.md")
  end)

  check("names in its headings only functions and methods that exist", function()
    local live_calls = {}
    for _, file in ipairs(FILES) do
      for _, entry in ipairs(live_entries(file)) do
        if type(entry.value) == "function" then live_calls[PREFIX[entry.path] .. entry.name] = true end
      end
      for localname in pairs(CLASSES[file.file]) do
        for name in pairs((members_of(file.file, localname))) do live_calls[PREFIX[localname] .. name] = true end
      end
    end
    local stale = {}
    for _, heading in ipairs(headings) do
      for call in heading:gmatch("[%w_]+[%.:][%w_%.:]*%(") do
        local name = call:sub(1, -2)
        local head = name:match("^([%w_]+)")
        local ours = head == "core" or head == "luaevent" or head == "base" or head == "event"
          or head == "buf" or head == "bev" or head == "wrapped"
        if ours and not live_calls[name] then
          stale[#stale + 1] = heading .. "  (" .. name .. ")"
        end
      end
    end
    assert_none(stale, "doc/api.md headings naming what does not exist")
  end)
end)
