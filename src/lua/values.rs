//! More values for bodies and callbacks: strings pushed, option tables walked, tables keyed by
//! an object's address, and lists built for a callback's arguments.
//!
//! Everything that allocates runs under protection (see protected.rs). In a callback, a failed
//! allocation leaves its error value (Lua's "not enough memory") on top and reports `Raised`:
//! the caller can pass that value on as the callback's message.

use std::ffi::{c_int, c_void, CStr};

use super::callback::Arguments;
use super::protected::{protected, Op};
use super::raw::*;
use super::stack::{Address, Kind};
use super::{Failure, Stack};

/// A value a callback needed could not be made; its error value is on top of the stack.
#[derive(Debug)]
pub struct Raised;

impl Stack {
    /// Uses 1 slot.
    pub fn push_nil(&mut self) {
        self.uses(1);
        // SAFETY: nil needs no allocation; the slot is within the budget (checked above).
        unsafe { lua_pushnil(self.state()) };
    }

    /// The truth of the value at `index`, as `if` sees it.
    pub fn truthy(&self, index: c_int) -> bool {
        // SAFETY: lua_toboolean never raises.
        unsafe { lua_toboolean(self.state(), index) != 0 }
    }

    /// A string value as a C string: None for anything else, and for a string holding a NUL
    /// byte (C would see a shorter one).
    pub fn c_string(&self, index: c_int) -> Option<&CStr> {
        let bytes = self.string_bytes(index)?;
        if bytes.contains(&0) {
            return None;
        }
        // SAFETY: Lua keeps a NUL after the bytes of every string; the string stays at `index`
        // while `self` is borrowed (see string_bytes).
        Some(unsafe { CStr::from_ptr(bytes.as_ptr() as *const std::ffi::c_char) })
    }

    /// Whether two values are the same (raw equality: no metamethod).
    pub fn raw_equal(&self, a: c_int, b: c_int) -> bool {
        // SAFETY: lua_rawequal never raises.
        unsafe { lua_rawequal(self.state(), a, b) != 0 }
    }

    /// `table[address] = value at index` (raw; a nil value removes the entry). Uses 5 slots.
    pub fn set_address_field(
        &mut self,
        table: c_int,
        address: Address,
        value: c_int,
    ) -> Result<(), Failure> {
        self.uses(5);
        let (table, value) = (self.absolute(table), self.absolute(value));
        self.push_value(table);
        // SAFETY: a light userdata needs no allocation.
        unsafe { lua_pushlightuserdata(self.state(), address.0 as *mut c_void) };
        self.push_value(value);
        self.protected(Op::RawSet, 3, 0).map(drop)
    }
}

impl Arguments {
    /// Index of the top value.
    pub fn top(&self) -> c_int {
        // SAFETY: reads the state.
        unsafe { lua_gettop(self.state) }
    }

    /// Uses 1 slot.
    pub fn push_nil(&mut self) {
        self.uses(1);
        // SAFETY: no allocation; the slot is within the budget (checked above).
        unsafe { lua_pushnil(self.state) };
    }

    /// Replaces the table on top with `table[address]` (raw); returns its type. Uses 1 slot.
    pub fn replace_with_field(&mut self, address: Address) -> Kind {
        self.uses(1);
        // SAFETY: a table is on top (callers check); raw reads with a light-userdata key.
        unsafe {
            lua_pushlightuserdata(self.state, address.0 as *mut c_void);
            let kind = Kind::of(lua_rawget(self.state, -2));
            lua_remove(self.state, -2);
            kind
        }
    }

    /// Removes `table[address]` (raw) from the table at `table` (absolute). Uses 5 slots.
    pub fn clear_field(&mut self, table: c_int, address: Address) -> Result<(), Raised> {
        self.uses(5);
        // SAFETY: three pushes that allocate nothing, then the store under protection.
        unsafe {
            lua_pushvalue(self.state, table);
            lua_pushlightuserdata(self.state, address.0 as *mut c_void);
            lua_pushnil(self.state);
            protected(self.state, &mut Op::RawSet, 3, 0).map_err(|_| Raised)
        }
    }

    /// Moves the top value to `index` (absolute), shifting the values above it up.
    pub fn insert(&mut self, index: c_int) {
        // SAFETY: `index` is on the stack (callers use what they pushed).
        unsafe { lua_insert(self.state, index) };
    }

    /// Drops every value above `top`.
    pub fn set_top(&mut self, top: c_int) {
        // SAFETY: lowering the top never raises.
        unsafe { lua_settop(self.state, top) };
    }

    /// Pushes a copy of `bytes` as a string. Uses 2 slots.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<(), Raised> {
        self.uses(2);
        let mut op = Op::PushString {
            bytes: bytes.as_ptr(),
            len: bytes.len(),
        };
        // SAFETY: the loop's state, with room (see LoopSlot::call); runs under lua_pcall.
        unsafe { protected(self.state, &mut op, 0, 1) }.map_err(|_| Raised)
    }

    /// Pushes a new table with room for `array` sequence entries; returns its index. Uses 2
    /// slots.
    pub fn new_table(&mut self, array: c_int) -> Result<c_int, Raised> {
        self.uses(2);
        let mut op = Op::NewTable { array, hash: 0 };
        // SAFETY: as for push_bytes.
        unsafe { protected(self.state, &mut op, 0, 1) }.map_err(|_| Raised)?;
        Ok(self.top())
    }

    /// `list[n] = top value` (raw), popping it. Uses 5 slots.
    pub fn append(&mut self, list: c_int, n: i64) -> Result<(), Raised> {
        self.uses(5);
        // SAFETY: pushes that allocate nothing put table, key and value in order; the store
        // runs under protection and consumes all three.
        unsafe {
            lua_pushvalue(self.state, list);
            lua_pushinteger(self.state, n as lua_Integer);
            lua_pushvalue(self.state, -3);
            lua_remove(self.state, -4);
            protected(self.state, &mut Op::RawSet, 3, 0).map_err(|_| Raised)
        }
    }
}

impl Arguments {
    /// Pushes a copy of the value at `index`. Uses 1 slot.
    pub fn push_copy(&mut self, index: c_int) {
        self.uses(1);
        // SAFETY: copies a value; no allocation.
        unsafe { lua_pushvalue(self.state, index) };
    }

    /// Removes the value at `index` (absolute), shifting the ones above it down.
    pub fn remove(&mut self, index: c_int) {
        // SAFETY: `index` is on the stack (callers use what they pushed).
        unsafe { lua_remove(self.state, index) };
    }
}
