//! Our userdata types: the trait that names each one's metatable, and the type test behind
//! `Stack::userdata`. A type's name, argument-error word and registry key come from one
//! `lua_type!` line, and its metatable's description from `TypeSpec::of::<T>`.

use std::ffi::{c_int, CStr};

use super::raw::*;

/// A Rust type living inside Lua userdata, with a metatable of its own.
///
/// # Safety
/// `KEY` is this type's alone, and so is `NAME` among the registered types (the module checks
/// names at compile time, see `ModuleSpec::has_distinct_type_names`): a userdata passes for a
/// `Self` exactly when its metatable is the one registered under `KEY`. Implement it with
/// [`lua_type!`](crate::lua::lua_type), which makes a fresh key for each type.
///
/// As for every C module that tells its objects by their metatable (`luaL_checkudata`), the
/// debug library is outside this guarantee: `debug.setmetatable` can give any userdata any
/// metatable, and `debug.setupvalue` can replace a method's upvalues (see `test`).
pub unsafe trait LuaType: Sized + 'static {
    /// The metatable's name in the registry, e.g. `luaevent.core.buffer`.
    const NAME: &'static CStr;
    /// How argument errors name it: `buffer expected, got nil`.
    const WHAT: &'static str;
    /// How many Lua values each object keeps alive (its callbacks, the objects it lends out),
    /// in slots 1 to SLOTS that [`Stack::set_slot`](super::Stack::set_slot) writes without
    /// allocating: user values of the userdata itself on Lua 5.4 and 5.5, a table made with
    /// the object elsewhere. Zero, the default, costs nothing.
    const SLOTS: c_int = 0;
    /// The registry key of the metatable.
    const KEY: &'static u8;
}

/// `lua_type!(Buffer, c"luaevent.core.buffer", "buffer")` makes `Buffer` a [`LuaType`] with a
/// registry key of its own (a static made for it here). Add `, slots N` for a type that keeps
/// N Lua values (see [`LuaType::SLOTS`]).
macro_rules! lua_type {
    ($type:ty, $name:expr, $what:expr) => {
        $crate::lua::lua_type!($type, $name, $what, slots 0);
    };
    ($type:ty, $name:expr, $what:expr, slots $slots:literal) => {
        // SAFETY: KEY points at a static made for this impl alone, and there is one impl per type.
        unsafe impl $crate::lua::LuaType for $type {
            const NAME: &'static ::std::ffi::CStr = $name;
            const WHAT: &'static str = $what;
            const SLOTS: ::std::ffi::c_int = $slots;
            const KEY: &'static u8 = {
                static KEY: u8 = 0;
                &KEY
            };
        }
    };
}
pub(crate) use lua_type;

/// The memory of the userdata at `index` if its metatable is `T`'s. Never raises.
///
/// The metatable is compared with `T`'s own, found in the registry under `T::KEY`: nothing
/// else (not the calling method's type, nor anything a Lua program can reach) decides.
///
/// # Safety
/// A valid state, with two free slots, in which the module was opened.
pub(super) unsafe fn test<T: LuaType>(state: *mut lua_State, index: c_int) -> Option<*const T> {
    // SAFETY: LuaJIT's luaL_testudata compares metatables by a registry lookup by name, which
    // finds the existing interned name string and allocates nothing; one call is cheaper there
    // than the four of the generic path. Names are distinct per type (see LuaType).
    #[cfg(feature = "luajit")]
    unsafe {
        let memory = luajit_testudata(state, index, T::NAME.as_ptr());
        (!memory.is_null()).then_some(memory as *const T)
    }
    // SAFETY: raw reads (the metatable, upvalues, a registry entry with a light-userdata
    // key) and raw comparisons: nothing here can raise or run Lua code. At most two slots are
    // used, and given back.
    #[cfg(not(feature = "luajit"))]
    unsafe {
        // Full and light userdata have an address; only full ones have a metatable of their
        // own (light userdata share one, which only the debug library can set).
        let memory = lua_touserdata(state, index);
        if memory.is_null() || lua_getmetatable(state, index) == 0 {
            return None;
        }
        let key = T::KEY as *const u8 as *const std::ffi::c_void;
        // Fast path: a method carries its own type's metatable and key as upvalues 1 and 2
        // (see module::register_type), which spares the registry lookup when `T` is that type.
        let same = if std::ptr::eq(lua_touserdata(state, lua_upvalueindex(2)), key) {
            lua_rawequal(state, -1, lua_upvalueindex(1)) != 0
        } else {
            lua_rawgetp(state, LUA_REGISTRYINDEX, key);
            let same = lua_rawequal(state, -1, -2) != 0;
            lua_pop(state, 1);
            same
        };
        lua_pop(state, 1);
        same.then_some(memory as *const T)
    }
}

// LuaJIT exports luaL_testudata (a 5.2 addition); mlua's 5.1 bindings do not declare it.
#[cfg(feature = "luajit")]
unsafe extern "C-unwind" {
    #[link_name = "luaL_testudata"]
    fn luajit_testudata(
        state: *mut lua_State,
        index: c_int,
        name: *const std::ffi::c_char,
    ) -> *mut std::ffi::c_void;
}
