//! Calling Lua from libevent's callbacks, which run inside `base:loop()`.
//!
//! `base:loop()` keeps two slots on its own stack for the callbacks it runs: the message handler
//! (a traceback), pushed once per loop instead of once per callback, and the error slot, where
//! the first error a callback raised waits for the loop to raise it again. A [`LoopSlot`] holds
//! where those are while the loop runs, and nowhere else can a callback find the Lua state: so
//! no callback can touch a state whose loop has returned.
//!
//! Callbacks run under libevent's frames: nothing here raises. Arguments are pushed with
//! operations that allocate nothing, the Lua function runs under `lua_pcall`, and results are
//! read in place before the stack is restored.
//!
//! Stack room: a callback may fill [`CALLBACK_SLOTS`] slots (its function, arguments and
//! results included). `base:loop()` reserves them at its entry ([`LOOP_SLOTS`]); on Lua 5.2 and
//! later each call also makes sure of them (`lua_checkstack` never raises there), which covers
//! a callback that libevent runs from inside a method a callback called; a call without room
//! fails as a callback's error would (the loop says the error was lost).

use std::cell::Cell;
use std::ffi::c_int;
use std::ptr::NonNull;

use super::module::CALL_KEY;
use super::protected::{protected, push_handler, Op};
use super::raw::{self, *};
use super::stack::{Address, Kind, Ref};
use super::weak::WeakTable;
use super::Stack;

/// The stack slots a callback may use: its function, arguments and results, and what building
/// them pushes.
pub const CALLBACK_SLOTS: c_int = super::stack::BODY_SLOTS;

/// What the entry of `base:loop()` reserves: the frame's two slots, the callbacks' room, and the
/// body's own.
pub const LOOP_SLOTS: c_int = 2 + CALLBACK_SLOTS + super::stack::BODY_SLOTS;

/// Where a running loop keeps what its callbacks need.
#[derive(Clone, Copy)]
struct LoopFrame {
    state: NonNull<lua_State>,
    /// Absolute index of the message handler.
    handler: c_int,
    /// Absolute index of the error slot: nil until a callback fails.
    error: c_int,
}

/// The loop frame of a base while its loop runs; empty otherwise.
pub struct LoopSlot(Cell<Option<LoopFrame>>);

/// How a callback call went: what [`LoopSlot`] reports, and what the base reports to the
/// object whose callback it was (see `BaseShared::call_back`).
#[derive(Debug, PartialEq, Eq)]
pub enum Called<R> {
    /// Not called: no loop of this base is running (libevent runs pending work while freeing
    /// a base).
    NotLooping,
    /// Not called: there was no function to call; no Lua code ran.
    Skipped,
    /// It raised an error, now in the loop's error slot (unless an earlier one is there).
    Raised,
    /// It returned; `R` is what `read` made of its results.
    Returned(R),
    /// The object was garbage-collected during its own callback: do not touch it again. (Told
    /// by the object's `__gc` to the base that tracks it, never by the loop slot itself.)
    Finalized,
}

/// How a loop ended, as far as its callbacks are concerned.
pub enum LoopEnd {
    /// No callback failed.
    Clean,
    /// A callback failed; its error (a string with a traceback) is on top of the stack.
    Failed,
}

impl Default for LoopSlot {
    fn default() -> LoopSlot {
        LoopSlot(Cell::new(None))
    }
}

impl LoopSlot {
    #[inline]
    pub fn is_running(&self) -> bool {
        self.0.get().is_some()
    }

    /// Runs `body` (libevent's loop) with the frame set up on `stack` for callbacks. Afterwards
    /// the frame's two slots are gone from the stack, and the first error a callback raised,
    /// if any, is on top instead ([`LoopEnd::Failed`]).
    /// Uses 2 + [`CALLBACK_SLOTS`] slots (the entry must reserve [`LOOP_SLOTS`]).
    pub fn run<R>(&self, stack: &mut Stack, body: impl FnOnce() -> R) -> (R, LoopEnd) {
        stack.uses(2 + CALLBACK_SLOTS);
        let state = stack.state();
        // SAFETY: two pushes that allocate nothing (see push_handler), within the room checked
        // above.
        let handler = unsafe {
            push_handler(state);
            lua_pushnil(state);
            lua_gettop(state) - 1
        };
        // SAFETY: Lua never calls a C function with a null state.
        let frame = LoopFrame {
            state: unsafe { NonNull::new_unchecked(state) },
            handler,
            error: handler + 1,
        };
        // Cleared on the way out even if `body` panics: a later callback must not find a
        // frame whose stack is gone.
        struct Clear<'a>(&'a LoopSlot);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                self.0 .0.set(None);
            }
        }
        self.0.set(Some(frame));
        let clear = Clear(self);
        let result = body();
        drop(clear);
        let end = if stack.kind(frame.error) != Kind::Nil {
            stack.push_value(frame.error);
            // SAFETY: moves the error below the frame's slots, then drops them.
            unsafe {
                lua_replace(state, handler);
                lua_settop(state, handler);
            }
            LoopEnd::Failed
        } else {
            stack.set_top(handler - 1);
            LoopEnd::Clean
        };
        (result, end)
    }

    /// Calls a Lua function on the running loop's state: `arguments` pushes the function and
    /// its arguments and says how many arguments there are (`None`: do not call); `read` sees
    /// the `results` values it returned. The stack is as before afterwards.
    pub fn call<R>(
        &self,
        arguments: impl FnOnce(&mut Arguments) -> Option<c_int>,
        results: c_int,
        read: impl FnOnce(&Results) -> R,
    ) -> Called<R> {
        let Some(frame) = self.0.get() else {
            return Called::NotLooping;
        };
        let state = frame.state.as_ptr();
        // SAFETY: the frame is set only while its loop runs (see `run`), and callbacks run
        // inside that loop, on its state, with CALLBACK_SLOTS free (see `has_room`).
        unsafe {
            if !has_room(state) {
                // Not even a slot for an error value: the loop reports the error as lost.
                return Called::Raised;
            }
            let top = lua_gettop(state);
            #[cfg(debug_assertions)]
            let limit = top + CALLBACK_SLOTS;
            let mut pushing = Arguments {
                state,
                #[cfg(debug_assertions)]
                limit,
            };
            let Some(count) = arguments(&mut pushing) else {
                lua_settop(state, top);
                return Called::Skipped;
            };
            if lua_pcall(state, count, results, frame.handler) != LUA_OK {
                frame.keep_first_error();
                lua_settop(state, top);
                return Called::Raised;
            }
            let result = read(&Results {
                state,
                first: top + 1,
            });
            lua_settop(state, top);
            Called::Returned(result)
        }
    }

    /// As [`LoopSlot::call`], for callbacks whose arguments need Lua memory (a new object, a
    /// string): `arguments` gets a [`Stack`] on the loop's state, on which it may allocate;
    /// should it fail, its failure becomes the loop's error as a callback's would.
    pub fn call_with<R>(
        &self,
        arguments: impl FnOnce(&mut Stack) -> Result<Option<c_int>, super::Failure>,
        results: c_int,
        read: impl FnOnce(&Results) -> R,
    ) -> Called<R> {
        let Some(frame) = self.0.get() else {
            return Called::NotLooping;
        };
        let state = frame.state.as_ptr();
        let mut scratch = std::mem::MaybeUninit::uninit();
        // SAFETY: as in `call`. The Stack lives for this call only, inside the loop's frame,
        // and its scratch buffer outlives it; no string result is ever returned through it.
        unsafe {
            if !has_room(state) {
                // Not even a slot for an error value: the loop reports the error as lost.
                return Called::Raised;
            }
            let top = lua_gettop(state);
            let mut stack = Stack::new(state, &mut scratch, CALLBACK_SLOTS);
            let built = arguments(&mut stack);
            let count = match built {
                Ok(Some(count)) => count,
                Ok(None) => {
                    lua_settop(state, top);
                    return Called::Skipped;
                }
                Err(failure) => {
                    failure.push_error_value(state);
                    frame.keep_first_error();
                    lua_settop(state, top);
                    return Called::Raised;
                }
            };
            if lua_pcall(state, count, results, frame.handler) != LUA_OK {
                frame.keep_first_error();
                lua_settop(state, top);
                return Called::Raised;
            }
            let result = read(&Results {
                state,
                first: lua_gettop(state) - results + 1,
            });
            lua_settop(state, top);
            Called::Returned(result)
        }
    }

    /// Releases a registry reference from inside a callback. Should Lua raise while doing so
    /// (out of memory), the error is recorded as a callback's would be.
    pub fn unreference(&self, reference: Ref) -> Called<()> {
        let Some(frame) = self.0.get() else {
            return Called::NotLooping;
        };
        let state = frame.state.as_ptr();
        // SAFETY: as in `call`; the operation runs under lua_pcall.
        unsafe {
            let top = lua_gettop(state);
            let mut op = Op::Unreference {
                reference: reference.raw(),
            };
            let outcome = protected(state, &mut op, 0, 0);
            if outcome.is_err() {
                frame.keep_first_error();
            }
            lua_settop(state, top);
            if outcome.is_err() {
                Called::Raised
            } else {
                Called::Returned(())
            }
        }
    }
}

impl LoopFrame {
    /// Moves the error value on top into the error slot, unless an earlier error is there.
    unsafe fn keep_first_error(self) {
        let state = self.state.as_ptr();
        // SAFETY: an error value is on top (caller); lua_replace allocates nothing.
        unsafe {
            if lua_type(state, self.error) == LUA_TNIL {
                lua_replace(state, self.error);
            } else {
                lua_pop(state, 1);
            }
        }
    }
}

/// Whether a callback's [`CALLBACK_SLOTS`] are free on the loop's state. From Lua 5.2 on,
/// `lua_checkstack` grows the stack under protection and never raises, so it is asked; on 5.1
/// and LuaJIT it could raise (out of memory), so the room `base:loop()` reserved at its entry
/// is relied on.
///
/// # Safety
/// A valid state.
unsafe fn has_room(state: *mut lua_State) -> bool {
    #[cfg(not(any(feature = "lua51", feature = "luajit")))]
    // SAFETY: per the contract; see above for why this cannot raise.
    return unsafe { lua_checkstack(state, CALLBACK_SLOTS) != 0 };
    #[cfg(any(feature = "lua51", feature = "luajit"))]
    {
        let _ = state;
        true
    }
}

/// Pushing a callback's function and arguments: only operations that allocate nothing.
pub struct Arguments {
    pub(super) state: *mut lua_State,
    /// The highest top the callback has room for (checked in debug builds, see `uses`).
    #[cfg(debug_assertions)]
    pub(super) limit: c_int,
}

impl Arguments {
    /// As `Stack::uses`: checks, in debug builds, that `slots` more values fit.
    #[inline]
    pub(super) fn uses(&self, slots: c_int) {
        #[cfg(debug_assertions)]
        assert!(
            self.top() + slots <= self.limit,
            "a callback's arguments need more than CALLBACK_SLOTS ({CALLBACK_SLOTS}) stack slots"
        );
        let _ = slots;
    }

    /// Uses 1 slot.
    #[inline]
    pub fn push_ref(&mut self, reference: Ref) {
        self.uses(1);
        // SAFETY: a raw registry read, within the room checked above.
        unsafe {
            lua_rawgeti(
                self.state,
                LUA_REGISTRYINDEX,
                reference.raw() as lua_Integer,
            )
        };
    }

    /// Uses 1 slot.
    #[inline]
    pub fn push_integer(&mut self, value: i64) {
        self.uses(1);
        // SAFETY: numbers allocate nothing.
        unsafe { lua_pushinteger(self.state, value as lua_Integer) };
    }

    /// Pushes `weak[address]`; returns its type. Uses 2 slots.
    pub fn push_weak_entry(&mut self, table: &WeakTable, address: Address) -> Kind {
        self.uses(2);
        // SAFETY: raw reads with a light-userdata key.
        Kind::of(unsafe { table.push_entry(self.state, address.0) })
    }

    /// Pushes slot `n` of the object on top (see `LuaType::SLOTS`); returns its type.
    /// Uses 2 slots.
    pub fn push_slot(&mut self, n: c_int) -> Kind {
        self.uses(2);
        // SAFETY: reading a user value and a raw integer key allocates nothing.
        unsafe { super::stack::push_slot(self.state, -1, n) }
    }

    /// Moves the top value below the one under it (a function fetched after its argument).
    pub fn swap_top(&mut self) {
        // SAFETY: two values are on the stack (callers push them).
        unsafe { lua_insert(self.state, -2) };
    }
}

/// What a callback returned, in place on the stack.
pub struct Results {
    state: *mut lua_State,
    first: c_int,
}

impl Results {
    fn index(&self, n: c_int) -> c_int {
        self.first + n - 1
    }

    /// The type of result `n` (1-based).
    #[inline]
    pub fn kind(&self, n: c_int) -> Kind {
        // SAFETY: the results are on the stack while `read` runs.
        Kind::of(unsafe { lua_type(self.state, self.index(n)) })
    }

    pub fn type_name(&self, n: c_int) -> &'static str {
        // SAFETY: as for kind.
        unsafe { raw::type_name(self.state, self.index(n)) }
    }

    #[inline]
    pub fn number(&self, n: c_int) -> Option<f64> {
        self.number_of_kind(n, self.kind(n))
    }

    /// Result `n`, of type `kind` (as `kind(n)` said), as a number: a number, or a string that
    /// reads as one. Knowing the type spares an API call on the common path.
    #[inline]
    pub fn number_of_kind(&self, n: c_int, kind: Kind) -> Option<f64> {
        match kind {
            // SAFETY: as for kind; a number converts without any check.
            Kind::Number => Some(unsafe { lua_tonumber(self.state, self.index(n)) }),
            // SAFETY: as for kind; converting a string never raises.
            Kind::String => unsafe { raw::to_number(self.state, self.index(n)) },
            _ => None,
        }
    }
}

/// Where a Lua function was defined, as Lua's own messages name it: `file.lua:12`.
#[derive(Clone, Copy)]
pub struct Source {
    /// `short_src` of the function's debug information (at most LUA_IDSIZE bytes, 60).
    file: [u8; 64],
    len: usize,
    line: c_int,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}",
            raw::utf8_prefix(&self.file[..self.len]),
            self.line
        )
    }
}

impl Results {
    /// Where the callback `reference` names was defined: the function's, or for a callable
    /// object its `__call`'s. `None` for a C function or anything else without a Lua source.
    /// Uses 3 slots (within the callback's room: results are read with the arguments gone).
    pub fn source_of(&self, reference: Ref) -> Option<Source> {
        let state = self.state;
        // SAFETY: raw reads and lua_getinfo("S"), none of which allocates or runs Lua code;
        // at most three values are pushed (room: see LoopSlot::call), and the stack is as
        // before on every path (lua_getinfo with '>' pops the function).
        unsafe {
            lua_rawgeti(state, LUA_REGISTRYINDEX, reference.raw() as lua_Integer);
            if lua_type(state, -1) != LUA_TFUNCTION {
                if lua_getmetatable(state, -1) == 0 {
                    lua_pop(state, 1);
                    return None;
                }
                push_registry_entry(state, &CALL_KEY);
                lua_rawget(state, -2);
                lua_remove(state, -2);
                lua_remove(state, -2);
                if lua_type(state, -1) != LUA_TFUNCTION {
                    lua_pop(state, 1);
                    return None;
                }
            }
            let mut debug: lua_Debug = std::mem::zeroed();
            if lua_getinfo(state, c">S".as_ptr(), &mut debug) == 0 || debug.linedefined < 0 {
                return None;
            }
            let mut source = Source {
                file: [0; 64],
                len: 0,
                line: debug.linedefined,
            };
            let file = debug.short_src.iter().take_while(|&&byte| byte != 0);
            for (slot, &byte) in source.file.iter_mut().zip(file) {
                *slot = byte as u8;
                source.len += 1;
            }
            Some(source)
        }
    }

    /// Result `n` as a boolean, if it is one.
    pub fn boolean(&self, n: c_int) -> Option<bool> {
        let is_boolean = self.kind(n) == Kind::Boolean;
        // SAFETY: as for kind.
        is_boolean.then(|| unsafe { lua_toboolean(self.state, self.index(n)) != 0 })
    }
}
