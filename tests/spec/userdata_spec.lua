-- Each userdata type accepts only its own objects: a method finds out whether a value is one of
-- its type's by that type's own metatable, whichever method is asking and however it was
-- reached, so one type's memory is never read as another's.

local core = require "luaevent.core"
local helpers = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "") .. "helpers.lua")

describe("a userdata of one type where another is expected #ours", function()
  local base, bev, buf, a, b

  before_each(function()
    base = core.new()
    a, b = helpers.tcp_pair()
    bev = core.bufferevent.new(base, b, nil, nil, function() end)
    buf = core.buffer.new()
  end)

  after_each(function()
    bev:close()
    buf:close()
    a:close()
    b:close()
  end)

  it("is refused by a method of the receiver's type that wants another type (bev:starttls(bev))", function()
    local err = helpers.error_of(bev.starttls, bev, bev)
    assert.is_string(err)
    assert.truthy(err:find("bad argument #2 to '[^']*' %(TLS context expected, got userdata%)"), err)
  end)

  it("is refused as the receiver of another type's method (a buffer method called on a bufferevent)", function()
    local length = getmetatable(buf).__index.length
    local err = helpers.error_of(length, bev)
    assert.is_string(err)
    assert.truthy(err:find("bad argument #1 to '[^']*' %(buffer expected, got userdata%)"), err)
    assert.equal(0, length(buf))
  end)
end)
