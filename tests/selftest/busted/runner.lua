-- A stand-in for busted's runner, for tests/selftest/run.sh (LUA_PATH=tests/selftest/?.lua;;):
-- raises the error that an allocation failing inside busted itself would, so that the self-test
-- sees what tests/faults/busted.lua makes of an error that escapes busted.
return function()
  error("not enough memory", 0)
end
