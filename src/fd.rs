//! File descriptor arguments, as the C module takes them: an integer, a light userdata, or any
//! object with a `getfd` method (LuaSocket's sockets), called as `obj:getfd()`.

use std::ffi::c_int;

use crate::lua::{number_to_integer, Failure, Kind, MethodCall, Stack};

/// The file descriptor the argument at `index` names. Runs `getfd`, so Lua code may run.
pub fn argument(stack: &mut Stack, index: c_int) -> Result<c_int, Failure> {
    let index = stack.absolute(index);
    match stack.kind(index) {
        Kind::Number | Kind::String => in_range(index, stack.integer(index)?),
        Kind::LightUserdata => in_range(index, stack.light_userdata(index) as i64),
        Kind::Userdata | Kind::Table => stack.call_method(index, c"getfd", |stack, call| {
            from_getfd(stack, index, call)
        })?,
        _ => Err(Failure::expected(stack, index, "socket or integer fd")),
    }
}

/// The descriptor `getfd` gave for the object at `index`, or why there is none.
fn from_getfd(stack: &Stack, index: c_int, call: MethodCall<'_>) -> Result<c_int, Failure> {
    match call {
        MethodCall::Missing => {
            let got = stack.type_name(index);
            Err(Failure::argument(
                index,
                format_args!("socket or integer fd expected, got {got} without 'getfd'"),
            ))
        }
        MethodCall::Raised(message) => Err(Failure::argument(
            index,
            format_args!("getfd failed: {message}"),
        )),
        MethodCall::Returned(result) if stack.kind(result) == Kind::Number => {
            match stack.to_number(result).and_then(number_to_integer) {
                // LuaSocket's answer for a socket that was closed, or never bound or connected.
                Some(-1) => Err(Failure::argument(
                    index,
                    format_args!("invalid file descriptor (-1): closed or not connected?"),
                )),
                Some(fd) => in_range(index, fd),
                None => Err(Failure::argument(
                    index,
                    format_args!("getfd returned a non-integral number"),
                )),
            }
        }
        MethodCall::Returned(result) => {
            let got = stack.type_name(result);
            Err(Failure::argument(
                index,
                format_args!("socket or integer fd expected, getfd returned {got}"),
            ))
        }
    }
}

fn in_range(index: c_int, fd: i64) -> Result<c_int, Failure> {
    c_int::try_from(fd)
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| Failure::argument(index, format_args!("invalid file descriptor ({fd})")))
}
