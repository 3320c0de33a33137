-- core.dns: resolvers, their requests and their lifecycle, against a DNS server the specs run
-- on a loopback port (dns_server.lua). Nothing here asks the system's name servers: the
-- system-configured resolver only looks up names in /etc/hosts.
local core = require "luaevent.core"
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local helpers = dofile(dir .. "helpers.lua")
local dns_server = dofile(dir .. "dns_server.lua")

local function fd_count()
  local n = 0
  for fd = 0, 1023 do
    local f = io.open("/proc/self/fd/" .. fd)
    if f then f:close() n = n + 1 end
  end
  return n
end

describe("core.dns #ours", function()
  local base, server

  before_each(function()
    base = core.new()
    server = dns_server.start(base)
  end)

  after_each(function()
    server:close()
    base = nil
    helpers.full_gc()
  end)

  local function resolver(options)
    options = options or {}
    options.nameservers = options.nameservers or { server.address }
    return core.dns.new(base, options)
  end

  -- Resolves `name`; returns the callback's two arguments (waits at most 3 s).
  local function resolve(r, name, family)
    local done, list, message = false, nil, nil
    local request = r:resolve(name, function(a, b) done, list, message = true, a, b end, family)
    assert(helpers.wait(base, function() return done end), "no answer for " .. name)
    return list, message, request
  end

  describe("answers", function()
    it("gives the IPv4 address of an A-only name", function()
      assert.are.same({ "127.0.0.1" }, resolve(resolver(), "v4.test"))
      assert.are.same({ "127.0.0.1" }, resolve(resolver(), "v4.test", "inet"))
    end)

    it("gives the IPv6 address of an AAAA-only name", function()
      assert.are.same({ "::1" }, resolve(resolver(), "v6.test"))
      assert.are.same({ "::1" }, resolve(resolver(), "v6.test", "inet6"))
    end)

    it("gives IPv6 addresses first, then IPv4, for family any", function()
      local r = resolver()
      assert.are.same({ "::1", "127.0.0.1" }, resolve(r, "both.test"))
      assert.are.same({ "::1", "::2", "127.0.0.1", "127.0.0.2" }, resolve(r, "many.test", "any"))
      assert.are.same({ "127.0.0.1", "127.0.0.2" }, resolve(r, "many.test", "inet"))
      assert.are.same({ "::1", "::2" }, resolve(r, "many.test", "inet6"))
    end)

    it("matches names in any letter case", function()
      assert.are.same({ "::1", "127.0.0.1" }, resolve(resolver(), "BoTh.TeSt"))
    end)

    it("says a name does not exist, naming it", function()
      local list, message = resolve(resolver(), "nxdomain.test")
      assert.is_nil(list)
      assert.are.equal("nxdomain.test: no such name", message)
    end)

    it("says when the name servers give nothing usable", function()
      local list, message = resolve(resolver(), "servfail.test")
      assert.is_nil(list)
      assert.are.equal("servfail.test: no usable answer from the name servers", message)
      assert.is_nil((resolve(resolver(), "v4.test", "inet6")))
    end)

    it("says a lookup timed out when the name server never answers", function()
      local r = resolver { timeout = 0.1, attempts = 1 }
      local started = helpers.now()
      local list, message = resolve(r, "silent.test", "inet")
      assert.is_nil(list)
      assert.are.equal("silent.test: timed out", message)
      assert.is_true(helpers.now() - started < 2)
    end)

    it("tries as many times as options.attempts says", function()
      local r = resolver { timeout = 0.05, attempts = 3 }
      resolve(r, "silent.test", "inet")
      assert.are.equal(3, server.asked["silent.test"])
    end)

    it("answers literal addresses without asking, from the loop", function()
      local r = resolver()
      local called = false
      r:resolve("192.0.2.7", function() called = true end)
      assert.is_false(called) -- never from inside resolve
      assert.are.same({ "192.0.2.7" }, resolve(r, "192.0.2.7"))
      assert.are.same({ "2001:db8::1" }, resolve(r, "2001:db8::1"))
      assert.are.equal(0, server.queries)
    end)

    it("reads a hosts file given as options.hosts, from the loop", function()
      local path = helpers.temp_file("192.0.2.10 alias.test\n2001:db8::10 alias.test\n")
      local r = resolver { hosts = path }
      local called = false
      r:resolve("alias.test", function() called = true end)
      assert.is_false(called)
      assert.are.same({ "2001:db8::10", "192.0.2.10" }, resolve(r, "alias.test"))
      assert.are.equal(0, server.queries)
      os.remove(path)
    end)

    it("reads no hosts file with options.hosts = false", function()
      local list, message = resolve(resolver { hosts = false }, "localhost")
      assert.is_nil(list)
      assert.are.equal("localhost: no such name", message)
      assert.are.equal(1, server.asked["localhost"] and 1 or 0)
    end)

    it("takes an IPv6 name server, bracketed with a port", function()
      local ok, server6 = pcall(dns_server.start, base, { ipv6 = true })
      if not ok then return end -- no IPv6 loopback on this machine
      assert.are.same({ "::1", "127.0.0.1" }, resolve(core.dns.new(base, { nameservers = { server6.address } }), "both.test"))
      assert.are.equal(1, server6.queries > 0 and 1 or 0)
      server6:close()
    end)

    it("reads the system configuration without options (localhost from /etc/hosts)", function()
      local list = resolve(core.dns.new(base), "localhost", "inet")
      assert.are.same({ "127.0.0.1" }, list)
    end)
  end)

  describe("lifecycle", function()
    it("cancel: the callback runs once, with nil and 'cancelled'", function()
      local r = resolver()
      local calls = {}
      local request = r:resolve("silent.test", function(...) calls[#calls + 1] = { ... } end)
      request:cancel()
      request:cancel()
      assert.are.equal(0, #calls) -- from the loop, not from cancel
      helpers.run(base, 0.05)
      assert.are.same({ { nil, "cancelled" } }, calls)
    end)

    it("cancel after the callback ran does nothing", function()
      local r = resolver()
      local calls = 0
      local request = r:resolve("v4.test", function() calls = calls + 1 end)
      assert.is_true(helpers.wait(base, function() return calls == 1 end))
      request:cancel()
      helpers.run(base, 0.05)
      assert.are.equal(1, calls)
    end)

    it("cancel wins over an answer that arrived but was not delivered yet", function()
      local r = resolver()
      local got
      local request = r:resolve("127.0.0.1", function(...) got = { ... } end)
      request:cancel()
      helpers.run(base, 0.05)
      assert.are.same({ nil, "cancelled" }, got)
    end)

    it("close ends pending requests as cancelled, is idempotent, and refuses new ones", function()
      local r = resolver()
      local results = {}
      for i = 1, 3 do
        r:resolve("silent.test", function(...) results[i] = { ... } end)
      end
      r:close()
      r:close()
      helpers.run(base, 0.05)
      assert.are.same({ { nil, "cancelled" }, { nil, "cancelled" }, { nil, "cancelled" } }, results)
      local err = helpers.error_of(r.resolve, r, "v4.test", print)
      assert.matches("attempt to use a closed resolver", err)
    end)

    it("closing the resolver inside a request callback cancels the others once", function()
      local r = resolver()
      local calls = { 0, 0 }
      local messages = {}
      r:resolve("v4.test", function() calls[1] = calls[1] + 1; r:close() end)
      r:resolve("silent.test", function(_, m) calls[2] = calls[2] + 1; messages[#messages + 1] = m end)
      assert.is_true(helpers.wait(base, function() return calls[2] > 0 end))
      helpers.run(base, 0.05)
      assert.are.same({ 1, 1 }, calls)
      assert.are.same({ "cancelled" }, messages)
    end)

    it("cancelling another request from inside a callback", function()
      local r = resolver()
      local other_calls, second
      other_calls = 0
      second = r:resolve("silent.test", function(_, m) other_calls = other_calls + 1 end)
      r:resolve("v6.test", function() second:cancel(); second:cancel() end)
      assert.is_true(helpers.wait(base, function() return other_calls > 0 end))
      helpers.run(base, 0.05)
      assert.are.equal(1, other_calls)
    end)

    it("a request object nobody keeps still completes", function()
      local r = resolver()
      local got
      r:resolve("both.test", function(list) got = list end)
      helpers.full_gc()
      assert.is_true(helpers.wait(base, function() return got ~= nil end))
      assert.are.same({ "::1", "127.0.0.1" }, got)
    end)

    it("collecting the resolver with requests pending cancels them, each once", function()
      local calls, messages = 0, {}
      do
        local r = resolver()
        for _ = 1, 3 do
          r:resolve("silent.test", function(_, m) calls = calls + 1; messages[#messages + 1] = m end)
        end
      end
      helpers.full_gc()
      helpers.run(base, 0.05)
      helpers.full_gc()
      helpers.run(base, 0.05)
      assert.are.equal(3, calls)
      assert.are.same({ "cancelled", "cancelled", "cancelled" }, messages)
    end)

    it("collecting the base and its resolver with requests pending frees everything", function()
      helpers.full_gc()
      local before = fd_count()
      for _ = 1, 20 do
        local b = core.new()
        local r = core.dns.new(b, { nameservers = { server.address }, timeout = 5 })
        r:resolve("silent.test", function() error("must not run") end)
        r:resolve("127.0.0.1", function() end)
        -- a callback that refers to its base and resolver does not keep them alive
        r:resolve("v4.test", function() return b, r end)
      end
      helpers.full_gc()
      helpers.full_gc()
      assert.is_true(fd_count() <= before + 1, "fds leaked: " .. before .. " before, " .. fd_count() .. " after")
    end)

    it("a resolver whose base was collected refuses lookups", function()
      local r = core.dns.new(core.new(), { nameservers = { server.address } })
      helpers.full_gc()
      local err = helpers.error_of(r.resolve, r, "v4.test", print)
      assert.matches("resolver:resolve: the event base of this resolver was collected", err, 1, true)
      r:close()
    end)

    it("an idle resolver does not keep the loop running", function()
      -- In a child interpreter, bounded by `timeout`: a loopexit cap would keep the loop running.
      local output = helpers.child_output([[
local core = require "luaevent.core"
local b = core.new()
local r = core.dns.new(b, { nameservers = { "127.0.0.1:9" }, hosts = false })
local got
r:resolve("127.0.0.1", function(list) got = list[1] end)
io.write(tostring(b:loop()), " ", tostring(got), " ")
r:resolve("127.0.0.2", function(list) got = list[1] end)
io.write(tostring(b:loop()), " ", tostring(got))
]], 'timeout 10 $LUA "$SCRIPT" 2>&1')
      assert.are.equal("1 127.0.0.1 1 127.0.0.2", output)
    end)

    it("an error in a request callback reaches loop(); the other callbacks wait for the next loop", function()
      local r = resolver()
      local later = 0
      r:resolve("127.0.0.1", function() error("from the callback") end)
      r:resolve("127.0.0.2", function() later = later + 1 end)
      base:loopexit(2)
      local ok, err = pcall(base.loop, base)
      assert.is_false(ok)
      assert.matches("from the callback", err)
      assert.are.equal(0, later)
      assert.is_true(helpers.wait(base, function() return later > 0 end))
      helpers.run(base, 0.05)
      assert.are.equal(1, later)
    end)

    it("many lookups at once each complete once", function()
      local r = resolver()
      local counts = {}
      local names = { "v4.test", "v6.test", "both.test", "nxdomain.test", "127.0.0.1" }
      for i = 1, 100 do
        r:resolve(names[i % #names + 1], function() counts[i] = (counts[i] or 0) + 1 end)
      end
      assert.is_true(helpers.wait(base, function()
        for i = 1, 100 do if not counts[i] then return false end end
        return true
      end))
      helpers.run(base, 0.05)
      for i = 1, 100 do assert.are.equal(1, counts[i]) end
    end)
  end)

  describe("errors", function()
    local function new_error(options)
      return helpers.error_of(function() local r = core.dns.new(base, options) end)
    end

    it("names the option that is wrong", function()
      assert.matches("bad argument #2 to 'new' (unknown option 'nameserver')", new_error { nameserver = "1.2.3.4" }, 1, true)
      assert.matches("options.timeout: a number of seconds > 0 expected, got -1", new_error { timeout = -1 }, 1, true)
      assert.matches("options.timeout: a number of seconds > 0 expected, got string", new_error { timeout = "1" }, 1, true)
      assert.matches("options.attempts: an integer from 1 to 255 expected, got 0", new_error { attempts = 0 }, 1, true)
      assert.matches("options.attempts: an integer from 1 to 255 expected, got 1.5", new_error { attempts = 1.5 }, 1, true)
      assert.matches("options.nameservers[2]: invalid address 'nowhere'", new_error { nameservers = { "127.0.0.1", "nowhere" } }, 1, true)
      assert.matches("options.nameservers[1]: an address string expected, got number", new_error { nameservers = { 53 } }, 1, true)
      assert.matches("options.nameservers: at least one address expected", new_error { nameservers = {} }, 1, true)
      assert.matches("options.nameservers: a list of addresses expected, got string", new_error { nameservers = "127.0.0.1" }, 1, true)
      assert.matches("options.hosts: a file path or false expected, got boolean", new_error { hosts = true }, 1, true)
      assert.matches("bad argument #2 to 'new' (table or nil expected, got number)", new_error(5), 1, true)
      assert.matches("bad argument #1 to 'new' (event base expected, got no value)", helpers.error_of(function() local r = core.dns.new() end), 1, true)
    end)

    it("says when the hosts file cannot be read", function()
      assert.matches("core.dns.new: could not read the hosts file '/nonexistent/hosts': No such file or directory",
        new_error { hosts = "/nonexistent/hosts" }, 1, true)
    end)

    it("checks resolve's arguments", function()
      local r = resolver()
      local function resolve_error(...)
        local args = { n = select("#", ...), ... }
        local unpack_ = table.unpack or unpack
        return helpers.error_of(function() local q = r:resolve(unpack_(args, 1, args.n)) end)
      end
      assert.matches("bad argument #1 to 'resolve' (string expected, got nil)", resolve_error(nil, print), 1, true)
      assert.matches("bad argument #1 to 'resolve' (a non-empty name expected)", resolve_error("", print), 1, true)
      assert.matches("bad argument #1 to 'resolve' (the name contains a NUL byte)", resolve_error("a\0b", print), 1, true)
      assert.matches("bad argument #2 to 'resolve' (function expected, got no value)", resolve_error("v4.test"), 1, true)
      assert.matches("bad argument #3 to 'resolve' ('inet', 'inet6' or 'any' expected, got 'ipv4')",
        resolve_error("v4.test", print, "ipv4"), 1, true)
      assert.matches("bad argument #1 to 'resolve' (resolver expected, got userdata)", helpers.error_of(function() local q = r.resolve(base, "v4.test", print) end), 1, true)
    end)
  end)

  it("refuses a resolver whose name server sockets select could not watch (beyond FD_SETSIZE)", function()
    -- glibc aborts a program that puts such a descriptor in an fd_set, as libevent's select
    -- backend would once the first question is sent.
    local out = helpers.on_select_backend([[
      local core = require "luaevent.core"
      local base = core.new()
      io.write("backend ", base:method(), "\n")
      local fine = core.dns.new(base, { nameservers = { "127.0.0.1:9" }, hosts = false })
      io.write("below the limit: ", type(fine), "\n")
      fine:close()
      hold_fds_until(1024) -- the name server's socket would come next
      local ok, err = pcall(core.dns.new, base, { nameservers = { "127.0.0.1:9", "127.0.0.1:10" }, hosts = false })
      io.write("beyond: ", tostring(err), "\n")
      io.write("survived\n")
    ]])
    if not out then
      helpers.skip("the limit on descriptors cannot be raised to 2048 here")
      return
    end
    assert.truthy(out:find("backend select", 1, true), out)
    assert.truthy(out:find("below the limit: userdata", 1, true), out)
    assert.truthy(out:find("beyond: core.dns.new: could not create a resolver: the sockets of its 2 name server(s) would be beyond FD_SETSIZE (1024), which the select backend cannot watch", 1, true), out)
    assert.truthy(out:find("survived", 1, true), out)
  end)

  -- libevent 2.1 allocates a deferred callback (600 bytes on 64-bit systems) as each DNS request
  -- ends, and when that fails it drops the request while the lookup still points at it. The
  -- module's memory functions serve that allocation from a reserve. Shown in a child process
  -- under tests/faults/failalloc.c failing exactly that allocation, once; and with
  -- LUAEVENT_KEEP_MEM_FUNCTIONS set (a host with memory functions of its own), libevent's
  -- default allocator makes that allocation (calloc, not the module's malloc).
  describe("memory", function()
    local shim
    local function failalloc()
      if shim == nil then
        shim = os.tmpname()
        local built = os.execute(("gcc -shared -fPIC -O2 -o %s %s../faults/failalloc.c -ldl 2>/dev/null"):format(shim, dir))
        if built ~= true and built ~= 0 then shim = false end
      end
      return shim
    end

    local function child(env)
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(("package.cpath = %q; package.path = %q\n"):format(package.cpath, package.path), [[
        local core = require "luaevent.core"
        local dns_server = dofile(]], ("%q"):format(dir .. "dns_server.lua"), [[)
        local base = core.new()
        local server = dns_server.start(base)
        local resolver = core.dns.new(base, { nameservers = { server.address }, hosts = false, timeout = 5 })
        os.getenv("FAILALLOC_ARM")
        local result
        resolver:resolve("v4.test", function(list, message) result = list and list[1] or message end, "inet")
        for _ = 1, 10 do
          if result ~= nil then break end
          base:loopexit(0.05)
          base:loop()
        end
        io.write("result: ", tostring(result), "\n")
        io.stdout:flush()
        -- Without closing the state: where libevent lost the request, tearing the resolver
        -- down would follow its pointer.
        os.exit(0)
      ]])
      f:close()
      local interpreter = arg and arg[-1] or "lua"
      local clear = "-u FAILALLOC_SKIP -u FAILALLOC_BURST -u FAILALLOC_PERIOD -u FAILALLOC_ODDS -u FAILALLOC_WHAT -u FAILALLOC_REPORT"
      local pipe = assert(io.popen(("timeout 20 env %s LD_PRELOAD=%s FAILALLOC_WAIT=1 FAILALLOC_SIZE=600 FAILALLOC_LIMIT=1 FAILALLOC_VERBOSE=1 %s %s %s 2>&1")
        :format(clear, shim, env, interpreter, script)))
      local output = pipe:read("*a")
      pipe:close()
      os.remove(script)
      return output
    end

    it("a lookup ends though libevent could not allocate its reply callback", function()
      if not failalloc() then
        helpers.skip("gcc could not build tests/faults/failalloc.c")
        return
      end
      local output = child("")
      assert.matches("failalloc: failing malloc(600)", output, 1, true)
      assert.matches("result: 127.0.0.1", output, 1, true)
      local kept = child("LUAEVENT_KEEP_MEM_FUNCTIONS=1")
      assert.matches("failalloc: failing calloc(600)", kept, 1, true)
      assert.matches("result: nil", kept, 1, true)
    end)

    teardown(function()
      if shim then os.remove(shim) end
    end)
  end)
end)
