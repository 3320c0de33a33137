---@meta luaevent.core

-- Generated from doc/api.lua by scripts/gen-docs.lua (`make docs`): edit those, not this file.

---A file descriptor argument.
---
---Wherever a function takes an `fd`, it accepts:
---
---- an integer `>= 0` (a number with an integral value such as `3.0`, or a numeric string, also
---  counts);
---- a lightuserdata handle;
---- any userdata or table with a `getfd` method, such as a LuaSocket socket; it is called as
---  `obj:getfd()` and must return an integer `>= 0`. The object may be a table: the C module
---  accepted only userdata.
---
---Anything else is a `bad argument` error with one of these reasons: `socket or integer fd
---expected, got <type>`, `invalid file descriptor (<n>)` (and
---`invalid file descriptor (-1): closed or not connected?` from `getfd`: a LuaSocket socket that has
---been closed, or not bound or connected yet, has fd -1), `number has no integer representation`,
---`getfd failed: <message>` (an error raised by `getfd`, or
---`getfd failed: socket or integer fd expected, got table without 'getfd'`),
---`socket or integer fd expected, getfd returned <type>`, `getfd returned a non-integral number`.
---
---Where the fd is to be watched for reading or writing (`base:addevent` with `EV_READ` or
---`EV_WRITE`, `core.bufferevent.new`), it must also be open and something the base's backend can
---watch: `bad file descriptor (<n> is not open)`; on epoll (Linux's backend),
---`bad file descriptor (<n> is a regular file, which epoll cannot watch)` and
---`bad file descriptor (<n> is a directory, which epoll cannot watch)` (poll, select and kqueue
---take them, and report them ready at once); on select,
---`bad file descriptor (<n> is beyond FD_SETSIZE, which select cannot watch)` for an fd of 1024 or
---more (libc would abort the process).
---@alias luaevent.core.Fd integer|lightuserdata|luaevent.core.HasGetfd

---Anything with a `getfd` method returning an fd (LuaSocket sockets).
---
---A structural type: any class with a `getfd` method matches it, whatever its name, so the
---definitions of a LuaSocket addon (`TCPSocketClient`, `TCPSocketServer`, ...) are accepted as
---they are, as are objects of your own.
---@alias luaevent.core.HasGetfd { getfd: fun(self: any): integer }

---The parameters of `core.tls.context`, shaped like LuaSec's (see `core.tls.context`).
---@class luaevent.core.TlsParams
---@field mode "client"|"server" which end; required
---@field protocol string? the oldest protocol: `"tlsv1_2"` (default), `"tlsv1_3"`, `"any"`
---@field certificate string? PEM file of the certificate (and its chain)
---@field key string? PEM file of its private key
---@field password string|(fun(): string)|nil for an encrypted key
---@field cafile string? PEM file of the trusted certificates
---@field capath string? folder of trusted certificates (`openssl rehash`)
---@field verify string|string[]|table<string, boolean>|nil `"none"`, `"peer"`, `"fail_if_no_peer_cert"`, `"client_once"`
---@field depth integer? longest chain accepted
---@field ciphers string|string[]|nil TLS 1.2 ciphers (OpenSSL syntax)
---@field ciphersuites string|string[]|nil TLS 1.3 cipher suites
---@field curve string? one key exchange group
---@field curveslist string|string[]|nil key exchange groups
---@field dhparam string|(fun(export: boolean, bits: integer): string)|nil PEM file of DH parameters, or a function returning PEM text
---@field alpn string|string[]|nil protocols offered (client) or accepted (server)
---@field options string|string[]|table<string, boolean>|nil OpenSSL options by LuaSec's names
---@field verifyext string|string[]|table<string, boolean>|nil `"lsec_continue"`, `"lsec_ignore_purpose"`

---A table or userdata whose metatable has a `__call` metamethod.
---
---Every callback argument accepts a function or any callable object: a table (or userdata) whose
---metatable has `__call`. Functions made by `coroutine.wrap` are functions and work too. In the
---LuaLS definitions, give your callable object's class this one as a parent
---(`---@class MyHandler: luaevent.core.Callable`).
---@class luaevent.core.Callable
---@overload fun(self: any, ...: any): any

---The callback of an event made by `base:addevent`.
---
---Called with the bits that fired: `EV_READ`, `EV_WRITE`, `EV_TIMEOUT` or `EV_SIGNAL`, possibly
---added together. What it returns decides what happens to the event:
---
---| callback returns | effect |
---| --- | --- |
---| nothing, or `nil` | `newEvents` is taken to be `what` |
---| `core.LEAVE` (-1) | the event is removed, as by `event:close()` |
---| an integer mask | the event is re-registered with that mask if it differs from `what` |
---| a mask and a number `>= 0` | ... and with that timeout (in seconds) if it differs from the current one |
---| a mask and a negative number or `nil` | the current timeout is kept |
---
---The event is re-registered only when `newEvents ~= what` or the timeout changed; otherwise it
---keeps everything it had. Consequences worth knowing:
---
---- An event registered for `EV_READ + EV_WRITE` that fires with `EV_READ` and returns nothing (or
---  `EV_READ`) stays registered for both.
---- Returning a different mask without a timeout keeps the event without a timeout.
---- Returning `core.EV_TIMEOUT` (or `0`) together with a timeout turns a socket event into a timer;
---  returning `0, t` from a timer re-arms it with the new interval `t`.
---- A returned timeout equal to the current one is no change (an event without a timeout counts
---  as having 0).
---- libevent does not re-arm a persistent event whose timeout is exactly 0: such a timer fires
---  once and then stays registered but dormant until its callback or another call re-registers it.
---
---The callback runs on the Lua thread (coroutine) that called `base:loop()`. An error raised in it
---stops the loop, and `base:loop()` raises it again (see there); so does a return value the rules
---above cannot use (a string, `1.5`, `-2`, a mask with unknown bits).
---@alias luaevent.core.EventCallback (fun(what: integer): integer?, number?)|luaevent.core.Callable

---The read, write and error (event) callbacks of a bufferevent.
---
---`bev` is the same userdata every time (`rawequal` to what `core.bufferevent.new` returned), and
---the callbacks' return values are ignored.
---
---| callback | when | `what` |
---| --- | --- | --- |
---| `readcb` | the input buffer holds at least the read low watermark (any data, by default) | `EVBUFFER_READ` |
---| `writecb` | the output buffer has drained to the write low watermark (0 by default: all sent) | `EVBUFFER_WRITE` |
---| `errorcb` | end of file, a socket error, or a timeout | `EVBUFFER_EOF`, `EVBUFFER_ERROR` or `EVBUFFER_TIMEOUT`, plus `EVBUFFER_READ` or `EVBUFFER_WRITE` for the direction |
---| `errorcb` of a connecting bufferevent (`core.bufferevent.connect`) | the connection is up, has failed, or its `timeout` passed | `EVBUFFER_CONNECTED`, `EVBUFFER_ERROR` or `EVBUFFER_TIMEOUT` alone |
---
---With `EVBUFFER_ERROR` the error callback gets a third argument, `message`: the system's reason
---(`strerror` text such as `Connection reset by peer`), or for a failed connection one that names
---the address (`could not connect to 127.0.0.1 port 1: Connection refused`). It is nil otherwise;
---callbacks written for two arguments are unaffected.
---
---For instance the peer closing the connection gives `EVBUFFER_EOF + EVBUFFER_READ` (17), and an
---expired read timeout `EVBUFFER_TIMEOUT + EVBUFFER_READ` (65). An error raised in any of the three
---callbacks stops the loop and is raised again by `base:loop()`, as for events.
---
---On a TLS connection the same holds for the bytes on the wire. The output buffer holds the plain
---text, which the TLS layer empties as soon as it has encrypted it; the write callback waits until
---the encrypted bytes have been handed to the system too, so at the write low watermark 0 it means
---"all sent" as for a plain connection, and closing there loses nothing. The end of file of a
---peer's close notice comes once the bytes sent before it are in the input.
---@alias luaevent.core.BufferEventCallback (fun(bev: luaevent.core.BufferEvent, what: integer, message: string?))|luaevent.core.Callable

---The callback of `resolver:resolve`: the addresses found, or why there are none.
---
---Runs exactly once per request, always from the loop (`base:loop()`), never from inside
---`resolve` or `cancel`, even when the answer is known at once (a literal address, a name from the
---hosts file). On success `addresses` is a list of address strings such as `"127.0.0.1"` and
---`"::1"`: IPv6 addresses first, then IPv4 (the order RFC 6724 prefers on a machine with both;
---within a family, the name server's order). On failure `addresses` is `nil` and `message` says
---why, naming the name:
---
---| message | when |
---| --- | --- |
---| `cancelled` | `request:cancel()`, or the resolver was closed or collected first |
---| `<name>: no such name` | the name does not exist (NXDOMAIN) |
---| `<name>: no IPv4 address`, `<name>: no IPv6 address`, `<name>: no address` | the hosts file lists the name, but not for the family asked for |
---| `<name>: timed out` | no name server answered within `timeout` for each of the `attempts` |
---| `<name>: no usable answer from the name servers` | a name server failure, or an answer without an address of the family asked for (libevent does not tell them apart) |
---| `not enough memory` | memory ran out while the result was handed over |
---
---An error raised in the callback stops the loop and is raised again by `base:loop()`, as for
---events. Its return values are ignored. (One exception to "exactly once": when memory runs out
---inside libevent's loop just as it schedules an answer, libevent 2.1 drops that answer, and the
---callback runs only if the request is cancelled or its resolver closed.)
---@alias luaevent.core.ResolveCallback (fun(addresses: string[]?, message: string?))|luaevent.core.Callable

---The libevent binding: event bases, events, buffers and bufferevents.
---@class luaevent.core
---@field _VERSION string This module's version, such as `"0.1.0"` (the crate version).
local core = {}

---Creates an event base.
---
---The new base also becomes the "latest base", which the base-less form of
---`core.bufferevent.new` binds to. A base needs a few file descriptors of its own (libevent's
---epoll descriptor and signal socketpair).
---
---Errors:
---- `core.new: could not create an event base: <strerror>`: the process cannot open the descriptors a base needs (`Too many open files`), or libevent fails otherwise
---@return luaevent.core.Base base the new event base
function core.new() end

---The version string of the libevent library the module runs with.
---@return string version such as `"2.1.12-stable"`
function core.libevent_version() end

---Which implementation `require "luaevent.core"` loaded.
core._NAME = "luaevent-rs"

---The table holding `core.buffer.new`, the buffer constructor.
core.buffer = {}

---The table holding `core.bufferevent.new` and `core.bufferevent.connect`, the bufferevent constructors.
core.bufferevent = {}

---The table holding `core.listener.new`, the listener constructor.
core.listener = {}

---The table holding `core.tls.context`, the TLS context constructor.
core.tls = {}

---The table holding `core.dns.new`, the resolver constructor.
core.dns = {}

---returned by an event callback: remove the event
core.LEAVE = -1

---event bit: the timeout expired
core.EV_TIMEOUT = 1

---event bit: the fd is readable; on a listening socket, a connection waits to be accepted
core.EV_READ = 2

---event bit: the fd is writable; on a socket connecting without blocking, the attempt is over (connect again to learn how)
core.EV_WRITE = 4

---event bit: the signal given as fd was delivered
core.EV_SIGNAL = 8

---persistent event; accepted by `addevent` but redundant (every event is persistent)
core.EV_PERSIST = 16

---bufferevent: the read callback's `what`; in the error callback, "while reading"
core.EVBUFFER_READ = 1

---bufferevent: the write callback's `what`; in the error callback, "while writing"
core.EVBUFFER_WRITE = 2

---bufferevent error callback: the peer closed the connection
core.EVBUFFER_EOF = 16

---bufferevent error callback: a socket error
core.EVBUFFER_ERROR = 32

---bufferevent error callback: a read or write timeout expired
core.EVBUFFER_TIMEOUT = 64

---bufferevent error callback: the connection `core.bufferevent.connect` started is up (libevent's `BEV_EVENT_CONNECTED`)
core.EVBUFFER_CONNECTED = 128

---Returns a new, empty buffer.
---
---Arguments are ignored.
---
---Errors:
---- `not enough memory`: the buffer cannot be allocated
---@return luaevent.core.Buffer buf an empty buffer
function core.buffer.new() end

---Creates a bufferevent on `fd`, bound to `base`.
---
---Without `base` (the form `new(fd, readcb, writecb, errorcb)` of the original documentation), it
---binds to the base most recently made by `core.new()` that is still alive.
---
---- The bufferevent keeps the socket object it was given alive, and never closes the fd: close the
---  socket yourself when you are done.
---- As libevent sets it up, writing is enabled and reading is not: call `bev:enable(core.EV_READ)`
---  to start receiving.
---- On each read wakeup the bufferevent takes up to 64 KiB from the socket (libevent alone reads
---  4 KiB at a time), never filling the input past the read high watermark.
---
---The argument numbers in the errors below are those of the form with a base; without one, each
---is one less.
---
---Errors:
---- `bad argument #2 to 'new' (bad file descriptor (<n> is not open))`
---- `bad argument #2 to 'new' (bad file descriptor (<n> is a regular file, which epoll cannot watch))`
---- `bad argument #2 to 'new' (bad file descriptor (<n> is beyond FD_SETSIZE, which select cannot watch))`
---- `bad argument #3 to 'new' (function or nil expected, got <type>)`
---- `bad argument #4 to 'new' (function or nil expected, got <type>)`
---- `bad argument #5 to 'new' (function expected, got <type>)`
---- `bad argument #2 to 'new' (socket or integer fd expected, got <type>)`
---- `bad argument #2 to 'new' (invalid file descriptor (<n>))`
---- `bad argument #2 to 'new' (invalid file descriptor (-1): closed or not connected?)`
---- `bad argument #2 to 'new' (number has no integer representation)`
---- `bad argument #2 to 'new' (getfd failed: <message>)`
---- `bad argument #2 to 'new' (socket or integer fd expected, getfd returned <type>)`
---- `bad argument #2 to 'new' (getfd returned a non-integral number)`
---- `core.bufferevent.new: no base given and no event base made by core.new() is alive`: the base-less form, when the latest base has been collected
---- `core.bufferevent.new: libevent could not create a bufferevent on fd <n>: <strerror>`: libevent fails to make the bufferevent
---@param base? luaevent.core.Base the base to run on; when absent, the latest one made by `core.new()`
---@param fd luaevent.core.Fd the connected socket; it must be open and pollable
---@param readcb luaevent.core.BufferEventCallback? called with `EVBUFFER_READ` when the input reaches the read low watermark; may be `nil`
---@param writecb luaevent.core.BufferEventCallback? called with `EVBUFFER_WRITE` when the output drains to the write low watermark; may be `nil`
---@param errorcb luaevent.core.BufferEventCallback called on end of file, error or timeout; required
---@return luaevent.core.BufferEvent bev the new bufferevent
---@overload fun(fd: luaevent.core.Fd, readcb: luaevent.core.BufferEventCallback?, writecb: luaevent.core.BufferEventCallback?, errorcb: luaevent.core.BufferEventCallback): luaevent.core.BufferEvent
function core.bufferevent.new(base, fd, readcb, writecb, errorcb) end

---Connects to `host` port `port` and returns the bufferevent at once; the connection is set up in the loop.
---
---The bufferevent owns the socket it makes: `bev:close()` or garbage collection closes it.
---
---- `eventcb(bev, core.EVBUFFER_CONNECTED)` once the connection is up; reading is enabled just
---  before that call (disable it there if you want).
---- `eventcb(bev, core.EVBUFFER_ERROR, message)` when it fails, the message naming the address
---  and the cause: `could not connect to 127.0.0.1 port 1: Connection refused`. On libevent's
---  select backend, a socket that gets a descriptor at or beyond FD_SETSIZE (1024 on Linux), which
---  select cannot watch, is closed instead of used (glibc would abort the process):
---  `could not connect to 127.0.0.1 port 80: its socket, descriptor 1030, is beyond FD_SETSIZE
---  (1024), which the select backend cannot watch`.
---- `eventcb(bev, core.EVBUFFER_TIMEOUT)` when `options.timeout` passes first.
---- Bytes written to the output buffer before the connection is up are sent once it is.
---- The callbacks run from the loop, never from inside `connect`. Closing the bufferevent while
---  it connects cancels everything: no callback runs afterwards.
---
---`host` is an IPv4 or IPv6 address literal, or a name, resolved without blocking by
---`options.dns` (a resolver from `core.dns.new`) or else the base's default resolver. Every address
---the name has is tried in turn until one connects: IPv6 and IPv4 alternate, starting with the
---resolver's first (IPv6), as RFC 8305 recommends, so that a family that does not work costs one
---attempt rather than all of its addresses; within a family, the resolver's order. Attempts are
---made one after the other (at most 16 addresses); a refused or unreachable address moves on to
---the next at once, and `options.timeout` bounds the whole, resolution included. Failures name the
---host: `could not resolve nosuch.test: no such name`, `could not connect to both.test port 1
---(127.0.0.1): Connection refused` (the last address tried).
---
---
---With `options.tls` (a client context) the connection is a TLS one: `EVBUFFER_CONNECTED` comes
---only once the handshake succeeded and the server is verified (see TLS contexts
---for what is checked). The server's name is `options.servername`, else `host`: it is sent as SNI
---(unless it is an address) and the certificate must be valid for it. A failed verification ends
---with `EVBUFFER_ERROR` and OpenSSL's reason: `certificate verify failed: hostname mismatch`.
---`options.timeout` covers the handshake too. Bytes written before are sent after the handshake.
---A server that closes without a TLS close notice ends as `EVBUFFER_EOF`; `bev:close()` sends one.
---
---Errors:
---- `bad argument #1 to 'connect' (event base expected, got <type>)`
---- `bad argument #2 to 'connect' (string expected, got <type>)`
---- `bad argument #3 to 'connect' (number expected, got <type>)`
---- `bad argument #3 to 'connect' (port must be 1-65535, got <n>)`
---- `bad argument #4 to 'connect' (function or nil expected, got <type>)`
---- `bad argument #5 to 'connect' (function or nil expected, got <type>)`
---- `bad argument #6 to 'connect' (function or nil expected, got <type>)`
---- `bad argument #7 to 'connect' (table or nil expected, got <type>)`
---- `bad argument #7 to 'connect' (unknown option '<key>')`
---- `bad argument #7 to 'connect' (options.timeout must be a finite number of seconds >= 0, got <n>)`
---- `bad argument #7 to 'connect' (options.timeout: number expected, got <type>)`
---- `bad argument #7 to 'connect' (options.servername: string expected, got <type>)`
---- `bad argument #7 to 'connect' (options.tls: TLS context expected, got <type>)`
---- `bad argument #7 to 'connect' (options.tls: a client TLS context expected, got a server one)`
---- `core.bufferevent.connect: a server name is 1 to 255 bytes long`: `options.servername` (or `host`) is empty or too long
---- `core.bufferevent.connect: could not start a TLS client: <reason>`: OpenSSL cannot make the connection (out of memory)
---- `core.bufferevent.connect: libevent could not create a bufferevent: <strerror>`: libevent fails to make the bufferevent (out of memory)
---- `bad argument #2 to 'connect' (an address or a host name expected)`
---- `bad argument #7 to 'connect' (options.dns: resolver expected, got <type>)`
---- `bad argument #7 to 'connect' (options.dns: attempt to use a closed resolver)`
---- `bad argument #7 to 'connect' (options.dns: the resolver belongs to another event base)`
---@param base luaevent.core.Base the base to run on
---@param host string an address literal (`"127.0.0.1"`, `"::1"`) or a host name
---@param port integer 1-65535
---@param readcb luaevent.core.BufferEventCallback? as for `core.bufferevent.new`; may be `nil`
---@param writecb luaevent.core.BufferEventCallback? as for `core.bufferevent.new`; may be `nil`
---@param eventcb luaevent.core.BufferEventCallback? told `EVBUFFER_CONNECTED`, then end of file, errors and timeouts; `nil` ignores them
---@param options? { timeout: number?, servername: string?, tls: luaevent.core.TlsContext?, dns: luaevent.core.Resolver? }? `timeout`: seconds for the whole connection set-up, resolution and TLS handshake included; `dns`: the resolver for a host name (default: the base's own); `tls`: a client context, for TLS; `servername`: the name the server's certificate must have (default: `host`)
---@return luaevent.core.BufferEvent bev the new bufferevent, connecting
function core.bufferevent.connect(base, host, port, readcb, writecb, eventcb, options) end

---Binds a TCP socket to `options.host` and `options.port` and listens on it.
---
---Each connection accepted is handed to `on_accept(bev, host, port)`: `bev` is a new bufferevent on
---`base` that owns the accepted socket (closing or collecting it closes the socket), with no
---callbacks (set them with `bev:set_callbacks`), writing enabled and reading not; `host` and
---`port` are the peer's. Like any bufferevent, one that nothing references is collected. An
---error raised by `on_accept` stops the loop and is raised again by `base:loop()`.
---
---Running out of descriptors does not spin the CPU: when accept() fails (`Too many open files`),
---the listener stops accepting for 0.1 s, then longer (up to 1 s) while it keeps failing; the
---connections already accepted are served meanwhile, and accepting resumes once descriptors are
---free.
---
---On libevent's select backend, a connection accepted on a descriptor at or beyond FD_SETSIZE
---(1024 on Linux), which select cannot watch, is closed at once (glibc would abort the process).
---`on_accept` still gets it, as a bufferevent without a socket (`bev:getfd()` is -1), and its
---event callback then hears `core.EVBUFFER_ERROR` and `listener (accepting): its socket,
---descriptor 1030, is beyond FD_SETSIZE (1024), which the select backend cannot watch; the
---connection was closed`.
---
---With `options.tls` (a server context), every accepted connection is a TLS server one: the
---handshake starts at once, before `on_accept` has even returned. The event callback set with
---`bev:set_callbacks` then hears `core.EVBUFFER_CONNECTED` once the handshake succeeded, or
---`core.EVBUFFER_ERROR` and OpenSSL's reason (a client that sends something else than a TLS
---hello, one that closes during the handshake: `the connection closed during the TLS
---handshake`); such a failure ends only that connection. Data written before the handshake is
---done is sent after it. A connection whose TLS state cannot even be made (out of memory) is
---closed without reaching `on_accept`.
---
---Errors:
---- `bad argument #1 to 'new' (event base expected, got <type>)`
---- `bad argument #2 to 'new' (table or nil expected, got <type>)`
---- `bad argument #2 to 'new' (unknown option '<key>')`
---- `bad argument #2 to 'new' (options.host: string expected, got <type>)`
---- `bad argument #2 to 'new' (options.host must be an IPv4 or IPv6 address, got '<text>')`
---- `bad argument #2 to 'new' (options.port: integer expected, got <type>)`
---- `bad argument #2 to 'new' (options.port must be 0-65535, got <n>)`
---- `bad argument #2 to 'new' (options.backlog: integer expected, got <type>)`
---- `bad argument #2 to 'new' (options.backlog must be 1-2147483647, got <n>)`
---- `bad argument #2 to 'new' (options.reuseaddr: boolean expected, got <type>)`
---- `bad argument #3 to 'new' (function expected, got <type>)`
---- `core.listener.new: could not listen on <host> port <port>: <strerror>`: binding or listening fails (`Address already in use`, `Permission denied`)
---- `bad argument #2 to 'new' (options.tls: TLS context expected, got <type>)`
---- `bad argument #2 to 'new' (options.tls: a server TLS context expected, got a client one)`
---- `bad argument #2 to 'new' (options.tls: attempt to use a finalized TLS context)`
---@param base luaevent.core.Base the base to run on
---@param options { host: string?, port: integer?, backlog: integer?, reuseaddr: boolean?, tls: luaevent.core.TlsContext? }? `host`: an IPv4 or IPv6 address literal (default `"0.0.0.0"`); `port`: 0-65535 (default 0, a free port); `backlog` (default 128); `reuseaddr` (default `true`); `tls`: a server context, for TLS connections
---@param on_accept fun(bev: luaevent.core.BufferEvent, host: string, port: integer) called with each accepted connection
---@return luaevent.core.Listener listener the new listener, accepting
function core.listener.new(base, options, on_accept) end

---Makes a TLS context from a table of parameters shaped like LuaSec's `ssl.newcontext`.
---
---Tables written for LuaSec carry over unchanged: those Prosody's certmanager and copas build,
---LuaSec's own `https` defaults. Every key of `params` must be one of those below (`false` counts
---as absent, as in LuaSec); anything else is an error that names it, never silently ignored.
---
---| key | value |
---| --- | --- |
---| `mode` | `"client"` or `"server"`; required |
---| `protocol` | the oldest protocol accepted: `"tlsv1_2"` (default), `"tlsv1_3"`, or `"any"` (OpenSSL's own minimum); LuaSec's `"sslv23"` means `"any"`, and Prosody's `"tlsv1_2+"` / `"tlsv1_3+"` are taken too. Older protocols are refused |
---| `certificate` | a PEM file: the certificate, optionally followed by its chain |
---| `key` | the PEM file of its private key; must match the certificate |
---| `password` | for an encrypted key: a string, or a function returning one, called (once, without arguments) only if the key is encrypted |
---| `cafile`, `capath` | the trusted certificates: a PEM file, a folder prepared with `openssl rehash` |
---| `verify` | `"none"`, `"peer"`, `"fail_if_no_peer_cert"`, `"client_once"`, or a list or set of them |
---| `depth` | the longest certificate chain accepted (an integer >= 0) |
---| `ciphers` | TLS 1.2 ciphers, in OpenSSL's syntax (a string, or a list joined with `:`) |
---| `ciphersuites` | TLS 1.3 cipher suites, likewise |
---| `curveslist`, `curve` | key exchange groups (`"X25519:P-256"`, or a list); `curve` is a single one, used when there is no `curveslist` |
---| `dhparam` | a PEM file of Diffie-Hellman parameters, or (as Prosody passes them) a function returning PEM text, called once as `f(false, 2048)` |
---| `alpn` | the protocols a client offers or a server accepts, in order of preference: a name or a list of names (1 to 255 bytes each). A server picks its first one the client offers too, and goes on without ALPN when there is none |
---| `options` | OpenSSL options by LuaSec's names, a name, a list or a set (`{ no_ticket = true }`): `no_ticket`, `no_compression`, `cipher_server_preference`, `no_renegotiation`, `prioritize_chacha`, `all`, ... (every name LuaSec knows but the DTLS ones and `no_ssl_mask`). `no_sslv2` ... `no_tlsv1_1` are accepted and change nothing at the default minimum; names OpenSSL 3 keeps only for compatibility (`single_dh_use`, `single_ecdh_use`, ...) change nothing either |
---| `verifyext` | LuaSec's `"lsec_continue"` (a failed verification does not end the connection; the session reports it) and `"lsec_ignore_purpose"` (peers' certificates are checked as server certificates, as XMPP servers present them to each other) |
---
---The context is freed when it is garbage collected; connections made from it keep what they
---need.
---
---Errors:
---- `bad argument #1 to 'context' (table expected, got <type>)`
---- `core.tls.context: unsupported parameter '<name>'`: a key that is not one of the parameters above (also `[<n>]` for a number key)
---- `core.tls.context: 'mode' is required ("client" or "server")`: `mode` is missing
---- `core.tls.context: unsupported <mode, protocol, option, verify option or verifyext option> '<value>'`: a value it does not know, such as `protocol = "tlsv1"`
---- `core.tls.context: '<name>' must be <what>, got <type>`: a parameter of the wrong type
---- `core.tls.context: 'certificate' needs its 'key'`: one without the other (or the reverse)
---- `core.tls.context: cannot load certificate '<file>': <reason>`: the file cannot be read (`No such file or directory`, `Permission denied`) or holds no certificate (`no start line`)
---- `core.tls.context: cannot load key '<file>': <reason>`: likewise for the key; `it is encrypted and no 'password' was given`, `the password does not decrypt it`
---- `core.tls.context: the key '<key>' does not match the certificate '<certificate>'`: the key belongs to another certificate
---- `core.tls.context: the password function failed: <error>`: the password function raised (its error as a string)
---- `core.tls.context: the password function returned <type>, not a string`: it returned something else
---- `core.tls.context: cannot load CA file '<file>': <reason>`: `cafile` cannot be read
---- `core.tls.context: cannot use CA folder '<folder>': <strerror>`: `capath` is not a folder it can read
---- `core.tls.context: cannot load DH parameters '<file>': <reason>`: `dhparam` cannot be read (a `dhparam` function: `the dhparam function failed: <error>` and the like)
---- `core.tls.context: cannot use ciphers '<list>': <reason>`: OpenSSL knows none of them (`no cipher match`); `ciphersuites` likewise
---- `core.tls.context: unsupported curve in '<list>': <reason>`: a group OpenSSL does not know
---- `core.tls.context: ALPN protocol names are 1 to 255 bytes long`: an empty or too long name; `'alpn' names no protocol` for an empty list
---@param params luaevent.core.TlsParams the parameters: mode, protocol, certificate, key, password, cafile, capath, verify, depth, ciphers, ciphersuites, curveslist, curve, dhparam, alpn, options, verifyext
---@return luaevent.core.TlsContext context the new context
function core.tls.context(params) end

---Makes a resolver on `base`.
---
---Without options it reads the system's configuration: the name servers, search domains and
---options of `/etc/resolv.conf`, and `/etc/hosts`. The options (all optional):
---
---| option | meaning |
---| --- | --- |
---| `nameservers` | a list of name servers to ask instead of those of resolv.conf (which is then not read at all): `"ip"` or `"ip:port"`, IPv6 as `"::1"` or `"[::1]:5353"`; the port defaults to 53 |
---| `hosts` | the path of a hosts file to read instead of `/etc/hosts`, or `false` for none |
---| `timeout` | seconds to wait for an answer to each try (libevent's default: 5) |
---| `attempts` | how many times a question is sent before giving up, 1 to 255 (default: 3) |
---
---Names in the hosts file are answered without asking any name server.
---
---Errors:
---- `bad argument #2 to 'new' (table or nil expected, got <type>)`
---- `bad argument #2 to 'new' (unknown option '<key>')`
---- `bad argument #2 to 'new' (options.nameservers: a list of addresses expected, got <type>)`
---- `bad argument #2 to 'new' (options.nameservers: at least one address expected)`
---- `bad argument #2 to 'new' (options.nameservers[<n>]: invalid address '<text>')`
---- `bad argument #2 to 'new' (options.nameservers[<n>]: an address string expected, got <type>)`
---- `bad argument #2 to 'new' (options.hosts: a file path or false expected, got <value>)`
---- `bad argument #2 to 'new' (options.timeout: a number of seconds > 0 expected, got <value>)`
---- `bad argument #2 to 'new' (options.attempts: an integer from 1 to 255 expected, got <value>)`
---- `core.dns.new: could not read the hosts file '<path>': <strerror>`: `options.hosts` cannot be read
---- `core.dns.new: could not add the name server '<text>'`: libevent refuses a name server
---- `core.dns.new: could not create a resolver`: libevent cannot make one (out of memory)
---- `core.dns.new: could not create a resolver: the sockets of its <n> name server(s) would be beyond FD_SETSIZE (1024), which the select backend cannot watch`: on libevent's select backend, with too few descriptors free below FD_SETSIZE for a socket per name server (glibc would abort the process once a question is sent)
---@param base luaevent.core.Base the base whose loop runs the lookups
---@param options? table see above
---@return luaevent.core.Resolver resolver the new resolver
function core.dns.new(base, options) end

---An event base: what events are registered on and what runs the loop.
---
---Made by `core.new()`. It is freed when it is garbage collected; events and bufferevents made on
---it stay safe to close and collect after that. A method called on something else raises
---`calling '<method>' on bad self (event base expected, got <type>)`.
---@class luaevent.core.Base
local Base = {}

---Registers an event and returns its event object.
---
---The event is always registered persistent (`EV_PERSIST` is added), and stays registered only as
---long as the returned object is reachable: see `Event`. With `EV_SIGNAL`, libevent
---installs its own handler for the signal while the event is registered, and the callback receives
---`EV_SIGNAL` each time the signal arrives. Signals are delivered to one base at a time: the one
---that most recently added a signal event or started `loop()` (libevent's rule; the warning it
---would print about it is not shown). Signal numbers run from 1 to 64 on Linux (31 elsewhere).
---
---With `fd` set to `nil` the event is a pure timer: `EV_READ` or `EV_WRITE` need an `fd` (or a
---socket); on a listening socket `EV_READ` means a connection can be accepted, and on a socket
---connecting without blocking `EV_WRITE` means the connection is made or has failed (see
---Getting started).
---
---Errors:
---- `bad argument #2 to 'addevent' (number expected, got <type>)`
---- `bad argument #2 to 'addevent' (number has no integer representation)`
---- `bad argument #2 to 'addevent' (invalid event mask (<n>))`
---- `bad argument #2 to 'addevent' (libevent refused this event mask (<n>))`
---- `bad argument #3 to 'addevent' (function expected, got <type>)`
---- `bad argument #4 to 'addevent' (number expected, got <type>)`
---- `bad argument #4 to 'addevent' (timeout must be a number of seconds from 0 to 2^31 (2147483648), got <x>)`
---- `bad argument #4 to 'addevent' (timeout expected when fd is nil)`
---- `bad argument #1 to 'addevent' (fd expected with EV_READ or EV_WRITE, got nil (nil is for timers))`
---- `bad argument #1 to 'addevent' (signal number expected with EV_SIGNAL, got nil)`
---- `bad argument #1 to 'addevent' (signal number expected with EV_SIGNAL, from 1 to <highest>, got <n>)`
---- `bad argument #1 to 'addevent' (bad file descriptor (<n> is not open))`
---- `bad argument #1 to 'addevent' (bad file descriptor (<n> is a regular file, which epoll cannot watch))`
---- `bad argument #1 to 'addevent' (bad file descriptor (<n> is beyond FD_SETSIZE, which select cannot watch))`
---- `bad argument #1 to 'addevent' (socket or integer fd expected, got <type>)`
---- `bad argument #1 to 'addevent' (invalid file descriptor (<n>))`
---- `bad argument #1 to 'addevent' (invalid file descriptor (-1): closed or not connected?)`
---- `bad argument #1 to 'addevent' (number has no integer representation)`
---- `bad argument #1 to 'addevent' (getfd failed: <message>)`
---- `bad argument #1 to 'addevent' (socket or integer fd expected, getfd returned <type>)`
---- `bad argument #1 to 'addevent' (getfd returned a non-integral number)`
---- `base:addevent: libevent could not register the event on fd <n>: <strerror>`: libevent fails to add the event
---- `base:addevent: libevent could not register the event on signal <n>: <reason>`: libevent cannot watch the signal; `<reason>` is what libevent said, such as `sigaction: Invalid argument` for `SIGKILL` (9) and `SIGSTOP` (19), which no program can catch
---- `base:addevent: libevent could not register the event on signal <n>: libevent's signal descriptors on this base are beyond FD_SETSIZE, which select cannot watch`: on libevent's select backend, the base was made when no descriptor below FD_SETSIZE (1024) was free for libevent's signal socketpair (glibc would abort the process)
---@param fd luaevent.core.Fd|nil the descriptor to watch; `nil` for a pure timer (then `timeout` is required); with `EV_SIGNAL`, the signal number
---@param events integer a mask of `EV_READ`, `EV_WRITE`, `EV_TIMEOUT` and `EV_SIGNAL`; `0` makes a timer. `EV_PERSIST` may be included but changes nothing (libevent's `EV_ET`, 32, and `EV_CLOSED`, 128, are accepted too)
---@param callback luaevent.core.EventCallback called as `callback(what)`, see `EventCallback`; a function or a callable object
---@param timeout? number seconds (see Durations); the event fires with `EV_TIMEOUT` whenever this long passes without it firing otherwise
---@return luaevent.core.Event event the event object; keep it referenced
function Base:addevent(fd, events, callback, timeout) end

---Runs the event loop: waits for events and calls their callbacks.
---
---It returns when one of these happens:
---
---- no events are left: returns `1`;
---- `base:loopexit()` takes effect: returns `0`;
---- a callback raises an error (or returns something invalid, see
---  `EventCallback`): the loop stops after that callback and `loop` raises the
---  error again, as a string made of the message and a traceback of the callback. Error values that
---  are not strings are converted: numbers as `tostring` does, values with a `__tostring`
---  metamethod through it, anything else as `(error object is a table value)`. The event whose
---  callback failed stays as it was, and the base can loop again.
---
---Callbacks run on the Lua thread (coroutine) that called `loop`. What keeps the loop running, and
---the ways to end it: Loop lifetime.
---
---Errors:
---- `<the callback's error message> stack traceback: <...>`: a callback raised an error
---- `base:loop: the event base is already looping`: `loop` is called on a base that is looping, for instance from one of its callbacks
---- `base:loop: event callback defined at <file>:<line> returned <...>`: an event callback returned something unusable (see `EventCallback`)
---- `base:loop: libevent could not re-register the event on fd <n>: <strerror>`: libevent fails to re-register an event whose callback changed its mask or timeout
---- `base:loop: event callback defined at <file>:<line> asked to watch fd <n>, but it is beyond FD_SETSIZE, which select cannot watch`: on the select backend, an event callback returned a mask with `EV_READ` or `EV_WRITE` for an fd of 1024 or more
---@return integer result `1` when no events were left, `0` after `loopexit`
function Base:loop() end

---Asks the loop to stop after a while.
---
---Without an argument, or with `nil`, the loop stops once the callbacks of the current round have
---run. Called while the base is not looping, it applies to the next `loop`. A pending exit keeps
---the loop running until it fires, even with no events left, and outlives a loop that ended
---otherwise: see Loop lifetime.
---
---Errors:
---- `bad argument #1 to 'loopexit' (number expected, got <type>)`
---- `bad argument #1 to 'loopexit' (timeout must be a number of seconds from 0 to 2^31 (2147483648), got <x>)`
---@param seconds? number how long the loop may still run (see Durations)
---@return integer result `0` on success
function Base:loopexit(seconds) end

---The name of the kernel mechanism libevent uses for this base.
---
---On epoll the base batches its changes to the kernel's interest list until the next dispatch
---(libevent's "changelist"), which makes switching an event between `EV_READ` and `EV_WRITE`
---cheap; the name reported is still `"epoll"`. libevent's caveat for this mode applies: do not
---watch one socket under two descriptor numbers made with `dup()`.
---@return string method such as `"epoll"` on Linux or `"kqueue"` on BSD
function Base:method() end

---An event registered by `base:addevent`.
---
---The event stays registered only as long as this object is reachable from Lua: keep a reference
---(a local that stays in scope, a table field) to every event you need. When the object is
---collected, the event is removed. A callback that refers to its own event object keeps it alive
---until it is closed.
---
---Close an event before you close its socket. An event left registered on a descriptor that was
---closed is stale: the descriptor number is soon reused by a new socket, and on epoll the new
---socket's events may then never fire, and nothing reports it.
---@class luaevent.core.Event
local Event = {}

---Removes the event and releases its callback.
---
---Closing twice is harmless, and it is safe from inside any callback: the event's own, or another
---one, even for an event that already fired in the same round. An event object is also closed
---when it is garbage collected.
function Event:close() end

---A byte buffer (libevent's evbuffer).
---
---A growable byte string that can be filled and drained cheaply and read from or written to a
---descriptor. Buffers are binary-safe: NUL bytes and any other bytes pass through unchanged.
---`#buf` is `buf:length()` and `tostring(buf)` is `buf:get_data()`. A method called on a closed
---buffer raises `calling '<method>' on bad self (attempt to use a closed buffer)`.
---@class luaevent.core.Buffer
---@operator len: integer
local Buffer = {}

---Appends each argument in order.
---
---Each argument is
---
---- a string, appended as is;
---- a number, appended as Lua's `tostring` formats it on the running interpreter (`42`, `1.5`;
---  note that `2.0` gives `2.0` on Lua 5.3 and later, `2` on 5.1, 5.2 and LuaJIT, and that Lua 5.5
---  writes as many digits as read back the same number: `1/3` gives `0.33333333333333331` there,
---  `0.33333333333333` before);
---- another buffer, whose bytes are **moved**: it is left empty.
---
---At least one argument is required. All arguments are checked before anything is added, so when
---one of them is bad an error is raised and nothing at all is added.
---
---Only the socket adds to a bufferevent's input buffer (see `bev:get_read`).
---
---Errors:
---- `bad argument #<n> to 'add' (string, number or buffer expected, got <type>)`
---- `bad argument #<n> to 'add' (string, number or buffer expected, got no value)`
---- `bad argument #<n> to 'add' (cannot add a buffer to itself)`
---- `bad argument #<n> to 'add' (attempt to use a closed buffer)`
---- `buf:add: libevent refused to add to the buffer (a bufferevent's input buffer takes data only from its socket, and its output buffer gives data only to it)`: the buffer is a bufferevent's input buffer, or a bufferevent's output buffer is to be moved
---@param ... string|number|luaevent.core.Buffer what to append
---@return integer added the number of bytes added
function Buffer:add(...) end

---The number of bytes held; `#buf` is the same.
---@return integer length bytes held
function Buffer:length() end

---Returns a copy of (part of) the contents, without consuming anything.
---
---- `buf:get_data()`, `tostring(buf)`: everything.
---- `buf:get_data(len)`: the first `len` bytes; a negative `len` means everything.
---- `buf:get_data(begin, len)`: `len` bytes starting at the 1-based position `begin`. A negative
---  `begin` counts from the end (`-1` is the last byte). A negative `len` means "up to the end".
---
---Positions and lengths are clamped to the buffer: asking for more than there is returns what there
---is, and a window entirely outside it returns `""`.
---
---Errors:
---- `bad argument #1 to 'get_data' (number expected, got <type>)`
---- `bad argument #1 to 'get_data' (number has no integer representation)`
---- `bad argument #2 to 'get_data' (number expected, got <type>)`
---@param begin? integer 1-based start; negative counts from the end. When it is the only argument, it is `len`
---@param len? integer how many bytes; negative: up to the end
---@return string data a copy of the bytes
---@overload fun(self: luaevent.core.Buffer): string
---@overload fun(self: luaevent.core.Buffer, len: integer): string
function Buffer:get_data(begin, len) end

---Removes the next line from the buffer and returns it without its line end.
---
---Any run of `\r` and `\n` characters ends a line (libevent's `EVBUFFER_EOL_ANY`: `\r\n`, `\n`,
---`\r` and `\n\n` all count as one line end, so an empty line in the middle of `\n\n` is not
---reported). While no line end has arrived it returns nothing (`nil`) and leaves the data in
---place. NUL bytes inside a line are kept.
---
---Errors:
---- `buf:readline: libevent refused to consume a line (a bufferevent's input buffer takes data only from its socket, and its output buffer gives data only to it)`: the buffer is a bufferevent's output buffer
---@return string? line the line, or `nil` while no line end is in the buffer
function Buffer:readline() end

---Removes the first `n` bytes.
---
---A negative `n`, or one past the end, removes everything.
---
---Errors:
---- `bad argument #1 to 'drain' (number expected, got <type>)`
---- `bad argument #1 to 'drain' (number has no integer representation)`
---- `buf:drain: libevent refused to drain the buffer (a bufferevent's input buffer takes data only from its socket, and its output buffer gives data only to it)`: the buffer is a bufferevent's output buffer
---@param n integer how many bytes to remove; required
function Buffer:drain(n) end

---Reads up to `len` bytes from `fd` and appends them to the buffer.
---
---Returns libevent's result: the number of bytes read, `0` at end of file, `-1` on error
---(including "would block" on a non-blocking socket with nothing to read).
---
---Errors:
---- `bad argument #1 to 'read' (socket or integer fd expected, got <type>)`
---- `bad argument #1 to 'read' (invalid file descriptor (<n>))`
---- `bad argument #1 to 'read' (invalid file descriptor (-1): closed or not connected?)`
---- `bad argument #1 to 'read' (number has no integer representation)`
---- `bad argument #1 to 'read' (getfd failed: <message>)`
---- `bad argument #1 to 'read' (socket or integer fd expected, getfd returned <type>)`
---- `bad argument #1 to 'read' (getfd returned a non-integral number)`
---- `bad argument #2 to 'read' (number expected, got <type>)`
---- `bad argument #2 to 'read' (number has no integer representation)`
---@param fd luaevent.core.Fd where to read from
---@param len integer the most bytes to read; negative lets libevent choose
---@return integer result bytes read, `0` at end of file, `-1` on error
function Buffer:read(fd, len) end

---Writes as much of the buffer to `fd` as it accepts, and drains what was written.
---
---Writing an empty buffer returns `-1` too. Writing to a socket whose peer has closed returns `-1`
---rather than killing the process (loading the module ignores `SIGPIPE`, see
---`luaevent.core`).
---
---Errors:
---- `bad argument #1 to 'write' (socket or integer fd expected, got <type>)`
---- `bad argument #1 to 'write' (invalid file descriptor (<n>))`
---- `bad argument #1 to 'write' (invalid file descriptor (-1): closed or not connected?)`
---- `bad argument #1 to 'write' (number has no integer representation)`
---- `bad argument #1 to 'write' (getfd failed: <message>)`
---- `bad argument #1 to 'write' (socket or integer fd expected, getfd returned <type>)`
---- `bad argument #1 to 'write' (getfd returned a non-integral number)`
---@param fd luaevent.core.Fd where to write to
---@return integer result bytes written, or `-1` on error
function Buffer:write(fd) end

---Frees the buffer's memory now instead of at garbage collection.
---
---Closing twice is harmless. Afterwards every other method, `#buf` and `tostring(buf)` raise an
---error that says the buffer is closed. For the buffers of a bufferevent (from `get_read` /
---`get_write`), `close` only detaches the Lua object; the memory belongs to the bufferevent. Since
---`get_read` and `get_write` always return that same object, do not close them while the
---bufferevent is in use.
function Buffer:close() end

---A buffered socket (libevent's bufferevent).
---
---A socket with an input and an output buffer: libevent reads incoming bytes into the input
---buffer and sends whatever is added to the output buffer, and calls back when there is something
---to do. Like events, a bufferevent lives only as long as its object is reachable: keep a
---reference. A method called on a closed bufferevent raises
---`calling '<method>' on bad self (attempt to use a closed bufferevent)`.
---@class luaevent.core.BufferEvent
local BufferEvent = {}

---Returns the input buffer.
---
---The same object on every call, with the whole buffer API. It belongs to the
---bufferevent: once the bufferevent is closed or collected, using it raises
---`attempt to use a closed buffer`, and its own `close()` only detaches the Lua object. Only the
---socket adds to it (`add` raises `buf:add: libevent refused to add to the buffer (...)`); take
---data out with `get_data`, `readline`, `drain`, or by moving it into another buffer
---(`other:add(input)`).
---@return luaevent.core.Buffer input the input buffer
function BufferEvent:get_read() end

---Returns the output buffer: bytes added to it are sent.
---
---The same object on every call, with the whole buffer API, and it belongs to the
---bufferevent as the input buffer does. Bytes leave it only by being sent: `drain` and `readline`
---on it raise `buf:drain: libevent refused to drain the buffer (...)` and
---`buf:readline: libevent refused to consume a line (...)`, and it cannot be moved into another
---buffer. Append to it with `add`; `get_data` reads it.
---@return luaevent.core.Buffer output the output buffer
function BufferEvent:get_write() end

---Sets when the read callback runs and when reading stops.
---
---The read callback runs only once the input holds at least `low` bytes; while it holds `high`
---bytes or more, libevent stops reading from the socket (`0`: no limit).
---
---At the high watermark, a read callback that takes something from the input (but leaves it at or
---above `high`) is called again at once, until it takes nothing or the input falls below `high`. A
---read callback that takes nothing is not called again until something drains the input: a timer,
---another callback, `other:add(bev:get_read())`. Reading then resumes, and if the input is still at
---or above `high`, the read callback runs once more. (libevent 2.1.12 alone calls it again on every
---loop round, at full CPU, for as long as the input stays there: its issue #891.) Calling
---`enable(EV_READ)`, `disable(EV_READ)` or `set_read_watermarks` meanwhile takes precedence: after
---`disable`, a drain does not resume reading.
---
---Errors:
---- `bad argument #1 to 'set_read_watermarks' (number expected, got <type>)`
---- `bad argument #1 to 'set_read_watermarks' (byte count must be >= 0, got <n>)`
---- `bad argument #2 to 'set_read_watermarks' (number expected, got <type>)`
---- `bad argument #2 to 'set_read_watermarks' (byte count must be >= 0, got <n>)`
---- `bad argument #2 to 'set_read_watermarks' (high watermark <high> is below the low watermark <low> (0 means no high watermark))`
---@param low? integer bytes the input must hold before the read callback runs; `nil` counts as 0
---@param high? integer bytes at which reading from the socket stops; `0` or `nil`: no limit
function BufferEvent:set_read_watermarks(low, high) end

---Sets when the write callback runs.
---
---The write callback runs when the output has drained to `low` bytes or fewer (`0`: everything was
---sent). libevent does not use `high`; it is accepted for compatibility. On a TLS connection it also
---waits for the encrypted bytes to have been handed to the system (see
---BufferEventCallback).
---
---Errors:
---- `bad argument #1 to 'set_write_watermarks' (number expected, got <type>)`
---- `bad argument #1 to 'set_write_watermarks' (byte count must be >= 0, got <n>)`
---- `bad argument #2 to 'set_write_watermarks' (number expected, got <type>)`
---- `bad argument #2 to 'set_write_watermarks' (byte count must be >= 0, got <n>)`
---- `bad argument #2 to 'set_write_watermarks' (high watermark <high> is below the low watermark <low> (0 means no high watermark))`
---@param low? integer the output size at which the write callback runs; `nil` counts as 0
---@param high? integer kept for the program; libevent ignores it
function BufferEvent:set_write_watermarks(low, high) end

---Sets the read and write timeouts.
---
---When data does not arrive (or cannot be sent) for that long, the error callback is called with
---`EVBUFFER_TIMEOUT` plus the direction, and that direction is disabled. On a TLS connection the
---write timeout also covers the encrypted bytes waiting to be sent once the output (the plain text)
---is empty: a peer that takes none of them times out. Timeouts set while `core.bufferevent.connect`
---is still connecting stay in force once the connection (and its TLS, with `options.tls`) is up.
---
---Errors:
---- `bad argument #1 to 'set_timeouts' (number expected, got <type>)`
---- `bad argument #1 to 'set_timeouts' (timeout must be a number of seconds from 0 to 2^31 (2147483648), got <x>)`
---- `bad argument #2 to 'set_timeouts' (number expected, got <type>)`
---- `bad argument #2 to 'set_timeouts' (timeout must be a number of seconds from 0 to 2^31 (2147483648), got <x>)`
---@param read? number seconds (see Durations); `0` or `nil`: none
---@param write? number seconds; `0` or `nil`: none
function BufferEvent:set_timeouts(read, write) end

---Enables reading, writing, or both.
---
---A bufferevent starts with writing enabled and reading disabled.
---
---Errors:
---- `bad argument #1 to 'enable' (number expected, got <type>)`
---- `bad argument #1 to 'enable' (EV_READ, EV_WRITE or both expected, got <n>)`
---@param mask integer `core.EV_READ`, `core.EV_WRITE`, or `core.EV_READ + core.EV_WRITE`
---@return integer result `0` on success, `-1` on failure
function BufferEvent:enable(mask) end

---Disables reading, writing, or both.
---
---A callback may still run in the current round after `disable`. Disabled reading leaves incoming
---bytes in the kernel; disabled writing holds the output buffer back.
---
---Errors:
---- `bad argument #1 to 'disable' (number expected, got <type>)`
---- `bad argument #1 to 'disable' (EV_READ, EV_WRITE or both expected, got <n>)`
---@param mask integer `core.EV_READ`, `core.EV_WRITE`, or `core.EV_READ + core.EV_WRITE`
---@return integer result `0` on success, `-1` on failure
function BufferEvent:disable(mask) end

---Replaces the read, write and error callbacks.
---
---`nil` clears the read or write callback; a `nil` error callback means end of file, errors and
---timeouts are ignored. A bufferevent from a listener starts with none: set them here.
---
---Errors:
---- `bad argument #1 to 'set_callbacks' (function or nil expected, got <type>)`
---- `bad argument #2 to 'set_callbacks' (function or nil expected, got <type>)`
---- `bad argument #3 to 'set_callbacks' (function or nil expected, got <type>)`
---@param readcb luaevent.core.BufferEventCallback? the new read callback, or `nil`
---@param writecb luaevent.core.BufferEventCallback? the new write callback, or `nil`
---@param eventcb luaevent.core.BufferEventCallback? the new error callback, or `nil`
function BufferEvent:set_callbacks(readcb, writecb, eventcb) end

---Returns the socket's descriptor.
---
---For a bufferevent that is connecting, `-1` while it has no socket (after a failed connection, for instance).
---@return integer fd the descriptor, or `-1`
function BufferEvent:getfd() end

---Upgrades a connected plain bufferevent to TLS in place (STARTTLS, as XMPP, SMTP and IMAP do).
---
---The same object goes on, with its callbacks, its enabled directions, its read watermarks and the
---buffer objects `get_read()` and `get_write()` returned (they now hold the plain text of the TLS
---connection). Bytes already queued in the output go out in plain first, then the handshake;
---bytes already received and not read are taken as the start of the peer's TLS messages. It can
---be called from inside a read callback, right after reading the command that asks for it.
---
---A client context makes this end the TLS client, a server context the server. The event
---callback then hears `core.EVBUFFER_CONNECTED` once the handshake succeeded, or
---`core.EVBUFFER_ERROR` and OpenSSL's reason. Read and write timeouts set before are not carried
---over.
---
---A client checks the server's name (see TLS contexts):
---`options.servername`, else the host given to `core.bufferevent.connect` when that made the
---bufferevent (a host name, also sent as SNI, or an address, checked against the certificate's
---address entries). A bufferevent made otherwise (`core.bufferevent.new`, a listener's) has no
---host, so a context that verifies needs `options.servername`: without it the call raises, since
---any certificate the trusted CAs signed for any name would otherwise pass. A context with
---`verify = "none"` needs no name.
---
---Errors:
---- `bad argument #1 to 'starttls' (TLS context expected, got <type>)`
---- `bad argument #1 to 'starttls' (attempt to use a finalized TLS context)`
---- `bad argument #2 to 'starttls' (table or nil expected, got <type>)`
---- `bad argument #2 to 'starttls' (unknown option '<key>')`
---- `bad argument #2 to 'starttls' (options.servername: string expected, got <type>)`
---- `bad argument #2 to 'starttls' (options.servername required: the context verifies the server, and no host is known for a bufferevent not made by core.bufferevent.connect (or use a context with verify = "none"))`
---- `bev:starttls: the connection already uses TLS`: the bufferevent is a TLS one already
---- `bev:starttls: the connection is not established yet`: a `core.bufferevent.connect` still connecting
---- `bev:starttls: a server name is 1 to 255 bytes long`: an empty or too long `servername`
---- `bev:starttls: could not start TLS: not enough memory`: memory is short (`... (the connection is closed)` when libevent freed it on the way)
---@param context luaevent.core.TlsContext a client or a server context
---@param options? { servername: string? }? `servername`: for a client, the name sent as SNI and checked in the server's certificate (default: the host `core.bufferevent.connect` was given)
function BufferEvent:starttls(context, options) end

---Returns what the TLS handshake agreed, or `nil` for a plain connection.
---
---The table is copied out of the connection: it stays valid after the connection is gone.
---
---| field | value |
---| --- | --- |
---| `protocol` | `"TLSv1.3"`, `"TLSv1.2"` |
---| `cipher` | OpenSSL's name of the cipher: `"TLS_AES_256_GCM_SHA384"` |
---| `alpn` | the protocol agreed by ALPN, or `nil` |
---| `servername` | the name the client asked for (SNI), or `nil` |
---| `verified` | `true` when the peer presented a certificate and it was verified |
---| `verify_error` | when not verified, why: OpenSSL's reason (`"self-signed certificate"`) or `"the peer presented no certificate"` |
---| `peer` | `nil`, or the peer's certificate: `subject` and `issuer` (`"CN=localhost"`), `not_after` (`"2031-01-02 03:04:05Z"`) and `pem` |
---
---During the handshake the fields say what is known so far.
---@return { protocol: string, cipher: string?, alpn: string?, servername: string?, verified: boolean, verify_error: string?, peer: { subject: string, issuer: string, not_after: string, pem: string }? }? facts the table, or `nil`
function BufferEvent:tls() end

---Frees the bufferevent now; garbage collection does the same.
---
---Its buffers become closed, no callback runs afterwards, and the fd stays open (a socket the
---module made, for a bufferevent from a listener or from `core.bufferevent.connect`, is closed).
---Closing twice is harmless, and it is safe from inside the bufferevent's own callbacks.
function BufferEvent:close() end

---A listening TCP socket (libevent's evconnlistener).
---
---Each accepted connection arrives as a new bufferevent. Like events, a listener lives only as
---long as its object is reachable: keep a reference. A method called on a closed listener raises
---`calling '<method>' on bad self (attempt to use a closed listener)`.
---@class luaevent.core.Listener
local Listener = {}

---Returns the address the listener is bound to.
---
---With port 0 the system chose a free port: this tells which.
---
---Errors:
---- `listener:address: could not read the address: <strerror>`: the system cannot tell
---@return string host the address, such as `"127.0.0.1"` or `"::1"`
---@return integer port the port
function Listener:address() end

---Resumes accepting after `listener:disable()`.
---@return integer result `0` on success
function Listener:enable() end

---Stops accepting; new connections wait in the backlog until `listener:enable()`.
---@return integer result `0` on success
function Listener:disable() end

---Closes the listening socket now; garbage collection does the same.
---
---Connections already accepted are not affected. Closing twice is harmless, and it is safe inside `on_accept`.
function Listener:close() end

---Returns the listening socket's descriptor.
---@return integer fd the descriptor
function Listener:getfd() end

---A TLS context: the configuration TLS connections are made with.
---
---Made by `core.tls.context(params)`. It has no methods: it is given to the functions that make
---TLS connections (`options.tls` of `core.listener.new` and `core.bufferevent.connect`,
---`bev:starttls`). It is freed when it is garbage collected.
---
---**Security.** What a client context checks by default, without any parameter:
---
---- the server's certificate chain, against the system's trusted certificates (OpenSSL's default
---  store), and its dates;
---- the server's name: `core.bufferevent.connect` checks the certificate against
---  `options.servername`, else the host it connects to (an address is checked against the
---  certificate's IP address entries); the name is also sent as SNI. A client `bev:starttls` checks
---  `options.servername`, else the host the bufferevent was connected to by
---  `core.bufferevent.connect`; with neither (a bufferevent made by `core.bufferevent.new` or
---  accepted by a listener), a context that verifies refuses to start rather than check the chain
---  alone;
---- TLS 1.2 at least.
---
---A failure ends the handshake: `eventcb(bev, core.EVBUFFER_ERROR, message)` with OpenSSL's reason
---(`certificate verify failed: self-signed certificate`, `certificate verify failed: hostname
---mismatch`). Only `verify = "none"` turns checking off (then `bev:tls()` still says what failed,
---in `verified` and `verify_error`); `verifyext = "lsec_continue"` lets a failed verification go
---on, for code that decides itself from `bev:tls()`.
---
---To trust only your own CA (pinning it), give it as `cafile` (or a folder of them as `capath`):
---the system's store is then not used. A server asks for client certificates with
---`verify = { "peer", "fail_if_no_peer_cert" }` and the CAs it trusts for them in `cafile`.
---@class luaevent.core.TlsContext
local TlsContext = {}

---An asynchronous DNS resolver (libevent's evdns) on one event base.
---
---Lookups run while the base loops and never block it. A resolver with nothing to do keeps no
---event registered, so it never keeps `base:loop()` running. A method called on a closed resolver
---raises `calling '<method>' on bad self (attempt to use a closed resolver)`.
---@class luaevent.core.Resolver
local Resolver = {}

---Starts looking up the addresses of `name`.
---
---`callback` runs exactly once, from the loop (see `ResolveCallback`). The
---request keeps the callback alive until then; the callback is forgotten (never called) only if
---the base itself is collected first, when no loop could run it any more.
---
---Errors:
---- `bad argument #1 to 'resolve' (string expected, got <type>)`
---- `bad argument #1 to 'resolve' (a non-empty name expected)`
---- `bad argument #1 to 'resolve' (the name contains a NUL byte)`
---- `bad argument #2 to 'resolve' (function expected, got <type>)`
---- `bad argument #3 to 'resolve' ('inet', 'inet6' or 'any' expected, got '<text>')`
---- `resolver:resolve: the event base of this resolver was collected, so no loop could run the callback`: the base was garbage collected
---@param name string a host name, or a literal IPv4 or IPv6 address (answered without asking)
---@param callback luaevent.core.ResolveCallback called as `callback(addresses)` or `callback(nil, message)`
---@param family? "inet"|"inet6"|"any" IPv4 only, IPv6 only, or both (the default)
---@return luaevent.core.DnsRequest request the request, for `request:cancel()`
function Resolver:resolve(name, callback, family) end

---Closes the resolver: pending lookups end as cancelled.
---
---Each pending request's callback then runs once, from the loop, with `nil, "cancelled"`. Closing
---twice is harmless, and it is safe from inside a request's callback. Garbage collection closes
---the resolver too.
function Resolver:close() end

---A lookup started by `resolver:resolve`.
---
---Only a handle for cancelling: the lookup goes on, and its callback runs, whether or not the
---request object is kept.
---@class luaevent.core.DnsRequest
local DnsRequest = {}

---Cancels the lookup.
---
---The callback then runs once, from the loop, with `nil, "cancelled"`, even if the answer had
---already arrived; if the callback ran already, nothing happens. Cancelling twice is harmless.
function DnsRequest:cancel() end

return core
