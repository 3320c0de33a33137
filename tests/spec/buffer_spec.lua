-- core.buffer: the evbuffer binding. Contents, windows, lines, draining,
-- socket I/O, binary safety, closing, and how misuse is reported.
--
-- Specs tagged #cbug hold only on our module: the C module (Debian's
-- lua-event) gets them wrong or would crash; `--exclude-tags=cbug` runs the
-- rest against it.
--
-- Method calls that are expected to fail are never written as tail calls
-- (`return buf:m()`): a tail call loses the frame that names the method in
-- "bad argument #N to 'm'" (LuaJIT then says '?').
local core = require "luaevent.core"
local socket = require "socket"
-- The helpers shared by the spec files, found beside this one.
local helpers = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "") .. "helpers.lua")
local error_of = helpers.error_of

-- A Lua-style argument error: "bad argument #n to 'name' (...)".
local function assert_arg_error(err, n, name)
  assert.equal("string", type(err), "error is a " .. type(err))
  assert.truthy(err:find("bad argument #" .. n .. " to '" .. name .. "' (", 1, true), err)
end

-- A buffer holding the concatenation of the arguments.
local function buffer_of(...)
  local buf = core.buffer.new()
  if select("#", ...) > 0 then buf:add(...) end
  return buf
end

-- Every byte value once, in order.
local ALL_BYTES
do
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  ALL_BYTES = table.concat(t)
end

-- A connected loopback TCP pair of LuaSocket sockets, blocking in LuaSocket's own calls (the
-- fds stay non-blocking, as LuaSocket keeps every socket). Closed by `finally`.
local function tcp_pair()
  local client, peer = helpers.tcp_pair()
  client:settimeout(nil)
  peer:settimeout(nil)
  finally(function()
    client:close()
    peer:close()
  end)
  return client, peer
end

-- A LuaSocket socket that had a real fd and is closed now (getfd() is -1).
-- Note: a fresh socket.tcp() has no fd yet (LuaSocket 3 creates it lazily).
local function closed_socket()
  local client, peer = tcp_pair()
  assert.truthy(client:getfd() >= 0)
  client:close()
  assert.equal(-1, client:getfd())
  return client
end

-- The number of an fd that was open and is closed now. Nothing opens files
-- between this and its use, so the number is not reused meanwhile.
local function closed_fd()
  local client = tcp_pair()
  local fd = client:getfd()
  assert.truthy(fd >= 0)
  client:close()
  return fd
end

-- Waits (at most 2 s) until `sock` is readable.
local function wait_readable(sock)
  local ready = socket.select({ sock }, nil, 2)
  assert.truthy(ready and ready[1] == sock, "socket never became readable")
end

-- Reads exactly n bytes from a LuaSocket socket.
local function receive_exactly(sock, n)
  sock:settimeout(2)
  local data, err, partial = sock:receive(n)
  assert.is_string(data, "receive failed: " .. tostring(err) .. " after " .. #(partial or ""))
  return data
end

describe("core.buffer", function()
  describe("new()", function()
    it("gives an empty buffer userdata, a distinct one each time", function()
      local a, b = core.buffer.new(), core.buffer.new()
      assert.equal("userdata", type(a))
      assert.are_not.equal(a, b)
      assert.equal(0, a:length())
      assert.equal(0, #a)
      assert.equal("", a:get_data())
      assert.equal("", tostring(a))
    end)
  end)

  describe("add()", function()
    it("appends strings and returns the bytes added", function()
      local buf = core.buffer.new()
      assert.equal(5, buf:add("Hello"))
      assert.equal(6, buf:add(" world"))
      assert.equal("Hello world", buf:get_data())
      assert.equal(11, buf:length())
    end)

    it("appends several arguments in order and returns their total", function()
      local buf = buffer_of("<")
      local other = buffer_of("[moved]")
      assert.equal(13, buf:add("ab", 12, other, "cd"))
      assert.equal("<ab12[moved]cd", buf:get_data())
    end)

    it("counts an empty string as 0 bytes", function()
      local buf = buffer_of("x")
      assert.equal(0, buf:add(""))
      assert.equal(0, buf:add("", ""))
      assert.equal("x", buf:get_data())
    end)

    it("formats numbers as tostring does", function()
      local values = { 0, 3, -7, 100, 1.5, -2.25, 1 / 3, 1e100, 2 ^ 53, 1e15, 1 / 0, -1 / 0, 0 / 0 }
      if math.type then
        local more = { 3.0, -0.0, 2 ^ 63, math.maxinteger, math.mininteger }
        for _, v in ipairs(more) do values[#values + 1] = v end
      end
      for _, v in ipairs(values) do
        local buf = core.buffer.new()
        local s = tostring(v)
        assert.equal(#s, buf:add(v))
        assert.equal(s, buf:get_data())
      end
    end)

    if _VERSION == "Lua 5.5" then
      it("writes floats with as many digits as read back the same number, as Lua 5.5 does", function()
        -- 5.4 wrote 14 significant digits (1/3 as 0.33333333333333); 5.5 adds digits as needed.
        local values = { 1 / 3, 0.1, 2 / 3, 1e-300 / 3, 123456789.123456789 }
        for _, v in ipairs(values) do
          local buf = core.buffer.new()
          buf:add(v)
          assert.equal(v, tonumber(buf:get_data()))
        end
        local buf = core.buffer.new()
        buf:add(1 / 3)
        assert.equal("0.33333333333333331", buf:get_data())
      end)
    end

    it("formats integers without a fraction and, on 5.3+, floats with one", function()
      local buf = core.buffer.new()
      buf:add(3, " ", 3.5, " ", -12)
      assert.equal("3 3.5 -12", buf:get_data())
      if math.type then
        local f = core.buffer.new()
        assert.equal(3, f:add(3.0))
        assert.equal("3.0", f:get_data())
      end
    end)

    it("keeps numeric-looking strings as they are", function()
      local buf = core.buffer.new()
      buf:add("0x10", "1e2", " 5 ")
      assert.equal("0x101e2 5 ", buf:get_data())
    end)

    it("moves the bytes of another buffer, leaving it empty and usable", function()
      local buf = buffer_of("a")
      local src = buffer_of("bcd")
      assert.equal(3, buf:add(src))
      assert.equal("abcd", buf:get_data())
      assert.equal(0, src:length())
      assert.equal("", src:get_data())
      -- The source is still a working buffer.
      assert.equal(2, src:add("ef"))
      assert.equal("ef", src:get_data())
      -- Moving an empty buffer adds nothing.
      local empty = core.buffer.new()
      assert.equal(0, buf:add(empty))
      assert.equal("abcd", buf:get_data())
    end)

    describe("is an error that adds nothing at all", function()
      -- table.unpack with an explicit length, so trailing nils count.
      local function unpack_args(t)
        return (table.unpack or unpack)(t, 1, t.n)
      end

      -- Each case builds the argument list (a bad argument among valid
      -- ones) and names the bad one's position as Lua reports it for a
      -- method call; the target and the source buffer must come out
      -- unchanged.
      local function check_atomic(make_args, arg_no, message)
        local buf = buffer_of("keep")
        local src = buffer_of("source")
        local args = make_args(buf, src)
        local err = error_of(function()
          local r = buf:add(unpack_args(args))
        end)
        assert.equal("string", type(err), "add did not fail")
        if arg_no then assert_arg_error(err, arg_no, "add") end
        if message then assert.truthy(err:lower():find(message, 1, true), err) end
        assert.equal("keep", buf:get_data())
        assert.equal(4, buf:length())
        assert.equal("source", src:get_data())
      end

      local cases = {
        { "a table", function(_, src) return { n = 3, "x", src, {} } end, 3 },
        { "true", function(_, src) return { n = 3, "x", src, true } end, 3 },
        { "false", function(_, src) return { n = 2, src, false } end, 2 },
        { "nil between valid arguments", function(_, src) return { n = 3, "x", nil, src } end, 2 },
        { "a trailing nil", function(_, src) return { n = 3, src, "x", nil } end, 3 },
        { "a function", function(_, src) return { n = 3, src, 1, function() end } end, 3 },
        { "a coroutine", function(_, src) return { n = 2, src, coroutine.create(function() end) } end, 2 },
        { "a foreign userdata (a file)", function(_, src) return { n = 2, src, io.stdout } end, 2 },
        { "an event base", function(_, src) return { n = 2, src, core.new() } end, 2 },
      }
      for _, case in ipairs(cases) do
        it("with " .. case[1] .. " among valid arguments", function()
          check_atomic(case[2], case[3])
        end)
      end

      it("with the buffer itself", function()
        check_atomic(function(buf) return { n = 1, buf } end, 1)
      end)

      it("with the buffer itself after valid arguments", function()
        check_atomic(function(buf, src) return { n = 3, "x", src, buf } end, 3)
      end)

      it("with no arguments", function()
        local buf = buffer_of("keep")
        local err = error_of(function() local r = buf:add() end)
        assert.equal("string", type(err))
        assert.equal("keep", buf:get_data())
      end)

      it("with no arguments, reported as a Lua argument error #cbug", function()
        -- C: "Not enough arguments to add: expects at least 1 additional operand".
        local buf = buffer_of("keep")
        local err = error_of(function() local r = buf:add() end)
        assert.truthy(type(err) == "string" and err:match("bad argument #%d to 'add' %(.+%)"), err)
        assert.equal("keep", buf:get_data())
      end)

      it("with a closed buffer among valid arguments #cbug", function()
        -- C adds the arguments before the closed buffer, then raises.
        local closed = buffer_of("gone")
        closed:close()
        check_atomic(function(_, src) return { n = 3, "x", src, closed } end, 3, "closed")
      end)
    end)
  end)

  describe("length() and #", function()
    it("count the bytes held as they change", function()
      local buf = core.buffer.new()
      assert.equal(0, buf:length())
      buf:add("12345")
      assert.equal(5, buf:length())
      assert.equal(5, #buf)
      buf:add(ALL_BYTES)
      assert.equal(261, buf:length())
      assert.equal(261, #buf)
      buf:drain(200)
      assert.equal(61, buf:length())
      assert.equal(61, #buf)
    end)

    it("are integers", function()
      local buf = buffer_of("abc")
      -- tostring shows "3", never "3.0", on every interpreter.
      assert.equal("3", tostring(buf:length()))
      assert.equal("3", tostring(#buf))
      assert.equal("1", tostring(buf:add("d")))
      if math.type then
        assert.equal("integer", math.type(buf:length()))
        assert.equal("integer", math.type(#buf))
      end
    end)
  end)

  describe("get_data()", function()
    local buf
    before_each(function()
      buf = buffer_of("123456789")
    end)

    it("without arguments copies everything, as tostring does", function()
      assert.equal("123456789", buf:get_data())
      assert.equal("123456789", tostring(buf))
    end)

    it("never consumes", function()
      buf:get_data()
      buf:get_data(3)
      buf:get_data(2, 3)
      tostring(buf)
      assert.equal(9, buf:length())
      assert.equal("123456789", buf:get_data())
    end)

    it("(len) gives the first len bytes", function()
      assert.equal("1234", buf:get_data(4))
      assert.equal("1", buf:get_data(1))
      assert.equal("", buf:get_data(0))
      assert.equal("123456789", buf:get_data(9))
    end)

    it("(len) clamps len past the end", function()
      assert.equal("123456789", buf:get_data(10))
      assert.equal("123456789", buf:get_data(100000000))
    end)

    it("(len) with a negative len gives everything", function()
      -- Not spelled out in API.md; the C module does this (and it matches
      -- the two-argument rule "negative len means to the end").
      assert.equal("123456789", buf:get_data(-1))
      assert.equal("123456789", buf:get_data(-100))
    end)

    it("(begin, len) takes 1-based positions", function()
      assert.equal("1234", buf:get_data(1, 4))
      assert.equal("5678", buf:get_data(5, 4))
      assert.equal("5", buf:get_data(5, 1))
      assert.equal("9", buf:get_data(9, 1))
      assert.equal("", buf:get_data(1, 0))
      assert.equal("", buf:get_data(5, 0))
    end)

    it("(begin, len) counts a negative begin from the end", function()
      assert.equal("9", buf:get_data(-1, 1))
      assert.equal("89", buf:get_data(-2, 2))
      assert.equal("78", buf:get_data(-3, 2))
      assert.equal("123", buf:get_data(-9, 3))
    end)

    it("(begin, len) with a negative len goes to the end", function()
      assert.equal("56789", buf:get_data(5, -1))
      assert.equal("56789", buf:get_data(5, -100))
      assert.equal("789", buf:get_data(-3, -1))
      assert.equal("123456789", buf:get_data(1, -1))
    end)

    it("(begin, len) clamps len past the end", function()
      assert.equal("56789", buf:get_data(5, 5))
      assert.equal("56789", buf:get_data(5, 100000000))
      assert.equal("89", buf:get_data(-2, 5))
      assert.equal("9", buf:get_data(9, 3))
    end)

    it("(begin, len) gives nothing for a begin past the end", function()
      assert.equal("", buf:get_data(10, 3))
      assert.equal("", buf:get_data(100, 5))
      assert.equal("", buf:get_data(100, -1))
    end)

    it("on an empty buffer gives an empty string for every window", function()
      local empty = core.buffer.new()
      assert.equal("", empty:get_data())
      assert.equal("", empty:get_data(5))
      assert.equal("", empty:get_data(-1))
      assert.equal("", empty:get_data(1, 5))
      assert.equal("", empty:get_data(-1, 1))
      assert.equal("", empty:get_data(1, -1))
    end)

    if math.maxinteger then
      it("takes the largest integers as 'everything' (5.3+)", function()
        assert.equal("123456789", buf:get_data(math.maxinteger))
        assert.equal("123456789", buf:get_data(1, math.maxinteger))
        assert.equal("3456789", buf:get_data(3, math.maxinteger))
      end)
    end

    it("clamps a begin before the start #cbug", function()
      -- C: a begin that is still negative after counting from the end
      -- gives "" (its unsigned comparison moves it past the end).
      assert.equal("123", buf:get_data(-10, 3))
      assert.equal("12", buf:get_data(-100, 2))
      assert.equal("123456789", buf:get_data(-100, -1))
      if math.mininteger then
        assert.equal("12", buf:get_data(math.mininteger, 2))
      end
    end)

    it("clamps a begin of 0 to the start #cbug", function()
      -- C: begin 0 becomes offset -1, compared unsigned, so "".
      assert.equal("123", buf:get_data(0, 3))
      assert.equal("123456789", buf:get_data(0, -1))
    end)

    it("does not wrap lengths and positions beyond 32 bits #cbug", function()
      -- C stores them in an int: 2^32 becomes 0, 2^32 + 1 becomes 1.
      assert.equal("123456789", buf:get_data(4294967296))
      assert.equal("123456789", buf:get_data(1, 4294967296))
      assert.equal("", buf:get_data(4294967297, 2))
    end)

    it("raises Lua-style argument errors for non-numbers", function()
      local err = error_of(function() local r = buf:get_data("x") end)
      assert_arg_error(err, 1, "get_data")
      err = error_of(function() local r = buf:get_data(1, "x") end)
      assert_arg_error(err, 2, "get_data")
      err = error_of(function() local r = buf:get_data({}, 1) end)
      assert_arg_error(err, 1, "get_data")
      assert.equal("123456789", buf:get_data())
    end)
  end)

  describe("readline()", function()
    -- libevent's EVBUFFER_EOL_ANY, checked against the C module on every
    -- interpreter: a line ends at the first \r or \n; that byte and every \r
    -- or \n directly after it (as far as the buffer holds them now) are
    -- consumed with the line. Consequences:
    --   * blank lines inside a run are swallowed: "a\r\n\r\nb" gives "a",
    --     then nil (the "b" waits for its own line end);
    --   * a buffer that starts with a run gives one "" for the whole run;
    --   * a run split across two arrivals ("a\r", later "\nb\n") gives "a",
    --     then "" for the late "\n", then "b".
    -- Without a line end it returns nil and leaves the data in place.
    local buf
    before_each(function()
      buf = core.buffer.new()
    end)

    -- Up to `max` readline results (stops at the first nil).
    local function lines(b, max)
      local out = {}
      for _ = 1, max or 20 do
        local line = b:readline()
        if line == nil then break end
        out[#out + 1] = line
      end
      return out
    end

    it("splits on \\n and consumes what it returns", function()
      buf:add("one\ntwo\nthree")
      assert.equal("one", buf:readline())
      assert.equal("two\nthree", buf:get_data())
      assert.equal("two", buf:readline())
      assert.is_nil(buf:readline())
      assert.equal("three", buf:get_data())
    end)

    it("treats \\r, \\n, \\r\\n, \\n\\r and longer runs alike", function()
      buf:add("1\r2\n3\r\n4\n\r5\r\r6\n\n7\r\n\r8\r\n\r9")
      assert.same({ "1", "2", "3", "4", "5", "6", "7", "8" }, lines(buf))
      assert.equal("9", buf:get_data())
    end)

    it("swallows blank lines inside a run of line ends", function()
      buf:add("a\r\n\r\nb")
      assert.equal("a", buf:readline())
      assert.is_nil(buf:readline())
      assert.equal("b", buf:get_data())
      buf:add("\n")
      assert.equal("b", buf:readline())
      assert.equal(0, buf:length())
    end)

    it("gives one empty line for a run at the start", function()
      buf:add("\r\n\r\nabc\n")
      assert.equal("", buf:readline())
      assert.equal("abc\n", buf:get_data())
      assert.equal("abc", buf:readline())
      assert.is_nil(buf:readline())
    end)

    it("gives an empty line for a run split across arrivals", function()
      buf:add("a\r")
      assert.equal("a", buf:readline())
      assert.equal(0, buf:length())
      buf:add("\nb\n")
      assert.equal("", buf:readline())
      assert.equal("b", buf:readline())
      assert.is_nil(buf:readline())
    end)

    it("returns nil and leaves the data when no line end is there yet", function()
      buf:add("partial")
      assert.is_nil(buf:readline())
      assert.equal("partial", buf:get_data())
      assert.equal(7, buf:length())
      buf:add(" line\nnext")
      assert.equal("partial line", buf:readline())
      assert.equal("next", buf:get_data())
    end)

    it("returns nil on an empty buffer", function()
      assert.is_nil(buf:readline())
      assert.equal(0, buf:length())
    end)

    it("keeps every byte other than \\r, \\n and NUL in the line", function()
      local bytes = ALL_BYTES:gsub("[%z\r\n]", "")
      assert.equal(253, #bytes)
      buf:add(bytes, "\r\n", bytes, "\n")
      assert.equal(bytes, buf:readline())
      assert.equal(bytes, buf:readline())
      assert.equal(0, buf:length())
    end)

    it("keeps NULs inside a line #cbug", function()
      -- C pushes the line with lua_pushstring: it ends at the first NUL.
      buf:add("a\0b\0\nc\0\n")
      assert.equal("a\0b\0", buf:readline())
      assert.equal("c\0", buf:readline())
      assert.equal(0, buf:length())
    end)
  end)

  describe("drain()", function()
    local buf
    before_each(function()
      buf = buffer_of("123456789")
    end)

    it("removes the first n bytes", function()
      buf:drain(1)
      assert.equal("23456789", buf:get_data())
      buf:drain(4)
      assert.equal("6789", buf:get_data())
      buf:drain(0)
      assert.equal("6789", buf:get_data())
      buf:drain(4)
      assert.equal("", buf:get_data())
      assert.equal(0, buf:length())
    end)

    it("removes everything when n is past the end", function()
      buf:drain(10)
      assert.equal(0, buf:length())
      buf:add("abc")
      buf:drain(100000000)
      assert.equal(0, buf:length())
      assert.equal("", buf:get_data())
    end)

    it("removes everything when n is negative", function()
      buf:drain(-1)
      assert.equal(0, buf:length())
      buf:add("abc")
      buf:drain(-100)
      assert.equal(0, buf:length())
    end)

    if math.maxinteger then
      it("removes everything for the extreme integers (5.3+)", function()
        buf:drain(math.maxinteger)
        assert.equal(0, buf:length())
        buf:add("abc")
        buf:drain(math.mininteger)
        assert.equal(0, buf:length())
      end)
    end

    it("leaves the buffer usable", function()
      buf:drain(-1)
      buf:add("x\n")
      assert.equal("x", buf:readline())
    end)

    it("requires n: a Lua-style argument error, nothing removed", function()
      local err = error_of(function() local r = buf:drain() end)
      assert_arg_error(err, 1, "drain")
      err = error_of(function() local r = buf:drain("x") end)
      assert_arg_error(err, 1, "drain")
      assert.equal("123456789", buf:get_data())
    end)
  end)

  describe("read(fd, len)", function()
    it("reads up to len bytes from a socket object, appending", function()
      local client, peer = tcp_pair()
      local buf = buffer_of("> ")
      assert.equal(11, client:send("hello world"))
      wait_readable(peer)
      assert.equal(5, buf:read(peer, 5))
      assert.equal("> hello", buf:get_data())
      assert.equal(6, buf:read(peer, 100))
      assert.equal("> hello world", buf:get_data())
    end)

    it("takes the integer fd from getfd() as well", function()
      local client, peer = tcp_pair()
      local buf = core.buffer.new()
      local fd = peer:getfd()
      assert.equal("number", type(fd))
      client:send("abc")
      wait_readable(peer)
      assert.equal(3, buf:read(fd, 10))
      assert.equal("abc", buf:get_data())
    end)

    it("returns -1 when nothing is there yet (non-blocking socket)", function()
      local _, peer = tcp_pair()
      local buf = buffer_of("x")
      assert.equal(-1, buf:read(peer, 10))
      assert.equal("x", buf:get_data())
    end)

    it("returns 0 at end of file", function()
      local client, peer = tcp_pair()
      local buf = core.buffer.new()
      client:send("last")
      client:shutdown("send")
      wait_readable(peer)
      assert.equal(4, buf:read(peer, 100))
      wait_readable(peer)
      assert.equal(0, buf:read(peer, 100))
      assert.equal("last", buf:get_data())
    end)

    it("returns -1 on a closed fd and adds nothing", function()
      local fd = closed_fd()
      local buf = buffer_of("x")
      assert.equal(-1, buf:read(fd, 10))
      assert.equal("x", buf:get_data())
    end)

    it("raises Lua-style argument errors", function()
      local _, peer = tcp_pair()
      local buf = core.buffer.new()
      local err = error_of(function() local r = buf:read(peer) end)
      assert.equal("string", type(err))
      assert.truthy(err:match("bad argument #%d to 'read' %(.+%)"), err)
      err = error_of(function() local r = buf:read({}, 10) end)
      assert_arg_error(err, 1, "read")
      err = error_of(function() local r = buf:read(true, 10) end)
      assert_arg_error(err, 1, "read")
      err = error_of(function() local r = buf:read(peer, "x") end)
      assert_arg_error(err, 2, "read")
    end)

    it("rejects a closed socket object (getfd() is -1) #cbug", function()
      -- C passes -1 on to libevent and returns -1.
      local s = closed_socket()
      local buf = core.buffer.new()
      local err = error_of(function() local r = buf:read(s, 10) end)
      assert_arg_error(err, 1, "read")
    end)

    it("rejects a non-integral fd #cbug", function()
      -- C truncates it (5.3+: to 0, stdin).
      local buf = core.buffer.new()
      local err = error_of(function() local r = buf:read(1000.5, 10) end)
      assert_arg_error(err, 1, "read")
    end)
  end)

  describe("write(fd)", function()
    it("writes to a socket object, drains, and returns the count", function()
      local client, peer = tcp_pair()
      local buf = buffer_of("hello")
      assert.equal(5, buf:write(client))
      assert.equal(0, buf:length())
      assert.equal("hello", receive_exactly(peer, 5))
    end)

    it("takes the integer fd from getfd() as well", function()
      local client, peer = tcp_pair()
      local buf = buffer_of("via fd")
      assert.equal(6, buf:write(client:getfd()))
      assert.equal(0, buf:length())
      assert.equal("via fd", receive_exactly(peer, 6))
    end)

    it("drains exactly what was written when the socket takes only part", function()
      local client, peer = tcp_pair()
      -- 16 MiB of a 256-byte pattern: more than a loopback socket buffers.
      local data = ALL_BYTES:rep(65536)
      local buf = buffer_of(data)
      local n = buf:write(client)
      assert.truthy(n > 0 and n <= #data, "wrote " .. tostring(n))
      assert.equal(#data - n, buf:length())
      assert.equal(data:sub(n + 1, n + 300), buf:get_data(1, 300))
      assert.equal(data:sub(1, 1000), receive_exactly(peer, 1000))
    end)

    it("returns -1 for an empty buffer (libevent's result)", function()
      local client = tcp_pair()
      local buf = core.buffer.new()
      assert.equal(-1, buf:write(client))
    end)

    it("returns -1 on a closed fd and keeps the data", function()
      local fd = closed_fd()
      local buf = buffer_of("kept")
      assert.equal(-1, buf:write(fd))
      assert.equal("kept", buf:get_data())
    end)

    it("raises Lua-style argument errors", function()
      local buf = buffer_of("x")
      local err = error_of(function() local r = buf:write() end)
      assert_arg_error(err, 1, "write")
      err = error_of(function() local r = buf:write(true) end)
      assert_arg_error(err, 1, "write")
      err = error_of(function() local r = buf:write({}) end)
      assert_arg_error(err, 1, "write")
      assert.equal("x", buf:get_data())
    end)

    it("rejects a closed socket object (getfd() is -1) #cbug", function()
      local s = closed_socket()
      local buf = buffer_of("x")
      local err = error_of(function() local r = buf:write(s) end)
      assert_arg_error(err, 1, "write")
      assert.equal("x", buf:get_data())
    end)

    it("rejects a non-integral fd #cbug", function()
      -- C truncates it (5.3+: to 0).
      local buf = buffer_of("x")
      local err = error_of(function() local r = buf:write(1000.5) end)
      assert_arg_error(err, 1, "write")
      assert.equal("x", buf:get_data())
    end)
  end)

  describe("binary data", function()
    it("passes all 256 byte values through add, get_data and tostring", function()
      local buf = buffer_of(ALL_BYTES)
      assert.equal(256, buf:length())
      assert.equal(ALL_BYTES, buf:get_data())
      assert.equal(ALL_BYTES, tostring(buf))
      assert.equal(ALL_BYTES:sub(1, 20), buf:get_data(20))
      assert.equal(ALL_BYTES:sub(11, 30), buf:get_data(11, 20))
      assert.equal(ALL_BYTES:sub(-16), buf:get_data(-16, -1))
    end)

    it("keeps NULs at the start, middle and end", function()
      local s = "\0a\0\0b\0"
      local buf = buffer_of(s)
      assert.equal(6, #buf)
      assert.equal(s, buf:get_data())
      buf:drain(1)
      assert.equal("a\0\0b\0", buf:get_data())
      assert.equal("\0b", buf:get_data(3, 2))
    end)

    it("survives moving between buffers", function()
      local src = buffer_of(ALL_BYTES, ALL_BYTES)
      local dst = buffer_of("\0")
      assert.equal(512, dst:add(src))
      assert.equal("\0" .. ALL_BYTES .. ALL_BYTES, dst:get_data())
    end)

    it("survives a write/read round trip over a socket", function()
      local client, peer = tcp_pair()
      local data = ALL_BYTES:rep(4)
      local out, back = buffer_of(data), core.buffer.new()
      assert.equal(#data, out:write(client))
      local deadline = socket.gettime() + 2
      while back:length() < #data and socket.gettime() < deadline do
        wait_readable(peer)
        assert.truthy(back:read(peer, 4096) > 0)
      end
      assert.equal(data, back:get_data())
    end)
  end)

  describe("close()", function()
    it("is idempotent", function()
      local buf = buffer_of("data")
      buf:close()
      assert.has_no.errors(function() buf:close() end)
      assert.has_no.errors(function() buf:close() end)
    end)

    it("leaves other buffers alone", function()
      local a, b = buffer_of("a"), buffer_of("b")
      a:close()
      assert.equal("b", b:get_data())
      assert.equal(1, b:add("c"))
    end)

    -- Every other method afterwards: an error string that says "closed".
    local uses = {
      { "add", function(b) local r = b:add("x") end },
      { "add of a buffer", function(b) local r = b:add(buffer_of("x")) end },
      { "length", function(b) local r = b:length() end },
      { "#", function(b) local r = #b end },
      { "get_data", function(b) local r = b:get_data() end },
      { "get_data(len)", function(b) local r = b:get_data(1) end },
      { "get_data(begin, len)", function(b) local r = b:get_data(1, 1) end },
      { "readline", function(b) local r = b:readline() end },
      { "drain", function(b) local r = b:drain(1) end },
      { "read", function(b) local r = b:read(0, 1) end },
      { "write", function(b) local r = b:write(1) end },
      { "tostring", function(b) local r = tostring(b) end },
    }
    for _, use in ipairs(uses) do
      it("makes " .. use[1] .. " raise a 'closed' error string", function()
        local buf = buffer_of("data\n")
        buf:close()
        local err = error_of(use[2], buf)
        assert.equal("string", type(err), "no error from " .. use[1])
        assert.truthy(err:find("closed", 1, true), err)
      end)
    end

    it("uses our message 'attempt to use a closed buffer' #cbug", function()
      -- C: "Attempt to use closed event_buffer object".
      local buf = buffer_of("x")
      buf:close()
      local err = error_of(function() local r = buf:length() end)
      assert.truthy(err:find("attempt to use a closed buffer", 1, true), err)
    end)

    it("then garbage collection is harmless", function()
      local buf = buffer_of("x")
      buf:close()
      buf = nil
      collectgarbage()
      collectgarbage()
      local other = buffer_of("still fine")
      assert.equal("still fine", other:get_data())
    end)
  end)

  describe("foreign receivers", function()
    -- Buffer methods called with something else as self.
    local methods = {
      { "add", { "x" } }, { "length", {} }, { "get_data", {} }, { "get_data", { 1, 1 } },
      { "readline", {} }, { "drain", { 1 } }, { "read", { 0, 1 } }, { "write", { 1 } },
      { "close", {} },
    }
    local receivers = {
      { "an event base", function() return core.new() end },
      { "a string", function() return "123456789" end },
      { "a table", function() return {} end },
      { "nil", function() return nil end },
    }
    for _, m in ipairs(methods) do
      for _, r in ipairs(receivers) do
        it(m[1] .. "(" .. #m[2] .. " args) on " .. r[1] .. " raises a string error", function()
          local f = core.buffer.new()[m[1]]
          assert.is_function(f)
          local self = r[2]()
          local err = error_of(f, self, (table.unpack or unpack)(m[2]))
          assert.equal("string", type(err), "no string error")
          assert.truthy(err:match("bad argument #1 to '.-' %(.+%)"), err)
        end)
      end
    end

    it("__len and __tostring on a foreign value raise a string error", function()
      local mt = getmetatable(core.buffer.new())
      for _, name in ipairs({ "__len", "__tostring" }) do
        local err = error_of(mt[name], core.new())
        assert.equal("string", type(err), name)
        assert.truthy(err:match("bad argument #1 to '.-' %(.+%)"), err)
      end
    end)
  end)
end)
