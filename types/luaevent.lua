---@meta luaevent

-- LuaLS definitions for the coroutine wrapper `luaevent` (luaevent-rs). Add the folder holding
-- this file (`types/`, or where the rock installs it) to `Lua.workspace.library`.
--
-- Layout rule, checked by tests/spec/annotations_spec.lua: every function of the module is
-- written `function luaevent.NAME(`, every other field `luaevent.NAME = ...`, every method of
-- wrapped sockets `function WrappedSocket:NAME(`, each at the start of a line.
-- Full reference: doc/api.md.

---The LuaSocket object the wrapper drives (a TCP master, client or server socket). Only the
---methods the wrapper calls are listed.
---@class luaevent.Socket
---@field getfd fun(self: any): integer
---@field send fun(self: any, data: string, i?: integer, j?: integer): (integer|nil), string?, integer?
---@field receive fun(self: any, pattern?: string|integer, prefix?: string): (string|nil), string?, string?
---@field connect fun(self: any, host: string, port: integer): (integer|nil), string?
---@field accept fun(self: any): (luaevent.Socket|nil), string?
---@field settimeout fun(self: any, timeout: number|nil, mode?: string): integer
---@field close fun(self: any): integer

---A copas-like coroutine layer over one event base of its own. The socket helpers must be
---called from inside a coroutine (see `addthread`, `addserver`): whenever LuaSocket answers
---"timeout" they suspend the coroutine until the socket is ready, and `loop()` resumes it.
local luaevent = {}

---The module's name, `"luaevent"`.
luaevent._NAME = "luaevent"

---The wrapper API version it follows, `"0.4.7"`.
luaevent._VERSION = "0.4.7"

---Which core the wrapper runs on: `"luaevent-rs <version>"`, or `"luaevent (C)"` on the C module.
luaevent._CORE = "luaevent-rs " .. require("luaevent.core")._VERSION

---The native module, `require "luaevent.core"`.
luaevent.core = require("luaevent.core")

---`base:addevent(...)` on the wrapper's own event base: registers an event and returns it.
---Keep the returned object: the event is removed once it is collected.
---@param fd luaevent.core.Fd|nil
---@param events integer
---@param callback luaevent.core.EventCallback
---@param timeout? number seconds
---@return luaevent.core.Event event
function luaevent.addevent(fd, events, callback, timeout) end

---Sends `data` (bytes `i` to `j`) on `sock`, suspending the coroutine while the socket is not
---writable. Returns what LuaSocket's `send` finally returns: the index of the last byte sent,
---or nil, an error message and the index of the last byte sent.
---@param sock luaevent.Socket
---@param data string
---@param i? integer
---@param j? integer
---@return integer|nil last
---@return string? err
---@return integer? partial
function luaevent.send(sock, data, i, j) end

---Receives by LuaSocket's `pattern` (`"*l"` by default, `"*a"`, or a byte count), suspending
---the coroutine while nothing complete has arrived. `part` is a prefix to prepend. Returns the
---data, or nil, an error message (e.g. `"closed"`) and what had been received.
---@param sock luaevent.Socket
---@param pattern? string|integer
---@param part? string
---@return string|nil data
---@return string? err
---@return string? partial
function luaevent.receive(sock, pattern, part) end

---Like `receive`, but with a byte count it returns as soon as any data has arrived, as
---`nil, "timeout", partial`.
---@param sock luaevent.Socket
---@param pattern? string|integer
---@return string|nil data
---@return string? err
---@return string? partial
function luaevent.receivePartial(sock, pattern) end

---Connects `sock` (made non-blocking) to `host`/`port`, suspending the coroutine until the
---connection is made. Returns 1 on success, or nil and an error message such as
---`"connection refused"` (errors are returned, not raised).
---@param sock luaevent.Socket
---@param host string
---@param port integer
---@return integer|nil ok
---@return string? err
function luaevent.connect(sock, host, port) end

---Does nothing (sends are never buffered); kept for compatibility.
---@param sock luaevent.Socket
function luaevent.flush(sock) end

---Accepts clients on the listening socket `sock`: each accepted client is made non-blocking
---and handed to `handler(client)` in a coroutine of its own. The server stays registered for
---the life of the wrapper's base, so `loop()` keeps running.
---@param sock luaevent.Socket
---@param handler fun(client: luaevent.Socket)
function luaevent.addserver(sock, handler) end

---Runs `func(...)` in a new coroutine at once, until it first waits. Returns what
---`coroutine.resume` returns: true and the values yielded or returned, or false and the error.
---@param func fun(...: any): any
---@param ... any
---@return boolean ok
---@return any ...
function luaevent.addthread(func, ...) end

---Wraps a socket into an object with `connect`, `send`, `receive`, `flush`, `settimeout` and
---`close` methods that call the helpers above.
---@param sock luaevent.Socket
---@return luaevent.WrappedSocket wrapped
function luaevent.wrap(sock) end

---Runs the wrapper's event base: `base:loop()`. Returns 1 once no events remain; an error
---raised in a resumed coroutine stops the loop and is raised again here.
---@return integer result
function luaevent.loop() end

---A socket wrapped by `luaevent.wrap`.
---@class luaevent.WrappedSocket
---@field socket luaevent.Socket the wrapped socket
---@field timeout number|nil set by `settimeout`
local WrappedSocket = {}

---`luaevent.connect(self.socket, host, port)`.
---@param host string
---@param port integer
---@return integer|nil ok
---@return string? err
function WrappedSocket:connect(host, port) end

---`luaevent.send(self.socket, data)`.
---@param data string
---@return integer|nil last
---@return string? err
---@return integer? partial
function WrappedSocket:send(data) end

---`luaevent.receivePartial(self.socket, pattern)` after `settimeout(0)`, else
---`luaevent.receive(self.socket, pattern)`.
---@param pattern? string|integer
---@return string|nil data
---@return string? err
---@return string? partial
function WrappedSocket:receive(pattern) end

---Does nothing; kept for compatibility.
function WrappedSocket:flush() end

---Records `timeout` on the wrapper only (the socket's own timeout is left alone); with 0,
---`receive` uses `receivePartial`.
---@param timeout number|nil
function WrappedSocket:settimeout(timeout) end

---Removes the socket's pending event, if any, and closes the socket. Works whether or not the
---socket ever waited. Returns what the socket's `close` returns.
---@return integer ok
function WrappedSocket:close() end

return luaevent
