//! What the networking functions need of the Lua layer beyond the C module's calls: option
//! tables read without running Lua code, booleans, strings pushed from Rust, and finding an
//! object again from its address.

use std::ffi::c_int;

use super::params::Key;
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
    pub fn options<const N: usize>(
        &mut self,
        index: c_int,
        names: &[&str; N],
    ) -> Result<[c_int; N], Failure> {
        self.uses(N as c_int + 2);
        let index = self.absolute(index);
        let mut slots = [0; N];
        match self.kind(index) {
            Kind::None | Kind::Nil => {
                for slot in &mut slots {
                    self.push_nil();
                    *slot = self.top();
                }
                return Ok(slots);
            }
            Kind::Table => {}
            _ => return Err(Failure::expected(self, index, "table or nil")),
        }
        self.for_each_entry(index, |stack, key, value| match key {
            Key::String(key) if names.iter().any(|name| name.as_bytes() == key) => Ok(()),
            Key::String(key) => {
                let key = std::str::from_utf8(key).unwrap_or("?");
                Err(Failure::argument(
                    index,
                    format_args!("unknown option '{key}'"),
                ))
            }
            // The key sits just below its value.
            _ => Err(Failure::argument(
                index,
                format_args!("unknown option (a {} key)", stack.type_name(value - 1)),
            )),
        })?;
        for (slot, name) in slots.iter_mut().zip(names) {
            self.push_named_entry(index, name.as_bytes());
            *slot = self.top();
        }
        Ok(slots)
    }

    /// A boolean value: `true` or `false`, nothing else.
    pub fn strict_boolean(&self, index: c_int) -> Result<bool, Failure> {
        self.boolean(index)
            .ok_or_else(|| Failure::expected(self, index, "boolean"))
    }

    /// Pushes a string with a copy of `bytes`; returns its index. Uses 2 slots.
    pub fn push_string(&mut self, bytes: &[u8]) -> Result<c_int, Failure> {
        self.uses(2);
        let mut op = Op::PushString {
            bytes: bytes.as_ptr(),
            len: bytes.len(),
        };
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
}
