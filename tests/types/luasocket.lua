-- Idiomatic calls with sockets typed the way a LuaSocket addon for LuaLS types them: classes of
-- their own names (TCPSocketMaster, TCPSocketClient, TCPSocketServer), unrelated to luaevent's.
-- The definitions must accept every call without a warning (tests/spec/types_spec.lua), because
-- what they ask for is structural: any object with a `getfd` method.
--
-- The stub below stands in for the addon, declared here so that the check needs nothing
-- installed; it lists only what this program calls.

---@class TCPSocketMaster
local TCPSocketMaster = {}
---@return integer
function TCPSocketMaster:getfd() return 0 end
---@param timeout number|nil
---@param mode? string
---@return integer
function TCPSocketMaster:settimeout(timeout, mode) return 1 end
---@param host string
---@param port integer
---@return integer|nil, string?
function TCPSocketMaster:connect(host, port) return 1 end

---@class TCPSocketClient
local TCPSocketClient = {}
---@return integer
function TCPSocketClient:getfd() return 0 end
---@param timeout number|nil
---@param mode? string
---@return integer
function TCPSocketClient:settimeout(timeout, mode) return 1 end
---@return string|nil, integer|string|nil, string?
function TCPSocketClient:getpeername() return "127.0.0.1", 1, "inet" end
---@return integer
function TCPSocketClient:close() return 1 end

---@class TCPSocketServer
local TCPSocketServer = {}
---@return integer
function TCPSocketServer:getfd() return 0 end
---@param timeout number|nil
---@param mode? string
---@return integer
function TCPSocketServer:settimeout(timeout, mode) return 1 end
---@return TCPSocketClient|nil, string?
function TCPSocketServer:accept() return nil, "timeout" end

---@class socket
local socket = {}
---@return TCPSocketMaster
function socket.tcp() return TCPSocketMaster end
---@param host string
---@param port integer
---@return TCPSocketServer
function socket.bind(host, port) return TCPSocketServer end

-------------------------------------------------------------------------- the program ----
local core = require "luaevent.core"
local luaevent = require "luaevent"
local base = core.new()

local server = socket.bind("127.0.0.1", 0)
server:settimeout(0)
local clients = {}
local acceptor = base:addevent(server, core.EV_READ, function()
  local client = server:accept()
  if not client then return end
  client:settimeout(0)
  local bev = core.bufferevent.new(base, client, function(bev) bev:get_write():add(bev:get_read()) end, nil,
    function(bev) bev:close() end)
  local baseless = core.bufferevent.new(client, nil, nil, function(b) b:close() end)
  bev:enable(core.EV_READ)
  clients[#clients + 1] = { bev, baseless }
  local buf = core.buffer.new()
  buf:read(client, 1024)
  buf:write(client)
end)

local sock = socket.tcp()
sock:settimeout(0)
sock:connect("127.0.0.1", 8080)
local connecting = base:addevent(sock, core.EV_WRITE, function() return core.LEAVE end)

-- The wrapper.
luaevent.addserver(server, function(client)
  local line = luaevent.receive(client, "*l")
  luaevent.send(client, line or "")
  print(client:getpeername())
  client:close()
end)
---@param client TCPSocketClient
local function handler(client)
  print(client:getpeername())
end
luaevent.addserver(server, handler)
luaevent.addthread(function()
  local master = socket.tcp()
  local ok, err = luaevent.connect(master, "127.0.0.1", 8080)
  local some = luaevent.receivePartial(master, 10)
  luaevent.flush(master)
  print(ok, err, some)
end)
local wrapped = luaevent.wrap(socket.tcp())
wrapped:settimeout(0)
print(acceptor, connecting, wrapped, base:loop())
