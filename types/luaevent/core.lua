---@meta luaevent.core

-- LuaLS definitions for `luaevent.core` (luaevent-rs). Add the folder holding this file
-- (`types/`, or where the rock installs it) to `Lua.workspace.library`.
--
-- Layout rule, checked by tests/spec/annotations_spec.lua: every function of the module is
-- written `function core.NAME(` / `function core.buffer.NAME(` / `function core.bufferevent.NAME(`,
-- every method `function Base:NAME(` (and Event, Buffer, BufferEvent), every constant
-- `core.NAME = <integer>`, each at the start of a line. A class lists its metamethods on a
-- `---Metamethods:` line of its doc block. Full reference: doc/api.md.

---A file descriptor argument: a non-negative integer, a lightuserdata handle, or an object
---with a `getfd` method (LuaSocket sockets), called as `obj:getfd()`.
---@alias luaevent.core.Fd integer|lightuserdata|luaevent.core.HasGetfd

---Anything with a `getfd` method returning a non-negative integer fd.
---@class luaevent.core.HasGetfd
---@field getfd fun(self: any): integer

---An event callback. `what` holds the bits that fired (`EV_READ`, `EV_WRITE`, `EV_TIMEOUT`,
---`EV_SIGNAL`, possibly OR-ed). Return nothing to keep the event as it is, `core.LEAVE` to
---remove it, or `newEvents [, newTimeout]` to re-register it with a new mask and/or timeout
---(a timeout < 0 or absent keeps the current one). Returning a non-integer mask is a loop error.
---@alias luaevent.core.EventCallback fun(what: integer): newEvents: integer?, newTimeout: number?

---A bufferevent callback: `bev` is the bufferevent itself (the same object every time);
---`what` is `EVBUFFER_READ` for the read callback, `EVBUFFER_WRITE` for the write callback,
---and for the error callback `EVBUFFER_EOF`, `EVBUFFER_ERROR` or `EVBUFFER_TIMEOUT` plus
---`EVBUFFER_READ` or `EVBUFFER_WRITE` for the direction. Return values are ignored.
---@alias luaevent.core.BufferEventCallback fun(bev: luaevent.core.BufferEvent, what: integer)

---The libevent binding: event bases, events, buffers and bufferevents.
local core = {}

---Callback result that removes the event, as `event:close()` does. Value -1.
core.LEAVE = -1

---Event bit: the timeout expired. Value 1.
core.EV_TIMEOUT = 1

---Event bit: the fd is readable. Value 2.
core.EV_READ = 2

---Event bit: the fd is writable. Value 4.
core.EV_WRITE = 4

---Event bit: the signal (given as the fd) was delivered. Value 8.
core.EV_SIGNAL = 8

---Event bit: persistent event. Value 16. Accepted and ignored by `addevent`: every event is
---registered persistent anyway.
core.EV_PERSIST = 16

---Bufferevent `what` bit: happened while reading; also the read callback's `what`. Value 1.
core.EVBUFFER_READ = 1

---Bufferevent `what` bit: happened while writing; also the write callback's `what`. Value 2.
core.EVBUFFER_WRITE = 2

---Bufferevent error callback bit: end of file (the peer closed). Value 16.
core.EVBUFFER_EOF = 16

---Bufferevent error callback bit: a socket error. Value 32.
core.EVBUFFER_ERROR = 32

---Bufferevent error callback bit: a read or write timeout expired. Value 64.
core.EVBUFFER_TIMEOUT = 64

---Creates a new event base. Raises `luaevent: could not create an event base (too many open
---files?)` when the process cannot open the descriptors a base needs.
---@return luaevent.core.Base base
function core.new() end

---The version string of the libevent library in use, e.g. `"2.1.12-stable"`.
---@return string version
function core.libevent_version() end

---The implementation's name, `"luaevent-rs"` (the C module has no `_NAME`).
core._NAME = "luaevent-rs"

---The implementation's version (the crate version), e.g. `"0.1.0"`.
core._VERSION = "0.1.0"

---Byte buffers (libevent evbuffers).
core.buffer = {}

---Creates a new, empty buffer.
---@return luaevent.core.Buffer buffer
function core.buffer.new() end

---Buffered sockets (libevent bufferevents).
core.bufferevent = {}

---Creates a bufferevent on `fd`, bound to `base`. Without a base (`new(fd, readcb, writecb,
---errorcb)`) it binds to the base most recently made by `core.new()`, an error if that base has
---been collected. `fd` must be open. Writing is enabled and reading is not until `bev:enable(core.EV_READ)`. The
---bufferevent keeps the socket object alive and never closes the fd.
---Raises a `bad argument` error for a bad fd, a non-callable `readcb`/`writecb` other than nil,
---or a missing `errorcb`.
---@param base luaevent.core.Base
---@param fd luaevent.core.Fd
---@param readcb luaevent.core.BufferEventCallback|nil called when the input reaches the read low watermark
---@param writecb luaevent.core.BufferEventCallback|nil called when the output drains to the write low watermark
---@param errorcb luaevent.core.BufferEventCallback called on EOF, error or timeout
---@return luaevent.core.BufferEvent bev
---@overload fun(fd: luaevent.core.Fd, readcb: luaevent.core.BufferEventCallback|nil, writecb: luaevent.core.BufferEventCallback|nil, errorcb: luaevent.core.BufferEventCallback): luaevent.core.BufferEvent
function core.bufferevent.new(base, fd, readcb, writecb, errorcb) end

---An event base (libevent `event_base`), made by `core.new()`. Freed when collected; events
---and bufferevents that outlive it stay safe to close.
---Metamethods: `__gc` (frees the base).
---@class luaevent.core.Base
local Base = {}

---Registers an event and returns its event object. The event is always persistent and stays
---registered only while the returned object is reachable (collecting it removes the event).
---`fd` may be nil for a pure timer (then `timeout` is required); with `EV_SIGNAL` it is the
---signal number. `events` is a mask of `EV_READ`, `EV_WRITE`, `EV_TIMEOUT`, `EV_SIGNAL`, 0
---allowed. `timeout` is in seconds, rounded to the microsecond; negative, NaN or infinite is a
---`bad argument` error, as are a bad fd (or one not open, with `EV_READ`/`EV_WRITE`), a bad
---mask and a non-callable callback.
---@param fd luaevent.core.Fd|nil
---@param events integer
---@param callback luaevent.core.EventCallback
---@param timeout? number seconds
---@return luaevent.core.Event event
function Base:addevent(fd, events, callback, timeout) end

---Runs the loop until no events remain, `loopexit` takes effect, or a callback raises an
---error. Returns 0 when stopped by `loopexit`, 1 when no events were left. A callback error
---(or a callback returning an invalid mask) is raised again here as a string with a
---traceback; the base can loop again afterwards. Looping a base that is already looping is
---an error.
---@return integer result
function Base:loop() end

---Asks the loop to exit after `seconds` (default: once the callbacks of the current round have
---run). Returns 0 on success.
---@param seconds? number
---@return integer result
function Base:loopexit(seconds) end

---The name of libevent's backend for this base, e.g. `"epoll"` (also when it batches changes).
---@return string method
function Base:method() end

---An event registered by `base:addevent`. The event lives as long as this object is
---reachable from Lua.
---Metamethods: `__gc` (removes the event, as `close` does).
---@class luaevent.core.Event
local Event = {}

---Removes the event and releases its callback. Idempotent; safe inside any callback,
---including the event's own.
function Event:close() end

---A byte buffer (libevent evbuffer). Binary-safe: NUL bytes pass through unchanged.
---Metamethods: `__len` (`#buf`, the length), `__tostring` (`tostring(buf)`, a copy of the
---contents), `__gc` (frees an owned buffer).
---@class luaevent.core.Buffer
---@operator len: integer
local Buffer = {}

---Appends every argument: strings, numbers (formatted as `tostring` does) and buffers (whose
---bytes are moved, leaving them empty). At least one argument. A bad argument (another type,
---the buffer itself, a closed buffer) raises an error and nothing at all is added.
---@param ... string|number|luaevent.core.Buffer
---@return integer added the number of bytes added
function Buffer:add(...) end

---The number of bytes held (also `#buf`).
---@return integer length
function Buffer:length() end

---A copy of the contents, never consuming them. `get_data()`: everything (also
---`tostring(buf)`); `get_data(len)`: the first `len` bytes; `get_data(begin, len)`: `len` bytes
---from the 1-based position `begin`, where a negative `begin` counts from the end (-1 is the
---last byte) and a negative `len` means up to the end. Everything is clamped to the buffer.
---@param begin? integer `len` when it is the only argument
---@param len? integer
---@return string data
---@overload fun(self: luaevent.core.Buffer): string
---@overload fun(self: luaevent.core.Buffer, len: integer): string
function Buffer:get_data(begin, len) end

---Takes the next line off the buffer, without its line end. Any run of `\r` and `\n` ends a
---line. Returns nil, leaving the data in place, while no line end has arrived.
---@return string? line
function Buffer:readline() end

---Removes the first `n` bytes; a negative `n` or one past the end removes everything.
---@param n integer
function Buffer:drain(n) end

---Reads up to `len` bytes from `fd` and appends them. Returns the bytes read, 0 at end of
---file, -1 on error (e.g. nothing to read on a non-blocking socket).
---@param fd luaevent.core.Fd
---@param len integer
---@return integer result
function Buffer:read(fd, len) end

---Writes as much of the buffer to `fd` as it takes, draining what was written. Returns the
---number of bytes written, or -1 on error.
---@param fd luaevent.core.Fd
---@return integer result
function Buffer:write(fd) end

---Frees the buffer now (a bufferevent's buffer is only detached). Idempotent; any other method
---on a closed buffer raises an error saying the buffer is closed.
function Buffer:close() end

---A buffered socket (libevent bufferevent), made by `core.bufferevent.new`.
---Metamethods: `__gc` (frees the bufferevent, as `close` does).
---@class luaevent.core.BufferEvent
local BufferEvent = {}

---The input buffer (the same object on every call). It belongs to the bufferevent: using it
---after the bufferevent is freed raises a "closed" error. Only the socket adds to it (`add` on
---it raises an error); take data out with `get_data`, `readline`, `drain` or `other:add(input)`.
---@return luaevent.core.Buffer input
function BufferEvent:get_read() end

---The output buffer (the same object on every call); bytes added to it are sent. Bytes leave it
---only by being sent: `drain` on it does nothing and it cannot be moved into another buffer.
---@return luaevent.core.Buffer output
function BufferEvent:get_write() end

---Read watermarks: the read callback runs only once `low` bytes are buffered; reading from the
---socket stops while `high` bytes are buffered (0: no limit). nil counts as 0; negative is an
---error. At `high`, a read callback that takes nothing is not called again until something
---drains the input (libevent alone would call it on every loop round).
---@param low? integer
---@param high? integer
function BufferEvent:set_read_watermarks(low, high) end

---Write watermarks: the write callback runs when the output drains to `low` bytes (0: fully
---flushed). `high` is stored but libevent does not use it.
---@param low? integer
---@param high? integer
function BufferEvent:set_write_watermarks(low, high) end

---Read and write timeouts in seconds (fractions allowed); 0 or nil: no timeout. An expired
---timeout calls the error callback with `EVBUFFER_TIMEOUT`.
---@param read? number
---@param write? number
function BufferEvent:set_timeouts(read, write) end

---Enables `EV_READ`, `EV_WRITE` or both. Returns 0 on success.
---@param mask integer
---@return integer result
function BufferEvent:enable(mask) end

---Disables `EV_READ`, `EV_WRITE` or both. Returns 0 on success.
---@param mask integer
---@return integer result
function BufferEvent:disable(mask) end

---Frees the bufferevent now; its buffers become closed. Idempotent and safe inside its own
---callbacks; any other method on a closed bufferevent raises an error saying so.
function BufferEvent:close() end

return core
