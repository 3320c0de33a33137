-- fd exhaustion: with every fd of the process in use, accept fails with EMFILE ("Too many open
-- files") as a returned error; so do the module's own calls that need an fd; the event loop keeps
-- running, and once fds are freed the same listening socket accepts and serves again.
--
-- Meant to run with a low fd limit (tests/load/run.sh uses a subshell with `ulimit -n 64`):
--   (ulimit -n 64; LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 tests/load/fd_exhaustion.lua)
-- It fills whatever fds are left itself (with /dev/null), so any limit works; a high limit only
-- costs more open files.
--
-- Environment: FD_CLIENTS (connections waiting in the backlog, default 8), FD_TIMEOUT (30 s).
--
-- Steps: connect FD_CLIENTS clients (the kernel completes them into the listen backlog); open
-- /dev/null until the process runs out of fds; then, with no fd left:
--   * core.new() raises a string error (or works), never ends the process;
--   * buffers, timers, signal events and bufferevent.new on an existing fd still work;
--   * the acceptor event fires; server:accept() returns nil and an error; the acceptor turns
--     itself into a 20 ms timer by returning EV_TIMEOUT, 0.02, and back into a read event by
--     returning EV_READ when the timer fires (the callback return rules), so it retries without
--     spinning; a 10 ms ticker proves the loop keeps running;
-- after 5 failed accepts the /dev/null files are closed; every waiting client must then be
-- accepted and get its bytes echoed by a bufferevent, every byte checked.
-- Exits 0 only when accept failed at least once with an error (and no crash), every client was
-- served afterwards, and every byte came back.

package.path = (arg and arg[0] and arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local common = require "common"
local core = require "luaevent.core"
local socket = require "socket"

local EV_READ, EV_TIMEOUT = core.EV_READ, core.EV_TIMEOUT
local LEAVE = core.LEAVE
local has = common.has

local CLIENTS = common.env_number("FD_CLIENTS", 8)
local TIMEOUT = common.env_number("FD_TIMEOUT", 30)
local FAILURES_BEFORE_FREEING = 5

local limit = common.fd_limit()
print(string.format("fd_exhaustion: %s, libevent %s, fd limit %s, %d clients",
  common.interpreter(), core.libevent_version(), tostring(limit or "unlimited"), CLIENTS))
if not limit or limit > 100000 then
  print("fd_exhaustion: the fd limit is too high to exhaust; run with `ulimit -n 64`")
  os.exit(2)
end

local base = core.new()
local server = assert(socket.bind("127.0.0.1", 0, 64))
server:settimeout(0)
local _, port = server:getsockname()

local stats = {
  accept_failures = 0, accept_errors = {}, accepted = 0, served = 0, verified = 0, expected = 0,
  mismatched = 0, errors = 0, ticks = 0, ticks_while_exhausted = 0,
}
local errors_seen = {}
local function note_error(message)
  stats.errors = stats.errors + 1
  if #errors_seen < 10 then errors_seen[#errors_seen + 1] = tostring(message) end
end

-- Clients wait in the listen backlog: connected as far as the kernel is concerned.
local clients = {}
for i = 1, CLIENTS do
  local sock = assert(socket.tcp())
  sock:settimeout(5)
  assert(sock:connect("127.0.0.1", port))
  clients[i] = { sock = sock, payload = common.stream(i * 977, 0, 1000 + i * 4000) }
end

-- Exhaust the fds.
local hoard, open_error = {}, nil
while true do
  local f, err = io.open("/dev/null", "r")
  if not f then open_error = err; break end
  hoard[#hoard + 1] = f
  if #hoard > 200000 then break end
end
local exhausted = true
print(string.format("fd_exhaustion: opened %d extra files until: %s", #hoard, tostring(open_error)))

-- core.new() needs three fds (an epoll fd and libevent's signal socketpair): with none left it
-- must raise a string error. (libevent itself would end the process with exit(1) from
-- evsig_init_; the module checks first since commit e9414b0: tests/load/repro_new_base_emfile.lua.)
do
  local ok, result = pcall(core.new)
  if ok then
    print("fd_exhaustion: core.new() with no fd left returned a base (" .. result:method() .. ")")
  elseif type(result) == "string" then
    print("fd_exhaustion: core.new() with no fd left raised: " .. result)
  else
    note_error("core.new() raised a " .. type(result) .. ", not a string")
  end
end
-- The module's calls that need no new fd keep working with none left.
do
  local buf = core.buffer.new()
  buf:add("abc", 1)
  local ev = base:addevent(nil, EV_TIMEOUT, function() end, 1)
  ev:close()
  local sig = base:addevent(10, core.EV_SIGNAL, function() end)
  sig:close()
  local bev = core.bufferevent.new(base, clients[1].sock, nil, nil, function() end)
  bev:get_write():add("x")
  bev:close()
  print("fd_exhaustion: buffer, addevent (timer, signal) and bufferevent.new work with no fd left")
end
local tcp, tcp_err = socket.tcp()
print("fd_exhaustion: socket.tcp() with no fd left returned " .. tostring(tcp) .. ", " .. tostring(tcp_err))
if tcp then tcp:close() end

local function free_fds()
  for i = 1, #hoard do hoard[i]:close() end
  hoard = {}
  exhausted = false
  print(string.format("fd_exhaustion: freed the extra files after %d failed accepts", stats.accept_failures))
end

-- Echo server. -------------------------------------------------------------------------------
local conns = {}
local function serve(sock)
  sock:settimeout(0)
  local bev = core.bufferevent.new(base, sock, function(b)
    b:get_write():add(b:get_read())
  end, nil, function(b, what)
    if not has(what, core.EVBUFFER_EOF) or has(what, core.EVBUFFER_ERROR) then
      note_error(string.format("server bufferevent error 0x%x", what))
    end
    b:close()
    conns[b]:close()
    conns[b] = nil
  end)
  conns[bev] = sock
  bev:enable(EV_READ)
end

local acceptor
acceptor = base:addevent(server, EV_READ, function(what)
  if has(what, EV_TIMEOUT) then
    return EV_READ -- back off over: watch the socket again (timeout kept, harmless)
  end
  local client, err = server:accept()
  if not client then
    if err == "timeout" then return end
    stats.accept_failures = stats.accept_failures + 1
    stats.accept_errors[err] = (stats.accept_errors[err] or 0) + 1
    if stats.accept_failures >= FAILURES_BEFORE_FREEING and exhausted then free_fds() end
    return EV_TIMEOUT, 0.02 -- retry in 20 ms instead of spinning on a readable socket
  end
  stats.accepted = stats.accepted + 1
  serve(client)
end)

local ticker = base:addevent(nil, EV_TIMEOUT, function()
  stats.ticks = stats.ticks + 1
  if exhausted then stats.ticks_while_exhausted = stats.ticks_while_exhausted + 1 end
end, 0.01)

-- Once accepted, each client sends its payload and reads it back (blocking LuaSocket calls on
-- the client side, driven from a timer so that the loop serves in between).
local next_client = 1
local driver = base:addevent(nil, EV_TIMEOUT, function()
  if exhausted or stats.accepted < next_client then return end
  local c = clients[next_client]
  if not c.sent then
    c.sent = true
    assert(c.sock:send(c.payload))
    c.sock:settimeout(0)
    c.got = {}
    c.len = 0
  end
  local data, err, partial = c.sock:receive(#c.payload - c.len)
  local piece = data or partial
  if piece and #piece > 0 then c.got[#c.got + 1] = piece; c.len = c.len + #piece end
  if c.len >= #c.payload then
    local got = table.concat(c.got)
    stats.expected = stats.expected + #c.payload
    if got == c.payload then
      stats.verified = stats.verified + #got
    else
      local bad = 0
      for i = 1, #c.payload do if got:byte(i) ~= c.payload:byte(i) then bad = bad + 1 end end
      stats.mismatched = stats.mismatched + bad
      stats.verified = stats.verified + #c.payload - bad
      note_error("client " .. next_client .. ": " .. bad .. " bytes differ")
    end
    c.sock:close()
    stats.served = stats.served + 1
    next_client = next_client + 1
    if next_client > CLIENTS then base:loopexit() end
  elseif not data and err ~= "timeout" then
    note_error("client " .. next_client .. " receive: " .. tostring(err))
    next_client = next_client + 1
    if next_client > CLIENTS then base:loopexit() end
  end
end, 0.001)

local guard = base:addevent(nil, EV_TIMEOUT, function()
  note_error("timed out")
  base:loopexit()
  return LEAVE
end, TIMEOUT)

local started = socket.gettime()
base:loop()
local elapsed = socket.gettime() - started
if exhausted then free_fds() end
guard:close(); driver:close(); ticker:close(); acceptor:close()

local messages = {}
for msg, n in pairs(stats.accept_errors) do messages[#messages + 1] = string.format("%q x %d", msg, n) end
print(string.format("fd_exhaustion: accept failed %d times with %s; the loop ticked %d times while exhausted",
  stats.accept_failures, #messages > 0 and table.concat(messages, ", ") or "no error", stats.ticks_while_exhausted))
print(string.format("fd_exhaustion: after freeing: accepted %d of %d, served %d; bytes checked back %d of %d, mismatched %d, lost %d",
  stats.accepted, CLIENTS, stats.served, stats.verified, stats.expected, stats.mismatched, stats.expected - stats.verified))
print(string.format("fd_exhaustion: errors %d, %.2f s", stats.errors, elapsed))
for _, e in ipairs(errors_seen) do print("fd_exhaustion: error: " .. e) end
local pass = stats.errors == 0 and stats.accept_failures >= 1 and stats.ticks_while_exhausted > 0
  and stats.served == CLIENTS and stats.verified == stats.expected and stats.expected > 0
print(pass and "fd_exhaustion: PASS" or "fd_exhaustion: FAIL")
os.exit(pass and 0 or 1, true) -- closing the state runs every finalizer
