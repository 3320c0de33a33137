-- core.bufferevent: buffered sockets (the API of the original bufferevent documentation). The three callbacks and their `what`
-- values, watermarks, timeouts, enable/disable, data moved between buffers, close(), every
-- lifetime order (bufferevent, its buffers, its socket, its base, in any order, also from inside
-- its own callbacks), the base-less form, argument errors, errors escaping base:loop(), and a
-- load test of several hundred concurrent loopback connections through a bufferevent echo server.
--
-- Every loop is bounded: run() arms a loopexit, wait() polls in short bounded rounds until a
-- condition holds or its limit passes. Each spec makes its own base, so a loopexit timer left
-- pending by one spec cannot cut another short.
local core = require "luaevent.core"
local socket = require "socket"
-- The helpers shared by the spec files, found beside this one.
local helpers = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "") .. "helpers.lua")
local run, wait, tcp_pair, fill, error_of, full_gc =
  helpers.run, helpers.wait, helpers.tcp_pair, helpers.fill, helpers.error_of, helpers.full_gc

local EV_READ, EV_WRITE, EV_TIMEOUT, EV_SIGNAL = core.EV_READ, core.EV_WRITE, core.EV_TIMEOUT, core.EV_SIGNAL
local EVBUFFER_READ, EVBUFFER_WRITE = core.EVBUFFER_READ, core.EVBUFFER_WRITE
local EVBUFFER_EOF, EVBUFFER_ERROR, EVBUFFER_TIMEOUT = core.EVBUFFER_EOF, core.EVBUFFER_ERROR, core.EVBUFFER_TIMEOUT
local GC_STRESS = rawget(_G, "LUAEVENT_GC_STRESS") and true or false -- set by tests/gc_stress.lua
-- tests/gc_stress.lua with LUAEVENT_GC_FULL=1: a full collection at nearly every allocation.
local GC_FULL = GC_STRESS and os.getenv("LUAEVENT_GC_FULL") ~= nil
local now = socket.gettime
local unpack = table.unpack or unpack

-- Loops in short rounds until base:loop() raises; returns the error, or nil after `limit`.
local function loop_error(base, limit)
  local deadline = now() + (limit or 3)
  repeat
    local ok, err = pcall(run, base, 0.01)
    if not ok then return err end
  until now() > deadline
  return nil
end

-- Whether `sock` has something to read right now (data or EOF in the kernel).
local function readable(sock, timeout)
  local r = socket.select({ sock }, nil, timeout or 0)
  return #r == 1
end

-- Reads whatever `sock` has now (non-blocking), "" when nothing.
local function receive_now(sock)
  local parts = {}
  while true do
    local data, err, partial = sock:receive(65536)
    local got = data or partial
    if got and #got > 0 then parts[#parts + 1] = got end
    if not data then break end
  end
  return table.concat(parts)
end

-- Receives from `sock` until `n` bytes came, looping `base` meanwhile (its bufferevents write).
local function receive_n(base, sock, n, limit)
  local got = {}
  local count = 0
  local ok = wait(base, function()
    local data = receive_now(sock)
    got[#got + 1] = data
    count = count + #data
    return count >= n
  end, limit)
  return table.concat(got), ok
end

-- A LuaSocket socket that had a real fd and is closed now (getfd() is -1).
local function closed_socket()
  local a, b = tcp_pair()
  a:close()
  b:close()
  return a
end

-- Asserts that f(...) raises a string error containing `text` (plain).
local function assert_error(text, f, ...)
  local err = error_of(f, ...)
  assert(err ~= nil, "expected an error containing '" .. text .. "', got none")
  assert.equal("string", type(err))
  assert(err:find(text, 1, true), "expected '" .. text .. "' in: " .. err)
  return err
end

local function weak_values()
  return setmetatable({}, { __mode = "v" })
end

local function noop() end

-- The callbacks of one bufferevent, recording every call as { kind, bev, what, input length }.
local function recorder()
  local calls = {}
  local function make(kind)
    return function(bev, what)
      local ok, len = pcall(function() return bev:get_read():length() end)
      if not ok then len = nil end
      calls[#calls + 1] = { kind = kind, bev = bev, what = what, input = len }
    end
  end
  local rec = { calls = calls, read = make("read"), write = make("write"), error = make("error") }
  function rec.count(kind)
    local n = 0
    for _, c in ipairs(calls) do
      if c.kind == kind then n = n + 1 end
    end
    return n
  end
  function rec.of(kind)
    local list = {}
    for _, c in ipairs(calls) do
      if c.kind == kind then list[#list + 1] = c end
    end
    return list
  end
  return rec
end

-- A new bufferevent on `sock` with a recorder's callbacks; reading enabled unless `noread`.
local function recorded(base, sock, noread)
  local rec = recorder()
  local bev = core.bufferevent.new(base, sock, rec.read, rec.write, rec.error)
  if not noread then assert.equal(0, bev:enable(EV_READ)) end
  return bev, rec
end

describe("core.bufferevent", function()
  describe("callbacks", function()
    it("readcb(bev, EVBUFFER_READ) runs when bytes arrive, with bev the created object", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      assert(a:send("hello"))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 end), "no read callback")
      local call = rec.of("read")[1]
      assert.equal(EVBUFFER_READ, call.what)
      assert.is_true(rawequal(bev, call.bev))
      assert.equal(5, call.input)
      assert.equal("hello", bev:get_read():get_data())
      assert.equal(0, rec.count("error"))
      bev:close()
      a:close()
      b:close()
    end)

    it("reads only after enable(EV_READ); writes from the start", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b, true)
      assert(a:send("early"))
      run(base, 0.1)
      assert.equal(0, rec.count("read"))
      assert.equal(0, bev:get_read():length())
      assert.is_true(readable(b), "the bytes should still wait in the kernel")
      -- Writing needs no enable.
      bev:get_write():add("out")
      local got = receive_n(base, a, 3)
      assert.equal("out", got)
      assert.equal(0, bev:enable(EV_READ))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 end))
      assert.equal("early", bev:get_read():get_data())
      bev:close()
      a:close()
      b:close()
    end)

    it("writecb(bev, EVBUFFER_WRITE) runs once the output has been flushed", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      assert.equal(5, bev:get_write():add("hello"))
      assert.is_true(wait(base, function() return rec.count("write") >= 1 end), "no write callback")
      local call = rec.of("write")[1]
      assert.equal(EVBUFFER_WRITE, call.what)
      assert.is_true(rawequal(bev, call.bev))
      assert.equal(0, bev:get_write():length())
      assert.equal("hello", receive_now(a))
      -- Nothing to write: no more write callbacks.
      local n = rec.count("write")
      run(base, 0.05)
      assert.equal(n, rec.count("write"))
      bev:close()
      a:close()
      b:close()
    end)

    it("errorcb(bev, EVBUFFER_EOF | EVBUFFER_READ) when the peer closes, after the last data", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      assert(a:send("last words"))
      a:close()
      assert.is_true(wait(base, function() return rec.count("error") >= 1 end), "no error callback")
      local calls = rec.calls
      assert.equal("read", calls[1].kind)
      assert.equal("error", calls[#calls].kind)
      assert.equal(EVBUFFER_EOF + EVBUFFER_READ, calls[#calls].what)
      assert.is_true(rawequal(bev, calls[#calls].bev))
      assert.equal("last words", bev:get_read():get_data())
      run(base, 0.05)
      assert.equal(1, rec.count("error"))
      bev:close()
      b:close()
    end)

    it("errorcb(bev, EVBUFFER_ERROR | EVBUFFER_READ) when the peer resets the connection", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      assert(a:setoption("linger", { on = true, timeout = 0 }))
      a:close() -- RST
      assert.is_true(wait(base, function() return rec.count("error") >= 1 end), "no error callback")
      local call = rec.of("error")[1]
      assert.equal(EVBUFFER_ERROR + EVBUFFER_READ, call.what)
      assert.is_true(rawequal(bev, call.bev))
      bev:close()
      b:close()
    end)

    it("errorcb(bev, EVBUFFER_ERROR | EVBUFFER_WRITE) when writing to a reset connection", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b, true) -- writing only
      assert(a:setoption("linger", { on = true, timeout = 0 }))
      a:close()
      assert.is_true(readable(b, 1), "the reset did not arrive")
      bev:get_write():add("into the void")
      assert.is_true(wait(base, function() return rec.count("error") >= 1 end), "no error callback")
      local call = rec.of("error")[1]
      assert.equal(EVBUFFER_ERROR + EVBUFFER_WRITE, call.what)
      assert.is_true(rawequal(bev, call.bev))
      assert.equal(0, rec.count("write"))
      bev:close()
      b:close()
    end)

    it("errorcb(bev, EVBUFFER_TIMEOUT | EVBUFFER_READ) when nothing arrives within the read timeout", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      bev:set_timeouts(0.1, nil)
      local t0 = now()
      assert.is_true(wait(base, function() return rec.count("error") >= 1 end), "no timeout")
      local elapsed = now() - t0
      local call = rec.of("error")[1]
      assert.equal(EVBUFFER_TIMEOUT + EVBUFFER_READ, call.what)
      assert.is_true(rawequal(bev, call.bev))
      assert.is_true(elapsed >= 0.09, "timed out early: " .. elapsed)
      bev:close()
      a:close()
      b:close()
    end)

    it("errorcb(bev, EVBUFFER_TIMEOUT | EVBUFFER_WRITE) when the output cannot drain within the write timeout", function()
      local base = core.new()
      local a, b = tcp_pair()
      fill(b) -- the peer never reads: the kernel takes nothing more
      local bev, rec = recorded(base, b, true)
      bev:set_timeouts(nil, 0.1)
      bev:get_write():add("more than the kernel will take")
      local t0 = now()
      assert.is_true(wait(base, function() return rec.count("error") >= 1 end), "no timeout")
      local elapsed = now() - t0
      local call = rec.of("error")[1]
      assert.equal(EVBUFFER_TIMEOUT + EVBUFFER_WRITE, call.what)
      assert.is_true(rawequal(bev, call.bev))
      assert.is_true(elapsed >= 0.09, "timed out early: " .. elapsed)
      assert.equal(0, rec.count("write"))
      assert.equal(30, bev:get_write():length())
      bev:close()
      a:close()
      b:close()
    end)

    it("passes the same object to every callback, across calls and collections", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      for round = 1, 3 do
        assert(a:send("round " .. round))
        assert.is_true(wait(base, function() return rec.count("read") >= round end))
        bev:get_write():add("reply " .. round)
        assert.is_true(wait(base, function() return rec.count("write") >= round end))
        full_gc()
      end
      a:close()
      assert.is_true(wait(base, function() return rec.count("error") >= 1 end))
      assert.is_true(#rec.calls >= 7)
      for _, call in ipairs(rec.calls) do
        assert.is_true(rawequal(bev, call.bev), call.kind .. " callback got another object")
      end
      for _, call in ipairs(rec.of("read")) do assert.equal(EVBUFFER_READ, call.what) end
      for _, call in ipairs(rec.of("write")) do assert.equal(EVBUFFER_WRITE, call.what) end
      bev:close()
      b:close()
    end)
  end)

  describe("buffers", function()
    it("get_read and get_write return the same two objects on every call", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev = core.bufferevent.new(base, b, nil, nil, noop)
      local inp, out = bev:get_read(), bev:get_write()
      assert.is_true(rawequal(inp, bev:get_read()))
      assert.is_true(rawequal(out, bev:get_write()))
      assert.is_false(rawequal(inp, out))
      full_gc()
      assert.is_true(rawequal(inp, bev:get_read()))
      assert.is_true(rawequal(out, bev:get_write()))
      -- The whole buffer API works on them.
      assert.equal(3, out:add("abc"))
      assert.equal(3, #out)
      bev:close()
      a:close()
      b:close()
    end)

    it("whichever buffer is asked for first, get_read is the input and get_write the output", function()
      for _, first in ipairs({ "get_read", "get_write" }) do
        local base = core.new()
        local a, b = tcp_pair()
        local bev = core.bufferevent.new(base, b, nil, nil, noop)
        bev:enable(EV_READ + EV_WRITE)
        local asked = bev[first](bev)
        full_gc()
        local inp, out = bev:get_read(), bev:get_write()
        assert.is_true(rawequal(asked, first == "get_read" and inp or out), first)
        assert.is_false(rawequal(inp, out), first)
        assert(a:send("from the peer"))
        assert.is_true(wait(base, function() return inp:length() == 13 end), first .. ": input never filled")
        assert.equal("from the peer", inp:get_data())
        assert.equal(0, out:length(), first)
        out:add("to the peer")
        assert.is_true(wait(base, function() return out:length() == 0 end), first .. ": output never sent")
        a:settimeout(1)
        assert.equal("to the peer", a:receive(11), first)
        bev:close()
        a:close()
        b:close()
      end
    end)

    it("adding to the input or draining the output either works or raises a string error, never a silent no-op", function()
      -- libevent freezes the input's end (only the socket fills it) and the output's start
      -- (only the socket empties it).
      local base = core.new()
      local a, b = tcp_pair()
      local bev = core.bufferevent.new(base, b, nil, nil, noop)
      bev:disable(EV_WRITE) -- keep the output where it is
      local inp, out = bev:get_read(), bev:get_write()
      out:add("queued")
      local ok, err = pcall(inp.add, inp, "x")
      if ok then
        assert.equal("x", inp:get_data())
      else
        assert.equal("string", type(err))
        assert.equal(0, inp:length())
      end
      ok, err = pcall(out.drain, out, 2)
      if ok then
        assert.equal("eued", out:get_data())
      else
        assert.equal("string", type(err))
        assert.equal("queued", out:get_data())
      end
      local other = core.buffer.new()
      ok, err = pcall(other.add, other, out)
      if ok then
        assert.equal(0, out:length())
      else
        assert.equal("string", type(err))
        assert.equal(0, other:length())
      end
      bev:close()
      a:close()
      b:close()
    end)

    it("out:add(in) echoes what came in and leaves the input empty", function()
      local base = core.new()
      local a, b = tcp_pair()
      local moved = {}
      local bev
      bev = core.bufferevent.new(base, b, function(e)
        local inp, out = e:get_read(), e:get_write()
        local n = inp:length()
        local added = out:add(inp)
        moved[#moved + 1] = { n = n, added = added, left = inp:length() }
      end, nil, noop)
      bev:enable(EV_READ)
      local data = {}
      for i = 1, 50 do data[i] = ("line %d\n"):format(i) end
      data = table.concat(data)
      assert(a:send(data))
      local got = receive_n(base, a, #data)
      assert.equal(data, got)
      assert.is_true(#moved >= 1)
      local total = 0
      for _, m in ipairs(moved) do
        assert.equal(m.n, m.added)
        assert.equal(0, m.left)
        total = total + m.added
      end
      assert.equal(#data, total)
      assert.equal(0, bev:get_read():length())
      bev:close()
      a:close()
      b:close()
    end)

    it("passes binary data with NULs through unchanged, both ways", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local data = table.concat(bytes):rep(8) .. "\0\0end\0"
      local bev = core.bufferevent.new(base, b, function(e)
        e:get_write():add(e:get_read())
      end, nil, noop)
      bev:enable(EV_READ)
      assert(a:send(data))
      assert.equal(data, (receive_n(base, a, #data)))
      bev:close()
      a:close()
      b:close()
    end)

    it("moves bytes from one bufferevent's input to another's output (a relay)", function()
      local base = core.new()
      local a1, b1 = tcp_pair()
      local a2, b2 = tcp_pair()
      local relay_out = core.bufferevent.new(base, b2, nil, nil, noop)
      local relay_in = core.bufferevent.new(base, b1, function(e)
        relay_out:get_write():add(e:get_read())
      end, nil, noop)
      relay_in:enable(EV_READ)
      local data = ("relay me "):rep(1000)
      assert(a1:send(data))
      assert.equal(data, (receive_n(base, a2, #data)))
      assert.equal(0, relay_in:get_read():length())
      relay_in:close()
      relay_out:close()
      for _, s in ipairs({ a1, b1, a2, b2 }) do s:close() end
    end)
  end)

  describe("watermarks", function()
    it("a read low watermark delays readcb until that many bytes arrived", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b, true)
      bev:set_read_watermarks(10, 0)
      bev:enable(EV_READ)
      assert(a:send("abcd"))
      -- The 4 bytes are read into the input, but no callback yet.
      assert.is_true(wait(base, function() return bev:get_read():length() == 4 end), "the bytes were not read")
      run(base, 0.05)
      assert.equal(0, rec.count("read"))
      assert(a:send("efghij"))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 end), "no read callback")
      assert.equal(1, rec.count("read"))
      assert.equal(10, rec.of("read")[1].input)
      assert.equal("abcdefghij", bev:get_read():get_data())
      bev:close()
      a:close()
      b:close()
    end)

    it("a read high watermark stops reading from the socket: the rest stays in the kernel until drained", function()
      local base = core.new()
      local a, b = tcp_pair()
      local sizes, got = {}, {}
      local draining = false
      local bev
      bev = core.bufferevent.new(base, b, function(e, what)
        assert(what == EVBUFFER_READ and rawequal(e, bev))
        local inp = e:get_read()
        sizes[#sizes + 1] = inp:length()
        if draining then
          got[#got + 1] = inp:get_data()
          inp:drain(inp:length())
        end
      end, nil, noop)
      bev:set_read_watermarks(0, 8)
      bev:enable(EV_READ)
      local data = ("0123456789"):rep(10)
      assert(a:send(data))
      local inp = bev:get_read()
      assert.is_true(wait(base, function() return inp:length() >= 8 end), "the input did not fill")
      local calls = #sizes
      for _ = 1, 3 do run(base, 0.02) end -- more rounds: nothing more is read, nor called back
      assert.equal(calls, #sizes)
      assert.equal(8, inp:length())
      assert.equal("01234567", inp:get_data())
      assert.is_true(readable(b), "the rest should wait in the kernel")
      -- Draining the input resumes reading, 8 bytes at a time.
      draining = true
      got[1] = inp:get_data()
      inp:drain(8)
      assert.is_true(wait(base, function() return #table.concat(got) >= #data end), "reading did not resume")
      assert.equal(data, table.concat(got))
      for _, size in ipairs(sizes) do
        assert.is_true(size <= 8, "read callback with " .. size .. " bytes")
      end
      assert.is_true(#got >= 13)
      assert.is_false(readable(b), "everything should have been read")
      draining = false
      -- A high watermark of 0 means no limit again.
      bev:set_read_watermarks(0, 0)
      local big = ("z"):rep(1000)
      assert(a:send(big))
      assert.is_true(wait(base, function() return inp:length() >= 1000 end), "no limit: all should be read")
      assert.equal(big, inp:get_data())
      assert.equal(1000, sizes[#sizes])
      bev:close()
      a:close()
      b:close()
    end)

    it("a write low watermark calls writecb once the output falls to it, not only when empty", function()
      local base = core.new()
      local a, b = tcp_pair()
      local lens = {}
      local bev = core.bufferevent.new(base, b, nil, function(e, what)
        assert(what == EVBUFFER_WRITE)
        lens[#lens + 1] = e:get_write():length()
      end, noop)
      -- More than the kernel takes while the peer does not read.
      local total = 8 * 1024 * 1024
      local low = total - 1
      bev:set_write_watermarks(low, 0)
      bev:get_write():add(("w"):rep(total))
      assert.is_true(wait(base, function() return #lens >= 1 end), "no write callback")
      assert.is_true(lens[1] > 0, "the output should still hold bytes")
      assert.is_true(lens[1] <= low)
      -- The default low watermark (0): only once fully flushed.
      bev:set_write_watermarks(0, 0)
      local n = #lens
      local got = receive_n(base, a, total, 10)
      assert.equal(total, #got)
      assert.is_true(wait(base, function() return lens[#lens] == 0 end), "no final write callback")
      for i = n + 1, #lens do
        assert.equal(0, lens[i])
      end
      bev:close()
      a:close()
      b:close()
    end)

    it("a write high watermark is only kept for the user: writing goes on past it", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b, true)
      bev:set_write_watermarks(0, 4)
      local data = ("h"):rep(5000)
      bev:get_write():add(data)
      assert.equal(data, (receive_n(base, a, #data)))
      assert.is_true(wait(base, function() return rec.count("write") >= 1 end))
      bev:close()
      a:close()
      b:close()
    end)
  end)

  describe("set_timeouts", function()
    it("takes fractional seconds", function()
      local base = core.new()
      local a1, b1 = tcp_pair()
      local a2, b2 = tcp_pair()
      local fired, started = {}, {}
      local function on_error(name)
        return function(_, what)
          local t = now()
          fired[name] = { at = t - started[name], what = what }
        end
      end
      local fast = core.bufferevent.new(base, b1, nil, nil, on_error("fast"))
      local slow = core.bufferevent.new(base, b2, nil, nil, on_error("slow"))
      fast:set_timeouts(0.05)
      slow:set_timeouts(0.3, 0)
      -- A read timeout runs from enable(EV_READ).
      started.fast = now()
      fast:enable(EV_READ)
      started.slow = now()
      slow:enable(EV_READ)
      assert.is_true(wait(base, function() return fired.fast and fired.slow end), "timeouts did not fire")
      assert.equal(EVBUFFER_TIMEOUT + EVBUFFER_READ, fired.fast.what)
      assert.equal(EVBUFFER_TIMEOUT + EVBUFFER_READ, fired.slow.what)
      -- Neither truncated to 0 (= no timeout: never fires) nor rounded to whole seconds. The
      -- lower bounds leave 10 ms: libevent times with CLOCK_MONOTONIC_COARSE (4 ms ticks on the
      -- project's machine), so a timeout may fire up to a tick early by socket.gettime().
      assert.is_true(fired.fast.at >= 0.04, "0.05 s fired after " .. fired.fast.at)
      assert.is_true(fired.fast.at < 0.9, "0.05 s fired after " .. fired.fast.at)
      assert.is_true(fired.slow.at >= 0.29, "0.3 s fired after " .. fired.slow.at)
      assert.is_true(started.slow + fired.slow.at > started.fast + fired.fast.at, "0.3 s fired before 0.05 s")
      fast:close()
      slow:close()
      for _, s in ipairs({ a1, b1, a2, b2 }) do s:close() end
    end)

    it("0 and nil mean no timeout", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      bev:set_timeouts(0.05, 0.05)
      bev:set_timeouts(0, nil)
      run(base, 0.2)
      bev:set_timeouts(nil, 0)
      bev:set_timeouts()
      run(base, 0.1)
      assert.equal(0, rec.count("error"))
      bev:close()
      a:close()
      b:close()
    end)

    it("reading stops after a read timeout; enable(EV_READ) re-arms it and data flows", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      bev:set_timeouts(0.05)
      assert.is_true(wait(base, function() return rec.count("error") >= 1 end))
      assert(a:send("after"))
      run(base, 0.1)
      assert.equal(0, rec.count("read"))
      assert.equal(1, rec.count("error")) -- no repeated timeouts while disabled
      bev:set_timeouts(0)
      assert.equal(0, bev:enable(EV_READ))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 end))
      assert.equal("after", bev:get_read():get_data())
      bev:close()
      a:close()
      b:close()
    end)
  end)

  describe("enable/disable", function()
    it("disabled reading calls no readcb and leaves the bytes in the kernel; enable brings them", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      assert(a:send("one"))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 end))
      bev:get_read():drain(-1)
      assert.equal(0, bev:disable(EV_READ))
      assert(a:send("two"))
      run(base, 0.1)
      assert.equal(1, rec.count("read"))
      assert.equal(0, bev:get_read():length())
      assert.is_true(readable(b), "the bytes should wait in the kernel")
      assert.equal(0, bev:enable(EV_READ))
      assert.is_true(wait(base, function() return rec.count("read") >= 2 end))
      assert.equal("two", bev:get_read():get_data())
      bev:close()
      a:close()
      b:close()
    end)

    it("disabled writing holds the output back; enable(EV_WRITE) flushes it", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      assert.equal(0, bev:disable(EV_WRITE))
      bev:get_write():add("held")
      run(base, 0.1)
      assert.equal("", receive_now(a))
      assert.equal(4, bev:get_write():length())
      assert.equal(0, rec.count("write"))
      assert.equal(0, bev:enable(EV_WRITE))
      assert.equal("held", (receive_n(base, a, 4)))
      assert.is_true(wait(base, function() return rec.count("write") >= 1 end))
      bev:close()
      a:close()
      b:close()
    end)

    it("takes EV_READ | EV_WRITE at once", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b, true)
      assert.equal(0, bev:disable(EV_READ + EV_WRITE))
      assert(a:send("in"))
      bev:get_write():add("out")
      run(base, 0.1)
      assert.equal(0, #rec.calls)
      assert.equal("", receive_now(a))
      assert.equal(0, bev:enable(EV_READ + EV_WRITE))
      assert.equal("out", (receive_n(base, a, 3)))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 and rec.count("write") >= 1 end))
      assert.equal("in", bev:get_read():get_data())
      bev:close()
      a:close()
      b:close()
    end)
  end)

  describe("close()", function()
    local methods = {
      { "get_read", function(bev) return bev:get_read() end },
      { "get_write", function(bev) return bev:get_write() end },
      { "set_read_watermarks", function(bev) return bev:set_read_watermarks(1, 2) end },
      { "set_write_watermarks", function(bev) return bev:set_write_watermarks(1, 2) end },
      { "set_timeouts", function(bev) return bev:set_timeouts(1, 1) end },
      { "enable", function(bev) return bev:enable(EV_READ) end },
      { "disable", function(bev) return bev:disable(EV_READ) end },
    }

    it("is idempotent; every other method afterwards raises a 'closed bufferevent' error", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev = core.bufferevent.new(base, b, noop, noop, noop)
      bev:close()
      assert.has_no.errors(function() bev:close() end)
      assert.has_no.errors(function() bev:close() end)
      for _, m in ipairs(methods) do
        assert_error("closed bufferevent", m[2], bev)
      end
      a:close()
      b:close()
    end)

    it("stops every callback, detaches the buffers, and leaves the socket open", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      local inp, out = bev:get_read(), bev:get_write()
      out:add("not sent")
      bev:set_timeouts(0.02, 0.02)
      bev:close()
      assert_error("closed", inp.length, inp)
      assert_error("closed", out.add, out, "x")
      assert(a:send("data"))
      run(base, 0.1)
      a:shutdown("send")
      run(base, 0.05)
      assert.equal(0, #rec.calls)
      -- The socket is ours still: the bytes are there, and it writes.
      assert.equal("data", receive_now(b))
      assert(b:send("still open"))
      assert.is_true(readable(a, 1))
      assert.equal("still open", receive_now(a))
      a:close()
      b:close()
    end)

    local function closes_inside(kind)
      it("is safe inside its own " .. kind .. " callback", function()
        local base = core.new()
        local a, b = tcp_pair()
        local calls, errors_after = 0, {}
        local bev
        local function cb(e)
          calls = calls + 1
          e:close()
          e:close()
          errors_after[#errors_after + 1] = error_of(e.get_read, e)
          errors_after[#errors_after + 1] = error_of(e.enable, e, EV_READ)
        end
        local other = function() end
        bev = core.bufferevent.new(base, b,
          kind == "read" and cb or other,
          kind == "write" and cb or other,
          kind == "error" and cb or other)
        bev:enable(EV_READ)
        if kind == "read" then
          assert(a:send("trigger"))
        elseif kind == "write" then
          bev:get_write():add("trigger")
        else
          a:close()
        end
        assert.is_true(wait(base, function() return calls >= 1 end), "no callback")
        -- Later stimuli reach nothing.
        if kind ~= "error" then
          assert(a:send("more"))
          a:close()
        end
        assert.has_no.errors(function() run(base, 0.1) end)
        assert.equal(1, calls)
        assert.equal(2, #errors_after)
        for _, err in ipairs(errors_after) do
          assert.equal("string", type(err))
          assert.truthy(err:find("closed bufferevent", 1, true), err)
        end
        assert_error("closed bufferevent", bev.get_write, bev)
        b:close()
      end)
    end
    closes_inside("read")
    closes_inside("write")
    closes_inside("error")
  end)

  describe("lifetimes", function()
    -- Every buffer method, for buffers whose bufferevent is gone.
    local buffer_uses = {
      { "add", function(buf) return buf:add("x") end },
      { "length", function(buf) return buf:length() end },
      { "#", function(buf) return #buf end },
      { "get_data", function(buf) return buf:get_data() end },
      { "tostring", function(buf) return tostring(buf) end },
      { "readline", function(buf) return buf:readline() end },
      { "drain", function(buf) return buf:drain(1) end },
      { "read", function(buf, sock) return buf:read(sock, 10) end },
      { "write", function(buf, sock) return buf:write(sock) end },
    }

    it("a bufferevent collected while its buffers live: the buffers raise 'closed' errors", function()
      local base = core.new()
      local a, b = tcp_pair()
      local weak = weak_values()
      local bev = core.bufferevent.new(base, b, noop, noop, noop)
      bev:enable(EV_READ)
      assert(a:send("pending"))
      assert.is_true(wait(base, function() return bev:get_read():length() == 7 end))
      local inp, out = bev:get_read(), bev:get_write()
      out:add("unsent")
      weak.bev = bev
      bev = nil
      full_gc()
      assert.is_nil(weak.bev, "the bufferevent was not collected")
      for _, buf in ipairs({ inp, out }) do
        for _, use in ipairs(buffer_uses) do
          assert_error("closed", use[2], buf, a)
        end
        assert.has_no.errors(function() buf:close() end)
      end
      assert.has_no.errors(function() run(base, 0.05) end)
      inp, out = nil, nil
      full_gc()
      a:close()
      b:close()
    end)

    it("buffers and bufferevent garbage together (buffers finalized first)", function()
      local base = core.new()
      local a, b = tcp_pair()
      local weak = weak_values()
      do
        local bev = core.bufferevent.new(base, b, noop, noop, noop)
        bev:enable(EV_READ)
        weak.bev, weak.inp, weak.out = bev, bev:get_read(), bev:get_write()
        weak.out:add("queued")
      end
      assert(a:send("in flight"))
      full_gc()
      assert.is_nil(weak.bev)
      assert.is_nil(weak.inp)
      assert.is_nil(weak.out)
      assert.has_no.errors(function() run(base, 0.05) end)
      a:close()
      b:close()
    end)

    it("close() on a lent buffer only detaches it: the bufferevent goes on working", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b)
      local out = bev:get_write()
      out:add("before")
      out:close()
      out:close()
      assert_error("closed", out.length, out)
      assert.equal("before", (receive_n(base, a, 6)))
      assert(a:send("still reading"))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 end))
      assert.equal("still reading", bev:get_read():get_data())
      local inp = bev:get_read()
      inp:close()
      assert_error("closed", inp.get_data, inp)
      assert(a:send("more"))
      assert.is_true(wait(base, function() return rec.count("read") >= 2 end))
      out, inp = nil, nil
      full_gc()
      bev:close()
      full_gc()
      a:close()
      b:close()
    end)

    local function collected_inside(kind)
      it("a bufferevent collected inside its own " .. kind .. " callback", function()
        local base = core.new()
        local a, b = tcp_pair()
        local weak = weak_values()
        local calls, gone_inside = 0, nil
        local bev
        local function cb(e, what)
          calls = calls + 1
          e = nil
          bev = nil
          full_gc()
          gone_inside = weak.bev == nil
        end
        local other = function() end
        bev = core.bufferevent.new(base, b,
          kind == "read" and cb or other,
          kind == "write" and cb or other,
          kind == "error" and cb or other)
        weak.bev = bev
        bev:enable(EV_READ)
        if kind == "read" then
          assert(a:send("trigger"))
        elseif kind == "write" then
          bev:get_write():add("trigger")
        else
          a:close()
        end
        assert.is_true(wait(base, function() return calls >= 1 end), "no callback")
        assert.is_true(gone_inside, "the bufferevent was not collected inside its callback")
        if kind ~= "error" then
          assert(a:send("more"))
          a:close()
        end
        assert.has_no.errors(function() run(base, 0.1) end)
        assert.equal(1, calls)
        -- The socket is still usable after the bufferevent is gone.
        assert.is_true(b:getfd() >= 0)
        b:close()
      end)
    end
    collected_inside("read")
    collected_inside("write")
    collected_inside("error")

    it("a base collected before its bufferevents: no crash, closing and collecting them is safe", function()
      local a1, b1 = tcp_pair()
      local a2, b2 = tcp_pair()
      local weak = weak_values()
      local base = core.new()
      local bev1 = core.bufferevent.new(base, b1, noop, noop, noop)
      local bev2 = core.bufferevent.new(base, b2, noop, noop, noop)
      bev1:enable(EV_READ)
      bev2:get_write():add("pending")
      weak.base = base
      base = nil
      full_gc()
      assert.is_nil(weak.base, "the base was not collected")
      -- Still usable as objects (no loop can run them any more).
      local inp, out = bev1:get_read(), bev1:get_write()
      assert.equal(3, out:add("abc"))
      assert.equal(0, inp:length())
      local r = { pcall(bev1.enable, bev1, EV_READ + EV_WRITE) }
      assert.is_true(r[2] == 0 or type(r[2]) == "string")
      bev1:close()
      assert_error("closed bufferevent", bev1.get_read, bev1)
      assert_error("closed", inp.length, inp)
      assert_error("closed", out.length, out)
      weak.bev2 = bev2
      bev2 = nil
      full_gc()
      assert.is_nil(weak.bev2)
      bev1 = nil
      full_gc()
      -- The sockets outlive all of it.
      assert(b1:send("x"))
      assert(b2:send("y"))
      assert.is_true(readable(a2, 1))
      for _, s in ipairs({ a1, b1, a2, b2 }) do s:close() end
    end)

    it("a base and its bufferevent garbage together", function()
      local a, b = tcp_pair()
      local weak = weak_values()
      do
        local base = core.new()
        local bev = core.bufferevent.new(base, b, noop, noop, noop)
        bev:enable(EV_READ)
        bev:get_write():add("x")
        weak.base, weak.bev, weak.inp = base, bev, bev:get_read()
      end
      full_gc()
      assert.is_nil(weak.base)
      assert.is_nil(weak.bev)
      assert.is_nil(weak.inp)
      assert(b:send("alive"))
      a:close()
      b:close()
    end)

    it("the bufferevent keeps its socket object alive", function()
      local base = core.new()
      local a, b = tcp_pair()
      local weak = weak_values()
      weak.sock = b
      local bev, rec = recorded(base, b)
      b = nil
      full_gc()
      assert.is_not_nil(weak.sock, "the socket was collected under the bufferevent")
      assert(a:send("ping"))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 end))
      assert.equal("ping", bev:get_read():get_data())
      bev:get_write():add("pong")
      assert.equal("pong", (receive_n(base, a, 4)))
      bev:close()
      weak.sock:close()
      a:close()
    end)

    it("does not close the socket when closed or collected", function()
      local base = core.new()
      local a, b = tcp_pair()
      local fd = b:getfd()
      local bev = core.bufferevent.new(base, b, noop, noop, noop)
      bev:close()
      full_gc()
      assert.equal(fd, b:getfd())
      assert(b:send("after close"))
      assert.is_true(readable(a, 1))
      assert.equal("after close", receive_now(a))
      local weak = weak_values()
      weak.bev = core.bufferevent.new(base, b, noop, noop, noop)
      full_gc()
      assert.is_nil(weak.bev)
      assert(b:send("after gc"))
      assert.is_true(readable(a, 1))
      assert.equal("after gc", receive_now(a))
      assert(a:send("reply"))
      assert.is_true(readable(b, 1))
      assert.equal("reply", receive_now(b))
      a:close()
      b:close()
    end)

    it("works on an integer fd, and leaves that fd open", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev, rec = recorded(base, b:getfd())
      assert(a:send("by number"))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 end))
      assert.equal("by number", bev:get_read():get_data())
      bev:close()
      bev = nil
      full_gc()
      assert(b:send("open"))
      assert.is_true(readable(a, 1))
      assert.equal("open", receive_now(a))
      a:close()
      b:close()
    end)
  end)

  describe("without a base argument", function()
    it("binds to the base most recently made by core.new()", function()
      local a, b = tcp_pair()
      local older = core.new()
      local latest = core.new()
      local rec = recorder()
      local bev = core.bufferevent.new(b, rec.read, rec.write, rec.error)
      bev:enable(EV_READ)
      assert(a:send("which base?"))
      run(older, 0.1)
      assert.equal(0, rec.count("read"))
      -- A base made afterwards does not take it over.
      local later = core.new()
      run(later, 0.05)
      assert.equal(0, rec.count("read"))
      assert.is_true(wait(latest, function() return rec.count("read") >= 1 end))
      assert.equal(EVBUFFER_READ, rec.of("read")[1].what)
      assert.is_true(rawequal(bev, rec.of("read")[1].bev))
      assert.equal("which base?", bev:get_read():get_data())
      -- readcb and writecb may be nil here too.
      local a2, b2 = tcp_pair()
      local quiet = core.bufferevent.new(b2, nil, nil, noop)
      quiet:get_write():add("x")
      assert.equal("x", (receive_n(later, a2, 1)))
      quiet:close()
      bev:close()
      for _, s in ipairs({ a, b, a2, b2 }) do s:close() end
    end)

    it("falls back to an older base still alive when the latest was collected", function()
      local a, b = tcp_pair()
      local older = core.new()
      local weak = weak_values()
      weak.base = core.new() -- the latest base, and garbage at once
      full_gc()
      assert.is_nil(weak.base)
      local rec = recorder()
      local bev = core.bufferevent.new(b, rec.read, nil, rec.error)
      bev:enable(EV_READ)
      assert(a:send("older"))
      assert.is_true(wait(older, function() return rec.count("read") >= 1 end))
      bev:close()
      a:close()
      b:close()
    end)

    it("raises a clear error when no base made by core.new() is alive", function()
      -- Other spec files keep bases alive in this process, so ask a child interpreter.
      local err = helpers.child_output([[
        local core = require "luaevent.core"
        local socket = require "socket"
        local s = assert(socket.bind("127.0.0.1", 0))
        local base = core.new()
        base = nil
        collectgarbage() collectgarbage()
        local ok, err = pcall(core.bufferevent.new, s, function() end, nil, function() end)
        io.write(ok and "no error" or tostring(err))
      ]])
      assert.truthy(err:find("no base given and no event base made by core.new() is alive", 1, true), err)
      assert.is_nil(err:find("bad argument", 1, true), err)
      local a, b = tcp_pair()
      -- A new base makes the form work again.
      local base = core.new()
      local rec = recorder()
      local bev = core.bufferevent.new(b, rec.read, nil, rec.error)
      bev:enable(EV_READ)
      assert(a:send("back"))
      assert.is_true(wait(base, function() return rec.count("read") >= 1 end))
      bev:close()
      a:close()
      b:close()
    end)
  end)

  describe("argument errors", function()
    local a, b, base, bev
    before_each(function()
      a, b = tcp_pair()
      base = core.new()
      bev = core.bufferevent.new(base, b, noop, noop, noop)
    end)
    after_each(function()
      bev:close()
      a:close()
      b:close()
    end)

    local function bad(args, what)
      return function()
        -- The highest index, not #args: the length of a table with holes differs between
        -- versions (Lua 5.5 gives 2 for { base, b, nil, 42, f }).
        local n = 0
        for index in pairs(args) do n = math.max(n, index) end
        local err = error_of(core.bufferevent.new, unpack(args, 1, n))
        assert(err ~= nil, "no error for " .. what)
        assert.equal("string", type(err))
        assert.truthy(err:find("bad argument", 1, true), err)
        return err
      end
    end

    it("rejects callbacks that are not functions", function()
      local f = noop
      assert.truthy(bad({ base, b, "x", nil, f }, "string readcb")():find("#3", 1, true))
      assert.truthy(bad({ base, b, nil, 42, f }, "number writecb")():find("#4", 1, true))
      assert.truthy(bad({ base, b, {}, f, f }, "table readcb")():find("#3", 1, true))
      assert.truthy(bad({ base, b, f, f, "x" }, "string errorcb")():find("#5", 1, true))
      assert.truthy(bad({ base, b, f, f, {} }, "table errorcb")():find("#5", 1, true))
      assert.truthy(bad({ b, "x", nil, f }, "base-less string readcb")():find("#2", 1, true))
      assert.truthy(bad({ b, f, true, f }, "base-less boolean writecb")():find("#3", 1, true))
    end)

    it("requires the error callback", function()
      assert.truthy(bad({ base, b, noop, noop, nil }, "nil errorcb")():find("#5", 1, true))
      assert.truthy(bad({ base, b, noop, noop }, "missing errorcb")():find("#5", 1, true))
      assert.truthy(bad({ base, b }, "no callbacks")():find("bad argument", 1, true))
      assert.truthy(bad({ b, noop, noop }, "base-less missing errorcb")():find("#4", 1, true))
    end)

    it("rejects bad fds", function()
      local f = noop
      for _, case in ipairs({
        { {}, "table without getfd" },
        { -1, "negative fd" },
        { 1.5, "non-integral fd" },
        { "abc", "string" },
        { true, "boolean" },
        { closed_socket(), "closed socket" },
        { { getfd = function() return -3 end }, "negative getfd" },
        { { getfd = function() return 2.5 end }, "non-integral getfd" },
      }) do
        assert.truthy(bad({ base, case[1], f, f, f }, case[2])():find("#2", 1, true))
      end
      assert.truthy(bad({ base, nil, f, f, f }, "nil fd")():find("#2", 1, true))
      assert.truthy(bad({ nil, f, f, f }, "base-less nil fd")():find("#1", 1, true))
      assert.truthy(bad({ -1, f, f, f }, "base-less negative fd")():find("#1", 1, true))
    end)

    it("rejects bad watermarks", function()
      for _, m in ipairs({ "set_read_watermarks", "set_write_watermarks" }) do
        for _, args in ipairs({ { -1, 0 }, { 0, -1 }, { 1.5, 0 }, { 0, 2.5 }, { "x", 0 }, { {}, 0 }, { 0 / 0, 0 } }) do
          local err = assert_error("bad argument", bev[m], bev, args[1], args[2])
          assert.truthy(err, m)
        end
      end
    end)

    it("rejects a high watermark below the low one (the read side would stall for ever)", function()
      local calls = {
        set_read_watermarks = function() bev:set_read_watermarks(10, 5) end,
        set_write_watermarks = function() bev:set_write_watermarks(10, 5) end,
      }
      for _, m in ipairs({ "set_read_watermarks", "set_write_watermarks" }) do
        local err = error_of(calls[m])
        assert.equal(("bad argument #2 to '%s' (high watermark 5 is below the low watermark 10 (0 means no high watermark))"):format(m),
          (err:gsub("^[^:]-:%d+: ", "")))
        -- 0 is no high watermark, and equal ones are fine
        bev[m](bev, 10, 0)
        bev[m](bev, 10, 10)
        bev[m](bev, 0, 0)
      end
    end)

    it("rejects bad timeouts", function()
      for _, args in ipairs({ { -1 }, { 0 / 0 }, { math.huge }, { -math.huge }, { "x" }, { {} },
                              { nil, -0.5 }, { 1, 0 / 0 }, { 0, math.huge } }) do
        assert_error("bad argument", bev.set_timeouts, bev, args[1], args[2])
      end
    end)

    it("rejects bad masks for enable and disable", function()
      for _, m in ipairs({ "enable", "disable" }) do
        for _, mask in ipairs({ 0, -1, EV_SIGNAL, EV_TIMEOUT, EV_READ + EV_TIMEOUT, 2.5, "x", {}, 64 }) do
          assert_error("bad argument", bev[m], bev, mask)
        end
        assert_error("bad argument", bev[m], bev)
      end
    end)

    it("rejects a receiver that is not a bufferevent", function()
      for _, m in ipairs({ "get_read", "get_write", "set_read_watermarks", "set_write_watermarks",
                           "set_timeouts", "enable", "disable", "close" }) do
        assert_error("bad argument", bev[m], {}, EV_READ)
        assert_error("bad argument", bev[m], base, EV_READ)
        assert_error("bad argument", bev[m], bev:get_read(), EV_READ)
      end
    end)

    it("leaves the bufferevent working after argument errors", function()
      error_of(bev.set_read_watermarks, bev, -1, 0)
      error_of(bev.set_timeouts, bev, -1)
      error_of(bev.enable, bev, 0)
      assert.equal(0, bev:enable(EV_READ))
      assert(a:send("fine"))
      assert.is_true(wait(base, function() return bev:get_read():length() == 4 end))
      assert.equal("fine", bev:get_read():get_data())
    end)
  end)

  describe("an error in a callback", function()
    -- Checks the error base:loop() raised: a string with the message and a traceback.
    local function check(err, message)
      assert(err ~= nil, "base:loop() did not raise")
      assert.equal("string", type(err))
      assert.truthy(err:find(message, 1, true), err)
      assert.truthy(err:find("stack traceback", 1, true), err)
    end

    it("from readcb escapes base:loop(); the base loops again afterwards", function()
      local base = core.new()
      local a, b = tcp_pair()
      local calls = 0
      local bev = core.bufferevent.new(base, b, function(e)
        calls = calls + 1
        e:get_read():drain(-1)
        if calls == 1 then error("readcb failed on purpose") end
      end, nil, noop)
      bev:enable(EV_READ)
      assert(a:send("one"))
      check(loop_error(base), "readcb failed on purpose")
      assert.equal(1, calls)
      assert(a:send("two"))
      assert.is_true(wait(base, function() return calls >= 2 end), "no read callback after the error")
      assert.has_no.errors(function() run(base, 0.05) end)
      bev:close()
      a:close()
      b:close()
    end)

    it("from writecb escapes base:loop(); the base loops again afterwards", function()
      local base = core.new()
      local a, b = tcp_pair()
      local calls = 0
      local bev = core.bufferevent.new(base, b, nil, function()
        calls = calls + 1
        if calls == 1 then error("writecb failed on purpose") end
      end, noop)
      bev:get_write():add("one")
      check(loop_error(base), "writecb failed on purpose")
      assert.equal(1, calls)
      bev:get_write():add("two")
      assert.is_true(wait(base, function() return calls >= 2 end), "no write callback after the error")
      assert.equal("onetwo", (receive_n(base, a, 6)))
      bev:close()
      a:close()
      b:close()
    end)

    it("from errorcb escapes base:loop(); the base loops again afterwards", function()
      local base = core.new()
      local a, b = tcp_pair()
      local whats = {}
      local bev = core.bufferevent.new(base, b, nil, nil, function(_, what)
        whats[#whats + 1] = what
        if #whats == 1 then error("errorcb failed on purpose") end
      end)
      bev:set_timeouts(0.03)
      bev:enable(EV_READ)
      check(loop_error(base), "errorcb failed on purpose")
      assert.same({ EVBUFFER_TIMEOUT + EVBUFFER_READ }, whats)
      bev:enable(EV_READ) -- the timeout disabled reading: re-arm it
      assert.is_true(wait(base, function() return #whats >= 2 end), "no error callback after the error")
      assert.equal(EVBUFFER_TIMEOUT + EVBUFFER_READ, whats[2])
      bev:close()
      a:close()
      b:close()
    end)

    it("comes back as a string even when the error value is not one", function()
      local base = core.new()
      local a, b = tcp_pair()
      local bev = core.bufferevent.new(base, b, function() error({ code = 1 }) end, nil, noop)
      bev:enable(EV_READ)
      assert(a:send("x"))
      local err = loop_error(base)
      assert.equal("string", type(err))
      assert.truthy(err:find("stack traceback", 1, true), err)
      bev:close()
      a:close()
      b:close()
    end)
  end)

  describe("under load", function()
    it("echoes every byte in order over 300 concurrent loopback connections", function()
      -- With a full collection at every allocation (LUAEVENT_GC_FULL) the cost grows with the
      -- heap, and every LuaSocket object holds an 8 KiB buffer: fewer, smaller connections there.
      -- The callbacks are shared functions that allocate little.
      local N = GC_FULL and 100 or 300
      local SIZE = GC_FULL and 600 or 6000 -- bytes each client sends (all 256 byte values)
      local PIECE = GC_FULL and 250 or 1500 -- the largest piece a client writes at once
      local WINDOW = 16 -- connections made but not yet accepted (the listen backlog is 32)
      local LIMIT = GC_STRESS and 300 or 30
      local base = core.new()
      local listener = assert(socket.bind("127.0.0.1", 0))
      listener:settimeout(0)
      local _, port = listener:getsockname()

      -- A pool of rotated byte runs; client i gets a marker and its own slice of it.
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local all_bytes = table.concat(bytes)
      local runs = {}
      for k = 1, 64 do
        local cut = (k * 37) % 256
        runs[k] = all_bytes:sub(cut + 1) .. all_bytes:sub(1, cut)
      end
      local pool = table.concat(runs)
      local function payload_of(i)
        local from = 1 + (i * 53) % (#pool - SIZE)
        return ("<client %d>"):format(i) .. pool:sub(from, from + SIZE - 1)
      end

      local failure
      local function fail(msg)
        failure = failure or msg
        base:loopexit()
      end

      local servers, clients = {}, {}
      local server_of, client_of = {}, {} -- bufferevent -> its state
      local started, accepted, finished = 0, 0, 0
      local server_moved, server_eofs, client_bytes = 0, 0, 0
      local sending = false

      local function server_read(bev, what)
        if what ~= EVBUFFER_READ or not server_of[bev] then return fail("server: bad readcb arguments") end
        local inp = bev:get_read()
        local n = inp:length()
        local added = bev:get_write():add(inp)
        if added ~= n or inp:length() ~= 0 then
          return fail(("server: moved %d of %d bytes, %d left"):format(added, n, inp:length()))
        end
        server_moved = server_moved + n
      end

      local function server_error(bev, what)
        local s = server_of[bev]
        if not s then return fail("server: bad errorcb arguments") end
        if what ~= EVBUFFER_EOF + EVBUFFER_READ then
          return fail(("server: errorcb what=%d"):format(what))
        end
        if not sending then return fail("server: a client left during the connect phase") end
        bev:close()
        s.sock:close()
        server_eofs = server_eofs + 1
      end

      local function send_piece(c)
        if c.sent >= #c.payload then return end
        local len = 1 + (c.i * 131 + c.sent * 7) % PIECE
        c.bev:get_write():add(c.payload:sub(c.sent + 1, c.sent + len))
        c.sent = math.min(c.sent + len, #c.payload)
        c.pieces = c.pieces + 1
      end

      local function client_read(bev, what)
        local c = client_of[bev]
        if what ~= EVBUFFER_READ or not c then return fail("client: bad readcb arguments") end
        local inp = bev:get_read()
        local data = inp:get_data()
        inp:drain(#data)
        if data ~= c.payload:sub(c.got + 1, c.got + #data) then
          return fail(("client %d: echo differs within bytes %d..%d"):format(c.i, c.got + 1, c.got + #data))
        end
        c.got = c.got + #data
        if c.got == #c.payload then finished = finished + 1 end
      end

      local function client_write(bev, what)
        local c = client_of[bev]
        if what ~= EVBUFFER_WRITE or not c then return fail("client: bad writecb arguments") end
        send_piece(c) -- the previous piece is out: the next one
      end

      local function client_error(bev, what)
        local c = client_of[bev]
        fail(("client %s: errorcb what=%d"):format(c and c.i or "?", what))
      end

      local function start_client()
        started = started + 1
        local sock = assert(socket.tcp())
        assert(sock:connect("127.0.0.1", port)) -- completes at once: the backlog has room
        sock:settimeout(0)
        local c = { i = started, sock = sock, payload = payload_of(started), sent = 0, got = 0, pieces = 0 }
        client_bytes = client_bytes + #c.payload
        c.bev = core.bufferevent.new(base, sock, client_read, client_write, client_error)
        assert(c.bev:enable(EV_READ) == 0)
        client_of[c.bev] = c
        clients[started] = c
      end

      local function top_up()
        while started < N and started - accepted < WINDOW do start_client() end
      end

      local acceptor = base:addevent(listener, EV_READ, function()
        while true do
          local conn = listener:accept()
          if not conn then break end
          accepted = accepted + 1
          conn:settimeout(0)
          local s = { sock = conn }
          s.bev = core.bufferevent.new(base, conn, server_read, nil, server_error)
          assert(s.bev:enable(EV_READ) == 0)
          server_of[s.bev] = s
          servers[accepted] = s
        end
        top_up()
      end)

      -- Connect phase: every connection is open before any data moves.
      top_up()
      assert.is_true(wait(base, function() return failure or accepted == N end, LIMIT),
        ("only %d of %d connections accepted"):format(accepted, N))
      assert.is_nil(failure)
      assert.equal(N, #servers)
      assert.equal(N, #clients)
      acceptor:close()

      -- Echo phase: all clients send at once, in pieces.
      sending = true
      for _, c in ipairs(clients) do send_piece(c) end
      assert.is_true(wait(base, function() return failure or finished == N end, LIMIT),
        ("only %d of %d clients got their echo back"):format(finished, N))
      assert.is_nil(failure)
      for _, c in ipairs(clients) do
        assert.equal(#c.payload, c.got)
        assert.equal(#c.payload, c.sent)
        assert.is_true(c.pieces >= 2)
      end
      assert.equal(client_bytes, server_moved)
      assert.is_true(client_bytes >= N * SIZE)

      -- Close phase: the server sees every client leave.
      for _, c in ipairs(clients) do
        c.bev:close()
        c.sock:close()
      end
      assert.is_true(wait(base, function() return failure or server_eofs == N end, LIMIT),
        ("only %d of %d server connections saw EOF"):format(server_eofs, N))
      assert.is_nil(failure)
      listener:close()
    end)
  end)
  describe("read-ahead", function()
    it("a burst already in the kernel arrives in read callbacks of more than libevent's 4 KiB", function()
      -- libevent 2.1 reads at most 4 KiB per wakeup; the module takes up to 64 KiB at once.
      local base = core.new()
      local a, b = tcp_pair()
      local sizes, total = {}, 0
      local data = ("0123456789abcdef"):rep(2048) -- 32 KiB, all sent before reading is enabled
      assert.equal(#data, a:send(data))
      local bev = core.bufferevent.new(base, b, function(e)
        local input = e:get_read()
        sizes[#sizes + 1] = input:length()
        total = total + input:length()
        input:drain(-1)
      end, nil, noop)
      bev:enable(EV_READ)
      assert.is_true(wait(base, function() return total >= #data end), "not everything arrived")
      assert.equal(#data, total)
      assert.is_true(sizes[1] > 4096, "the first read callback saw only " .. sizes[1] .. " bytes")
      bev:close()
      a:close()
      b:close()
    end)

    it("a reset met while reading ahead ends the bufferevent with EVBUFFER_ERROR | EVBUFFER_READ, after the data", function()
      -- The peer sends 5 bytes and closes with SO_LINGER 0: the kernel holds the bytes, then
      -- the reset, which it reports once (later reads see end of file). libevent's own read takes
      -- the bytes; the read-ahead's readv meets the reset and must report it as libevent would,
      -- not leave libevent an end of file to find.
      local base = core.new()
      local a, b = tcp_pair()
      assert(a:send("hello"))
      assert(a:setoption("linger", { on = true, timeout = 0 }))
      a:close()
      socket.select(nil, nil, 0.05)
      local got, what = "", nil
      local bev
      bev = core.bufferevent.new(base, b, function(e)
        got = got .. e:get_read():get_data()
        e:get_read():drain(-1)
      end, nil, function(_, w)
        what = w
        bev:close()
      end)
      bev:enable(EV_READ)
      assert.is_true(wait(base, function() return what ~= nil end), "no error callback")
      assert.equal("hello", got)
      assert.equal(EVBUFFER_ERROR + EVBUFFER_READ, what)
      b:close()
    end)

    it("never reads past the read high watermark", function()
      local base = core.new()
      local a, b = tcp_pair()
      local seen = {}
      assert.equal(40000, a:send(("x"):rep(40000)))
      local bev
      bev = core.bufferevent.new(base, b, function(e)
        seen[#seen + 1] = e:get_read():length()
        e:disable(EV_READ)
        base:loopexit()
      end, nil, noop)
      bev:set_read_watermarks(0, 10000)
      bev:enable(EV_READ)
      assert.is_true(wait(base, function() return #seen >= 1 end), "no read callback")
      for _ = 1, 3 do run(base, 0.01) end
      for _, size in ipairs(seen) do
        assert.is_true(size <= 10000, "a read callback saw " .. size .. " bytes")
      end
      assert.equal(10000, bev:get_read():length())
      bev:close()
      a:close()
      b:close()
    end)
  end)

  -- A read callback that answers queues output; the module writes it as soon as the callback
  -- returns instead of waiting for the socket to be reported writable (libevent would add the
  -- write event, poll, write, and remove the event: two epoll_ctl calls per reply).
  describe("writing through", function()
    it("a read callback's reply is written in the same loop round, the write callback right after it", function()
      local base = core.new()
      local a, b = tcp_pair()
      local order = {}
      assert(a:send("ping"))
      local bev = core.bufferevent.new(base, b, function(e)
        order[#order + 1] = "read"
        e:get_write():add(e:get_read())
      end, function(e)
        order[#order + 1] = "write " .. e:get_write():length()
      end, noop)
      bev:enable(EV_READ)
      run(base, 0) -- one round: the loop exits after the callbacks that round made ready
      assert.same({ "read", "write 0" }, order)
      a:settimeout(1)
      assert.equal("ping", a:receive(4))
      bev:close()
      a:close()
      b:close()
    end)

    it("a reply to a reset connection ends with EVBUFFER_ERROR | EVBUFFER_WRITE and the reason", function()
      -- The peer sends and resets: the bytes are read, and writing the reply meets the reset.
      local base = core.new()
      local a, b = tcp_pair()
      assert(a:send("hello"))
      assert(a:setoption("linger", { on = true, timeout = 0 }))
      a:close()
      socket.select(nil, nil, 0.05)
      local got, events, writes = "", {}, 0
      local bev
      bev = core.bufferevent.new(base, b, function(e)
        got = got .. e:get_read():get_data()
        e:get_write():add(e:get_read())
      end, function() writes = writes + 1 end, function(_, what, message)
        events[#events + 1] = { what = what, message = message }
        bev:close()
      end)
      bev:enable(EV_READ)
      assert.is_true(wait(base, function() return #events > 0 end), "no error callback")
      run(base, 0.05)
      assert.equal("hello", got)
      assert.equal(1, #events)
      assert.equal(EVBUFFER_ERROR + EVBUFFER_WRITE, events[1].what)
      assert.equal("string", type(events[1].message))
      assert.equal(0, writes)
      b:close()
    end)

    it("not after a callback stopped the loop: the reply waits for the next loop", function()
      local base = core.new()
      local a, b = tcp_pair()
      local writes = 0
      assert(a:send("ping"))
      local bev = core.bufferevent.new(base, b, function(e)
        e:get_write():add(e:get_read())
        error("stop here")
      end, function() writes = writes + 1 end, noop)
      bev:enable(EV_READ)
      local ok, err = pcall(run, base, 1)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("stop here", 1, true))
      assert.equal(0, writes)
      assert.equal(4, bev:get_write():length())
      assert.is_true(wait(base, function() return writes == 1 end), "the reply was not written later")
      a:settimeout(1)
      assert.equal("ping", a:receive(4))
      bev:close()
      a:close()
      b:close()
    end)
  end)

  -- libevent 2.1.12 calls the read callback again, without polling, after every run that leaves
  -- the input at the read high watermark (libevent issue #891): a callback waiting for something
  -- else to drain the input spun the loop at full CPU. The module stops reading until a drain.
  describe("at the read high watermark #cbug", function()
    -- A bufferevent on `b` whose input fills to `high` from 40,000 bytes sent on `a`; `on_read`
    -- (optional) runs in each read callback, after its input length is recorded in `seen`.
    local function stuck_at_high(base, high, on_read)
      local a, b = tcp_pair()
      assert.equal(40000, a:send(("x"):rep(40000)))
      local seen = {}
      local bev = core.bufferevent.new(base, b, function(e)
        seen[#seen + 1] = e:get_read():length()
        if on_read then on_read(e) end
      end, nil, noop)
      bev:set_read_watermarks(0, high)
      assert.equal(0, bev:enable(EV_READ))
      assert.is_true(wait(base, function() return bev:get_read():length() >= high end), "the input did not fill")
      return bev, seen, a, b
    end

    it("runs the read callback once, not on every loop round, when nothing drains the input", function()
      local base = core.new()
      local bev, seen, a, b = stuck_at_high(base, 10000)
      local calls = #seen
      assert.is_true(calls >= 1 and calls <= 3, calls .. " read callbacks while filling 10000 bytes")
      -- Only loopexit ends these loops: with the spin, each round ran the callback again.
      for _ = 1, 5 do run(base, 0.02) end
      assert.equal(calls, #seen)
      assert.equal(10000, bev:get_read():length())
      bev:close()
      a:close()
      b:close()
    end)

    it("resumes reading and calling back once something else drains the input", function()
      local base = core.new()
      local total, timer_ran = 0, false
      local bev, seen, a, b = stuck_at_high(base, 10000, function(e)
        if timer_ran then -- after the timer's drain, take the rest as it comes
          total = total + e:get_read():length()
          e:get_read():drain(-1)
        end
      end)
      local calls = #seen
      run(base, 0.02)
      assert.equal(calls, #seen)
      -- A timer, not the read callback, takes the first 10000 bytes (kept referenced, or the
      -- collector may cancel it).
      local timer = base:addevent(nil, EV_TIMEOUT, function()
        local input = bev:get_read()
        timer_ran = true
        total = total + input:length()
        input:drain(-1)
        return -1
      end, 0.01)
      assert.is_true(wait(base, function() return total >= 40000 end), "only " .. total .. " of 40000 bytes came")
      assert.equal(40000, total)
      assert.is_true(timer_ran)
      assert.is_true(#seen > calls)
      for _, size in ipairs(seen) do
        assert.is_true(size <= 10000, "a read callback saw " .. size .. " bytes")
      end
      timer:close()
      bev:close()
      a:close()
      b:close()
    end)

    it("calls a callback that takes a little each time again until the input is below it", function()
      -- The watermark is lowered under the input, so one line per callback leaves it above.
      -- As in libevent, nothing calls back for what is left below the watermark.
      local base = core.new()
      local a, b = tcp_pair()
      local lines, lowered = {}, false
      local bev = core.bufferevent.new(base, b, function(e)
        if not lowered then
          e:set_read_watermarks(0, 10)
          lowered = true
        end
        local line = e:get_read():readline()
        if line then lines[#lines + 1] = line end
      end, nil, noop)
      -- 100 bytes waiting in the kernel: one read takes them all.
      assert(a:send(("line\n"):rep(20)))
      assert.is_true(readable(b, 1))
      bev:enable(EV_READ)
      assert.is_true(wait(base, function() return bev:get_read():length() < 10 end), #lines .. " lines taken")
      for _ = 1, 3 do run(base, 0.02) end
      assert.equal(19, #lines)
      assert.equal("line\n", bev:get_read():get_data())
      bev:close()
      a:close()
      b:close()
    end)

    -- Lowering the watermark under a parked input, then draining a little, leaves the input
    -- still at the watermark: the drain schedules one more read callback for the next round.
    local function drain_a_little_from_a_timer(base, bev, after)
      local done = false
      local timer = base:addevent(nil, EV_TIMEOUT, function()
        bev:set_read_watermarks(0, 100)
        bev:get_read():drain(10)
        if after then after() end
        done = true
        return -1
      end, 0.01)
      assert.is_true(wait(base, function() return done end), "the timer did not run")
      for _ = 1, 3 do run(base, 0.02) end
      timer:close()
    end

    it("calls back once more when a drain leaves the input still at the watermark", function()
      local base = core.new()
      local bev, seen, a, b = stuck_at_high(base, 10000)
      local calls = #seen
      drain_a_little_from_a_timer(base, bev)
      assert.same(calls + 1, #seen)
      assert.equal(9990, seen[#seen])
      bev:close()
      a:close()
      b:close()
    end)

    it("runs no read callback already scheduled once disable(EV_READ) is called", function()
      local base = core.new()
      local bev, seen, a, b = stuck_at_high(base, 10000)
      local calls = #seen
      drain_a_little_from_a_timer(base, bev, function() assert.equal(0, bev:disable(EV_READ)) end)
      assert.equal(calls, #seen)
      assert.equal(9990, bev:get_read():length())
      bev:close()
      a:close()
      b:close()
    end)

    it("stays disabled after disable(), and reads again after enable() or a higher watermark", function()
      local base = core.new()
      local bev, seen, a, b = stuck_at_high(base, 10000)
      local calls = #seen
      assert.equal(0, bev:disable(EV_READ))
      bev:get_read():drain(5000) -- would end the module's own pause, not Lua's disable
      for _ = 1, 3 do run(base, 0.02) end
      assert.equal(5000, bev:get_read():length())
      assert.equal(calls, #seen)
      assert.equal(0, bev:enable(EV_READ))
      assert.is_true(wait(base, function() return bev:get_read():length() == 10000 end), "reading did not resume")
      -- Stuck again; raising the watermark lets the next 10000 bytes in without any drain.
      for _ = 1, 3 do run(base, 0.02) end
      calls = #seen
      bev:set_read_watermarks(0, 20000)
      assert.is_true(wait(base, function() return bev:get_read():length() == 20000 end), "reading did not resume")
      assert.is_true(#seen > calls)
      -- And no limit at all takes the rest (40000 sent, 5000 drained).
      bev:set_read_watermarks(0, 0)
      assert.is_true(wait(base, function() return bev:get_read():length() == 35000 end), "reading did not resume")
      bev:close()
      a:close()
      b:close()
    end)

    -- libevent finishes freeing a bufferevent in a finalizer run by the loop; event_base_free
    -- skipped it for one stopped at its high watermark: 11 KB lost per bufferevent (memcheck).
    it("frees a bufferevent closed there even if its base goes without another loop", function()
      local function resident_kib()
        local statm = assert(io.open("/proc/self/statm"))
        local _, resident = statm:read("*n", "*n")
        statm:close()
        return assert(resident) * 4
      end
      local function cycle()
        local base = core.new()
        local bev, _, a, b = stuck_at_high(base, 10000)
        bev:close()
        base = nil
        a:close()
        b:close()
        full_gc()
      end
      for _ = 1, 30 do cycle() end
      local before = resident_kib()
      for _ = 1, 300 do cycle() end
      -- Under tests/memcheck/run.sh, valgrind's leak check judges these cycles instead: its
      -- allocator holds freed memory back, so resident memory grows there anyway.
      if os.getenv("LUAEVENT_UNDER_VALGRIND") then
        helpers.skip("resident memory is not measured under valgrind (its leak check judges these cycles)")
        return
      end
      local grown = resident_kib() - before
      -- The leak was 11 KiB per cycle: 3300 KiB here.
      assert.is_true(grown < 1500, "resident memory grew by " .. grown .. " KiB over 300 cycles")
    end)
  end)
end)
