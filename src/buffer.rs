//! `core.buffer`: evbuffer userdata. A buffer is owned (from `buffer.new()`, freed by close/gc)
//! or lent by a bufferevent (never freed by the buffer object, detached when the bufferevent goes).

use std::ffi::{c_int, CStr};

use mlua::ffi::*;

use crate::api::{self, lua_function, push_bytes, Failure, LuaResult};
use crate::ffi::{self, evbuffer};

pub const BUFFER_TYPE: &CStr = c"luaevent.core.buffer";

/// The Lua userdata. `raw` is null once closed.
struct BufferUserdata {
    raw: *mut evbuffer,
    /// False for a buffer lent by a bufferevent, which the bufferevent frees, not us.
    owned: bool,
}

impl BufferUserdata {
    /// Releases an owned evbuffer now; only detaches a lent one. Idempotent.
    unsafe fn close(&mut self) {
        if !self.raw.is_null() && self.owned {
            // SAFETY: an owned buffer, freed exactly once since `raw` is cleared right after.
            unsafe { ffi::evbuffer_free(self.raw) };
        }
        self.raw = std::ptr::null_mut();
    }
}

/// Pushes a buffer object lending `raw`, which belongs to a bufferevent. The bufferevent calls
/// [`detach_borrowed`] on it when it frees `raw`.
pub unsafe fn push_borrowed(lua: *mut lua_State, raw: *mut evbuffer) {
    // SAFETY: the metatable was registered when the module was opened.
    unsafe { api::push_userdata(lua, BUFFER_TYPE, BufferUserdata { raw, owned: false }, false) };
}

/// Detaches the lent buffer object at `index` (nothing happens for any other value): from now
/// on it reports "closed".
pub unsafe fn detach_borrowed(lua: *mut lua_State, index: c_int) {
    // SAFETY: the metatable check guarantees the layout.
    unsafe {
        if let Some(buffer) = api::test_userdata::<BufferUserdata>(lua, index, BUFFER_TYPE) {
            if !(*buffer).owned {
                (*buffer).raw = std::ptr::null_mut();
            }
        }
    }
}

/// What libevent refusing to change a buffer means: out of memory, or an end of a bufferevent's
/// buffer that only the bufferevent may change.
fn refused(what: &str) -> Failure {
    Failure::Message(format!(
        "luaevent: libevent refused to {what} (a bufferevent's input buffer takes data only from its socket, \
         and its output buffer gives data only to it)"
    ))
}

/// The open evbuffer behind the buffer argument at `index`.
unsafe fn check_buffer(lua: *mut lua_State, index: c_int) -> LuaResult<*mut evbuffer> {
    // SAFETY: check_userdata verifies the metatable, so the memory is a BufferUserdata.
    unsafe {
        let userdata = api::check_userdata::<BufferUserdata>(lua, index, BUFFER_TYPE, "buffer")?;
        open_buffer(index, (*userdata).raw)
    }
}

fn open_buffer(index: c_int, raw: *mut evbuffer) -> LuaResult<*mut evbuffer> {
    if raw.is_null() {
        Err(Failure::Arg(index, "attempt to use a closed buffer".to_owned()))
    } else {
        Ok(raw)
    }
}

unsafe fn new(lua: *mut lua_State) -> LuaResult<c_int> {
    let raw = ffi::evbuffer_new();
    if raw.is_null() {
        return Err(Failure::Message("luaevent: could not allocate a buffer".to_owned()));
    }
    // SAFETY: the metatable was registered when the module was opened.
    unsafe { api::push_userdata(lua, BUFFER_TYPE, BufferUserdata { raw, owned: true }, false) };
    Ok(1)
}

/// `buf:add(...)`: every argument is checked before anything is added, so a bad one adds nothing.
unsafe fn add(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: stack access on the calling state; strings are converted from copies of the
    // arguments so the caller's values are left untouched.
    unsafe {
        let target = check_buffer(lua, 1)?;
        let top = lua_gettop(lua);
        if top < 2 {
            return Err(Failure::Arg(2, "string, number or buffer expected, got no value".to_owned()));
        }
        for index in 2..=top {
            match lua_type(lua, index) {
                LUA_TSTRING | LUA_TNUMBER => {}
                _ => {
                    let Some(source) = api::test_userdata::<BufferUserdata>(lua, index, BUFFER_TYPE) else {
                        return Err(api::expected(lua, index, "string, number or buffer"));
                    };
                    let source = open_buffer(index, (*source).raw)?;
                    if source == target {
                        return Err(Failure::Arg(index, "cannot add a buffer to itself".to_owned()));
                    }
                }
            }
        }
        let before = ffi::evbuffer_length(target);
        for index in 2..=top {
            let status = if lua_type(lua, index) == LUA_TUSERDATA {
                let source = api::test_userdata::<BufferUserdata>(lua, index, BUFFER_TYPE).map_or(std::ptr::null_mut(), |s| (*s).raw);
                ffi::evbuffer_add_buffer(target, source)
            } else {
                lua_pushvalue(lua, index);
                let mut length = 0usize;
                let data = lua_tolstring(lua, -1, &mut length);
                let status = ffi::evbuffer_add(target, std::slice::from_raw_parts(data as *const u8, length));
                lua_pop(lua, 1);
                status
            };
            if status != 0 {
                return Err(refused("add to the buffer"));
            }
        }
        let added = ffi::evbuffer_length(target) - before;
        lua_pushinteger(lua, added as lua_Integer);
    }
    Ok(1)
}

unsafe fn length(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the buffer is checked open.
    unsafe {
        let raw = check_buffer(lua, 1)?;
        lua_pushinteger(lua, ffi::evbuffer_length(raw) as lua_Integer);
    }
    Ok(1)
}

/// The byte window `get_data` reads: (offset, length), both within `total`.
///
/// `begin` is 1-based, negative counts from the end (-1 is the last byte); a negative `len`
/// means "to the end". Everything is clamped to the buffer.
fn window(total: usize, begin: Option<i64>, len: i64) -> (usize, usize) {
    let total_i = total as i64;
    let start = match begin {
        None => 0,
        Some(b) if b < 0 => (total_i + b).max(0),
        Some(b) => (b - 1).max(0),
    }
    .min(total_i);
    let wanted = if len < 0 { total_i } else { len };
    let count = wanted.min(total_i - start);
    (start as usize, count as usize)
}

unsafe fn get_data(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the buffer is checked open; the copy stays within its length.
    unsafe {
        let raw = check_buffer(lua, 1)?;
        let total = ffi::evbuffer_length(raw);
        let (offset, count) = match lua_gettop(lua) {
            1 => (0, total),
            2 => window(total, None, api::check_integer(lua, 2)?),
            _ => {
                let begin = api::check_integer(lua, 2)?;
                window(total, Some(begin), api::check_integer(lua, 3)?)
            }
        };
        // Straight from libevent's memory into the Lua string: the one copy Lua forces.
        push_bytes(lua, ffi::evbuffer_front(raw, offset + count).get(offset..).unwrap_or_default());
    }
    Ok(1)
}

unsafe fn readline(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the buffer is checked open.
    unsafe {
        let raw = check_buffer(lua, 1)?;
        let Some((line, eol)) = ffi::evbuffer_find_line(raw) else {
            return Ok(0);
        };
        push_bytes(lua, ffi::evbuffer_front(raw, line));
        if ffi::evbuffer_drain(raw, line + eol) != 0 {
            return Err(refused("consume a line"));
        }
        Ok(1)
    }
}

unsafe fn drain(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the buffer is checked open.
    unsafe {
        let raw = check_buffer(lua, 1)?;
        let count = api::check_integer(lua, 2)?;
        // Negative means everything; libevent clamps a count past the end to the length.
        if ffi::evbuffer_drain(raw, usize::try_from(count).unwrap_or(usize::MAX)) != 0 {
            return Err(refused("drain the buffer"));
        }
    }
    Ok(0)
}

unsafe fn read(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the buffer is checked open; a bad fd only makes read(2) fail with -1.
    unsafe {
        let raw = check_buffer(lua, 1)?;
        let fd = crate::fd::check_fd(lua, 2)?;
        let len = api::check_integer(lua, 3)?;
        let len = if len < 0 { -1 } else { len.min(c_int::MAX as i64) as c_int };
        let result = ffi::evbuffer_read(raw, fd, len);
        lua_pushinteger(lua, result as lua_Integer);
    }
    Ok(1)
}

unsafe fn write(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the buffer is checked open; a bad fd only makes write(2) fail with -1.
    unsafe {
        let raw = check_buffer(lua, 1)?;
        let fd = crate::fd::check_fd(lua, 2)?;
        let result = ffi::evbuffer_write(raw, fd);
        lua_pushinteger(lua, result as lua_Integer);
    }
    Ok(1)
}

unsafe fn close(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the userdata is checked against our metatable.
    unsafe {
        let userdata = api::check_userdata::<BufferUserdata>(lua, 1, BUFFER_TYPE, "buffer")?;
        (*userdata).close();
    }
    Ok(0)
}

unsafe fn collect(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: as for close, but silent on foreign values (only Lua calls __gc).
    unsafe {
        if let Some(userdata) = api::test_userdata::<BufferUserdata>(lua, 1, BUFFER_TYPE) {
            (*userdata).close();
        }
    }
    Ok(0)
}

lua_function!(lua_new => new);
lua_function!(lua_add => add);
lua_function!(lua_length => length);
lua_function!(lua_get_data => get_data);
lua_function!(lua_readline => readline);
lua_function!(lua_drain => drain);
lua_function!(lua_read => read);
lua_function!(lua_write => write);
lua_function!(lua_close => close);
lua_function!(lua_collect => collect);

/// Registers the buffer metatable.
pub unsafe fn register(lua: *mut lua_State) {
    // SAFETY: table construction during luaopen.
    unsafe {
        api::register_metatable(
            lua,
            BUFFER_TYPE,
            &[
                (c"add", lua_add),
                (c"length", lua_length),
                (c"get_data", lua_get_data),
                (c"readline", lua_readline),
                (c"drain", lua_drain),
                (c"read", lua_read),
                (c"write", lua_write),
                (c"close", lua_close),
            ],
            &[(c"__gc", lua_collect), (c"__len", lua_length), (c"__tostring", lua_get_data)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn whole_and_prefix_windows() {
        assert_eq!(window(10, None, 10), (0, 10));
        assert_eq!(window(10, None, 3), (0, 3));
        assert_eq!(window(10, None, 50), (0, 10));
        assert_eq!(window(10, None, -1), (0, 10));
    }

    #[test]
    fn begin_is_one_based_and_negative_counts_from_the_end() {
        assert_eq!(window(10, Some(1), 2), (0, 2));
        assert_eq!(window(10, Some(3), -1), (2, 8));
        assert_eq!(window(10, Some(-1), 1), (9, 1));
        assert_eq!(window(10, Some(-2), 5), (8, 2));
    }

    #[test]
    fn windows_are_clamped_at_both_ends() {
        assert_eq!(window(10, Some(-100), 3), (0, 3));
        assert_eq!(window(10, Some(0), 3), (0, 3));
        assert_eq!(window(10, Some(11), 3), (10, 0));
        assert_eq!(window(10, Some(99), -1), (10, 0));
        assert_eq!(window(0, Some(1), 5), (0, 0));
    }
}
