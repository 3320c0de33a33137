//! The Lua API calls that can raise, each run inside `lua_pcall`.
//!
//! Anything that allocates Lua memory can raise: out of memory, or (on Lua 5.1 to 5.3 and
//! LuaJIT) the error of a `__gc` metamethod that the allocation's garbage-collection step ran.
//! Raised over Rust frames, such an error is a `longjmp` that skips destructors, or on LuaJIT an
//! unwind that `catch_unwind` turns into an abort. So each raising operation is one [`Op`],
//! performed by [`run`] as a Lua C function under `lua_pcall`: an error ends in `lua_pcall`'s
//! status code, one frame above the runner, and reaches the body as a [`Failure`].
//!
//! The runner is plain Lua API calls on values from the `Op`: no Rust logic that could panic,
//! nothing with a destructor in its frame.

use std::ffi::{c_int, c_void, CStr};

use super::module::ModuleSpec;
use super::raw::*;
use super::weak::WeakTable;
use super::Failure;

/// One raising operation. Arguments are pushed after it (see each variant); results are left
/// on the caller's stack.
pub(super) enum Op {
    /// Leaves a new userdata of `size` bytes with `slots` slots (see `LuaType::SLOTS`: user
    /// values on 5.4 and 5.5, else a table with an array part of `slots` as its user value) and
    /// writes its address to `memory`; records it in `weak` under that address, if given. No
    /// metatable yet.
    NewUserdata {
        size: usize,
        slots: c_int,
        memory: *mut c_void,
        weak: Option<&'static WeakTable>,
    },
    /// As `NewUserdata` twice, without a weak entry: leaves both, the first below.
    NewUserdataPair {
        size: usize,
        slots: c_int,
        memory: [*mut c_void; 2],
    },
    /// Leaves a new table with room for `array` sequence and `hash` other entries.
    NewTable { array: c_int, hash: c_int },
    /// Argument: a value. Stores `luaL_ref(registry, value)` in `reference`.
    Reference { reference: c_int },
    /// Releases a registry reference.
    Unreference { reference: c_int },
    /// Arguments: table, key, value. Does `rawset(table, key, value)`.
    RawSet,
    /// Argument: a number. Leaves its string form, as `tostring` writes it.
    NumberToString,
    /// Leaves a string with a copy of the `len` bytes at `bytes`.
    PushString { bytes: *const u8, len: usize },
    /// Argument: an object. Leaves two values: `true` and `obj:name()`'s result; `false` and
    /// nil when the object has no such method; or `false` and the error it raised, as a string.
    CallMethod { name: &'static CStr },
    /// Builds the module described by the spec; leaves the module table.
    OpenModule { spec: &'static ModuleSpec },
}

impl Failure {
    /// Leaves the failure's error value on top of the stack, as a callback's error would be:
    /// a propagated error is there already; a message becomes a string (should that string
    /// not fit in memory, Lua's memory error is on top instead).
    ///
    /// # Safety
    /// `state` is a valid state with three free slots in which the module was opened; for a
    /// propagated failure, its error value is on top.
    pub(super) unsafe fn push_error_value(&self, state: *mut lua_State) {
        let Some(bytes) = self.message_bytes() else {
            return;
        };
        let mut op = Op::PushString {
            bytes: bytes.as_ptr(),
            len: bytes.len(),
        };
        // SAFETY: per the contract; on failure the error value is left on top, which is what
        // the caller wants either way.
        let _ = unsafe { protected(state, &mut op, 0, 1) };
    }
}

/// Runs `op` with the `arguments` values on top of the stack (consumed) under `lua_pcall`,
/// leaving `results` values. On failure the error value is left on top instead.
///
/// # Safety
/// A valid state, at least `arguments` values on it and three free slots; on Lua 5.1 and
/// LuaJIT, the runner installed by [`install_runners`].
pub(super) unsafe fn protected(
    state: *mut lua_State,
    op: &mut Op,
    arguments: c_int,
    results: c_int,
) -> Result<(), Failure> {
    // SAFETY: per the contract. The Op outlives the call: the runner reaches it through a
    // light userdata, and lua_pcall returns before `op` can go.
    unsafe {
        push_runner(state);
        lua_insert(state, -(arguments + 1));
        lua_pushlightuserdata(state, op as *mut Op as *mut c_void);
        lua_insert(state, -(arguments + 1));
        if lua_pcall(state, arguments + 1, results, 0) == LUA_OK {
            Ok(())
        } else {
            Err(Failure::error_on_top())
        }
    }
}

/// Registry keys of the runner and of the message handler on Lua 5.1 and LuaJIT, where pushing
/// a C function allocates a closure (so it must be made once, ahead of time).
#[cfg(any(feature = "lua51", feature = "luajit"))]
pub(super) static RUNNER_KEY: u8 = 0;
#[cfg(any(feature = "lua51", feature = "luajit"))]
pub(super) static HANDLER_KEY: u8 = 0;

/// Pushes the runner without allocating.
unsafe fn push_runner(state: *mut lua_State) {
    // SAFETY: a free slot (caller). From 5.2 on a C function without upvalues is a light value.
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
    unsafe {
        lua_pushcfunction(state, run)
    };
    // SAFETY: a raw registry read; the entry was made by install_runners.
    #[cfg(any(feature = "lua51", feature = "luajit"))]
    unsafe {
        push_registry_entry(state, &RUNNER_KEY)
    };
}

/// Pushes the message handler of callbacks without allocating.
///
/// # Safety
/// As for [`protected`].
pub(super) unsafe fn push_handler(state: *mut lua_State) {
    // SAFETY: as for push_runner.
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
    unsafe {
        lua_pushcfunction(state, traceback_handler)
    };
    // SAFETY: as for push_runner.
    #[cfg(any(feature = "lua51", feature = "luajit"))]
    unsafe {
        push_registry_entry(state, &HANDLER_KEY)
    };
}

/// The message handler of callback calls: the error as a string plus a traceback of the
/// callback. Raising here (out of memory) is caught by the `lua_pcall` it serves.
unsafe extern "C-unwind" fn traceback_handler(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua as a message handler, with the error value at index 1.
    unsafe {
        describe_error_value(state);
        luaL_traceback(state, state, lua_tostring(state, -1), 1);
        1
    }
}

/// Makes the runner and the message handler reachable without allocation (Lua 5.1 and LuaJIT;
/// nothing to do elsewhere). Uses `lua_cpcall`, which makes its function's closure inside the
/// protected call.
///
/// # Safety
/// A valid state with a free slot.
pub(super) unsafe fn install_runners(state: *mut lua_State) -> Result<(), Failure> {
    #[cfg(any(feature = "lua51", feature = "luajit"))]
    {
        unsafe extern "C-unwind" fn install(state: *mut lua_State) -> c_int {
            // SAFETY: runs under lua_cpcall; raising here is caught there.
            unsafe {
                lua_pushcfunction(state, run);
                set_registry_entry(state, &RUNNER_KEY);
                lua_pushcfunction(state, traceback_handler);
                set_registry_entry(state, &HANDLER_KEY);
            }
            0
        }
        // SAFETY: per the contract; lua_cpcall leaves the error value on failure.
        if unsafe { lua_cpcall(state, install, std::ptr::null_mut()) } != LUA_OK {
            return Err(Failure::error_on_top());
        }
    }
    let _ = state;
    Ok(())
}

/// The runner: performs the `Op` given as a light userdata in argument 1.
unsafe extern "C-unwind" fn run(state: *mut lua_State) -> c_int {
    // SAFETY: called only by `protected`, under lua_pcall, with the Op's address as argument 1
    // and the Op's own arguments after it. Every call below may raise; lua_pcall catches it.
    unsafe {
        let op = &mut *(lua_touserdata(state, 1) as *mut Op);
        lua_remove(state, 1);
        match op {
            Op::NewUserdata {
                size,
                slots,
                memory,
                weak,
            } => {
                *memory = new_block(state, *size, *slots);
                if let Some(weak) = weak {
                    weak.push(state);
                    lua_pushlightuserdata(state, *memory);
                    lua_pushvalue(state, -3);
                    lua_rawset(state, -3);
                    lua_pop(state, 1);
                }
                1
            }
            Op::NewUserdataPair {
                size,
                slots,
                memory,
            } => {
                for block in memory {
                    *block = new_block(state, *size, *slots);
                }
                2
            }
            Op::NewTable { array, hash } => {
                lua_createtable(state, *array, *hash);
                1
            }
            Op::Reference { reference } => {
                *reference = luaL_ref(state, LUA_REGISTRYINDEX);
                0
            }
            Op::Unreference { reference } => {
                luaL_unref(state, LUA_REGISTRYINDEX, *reference);
                0
            }
            Op::RawSet => {
                lua_rawset(state, 1);
                0
            }
            Op::NumberToString => {
                lua_tolstring(state, 1, std::ptr::null_mut());
                1
            }
            Op::PushString { bytes, len } => {
                lua_pushlstring(state, *bytes as *const std::ffi::c_char, *len);
                1
            }
            Op::CallMethod { name } => call_method(state, name),
            Op::OpenModule { spec } => {
                super::module::open(state, spec);
                1
            }
        }
    }
}

/// Pushes a userdata of `size` bytes with `slots` slots (see [`Op::NewUserdata`]); returns its
/// block.
unsafe fn new_block(state: *mut lua_State, size: usize, slots: c_int) -> *mut c_void {
    // SAFETY: inside the runner (see `run`): raising is allowed, the stack has room.
    unsafe {
        #[cfg(any(feature = "lua54", feature = "lua55"))]
        {
            lua_newuserdatauv(state, size, slots)
        }
        #[cfg(not(any(feature = "lua54", feature = "lua55")))]
        {
            let memory = lua_newuserdata(state, size);
            if slots > 0 {
                // Made here with the array part that set_slot relies on.
                lua_createtable(state, slots, 0);
                lua_setuservalue(state, -2);
            }
            memory
        }
    }
}

/// `obj:name()` for the object at index 1, with the method looked up as Lua would
/// (metamethods included) and its errors caught: see [`Op::CallMethod`].
unsafe fn call_method(state: *mut lua_State, name: &CStr) -> c_int {
    // SAFETY: inside the runner (see `run`): raising is allowed, the stack has room.
    unsafe {
        lua_getfield(state, 1, name.as_ptr());
        if lua_isnil(state, -1) != 0 {
            lua_pushboolean(state, 0);
            lua_pushnil(state);
            return 2;
        }
        lua_pushvalue(state, 1);
        if lua_pcall(state, 1, 1, 0) != LUA_OK {
            describe_error_value(state);
            lua_pushboolean(state, 0);
            lua_insert(state, -2);
            return 2;
        }
        lua_pushboolean(state, 1);
        lua_insert(state, -2);
        2
    }
}
