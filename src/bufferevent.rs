//! `core.bufferevent`: buffered sockets. The seed's API, working on the base it was given.
//!
//! The userdata's user value is a table holding what Lua must keep alive for it: the three
//! callbacks, the socket object and the two buffer objects it lends out. Keeping them there
//! rather than in the registry lets a bufferevent whose callbacks refer to it still be collected.
//! Callbacks find the userdata again through a weak registry table keyed by the state pointer.

use std::cell::Cell;
use std::ffi::{c_int, c_short, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use mlua::ffi::*;

use crate::api::{self, lua_function, push_bytes, Failure, LuaResult};
use crate::base::{check_base, latest_base, BaseShared, BASE_TYPE};
use crate::buffer::{push_borrowed, Lender};
use crate::ffi::{self, bufferevent, EVBUFFER_READ, EVBUFFER_WRITE, EV_READ, EV_WRITE};

pub const BUFFEREVENT_TYPE: &CStr = c"luaevent.core.bufferevent";

/// Registry key of the weak-valued table: lightuserdata(state) -> bufferevent userdata.
const OBJECTS_KEY: &CStr = c"luaevent.core.bufferevents";

/// Slots of the user value table.
const SLOT_READ: lua_Integer = 1;
const SLOT_WRITE: lua_Integer = 2;
const SLOT_ERROR: lua_Integer = 3;
const SLOT_SOCKET: lua_Integer = 4;
const SLOT_INPUT: lua_Integer = 5;
const SLOT_OUTPUT: lua_Integer = 6;

/// libevent's callback argument. Outlives the userdata while one of its callbacks runs
/// (`running` / `orphaned`, as for events).
struct BufferEventState {
    /// Null once freed.
    raw: *mut bufferevent,
    base: Rc<BaseShared>,
    /// Tells the lent buffer objects whether their evbuffers still exist.
    lender: Lender,
    running: u32,
    orphaned: bool,
}

impl BufferEventState {
    /// Frees the bufferevent now (idempotent); its buffers become "closed".
    fn close(&mut self) {
        if !self.raw.is_null() {
            self.lender.set(false);
            // SAFETY: ours, freed exactly once since `raw` is cleared right after.
            unsafe { ffi::bufferevent_free(self.raw) };
            self.raw = ptr::null_mut();
        }
    }
}

impl Drop for BufferEventState {
    fn drop(&mut self) {
        self.close();
    }
}

struct BufferEventUserdata {
    /// Null once collected.
    state: *mut BufferEventState,
}

/// The open bufferevent behind the argument at `index`.
unsafe fn check_bufferevent(lua: *mut lua_State, index: c_int) -> LuaResult<*mut BufferEventState> {
    // SAFETY: the metatable check guarantees the layout; a non-null state is alive.
    unsafe {
        let userdata = api::check_userdata::<BufferEventUserdata>(lua, index, BUFFEREVENT_TYPE, "bufferevent")?;
        let state = (*userdata).state;
        if state.is_null() || (*state).raw.is_null() {
            return Err(Failure::Arg(index, "attempt to use a closed bufferevent".to_owned()));
        }
        Ok(state)
    }
}

/// Pushes the weak lookup table, creating it on first use.
unsafe fn push_objects_table(lua: *mut lua_State) {
    // SAFETY: raw table operations on a valid state.
    unsafe {
        lua_getfield(lua, LUA_REGISTRYINDEX, OBJECTS_KEY.as_ptr());
        if lua_type(lua, -1) == LUA_TTABLE {
            return;
        }
        lua_pop(lua, 1);
        lua_createtable(lua, 0, 0);
        lua_createtable(lua, 0, 1);
        push_bytes(lua, b"v");
        lua_setfield(lua, -2, c"__mode".as_ptr());
        lua_setmetatable(lua, -2);
        lua_pushvalue(lua, -1);
        lua_setfield(lua, LUA_REGISTRYINDEX, OBJECTS_KEY.as_ptr());
    }
}

/// `new([base,] fd, readcb, writecb, errorcb)`.
unsafe fn new(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: argument checks first, then construction; see the comments for the pointers.
    unsafe {
        let (base, first) = if api::test_userdata::<c_void>(lua, 1, BASE_TYPE).is_some() {
            (check_base(lua, 1)?, 2)
        } else {
            let base = latest_base(lua).ok_or_else(|| {
                Failure::Message(
                    "bufferevent.new: no base given and no event base made by core.new() is alive".to_owned(),
                )
            })?;
            (base, 1)
        };
        let fd = crate::fd::check_fd(lua, first)?;
        if !ffi::fd_is_open(fd) {
            return Err(Failure::Arg(first, format!("bad file descriptor ({fd} is not open)")));
        }
        for index in [first + 1, first + 2] {
            if lua_isnoneornil(lua, index) == 0 && !api::is_callable(lua, index) {
                return Err(api::expected(lua, index, "function or nil"));
            }
        }
        if !api::is_callable(lua, first + 3) {
            return Err(api::expected(lua, first + 3, "function"));
        }

        let raw = ffi::bufferevent_socket_new(base.raw, fd);
        if raw.is_null() {
            return Err(Failure::Message(format!("bufferevent.new: libevent could not create a bufferevent on fd {fd}")));
        }
        let lender: Lender = Rc::new(Cell::new(true));
        let state = Box::into_raw(Box::new(BufferEventState {
            raw,
            base,
            lender: lender.clone(),
            running: 0,
            orphaned: false,
        }));
        // The state is the callback argument; it is freed only after the bufferevent is.
        ffi::bufferevent_setcb(raw, on_read, on_write, on_event, state as *mut c_void);

        api::push_userdata(lua, BUFFEREVENT_TYPE, BufferEventUserdata { state }, true);
        let object = lua_gettop(lua);
        lua_createtable(lua, 6, 0);
        for (slot, index) in [(SLOT_READ, first + 1), (SLOT_WRITE, first + 2), (SLOT_ERROR, first + 3)] {
            lua_pushvalue(lua, index);
            lua_rawseti(lua, -2, slot);
        }
        if matches!(lua_type(lua, first), LUA_TUSERDATA | LUA_TTABLE) {
            lua_pushvalue(lua, first);
            lua_rawseti(lua, -2, SLOT_SOCKET);
        }
        push_borrowed(lua, ffi::bufferevent_input(raw), lender.clone());
        lua_rawseti(lua, -2, SLOT_INPUT);
        push_borrowed(lua, ffi::bufferevent_output(raw), lender);
        lua_rawseti(lua, -2, SLOT_OUTPUT);
        lua_setuservalue(lua, object);

        push_objects_table(lua);
        lua_pushlightuserdata(lua, state as *mut c_void);
        lua_pushvalue(lua, object);
        lua_rawset(lua, -3);
        lua_pop(lua, 1);
    }
    Ok(1)
}

/// How much a read callback takes from the socket beyond libevent's own 4 KiB read.
const READ_AHEAD: usize = 60 * 1024;

unsafe extern "C" fn on_read(bev: *mut bufferevent, arg: *mut c_void) {
    // SAFETY: `arg` is the state registered with this bufferevent (see dispatch); `bev` is live
    // while libevent runs its callback.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        ffi::bufferevent_read_ahead(bev, READ_AHEAD);
        dispatch(arg as *mut BufferEventState, SLOT_READ, EVBUFFER_READ)
    }));
}

unsafe extern "C" fn on_write(_bev: *mut bufferevent, arg: *mut c_void) {
    // SAFETY: as for on_read.
    let _ =
        catch_unwind(AssertUnwindSafe(|| unsafe { dispatch(arg as *mut BufferEventState, SLOT_WRITE, EVBUFFER_WRITE) }));
}

unsafe extern "C" fn on_event(_bev: *mut bufferevent, what: c_short, arg: *mut c_void) {
    // SAFETY: as for on_read.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { dispatch(arg as *mut BufferEventState, SLOT_ERROR, what) }));
}

/// Calls the Lua callback in `slot` as `callback(bev, what)`.
unsafe fn dispatch(state: *mut BufferEventState, slot: lua_Integer, what: c_short) {
    // SAFETY: libevent calls back only while the bufferevent exists, and the state outlives it.
    // During the Lua call `running` keeps the state alive even if the userdata is collected;
    // it is freed here afterwards in that case. Lua values are found through the stack only.
    unsafe {
        let base = (*state).base.clone();
        let lua = base.loop_state.get();
        if lua.is_null() || (*state).raw.is_null() || lua_checkstack(lua, 6) == 0 {
            return;
        }
        let top = lua_gettop(lua);
        push_objects_table(lua);
        lua_pushlightuserdata(lua, state as *mut c_void);
        lua_rawget(lua, -2);
        lua_remove(lua, -2);
        // Being finalized: the weak entry is already gone, and so is the callback's purpose.
        if lua_type(lua, -1) != LUA_TUSERDATA {
            lua_settop(lua, top);
            return;
        }
        lua_getuservalue(lua, -1);
        lua_rawgeti(lua, -1, slot);
        if lua_isnil(lua, -1) != 0 {
            lua_settop(lua, top);
            return;
        }
        lua_replace(lua, -2); // callback where the user value table was
        lua_insert(lua, -2); // callback, bev
        lua_pushinteger(lua, what as lua_Integer);
        (*state).running += 1;
        let status = lua_pcall(lua, 2, 0, base.handler_index.get());
        (*state).running -= 1;
        if status != LUA_OK {
            base.fail(api::pop_bytes(lua));
        }
        lua_settop(lua, top);
        if (*state).orphaned && (*state).running == 0 {
            drop(Box::from_raw(state));
        }
    }
}

/// Pushes slot `slot` of the user value of the bufferevent at index 1.
unsafe fn push_slot(lua: *mut lua_State, slot: lua_Integer) {
    // SAFETY: index 1 was checked to be an open bufferevent, whose user value is our table.
    unsafe {
        lua_getuservalue(lua, 1);
        lua_rawgeti(lua, -1, slot);
        lua_remove(lua, -2);
    }
}

unsafe fn get_read(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: checked open first.
    unsafe {
        check_bufferevent(lua, 1)?;
        push_slot(lua, SLOT_INPUT);
    }
    Ok(1)
}

unsafe fn get_write(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: checked open first.
    unsafe {
        check_bufferevent(lua, 1)?;
        push_slot(lua, SLOT_OUTPUT);
    }
    Ok(1)
}

/// A byte count argument for watermarks: an integer >= 0 (nil counts as 0).
unsafe fn check_size(lua: *mut lua_State, index: c_int) -> LuaResult<usize> {
    // SAFETY: argument access on the calling state.
    unsafe {
        if lua_isnoneornil(lua, index) != 0 {
            return Ok(0);
        }
        let value = api::check_integer(lua, index)?;
        usize::try_from(value).map_err(|_| Failure::Arg(index, format!("byte count must be >= 0, got {value}")))
    }
}

unsafe fn set_watermarks(lua: *mut lua_State, direction: c_short) -> LuaResult<c_int> {
    // SAFETY: checked open first.
    unsafe {
        let state = check_bufferevent(lua, 1)?;
        let low = check_size(lua, 2)?;
        let high = check_size(lua, 3)?;
        ffi::bufferevent_setwatermark((*state).raw, direction, low, high);
    }
    Ok(0)
}

unsafe fn set_read_watermarks(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: forwarded.
    unsafe { set_watermarks(lua, EV_READ) }
}

unsafe fn set_write_watermarks(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: forwarded.
    unsafe { set_watermarks(lua, EV_WRITE) }
}

/// A bufferevent timeout: nil or 0 means none.
unsafe fn optional_timeout(lua: *mut lua_State, index: c_int) -> LuaResult<Option<ffi::Micros>> {
    // SAFETY: argument access on the calling state.
    unsafe {
        if lua_isnoneornil(lua, index) != 0 {
            return Ok(None);
        }
        Ok(Some(api::check_timeout(lua, index)?).filter(|&micros| micros > 0))
    }
}

unsafe fn set_timeouts(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: checked open first.
    unsafe {
        let state = check_bufferevent(lua, 1)?;
        let read = optional_timeout(lua, 2)?;
        let write = optional_timeout(lua, 3)?;
        ffi::bufferevent_set_timeouts((*state).raw, read, write);
    }
    Ok(0)
}

/// The mask argument of enable/disable: EV_READ, EV_WRITE or both.
unsafe fn check_direction(lua: *mut lua_State, index: c_int) -> LuaResult<c_short> {
    // SAFETY: argument access on the calling state.
    let mask = unsafe { api::check_integer(lua, index)? };
    if mask <= 0 || mask & !((EV_READ | EV_WRITE) as i64) != 0 {
        return Err(Failure::Arg(index, format!("EV_READ, EV_WRITE or both expected, got {mask}")));
    }
    Ok(mask as c_short)
}

unsafe fn enable(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: checked open first.
    unsafe {
        let state = check_bufferevent(lua, 1)?;
        let mask = check_direction(lua, 2)?;
        lua_pushinteger(lua, ffi::bufferevent_enable((*state).raw, mask) as lua_Integer);
    }
    Ok(1)
}

unsafe fn disable(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: checked open first.
    unsafe {
        let state = check_bufferevent(lua, 1)?;
        let mask = check_direction(lua, 2)?;
        lua_pushinteger(lua, ffi::bufferevent_disable((*state).raw, mask) as lua_Integer);
    }
    Ok(1)
}

unsafe fn close(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the metatable check guarantees the layout; a non-null state is alive.
    unsafe {
        let userdata = api::check_userdata::<BufferEventUserdata>(lua, 1, BUFFEREVENT_TYPE, "bufferevent")?;
        if let Some(state) = (*userdata).state.as_mut() {
            state.close();
        }
    }
    Ok(0)
}

unsafe fn collect(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: as for close; the state is freed now unless one of its callbacks is running.
    unsafe {
        if let Some(userdata) = api::test_userdata::<BufferEventUserdata>(lua, 1, BUFFEREVENT_TYPE) {
            let state = (*userdata).state;
            if !state.is_null() {
                (*userdata).state = ptr::null_mut();
                (*state).close();
                if (*state).running > 0 {
                    (*state).orphaned = true;
                } else {
                    drop(Box::from_raw(state));
                }
            }
        }
    }
    Ok(0)
}

lua_function!(lua_new => new);
lua_function!(lua_get_read => get_read);
lua_function!(lua_get_write => get_write);
lua_function!(lua_set_read_watermarks => set_read_watermarks);
lua_function!(lua_set_write_watermarks => set_write_watermarks);
lua_function!(lua_set_timeouts => set_timeouts);
lua_function!(lua_enable => enable);
lua_function!(lua_disable => disable);
lua_function!(lua_close => close);
lua_function!(lua_collect => collect);

/// Registers the bufferevent metatable.
pub unsafe fn register(lua: *mut lua_State) {
    // SAFETY: table construction during luaopen.
    unsafe {
        api::register_metatable(
            lua,
            BUFFEREVENT_TYPE,
            &[
                (c"get_read", lua_get_read),
                (c"get_write", lua_get_write),
                (c"set_read_watermarks", lua_set_read_watermarks),
                (c"set_write_watermarks", lua_set_write_watermarks),
                (c"set_timeouts", lua_set_timeouts),
                (c"enable", lua_enable),
                (c"disable", lua_disable),
                (c"close", lua_close),
            ],
            &[(c"__gc", lua_collect)],
        );
    }
}
