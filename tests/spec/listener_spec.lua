-- core.listener: listening TCP sockets whose accepted connections arrive as bufferevents that
-- own their sockets. IPv4 and IPv6 (loopback only), port 0, address(), backlog and reuseaddr,
-- bind errors, echo with every byte intact, the accepted socket closed on close() and on
-- collection, disable/enable, close() inside on_accept, errors in on_accept, and a listener out
-- of descriptors (EMFILE) that pauses instead of spinning and resumes once descriptors are free.
local core = require "luaevent.core"
local socket = require "socket"
local helpers = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "") .. "helpers.lua")
local run, wait, error_of, full_gc = helpers.run, helpers.wait, helpers.error_of, helpers.full_gc

local EV_READ = core.EV_READ
local EVBUFFER_EOF, EVBUFFER_ERROR = core.EVBUFFER_EOF, core.EVBUFFER_ERROR

-- A LuaSocket client connected to host:port, blocking with a short timeout.
local function client(host, port)
  local c = assert(host:find(":") and socket.tcp6() or socket.tcp())
  assert(c:connect(host, port))
  c:settimeout(0)
  return c
end

-- Reads from a non-blocking LuaSocket client while looping `base`, until `n` bytes came or
-- the peer closed; returns the bytes and whether it saw the end.
local function read_while_looping(base, c, n, limit)
  local got, closed = {}, false
  local total = 0
  wait(base, function()
    local data, err, partial = c:receive(65536)
    data = data or partial
    if data and #data > 0 then
      got[#got + 1] = data
      total = total + #data
    end
    if err == "closed" then closed = true end
    return closed or (n and total >= n)
  end, limit or 3)
  return table.concat(got), closed
end

-- An echo handler for on_accept: reads everything, writes it back. It keeps the bufferevent
-- until the end (one that nothing references is collected, and its connection closed).
local held = {}
local function echo(bev)
  held[bev] = true
  bev:set_callbacks(function(b)
    local input = b:get_read()
    b:get_write():add(input)
  end, nil, function(b)
    held[b] = nil
    b:close()
  end)
  bev:enable(EV_READ)
end

describe("core.listener", function()
  it("listens on 127.0.0.1 with a free port, and address() tells which", function()
    local base = core.new()
    local l = core.listener.new(base, { host = "127.0.0.1", port = 0 }, function() end)
    local host, port = l:address()
    assert.equal("127.0.0.1", host)
    assert.is_true(math.type == nil or math.type(port) == "integer")
    assert.is_true(port > 0 and port < 65536)
    l:close()
  end)

  it("listens on ::1", function()
    -- The machine must have IPv6 loopback: this fails rather than skips without it.
    local base = core.new()
    local accepted
    local l = core.listener.new(base, { host = "::1", port = 0 }, function(bev, host, port)
      accepted = { bev = bev, host = host, port = port }
    end)
    local host, port = l:address()
    assert.equal("::1", host)
    local c = client("::1", port)
    assert.is_true(wait(base, function() return accepted ~= nil end))
    assert.equal("::1", accepted.host)
    assert.equal(select(2, c:getsockname()), tostring(accepted.port))
    c:close()
    l:close()
  end)

  it("defaults to 0.0.0.0", function()
    local base = core.new()
    local l = core.listener.new(base, { port = 0 }, function() end)
    assert.equal("0.0.0.0", (l:address()))
    l:close()
    l = core.listener.new(base, nil, function() end)
    assert.equal("0.0.0.0", (l:address()))
    l:close()
  end)

  it("listens on the port asked for, and says so when it is taken", function()
    local base = core.new()
    local probe = core.listener.new(base, { host = "127.0.0.1" }, function() end)
    local _, port = probe:address()
    probe:close()
    local l = core.listener.new(base, { host = "127.0.0.1", port = port }, function() end)
    assert.equal(port, select(2, l:address()))
    local err = error_of(core.listener.new, base, { host = "127.0.0.1", port = port }, function() end)
    assert.equal(("core.listener.new: could not listen on 127.0.0.1 port %d: Address already in use"):format(port), err)
    l:close()
    -- Closed: the port is free again (reuseaddr, the default, covers TIME_WAIT).
    core.listener.new(base, { host = "127.0.0.1", port = port }, function() end):close()
  end)

  it("reuseaddr = false still binds a free port; a bad reuseaddr is a bad argument", function()
    local base = core.new()
    local l = core.listener.new(base, { host = "127.0.0.1", reuseaddr = false }, function() end)
    assert.is_true(select(2, l:address()) > 0)
    l:close()
    local err = error_of(core.listener.new, base, { reuseaddr = 1 }, function() end)
    assert.truthy(err:find("bad argument #2 to '.-' %(options.reuseaddr: boolean expected, got number%)"), err)
  end)

  it("sets SO_REUSEADDR unless reuseaddr = false", function()
    local base = core.new()
    -- The option as the system reports it, through a LuaSocket object lent the descriptor.
    local function reuseaddr_of(fd)
      local probe = socket.tcp()
      local own = probe:getfd()
      probe:setfd(fd)
      local on = probe:getoption("reuseaddr")
      probe:setfd(own)
      probe:close()
      return on
    end
    for _, case in ipairs({ { nil, true }, { true, true }, { false, false } }) do
      local l = core.listener.new(base, { host = "127.0.0.1", reuseaddr = case[1] }, function() end)
      assert.equal(case[2], reuseaddr_of(l:getfd()))
      l:close()
    end
  end)

  it("with reuseaddr a port with a connection in TIME_WAIT can be bound again", function()
    local base = core.new()
    local server
    local l = core.listener.new(base, { host = "127.0.0.1" }, function(bev) server = bev end)
    local _, port = l:address()
    local c = client("127.0.0.1", port)
    assert.is_true(wait(base, function() return server ~= nil end))
    server:close() -- the server closes first: its side goes to TIME_WAIT
    local _, closed = read_while_looping(base, c, nil, 5)
    assert.is_true(closed) -- (the client must not close first: TIME_WAIT would be on its side)
    c:close()
    l:close()
    local again = core.listener.new(base, { host = "127.0.0.1", port = port }, function() end)
    assert.equal(port, select(2, again:address()))
    again:close()
  end)

  it("takes a backlog", function()
    local base = core.new()
    local accepted = 0
    local l = core.listener.new(base, { host = "127.0.0.1", backlog = 1 }, function() accepted = accepted + 1 end)
    local _, port = l:address()
    local c = client("127.0.0.1", port)
    assert.is_true(wait(base, function() return accepted == 1 end))
    c:close()
    l:close()
    local err = error_of(core.listener.new, base, { backlog = 0 }, function() end)
    assert.truthy(err:find("options.backlog must be 1%-"), err)
  end)

  it("refuses bad arguments and unknown options, naming them", function()
    local base = core.new()
    local f = function() end
    local cases = {
      { { host = "localhost" }, "options.host must be an IPv4 or IPv6 address, got 'localhost'" },
      { { host = 1 }, "options.host: string expected, got number" },
      { { port = -1 }, "options.port must be 0%-65535, got %-1" },
      { { port = 65536 }, "options.port must be 0%-65535, got 65536" },
      { { port = 1.5 }, "options.port: integer expected, got number" },
      { { port = "80" }, "options.port: integer expected, got string" },
      { { hots = "127.0.0.1" }, "unknown option 'hots'" },
      { { [1] = true }, "unknown option %(a number key%)" },
      { "x", "table or nil expected, got string" },
    }
    for _, case in ipairs(cases) do
      local err = error_of(core.listener.new, base, case[1], f)
      assert.truthy(err and err:find("bad argument #2 to '.-' %(" .. case[2] .. "%)"), tostring(err) .. " / " .. case[2])
    end
    assert.truthy(error_of(core.listener.new, base, {}, nil):find("bad argument #3 to '.-' %(function expected, got nil%)"))
    assert.truthy(error_of(core.listener.new, nil, {}, f):find("bad argument #1 to '.-' %(event base expected, got nil%)"))
    assert.truthy(error_of(core.listener.new, base, { tls = {} }, f):find("bad argument #2 to '.-' %(options.tls: TLS context expected, got table%)"))
  end)

  it("accepts and echoes every byte intact, binary included", function()
    local base = core.new()
    local l = core.listener.new(base, { host = "127.0.0.1" }, echo)
    local _, port = l:address()
    local payload = {}
    for i = 1, 200000 do payload[i] = string.char((i * 7 + math.floor(i / 8)) % 256) end
    payload = table.concat(payload)
    local c = client("127.0.0.1", port)
    local sent = 1
    local got = {}
    local total = 0
    wait(base, function()
      if sent <= #payload then
        local n, _, last = c:send(payload, sent)
        sent = (n or last or sent - 1) + 1
      end
      local data, _, partial = c:receive(65536)
      data = data or partial
      if data and #data > 0 then got[#got + 1] = data; total = total + #data end
      return total >= #payload
    end, 5)
    assert.equal(#payload, total)
    assert.is_true(table.concat(got) == payload)
    c:close()
    l:close()
  end)

  it("gives on_accept a bufferevent without callbacks, writing on and reading off", function()
    local base = core.new()
    local got
    local l = core.listener.new(base, { host = "127.0.0.1" }, function(bev, host, port)
      got = { bev = bev, host = host, port = port, type = type(port) }
      bev:get_write():add("greeting")
    end)
    local _, port = l:address()
    local c = client("127.0.0.1", port)
    c:send("unread")
    local data = read_while_looping(base, c, 8)
    assert.equal("greeting", data)
    assert.equal("127.0.0.1", got.host)
    assert.equal(select(2, c:getsockname()), tostring(got.port))
    assert.equal(0, got.bev:get_read():length()) -- reading is not enabled
    assert.equal(got.bev:getfd(), got.bev:getfd())
    assert.is_true(got.bev:getfd() > 2)
    c:close()
    l:close()
  end)

  it("names each connection's own peer address, from one address and from another in turn", function()
    local base = core.new()
    local hosts, ports = {}, {}
    local l = core.listener.new(base, { host = "0.0.0.0" }, function(bev, host, port)
      hosts[#hosts + 1], ports[#ports + 1] = host, port
      bev:close()
    end)
    local _, port = l:address()
    local froms = { "127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.1", "127.0.0.3" }
    local clients = {}
    for i, from in ipairs(froms) do
      local c = assert(socket.tcp())
      assert(c:bind(from, 0))
      assert(c:connect("127.0.0.1", port))
      clients[i] = c
      wait(base, function() return #hosts == i end, 3)
      assert.equal(from, hosts[i])
      assert.equal(select(2, c:getsockname()), tostring(ports[i]))
    end
    for _, c in ipairs(clients) do c:close() end
    l:close()
  end)

  it("the accepted bufferevent owns its socket: close() closes it", function()
    local base = core.new()
    local server
    local l = core.listener.new(base, { host = "127.0.0.1" }, function(bev) server = bev end)
    local c = client("127.0.0.1", select(2, l:address()))
    assert.is_true(wait(base, function() return server ~= nil end))
    local fd = server:getfd()
    server:close()
    local _, closed = read_while_looping(base, c, nil, 2)
    assert.is_true(closed)
    -- The descriptor is gone (no other descriptor was made meanwhile).
    assert.truthy(error_of(base.addevent, base, fd, EV_READ, function() end):find("is not open"))
    c:close()
    l:close()
  end)

  it("an accepted bufferevent nothing references is collected, and its socket closed", function()
    local base = core.new()
    local accepted = false
    local l = core.listener.new(base, { host = "127.0.0.1" }, function() accepted = true end)
    local c = client("127.0.0.1", select(2, l:address()))
    assert.is_true(wait(base, function() return accepted end))
    full_gc()
    local _, closed = read_while_looping(base, c, nil, 2)
    assert.is_true(closed)
    c:close()
    l:close()
  end)

  it("disable() stops accepting and enable() resumes", function()
    local base = core.new()
    local accepted = 0
    local l = core.listener.new(base, { host = "127.0.0.1" }, function() accepted = accepted + 1 end)
    local _, port = l:address()
    assert.equal(0, l:disable())
    local c = client("127.0.0.1", port)
    run(base, 0.2)
    assert.equal(0, accepted)
    assert.equal(0, l:enable())
    assert.is_true(wait(base, function() return accepted == 1 end))
    c:close()
    l:close()
  end)

  it("close() inside on_accept stops the listener, and is idempotent", function()
    local base = core.new()
    local accepted = 0
    local l
    l = core.listener.new(base, { host = "127.0.0.1" }, function()
      accepted = accepted + 1
      l:close()
      l:close()
    end)
    local _, port = l:address()
    local c1 = client("127.0.0.1", port)
    local c2 = socket.tcp()
    c2:settimeout(0)
    c2:connect("127.0.0.1", port)
    run(base, 0.2)
    assert.equal(1, accepted)
    assert.truthy(error_of(l.address, l):find("attempt to use a closed listener"))
    assert.truthy(error_of(l.getfd, l):find("attempt to use a closed listener"))
    -- The port is no longer listening.
    local c3 = socket.tcp()
    assert.is_nil(c3:connect("127.0.0.1", port))
    c1:close(); c2:close(); c3:close()
  end)

  it("a listener collected inside its own on_accept is safe", function()
    local base = core.new()
    local accepted = 0
    local holder = {}
    holder[1] = core.listener.new(base, { host = "127.0.0.1" }, function()
      accepted = accepted + 1
      holder[1] = nil -- the last reference
      full_gc()
    end)
    local port = select(2, holder[1]:address())
    local c = client("127.0.0.1", port)
    run(base, 0.2)
    assert.equal(1, accepted)
    full_gc()
    c:close()
  end)

  it("an unreferenced listener is collected and stops listening", function()
    local base = core.new()
    local l = core.listener.new(base, { host = "127.0.0.1" }, function() end)
    local port = select(2, l:address())
    l = nil
    full_gc()
    local c = socket.tcp()
    assert.is_nil(c:connect("127.0.0.1", port))
    c:close()
  end)

  it("an error in on_accept reaches base:loop()", function()
    local base = core.new()
    local l = core.listener.new(base, { host = "127.0.0.1" }, function() error("accept failed here") end)
    local c = client("127.0.0.1", select(2, l:address()))
    base:loopexit(2)
    local ok, err = pcall(base.loop, base)
    assert.is_false(ok)
    assert.truthy(err:find("accept failed here", 1, true), err)
    assert.truthy(err:find("stack traceback", 1, true), err)
    c:close()
    l:close()
  end)

  it("getfd() returns the listening socket", function()
    local base = core.new()
    local l = core.listener.new(base, { host = "127.0.0.1" }, function() end)
    local fd = l:getfd()
    assert.is_true(fd > 2)
    l:close()
    assert.truthy(error_of(base.addevent, base, fd, EV_READ, function() end):find("is not open"))
  end)

  it("pauses when out of descriptors instead of spinning, serves the established connections, and resumes", function()
    -- A server child with few descriptors: it accepts until EMFILE, keeps echoing on what it
    -- has, then frees descriptors and accepts the rest. It reports its CPU time.
    local interpreter = arg and arg[-1] or "lua"
    local script = [[
      local core = require "luaevent.core"
      local base = core.new()
      local accepted = {}
      local l = core.listener.new(base, { host = "127.0.0.1" }, function(bev)
        accepted[#accepted + 1] = bev
        bev:set_callbacks(function(b) b:get_write():add(b:get_read()) end, nil, function(b) b:close() end)
        bev:enable(core.EV_READ)
      end)
      io.write(select(2, l:address()), "\n")
      io.flush()
      base:loopexit(1.5)
      base:loop()
      local first = #accepted
      local cpu = os.clock()
      -- Free descriptors: accepting resumes once the pause is over.
      for i = 1, 10 do accepted[i]:close() end
      base:loopexit(2)
      base:loop()
      io.write(first, " ", #accepted, " ", cpu, "\n")
    ]]
    local path = helpers.temp_file(script)
    local pipe = assert(io.popen(("ulimit -n 24; exec %s %s"):format(interpreter, path)))
    local port = tonumber(pipe:read("*l"))
    assert.is_truthy(port)
    local clients = {}
    for i = 1, 30 do
      local c = socket.tcp()
      c:settimeout(1)
      assert(c:connect("127.0.0.1", port))
      clients[i] = c
    end
    -- The first connection is served while the listener is paused.
    socket.sleep(0.5)
    assert(clients[1]:send("ping\n"))
    assert.equal("ping", clients[1]:receive("*l"))
    local result = pipe:read("*l")
    pipe:close()
    os.remove(path)
    for _, c in ipairs(clients) do c:close() end
    assert.truthy(result, "the child printed nothing")
    local first, total, cpu = result:match("^(%d+) (%d+) ([%d.e-]+)$")
    first, total, cpu = tonumber(first), tonumber(total), tonumber(cpu)
    assert.is_true(first > 0 and first < 30, result)
    assert.equal(math.min(30, first + 10), total)
    -- 1.5 s out of descriptors: a spinning loop would burn it all.
    assert.is_true(cpu < 0.3, "CPU time while paused: " .. cpu)
  end)

  it("closes an accepted socket beyond FD_SETSIZE on the select backend, and its event callback says why", function()
    -- glibc aborts a program that puts such a descriptor in an fd_set, as libevent's select
    -- backend would; on_accept gets the connection without a socket instead.
    local out = helpers.on_select_backend([[
      local core = require "luaevent.core"
      local base = core.new()
      io.write("backend ", base:method(), "\n")
      local accepted = 0
      local l = core.listener.new(base, { host = "127.0.0.1" }, function(bev, host)
        accepted = accepted + 1
        io.write("on_accept ", host, " fd ", tostring(bev:getfd()), "\n")
        bev:set_callbacks(function() end, nil, function(b, what, message)
          io.write("event ", what, ": ", tostring(message), "\n")
          b:close()
          base:loopexit(0)
        end)
        bev:enable(core.EV_READ)
      end)
      local client = assert(socket.connect("127.0.0.1", (select(2, l:address()))))
      hold_fds_until(1024) -- the accepted socket comes next
      base:loopexit(3)
      base:loop()
      client:settimeout(2)
      local data, err = client:receive(1)
      io.write("accepted ", accepted, ", client ", tostring(err), "\n")
      io.write("survived\n")
    ]])
    if not out then
      helpers.skip("the limit on descriptors cannot be raised to 2048 here")
      return
    end
    assert.truthy(out:find("backend select", 1, true), out)
    assert.truthy(out:find("on_accept 127.0.0.1 fd -1", 1, true), out)
    assert.truthy(out:find("event " .. EVBUFFER_ERROR .. ": listener %(accepting%): its socket, descriptor %d+, is beyond FD_SETSIZE %(%d+%), which the select backend cannot watch; the connection was closed"), out)
    assert.truthy(out:find("accepted 1, client closed", 1, true), out)
    assert.truthy(out:find("survived", 1, true), out)
  end)
end)
