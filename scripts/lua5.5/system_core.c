/* system.core for the Lua 5.5 test interpreter (scripts/install-lua5.5.sh): the three clock
 * functions busted takes from luasystem, which is all busted needs of it. Debian's luasystem
 * source package cannot be fetched from every Debian mirror, so this stands in for its C part.
 *   system.gettime()    wall-clock seconds since the epoch, with fractions
 *   system.monotime()   seconds on a clock that never jumps, with fractions
 *   system.sleep(s)     sleeps s seconds (fractions too), resuming after signals
 */
#include <errno.h>
#include <time.h>

#include "lauxlib.h"
#include "lua.h"

static int seconds_of(lua_State *L, clockid_t clock) {
  struct timespec now;
  if (clock_gettime(clock, &now) != 0) {
    return luaL_error(L, "clock_gettime failed");
  }
  lua_pushnumber(L, (lua_Number)now.tv_sec + (lua_Number)now.tv_nsec / 1e9);
  return 1;
}

static int gettime(lua_State *L) { return seconds_of(L, CLOCK_REALTIME); }

static int monotime(lua_State *L) { return seconds_of(L, CLOCK_MONOTONIC); }

static int sleep_seconds(lua_State *L) {
  lua_Number seconds = luaL_checknumber(L, 1);
  struct timespec left;
  if (!(seconds > 0)) {
    return 0;
  }
  left.tv_sec = (time_t)seconds;
  left.tv_nsec = (long)((seconds - (lua_Number)left.tv_sec) * 1e9);
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
  return 0;
}

int luaopen_system_core(lua_State *L) {
  static const luaL_Reg functions[] = {
    {"gettime", gettime},
    {"monotime", monotime},
    {"sleep", sleep_seconds},
    {NULL, NULL},
  };
  luaL_newlib(L, functions);
  return 1;
}
