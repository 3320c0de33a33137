-- Run by lua5.5 (scripts/install-lua5.5.sh) on the Lua files copied from Debian's 5.4 packages:
--   lua5.5 compile_all.lua FILE...
-- Compiles each file. Lua 5.5 makes a `for` loop's control variable (the first it declares)
-- read-only, and code written for 5.4 sometimes assigns to it; such a file is rewritten in
-- place, the loop declaring a new name and the old one becoming a local copy on the same line
-- (`for k, v in pairs(t) do` -> `for k__, v in pairs(t) do local k = k__`), so line numbers stay.
-- Exits non-zero, naming the files, when anything else fails to compile.

local function read(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("a")
  file:close()
  return text
end

local function write(path, text)
  local file = assert(io.open(path, "wb"))
  file:write(text)
  file:close()
end

local function split_lines(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  if lines[#lines] == "" then lines[#lines] = nil end
  return lines
end

-- The loop header at or above `from` that declares `name`, rewritten; nil when none is found.
local function rewrite_loop(lines, from, name)
  local word = "%f[%w_]" .. name .. "%f[^%w_]"
  for number = from, math.max(1, from - 200), -1 do
    local line = lines[number]
    local head, names, rest = line:match("^(%s*for%s+)([%w_%s,]-)(%s+in%s.*%sdo%s*)$")
    if not head then head, names, rest = line:match("^(%s*for%s+)([%w_]+)(%s*=.*%sdo%s*)$") end
    if head and names:find(word) then
      local renamed = name .. "__"
      lines[number] = head .. names:gsub(word, renamed) .. rest:gsub("%s*$", "")
        .. " local " .. name .. " = " .. renamed
      return true
    end
  end
  return nil
end

local failed = {}
for _, path in ipairs(arg) do
  local rewritten = false
  for _ = 1, 50 do
    local chunk, message = loadfile(path)
    if chunk then break end
    local line, name = message:match(":(%d+): attempt to assign to const variable '([%w_]+)'")
    local lines = line and split_lines(read(path))
    if not (lines and rewrite_loop(lines, tonumber(line), name)) then
      io.stderr:write(message, "\n")
      failed[#failed + 1] = path
      break
    end
    write(path, table.concat(lines, "\n") .. "\n")
    rewritten = true
  end
  if rewritten and failed[#failed] ~= path then
    io.stdout:write("rewrote loop variables for Lua 5.5 in ", path, "\n")
  end
end
if #failed > 0 then
  io.stderr:write(#failed, " file(s) do not compile under ", _VERSION, "\n")
  os.exit(1)
end
