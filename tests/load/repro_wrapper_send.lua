-- Minimal reproduction, kept as a regression check: luaevent.send (the coroutine wrapper,
-- lua/luaevent.lua) lost data when the socket took a block in three or more pieces. Found by
-- wrapper_load.lua on 2026-11-26; fixed in commit e9414b0.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 tests/load/repro_wrapper_send.lua
--
-- Exits 0 when all 8 MiB arrive intact, 1 otherwise (prints what was sent and received).
-- Before the fix: "luaevent.send(8388608 bytes) returned 12063744", "peer received 8124416 bytes".
-- Cause: on a partial write LuaSocket's send(data, i, j) returns nil, "timeout", LAST where LAST
-- is the index in `data` of the last byte sent (not a count). The wrapper's loop computes the
-- next start as `from = from + sent`, which is right after the first partial write (from = 1)
-- and skips `from - 1` bytes after every later one; the final return value is then an index past
-- the end of the data. Debian's C-module wrapper (/usr/share/lua/5.x/luaevent.lua, 0.4.6) has
-- the same loop and the same loss. The fix: `from = sent + 1` after a "timeout".
local socket = require "socket"
local luaevent = require "luaevent"

local N = 8 * 1024 * 1024 -- far more than loopback socket buffers take at once
local parts = {}
for i = 1, N / 8 do parts[i] = string.format("%08d", i) end
local data = table.concat(parts)

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local received, send_result = {}, nil
local DONE = "repro: server saw the end of the stream"

luaevent.addserver(server, function(client)
  while true do
    local chunk, err, part = luaevent.receive(client, 65536)
    local piece = chunk or part
    if piece and #piece > 0 then received[#received + 1] = piece end
    if not chunk and err ~= "timeout" then break end
  end
  client:close()
  error(DONE, 0) -- the only way to stop the wrapper's loop
end)

luaevent.addthread(function()
  local sock = socket.tcp()
  assert(luaevent.connect(sock, "127.0.0.1", port))
  send_result = { luaevent.send(sock, data) }
  sock:close()
end)

local ok, err = pcall(luaevent.loop)
assert(not ok and tostring(err):find(DONE, 1, true), "loop ended unexpectedly: " .. tostring(err))
local got = table.concat(received)
print(string.format("luaevent.send(%d bytes) returned %s, %s, %s", #data,
  tostring(send_result[1]), tostring(send_result[2]), tostring(send_result[3])))
print(string.format("peer received %d bytes; identical to what was sent: %s", #got, tostring(got == data)))
if got ~= data then
  local i = 1
  while i <= #got and got:byte(i) == data:byte(i) do i = i + 1 end
  print(string.format("first difference at byte %d", i))
end
os.exit(got == data and 0 or 1)
