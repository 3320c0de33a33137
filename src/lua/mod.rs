//! The layer between Lua's C API and the rest of the module: the only code that speaks it.
//!
//! # How a Lua-facing function is written
//! `lua_function!(body)` makes a `lua_CFunction` from `fn body(stack: &mut Stack) -> Outcome`.
//! The body reads its arguments through the [`Stack`], pushes results or asks for a string
//! result ([`Stack::return_bytes`]), and returns `Ok(Returns::Values(n))` or `Err(Failure)`.
//!
//! # The rules the structure enforces
//! 1. **No Lua error crosses a Rust frame.** Lua raises errors by `longjmp` (PUC Lua: a jump
//!    that skips Rust destructors) or by unwinding (LuaJIT: which `catch_unwind` turns into an
//!    abort). So every Lua API call that can raise (anything that allocates: out of memory, or
//!    a `__gc` error that Lua 5.1-5.3 and LuaJIT propagate from a collection step) runs inside
//!    `lua_pcall` (protected.rs), and the body sees a `Failure`. The one place a Lua error is
//!    raised unprotected is the entry, after the body has returned: its own frame owns nothing
//!    with a destructor (`Failure` and `Returns` are plain data, checked at compile time).
//!    Rust frames may therefore own anything (an `Rc`, a `Vec`).
//! 2. **No panic crosses into Lua.** The body runs under `catch_unwind`; a panic becomes the
//!    error `luaevent.core: internal error (a Rust panic was caught)`. Callbacks from libevent
//!    catch panics themselves (see c_callback.rs).
//! 3. **No object is closed under a method using it.** Borrows of our objects are tied to
//!    `&Stack`; every operation that can run Lua code (a `getfd` method, a finalizer run by an
//!    allocation) takes `&mut Stack`. Holding a borrow across one does not compile: the body
//!    borrows the object again afterwards, and finds it closed if Lua closed it meanwhile.
//! 4. **Rust memory is fallible.** Nothing on a path reachable from Lua allocates with Rust's
//!    global allocator, whose failure aborts the process: messages are formatted into a fixed
//!    buffer inside the `Failure`, strings go straight into Lua memory. libevent's own
//!    allocation failures come back as NULL or -1 and become errors or documented results.
//!
//! # Error messages
//! Argument errors read as Lua's own: `bad argument #2 to 'addevent' (number expected, got nil)`
//! ([`Failure::argument`]). Every other error the module raises starts with the name of the
//! function that failed, as the reference writes it, then `: ` and what went wrong, then
//! `: <strerror text>` where the system set errno: `core.new: could not create an event base:
//! Too many open files`. Running out of memory is Lua's own `not enough memory`. Errors raised
//! by callbacks reach `base:loop()` as they were raised, with a traceback appended.

mod callback;
mod failure;
mod module;
mod options;
mod params;
mod protected;
mod raw;
mod stack;
mod userdata;
mod values;
mod weak;

use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use callback::{Arguments, Called, LoopEnd, LoopSlot, Results, Source, LOOP_SLOTS};
pub use failure::{Cause, Failure};
pub use module::{Method, ModuleSpec, TypeSpec};
pub use params::{Argument, Key, MethodCall};
pub use raw::{lua_CFunction, lua_State, number_to_integer};
pub use stack::{Address, Held, Kind, Outcome, Ref, Returns, Stack, BODY_SLOTS};
pub(crate) use userdata::lua_type;
pub use userdata::LuaType;
pub use values::Raised;
pub use weak::WeakTable;

// The entry's frame must own nothing with a destructor when it raises (rule 1).
const _: () = assert!(!std::mem::needs_drop::<Returns>());

/// Makes a `lua_CFunction` from a body `fn(&mut Stack) -> Outcome`, as a constant expression
/// (usable in the static method tables). The body may use the [`BODY_SLOTS`] stack slots Lua
/// guarantees; `lua_function!(body, slots)` reserves `slots` instead, before the body runs.
macro_rules! lua_function {
    ($body:path) => {{
        unsafe extern "C-unwind" fn entry(state: *mut $crate::lua::lua_State) -> ::std::ffi::c_int {
            // SAFETY: Lua calls a lua_CFunction with the state of the call.
            unsafe { $crate::lua::enter::<{ $crate::lua::BODY_SLOTS }>(state, $body) }
        }
        entry as $crate::lua::lua_CFunction
    }};
    ($body:path, $slots:expr) => {{
        unsafe extern "C-unwind" fn entry(state: *mut $crate::lua::lua_State) -> ::std::ffi::c_int {
            // SAFETY: Lua calls a lua_CFunction with the state of the call.
            unsafe { $crate::lua::enter::<{ $slots }>(state, $body) }
        }
        entry as $crate::lua::lua_CFunction
    }};
}
pub(crate) use lua_function;

/// Runs a body for Lua and returns its result count, raising its failure as the very last act.
/// A body that needs more than the [`BODY_SLOTS`] Lua guarantees gets `SLOTS` first, or the
/// call raises Lua's own "stack overflow" (nothing in this frame has a destructor yet).
///
/// # Safety
/// `state` is the state Lua called the function with.
#[doc(hidden)]
pub unsafe fn enter<const SLOTS: c_int>(
    state: *mut lua_State,
    body: impl FnOnce(&mut Stack) -> Outcome,
) -> c_int {
    if SLOTS > BODY_SLOTS {
        // SAFETY: the state of the call; raising here skips no destructor.
        unsafe { raw::luaL_checkstack(state, SLOTS, c"luaevent.core".as_ptr()) };
    }
    let mut scratch = MaybeUninit::uninit();
    // SAFETY: forwarded from the caller, with SLOTS free slots (Lua's guarantee or the check
    // above); `scratch` outlives the stack handle.
    let mut stack = unsafe { Stack::new(state, &mut scratch, SLOTS.max(BODY_SLOTS)) };
    let outcome = match catch_unwind(AssertUnwindSafe(|| body(&mut stack))) {
        Ok(outcome) => outcome,
        Err(_panic) => Err(Failure::internal()),
    };
    // From here on Lua may raise: nothing in this frame has a destructor (rule 1).
    // SAFETY: the state is valid; a string result's bytes are in the scratch buffer or in a
    // userdata on the stack, both alive until Lua has copied them.
    unsafe {
        match outcome {
            Ok(Returns::Values(count)) => count,
            Ok(Returns::Scratch { len }) => {
                raw::lua_pushlstring(state, stack.scratch() as *const _, len);
                1
            }
            Ok(Returns::Memory { index, len }) => {
                raw::lua_pushlstring(state, raw::lua_touserdata(state, index) as *const _, len);
                1
            }
            Err(failure) => failure.raise(state),
        }
    }
}

/// Builds the module table described by `spec` and leaves it on the stack.
pub fn open_module(stack: &mut Stack, spec: &'static ModuleSpec) -> Result<(), Failure> {
    // SAFETY: a body's state, with room; both steps run protected.
    unsafe {
        protected::install_runners(stack.state())?;
        protected::protected(stack.state(), &mut protected::Op::OpenModule { spec }, 0, 1)
    }
}
