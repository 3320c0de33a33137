//! luaevent.core: the libevent binding for Lua, as a drop-in replacement for the C module.
//!
//! `lua/` is the layer over Lua's C API (its rules are written there); `libevent.rs` the
//! handles over libevent's; `openssl.rs` those over OpenSSL's; `os.rs` what differs between
//! systems; `fd.rs` and `time.rs` how the module reads descriptors and durations from Lua
//! (luaevent's rules, kept out of the Lua layer); `c_callback.rs` how C calls back into Rust.
//! Each Lua type has its own file (`base.rs`, `event.rs`, `buffer.rs`, `bufferevent.rs`,
//! `tls.rs`); this file wires them into the module table. mlua provides the
//! Lua C API of the interpreter chosen by Cargo feature (module mode: the symbols come from the
//! interpreter that loads us).

// A failure carries its message inline (see lua/failure.rs): boxing it would allocate, and an
// allocation failure in Rust aborts the process. clippy.toml sets the error-size threshold to
// admit it; the few enums holding one allow their size where they are declared.

use std::ffi::{c_int, CStr};

mod base;
mod buffer;
mod bufferevent;
mod c_callback;
mod connect;
mod dns;
mod event;
mod fd;
mod ffi;
#[cfg(test)]
mod import_graph;
mod libevent;
mod listener;
mod lua;
mod net;
mod openssl;
mod os;
mod read_path;
mod reserve;
mod shared;
mod time;
mod tls;
mod tls_layer;

use lua::{lua_State, lua_function, Failure, ModuleSpec, Outcome, Stack, TypeSpec};

/// The base's metatable: its own methods, and `addevent` from the event type.
static BASE_TYPE: TypeSpec = base::type_spec(&[
    base::METHODS,
    &[(c"addevent", lua_function!(event::addevent))],
]);

/// The bufferevent's metatable: its own methods, and `starttls` from the TLS layer.
static BUFFEREVENT_TYPE: TypeSpec = bufferevent::type_spec(&[
    bufferevent::METHODS,
    &[(c"starttls", lua_function!(tls_layer::starttls))],
]);

/// This crate's version, from Cargo.toml.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the crate version contains a NUL byte"),
    };

static MODULE: ModuleSpec = ModuleSpec {
    types: &[
        &BASE_TYPE,
        &event::TYPE,
        &buffer::TYPE,
        &BUFFEREVENT_TYPE,
        &listener::TYPE,
        &tls::TYPE,
        &dns::TYPE,
        &dns::REQUEST_TYPE,
    ],
    weak_tables: &[
        &base::LATEST_BASES,
        &bufferevent::BUFFEREVENTS,
        &listener::LISTENERS,
        &dns::ANCHORS,
    ],
    functions: &[
        (c"new", lua_function!(base::new)),
        (c"libevent_version", lua_function!(libevent_version)),
    ],
    integers: &[
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
        (c"EVBUFFER_CONNECTED", ffi::EVBUFFER_CONNECTED as i64),
    ],
    // Which implementation this is, so that a program (or an admin) can tell it from the C
    // module, which has neither field.
    strings: &[(c"_NAME", c"luaevent-rs"), (c"_VERSION", VERSION)],
    tables: &[
        (c"buffer", &[(c"new", lua_function!(buffer::new))]),
        (
            c"bufferevent",
            &[
                (c"new", lua_function!(bufferevent::new)),
                (c"connect", lua_function!(connect::connect)),
            ],
        ),
        (c"listener", &[(c"new", lua_function!(listener::new))]),
        (c"tls", &[(c"context", lua_function!(tls::context))]),
        (c"dns", &[(c"new", lua_function!(dns::new))]),
    ],
};

const _: () = assert!(
    MODULE.has_distinct_type_names(),
    "two userdata types share a metatable name"
);

/// `core.libevent_version()`
fn libevent_version(stack: &mut Stack) -> Outcome {
    stack.return_str(libevent::version())
}

fn open(stack: &mut Stack) -> Outcome {
    if !libevent::event_layout_matches() {
        return Err(Failure::message(format_args!(
            "luaevent.core: the libevent loaded differs from the one this module was built against; rebuild it"
        )));
    }
    os::ignore_sigpipe();
    // Before any base exists: libevent's memory functions are set once, never swapped later.
    libevent::install_memory_functions();
    libevent::capture_log_lines();
    lua::open_module(stack, &MODULE)?;
    Ok(lua::Returns::Values(1))
}

/// `require "luaevent.core"` lands here.
///
/// # Safety
/// Called by Lua's package loader with a valid state.
#[no_mangle]
pub unsafe extern "C-unwind" fn luaopen_luaevent_core(state: *mut lua_State) -> c_int {
    // SAFETY: Lua calls a loader with the state that requires the module.
    unsafe { lua::enter::<{ lua::BODY_SLOTS }>(state, open) }
}
