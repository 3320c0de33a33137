-- An echo server and its clients in one process, on luaevent.serve and luaevent.dial: no
-- LuaSocket, no copas.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 examples/dial_serve_echo.lua
--
--   * luaevent.serve listens on a free loopback port and runs the handler in a coroutine of its
--     own for each connection: read a line, send it back, until the client hangs up;
--   * luaevent.addthread starts each client in a coroutine: dial, then send lines and check each
--     echo, CLIENTS side by side, and a last one sends a 1 MiB block in one piece;
--   * connection methods suspend the coroutine while they wait, and send waits while the peer
--     lags 64 KiB behind, so no buffer grows without bound.
-- The listener keeps luaevent.loop() running until it is closed, and the deadline timer until it
-- fires: the last client closes the one and ends the loop with luaevent.loopexit().
-- Prints what it moved and exits 0; on any failure it says why on stderr and exits 1.
local luaevent = require "luaevent"

local CLIENTS = 20     -- clients running side by side
local LINES = 100      -- lines each client sends and checks
local BLOCK = 1024 * 1024
local DEADLINE = 10    -- seconds the whole run may take

local failure
local function fail(why)
  failure = failure or why
  error(why, 0) -- from inside a coroutine this ends the loop with `why`
end

------------------------------------------------------------------ server ----
local echoed_bytes = 0
local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn)
  while true do
    local line, err = conn:receive("*l")
    if not line then
      if err ~= "closed" then fail("server: receive failed: " .. err) end
      break
    end
    if line == "BLOCK" then line = assert(conn:receive(BLOCK)) end
    assert(conn:send(line .. "\n"))
    echoed_bytes = echoed_bytes + #line + 1
  end
  conn:close()
end)
local _, port = listener:address()

----------------------------------------------------------------- clients ----
local verified, running = 0, 0

local function client(id)
  running = running + 1
  local conn, err = luaevent.dial("127.0.0.1", port)
  if not conn then fail(("client %d: dial failed: %s"):format(id, err)) end
  if id == 0 then
    local block = ("0123456789abcdef"):rep(BLOCK / 16)
    conn:send("BLOCK\n")
    conn:send(block)
    if conn:receive("*l") ~= block then fail("client 0: the block came back changed") end
  else
    for n = 1, LINES do
      local line = ("client %d line %d %s"):format(id, n, ("=+"):rep((id * 31 + n * 7) % 40))
      conn:send(line .. "\n")
      local reply, rerr = conn:receive("*l")
      if reply ~= line then fail(("client %d: echo %d was %s"):format(id, n, reply or rerr)) end
    end
  end
  verified = verified + 1
  conn:close()
  running = running - 1
  if running == 0 then -- the last one out ends the loop (the deadline timer would keep it running)
    listener:close()
    luaevent.loopexit()
  end
end

for id = 0, CLIENTS do
  local ok, err = luaevent.addthread(client, id)
  if not ok then fail(err) end
end

---------------------------------------------------------------- the loop ----
local deadline = luaevent.addevent(nil, 0, function()
  fail(("timed out after %d s (%d of %d clients through)"):format(DEADLINE, verified, CLIENTS + 1))
end, DEADLINE)

local ok, err = pcall(luaevent.loop)
deadline:close()
if not ok or verified ~= CLIENTS + 1 then
  io.stderr:write("dial/serve echo: FAILED: ", failure or tostring(err), "\n")
  os.exit(1)
end
print(("dial/serve echo: %d clients x %d lines and a %d KiB block, all verified (%d bytes echoed)")
  :format(CLIENTS, LINES, BLOCK / 1024, echoed_bytes))
os.exit(0)
