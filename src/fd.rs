//! Turning a Lua value into a file descriptor: an integer, a lightuserdata handle, or any object
//! with a `getfd` method (LuaSocket's sockets), called as `obj:getfd()`.

use std::ffi::c_int;

use mlua::ffi::*;

use crate::api::{check_integer, expected, number_to_integer, pop_bytes, type_name, Failure, LuaResult};
use crate::ffi::Fd;

/// The fd described by the argument at `index`.
pub unsafe fn check_fd(state: *mut lua_State, index: c_int) -> LuaResult<Fd> {
    // SAFETY: `index` is a valid argument slot; the only call into Lua (`getfd`) is protected.
    unsafe {
        match lua_type(state, index) {
            LUA_TNUMBER | LUA_TSTRING => in_range(index, check_integer(state, index)?),
            LUA_TLIGHTUSERDATA => in_range(index, lua_touserdata(state, index) as usize as i64),
            LUA_TUSERDATA | LUA_TTABLE => from_getfd(state, index),
            _ => Err(expected(state, index, "socket or integer fd")),
        }
    }
}

fn in_range(index: c_int, fd: i64) -> LuaResult<Fd> {
    if fd < 0 || fd > c_int::MAX as i64 {
        return Err(Failure::Arg(index, format!("invalid file descriptor ({fd})")));
    }
    Ok(fd as Fd)
}

unsafe fn from_getfd(state: *mut lua_State, index: c_int) -> LuaResult<Fd> {
    // SAFETY: the object's `getfd` field is read and called under lua_pcall, so neither an
    // `__index` metamethod nor `getfd` itself can raise through our frames. The stack is
    // restored on every path.
    unsafe {
        let index = lua_absindex(state, index);
        let top = lua_gettop(state);
        lua_pushcfunction(state, call_getfd);
        lua_pushvalue(state, index);
        if lua_pcall(state, 1, 1, 0) != LUA_OK {
            crate::api::error_to_string(state);
            let message = String::from_utf8_lossy(&pop_bytes(state)).into_owned();
            return Err(Failure::Arg(index, format!("getfd failed: {message}")));
        }
        let result = if lua_type(state, -1) == LUA_TNUMBER {
            let mut is_number = 0;
            let value = lua_tonumberx(state, -1, &mut is_number);
            number_to_integer(value)
                .ok_or_else(|| Failure::Arg(index, "getfd returned a non-integral number".to_owned()))
                .and_then(|fd| in_range(index, fd))
        } else {
            let got = type_name(state, -1);
            Err(Failure::Arg(index, format!("socket or integer fd expected, getfd returned {got}")))
        };
        lua_settop(state, top);
        result
    }
}

/// Protected helper: `obj:getfd()` for the object at index 1, or an error when it has none.
unsafe extern "C-unwind" fn call_getfd(state: *mut lua_State) -> c_int {
    // SAFETY: runs under lua_pcall (see from_getfd), so raising here is caught by Lua itself;
    // no Rust value with a destructor is alive when an error is raised.
    unsafe {
        lua_getfield(state, 1, c"getfd".as_ptr());
        if lua_isnil(state, -1) != 0 {
            let what = lua_typename(state, lua_type(state, 1));
            return luaL_error(state, c"socket or integer fd expected, got %s without 'getfd'".as_ptr(), what);
        }
        lua_pushvalue(state, 1);
        lua_call(state, 1, 1);
        1
    }
}
