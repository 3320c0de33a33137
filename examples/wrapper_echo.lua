-- An echo server and several clients in one process, on the coroutine wrapper `luaevent`.
--
--   LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 examples/wrapper_echo.lua
--
-- LuaSocket makes the sockets; every socket call goes through the wrapper, which suspends the
-- calling coroutine until the socket is ready:
--   * luaevent.addserver runs the echo handler in a coroutine of its own for each connection:
--     read a line, send it back, until the client hangs up;
--   * luaevent.addthread starts each client in a coroutine: connect, then send a line and check
--     the echo, CLIENTS times side by side;
--   * luaevent.addevent adds a deadline timer that fails the run if it takes too long.
-- luaevent.loop() runs until no event is left, and addserver's listening event stays until it is
-- closed, so once every client and every server side is through, luaevent.loopexit() ends the
-- loop. An error in any coroutine stops the loop too: luaevent.loop() raises it, with the
-- coroutine's traceback.
-- Prints what it moved and exits 0; on any failure it says why on stderr and exits 1.
local luaevent = require "luaevent"
local socket = require "socket"

local CLIENTS = 4      -- clients running side by side
local LINES = 200      -- lines each client sends and checks
local DEADLINE = 10    -- seconds the whole run may take

-- The n-th line of a client: varying lengths.
local function line_of(client, n)
  return ("client %d line %d %s"):format(client, n, ("=+"):rep((client * 31 + n * 7) % 40))
end

local failure -- the first thing that went wrong
local function fail(why)
  failure = failure or why
  error(why, 0) -- from inside a coroutine this ends the loop with `why`
end

local done = false
local pending = 2 * CLIENTS -- each client, and the server's side of each
local function one_done()
  pending = pending - 1
  if pending == 0 then
    done = true
    luaevent.loopexit() -- the server would keep the loop running for ever
  end
end

------------------------------------------------------------------ server ----
local listener = assert(socket.bind("127.0.0.1", 0))
listener:settimeout(0)
local _, port = listener:getsockname()
local echoed, echoed_bytes = 0, 0

luaevent.addserver(listener, function(conn)
  while true do
    local line, err = luaevent.receive(conn, "*l")
    if not line then
      if err ~= "closed" then fail("server: receive failed: " .. tostring(err)) end
      break
    end
    local last, serr = luaevent.send(conn, line .. "\n")
    if last ~= #line + 1 then fail("server: send failed: " .. tostring(serr)) end
    echoed = echoed + 1
    echoed_bytes = echoed_bytes + #line + 1
  end
  conn:close()
  one_done()
end)

----------------------------------------------------------------- clients ----
local verified = 0

local function client(id)
  local sock = socket.tcp()
  local ok, err = luaevent.connect(sock, "127.0.0.1", port)
  if not ok then fail(("client %d: connect failed: %s"):format(id, tostring(err))) end
  for n = 1, LINES do
    local line = line_of(id, n)
    local last, serr = luaevent.send(sock, line .. "\n")
    if last ~= #line + 1 then fail(("client %d: send failed: %s"):format(id, tostring(serr))) end
    local reply, rerr = luaevent.receive(sock, "*l")
    if reply ~= line then
      fail(("client %d: echo %d was %q (%s), expected %q"):format(id, n, tostring(reply), tostring(rerr), line))
    end
    verified = verified + 1
  end
  sock:close()
  one_done()
end

for id = 1, CLIENTS do
  local ok, err = luaevent.addthread(client, id)
  if not ok then
    io.stderr:write("wrapper echo: FAILED: ", tostring(err), "\n")
    os.exit(1)
  end
end

---------------------------------------------------------------- the loop ----
local deadline = luaevent.addevent(nil, 0, function()
  failure = failure or ("timed out after %d s (%d of %d lines verified)"):format(DEADLINE, verified, CLIENTS * LINES)
  error(failure, 0)
end, DEADLINE)

local ok, err = pcall(luaevent.loop)
deadline:close()
if not (ok and done) then
  local why = failure or (ok and "loop() returned before every client was through" or tostring(err))
  io.stderr:write("wrapper echo: FAILED: ", why, "\n")
  os.exit(1)
end
if verified ~= CLIENTS * LINES or echoed ~= CLIENTS * LINES then
  io.stderr:write(("wrapper echo: FAILED: %d lines verified, %d echoed, expected %d\n")
    :format(verified, echoed, CLIENTS * LINES))
  os.exit(1)
end
print(("wrapper echo: %d clients x %d lines, all replies verified (%d bytes echoed)")
  :format(CLIENTS, LINES, echoed_bytes))
os.exit(0)
