-- luaevent.dial, luaevent.serve and their connections: coroutine networking on the core's own
-- listener and bufferevents. Loopback only, against servers the specs start.
--
-- The wrapper has one base for the whole process, and a listener keeps its loop running, so
-- every spec runs the loop through run() (helpers.wrapper_run): body(finish) sets things up,
-- finish() ends the loop, and a guard timer fails the spec instead of hanging.
-- Code inside coroutines reports failures with check(), a plain string error that loop() raises.
local luaevent = require "luaevent"
local core = require "luaevent.core"
local socket = require "socket"
local DIR = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local helpers = dofile(DIR .. "helpers.lua")
local dns_server = dofile(DIR .. "dns_server.lua")

local HOST = "127.0.0.1"
local GC_STRESS = helpers.GC_STRESS
local GUARD = helpers.GUARD
local LEAVE = core.LEAVE
local check, first_line, closed_port = helpers.check, helpers.first_line, helpers.closed_port
local run, run_loop = helpers.wrapper_run, helpers.wrapper_loop

-- Suspends the running coroutine for `seconds` (a timer resumes it; the timer's callback refers
-- to the timer, which keeps it, and so the coroutine, alive).
local function pause(seconds)
  local co = coroutine.running()
  local timer
  timer = luaevent.addevent(nil, 0, function()
    timer = nil
    local ok, err = coroutine.resume(co)
    if not ok then error(err, 0) end
    return LEAVE
  end, seconds)
  coroutine.yield()
end

-- A server whose handler is `handler`; returns the listener and its port.
local function serve(handler)
  local listener = luaevent.serve({ host = HOST, port = 0 }, handler)
  return listener, select(2, listener:address())
end

local function echo(conn)
  while true do
    local data = conn:receive(1)
    if not data then break end
    check(conn:send(data), "echo send failed")
  end
  conn:close()
end

-- n bytes of a pattern 251 bytes long (a prime: no power-of-two offset hides), shifted by `seed`.
local function payload(n, seed)
  local t = {}
  for i = 1, 251 do t[i] = string.char((i * 7 + (seed or 0)) % 256) end
  return table.concat(t):rep(math.floor(n / 251) + 1):sub(1, n)
end

-- Moves `size` bytes from a server to a client through receive(size), then `tail` bytes through
-- receive("*a"), and returns what the client received (both nil when something failed).
-- listen(handler) starts the server and returns its listener and port; `options` go to dial.
-- The server closes only once the client has said it has the first part: a TLS connection
-- closed while the socket beneath still holds its last records loses them (the core's close
-- is best effort there), so over TLS only a short tail goes through "*a".
local function transfer(listen, options, size, tail)
  local first, rest = payload(size, 7), payload(tail, 8)
  local got = {}
  local listener, port
  run(function(finish)
    listener, port = listen(function(conn)
      check(conn:send(first) == #first, "send of the first part failed")
      check(conn:send(rest) == #rest, "send of the rest failed")
      check(conn:receive("*l") == "ack", "the client's acknowledgement")
      conn:close()
    end)
    luaevent.addthread(function()
      local conn = check(luaevent.dial(HOST, port, options))
      got.first = check(conn:receive(size))
      check(conn:send("ack\n"), "send of the acknowledgement failed")
      got.rest = check(conn:receive("*a"))
      conn:close()
      finish()
    end)
  end, GC_STRESS and GUARD or 60)
  listener:close()
  return got.first == first, got.rest == rest, #(got.first or ""), #(got.rest or "")
end

describe("luaevent.dial and luaevent.serve", function()
  it("echo: the handler gets the connection and the peer's address; dial returns a connection", function()
    local got = {}
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn, host, peer_port)
        got.host, got.port = host, peer_port
        while true do
          local line = conn:receive("*l")
          if not line then break end
          check(conn:send(line:upper() .. "\n") == #line + 1, "send returns the last index")
        end
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        for _, word in ipairs({ "alpha", "beta", "gamma" }) do
          conn:send(word .. "\n")
          got[#got + 1] = conn:receive("*l")
        end
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.same({ "ALPHA", "BETA", "GAMMA" }, { got[1], got[2], got[3] })
    assert.equal(HOST, got.host)
    assert.is_number(got.port)
  end)

  it("serves IPv6 and dials ::1", function()
    local got
    local listener = luaevent.serve({ host = "::1", port = 0 }, echo)
    local _, port = listener:address()
    run(function(finish)
      luaevent.addthread(function()
        local conn = check(luaevent.dial("::1", port))
        conn:send("six\n")
        got = conn:receive("*l")
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.equal("six", got)
  end)

  it("receive: *l ends at LF and drops every CR, keeps empty lines; counts; *a to the end", function()
    local got = {}
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        conn:send("one\r\ntwo\n\r\n\nth\rree\r\n")
        conn:send("0123456789")
        conn:send("rest of\nthe stream")
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        for _ = 1, 5 do got[#got + 1] = conn:receive("*l") end
        got[#got + 1] = conn:receive(3)
        got[#got + 1] = conn:receive(0)
        got[#got + 1] = conn:receive(7, ">")
        got[#got + 1] = conn:receive("*a")
        got[#got + 1] = { conn:receive("*a") }
        got[#got + 1] = { conn:receive("*l") }
        got[#got + 1] = { conn:receive(1) }
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.same({ "one", "two", "", "", "three", "012", "", ">345678", "9rest of\nthe stream",
      { nil, "closed", "" }, { nil, "closed", "" }, { nil, "closed", "" } }, got)
  end)

  it("receive returns what came with the end of the stream as the partial result, before \"closed\"", function()
    local got = {}
    local listener, port
    run(function(finish)
      local phase = 0
      listener, port = serve(function(conn)
        phase = phase + 1
        if phase == 1 then conn:send("no line end\r") end
        if phase == 2 then conn:send("short") end
        if phase == 3 then conn:send("all of it") end
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        got[1] = { conn:receive("*l") }
        conn:close()
        conn = check(luaevent.dial(HOST, port))
        got[2] = { conn:receive(100) }
        got[3] = { conn:receive(100) }
        conn:close()
        conn = check(luaevent.dial(HOST, port))
        got[4] = { conn:receive("*a") }
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.same({ nil, "closed", "no line end" }, got[1])
    assert.same({ nil, "closed", "short" }, got[2])
    assert.same({ nil, "closed", "" }, got[3])
    assert.same({ "all of it" }, got[4])
  end)

  it("large transfers pass the buffers' high-water marks intact: a long line, a count, *a", function()
    local line, block, tail = payload(200000, 1):gsub("[\r\n]", "x"), payload(300000, 2), payload(1000000, 3)
    local got = {}
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        conn:send(line .. "\r\n")
        conn:send(block)
        conn:send(tail)
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        got.line = conn:receive("*l")
        got.block = conn:receive(#block)
        got.tail = conn:receive("*a")
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.is_true(got.line == line, "the line")
    assert.is_true(got.block == block, "the block")
    assert.is_true(got.tail == tail, "the tail")
  end)

  it("4 MB through receive(n) and 4 MB through receive(\"*a\") arrive intact", function()
    local first_intact, rest_intact, first_length, rest_length = transfer(serve, nil, 4 * 1024 * 1024, 4 * 1024 * 1024)
    assert.equal(4 * 1024 * 1024, first_length)
    assert.equal(4 * 1024 * 1024, rest_length)
    assert.is_true(first_intact, "receive(n) changed the bytes")
    assert.is_true(rest_intact, "receive(\"*a\") changed the bytes")
  end)

  -- The sends run without a wait of their own: without back-pressure all of it would pile up in
  -- the output buffer before the loop wrote any.
  it("send waits while the peer lags 64 KiB behind instead of buffering without bound", function()
    local most, sent, received = 0, 0, 0
    local chunk = payload(4096)
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        local output = conn.bev:get_write()
        for _ = 1, 256 do -- 1 MiB
          check(conn:send(chunk), "send failed")
          sent = sent + #chunk
          most = math.max(most, output:length())
        end
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        pause(0.1) -- the server's sends run ahead meanwhile
        local all = check(conn:receive("*a"))
        received = #all
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.equal(1024 * 1024, received)
    assert.equal(1024 * 1024, sent)
    assert.is_true(most <= 64 * 1024 + #chunk, "output buffer grew to " .. most)
  end)

  it("close() still delivers what send buffered", function()
    local data = payload(2000000, 5)
    local got
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        conn.bev:get_write():add(data) -- buffered at once, past send's back-pressure
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        got = conn:receive("*a")
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.is_true(got == data, "received " .. #(got or ""))
  end)

  it("send to a peer that went returns nil, \"closed\"", function()
    local results
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn) conn:close() end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        check(select(2, conn:receive("*l")) == "closed", "the peer closes")
        for _ = 1, 100 do
          results = { conn:send("anyone there?\n") }
          if not results[1] then break end
          pause(0.01)
        end
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.is_nil(results[1])
    assert.equal("closed", results[2])
    assert.is_number(results[3])
  end)

  it("a closed connection answers nil, \"closed\"; close is idempotent; getfd is -1", function()
    local got = {}
    local listener, port
    run(function(finish)
      listener, port = serve(echo)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        got.fd = conn:getfd()
        got.close = conn:close()
        got.again = conn:close()
        got.receive = { conn:receive("*l") }
        got.send = { conn:send("x") }
        got.closed_fd = conn:getfd()
        finish()
      end)
    end)
    listener:close()
    assert.is_true(got.fd > 2)
    assert.equal(1, got.close)
    assert.equal(1, got.again)
    assert.same({ nil, "closed", "" }, got.receive)
    assert.same({ nil, "closed", 0 }, got.send)
    assert.equal(-1, got.closed_fd)
  end)

  it("closing a connection wakes another coroutine waiting on it with \"closed\"", function()
    local got, first
    local listener, port
    run(function(finish)
      -- One send of four bytes: they arrive together, so the reader's first receive takes them all.
      listener, port = serve(function(conn)
        conn:send("part")
        conn:receive("*a")
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        luaevent.addthread(function()
          first = conn:receive(1)
          got = { conn:receive("*l") }
          finish()
        end)
        for _ = 1, 100 * GUARD do -- until the reader holds the bytes (bounded: the guard fires first)
          if first then break end
          pause(0.01)
        end
        conn:close()
      end)
    end)
    listener:close()
    assert.equal("p", first)
    assert.same({ nil, "closed", "art" }, got)
  end)

  it("dials by name through a resolver on the wrapper's base (luaevent.resolver), IPv4 and IPv6", function()
    -- The test DNS server answers on the wrapper's base: give it luaevent.addevent as its base's.
    local server = dns_server.start({ addevent = function(_, ...) return luaevent.addevent(...) end })
    local resolver = luaevent.resolver({ nameservers = { server.address }, hosts = false, timeout = 1 })
    local peers, got = {}, {}
    local v4 = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn, host)
      peers[#peers + 1] = host
      echo(conn)
    end)
    local port = select(2, v4:address())
    local v6 = luaevent.serve({ host = "::1", port = port }, function(conn, host)
      peers[#peers + 1] = host
      echo(conn)
    end)
    run(function(finish)
      luaevent.addthread(function()
        for _, name in ipairs({ "v4.test", "v6.test" }) do
          local conn = check(luaevent.dial(name, port, { dns = resolver }))
          conn:send(name .. "\n")
          got[#got + 1] = conn:receive("*l")
          conn:close()
        end
        got.missing = { luaevent.dial("nowhere.test", port, { dns = resolver }) }
        finish()
      end)
    end)
    v4:close()
    v6:close()
    resolver:close()
    server:close()
    assert.same({ "v4.test", "v6.test" }, { got[1], got[2] })
    assert.same({ "127.0.0.1", "::1" }, peers)
    assert.is_nil(got.missing[1])
    assert.truthy(got.missing[2]:find("nowhere.test", 1, true), got.missing[2])
    assert.is_true(server.queries >= 3)
  end)

  it("luaevent.resolver names its own argument; a resolver of another base is refused by dial", function()
    local ok, err = pcall(luaevent.resolver, { nameserver = {} })
    assert.is_false(ok)
    assert.equal("bad argument #1 to 'resolver' (unknown option 'nameserver')", err)
    local other = core.dns.new(core.new(), { nameservers = { "127.0.0.1:9" }, hosts = false })
    run(function(finish)
      luaevent.addthread(function()
        ok, err = pcall(luaevent.dial, "v4.test", 80, { dns = other })
        finish()
      end)
    end)
    other:close()
    assert.is_false(ok)
    assert.truthy(err:find("^bad argument #3 to 'dial' %(options.dns: the resolver belongs to another event base%)$"), err)
  end)

  it("a second coroutine receiving on the same connection gets an error, the first one its data", function()
    local got = {}
    local listener, port
    run(function(finish)
      listener, port = serve(echo)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        luaevent.addthread(function()
          got.first = conn:receive("*l")
          conn:close()
          finish()
        end)
        got.second = { pcall(conn.receive, conn, "*l") }
        conn:send("for the first\n")
      end)
    end)
    listener:close()
    assert.same({ false, "connection:receive: another coroutine is already waiting on this connection for the same thing" }, got.second)
    assert.equal("for the first", got.first)
  end)

  it("settimeout: receive returns nil, \"timeout\" and the partial data; nil waits again", function()
    local got = {}
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        conn:send("half a li")
        check(conn:receive("*l") == "go on", "the client's go-ahead")
        conn:send("ne\n")
        conn:receive("*a")
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        got.set = conn:settimeout(0.1)
        local started = helpers.now()
        got.first = { conn:receive("*l") }
        got.waited = helpers.now() - started
        conn:settimeout(nil)
        conn:send("go on\n")
        got.second = conn:receive("*l", got.first[3])
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.equal(1, got.set)
    assert.same({ nil, "timeout", "half a li" }, got.first)
    assert.is_true(got.waited >= 0.08 and got.waited < 2, "waited " .. got.waited)
    assert.equal("half a line", got.second)
  end)

  it("a count includes the prefix, as in LuaSocket 3: a timeout's partial data given back completes the request", function()
    local got = {}
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        conn:send("0123")
        check(conn:receive("*l") == "more", "the client's go-ahead")
        conn:send("456789abc")
        conn:receive("*a")
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        conn:settimeout(0.1)
        got.first = { conn:receive(10) }
        conn:settimeout(nil)
        conn:send("more\n")
        got.second = conn:receive(10, got.first[3])
        got.longer = conn:receive(2, "xyz")  -- a prefix as long as the count or longer: no read
        got.equal = conn:receive(0, "")
        got.rest = conn:receive(3)
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.same({ nil, "timeout", "0123" }, got.first)
    assert.equal("0123456789", got.second)
    assert.equal("xyz", got.longer)
    assert.equal("", got.equal)
    assert.equal("abc", got.rest)
  end)

  it("dial to a port nobody listens on returns nil and a message naming the address", function()
    local port = closed_port()
    local got
    run(function(finish)
      luaevent.addthread(function()
        got = { luaevent.dial(HOST, port) }
        finish()
      end)
    end)
    assert.same({ nil, ("could not connect to %s port %d: Connection refused"):format(HOST, port) }, got)
  end)

  it("dial returns nil, \"timeout\" once options.timeout has passed", function()
    -- A listener whose backlog is full and which does not accept: connecting to it stays in
    -- progress (the kernel drops the SYNs). The fillers live on a base of their own.
    local base = core.new()
    local l = core.listener.new(base, { host = HOST, backlog = 1 }, function() end)
    l:disable()
    local port = select(2, l:address())
    local fillers, up = {}, 0
    for i = 1, 3 do
      fillers[i] = core.bufferevent.connect(base, HOST, port, nil, nil, function(_, what)
        if what == core.EVBUFFER_CONNECTED then up = up + 1 end
      end)
    end
    assert.is_true(helpers.wait(base, function() return up >= 2 end, 2))
    helpers.run(base, 0.1)
    local got, waited
    run(function(finish)
      luaevent.addthread(function()
        local started = helpers.now()
        got = { luaevent.dial(HOST, port, { timeout = 0.2 }) }
        waited = helpers.now() - started
        finish()
      end)
    end)
    for _, f in ipairs(fillers) do f:close() end
    l:close()
    assert.same({ nil, "timeout" }, got)
    assert.is_true(waited >= 0.15 and waited < 3, "waited " .. waited)
  end)

  it("dial and waiting methods outside a coroutine raise errors that say so", function()
    local ok, err = pcall(luaevent.dial, HOST, 1)
    assert.is_false(ok)
    assert.equal("luaevent.dial: connecting takes a while, and only a coroutine can wait: call luaevent.dial"
      .. " inside a function run by luaevent.addthread or a luaevent.serve handler", err)
    -- A connection handed to the main program: receive works while data is there, then says so.
    local conn
    local listener, port
    run(function(finish)
      listener, port = serve(function(c)
        c:send("ready\n")
        c:receive("*a")
        c:close()
      end)
      luaevent.addthread(function()
        conn = check(luaevent.dial(HOST, port))
        check(conn:receive(1) == "r", "first byte")
        finish()
      end)
    end)
    assert.equal("eady", conn:receive("*l"))
    ok, err = pcall(conn.receive, conn, "*l")
    assert.is_false(ok)
    assert.equal("connection:receive: no data has come yet, and only a coroutine can wait: call"
      .. " connection:receive inside a function run by luaevent.addthread or a luaevent.serve handler", err)
    conn:close()
    listener:close()
  end)

  it("refuses bad arguments, naming dial's or serve's own argument", function()
    local function err(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      return e
    end
    assert.equal("bad argument #1 to 'dial' (string expected, got nil)", err(luaevent.dial))
    assert.equal("bad argument #2 to 'dial' (number expected, got string)", err(luaevent.dial, HOST, "80"))
    assert.equal("bad argument #3 to 'dial' (table or nil expected, got number)", err(luaevent.dial, HOST, 80, 1))
    local got = {}
    run(function(finish)
      luaevent.addthread(function()
        got[1] = select(2, pcall(luaevent.dial, HOST, 0))
        got[2] = select(2, pcall(luaevent.dial, HOST, 80, { timeot = 1 }))
        finish()
      end)
    end)
    assert.equal("bad argument #2 to 'dial' (port must be 1-65535, got 0)", got[1])
    assert.equal("bad argument #3 to 'dial' (unknown option 'timeot')", got[2])
    local conn
    local listener, lport
    run(function(finish)
      listener, lport = serve(echo)
      luaevent.addthread(function()
        conn = check(luaevent.dial(HOST, lport))
        finish()
      end)
    end)
    assert.equal("bad argument #1 to 'send' (string expected, got table)", err(conn.send, conn, {}))
    assert.equal("bad argument #2 to 'send' (number expected, got string)", err(conn.send, conn, "x", "1"))
    assert.equal("bad argument #3 to 'send' (number expected, got boolean)", err(conn.send, conn, "x", 1, true))
    assert.equal("bad argument #1 to 'receive' (invalid receive pattern)", err(conn.receive, conn, "*x"))
    assert.equal("bad argument #1 to 'receive' (invalid receive pattern)", err(conn.receive, conn, -1))
    assert.equal("bad argument #2 to 'receive' (string or nil expected, got number)", err(conn.receive, conn, 1, 2))
    assert.equal("bad argument #1 to 'settimeout' (number or nil expected, got string)", err(conn.settimeout, conn, "1"))
    conn:close()
    listener:close()
    assert.equal("bad argument #1 to 'serve' (table expected, got nil)", err(luaevent.serve, nil, echo))
    assert.equal("bad argument #2 to 'serve' (function expected, got nil)", err(luaevent.serve, {}))
    assert.truthy(err(luaevent.serve, { prot = 1 }, echo):find("^bad argument #1 to 'serve' %(unknown option 'prot'%)"))
    local busy = luaevent.serve({ host = HOST, port = 0 }, echo)
    local port = select(2, busy:address())
    assert.truthy(err(luaevent.serve, { host = HOST, port = port, reuseaddr = false }, echo)
      :find("^luaevent.serve: could not listen on 127.0.0.1 port " .. port))
    busy:close()
  end)

  it("a handler's error stops loop(), which raises it with the handler's traceback; serving goes on", function()
    local replies = {}
    local listener, port = serve(function(conn)
      local line = conn:receive("*l")
      if line == "fail" then error("the handler failed on purpose") end
      conn:send("fine\n")
      conn:close()
    end)
    local early = luaevent.serve({ host = HOST, port = 0 }, function() error("failed before any wait") end)
    local client = function(port_, line)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port_))
        conn:send(line .. "\n")
        replies[#replies + 1] = conn:receive("*l") or "closed"
        conn:close()
      end)
    end
    local err = run_loop(function() client(port, "fail") end)
    assert.truthy(first_line(err):find("wrapper_net_spec.lua:%d+: the handler failed on purpose$"), err)
    assert.truthy(err:find("stack traceback:", 1, true), err)
    err = run_loop(function() client(select(2, early:address()), "x") end)
    assert.truthy(first_line(err):find("wrapper_net_spec.lua:%d+: failed before any wait$"), err)
    run(function(finish)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        conn:send("ok\n")
        replies[#replies + 1] = conn:receive("*l")
        conn:close()
        finish()
      end)
    end)
    listener:close()
    early:close()
    assert.equal("fine", replies[#replies])
  end)

  it("200 concurrent connections, every byte intact", function()
    local N = GC_STRESS and 20 or 200
    local intact, done = 0, 0
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        local length = tonumber(conn:receive("*l"))
        conn:send(conn:receive(length))
        conn:close()
      end)
      for i = 1, N do
        luaevent.addthread(function()
          local data = payload(5000 + i * 37, i)
          local conn = check(luaevent.dial(HOST, port))
          conn:send(#data .. "\n" .. data)
          if conn:receive("*a") == data then intact = intact + 1 end
          conn:close()
          done = done + 1
          if done == N then finish() end
        end)
      end
    end)
    listener:close()
    assert.equal(N, intact)
  end)

  it("a connection the handler drops is collected, and its socket closed", function()
    local seen = setmetatable({}, { __mode = "k" })
    local got
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        seen[conn] = true
        conn:send("bye\n")
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        check(conn:receive("*l") == "bye", "the greeting")
        pause(0.05)
        helpers.full_gc()
        got = { conn:receive("*l") }
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.is_nil(next(seen))
    assert.same({ nil, "closed", "" }, got)
  end)

  -- Two clients connect at once, so that the listener accepts both in one go: the second
  -- handler collects garbage before the loop has written what the first one sent.
  it("what send buffered still goes out when the handler drops its connection without closing it", function()
    local data = payload(60000, 9)
    local first = setmetatable({}, { __mode = "k" })
    local pending, got, after, second
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        if not next(first) then
          first[conn] = true
          conn:send(data)
        else
          local earlier = next(first)
          pending = earlier and earlier.bev:get_write():length()
          earlier = nil
          helpers.full_gc()
          conn:send("second\n")
        end
      end)
      local done = 0
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        got = conn:receive(#data)
        helpers.full_gc() -- the server's side, all sent, can go now
        after = { conn:receive(1) }
        conn:close()
        done = done + 1
        if done == 2 then finish() end
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        second = conn:receive("*l")
        conn:close()
        done = done + 1
        if done == 2 then finish() end
      end)
    end)
    listener:close()
    assert.equal(#data, pending, "the first handler's bytes were no longer buffered: the spec proves nothing")
    assert.is_true(got == data, "received " .. #(got or ""))
    assert.same({ nil, "closed", "" }, after)
    assert.equal("second", second)
  end)

  it("a waiting connection is not collected, however little else refers to it", function()
    local got
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        local line = conn:receive("*l")
        conn:send(line .. "!\n")
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        luaevent.addthread(function()
          pause(0.05)
          helpers.full_gc()
          pause(0.05)
          conn:send("still here\n")
        end)
        got = conn:receive("*l")
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.equal("still here!", got)
  end)

  it("the wrapper keeps the listener until listener:close(), then lets it go", function()
    local weak = setmetatable({}, { __mode = "k" })
    local got
    local port
    do
      local listener = luaevent.serve({ host = HOST, port = 0 }, echo)
      port = select(2, listener:address())
      weak[listener] = true
    end
    helpers.full_gc()
    assert.is_not_nil(next(weak))
    run(function(finish)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        conn:send("x")
        got = conn:receive(1)
        conn:close()
        finish()
      end)
    end)
    assert.equal("x", got)
    next(weak):close()
    luaevent.serve({ host = HOST, port = 0 }, echo):close() -- the wrapper looks at its listeners here
    helpers.full_gc()
    assert.is_nil(next(weak))
  end)

  it("a coroutine can wait on LuaSocket sockets and connections in turn", function()
    local got = {}
    local listener, port
    local server = assert(socket.bind(HOST, 0))
    local _, sport = server:getsockname()
    local a = assert(socket.connect(HOST, sport))
    local b = assert(server:accept())
    server:close()
    a:settimeout(0)
    run(function(finish)
      listener, port = serve(function(conn)
        for _ = 1, 2 do
          local line = conn:receive("*l")
          pause(0.02)
          b:send(line .. " via socket\n")
          conn:send(line .. " via connection\n")
        end
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        for _, word in ipairs({ "one", "two" }) do
          conn:send(word .. "\n")
          got[#got + 1] = luaevent.receive(a, "*l")
          got[#got + 1] = conn:receive("*l")
        end
        conn:close()
        finish()
      end)
    end)
    listener:close()
    a:close()
    b:close()
    assert.same({ "one via socket", "one via connection", "two via socket", "two via connection" }, got)
  end)

  it("exposes the bufferevent as conn.bev", function()
    local same
    local listener, port
    run(function(finish)
      listener, port = serve(echo)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        same = conn.bev:getfd() == conn:getfd() and conn.bev.get_read ~= nil
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.is_true(same)
  end)

end)

describe("luaevent.dial, luaevent.serve and connections over TLS", function()
  local certs, server_context, self_context, client_context
  setup(function()
    certs = dofile(DIR .. "certs.lua")()
    server_context = core.tls.context({ mode = "server", certificate = certs.server, key = certs.key })
    self_context = core.tls.context({ mode = "server", certificate = certs.self, key = certs.self_key })
    client_context = core.tls.context({ mode = "client", cafile = certs.ca })
  end)
  teardown(function()
    certs.remove()
  end)

  local function serve_tls(context, handler)
    local listener = luaevent.serve({ host = HOST, port = 0, tls = context }, handler)
    return listener, select(2, listener:address())
  end

  it("a handler that sends more than one TLS record, then closes, loses none of it (16400, 50000, 100000 bytes)", function()
    -- The TLS layer empties its output buffer as it encrypts; the ciphertext still waits beneath
    -- it. close() flushes in the background until the write callback says all has gone out.
    for _, size in ipairs({ 16400, 50000, 100000 }) do
      local data = payload(size, 7)
      local got, err, partial
      local listener, port
      run(function(finish)
        listener, port = serve_tls(server_context, function(conn)
          check(conn:send(data) == #data, "send failed")
          conn:close()
        end)
        luaevent.addthread(function()
          local conn = check(luaevent.dial(HOST, port, { tls = client_context, servername = "localhost" }))
          got, err, partial = conn:receive("*a")
          conn:close()
          finish()
        end)
      end)
      listener:close()
      assert.equal(size, #(got or partial), tostring(err))
      assert.is_true(got == data, "the data differs")
    end
  end)

  it("dial with options.tls against serve with options.tls: every byte echoed intact; tls() on both ends", function()
    -- The server echoes in blocks of 1000 bytes (the data is a whole number of them): byte by
    -- byte, each byte a TLS record of its own, 40 kB took a minute of CPU under stop-the-world
    -- GC and hit the guard on a loaded machine; in blocks, 300 kB take seconds there.
    local data = payload(300000, 5)
    local got, client_tls, server_tls = nil, nil, nil
    local listener, port
    run(function(finish)
      listener, port = serve_tls(server_context, function(conn)
        server_tls = conn:tls()
        while true do
          local block, _, partial = conn:receive(1000)
          if (block or partial) ~= "" then check(conn:send(block or partial), "echo send failed") end
          if not block then break end
        end
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port, { tls = client_context, servername = "localhost" }))
        client_tls = conn:tls()
        luaevent.addthread(function()
          check(conn:send(data) == #data, "send failed")
        end)
        got = conn:receive(#data)
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.equal(#data, #got)
    assert.is_true(got == data, "the echo differs")
    assert.equal("TLSv1.3", client_tls.protocol)
    assert.is_true(client_tls.verified)
    assert.equal("CN=localhost", client_tls.peer.subject)
    assert.equal("localhost", client_tls.servername)
    assert.equal("TLSv1.3", server_tls.protocol)
    assert.equal("localhost", server_tls.servername)
  end)

  it("4 MB through receive(n) and a tail through receive(\"*a\") arrive intact over TLS", function()
    local first_intact, rest_intact, first_length, rest_length = transfer(function(handler)
      return serve_tls(server_context, handler)
    end, { tls = client_context, servername = "localhost" }, 4 * 1024 * 1024, 1000)
    assert.equal(4 * 1024 * 1024, first_length)
    assert.equal(1000, rest_length)
    assert.is_true(first_intact, "receive(n) changed the bytes")
    assert.is_true(rest_intact, "receive(\"*a\") changed the bytes")
  end)

  it("dial verifies by default: a self-signed server gives nil and OpenSSL's reason, and its handler never starts", function()
    local result, handlers = nil, 0
    local listener, port
    run(function(finish)
      listener, port = serve_tls(self_context, function(conn)
        handlers = handlers + 1
        conn:close()
      end)
      luaevent.addthread(function()
        result = { luaevent.dial(HOST, port, { tls = core.tls.context({ mode = "client" }), servername = "localhost" }) }
        pause(0.1) -- time for the server to hear of the failure
        finish()
      end)
    end)
    listener:close()
    assert.is_nil(result[1])
    assert.matches("certificate verify failed", result[2], 1, true)
    assert.equal(0, handlers)
  end)

  it("dial with verify = \"none\" accepts the self-signed server; tls() says it is not verified", function()
    local tls, line
    local listener, port
    run(function(finish)
      listener, port = serve_tls(self_context, function(conn)
        conn:send("hello\n")
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port, { tls = core.tls.context({ mode = "client", verify = "none" }) }))
        tls = conn:tls()
        line = conn:receive("*l")
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.equal("hello", line)
    assert.is_false(tls.verified)
    assert.is_string(tls.verify_error)
  end)

  it("a client that fails the handshake never reaches the handler, and its connection is closed", function()
    local handlers, got = 0, nil
    local listener, port
    run(function(finish)
      listener, port = serve_tls(server_context, function(conn)
        handlers = handlers + 1
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port)) -- plain: the server reads no ClientHello
        conn:send("HELO example.org\r\n")
        got = { conn:receive("*a") }
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.equal(0, handlers)
    assert.is_nil(got[1])
    assert.equal("closed", got[2])
  end)

  it("a client that never completes its handshake is closed after options.handshake_timeout, unseen by handlers", function()
    local handlers, got, elapsed = 0, nil, nil
    local listener
    run(function(finish)
      listener = luaevent.serve({ host = HOST, port = 0, tls = server_context, handshake_timeout = 0.2 }, function(conn)
        handlers = handlers + 1
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(listener:address())) -- plain, and silent
        local started = socket.gettime()
        got = { conn:receive("*a") }
        elapsed = socket.gettime() - started
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.equal(0, handlers)
    assert.same({ nil, "closed", "" }, got)
    assert.is_true(elapsed >= 0.1 and elapsed < 5, "closed after " .. tostring(elapsed) .. " s")
  end)

  it("serve refuses a handshake_timeout that is not a positive number, and passes the others on", function()
    local bad = select(2, pcall(luaevent.serve, { host = HOST, port = 0, handshake_timeout = "soon" }, echo))
    local zero = select(2, pcall(luaevent.serve, { host = HOST, port = 0, handshake_timeout = 0 }, echo))
    local unknown = select(2, pcall(luaevent.serve, { host = HOST, port = 0, handshake_timeout = 1, bogus = 1 }, echo))
    assert.equal("bad argument #1 to 'serve' (options.handshake_timeout: positive number expected, got string)", bad)
    assert.equal("bad argument #1 to 'serve' (options.handshake_timeout: positive number expected, got 0)", zero)
    assert.matches("^bad argument #1 to 'serve' %(unknown option 'bogus'%)", unknown)
  end)

  it("STARTTLS in the middle of a line-based conversation: lines before in plain, after over TLS", function()
    local client_lines, server_lines = {}, {}
    local results = {}
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        while true do
          local line = conn:receive("*l")
          if not line then break end
          server_lines[#server_lines + 1] = line .. (conn:tls() and " (tls)" or " (plain)")
          if line == "STARTTLS" then
            conn:send("GO\n")
            results.server = { conn:starttls(server_context) }
          else
            conn:send(line:upper() .. "\n")
          end
        end
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        for _, line in ipairs({ "one", "two", "STARTTLS", "three", "four" }) do
          check(conn:send(line .. "\n"), "send failed")
          local answer = conn:receive("*l")
          client_lines[#client_lines + 1] = answer
          if line == "STARTTLS" then
            results.client = { conn:starttls(client_context, { servername = "localhost" }) }
            results.tls = conn:tls()
          end
        end
        conn:close()
        pause(0.05)
        finish()
      end)
    end)
    listener:close()
    assert.same({ "ONE", "TWO", "GO", "THREE", "FOUR" }, client_lines)
    assert.same({ "one (plain)", "two (plain)", "STARTTLS (plain)", "three (tls)", "four (tls)" }, server_lines)
    assert.same({ true }, results.client)
    assert.same({ true }, results.server)
    assert.is_true(results.tls.verified)
    assert.equal("localhost", results.tls.servername)
  end)

  it("a client starttls without servername checks the host dial was given; a served connection has none to check", function()
    local results = {}
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        if conn:receive("*l") == "STARTTLS" then
          results.refused = select(2, pcall(conn.starttls, conn, client_context))
          conn:send("GO\n")
          results.server = { conn:starttls(server_context) }
          conn:send("over TLS\n")
        end
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        check(conn:send("STARTTLS\n"))
        results.go = conn:receive("*l")
        results.client = { conn:starttls(client_context) }
        results.tls = conn:tls()
        results.line = conn:receive("*l")
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.matches("^bad argument #2 to 'starttls' %(options%.servername required: the context verifies the server", results.refused)
    assert.equal("GO", results.go)
    assert.same({ true }, results.server)
    assert.same({ true }, results.client)
    assert.is_true(results.tls.verified, "127.0.0.1 is in the certificate")
    assert.equal("over TLS", results.line)
  end)

  it("starttls refuses while bytes the peer sent after STARTTLS are unread: they are never read as TLS data", function()
    local server_result, server_next, client_got
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        local line = conn:receive("*l")
        check(line == "STARTTLS", "expected STARTTLS, got " .. tostring(line))
        server_result = { conn:starttls(server_context) }
        server_next = { conn:tls() }
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        conn:send("STARTTLS\nMAIL FROM:<injected@example.org>\r\n")
        client_got = { conn:receive("*a") }
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.same({ nil, "connection:starttls: bytes received before the handshake are still unread" }, server_result)
    assert.same({}, server_next) -- still plain: tls() is nil
    assert.same({ nil, "closed", "" }, client_got)
  end)

  it("starttls returns nil, \"timeout\" when the peer does not handshake within settimeout's seconds", function()
    local result
    local listener, port
    run(function(finish)
      listener, port = serve(function(conn)
        conn:receive("*a")
        conn:close()
      end)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        conn:settimeout(0.2)
        result = { conn:starttls(core.tls.context({ mode = "server", certificate = certs.server, key = certs.key })) }
        conn:close()
        finish()
      end)
    end)
    listener:close()
    assert.same({ nil, "timeout" }, result)
  end)

  it("tls() is nil for a plain connection, nil, \"closed\" once closed; starttls on a closed one is nil, \"closed\"", function()
    local got = {}
    local listener, port
    run(function(finish)
      listener, port = serve(echo)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port))
        got.plain = { conn:tls() }
        conn:close()
        got.closed = { conn:tls() }
        got.starttls = { conn:starttls(client_context) }
        finish()
      end)
    end)
    listener:close()
    assert.same({ nil }, got.plain)
    assert.equal(0, #got.plain)
    assert.same({ nil, "closed" }, got.closed)
    assert.same({ nil, "closed" }, got.starttls)
  end)

  it("starttls names its own arguments, refuses a second upgrade, and raises outside a coroutine", function()
    local errors = {}
    local listener, port
    run(function(finish)
      listener, port = serve_tls(server_context, echo)
      luaevent.addthread(function()
        local conn = check(luaevent.dial(HOST, port, { tls = client_context, servername = "localhost" }))
        errors.context = select(2, pcall(conn.starttls, conn, "nope"))
        errors.options = select(2, pcall(conn.starttls, conn, client_context, { bogus = 1 }))
        errors.again = select(2, pcall(conn.starttls, conn, client_context))
        -- Kept: an event nothing refers to is collected (and never fires).
        errors.timer = luaevent.addevent(nil, 0, function()
          errors.outside = select(2, pcall(conn.starttls, conn, client_context))
          conn:close()
          finish()
          return LEAVE
        end, 0)
      end)
    end)
    listener:close()
    assert.matches("^bad argument #1 to 'starttls' %(TLS context expected, got string%)", errors.context)
    assert.matches("^bad argument #2 to 'starttls' %(unknown option 'bogus'%)", errors.options)
    assert.equal("connection:starttls: the connection already uses TLS", errors.again)
    assert.matches("^connection:starttls: the handshake takes a while, and only a coroutine can wait", errors.outside)
  end)
end)
