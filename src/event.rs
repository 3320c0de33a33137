//! `base:addevent(fd, events, callback [, timeout])` and the event objects it returns, with the
//! callback's return-value rules of the C module (and its mask-switch bug fixed).

use std::ffi::{c_int, c_short, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
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

/// An event object: the Lua userdata, holding libevent's `struct event` itself (no separate
/// allocation), whose address is libevent's callback argument.
///
/// Lua frees a userdata only after its `__gc` ran and it is unreachable again. If `__gc` runs
/// while the event's own callback is running, it anchors the object in the registry (`in_callback`),
/// so the memory stays valid until `dispatch` has finished with it and drops the anchor.
struct EventUserdata {
    /// libevent's event, assigned once by addevent and re-targeted by callbacks.
    raw: ffi::event,
    /// Keeps the libevent base alive as long as the event; `None` once collected.
    base: Option<Rc<BaseShared>>,
    /// The timeout as last registered, in microseconds; NO_TIMEOUT means none at all (which is
    /// not the same as a zero timeout).
    timeout: Micros,
    /// Registry reference of the callback; LUA_NOREF once closed.
    callback: c_int,
    /// IDLE, RUNNING (inside its callback), or, once `__gc` ran during the callback, the
    /// registry reference that anchors the object. One field rather than two keeps the
    /// userdata at 152 bytes.
    in_callback: c_int,
}

const NO_TIMEOUT: Micros = -1;
const IDLE: c_int = c_int::MIN;
const RUNNING: c_int = c_int::MIN + 1;

fn optional(timeout: Micros) -> Option<Micros> {
    (timeout != NO_TIMEOUT).then_some(timeout)
}

impl EventUserdata {
    fn is_open(&self) -> bool {
        self.callback != LUA_NOREF
    }
}

/// Removes the event from libevent and releases the callback. Idempotent.
unsafe fn close_event(lua: *mut lua_State, event: *mut EventUserdata) {
    // SAFETY: `event` points into a live userdata; an open event is assigned to a live base.
    unsafe {
        if (*event).is_open() {
            ffi::event_del(&mut (*event).raw);
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
        if events & (EV_READ | EV_WRITE | EV_CLOSED) != 0 && events & EV_SIGNAL == 0 {
            if let Some(why) = ffi::unwatchable_fd(fd) {
                return Err(Failure::Arg(2, format!("bad file descriptor ({fd} {why})")));
            }
        }

        let event = api::push_userdata(
            lua,
            EVENT_TYPE,
            EventUserdata {
                raw: std::mem::zeroed(),
                base: Some(base.clone()),
                timeout: timeout.unwrap_or(NO_TIMEOUT),
                callback: LUA_NOREF,
                in_callback: IDLE,
            },
            false,
        );
        // The userdata's address is the callback argument: Lua never moves a userdata, and the
        // event is deleted from libevent before the memory can be freed (close / __gc).
        let arg = event as *mut c_void;
        if ffi::event_assign(&mut (*event).raw, base.raw, fd, events | EV_PERSIST, on_event, arg) != 0 {
            return Err(Failure::Arg(3, format!("libevent refused this event mask ({events})")));
        }
        if ffi::event_add(&mut (*event).raw, timeout) != 0 {
            return Err(Failure::Message(format!("addevent: libevent could not register the event (fd {fd})")));
        }
        lua_pushvalue(lua, 4);
        (*event).callback = luaL_ref(lua, LUA_REGISTRYINDEX);
    }
    Ok(1)
}

/// libevent's entry point for every addevent event.
unsafe extern "C" fn on_event(_fd: Fd, what: c_short, arg: *mut c_void) {
    // A panic must not unwind into libevent; there is nobody to report it to but stderr,
    // where the panic hook has already written it.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `arg` is the userdata registered with this event; an event is deleted from
        // libevent before its memory can be freed, so a callback means it is alive.
        unsafe { dispatch(arg as *mut EventUserdata, what) }
    }));
}

/// Calls the Lua callback and applies its return values. The event is accessed through the raw
/// pointer only, since the callback may close or collect its own event.
unsafe fn dispatch(event: *mut EventUserdata, what: c_short) {
    // SAFETY: `event` is alive on entry (see on_event). If `__gc` runs during the Lua call, it
    // anchors the object, so the memory stays valid until the anchor is dropped as the last act
    // here. The base is reached through a raw pointer: `loop` holds it alive throughout, even if
    // `__gc` drops the event's own Rc meanwhile.
    unsafe {
        let Some(base) = (*event).base.as_ref().map(Rc::as_ptr) else { return };
        let lua = (*base).loop_state.get();
        if lua.is_null() || !(*event).is_open() {
            return;
        }
        // No lua_checkstack: we run inside `loop`'s C frame, which Lua gives LUA_MINSTACK (20)
        // free slots; loop uses one, and this never holds more than three.
        let top = lua_gettop(lua);
        lua_rawgeti(lua, LUA_REGISTRYINDEX, (*event).callback as lua_Integer);
        lua_pushinteger(lua, what as lua_Integer);
        (*event).in_callback = RUNNING;
        let status = lua_pcall(lua, 1, 2, (*base).handler_index.get());

        if status != LUA_OK {
            (*base).fail(api::pop_bytes(lua));
        } else if (*event).is_open() {
            if let Err(message) = apply_result(lua, event, what) {
                (*base).fail(message.into_bytes());
            }
        }
        lua_settop(lua, top);
        let anchor = std::mem::replace(&mut (*event).in_callback, IDLE);
        if anchor != RUNNING {
            // Collected during its callback: let Lua free it now. Nothing touches it after this.
            luaL_unref(lua, LUA_REGISTRYINDEX, anchor);
        }
    }
}

/// The return-value rules, with `(newEvents, newTimeout)` at -2 and -1 of the stack.
unsafe fn apply_result(lua: *mut lua_State, event: *mut EventUserdata, what: c_short) -> Result<(), String> {
    // SAFETY: `event` is alive, open and assigned to a live base (checked by the caller); only
    // stack reads and libevent calls on the event itself.
    unsafe {
        let new_events = match lua_type(lua, -2) {
            LUA_TNIL => what as i64,
            _ => api::to_integer(lua, -2).ok_or_else(|| {
                format!("event callback returned {} as its new event mask (integer expected)", describe(lua, -2))
            })?,
        };
        if new_events == LEAVE {
            close_event(lua, event);
            return Ok(());
        }
        // A number >= 0 replaces the timeout; anything else (nothing, negative, NaN) keeps it.
        let mut explicit_timeout = None;
        if let Some(seconds) = api::to_number(lua, -1).filter(|&seconds| seconds >= 0.0) {
            explicit_timeout = Some(api::seconds_to_micros(seconds).ok_or_else(|| {
                format!("event callback returned {seconds} as its new timeout (too large)")
            })?);
        }

        // The C module keeps no-timeout and zero-timeout apart only when registering, not when
        // deciding whether anything changed; decide exactly as it does.
        let current = optional((*event).timeout);
        let changed_timeout = explicit_timeout.is_some_and(|t| t != current.unwrap_or(0));
        if new_events == what as i64 && !changed_timeout {
            return Ok(());
        }
        if new_events < 0 || new_events > c_short::MAX as i64 || (new_events as c_short) & !ALLOWED_EVENTS != 0 {
            return Err(format!("event callback returned an invalid event mask ({new_events})"));
        }
        let new_events = new_events as c_short & !EV_PERSIST;
        let timeout = explicit_timeout.or(current);
        let raw: *mut ffi::event = &mut (*event).raw;
        if new_events != ffi::event_events(raw) & !EV_PERSIST {
            // A new mask needs the event re-targeted.
            let base = ffi::event_base_of(raw);
            let fd = ffi::event_fd(raw);
            ffi::event_del(raw);
            if ffi::event_assign(raw, base, fd, new_events | EV_PERSIST, on_event, event as *mut c_void) != 0 {
                return Err(format!("event callback returned an event mask libevent refuses ({new_events})"));
            }
        }
        // Same mask (Prosody's "return 0" timers): event_add alone reschedules the timeout.
        (*event).timeout = timeout.unwrap_or(NO_TIMEOUT);
        if ffi::event_add(raw, timeout) != 0 {
            return Err(format!("libevent could not re-register the event (fd {})", ffi::event_fd(raw)));
        }
        Ok(())
    }
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
    // SAFETY: the userdata is checked against our metatable.
    unsafe {
        let event = api::check_userdata::<EventUserdata>(lua, 1, EVENT_TYPE, "event")?;
        close_event(lua, event);
    }
    Ok(0)
}

unsafe fn collect(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: as for close. Inside its own callback the object is anchored (see dispatch).
    unsafe {
        if let Some(event) = api::test_userdata::<EventUserdata>(lua, 1, EVENT_TYPE) {
            close_event(lua, event);
            if (*event).in_callback == RUNNING {
                lua_pushvalue(lua, 1);
                (*event).in_callback = luaL_ref(lua, LUA_REGISTRYINDEX);
            }
            (*event).base = None;
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

#[cfg(test)]
mod tests {
    use super::EventUserdata;

    #[test]
    fn an_event_object_is_its_libevent_event_plus_24_bytes() {
        // The memory target of issue 5 (no more per idle event than the C module) rests on this.
        assert_eq!(std::mem::size_of::<EventUserdata>(), std::mem::size_of::<crate::ffi::event>() + 24);
    }
}
