//! Weak-valued tables in the registry: how the module finds Lua objects again (a bufferevent
//! from libevent's callback argument, the latest base) without keeping them alive.

use std::ffi::{c_int, c_void, CStr};

use super::raw::*;

/// A weak-valued registry table, created when the module opens. The address of the static
/// holding this value is its registry key.
pub struct WeakTable {
    /// `__mode` of the table's metatable.
    mode: &'static CStr,
    /// Gives the static a size, so that its address is its own.
    _key: u8,
}

impl WeakTable {
    /// A table whose values are weak.
    pub const fn weak_values() -> WeakTable {
        WeakTable {
            mode: c"v",
            _key: 0,
        }
    }

    fn key(&self) -> *const u8 {
        &self._key
    }

    /// Makes the table, unless this state has it already (the module loaded a second time
    /// keeps the objects the first one recorded).
    ///
    /// # Safety
    /// Inside the protected runner: raising is allowed, the stack has room.
    pub(super) unsafe fn create_unless_present(&self, state: *mut lua_State) {
        // SAFETY: per the contract.
        unsafe {
            push_registry_entry(state, self.key());
            let present = lua_type(state, -1) == LUA_TTABLE;
            lua_pop(state, 1);
            if present {
                return;
            }
            lua_createtable(state, 0, 0);
            lua_createtable(state, 0, 1);
            lua_pushstring(state, self.mode.as_ptr());
            lua_setfield(state, -2, c"__mode".as_ptr());
            lua_setmetatable(state, -2);
            set_registry_entry(state, self.key());
        }
    }

    /// Pushes the table. Never raises.
    ///
    /// # Safety
    /// A valid state with a free slot, in which the module was opened.
    pub(super) unsafe fn push(&self, state: *mut lua_State) {
        // SAFETY: a raw registry read.
        unsafe { push_registry_entry(state, self.key()) };
    }

    /// Pushes `table[address]` and returns its type. Never raises.
    ///
    /// # Safety
    /// As for [`WeakTable::push`], with two free slots.
    pub(super) unsafe fn push_entry(&self, state: *mut lua_State, address: *const c_void) -> c_int {
        // SAFETY: raw reads with a light-userdata key.
        unsafe {
            self.push(state);
            lua_pushlightuserdata(state, address as *mut c_void);
            lua_rawget(state, -2);
            lua_remove(state, -2);
            lua_type(state, -1)
        }
    }
}
