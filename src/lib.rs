//! luaevent.core: the libevent binding for Lua, as a drop-in replacement for the C module.
//!
//! The module entry only builds the module table and registers the types; each Lua type lives
//! in its own file. mlua provides the Lua C API for the interpreter chosen by Cargo feature
//! (module mode: the symbols come from the interpreter that loads us).

use std::ffi::c_int;

use mlua::ffi::*;

mod api;
mod base;
mod buffer;
mod bufferevent;
mod event;
mod fd;
mod ffi;

use api::{lua_function, push_bytes, LuaResult};

/// The module table's integer constants, with libevent's values.
const CONSTANTS: &[(&std::ffi::CStr, i64)] = &[
    (c"LEAVE", event::LEAVE),
    (c"EV_TIMEOUT", ffi::EV_TIMEOUT as i64),
    (c"EV_READ", ffi::EV_READ as i64),
    (c"EV_WRITE", ffi::EV_WRITE as i64),
    (c"EV_SIGNAL", ffi::EV_SIGNAL as i64),
    (c"EV_PERSIST", ffi::EV_PERSIST as i64),
    (c"EVBUFFER_READ", ffi::EVBUFFER_READ as i64),
    (c"EVBUFFER_WRITE", ffi::EVBUFFER_WRITE as i64),
    (c"EVBUFFER_EOF", ffi::EVBUFFER_EOF as i64),
    (c"EVBUFFER_ERROR", ffi::EVBUFFER_ERROR as i64),
    (c"EVBUFFER_TIMEOUT", ffi::EVBUFFER_TIMEOUT as i64),
];

unsafe fn libevent_version(lua: *mut lua_State) -> LuaResult<c_int> {
    // SAFETY: pushes one string on the calling state.
    unsafe { push_bytes(lua, ffi::version().as_bytes()) };
    Ok(1)
}
lua_function!(lua_libevent_version => libevent_version);

unsafe fn open(lua: *mut lua_State) -> LuaResult<c_int> {
    if !ffi::event_layout_matches() {
        return Err(api::Failure::Message(
            "luaevent.core: the libevent loaded differs from the one this module was built against; rebuild it"
                .to_owned(),
        ));
    }
    // SAFETY: table construction on the state that is loading us.
    unsafe {
        ignore_sigpipe();
        base::register(lua);
        event::register(lua);
        buffer::register(lua);
        bufferevent::register(lua);

        lua_createtable(lua, 0, 16);
        lua_pushcfunction(lua, base::lua_new);
        lua_setfield(lua, -2, c"new".as_ptr());
        lua_pushcfunction(lua, lua_libevent_version);
        lua_setfield(lua, -2, c"libevent_version".as_ptr());
        // Which implementation this is, so a program (or an admin) can tell it from the C module.
        push_bytes(lua, b"luaevent-rs");
        lua_setfield(lua, -2, c"_NAME".as_ptr());
        push_bytes(lua, env!("CARGO_PKG_VERSION").as_bytes());
        lua_setfield(lua, -2, c"_VERSION".as_ptr());
        for (name, value) in CONSTANTS {
            lua_pushinteger(lua, *value as lua_Integer);
            lua_setfield(lua, -2, name.as_ptr());
        }
        lua_createtable(lua, 0, 1);
        lua_pushcfunction(lua, buffer::lua_new);
        lua_setfield(lua, -2, c"new".as_ptr());
        lua_setfield(lua, -2, c"buffer".as_ptr());
        lua_createtable(lua, 0, 1);
        lua_pushcfunction(lua, bufferevent::lua_new);
        lua_setfield(lua, -2, c"new".as_ptr());
        lua_setfield(lua, -2, c"bufferevent".as_ptr());
    }
    Ok(1)
}

/// Writing to a socket whose peer is gone raises SIGPIPE, whose default action kills the
/// process; buffer writes must fail with -1 instead. Only a default disposition is changed
/// (LuaSocket does the same on load), so a handler the program installed is kept.
fn ignore_sigpipe() {
    // SAFETY: querying and setting a signal disposition with valid sigaction structs.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_DFL {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
}

/// `require "luaevent.core"` lands here.
///
/// # Safety
/// Called by Lua's package loader with a valid state.
#[no_mangle]
pub unsafe extern "C-unwind" fn luaopen_luaevent_core(lua: *mut lua_State) -> c_int {
    // SAFETY: as for every Lua-facing function: errors are raised only after the body returns.
    unsafe { api::finish(lua, |l| open(l)) }
}
