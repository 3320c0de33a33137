//! `base:addevent(fd, events, callback [, timeout])` and the event objects it returns, with the
//! callback's return-value rules of the C module (and its mask-switch bug fixed).

use std::ffi::{c_int, c_short, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use mlua::ffi::*;

use crate::api::{self, lua_function, Failure, LuaResult};
use crate::base::{check_base, BaseShared};
use crate::ffi::{self, Fd, Micros, EV_CLOSED, EV_ET, EV_PERSIST, EV_READ, EV_SIGNAL, EV_TIMEOUT, EV_WRITE};

pub const EVENT_TYPE: &CStr = c"luaevent.core.event";

/// The callback result that removes the event (`core.LEAVE`).
pub const LEAVE: i64 = -1;

/// Every bit a user may ask for; anything else (EV_FINALIZE, stray bits) is refused.
const ALLOWED_EVENTS: c_short = EV_TIMEOUT | EV_READ | EV_WRITE | EV_SIGNAL | EV_PERSIST | EV_ET | EV_CLOSED;

/// One registered event. Heap-allocated and handed to libevent as the callback argument, so it
/// must outlive both its userdata and any callback that is running: `running` and `orphaned`
/// defer the free to the end of the callback when the userdata is collected inside it.
struct EventState {
    /// The libevent event; null once closed.
    raw: *mut ffi::event,
    base: Rc<BaseShared>,
    fd: Fd,
    /// The mask as last registered, without EV_PERSIST.
    events: c_short,
    /// The timeout as last registered; `None` means none at all (not a zero timeout).
    timeout: Option<Micros>,
    /// Registry reference of the callback; LUA_NOREF once closed.
    callback: c_int,
    running: bool,
    orphaned: bool,
}

impl Drop for EventState {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: the event is ours and nothing will use it again.
            unsafe { ffi::event_free(self.raw) };
        }
    }
}

/// The Lua userdata; `state` is null once collected.
struct EventUserdata {
    state: *mut EventState,
}

/// Removes the event from libevent and releases the callback. Idempotent.
unsafe fn close_state(lua: *mut lua_State, event: *mut EventState) {
    // SAFETY: `event` is a live EventState (callers hold it through the userdata or the callback).
    unsafe {
        if !(*event).raw.is_null() {
            ffi::event_free((*event).raw);
            (*event).raw = ptr::null_mut();
        }
        if (*event).callback != LUA_NOREF {
            luaL_unref(lua, LUA_REGISTRYINDEX, (*event).callback);
            (*event).callback = LUA_NOREF;
        }
    }
}

unsafe fn addevent(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: argument access on the calling state; see the comments on each step for the rest.
    unsafe {
        let base = check_base(lua, 1)?;
        let timeout = if lua_isnoneornil(lua, 5) != 0 { None } else { Some(api::check_timeout(lua, 5)?) };
        let fd = if lua_isnil(lua, 2) != 0 {
            if timeout.is_none() {
                return Err(Failure::Arg(5, "timeout expected when fd is nil".to_owned()));
            }
            -1
        } else {
            crate::fd::check_fd(lua, 2)?
        };
        let events = api::check_integer(lua, 3)?;
        if events < 0 || events > c_short::MAX as i64 || (events as c_short) & !ALLOWED_EVENTS != 0 {
            return Err(Failure::Arg(3, format!("invalid event mask ({events})")));
        }
        let events = events as c_short & !EV_PERSIST;
        if !api::is_callable(lua, 4) {
            return Err(api::expected(lua, 4, "function"));
        }
        if events & EV_SIGNAL != 0 && fd < 0 {
            return Err(Failure::Arg(2, "signal number expected with EV_SIGNAL".to_owned()));
        }

        let state = Box::into_raw(Box::new(EventState {
            raw: ptr::null_mut(),
            base: base.clone(),
            fd,
            events,
            timeout,
            callback: LUA_NOREF,
            running: false,
            orphaned: false,
        }));
        // The state pointer is libevent's callback argument; it stays valid until dropped below
        // or by __gc, which always frees the libevent event first.
        (*state).raw = ffi::event_new(base.raw, fd, events | EV_PERSIST, on_event, state as *mut c_void);
        if (*state).raw.is_null() {
            drop(Box::from_raw(state));
            return Err(Failure::Arg(3, format!("libevent refused this event mask ({events})")));
        }
        if ffi::event_add((*state).raw, timeout) != 0 {
            drop(Box::from_raw(state));
            return Err(Failure::Message(format!("addevent: libevent could not register the event (fd {fd})")));
        }
        lua_pushvalue(lua, 4);
        (*state).callback = luaL_ref(lua, LUA_REGISTRYINDEX);
        api::push_userdata(lua, EVENT_TYPE, EventUserdata { state });
    }
    Ok(1)
}

/// libevent's entry point for every addevent event.
unsafe extern "C" fn on_event(_fd: Fd, what: c_short, arg: *mut c_void) {
    // A panic must not unwind into libevent; there is nobody to report it to but stderr,
    // where the panic hook has already written it.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `arg` is the EventState registered with this event, alive while the event is.
        unsafe { dispatch(arg as *mut EventState, what) }
    }));
}

/// Calls the Lua callback and applies its return values. The state is accessed through the raw
/// pointer only, since the callback may close or collect its own event.
unsafe fn dispatch(event: *mut EventState, what: c_short) {
    // SAFETY: `event` is alive on entry (libevent only calls registered events, and closing frees
    // the libevent event). During the Lua call it is kept alive by `running`; afterwards it is
    // freed here if it was orphaned meanwhile. The Lua state is the one running `loop`.
    unsafe {
        // A raw pointer rather than a clone: the base outlives this call, since `loop` holds it.
        let base: *const BaseShared = &*(*event).base;
        let lua = (*base).loop_state.get();
        if lua.is_null() || (*event).callback == LUA_NOREF {
            return;
        }
        if lua_checkstack(lua, 4) == 0 {
            (*base).fail(b"luaevent: Lua stack overflow in event callback".to_vec());
            return;
        }
        let top = lua_gettop(lua);
        (*base).push_traceback_handler(lua);
        lua_rawgeti(lua, LUA_REGISTRYINDEX, (*event).callback as lua_Integer);
        lua_pushinteger(lua, what as lua_Integer);
        (*event).running = true;
        let status = lua_pcall(lua, 1, 2, top + 1);
        (*event).running = false;

        if status != LUA_OK {
            (*base).fail(api::pop_bytes(lua));
        } else if !(*event).orphaned && !(*event).raw.is_null() {
            if let Err(message) = apply_result(lua, event, what) {
                (*base).fail(message.into_bytes());
            }
        }
        lua_settop(lua, top);
        if (*event).orphaned {
            drop(Box::from_raw(event));
        }
    }
}

/// The return-value rules, with `(newEvents, newTimeout)` at -2 and -1 of the stack.
unsafe fn apply_result(lua: *mut lua_State, event: *mut EventState, what: c_short) -> Result<(), String> {
    // SAFETY: `event` is alive and open (checked by the caller); only stack reads and libevent
    // calls on the event's own pointers.
    unsafe {
        let new_events = match lua_type(lua, -2) {
            LUA_TNIL => what as i64,
            _ => return_integer(lua, -2).ok_or_else(|| {
                format!("event callback returned {} as its new event mask (integer expected)", describe(lua, -2))
            })?,
        };
        if new_events == LEAVE {
            close_state(lua, event);
            return Ok(());
        }
        let mut explicit_timeout = None;
        if lua_type(lua, -1) == LUA_TNUMBER || lua_type(lua, -1) == LUA_TSTRING {
            let mut is_number = 0;
            let seconds = lua_tonumberx(lua, -1, &mut is_number);
            if is_number != 0 && seconds >= 0.0 {
                explicit_timeout = Some(api::seconds_to_micros(seconds).ok_or_else(|| {
                    format!("event callback returned {seconds} as its new timeout (too large)")
                })?);
            }
        }

        // The C module keeps no-timeout and zero-timeout apart only when registering, not when
        // deciding whether anything changed; decide exactly as it does.
        let current = (*event).timeout;
        let changed_timeout = explicit_timeout.is_some_and(|t| t != current.unwrap_or(0));
        if new_events == what as i64 && !changed_timeout {
            return Ok(());
        }
        if new_events < 0 || new_events > c_short::MAX as i64 || (new_events as c_short) & !ALLOWED_EVENTS != 0 {
            return Err(format!("event callback returned an invalid event mask ({new_events})"));
        }
        let new_events = new_events as c_short & !EV_PERSIST;
        let timeout = explicit_timeout.or(current);
        let raw = (*event).raw;
        if new_events != (*event).events {
            // A new mask needs the event re-targeted.
            let base = &(*event).base;
            ffi::event_del(raw);
            if ffi::event_assign(raw, base.raw, (*event).fd, new_events | EV_PERSIST, on_event, event as *mut c_void)
                != 0
            {
                return Err(format!("event callback returned an event mask libevent refuses ({new_events})"));
            }
            (*event).events = new_events;
        }
        // Same mask (Prosody's "return 0" timers): event_add alone reschedules the timeout.
        (*event).timeout = timeout;
        if ffi::event_add(raw, timeout) != 0 {
            return Err(format!("libevent could not re-register the event (fd {})", (*event).fd));
        }
        Ok(())
    }
}

/// A callback's return value as an integer, if it is an integral number or numeric string.
unsafe fn return_integer(lua: *mut lua_State, index: c_int) -> Option<i64> {
    let mut is_integer = 0;
    // SAFETY: lua_tointegerx never raises.
    let value = unsafe { lua_tointegerx(lua, index, &mut is_integer) };
    (is_integer != 0).then_some(value)
}

/// A short description of a returned value for error messages.
unsafe fn describe(lua: *mut lua_State, index: c_int) -> String {
    // SAFETY: stack reads only; numbers are read without conversion in place.
    unsafe {
        if lua_type(lua, index) == LUA_TNUMBER {
            let mut is_number = 0;
            format!("{}", lua_tonumberx(lua, index, &mut is_number))
        } else {
            format!("a {} value", api::type_name(lua, index))
        }
    }
}

unsafe fn close(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: the userdata is checked against our metatable; its state, when not null, is alive.
    unsafe {
        let userdata = api::check_userdata::<EventUserdata>(lua, 1, EVENT_TYPE, "event")?;
        let state = (*userdata).state;
        if !state.is_null() {
            close_state(lua, state);
        }
    }
    Ok(0)
}

unsafe fn collect(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: as for close; the state is freed now unless its callback is running, in which case
    // dispatch frees it when the callback returns.
    unsafe {
        if let Some(userdata) = api::test_userdata::<EventUserdata>(lua, 1, EVENT_TYPE) {
            let state = (*userdata).state;
            if !state.is_null() {
                (*userdata).state = ptr::null_mut();
                close_state(lua, state);
                if (*state).running {
                    (*state).orphaned = true;
                } else {
                    drop(Box::from_raw(state));
                }
            }
        }
    }
    Ok(0)
}

lua_function!(lua_addevent => addevent);
lua_function!(lua_close => close);
lua_function!(lua_collect => collect);

/// Registers the event metatable.
pub unsafe fn register(lua: *mut lua_State) {
    // SAFETY: table construction during luaopen.
    unsafe { api::register_metatable(lua, EVENT_TYPE, &[(c"close", lua_close)], &[(c"__gc", lua_collect)]) };
}
