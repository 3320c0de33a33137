//! What the networking functions need of the Lua layer beyond the C module's calls: option
//! tables read without running Lua code, booleans, strings pushed from Rust, and finding an
//! object again from its address.

use std::ffi::c_int;

use super::protected::{protected, Op};
use super::raw::*;
use super::stack::{Address, Kind, Stack};
use super::weak::WeakTable;
use super::Failure;

impl Stack {
    /// Reads the options table at `index` (absent or nil: no options), whose keys must be among
    /// `names`: pushes one value per name (nil when the table has none) and returns their
    /// absolute indices, in the order of `names`. A key not in `names` is a bad argument that
    /// names it. Reads raw (no metamethod runs) and allocates nothing. Uses N + 2 slots.
    pub fn options<const N: usize>(&mut self, index: c_int, names: &[&str; N]) -> Result<[c_int; N], Failure> {
        self.uses(N as c_int + 2);
        let index = self.absolute(index);
        let first = self.top() + 1;
        let mut slots = [0; N];
        for (n, slot) in slots.iter_mut().enumerate() {
            // SAFETY: pushing nil allocates nothing; the slots are within the budget (above).
            unsafe { lua_pushnil(self.state()) };
            *slot = first + n as c_int;
        }
        match self.kind(index) {
            Kind::None | Kind::Nil => return Ok(slots),
            Kind::Table => {}
            _ => return Err(Failure::expected(self, index, "table or nil")),
        }
        // SAFETY: lua_next over a table nobody changes meanwhile neither raises nor allocates;
        // each round leaves the key on top for the next one, and lua_replace moves a value
        // into its slot without allocating.
        unsafe {
            lua_pushnil(self.state());
            while lua_next(self.state(), index) != 0 {
                let position = self.string_bytes(-2).and_then(|key| names.iter().position(|name| name.as_bytes() == key));
                match position {
                    Some(n) => lua_replace(self.state(), slots[n]),
                    None => {
                        let failure = match self.string_bytes(-2) {
                            Some(key) => {
                                let key = std::str::from_utf8(key).unwrap_or("?");
                                Failure::argument(index, format_args!("unknown option '{key}'"))
                            }
                            None => Failure::argument(index, format_args!("unknown option (a {} key)", self.type_name(-2))),
                        };
                        lua_pop(self.state(), 2);
                        return Err(failure);
                    }
                }
            }
        }
        Ok(slots)
    }

    /// A boolean value: `true` or `false`, nothing else.
    pub fn strict_boolean(&self, index: c_int) -> Result<bool, Failure> {
        if self.kind(index) != Kind::Boolean {
            return Err(Failure::expected(self, index, "boolean"));
        }
        // SAFETY: reads a boolean; never raises.
        Ok(unsafe { lua_toboolean(self.state(), index) } != 0)
    }

    /// Pushes a string with a copy of `bytes`; returns its index. Uses 2 slots.
    pub fn push_string(&mut self, bytes: &[u8]) -> Result<c_int, Failure> {
        self.uses(2);
        let mut op = Op::PushString { bytes: bytes.as_ptr(), len: bytes.len() };
        // SAFETY: a body's (or a callback's) state, with room; the bytes outlive the call,
        // and Lua copies them.
        unsafe { protected(self.state(), &mut op, 0, 1)? };
        Ok(self.top())
    }

    /// Pushes a boolean. Uses 1 slot.
    pub fn push_boolean(&mut self, value: bool) {
        self.uses(1);
        // SAFETY: pushing a boolean allocates nothing; the slot is within the budget (above).
        unsafe { lua_pushboolean(self.state(), c_int::from(value)) };
    }

    /// `table[name] = value at index` (raw). Uses 5 slots.
    pub fn set_named(&mut self, table: c_int, name: &str, value: c_int) -> Result<(), Failure> {
        self.uses(5);
        let (table, value) = (self.absolute(table), self.absolute(value));
        self.push_value(table);
        self.push_string(name.as_bytes())?;
        self.push_value(value);
        // SAFETY: the table, key and value just pushed, as Op::RawSet takes them.
        unsafe { protected(self.state(), &mut Op::RawSet, 3, 0) }.map(drop)
    }

    /// Pushes `weak[address]` and returns its type. Uses 2 slots.
    pub fn push_weak_entry(&mut self, table: &WeakTable, address: Address) -> Kind {
        self.uses(2);
        // SAFETY: raw reads with a light-userdata key.
        Kind::of(unsafe { table.push_entry(self.state(), address.0) })
    }

    /// Pushes `table[n]` of the table kept as user value by the userdata at `index`, and
    /// returns its type (nil when the object has no such table). Uses 2 slots.
    pub fn push_user_value_field(&mut self, index: c_int, n: i64) -> Kind {
        self.uses(2);
        let index = self.absolute(index);
        if self.push_user_value(index) != Kind::Table {
            self.pop(1);
            // SAFETY: pushing nil allocates nothing.
            unsafe { lua_pushnil(self.state()) };
            return Kind::Nil;
        }
        let kind = self.push_field(-1, n);
        // SAFETY: removes the user value table below the field; no allocation.
        unsafe { lua_remove(self.state(), -2) };
        kind
    }
}
