-- The description of the luaevent-rs API: the one source of doc/api.md, the LuaLS addon in
-- types/ and the generated part of doc/migrating.md. Edit this file, then run `make docs`
-- (scripts/gen-docs.lua); tests/spec/reference_spec.lua fails when the generated files are
-- stale or when this description and the loaded modules disagree, and
-- tests/spec/examples_spec.lua runs every example and compares what it prints.
--
-- Shape (plain data; the only code is the small constructors just below):
--
--   title, intro        the reference's heading and opening text (Markdown)
--   types               named types: aliases, classes and callback signatures, written into
--                       the LuaLS files and described in the reference
--   classes             the object types the modules hand out (base, event, buffer, ...): their
--                       LuaLS class, the variable name the reference uses for an instance
--                       (`base`, `buf`, ...) and their metamethods
--   modules             `luaevent.core` and `luaevent`, each a list of sections; a section has
--                       a title, Markdown text, and entries
--   editor              the reference's closing section on the LuaLS addon
--   addon               the LuaLS addon's config.json (name, words, files)
--   differences         every difference from the C module; entries point at them by id, and
--                       doc/migrating.md lists them all
--
-- An entry is one function, method, callback signature, field or constant:
--   name        as the reference writes it: `core.new`, `core.buffer.new`, `base:addevent`,
--               `luaevent.send`, `wrapped:close`, `core.EV_READ`; a callback signature is
--               named after its type (`EventCallback`) and has `signature` for its heading
--   signature   optional: the heading's call form, when the parameters alone cannot say it
--               (alternative forms such as `get_data([begin,] [len])`)
--   summary     one sentence; text: the rest (Markdown)
--   params      { name, type, text, optional = true? } in order; `...` for varargs
--   returns     { name, type, text } in order (empty: returns nothing)
--   overloads   optional extra LuaLS signatures (`fun(...)` with short type names)
--   errors      { arg = <param name>, reason = ... }: a `bad argument` error, numbered as Lua
--               numbers it for this call form; or { message = ..., when = ... } for any other.
--               <angle brackets> stand for the variable part of a message.
--   differences ids from `differences`
--   examples    { code = <complete program>, output = <exactly what it prints>, title = ? }
--   fields:     type, and value when the value is fixed (checked against the loaded module)
--
-- Types are written in LuaLS syntax. A short name from `types` or `classes` (`Fd`, `Buffer`)
-- stands for its full name (`luaevent.core.Fd`, `luaevent.core.Buffer`).

local function arg(name, reason) return { arg = name, reason = reason } end
local function err(message, when) return { message = message, when = when } end

-- Why libevent refuses to change one end of a bufferevent's buffer: part of three messages.
local FROZEN = "(a bufferevent's input buffer takes data only from its socket, and its output buffer gives data only to it)"

-- The errors every fd argument can raise (see the Fd type).
local function fd_errors(name)
  return {
    arg(name, "socket or integer fd expected, got <type>"),
    arg(name, "invalid file descriptor (<n>)"),
    arg(name, "invalid file descriptor (-1): closed or not connected?"),
    arg(name, "number has no integer representation"),
    arg(name, "getfd failed: <message>"),
    arg(name, "socket or integer fd expected, getfd returned <type>"),
    arg(name, "getfd returned a non-integral number"),
  }
end

-- The error of a wrapper function that has to wait but is not in a coroutine.
local function wait_error(name)
  return err(name .. ": the socket is not ready, and only a coroutine can wait for it: call " .. name
    .. " inside a function run by luaevent.addthread or an addserver handler",
    "called outside a coroutine (from the main program, say) when the socket is not ready")
end

local function concat(...)
  local all = {}
  for _, list in ipairs({ ... }) do
    for _, item in ipairs(list) do all[#all + 1] = item end
  end
  return all
end

-- A loopback TCP connection, used by the socket examples (each example is a whole program, so
-- each repeats these lines).
local PAIR = [=[
local server = assert(socket.bind("127.0.0.1", 0))
local host, port = server:getsockname()
local client = assert(socket.connect(host, port))
local peer = assert(server:accept())]=]

local function with_pair(code)
  return (code:gsub("%-%-PAIR%-%-", function() return PAIR end))
end

return {
  title = "luaevent-rs API reference",

  intro = [[
This package provides two modules:

- **`luaevent.core`**, the native libevent binding (`luaevent/core.so`): event bases, events on
  file descriptors, timers and signals, byte buffers and buffered sockets.
- **`luaevent`**, a small pure-Lua layer (`luaevent.lua`) that runs LuaSocket code in coroutines
  on top of one event base, in the style of copas.

Both work on Lua 5.1, 5.2, 5.3, 5.4, 5.5 and LuaJIT 2.1, and keep the API of the C module luaevent
0.4.6 / 0.4.7. What changed for programs coming from the C module is in
[migrating.md](migrating.md); each entry below links to the differences that concern it.

Every entry gives the call, its parameters with their types, what it returns, the errors it
raises, and an example. Every example is a complete program, and prints exactly what is shown
under it (the test suite runs them all on every interpreter). From a checkout, run one with:

```sh
make build LUA=lua5.4
LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="build/lua5.4/?.lua;;" lua5.4 example.lua
```

Types are written as in the [LuaLS definitions](#editor-support) (`integer`, `string?` for an
optional string, `Fd` for a [file descriptor argument](#fd)).]],

  -- Sections of the reference before the modules' own: a title, Markdown text, and examples
  -- (run like the entries' ones) shown after the text; `after` is more text below them.
  guides = {
    {
      title = "Getting started",
      text = [[
One program with the three things most programs need: a server that accepts connections and
echoes them through bufferevents, a repeating timer, and a client that connects without
blocking. LuaSocket makes the sockets; luaevent tells when they are ready.]],
      examples = {
        {
          code = [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()

-- 1. An echo server. A listening socket is readable (EV_READ) when a client waits to be
--    accepted; each client then gets a bufferevent, which does the reading and writing.
local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(0)
local host, port = server:getsockname()
local clients = {}                               -- keep every bufferevent referenced
local acceptor = base:addevent(server, core.EV_READ, function()
  local conn = server:accept()
  if not conn then return end                    -- nothing to accept after all: keep waiting
  local bev = core.bufferevent.new(base, conn,
    function(bev) bev:get_write():add(bev:get_read()) end,  -- input straight to output
    nil,
    function(bev)                                -- end of file, error or timeout
      clients[bev] = nil
      bev:close()
      conn:close()
    end)
  bev:enable(core.EV_READ)
  clients[bev] = true
end)

-- 2. A repeating timer (every 0.05 s): it ends the loop once the client has its echo.
--    Returning nothing keeps it; core.LEAVE would remove it.
local reply
local timer = base:addevent(nil, core.EV_TIMEOUT, function()
  if reply then
    print("echoed: " .. reply)
    base:loopexit()                              -- the server would go on for ever
  end
end, 0.05)

-- 3. A non-blocking connect. The socket becomes writable (EV_WRITE) once the connection is
--    made or has failed; connecting again then tells which.
local sock = socket.tcp()
sock:settimeout(0)
sock:connect(host, port)                         -- nil, "timeout": under way
local client = base:addevent(sock, core.EV_WRITE, function(what)
  if what == core.EV_WRITE then
    local ok, err = sock:connect(host, port)
    if not ok and err ~= "already connected" then error("connect: " .. err) end
    sock:send("hello\n")
    return core.EV_READ                          -- now wait for the echo
  end
  reply = sock:receive("*l")
  sock:close()
  return core.LEAVE                              -- done: remove this event
end)

print(base:loop())                               -- 0: ended by loopexit
]=],
          output = "echoed: hello\n0\n",
        },
      },
      after = [[
What `EV_READ` and `EV_WRITE` mean depends on the socket's state:

- On a **listening** socket, `EV_READ` means a connection waits to be accepted: call `accept()`
  (after `settimeout(0)`, so that it never blocks; it may still return `nil` when the client
  went away meanwhile).
- On a socket **connecting without blocking** (`settimeout(0)`, then `connect` answered
  `nil, "timeout"`), `EV_WRITE` means the attempt is over: call `connect` again with the same
  address, which answers `nil, "already connected"` when it worked, or the reason it failed
  (`"connection refused"`).
- On a **connected** socket, `EV_READ` means data (or the end of the stream) can be read, and
  `EV_WRITE` that the socket takes more data.

Keep a reference to every event and bufferevent you need: an object the garbage collector
reclaims is closed. An error raised in any callback stops `base:loop()`, which raises it again
with a traceback (the base can loop again afterwards). [Loop lifetime](#loop-lifetime) tells
when `loop()` returns.

Larger programs, each runnable from a checkout as its first comment line shows:
[examples/timer_and_socket.lua](../examples/timer_and_socket.lua) (an echo server and client on
plain events, switching between `EV_READ` and `EV_WRITE` by what the callback returns),
[examples/bufferevent_echo.lua](../examples/bufferevent_echo.lua) (bufferevents with watermarks
and timeouts, twenty clients) and [examples/wrapper_echo.lua](../examples/wrapper_echo.lua) (the
same with the coroutine wrapper [`luaevent`](#luaevent), where each connection is straight-line
code in a coroutine of its own).]],
    },
    {
      title = "Loop lifetime",
      text = [[
`base:loop()` runs until one of these happens:

- **No events are left**: it returns `1`.
- **A `loopexit` takes effect**: it returns `0`.
- **A callback fails** (raises an error, or an event callback returns something invalid): it
  raises the error with a traceback. Nothing is removed: the events stay, and `loop()` may be
  called again.

What keeps it running, that is, what counts as an event:

- every event made by `base:addevent` until its callback returns `core.LEAVE`, it is closed
  (`event:close()`), or the garbage collector reclaims its object: an event you merely dropped
  keeps the loop running until the next collection, so close events instead of dropping them;
- every bufferevent that is reading (`bev:enable(core.EV_READ)`) or has output waiting to be
  written, until `bev:close()`;
- a **pending `loopexit(seconds)`**: libevent keeps it as a timer, so it keeps the loop running
  for the whole delay even when nothing else is left. `base:loopexit(5)` as a safety limit makes
  `loop()` run 5 seconds and return `0`, never `1`, however early the work is done; an empty
  base with `base:loopexit(0.5)` blocks for 0.5 seconds.

How to end it:

- close what you no longer need, and `loop()` returns `1` once nothing is left;
- call `base:loopexit()` (no argument) from the callback that finishes the work: the loop returns
  `0` once the callbacks of the current round have run;
- in the wrapper, `luaevent.loopexit()`; a server started by `luaevent.addserver` keeps the loop
  running until the event it returned is closed.

A pending `loopexit` lasts until it fires, whatever ended the loop meanwhile: each call ends one
loop. Made while the base is not looping, `loopexit()` ends the next `loop()` at once, before any
callback runs, and `loopexit(t)` ends it `t` seconds after the call. After a loop that ended
early (a callback error, another `loopexit`), a pending `loopexit(t)` carries into the next
`loop()` and ends it at its original deadline. A safety limit that should not outlive its loop
is better a timer of your own that you close afterwards:

```lua
local limit = base:addevent(nil, core.EV_TIMEOUT, function() error("took too long", 0) end, 5)
local ok, err = pcall(base.loop, base)
limit:close()
```]],
    },
  },

  -------------------------------------------------------------------------------- types ----
  types = {
    {
      name = "Fd", module = "luaevent.core", kind = "alias",
      type = "integer|lightuserdata|HasGetfd",
      summary = "A file descriptor argument.",
      text = [[
Wherever a function takes an `fd`, it accepts:

- an integer `>= 0` (a number with an integral value such as `3.0`, or a numeric string, also
  counts);
- a lightuserdata handle;
- any userdata or table with a `getfd` method, such as a LuaSocket socket; it is called as
  `obj:getfd()` and must return an integer `>= 0`. The object may be a table: the C module
  accepted only userdata.

Anything else is a `bad argument` error with one of these reasons: `socket or integer fd
expected, got <type>`, `invalid file descriptor (<n>)` (and
`invalid file descriptor (-1): closed or not connected?` from `getfd`: a LuaSocket socket that has
been closed, or not bound or connected yet, has fd -1), `number has no integer representation`,
`getfd failed: <message>` (an error raised by `getfd`, or
`getfd failed: socket or integer fd expected, got table without 'getfd'`),
`socket or integer fd expected, getfd returned <type>`, `getfd returned a non-integral number`.

Where the fd is to be watched for reading or writing (`base:addevent` with `EV_READ` or
`EV_WRITE`, `core.bufferevent.new`), it must also be open and something the base's backend can
watch: `bad file descriptor (<n> is not open)`; on epoll (Linux's backend),
`bad file descriptor (<n> is a regular file, which epoll cannot watch)` and
`bad file descriptor (<n> is a directory, which epoll cannot watch)` (poll, select and kqueue
take them, and report them ready at once); on select,
`bad file descriptor (<n> is beyond FD_SETSIZE, which select cannot watch)` for an fd of 1024 or
more (libc would abort the process).]],
    },
    {
      name = "HasGetfd", module = "luaevent.core", kind = "alias",
      type = "{ getfd: fun(self: any): integer }",
      summary = "Anything with a `getfd` method returning an fd (LuaSocket sockets).",
      text = [[
A structural type: any class with a `getfd` method matches it, whatever its name, so the
definitions of a LuaSocket addon (`TCPSocketClient`, `TCPSocketServer`, ...) are accepted as
they are, as are objects of your own.]],
    },
    {
      name = "TlsParams", module = "luaevent.core", kind = "class",
      summary = "The parameters of `core.tls.context`, shaped like LuaSec's (see [`core.tls.context`](#coretlscontext)).",
      fields = {
        { name = "mode", type = "\"client\"|\"server\"", text = "which end; required" },
        { name = "protocol", type = "string?", text = "the oldest protocol: `\"tlsv1_2\"` (default), `\"tlsv1_3\"`, `\"any\"`" },
        { name = "certificate", type = "string?", text = "PEM file of the certificate (and its chain)" },
        { name = "key", type = "string?", text = "PEM file of its private key" },
        { name = "password", type = "string|(fun(): string)|nil", text = "for an encrypted key" },
        { name = "cafile", type = "string?", text = "PEM file of the trusted certificates" },
        { name = "capath", type = "string?", text = "folder of trusted certificates (`openssl rehash`)" },
        { name = "verify", type = "string|string[]|table<string, boolean>|nil", text = "`\"none\"`, `\"peer\"`, `\"fail_if_no_peer_cert\"`, `\"client_once\"`" },
        { name = "depth", type = "integer?", text = "longest chain accepted" },
        { name = "ciphers", type = "string|string[]|nil", text = "TLS 1.2 ciphers (OpenSSL syntax)" },
        { name = "ciphersuites", type = "string|string[]|nil", text = "TLS 1.3 cipher suites" },
        { name = "curve", type = "string?", text = "one key exchange group" },
        { name = "curveslist", type = "string|string[]|nil", text = "key exchange groups" },
        { name = "dhparam", type = "string|(fun(export: boolean, bits: integer): string)|nil", text = "PEM file of DH parameters, or a function returning PEM text" },
        { name = "alpn", type = "string|string[]|nil", text = "protocols offered (client) or accepted (server)" },
        { name = "options", type = "string|string[]|table<string, boolean>|nil", text = "OpenSSL options by LuaSec's names" },
        { name = "verifyext", type = "string|string[]|table<string, boolean>|nil", text = "`\"lsec_continue\"`, `\"lsec_ignore_purpose\"`" },
      },
    },
    {
      name = "Callable", module = "luaevent.core", kind = "class",
      summary = "A table or userdata whose metatable has a `__call` metamethod.",
      text = [[
Every callback argument accepts a function or any callable object: a table (or userdata) whose
metatable has `__call`. Functions made by `coroutine.wrap` are functions and work too. In the
LuaLS definitions, give your callable object's class this one as a parent
(`---@class MyHandler: luaevent.core.Callable`).]],
      call = "fun(self: any, ...: any): any",
    },
    {
      name = "EventCallback", module = "luaevent.core", kind = "callback",
      signature = "callback(what)",
      summary = "The callback of an event made by `base:addevent`.",
      text = [[
Called with the bits that fired: `EV_READ`, `EV_WRITE`, `EV_TIMEOUT` or `EV_SIGNAL`, possibly
added together. What it returns decides what happens to the event:

| callback returns | effect |
| --- | --- |
| nothing, or `nil` | `newEvents` is taken to be `what` |
| `core.LEAVE` (-1) | the event is removed, as by `event:close()` |
| an integer mask | the event is re-registered with that mask if it differs from `what` |
| a mask and a number `>= 0` | ... and with that timeout (in seconds) if it differs from the current one |
| a mask and a negative number or `nil` | the current timeout is kept |

The event is re-registered only when `newEvents ~= what` or the timeout changed; otherwise it
keeps everything it had. Consequences worth knowing:

- An event registered for `EV_READ + EV_WRITE` that fires with `EV_READ` and returns nothing (or
  `EV_READ`) stays registered for both.
- Returning a different mask without a timeout keeps the event without a timeout.
- Returning `core.EV_TIMEOUT` (or `0`) together with a timeout turns a socket event into a timer;
  returning `0, t` from a timer re-arms it with the new interval `t`.
- A returned timeout equal to the current one is no change (an event without a timeout counts
  as having 0).
- libevent does not re-arm a persistent event whose timeout is exactly 0: such a timer fires
  once and then stays registered but dormant until its callback or another call re-registers it.

The callback runs on the Lua thread (coroutine) that called `base:loop()`. An error raised in it
stops the loop, and `base:loop()` raises it again (see there); so does a return value the rules
above cannot use (a string, `1.5`, `-2`, a mask with unknown bits).]],
      params = {
        { name = "what", type = "integer", text = "the bits that fired, `EV_READ`, `EV_WRITE`, `EV_TIMEOUT` or `EV_SIGNAL`, possibly added together" },
      },
      returns = {
        { name = "newEvents", type = "integer?", text = "`core.LEAVE` to remove the event; a new mask; nothing to keep `what`" },
        { name = "newTimeout", type = "number?", text = "a new timeout in seconds; negative or absent keeps the current one" },
      },
      errors = {
        err("base:loop: event callback defined at <file>:<line> returned <x> as its new event mask (integer expected)", "the first result is not an integer (`<x>` is the number, `true` or `false`, or `a string value` and so on); raised by `base:loop`. `defined at <file>:<line>` names the callback (for a callable object, its `__call`) and is left out for a C function"),
        err("base:loop: event callback defined at <file>:<line> returned an invalid event mask (<n>)", "the first result has bits outside the event bits, or is negative other than -1; raised by `base:loop`"),
        err("base:loop: event callback defined at <file>:<line> returned <x> as its new timeout (2^31 seconds at most)", "the second result is above 2^31 seconds (or infinite); raised by `base:loop`"),
        err("base:loop: event callback defined at <file>:<line> returned an event mask libevent refuses (<n>)", "libevent refuses the new mask's combination of bits (`EV_SIGNAL` with `EV_READ`, say); raised by `base:loop`"),
      },
      differences = { "mask-switch-timeout", "callback-results-checked" },
      examples = {
        {
          title = "switching between writing, reading and a timeout",
          code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local names = { [core.EV_TIMEOUT] = "timeout", [core.EV_READ] = "read", [core.EV_WRITE] = "write" }
local ev = base:addevent(client, core.EV_WRITE, function(what)
  print("fired: " .. names[what])
  if what == core.EV_WRITE then
    client:send("ping\n")
    return core.EV_READ, 0.05          -- now wait for input, at most 0.05 s at a time
  elseif what == core.EV_TIMEOUT then
    peer:send("pong\n")                -- nothing came: make the peer answer
    return                             -- keep waiting for EV_READ
  else
    print("got " .. client:receive("*l"))
    return core.LEAVE
  end
end)
print("loop returned " .. base:loop())
]=],
          output = [[
fired: write
fired: timeout
fired: read
got pong
loop returned 1
]],
        },
        {
          title = "a callable table as the callback",
          code = [=[
local core = require "luaevent.core"
local base = core.new()

local counter = setmetatable({ n = 0 }, {
  __call = function(self, what)
    self.n = self.n + 1
    if self.n == 3 then return core.LEAVE end
  end,
})
local ev = base:addevent(nil, core.EV_TIMEOUT, counter, 0.01)
base:loop()
print("called " .. counter.n .. " times")
]=],
          output = "called 3 times\n",
        },
      },
    },
    {
      name = "BufferEventCallback", module = "luaevent.core", kind = "callback",
      signature = "callback(bev, what [, message])",
      summary = "The read, write and error (event) callbacks of a bufferevent.",
      text = [[
`bev` is the same userdata every time (`rawequal` to what `core.bufferevent.new` returned), and
the callbacks' return values are ignored.

| callback | when | `what` |
| --- | --- | --- |
| `readcb` | the input buffer holds at least the read low watermark (any data, by default) | `EVBUFFER_READ` |
| `writecb` | the output buffer has drained to the write low watermark (0 by default: all sent) | `EVBUFFER_WRITE` |
| `errorcb` | end of file, a socket error, or a timeout | `EVBUFFER_EOF`, `EVBUFFER_ERROR` or `EVBUFFER_TIMEOUT`, plus `EVBUFFER_READ` or `EVBUFFER_WRITE` for the direction |
| `errorcb` of a connecting bufferevent (`core.bufferevent.connect`) | the connection is up, has failed, or its `timeout` passed | `EVBUFFER_CONNECTED`, `EVBUFFER_ERROR` or `EVBUFFER_TIMEOUT` alone |

With `EVBUFFER_ERROR` the error callback gets a third argument, `message`: the system's reason
(`strerror` text such as `Connection reset by peer`), or for a failed connection one that names
the address (`could not connect to 127.0.0.1 port 1: Connection refused`). It is nil otherwise;
callbacks written for two arguments are unaffected.

For instance the peer closing the connection gives `EVBUFFER_EOF + EVBUFFER_READ` (17), and an
expired read timeout `EVBUFFER_TIMEOUT + EVBUFFER_READ` (65). An error raised in any of the three
callbacks stops the loop and is raised again by `base:loop()`, as for events.

On a TLS connection the same holds for the bytes on the wire. The output buffer holds the plain
text, which the TLS layer empties as soon as it has encrypted it; the write callback waits until
the encrypted bytes have been handed to the system too, so at the write low watermark 0 it means
"all sent" as for a plain connection, and closing there loses nothing. The end of file of a
peer's close notice comes once the bytes sent before it are in the input.]],
      params = {
        { name = "bev", type = "BufferEvent", text = "the bufferevent itself" },
        { name = "what", type = "integer", text = "`EVBUFFER_READ`, `EVBUFFER_WRITE`, or the error bits plus the direction" },
        { name = "message", type = "string?", optional = true, text = "with `EVBUFFER_ERROR`: why; nil otherwise" },
      },
      returns = {},
      differences = { "bufferevent-callbacks", "bufferevent-callback-errors" },
      examples = {
        {
          code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer,
  function(bev, what)                                 -- readcb
    print("read: " .. bev:get_read():readline())
  end,
  function(bev, what)                                 -- writecb
    print("write: all sent")
  end,
  function(bev, what)                                 -- errorcb
    print("error: " .. what .. " (EOF while reading: " .. core.EVBUFFER_EOF + core.EVBUFFER_READ .. ")")
    bev:close()
  end)
bev:enable(core.EV_READ)
bev:get_write():add("welcome\n")

local talk = base:addevent(client, core.EV_READ, function()
  print("client got: " .. client:receive("*l"))
  client:send("bye\n")
  client:close()
  return core.LEAVE
end)
base:loop()
]=],
          output = [[
write: all sent
client got: welcome
read: bye
error: 17 (EOF while reading: 17)
]],
        },
      },
    },
    {
      name = "ResolveCallback", module = "luaevent.core", kind = "callback",
      signature = "callback(addresses, message)",
      summary = "The callback of `resolver:resolve`: the addresses found, or why there are none.",
      text = [[
Runs exactly once per request, always from the loop (`base:loop()`), never from inside
`resolve` or `cancel`, even when the answer is known at once (a literal address, a name from the
hosts file). On success `addresses` is a list of address strings such as `"127.0.0.1"` and
`"::1"`: IPv6 addresses first, then IPv4 (the order RFC 6724 prefers on a machine with both;
within a family, the name server's order). On failure `addresses` is `nil` and `message` says
why, naming the name:

| message | when |
| --- | --- |
| `cancelled` | `request:cancel()`, or the resolver was closed or collected first |
| `<name>: no such name` | the name does not exist (NXDOMAIN) |
| `<name>: no IPv4 address`, `<name>: no IPv6 address`, `<name>: no address` | the hosts file lists the name, but not for the family asked for |
| `<name>: timed out` | no name server answered within `timeout` for each of the `attempts` |
| `<name>: no usable answer from the name servers` | a name server failure, or an answer without an address of the family asked for (libevent does not tell them apart) |
| `not enough memory` | memory ran out while the result was handed over |

An error raised in the callback stops the loop and is raised again by `base:loop()`, as for
events. Its return values are ignored. (One exception to "exactly once": when memory runs out
inside libevent's loop just as it schedules an answer, libevent 2.1 drops that answer, and the
callback runs only if the request is cancelled or its resolver closed.)]],
      params = {
        { name = "addresses", type = "string[]?", text = "the addresses, or `nil`" },
        { name = "message", type = "string?", text = "why there are none (only when `addresses` is `nil`)" },
      },
      returns = {},
      examples = {
        {
          code = [=[
local core = require "luaevent.core"
local base = core.new()
local path = os.tmpname()                -- a hosts file of our own
local file = assert(io.open(path, "w"))
file:write("192.0.2.1 v4only.example.test\n")
file:close()

local resolver = core.dns.new(base, { hosts = path, nameservers = { "127.0.0.1:53" } })
local function show(addresses, message)
  print(addresses and table.concat(addresses, " ") or "nil, " .. message)
end
resolver:resolve("v4only.example.test", show)
resolver:resolve("v4only.example.test", show, "inet6")
base:loop()
os.remove(path)
]=],
          output = "192.0.2.1\nnil, v4only.example.test: no IPv6 address\n",
        },
      },
    },
    {
      name = "Socket", module = "luaevent", kind = "class",
      summary = "A LuaSocket TCP object as the wrapper hands it out: the client given to an `addserver` handler.",
      text = [[
The wrapper's functions take any object with a `getfd` method ([`HasGetfd`](#hasgetfd)), so
sockets typed by a LuaSocket addon are accepted as they are. A handler may declare its client
with the addon's type (`---@param client TCPSocketClient`) or leave it to this class.]],
      fields = {
        { name = "getfd", type = "fun(self: any): integer", text = "the descriptor" },
        { name = "send", type = "fun(self: any, data: string, i?: integer, j?: integer): (integer|nil), string?, integer?", text = "LuaSocket's `send`" },
        { name = "receive", type = "fun(self: any, pattern?: string|integer, prefix?: string): (string|nil), string?, string?", text = "LuaSocket's `receive`" },
        { name = "connect", type = "fun(self: any, host: string, port: integer): (integer|nil), string?", text = "LuaSocket's `connect`" },
        { name = "accept", type = "fun(self: any): (luaevent.Socket|nil), string?", text = "LuaSocket's `accept`" },
        { name = "settimeout", type = "fun(self: any, timeout: number|nil, mode?: string): integer", text = "LuaSocket's `settimeout`" },
        { name = "close", type = "fun(self: any): integer", text = "LuaSocket's `close`" },
        { name = "getpeername", type = "fun(self: any): (string|nil), (integer|string)?, string?", text = "LuaSocket's `getpeername`: address, port, family" },
        { name = "getsockname", type = "fun(self: any): (string|nil), (integer|string)?, string?", text = "LuaSocket's `getsockname`: address, port, family" },
        { name = "shutdown", type = "fun(self: any, mode?: string): integer", text = "LuaSocket's `shutdown`" },
        { name = "setoption", type = "fun(self: any, option: string, value?: any): (integer|nil), string?", text = "LuaSocket's `setoption`" },
      },
    },
  },

  ------------------------------------------------------------------------------ classes ----
  classes = {
    {
      name = "Base", module = "luaevent.core", var = "base", made_by = "core.new",
      summary = "An event base: what events are registered on and what runs the loop.",
      text = [[
Made by `core.new()`. It is freed when it is garbage collected; events and bufferevents made on
it stay safe to close and collect after that. A method called on something else raises
`calling '<method>' on bad self (event base expected, got <type>)`.]],
      metamethods = { { name = "__gc", text = "frees the base (once nothing made on it needs it)" } },
    },
    {
      name = "Event", module = "luaevent.core", var = "event", made_by = "base:addevent",
      summary = "An event registered by `base:addevent`.",
      text = [[
The event stays registered only as long as this object is reachable from Lua: keep a reference
(a local that stays in scope, a table field) to every event you need. When the object is
collected, the event is removed. A callback that refers to its own event object keeps it alive
until it is closed.

Close an event before you close its socket. An event left registered on a descriptor that was
closed is stale: the descriptor number is soon reused by a new socket, and on epoll the new
socket's events may then never fire, and nothing reports it.]],
      metamethods = { { name = "__gc", text = "removes the event, as `event:close()` does" } },
      differences = { "event-close-safe" },
    },
    {
      name = "Buffer", module = "luaevent.core", var = "buf", made_by = "core.buffer.new",
      summary = "A byte buffer (libevent's evbuffer).",
      text = [[
A growable byte string that can be filled and drained cheaply and read from or written to a
descriptor. Buffers are binary-safe: NUL bytes and any other bytes pass through unchanged.
`#buf` is `buf:length()` and `tostring(buf)` is `buf:get_data()`. A method called on a closed
buffer raises `calling '<method>' on bad self (attempt to use a closed buffer)`.]],
      metamethods = {
        { name = "__len", text = "`#buf`, the same as `buf:length()`", operator = "len: integer" },
        { name = "__tostring", text = "`tostring(buf)`, the same as `buf:get_data()`" },
        { name = "__gc", text = "frees a buffer made by `core.buffer.new` (a bufferevent's buffer is only detached)" },
      },
    },
    {
      name = "BufferEvent", module = "luaevent.core", var = "bev", made_by = "core.bufferevent.new",
      summary = "A buffered socket (libevent's bufferevent).",
      text = [[
A socket with an input and an output buffer: libevent reads incoming bytes into the input
buffer and sends whatever is added to the output buffer, and calls back when there is something
to do. Like events, a bufferevent lives only as long as its object is reachable: keep a
reference. A method called on a closed bufferevent raises
`calling '<method>' on bad self (attempt to use a closed bufferevent)`.]],
      metamethods = { { name = "__gc", text = "frees the bufferevent, as `bev:close()` does" } },
    },
    {
      name = "Listener", module = "luaevent.core", var = "listener", made_by = "core.listener.new",
      summary = "A listening TCP socket (libevent's evconnlistener).",
      text = [[
Each accepted connection arrives as a new bufferevent. Like events, a listener lives only as
long as its object is reachable: keep a reference. A method called on a closed listener raises
`calling '<method>' on bad self (attempt to use a closed listener)`.]],
      metamethods = { { name = "__gc", text = "closes the listener, as `listener:close()` does" } },
    },
    {
      name = "TlsContext", module = "luaevent.core", var = "context", made_by = "core.tls.context",
      summary = "A TLS context: the configuration TLS connections are made with.",
      text = [[
Made by `core.tls.context(params)`. It has no methods: it is given to the functions that make
TLS connections (`options.tls` of `core.listener.new` and `core.bufferevent.connect`,
`bev:starttls`). It is freed when it is garbage collected.

**Security.** What a client context checks by default, without any parameter:

- the server's certificate chain, against the system's trusted certificates (OpenSSL's default
  store), and its dates;
- the server's name: `core.bufferevent.connect` checks the certificate against
  `options.servername`, else the host it connects to (an address is checked against the
  certificate's IP address entries); the name is also sent as SNI. A client `bev:starttls` checks
  `options.servername`, else the host the bufferevent was connected to by
  `core.bufferevent.connect`; with neither (a bufferevent made by `core.bufferevent.new` or
  accepted by a listener), a context that verifies refuses to start rather than check the chain
  alone;
- TLS 1.2 at least.

A failure ends the handshake: `eventcb(bev, core.EVBUFFER_ERROR, message)` with OpenSSL's reason
(`certificate verify failed: self-signed certificate`, `certificate verify failed: hostname
mismatch`). Only `verify = "none"` turns checking off (then `bev:tls()` still says what failed,
in `verified` and `verify_error`); `verifyext = "lsec_continue"` lets a failed verification go
on, for code that decides itself from `bev:tls()`.

To trust only your own CA (pinning it), give it as `cafile` (or a folder of them as `capath`):
the system's store is then not used. A server asks for client certificates with
`verify = { "peer", "fail_if_no_peer_cert" }` and the CAs it trusts for them in `cafile`.]],
      metamethods = { { name = "__gc", text = "frees the context (connections made from it keep what they need)" } },
    },
    {
      name = "Resolver", module = "luaevent.core", var = "resolver", made_by = "core.dns.new",
      summary = "An asynchronous DNS resolver (libevent's evdns) on one event base.",
      text = [[
Lookups run while the base loops and never block it. A resolver with nothing to do keeps no
event registered, so it never keeps `base:loop()` running. A method called on a closed resolver
raises `calling '<method>' on bad self (attempt to use a closed resolver)`.]],
      metamethods = { { name = "__gc", text = "closes the resolver, as `resolver:close()` does" } },
    },
    {
      name = "DnsRequest", module = "luaevent.core", var = "request", made_by = "resolver:resolve",
      summary = "A lookup started by `resolver:resolve`.",
      text = [[
Only a handle for cancelling: the lookup goes on, and its callback runs, whether or not the
request object is kept.]],
      metamethods = { { name = "__gc", text = "lets go of the handle; the lookup carries on" } },
    },
    {
      name = "Connection", module = "luaevent", var = "conn", made_by = "luaevent.dial",
      summary = "A TCP connection of the wrapper, made by `luaevent.dial` or handed to a `luaevent.serve` handler.",
      text = [[
A table around one bufferevent whose methods read like a LuaSocket TCP client's, for use from
coroutines: `receive` and `send` take LuaSocket's arguments and give its results (`nil` and a
message such as `"closed"` or `"timeout"`, with the partial result), and suspend the calling
coroutine while they wait. Called outside a coroutine, a method that would have to wait raises
`connection:<method>: ..., and only a coroutine can wait: ...` instead.

The connection is collected (and its socket closed) once nothing refers to it, no coroutine
waits on it and what `send` buffered has gone out: a handler that returns without closing its
connection lets it go, and loses nothing it sent. Neither does `close()`. At most one coroutine
may wait in `receive` and one in `send` at a time.]],
      fields = {
        { name = "bev", type = "BufferEvent", text = "the underlying bufferevent, for what the connection does not offer; the connection uses its callbacks, watermarks and timeouts itself, so leave those alone" },
      },
      metamethods = {},
    },
    {
      name = "WrappedSocket", module = "luaevent", var = "wrapped", made_by = "luaevent.wrap",
      summary = "A socket wrapped by `luaevent.wrap`.",
      text = [[
A table `{ socket = sock }` whose methods call the wrapper's helpers, so that code written for a
blocking socket object can run in a coroutine.]],
      fields = {
        { name = "socket", type = "Socket", text = "the wrapped socket" },
        { name = "timeout", type = "number?", text = "what `settimeout` stored" },
      },
      metamethods = {},
    },
  },

  ------------------------------------------------------------------------------ modules ----
  modules = {
    {
      name = "luaevent.core", var = "core", file = "luaevent/core.lua",
      summary = "The libevent binding: event bases, events, buffers and bufferevents.",
      text = [[
```lua
local core = require "luaevent.core"
```

Loading the module also sets `SIGPIPE` to "ignore" if it still has its default action (a handler
the program installed is left alone), so that writing to a socket whose peer has gone returns an
error instead of killing the process. LuaSocket does the same when it loads. If the libevent
library found at run time is not the one the module was built against (their `struct event`
sizes differ), `require` fails with `luaevent.core: the libevent loaded differs from the one
this module was built against; rebuild it`.]],
      differences = { "sigpipe", "libevent-mismatch" },
      sections = {
        {
          title = "Conventions",
          text = [[
#### Durations

Timeouts are in seconds as Lua numbers, fractions allowed, and are rounded to the nearest
microsecond (so `1e-06` is one microsecond). `0` is valid. A negative, NaN or infinite value, or
one above 2^31 seconds, is a `bad argument` error:
`timeout must be a number of seconds from 0 to 2^31 (2147483648), got -1`.

#### Event masks

Masks are combined by adding distinct bits (`core.EV_READ + core.EV_WRITE`), which works on every
interpreter; on Lua 5.3 and later `|` works too. To test a bit without bit operators:
`math.floor(mask / bit) % 2 == 1`.

#### Errors

Every error the module raises is a Lua string, never an error object.

- **Argument errors** read like Lua's own: `bad argument #<n> to '<name>' (<reason>)`. In method
  calls Lua does not count `self`, so `base:addevent(fd, nil, cb)` fails with
  `bad argument #2 to 'addevent' (number expected, got nil)`, and a method called on an object
  that was closed fails with, for example,
  `calling 'length' on bad self (attempt to use a closed buffer)`. Lua takes the function's name
  from the call site: called as `pcall(base.addevent, base, ...)` the name is `'?'` and `self`
  counts; in a tail call (`return obj:method(...)`) the name may come out as `'?'`, and LuaJIT
  then also counts `self`. Match on the reason in parentheses.
- **Every other error** starts with the function's name as this reference writes it, then `: `
  and the reason, then `: <strerror>` where libevent set `errno`; for example
  `base:loop: the event base is already looping`.
- Running out of memory raises Lua's own `not enough memory`.
- An error raised inside a callback reaches `base:loop()` unchanged, with a traceback appended.
  So does an error raised by Lua code that runs inside one of the module's own calls: a
  socket's `getfd` method (reported as `getfd failed: <message>`), or a finalizer (`__gc`) that
  Lua 5.1 to 5.3 and LuaJIT run while the module allocates and whose error they pass on (5.4
  and 5.5 turn such an error into a warning instead, which 5.5 prints by default).
- A bug in this module that makes its Rust code panic is caught and raised as
  `luaevent.core: internal error (a Rust panic was caught)`, never a crash.

Below, `<angle brackets>` stand for the variable part of a message, and each entry lists the
errors of its own arguments; every method can also raise the `bad self` error of its class
(`calling '<method>' on bad self (<reason>)`).]],
          types = { "Fd", "HasGetfd", "Callable" },
        },
        {
          title = "Threads and memory",
          text = [[
#### Several Lua states on several threads

Each Lua state may load and use the module on a thread of its own (Lua Lanes, a C program that
embeds Lua): a base and everything made on it belong to the Lua state that made them, and are
used wherever that state runs, never from two threads at once (Lua's own rule for a state).
After its first load the module changes no process-wide setting, so states on other threads
never see one change under them. libevent itself delivers a signal to one base at a time, for
the whole process: watch signals (`core.EV_SIGNAL`) from one thread only.

#### libevent's memory functions

The first `require "luaevent.core"` in a process sets libevent's memory functions
(`event_set_mem_functions`) once, before making any base, to functions that call the C
library's `malloc`, `realloc` and `free`. libevent 2.1 uses a few of its allocations without
checking them (the deferred callback of each DNS request that ends, the entry a read high
watermark adds): when `malloc` fails there, these functions hand libevent a block from a small
reserve that each thread using the module keeps (5 kB), refilled as soon as `malloc` succeeds
again, so that running out of memory is an error and never a crash.

A program that installs libevent memory functions of its own (it must do so before any
libevent call, libevent's rule) sets the environment variable `LUAEVENT_KEEP_MEM_FUNCTIONS`
before loading the module: the module then leaves them alone, and those few libevent
allocations are unchecked again, as in any program that uses libevent 2.1.]],
        },
        {
          title = "Module table",
          entries = {
            {
              name = "core.new",
              summary = "Creates an event base.",
              text = [[
The new base also becomes the "latest base", which the base-less form of
`core.bufferevent.new` binds to. A base needs a few file descriptors of its own (libevent's
epoll descriptor and signal socketpair).]],
              params = {},
              returns = { { name = "base", type = "Base", text = "the new event base" } },
              errors = {
                err("core.new: could not create an event base: <strerror>", "the process cannot open the descriptors a base needs (`Too many open files`), or libevent fails otherwise"),
              },
              differences = { "new-independent-base", "new-base-emfile" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
print(type(base))
print(base:method())
]=],
                  output = "userdata\nepoll\n",
                },
              },
            },
            {
              name = "core.libevent_version",
              summary = "The version string of the libevent library the module runs with.",
              params = {},
              returns = { { name = "version", type = "string", text = "such as `\"2.1.12-stable\"`" } },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local version = core.libevent_version()
-- Prints the major and minor version, e.g. "libevent 2.1" for 2.1.12-stable.
print("libevent " .. version:match("^(%d+%.%d+)"))
]=],
                  output = "libevent 2.1\n",
                },
              },
            },
            {
              name = "core._NAME",
              type = "string", value = "luaevent-rs",
              summary = "Which implementation `require \"luaevent.core\"` loaded.",
              text = "The C module has no `_NAME`, so `core._NAME or \"C luaevent\"` tells them apart.",
              differences = { "name-version" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
print(core._NAME or "C luaevent")
]=],
                  output = "luaevent-rs\n",
                },
              },
            },
            {
              name = "core._VERSION",
              type = "string",
              summary = "This module's version, such as `\"0.1.0\"` (the crate version).",
              differences = { "name-version" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
print(core._VERSION:match("^%d+%.%d+%.%d+") ~= nil)   -- a version such as "0.1.0"
]=],
                  output = "true\n",
                },
              },
            },
            {
              name = "core.buffer", type = "table",
              summary = "The table holding `core.buffer.new`, the [buffer](#buffers-corebuffer) constructor.",
            },
            {
              name = "core.bufferevent", type = "table",
              summary = "The table holding `core.bufferevent.new` and `core.bufferevent.connect`, the [bufferevent](#bufferevents-corebufferevent) constructors.",
            },
            {
              name = "core.listener", type = "table",
              summary = "The table holding `core.listener.new`, the [listener](#listeners-corelistener) constructor.",
            },
            {
              name = "core.tls", type = "table",
              summary = "The table holding `core.tls.context`, the [TLS context](#tls-contexts-coretls) constructor.",
            },
            {
              name = "core.dns", type = "table",
              summary = "The table holding `core.dns.new`, the [resolver](#dns-resolvers-coredns) constructor.",
              differences = { "dns-resolver" },
            },
          },
          constants = {
            intro = "All are integers taken from libevent's headers.",
            { name = "core.LEAVE", value = -1, text = "returned by an event callback: remove the event" },
            { name = "core.EV_TIMEOUT", value = 1, text = "event bit: the timeout expired" },
            { name = "core.EV_READ", value = 2, text = "event bit: the fd is readable; on a listening socket, a connection waits to be accepted" },
            { name = "core.EV_WRITE", value = 4, text = "event bit: the fd is writable; on a socket connecting without blocking, the attempt is over (connect again to learn how)" },
            { name = "core.EV_SIGNAL", value = 8, text = "event bit: the signal given as fd was delivered" },
            { name = "core.EV_PERSIST", value = 16, text = "persistent event; accepted by `addevent` but redundant (every event is persistent)" },
            { name = "core.EVBUFFER_READ", value = 1, text = "bufferevent: the read callback's `what`; in the error callback, \"while reading\"" },
            { name = "core.EVBUFFER_WRITE", value = 2, text = "bufferevent: the write callback's `what`; in the error callback, \"while writing\"" },
            { name = "core.EVBUFFER_EOF", value = 16, text = "bufferevent error callback: the peer closed the connection" },
            { name = "core.EVBUFFER_ERROR", value = 32, text = "bufferevent error callback: a socket error" },
            { name = "core.EVBUFFER_TIMEOUT", value = 64, text = "bufferevent error callback: a read or write timeout expired" },
            { name = "core.EVBUFFER_CONNECTED", value = 128, text = "bufferevent error callback: the connection `core.bufferevent.connect` started is up (libevent's `BEV_EVENT_CONNECTED`)" },
          },
        },
        {
          title = "Event base",
          class = "Base",
          entries = {
            {
              name = "base:addevent",
              summary = "Registers an event and returns its event object.",
              text = [[
The event is always registered persistent (`EV_PERSIST` is added), and stays registered only as
long as the returned object is reachable: see [`Event`](#event). With `EV_SIGNAL`, libevent
installs its own handler for the signal while the event is registered, and the callback receives
`EV_SIGNAL` each time the signal arrives. Signals are delivered to one base at a time: the one
that most recently added a signal event or started `loop()` (libevent's rule; the warning it
would print about it is not shown). Signal numbers run from 1 to 64 on Linux (31 elsewhere).

With `fd` set to `nil` the event is a pure timer: `EV_READ` or `EV_WRITE` need an `fd` (or a
socket); on a listening socket `EV_READ` means a connection can be accepted, and on a socket
connecting without blocking `EV_WRITE` means the connection is made or has failed (see
[Getting started](#getting-started)).]],
              params = {
                { name = "fd", type = "Fd|nil", text = "the descriptor to watch; `nil` for a pure timer (then `timeout` is required); with `EV_SIGNAL`, the signal number" },
                { name = "events", type = "integer", text = "a mask of `EV_READ`, `EV_WRITE`, `EV_TIMEOUT` and `EV_SIGNAL`; `0` makes a timer. `EV_PERSIST` may be included but changes nothing (libevent's `EV_ET`, 32, and `EV_CLOSED`, 128, are accepted too)" },
                { name = "callback", type = "EventCallback", text = "called as `callback(what)`, see [`EventCallback`](#eventcallback); a function or a [callable object](#callable)" },
                { name = "timeout", type = "number", optional = true, text = "seconds (see [Durations](#durations)); the event fires with `EV_TIMEOUT` whenever this long passes without it firing otherwise" },
              },
              returns = { { name = "event", type = "Event", text = "the event object; keep it referenced" } },
              errors = concat({
                arg("events", "number expected, got <type>"),
                arg("events", "number has no integer representation"),
                arg("events", "invalid event mask (<n>)"),
                arg("events", "libevent refused this event mask (<n>)"),
                arg("callback", "function expected, got <type>"),
                arg("timeout", "number expected, got <type>"),
                arg("timeout", "timeout must be a number of seconds from 0 to 2^31 (2147483648), got <x>"),
                arg("timeout", "timeout expected when fd is nil"),
                arg("fd", "fd expected with EV_READ or EV_WRITE, got nil (nil is for timers)"),
                arg("fd", "signal number expected with EV_SIGNAL, got nil"),
                arg("fd", "signal number expected with EV_SIGNAL, from 1 to <highest>, got <n>"),
                arg("fd", "bad file descriptor (<n> is not open)"),
                arg("fd", "bad file descriptor (<n> is a regular file, which epoll cannot watch)"),
                arg("fd", "bad file descriptor (<n> is beyond FD_SETSIZE, which select cannot watch)"),
              }, fd_errors("fd"), {
                err("base:addevent: libevent could not register the event on fd <n>: <strerror>", "libevent fails to add the event"),
                err("base:addevent: libevent could not register the event on signal <n>: <reason>", "libevent cannot watch the signal; `<reason>` is what libevent said, such as `sigaction: Invalid argument` for `SIGKILL` (9) and `SIGSTOP` (19), which no program can catch"),
                err("base:addevent: libevent could not register the event on signal <n>: libevent's signal descriptors on this base are beyond FD_SETSIZE, which select cannot watch", "on libevent's select backend, the base was made when no descriptor below FD_SETSIZE (1024) was free for libevent's signal socketpair (glibc would abort the process)"),
              }),
              differences = { "checked-fd-negative", "checked-fd-fraction", "checked-fd-table", "checked-lightuserdata", "checked-callable-table", "checked-nil-fd", "checked-mask", "checked-fd-not-open", "checked-fd-regular-file", "checked-fd-setsize", "checked-signal-nil", "checked-nil-fd-readwrite", "checked-signal-range", "checked-timeout", "timeout-rounding" },
              examples = {
                {
                  title = "a timer",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()

local ticks = 0
local timer = base:addevent(nil, core.EV_TIMEOUT, function(what)
  ticks = ticks + 1
  if ticks == 3 then return core.LEAVE end   -- remove the event after three ticks
end, 0.01)

print("loop returned " .. base:loop() .. " after " .. ticks .. " ticks")
]=],
                  output = "loop returned 1 after 3 ticks\n",
                },
                {
                  title = "a signal",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local SIGUSR1 = 10   -- on Linux

local on_signal = base:addevent(SIGUSR1, core.EV_SIGNAL, function(what)
  print("caught SIGUSR1: " .. tostring(what == core.EV_SIGNAL))
  return core.LEAVE
end)
-- Send the signal to this process once the loop runs ($PPID: the shell's parent, the interpreter).
local trigger = base:addevent(nil, 0, function()
  os.execute("kill -USR1 $PPID")
  return core.LEAVE
end, 0.01)
base:loop()
]=],
                  output = "caught SIGUSR1: true\n",
                },
                {
                  title = "a bad argument",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local ok, err = pcall(function() local ev = base:addevent(0, nil, print) end)
print(err:match("bad argument.*"))
]=],
                  output = "bad argument #2 to 'addevent' (number expected, got nil)\n",
                },
              },
            },
            {
              name = "base:loop",
              summary = "Runs the event loop: waits for events and calls their callbacks.",
              text = [[
It returns when one of these happens:

- no events are left: returns `1`;
- `base:loopexit()` takes effect: returns `0`;
- a callback raises an error (or returns something invalid, see
  [`EventCallback`](#eventcallback)): the loop stops after that callback and `loop` raises the
  error again, as a string made of the message and a traceback of the callback. Error values that
  are not strings are converted: numbers as `tostring` does, values with a `__tostring`
  metamethod through it, anything else as `(error object is a table value)`. The event whose
  callback failed stays as it was, and the base can loop again.

Callbacks run on the Lua thread (coroutine) that called `loop`. What keeps the loop running, and
the ways to end it: [Loop lifetime](#loop-lifetime).]],
              params = {},
              returns = { { name = "result", type = "integer", text = "`1` when no events were left, `0` after `loopexit`" } },
              errors = {
                err("<the callback's error message>\nstack traceback:\n<...>", "a callback raised an error"),
                err("base:loop: the event base is already looping", "`loop` is called on a base that is looping, for instance from one of its callbacks"),
                err("base:loop: event callback defined at <file>:<line> returned <...>", "an event callback returned something unusable (see [`EventCallback`](#eventcallback))"),
                err("base:loop: libevent could not re-register the event on fd <n>: <strerror>", "libevent fails to re-register an event whose callback changed its mask or timeout"),
                err("base:loop: event callback defined at <file>:<line> asked to watch fd <n>, but it is beyond FD_SETSIZE, which select cannot watch", "on the select backend, an event callback returned a mask with `EV_READ` or `EV_WRITE` for an fd of 1024 or more"),
              },
              differences = { "callback-errors-strings", "checked-loop-reentry" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local ev = base:addevent(nil, core.EV_TIMEOUT, function() error("disk full", 0) end, 0.01)

local ok, err = pcall(base.loop, base)
print(ok)
print(err:match("^[^\n]*"))                  -- the message; a traceback follows
print(err:find("stack traceback", 1, true) ~= nil)

ev:close()
print(base:loop())                          -- the base is usable again; no events left
]=],
                  output = "false\ndisk full\ntrue\n1\n",
                },
              },
            },
            {
              name = "base:loopexit",
              summary = "Asks the loop to stop after a while.",
              text = [[
Without an argument, or with `nil`, the loop stops once the callbacks of the current round have
run. Called while the base is not looping, it applies to the next `loop`. A pending exit keeps
the loop running until it fires, even with no events left, and outlives a loop that ended
otherwise: see [Loop lifetime](#loop-lifetime).]],
              params = {
                { name = "seconds", type = "number", optional = true, text = "how long the loop may still run (see [Durations](#durations))" },
              },
              returns = { { name = "result", type = "integer", text = "`0` on success" } },
              errors = {
                arg("seconds", "number expected, got <type>"),
                arg("seconds", "timeout must be a number of seconds from 0 to 2^31 (2147483648), got <x>"),
              },
              differences = { "loopexit-nil", "checked-timeout" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local beats = 0
local heartbeat = base:addevent(nil, 0, function() beats = beats + 1 end, 0.01)

base:loopexit(0.1)                  -- stop after 0.1 s even though the timer never ends
print(base:loop())
print(beats > 0)
]=],
                  output = "0\ntrue\n",
                },
              },
            },
            {
              name = "base:method",
              summary = "The name of the kernel mechanism libevent uses for this base.",
              text = [[
On epoll the base batches its changes to the kernel's interest list until the next dispatch
(libevent's "changelist"), which makes switching an event between `EV_READ` and `EV_WRITE`
cheap; the name reported is still `"epoll"`. libevent's caveat for this mode applies: do not
watch one socket under two descriptor numbers made with `dup()`.]],
              params = {},
              returns = { { name = "method", type = "string", text = "such as `\"epoll\"` on Linux or `\"kqueue\"` on BSD" } },
              differences = { "method-per-base", "changelist" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
print(core.new():method())
]=],
                  output = "epoll\n",
                },
              },
            },
          },
        },
        {
          title = "Events and callbacks",
          class = "Event",
          entries = {
            { callback = "EventCallback" },
            {
              name = "event:close",
              summary = "Removes the event and releases its callback.",
              text = [[
Closing twice is harmless, and it is safe from inside any callback: the event's own, or another
one, even for an event that already fired in the same round. An event object is also closed
when it is garbage collected.]],
              params = {},
              returns = {},
              differences = { "event-close-safe" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local a, b
a = base:addevent(nil, 0, function()
  print("a fires, closes b and itself")
  b:close()
  a:close()
  a:close()                         -- a second close does nothing
end, 0.01)
b = base:addevent(nil, 0, function() print("b fires") end, 0.02)
print(base:loop())                  -- 1: no events left
]=],
                  output = "a fires, closes b and itself\n1\n",
                },
              },
            },
          },
        },
        {
          title = "Buffers (core.buffer)",
          class = "Buffer",
          entries = {
            {
              name = "core.buffer.new",
              summary = "Returns a new, empty buffer.",
              text = "Arguments are ignored.",
              params = {},
              returns = { { name = "buf", type = "Buffer", text = "an empty buffer" } },
              errors = { err("not enough memory", "the buffer cannot be allocated") },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local buf = core.buffer.new()
print(#buf, buf:get_data() == "")
]=],
                  output = "0\ttrue\n",
                },
              },
            },
            {
              name = "buf:add",
              summary = "Appends each argument in order.",
              text = [[
Each argument is

- a string, appended as is;
- a number, appended as Lua's `tostring` formats it on the running interpreter (`42`, `1.5`;
  note that `2.0` gives `2.0` on Lua 5.3 and later, `2` on 5.1, 5.2 and LuaJIT, and that Lua 5.5
  writes as many digits as read back the same number: `1/3` gives `0.33333333333333331` there,
  `0.33333333333333` before);
- another buffer, whose bytes are **moved**: it is left empty.

At least one argument is required. All arguments are checked before anything is added, so when
one of them is bad an error is raised and nothing at all is added.

Only the socket adds to a bufferevent's input buffer (see `bev:get_read`).]],
              params = {
                { name = "...", type = "string|number|Buffer", text = "what to append" },
              },
              returns = { { name = "added", type = "integer", text = "the number of bytes added" } },
              errors = {
                arg("...", "string, number or buffer expected, got <type>"),
                arg("...", "string, number or buffer expected, got no value"),
                arg("...", "cannot add a buffer to itself"),
                arg("...", "attempt to use a closed buffer"),
                err("buf:add: libevent refused to add to the buffer " .. FROZEN, "the buffer is a bufferevent's input buffer, or a bufferevent's output buffer is to be moved"),
              },
              differences = { "checked-add-closed", "add-checks-first", "wording-closed-buffer", "wording-add-itself", "wording-add-type", "wording-add-nothing", "add-input-refused" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local buf = core.buffer.new()
print(buf:add("GET / HTTP/1.0", "\r\n"))
local extra = core.buffer.new()
extra:add("Content-Length: ", 42, "\r\n")
print(buf:add(extra), #extra)              -- extra's bytes were moved

local ok, err = pcall(function() local n = buf:add("x", {}) end)
print(err:match("bad argument.*"))
print(#buf)                                -- nothing added by the failed call
]=],
                  output = "16\n20\t0\nbad argument #2 to 'add' (string, number or buffer expected, got table)\n36\n",
                },
              },
            },
            {
              name = "buf:length",
              summary = "The number of bytes held; `#buf` is the same.",
              params = {},
              returns = { { name = "length", type = "integer", text = "bytes held" } },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local buf = core.buffer.new()
buf:add("hello\0world")             -- binary-safe: the NUL byte counts
print(buf:length(), #buf)
]=],
                  output = "11\t11\n",
                },
              },
            },
            {
              name = "buf:get_data",
              signature = "buf:get_data([begin,] [len])",
              summary = "Returns a copy of (part of) the contents, without consuming anything.",
              text = [[
- `buf:get_data()`, `tostring(buf)`: everything.
- `buf:get_data(len)`: the first `len` bytes; a negative `len` means everything.
- `buf:get_data(begin, len)`: `len` bytes starting at the 1-based position `begin`. A negative
  `begin` counts from the end (`-1` is the last byte). A negative `len` means "up to the end".

Positions and lengths are clamped to the buffer: asking for more than there is returns what there
is, and a window entirely outside it returns `""`.]],
              params = {
                { name = "begin", type = "integer", optional = true, text = "1-based start; negative counts from the end. When it is the only argument, it is `len`" },
                { name = "len", type = "integer", optional = true, text = "how many bytes; negative: up to the end" },
              },
              overloads = {
                "fun(self: Buffer): string",
                "fun(self: Buffer, len: integer): string",
              },
              returns = { { name = "data", type = "string", text = "a copy of the bytes" } },
              errors = {
                arg("begin", "number expected, got <type>"),
                arg("begin", "number has no integer representation"),
                arg("len", "number expected, got <type>"),
              },
              differences = { "get-data-clamps" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local buf = core.buffer.new()
buf:add("0123456789")
print(buf:get_data(3))
print(buf:get_data(4, 2))
print(buf:get_data(-3, -1))
print(buf:get_data(8, 100))
print(tostring(buf), #buf)          -- nothing was consumed
]=],
                  output = "012\n34\n789\n789\n0123456789\t10\n",
                },
              },
            },
            {
              name = "buf:readline",
              summary = "Removes the next line from the buffer and returns it without its line end.",
              text = [[
Any run of `\r` and `\n` characters ends a line (libevent's `EVBUFFER_EOL_ANY`: `\r\n`, `\n`,
`\r` and `\n\n` all count as one line end, so an empty line in the middle of `\n\n` is not
reported). While no line end has arrived it returns nothing (`nil`) and leaves the data in
place. NUL bytes inside a line are kept.]],
              params = {},
              returns = { { name = "line", type = "string?", text = "the line, or `nil` while no line end is in the buffer" } },
              errors = {
                err("buf:readline: libevent refused to consume a line " .. FROZEN, "the buffer is a bufferevent's output buffer"),
              },
              differences = { "readline-nul" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local buf = core.buffer.new()
buf:add("HELO a\r\nMAIL b\nDATA\0x\nrest")
print(buf:readline())
print(buf:readline())
print(#buf:readline())         -- "DATA\0x": the NUL byte is kept
print(buf:readline(), #buf)    -- "rest" waits for its line end
]=],
                  output = "HELO a\nMAIL b\n6\nnil\t4\n",
                },
              },
            },
            {
              name = "buf:drain",
              summary = "Removes the first `n` bytes.",
              text = "A negative `n`, or one past the end, removes everything.",
              params = {
                { name = "n", type = "integer", text = "how many bytes to remove; required" },
              },
              returns = {},
              errors = {
                arg("n", "number expected, got <type>"),
                arg("n", "number has no integer representation"),
                err("buf:drain: libevent refused to drain the buffer " .. FROZEN, "the buffer is a bufferevent's output buffer"),
              },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local buf = core.buffer.new()
buf:add("header|body")
buf:drain(7)
print(buf:get_data())
buf:drain(-1)
print(#buf)
]=],
                  output = "body\n0\n",
                },
              },
            },
            {
              name = "buf:read",
              summary = "Reads up to `len` bytes from `fd` and appends them to the buffer.",
              text = [[
Returns libevent's result: the number of bytes read, `0` at end of file, `-1` on error
(including "would block" on a non-blocking socket with nothing to read).]],
              params = {
                { name = "fd", type = "Fd", text = "where to read from" },
                { name = "len", type = "integer", text = "the most bytes to read; negative lets libevent choose" },
              },
              returns = { { name = "result", type = "integer", text = "bytes read, `0` at end of file, `-1` on error" } },
              errors = concat(fd_errors("fd"), {
                arg("len", "number expected, got <type>"),
                arg("len", "number has no integer representation"),
              }),
              differences = { "read-write-fd-forms" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
--PAIR--

client:send("hello\n")
local input = core.buffer.new()
print(input:read(peer, 1024))      -- 6 bytes
print(input:readline())
print(input:read(peer, 1024))      -- -1: nothing to read (LuaSocket sockets are non-blocking underneath)
client:close()
socket.sleep(0.05)                 -- let the end of file arrive
print(input:read(peer, 1024))      -- 0: end of file
]=],
                  output = "6\nhello\n-1\n0\n",
                },
              },
            },
            {
              name = "buf:write",
              summary = "Writes as much of the buffer to `fd` as it accepts, and drains what was written.",
              text = [[
Writing an empty buffer returns `-1` too. Writing to a socket whose peer has closed returns `-1`
rather than killing the process (loading the module ignores `SIGPIPE`, see
[`luaevent.core`](#luaeventcore)).]],
              params = {
                { name = "fd", type = "Fd", text = "where to write to" },
              },
              returns = { { name = "result", type = "integer", text = "bytes written, or `-1` on error" } },
              errors = fd_errors("fd"),
              differences = { "read-write-fd-forms", "sigpipe" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
--PAIR--

local out = core.buffer.new()
out:add("hello\n")
print(out:write(client), #out)     -- 6 bytes written, none left
print((peer:receive("*l")))
print(out:write(client))           -- -1: an empty buffer
]=],
                  output = "6\t0\nhello\n-1\n",
                },
              },
            },
            {
              name = "buf:close",
              summary = "Frees the buffer's memory now instead of at garbage collection.",
              text = [[
Closing twice is harmless. Afterwards every other method, `#buf` and `tostring(buf)` raise an
error that says the buffer is closed. For the buffers of a bufferevent (from `get_read` /
`get_write`), `close` only detaches the Lua object; the memory belongs to the bufferevent. Since
`get_read` and `get_write` always return that same object, do not close them while the
bufferevent is in use.]],
              params = {},
              returns = {},
              differences = { "bufferevent-buffer-close", "wording-closed-buffer" },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local buf = core.buffer.new()
buf:add("data")
buf:close()
buf:close()
local ok, err = pcall(function() local n = buf:length() end)
print(err:match("calling.*"))
]=],
                  output = "calling 'length' on bad self (attempt to use a closed buffer)\n",
                },
              },
            },
          },
        },
        {
          title = "Bufferevents (core.bufferevent)",
          class = "BufferEvent",
          entries = {
            {
              name = "core.bufferevent.new",
              signature = "core.bufferevent.new([base,] fd, readcb, writecb, errorcb)",
              summary = "Creates a bufferevent on `fd`, bound to `base`.",
              text = [[
Without `base` (the form `new(fd, readcb, writecb, errorcb)` of the original documentation), it
binds to the base most recently made by `core.new()` that is still alive.

- The bufferevent keeps the socket object it was given alive, and never closes the fd: close the
  socket yourself when you are done.
- As libevent sets it up, writing is enabled and reading is not: call `bev:enable(core.EV_READ)`
  to start receiving.
- On each read wakeup the bufferevent takes up to 64 KiB from the socket (libevent alone reads
  4 KiB at a time), never filling the input past the read high watermark.

The argument numbers in the errors below are those of the form with a base; without one, each
is one less.]],
              params = {
                { name = "base", type = "Base", optional = true, text = "the base to run on; when absent, the latest one made by `core.new()`" },
                { name = "fd", type = "Fd", text = "the connected socket; it must be open and pollable" },
                { name = "readcb", type = "BufferEventCallback?", text = "called with `EVBUFFER_READ` when the input reaches the read low watermark; may be `nil`" },
                { name = "writecb", type = "BufferEventCallback?", text = "called with `EVBUFFER_WRITE` when the output drains to the write low watermark; may be `nil`" },
                { name = "errorcb", type = "BufferEventCallback", text = "called on end of file, error or timeout; required" },
              },
              overloads = {
                "fun(fd: Fd, readcb: BufferEventCallback?, writecb: BufferEventCallback?, errorcb: BufferEventCallback): BufferEvent",
              },
              returns = { { name = "bev", type = "BufferEvent", text = "the new bufferevent" } },
              errors = concat({
                arg("fd", "bad file descriptor (<n> is not open)"),
                arg("fd", "bad file descriptor (<n> is a regular file, which epoll cannot watch)"),
                arg("fd", "bad file descriptor (<n> is beyond FD_SETSIZE, which select cannot watch)"),
                arg("readcb", "function or nil expected, got <type>"),
                arg("writecb", "function or nil expected, got <type>"),
                arg("errorcb", "function expected, got <type>"),
              }, fd_errors("fd"), {
                err("core.bufferevent.new: no base given and no event base made by core.new() is alive", "the base-less form, when the latest base has been collected"),
                err("core.bufferevent.new: libevent could not create a bufferevent on fd <n>: <strerror>", "libevent fails to make the bufferevent"),
              }),
              differences = { "bufferevent-callbacks", "baseless-new", "keeps-socket", "read-ahead", "checked-fd-not-open", "checked-fd-regular-file", "checked-fd-setsize" },
              examples = {
                {
                  title = "an upper-casing echo",
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local echo = core.bufferevent.new(base, peer,
  function(bev, what)                               -- readcb
    local input = bev:get_read()
    local text = input:get_data()
    input:drain(-1)
    bev:get_write():add(text:upper())
  end,
  nil,                                              -- no writecb
  function(bev, what)                               -- errorcb
    print("closed by peer: " .. tostring(what == core.EVBUFFER_EOF + core.EVBUFFER_READ))
    bev:close()
  end)
echo:enable(core.EV_READ)

client:send("hello\n")
local reader = base:addevent(client, core.EV_READ, function()
  print((client:receive("*l")))
  client:close()
  return core.LEAVE
end)
print(base:loop())
]=],
                  output = "HELLO\nclosed by peer: true\n1\n",
                },
              },
            },
            {
              name = "core.bufferevent.connect",
              signature = "core.bufferevent.connect(base, host, port, readcb, writecb, eventcb [, options])",
              summary = "Connects to `host` port `port` and returns the bufferevent at once; the connection is set up in the loop.",
              text = [[
The bufferevent owns the socket it makes: `bev:close()` or garbage collection closes it.

- `eventcb(bev, core.EVBUFFER_CONNECTED)` once the connection is up; reading is enabled just
  before that call (disable it there if you want).
- `eventcb(bev, core.EVBUFFER_ERROR, message)` when it fails, the message naming the address
  and the cause: `could not connect to 127.0.0.1 port 1: Connection refused`. On libevent's
  select backend, a socket that gets a descriptor at or beyond FD_SETSIZE (1024 on Linux), which
  select cannot watch, is closed instead of used (glibc would abort the process):
  `could not connect to 127.0.0.1 port 80: its socket, descriptor 1030, is beyond FD_SETSIZE
  (1024), which the select backend cannot watch`.
- `eventcb(bev, core.EVBUFFER_TIMEOUT)` when `options.timeout` passes first.
- Bytes written to the output buffer before the connection is up are sent once it is.
- The callbacks run from the loop, never from inside `connect`. Closing the bufferevent while
  it connects cancels everything: no callback runs afterwards.

`host` is an IPv4 or IPv6 address literal, or a name, resolved without blocking by
`options.dns` (a resolver from `core.dns.new`) or else the base's default resolver. Every address
the name has is tried in turn until one connects: IPv6 and IPv4 alternate, starting with the
resolver's first (IPv6), as RFC 8305 recommends, so that a family that does not work costs one
attempt rather than all of its addresses; within a family, the resolver's order. Attempts are
made one after the other (at most 16 addresses); a refused or unreachable address moves on to
the next at once, and `options.timeout` bounds the whole, resolution included. Failures name the
host: `could not resolve nosuch.test: no such name`, `could not connect to both.test port 1
(127.0.0.1): Connection refused` (the last address tried).


With `options.tls` (a client context) the connection is a TLS one: `EVBUFFER_CONNECTED` comes
only once the handshake succeeded and the server is verified (see [TLS contexts](#tls-contexts-coretls)
for what is checked). The server's name is `options.servername`, else `host`: it is sent as SNI
(unless it is an address) and the certificate must be valid for it. A failed verification ends
with `EVBUFFER_ERROR` and OpenSSL's reason: `certificate verify failed: hostname mismatch`.
`options.timeout` covers the handshake too. Bytes written before are sent after the handshake.
A server that closes without a TLS close notice ends as `EVBUFFER_EOF`; `bev:close()` sends one.]],
              params = {
                { name = "base", type = "Base", text = "the base to run on" },
                { name = "host", type = "string", text = "an address literal (`\"127.0.0.1\"`, `\"::1\"`) or a host name" },
                { name = "port", type = "integer", text = "1-65535" },
                { name = "readcb", type = "BufferEventCallback?", text = "as for `core.bufferevent.new`; may be `nil`" },
                { name = "writecb", type = "BufferEventCallback?", text = "as for `core.bufferevent.new`; may be `nil`" },
                { name = "eventcb", type = "BufferEventCallback?", text = "told `EVBUFFER_CONNECTED`, then end of file, errors and timeouts; `nil` ignores them" },
                { name = "options", type = "{ timeout: number?, servername: string?, tls: TlsContext?, dns: Resolver? }?", optional = true, text = "`timeout`: seconds for the whole connection set-up, resolution and TLS handshake included; `dns`: the resolver for a host name (default: the base's own); `tls`: a client context, for TLS; `servername`: the name the server's certificate must have (default: `host`)" },
              },
              returns = { { name = "bev", type = "BufferEvent", text = "the new bufferevent, connecting" } },
              errors = {
                arg("base", "event base expected, got <type>"),
                arg("host", "string expected, got <type>"),
                arg("port", "number expected, got <type>"),
                arg("port", "port must be 1-65535, got <n>"),
                arg("readcb", "function or nil expected, got <type>"),
                arg("writecb", "function or nil expected, got <type>"),
                arg("eventcb", "function or nil expected, got <type>"),
                arg("options", "table or nil expected, got <type>"),
                arg("options", "unknown option '<key>'"),
                arg("options", "options.timeout must be a finite number of seconds >= 0, got <n>"),
                arg("options", "options.timeout: number expected, got <type>"),
                arg("options", "options.servername: string expected, got <type>"),
                arg("options", "options.tls: TLS context expected, got <type>"),
                arg("options", "options.tls: a client TLS context expected, got a server one"),
                err("core.bufferevent.connect: a server name is 1 to 255 bytes long", "`options.servername` (or `host`) is empty or too long"),
                err("core.bufferevent.connect: could not start a TLS client: <reason>", "OpenSSL cannot make the connection (out of memory)"),
                err("core.bufferevent.connect: libevent could not create a bufferevent: <strerror>", "libevent fails to make the bufferevent (out of memory)"),
                arg("host", "an address or a host name expected"),
                arg("options", "options.dns: resolver expected, got <type>"),
                arg("options", "options.dns: attempt to use a closed resolver"),
                arg("options", "options.dns: the resolver belongs to another event base"),
              },
              differences = { "networking" },
              examples = {
                {
                  title = "a client, and a server to talk to",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local connections = {}                              -- keeps the accepted bufferevents
local server = core.listener.new(base, { host = "127.0.0.1", port = 0 }, function(bev)
  connections[bev] = true
  bev:get_write():add("hello from the server\n")
  bev:set_callbacks(nil, nil, function(bev)
    connections[bev] = nil
    bev:close()
  end)
  bev:enable(core.EV_READ)
end)
local host, port = server:address()

local client = core.bufferevent.connect(base, host, port,
  function(bev)                                     -- readcb
    local line = bev:get_read():readline()
    if line then
      print("read: " .. line)
      bev:close()
      server:close()
    end
  end,
  nil,                                              -- no writecb
  function(bev, what, message)                      -- eventcb
    print(what == core.EVBUFFER_CONNECTED and "connected" or message)
  end)
client:get_write():add("sent once connected\n")
base:loop()

local refused = core.bufferevent.connect(base, host, port, nil, nil, function(bev, what, message)
  print(what == core.EVBUFFER_ERROR, message == "could not connect to 127.0.0.1 port " .. port .. ": Connection refused")
  bev:close()
end)
base:loop()
]=],
                  output = "connected\nread: hello from the server\ntrue\ttrue\n",
                },
                {
                  title = "an HTTPS request to a local server",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
-- A certificate for localhost and 127.0.0.1 and its key, made with the openssl command.
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir " .. dir)
os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost"
  .. " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(dir, dir))
local server_context = core.tls.context { mode = "server", certificate = dir .. "/cert.pem", key = dir .. "/key.pem", alpn = "http/1.1" }
local connections = {}
local server = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
  connections[bev] = true
  bev:set_callbacks(function(bev)
    local input = bev:get_read()
    if input:get_data():find("\r\n\r\n", 1, true) then   -- the whole request's header
      input:drain(#input)
      bev:get_write():add("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
    end
  end, nil, function(bev, what)
    if what ~= core.EVBUFFER_CONNECTED then connections[bev] = nil; bev:close() end
  end)
  bev:enable(core.EV_READ)
end)

local client_context = core.tls.context { mode = "client", cafile = dir .. "/cert.pem", alpn = "http/1.1" }
local response = ""
local request = core.bufferevent.connect(base, "127.0.0.1", select(2, server:address()), function(bev)
  local input = bev:get_read()
  response = response .. input:get_data()
  input:drain(#input)
  local body = response:match("\r\n\r\n(.*)$")
  if body and #body == 3 then                     -- the whole Content-Length
    print(response:match("^HTTP/1.1 (%d+)"), body)
    bev:close()
    server:close()
  end
end, nil, function(bev, what, message)
  if what == core.EVBUFFER_CONNECTED then
    local tls = bev:tls()
    print(tls.verified, tls.alpn, tls.peer.subject)
  else
    print(message)
  end
end, { tls = client_context, servername = "localhost", timeout = 5 })
request:get_write():add("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
base:loop()

-- The same server under a name its certificate does not have: no connection, and the reason.
server = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
  connections[bev] = true
end)
local wrong = core.bufferevent.connect(base, "127.0.0.1", select(2, server:address()), nil, nil, function(bev, what, message)
  print(what == core.EVBUFFER_ERROR, message)
  bev:close()
  server:close()
end, { tls = client_context, servername = "example.com" })
base:loop()
os.execute("rm -r " .. dir)
]=],
                  output = "true\thttp/1.1\tCN=localhost\n200\tok\n\ntrue\tcertificate verify failed: hostname mismatch\n",
                },
                {
                  title = "connecting by name",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local path = os.tmpname()                          -- a hosts file of our own
local file = assert(io.open(path, "w"))
file:write("127.0.0.1 server.test\n")
file:close()
-- Names come from the hosts file here; a name it lacks would go to this (silent) name server.
local resolver = core.dns.new(base, { hosts = path, nameservers = { "127.0.0.1:9" } })

local connections = {}
local server = core.listener.new(base, { host = "127.0.0.1" }, function(bev)
  connections[bev] = true
  bev:get_write():add("hello\n")
end)

local client = core.bufferevent.connect(base, "server.test", select(2, server:address()), function(bev)
  print("read: " .. bev:get_read():readline())
  bev:close()
  server:close()
  connections = {}
end, nil, function(bev, what, message)
  print(what == core.EVBUFFER_CONNECTED and "connected to server.test" or message)
end, { dns = resolver, timeout = 5 })
base:loop()
resolver:close()
os.remove(path)
]=],
                  output = "connected to server.test\nread: hello\n",
                },
              },
            },
            { callback = "BufferEventCallback" },
            {
              name = "bev:get_read",
              summary = "Returns the input buffer.",
              text = [[
The same object on every call, with the whole [buffer API](#buffers-corebuffer). It belongs to the
bufferevent: once the bufferevent is closed or collected, using it raises
`attempt to use a closed buffer`, and its own `close()` only detaches the Lua object. Only the
socket adds to it (`add` raises `buf:add: libevent refused to add to the buffer (...)`); take
data out with `get_data`, `readline`, `drain`, or by moving it into another buffer
(`other:add(input)`).]],
              params = {},
              returns = { { name = "input", type = "Buffer", text = "the input buffer" } },
              differences = { "bufferevent-buffer-close", "add-input-refused" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, function(bev)
  local input = bev:get_read()
  print(rawequal(input, bev:get_read()))   -- the same object every time
  print(input:readline())
  local ok, err = pcall(input.add, input, "x")
  print(err:match("refused to add to the buffer") ~= nil)
  bev:close()
  print(pcall(input.length, input))        -- closed with its bufferevent
end, nil, function() end)
bev:enable(core.EV_READ)
client:send("line one\n")
print(base:loop())
]=],
                  output = "true\nline one\ntrue\nfalse\tbad argument #1 to '?' (attempt to use a closed buffer)\n1\n",
                },
              },
            },
            {
              name = "bev:get_write",
              summary = "Returns the output buffer: bytes added to it are sent.",
              text = [[
The same object on every call, with the whole [buffer API](#buffers-corebuffer), and it belongs to the
bufferevent as the input buffer does. Bytes leave it only by being sent: `drain` and `readline`
on it raise `buf:drain: libevent refused to drain the buffer (...)` and
`buf:readline: libevent refused to consume a line (...)`, and it cannot be moved into another
buffer. Append to it with `add`; `get_data` reads it.]],
              params = {},
              returns = { { name = "output", type = "Buffer", text = "the output buffer" } },
              differences = { "bufferevent-buffer-close" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, nil, nil, function() end)
local output = bev:get_write()
output:add("hello\n")
local ok, err = pcall(output.drain, output, 1)
print(err:match("refused to drain the buffer") ~= nil)
base:loopexit(0.05)
base:loop()                                  -- sends it
print((client:receive("*l")))
]=],
                  output = "true\nhello\n",
                },
              },
            },
            {
              name = "bev:set_read_watermarks",
              summary = "Sets when the read callback runs and when reading stops.",
              text = [[
The read callback runs only once the input holds at least `low` bytes; while it holds `high`
bytes or more, libevent stops reading from the socket (`0`: no limit).

At the high watermark, a read callback that takes something from the input (but leaves it at or
above `high`) is called again at once, until it takes nothing or the input falls below `high`. A
read callback that takes nothing is not called again until something drains the input: a timer,
another callback, `other:add(bev:get_read())`. Reading then resumes, and if the input is still at
or above `high`, the read callback runs once more. (libevent 2.1.12 alone calls it again on every
loop round, at full CPU, for as long as the input stays there: its issue #891.) Calling
`enable(EV_READ)`, `disable(EV_READ)` or `set_read_watermarks` meanwhile takes precedence: after
`disable`, a drain does not resume reading.]],
              params = {
                { name = "low", type = "integer", optional = true, text = "bytes the input must hold before the read callback runs; `nil` counts as 0" },
                { name = "high", type = "integer", optional = true, text = "bytes at which reading from the socket stops; `0` or `nil`: no limit" },
              },
              returns = {},
              errors = {
                arg("low", "number expected, got <type>"),
                arg("low", "byte count must be >= 0, got <n>"),
                arg("high", "number expected, got <type>"),
                arg("high", "byte count must be >= 0, got <n>"),
                arg("high", "high watermark <high> is below the low watermark <low> (0 means no high watermark)"),
              },
              differences = { "checked-watermarks", "checked-watermark-order", "high-watermark-parking" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, function(bev)
  local input = bev:get_read()
  print("read callback with " .. #input .. " bytes")
  input:drain(-1)
end, nil, function() end)
bev:set_read_watermarks(4, 0)       -- no read callback before 4 bytes are in
bev:enable(core.EV_READ)

client:send("ab")
local more = base:addevent(nil, 0, function()
  client:send("cd")
  return core.LEAVE
end, 0.05)
base:loopexit(0.2)
base:loop()
]=],
                  output = "read callback with 4 bytes\n",
                },
              },
            },
            {
              name = "bev:set_write_watermarks",
              summary = "Sets when the write callback runs.",
              text = [[
The write callback runs when the output has drained to `low` bytes or fewer (`0`: everything was
sent). libevent does not use `high`; it is accepted for compatibility. On a TLS connection it also
waits for the encrypted bytes to have been handed to the system (see
[BufferEventCallback](#buffereventcallback)).]],
              params = {
                { name = "low", type = "integer", optional = true, text = "the output size at which the write callback runs; `nil` counts as 0" },
                { name = "high", type = "integer", optional = true, text = "kept for the program; libevent ignores it" },
              },
              returns = {},
              errors = {
                arg("low", "number expected, got <type>"),
                arg("low", "byte count must be >= 0, got <n>"),
                arg("high", "number expected, got <type>"),
                arg("high", "byte count must be >= 0, got <n>"),
                arg("high", "high watermark <high> is below the low watermark <low> (0 means no high watermark)"),
              },
              differences = { "checked-watermarks", "checked-watermark-order" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, nil, function(bev)
  print("write callback: " .. #bev:get_write() .. " bytes still queued")
  bev:close()
end, function() end)
bev:set_write_watermarks(0, 0)      -- call back once everything is sent
bev:get_write():add("0123456789")
base:loop()
print((client:receive(10)))
]=],
                  output = "write callback: 0 bytes still queued\n0123456789\n",
                },
              },
            },
            {
              name = "bev:set_timeouts",
              summary = "Sets the read and write timeouts.",
              text = [[
When data does not arrive (or cannot be sent) for that long, the error callback is called with
`EVBUFFER_TIMEOUT` plus the direction, and that direction is disabled. On a TLS connection the
write timeout also covers the encrypted bytes waiting to be sent once the output (the plain text)
is empty: a peer that takes none of them times out. Timeouts set while `core.bufferevent.connect`
is still connecting stay in force once the connection (and its TLS, with `options.tls`) is up.]],
              params = {
                { name = "read", type = "number", optional = true, text = "seconds (see [Durations](#durations)); `0` or `nil`: none" },
                { name = "write", type = "number", optional = true, text = "seconds; `0` or `nil`: none" },
              },
              returns = {},
              errors = {
                arg("read", "number expected, got <type>"),
                arg("read", "timeout must be a number of seconds from 0 to 2^31 (2147483648), got <x>"),
                arg("write", "number expected, got <type>"),
                arg("write", "timeout must be a number of seconds from 0 to 2^31 (2147483648), got <x>"),
              },
              differences = { "set-timeouts-fractions", "checked-timeout" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local idle = core.bufferevent.new(base, peer, nil, nil, function(bev, what)
  print("read timeout: " .. tostring(what == core.EVBUFFER_TIMEOUT + core.EVBUFFER_READ))
  bev:close()
end)
idle:set_timeouts(0.05, nil)   -- the client never sends: time out after 0.05 s
idle:enable(core.EV_READ)
print(base:loop())
]=],
                  output = "read timeout: true\n1\n",
                },
              },
            },
            {
              name = "bev:enable",
              summary = "Enables reading, writing, or both.",
              text = "A bufferevent starts with writing enabled and reading disabled.",
              params = {
                { name = "mask", type = "integer", text = "`core.EV_READ`, `core.EV_WRITE`, or `core.EV_READ + core.EV_WRITE`" },
              },
              returns = { { name = "result", type = "integer", text = "`0` on success, `-1` on failure" } },
              errors = {
                arg("mask", "number expected, got <type>"),
                arg("mask", "EV_READ, EV_WRITE or both expected, got <n>"),
              },
              differences = { "checked-enable-mask", "enable-closed" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, function(bev)
  print("read " .. bev:get_read():get_data())
  bev:close()
end, nil, function() end)
client:send("data")
base:loopexit(0.05)
base:loop()                                -- reading is not enabled yet: nothing happens
print(bev:enable(core.EV_READ))
base:loop()
]=],
                  output = "0\nread data\n",
                },
              },
            },
            {
              name = "bev:disable",
              summary = "Disables reading, writing, or both.",
              text = [[
A callback may still run in the current round after `disable`. Disabled reading leaves incoming
bytes in the kernel; disabled writing holds the output buffer back.]],
              params = {
                { name = "mask", type = "integer", text = "`core.EV_READ`, `core.EV_WRITE`, or `core.EV_READ + core.EV_WRITE`" },
              },
              returns = { { name = "result", type = "integer", text = "`0` on success, `-1` on failure" } },
              errors = {
                arg("mask", "number expected, got <type>"),
                arg("mask", "EV_READ, EV_WRITE or both expected, got <n>"),
              },
              differences = { "checked-enable-mask", "enable-closed" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, nil, function(bev)
  print("sent")
  bev:close()
end, function() end)
print(bev:disable(core.EV_WRITE))
bev:get_write():add("held back\n")
base:loopexit(0.05)
base:loop()                               -- writing is disabled: nothing is sent
print(#bev:get_write())
bev:enable(core.EV_WRITE)
base:loop()
print((client:receive("*l")))
]=],
                  output = "0\n10\nsent\nheld back\n",
                },
              },
            },
            {
              name = "bev:set_callbacks",
              summary = "Replaces the read, write and error callbacks.",
              text = [[
`nil` clears the read or write callback; a `nil` error callback means end of file, errors and
timeouts are ignored. A bufferevent from a listener starts with none: set them here.]],
              params = {
                { name = "readcb", type = "BufferEventCallback?", text = "the new read callback, or `nil`" },
                { name = "writecb", type = "BufferEventCallback?", text = "the new write callback, or `nil`" },
                { name = "eventcb", type = "BufferEventCallback?", text = "the new error callback, or `nil`" },
              },
              returns = {},
              errors = {
                arg("readcb", "function or nil expected, got <type>"),
                arg("writecb", "function or nil expected, got <type>"),
                arg("eventcb", "function or nil expected, got <type>"),
              },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, nil, nil, function() end)
bev:set_callbacks(function(bev)
  print("read " .. bev:get_read():get_data())
  bev:close()
end, nil, nil)
bev:enable(core.EV_READ)
client:send("data")
base:loop()
]=],
                  output = "read data\n",
                },
              },
            },
            {
              name = "bev:getfd",
              summary = "Returns the socket's descriptor.",
              text = "For a bufferevent that is connecting, `-1` while it has no socket (after a failed connection, for instance).",
              params = {},
              returns = { { name = "fd", type = "integer", text = "the descriptor, or `-1`" } },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, nil, nil, function() end)
print(bev:getfd() == peer:getfd())
]=],
                  output = "true\n",
                },
              },
            },
            {
              name = "bev:starttls",
              signature = "bev:starttls(context [, options])",
              summary = "Upgrades a connected plain bufferevent to TLS in place (STARTTLS, as XMPP, SMTP and IMAP do).",
              text = [[
The same object goes on, with its callbacks, its enabled directions, its read watermarks and the
buffer objects `get_read()` and `get_write()` returned (they now hold the plain text of the TLS
connection). Bytes already queued in the output go out in plain first, then the handshake;
bytes already received and not read are taken as the start of the peer's TLS messages. It can
be called from inside a read callback, right after reading the command that asks for it.

A client context makes this end the TLS client, a server context the server. The event
callback then hears `core.EVBUFFER_CONNECTED` once the handshake succeeded, or
`core.EVBUFFER_ERROR` and OpenSSL's reason. Read and write timeouts set before are not carried
over.

A client checks the server's name (see [TLS contexts](#tls-contexts-coretls)):
`options.servername`, else the host given to `core.bufferevent.connect` when that made the
bufferevent (a host name, also sent as SNI, or an address, checked against the certificate's
address entries). A bufferevent made otherwise (`core.bufferevent.new`, a listener's) has no
host, so a context that verifies needs `options.servername`: without it the call raises, since
any certificate the trusted CAs signed for any name would otherwise pass. A context with
`verify = "none"` needs no name.]],
              params = {
                { name = "context", type = "TlsContext", text = "a client or a server context" },
                { name = "options", type = "{ servername: string? }?", optional = true, text = "`servername`: for a client, the name sent as SNI and checked in the server's certificate (default: the host `core.bufferevent.connect` was given)" },
              },
              returns = {},
              errors = {
                arg("context", "TLS context expected, got <type>"),
                arg("context", "attempt to use a finalized TLS context"),
                arg("options", "table or nil expected, got <type>"),
                arg("options", "unknown option '<key>'"),
                arg("options", "options.servername: string expected, got <type>"),
                arg("options", "options.servername required: the context verifies the server, and no host is known for a bufferevent not made by core.bufferevent.connect (or use a context with verify = \"none\")"),
                err("bev:starttls: the connection already uses TLS", "the bufferevent is a TLS one already"),
                err("bev:starttls: the connection is not established yet", "a `core.bufferevent.connect` still connecting"),
                err("bev:starttls: a server name is 1 to 255 bytes long", "an empty or too long `servername`"),
                err("bev:starttls: could not start TLS: not enough memory", "memory is short (`... (the connection is closed)` when libevent freed it on the way)"),
              },
              differences = { "networking" },
              examples = {
                {
                  title = "STARTTLS",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
-- A certificate for localhost and 127.0.0.1 and its key, made with the openssl command.
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir " .. dir)
os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost"
  .. " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(dir, dir))
local server_context = core.tls.context { mode = "server", certificate = dir .. "/cert.pem", key = dir .. "/key.pem" }
local client_context = core.tls.context { mode = "client", cafile = dir .. "/cert.pem" }

-- The server: "STARTTLS" is answered "GO" in plain, then the connection becomes TLS.
local connections = {}
local server = core.listener.new(base, { host = "127.0.0.1", port = 0 }, function(bev)
  connections[bev] = true
  bev:set_callbacks(function(bev)
    local line = bev:get_read():readline()
    if line == "STARTTLS" then
      bev:get_write():add("GO\n")
      bev:starttls(server_context)
    elseif line then
      bev:get_write():add("you said " .. line .. " over " .. bev:tls().protocol .. "\n")
    end
  end, nil, function(bev, what)
    if what ~= core.EVBUFFER_CONNECTED then connections[bev] = nil; bev:close() end
  end)
  bev:enable(core.EV_READ)
end)

local client = core.bufferevent.connect(base, "127.0.0.1", select(2, server:address()), function(bev)
  local line = bev:get_read():readline()
  if line == "GO" then
    bev:starttls(client_context, { servername = "localhost" })
    bev:get_write():add("secret\n")               -- sent once the handshake is done
  elseif line then
    print(line)
    bev:close()
    server:close()
  end
end, nil, function(bev, what)
  if what == core.EVBUFFER_CONNECTED then
    print(bev:tls() and "TLS is up, verified: " .. tostring(bev:tls().verified) or "connected in plain")
  end
end)
client:get_write():add("STARTTLS\n")
base:loop()
os.execute("rm -r " .. dir)
]=],
                  output = "connected in plain\nTLS is up, verified: true\nyou said secret over TLSv1.3\n",
                },
              },
            },
            {
              name = "bev:tls",
              summary = "Returns what the TLS handshake agreed, or `nil` for a plain connection.",
              text = [[
The table is copied out of the connection: it stays valid after the connection is gone.

| field | value |
| --- | --- |
| `protocol` | `"TLSv1.3"`, `"TLSv1.2"` |
| `cipher` | OpenSSL's name of the cipher: `"TLS_AES_256_GCM_SHA384"` |
| `alpn` | the protocol agreed by ALPN, or `nil` |
| `servername` | the name the client asked for (SNI), or `nil` |
| `verified` | `true` when the peer presented a certificate and it was verified |
| `verify_error` | when not verified, why: OpenSSL's reason (`"self-signed certificate"`) or `"the peer presented no certificate"` |
| `peer` | `nil`, or the peer's certificate: `subject` and `issuer` (`"CN=localhost"`), `not_after` (`"2031-01-02 03:04:05Z"`) and `pem` |

During the handshake the fields say what is known so far.]],
              params = {},
              returns = { { name = "facts", type = "{ protocol: string, cipher: string?, alpn: string?, servername: string?, verified: boolean, verify_error: string?, peer: { subject: string, issuer: string, not_after: string, pem: string }? }?", text = "the table, or `nil`" } },
              differences = { "networking" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, nil, nil, function() end)
print(bev:tls())                                   -- a plain connection
]=],
                  output = "nil\n",
                },
              },
            },
            {
              name = "bev:close",
              summary = "Frees the bufferevent now; garbage collection does the same.",
              text = [[
Its buffers become closed, no callback runs afterwards, and the fd stays open (a socket the
module made, for a bufferevent from a listener or from `core.bufferevent.connect`, is closed).
Closing twice is harmless, and it is safe from inside the bufferevent's own callbacks.]],
              params = {},
              returns = {},
              differences = { "bufferevent-close", "closed-bufferevent-errors" },
              examples = {
                {
                  code = with_pair [=[
local core = require "luaevent.core"
local socket = require "socket"
local base = core.new()
--PAIR--

local bev = core.bufferevent.new(base, peer, nil, nil, function() end)
bev:close()
bev:close()
local ok, err = pcall(function() return bev:enable(core.EV_READ) end)
print(err:match("attempt to use a closed bufferevent") ~= nil)
print(peer:getfd() >= 0)               -- the socket is still open
]=],
                  output = "true\ntrue\n",
                },
              },
            },
          },
        },
        {
          title = "Listeners (core.listener)",
          class = "Listener",
          entries = {
            {
              name = "core.listener.new",
              summary = "Binds a TCP socket to `options.host` and `options.port` and listens on it.",
              text = [[
Each connection accepted is handed to `on_accept(bev, host, port)`: `bev` is a new bufferevent on
`base` that owns the accepted socket (closing or collecting it closes the socket), with no
callbacks (set them with `bev:set_callbacks`), writing enabled and reading not; `host` and
`port` are the peer's. Like any bufferevent, one that nothing references is collected. An
error raised by `on_accept` stops the loop and is raised again by `base:loop()`.

Running out of descriptors does not spin the CPU: when accept() fails (`Too many open files`),
the listener stops accepting for 0.1 s, then longer (up to 1 s) while it keeps failing; the
connections already accepted are served meanwhile, and accepting resumes once descriptors are
free.

On libevent's select backend, a connection accepted on a descriptor at or beyond FD_SETSIZE
(1024 on Linux), which select cannot watch, is closed at once (glibc would abort the process).
`on_accept` still gets it, as a bufferevent without a socket (`bev:getfd()` is -1), and its
event callback then hears `core.EVBUFFER_ERROR` and `listener (accepting): its socket,
descriptor 1030, is beyond FD_SETSIZE (1024), which the select backend cannot watch; the
connection was closed`.

With `options.tls` (a server context), every accepted connection is a TLS server one: the
handshake starts at once, before `on_accept` has even returned. The event callback set with
`bev:set_callbacks` then hears `core.EVBUFFER_CONNECTED` once the handshake succeeded, or
`core.EVBUFFER_ERROR` and OpenSSL's reason (a client that sends something else than a TLS
hello, one that closes during the handshake: `the connection closed during the TLS
handshake`); such a failure ends only that connection. Data written before the handshake is
done is sent after it. A connection whose TLS state cannot even be made (out of memory) is
closed without reaching `on_accept`.]],
              params = {
                { name = "base", type = "Base", text = "the base to run on" },
                { name = "options", type = "{ host: string?, port: integer?, backlog: integer?, reuseaddr: boolean?, tls: TlsContext? }?", text = "`host`: an IPv4 or IPv6 address literal (default `\"0.0.0.0\"`); `port`: 0-65535 (default 0, a free port); `backlog` (default 128); `reuseaddr` (default `true`); `tls`: a server context, for TLS connections" },
                { name = "on_accept", type = "fun(bev: BufferEvent, host: string, port: integer)", text = "called with each accepted connection" },
              },
              returns = { { name = "listener", type = "Listener", text = "the new listener, accepting" } },
              errors = {
                arg("base", "event base expected, got <type>"),
                arg("options", "table or nil expected, got <type>"),
                arg("options", "unknown option '<key>'"),
                arg("options", "options.host: string expected, got <type>"),
                arg("options", "options.host must be an IPv4 or IPv6 address, got '<text>'"),
                arg("options", "options.port: integer expected, got <type>"),
                arg("options", "options.port must be 0-65535, got <n>"),
                arg("options", "options.backlog: integer expected, got <type>"),
                arg("options", "options.backlog must be 1-2147483647, got <n>"),
                arg("options", "options.reuseaddr: boolean expected, got <type>"),
                arg("on_accept", "function expected, got <type>"),
                err("core.listener.new: could not listen on <host> port <port>: <strerror>", "binding or listening fails (`Address already in use`, `Permission denied`)"),
                arg("options", "options.tls: TLS context expected, got <type>"),
                arg("options", "options.tls: a server TLS context expected, got a client one"),
                arg("options", "options.tls: attempt to use a finalized TLS context"),
              },
              differences = { "networking" },
              examples = {
                {
                  title = "an echo server",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local connections = {}             -- a bufferevent nothing references is collected: keep them
local server = core.listener.new(base, { host = "127.0.0.1", port = 0 }, function(bev, host, port)
  print("accepted from " .. host)
  connections[bev] = true
  bev:set_callbacks(function(bev)
    bev:get_write():add(bev:get_read())             -- moves every byte received
  end, nil, function(bev)
    connections[bev] = nil
    bev:close()
  end)
  bev:enable(core.EV_READ)
end)

local host, port = server:address()
local client = core.bufferevent.connect(base, host, port, function(bev)
  local line = bev:get_read():readline()
  if line then
    print("echoed: " .. line)
    bev:close()
    server:close()
  end
end, nil, function() end)
client:get_write():add("hello\n")
print(base:loop())
]=],
                  output = "accepted from 127.0.0.1\nechoed: hello\n1\n",
                },
                {
                  title = "a TLS echo server",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
-- A certificate for localhost and 127.0.0.1 and its key, made with the openssl command.
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir " .. dir)
os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost"
  .. " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(dir, dir))
local server_context = core.tls.context { mode = "server", certificate = dir .. "/cert.pem", key = dir .. "/key.pem" }

local connections = {}
local server = core.listener.new(base, { host = "127.0.0.1", port = 0, tls = server_context }, function(bev)
  connections[bev] = true
  bev:set_callbacks(function(bev)
    bev:get_write():add(bev:get_read())
  end, nil, function(bev, what, message)
    if what == core.EVBUFFER_CONNECTED then
      print("server: handshake done, " .. bev:tls().protocol)
    else
      connections[bev] = nil
      bev:close()
    end
  end)
  bev:enable(core.EV_READ)
end)

-- A client that trusts exactly that certificate.
local client_context = core.tls.context { mode = "client", cafile = dir .. "/cert.pem" }
local host, port = server:address()
local client = core.bufferevent.connect(base, host, port, function(bev)
  local line = bev:get_read():readline()
  if line then
    print("echoed: " .. line)
    bev:close()
    server:close()
  end
end, nil, function() end, { tls = client_context })
client:get_write():add("hello over TLS\n")      -- sent once the handshake is done
base:loop()
os.execute("rm -r " .. dir)
]=],
                  output = "server: handshake done, TLSv1.3\nechoed: hello over TLS\n",
                },
              },
            },
            {
              name = "listener:address",
              summary = "Returns the address the listener is bound to.",
              text = "With port 0 the system chose a free port: this tells which.",
              params = {},
              returns = {
                { name = "host", type = "string", text = "the address, such as `\"127.0.0.1\"` or `\"::1\"`" },
                { name = "port", type = "integer", text = "the port" },
              },
              errors = { err("listener:address: could not read the address: <strerror>", "the system cannot tell") },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local listener = core.listener.new(base, { host = "::1" }, function() end)
local host, port = listener:address()
print(host, port > 0)
]=],
                  output = "::1\ttrue\n",
                },
              },
            },
            {
              name = "listener:enable",
              summary = "Resumes accepting after `listener:disable()`.",
              params = {},
              returns = { { name = "result", type = "integer", text = "`0` on success" } },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local listener = core.listener.new(base, { host = "127.0.0.1" }, function() end)
print(listener:disable(), listener:enable())
]=],
                  output = "0\t0\n",
                },
              },
            },
            {
              name = "listener:disable",
              summary = "Stops accepting; new connections wait in the backlog until `listener:enable()`.",
              params = {},
              returns = { { name = "result", type = "integer", text = "`0` on success" } },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local accepted = 0
local listener = core.listener.new(base, { host = "127.0.0.1" }, function() accepted = accepted + 1 end)
listener:disable()
local client = core.bufferevent.connect(base, listener:address(), select(2, listener:address()), nil, nil, function() end)
base:loopexit(0.1)
base:loop()
print(accepted)
listener:enable()
base:loopexit(0.1)
base:loop()
print(accepted)
]=],
                  output = "0\n1\n",
                },
              },
            },
            {
              name = "listener:close",
              summary = "Closes the listening socket now; garbage collection does the same.",
              text = "Connections already accepted are not affected. Closing twice is harmless, and it is safe inside `on_accept`.",
              params = {},
              returns = {},
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local listener = core.listener.new(base, { host = "127.0.0.1" }, function() end)
listener:close()
listener:close()
local ok, err = pcall(function() return listener:getfd() end)
print(ok, err:match("attempt to use a closed listener") ~= nil)
]=],
                  output = "false\ttrue\n",
                },
              },
            },
            {
              name = "listener:getfd",
              summary = "Returns the listening socket's descriptor.",
              params = {},
              returns = { { name = "fd", type = "integer", text = "the descriptor" } },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local listener = core.listener.new(base, { host = "127.0.0.1" }, function() end)
print(listener:getfd() > 2)
]=],
                  output = "true\n",
                },
              },
            },
          },
        },
        {
          title = "TLS contexts (core.tls)",
          class = "TlsContext",
          types = { "TlsParams" },
          text = [[
A TLS context holds what TLS connections are made with: which end they are (`mode`), the
certificate and key a server (or a client) presents, which peers it trusts and how it checks
them, the protocols and algorithms it allows. One context serves any number of connections;
make it once and reuse it. The connections themselves (`options.tls` of `core.listener.new` and
`core.bufferevent.connect`, `bev:starttls`) come in a later release.

#### Security

- A **client** context verifies the server's certificate chain against the system's trusted
  certificates (OpenSSL's default store, on Debian `/etc/ssl/certs`), or against `cafile` /
  `capath` when given: then only those are trusted, which is how to pin a CA. Only
  `verify = "none"` turns verification off. The server's name is checked against its
  certificate for each connection (the name it was asked for by).
- The oldest protocol accepted is TLS 1.2, unless `protocol` says `"tlsv1_3"` or `"any"`.
- A **server** context asks clients for a certificate only with `verify = "peer"` (add
  `"fail_if_no_peer_cert"` to require one); it then checks it against `cafile` / `capath`, or the
  system's store, and tells clients the names of the CAs in `cafile`.
- An encrypted key is read with `password`, never by prompting on the terminal.]],
          entries = {
            {
              name = "core.tls.context",
              summary = "Makes a TLS context from a table of parameters shaped like LuaSec's `ssl.newcontext`.",
              text = [[
Tables written for LuaSec carry over unchanged: those Prosody's certmanager and copas build,
LuaSec's own `https` defaults. Every key of `params` must be one of those below (`false` counts
as absent, as in LuaSec); anything else is an error that names it, never silently ignored.

| key | value |
| --- | --- |
| `mode` | `"client"` or `"server"`; required |
| `protocol` | the oldest protocol accepted: `"tlsv1_2"` (default), `"tlsv1_3"`, or `"any"` (OpenSSL's own minimum); LuaSec's `"sslv23"` means `"any"`, and Prosody's `"tlsv1_2+"` / `"tlsv1_3+"` are taken too. Older protocols are refused |
| `certificate` | a PEM file: the certificate, optionally followed by its chain |
| `key` | the PEM file of its private key; must match the certificate |
| `password` | for an encrypted key: a string, or a function returning one, called (once, without arguments) only if the key is encrypted |
| `cafile`, `capath` | the trusted certificates: a PEM file, a folder prepared with `openssl rehash` |
| `verify` | `"none"`, `"peer"`, `"fail_if_no_peer_cert"`, `"client_once"`, or a list or set of them |
| `depth` | the longest certificate chain accepted (an integer >= 0) |
| `ciphers` | TLS 1.2 ciphers, in OpenSSL's syntax (a string, or a list joined with `:`) |
| `ciphersuites` | TLS 1.3 cipher suites, likewise |
| `curveslist`, `curve` | key exchange groups (`"X25519:P-256"`, or a list); `curve` is a single one, used when there is no `curveslist` |
| `dhparam` | a PEM file of Diffie-Hellman parameters, or (as Prosody passes them) a function returning PEM text, called once as `f(false, 2048)` |
| `alpn` | the protocols a client offers or a server accepts, in order of preference: a name or a list of names (1 to 255 bytes each). A server picks its first one the client offers too, and goes on without ALPN when there is none |
| `options` | OpenSSL options by LuaSec's names, a name, a list or a set (`{ no_ticket = true }`): `no_ticket`, `no_compression`, `cipher_server_preference`, `no_renegotiation`, `prioritize_chacha`, `all`, ... (every name LuaSec knows but the DTLS ones and `no_ssl_mask`). `no_sslv2` ... `no_tlsv1_1` are accepted and change nothing at the default minimum; names OpenSSL 3 keeps only for compatibility (`single_dh_use`, `single_ecdh_use`, ...) change nothing either |
| `verifyext` | LuaSec's `"lsec_continue"` (a failed verification does not end the connection; the session reports it) and `"lsec_ignore_purpose"` (peers' certificates are checked as server certificates, as XMPP servers present them to each other) |

The context is freed when it is garbage collected; connections made from it keep what they
need.]],
              params = {
                { name = "params", type = "TlsParams", text = "the parameters: mode, protocol, certificate, key, password, cafile, capath, verify, depth, ciphers, ciphersuites, curveslist, curve, dhparam, alpn, options, verifyext" },
              },
              returns = { { name = "context", type = "TlsContext", text = "the new context" } },
              errors = {
                arg("params", "table expected, got <type>"),
                err("core.tls.context: unsupported parameter '<name>'", "a key that is not one of the parameters above (also `[<n>]` for a number key)"),
                err("core.tls.context: 'mode' is required (\"client\" or \"server\")", "`mode` is missing"),
                err("core.tls.context: unsupported <mode, protocol, option, verify option or verifyext option> '<value>'", "a value it does not know, such as `protocol = \"tlsv1\"`"),
                err("core.tls.context: '<name>' must be <what>, got <type>", "a parameter of the wrong type"),
                err("core.tls.context: 'certificate' needs its 'key'", "one without the other (or the reverse)"),
                err("core.tls.context: cannot load certificate '<file>': <reason>", "the file cannot be read (`No such file or directory`, `Permission denied`) or holds no certificate (`no start line`)"),
                err("core.tls.context: cannot load key '<file>': <reason>", "likewise for the key; `it is encrypted and no 'password' was given`, `the password does not decrypt it`"),
                err("core.tls.context: the key '<key>' does not match the certificate '<certificate>'", "the key belongs to another certificate"),
                err("core.tls.context: the password function failed: <error>", "the password function raised (its error as a string)"),
                err("core.tls.context: the password function returned <type>, not a string", "it returned something else"),
                err("core.tls.context: cannot load CA file '<file>': <reason>", "`cafile` cannot be read"),
                err("core.tls.context: cannot use CA folder '<folder>': <strerror>", "`capath` is not a folder it can read"),
                err("core.tls.context: cannot load DH parameters '<file>': <reason>", "`dhparam` cannot be read (a `dhparam` function: `the dhparam function failed: <error>` and the like)"),
                err("core.tls.context: cannot use ciphers '<list>': <reason>", "OpenSSL knows none of them (`no cipher match`); `ciphersuites` likewise"),
                err("core.tls.context: unsupported curve in '<list>': <reason>", "a group OpenSSL does not know"),
                err("core.tls.context: ALPN protocol names are 1 to 255 bytes long", "an empty or too long name; `'alpn' names no protocol` for an empty list"),
              },
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"

-- A client that verifies servers against the system's trusted certificates (the default),
-- and one that does not verify at all (only for peers checked some other way).
local client = core.tls.context { mode = "client", alpn = { "h2", "http/1.1" } }
local unchecked = core.tls.context { mode = "client", verify = "none" }

-- A server needs a certificate and its key: make a self-signed pair with the openssl command.
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir " .. dir)
os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1"
  .. " -subj /CN=localhost -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(dir, dir))
local server = core.tls.context {
  mode = "server", certificate = dir .. "/cert.pem", key = dir .. "/key.pem",
  options = { "no_ticket", "cipher_server_preference" },
}
print(type(client), type(unchecked), type(server))

-- A file that is not there: the error says which, and why.
local ok, err = pcall(core.tls.context, { mode = "server", certificate = dir .. "/missing.pem", key = dir .. "/key.pem" })
print((err:gsub(dir:gsub("%p", "%%%0"), "<dir>")))
os.execute("rm -r " .. dir)
]=],
                  output = "userdata\tuserdata\tuserdata\ncore.tls.context: cannot load certificate '<dir>/missing.pem': No such file or directory\n",
                },
              },
            },
          },
        },
        {
          title = "DNS resolvers (core.dns)",
          class = "Resolver",
          text = [[
Each base also has a default resolver, made from the system's configuration when something
first needs it (connecting by name); `core.dns.new` makes resolvers of your own.]],
          entries = {
            {
              name = "core.dns.new",
              signature = "core.dns.new(base [, options])",
              summary = "Makes a resolver on `base`.",
              text = [[
Without options it reads the system's configuration: the name servers, search domains and
options of `/etc/resolv.conf`, and `/etc/hosts`. The options (all optional):

| option | meaning |
| --- | --- |
| `nameservers` | a list of name servers to ask instead of those of resolv.conf (which is then not read at all): `"ip"` or `"ip:port"`, IPv6 as `"::1"` or `"[::1]:5353"`; the port defaults to 53 |
| `hosts` | the path of a hosts file to read instead of `/etc/hosts`, or `false` for none |
| `timeout` | seconds to wait for an answer to each try (libevent's default: 5) |
| `attempts` | how many times a question is sent before giving up, 1 to 255 (default: 3) |

Names in the hosts file are answered without asking any name server.]],
              params = {
                { name = "base", type = "Base", text = "the base whose loop runs the lookups" },
                { name = "options", type = "table", optional = true, text = "see above" },
              },
              returns = { { name = "resolver", type = "Resolver", text = "the new resolver" } },
              errors = {
                arg("options", "table or nil expected, got <type>"),
                arg("options", "unknown option '<key>'"),
                arg("options", "options.nameservers: a list of addresses expected, got <type>"),
                arg("options", "options.nameservers: at least one address expected"),
                arg("options", "options.nameservers[<n>]: invalid address '<text>'"),
                arg("options", "options.nameservers[<n>]: an address string expected, got <type>"),
                arg("options", "options.hosts: a file path or false expected, got <value>"),
                arg("options", "options.timeout: a number of seconds > 0 expected, got <value>"),
                arg("options", "options.attempts: an integer from 1 to 255 expected, got <value>"),
                err("core.dns.new: could not read the hosts file '<path>': <strerror>", "`options.hosts` cannot be read"),
                err("core.dns.new: could not add the name server '<text>'", "libevent refuses a name server"),
                err("core.dns.new: could not create a resolver", "libevent cannot make one (out of memory)"),
                err("core.dns.new: could not create a resolver: the sockets of its <n> name server(s) would be beyond FD_SETSIZE (1024), which the select backend cannot watch",
                  "on libevent's select backend, with too few descriptors free below FD_SETSIZE for a socket per name server (glibc would abort the process once a question is sent)"),
              },
              differences = { "dns-resolver" },
              examples = {
                {
                  title = "names from a hosts file of our own (no name server is asked)",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local path = os.tmpname()                -- a hosts file of our own
local file = assert(io.open(path, "w"))
file:write("192.0.2.1 www.example.test\n2001:db8::1 www.example.test\n")
file:close()

local resolver = core.dns.new(base, { hosts = path, nameservers = { "127.0.0.1:53" } })
local request = resolver:resolve("www.example.test", function(addresses, message)
  print(table.concat(addresses, " "))
end)
base:loop()                             -- returns once the lookup is done
os.remove(path)
]=],
                  output = "2001:db8::1 192.0.2.1\n",
                },
                {
                  title = "a bad option",
                  code = [=[
local core = require "luaevent.core"
local ok, err = pcall(function() local resolver = core.dns.new(core.new(), { timeout = 0 }) end)
print(err:match("bad argument.*"))
]=],
                  output = "bad argument #2 to 'new' (options.timeout: a number of seconds > 0 expected, got 0)\n",
                },
              },
            },
            {
              name = "resolver:resolve",
              summary = "Starts looking up the addresses of `name`.",
              text = [[
`callback` runs exactly once, from the loop (see [`ResolveCallback`](#resolvecallback)). The
request keeps the callback alive until then; the callback is forgotten (never called) only if
the base itself is collected first, when no loop could run it any more.]],
              params = {
                { name = "name", type = "string", text = "a host name, or a literal IPv4 or IPv6 address (answered without asking)" },
                { name = "callback", type = "ResolveCallback", text = "called as `callback(addresses)` or `callback(nil, message)`" },
                { name = "family", type = "\"inet\"|\"inet6\"|\"any\"", optional = true, text = "IPv4 only, IPv6 only, or both (the default)" },
              },
              returns = { { name = "request", type = "DnsRequest", text = "the request, for `request:cancel()`" } },
              errors = {
                arg("name", "string expected, got <type>"),
                arg("name", "a non-empty name expected"),
                arg("name", "the name contains a NUL byte"),
                arg("callback", "function expected, got <type>"),
                arg("family", "'inet', 'inet6' or 'any' expected, got '<text>'"),
                err("resolver:resolve: the event base of this resolver was collected, so no loop could run the callback", "the base was garbage collected"),
              },
              examples = {
                {
                  title = "literal addresses, one family",
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local resolver = core.dns.new(base, { hosts = false, nameservers = { "127.0.0.1:53" } })
local answered = false
resolver:resolve("2001:db8::5", function(addresses)
  answered = true
  print(addresses[1])
end, "inet6")
print("answered inside resolve: " .. tostring(answered))
base:loop()
]=],
                  output = "answered inside resolve: false\n2001:db8::5\n",
                },
              },
            },
            { callback = "ResolveCallback" },
            {
              name = "resolver:close",
              summary = "Closes the resolver: pending lookups end as cancelled.",
              text = [[
Each pending request's callback then runs once, from the loop, with `nil, "cancelled"`. Closing
twice is harmless, and it is safe from inside a request's callback. Garbage collection closes
the resolver too.]],
              params = {},
              returns = {},
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local path = os.tmpname()                -- a hosts file of our own
local file = assert(io.open(path, "w"))
file:write("192.0.2.1 www.example.test\n2001:db8::1 www.example.test\n")
file:close()

local resolver = core.dns.new(base, { hosts = path, nameservers = { "127.0.0.1:53" } })
resolver:resolve("www.example.test", function(addresses, message) print(addresses, message) end)
resolver:close()
resolver:close()
base:loop()
os.remove(path)
]=],
                  output = "nil\tcancelled\n",
                },
              },
            },
          },
        },
        {
          title = "DNS requests",
          class = "DnsRequest",
          entries = {
            {
              name = "request:cancel",
              summary = "Cancels the lookup.",
              text = [[
The callback then runs once, from the loop, with `nil, "cancelled"`, even if the answer had
already arrived; if the callback ran already, nothing happens. Cancelling twice is harmless.]],
              params = {},
              returns = {},
              examples = {
                {
                  code = [=[
local core = require "luaevent.core"
local base = core.new()
local resolver = core.dns.new(base, { hosts = false, nameservers = { "127.0.0.1:53" } })
local request = resolver:resolve("192.0.2.9", function(addresses, message) print(addresses, message) end)
request:cancel()
base:loop()
request:cancel()                        -- the callback ran: nothing happens
]=],
                  output = "nil\tcancelled\n",
                },
              },
            },
          },
        },
      },
    },
    {
      name = "luaevent", var = "luaevent", file = "luaevent.lua",
      summary = "A copas-like coroutine layer over one event base of its own.",
      text = [[
```lua
local luaevent = require "luaevent"
```

The wrapper owns one event base, made when it is first required, and lets coroutines use
non-blocking LuaSocket sockets as if they were blocking: each socket helper calls LuaSocket, and
whenever LuaSocket answers `"timeout"` it suspends the calling coroutine until the socket is
readable or writable, then tries again. `luaevent.loop()` runs the base and resumes the
coroutines.

Rules of the game:

- The socket helpers (`send`, `receive`, `receivePartial`, `connect`) must be called from
  inside a coroutine, normally one started by `addthread` or `addserver`. Outside of one they
  fail as soon as they would have to wait.
- Each socket gets one event, made the first time a coroutine waits on it, which resumes that
  coroutine. The table of these events is weak-keyed: when a socket is garbage collected, its
  event goes too. When the coroutine has finished, the event resumed it removes itself.
- An error raised in a coroutine after it has waited stops the loop: `luaevent.loop()` raises it
  (with a traceback). Before its first wait, an error is returned by `addthread` (and lost for an
  `addserver` handler).
- The base is private: `luaevent.loopexit()` ends its loop. `loop()` returns once no events are
  left, which never happens while a server added by `addserver` or `serve` is listening.
- Without LuaSocket: `luaevent.serve` and `luaevent.dial` make [connections](#connections) on
  the core's own listener and bufferevents, whose `receive` and `send` behave as LuaSocket's.]],
      differences = { "wrapper-weak-table", "wrapper-dead-coroutine" },
      sections = {
        {
          title = "Fields",
          entries = {
            {
              name = "luaevent._NAME", type = "string", value = "luaevent",
              summary = "The wrapper's name.",
            },
            {
              name = "luaevent._VERSION", type = "string", value = "0.4.7",
              summary = "The version of the C module's wrapper whose API this one follows.",
              differences = { "wrapper-version" },
            },
            {
              name = "luaevent._CORE", type = "string",
              summary = "The core it runs on: `\"luaevent-rs <version>\"`, or `\"luaevent (C)\"` on the C module.",
              differences = { "name-version" },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local core = luaevent.core
print(luaevent._CORE == core._NAME .. " " .. core._VERSION)
]=],
                  output = "true\n",
                },
              },
            },
            {
              name = "luaevent.core", type = "luaevent.core", value_is = "luaevent.core",
              summary = "The core the wrapper runs on, the table `require \"luaevent.core\"` returns.",
            },
          },
        },
        {
          title = "Functions",
          types = { "Socket" },
          entries = {
            {
              name = "luaevent.addevent",
              summary = "`base:addevent` on the wrapper's base.",
              text = "Returns the event object; keep it referenced. Everything else is as for [`base:addevent`](#baseaddevent).",
              params = {
                { name = "fd", type = "Fd|nil", text = "as for `base:addevent`" },
                { name = "events", type = "integer", text = "as for `base:addevent`" },
                { name = "callback", type = "EventCallback", text = "as for `base:addevent`" },
                { name = "timeout", type = "number", optional = true, text = "as for `base:addevent`" },
              },
              returns = { { name = "event", type = "Event", text = "the event object" } },
              errors = { err("bad argument #<n> to 'addevent' (<reason>)", "as for `base:addevent`") },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local core = luaevent.core

-- A timer that resumes a coroutine three times.
local co = coroutine.wrap(function()
  for i = 1, 3 do
    print("tick " .. i)
    coroutine.yield()          -- back to the loop; returning nothing keeps the timer
  end
  return core.LEAVE            -- the last call removes the timer
end)
local timer = luaevent.addevent(nil, core.EV_TIMEOUT, co, 0.01)
print(luaevent.loop())
]=],
                  output = "tick 1\ntick 2\ntick 3\n1\n",
                },
              },
            },
            {
              name = "luaevent.addthread",
              summary = "Creates a coroutine running `func(...)` and starts it at once.",
              text = [[
An error before the coroutine's first wait is returned, as `coroutine.resume` returns it (check
`ok`); one raised after a wait stops `luaevent.loop()`, which raises it with the coroutine's
traceback.]],
              params = {
                { name = "func", type = "fun(...: any): any", text = "the body of the coroutine" },
                { name = "...", type = "any", text = "its arguments" },
              },
              returns = {
                { name = "ok", type = "boolean", text = "what `coroutine.resume` returns: `true`, or `false` if `func` failed before its first wait" },
                { name = "...", type = "any", text = "the values it yielded (the event it waits for) or returned, or the error message" },
              },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
print(luaevent.addthread(function(a, b) return a + b end, 1, 2))
print(luaevent.addthread(function() error("early", 0) end))
]=],
                  output = "true\t3\nfalse\tearly\n",
                },
              },
            },
            {
              name = "luaevent.loop",
              summary = "Runs the wrapper's base (`base:loop()`).",
              text = [[
An error raised in a coroutine the loop resumed, or by an `addserver` handler before its first
wait, stops the loop and is raised again here: the message, the traceback of the coroutine
(where the mistake is), then the traceback of the callback that resumed it. A coroutine that
failed this way leaves no event behind. `loop` returns `1` once no events are left, which a
server started by `addserver` prevents: stop it with `luaevent.loopexit()` (see
[Loop lifetime](#loop-lifetime)).]],
              params = {},
              returns = { { name = "result", type = "integer", text = "`1` once no events are left" } },
              errors = { err("<the coroutine's error message>\nstack traceback:\n<...>", "a resumed coroutine raised an error") },
              differences = { "wrapper-loop-returns", "wrapper-coroutine-errors" },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local socket = require "socket"

luaevent.addthread(function()
  local sock = socket.tcp()
  local ok, err = luaevent.connect(sock, "127.0.0.1", 1)   -- nobody listens on port 1
  error("connect said: " .. tostring(err), 0)
end)
local ok, err = pcall(luaevent.loop)
print(err:match("^[^\n]*"))
]=],
                  output = "connect said: connection refused\n",
                },
              },
            },
            {
              name = "luaevent.loopexit",
              summary = "Makes `luaevent.loop()` return: `base:loopexit` on the wrapper's base.",
              text = [[
Without an argument the loop returns once the callbacks of the current round have run; with
`seconds`, after that long (a pending exit keeps the loop running until then, see
[Loop lifetime](#loop-lifetime)). Called while the loop is not running, it applies to the next
`luaevent.loop()`.]],
              params = {
                { name = "seconds", type = "number", optional = true, text = "how long the loop may still run" },
              },
              returns = { { name = "result", type = "integer", text = "`0` on success" } },
              errors = { err("bad argument #1 to 'loopexit' (<reason>)", "as for `base:loopexit`") },
              differences = { "wrapper-loopexit" },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local core = luaevent.core

local ticks = 0
local timer = luaevent.addevent(nil, core.EV_TIMEOUT, function()
  ticks = ticks + 1
  if ticks == 3 then luaevent.loopexit() end   -- done: the timer would go on for ever
end, 0.01)
print(luaevent.loop(), ticks)
]=],
                  output = "0\t3\n",
                },
              },
            },
            {
              name = "luaevent.connect",
              summary = "Makes `sock` non-blocking and connects it, suspending the coroutine until the connection is made.",
              text = "Errors are returned, not raised. Any extra arguments are passed on to `sock:connect`.",
              params = {
                { name = "sock", type = "HasGetfd", text = "a LuaSocket TCP master socket" },
                { name = "host", type = "string", text = "address or name" },
                { name = "port", type = "integer", text = "port number" },
              },
              returns = {
                { name = "ok", type = "integer?", text = "`1` on success" },
                { name = "err", type = "string?", text = "LuaSocket's error message, such as `\"connection refused\"`" },
              },
              errors = { wait_error("luaevent.connect") },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local socket = require "socket"
local server = assert(socket.bind("127.0.0.1", 0))
local host, port = server:getsockname()

luaevent.addthread(function()
  local ok, err = luaevent.connect(socket.tcp(), host, port)
  print("connected: " .. tostring(ok == 1))
end)
luaevent.loop()

luaevent.addthread(function()
  local ok, err = luaevent.connect(socket.tcp(), "127.0.0.1", 1)   -- nobody listens on port 1
  print("failed: " .. err)
end)
luaevent.loop()
]=],
                  output = "connected: true\nfailed: connection refused\n",
                },
              },
            },
            {
              name = "luaevent.send",
              summary = "Sends bytes `i` to `j` of `data`, suspending the coroutine while the socket cannot take more.",
              text = "After a partial write it resumes right after the last byte LuaSocket reported sent.",
              params = {
                { name = "sock", type = "HasGetfd", text = "a connected socket" },
                { name = "data", type = "string", text = "the bytes" },
                { name = "i", type = "integer", optional = true, text = "first byte to send (default 1)" },
                { name = "j", type = "integer", optional = true, text = "last byte to send (default `#data`)" },
              },
              returns = {
                { name = "last", type = "integer?", text = "the index of the last byte sent" },
                { name = "err", type = "string?", text = "LuaSocket's error message, such as `\"closed\"`" },
                { name = "partial", type = "integer?", text = "on error, the index of the last byte sent" },
              },
              differences = { "wrapper-send" },
              errors = { wait_error("luaevent.send") },
              examples = {
                {
                  code = with_pair [=[
local luaevent = require "luaevent"
local socket = require "socket"
--PAIR--
client:settimeout(0)

-- 4 MiB is more than the kernel takes at once: send waits for the peer to read.
local data = string.rep("0123456789abcdef", 262144)
local reader = luaevent.addevent(peer, luaevent.core.EV_READ, function()
  local chunk, err, part = peer:receive(65536)
  if err == "closed" then return luaevent.core.LEAVE end
end)
peer:settimeout(0)
luaevent.addthread(function()
  print(luaevent.send(client, data) == #data)
  local last = luaevent.send(client, "abc", 2, 3)
  print(last == 3)                                    -- "bc" sent: the last byte is data[3]
  client:close()
end)
luaevent.loop()
]=],
                  output = "true\ntrue\n",
                },
              },
            },
            {
              name = "luaevent.receive",
              summary = "Receives by LuaSocket's `pattern`, suspending the coroutine until the request is complete.",
              params = {
                { name = "sock", type = "HasGetfd", text = "a connected socket" },
                { name = "pattern", type = "string|integer", optional = true, text = "`\"*l\"` (a line, the default), `\"*a\"` (everything until the peer closes) or a byte count" },
                { name = "part", type = "string", optional = true, text = "a prefix to prepend, as in LuaSocket" },
              },
              returns = {
                { name = "data", type = "string?", text = "what was received" },
                { name = "err", type = "string?", text = "LuaSocket's error message, such as `\"closed\"`" },
                { name = "partial", type = "string?", text = "on error, the data received before it" },
              },
              errors = { wait_error("luaevent.receive") },
              examples = {
                {
                  code = with_pair [=[
local luaevent = require "luaevent"
local socket = require "socket"
--PAIR--
peer:settimeout(0)

luaevent.addthread(function()
  print((luaevent.receive(peer, "*l")))   -- only the data
  print((luaevent.receive(peer, 3)))
  print(luaevent.receive(peer, "*l"))     -- the peer closed: nil, the error, the partial data
end)
local feed = luaevent.addevent(nil, 0, function()
  client:send("first line\nabcdef")
  client:close()
  return luaevent.core.LEAVE
end, 0.01)
luaevent.loop()
]=],
                  output = "first line\nabc\nnil\tclosed\tdef\n",
                },
              },
            },
            {
              name = "luaevent.receivePartial",
              summary = "Like `receive`, but with a byte count it returns as soon as some data has arrived.",
              text = [[
When fewer bytes than asked came, it returns `nil, "timeout", data`. With `"*l"` or `"*a"` it
waits like `receive`, carrying what arrived so far over to the next attempt.]],
              params = {
                { name = "sock", type = "HasGetfd", text = "a connected socket" },
                { name = "pattern", type = "string|integer", optional = true, text = "as for `receive`" },
              },
              returns = {
                { name = "data", type = "string?", text = "what was received, when complete" },
                { name = "err", type = "string?", text = "`\"timeout\"` for a partial byte count, or LuaSocket's error message" },
                { name = "partial", type = "string?", text = "the data received so far" },
              },
              differences = { "wrapper-receive-partial" },
              errors = { wait_error("luaevent.receivePartial") },
              examples = {
                {
                  code = with_pair [=[
local luaevent = require "luaevent"
local socket = require "socket"
--PAIR--
peer:settimeout(0)

luaevent.addthread(function()
  print(luaevent.receivePartial(peer, 100))
  print((luaevent.receivePartial(peer, "*l")))
end)
-- Two timers feed the data in two parts (keep both referenced: see Event).
local first = luaevent.addevent(nil, 0, function()
  client:send("some bytes")
  return luaevent.core.LEAVE
end, 0.01)
local second = luaevent.addevent(nil, 0, function()
  client:send(" then a line end\n")
  return luaevent.core.LEAVE
end, 0.05)
luaevent.loop()
]=],
                  output = "nil\ttimeout\tsome bytes\n then a line end\n",
                },
              },
            },
            {
              name = "luaevent.flush",
              summary = "Does nothing and returns nothing: the helpers never buffer. Kept for old programs.",
              params = {
                { name = "sock", type = "any", text = "ignored" },
              },
              returns = {},
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
print(select("#", luaevent.flush(nil)))
]=],
                  output = "0\n",
                },
              },
            },
            {
              name = "luaevent.addserver",
              summary = "Serves the listening socket `sock`, each client in a coroutine of its own.",
              text = [[
Whenever `sock` is readable, one client is accepted, made non-blocking, and `handler(client)` is
started in a coroutine of its own. Give `sock` `settimeout(0)`. The server stays registered until
the returned event is closed, so `loop()` does not return by itself any more: end it with
`luaevent.loopexit()`. A handler that raises an error stops `loop()`, which raises it with the
handler's traceback; the server stays, and the next `loop()` serves on.]],
              params = {
                { name = "sock", type = "HasGetfd", text = "a listening socket" },
                { name = "handler", type = "fun(client: Socket)|fun(client: any)", text = "runs once per client; its client may be declared with a LuaSocket addon's type" },
              },
              returns = { { name = "server", type = "Event", text = "the listening event: `server:close()` stops accepting" } },
              differences = { "wrapper-coroutine-errors", "wrapper-loopexit" },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local socket = require "socket"

local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(0)
local host, port = server:getsockname()

-- The server: answer each line with its upper-case version until the client leaves.
luaevent.addserver(server, function(client)
  while true do
    local line = luaevent.receive(client, "*l")
    if not line then break end
    luaevent.send(client, line:upper() .. "\n")
  end
  client:close()
end)

-- A client with three requests.
luaevent.addthread(function()
  local sock = socket.tcp()
  assert(luaevent.connect(sock, host, port))
  for _, word in ipairs({ "alpha", "beta", "gamma" }) do
    luaevent.send(sock, word .. "\n")
    print((luaevent.receive(sock, "*l")))
  end
  sock:close()
  luaevent.loopexit()   -- the listening server would keep loop() running for ever
end)

print(luaevent.loop())
]=],
                  output = "ALPHA\nBETA\nGAMMA\n0\n",
                },
              },
            },
            {
              name = "luaevent.resolver",
              differences = { "networking" },
              summary = "`core.dns.new` on the wrapper's base: a resolver for `luaevent.dial`'s `options.dns`.",
              text = [[
`dial` can use only a resolver on the wrapper's own base, which this makes, with the options of
[`core.dns.new`](#corednsnew). Without `options.dns`, `dial` uses the base's default resolver
(the system's configuration).]],
              params = {
                { name = "options", type = "{ nameservers: string[]?, hosts: string|false|nil, timeout: number?, attempts: integer? }", optional = true, text = "as for `core.dns.new`" },
              },
              returns = { { name = "resolver", type = "Resolver", text = "the resolver" } },
              errors = { err("bad argument #1 to 'resolver' (<reason>)", "as for `core.dns.new`") },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"

-- Names from a hosts file of our own; the name server, a port where nothing answers, is never asked.
local path = os.tmpname()
local file = assert(io.open(path, "w"))
file:write("127.0.0.1 echo.example\n")
file:close()
local resolver = luaevent.resolver({ hosts = path, nameservers = { "127.0.0.1:9" }, timeout = 0.2, attempts = 1 })

local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn)
  conn:send("hello, echo.example here\n")
  conn:close()
end)
luaevent.addthread(function()
  local _, port = listener:address()
  local conn = assert(luaevent.dial("echo.example", port, { dns = resolver }))
  print(conn:receive("*l"))
  conn:close()
  listener:close()
  resolver:close()
  os.remove(path)
end)
luaevent.loop()
]=],
                  output = "hello, echo.example here\n",
                },
              },
            },
            {
              name = "luaevent.wrap",
              summary = "Returns a [wrapped socket](#wrapped-sockets).",
              params = {
                { name = "sock", type = "HasGetfd", text = "the socket to wrap" },
              },
              returns = { { name = "wrapped", type = "WrappedSocket", text = "`{ socket = sock }` with the methods of `WrappedSocket`" } },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local socket = require "socket"
local sock = socket.tcp()
local w = luaevent.wrap(sock)
print(rawequal(w.socket, sock))
print(w:close() == 1)
]=],
                  output = "true\ntrue\n",
                },
              },
            },
            {
              name = "luaevent.dial",
              differences = { "networking" },
              summary = "Connects to `host` and `port`, suspending the coroutine until the connection is made.",
              text = [[
`core.bufferevent.connect` on the wrapper's base: `host` is an address literal or a name
(resolved without blocking the loop), and `options` are connect's. Failures are returned, not
raised: `nil` and the message the core gives (it names the address, say
`could not connect to 127.0.0.1 port 1: Connection refused`), or `"timeout"` when
`options.timeout` passed first. With `options.tls` (a client context) it returns once the TLS
handshake has succeeded and the server is verified, or `nil` and OpenSSL's reason
(`"certificate verify failed: self-signed certificate"`); `options.servername` is the name sent
as SNI and checked (by default `host` when it is a name).]],
              params = {
                { name = "host", type = "string", text = "an IPv4 or IPv6 address literal, or a name" },
                { name = "port", type = "integer", text = "1-65535" },
                { name = "options", type = "{ timeout: number?, servername: string?, tls: any?, dns: any? }", optional = true, text = "as for `core.bufferevent.connect`" },
              },
              returns = {
                { name = "conn", type = "Connection?", text = "the connection" },
                { name = "err", type = "string?", text = "why there is none" },
              },
              errors = {
                err("bad argument #<n> to 'dial' (<reason>)", "a host that is not a string, a port that is not a number in 1-65535, an unknown option"),
                err("luaevent.dial: connecting takes a while, and only a coroutine can wait: call luaevent.dial inside a function run by luaevent.addthread or a luaevent.serve handler",
                  "called outside a coroutine"),
              },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"

local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn)
  conn:send("hello from the server\n")
  conn:close()
end)
local _, port = listener:address()

luaevent.addthread(function()
  local conn = assert(luaevent.dial("127.0.0.1", port))
  print(conn:receive("*l"))
  conn:close()
  listener:close()
  listener:close()                                  -- idempotent
  local none, err = luaevent.dial("127.0.0.1", port)  -- nobody listens any more
  print(none, (err:gsub("port %d+", "port <port>")))
end)
luaevent.loop()
]=],
                  output = "hello from the server\nnil\tcould not connect to 127.0.0.1 port <port>: Connection refused\n",
                },
              },
            },
            {
              name = "luaevent.serve",
              differences = { "networking" },
              summary = "Listens for TCP connections, each handled by `handler(conn, host, port)` in a coroutine of its own.",
              text = [[
`core.listener.new` on the wrapper's base, with the same `options`. The wrapper keeps the
listener until `listener:close()`, and while it listens `luaevent.loop()` does not return by
itself: close it, or end the loop with `luaevent.loopexit()`. An error raised by a handler
stops `loop()`, which raises it with the handler's traceback; the listener stays, and the next
`loop()` serves on. With `options.tls` (a server context) a handler starts only once its
connection's TLS handshake has succeeded; a connection whose handshake fails is closed and
never reaches a handler. Until then the wrapper holds the connection, for at most
`options.handshake_timeout` seconds (the wrapper's own option, 30 by default): a client that
has not completed its handshake by then is closed.]],
              params = {
                { name = "options", type = "{ host: string?, port: integer?, backlog: integer?, reuseaddr: boolean?, tls: any?, handshake_timeout: number? }", text = "as for `core.listener.new`, and `handshake_timeout`" },
                { name = "handler", type = "fun(conn: Connection, host: string, port: integer)", text = "runs once per connection, with the peer's address and port" },
              },
              returns = { { name = "listener", type = "Listener", text = "the listener: `listener:address()` tells the port, `listener:close()` stops serving" } },
              errors = {
                err("bad argument #<n> to 'serve' (<reason>)", "options that are not a table or hold an unknown key, a handler that is not a function"),
                err("luaevent.serve: could not listen on <host> port <port>: <reason>", "the address cannot be bound"),
              },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"

-- Answers each line with its length until the client hangs up.
local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn, host, port)
  print("a client from " .. host)
  while true do
    local line = conn:receive("*l")
    if not line then break end
    conn:send(#line .. "\n")
  end
  conn:close()
end)

luaevent.addthread(function()
  local conn = assert(luaevent.dial(listener:address()))
  for _, word in ipairs({ "one", "three" }) do
    conn:send(word .. "\n")
    print(word, conn:receive("*l"))
  end
  conn:close()
  listener:close()
end)
luaevent.loop()
]=],
                  output = "a client from 127.0.0.1\none\t3\nthree\t5\n",
                },
              },
            },
          },
        },
        {
          title = "Connections",
          class = "Connection",
          entries = {
            {
              name = "conn:receive",
              summary = "Receives by LuaSocket's `pattern`, suspending the coroutine until the request is complete.",
              text = [[
`"*l"` reads a line ended by LF and removes every CR from it (LuaSocket's rule, not libevent's
`readline`); `"*a"` reads until the peer closes; a number reads that many bytes. At the end of
the stream it returns `nil, "closed"` and what came before (with `"*a"`, the data itself, as
LuaSocket does); bytes that arrived with the end of the stream are never lost. After
`settimeout(t)`, a wait longer than `t` seconds returns `nil, "timeout"` and the partial data,
which can be given back as `prefix`: as in LuaSocket 3, a byte count includes the prefix, so
`receive(n, partial)` completes the request that timed out.]],
              params = {
                { name = "pattern", type = "string|integer", optional = true, text = "`\"*l\"` (the default), `\"*a\"` or a byte count (the prefix included)" },
                { name = "prefix", type = "string", optional = true, text = "put before what is received" },
              },
              returns = {
                { name = "data", type = "string?", text = "what was received" },
                { name = "err", type = "string?", text = "`\"closed\"`, `\"timeout\"` or the system's reason" },
                { name = "partial", type = "string?", text = "on error, the data received before it" },
              },
              errors = {
                err("bad argument #1 to 'receive' (invalid receive pattern)", "a pattern other than those"),
                err("connection:receive: no data has come yet, and only a coroutine can wait: call connection:receive inside a function run by luaevent.addthread or a luaevent.serve handler",
                  "called outside a coroutine when it would have to wait"),
              },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"

local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn)
  conn:send("GET / HTTP/1.0\r\n\r\n0123456789the rest")
  conn:close()
end)

luaevent.addthread(function()
  local conn = assert(luaevent.dial(listener:address()))
  print(conn:receive("*l"))        -- the CR is gone
  print(#conn:receive("*l"))       -- an empty line
  print(conn:receive(10))
  print(conn:receive(100))         -- the peer closed: nil, "closed", what came
  conn:close()
  listener:close()
end)
luaevent.loop()
]=],
                  output = "GET / HTTP/1.0\n0\n0123456789\nnil\tclosed\tthe rest\n",
                },
              },
            },
            {
              name = "conn:send",
              summary = "Sends bytes `i` to `j` of `data`, suspending the coroutine while the peer lags 64 KiB behind.",
              text = [[
The bytes go to the bufferevent's output buffer, which libevent writes as the peer takes them;
while more than 64 KiB wait there, `send` waits, so a fast sender cannot fill memory. Once the
peer has gone (a reset or a broken pipe), it returns `nil, "closed"`: as with LuaSocket, the
first send after the peer closed may still succeed.]],
              params = {
                { name = "data", type = "string", text = "the bytes" },
                { name = "i", type = "integer", optional = true, text = "first byte to send (default 1)" },
                { name = "j", type = "integer", optional = true, text = "last byte to send (default `#data`)" },
              },
              returns = {
                { name = "last", type = "integer?", text = "the index of the last byte sent" },
                { name = "err", type = "string?", text = "`\"closed\"`, `\"timeout\"` or the system's reason" },
                { name = "partial", type = "integer?", text = "on error, the index of the last byte that left the buffer" },
              },
              errors = {
                err("bad argument #1 to 'send' (string expected, got <type>)", "`data` is not a string or number"),
                err("connection:send: the peer has not taken the data sent before, and only a coroutine can wait: call connection:send inside a function run by luaevent.addthread or a luaevent.serve handler",
                  "called outside a coroutine when it would have to wait"),
              },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"

local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn)
  print(#conn:receive("*a"))
  conn:close()
end)

luaevent.addthread(function()
  local conn = assert(luaevent.dial(listener:address()))
  local data = string.rep("x", 4 * 1024 * 1024)
  print(conn:send(data) == #data)        -- waited while the server caught up
  print(conn:send("abcdef", 2, 3))       -- "bc": the last index sent
  conn:close()
  listener:close()
end)
luaevent.loop()
]=],
                  output = "true\n3\n4194306\n",
                },
              },
            },
            {
              name = "conn:close",
              summary = "Closes the connection; what `send` buffered is still delivered.",
              text = [[
It returns at once. The bufferevent lives on out of sight until all has been sent (over TLS, the
encrypted bytes too, then the close notice), the peer has gone, or the peer took nothing for 30
seconds. A coroutine waiting on the connection
gets `nil, "closed"`. Idempotent; afterwards `receive` and `send` return `nil, "closed"`.]],
              params = {},
              returns = { { name = "ok", type = "integer", text = "`1`, as LuaSocket's `close`" } },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"

local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn)
  conn:send(string.rep("y", 1000000))
  print(conn:close())
end)

luaevent.addthread(function()
  local conn = assert(luaevent.dial(listener:address()))
  print(#conn:receive("*a"))
  print(conn:close(), conn:close())
  print(conn:receive("*l"))
  listener:close()
end)
luaevent.loop()
]=],
                  output = "1\n1000000\n1\t1\nnil\tclosed\t\n",
                },
              },
            },
            {
              name = "conn:settimeout",
              summary = "Sets how long `receive` and `send` wait at most, each time they wait.",
              text = [[
When a wait lasts longer, they return `nil, "timeout"` and the partial result; the connection
stays usable. `nil` or a negative number waits for ever (the default). LuaSocket's `mode`
argument is accepted and changes nothing. A timeout for connecting is `dial`'s
`options.timeout`.]],
              params = {
                { name = "seconds", type = "number?", text = "seconds, fractions allowed" },
              },
              returns = { { name = "ok", type = "integer", text = "`1`, as LuaSocket's `settimeout`" } },
              errors = { err("bad argument #1 to 'settimeout' (number or nil expected, got <type>)", "`seconds` is neither") },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"

local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn)
  conn:send("no line end yet")
  conn:receive("*a")
  conn:close()
end)

luaevent.addthread(function()
  local conn = assert(luaevent.dial(listener:address()))
  conn:settimeout(0.05)
  print(conn:receive("*l"))
  conn:close()
  listener:close()
end)
luaevent.loop()
]=],
                  output = "nil\ttimeout\tno line end yet\n",
                },
              },
            },
            {
              name = "conn:getfd",
              summary = "The connection's socket descriptor, or -1 once it is closed.",
              params = {},
              returns = { { name = "fd", type = "integer", text = "the descriptor" } },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"

local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn) conn:close() end)
luaevent.addthread(function()
  local conn = assert(luaevent.dial(listener:address()))
  print(conn:getfd() == conn.bev:getfd(), conn:getfd() > 2)
  conn:close()
  print(conn:getfd())
  listener:close()
end)
luaevent.loop()
]=],
                  output = "true\ttrue\n-1\n",
                },
              },
            },
            {
              name = "conn:starttls",
              summary = "Upgrades the connection to TLS in place (STARTTLS) and waits for the handshake.",
              text = [[
Calls `conn.bev:starttls(context, options)` (a client context makes this end the TLS client, a
server context the server) and suspends the coroutine until the handshake has succeeded
(`true`) or failed (`nil` and OpenSSL's reason, say
`"certificate verify failed: self-signed certificate"`; the connection is then unusable: close
it). What `send` queued before goes out in plain first. While bytes the peer sent are still
unread (after its STARTTLS command, before it could see the answer: a peer that does not wait,
or plain text injected to pass for TLS data), it does not start TLS and returns
`nil, "connection:starttls: bytes received before the handshake are still unread"`; close the
connection then. (`bev:starttls` hands such bytes to the handshake, but `receive` has taken
them out of the bufferevent already.) After `settimeout(t)` a handshake longer than `t` seconds
returns `nil, "timeout"`. A client checks the server's name: `options.servername`, else the
host `luaevent.dial` was given; a connection a `luaevent.serve` handler got has no host, so
there a client context that verifies needs `options.servername` (the call raises without it).]],
              params = {
                { name = "context", type = "TlsContext", text = "a TLS context from `core.tls.context`" },
                { name = "options", type = "{ servername: string? }", optional = true, text = "as for `bev:starttls`" },
              },
              returns = {
                { name = "ok", type = "boolean?", text = "`true` once the handshake succeeded" },
                { name = "err", type = "string?", text = "why not: OpenSSL's reason, `\"closed\"`, `\"timeout\"` or unread bytes" },
              },
              errors = {
                err("bad argument #<n> to 'starttls' (<reason>)", "as for `bev:starttls`, numbered from `context`"),
                err("connection:starttls: the connection already uses TLS", "the connection is a TLS one already"),
                err("connection:starttls: the handshake takes a while, and only a coroutine can wait: call connection:starttls inside a function run by luaevent.addthread or a luaevent.serve handler",
                  "called outside a coroutine"),
              },
              differences = { "networking" },
              examples = {
                {
                  title = "STARTTLS in a line-based protocol",
                  code = [=[
local luaevent = require "luaevent"
local core = luaevent.core
-- A certificate for localhost and 127.0.0.1 and its key, made with the openssl command.
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir " .. dir)
os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost"
  .. " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(dir, dir))
local server_context = core.tls.context { mode = "server", certificate = dir .. "/cert.pem", key = dir .. "/key.pem" }
local client_context = core.tls.context { mode = "client", cafile = dir .. "/cert.pem" }

-- The server answers each line; "STARTTLS" is answered "GO" in plain, then TLS goes on.
local listener = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn)
  while true do
    local line = conn:receive("*l")
    if not line then break end
    if line == "STARTTLS" then
      conn:send("GO\n")
      assert(conn:starttls(server_context))
    else
      conn:send("you said " .. line .. (conn:tls() and " over TLS" or " in plain") .. "\n")
    end
  end
  conn:close()
end)

luaevent.addthread(function()
  local conn = assert(luaevent.dial(listener:address()))
  conn:send("hello\n")
  print(conn:receive("*l"))
  conn:send("STARTTLS\n")
  print(conn:receive("*l"))
  print(conn:starttls(client_context, { servername = "localhost" }))
  conn:send("secret\n")
  print(conn:receive("*l"))
  conn:close()
  listener:close()
end)
luaevent.loop()
os.execute("rm -r " .. dir)
]=],
                  output = "you said hello in plain\nGO\ntrue\nyou said secret over TLS\n",
                },
              },
            },
            {
              name = "conn:tls",
              summary = "What the TLS handshake agreed (`bev:tls()`), or nil for a plain connection.",
              text = [[
The table `bev:tls()` returns (see there for its fields: `protocol`, `cipher`, `alpn`,
`servername`, `verified`, `verify_error`, `peer`); `nil` for a plain connection, and
`nil, "closed"` once the connection is closed.]],
              params = {},
              returns = {
                { name = "info", type = "table?", text = "as `bev:tls()` returns it" },
                { name = "err", type = "string?", text = "`\"closed\"` for a closed connection" },
              },
              differences = { "networking" },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local core = luaevent.core
-- A certificate for localhost and its key, made with the openssl command.
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir " .. dir)
os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost"
  .. " -addext subjectAltName=DNS:localhost -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(dir, dir))
local server_context = core.tls.context { mode = "server", certificate = dir .. "/cert.pem", key = dir .. "/key.pem" }
local client_context = core.tls.context { mode = "client", cafile = dir .. "/cert.pem" }

local plain = luaevent.serve({ host = "127.0.0.1", port = 0 }, function(conn) conn:close() end)
local secure = luaevent.serve({ host = "127.0.0.1", port = 0, tls = server_context }, function(conn)
  print("server:", conn:tls().protocol, conn:tls().servername)
  conn:close()
end)

luaevent.addthread(function()
  local conn = assert(luaevent.dial(plain:address()))
  print(conn:tls())                    -- a plain connection
  conn:close()
  local _, port = secure:address()
  conn = assert(luaevent.dial("127.0.0.1", port, { tls = client_context, servername = "localhost" }))
  local tls = conn:tls()
  print("client:", tls.protocol, tls.verified, tls.peer.subject)
  conn:receive("*a")
  conn:close()
  print(conn:tls())
  plain:close()
  secure:close()
  os.execute("rm -r " .. dir)
end)
luaevent.loop()
]=],
                  output = "nil\nclient:\tTLSv1.3\ttrue\tCN=localhost\nserver:\tTLSv1.3\tlocalhost\nnil\tclosed\n",
                },
              },
            },
          },
        },
        {
          title = "Wrapped sockets",
          class = "WrappedSocket",
          entries = {
            {
              name = "wrapped:connect",
              summary = "`luaevent.connect(self.socket, host, port)`.",
              params = {
                { name = "host", type = "string", text = "address or name" },
                { name = "port", type = "integer", text = "port number" },
              },
              returns = {
                { name = "ok", type = "integer?", text = "`1` on success" },
                { name = "err", type = "string?", text = "LuaSocket's error message" },
              },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local socket = require "socket"
local server = assert(socket.bind("127.0.0.1", 0))
local host, port = server:getsockname()

luaevent.addthread(function()
  local w = luaevent.wrap(socket.tcp())
  print(w:connect(host, port) == 1)
  w:close()
end)
print(luaevent.loop())
]=],
                  output = "true\n1\n",
                },
              },
            },
            {
              name = "wrapped:send",
              summary = "`luaevent.send(self.socket, data)`.",
              params = {
                { name = "data", type = "string", text = "the bytes" },
              },
              returns = {
                { name = "last", type = "integer?", text = "the index of the last byte sent" },
                { name = "err", type = "string?", text = "LuaSocket's error message" },
                { name = "partial", type = "integer?", text = "on error, the index of the last byte sent" },
              },
              examples = {
                {
                  code = with_pair [=[
local luaevent = require "luaevent"
local socket = require "socket"
--PAIR--

luaevent.addthread(function()
  local w = luaevent.wrap(client)
  print(w:send("hello\n") == 6)    -- the index of the last byte sent
end)
print((peer:receive("*l")))
]=],
                  output = "true\nhello\n",
                },
              },
            },
            {
              name = "wrapped:receive",
              summary = "`luaevent.receivePartial(self.socket, pattern)` after `settimeout(0)`, `luaevent.receive(self.socket, pattern)` otherwise.",
              params = {
                { name = "pattern", type = "string|integer", optional = true, text = "as for `luaevent.receive`" },
              },
              returns = {
                { name = "data", type = "string?", text = "what was received" },
                { name = "err", type = "string?", text = "LuaSocket's error message, or `\"timeout\"` for a partial read after `settimeout(0)`" },
                { name = "partial", type = "string?", text = "the data received so far" },
              },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local socket = require "socket"

local server = assert(socket.bind("127.0.0.1", 0))
local host, port = server:getsockname()
local acceptor
acceptor = luaevent.addevent(server, luaevent.core.EV_READ, function()
  local conn = server:accept()
  acceptor:close()                            -- one connection is all we want
  conn:settimeout(0)
  luaevent.addthread(function()
    luaevent.send(conn, "1234567890")
    luaevent.receive(conn, "*a")              -- wait until the client hangs up
    conn:close()
  end)
end)

luaevent.addthread(function()
  local w = luaevent.wrap(socket.tcp())
  assert(w:connect(host, port))
  w:settimeout(0)
  print(w:receive(100))                       -- returns with what has come so far
  w:close()
end)
print(luaevent.loop())
]=],
                  output = "nil\ttimeout\t1234567890\n1\n",
                },
              },
            },
            {
              name = "wrapped:settimeout",
              summary = "Stores `timeout` in the wrapper; only `0` has an effect, on `receive`.",
              text = "The socket's own timeout is not changed.",
              params = {
                { name = "timeout", type = "number?", text = "`0` makes `receive` return partial byte counts" },
              },
              returns = {},
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local socket = require "socket"
local w = luaevent.wrap(socket.tcp())
w:settimeout(0)
print(w.timeout)
w:close()
]=],
                  output = "0\n",
                },
              },
            },
            {
              name = "wrapped:flush",
              summary = "Does nothing.",
              params = {},
              returns = {},
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local w = luaevent.wrap({})
print(select("#", w:flush()))
]=],
                  output = "0\n",
                },
              },
            },
            {
              name = "wrapped:close",
              summary = "Removes the socket's event, if it has one, and closes the socket.",
              text = "It works whether or not the socket ever waited.",
              params = {},
              returns = { { name = "ok", type = "integer", text = "what the socket's `close` returns" } },
              differences = { "wrapper-close-before-wait", "wrapper-close-returns" },
              examples = {
                {
                  code = [=[
local luaevent = require "luaevent"
local socket = require "socket"
local w = luaevent.wrap(socket.tcp())
print(w:close() == 1)                      -- never waited: works all the same
]=],
                  output = "true\n",
                },
              },
            },
          },
        },
      },
    },
  },

  --------------------------------------------------------------------------- editor support ----
  editor = [[
The `types/` folder is a [LuaLS](https://luals.github.io) addon generated from the same
description as this page: `types/library/` holds the definition files (`---@meta`) for
`luaevent.core` and `luaevent`, and `types/config.json` lets the language server offer the addon
when a file requires `luaevent`. It gives completion, hover text with the parameters above, and
type checks; callbacks accept functions and callable objects.

One setting enables it, in `.luarc.json` at the root of your project (or in your editor's LuaLS
settings):

```json
{ "workspace.library": ["/path/to/luaevent-rs/types/library"] }
```

or, to have the language server offer it whenever a file requires `luaevent`, add the folder that
contains `types/` to `workspace.userThirdParty` (LuaLS then adds the library itself once you
accept). The luarocks rock installs the addon at a path that stays the same across versions,
`<tree>/share/lua/<Lua version>/luaevent-rs/types` (for a rock in `/usr/local` on Lua 5.4,
`"workspace.library": ["/usr/local/share/lua/5.4/luaevent-rs/types/library"]`, or
`/usr/local/share/lua/5.4/luaevent-rs` in `workspace.userThirdParty`).

The definition files come from the same description as this page, so they list the same
parameters, return values and errors; checkers that read LuaLS annotations (LuaLS itself,
EmmyLua's `emmylua_check`) use them as they are.]],

  addon = {
    name = "luaevent-rs",
    words = { "require%s*%(?%s*[\"']luaevent[\"'.]" },
    files = {},
  },

  ------------------------------------------------------------------------- differences ----
  -- group: fix (a C module bug fixed), stricter, checked (a row of the table of arguments that
  -- are now checked), wording (a message that changed), other, wrapper. A difference that no
  -- entry names is general: `general = true`.
  differences = {
    -- fixes
    {
      id = "bufferevent-callbacks", group = "fix", title = "Bufferevent callbacks work",
      text = [[
In the C module the read, write and error callbacks of a bufferevent never run your code: the
C side looks the bufferevent object up in a table it never filled, so the first callback fails
with "attempt to index a nil value" before your function is called, and `loop()` raises that
error (thrown through libevent's frames). Here the three callbacks are called as
`callback(bev, what)`, with `bev` the very object `core.bufferevent.new` returned (`rawequal`
every time), and they run on the base the bufferevent was created on. (The C module ignored the
base argument: its bufferevents ran on libevent's global "current base", the base made last.)]],
    },
    {
      id = "bufferevent-callback-errors", group = "fix", title = "Errors in bufferevent callbacks reach `loop()`",
      text = [[
An error raised in a bufferevent callback stops the loop, and `base:loop()` raises it again
with a traceback, as it always did for event callbacks. The C module's code for this checked the
result of its `lua_pcall` the wrong way round and never reported such errors.]],
    },
    {
      id = "mask-switch-timeout", group = "fix", title = "Switching an event's mask keeps \"no timeout\"",
      text = [[
When an event without a timeout changes its mask from its callback (`return core.EV_WRITE` from
an `EV_READ` event, say), the C module re-registered it with a zero timeout: the event fired at
once with a spurious `EV_TIMEOUT` and then went dormant, since libevent does not re-arm a
zero-timeout persistent event. Here the event keeps having no timeout and simply waits for the
new condition.]],
    },
    {
      id = "timeout-rounding", group = "fix", title = "Timeouts round to the microsecond",
      text = [[
Durations in seconds are rounded to the nearest microsecond. The C module truncated them, so
`1e-06` (a value Prosody uses) became a zero timeout and `0.0000015` one microsecond.]],
    },
    {
      id = "bufferevent-buffer-close", group = "fix", title = "Closing a bufferevent's buffer is safe",
      text = [[
`bev:get_read():close()` (or `get_write()`, or collecting those buffer objects) made the C module
free memory that belonged to the bufferevent, and then free it again later: a double free that
aborts the process. Here `close()` on such a buffer only detaches the Lua object. Note that
`get_read()` and `get_write()` keep returning that same, now closed, object; so the practical
advice is still not to close them.]],
    },
    {
      id = "no-crashes", group = "fix", title = "No crashes from misuse", general = true,
      text = [[
No sequence of calls can crash the process: bad arguments, use of closed objects, errors inside
callbacks and garbage collection at any moment end in a Lua error at worst. Among the things
that crash or corrupt memory under the C module and are safe here:

- events, bufferevents or buffers that outlive their base (the base is freed only after the last
  of them);
- a callback returning something that is not a number as its new mask (see
  [Callback return values](#callback-return-values));
- `buf:get_data` with positions outside the buffer (see [core.buffer](#corebuffer));
- a bufferevent and its buffer objects collected in the same cycle (as at program exit), which
  aborts the C module with a double free.]],
    },
    -- stricter
    {
      id = "callback-results-checked", group = "stricter", title = "Callback return values",
      text = [[
The returned mask must be an integer (or a numeric string) with only event bits in it. Anything
else is reported like an error raised by the callback: the loop stops and `loop()` raises
`base:loop: event callback defined at <file>:<line> returned a string value as its new event mask (integer expected)`,
`base:loop: event callback defined at <file>:<line> returned 1.5 as its new event mask (integer expected)` or
`base:loop: event callback returned an invalid event mask (-2)`. The C module raised such errors
through libevent's own stack frames: `loop()` failed with `bad argument #-2 to '?'`, and the base
was left in a state where every later `loop()` call printed "reentrant invocation" and returned
-1.]],
    },
    {
      id = "callback-errors-strings", group = "stricter", title = "Errors raised by callbacks",
      text = [[
`base:loop()` always raises a **string**: the error message followed by a traceback of the
callback, built by the module itself. Error values that are not strings are converted: numbers as
`tostring` does, values with a `__tostring` metamethod through it, anything else as
`(error object is a table value)`. The C module used the global `debug.traceback` as message
handler when it was there, which returns non-string error values unchanged: a table raised in a
callback came out of `loop()` as that table. Programs that raise tables and inspect them after
`loop()` should give the tables a `__tostring` metamethod, or keep the details aside in a variable
before raising.]],
    },
    {
      id = "closed-bufferevent-errors", group = "stricter", title = "Closed bufferevents",
      text = [[
Every method of a bufferevent after `close()` (or of its buffers after the bufferevent is gone)
raises an error saying it is closed. In the C module the methods of a freed bufferevent silently
did nothing and returned nothing, and `get_read()` / `get_write()` returned `nil`.]],
    },
    -- arguments that are now checked: call, argument, what the C module did, what happens now
    { id = "checked-fd-negative", group = "checked", call = "any fd argument", argument = "negative (e.g. a LuaSocket socket not yet bound: fd -1)", c = "handed to libevent", now = "`invalid file descriptor (-1)`; from a socket's `getfd`, `invalid file descriptor (-1): closed or not connected?`" },
    { id = "checked-fd-fraction", group = "checked", call = "any fd argument", argument = "`1.5`", c = "truncated to 1", now = "`number has no integer representation`" },
    { id = "checked-fd-table", group = "checked", call = "any fd argument", argument = "a table with `getfd`", c = "rejected", now = "accepted, like a socket userdata" },
    { id = "checked-lightuserdata", group = "checked", call = "`addevent`", argument = "lightuserdata fd", c = "rejected", now = "accepted" },
    { id = "checked-callable-table", group = "checked", call = "`addevent`", argument = "callable table as callback", c = "rejected", now = "accepted" },
    { id = "checked-nil-fd", group = "checked", call = "`addevent`", argument = "`nil` fd without timeout", c = "`userdata expected, got nil`", now = "`timeout expected when fd is nil`" },
    { id = "checked-mask", group = "checked", call = "`addevent`", argument = "mask with unknown bits", c = "handed to libevent", now = "`invalid event mask (N)`" },
    { id = "checked-fd-not-open", group = "checked", call = "`addevent` with `EV_READ` / `EV_WRITE`, `bufferevent.new`", argument = "an fd that is not open", c = "libevent printed a warning and the event never fired", now = "`bad file descriptor (9 is not open)`" },
    { id = "checked-fd-regular-file", group = "checked", call = "the same", argument = "a regular file or directory, on epoll (which refuses them; other backends take them, as before)", c = "libevent printed a warning and the event never fired", now = "`bad file descriptor (9 is a regular file, which epoll cannot watch)`" },
    { id = "checked-fd-setsize", group = "checked", call = "the same, and an event callback's new mask", argument = "an fd of 1024 or more, on the select backend", c = "glibc aborted the process (`bit out of range 0 - FD_SETSIZE on fd_set`)", now = "`bad file descriptor (1024 is beyond FD_SETSIZE, which select cannot watch)`; from a callback, an error from `base:loop()`" },
    { id = "checked-signal-nil", group = "checked", call = "`addevent`", argument = "`EV_SIGNAL` with `nil` fd", c = "handed to libevent", now = "`signal number expected with EV_SIGNAL`" },
    { id = "checked-timeout", group = "checked", call = "`addevent`, `loopexit`, `set_timeouts`", argument = "negative, NaN, infinite or above 2^31 seconds timeout", c = "handed to libevent", now = "`timeout must be a number of seconds from 0 to 2^31 (2147483648), got -1`" },
    { id = "checked-nil-fd-readwrite", group = "checked", call = "`addevent`", argument = "`nil` fd with `EV_READ` or `EV_WRITE`", c = "accepted: an event on no descriptor", now = "`fd expected with EV_READ or EV_WRITE, got nil (nil is for timers)`" },
    { id = "checked-signal-range", group = "checked", call = "`addevent`", argument = "`EV_SIGNAL` with a number that is no signal (`0`, `9999`)", c = "accepted, and nothing registered", now = "`signal number expected with EV_SIGNAL, from 1 to 64, got 9999`" },
    { id = "checked-watermark-order", group = "checked", call = "`bev:set_read_watermarks`, `bev:set_write_watermarks`", argument = "a high watermark below the low one (and not 0)", c = "accepted: the read side stalled for ever", now = "`high watermark 5 is below the low watermark 10 (0 means no high watermark)`" },
    { id = "checked-watermarks", group = "checked", call = "`bev:set_read_watermarks`, `bev:set_write_watermarks`", argument = "non-numbers, negative numbers", c = "read as 0 or wrapped around", now = "`number expected`, `byte count must be >= 0, got -1` (`nil` still counts as 0)" },
    { id = "checked-enable-mask", group = "checked", call = "`bev:enable`, `bev:disable`", argument = "a mask other than `EV_READ`, `EV_WRITE` or both", c = "handed to libevent", now = "`EV_READ, EV_WRITE or both expected, got N`" },
    { id = "checked-add-closed", group = "checked", call = "`buf:add`", argument = "a closed buffer among the arguments", c = "the arguments before it were already added", now = "checked first: nothing is added" },
    { id = "checked-loop-reentry", group = "checked", call = "`base:loop()`", argument = "called while the same base is looping", c = "entered libevent again", now = "`base:loop: the event base is already looping`" },
    -- messages that changed wording
    { id = "wording-closed-buffer", group = "wording", c = "`Attempt to use closed event_buffer object`", now = "`attempt to use a closed buffer`" },
    { id = "wording-add-itself", group = "wording", c = "`Cannot add buffer to itself`", now = "`cannot add a buffer to itself`" },
    { id = "wording-add-type", group = "wording", c = "`Argument is not a string or buffer object`", now = "`string, number or buffer expected, got table`" },
    { id = "wording-add-nothing", group = "wording", c = "`Not enough arguments to add: ...`", now = "`bad argument #1 to 'add' (string, number or buffer expected, got no value)`" },
    { id = "wording-getfd", group = "wording", general = true, c = "`Socket type missing 'getfd' method`", now = "`getfd failed: socket or integer fd expected, got table without 'getfd'`" },
    { id = "wording-self", group = "wording", general = true, c = "`EVENT_BASE_MT expected, got table` (and the other `*_MT` names)", now = "`event base expected, got table`, `buffer expected`, `event expected`, `bufferevent expected`" },
    {
      id = "metatable-names", group = "other", topic = "Events and bases", general = true,
      title = "Metatable names",
      text = [[
The metatables are registered as `luaevent.core.base`, `luaevent.core.event`,
`luaevent.core.buffer` and `luaevent.core.bufferevent` (C: `EVENT_BASE_MT`,
`EVENT_CALLBACK_ARG_MT`, `EVENT_BUFFER_MT`, `BUFFER_EVENT_MT`); on Lua 5.3 and later `tostring`
of an object shows that name.]],
    },
    {
      id = "dns-resolver", group = "other", topic = "Additions", title = "Asynchronous name resolution: `core.dns`",
      text = [[
New: resolvers on libevent's evdns (`core.dns.new`, `resolver:resolve`, `request:cancel`,
`resolver:close`), which look names up while the loop runs instead of blocking it as
LuaSocket's `socket.dns` and `connect` do. The C module's README promised this but never had
it.]],
    },
    -- core.buffer
    {
      id = "readline-nul", group = "other", topic = "core.buffer", title = "`readline` keeps NUL bytes",
      text = [[
The C module returned a line only up to its first NUL byte (the rest of the line was consumed
and lost). Here the whole line comes back, NULs included.]],
    },
    {
      id = "get-data-clamps", group = "other", topic = "core.buffer", title = "`get_data` clamps",
      text = [[
With one argument, a negative length means "everything" (the C module passed it on as a huge
length). With two, a `begin` of 0 or one reaching before the start counts from the first byte:
`get_data(0, 2)` and `get_data(-5, 2)` on `"abc"` both give `"ab"`, where the C module computed a
position before the buffer and returned an empty string or bytes from outside it. Windows beyond
the end give `""`.]],
    },
    {
      id = "add-checks-first", group = "other", topic = "core.buffer", title = "`add` checks every argument first",
      text = "`add` checks every argument before adding anything; numbers are still added in `tostring` format.",
    },
    {
      id = "read-write-fd-forms", group = "other", topic = "core.buffer", title = "`read` and `write` take every fd form",
      text = "`read` and `write` take the same fd forms as everything else (tables with `getfd` included).",
    },
    {
      id = "add-input-refused", group = "other", topic = "core.buffer", title = "Adding to a bufferevent's input buffer",
      text = [[
Adding to a bufferevent's input buffer (which libevent keeps closed to everything but the
socket) fails with `buf:add: libevent refused to add to the buffer (a bufferevent's input
buffer takes data only from its socket, and its output buffer gives data only to it)` instead of
`Failed to add data to the buffer`.]],
    },
    -- core.bufferevent
    {
      id = "baseless-new", group = "other", topic = "core.bufferevent", title = "`bufferevent.new` accepts the base-less form",
      text = [[
Besides `new(base, fd, readcb, writecb, errorcb)` (what the C module 0.4.6 requires), the form of
the original documentation, `new(fd, readcb, writecb, errorcb)`, works: it binds to the base most
recently made by `core.new()`, and raises `core.bufferevent.new: no base given and no event base made
by core.new() is alive` if that base has been collected.]],
    },
    {
      id = "bufferevent-close", group = "other", topic = "core.bufferevent", title = "`bev:close()` exists",
      text = [[
It frees the bufferevent at once (idempotent, safe inside its own callbacks); the C module could
only free it through garbage collection.]],
    },
    {
      id = "keeps-socket", group = "other", topic = "core.bufferevent", title = "The socket object is kept alive",
      text = [[
The bufferevent keeps the socket object it was given alive, so LuaSocket cannot close the fd
under it when your own reference to the socket goes away. The fd is still never closed by the
bufferevent: close the socket yourself.]],
    },
    {
      id = "set-timeouts-fractions", group = "other", topic = "core.bufferevent", title = "`set_timeouts` takes fractions of a second",
      text = "The C module converted the values to whole seconds (`0.5` became 0, no timeout).",
    },
    {
      id = "enable-closed", group = "other", topic = "core.bufferevent", title = "`enable` and `disable` on a closed bufferevent",
      text = "They return `0` on success as before; on a closed bufferevent they raise an error instead of returning nothing.",
    },
    {
      id = "read-ahead", group = "other", topic = "core.bufferevent", title = "Reads of up to 64 KiB",
      text = [[
A bufferevent reads up to 64 KiB per wakeup (libevent alone reads 4 KiB), so a read callback
may find more data at once than under the C module; the read high watermark still caps it.]],
    },
    {
      id = "high-watermark-parking", group = "other", topic = "core.bufferevent", title = "No busy loop at the read high watermark",
      text = [[
A read callback that leaves the input at the read high watermark without taking anything is not
called again until something drains the input; libevent 2.1.12 alone would call it on every loop
round, at full CPU (libevent issue #891). A bufferevent closed just before its base is collected
is freed completely (libevent alone leaks it when no loop runs in between).]],
    },
    -- additions
    {
      id = "networking", group = "other", topic = "Additions", title = "Listening and connecting without LuaSocket",
      text = [[
New in this module, absent from the C one: `core.listener.new` (a listening socket whose
connections arrive as bufferevents), `core.bufferevent.connect`, `bev:set_callbacks`,
`bev:getfd`, `core.EVBUFFER_CONNECTED`, and a third argument to the error callback, the
reason for `EVBUFFER_ERROR` (callbacks written for two arguments are unaffected). Bufferevents
made by a listener or by `connect` own their sockets and close them; those made by
`core.bufferevent.new` still never close the descriptor they were given. The wrapper gains
`luaevent.dial`, `luaevent.serve` and their connections, with LuaSocket's `receive` and `send`,
so a coroutine program needs neither LuaSocket nor copas.]],
    },
    -- events and bases
    {
      id = "outlive-base", group = "other", topic = "Events and bases", title = "Objects may outlive their base", general = true,
      text = [[
A base collected while events, bufferevents or buffers made on it are still around is freed
only after the last of them; closing and collecting them stays safe. (The C module freed the
libevent base at once and later callbacks or closes touched freed memory.)]],
    },
    {
      id = "event-close-safe", group = "other", topic = "Events and bases", title = "`event:close()` is safe everywhere",
      text = [[
`event:close()` is safe in every callback, including for an event that already fired in the same
loop round, and closing twice does nothing.]],
    },
    {
      id = "loopexit-nil", group = "other", topic = "Events and bases", title = "`loopexit(nil)`",
      text = "`base:loopexit(nil)` is the same as `base:loopexit()`; the C module raised `number expected, got nil`.",
    },
    {
      id = "method-per-base", group = "other", topic = "Events and bases", title = "`method()` asks its own base",
      text = "`base:method()` reports the backend of that base (the C module asked libevent's global base; the value is the same in practice).",
    },
    {
      id = "new-independent-base", group = "other", topic = "Events and bases", title = "`core.new()` leaves libevent's global base alone",
      text = [[
`core.new()` creates an independent base and does not touch libevent's global "current base" as
the C module's `event_init` did. Only the base-less `bufferevent.new` form depends on which base
is "latest", and it uses the last one made by `core.new()`.]],
    },
    {
      id = "new-base-emfile", group = "other", topic = "Events and bases", title = "`core.new()` out of descriptors",
      text = [[
`core.new()` raises `core.new: could not create an event base: Too many open files` when the
process cannot open the descriptors a base needs. libevent itself ends the process in that
situation (it cannot make its signal socketpair), which is what the C module let happen.]],
    },
    {
      id = "changelist", group = "other", topic = "Events and bases", title = "epoll changelist",
      text = [[
On epoll, bases batch their changes to the kernel until the next dispatch (libevent's
"changelist" mode), which makes switching an event between `EV_READ` and `EV_WRITE` cheaper.
`base:method()` still says `"epoll"`. libevent's caveat for this mode: do not watch one socket
under two descriptor numbers made with `dup()`.]],
    },
    {
      id = "libevent-mismatch", group = "other", topic = "Events and bases", title = "A mismatched libevent is refused",
      text = [[
If the libevent found at run time does not match the one the module was built against,
`require "luaevent.core"` fails with a message saying so, instead of misbehaving later.]],
    },
    {
      id = "name-version", group = "other", topic = "Events and bases", title = "`_NAME` and `_VERSION`",
      text = [[
`core._NAME` (`"luaevent-rs"`) and `core._VERSION` are new: the C module has neither, so a program
can tell which core it loaded. The wrapper's `luaevent._CORE` says the same in one string.]],
    },
    {
      id = "libevent-log", group = "other", topic = "Events and bases", title = "libevent's log lines stay off stderr", general = true,
      text = [[
libevent writes its warnings (`[warn] sigaction: Invalid argument`, `[warn] Epoll ADD(...) on fd 9
failed`, a second base taking over signals) to stderr unless a program installs a log callback,
and the C module did not: they reached a program's users with nothing to say where they came
from. Loading the module installs a log callback, once for the whole process: the line that
explains a failing call becomes part of its error (`base:addevent: libevent could not register
the event on signal 9: sigaction: Invalid argument`), and the others, about what is reported
already or what the reference documents, are dropped.]],
    },
    {
      id = "sigpipe", group = "other", topic = "SIGPIPE", title = "`SIGPIPE` is ignored",
      text = [[
Loading `luaevent.core` sets `SIGPIPE` to "ignore" when it still has its default action, as
LuaSocket does when it loads. Writing to a socket whose peer has gone (`buf:write`, a
bufferevent's output) then fails with an error result instead of killing the process. A handler
your program installed is left alone. The C module did not touch signals, so a program that
relied on dying from `SIGPIPE` (and did not load LuaSocket) will now see write errors instead.]],
    },
    -- the wrapper
    {
      id = "wrapper-weak-table", group = "wrapper", title = "The per-socket event table is weak-keyed",
      text = [[
The C wrapper wrote `setmetatable({}, {'__mode', 'kv'})`, which sets no mode at all, so every
socket that ever waited stayed referenced (with its event) forever.]],
    },
    {
      id = "wrapper-close-before-wait", group = "wrapper", title = "`wrap(sock):close()` works before any wait",
      text = [[
In the C wrapper it failed with "attempt to index a nil value" on a socket that never waited,
since there was no event to close.]],
    },
    {
      id = "wrapper-dead-coroutine", group = "wrapper", title = "Events of finished coroutines remove themselves",
      text = [[
When a coroutine has finished, the event that resumed it removes itself when it next fires. The
C wrapper left the event registered and resumed the dead coroutine on its next firing, which
failed with `cannot resume dead coroutine`.]],
    },
    {
      id = "wrapper-send", group = "wrapper", title = "`send` resumes right after the last byte sent",
      text = [[
The 0.4.7 wrapper added LuaSocket's partial result (an absolute index) to its start position, so
from the second partial write on it skipped data, and reported more bytes sent than the payload
had.]],
    },
    {
      id = "wrapper-coroutine-errors", group = "wrapper", title = "Coroutine errors reach `loop()`",
      text = [[
An error raised inside a coroutine resumed by the loop stops the loop and is raised by
`luaevent.loop()` with its message and the coroutine's traceback, and the coroutine's event is
closed. In the C wrapper the error message was handed back to the core as the event's new mask,
which failed in a confusing way (see [Callback return values](#callback-return-values)). An
`addserver` handler that failed before its first wait was dropped without a word (the client
left waiting); it now stops the loop the same way. Waiting outside a coroutine (a `receive` from
the main program on a socket with no data yet) raises
`luaevent.receive: the socket is not ready, and only a coroutine can wait for it: ...` instead of
Lua's `attempt to yield from outside a coroutine`.]],
    },
    {
      id = "wrapper-loopexit", group = "wrapper", title = "`luaevent.loopexit` and the server event",
      text = [[
`luaevent.loopexit([seconds])` is new: the C wrapper could end a loop with a server in it only by
raising an error. `luaevent.addserver` returns the listening event (the C wrapper returned
nothing), which `close()` stops.]],
    },
    {
      id = "wrapper-receive-partial", group = "wrapper", title = "`receivePartial` keeps partial lines",
      text = "`receivePartial` with `\"*l\"` or `\"*a\"` carries partial data over to its next attempt; 0.4.7 dropped it.",
    },
    {
      id = "wrapper-loop-returns", group = "wrapper", title = "`loop()` returns a result",
      text = "`luaevent.loop()` returns the result of `base:loop()` (`1` once no events are left); the C wrapper returned nothing.",
    },
    {
      id = "wrapper-close-returns", group = "wrapper", title = "`wrapped:close()` returns a result",
      text = "`wrapped:close()` returns what the socket's `close()` returns; the C wrapper returned nothing.",
    },
    {
      id = "wrapper-version", group = "wrapper", title = "`_VERSION` is `\"0.4.7\"`",
      text = "Debian's `lua-event` wrapper says `\"0.4.6\"`.",
    },
  },
}
