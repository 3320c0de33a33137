//! Raw helpers shared by the files of this layer. Nothing outside `lua/` sees them.
//!
//! Every function here is a short sequence of Lua C API calls. Each says whether it can raise
//! (allocate): those may only be called where a Lua error is allowed, which means inside a
//! protected runner (protected.rs), inside a message handler, or by the entry after the body
//! has returned.

use std::ffi::{c_char, c_int, CStr};

pub use mlua::ffi::*;

/// Pushes a byte string. Raises when out of memory.
///
/// # Safety
/// A valid state with a free stack slot, where a Lua error is allowed.
pub unsafe fn push_bytes(state: *mut lua_State, bytes: &[u8]) {
    // SAFETY: per the contract; lua_pushlstring copies the bytes.
    unsafe { lua_pushlstring(state, bytes.as_ptr() as *const c_char, bytes.len()) };
}

/// The Lua type name of a value ("no value" for an absent argument). Never raises.
///
/// # Safety
/// A valid state; any index.
pub unsafe fn type_name(state: *mut lua_State, index: c_int) -> &'static str {
    // SAFETY: lua_typename returns a static string for every type tag, LUA_TNONE included.
    let name = unsafe { CStr::from_ptr(lua_typename(state, lua_type(state, index))) };
    name.to_str().unwrap_or("?")
}

/// Turns the error value on top of the stack into a string in place, without running Lua
/// code: strings stay, numbers are converted, anything else becomes
/// "(error object is a X value)". Raises when out of memory.
///
/// # Safety
/// A value on top of the stack, where a Lua error is allowed.
pub unsafe fn error_value_to_string(state: *mut lua_State) {
    // SAFETY: per the contract.
    unsafe {
        match lua_type(state, -1) {
            LUA_TSTRING => {}
            LUA_TNUMBER => {
                lua_tolstring(state, -1, std::ptr::null_mut());
            }
            _ => {
                let name = lua_typename(state, lua_type(state, -1));
                lua_pushfstring(state, c"(error object is a %s value)".as_ptr(), name);
                lua_remove(state, -2);
            }
        }
    }
}

/// Like [`error_value_to_string`], but gives an object with a `__tostring` metamethod its
/// say, as the standalone interpreter does. Runs Lua code: raises whatever `__tostring` raises.
///
/// # Safety
/// As for [`error_value_to_string`].
pub unsafe fn describe_error_value(state: *mut lua_State) {
    // SAFETY: per the contract; luaL_tolstring calls __tostring, and a Lua error is allowed.
    unsafe {
        if matches!(lua_type(state, -1), LUA_TTABLE | LUA_TUSERDATA)
            && luaL_getmetafield(state, -1, c"__tostring".as_ptr()) != LUA_TNIL
        {
            lua_pop(state, 1);
            luaL_tolstring(state, -1, std::ptr::null_mut());
            lua_remove(state, -2);
            if lua_type(state, -1) == LUA_TSTRING {
                return;
            }
        }
        error_value_to_string(state);
    }
}

/// Pushes the light-userdata key `key` and leaves `registry[key]` on top. Never raises.
///
/// # Safety
/// A valid state with a free stack slot.
pub unsafe fn push_registry_entry(state: *mut lua_State, key: *const u8) {
    // SAFETY: a raw read of the registry with a light-userdata key: no metamethod, no allocation.
    unsafe {
        lua_pushlightuserdata(state, key as *mut std::ffi::c_void);
        lua_rawget(state, LUA_REGISTRYINDEX);
    }
}

/// `registry[key] = value on top` (popped). Raises when out of memory (a new registry key).
///
/// # Safety
/// A valid state with the value on top and a free stack slot, where a Lua error is allowed.
pub unsafe fn set_registry_entry(state: *mut lua_State, key: *const u8) {
    // SAFETY: per the contract.
    unsafe {
        lua_pushlightuserdata(state, key as *mut std::ffi::c_void);
        lua_insert(state, -2);
        lua_rawset(state, LUA_REGISTRYINDEX);
    }
}

/// The value at `index` as a number, if it is one or a numeric string. Never raises: a
/// string is converted into a new number, not in place.
///
/// # Safety
/// A valid state; any index.
pub unsafe fn to_number(state: *mut lua_State, index: c_int) -> Option<f64> {
    // SAFETY: lua_tonumber / lua_tonumberx / lua_isnumber never raise. On 5.1 and LuaJIT,
    // lua_tonumberx is a compatibility shim making two calls; one is enough in the common case.
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

/// The value at `index` as an integer, if it is an integral number or a numeric string that
/// reads as one. Never raises.
///
/// # Safety
/// A valid state; any index.
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

/// The longest UTF-8 prefix of `bytes` (messages are text; no allocation).
pub fn utf8_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default(),
    }
}

/// `value` as an i64 when it is integral and in range.
#[inline]
pub fn number_to_integer(value: f64) -> Option<i64> {
    // 2^63 is exactly representable; the range check excludes NaN and infinities too. The
    // round trip through i64 tests integrality without a libm call.
    const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
    let in_range = (-TWO_TO_63..TWO_TO_63).contains(&value);
    (in_range && (value as i64) as f64 == value).then_some(value as i64)
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
