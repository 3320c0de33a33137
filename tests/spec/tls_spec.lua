-- TLS connections: options.tls on core.listener.new and core.bufferevent.connect, bev:starttls and
-- bev:tls(), against real peers (curl, `openssl s_client`, `openssl s_server`) and the module
-- itself. Loopback only; every loop is bounded. Certificates come from certs.lua (the `openssl`
-- command); the server certificate is for localhost and 127.0.0.1, signed by a test CA.
local core = require "luaevent.core"
local socket = require "socket"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local helpers = dofile(here .. "helpers.lua")
local make_certs = dofile(here .. "certs.lua")
local run, wait, error_of = helpers.run, helpers.wait, helpers.error_of

local EV_READ = core.EV_READ
local EVBUFFER_EOF, EVBUFFER_ERROR, EVBUFFER_TIMEOUT, EVBUFFER_CONNECTED =
  core.EVBUFFER_EOF, core.EVBUFFER_ERROR, core.EVBUFFER_TIMEOUT, core.EVBUFFER_CONNECTED

-- Everything the input holds, taken.
local function take(bev)
  local input = bev:get_read()
  local data = input:get_data()
  input:drain(#data)
  return data
end

-- A TLS echo server on 127.0.0.1 made with the module: echoes "echo:<data>". `events` gets
-- every event of the accepted connections as { bev, what, message }; `accepted` the objects.
local function echo_server(base, context, prefix)
  local events, accepted = {}, {}
  local l = core.listener.new(base, { host = "127.0.0.1", port = 0, backlog = 1024, tls = context }, function(bev)
    accepted[#accepted + 1] = bev
    bev:set_callbacks(function(b)
      b:get_write():add((prefix or "echo:") .. take(b))
    end, nil, function(b, what, message)
      events[#events + 1] = { bev = b, what = what, message = message }
    end)
    bev:enable(EV_READ)
  end)
  return l, select(2, l:address()), events, accepted
end

-- A TLS client of the module: `state.events` gets its events, `state.data` what it read.
local function client(base, port, options, send)
  local state = { events = {}, data = "" }
  state.bev = core.bufferevent.connect(base, "127.0.0.1", port, function(b)
    state.data = state.data .. take(b)
  end, nil, function(_, what, message)
    state.events[#state.events + 1] = { what = what, message = message }
  end, options)
  if send then state.bev:get_write():add(send) end
  return state
end

-- Whether `what` has one of the flags in `flags` (no bitwise operators: Lua 5.1 has none).
local function any_flag(what, flags)
  for _, flag in ipairs { 1, 2, 16, 32, 64, 128 } do
    if math.floor(what / flag) % 2 == 1 and math.floor(flags / flag) % 2 == 1 then return true end
  end
  return false
end

local function has_event(events, what)
  for _, e in ipairs(events) do
    if any_flag(e.what, what) then return e end
  end
end


-- Runs a shell command in the background; returns the file its output goes to and its pid file.
local function spawn(dir, name, command)
  local out, pidfile = dir .. "/" .. name .. ".out", dir .. "/" .. name .. ".pid"
  os.remove(out)
  os.execute(("sh -c 'echo $$ > %s; exec %s' > %s 2>&1 < /dev/null &"):format(pidfile, command, out))
  return out, pidfile
end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return "" end
  local text = f:read("*a")
  f:close()
  return text
end

local function kill(pidfile)
  local pid = read_file(pidfile):match("%d+")
  if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
end

describe("TLS connections #ours", function()
  local certs, base, server_context, client_context
  local spawned = {}

  setup(function()
    certs = make_certs()
    server_context = core.tls.context { mode = "server", certificate = certs.server, key = certs.key }
    client_context = core.tls.context { mode = "client", cafile = certs.ca }
  end)

  teardown(function()
    for _, pidfile in ipairs(spawned) do kill(pidfile) end
    if certs then certs.remove() end
  end)

  before_each(function()
    base = core.new()
  end)

  -- `openssl s_server` on a free loopback port with `arguments`; its port once it accepts.
  local function s_server(arguments)
    for _ = 1, 5 do
      local port = helpers.closed_port(base)
      local out, pidfile = spawn(certs.dir, "s_server" .. port, ("openssl s_server -4 -accept 127.0.0.1:%d -cert %s -key %s %s")
        :format(port, certs.server, certs.key, arguments or "-rev"))
      spawned[#spawned + 1] = pidfile
      local deadline = socket.gettime() + 5
      while socket.gettime() < deadline do
        local text = read_file(out)
        if text:find("ACCEPT") then return port, pidfile end
        if text:find("unable to bind") or text:find("rror") then break end
        socket.select(nil, nil, 0.02)
      end
      kill(pidfile)
    end
    error("openssl s_server did not start")
  end

  describe("a listener with options.tls", function()
    it("serves TLS to a client of the module, which verifies it and sees bev:tls()", function()
      local l, port, events = echo_server(base, server_context)
      local c = client(base, port, { tls = client_context, timeout = 3 }, "hello")
      assert.is_true(wait(base, function() return c.data == "echo:hello" end, 5))
      assert.equal(EVBUFFER_CONNECTED, c.events[1].what)
      assert.equal(EVBUFFER_CONNECTED, events[1].what)
      local facts = c.bev:tls()
      assert.equal("TLSv1.3", facts.protocol)
      assert.is_string(facts.cipher)
      assert.is_true(facts.verified)
      assert.is_nil(facts.verify_error)
      assert.matches("CN=localhost", facts.peer.subject)
      assert.matches("luaevent%-rs test CA", facts.peer.issuer)
      assert.matches("^%d%d%d%d%-", facts.peer.not_after)
      assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE", facts.peer.pem)
      -- The server asked for no client certificate.
      local server_facts = events[1].bev:tls()
      assert.is_false(server_facts.verified)
      assert.is_nil(server_facts.peer)
      c.bev:close()
      -- A close notice was sent: the server hears a clean end of file.
      assert.is_true(wait(base, function() return has_event(events, EVBUFFER_EOF) ~= nil end, 3))
      l:close()
    end)

    it("serves curl (an HTTPS request verified against the test CA)", function()
      local kept = {} -- an accepted bufferevent nothing references is collected (and closed)
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
        kept[#kept + 1] = bev
        local request = ""
        bev:set_callbacks(function(b)
          request = request .. take(b)
          if request:find("\r\n\r\n", 1, true) then
            b:get_write():add("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n")
          end
        end, function(b) if request:find("\r\n\r\n", 1, true) then b:close() end end, function() end)
        bev:enable(EV_READ)
      end)
      local port = select(2, l:address())
      local out = spawn(certs.dir, "curl", ("curl -sS --max-time 5 --cacert %s https://localhost:%d/ --resolve localhost:%d:127.0.0.1")
        :format(certs.ca, port, port))
      assert.is_true(wait(base, function() return read_file(out) == "hello\n" end, 6), read_file(out))
      l:close()
    end)

    it("serves openssl s_client, which verifies the chain and the name", function()
      local l, port = echo_server(base, server_context)
      local out = spawn(certs.dir, "s_client", ("sh -c \"(printf 'hi'; sleep 1) | openssl s_client -connect 127.0.0.1:%d -servername localhost -verify_return_error -verify_hostname localhost -CAfile %s -quiet\"")
        :format(port, certs.ca))
      assert.is_true(wait(base, function() return read_file(out):find("echo:hi", 1, true) ~= nil end, 6), read_file(out))
      l:close()
    end)

    it("ends a connection that sends garbage instead of a handshake, and only that one", function()
      local l, port, events = echo_server(base, server_context)
      local raw = assert(socket.connect("127.0.0.1", port))
      raw:send("GET / HTTP/1.0\r\n\r\n")
      assert.is_true(wait(base, function() return has_event(events, EVBUFFER_ERROR) ~= nil end, 3))
      local failed = has_event(events, EVBUFFER_ERROR)
      assert.is_string(failed.message)
      assert.is_true(#failed.message > 0)
      raw:close()
      local c = client(base, port, { tls = client_context, timeout = 3 }, "after")
      assert.is_true(wait(base, function() return c.data == "echo:after" end, 5))
      l:close()
    end)

    it("reports a close during the handshake as an error that says so", function()
      local l, port, events = echo_server(base, server_context)
      local raw = assert(socket.connect("127.0.0.1", port))
      assert.is_true(wait(base, function() return #events > 0 or false end, 0.2) or true)
      raw:close()
      assert.is_true(wait(base, function() return has_event(events, EVBUFFER_ERROR) ~= nil end, 3))
      assert.equal("the connection closed during the TLS handshake", has_event(events, EVBUFFER_ERROR).message)
      l:close()
    end)

    it("ends a handshake that never completes with the read timeout set in on_accept", function()
      local events = {}
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
        bev:set_callbacks(function() end, nil, function(b, what, message)
          events[#events + 1] = what
          b:close()
        end)
        bev:set_timeouts(0.2, nil)
        bev:enable(EV_READ)
      end)
      local silent = assert(socket.connect("127.0.0.1", select(2, l:address())))
      assert.is_true(wait(base, function() return #events > 0 end, 3))
      assert.is_true(any_flag(events[1], EVBUFFER_TIMEOUT))
      silent:close()
      l:close()
    end)

    it("requires client certificates when the context says so", function()
      local strict = core.tls.context { mode = "server", certificate = certs.server, key = certs.key,
        cafile = certs.ca, verify = { "peer", "fail_if_no_peer_cert" } }
      local l, port, events, accepted = echo_server(base, strict)
      local with = core.tls.context { mode = "client", cafile = certs.ca, certificate = certs.server, key = certs.key }
      local c = client(base, port, { tls = with, timeout = 3 }, "mine")
      assert.is_true(wait(base, function() return c.data == "echo:mine" end, 5))
      local facts = accepted[1]:tls()
      assert.is_true(facts.verified)
      assert.matches("CN=localhost", facts.peer.subject)
      c.bev:close()
      -- Without one, the server ends the connection with OpenSSL's reason.
      local before, refused = #events, nil
      local without = client(base, port, { tls = client_context, timeout = 3 }, "none")
      assert.is_true(wait(base, function()
        for i = before + 1, #events do
          if any_flag(events[i].what, EVBUFFER_ERROR) then refused = events[i] end
        end
        return refused ~= nil
      end, 5))
      assert.equal("peer did not return a certificate", refused.message)
      assert.is_true(wait(base, function() return has_event(without.events, EVBUFFER_ERROR + EVBUFFER_EOF) ~= nil end, 5))
      assert.equal("", without.data)
      l:close()
    end)

    it("echoes intact on 500 concurrent connections (400 on select, whose fd_set ends at 1024)", function()
      -- Two descriptors a connection: on libevent's select backend 500 would go past FD_SETSIZE,
      -- where glibc aborts the process (accepted and connected sockets are not refused there yet).
      local count = base:method() == "select" and 400 or 500
      -- Under tests/memcheck/run.sh, 50: valgrind runs handshakes some 50 times slower, and the
      -- leak check needs concurrent connections, not their number.
      if os.getenv("LUAEVENT_UNDER_VALGRIND") then count = 50 end
      local l, port = echo_server(base, server_context, "")
      local clients = {}
      for i = 1, count do
        clients[i] = client(base, port, { tls = client_context, timeout = 10 }, ("%d:"):format(i) .. string.rep("x", 3000 + i))
      end
      assert.is_true(wait(base, function()
        for i = 1, count do
          if #clients[i].data < 3000 + i + #tostring(i) + 1 then return false end
        end
        return true
      end, 30))
      for i = 1, count do
        assert.equal(("%d:"):format(i) .. string.rep("x", 3000 + i), clients[i].data)
        clients[i].bev:close()
      end
      l:close()
    end)

    it("reads what the socket holds beneath a TLS filter (STARTTLS) in large reads, not libevent's 4 KiB ones", function()
      -- openssl s_client sends 128 KiB, which wait in the socket while the server does not read;
      -- once it does, libevent 2.1's filter alone would take 4 KiB per loop round (32 rounds),
      -- the module reads up to 64 KiB more each round. The server upgrades at once with
      -- STARTTLS: a listener's options.tls puts TLS on the socket itself, nothing beneath.
      local size = 128 * 1024
      local file = certs.dir .. "/stream.txt"
      local f = assert(io.open(file, "wb"))
      f:write(("0123456789abcdef"):rep(size / 16))
      f:close()
      local kept, received, server, rounds, done_at = {}, 0, nil, 0, nil
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0 }, function(bev)
        kept[#kept + 1] = bev
        bev:set_callbacks(function(b)
          received = received + #take(b)
          if received == size then done_at = rounds end
        end, nil, function(b, what)
          if what == EVBUFFER_CONNECTED then
            server = b
            b:disable(EV_READ)
          end
        end)
        bev:enable(EV_READ)
        bev:starttls(server_context)
      end)
      local _, pidfile = spawn(certs.dir, "s_client_stream", ("openssl s_client -quiet -ign_eof -connect 127.0.0.1:%d < %s")
        :format(select(2, l:address()), file))
      spawned[#spawned + 1] = pidfile
      assert.is_true(wait(base, function() return server ~= nil end, 5))
      run(base, 1) -- s_client's 128 KiB reach the socket meanwhile
      assert.equal(0, received)
      -- A 0-second timer re-armed from its callback runs once per loop round.
      local timer = base:addevent(nil, 0, function()
        rounds = rounds + 1
        return 0
      end, 0)
      server:enable(EV_READ)
      assert.is_true(wait(base, function() return received == size end, 5), received)
      timer:close()
      assert.is_true(done_at <= 12, "loop rounds: " .. done_at)
      kill(pidfile)
      l:close()
    end)

    for _, way in ipairs { "options.tls", "STARTTLS" } do
      it("calls the read callback a few times for a burst of tiny records under a read high watermark, never with nothing to read (" .. way .. ")", function()
        -- The server writes 2000 one-byte records (each add is encrypted at once, as one record);
        -- they wait in the client's socket while it does not read, then come in one read.
        -- libevent 2.1's filter (the client's layer after STARTTLS), with a read high watermark
        -- set, reads them one recursion level per record and calls back on each level's way
        -- out: some 2000 calls, nearly all on an empty input.
        local count = 2000
        local client_bev, server_bev, connected = nil, nil, false
        local calls, empty, received = 0, 0, 0
        local l = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
          server_bev = bev
          bev:set_callbacks(nil, nil, function(b, what)
            if what == EVBUFFER_CONNECTED then
              for _ = 1, count do b:get_write():add("x") end
            end
          end)
        end)
        local plain_up = false
        client_bev = core.bufferevent.connect(base, "127.0.0.1", select(2, l:address()), function(b)
          calls = calls + 1
          if b:get_read():length() == 0 then empty = empty + 1 end
          received = received + #take(b)
        end, nil, function(b, what)
          if what == EVBUFFER_CONNECTED and way == "STARTTLS" and not plain_up then
            plain_up = true
            b:starttls(client_context, { servername = "localhost" })
          elseif what == EVBUFFER_CONNECTED then
            connected = true
            b:set_read_watermarks(0, 64 * 1024)
            b:disable(EV_READ)
          end
        end, way == "options.tls" and { tls = client_context, servername = "localhost" } or nil)
        assert.is_true(wait(base, function() return connected end, 5))
        run(base, 0.5) -- the records reach the client's socket meanwhile
        assert.equal(0, received)
        client_bev:enable(EV_READ)
        assert.is_true(wait(base, function() return received == count end, 5), received)
        assert.equal(0, empty)
        assert.is_true(calls <= count / 20, "read callbacks: " .. calls)
        client_bev:close()
        server_bev:close()
        l:close()
      end)
    end

    it("refuses a client context", function()
      local function new(options) return core.listener.new(base, options, function() end) end
      local err = error_of(new, { tls = client_context })
      assert.is_truthy(err:find("bad argument #2 to '.-' %(options.tls: a server TLS context expected, got a client one%)"))
      err = error_of(new, { tls = "yes" })
      assert.is_truthy(err:find("bad argument #2 to '.-' %(options.tls: TLS context expected, got string%)"))
    end)
  end)

  describe("bufferevent.connect with options.tls", function()
    it("talks to openssl s_server, with ALPN", function()
      local port = s_server("-rev -alpn h2,http/1.1")
      local alpn = core.tls.context { mode = "client", cafile = certs.ca, alpn = { "http/1.1" } }
      local c = client(base, port, { tls = alpn, servername = "localhost", timeout = 3 }, "hello\n")
      assert.is_true(wait(base, function() return c.data:find("olleh", 1, true) ~= nil end, 5), c.data)
      local facts = c.bev:tls()
      assert.equal("http/1.1", facts.alpn)
      assert.equal("localhost", facts.servername)
      assert.is_true(facts.verified)
      c.bev:close()
    end)

    it("hears a peer that goes without a close notice as end of file", function()
      local port, pidfile = s_server("-rev")
      local c = client(base, port, { tls = client_context, timeout = 3 }, "bye\n")
      assert.is_true(wait(base, function() return c.data:find("eyb", 1, true) ~= nil end, 5))
      kill(pidfile)
      assert.is_true(wait(base, function() return #c.events >= 2 end, 5))
      assert.is_true(any_flag(c.events[2].what, EVBUFFER_EOF))
      assert.is_false(any_flag(c.events[2].what, EVBUFFER_ERROR))
      c.bev:close()
    end)

    it("fails a server whose name does not match, with OpenSSL's reason", function()
      local l, port = echo_server(base, server_context)
      local c = client(base, port, { tls = client_context, servername = "example.com", timeout = 3 }, "x")
      assert.is_true(wait(base, function() return #c.events > 0 end, 5))
      assert.equal(EVBUFFER_ERROR, c.events[1].what)
      assert.equal("certificate verify failed: hostname mismatch", c.events[1].message)
      assert.equal("", c.data)
      l:close()
    end)

    it("fails a self-signed server unless verify is none", function()
      local self = core.tls.context { mode = "server", certificate = certs.self, key = certs.self_key }
      local l, port = echo_server(base, self)
      local c = client(base, port, { tls = client_context, servername = "localhost", timeout = 3 }, "x")
      assert.is_true(wait(base, function() return #c.events > 0 end, 5))
      assert.equal("certificate verify failed: self-signed certificate", c.events[1].message)
      local trusting = core.tls.context { mode = "client", verify = "none" }
      local d = client(base, port, { tls = trusting, servername = "localhost", timeout = 3 }, "y")
      assert.is_true(wait(base, function() return d.data == "echo:y" end, 5))
      local facts = d.bev:tls()
      assert.is_false(facts.verified)
      assert.equal("self-signed certificate", facts.verify_error)
      d.bev:close()
      l:close()
    end)

    it("times out a handshake that never completes (options.timeout)", function()
      local silent = core.listener.new(base, { host = "127.0.0.1", port = 0 }, function(bev)
        bev:set_callbacks(function() end, nil, function() end)
      end)
      local c = client(base, select(2, silent:address()), { tls = client_context, timeout = 0.3 })
      assert.is_true(wait(base, function() return #c.events > 0 end, 3))
      assert.equal(EVBUFFER_TIMEOUT, c.events[1].what)
      silent:close()
    end)

    it("keeps the timeouts set while it was still connecting", function()
      local l, port = echo_server(base, server_context) -- answers only what it is sent
      local c = client(base, port, { tls = client_context, servername = "localhost", timeout = 3 }, "hi")
      c.bev:set_timeouts(0.3, nil)
      assert.is_true(wait(base, function() return c.data == "echo:hi" end, 5), c.data)
      assert.equal(EVBUFFER_CONNECTED, c.events[1].what)
      -- Then nothing more comes: the read timeout ends the wait.
      local t0 = socket.gettime()
      assert.is_true(wait(base, function() return #c.events >= 2 end, 3), "no read timeout")
      assert.equal(EVBUFFER_TIMEOUT + core.EVBUFFER_READ, c.events[2].what)
      assert.is_true(socket.gettime() - t0 < 2)
      c.bev:close()
      l:close()
    end)

    it("connects by name, the name being the server name checked and sent", function()
      local path = helpers.temp_file("127.0.0.1 localhost\n127.0.0.1 other.test\n")
      local resolver = core.dns.new(base, { hosts = path, nameservers = { "127.0.0.1:9" } })
      local l, port, _, accepted = echo_server(base, server_context)
      local state = { events = {}, data = "" }
      local function by_name(name, record)
        return core.bufferevent.connect(base, name, port, function(b) record.data = record.data .. take(b) end, nil,
          function(_, what, message) record.events[#record.events + 1] = { what = what, message = message } end,
          { tls = client_context, dns = resolver, timeout = 3 })
      end
      local bev = by_name("localhost", state)
      bev:get_write():add("named")
      assert.is_true(wait(base, function() return state.data == "echo:named" end, 5))
      assert.equal("localhost", accepted[1]:tls().servername)
      bev:close()
      local other = { events = {}, data = "" }
      local other_bev = by_name("other.test", other) -- kept: one nothing references is collected
      assert.is_true(wait(base, function() return #other.events > 0 end, 5))
      assert.equal(EVBUFFER_ERROR, other.events[1].what)
      assert.equal("certificate verify failed: hostname mismatch", other.events[1].message)
      other_bev:close()
      resolver:close()
      os.remove(path)
      l:close()
    end)

    it("refuses a server context", function()
      local err = error_of(function()
        return core.bufferevent.connect(base, "127.0.0.1", 1, nil, nil, nil, { tls = server_context })
      end)
      assert.is_truthy(err:find("bad argument #7 to '.-' %(options.tls: a client TLS context expected, got a server one%)"))
    end)
  end)

  describe("bev:starttls", function()
    -- A STARTTLS exchange: the client sends "STARTTLS\n"; the server answers "GO\n" in plain
    -- and upgrades (from inside its read callback); the client upgrades on "GO". Pipelined, the
    -- client upgrades at once behind its command and the server answers nothing in plain: its
    -- input then already holds the client's hello when it upgrades. With `write_timeout`, the
    -- client sets that write timeout once upgraded and stays idle for longer once done.
    local function starttls_exchange(pipelined, write_timeout)
      local server_bev, server_lines, server_events = nil, {}, {}
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0 }, function(bev)
        server_bev = bev
        local upgraded = false
        bev:set_callbacks(function(b)
          if not upgraded then
            local line = b:get_read():readline()
            if line == "STARTTLS" then
              upgraded = true
              if not pipelined then b:get_write():add("GO\n") end -- queued in plain: goes out first
              b:starttls(server_context)
            end
          else
            server_lines[#server_lines + 1] = take(b)
            b:get_write():add("secret reply")
          end
        end, nil, function(_, what) server_events[#server_events + 1] = what end)
        bev:enable(EV_READ)
      end)
      local port = select(2, l:address())
      local got, events, upgraded = "", {}, false
      local function upgrade(b)
        upgraded = true
        b:starttls(client_context, { servername = "localhost" })
        if write_timeout then b:set_timeouts(nil, write_timeout) end -- not carried over
        b:get_write():add("secret")
      end
      local c = core.bufferevent.connect(base, "127.0.0.1", port, function(b)
        if not upgraded then
          if b:get_read():readline() == "GO" then upgrade(b) end
        else
          got = got .. take(b)
        end
      end, nil, function(b, what)
        events[#events + 1] = what
        if what == EVBUFFER_CONNECTED and #events == 1 then
          b:get_write():add("STARTTLS\n")
          if pipelined then upgrade(b) end
        end
      end, { timeout = 3 })
      local input = c:get_read()
      assert.is_true(wait(base, function() return got == "secret reply" end, 5), got)
      if write_timeout then run(base, write_timeout * 2.5) end
      assert.same({ EVBUFFER_CONNECTED, EVBUFFER_CONNECTED }, events)
      assert.same({ EVBUFFER_CONNECTED }, server_events)
      assert.same({ "secret" }, server_lines)
      assert.equal(input, c:get_read())
      assert.is_true(c:tls().verified)
      assert.equal("localhost", server_bev:tls().servername)
      c:close()
      l:close()
    end

    it("upgrades in place, keeping the object, its callbacks, its buffers and plain bytes before it", function()
      starttls_exchange(false)
    end)

    it("upgrades with the peer's hello already read (pipelined)", function()
      starttls_exchange(true)
    end)

    it("an upgraded connection's write timeout does not fire once everything is written", function()
      starttls_exchange(false, 0.2)
    end)

    -- The server closes (with a close notice) once its handshake is done; the client keeps its
    -- end open and lists its events. Through STARTTLS on a plain connection, or TLS from the start.
    local function server_closes(upgrade)
      local kept = {}
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = not upgrade and server_context or nil },
        function(bev)
          kept[#kept + 1] = bev
          bev:set_callbacks(function(b)
            if b:get_read():readline() == "STARTTLS" then b:starttls(server_context) end
          end, nil, function(b, what)
            if what == EVBUFFER_CONNECTED and (b:tls() or not upgrade) then b:close() end
          end)
          bev:enable(EV_READ)
        end)
      local events = {}
      local c = core.bufferevent.connect(base, "127.0.0.1", select(2, l:address()), function(b) take(b) end, nil,
        function(b, what)
          events[#events + 1] = what
          if what == EVBUFFER_CONNECTED and upgrade and not b:tls() then
            b:get_write():add("STARTTLS\n")
            b:starttls(client_context, { servername = "localhost" })
          end
        end, { tls = not upgrade and client_context or nil, servername = "localhost", timeout = 5 })
      c:enable(EV_READ)
      assert.is_true(wait(base, function()
        for _, what in ipairs(events) do
          if any_flag(what, EVBUFFER_EOF + EVBUFFER_ERROR) then return true end
        end
      end, 5))
      run(base, 0.3) -- anything reported twice would come meanwhile
      c:close()
      l:close()
      return events
    end

    it("reports the peer's end once, as EVBUFFER_EOF + EVBUFFER_READ like a plain connection", function()
      local upgraded = server_closes(true)
      assert.same({ EVBUFFER_CONNECTED, EVBUFFER_CONNECTED, EVBUFFER_EOF + core.EVBUFFER_READ }, upgraded)
      local from_start = server_closes(false)
      assert.same({ EVBUFFER_CONNECTED, EVBUFFER_EOF + core.EVBUFFER_READ }, from_start)
    end)

    it("refuses what cannot be upgraded", function()
      local l, port = echo_server(base, server_context)
      local c = client(base, port, { tls = client_context, timeout = 3 }, "x")
      assert.is_true(wait(base, function() return c.data == "echo:x" end, 5))
      assert.equal("bev:starttls: the connection already uses TLS", error_of(c.bev.starttls, c.bev, client_context))
      assert.matches("TLS context expected", error_of(c.bev.starttls, c.bev, "context"))
      assert.matches("options.servername: string expected, got number",
        error_of(c.bev.starttls, c.bev, client_context, { servername = 1 }))
      c.bev:close()
      assert.matches("closed bufferevent", error_of(c.bev.starttls, c.bev, client_context))
      l:close()
    end)
  end)

  describe("bev:starttls on a client, without options.servername", function()
    -- A plain server that upgrades on "STARTTLS\n" and then echoes; a client connected to it by
    -- core.bufferevent.connect(base, host, ...) that sends the command and upgrades at once with
    -- `starttls_args`. What the client's event callback heard, and the server's bufferevent.
    local function upgrade_after_connect(host, connect_options, ...)
      local starttls_args = { ... }
      local server_bev
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0 }, function(bev)
        server_bev = bev
        bev:set_callbacks(function(b)
          if not b:tls() then
            if b:get_read():readline() == "STARTTLS" then b:starttls(server_context) end
          else
            b:get_write():add("echo:" .. take(b))
          end
        end, nil, function() end)
        bev:enable(EV_READ)
      end)
      local state = { events = {}, data = "" }
      connect_options.timeout = 3
      state.bev = core.bufferevent.connect(base, host, select(2, l:address()), function(b)
        state.data = state.data .. take(b)
      end, nil, function(b, what, message)
        state.events[#state.events + 1] = { what = what, message = message }
        if what == EVBUFFER_CONNECTED and #state.events == 1 then
          b:get_write():add("STARTTLS\n")
          b:starttls((table.unpack or unpack)(starttls_args))
          b:get_write():add("x")
        end
      end, connect_options)
      wait(base, function() return #state.events >= 2 end, 5)
      state.server = server_bev
      state.listener = l
      return state
    end

    local hosts_path, resolver
    before_each(function()
      hosts_path = os.tmpname()
      local f = assert(io.open(hosts_path, "w"))
      f:write("127.0.0.1 localhost\n127.0.0.1 wrong.test\n")
      f:close()
      resolver = core.dns.new(base, { nameservers = { "127.0.0.1:9" }, hosts = hosts_path })
    end)
    after_each(function()
      resolver:close()
      os.remove(hosts_path)
    end)

    it("checks the host core.bufferevent.connect was given, and sends it as SNI", function()
      local c = upgrade_after_connect("localhost", { dns = resolver }, client_context)
      assert.equal(EVBUFFER_CONNECTED, c.events[2].what)
      assert.is_true(wait(base, function() return c.data == "echo:x" end, 5), c.data)
      assert.is_true(c.bev:tls().verified)
      assert.equal("localhost", c.server:tls().servername)
      c.bev:close()
      c.listener:close()
    end)

    it("fails the handshake when the certificate does not hold that host", function()
      local c = upgrade_after_connect("wrong.test", { dns = resolver }, client_context)
      assert.equal(EVBUFFER_ERROR, c.events[2].what)
      assert.matches("hostname mismatch", c.events[2].message, 1, true)
      c.bev:close()
      c.listener:close()
    end)

    it("checks an address given to core.bufferevent.connect against the certificate's addresses", function()
      local c = upgrade_after_connect("127.0.0.1", {}, client_context)
      assert.equal(EVBUFFER_CONNECTED, c.events[2].what)
      assert.is_true(c.bev:tls().verified)
      assert.is_nil(c.server:tls().servername) -- an address is not sent as SNI
      c.bev:close()
      c.listener:close()
    end)

    it("lets options.servername win over the host", function()
      local c = upgrade_after_connect("localhost", { dns = resolver }, client_context, { servername = "wrong.test" })
      assert.equal(EVBUFFER_ERROR, c.events[2].what)
      assert.matches("hostname mismatch", c.events[2].message, 1, true)
      c.bev:close()
      c.listener:close()
    end)

    it("is refused for a verifying context when no host is known", function()
      local a, b = helpers.tcp_pair()
      local bev = core.bufferevent.new(base, a:getfd(), nil, nil, function() end)
      local err = error_of(function() bev:starttls(client_context) end)
      assert.matches("bad argument #2 to 'starttls' %(options%.servername required: the context verifies the server, and no host "
        .. "is known for a bufferevent not made by core%.bufferevent%.connect %(or use a context with verify = \"none\"%)%)$", err)
      assert.is_nil(bev:tls(), "the connection stays plain")
      -- A context that verifies nothing needs no name; a name given is enough for one that does.
      local lenient = core.tls.context { mode = "client", verify = "none" }
      bev:starttls(lenient)
      assert.is_table(bev:tls())
      bev:close()
      local bev2 = core.bufferevent.new(base, b:getfd(), nil, nil, function() end)
      bev2:starttls(client_context, { servername = "localhost" })
      assert.is_table(bev2:tls())
      bev2:close()
      a:close()
      b:close()
    end)

    it("is refused for a verifying context that continues on failure (lsec_continue) too", function()
      local a, b = helpers.tcp_pair()
      local bev = core.bufferevent.new(base, a:getfd(), nil, nil, function() end)
      local continuing = core.tls.context { mode = "client", cafile = certs.ca, verifyext = "lsec_continue" }
      assert.matches("options%.servername required", error_of(function() bev:starttls(continuing) end))
      bev:close()
      a:close()
      b:close()
    end)
  end)

  it("leaves a buffer object closed by hand closed across STARTTLS", function()
    local l, accepted = nil, {}
    l = core.listener.new(base, { host = "127.0.0.1", port = 0 }, function(bev)
      accepted[#accepted + 1] = bev
      bev:set_callbacks(function() end, nil, function() end)
    end)
    local c = core.bufferevent.connect(base, "127.0.0.1", select(2, l:address()), nil, nil, function() end, { timeout = 3 })
    assert.is_true(wait(base, function() return #accepted == 1 end, 3))
    local output = c:get_write()
    output:close()
    c:starttls(client_context, { servername = "localhost" })
    assert.matches("closed buffer", error_of(output.add, output, "x"))
    assert.equal(c:get_write(), output)
    c:close()
    l:close()
  end)

  it("loses no memory when the Lua state closes after a TLS layer was made (libevent_openssl stays loaded)", function()
    -- libevent_openssl keeps a BIO method made by its first filter in a static; unloaded with
    -- the module at lua_close, it would lose it. Only valgrind sees that: a child under it.
    if os.getenv("LUAEVENT_UNDER_VALGRIND") or not os.execute("valgrind --version >/dev/null 2>&1") then
      helpers.skip("needs valgrind (and is not run under it)")
      return
    end
    local interpreter = arg and arg[-1] or "lua"
    local path = os.tmpname()
    local file = assert(io.open(path, "w"))
    file:write(("package.cpath, package.path = %q, %q\n"):format(package.cpath, package.path), [[
      local core = require "luaevent.core"
      local socket = require "socket"
      local server = assert(socket.bind("127.0.0.1", 0))
      local ip, port = server:getsockname()
      local a = assert(socket.connect(ip, port))
      local base = core.new()
      local bev = core.bufferevent.new(base, a:getfd(), nil, nil, function() end)
      bev:starttls(core.tls.context { mode = "server" })
      bev:close()
      io.write("child done\n")
      os.exit(0, true) -- closes the state: the module is unloaded
    ]])
    file:close()
    local pipe = assert(io.popen(("valgrind -q --leak-check=full --show-leak-kinds=definite,indirect %s %s 2>&1")
      :format(interpreter, path)))
    local output = pipe:read("*a")
    pipe:close()
    os.remove(path)
    assert.truthy(output:find("child done", 1, true), output)
    assert.is_nil(output:find("definitely lost", 1, true), output)
  end)

  describe("TLS on the socket itself (options.tls)", function()
    -- Whether descriptor `fd` is open in this process (fdinfo: opening a socket's fd fails).
    local function is_open(fd)
      local f = io.open("/proc/self/fdinfo/" .. fd)
      if f then f:close() end
      return f ~= nil
    end

    it("lets go of the socket once closed inside its own callbacks, after its last bytes and its close notice", function()
      local fds, kept = {}, {}
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
        kept[#kept + 1] = bev -- (closed by hand, not by the collector)
        fds[#fds + 1] = bev:getfd()
        bev:set_callbacks(function(b)
          b:get_write():add("bye:" .. take(b))
          b:close()
        end, nil, function(b, what)
          if what ~= EVBUFFER_CONNECTED then b:close() end
        end)
        bev:enable(EV_READ)
      end)
      local c = client(base, select(2, l:address()), { tls = client_context, timeout = 5 }, "hi")
      assert.is_true(wait(base, function() return has_event(c.events, EVBUFFER_EOF + EVBUFFER_ERROR) ~= nil end, 5))
      local ended = has_event(c.events, EVBUFFER_EOF + EVBUFFER_ERROR)
      assert.equal("bye:hi", c.data, ended.what .. " " .. tostring(ended.message))
      assert.is_false(any_flag(ended.what, EVBUFFER_ERROR), ended.message)
      -- The client's own end: closed in its event callback, right after the handshake.
      local d
      d = client(base, select(2, l:address()), { tls = client_context, timeout = 5 })
      d.bev:set_callbacks(nil, nil, function(b, what)
        d.events[#d.events + 1] = { what = what }
        fds[#fds + 1] = b:getfd()
        b:close()
      end)
      assert.is_true(wait(base, function() return #d.events > 0 end, 5))
      assert.equal(EVBUFFER_CONNECTED, d.events[1].what)
      c.bev:close()
      l:close()
      run(base, 0.05)
      assert.equal(3, #fds)
      for _, fd in ipairs(fds) do assert.is_false(is_open(fd), "fd " .. fd .. " is still open") end
    end)

    it("lets go of the socket of a connection closed during its handshake, or collected", function()
      local fds, count = {}, 0
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
        count = count + 1
        fds[#fds + 1] = bev:getfd()
        if count == 1 then bev:close() end -- the second one is left to the collector
      end)
      local port = select(2, l:address())
      local first = client(base, port, { tls = client_context, timeout = 5 })
      assert.is_true(wait(base, function() return #first.events > 0 end, 5))
      assert.equal(EVBUFFER_ERROR, first.events[1].what)
      local second = client(base, port, { tls = client_context, timeout = 5 })
      assert.is_true(wait(base, function() return count == 2 end, 5))
      helpers.full_gc()
      -- (its handshake may have been done meanwhile: then the collector's close is its end)
      assert.is_true(wait(base, function() return has_event(second.events, EVBUFFER_EOF + EVBUFFER_ERROR) ~= nil end, 5))
      first.bev:close()
      second.bev:close()
      l:close()
      run(base, 0.05)
      assert.equal(2, #fds)
      for _, fd in ipairs(fds) do assert.is_false(is_open(fd), "fd " .. fd .. " is still open") end
    end)
  end)

  describe("the last bytes before a close", function()
    -- A server of the module whose accepted connection runs `on_connected(bev)` once its
    -- handshake is done, and a client that collects what it reads, but reads nothing for the
    -- first 0.3 s (then `paused()` runs): what the server sends waits in the sockets meanwhile.
    -- Returns the client's state once its end of file (or error) has come: `ended` is the
    -- event, `data` all that came.
    local function exchange(on_connected, paused)
      local kept = {}
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
        kept[#kept + 1] = bev
        bev:set_callbacks(function(b) take(b) end, nil, function(b, what)
          if what == EVBUFFER_CONNECTED then on_connected(b) end
        end)
        bev:enable(EV_READ)
      end)
      local state, parts = {}, {}
      state.bev = core.bufferevent.connect(base, "127.0.0.1", select(2, l:address()), function(b)
        parts[#parts + 1] = take(b)
      end, nil, function(b, what)
        if what == EVBUFFER_CONNECTED then
          state.connected = true
          b:disable(EV_READ)
        end
        if any_flag(what, EVBUFFER_EOF + EVBUFFER_ERROR) then state.ended = what end
      end, { tls = client_context, timeout = 5 })
      state.bev:enable(EV_READ)
      assert.is_true(wait(base, function() return state.connected end, 5))
      run(base, 0.3)
      if paused then paused() end
      state.bev:enable(EV_READ)
      assert.is_true(wait(base, function() return state.ended ~= nil end, 10))
      run(base, 0.05) -- anything late comes in meanwhile
      parts[#parts + 1] = take(state.bev)
      state.data = table.concat(parts)
      state.bev:close()
      l:close()
      return state
    end

    it("runs the write callback once the socket has taken the ciphertext: closing there loses nothing", function()
      -- More than the two sockets' buffers hold while the client does not read: what the
      -- server has written has left it (encrypted) long before the socket has taken it all.
      local size = 4 * 1024 * 1024
      local data = ("0123456789abcdef"):rep(size / 16)
      local calls = 0
      local state = exchange(function(b)
        b:set_callbacks(nil, function(w)
          if w:get_write():length() == 0 then
            calls = calls + 1
            w:close()
          end
        end, function() end)
        b:get_write():add(data)
      end, function()
        -- The plain text was all encrypted long ago; the ciphertext has not all gone.
        assert.equal(0, calls)
      end)
      assert.is_true(any_flag(state.ended, EVBUFFER_EOF) and not any_flag(state.ended, EVBUFFER_ERROR), state.ended)
      assert.equal(size, #state.data)
      assert.is_true(state.data == data, "the data differs")
      assert.equal(1, calls)
    end)

    it("a write timeout does not fire once everything is written, idle or after more writes", function()
      local l, port = echo_server(base, server_context)
      local state = { events = {}, data = "" }
      state.bev = core.bufferevent.connect(base, "127.0.0.1", port, function(b)
        state.data = state.data .. take(b)
      end, nil, function(b, what, message)
        state.events[#state.events + 1] = { what = what, message = message }
        if what == EVBUFFER_CONNECTED then
          b:set_timeouts(nil, 0.2)
          b:get_write():add("first")
        end
      end, { tls = client_context, timeout = 5 })
      state.bev:enable(EV_READ)
      assert.is_true(wait(base, function() return state.data == "echo:first" end, 5))
      run(base, 0.5) -- idle for more than twice the timeout
      state.bev:get_write():add("second")
      assert.is_true(wait(base, function() return state.data == "echo:firstecho:second" end, 5))
      run(base, 0.5)
      assert.is_nil(has_event(state.events, EVBUFFER_TIMEOUT + EVBUFFER_EOF + EVBUFFER_ERROR))
      assert.equal(1, #state.events) -- EVBUFFER_CONNECTED only
      state.bev:close()
      l:close()
    end)

    it("times out writing when the peer takes none of the ciphertext (the write timeout covers it)", function()
      local kept, server_event, client_connected = {}, nil, false
      local l = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
        kept[#kept + 1] = bev
        bev:set_callbacks(function(b) take(b) end, nil, function(b, what)
          if what == EVBUFFER_CONNECTED then
            -- Set once the layer has encrypted it all (as luaevent's close does): its output
            -- is empty, the ciphertext waits beneath.
            b:get_write():add(("0123456789abcdef"):rep(4 * 1024 * 1024 / 16))
            b:set_timeouts(nil, 0.2)
          else
            server_event = what
            b:close()
          end
        end)
        bev:enable(EV_READ)
      end)
      local c = core.bufferevent.connect(base, "127.0.0.1", select(2, l:address()), nil, nil, function(b, what)
        if what == EVBUFFER_CONNECTED then
          client_connected = true
          b:disable(EV_READ) -- never reads again
        end
      end, { tls = client_context, timeout = 5 })
      c:enable(EV_READ)
      assert.is_true(wait(base, function() return server_event ~= nil end, 5))
      assert.is_true(client_connected)
      assert.equal(EVBUFFER_TIMEOUT + core.EVBUFFER_WRITE, server_event)
      c:close()
      l:close()
    end)
  end)

  describe("bev:tls", function()
    it("is nil for a plain connection", function()
      local a = helpers.tcp_pair()
      local bev = core.bufferevent.new(base, a:getfd(), nil, nil, function() end)
      assert.is_nil(bev:tls())
      bev:close()
      a:close()
    end)
  end)
end)
