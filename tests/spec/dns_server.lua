-- A small DNS server for the specs: answers A and AAAA questions over UDP on a loopback port,
-- driven by an EV_READ event on the test's own base (so it answers while that base loops).
-- Loaded with dofile like helpers.lua; uses LuaSocket and luaevent.core's documented API.
--
--   local dns_server = dofile(dir .. "dns_server.lua")
--   local server = dns_server.start(base [, { ipv6 = true, names = {...} }])
--   core.dns.new(base, { nameservers = { server.address } })
--   ... server.queries (questions seen), server.silent = true (stop answering), server:close()
--
-- Names it knows (any letter case; libevent randomizes it), each answered with a TTL of 60:
--   v4.test        A 127.0.0.1 only (an AAAA question gets an empty answer)
--   v6.test        AAAA ::1 only
--   both.test      A 127.0.0.1 and AAAA ::1
--   many.test      A 127.0.0.1, 127.0.0.2 and AAAA ::1, ::2
--   servfail.test  always SERVFAIL
--   silent.test    never answered (a name server that never answers for it)
-- Any other name: NXDOMAIN. `options.names` adds or replaces names: { ["x.test"] = { "127.0.0.1", "::1" } }.
local core = require "luaevent.core"
local socket = require "socket"

local M = {}

local DEFAULT_NAMES = {
  ["v4.test"] = { "127.0.0.1" },
  ["v6.test"] = { "::1" },
  ["both.test"] = { "127.0.0.1", "::1" },
  ["many.test"] = { "127.0.0.1", "127.0.0.2", "::1", "::2" },
  ["servfail.test"] = "servfail",
  ["silent.test"] = "silent",
}

local function u16(n) return string.char(math.floor(n / 256) % 256, n % 256) end

local function ipv4_bytes(text)
  local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  return string.char(tonumber(a), tonumber(b), tonumber(c), tonumber(d))
end

local function ipv6_bytes(text)
  if not text:find(":", 1, true) then return nil end
  local head, tail = text:match("^(.-)::(.*)$")
  local function groups(part)
    local list = {}
    for group in part:gmatch("[^:]+") do list[#list + 1] = tonumber(group, 16) end
    return list
  end
  local first, last
  if head then first, last = groups(head), groups(tail) else first, last = groups(text), {} end
  local all = {}
  for _, g in ipairs(first) do all[#all + 1] = g end
  for _ = 1, 8 - #first - #last do all[#all + 1] = 0 end
  for _, g in ipairs(last) do all[#all + 1] = g end
  local bytes = {}
  for i = 1, 8 do bytes[i] = u16(all[i] or 0) end
  return table.concat(bytes)
end

-- The question of a query: its name (lower case), its type, and where the question ends. The
-- packet is read byte by byte: no piece of it becomes a string of its own (libevent randomizes
-- the case of names and the query ids, and whether such a short string exists already would
-- change what Lua allocates from run to run, which the fault sweep needs to be the same).
local function parse_question(packet)
  local pos, name = 13, {}
  while true do
    local len = packet:byte(pos)
    if not len then return nil end
    if len == 0 then pos = pos + 1 break end
    if #name > 0 then name[#name + 1] = 46 end -- "."
    for i = pos + 1, pos + len do
      local c = packet:byte(i) or 0
      if c >= 65 and c <= 90 then c = c + 32 end
      name[#name + 1] = c
    end
    pos = pos + 1 + len
  end
  local qtype = (packet:byte(pos) or 0) * 256 + (packet:byte(pos + 1) or 0)
  return string.char((table.unpack or unpack)(name)), qtype, pos + 3
end

local A, AAAA = 1, 28

local function bytes_of(list, text)
  for i = 1, #text do list[#list + 1] = text:byte(i) end
end

local function answer(packet, names)
  if #packet < 12 then return nil end
  local name, qtype, question_end = parse_question(packet)
  if not name then return nil end
  local entry = names[name]
  if entry == "silent" then return nil, name end
  local rcode, records = 0, {}
  if entry == "servfail" then
    rcode = 2
  elseif entry == nil then
    rcode = 3
  else
    for _, address in ipairs(entry) do
      local rdata = qtype == A and ipv4_bytes(address) or qtype == AAAA and ipv6_bytes(address) or nil
      if rdata then records[#records + 1] = rdata end
    end
  end
  local flags = 0x8180 + rcode -- a response, recursion desired and available
  local reply = { packet:byte(1), packet:byte(2) }
  bytes_of(reply, u16(flags) .. u16(1) .. u16(#records) .. u16(0) .. u16(0))
  for i = 13, question_end do reply[#reply + 1] = packet:byte(i) end
  for _, rdata in ipairs(records) do
    bytes_of(reply, "\192\12" .. u16(qtype) .. u16(1) .. "\0\0\0\60" .. u16(#rdata))
    bytes_of(reply, rdata)
  end
  return string.char((table.unpack or unpack)(reply)), name
end

-- Starts a server on `base`; see the top of the file.
function M.start(base, options)
  options = options or {}
  local names = {}
  for k, v in pairs(DEFAULT_NAMES) do names[k] = v end
  for k, v in pairs(options.names or {}) do names[k] = v end
  local udp = assert(options.ipv6 and socket.udp6() or socket.udp())
  assert(udp:setsockname(options.ipv6 and "::1" or "127.0.0.1", 0))
  udp:settimeout(0)
  local ip, port = udp:getsockname()
  local server = {
    port = port,
    address = options.ipv6 and ("[" .. ip .. "]:" .. port) or (ip .. ":" .. port),
    queries = 0,
    asked = {}, -- name -> how many questions for it
    silent = false,
  }
  -- The callback reaches the server through a weak table: a server nobody closed or keeps is
  -- collected with its event, and does not keep the base alive through the event's callback.
  local weak = setmetatable({ server = server }, { __mode = "v" })
  server.event = base:addevent(udp, core.EV_READ, function()
    local server = weak.server
    if not server then return core.LEAVE end
    -- One datagram per call (the event fires again while more wait): each receive makes the
    -- same allocations however the questions are batched, which the fault sweep relies on.
    local packet, from_ip, from_port = udp:receivefrom()
    if not packet then return end
    server.queries = server.queries + 1
    local reply, name = answer(packet, names)
    if name then server.asked[name] = (server.asked[name] or 0) + 1 end
    if reply and not server.silent then udp:sendto(reply, from_ip, from_port) end
  end)
  function server:close()
    if self.event then self.event:close() self.event = nil end
    udp:close()
  end
  setmetatable(server, { __gc = function() udp:close() end }) -- (Lua 5.2 and later)
  return server
end

return M
