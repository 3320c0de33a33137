//! `core.buffer`: byte buffers (libevent evbuffers). A buffer object owns its evbuffer (from
//! `buffer.new()`, freed by close or `__gc`) or is lent one by a bufferevent (never freed by the
//! buffer object; the bufferevent detaches it when it frees the evbuffer).

use std::cell::Cell;
use std::ffi::c_int;
use std::ptr::NonNull;

use crate::ffi::evbuffer;
use crate::libevent::{self, BufferRef};
use crate::lua::{lua_function, lua_type, Failure, Held, Kind, Outcome, Returns, Stack, TypeSpec};

/// The Lua object.
pub struct BufferUserdata {
    state: Cell<BufferState>,
}

lua_type!(BufferUserdata, c"luaevent.core.buffer", "buffer");

#[derive(Clone, Copy)]
enum BufferState {
    /// Made by `buffer.new()`: freed by this object.
    Owned(NonNull<evbuffer>),
    /// A bufferevent's input or output buffer: the bufferevent frees it, and detaches this
    /// object first.
    Lent(NonNull<evbuffer>),
    Closed,
}

impl BufferUserdata {
    /// The evbuffer, while the object is open.
    pub fn view(&self) -> Option<BufferRef<'_>> {
        match self.state.get() {
            // SAFETY: an owned evbuffer lives until this object frees it (close, __gc), which
            // sets Closed first. A lent one lives until its bufferevent is freed, which detaches
            // this object (Closed) first. Both need Lua code to run (a method call, a
            // collection), and no Lua code runs while a borrow of this object is held (borrows
            // come from a `&Stack`, see the lua module's rule 3).
            BufferState::Owned(raw) | BufferState::Lent(raw) => {
                Some(unsafe { BufferRef::new(raw) })
            }
            BufferState::Closed => None,
        }
    }

    /// Frees an owned evbuffer now; only detaches a lent one. Idempotent.
    fn close(&self) {
        if let BufferState::Owned(raw) = self.state.replace(BufferState::Closed) {
            // SAFETY: an owned buffer, freed once: the state is Closed from now on.
            unsafe { libevent::free_buffer(raw) };
        }
    }
}

/// The open evbuffer behind the buffer argument at `index`.
fn open_buffer(stack: &Stack, index: c_int) -> Result<BufferRef<'_>, Failure> {
    stack
        .userdata::<BufferUserdata>(index)?
        .view()
        .ok_or_else(|| closed(index))
}

fn closed(index: c_int) -> Failure {
    Failure::argument(index, format_args!("attempt to use a closed buffer"))
}

/// What libevent refusing to change a buffer means: out of memory, or an end of a bufferevent's
/// buffer that only the bufferevent may change.
fn refused(function: &str, what: &str) -> Failure {
    Failure::message(format_args!(
        "{function}: libevent refused to {what} (a bufferevent's input buffer takes data only from its socket, \
         and its output buffer gives data only to it)"
    ))
}

/// Pushes a buffer object that a bufferevent will lend one of its buffers to (see [`lend`]);
/// closed until then. Returns its index.
pub fn push_unlent(stack: &mut Stack) -> Result<Held<BufferUserdata>, Failure> {
    stack.new_object(BufferUserdata {
        state: Cell::new(BufferState::Closed),
    })
}

/// As [`push_unlent`] for two objects, made at once (a bufferevent's input and output).
pub fn push_unlent_pair(stack: &mut Stack) -> Result<[Held<BufferUserdata>; 2], Failure> {
    let unlent = || BufferUserdata {
        state: Cell::new(BufferState::Closed),
    };
    stack.new_object_pair(unlent(), unlent())
}

/// Lends `buffer`, which belongs to a bufferevent, to the object. The bufferevent calls
/// [`close_lent`] on the object before it frees the evbuffer.
pub fn lend(object: &BufferUserdata, buffer: BufferRef<'_>) {
    object.state.set(BufferState::Lent(buffer.as_non_null()));
}

/// Lends `buffer` instead to an object still lent one (a TLS layer put over its bufferevent); an
/// object closed meanwhile stays closed.
pub fn relend(object: &BufferUserdata, buffer: BufferRef<'_>) {
    if let BufferState::Lent(_) = object.state.get() {
        object.state.set(BufferState::Lent(buffer.as_non_null()));
    }
}

/// Closes a lent buffer object whose evbuffer is gone, without the Lua stack.
pub fn close_lent(object: &BufferUserdata) {
    if let BufferState::Lent(_) = object.state.get() {
        object.state.set(BufferState::Closed);
    }
}

/// `core.buffer.new()`
pub fn new(stack: &mut Stack) -> Outcome {
    let raw = libevent::new_buffer().ok_or_else(Failure::out_of_memory)?;
    let object = BufferUserdata {
        state: Cell::new(BufferState::Owned(raw)),
    };
    match stack.new_userdata(object) {
        Ok(_) => Ok(Returns::Values(1)),
        Err(failure) => {
            // SAFETY: the evbuffer was made above and nothing else refers to it.
            unsafe { libevent::free_buffer(raw) };
            Err(failure)
        }
    }
}

/// `buf:add(...)`: every argument is checked before anything is added, so a bad one adds nothing.
fn add(stack: &mut Stack) -> Outcome {
    let top = stack.top();
    let before = {
        let target = open_buffer(stack, 1)?;
        if top < 2 {
            return Err(Failure::argument(
                2,
                format_args!("string, number or buffer expected, got no value"),
            ));
        }
        let mut has_numbers = false;
        // The first few buffer arguments as checked here, so that adding them needs no second
        // type test (nothing between can change them).
        let mut checked: [Option<BufferRef<'_>>; 4] = [None; 4];
        for index in 2..=top {
            match stack.kind(index) {
                Kind::String => continue,
                Kind::Number => has_numbers = true,
                _ => {
                    let Some(source) = stack.test_userdata::<BufferUserdata>(index) else {
                        return Err(Failure::expected(stack, index, "string, number or buffer"));
                    };
                    let source = source.view().ok_or_else(|| closed(index))?;
                    if source.is(target) {
                        return Err(Failure::argument(
                            index,
                            format_args!("cannot add a buffer to itself"),
                        ));
                    }
                    if let Some(entry) = checked.get_mut(index as usize - 2) {
                        *entry = Some(source);
                    }
                }
            }
        }
        if !has_numbers {
            // The common case: nothing to format, so no Lua code can run until the end.
            let before = target.len();
            for index in 2..=top {
                match checked.get(index as usize - 2).copied().flatten() {
                    Some(source) if target.add_buffer(source) => {}
                    Some(_) => return Err(refused_add(stack)),
                    None => add_value(stack, target, index)?,
                }
            }
            let added = target.len().saturating_sub(before);
            stack.push_integer(added as i64);
            return Ok(Returns::Values(1));
        }
        target.len()
    };
    for index in 2..=top {
        if stack.kind(index) == Kind::Number {
            // Formatting a number makes a Lua string, which may run a finalizer: the buffers
            // are looked up again afterwards.
            stack.push_number_as_string(index)?;
            add_value(stack, open_buffer(stack, 1)?, -1)?;
            stack.pop(1);
        } else {
            add_value(stack, open_buffer(stack, 1)?, index)?;
        }
    }
    let after = open_buffer(stack, 1)?.len();
    stack.push_integer(after.saturating_sub(before) as i64);
    Ok(Returns::Values(1))
}

/// Appends the value at `index` to `target`: a string's bytes, or all of an open buffer's
/// (moved, leaving it empty).
fn add_value(stack: &Stack, target: BufferRef<'_>, index: c_int) -> Result<(), Failure> {
    let added = match stack.string_bytes(index) {
        Some(bytes) => target.add(bytes),
        None => target.add_buffer(open_buffer(stack, index)?),
    };
    if added {
        Ok(())
    } else {
        Err(refused_add(stack))
    }
}

/// libevent refused to add: to an owned buffer only for want of memory; to a bufferevent's, also
/// because its input takes data only from the socket.
fn refused_add(stack: &Stack) -> Failure {
    match stack
        .test_userdata::<BufferUserdata>(1)
        .map(|buffer| buffer.state.get())
    {
        Some(BufferState::Lent(_)) => refused("buf:add", "add to the buffer"),
        _ => Failure::out_of_memory(),
    }
}

/// `buf:length()` and `#buf`
fn length(stack: &mut Stack) -> Outcome {
    let length = open_buffer(stack, 1)?.len();
    stack.push_integer(length as i64);
    Ok(Returns::Values(1))
}

/// The byte window `get_data` reads: (offset, length), both within `total`.
///
/// `begin` is 1-based, negative counts from the end (-1 is the last byte); a negative `len`
/// means "to the end". Everything is clamped to the buffer.
fn window(total: usize, begin: Option<i64>, len: i64) -> (usize, usize) {
    let total = total as i64;
    let start = match begin {
        None => 0,
        Some(b) if b < 0 => (total + b).max(0),
        Some(b) => (b - 1).max(0),
    }
    .min(total);
    let wanted = if len < 0 { total } else { len };
    let count = wanted.min(total - start);
    (start as usize, count as usize)
}

/// `buf:get_data([begin,] [len])` and `tostring(buf)`: a copy, nothing consumed.
fn get_data(stack: &mut Stack) -> Outcome {
    let (offset, count) = {
        let buffer = open_buffer(stack, 1)?;
        let total = buffer.len();
        let (offset, count) = match stack.top() {
            1 => (0, total),
            2 => window(total, None, stack.integer(2)?),
            _ => window(total, Some(stack.integer(2)?), stack.integer(3)?),
        };
        if let Some(outcome) = stack.return_short(count, |out| Ok(buffer.copy_out(offset, out))) {
            return outcome;
        }
        (offset, count)
    };
    stack.return_bytes(count, |stack, out| {
        Ok(open_buffer(stack, 1)?.copy_out(offset, out))
    })
}

/// `buf:readline()`: the next line without its end, consumed; nil when no line end is there yet.
fn readline(stack: &mut Stack) -> Outcome {
    let (line, end) = {
        let buffer = open_buffer(stack, 1)?;
        let Some((line, end)) = buffer.find_line() else {
            return Ok(Returns::Values(0));
        };
        if let Some(outcome) = stack.return_short(line, |out| take_line(buffer, out, end)) {
            return outcome;
        }
        (line, end)
    };
    stack.return_bytes(line, |stack, out| {
        take_line(open_buffer(stack, 1)?, out, end)
    })
}

/// Copies the line into `out` and consumes it with its end (`end` bytes after it).
fn take_line(
    buffer: BufferRef<'_>,
    out: &mut [std::mem::MaybeUninit<u8>],
    end: usize,
) -> Result<usize, Failure> {
    let taken = buffer.copy_out(0, out);
    if !buffer.drain(taken + end) {
        return Err(refused("buf:readline", "consume a line"));
    }
    Ok(taken)
}

/// `buf:drain(n)`
fn drain(stack: &mut Stack) -> Outcome {
    let buffer = open_buffer(stack, 1)?;
    let count = stack.integer(2)?;
    // Negative means everything; libevent clamps a count past the end to the length.
    if !buffer.drain(usize::try_from(count).unwrap_or(usize::MAX)) {
        return Err(refused("buf:drain", "drain the buffer"));
    }
    Ok(Returns::Values(0))
}

/// `buf:read(fd, len)`
fn read(stack: &mut Stack) -> Outcome {
    open_buffer(stack, 1)?;
    // The fd before the buffer is borrowed: a socket's getfd method is Lua code.
    let fd = crate::fd::argument(stack, 2)?;
    let len = stack.integer(3)?;
    let len = if len < 0 {
        -1
    } else {
        len.min(c_int::MAX as i64) as c_int
    };
    let result = open_buffer(stack, 1)?.read(fd, len);
    stack.push_integer(result as i64);
    Ok(Returns::Values(1))
}

/// `buf:write(fd)`
fn write(stack: &mut Stack) -> Outcome {
    open_buffer(stack, 1)?;
    let fd = crate::fd::argument(stack, 2)?;
    let result = open_buffer(stack, 1)?.write(fd);
    stack.push_integer(result as i64);
    Ok(Returns::Values(1))
}

/// `buf:close()`
fn close(stack: &mut Stack) -> Outcome {
    stack.userdata::<BufferUserdata>(1)?.close();
    Ok(Returns::Values(0))
}

/// `__gc`: as close, silent on anything else.
fn collect(stack: &mut Stack) -> Outcome {
    if let Some(buffer) = stack.test_userdata::<BufferUserdata>(1) {
        buffer.close();
    }
    Ok(Returns::Values(0))
}

pub static TYPE: TypeSpec = TypeSpec::of::<BufferUserdata>(
    &[&[
        (c"add", lua_function!(add)),
        (c"length", lua_function!(length)),
        (c"get_data", lua_function!(get_data)),
        (c"readline", lua_function!(readline)),
        (c"drain", lua_function!(drain)),
        (c"read", lua_function!(read)),
        (c"write", lua_function!(write)),
        (c"close", lua_function!(close)),
    ]],
    &[
        (c"__gc", lua_function!(collect)),
        (c"__len", lua_function!(length)),
        (c"__tostring", lua_function!(get_data)),
    ],
);

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn whole_and_prefix_windows() {
        assert_eq!(window(10, None, 10), (0, 10));
        assert_eq!(window(10, None, 3), (0, 3));
        assert_eq!(window(10, None, 50), (0, 10));
        assert_eq!(window(10, None, -1), (0, 10));
    }

    #[test]
    fn begin_is_one_based_and_negative_counts_from_the_end() {
        assert_eq!(window(10, Some(1), 2), (0, 2));
        assert_eq!(window(10, Some(3), -1), (2, 8));
        assert_eq!(window(10, Some(-1), 1), (9, 1));
        assert_eq!(window(10, Some(-2), 5), (8, 2));
    }

    #[test]
    fn windows_are_clamped_at_both_ends() {
        assert_eq!(window(10, Some(-100), 3), (0, 3));
        assert_eq!(window(10, Some(0), 3), (0, 3));
        assert_eq!(window(10, Some(11), 3), (10, 0));
        assert_eq!(window(10, Some(99), -1), (10, 0));
        assert_eq!(window(0, Some(1), 5), (0, 0));
    }
}
