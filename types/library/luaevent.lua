---@meta luaevent

-- Generated from doc/api.lua by scripts/gen-docs.lua (`make docs`): edit those, not this file.

---A LuaSocket TCP object as the wrapper hands it out: the client given to an `addserver` handler.
---
---The wrapper's functions take any object with a `getfd` method (`HasGetfd`), so
---sockets typed by a LuaSocket addon are accepted as they are. A handler may declare its client
---with the addon's type (`---@param client TCPSocketClient`) or leave it to this class.
---@class luaevent.Socket
---@field getfd fun(self: any): integer the descriptor
---@field send fun(self: any, data: string, i?: integer, j?: integer): (integer|nil), string?, integer? LuaSocket's `send`
---@field receive fun(self: any, pattern?: string|integer, prefix?: string): (string|nil), string?, string? LuaSocket's `receive`
---@field connect fun(self: any, host: string, port: integer): (integer|nil), string? LuaSocket's `connect`
---@field accept fun(self: any): (luaevent.Socket|nil), string? LuaSocket's `accept`
---@field settimeout fun(self: any, timeout: number|nil, mode?: string): integer LuaSocket's `settimeout`
---@field close fun(self: any): integer LuaSocket's `close`
---@field getpeername fun(self: any): (string|nil), (integer|string)?, string? LuaSocket's `getpeername`: address, port, family
---@field getsockname fun(self: any): (string|nil), (integer|string)?, string? LuaSocket's `getsockname`: address, port, family
---@field shutdown fun(self: any, mode?: string): integer LuaSocket's `shutdown`
---@field setoption fun(self: any, option: string, value?: any): (integer|nil), string? LuaSocket's `setoption`

---A copas-like coroutine layer over one event base of its own.
---@class luaevent
---@field _CORE string The core it runs on: `"luaevent-rs <version>"`, or `"luaevent (C)"` on the C module.
---@field core luaevent.core The core the wrapper runs on, the table `require "luaevent.core"` returns.
local luaevent = {}

---The wrapper's name.
luaevent._NAME = "luaevent"

---The version of the C module's wrapper whose API this one follows.
luaevent._VERSION = "0.4.7"

---`base:addevent` on the wrapper's base.
---
---Returns the event object; keep it referenced. Everything else is as for `base:addevent`.
---
---Errors:
---- `bad argument #<n> to 'addevent' (<reason>)`: as for `base:addevent`
---@param fd luaevent.core.Fd|nil as for `base:addevent`
---@param events integer as for `base:addevent`
---@param callback luaevent.core.EventCallback as for `base:addevent`
---@param timeout? number as for `base:addevent`
---@return luaevent.core.Event event the event object
function luaevent.addevent(fd, events, callback, timeout) end

---Creates a coroutine running `func(...)` and starts it at once.
---
---An error before the coroutine's first wait is returned, as `coroutine.resume` returns it (check
---`ok`); one raised after a wait stops `luaevent.loop()`, which raises it with the coroutine's
---traceback.
---@param func fun(...: any): any the body of the coroutine
---@param ... any its arguments
---@return boolean ok what `coroutine.resume` returns: `true`, or `false` if `func` failed before its first wait
---@return any ... the values it yielded (the event it waits for) or returned, or the error message
function luaevent.addthread(func, ...) end

---Runs the wrapper's base (`base:loop()`).
---
---An error raised in a coroutine the loop resumed, or by an `addserver` handler before its first
---wait, stops the loop and is raised again here: the message, the traceback of the coroutine
---(where the mistake is), then the traceback of the callback that resumed it. A coroutine that
---failed this way leaves no event behind. `loop` returns `1` once no events are left, which a
---server started by `addserver` prevents: stop it with `luaevent.loopexit()` (see
---Loop lifetime).
---
---Errors:
---- `<the coroutine's error message> stack traceback: <...>`: a resumed coroutine raised an error
---@return integer result `1` once no events are left
function luaevent.loop() end

---Makes `luaevent.loop()` return: `base:loopexit` on the wrapper's base.
---
---Without an argument the loop returns once the callbacks of the current round have run; with
---`seconds`, after that long (a pending exit keeps the loop running until then, see
---Loop lifetime). Called while the loop is not running, it applies to the next
---`luaevent.loop()`.
---
---Errors:
---- `bad argument #1 to 'loopexit' (<reason>)`: as for `base:loopexit`
---@param seconds? number how long the loop may still run
---@return integer result `0` on success
function luaevent.loopexit(seconds) end

---Makes `sock` non-blocking and connects it, suspending the coroutine until the connection is made.
---
---Errors are returned, not raised. Any extra arguments are passed on to `sock:connect`.
---
---Errors:
---- `luaevent.connect: the socket is not ready, and only a coroutine can wait for it: call luaevent.connect inside a function run by luaevent.addthread or an addserver handler`: called outside a coroutine (from the main program, say) when the socket is not ready
---@param sock luaevent.core.HasGetfd a LuaSocket TCP master socket
---@param host string address or name
---@param port integer port number
---@return integer? ok `1` on success
---@return string? err LuaSocket's error message, such as `"connection refused"`
function luaevent.connect(sock, host, port) end

---Sends bytes `i` to `j` of `data`, suspending the coroutine while the socket cannot take more.
---
---After a partial write it resumes right after the last byte LuaSocket reported sent.
---
---Errors:
---- `luaevent.send: the socket is not ready, and only a coroutine can wait for it: call luaevent.send inside a function run by luaevent.addthread or an addserver handler`: called outside a coroutine (from the main program, say) when the socket is not ready
---@param sock luaevent.core.HasGetfd a connected socket
---@param data string the bytes
---@param i? integer first byte to send (default 1)
---@param j? integer last byte to send (default `#data`)
---@return integer? last the index of the last byte sent
---@return string? err LuaSocket's error message, such as `"closed"`
---@return integer? partial on error, the index of the last byte sent
function luaevent.send(sock, data, i, j) end

---Receives by LuaSocket's `pattern`, suspending the coroutine until the request is complete.
---
---Errors:
---- `luaevent.receive: the socket is not ready, and only a coroutine can wait for it: call luaevent.receive inside a function run by luaevent.addthread or an addserver handler`: called outside a coroutine (from the main program, say) when the socket is not ready
---@param sock luaevent.core.HasGetfd a connected socket
---@param pattern? string|integer `"*l"` (a line, the default), `"*a"` (everything until the peer closes) or a byte count
---@param part? string a prefix to prepend, as in LuaSocket
---@return string? data what was received
---@return string? err LuaSocket's error message, such as `"closed"`
---@return string? partial on error, the data received before it
function luaevent.receive(sock, pattern, part) end

---Like `receive`, but with a byte count it returns as soon as some data has arrived.
---
---When fewer bytes than asked came, it returns `nil, "timeout", data`. With `"*l"` or `"*a"` it
---waits like `receive`, carrying what arrived so far over to the next attempt.
---
---Errors:
---- `luaevent.receivePartial: the socket is not ready, and only a coroutine can wait for it: call luaevent.receivePartial inside a function run by luaevent.addthread or an addserver handler`: called outside a coroutine (from the main program, say) when the socket is not ready
---@param sock luaevent.core.HasGetfd a connected socket
---@param pattern? string|integer as for `receive`
---@return string? data what was received, when complete
---@return string? err `"timeout"` for a partial byte count, or LuaSocket's error message
---@return string? partial the data received so far
function luaevent.receivePartial(sock, pattern) end

---Does nothing and returns nothing: the helpers never buffer. Kept for old programs.
---@param sock any ignored
function luaevent.flush(sock) end

---Serves the listening socket `sock`, each client in a coroutine of its own.
---
---Whenever `sock` is readable, one client is accepted, made non-blocking, and `handler(client)` is
---started in a coroutine of its own. Give `sock` `settimeout(0)`. The server stays registered until
---the returned event is closed, so `loop()` does not return by itself any more: end it with
---`luaevent.loopexit()`. A handler that raises an error stops `loop()`, which raises it with the
---handler's traceback; the server stays, and the next `loop()` serves on.
---@param sock luaevent.core.HasGetfd a listening socket
---@param handler fun(client: luaevent.Socket)|fun(client: any) runs once per client; its client may be declared with a LuaSocket addon's type
---@return luaevent.core.Event server the listening event: `server:close()` stops accepting
function luaevent.addserver(sock, handler) end

---`core.dns.new` on the wrapper's base: a resolver for `luaevent.dial`'s `options.dns`.
---
---`dial` can use only a resolver on the wrapper's own base, which this makes, with the options of
---`core.dns.new`. Without `options.dns`, `dial` uses the base's default resolver
---(the system's configuration).
---
---Errors:
---- `bad argument #1 to 'resolver' (<reason>)`: as for `core.dns.new`
---@param options? { nameservers: string[]?, hosts: string|false|nil, timeout: number?, attempts: integer? } as for `core.dns.new`
---@return luaevent.core.Resolver resolver the resolver
function luaevent.resolver(options) end

---Returns a wrapped socket.
---@param sock luaevent.core.HasGetfd the socket to wrap
---@return luaevent.WrappedSocket wrapped `{ socket = sock }` with the methods of `WrappedSocket`
function luaevent.wrap(sock) end

---Connects to `host` and `port`, suspending the coroutine until the connection is made.
---
---`core.bufferevent.connect` on the wrapper's base: `host` is an address literal or a name
---(resolved without blocking the loop), and `options` are connect's. Failures are returned, not
---raised: `nil` and the message the core gives (it names the address, say
---`could not connect to 127.0.0.1 port 1: Connection refused`), or `"timeout"` when
---`options.timeout` passed first. With `options.tls` (a client context) it returns once the TLS
---handshake has succeeded and the server is verified, or `nil` and OpenSSL's reason
---(`"certificate verify failed: self-signed certificate"`); `options.servername` is the name sent
---as SNI and checked (by default `host` when it is a name).
---
---Errors:
---- `bad argument #<n> to 'dial' (<reason>)`: a host that is not a string, a port that is not a number in 1-65535, an unknown option
---- `luaevent.dial: connecting takes a while, and only a coroutine can wait: call luaevent.dial inside a function run by luaevent.addthread or a luaevent.serve handler`: called outside a coroutine
---@param host string an IPv4 or IPv6 address literal, or a name
---@param port integer 1-65535
---@param options? { timeout: number?, servername: string?, tls: any?, dns: any? } as for `core.bufferevent.connect`
---@return luaevent.Connection? conn the connection
---@return string? err why there is none
function luaevent.dial(host, port, options) end

---Listens for TCP connections, each handled by `handler(conn, host, port)` in a coroutine of its own.
---
---`core.listener.new` on the wrapper's base, with the same `options`. The wrapper keeps the
---listener until `listener:close()`, and while it listens `luaevent.loop()` does not return by
---itself: close it, or end the loop with `luaevent.loopexit()`. An error raised by a handler
---stops `loop()`, which raises it with the handler's traceback; the listener stays, and the next
---`loop()` serves on. With `options.tls` (a server context) a handler starts only once its
---connection's TLS handshake has succeeded; a connection whose handshake fails is closed and
---never reaches a handler. Until then the wrapper holds the connection, for at most
---`options.handshake_timeout` seconds (the wrapper's own option, 30 by default): a client that
---has not completed its handshake by then is closed.
---
---Errors:
---- `bad argument #<n> to 'serve' (<reason>)`: options that are not a table or hold an unknown key, a handler that is not a function
---- `luaevent.serve: could not listen on <host> port <port>: <reason>`: the address cannot be bound
---@param options { host: string?, port: integer?, backlog: integer?, reuseaddr: boolean?, tls: any?, handshake_timeout: number? } as for `core.listener.new`, and `handshake_timeout`
---@param handler fun(conn: luaevent.Connection, host: string, port: integer) runs once per connection, with the peer's address and port
---@return luaevent.core.Listener listener the listener: `listener:address()` tells the port, `listener:close()` stops serving
function luaevent.serve(options, handler) end

---A TCP connection of the wrapper, made by `luaevent.dial` or handed to a `luaevent.serve` handler.
---
---A table around one bufferevent whose methods read like a LuaSocket TCP client's, for use from
---coroutines: `receive` and `send` take LuaSocket's arguments and give its results (`nil` and a
---message such as `"closed"` or `"timeout"`, with the partial result), and suspend the calling
---coroutine while they wait. Called outside a coroutine, a method that would have to wait raises
---`connection:<method>: ..., and only a coroutine can wait: ...` instead.
---
---The connection is collected (and its socket closed) once nothing refers to it, no coroutine
---waits on it and what `send` buffered has gone out: a handler that returns without closing its
---connection lets it go, and loses nothing it sent. Neither does `close()`. At most one coroutine
---may wait in `receive` and one in `send` at a time.
---@class luaevent.Connection
---@field bev luaevent.core.BufferEvent the underlying bufferevent, for what the connection does not offer; the connection uses its callbacks, watermarks and timeouts itself, so leave those alone
local Connection = {}

---Receives by LuaSocket's `pattern`, suspending the coroutine until the request is complete.
---
---`"*l"` reads a line ended by LF and removes every CR from it (LuaSocket's rule, not libevent's
---`readline`); `"*a"` reads until the peer closes; a number reads that many bytes. At the end of
---the stream it returns `nil, "closed"` and what came before (with `"*a"`, the data itself, as
---LuaSocket does); bytes that arrived with the end of the stream are never lost. After
---`settimeout(t)`, a wait longer than `t` seconds returns `nil, "timeout"` and the partial data,
---which can be given back as `prefix`: as in LuaSocket 3, a byte count includes the prefix, so
---`receive(n, partial)` completes the request that timed out.
---
---Errors:
---- `bad argument #1 to 'receive' (invalid receive pattern)`: a pattern other than those
---- `connection:receive: no data has come yet, and only a coroutine can wait: call connection:receive inside a function run by luaevent.addthread or a luaevent.serve handler`: called outside a coroutine when it would have to wait
---@param pattern? string|integer `"*l"` (the default), `"*a"` or a byte count (the prefix included)
---@param prefix? string put before what is received
---@return string? data what was received
---@return string? err `"closed"`, `"timeout"` or the system's reason
---@return string? partial on error, the data received before it
function Connection:receive(pattern, prefix) end

---Sends bytes `i` to `j` of `data`, suspending the coroutine while the peer lags 64 KiB behind.
---
---The bytes go to the bufferevent's output buffer, which libevent writes as the peer takes them;
---while more than 64 KiB wait there, `send` waits, so a fast sender cannot fill memory. Once the
---peer has gone (a reset or a broken pipe), it returns `nil, "closed"`: as with LuaSocket, the
---first send after the peer closed may still succeed.
---
---Errors:
---- `bad argument #1 to 'send' (string expected, got <type>)`: `data` is not a string or number
---- `connection:send: the peer has not taken the data sent before, and only a coroutine can wait: call connection:send inside a function run by luaevent.addthread or a luaevent.serve handler`: called outside a coroutine when it would have to wait
---@param data string the bytes
---@param i? integer first byte to send (default 1)
---@param j? integer last byte to send (default `#data`)
---@return integer? last the index of the last byte sent
---@return string? err `"closed"`, `"timeout"` or the system's reason
---@return integer? partial on error, the index of the last byte that left the buffer
function Connection:send(data, i, j) end

---Closes the connection; what `send` buffered is still delivered.
---
---It returns at once. The bufferevent lives on out of sight until all has been sent (over TLS, the
---encrypted bytes too, then the close notice), the peer has gone, or the peer took nothing for 30
---seconds. A coroutine waiting on the connection
---gets `nil, "closed"`. Idempotent; afterwards `receive` and `send` return `nil, "closed"`.
---@return integer ok `1`, as LuaSocket's `close`
function Connection:close() end

---Sets how long `receive` and `send` wait at most, each time they wait.
---
---When a wait lasts longer, they return `nil, "timeout"` and the partial result; the connection
---stays usable. `nil` or a negative number waits for ever (the default). LuaSocket's `mode`
---argument is accepted and changes nothing. A timeout for connecting is `dial`'s
---`options.timeout`.
---
---Errors:
---- `bad argument #1 to 'settimeout' (number or nil expected, got <type>)`: `seconds` is neither
---@param seconds number? seconds, fractions allowed
---@return integer ok `1`, as LuaSocket's `settimeout`
function Connection:settimeout(seconds) end

---The connection's socket descriptor, or -1 once it is closed.
---@return integer fd the descriptor
function Connection:getfd() end

---Upgrades the connection to TLS in place (STARTTLS) and waits for the handshake.
---
---Calls `conn.bev:starttls(context, options)` (a client context makes this end the TLS client, a
---server context the server) and suspends the coroutine until the handshake has succeeded
---(`true`) or failed (`nil` and OpenSSL's reason, say
---`"certificate verify failed: self-signed certificate"`; the connection is then unusable: close
---it). What `send` queued before goes out in plain first. While bytes the peer sent are still
---unread (after its STARTTLS command, before it could see the answer: a peer that does not wait,
---or plain text injected to pass for TLS data), it does not start TLS and returns
---`nil, "connection:starttls: bytes received before the handshake are still unread"`; close the
---connection then. (`bev:starttls` hands such bytes to the handshake, but `receive` has taken
---them out of the bufferevent already.) After `settimeout(t)` a handshake longer than `t` seconds
---returns `nil, "timeout"`. A client checks the server's name: `options.servername`, else the
---host `luaevent.dial` was given; a connection a `luaevent.serve` handler got has no host, so
---there a client context that verifies needs `options.servername` (the call raises without it).
---
---Errors:
---- `bad argument #<n> to 'starttls' (<reason>)`: as for `bev:starttls`, numbered from `context`
---- `connection:starttls: the connection already uses TLS`: the connection is a TLS one already
---- `connection:starttls: the handshake takes a while, and only a coroutine can wait: call connection:starttls inside a function run by luaevent.addthread or a luaevent.serve handler`: called outside a coroutine
---@param context luaevent.core.TlsContext a TLS context from `core.tls.context`
---@param options? { servername: string? } as for `bev:starttls`
---@return boolean? ok `true` once the handshake succeeded
---@return string? err why not: OpenSSL's reason, `"closed"`, `"timeout"` or unread bytes
function Connection:starttls(context, options) end

---What the TLS handshake agreed (`bev:tls()`), or nil for a plain connection.
---
---The table `bev:tls()` returns (see there for its fields: `protocol`, `cipher`, `alpn`,
---`servername`, `verified`, `verify_error`, `peer`); `nil` for a plain connection, and
---`nil, "closed"` once the connection is closed.
---@return table? info as `bev:tls()` returns it
---@return string? err `"closed"` for a closed connection
function Connection:tls() end

---A socket wrapped by `luaevent.wrap`.
---
---A table `{ socket = sock }` whose methods call the wrapper's helpers, so that code written for a
---blocking socket object can run in a coroutine.
---@class luaevent.WrappedSocket
---@field socket luaevent.Socket the wrapped socket
---@field timeout number? what `settimeout` stored
local WrappedSocket = {}

---`luaevent.connect(self.socket, host, port)`.
---@param host string address or name
---@param port integer port number
---@return integer? ok `1` on success
---@return string? err LuaSocket's error message
function WrappedSocket:connect(host, port) end

---`luaevent.send(self.socket, data)`.
---@param data string the bytes
---@return integer? last the index of the last byte sent
---@return string? err LuaSocket's error message
---@return integer? partial on error, the index of the last byte sent
function WrappedSocket:send(data) end

---`luaevent.receivePartial(self.socket, pattern)` after `settimeout(0)`, `luaevent.receive(self.socket, pattern)` otherwise.
---@param pattern? string|integer as for `luaevent.receive`
---@return string? data what was received
---@return string? err LuaSocket's error message, or `"timeout"` for a partial read after `settimeout(0)`
---@return string? partial the data received so far
function WrappedSocket:receive(pattern) end

---Stores `timeout` in the wrapper; only `0` has an effect, on `receive`.
---
---The socket's own timeout is not changed.
---@param timeout number? `0` makes `receive` return partial byte counts
function WrappedSocket:settimeout(timeout) end

---Does nothing.
function WrappedSocket:flush() end

---Removes the socket's event, if it has one, and closes the socket.
---
---It works whether or not the socket ever waited.
---@return integer ok what the socket's `close` returns
function WrappedSocket:close() end

return luaevent
