-- core.bufferevent.connect and what came with it for every bufferevent: EVBUFFER_CONNECTED,
-- the event callback's `message`, set_callbacks and getfd. Loopback only (127.0.0.1 and ::1),
-- against listeners the specs start; a connection that never completes comes from a listener
-- whose backlog is full and which does not accept (the kernel then drops the SYNs).
local core = require "luaevent.core"
local socket = require "socket"
local helpers = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "") .. "helpers.lua")
local run, wait, tcp_pair, error_of, full_gc = helpers.run, helpers.wait, helpers.tcp_pair, helpers.error_of, helpers.full_gc

local EV_READ, EV_WRITE = core.EV_READ, core.EV_WRITE
local EVBUFFER_READ, EVBUFFER_EOF, EVBUFFER_ERROR, EVBUFFER_TIMEOUT, EVBUFFER_CONNECTED =
  core.EVBUFFER_READ, core.EVBUFFER_EOF, core.EVBUFFER_ERROR, core.EVBUFFER_TIMEOUT, core.EVBUFFER_CONNECTED

-- A listener on host that keeps what it accepts (reading on) in `accepted`.
local function server(base, host)
  local accepted = {}
  local l = core.listener.new(base, { host = host or "127.0.0.1" }, function(bev)
    accepted[#accepted + 1] = bev
    bev:set_callbacks(function() end, nil, function() end)
    bev:enable(EV_READ)
  end)
  return l, select(2, l:address()), accepted
end

local closed_port = helpers.closed_port

-- A listener whose backlog is full: connecting to it stays in progress.
local function black_hole(base)
  local l = core.listener.new(base, { host = "127.0.0.1", backlog = 1 }, function() end)
  l:disable()
  local port = select(2, l:address())
  local fillers, up = {}, 0
  for i = 1, 3 do
    fillers[i] = core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, function(_, what)
      if what == EVBUFFER_CONNECTED then up = up + 1 end
    end)
  end
  wait(base, function() return up >= 2 end, 1)
  run(base, 0.1)
  return l, port, fillers
end

-- Records every event callback call as { what, message, argument count }.
local function recorder()
  local events = {}
  return events, function(bev, what, message, ...)
    events[#events + 1] = { bev = bev, what = what, message = message, n = select("#", ...) + 3 }
  end
end

describe("core.EVBUFFER_CONNECTED", function()
  it("is libevent's BEV_EVENT_CONNECTED", function()
    assert.equal(128, EVBUFFER_CONNECTED)
  end)
end)

describe("core.bufferevent.connect", function()
  for _, host in ipairs({ "127.0.0.1", "::1" }) do
    it("connects to " .. host .. ", reports EVBUFFER_CONNECTED once, then reads", function()
      local base = core.new()
      local l, port, accepted = server(base, host)
      local events, eventcb = recorder()
      local read = {}
      local bev
      bev = core.bufferevent.connect(base, host, port, function(b, what)
        assert.is_true(rawequal(b, bev))
        read[#read + 1] = b:get_read():get_data()
        b:get_read():drain(-1)
      end, nil, eventcb)
      assert.is_true(wait(base, function() return #events > 0 and #accepted == 1 end))
      assert.equal(1, #events)
      assert.equal(EVBUFFER_CONNECTED, events[1].what)
      assert.is_nil(events[1].message)
      assert.is_true(rawequal(bev, events[1].bev))
      accepted[1]:get_write():add("from the server")
      assert.is_true(wait(base, function() return #read > 0 end))
      assert.equal("from the server", table.concat(read))
      assert.equal(1, #events)
      bev:close()
      l:close()
    end)
  end

  it("returns at once with a descriptor, owned: close() closes it", function()
    local base = core.new()
    local l, port, accepted = server(base)
    local bev = core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, function() end)
    local fd = bev:getfd()
    assert.is_true(fd > 2)
    assert.is_true(wait(base, function() return #accepted == 1 end))
    local ends = {}
    accepted[1]:set_callbacks(nil, nil, function(_, what) ends[#ends + 1] = what end)
    bev:close()
    assert.is_true(wait(base, function() return #ends > 0 end))
    assert.equal(EVBUFFER_EOF + EVBUFFER_READ, ends[1])
    assert.truthy(error_of(base.addevent, base, fd, EV_READ, function() end):find("is not open"))
    l:close()
  end)

  it("a connected bufferevent nothing references is collected, and its socket closed", function()
    local base = core.new()
    local l, port, accepted = server(base)
    local connected = false
    -- Held until connected (one collected while it connects is cancelled: another spec).
    local holder = { core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, function() connected = true end) }
    assert.is_true(wait(base, function() return connected and #accepted == 1 end))
    local ends = {}
    accepted[1]:set_callbacks(nil, nil, function(_, what) ends[#ends + 1] = what end)
    holder[1] = nil
    full_gc()
    assert.is_true(wait(base, function() return #ends > 0 end))
    assert.equal(EVBUFFER_EOF + EVBUFFER_READ, ends[1])
    l:close()
  end)

  it("sends bytes written before the connection is up, every byte intact", function()
    local base = core.new()
    local got = {}
    local l = core.listener.new(base, { host = "127.0.0.1" }, function(bev)
      got.bev = bev
      bev:set_callbacks(function(b)
        got[#got + 1] = b:get_read():get_data()
        b:get_read():drain(-1)
      end, nil, function() end)
      bev:enable(EV_READ)
    end)
    local payload = {}
    for i = 1, 100000 do payload[i] = string.char(i % 256) end
    payload = table.concat(payload)
    local bev = core.bufferevent.connect(base, "127.0.0.1", select(2, l:address()), nil, nil, function() end)
    bev:get_write():add(payload)
    assert.is_true(wait(base, function() return #table.concat(got) >= #payload end))
    assert.is_true(table.concat(got) == payload)
    bev:close()
    l:close()
  end)

  for _, host in ipairs({ "127.0.0.1", "::1" }) do
    it("reports a refused connection to " .. host .. " as EVBUFFER_ERROR with a message", function()
      local base = core.new()
      local port = closed_port(base, host)
      local events, eventcb = recorder()
      local bev = core.bufferevent.connect(base, host, port, nil, nil, eventcb)
      assert.equal(0, #events) -- never from inside connect()
      assert.is_true(wait(base, function() return #events > 0 end))
      run(base, 0.1)
      assert.equal(1, #events)
      assert.equal(EVBUFFER_ERROR, events[1].what)
      assert.equal(("could not connect to %s port %d: Connection refused"):format(host, port), events[1].message)
      assert.equal(-1, bev:getfd())
      bev:close()
    end)
  end

  it("ends with EVBUFFER_TIMEOUT when options.timeout passes first", function()
    local base = core.new()
    local l, port, fillers = black_hole(base)
    local events, eventcb = recorder()
    local started = helpers.now()
    local bev = core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, eventcb, { timeout = 0.3 })
    assert.is_true(wait(base, function() return #events > 0 end, 3))
    local elapsed = helpers.now() - started
    run(base, 0.2)
    assert.equal(1, #events)
    assert.equal(EVBUFFER_TIMEOUT, events[1].what)
    assert.is_nil(events[1].message)
    assert.is_true(elapsed >= 0.25 and elapsed < 2, "after " .. elapsed)
    assert.equal(-1, bev:getfd())
    bev:close()
    for _, f in ipairs(fillers) do f:close() end
    l:close()
  end)

  it("a connection made in time is not timed out later", function()
    local base = core.new()
    local l, port = server(base)
    local events, eventcb = recorder()
    local bev = core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, eventcb, { timeout = 0.1 })
    run(base, 0.4)
    assert.equal(1, #events)
    assert.equal(EVBUFFER_CONNECTED, events[1].what)
    bev:close()
    l:close()
  end)

  it("closing or collecting the bufferevent while it connects cancels it cleanly", function()
    local base = core.new()
    local l, port, fillers = black_hole(base)
    local events, eventcb = recorder()
    local closed = core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, eventcb, { timeout = 0.1 })
    closed:close()
    closed:close()
    core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, eventcb, { timeout = 0.1 })
    full_gc()
    run(base, 0.3)
    assert.equal(0, #events)
    assert.truthy(error_of(closed.getfd, closed):find("closed bufferevent"))
    -- A refused one closed before the loop hears of it.
    local refused = core.bufferevent.connect(base, "127.0.0.1", closed_port(base), nil, nil, eventcb)
    refused:close()
    run(base, 0.1)
    assert.equal(0, #events)
    for _, f in ipairs(fillers) do f:close() end
    l:close()
  end)

  it("can be closed inside its EVBUFFER_CONNECTED callback", function()
    local base = core.new()
    local l, port = server(base)
    local calls = 0
    local held = { core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, function(bev)
      calls = calls + 1
      bev:close()
      full_gc()
    end) }
    run(base, 0.2)
    assert.equal(1, calls)
    l:close()
  end)

  it("an error in the event callback reaches base:loop()", function()
    local base = core.new()
    local l, port = server(base)
    local bev = core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, function() error("connected, and failing") end)
    base:loopexit(2)
    local ok, err = pcall(base.loop, base)
    assert.is_false(ok)
    assert.truthy(err:find("connected, and failing", 1, true), err)
    bev:close()
    l:close()
  end)

  it("refuses bad arguments and unknown options, naming them", function()
    local base = core.new()
    local f = function() end
    local function err(...) return error_of(core.bufferevent.connect, ...) end
    assert.truthy(err(nil, "127.0.0.1", 1, f, f, f):find("bad argument #1 to '.-' %(event base expected, got nil%)"))
    assert.truthy(err(base, 1, 1, f, f, f):find("bad argument #2 to '.-' %(string expected, got number%)"))
    assert.truthy(err(base, "127.0.0.1", 0, f, f, f):find("bad argument #3 to '.-' %(port must be 1%-65535, got 0%)"))
    assert.truthy(err(base, "127.0.0.1", 65536, f, f, f):find("port must be 1%-65535, got 65536"))
    assert.truthy(err(base, "127.0.0.1", 80, 1, f, f):find("bad argument #4 to '.-' %(function or nil expected, got number%)"))
    assert.truthy(err(base, "127.0.0.1", 80, f, f, {}):find("bad argument #6 to '.-' %(function or nil expected, got table%)"))
    assert.truthy(err(base, "127.0.0.1", 80, f, f, f, { timeot = 1 }):find("bad argument #7 to '.-' %(unknown option 'timeot'%)"))
    assert.truthy(err(base, "127.0.0.1", 80, f, f, f, { timeout = -1 }):find("options.timeout must be a finite number of seconds >= 0, got %-1"))
    assert.truthy(err(base, "127.0.0.1", 80, f, f, f, { timeout = "x" }):find("options.timeout: number expected, got string"))
    assert.truthy(err(base, "127.0.0.1", 80, f, f, f, { servername = 1 }):find("options.servername: string expected, got number"))
    assert.truthy(err(base, "127.0.0.1", 80, f, f, f, { tls = {} }):find("bad argument #7 to '.-' %(options.tls: TLS context expected, got table%)"))
  end)

  it("refuses a socket beyond FD_SETSIZE on the select backend: the event callback says why", function()
    local out = helpers.on_select_backend([[
      local core = require "luaevent.core"
      local base = core.new()
      io.write("backend ", base:method(), "\n")
      local l = core.listener.new(base, { host = "127.0.0.1" }, function() end)
      local port = select(2, l:address())
      hold_fds_until(1024) -- the connecting socket comes next
      local bev = core.bufferevent.connect(base, "127.0.0.1", port, nil, nil, function(b, what, message)
        io.write("event ", what, ": ", tostring(message), "\n")
        base:loopexit(0)
      end)
      base:loopexit(3)
      base:loop()
      io.write("survived\n")
    ]])
    if not out then
      helpers.skip("the limit on descriptors cannot be raised to 2048 here")
      return
    end
    assert.truthy(out:find("backend select", 1, true), out)
    assert.truthy(out:find("event " .. EVBUFFER_ERROR .. ": could not connect to 127.0.0.1 port %d+: its socket, descriptor %d+, is beyond FD_SETSIZE %(%d+%), which the select backend cannot watch"), out)
    assert.truthy(out:find("survived", 1, true), out)
  end)
end)

describe("bufferevent additions", function()
  it("set_callbacks replaces the three callbacks; nil clears one", function()
    local base = core.new()
    local a, b = tcp_pair()
    local calls = {}
    local bev = core.bufferevent.new(base, a, function() calls[#calls + 1] = "old read" end, nil, function() end)
    bev:enable(EV_READ)
    bev:set_callbacks(function(e, what)
      calls[#calls + 1] = "new read " .. what
      e:get_read():drain(-1)
    end, function(_, what) calls[#calls + 1] = "write " .. what end, function(_, what, message)
      calls[#calls + 1] = "event " .. what .. " " .. tostring(message)
    end)
    b:send("x")
    bev:get_write():add("y")
    assert.is_true(wait(base, function() return #calls >= 2 end))
    table.sort(calls)
    assert.same({ "new read " .. EVBUFFER_READ, "write " .. core.EVBUFFER_WRITE }, calls)
    -- nil clears read and write; nil as eventcb means events are ignored.
    bev:set_callbacks(nil, nil, nil)
    calls = {}
    b:send("z")
    b:close()
    run(base, 0.2)
    assert.same({}, calls)
    assert.truthy(error_of(bev.set_callbacks, bev, 1):find("bad argument #2 to '.-' %(function or nil expected, got number%)"))
    assert.truthy(error_of(bev.set_callbacks, bev, nil, nil, "f"):find("bad argument #4 to '.-' %(function or nil expected, got string%)"))
    bev:close()
    assert.truthy(error_of(bev.set_callbacks, bev):find("closed bufferevent"))
    a:close()
  end)

  it("getfd returns the socket's descriptor", function()
    local base = core.new()
    local a, b = tcp_pair()
    local bev = core.bufferevent.new(base, a, nil, nil, function() end)
    assert.equal(a:getfd(), bev:getfd())
    bev:close()
    assert.truthy(error_of(bev.getfd, bev):find("closed bufferevent"))
    -- A bufferevent made from the user's socket leaves it open.
    assert.is_truthy(a:send("still open"))
    a:close()
    b:close()
  end)

  it("the event callback gets the system's reason for EVBUFFER_ERROR, and nil otherwise", function()
    local base = core.new()
    local a, b = tcp_pair()
    local events, eventcb = recorder()
    local bev = core.bufferevent.new(base, a, function(e) e:get_read():drain(-1) end, nil, eventcb)
    bev:enable(EV_READ)
    -- An abortive close: the peer sends a reset.
    b:setoption("linger", { on = true, timeout = 0 })
    b:close()
    assert.is_true(wait(base, function() return #events > 0 end))
    assert.equal(EVBUFFER_ERROR + EVBUFFER_READ, events[1].what)
    assert.equal("Connection reset by peer", events[1].message)
    bev:close()
    a:close()
    -- End of file: no message.
    a, b = tcp_pair()
    events, eventcb = recorder()
    bev = core.bufferevent.new(base, a, nil, nil, eventcb)
    bev:enable(EV_READ)
    b:close()
    assert.is_true(wait(base, function() return #events > 0 end))
    assert.equal(EVBUFFER_EOF + EVBUFFER_READ, events[1].what)
    assert.is_nil(events[1].message)
    bev:close()
    a:close()
  end)
end)

describe("core.bufferevent.connect by name", function()
  -- Names come from a DNS server on a loopback port that the specs start (dns_server.lua),
  -- asked through a resolver given as options.dns: the system's name servers are never asked.
  local dns_server = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "") .. "dns_server.lua")
  local base, server, resolver

  before_each(function()
    base = core.new()
    server = dns_server.start(base)
    resolver = core.dns.new(base, { nameservers = { server.address }, hosts = false, timeout = 5 })
  end)

  after_each(function()
    resolver:close()
    server:close()
    base = nil
    full_gc()
  end)

  it("resolves without blocking, then connects", function()
    local l = core.listener.new(base, { host = "::1" }, function() end)
    local port = select(2, l:address())
    local events, eventcb = recorder()
    local bev = core.bufferevent.connect(base, "v6.test", port, nil, nil, eventcb, { dns = resolver })
    assert.equal(-1, bev:getfd()) -- no socket while the name resolves
    assert.equal(0, #events)
    assert.is_true(wait(base, function() return #events > 0 end))
    assert.equal(EVBUFFER_CONNECTED, events[1].what)
    assert.is_true(bev:getfd() > 2)
    bev:close()
    l:close()
  end)

  it("falls back to the next address when one is refused: IPv6 first, then IPv4", function()
    -- The accepted bufferevents are kept: one collected early would end the client with EOF.
    local accepted, kept = {}, {}
    local l = core.listener.new(base, { host = "127.0.0.1" }, function(bev, host)
      accepted[#accepted + 1] = host
      kept[#kept + 1] = bev
    end)
    local port = select(2, l:address())
    local events, eventcb = recorder()
    local bev = core.bufferevent.connect(base, "both.test", port, nil, nil, eventcb, { dns = resolver })
    bev:get_write():add("sent to the second address")
    assert.is_true(wait(base, function() return #events > 0 and #accepted > 0 end))
    assert.equal(1, #events)
    assert.equal(EVBUFFER_CONNECTED, events[1].what)
    assert.same({ "127.0.0.1" }, accepted)
    bev:close()
    l:close()
  end)

  it("names the host when every address is refused", function()
    local port = closed_port(base)
    local events, eventcb = recorder()
    local bev = core.bufferevent.connect(base, "both.test", port, nil, nil, eventcb, { dns = resolver })
    assert.is_true(wait(base, function() return #events > 0 end))
    run(base, 0.1)
    assert.equal(1, #events)
    assert.equal(EVBUFFER_ERROR, events[1].what)
    assert.equal(("could not connect to both.test port %d (127.0.0.1): Connection refused"):format(port), events[1].message)
    bev:close()
  end)

  it("reports a name that does not exist", function()
    local events, eventcb = recorder()
    local bev = core.bufferevent.connect(base, "nosuch.test", 80, nil, nil, eventcb, { dns = resolver })
    assert.is_true(wait(base, function() return #events > 0 end))
    assert.equal(EVBUFFER_ERROR, events[1].what)
    assert.equal("could not resolve nosuch.test: no such name", events[1].message)
    bev:close()
  end)

  it("options.timeout covers the resolution", function()
    local events, eventcb = recorder()
    local started = helpers.now()
    local bev = core.bufferevent.connect(base, "silent.test", 80, nil, nil, eventcb, { dns = resolver, timeout = 0.3 })
    assert.is_true(wait(base, function() return #events > 0 end))
    local elapsed = helpers.now() - started
    run(base, 0.1)
    assert.equal(1, #events)
    assert.equal(EVBUFFER_TIMEOUT, events[1].what)
    assert.is_true(elapsed >= 0.25 and elapsed < 2, "after " .. elapsed)
    bev:close()
  end)

  it("closing or collecting the bufferevent while the name resolves cancels it cleanly", function()
    local events, eventcb = recorder()
    local closed = core.bufferevent.connect(base, "silent.test", 80, nil, nil, eventcb, { dns = resolver })
    closed:close()
    core.bufferevent.connect(base, "both.test", 80, nil, nil, eventcb, { dns = resolver })
    full_gc()
    local answered = core.bufferevent.connect(base, "v4.test", 80, nil, nil, eventcb, { dns = resolver })
    answered:close()
    run(base, 0.3)
    assert.equal(0, #events)
  end)

  it("a resolver closed during the lookup ends the connection with a message", function()
    local events, eventcb = recorder()
    local bev = core.bufferevent.connect(base, "silent.test", 80, nil, nil, eventcb, { dns = resolver })
    resolver:close()
    assert.is_true(wait(base, function() return #events > 0 end))
    assert.equal(EVBUFFER_ERROR, events[1].what)
    assert.equal("could not resolve silent.test: cancelled", events[1].message)
    bev:close()
  end)

  it("refuses an options.dns that is not a resolver", function()
    local f = function() end
    local err = error_of(core.bufferevent.connect, base, "v4.test", 80, f, f, f, { dns = {} })
    assert.truthy(err:find("bad argument #7 to '.-' %(options.dns: resolver expected, got table%)"), err)
    err = error_of(core.bufferevent.connect, base, "", 80, f, f, f, { dns = resolver })
    assert.truthy(err:find("bad argument #2 to '.-' %(an address or a host name expected%)"), err)
  end)

  it("names the options argument when options.dns is closed or belongs to another base", function()
    local f = function() end
    local other_base = core.new()
    local other = core.dns.new(other_base, { nameservers = { "127.0.0.1:9" }, hosts = false })
    local err = error_of(core.bufferevent.connect, base, "v4.test", 80, f, f, f, { dns = other })
    assert.truthy(err:find("^bad argument #7 to '.-' %(options.dns: the resolver belongs to another event base%)$"), err)
    local closed = core.dns.new(base, { nameservers = { "127.0.0.1:9" }, hosts = false })
    closed:close()
    err = error_of(core.bufferevent.connect, base, "v4.test", 80, f, f, f, { dns = closed })
    assert.truthy(err:find("^bad argument #7 to '.-' %(options.dns: attempt to use a closed resolver%)$"), err)
    other:close()
  end)
end)

describe("core.bufferevent.connect without options.dns", function()
  -- The base's default resolver reads /etc/resolv.conf and /etc/hosts, and libevent answers a
  -- name the hosts file lists from the file, before any query (strace shows no packet sent,
  -- only the name server's UDP socket made). So the spec asks for a name the hosts file maps to
  -- 127.0.0.1, and skips where it maps none: there the system's name server would be asked.
  local function hosts_maps_to_loopback(name)
    local f = io.open("/etc/hosts", "r")
    if not f then return false end
    local found = false
    for line in f:lines() do
      local address, names = line:gsub("#.*", ""):match("^%s*(%S+)%s+(.*)$")
      if address == "127.0.0.1" then
        for each in names:gmatch("%S+") do
          if each:lower() == name then found = true end
        end
      end
    end
    f:close()
    return found
  end

  it("resolves localhost from /etc/hosts with the base's default resolver, then connects", function()
    if not hosts_maps_to_loopback("localhost") then
      helpers.skip("/etc/hosts does not map localhost to 127.0.0.1: the system's name server would be asked")
      return
    end
    local base = core.new()
    local l, port, accepted = server(base, "127.0.0.1")
    local events, eventcb = recorder()
    local bev = core.bufferevent.connect(base, "localhost", port, nil, nil, eventcb)
    assert.is_true(wait(base, function() return #events > 0 and #accepted == 1 end))
    assert.equal(1, #events)
    assert.equal(EVBUFFER_CONNECTED, events[1].what)
    assert.is_nil(events[1].message)
    bev:close()
    l:close()
  end)
end)
