//! Reading a table of named parameters, such as `core.tls.context{ mode = "client", ... }`, and
//! calling a function one of them holds.
//!
//! Entries are found by walking the table with `lua_next` and comparing key bytes: no key string
//! is made (which would allocate) and no metamethod runs, so reading needs only `&mut Stack` for
//! its pushes and pops, never protection. Tables of parameters are small (a caller checks that
//! every key is one it knows before looking any up), so a walk per lookup costs little.

use std::ffi::{c_int, CStr};
use std::fmt;

use super::protected::Op;
use super::raw::*;
use super::stack::Kind;
use super::{Failure, Stack};

/// A key of a table entry, as [`Stack::for_each_entry`] shows it.
#[derive(Clone, Copy, Debug)]
pub enum Key<'a> {
    String(&'a [u8]),
    Integer(i64),
    /// Any other key (a float, a boolean, a table, ...).
    Other,
}

/// An argument of [`Stack::call_function`]: values that are pushed without allocating.
#[derive(Clone, Copy, Debug)]
pub enum Argument {
    Boolean(bool),
    Integer(i64),
}

/// How `obj:name()` went (see [`Stack::call_method`]).
#[derive(Clone, Copy, Debug)]
pub enum MethodCall<'a> {
    /// The object has no such method.
    Missing,
    /// The method raised this error (made a string as the standalone interpreter shows it).
    Raised(&'a str),
    /// The method returned; its first result is at this index.
    Returned(c_int),
}

/// The error a called function raised, as text for a message: the string it raised, or what
/// kind of value it was.
pub enum CallError<'a> {
    Text(&'a str),
    Value(&'static str),
}

impl fmt::Display for CallError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Text(text) => f.write_str(text),
            CallError::Value(kind) => write!(f, "(error object is a {kind} value)"),
        }
    }
}

impl Stack {
    /// The value as a boolean, if it is one.
    pub fn boolean(&self, index: c_int) -> Option<bool> {
        // SAFETY: lua_toboolean never raises.
        (self.kind(index) == Kind::Boolean)
            .then(|| unsafe { lua_toboolean(self.state(), index) } != 0)
    }

    /// Calls `visit(stack, key, value_index)` for every entry of the table at `table`, in
    /// `next` order, stopping at the first failure. The table must not change meanwhile, which
    /// `visit` cannot do: it sees the stack only as `&Stack`. Uses 2 slots, and what `visit`
    /// uses.
    pub fn for_each_entry(
        &mut self,
        table: c_int,
        mut visit: impl FnMut(&Stack, Key<'_>, c_int) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        self.uses(2);
        let table = self.absolute(table);
        let top = self.top();
        // SAFETY: a free slot for the first key (checked above).
        unsafe { lua_pushnil(self.state()) };
        loop {
            // SAFETY: lua_next on a table, with the key it returned last (or nil) on top: it
            // allocates nothing and runs no metamethod; it raises only for a key missing from
            // the table, and nothing can remove one while we walk.
            if unsafe { lua_next(self.state(), table) } == 0 {
                return Ok(());
            }
            let key = match self.kind(-2) {
                Kind::String => Key::String(self.string_bytes(-2).unwrap_or_default()),
                // A number key is read, never converted in place (that would break lua_next).
                Kind::Number => match self.to_number(-2).and_then(number_to_integer) {
                    Some(n) => Key::Integer(n),
                    None => Key::Other,
                },
                _ => Key::Other,
            };
            let value = self.top();
            if let Err(failure) = visit(self, key, value) {
                self.set_top(top);
                return Err(failure);
            }
            self.pop(1);
        }
    }

    /// Pushes the value of the entry of the table at `table` whose key is the string `name`
    /// (nil when there is none), found without metamethods; returns its type. Uses 2 slots.
    pub fn push_named_entry(&mut self, table: c_int, name: &[u8]) -> Kind {
        self.uses(2);
        let table = self.absolute(table);
        // SAFETY: as in for_each_entry; lua_tolstring is only called on string keys, where it
        // neither converts nor allocates. Two slots are used at most.
        unsafe {
            let state = self.state();
            lua_pushnil(state);
            while lua_next(state, table) != 0 {
                if lua_type(state, -2) == LUA_TSTRING {
                    let mut len = 0usize;
                    let key = lua_tolstring(state, -2, &mut len);
                    if std::slice::from_raw_parts(key as *const u8, len) == name {
                        lua_remove(state, -2);
                        return Kind::of(lua_type(state, -1));
                    }
                }
                lua_pop(state, 1);
            }
            lua_pushnil(state);
        }
        Kind::Nil
    }

    /// Calls the value at `function` with `arguments`, keeping one result: `read(stack, index)`
    /// sees it at `index`. If the call raises, `raised` makes the failure from its error. The
    /// stack is as before afterwards. The called code may do anything, including collecting
    /// objects a caller had borrowed (hence `&mut self`). Uses 1 + `arguments.len()` slots.
    pub fn call_function<R>(
        &mut self,
        function: c_int,
        arguments: &[Argument],
        read: impl FnOnce(&Stack, c_int) -> R,
        raised: impl FnOnce(CallError<'_>) -> Failure,
    ) -> Result<R, Failure> {
        self.uses(1 + arguments.len() as c_int);
        let function = self.absolute(function);
        let top = self.top();
        self.push_value(function);
        for argument in arguments {
            match *argument {
                // SAFETY: booleans allocate nothing.
                Argument::Boolean(value) => unsafe {
                    lua_pushboolean(self.state(), value as c_int)
                },
                Argument::Integer(value) => self.push_integer(value),
            }
        }
        // SAFETY: the function and its arguments are on top; lua_pcall catches whatever the
        // call raises (memory errors included) and never raises itself.
        let status = unsafe { lua_pcall(self.state(), arguments.len() as c_int, 1, 0) };
        let result = if status == LUA_OK {
            Ok(read(self, top + 1))
        } else {
            let failure = match self.string_bytes(-1) {
                Some(bytes) => raised(CallError::Text(utf8_prefix(bytes))),
                None => raised(CallError::Value(self.type_name(-1))),
            };
            Err(failure)
        };
        self.set_top(top);
        result
    }
}

impl Stack {
    /// Calls `obj:name()` for the object at `index`, the method looked up as Lua would
    /// (metamethods included), keeping one result; `read` sees how it went. The stack is as
    /// before afterwards. Uses 3 slots. Runs Lua code (hence `&mut self`).
    pub fn call_method<R>(
        &mut self,
        index: c_int,
        name: &'static CStr,
        read: impl FnOnce(&Stack, MethodCall<'_>) -> R,
    ) -> Result<R, Failure> {
        self.uses(3);
        let index = self.absolute(index);
        self.push_value(index);
        self.protected(Op::CallMethod { name }, 1, 2)?;
        let called = self.boolean(-2) == Some(true);
        let call = if called {
            MethodCall::Returned(self.top())
        } else if self.kind(-1) == Kind::Nil {
            MethodCall::Missing
        } else {
            MethodCall::Raised(self.string_bytes(-1).map(utf8_prefix).unwrap_or_default())
        };
        let result = read(self, call);
        self.pop(2);
        Ok(result)
    }
}
