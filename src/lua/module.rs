//! The static description of the module table and of each userdata type, and the code that
//! builds them in a Lua state when `require "luaevent.core"` runs.

use std::ffi::{c_int, CStr};

use super::raw::*;
use super::userdata::LuaType;
use super::weak::WeakTable;

/// A Lua-visible function: its name and the entry made by `lua_function!`.
pub type Method = (&'static CStr, lua_CFunction);

/// A userdata type: its metatable, registered under its name (so `tostring` shows it) and
/// under its key (how this layer finds it without allocating). Made by [`TypeSpec::of`], so
/// that the name and the key are those of one [`LuaType`] and cannot belong to two.
pub struct TypeSpec {
    name: &'static CStr,
    key: &'static u8,
    /// Reached through `__index`; several lists, concatenated (the base's `addevent` comes
    /// from the event type).
    methods: &'static [&'static [Method]],
    /// Set on the metatable itself (`__gc`, `__len`, ...).
    metamethods: &'static [Method],
}

impl TypeSpec {
    /// The metatable of `T`, with `methods` behind `__index` and `metamethods` on itself.
    pub const fn of<T: LuaType>(
        methods: &'static [&'static [Method]],
        metamethods: &'static [Method],
    ) -> TypeSpec {
        TypeSpec {
            name: T::NAME,
            key: T::KEY,
            methods,
            metamethods,
        }
    }
}

/// The module: what `require "luaevent.core"` returns, and what it registers on the way.
pub struct ModuleSpec {
    pub types: &'static [&'static TypeSpec],
    pub weak_tables: &'static [&'static WeakTable],
    pub functions: &'static [Method],
    pub integers: &'static [(&'static CStr, i64)],
    pub strings: &'static [(&'static CStr, &'static CStr)],
    /// Sub-tables of functions (`core.buffer`, `core.bufferevent`).
    pub tables: &'static [(&'static CStr, &'static [Method])],
}

impl ModuleSpec {
    /// Whether no two types share a name. Types are found by name on LuaJIT (luaL_testudata),
    /// so a shared name would let one type's memory pass for another's. Checked at compile
    /// time by lib.rs.
    pub const fn has_distinct_type_names(&self) -> bool {
        let mut i = 0;
        while i < self.types.len() {
            let mut j = i + 1;
            while j < self.types.len() {
                if same_bytes(self.types[i].name.to_bytes(), self.types[j].name.to_bytes()) {
                    return false;
                }
                j += 1;
            }
            i += 1;
        }
        true
    }
}

const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Registry key of the string "__call", kept so that testing for a `__call` metamethod needs
/// no string to be made (see `Stack::is_callable`).
pub(super) static CALL_KEY: u8 = 0;

/// Builds the module and leaves its table on the stack.
///
/// # Safety
/// Runs inside the protected runner: raising is allowed, the stack has LUA_MINSTACK slots.
pub(super) unsafe fn open(state: *mut lua_State, spec: &'static ModuleSpec) {
    // SAFETY: per the contract; only table construction and raw registry writes.
    unsafe {
        lua_pushstring(state, c"__call".as_ptr());
        set_registry_entry(state, &CALL_KEY);
        for table in spec.weak_tables {
            table.create_unless_present(state);
        }
        for kind in spec.types {
            register_type(state, kind);
        }
        lua_createtable(
            state,
            0,
            (spec.functions.len() + spec.integers.len() + spec.strings.len() + spec.tables.len())
                as c_int,
        );
        set_functions(state, spec.functions);
        for (name, value) in spec.integers {
            lua_pushinteger(state, *value as lua_Integer);
            lua_setfield(state, -2, name.as_ptr());
        }
        for (name, value) in spec.strings {
            lua_pushstring(state, value.as_ptr());
            lua_setfield(state, -2, name.as_ptr());
        }
        for (name, functions) in spec.tables {
            lua_createtable(state, 0, functions.len() as c_int);
            set_functions(state, functions);
            lua_setfield(state, -2, name.as_ptr());
        }
    }
}

/// The metatable of one type; a module loaded a second time into the same state refills it.
unsafe fn register_type(state: *mut lua_State, kind: &TypeSpec) {
    // SAFETY: as for `open`.
    unsafe {
        luaL_newmetatable(state, kind.name.as_ptr());
        let metatable = lua_gettop(state);
        set_methods(state, kind.metamethods, metatable, kind.key);
        let count: usize = kind.methods.iter().map(|list| list.len()).sum();
        lua_createtable(state, 0, count as c_int);
        for list in kind.methods {
            set_methods(state, list, metatable, kind.key);
        }
        lua_setfield(state, -2, c"__index".as_ptr());
        lua_pushvalue(state, -1);
        set_registry_entry(state, kind.key);
        lua_pop(state, 1);
    }
}

/// Sets the methods of the type whose metatable is at `metatable` (absolute) and whose key is
/// `key` in the table on top. Each gets both as upvalues 1 and 2: `userdata::test::<T>` then
/// recognises `T`'s objects without a registry lookup when `T` is the method's own type (the
/// key says which), and looks `T`'s metatable up otherwise.
unsafe fn set_methods(
    state: *mut lua_State,
    methods: &[Method],
    metatable: c_int,
    key: &'static u8,
) {
    // SAFETY: as for `open`; the table is on top, three slots are used at a time.
    unsafe {
        for (name, function) in methods {
            lua_pushvalue(state, metatable);
            lua_pushlightuserdata(state, key as *const u8 as *mut std::ffi::c_void);
            lua_pushcclosure(state, *function, 2);
            lua_setfield(state, -2, name.as_ptr());
        }
    }
}

/// Sets `functions`, which belong to no type (no upvalues), in the table on top.
unsafe fn set_functions(state: *mut lua_State, functions: &[Method]) {
    // SAFETY: as for `open`; the table is on top.
    unsafe {
        for (name, function) in functions {
            lua_pushcfunction(state, *function);
            lua_setfield(state, -2, name.as_ptr());
        }
    }
}
