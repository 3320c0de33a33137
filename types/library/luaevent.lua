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

---Returns a wrapped socket.
---@param sock luaevent.core.HasGetfd the socket to wrap
---@return luaevent.WrappedSocket wrapped `{ socket = sock }` with the methods of `WrappedSocket`
function luaevent.wrap(sock) end

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
