//! `core.bufferevent`: buffered sockets. The seed's API, working on the base it was given.
//!
//! The userdata's user value is a table holding what Lua must keep alive for it: the three
//! callbacks, the socket object and the two buffer objects it lends out. Keeping them there
//! rather than in the registry lets a bufferevent whose callbacks refer to it still be collected.
//! Callbacks find the userdata again through a weak registry table keyed by its address, and
//! call the Lua function with it on the stack: the object cannot be collected while one of its
//! callbacks runs, so its memory (libevent's callback argument) outlives every callback.

use std::ffi::{c_int, c_short, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use mlua::ffi::*;

use crate::api::{self, lua_function, push_bytes, Failure, LuaResult};
use crate::base::{check_base, latest_base, BaseShared, BASE_TYPE};
use crate::buffer::{detach_borrowed, push_borrowed};
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

/// The Lua userdata; its address is libevent's callback argument.
struct BufferEventUserdata {
    /// Null once freed.
    raw: *mut bufferevent,
    /// Keeps the libevent base alive as long as the bufferevent; `None` once collected.
    base: Option<Rc<BaseShared>>,
    /// Reading is disabled by the module, not by Lua: the read callback left the input at the
    /// read high watermark without taking anything from it (see `park_if_stuck`).
    read_parked: bool,
    /// The input buffer's change callback that ends the parking; made on first parking.
    drain_watch: *mut ffi::evbuffer_cb_entry,
}

/// Frees the bufferevent at stack index `index` now, and detaches the buffer objects it lent
/// (they then report "closed"). Idempotent.
unsafe fn close_bufferevent(lua: *mut lua_State, index: c_int, bev: *mut BufferEventUserdata) {
    // SAFETY: `bev` is the userdata at `index`; its user value is the table made by `new`.
    // libevent holds its own reference while one of its callbacks runs, so freeing from a
    // callback is safe, and no callback fires after bufferevent_free.
    unsafe {
        if (*bev).raw.is_null() {
            return;
        }
        if !(*bev).drain_watch.is_null() {
            ffi::evbuffer_remove_callback(ffi::bufferevent_input((*bev).raw), (*bev).drain_watch);
            (*bev).drain_watch = ptr::null_mut();
        }
        (*bev).read_parked = false;
        ffi::bufferevent_free((*bev).raw);
        (*bev).raw = ptr::null_mut();
        lua_getuservalue(lua, index);
        for slot in [SLOT_INPUT, SLOT_OUTPUT] {
            lua_rawgeti(lua, -1, slot);
            detach_borrowed(lua, -1);
            lua_pop(lua, 1);
        }
        lua_pop(lua, 1);
    }
}

/// The open bufferevent behind the argument at `index`.
unsafe fn check_bufferevent(lua: *mut lua_State, index: c_int) -> LuaResult<*mut BufferEventUserdata> {
    // SAFETY: the metatable check guarantees the layout.
    unsafe {
        let bev = api::check_userdata::<BufferEventUserdata>(lua, index, BUFFEREVENT_TYPE, "bufferevent")?;
        if (*bev).raw.is_null() {
            return Err(Failure::Arg(index, "attempt to use a closed bufferevent".to_owned()));
        }
        Ok(bev)
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
        if let Some(why) = ffi::unwatchable_fd(fd) {
            return Err(Failure::Arg(first, format!("bad file descriptor ({fd} {why})")));
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
        let bev = api::push_userdata(lua, BUFFEREVENT_TYPE, BufferEventUserdata { raw, base: Some(base), read_parked: false, drain_watch: ptr::null_mut() }, true);
        let object = lua_gettop(lua);
        // The userdata's address is the callback argument: Lua never moves a userdata, and the
        // bufferevent is freed (close / __gc) before the memory can be.
        ffi::bufferevent_setcb(raw, on_read, on_write, on_event, bev as *mut c_void);
        lua_createtable(lua, 6, 0);
        for (slot, index) in [(SLOT_READ, first + 1), (SLOT_WRITE, first + 2), (SLOT_ERROR, first + 3)] {
            lua_pushvalue(lua, index);
            lua_rawseti(lua, -2, slot);
        }
        if matches!(lua_type(lua, first), LUA_TUSERDATA | LUA_TTABLE) {
            lua_pushvalue(lua, first);
            lua_rawseti(lua, -2, SLOT_SOCKET);
        }
        // SLOT_INPUT and SLOT_OUTPUT are filled on first use (see push_buffer): an idle
        // connection whose buffers Lua never asked for costs no buffer objects.
        lua_setuservalue(lua, object);

        push_objects_table(lua);
        lua_pushlightuserdata(lua, bev as *mut c_void);
        lua_pushvalue(lua, object);
        lua_rawset(lua, -3);
        lua_pop(lua, 1);
    }
    Ok(1)
}

/// How much a read callback takes from the socket beyond libevent's own 4 KiB read.
const READ_AHEAD: usize = 60 * 1024;

unsafe extern "C" fn on_read(bev: *mut bufferevent, arg: *mut c_void) {
    // SAFETY: `arg` is the userdata registered with this bufferevent (see dispatch); `bev` is live
    // while libevent runs its callback. After the Lua call the userdata is touched only once
    // is_live_userdata has found it uncollected (no Lua code runs in between); its `raw` is
    // then still `bev` unless Lua closed it.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        // A deferred read callback can outlive a disable; Lua asked for no more.
        if ffi::bufferevent_enabled(bev) & EV_READ == 0 {
            return;
        }
        ffi::bufferevent_read_ahead(bev, READ_AHEAD);
        let held_before = ffi::evbuffer_length(ffi::bufferevent_input(bev));
        let userdata = arg as *mut BufferEventUserdata;
        let lua = dispatch(userdata, SLOT_READ, EVBUFFER_READ);
        if !lua.is_null()
            && stuck_at_high_watermark(bev, held_before)
            && is_live_userdata(lua, userdata)
            && (*userdata).raw == bev
        {
            park(userdata);
        }
    }));
}

/// After a read callback: whether the input is at the read high watermark, reading is enabled,
/// and the callback took nothing from the input (it held `held_before` bytes before).
///
/// libevent 2.1.12 runs the read callback again after every run that leaves the input at the
/// high watermark, without polling (libevent issue #891): a callback that waits for something
/// else to drain the input would spin the loop at full CPU, so such a bufferevent is parked. A
/// callback that did take data is left to libevent, which calls it again until it stops taking
/// or the input falls below.
unsafe fn stuck_at_high_watermark(raw: *mut bufferevent, held_before: usize) -> bool {
    // SAFETY: `raw` is live during its callback (caller).
    unsafe {
        let high = ffi::bufferevent_read_high_watermark(raw);
        if high == 0 || ffi::bufferevent_enabled(raw) & EV_READ == 0 {
            return false;
        }
        let held = ffi::evbuffer_length(ffi::bufferevent_input(raw));
        held >= high && held >= held_before
    }
}

/// Disables reading until something drains the input (see `on_input_changed`).
unsafe fn park(bev: *mut BufferEventUserdata) {
    // SAFETY: `bev` is an open bufferevent's userdata (caller). The change callback's argument
    // is the userdata, which outlives the entry: close_bufferevent removes it before the free.
    unsafe {
        let raw = (*bev).raw;
        let input = ffi::bufferevent_input(raw);
        if (*bev).drain_watch.is_null() {
            (*bev).drain_watch = ffi::evbuffer_add_callback(input, on_input_changed, bev as *mut c_void);
            if (*bev).drain_watch.is_null() {
                return; // out of memory: better libevent's spinning than a reader never woken
            }
        } else {
            ffi::evbuffer_callback_set_enabled(input, (*bev).drain_watch, true);
        }
        ffi::bufferevent_disable(raw, EV_READ);
        (*bev).read_parked = true;
    }
}

/// Forgets the parking without enabling reading (Lua's disable takes over).
unsafe fn end_parking(bev: *mut BufferEventUserdata) {
    // SAFETY: `bev` is an open, parked bufferevent's userdata (caller), so drain_watch is set.
    unsafe {
        (*bev).read_parked = false;
        ffi::evbuffer_callback_set_enabled(ffi::bufferevent_input((*bev).raw), (*bev).drain_watch, false);
    }
}

/// Ends the parking: reading is enabled again (libevent itself resumes socket reads once the
/// input is below the high watermark). With `retrigger`, a read callback is scheduled if the
/// input is still at the high watermark, so Lua sees the data it has not taken yet.
unsafe fn unpark(bev: *mut BufferEventUserdata, retrigger: bool) {
    // SAFETY: as for end_parking.
    unsafe {
        end_parking(bev);
        let raw = (*bev).raw;
        ffi::bufferevent_enable(raw, EV_READ);
        let high = ffi::bufferevent_read_high_watermark(raw);
        if retrigger && high > 0 && ffi::evbuffer_length(ffi::bufferevent_input(raw)) >= high {
            ffi::bufferevent_trigger_read_later(raw);
        }
    }
}

/// The input buffer's change callback, enabled only while reading is parked: any drain ends it.
unsafe extern "C" fn on_input_changed(_buffer: *mut ffi::evbuffer, info: *const ffi::evbuffer_cb_info, arg: *mut c_void) {
    // SAFETY: `arg` is the userdata of the open bufferevent owning this buffer (the entry is
    // removed before the bufferevent is freed); `info` is valid during the call.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        let bev = arg as *mut BufferEventUserdata;
        if (*bev).read_parked && !(*bev).raw.is_null() && (*info).n_deleted > 0 {
            unpark(bev, true);
        }
    }));
}

unsafe extern "C" fn on_write(_bev: *mut bufferevent, arg: *mut c_void) {
    // SAFETY: as for on_read.
    let _ =
        catch_unwind(AssertUnwindSafe(|| unsafe { dispatch(arg as *mut BufferEventUserdata, SLOT_WRITE, EVBUFFER_WRITE) }));
}

unsafe extern "C" fn on_event(_bev: *mut bufferevent, what: c_short, arg: *mut c_void) {
    // SAFETY: as for on_read.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { dispatch(arg as *mut BufferEventUserdata, SLOT_ERROR, what) }));
}

/// Calls the Lua callback in `slot` as `callback(bev, what)`. Returns the state it ran on, or
/// null when the object could not be reached (not looping, closed, being finalized). The
/// callback may have let the object be collected: see is_live_userdata before touching it.
unsafe fn dispatch(bev: *mut BufferEventUserdata, slot: lua_Integer, what: c_short) -> *mut lua_State {
    // SAFETY: libevent calls back only while the bufferevent exists, and it is freed before the
    // userdata's memory can be. From the lookup on, the userdata is on the Lua stack, so it
    // cannot be collected until the callback is over. The base is reached through a raw
    // pointer: `loop` holds it alive throughout.
    unsafe {
        let Some(base) = (*bev).base.as_ref().map(Rc::as_ptr) else { return ptr::null_mut() };
        let lua = (*base).loop_state.get();
        if lua.is_null() || (*bev).raw.is_null() || lua_checkstack(lua, 6) == 0 {
            return ptr::null_mut();
        }
        let top = lua_gettop(lua);
        // Being finalized: the weak entry is already gone, and so is the callback's purpose.
        if !push_live_userdata(lua, bev) {
            lua_settop(lua, top);
            return ptr::null_mut();
        }
        lua_getuservalue(lua, -1);
        lua_rawgeti(lua, -1, slot);
        if lua_isnil(lua, -1) != 0 {
            lua_settop(lua, top);
            return lua;
        }
        lua_replace(lua, -2); // callback where the user value table was
        lua_insert(lua, -2); // callback, bev: the callback may let its object be collected
        lua_pushinteger(lua, what as lua_Integer);
        if lua_pcall(lua, 2, 0, (*base).handler_index.get()) != LUA_OK {
            (*base).fail(api::pop_bytes(lua));
        }
        lua_settop(lua, top);
        lua
    }
}

/// Pushes what the weak table maps `bev` to, and returns whether it is a userdata: one not
/// collected or queued for finalization, so `bev` is still its memory (a new userdata at the
/// same address would hold another bufferevent: compare `raw`).
unsafe fn push_live_userdata(lua: *mut lua_State, bev: *mut BufferEventUserdata) -> bool {
    // SAFETY: raw table reads on a valid state; `bev` is used only as a key.
    unsafe {
        push_objects_table(lua);
        lua_pushlightuserdata(lua, bev as *mut c_void);
        lua_rawget(lua, -2);
        lua_remove(lua, -2);
        lua_type(lua, -1) == LUA_TUSERDATA
    }
}

/// push_live_userdata without leaving anything on the stack.
unsafe fn is_live_userdata(lua: *mut lua_State, bev: *mut BufferEventUserdata) -> bool {
    // SAFETY: as for push_live_userdata; its one value is popped.
    unsafe {
        let live = push_live_userdata(lua, bev);
        lua_pop(lua, 1);
        live
    }
}

/// Pushes the buffer object for `slot` (SLOT_INPUT or SLOT_OUTPUT) of the open bufferevent at
/// index 1, making it on first use so every later call returns the same object.
unsafe fn push_buffer(lua: *mut lua_State, bev: *mut BufferEventUserdata, slot: lua_Integer) {
    // SAFETY: index 1 was checked to be an open bufferevent, whose user value is our table;
    // the evbuffers belong to its live bufferevent.
    unsafe {
        lua_getuservalue(lua, 1);
        lua_rawgeti(lua, -1, slot);
        if lua_isnil(lua, -1) != 0 {
            lua_pop(lua, 1);
            let raw = if slot == SLOT_INPUT { ffi::bufferevent_input((*bev).raw) } else { ffi::bufferevent_output((*bev).raw) };
            push_borrowed(lua, raw);
            lua_pushvalue(lua, -1);
            lua_rawseti(lua, -3, slot);
        }
        lua_remove(lua, -2);
    }
}

unsafe fn get_read(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: checked open first.
    unsafe {
        let bev = check_bufferevent(lua, 1)?;
        push_buffer(lua, bev, SLOT_INPUT);
    }
    Ok(1)
}

unsafe fn get_write(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: checked open first.
    unsafe {
        let bev = check_bufferevent(lua, 1)?;
        push_buffer(lua, bev, SLOT_OUTPUT);
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
        let bev = check_bufferevent(lua, 1)?;
        let low = check_size(lua, 2)?;
        let high = check_size(lua, 3)?;
        ffi::bufferevent_setwatermark((*bev).raw, direction, low, high);
        // Parked at the old high watermark, but the new one no longer holds the input back.
        if direction == EV_READ
            && (*bev).read_parked
            && (high == 0 || ffi::evbuffer_length(ffi::bufferevent_input((*bev).raw)) < high)
        {
            unpark(bev, false);
        }
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
        let bev = check_bufferevent(lua, 1)?;
        let read = optional_timeout(lua, 2)?;
        let write = optional_timeout(lua, 3)?;
        ffi::bufferevent_set_timeouts((*bev).raw, read, write);
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
        let bev = check_bufferevent(lua, 1)?;
        let mask = check_direction(lua, 2)?;
        if mask & EV_READ != 0 && (*bev).read_parked {
            unpark(bev, false); // Lua's own enable takes over from the module's parking
        }
        lua_pushinteger(lua, ffi::bufferevent_enable((*bev).raw, mask) as lua_Integer);
    }
    Ok(1)
}

unsafe fn disable(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: checked open first.
    unsafe {
        let bev = check_bufferevent(lua, 1)?;
        let mask = check_direction(lua, 2)?;
        if mask & EV_READ != 0 && (*bev).read_parked {
            end_parking(bev);
        }
        lua_pushinteger(lua, ffi::bufferevent_disable((*bev).raw, mask) as lua_Integer);
    }
    Ok(1)
}

unsafe fn close(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the metatable check guarantees the layout.
    unsafe {
        let bev = api::check_userdata::<BufferEventUserdata>(lua, 1, BUFFEREVENT_TYPE, "bufferevent")?;
        close_bufferevent(lua, 1, bev);
    }
    Ok(0)
}

unsafe fn collect(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: as for close. The lent buffer objects are still valid memory here: Lua frees
    // objects reachable from one being finalized only in a later cycle.
    unsafe {
        if let Some(bev) = api::test_userdata::<BufferEventUserdata>(lua, 1, BUFFEREVENT_TYPE) {
            close_bufferevent(lua, 1, bev);
            (*bev).base = None;
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
