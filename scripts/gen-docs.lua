-- Writes the API reference (doc/api.md), the LuaLS addon (types/config.json, types/library/)
-- and the generated part of doc/migrating.md from the API description in doc/api.lua.
--
--   lua scripts/gen-docs.lua           regenerate the files (what `make docs` runs)
--   lua scripts/gen-docs.lua --check   write nothing; list the stale files, exit 1 if any
--
-- Run from anywhere with any of Lua 5.1-5.5 or LuaJIT: the output is the same byte for byte.
-- The specs load it as a library instead: `loadfile("scripts/gen-docs.lua")("--library")`
-- returns the functions below without touching any file.
--
-- doc/migrating.md is written by hand except between the two marker lines MIGRATING_BEGIN and
-- MIGRATING_END: only that region is replaced, so hand-written sections around it stay.

local M = {}

M.MIGRATING_BEGIN = "<!-- BEGIN GENERATED differences: from doc/api.lua by scripts/gen-docs.lua (make docs); do not edit by hand -->"
M.MIGRATING_END = "<!-- END GENERATED differences -->"

local GENERATED_NOTE = "Generated from doc/api.lua by scripts/gen-docs.lua (`make docs`): edit those, not this file."

------------------------------------------------------------------------------ helpers ----

local function push(out, ...)
  for i = 1, select("#", ...) do out[#out + 1] = select(i, ...) end
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function lines_of(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  return lines
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- GitHub's heading anchors: lower case, punctuation other than '-' and '_' removed, spaces
-- turned into '-'.
function M.anchor(heading)
  local text = heading:lower():gsub("`", "")
  text = text:gsub("[^%w%s%-_]", ""):gsub("%s", "-")
  return text
end

------------------------------------------------------------------------ the description ----

-- The description with its indexes:
--   api.types_by_name[short], api.classes_by_name[short], api.classes_by_var[var]
--   api.entries: every entry in document order, each with .mod, .sect (its module and
--     section), .kind
--     (function | method | callback | field | constant), .table (the table path a function or
--     field belongs to: "core", "core.buffer", "luaevent"), .class (short class name of a
--     method), .member (the last part of the name)
--   api.differences_by_id[id]
function M.load(root)
  local path = (root or ".") .. "/doc/api.lua"
  local chunk = assert(loadfile(path))
  local api = chunk()
  api.types_by_name, api.classes_by_name, api.classes_by_var, api.differences_by_id = {}, {}, {}, {}
  for _, t in ipairs(api.types) do api.types_by_name[t.name] = t end
  for _, c in ipairs(api.classes) do
    api.classes_by_name[c.name] = c
    api.classes_by_var[c.var] = c
  end
  for _, d in ipairs(api.differences) do api.differences_by_id[d.id] = d end
  api.modules_by_var = {}
  for _, m in ipairs(api.modules) do api.modules_by_var[m.var] = m end
  api.entries = {}
  for _, module in ipairs(api.modules) do
    for _, section in ipairs(module.sections) do
      section.module = module
      for i, entry in ipairs(section.entries or {}) do
        if entry.callback then
          local t = assert(api.types_by_name[entry.callback], "unknown callback type " .. entry.callback)
          section.entries[i] = t
          entry = t
          entry.kind = "callback"
        else
          local var, sep, member = entry.name:match("^([%w_%.]-)([%.:])([%w_]+)$")
          assert(var, "entry name not understood: " .. entry.name)
          entry.member = member
          if sep == ":" then
            entry.kind = "method"
            entry.class = assert(api.classes_by_var[var], "no class for " .. entry.name).name
          elseif entry.params then
            entry.kind = "function"
            entry.table = var
          else
            entry.kind = "field"
            entry.table = var
            -- The reference shows a fixed value before the summary: a summary that repeats it
            -- would print it twice.
            if entry.value ~= nil then
              local shown = type(entry.value) == "string" and ('"' .. entry.value .. '"') or tostring(entry.value)
              assert(not entry.summary:find(shown, 1, true),
                entry.name .. ": the summary repeats the value, which the reference shows already")
            end
          end
        end
        entry.mod, entry.sect = module, section
        api.entries[#api.entries + 1] = entry
      end
      for _, constant in ipairs(section.constants or {}) do
        constant.kind = "constant"
        constant.table, constant.member = constant.name:match("^(.-)%.([%w_]+)$")
        constant.mod, constant.sect = module, section
        api.entries[#api.entries + 1] = constant
      end
    end
  end
  return api
end

-- The LuaLS name of a short type name, or nil.
local function full_type_name(api, short)
  local t = api.types_by_name[short] or api.classes_by_name[short]
  if t then return t.module .. "." .. t.name end
end

-- A type string with short names replaced by full ones.
local function lua_type(api, text)
  return (text:gsub("[%a_][%w_%.]*", function(word) return full_type_name(api, word) end))
end

-------------------------------------------------------------------------- Markdown ----

-- A type for the reference: each alternative of a plain union linked when it names one of ours.
local function md_type(api, text)
  if text:find("fun(", 1, true) then return "`" .. text .. "`" end
  local parts = {}
  for part in text:gmatch("[^|]+") do
    local name, optional = part:match("^([%w_%.]+)(%??)$")
    if name and (api.types_by_name[name] or api.classes_by_name[name]) then
      parts[#parts + 1] = "[`" .. name .. "`](#" .. M.anchor(name) .. ")" .. (optional ~= "" and " or `nil`" or "")
    else
      parts[#parts + 1] = "`" .. part .. "`"
    end
  end
  return table.concat(parts, " or ")
end

-- The argument number Lua reports for a parameter: in a method call `self` is not counted.
local function arg_number(entry, name)
  for i, p in ipairs(entry.params) do
    if p.name == name then return i end
  end
  error(entry.name .. ": error names unknown parameter " .. name)
end

-- The name Lua gives a function in its argument errors: the last part of the call.
function M.error_text(entry, e)
  if e.arg then
    local n = arg_number(entry, e.arg)
    if entry.params[n].name == "..." then n = "<n>" end
    return ("bad argument #%s to '%s' (%s)"):format(n, entry.member, e.reason)
  end
  return e.message
end

-- The call as written in a signature line: `base:addevent(fd, events, callback [, timeout])`.
local function call_form(entry)
  if entry.signature then return entry.signature end
  local required, optional = {}, {}
  for _, p in ipairs(entry.params) do
    if p.optional then optional[#optional + 1] = p.name else required[#required + 1] = p.name end
  end
  local text = table.concat(required, ", ")
  local tail = ""
  for i = #optional, 1, -1 do
    local sep = (i == 1 and #required == 0) and "" or ", "
    tail = "[" .. sep .. optional[i] .. tail .. "]"
  end
  if #required > 0 and tail ~= "" then tail = " " .. tail end
  return entry.name .. "(" .. text .. tail .. ")"
end

local function signature_line(entry)
  local names = {}
  for _, r in ipairs(entry.returns or {}) do names[#names + 1] = r.name end
  local call = call_form(entry)
  if #names == 0 then return call end
  return table.concat(names, ", ") .. " = " .. call
end

-- "Differences from the C module" for an entry (or a module, a class): one item per difference
-- described in prose, and the rows of the checked-argument and wording tables gathered in one
-- item each.
local function md_differences(api, ids, link_prefix)
  if not ids or #ids == 0 then return nil end
  local items, checked, wording = {}, {}, {}
  for _, id in ipairs(ids) do
    local d = assert(api.differences_by_id[id], "unknown difference " .. id)
    if d.group == "checked" then
      checked[#checked + 1] = d.argument .. ": " .. d.now
    elseif d.group == "wording" then
      wording[#wording + 1] = d.c .. " is now " .. d.now
    else
      items[#items + 1] = ("- [%s](%s#%s)"):format(d.title, link_prefix, M.anchor(d.title))
    end
  end
  -- The table rows that concern this entry, one sub-item each.
  local function rows(title, anchor, list)
    if #list == 0 then return end
    items[#items + 1] = ("- [%s](%s#%s):"):format(title, link_prefix, anchor)
    for _, row in ipairs(list) do items[#items + 1] = "  - " .. row end
  end
  rows("Arguments that are now checked", "arguments-that-are-now-checked", checked)
  rows("Messages that changed wording", "other-messages-changed-wording", wording)
  return "**Differences from the C module:**\n\n" .. table.concat(items, "\n")
end

local function md_code(out, lang, text)
  push(out, "```" .. lang)
  local body = text:gsub("\n$", "")
  push(out, body, "```")
end

local function md_examples(out, entry)
  for _, example in ipairs(entry.examples or {}) do
    push(out, "")
    push(out, example.title and ("**Example** (" .. example.title .. "):") or "**Example:**", "")
    md_code(out, "lua", example.code)
    push(out, "", "prints:", "")
    md_code(out, "", example.output)
  end
end

local function md_params(out, api, title, list)
  push(out, "", "**" .. title .. ":**", "")
  for _, p in ipairs(list) do
    local opt = p.optional and ", optional" or ""
    push(out, ("- `%s` (%s%s): %s"):format(p.name, md_type(api, p.type), opt, p.text))
  end
end

local function md_entry(out, api, entry)
  push(out, "", "#### " .. entry.name, "")
  if entry.kind == "field" then
    local value = entry.value ~= nil and (": `" .. (type(entry.value) == "string" and ('"' .. entry.value .. '"') or tostring(entry.value)) .. "`") or ""
    push(out, ("%s%s. %s"):format(md_type(api, entry.type), value, entry.summary))
    if entry.text then push(out, "", entry.text) end
  else
    md_code(out, "lua", signature_line(entry))
    push(out, "", entry.summary)
    if entry.text then push(out, "", entry.text) end
    if #entry.params > 0 then md_params(out, api, "Parameters", entry.params) end
    if #entry.returns > 0 then
      md_params(out, api, "Returns", entry.returns)
    else
      push(out, "", "**Returns** nothing.")
    end
    if entry.overloads then
      local forms = {}
      for _, o in ipairs(entry.overloads) do forms[#forms + 1] = "`" .. o .. "`" end
      push(out, "", "**Other forms:** " .. table.concat(forms, ", ") .. ".")
    end
    if entry.errors and #entry.errors > 0 then
      push(out, "", "**Errors:**", "")
      for _, e in ipairs(entry.errors) do
        local text = M.error_text(entry, e)
        local code = text:find("\n", 1, true) and text:gsub("\n", " ") or text
        push(out, "- `" .. code .. "`" .. (e.when and (": " .. e.when) or ""))
      end
    end
  end
  local diff = md_differences(api, entry.differences, "migrating.md")
  if diff then push(out, "", diff) end
  md_examples(out, entry)
end

local function md_type_entry(out, api, t)
  push(out, "", "#### " .. t.name, "")
  if t.kind == "alias" then
    push(out, ("`%s` = %s. %s"):format(t.name, md_type(api, t.type), t.summary))
  elseif t.kind == "class" then
    push(out, "Class `" .. t.module .. "." .. t.name .. "`. " .. t.summary)
  end
  if t.text then push(out, "", t.text) end
  if t.fields then md_params(out, api, "Fields", t.fields) end
end

local function md_class(out, api, class)
  push(out, "", "#### " .. class.name, "")
  push(out, ("Class `%s.%s`, made by `%s`. %s"):format(class.module, class.name, class.made_by, class.summary))
  if class.text then push(out, "", class.text) end
  if class.fields then md_params(out, api, "Fields", class.fields) end
  if #class.metamethods > 0 then
    push(out, "", "**Metamethods:**", "")
    for _, mm in ipairs(class.metamethods) do push(out, ("- `%s`: %s"):format(mm.name, mm.text)) end
  end
  local diff = md_differences(api, class.differences, "migrating.md")
  if diff then push(out, "", diff) end
end

local function md_constants(out, constants)
  if constants.intro then push(out, "", "#### Constants", "", constants.intro) end
  push(out, "", "| constant | value | meaning |", "| --- | --- | --- |")
  for _, c in ipairs(constants) do
    push(out, ("| `%s` | %d | %s |"):format(c.name, c.value, c.text))
  end
end

function M.render_api_md(api)
  local out = {}
  push(out, "<!-- " .. GENERATED_NOTE .. " -->", "", "# " .. api.title, "", api.intro, "", "Contents:", "")
  for _, guide in ipairs(api.guides or {}) do
    push(out, ("- [%s](#%s)"):format(guide.title, M.anchor(guide.title)))
  end
  for _, module in ipairs(api.modules) do
    local sections = {}
    for _, section in ipairs(module.sections) do
      sections[#sections + 1] = ("[%s](#%s)"):format(section.title, M.anchor(section.title))
    end
    push(out, ("- [%s](#%s): %s"):format(module.name, M.anchor(module.name), table.concat(sections, ", ")))
  end
  push(out, "- [Editor support](#editor-support)")
  for _, guide in ipairs(api.guides or {}) do
    push(out, "", "---", "", "## " .. guide.title, "", guide.text)
    md_examples(out, guide)
    if guide.after then push(out, "", guide.after) end
  end
  for _, module in ipairs(api.modules) do
    push(out, "", "---", "", "## " .. module.name, "", module.summary, "", module.text)
    local diff = md_differences(api, module.differences, "migrating.md")
    if diff then push(out, "", diff) end
    for _, section in ipairs(module.sections) do
      push(out, "", "### " .. section.title)
      if section.text then push(out, "", section.text) end
      for _, name in ipairs(section.types or {}) do md_type_entry(out, api, api.types_by_name[name]) end
      if section.class then md_class(out, api, api.classes_by_name[section.class]) end
      for _, entry in ipairs(section.entries or {}) do md_entry(out, api, entry) end
      if section.constants then md_constants(out, section.constants) end
    end
  end
  push(out, "", "---", "", "## Editor support", "", api.editor)
  return table.concat(out, "\n") .. "\n"
end

---------------------------------------------------------------------------- LuaLS ----

-- Text for LuaLS hover: a Markdown link to a place in the reference or to a file next to it
-- cannot be followed from an editor, so it becomes its label (web addresses stay links).
function M.hover_text(text)
  return (text:gsub("%[([^%]]*)%]%(([^)%s]*)%)", function(label, target)
    if target:match("^%a[%w+.-]*://") then return nil end
    return label
  end))
end

-- Markdown text as `---` comment lines.
local function doc_lines(out, text)
  for _, line in ipairs(lines_of(trim(M.hover_text(text)))) do push(out, (line == "" and "---" or "---" .. line)) end
end

local function one_line(text)
  return (M.hover_text(text):gsub("%s*\n%s*", " "))
end

-- The callback types also take callable objects.
local function callback_type(api, t)
  local params = {}
  for _, p in ipairs(t.params) do params[#params + 1] = p.name .. ": " .. lua_type(api, p.type) end
  local returns = {}
  for _, r in ipairs(t.returns) do returns[#returns + 1] = lua_type(api, r.type) end
  local fun = "fun(" .. table.concat(params, ", ") .. ")"
  if #returns > 0 then fun = fun .. ": " .. table.concat(returns, ", ") end
  return "(" .. fun .. ")|" .. full_type_name(api, "Callable")
end

local function lua_type_decl(out, api, t)
  push(out, "")
  doc_lines(out, t.summary .. (t.text and ("\n\n" .. t.text) or ""))
  local full = t.module .. "." .. t.name
  if t.kind == "alias" then
    push(out, "---@alias " .. full .. " " .. lua_type(api, t.type))
  elseif t.kind == "callback" then
    push(out, "---@alias " .. full .. " " .. callback_type(api, t))
  else
    push(out, "---@class " .. full)
    for _, f in ipairs(t.fields or {}) do
      push(out, ("---@field %s %s %s"):format(f.name, lua_type(api, f.type), one_line(f.text)))
    end
    if t.call then push(out, "---@overload " .. lua_type(api, t.call)) end
  end
end

local function entry_doc(out, entry)
  local text = entry.summary .. (entry.text and ("\n\n" .. entry.text) or "")
  if entry.errors and #entry.errors > 0 then
    text = text .. "\n\nErrors:"
    for _, e in ipairs(entry.errors) do
      text = text .. "\n- `" .. M.error_text(entry, e):gsub("\n", " ") .. "`" .. (e.when and (": " .. one_line(e.when)) or "")
    end
  end
  doc_lines(out, text)
end

local function lua_function(out, api, entry, owner)
  push(out, "")
  entry_doc(out, entry)
  local names = {}
  for _, p in ipairs(entry.params) do
    local name = p.name
    if p.optional then name = name .. "?" end
    push(out, ("---@param %s %s %s"):format(name, lua_type(api, p.type), one_line(p.text)))
    names[#names + 1] = p.name
  end
  for _, r in ipairs(entry.returns) do
    push(out, ("---@return %s %s %s"):format(lua_type(api, r.type), r.name, one_line(r.text)))
  end
  for _, o in ipairs(entry.overloads or {}) do push(out, "---@overload " .. lua_type(api, o)) end
  push(out, ("function %s%s(%s) end"):format(owner, entry.member, table.concat(names, ", ")))
end

local function lua_value(value)
  if type(value) == "string" then return '"' .. value .. '"' end
  return tostring(value)
end

function M.render_meta(api, module)
  local out = {}
  push(out, "---@meta " .. module.name, "", "-- " .. GENERATED_NOTE)
  for _, t in ipairs(api.types) do
    if t.module == module.name then lua_type_decl(out, api, t) end
  end
  -- The module table: fields without a fixed value become ---@field lines of its class.
  push(out, "")
  doc_lines(out, module.summary)
  push(out, "---@class " .. module.name)
  for _, entry in ipairs(api.entries) do
    if entry.mod == module and entry.kind == "field" and entry.value == nil and entry.table == module.var and entry.type ~= "table" then
      push(out, ("---@field %s %s %s"):format(entry.member, lua_type(api, entry.type), one_line(entry.summary)))
    end
  end
  push(out, "local " .. module.var .. " = {}")
  for _, entry in ipairs(api.entries) do
    if entry.mod == module then
      if entry.kind == "constant" or (entry.kind == "field" and entry.value ~= nil) then
        push(out, "")
        doc_lines(out, entry.summary or entry.text)
        push(out, ("%s = %s"):format(entry.name, lua_value(entry.value)))
      elseif entry.kind == "field" and entry.type == "table" then
        push(out, "")
        doc_lines(out, entry.summary)
        push(out, entry.name .. " = {}")
      elseif entry.kind == "function" then
        lua_function(out, api, entry, entry.table .. ".")
      end
    end
  end
  for _, class in ipairs(api.classes) do
    if class.module == module.name then
      push(out, "")
      doc_lines(out, class.summary .. (class.text and ("\n\n" .. class.text) or ""))
      push(out, "---@class " .. class.module .. "." .. class.name)
      for _, f in ipairs(class.fields or {}) do
        push(out, ("---@field %s %s %s"):format(f.name, lua_type(api, f.type), one_line(f.text)))
      end
      for _, mm in ipairs(class.metamethods) do
        if mm.operator then push(out, "---@operator " .. mm.operator) end
      end
      push(out, "local " .. class.name .. " = {}")
      for _, entry in ipairs(api.entries) do
        if entry.kind == "method" and entry.class == class.name then
          lua_function(out, api, entry, class.name .. ":")
        end
      end
    end
  end
  push(out, "", "return " .. module.var)
  return table.concat(out, "\n") .. "\n"
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' or c == "\\" then return "\\" .. c end
    return ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function json_list(list)
  local items = {}
  for _, s in ipairs(list) do items[#items + 1] = json_string(s) end
  return "[" .. table.concat(items, ", ") .. "]"
end

function M.render_config(api)
  -- LuaLS offers the addon when a file's text matches one of `words` or its name one of `files`
  -- (Lua patterns); an empty list is left out.
  local a = api.addon
  local lines = { "{", '  "name": ' .. json_string(a.name) .. "," }
  if #a.words > 0 then lines[#lines + 1] = '  "words": ' .. json_list(a.words) .. "," end
  if #a.files > 0 then lines[#lines + 1] = '  "files": ' .. json_list(a.files) .. "," end
  lines[#lines + 1] = '  "settings": {}'
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

-------------------------------------------------------------------------- migrating ----

-- The reference entries that point at a difference, as links into api.md.
local function concerns(api, id)
  local names = {}
  local function scan(owner, link_name)
    for _, d in ipairs(owner.differences or {}) do
      if d == id then names[#names + 1] = ("[`%s`](api.md#%s)"):format(link_name, M.anchor(link_name)) end
    end
  end
  for _, module in ipairs(api.modules) do scan(module, module.name) end
  for _, class in ipairs(api.classes) do scan(class, class.name) end
  for _, entry in ipairs(api.entries) do scan(entry, entry.name) end
  if #names == 0 then return nil end
  return "See " .. table.concat(names, ", ") .. "."
end

local GROUPS = {
  { group = "fix", title = "Fixes over the C module" },
  { group = "stricter", title = "Behaviour that is stricter" },
  { group = "other", title = "Behaviour that differs otherwise" },
  { group = "wrapper", title = "The wrapper `luaevent`" },
}

function M.render_migrating_region(api)
  local out = {}
  local function by_group(group)
    local list = {}
    for _, d in ipairs(api.differences) do
      if d.group == group then list[#list + 1] = d end
    end
    return list
  end
  local function prose(d, level)
    push(out, "", level .. " " .. d.title, "", d.text)
    local see = concerns(api, d.id)
    if see then push(out, "", see) end
  end
  for _, g in ipairs(GROUPS) do
    push(out, "", "## " .. g.title)
    if g.group == "other" then
      local topics, seen = {}, {}
      for _, d in ipairs(by_group("other")) do
        if not seen[d.topic] then
          seen[d.topic] = {}
          topics[#topics + 1] = d.topic
        end
        local list = seen[d.topic]
        list[#list + 1] = d
      end
      for _, topic in ipairs(topics) do
        push(out, "", "### " .. topic)
        for _, d in ipairs(seen[topic]) do prose(d, "####") end
      end
    else
      for _, d in ipairs(by_group(g.group)) do prose(d, "###") end
    end
    if g.group == "stricter" then
      push(out, "", "### Arguments that are now checked", "",
        "All of these are `bad argument` errors now (or newly accepted), where the C module passed the",
        "value on to libevent or misbehaved quietly:", "",
        "| call | argument | C module | now |", "| --- | --- | --- | --- |")
      for _, d in ipairs(by_group("checked")) do
        push(out, ("| %s | %s | %s | %s |"):format(d.call, d.argument, d.c, d.now))
      end
      push(out, "", "### Other messages changed wording", "",
        "These matter only if you match on them:", "", "| C module | now |", "| --- | --- |")
      for _, d in ipairs(by_group("wording")) do
        push(out, ("| %s | %s |"):format(d.c, d.now))
      end
    end
  end
  return M.MIGRATING_BEGIN .. "\n" .. table.concat(out, "\n"):gsub("^\n", "") .. "\n" .. M.MIGRATING_END
end

-- doc/migrating.md with its generated region replaced.
function M.splice_migrating(current, region)
  local b = current:find(M.MIGRATING_BEGIN, 1, true)
  local e = current:find(M.MIGRATING_END, 1, true)
  assert(b and e and e > b, "doc/migrating.md lacks the generated-region markers")
  return current:sub(1, b - 1) .. region .. current:sub(e + #M.MIGRATING_END)
end

---------------------------------------------------------------------------- driver ----

-- Every generated file: path (relative to the root) -> content.
function M.render_all(root)
  root = root or "."
  local api = M.load(root)
  local files = {
    ["doc/api.md"] = M.render_api_md(api),
    ["types/config.json"] = M.render_config(api),
  }
  for _, module in ipairs(api.modules) do
    files["types/library/" .. module.file] = M.render_meta(api, module)
  end
  local migrating = assert(read_file(root .. "/doc/migrating.md"), "cannot read doc/migrating.md")
  files["doc/migrating.md"] = M.splice_migrating(migrating, M.render_migrating_region(api))
  return files, api
end

function M.paths(files)
  local paths = {}
  for path in pairs(files) do paths[#paths + 1] = path end
  table.sort(paths)
  return paths
end

-- The files whose content on disk differs from `files`.
function M.stale(root, files)
  local stale = {}
  for _, path in ipairs(M.paths(files)) do
    if read_file(root .. "/" .. path) ~= files[path] then stale[#stale + 1] = path end
  end
  return stale
end

local function main(...)
  local check = select(1, ...) == "--check"
  local script = debug.getinfo(1, "S").source:match("^@(.*)$") or "scripts/gen-docs.lua"
  local root = (script:match("^(.*)/scripts/[^/]+$")) or (script:match("^scripts/") and ".") or ".."
  local files = M.render_all(root)
  local stale = M.stale(root, files)
  if check then
    for _, path in ipairs(stale) do print("stale: " .. path) end
    if #stale > 0 then
      print("run `make docs` to regenerate")
      os.exit(1)
    end
    print("generated files are up to date")
    return
  end
  for _, path in ipairs(stale) do
    local dir = (root .. "/" .. path):match("^(.*)/[^/]+$")
    os.execute("mkdir -p '" .. dir .. "'")
    local f = assert(io.open(root .. "/" .. path, "wb"))
    f:write(files[path])
    f:close()
    print("wrote " .. path)
  end
  if #stale == 0 then print("generated files are up to date") end
end

if select(1, ...) == "--library" then return M end
main(...)
