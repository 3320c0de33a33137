//! The thin layer between Lua's C API and the safe Rust bodies of our functions.
//!
//! Every Lua-visible function is a raw `lua_CFunction` declared with [`lua_function!`]: its body
//! returns `Result<c_int, Failure>`, runs under `catch_unwind`, and only once the body has returned
//! (and every Rust value with a destructor is gone) does the wrapper raise the failure with
//! `lua_error`. That keeps three promises at once: errors reach Lua as plain strings (never mlua's
//! error userdata), panics never cross into Lua's C frames, and `lua_error`'s longjmp never skips
//! a Rust destructor.
//!
//! Rule for bodies: call only Lua API functions that cannot raise (apart from running out of
//! memory). Anything that can run Lua code (metamethods, `getfd` methods) goes through `lua_pcall`.

use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use mlua::ffi::lua_State;
use mlua::ffi::*;

/// Why a Lua-facing function failed; turned into a Lua error string by [`finish`].
#[derive(Debug)]
pub enum Failure {
    /// `bad argument #n to 'f' (msg)`, numbered and named by Lua's own `luaL_argerror`.
    Arg(c_int, String),
    /// A plain message, raised as is.
    Message(String),
    /// The error string is already on top of the Lua stack.
    OnStack,
}

pub type LuaResult<T> = Result<T, Failure>;

/// Defines `pub unsafe extern "C-unwind" fn $name(L) -> c_int` around a body of type
/// `unsafe fn(*mut lua_State) -> LuaResult<c_int>`.
macro_rules! lua_function {
    ($name:ident => $body:path) => {
        /// A `lua_CFunction`.
        ///
        /// # Safety
        /// Only Lua calls it, with a valid state.
        pub unsafe extern "C-unwind" fn $name(state: *mut $crate::api::lua_State) -> ::std::ffi::c_int {
            // SAFETY: Lua calls this with a valid state; `finish` raises errors only after the body is done.
            unsafe { $crate::api::finish(state, |l| $body(l)) }
        }
    };
}
pub(crate) use lua_function;

/// Runs a body and turns its failure, or a panic, into a Lua error raised as the very last act.
///
/// # Safety
/// `state` must be the state Lua called the function with.
pub unsafe fn finish(state: *mut lua_State, body: impl FnOnce(*mut lua_State) -> LuaResult<c_int>) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| body(state)));
    let failure = match outcome {
        Ok(Ok(count)) => return count,
        Ok(Err(failure)) => failure,
        Err(_) => Failure::Message("luaevent: internal error (a Rust panic was caught)".to_owned()),
    };
    // SAFETY: the message is copied into Lua before the Rust string is dropped; nothing with a
    // destructor is alive when luaL_argerror / lua_error jump out of this frame.
    unsafe {
        match failure {
            Failure::Arg(index, message) => {
                push_bytes(state, message.as_bytes());
                drop(message);
                let text = lua_tostring(state, -1);
                luaL_argerror(state, index, text)
            }
            Failure::Message(message) => {
                push_bytes(state, message.as_bytes());
                drop(message);
                lua_error(state)
            }
            Failure::OnStack => lua_error(state),
        }
    }
}

/// Pushes a byte string.
///
/// # Safety
/// `state` must be valid with a free stack slot.
pub unsafe fn push_bytes(state: *mut lua_State, bytes: &[u8]) {
    // SAFETY: lua_pushlstring copies `bytes`.
    unsafe { lua_pushlstring(state, bytes.as_ptr() as *const c_char, bytes.len()) };
}

/// The Lua type name of the value at `index` ("no value" for an absent argument).
pub unsafe fn type_name(state: *mut lua_State, index: c_int) -> String {
    // SAFETY: lua_typename returns a static C string for every type tag, LUA_TNONE included.
    unsafe { CStr::from_ptr(lua_typename(state, lua_type(state, index))).to_string_lossy().into_owned() }
}

/// The standard "X expected, got Y" argument failure.
pub unsafe fn expected(state: *mut lua_State, index: c_int, what: &str) -> Failure {
    // SAFETY: forwarded from the caller.
    let got = unsafe { type_name(state, index) };
    Failure::Arg(index, format!("{what} expected, got {got}"))
}

/// The value at `index` as a number, if it is one or a numeric string. One API call in the
/// common case: on 5.1 and LuaJIT, lua_tonumberx is a compatibility shim making two.
pub unsafe fn to_number(state: *mut lua_State, index: c_int) -> Option<f64> {
    // SAFETY: lua_tonumber / lua_tonumberx / lua_isnumber never raise.
    unsafe {
        if cfg!(any(feature = "lua51", feature = "luajit")) {
            let value = lua_tonumber(state, index);
            return (value != 0.0 || lua_isnumber(state, index) != 0).then_some(value);
        }
        let mut is_number = 0;
        let value = lua_tonumberx(state, index, &mut is_number);
        (is_number != 0).then_some(value)
    }
}

/// The value at `index` as an integer, if it is an integral number or a numeric string.
pub unsafe fn to_integer(state: *mut lua_State, index: c_int) -> Option<i64> {
    // SAFETY: as for to_number; lua_tointegerx never raises either.
    unsafe {
        if cfg!(any(feature = "lua51", feature = "luajit")) {
            return to_number(state, index).and_then(number_to_integer);
        }
        let mut is_integer = 0;
        let value = lua_tointegerx(state, index, &mut is_integer);
        (is_integer != 0).then_some(value)
    }
}

/// A number argument; numeric strings convert as they do in Lua's own `luaL_checknumber`.
pub unsafe fn check_number(state: *mut lua_State, index: c_int) -> LuaResult<f64> {
    // SAFETY: forwarded from the caller.
    unsafe { to_number(state, index).ok_or_else(|| expected(state, index, "number")) }
}

/// An integer argument: any number with an integral value (3.0 included) or a numeric string.
pub unsafe fn check_integer(state: *mut lua_State, index: c_int) -> LuaResult<i64> {
    // SAFETY: forwarded from the caller.
    unsafe {
        to_integer(state, index).ok_or_else(|| {
            if lua_isnumber(state, index) != 0 {
                Failure::Arg(index, "number has no integer representation".to_owned())
            } else {
                expected(state, index, "number")
            }
        })
    }
}

/// `value` as an i64 when it is integral and in range.
pub fn number_to_integer(value: f64) -> Option<i64> {
    // 2^63 is exactly representable; the range check excludes NaN and infinities too. The
    // round trip through i64 tests integrality without a libm call.
    const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
    let in_range = (-TWO_TO_63..TWO_TO_63).contains(&value);
    (in_range && (value as i64) as f64 == value).then_some(value as i64)
}

/// Whether the value at `index` can be called (a function, or anything with `__call`).
pub unsafe fn is_callable(state: *mut lua_State, index: c_int) -> bool {
    // SAFETY: plain type queries and a raw metatable lookup; none of them raise.
    unsafe {
        if lua_type(state, index) == LUA_TFUNCTION {
            return true;
        }
        if lua_getmetatable(state, index) == 0 {
            return false;
        }
        push_bytes(state, b"__call");
        lua_rawget(state, -2);
        let callable = lua_isnil(state, -1) == 0;
        lua_pop(state, 2);
        callable
    }
}

/// Registers a metatable under `name` in the registry with the given methods, metamethods and
/// `__index` pointing at the methods, and pops it. Every function gets the metatable as its
/// upvalue 1, for the fast receiver check of [`test_userdata`].
pub unsafe fn register_metatable(
    state: *mut lua_State,
    name: &CStr,
    methods: &[(&CStr, lua_CFunction)],
    metamethods: &[(&CStr, lua_CFunction)],
) {
    // SAFETY: only table construction on a valid state with room on the stack.
    unsafe {
        luaL_newmetatable(state, name.as_ptr());
        for (key, function) in metamethods {
            lua_pushvalue(state, -1);
            lua_pushcclosure(state, *function, 1);
            lua_setfield(state, -2, key.as_ptr());
        }
        lua_createtable(state, 0, methods.len() as c_int);
        for (key, function) in methods {
            lua_pushvalue(state, -2);
            lua_pushcclosure(state, *function, 1);
            lua_setfield(state, -2, key.as_ptr());
        }
        lua_setfield(state, -2, c"__index".as_ptr());
        lua_pop(state, 1);
    }
}

/// Creates a userdata holding `value`, with the registered metatable `name`, on top of the stack.
/// `with_user_value` asks for the one user value slot (always there before Lua 5.4; on 5.4 it
/// costs 16 bytes, so only types that use it ask).
pub unsafe fn push_userdata<T>(state: *mut lua_State, name: &CStr, value: T, with_user_value: bool) -> *mut T {
    // SAFETY: Lua userdata memory is suitably aligned for any plain Rust struct of pointers and
    // integers (at least 8 bytes); it is written once here before anything can read it.
    unsafe {
        #[cfg(feature = "lua54")]
        let memory = lua_newuserdatauv(state, std::mem::size_of::<T>(), with_user_value as c_int) as *mut T;
        #[cfg(not(feature = "lua54"))]
        let memory = {
            let _ = with_user_value;
            lua_newuserdata(state, std::mem::size_of::<T>()) as *mut T
        };
        memory.write(value);
        luaL_getmetatable(state, name.as_ptr());
        lua_setmetatable(state, -2);
        memory
    }
}

/// The userdata at `index` if its metatable is the registered `name`, else `None`.
pub unsafe fn test_userdata<T>(state: *mut lua_State, index: c_int, name: &CStr) -> Option<*mut T> {
    // SAFETY: LuaJIT's luaL_testudata is one call that compares metatables without running Lua
    // code; it can raise only when out of memory.
    #[cfg(feature = "luajit")]
    unsafe {
        let memory = luajit_testudata(state, index, name.as_ptr());
        (!memory.is_null()).then_some(memory as *mut T)
    }
    // SAFETY: raw metatable comparison; nothing here can raise or run Lua code.
    #[cfg(not(feature = "luajit"))]
    unsafe {
        let memory = lua_touserdata(state, index);
        if memory.is_null() || lua_type(state, index) != LUA_TUSERDATA || lua_getmetatable(state, index) == 0 {
            return None;
        }
        // Fast path: methods carry their own type's metatable as upvalue 1 (see
        // register_metatable), which spares a registry lookup by name on every call.
        if lua_rawequal(state, -1, lua_upvalueindex(1)) != 0 {
            lua_pop(state, 1);
            return Some(memory as *mut T);
        }
        luaL_getmetatable(state, name.as_ptr());
        let same = lua_rawequal(state, -1, -2) != 0;
        lua_pop(state, 2);
        same.then_some(memory as *mut T)
    }
}

// LuaJIT exports luaL_testudata (a 5.2 addition); mlua's 5.1 bindings do not declare it. Each
// API call costs more on LuaJIT than on PUC Lua, so one call beats the four of the generic path.
#[cfg(feature = "luajit")]
unsafe extern "C-unwind" {
    #[link_name = "luaL_testudata"]
    fn luajit_testudata(state: *mut lua_State, index: c_int, name: *const std::ffi::c_char) -> *mut std::ffi::c_void;
}

/// The userdata at `index` of type `name`, or the standard argument failure naming `what`.
pub unsafe fn check_userdata<T>(state: *mut lua_State, index: c_int, name: &CStr, what: &str) -> LuaResult<*mut T> {
    // SAFETY: forwarded from the caller.
    unsafe { test_userdata(state, index, name).ok_or_else(|| expected(state, index, what)) }
}

/// Turns the error value on top of the stack into a string in place (what `lua.c` does with
/// error objects): strings and numbers as they are, objects through a protected `tostring`,
/// anything else as "(error object is a X value)".
pub unsafe fn error_to_string(state: *mut lua_State) {
    // SAFETY: the value is on top of the stack; the only call into Lua is protected.
    unsafe {
        if lua_type(state, -1) == LUA_TSTRING {
            return;
        }
        if lua_type(state, -1) == LUA_TNUMBER {
            lua_pushvalue(state, -1);
            lua_tolstring(state, -1, std::ptr::null_mut());
            lua_remove(state, -2);
            return;
        }
        if luaL_getmetafield(state, -1, c"__tostring".as_ptr()) != 0 {
            lua_pushvalue(state, -2);
            if lua_pcall(state, 1, 1, 0) == LUA_OK && lua_type(state, -1) == LUA_TSTRING {
                lua_remove(state, -2);
                return;
            }
            lua_pop(state, 1);
        }
        let description = format!("(error object is a {} value)", type_name(state, -1));
        lua_pop(state, 1);
        push_bytes(state, description.as_bytes());
    }
}

/// Message handler for callback `lua_pcall`s: the error as a string plus a traceback of the
/// callback. Set up by us rather than fetched from `debug.traceback` on every call.
pub unsafe extern "C-unwind" fn traceback_handler(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua as a message handler with the error value at index 1. It may raise
    // only on memory exhaustion, which Lua's pcall machinery handles.
    unsafe {
        error_to_string(state);
        luaL_traceback(state, state, lua_tostring(state, -1), 1);
        1
    }
}

/// Pops the string on top of the stack into Rust bytes.
pub unsafe fn pop_bytes(state: *mut lua_State) -> Vec<u8> {
    // SAFETY: the value on top is a string (callers ensure it); its bytes are copied before the pop.
    unsafe {
        let mut length = 0usize;
        let data = lua_tolstring(state, -1, &mut length);
        let bytes = if data.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(data as *const u8, length).to_vec()
        };
        lua_pop(state, 1);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::number_to_integer;

    #[test]
    fn integral_numbers_convert() {
        assert_eq!(number_to_integer(3.0), Some(3));
        assert_eq!(number_to_integer(-7.0), Some(-7));
        assert_eq!(number_to_integer(-0.0), Some(0));
    }

    #[test]
    fn non_integral_and_out_of_range_numbers_do_not() {
        assert_eq!(number_to_integer(1.5), None);
        assert_eq!(number_to_integer(f64::NAN), None);
        assert_eq!(number_to_integer(f64::INFINITY), None);
        assert_eq!(number_to_integer(9.3e18), None);
    }
}

/// Seconds as whole microseconds, rounded to the nearest (so 1e-06 is one microsecond, not 0).
/// `None` for negative, NaN, infinite or absurdly large values (over 2^31 seconds).
pub fn seconds_to_micros(seconds: f64) -> Option<crate::ffi::Micros> {
    if !(0.0..=2_147_483_648.0).contains(&seconds) {
        return None;
    }
    Some((seconds * 1e6).round() as crate::ffi::Micros)
}

/// A timeout argument in seconds (see [`seconds_to_micros`]).
pub unsafe fn check_timeout(state: *mut lua_State, index: c_int) -> LuaResult<crate::ffi::Micros> {
    // SAFETY: forwarded from the caller.
    let seconds = unsafe { check_number(state, index)? };
    seconds_to_micros(seconds).ok_or_else(|| {
        Failure::Arg(index, format!("timeout must be a finite number of seconds >= 0, got {seconds}"))
    })
}

#[cfg(test)]
mod timeout_tests {
    use super::seconds_to_micros;

    #[test]
    fn rounds_to_the_nearest_microsecond() {
        assert_eq!(seconds_to_micros(1e-06), Some(1));
        assert_eq!(seconds_to_micros(0.0000004), Some(0));
        assert_eq!(seconds_to_micros(0.0000006), Some(1));
        assert_eq!(seconds_to_micros(1.5), Some(1_500_000));
        assert_eq!(seconds_to_micros(0.0), Some(0));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert_eq!(seconds_to_micros(-0.5), None);
        assert_eq!(seconds_to_micros(f64::NAN), None);
        assert_eq!(seconds_to_micros(f64::INFINITY), None);
        assert_eq!(seconds_to_micros(1e300), None);
    }
}
