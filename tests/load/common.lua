-- Shared helpers of the load scripts (tests/load/*.lua): settings from the environment, the
-- byte streams that every connection sends and checks, the fd limit, pid and timing.
local M = {}

function M.env_number(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return assert(tonumber(v), name .. " must be a number")
end

-- The soft limit on open files of this process (from /proc/self/limits).
function M.fd_limit()
  local f = io.open("/proc/self/limits", "r")
  if not f then return nil end
  for line in f:lines() do
    local soft = line:match("^Max open files%s+(%S+)")
    if soft then
      f:close()
      return tonumber(soft) -- nil for "unlimited"
    end
  end
  f:close()
end

-- This process's pid, from /proc/self/stat as read by this process (no LuaSocket or posix
-- binding needed).
function M.pid()
  local f = assert(io.open("/proc/self/stat", "r"))
  local pid = tonumber(f:read("*l"):match("^(%d+)"))
  f:close()
  return pid
end

function M.rss_kib()
  local f = assert(io.open("/proc/self/statm", "r"))
  local resident = tonumber(f:read("*l"):match("^%d+%s+(%d+)"))
  f:close()
  return resident * 4
end

-- A deterministic pseudo-random block of PERIOD bytes (all 256 byte values, NULs included).
-- Connection c sends the infinite stream block[(offset_c + i) % PERIOD], i = 0, 1, ...; the
-- echo must bring back exactly that stream, so every byte is checked by comparing strings.
local PERIOD = 65521 -- prime: offsets give streams that do not line up with chunk sizes
M.PERIOD = PERIOD
local block
do
  local t, x = {}, 12345
  for i = 1, PERIOD do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(math.floor(x / 65536) % 256)
  end
  block = table.concat(t)
end
local doubled = block .. block
-- The same stream mapped onto letters and digits, for line protocols.
local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local text_doubled
do
  local map = {}
  for i = 0, 255 do
    local k = i % #ALNUM + 1
    map[string.char(i)] = ALNUM:sub(k, k)
  end
  text_doubled = (block:gsub(".", map))
  text_doubled = text_doubled .. text_doubled
end

-- `len` bytes of the stream with `offset`, from 0-based position `pos`.
function M.stream(offset, pos, len)
  local parts = {}
  while len > 0 do
    local start = (offset + pos) % PERIOD
    local n = math.min(len, PERIOD)
    parts[#parts + 1] = doubled:sub(start + 1, start + n)
    pos, len = pos + n, len - n
  end
  return table.concat(parts)
end

-- `len` characters of the letters-and-digits form of the stream (no line ends), len <= PERIOD.
function M.text(offset, pos, len)
  assert(len <= PERIOD)
  local start = (offset + pos) % PERIOD
  return text_doubled:sub(start + 1, start + len)
end

-- Number of bytes of `got` that differ from the stream at `pos` (0 when equal).
function M.mismatches(offset, pos, got)
  local want = M.stream(offset, pos, #got)
  if want == got then return 0 end
  local bad = 0
  for i = 1, #got do
    if got:byte(i) ~= want:byte(i) then bad = bad + 1 end
  end
  return bad
end

-- A small deterministic generator for chunk sizes.
function M.lcg(seed)
  local x = seed % 2147483648
  return function(n)
    x = (x * 1103515245 + 12345) % 2147483648
    return math.floor(x / 65536) % n + 1
  end
end

-- Whether the single-bit `flag` is set in `mask` (no bit operators: Lua 5.1 and LuaJIT too).
function M.has(mask, flag)
  return math.floor(mask / flag) % 2 == 1
end

function M.interpreter()
  return (jit and jit.version) or _VERSION
end

return M
