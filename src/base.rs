//! The event base: `core.new()`, `loop`, `loopexit`, `method`, `__gc`, and the pending-error slot
//! through which a callback's error reaches `loop`.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, CStr};
use std::ptr;
use std::rc::Rc;

use mlua::ffi::*;

use crate::api::{self, lua_function, push_bytes, Failure, LuaResult};
use crate::ffi::{self, event_base};

pub const BASE_TYPE: &CStr = c"luaevent.core.base";

/// What a base and everything registered on it share. Events and bufferevents hold an `Rc` to
/// it, so the libevent base is freed only after the last of them, whatever order Lua collects in.
pub struct BaseShared {
    pub raw: *mut event_base,
    /// The state that called `loop`, while it runs; callbacks run on it. Null when not looping.
    pub loop_state: Cell<*mut lua_State>,
    /// The first callback error of the current loop, already a string with its traceback.
    pub pending_error: RefCell<Option<Vec<u8>>>,
    /// Stack index, in the frame of the running `loop`, of the message handler that callbacks
    /// run under (0 when not looping). Callbacks run inside that frame, so the index is valid
    /// for them, and the handler is pushed once per loop rather than once per callback.
    pub handler_index: Cell<c_int>,
}

impl BaseShared {
    /// Records a callback's error and asks libevent to stop after the current callback.
    pub fn fail(&self, message: Vec<u8>) {
        let mut pending = self.pending_error.borrow_mut();
        if pending.is_none() {
            *pending = Some(message);
        }
        // SAFETY: `raw` lives as long as `self`.
        unsafe { ffi::base_loopbreak(self.raw) };
    }
}

impl Drop for BaseShared {
    fn drop(&mut self) {
        // SAFETY: the last owner is going away: no event or bufferevent refers to this base any
        // more. A bufferevent freed since the last loop round may still wait for its finalizer,
        // which event_base_free skips (it would leak): one non-blocking round runs it first. No
        // Lua callback can run in it: loop_state is null, and freed bufferevents have no callbacks.
        unsafe {
            ffi::base_run_pending(self.raw);
            ffi::base_free(self.raw);
        }
    }
}

/// The Lua userdata: a handle on the shared base, dropped by `__gc`.
struct BaseUserdata {
    shared: Option<Rc<BaseShared>>,
}

/// The base behind the argument at `index`.
pub unsafe fn check_base(state: *mut lua_State, index: c_int) -> LuaResult<Rc<BaseShared>> {
    // SAFETY: check_userdata verifies the metatable, so the memory is a BaseUserdata.
    unsafe {
        let userdata = api::check_userdata::<BaseUserdata>(state, index, BASE_TYPE, "event base")?;
        (*userdata).shared.clone().ok_or_else(|| Failure::Arg(index, "attempt to use a freed event base".to_owned()))
    }
}

unsafe fn new(state: *mut lua_State) -> LuaResult<c_int> {
    let raw = ffi::base_new();
    if raw.is_null() {
        return Err(Failure::Message(
            "luaevent: could not create an event base (too many open files?)".to_owned(),
        ));
    }
    let shared = Rc::new(BaseShared {
        raw,
        loop_state: Cell::new(ptr::null_mut()),
        pending_error: RefCell::new(None),
        handler_index: Cell::new(0),
    });
    // SAFETY: the metatable was registered when the module was opened.
    unsafe { api::push_userdata(state, BASE_TYPE, BaseUserdata { shared: Some(shared) }, false) };
    // SAFETY: the new base is on top of the stack.
    unsafe { remember_latest_base(state) };
    Ok(1)
}

/// Registry key of a weak-valued table listing the bases made by `core.new()` in order (`n`:
/// the highest index in use), for the seed's base-less `bufferevent.new(fd, ...)`.
const LATEST_BASE_KEY: &CStr = c"luaevent.core.bases";

/// Records the base on top of the stack as the latest one (weakly: it does not keep it alive).
unsafe fn remember_latest_base(state: *mut lua_State) {
    // SAFETY: raw table operations only; the base userdata is on top of the stack.
    unsafe {
        lua_getfield(state, LUA_REGISTRYINDEX, LATEST_BASE_KEY.as_ptr());
        if lua_type(state, -1) != LUA_TTABLE {
            lua_pop(state, 1);
            lua_createtable(state, 1, 1);
            lua_createtable(state, 0, 1);
            push_bytes(state, b"v");
            lua_setfield(state, -2, c"__mode".as_ptr());
            lua_setmetatable(state, -2);
            lua_pushvalue(state, -1);
            lua_setfield(state, LUA_REGISTRYINDEX, LATEST_BASE_KEY.as_ptr());
        }
        let n = latest_index(state) + 1;
        lua_pushvalue(state, -2);
        lua_rawseti(state, -2, n);
        set_latest_index(state, n);
        lua_pop(state, 1);
    }
}

/// `n` of the base list on top of the stack.
unsafe fn latest_index(state: *mut lua_State) -> lua_Integer {
    // SAFETY: a raw read of a field of the table on top of the stack.
    unsafe {
        push_bytes(state, b"n");
        lua_rawget(state, -2);
        let n = api::to_integer(state, -1).unwrap_or(0);
        lua_pop(state, 1);
        n
    }
}

unsafe fn set_latest_index(state: *mut lua_State, n: lua_Integer) {
    // SAFETY: a raw write of a field of the table on top of the stack.
    unsafe {
        push_bytes(state, b"n");
        lua_pushinteger(state, n);
        lua_rawset(state, -3);
    }
}

/// The most recently made base made by `core.new()` that is still alive. Collected ones are
/// skipped and forgotten on the way, so the walk costs nothing in the long run.
pub unsafe fn latest_base(state: *mut lua_State) -> Option<Rc<BaseShared>> {
    // SAFETY: raw table reads and writes; a userdata found is checked against our metatable.
    unsafe {
        lua_getfield(state, LUA_REGISTRYINDEX, LATEST_BASE_KEY.as_ptr());
        if lua_type(state, -1) != LUA_TTABLE {
            lua_pop(state, 1);
            return None;
        }
        let mut n = latest_index(state);
        let mut found = None;
        while n > 0 && found.is_none() {
            lua_rawgeti(state, -1, n);
            found = api::test_userdata::<BaseUserdata>(state, -1, BASE_TYPE).and_then(|u| (*u).shared.clone());
            lua_pop(state, 1);
            if found.is_none() {
                n -= 1;
            }
        }
        set_latest_index(state, n);
        lua_pop(state, 1);
        found
    }
}

unsafe fn run_loop(state: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: argument access on the calling state.
    let base = unsafe { check_base(state, 1)? };
    if !base.loop_state.get().is_null() {
        return Err(Failure::Message("attempt to loop an event base that is already looping".to_owned()));
    }
    base.pending_error.replace(None);
    // SAFETY: the base is alive (we hold an Rc). Callbacks run on `state` under lua_pcall, with
    // the message handler pushed here; the stack is restored before returning.
    let result = unsafe {
        lua_pushcfunction(state, api::traceback_handler);
        let handler_index = lua_gettop(state);
        base.handler_index.set(handler_index);
        base.loop_state.set(state);
        let result = ffi::base_loop(base.raw);
        base.loop_state.set(ptr::null_mut());
        base.handler_index.set(0);
        lua_settop(state, handler_index - 1);
        result
    };
    let pending = base.pending_error.take();
    drop(base);
    // SAFETY: pushing results on the calling state.
    unsafe {
        if let Some(message) = pending {
            push_bytes(state, &message);
            return Err(Failure::OnStack);
        }
        lua_pushinteger(state, result as lua_Integer);
    }
    Ok(1)
}

unsafe fn loopexit(state: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: argument access on the calling state.
    unsafe {
        let base = check_base(state, 1)?;
        let after = if lua_isnoneornil(state, 2) != 0 { None } else { Some(api::check_timeout(state, 2)?) };
        let result = ffi::base_loopexit(base.raw, after);
        lua_pushinteger(state, result as lua_Integer);
    }
    Ok(1)
}

unsafe fn method(state: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: argument access on the calling state; the base is alive while we hold the Rc.
    unsafe {
        let base = check_base(state, 1)?;
        let name = ffi::base_method(base.raw);
        // The batching epoll backend calls itself "epoll (with changelist)"; the backend is
        // epoll all the same, and that is the name programs compare against.
        let name = name.split(" (").next().unwrap_or_default();
        push_bytes(state, name.as_bytes());
    }
    Ok(1)
}

unsafe fn collect(state: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: __gc is only reachable through our metatable, but check anyway (a user can call
    // getmetatable(base).__gc(x) by hand).
    unsafe {
        if let Some(userdata) = api::test_userdata::<BaseUserdata>(state, 1, BASE_TYPE) {
            (*userdata).shared = None;
        }
    }
    Ok(0)
}

lua_function!(lua_new => new);
lua_function!(lua_loop => run_loop);
lua_function!(lua_loopexit => loopexit);
lua_function!(lua_method => method);
lua_function!(lua_collect => collect);

/// Registers the base metatable.
pub unsafe fn register(state: *mut lua_State) {
    // SAFETY: table construction during luaopen.
    unsafe {
        api::register_metatable(
            state,
            BASE_TYPE,
            &[
                (c"addevent", crate::event::lua_addevent),
                (c"loop", lua_loop),
                (c"loopexit", lua_loopexit),
                (c"method", lua_method),
            ],
            &[(c"__gc", lua_collect)],
        );
    }
}
