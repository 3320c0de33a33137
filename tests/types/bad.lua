-- Mistakes the LuaLS definitions must catch: each line marked `expect: <code>` must draw that
-- diagnostic from emmylua_check, and no other line may draw one (tests/spec/types_spec.lua).
local core = require "luaevent.core"
local luaevent = require "luaevent"
local base = core.new()

local ev = base:addevent(nil, core.EV_TIMEOUT, 42, 0.1) -- expect: param-type-mismatch
base:addevnet(nil, 0, print) -- expect: undefined-field
local x = core.EV_NOPE -- expect: undefined-field
local ev2 = base:addevent(nil, "read", print, 1) -- expect: param-type-mismatch
local ev3 = base:addevent(nil, 0, print, "soon") -- expect: param-type-mismatch
local buf = core.buffer.new()
buf:drain("all") -- expect: param-type-mismatch
local upper = buf:readline():upper() -- expect: need-check-nil, param-type-mismatch
local n = buf:add({}) -- expect: param-type-mismatch, missing-fields
local r = buf:read(true, 10) -- expect: param-type-mismatch
local bev = core.bufferevent.new(base, 0, nil, nil, "oops") -- expect: param-type-mismatch
bev:enable("read") -- expect: param-type-mismatch
bev:get_read():frobnicate() -- expect: undefined-field
---@type string
local wrong = base:loop() -- expect: assign-type-mismatch
local w = luaevent.wrap(luaevent.core) -- expect: param-type-mismatch
w:recieve() -- expect: undefined-field
luaevent.connect(io.stdout, "127.0.0.1", 80) -- expect: param-type-mismatch
local listener = { getfd = function() return 3 end }
luaevent.addserver(listener, function(client) client:sendd("x") end) -- expect: undefined-field
luaevent.loopexit("soon") -- expect: param-type-mismatch
print(ev, x, ev2, ev3, upper, n, r, wrong)
