-- What the fault programs share about sockets, loaded with dofile before the shim is armed:
--   local sockets = dofile(here .. "sockets.lua")
--   sockets.open_fds() -> how many descriptors are open
--   local pair = sockets.pairs_maker() ; local c, s = pair() ... ; pair.close()

local socket = require "socket"

local sockets = {}

-- Open fds, counted without allocating much and without a child process: opening
-- /proc/self/fd/N fails with "No such file" only when N is not open.
function sockets.open_fds()
  local n = 0
  for fd = 0, 1023 do
    local f, err = io.open("/proc/self/fd/" .. fd)
    if f then f:close() n = n + 1
    elseif not err:find("No such file", 1, true) then n = n + 1 end
  end
  return n
end

-- Connected, non-blocking loopback TCP pairs from one listening socket; close() stops it.
function sockets.pairs_maker()
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  return setmetatable({ close = function() server:close() end }, {
    __call = function()
      local c = assert(socket.tcp())
      assert(c:connect("127.0.0.1", port))
      server:settimeout(2)
      local s = assert(server:accept())
      c:settimeout(0)
      s:settimeout(0)
      return c, s
    end,
  })
end

return sockets
