//! [`Stack`]: the Lua stack of a call in progress, as the bodies of Lua-facing functions see it.
//!
//! Methods taking `&self` neither raise nor run Lua code, so a borrowed object stays valid
//! across them. Methods taking `&mut self` may run Lua code (a `getfd` method, a finalizer run
//! by an allocation) or allocate under protection (see protected.rs); a borrow of one of our
//! objects, tied to `&self`, cannot be held across them, which is what keeps a Lua program from
//! closing an object under a method that is using it.
//!
//! # Stack slots
//! Lua guarantees a C function [`BODY_SLOTS`] free slots above its arguments; an entry that
//! needs more says so (`lua_function!(body, slots)`) and reserves them before its body runs,
//! where raising is still allowed. Every method here that pushes says how many slots it uses
//! at most ("Uses N slots") and checks, in debug builds, that they fit in what the entry
//! reserved: a body that outgrows its budget panics in the specs of a debug build instead of
//! writing past the stack.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::mem::{align_of, size_of, MaybeUninit};
use std::num::NonZeroI32;
use std::ptr::NonNull;

use super::module::CALL_KEY;
use super::protected::{protected, Op};
use super::raw::{self, *};
use super::userdata::LuaType;
use super::weak::WeakTable;
use super::Failure;

/// Bytes a body can return as a string without asking Lua for scratch memory first (see
/// [`Stack::return_bytes`]).
pub(super) const SCRATCH: usize = 2048;

/// The free slots Lua guarantees every C function it calls (LUA_MINSTACK): the budget of a body
/// whose entry asks for no more.
pub const BODY_SLOTS: c_int = LUA_MINSTACK;

/// The stack of one call of a Lua-facing function. Only the entry (`lua_function!`) makes one.
pub struct Stack {
    state: NonNull<lua_State>,
    /// The entry's buffer for a string result, written by `return_bytes` and pushed by the
    /// entry after the body has returned.
    scratch: NonNull<[MaybeUninit<u8>; SCRATCH]>,
    /// Set while `return_short` lends the scratch buffer out, so it is never lent twice.
    scratch_lent: Cell<bool>,
    /// The highest top the entry reserved room for (checked in debug builds, see `uses`).
    #[cfg(debug_assertions)]
    limit: c_int,
}

/// What a body leaves for the entry to return.
#[derive(Debug)]
pub enum Returns {
    /// This many values, already pushed.
    Values(c_int),
    /// A string of `len` bytes from the entry's scratch buffer.
    Scratch { len: usize },
    /// A string of `len` bytes from the start of the userdata at `index`.
    Memory { index: c_int, len: usize },
}

/// A body's result: what to return, or why it failed.
pub type Outcome = Result<Returns, Failure>;

/// The type of a Lua value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    None,
    Nil,
    Boolean,
    LightUserdata,
    Number,
    String,
    Table,
    Function,
    Userdata,
    Thread,
}

impl Kind {
    #[inline]
    pub(super) fn of(tag: c_int) -> Kind {
        match tag {
            LUA_TNIL => Kind::Nil,
            LUA_TBOOLEAN => Kind::Boolean,
            LUA_TLIGHTUSERDATA => Kind::LightUserdata,
            LUA_TNUMBER => Kind::Number,
            LUA_TSTRING => Kind::String,
            LUA_TTABLE => Kind::Table,
            LUA_TFUNCTION => Kind::Function,
            LUA_TUSERDATA => Kind::Userdata,
            LUA_TTHREAD => Kind::Thread,
            _ => Kind::None,
        }
    }
}

/// A reference to a value held in the registry (`luaL_ref`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ref(NonZeroI32);

impl Ref {
    pub(super) fn raw(self) -> c_int {
        self.0.get()
    }
}

/// An object known to be a `T` (made by [`Stack::new_object`], or type-tested once by
/// [`Stack::hold`]): where it is on the stack and where its memory is. [`Stack::held`] borrows
/// it again by its address alone, after code that needed `&mut Stack` (making another object,
/// say), with no second type test.
pub struct Held<T> {
    pub index: c_int,
    memory: NonNull<T>,
}

/// The address of one of our objects, used as a key (weak tables, the running callback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address(pub(super) *const c_void);

impl Address {
    pub fn of<T>(object: &T) -> Address {
        Address::at(object)
    }

    pub fn at<T>(object: *const T) -> Address {
        Address(object as *const c_void)
    }
}

impl Stack {
    /// # Safety
    /// `state` is the state Lua called a C function with, with `slots` free slots above its
    /// top; `scratch` outlives the Stack.
    pub(super) unsafe fn new(
        state: *mut lua_State,
        scratch: &mut MaybeUninit<[MaybeUninit<u8>; SCRATCH]>,
        slots: c_int,
    ) -> Stack {
        // SAFETY: Lua never calls a C function with a null state.
        let state = unsafe { NonNull::new_unchecked(state) };
        let _ = slots;
        Stack {
            state,
            scratch: NonNull::from(scratch).cast(),
            scratch_lent: Cell::new(false),
            // SAFETY: lua_gettop only reads the state.
            #[cfg(debug_assertions)]
            limit: unsafe { lua_gettop(state.as_ptr()) } + slots,
        }
    }

    /// Checks, in debug builds, that `slots` more values fit in the room the entry reserved.
    /// Every method that pushes calls it first with the most it pushes at once.
    #[inline]
    pub(super) fn uses(&self, slots: c_int) {
        #[cfg(debug_assertions)]
        assert!(
            self.top() + slots <= self.limit,
            "{slots} more stack slots at top {} exceed the entry's budget (up to {})",
            self.top(),
            self.limit
        );
        let _ = slots;
    }

    pub(super) fn state(&self) -> *mut lua_State {
        self.state.as_ptr()
    }

    pub(super) fn scratch(&self) -> *const u8 {
        self.scratch.as_ptr() as *const u8
    }

    // ---------------------------------------------------------------- reading values ----

    /// Index of the top value: the number of arguments, before anything is pushed.
    #[inline]
    pub fn top(&self) -> c_int {
        // SAFETY: lua_gettop only reads the state.
        unsafe { lua_gettop(self.state()) }
    }

    #[inline]
    pub fn kind(&self, index: c_int) -> Kind {
        // SAFETY: lua_type accepts any index and never raises.
        Kind::of(unsafe { lua_type(self.state(), index) })
    }

    #[inline]
    pub fn is_none_or_nil(&self, index: c_int) -> bool {
        matches!(self.kind(index), Kind::None | Kind::Nil)
    }

    /// "number", "nil", "no value", ...
    pub fn type_name(&self, index: c_int) -> &'static str {
        // SAFETY: see raw::type_name.
        unsafe { raw::type_name(self.state(), index) }
    }

    /// The value as a number if it is one or a numeric string.
    #[inline]
    pub fn to_number(&self, index: c_int) -> Option<f64> {
        // SAFETY: see raw::to_number.
        unsafe { raw::to_number(self.state(), index) }
    }

    /// The value as an integer if it is an integral number or a numeric string.
    #[inline]
    pub fn to_integer(&self, index: c_int) -> Option<i64> {
        // SAFETY: see raw::to_integer.
        unsafe { raw::to_integer(self.state(), index) }
    }

    /// A number argument; numeric strings convert as in Lua's own `luaL_checknumber`.
    #[inline]
    pub fn number(&self, index: c_int) -> Result<f64, Failure> {
        self.to_number(index)
            .ok_or_else(|| Failure::expected(self, index, "number"))
    }

    /// An integer argument: any number with an integral value (3.0 included) or a numeric string.
    #[inline]
    pub fn integer(&self, index: c_int) -> Result<i64, Failure> {
        self.to_integer(index)
            .ok_or_else(|| match self.to_number(index) {
                Some(_) => {
                    Failure::argument(index, format_args!("number has no integer representation"))
                }
                None => Failure::expected(self, index, "number"),
            })
    }

    /// The bytes of a string value (numbers are not converted: that would allocate).
    #[inline]
    pub fn string_bytes(&self, index: c_int) -> Option<&[u8]> {
        if self.kind(index) != Kind::String {
            return None;
        }
        let mut length = 0usize;
        // SAFETY: lua_tolstring on a string neither converts nor allocates; the bytes belong to
        // a string that stays at `index` while `self` is borrowed (only `&mut self` pops).
        unsafe {
            let data = lua_tolstring(self.state(), index, &mut length);
            Some(std::slice::from_raw_parts(data as *const u8, length))
        }
    }

    /// The address held by a light userdata (0 for any other value).
    pub fn light_userdata(&self, index: c_int) -> usize {
        // SAFETY: lua_touserdata never raises; for a light userdata it returns its address.
        unsafe { lua_touserdata(self.state(), index) as usize }
    }

    /// Whether the value can be called: a function, or a value whose metatable has `__call`.
    /// Uses 2 slots.
    pub fn is_callable(&self, index: c_int) -> bool {
        self.uses(2);
        if self.kind(index) == Kind::Function {
            return true;
        }
        // SAFETY: raw reads only (the "__call" key comes from the registry, so no string is
        // made); the two values pushed are popped before returning, so the stack is unchanged.
        unsafe {
            let state = self.state();
            if lua_getmetatable(state, index) == 0 {
                return false;
            }
            push_registry_entry(state, &CALL_KEY);
            lua_rawget(state, -2);
            let callable = lua_type(state, -1) != LUA_TNIL;
            lua_pop(state, 2);
            callable
        }
    }

    /// A callable argument, or the standard failure naming `what`.
    pub fn callable(&self, index: c_int, what: &str) -> Result<(), Failure> {
        if self.is_callable(index) {
            Ok(())
        } else {
            Err(Failure::expected(self, index, what))
        }
    }

    /// The object of type `T` at `index`, or `None` for any other value. Uses 2 slots.
    #[inline]
    pub fn test_userdata<T: LuaType>(&self, index: c_int) -> Option<&T> {
        self.uses(2);
        // SAFETY: a userdata whose metatable is T's was made by `new_userdata::<T>`, which
        // wrote a T into it before setting the metatable; T's metatable is T's alone (see
        // LuaType). The memory stays valid while the value is at `index`, and a borrow of
        // `self` keeps it there; our types never hand out `&mut`, so shared references are
        // all there is.
        unsafe { super::userdata::test::<T>(self.state(), index).map(|memory| &*memory) }
    }

    /// The object of type `T` at `index`, type-tested now, as a [`Held`] to borrow again later
    /// with [`Stack::held`]; or the standard `T::WHAT expected` failure.
    #[inline]
    pub fn hold<T: LuaType>(&self, index: c_int) -> Result<Held<T>, Failure> {
        let object = self.userdata::<T>(index)?;
        Ok(Held {
            index: self.absolute(index),
            memory: NonNull::from(object),
        })
    }

    /// The object `held` names, while it is still at its index (else the standard
    /// `T::WHAT expected` failure, as [`Stack::userdata`]).
    #[inline]
    pub fn held<T: LuaType>(&self, held: &Held<T>) -> Result<&T, Failure> {
        // SAFETY: touching a value neither raises nor allocates. A userdata whose block is at
        // `held.memory` is the one that was made or tested as a T (block addresses are unique
        // among live objects, and a live object never changes type); it stays valid while it
        // is at `held.index`, which a borrow of `self` keeps so. Our types never hand out
        // `&mut`.
        unsafe {
            let at = lua_touserdata(self.state(), held.index);
            if std::ptr::eq(at as *const T, held.memory.as_ptr()) {
                Ok(held.memory.as_ref())
            } else {
                Err(Failure::expected(self, held.index, T::WHAT))
            }
        }
    }

    /// The object of type `T` at `index`, or the standard `T::WHAT expected` failure.
    #[inline]
    pub fn userdata<T: LuaType>(&self, index: c_int) -> Result<&T, Failure> {
        self.test_userdata(index)
            .ok_or_else(|| Failure::expected(self, index, T::WHAT))
    }

    // ------------------------------------------------------- pushing without raising ----

    /// Uses 1 slot.
    #[inline]
    pub fn push_integer(&mut self, value: i64) {
        self.uses(1);
        // SAFETY: numbers need no allocation; the slot is within the budget (checked above).
        unsafe { lua_pushinteger(self.state(), value as lua_Integer) };
    }

    /// Uses 1 slot.
    #[inline]
    pub fn push_value(&mut self, index: c_int) {
        self.uses(1);
        // SAFETY: copies a value; no allocation.
        unsafe { lua_pushvalue(self.state(), index) };
    }

    #[inline]
    pub fn pop(&mut self, count: c_int) {
        // SAFETY: callers pop only what they pushed.
        unsafe { lua_pop(self.state(), count) };
    }

    /// Drops every value above `top`.
    #[inline]
    pub fn set_top(&mut self, top: c_int) {
        // SAFETY: lowering the top never raises.
        unsafe { lua_settop(self.state(), top) };
    }

    /// An absolute index for `index`, which may count from the top.
    pub fn absolute(&self, index: c_int) -> c_int {
        if index < 0 {
            self.top() + index + 1
        } else {
            index
        }
    }

    /// Pushes slot `n` of the object at `index` (see [`LuaType::SLOTS`]) and returns its type:
    /// nil when the object has no such slot. Uses 2 slots.
    pub fn push_slot(&mut self, index: c_int, n: c_int) -> Kind {
        self.uses(2);
        // SAFETY: reading a user value and a raw integer key neither allocates nor runs Lua code.
        unsafe { push_slot(self.state(), index, n) }
    }

    /// Sets slot `n` (1 to `T::SLOTS`) of the object of type `T` at `index` to the value at
    /// `value`. Never raises (see [`set_slot`]). Uses 2 slots.
    pub fn set_slot<T: LuaType>(&mut self, index: c_int, n: c_int, value: c_int) {
        self.uses(2);
        debug_assert!(self.test_userdata::<T>(index).is_some());
        debug_assert!(n >= 1 && n <= T::SLOTS, "slot {n} of {}", T::WHAT);
        if n < 1 || n > T::SLOTS {
            return;
        }
        let (index, value) = (self.absolute(index), self.absolute(value));
        // SAFETY: `index` holds a `T` (callers pass the object they made or checked), whose
        // slots 1 to T::SLOTS exist, and `n` is one of them.
        unsafe { set_slot(self.state(), index, n, value) }
    }

    /// Pushes `table[n]` (raw) and returns its type. Uses 1 slot.
    pub fn push_field(&mut self, table: c_int, n: i64) -> Kind {
        self.uses(1);
        // SAFETY: a raw read of an integer key: no metamethod, no allocation.
        Kind::of(unsafe { lua_rawgeti(self.state(), table, n as lua_Integer) })
    }

    /// Pushes the value with the highest index in a weak sequence (see `remember`), and
    /// returns whether there was one. Entries whose value was collected are skipped.
    /// Uses 2 slots.
    pub fn push_latest(&mut self, table: &WeakTable) -> bool {
        self.uses(2);
        // SAFETY: raw reads of the sequence table, which the module made.
        unsafe {
            let state = self.state();
            table.push(state);
            let mut n = sequence_end(state);
            while n > 0 {
                if lua_rawgeti(state, -1, n) != LUA_TNIL {
                    lua_remove(state, -2);
                    return true;
                }
                lua_pop(state, 1);
                n -= 1;
            }
            lua_pop(state, 1);
            false
        }
    }

    // ------------------------------------------------- allocating, under protection ----

    /// Runs a raising operation; on failure the error value is left on top for the entry.
    /// Uses 2 slots above its arguments (every `Op` leaves at most `arguments + 2` results).
    pub(super) fn protected(
        &mut self,
        mut op: Op,
        arguments: c_int,
        results: c_int,
    ) -> Result<Op, Failure> {
        self.uses(2);
        debug_assert!(results <= arguments + 2);
        // SAFETY: the stack holds the arguments and has the room checked above; the module
        // opened in this state installed the runner.
        unsafe { protected(self.state(), &mut op, arguments, results)? };
        Ok(op)
    }

    /// Pushes a new object of type `T` holding `value`; returns its (absolute) index.
    /// On failure `value` is dropped and nothing is pushed but the error. Uses 2 slots.
    pub fn new_userdata<T: LuaType>(&mut self, value: T) -> Result<c_int, Failure> {
        self.new_object(value).map(|made| made.index)
    }

    /// As [`Stack::new_userdata`], and remembers where the object's memory is, so that
    /// [`Stack::held`] can borrow it again without the type test. Uses 2 slots.
    pub fn new_object<T: LuaType>(&mut self, value: T) -> Result<Held<T>, Failure> {
        self.make_object(value, None)
    }

    /// As [`Stack::new_object`], and records the object in `weak` under its address (one
    /// protected call for both). Uses 4 slots.
    pub fn new_object_in<T: LuaType>(
        &mut self,
        value: T,
        weak: &'static WeakTable,
    ) -> Result<Held<T>, Failure> {
        self.uses(4);
        self.make_object(value, Some(weak))
    }

    /// Pushes two new objects of type `T`, `first` and then `second`, in one protected call
    /// (half the cost of two [`Stack::new_object`] calls). On failure both values are dropped
    /// and nothing is pushed but the error. Uses 3 slots.
    pub fn new_object_pair<T: LuaType>(
        &mut self,
        first: T,
        second: T,
    ) -> Result<[Held<T>; 2], Failure> {
        self.uses(3);
        let op = Op::NewUserdataPair {
            size: size_of::<T>(),
            slots: T::SLOTS,
            memory: [std::ptr::null_mut(); 2],
        };
        let Op::NewUserdataPair { memory, .. } = self.protected(op, 0, 2)? else {
            unreachable!()
        };
        let top = self.top();
        // SAFETY: the runner made both blocks for a T, the first below the second.
        unsafe {
            let first = self.attach(memory[0], top - 1, first)?;
            Ok([first, self.attach(memory[1], top, second)?])
        }
    }

    fn make_object<T: LuaType>(
        &mut self,
        value: T,
        weak: Option<&'static WeakTable>,
    ) -> Result<Held<T>, Failure> {
        self.uses(2);
        let op = Op::NewUserdata {
            size: size_of::<T>(),
            slots: T::SLOTS,
            memory: std::ptr::null_mut(),
            weak,
        };
        let Op::NewUserdata { memory, .. } = self.protected(op, 0, 1)? else {
            unreachable!()
        };
        // SAFETY: the runner made the block for a T, on top.
        unsafe { self.attach(memory, self.top(), value) }
    }

    /// Writes `value` into a new object's block and attaches `T`'s metatable (and so `__gc`
    /// and every method) to it. Uses 1 slot.
    ///
    /// # Safety
    /// `memory` is the block of the userdata at `index` (absolute), which the runner has just
    /// made for a `T` (`size_of::<T>()` bytes, `T::SLOTS` slots) and which nothing else has seen.
    unsafe fn attach<T: LuaType>(
        &mut self,
        memory: *mut c_void,
        index: c_int,
        value: T,
    ) -> Result<Held<T>, Failure> {
        const {
            assert!(
                align_of::<T>() <= 8,
                "Lua aligns userdata memory to 8 bytes"
            )
        };
        // Lua never hands out a null block: on failure it raised instead.
        let memory = NonNull::new(memory as *mut T).ok_or_else(Failure::out_of_memory)?;
        // SAFETY: per the contract the block is sized and aligned for T (asserted above) and
        // not yet shared. The value is written before the metatable is attached; setting a
        // metatable allocates nothing.
        unsafe {
            memory.as_ptr().write(value);
            push_registry_entry(self.state(), T::KEY);
            lua_setmetatable(self.state(), index);
        }
        Ok(Held { index, memory })
    }

    /// Pushes a new table with room for `array` sequence and `hash` other entries. Uses 2 slots.
    pub fn new_table(&mut self, array: c_int, hash: c_int) -> Result<c_int, Failure> {
        self.protected(Op::NewTable { array, hash }, 0, 1)?;
        Ok(self.top())
    }

    /// Holds the value at `index` in the registry until [`Stack::unreference`]. Uses 3 slots.
    pub fn reference(&mut self, index: c_int) -> Result<Ref, Failure> {
        self.uses(3);
        self.push_value(index);
        let Op::Reference { reference } = self.protected(Op::Reference { reference: 0 }, 1, 0)?
        else {
            unreachable!()
        };
        // luaL_ref gives a positive number for every value but nil, which callers never pass.
        NonZeroI32::new(reference)
            .filter(|r| r.get() > 0)
            .map(Ref)
            .ok_or_else(Failure::out_of_memory)
    }

    /// Uses 2 slots.
    pub fn unreference(&mut self, reference: Ref) -> Result<(), Failure> {
        self.protected(
            Op::Unreference {
                reference: reference.raw(),
            },
            0,
            0,
        )
        .map(drop)
    }

    /// `table[n] = value at index` (raw). Uses 5 slots.
    pub fn set_field(&mut self, table: c_int, n: i64, value: c_int) -> Result<(), Failure> {
        self.uses(5);
        let (table, value) = (self.absolute(table), self.absolute(value));
        self.push_value(table);
        self.push_integer(n);
        self.push_value(value);
        self.protected(Op::RawSet, 3, 0).map(drop)
    }

    /// `weak[address] = value at index`. Uses 5 slots.
    pub fn set_weak_entry(
        &mut self,
        table: &WeakTable,
        address: Address,
        value: c_int,
    ) -> Result<(), Failure> {
        self.uses(5);
        let value = self.absolute(value);
        // SAFETY: raw pushes: the table from the registry, and a light userdata.
        unsafe {
            table.push(self.state());
            lua_pushlightuserdata(self.state(), address.0 as *mut c_void);
        }
        self.push_value(value);
        self.protected(Op::RawSet, 3, 0).map(drop)
    }

    /// Appends the value at `index` to a weak sequence, whose end is kept at its key 0.
    /// Collected entries at the end are reused, so the sequence grows only with live values.
    /// Uses 7 slots.
    pub fn remember(&mut self, table: &WeakTable, value: c_int) -> Result<(), Failure> {
        self.uses(7);
        let value = self.absolute(value);
        let top = self.top();
        // SAFETY: raw reads of the sequence table, which the module made.
        let mut end = unsafe {
            table.push(self.state());
            sequence_end(self.state())
        };
        let list = self.top();
        while end > 0 {
            let kind = self.push_field(list, end);
            self.pop(1);
            if kind != Kind::Nil {
                break;
            }
            end -= 1;
        }
        self.set_field(list, end + 1, value)?;
        self.push_integer(end + 1);
        self.set_field(list, 0, -1)?;
        self.set_top(top);
        Ok(())
    }

    /// Converts the number at `index` into its string form (as `tostring` writes it) on top.
    /// Uses 3 slots.
    pub fn push_number_as_string(&mut self, index: c_int) -> Result<(), Failure> {
        self.push_value(index);
        self.protected(Op::NumberToString, 1, 1).map(drop)
    }

    /// Returns `text` as a Lua string.
    pub fn return_str(&mut self, text: &str) -> Outcome {
        self.return_bytes(text.len(), |_, out| {
            for (slot, byte) in out.iter_mut().zip(text.as_bytes()) {
                slot.write(*byte);
            }
            Ok(text.len())
        })
    }

    /// Returns a string of at most [`SCRATCH`] bytes written by `fill` into the entry's scratch
    /// buffer, without allocating first: `fill` can use what the body has borrowed from the
    /// stack, since no Lua code runs in between. `None` when `len` is too long (then use
    /// [`Stack::return_bytes`]).
    pub fn return_short(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<usize, Failure>,
    ) -> Option<Outcome> {
        if len > SCRATCH || self.scratch_lent.replace(true) {
            return None;
        }
        // SAFETY: the scratch buffer lives in the entry's frame, which outlives the body, and
        // is lent to one `fill` at a time (`scratch_lent`).
        let scratch = unsafe { &mut (&mut *self.scratch.as_ptr())[..len] };
        let written = fill(scratch);
        self.scratch_lent.set(false);
        Some(written.map(|written| Returns::Scratch {
            len: written.min(len),
        }))
    }

    /// Returns `len` bytes written by `fill` as a Lua string. Lua memory for them is set aside
    /// first (scratch space in the entry for short strings, a userdata otherwise); `fill` runs
    /// after that (so after any finalizer the allocation ran) with a fresh view of the stack,
    /// writes at most `len` bytes, and says how many it wrote. The entry makes the string once
    /// the body has returned. Uses 2 slots.
    pub fn return_bytes(
        &mut self,
        len: usize,
        fill: impl FnOnce(&Stack, &mut [MaybeUninit<u8>]) -> Result<usize, Failure>,
    ) -> Outcome {
        if len <= SCRATCH && !self.scratch_lent.replace(true) {
            // SAFETY: the scratch buffer lives in the entry's frame, which outlives the body,
            // and is lent to one `fill` at a time (`scratch_lent`).
            let scratch = unsafe { &mut (&mut *self.scratch.as_ptr())[..len] };
            let written = fill(self, scratch);
            self.scratch_lent.set(false);
            return written.map(|written| Returns::Scratch {
                len: written.min(len),
            });
        }
        let Op::NewUserdata { memory, .. } = self.protected(
            Op::NewUserdata {
                size: len,
                slots: 0,
                memory: std::ptr::null_mut(),
                weak: None,
            },
            0,
            1,
        )?
        else {
            unreachable!()
        };
        let index = self.top();
        // SAFETY: the block was just made, `len` bytes long; the userdata at `index` keeps it.
        let block = unsafe { std::slice::from_raw_parts_mut(memory as *mut MaybeUninit<u8>, len) };
        let written = fill(self, block)?;
        Ok(Returns::Memory {
            index,
            len: written.min(len),
        })
    }
}

impl Failure {
    /// The standard `<what> expected, got <type>` argument failure. (Here rather than in
    /// failure.rs, which comes before the stack in the layer.)
    pub fn expected(stack: &Stack, index: c_int, what: &str) -> Failure {
        Failure::argument(
            index,
            format_args!("{what} expected, got {}", stack.type_name(index)),
        )
    }
}

/// The end of a weak sequence, kept at its key 0, for the table on top of the stack.
unsafe fn sequence_end(state: *mut lua_State) -> i64 {
    // SAFETY: a raw read of the table on top (caller).
    unsafe {
        lua_rawgeti(state, -1, 0);
        let n = raw::to_integer(state, -1).unwrap_or(0);
        lua_pop(state, 1);
        n
    }
}

/// Pushes slot `n` of the userdata at `index`; returns its type (nil for a missing slot).
///
/// # Safety
/// A valid state with two free slots. Never raises.
pub(super) unsafe fn push_slot(state: *mut lua_State, index: c_int, n: c_int) -> Kind {
    // SAFETY: per the contract: reading user values and raw integer keys allocates nothing.
    unsafe {
        #[cfg(any(feature = "lua54", feature = "lua55"))]
        {
            match lua_getiuservalue(state, index, n) {
                LUA_TNONE => Kind::Nil,
                tag => Kind::of(tag),
            }
        }
        #[cfg(not(any(feature = "lua54", feature = "lua55")))]
        {
            if lua_getuservalue(state, index) != LUA_TTABLE {
                lua_pop(state, 1);
                lua_pushnil(state);
                return Kind::Nil;
            }
            let kind = Kind::of(lua_rawgeti(state, -1, n as lua_Integer));
            lua_remove(state, -2);
            kind
        }
    }
}

/// Stores the value at `value` in slot `n` of the userdata at `index`, without allocating.
///
/// On 5.4 and 5.5 a slot is a user value of the userdata, allocated with it. Elsewhere it is
/// an entry of the table made with the object (protected.rs, `Op::NewUserdata`) with an array
/// part of SLOTS entries: a raw store to an integer key inside a table's array part writes the
/// array in place. Only these stores ever write that table, so nothing rehashes it or shrinks
/// its array. (The debug library can swap a user value for another table, as it can swap a
/// metatable: outside the guarantee, as for every C module; see `LuaType`.)
///
/// # Safety
/// A valid state with two free slots; `index` and `value` absolute; `index` holds an object
/// with at least `n` slots.
unsafe fn set_slot(state: *mut lua_State, index: c_int, n: c_int, value: c_int) {
    // SAFETY: per the contract and the reasoning above.
    unsafe {
        #[cfg(any(feature = "lua54", feature = "lua55"))]
        {
            lua_pushvalue(state, value);
            lua_setiuservalue(state, index, n);
        }
        #[cfg(not(any(feature = "lua54", feature = "lua55")))]
        {
            if lua_getuservalue(state, index) == LUA_TTABLE {
                lua_pushvalue(state, value);
                lua_rawseti(state, -2, n as lua_Integer);
            }
            lua_pop(state, 1);
        }
    }
}
