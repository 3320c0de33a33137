-- Minimal reproduction, kept as a regression check: core.new() with fewer than three free fds
-- ended the whole process with exit status 1 instead of raising an error. Found by
-- fd_exhaustion.lua on 2026-11-26; fixed in commit e9414b0 (core.new() now checks that it can
-- open the three fds first and raises "core.new: could not create an event base: Too many open
-- files").
--
--   (ulimit -n 32; LUA_CPATH="build/lua5.4/?.so;;" lua5.4 tests/load/repro_new_base_emfile.lua)
--
-- Prints "survived" and exits 0 when core.new() returned or raised; with the bug the process
-- ended inside core.new() with status 1, after libevent's own messages on stderr:
--   [warn] evutil_make_internal_pipe_: pipe: Too many open files
--   [err] evsig_init_: socketpair: Too many open files
-- Cause: event_base_new() with the epoll backend needs an epoll fd and a pipe/socketpair for
-- signals. epoll_init() calls evsig_init_(), which on failure calls event_sock_err(1, ...), and
-- libevent's fatal-error path calls exit(1) (after the fatal callback, if one is set). Debian's C
-- module (lua-event 0.4.6) still does the same. Argument: FREE (fds left free, default 2).
local core = require "luaevent.core"
local free = tonumber(arg and arg[1]) or 2

local hoard = {}
while true do
  local f = io.open("/dev/null", "r")
  if not f then break end
  hoard[#hoard + 1] = f
  if #hoard > 100000 then print("fd limit too high: run with ulimit -n 32"); os.exit(2) end
end
for _ = 1, free do table.remove(hoard):close() end
print(string.format("%d fds free; calling core.new()", free))
io.stdout:flush()
local ok, result = pcall(core.new)
print("core.new() " .. (ok and ("returned a base (" .. result:method() .. ")") or ("raised: " .. tostring(result))))
print("survived")
os.exit(0)
