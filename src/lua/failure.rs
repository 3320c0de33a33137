//! Why a Lua-facing function failed, carried back to the entry that raises it.
//!
//! A failure owns no heap memory: its message is written into a fixed buffer inside the value.
//! Formatting an error therefore cannot run out of memory (Rust would abort the process), and
//! nothing needs dropping when the entry turns the failure into a Lua error.

use std::ffi::c_int;
use std::fmt::{self, Write};

use super::raw::{self, lua_State};
use crate::os::Errno;

/// Longest message kept; a longer one is cut at a character boundary.
const CAPACITY: usize = 232;

/// A Lua-facing function's failure. Build one with the constructors below and return it as
/// `Err(failure)`; the entry raises it once the body has returned.
pub struct Failure {
    kind: Kind,
    text: Text,
}

#[derive(Clone, Copy)]
enum Kind {
    /// `bad argument #n to 'f' (text)`, worded by Lua's own `luaL_argerror`.
    Argument(c_int),
    /// The text, raised as it is.
    Message,
    /// An error Lua raised inside a protected operation: the error value is on top of the
    /// stack (see [`Failure::propagated`]).
    Propagated,
}

// The entry raises a failure with a jump that no Rust destructor would survive.
const _: () = assert!(!std::mem::needs_drop::<Failure>());

impl Failure {
    /// `bad argument #index to '<function>' (<reason>)`.
    pub fn argument(index: c_int, reason: fmt::Arguments<'_>) -> Failure {
        Failure {
            kind: Kind::Argument(index),
            text: Text::from(reason),
        }
    }

    /// A message raised as it is. By the module's convention (see the `lua` module) it starts
    /// with the name of the function that failed, as the reference writes it.
    pub fn message(text: fmt::Arguments<'_>) -> Failure {
        Failure {
            kind: Kind::Message,
            text: Text::from(text),
        }
    }

    /// Memory the module needed could not be had: Lua's own wording, so that programs match
    /// one message whoever ran out.
    pub fn out_of_memory() -> Failure {
        Failure::message(format_args!("not enough memory"))
    }

    /// A Rust panic was caught at the boundary: a bug in this module, reported as an error
    /// rather than taking the process down.
    pub(super) fn internal() -> Failure {
        Failure::message(format_args!(
            "luaevent.core: internal error (a Rust panic was caught)"
        ))
    }

    /// The error value on top of the stack, raised as it is (made a string if it is not one):
    /// what a protected operation or a loop's callback left there. The body returns this
    /// failure at once, so the value is still on top when the entry raises it.
    pub fn error_on_top() -> Failure {
        Failure {
            kind: Kind::Propagated,
            text: Text::empty(),
        }
    }

    /// The message text (empty for a propagated error).
    pub fn text(&self) -> &str {
        self.text.as_str()
    }

    /// Raises the failure as a Lua error.
    ///
    /// # Safety
    /// `state` is the state of the running Lua-facing function, with a free stack slot, and no
    /// Rust frame with a destructor lies between this call and Lua (the entry's own frame).
    pub(super) unsafe fn raise(&self, state: *mut lua_State) -> ! {
        // SAFETY: per the contract above; Lua copies the text before anything else happens.
        unsafe {
            match self.kind {
                Kind::Argument(index) => {
                    raw::push_bytes(state, self.text.as_bytes());
                    raw::luaL_argerror(state, index, raw::lua_tostring(state, -1));
                    unreachable!("luaL_argerror returns only by raising")
                }
                Kind::Message => {
                    raw::push_bytes(state, self.text.as_bytes());
                    raw::lua_error(state)
                }
                Kind::Propagated => {
                    raw::error_value_to_string(state);
                    raw::lua_error(state)
                }
            }
        }
    }
}

impl Failure {
    /// The bytes of the message to raise, or None for a propagated error (already on the
    /// stack).
    pub(super) fn message_bytes(&self) -> Option<&[u8]> {
        match self.kind {
            Kind::Propagated => None,
            Kind::Argument(_) | Kind::Message => Some(self.text.as_bytes()),
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Argument(index) => write!(f, "Failure(argument #{index}: {})", self.text()),
            Kind::Message => write!(f, "Failure({})", self.text()),
            Kind::Propagated => write!(f, "Failure(error value on the stack)"),
        }
    }
}

/// A message in a fixed buffer.
#[derive(Clone, Copy)]
struct Text {
    len: usize,
    bytes: [u8; CAPACITY],
}

impl Text {
    fn empty() -> Text {
        Text {
            len: 0,
            bytes: [0; CAPACITY],
        }
    }

    fn from(arguments: fmt::Arguments<'_>) -> Text {
        let mut text = Text::empty();
        // Only a full buffer stops the writing, and then the text is simply cut.
        let _ = text.write_fmt(arguments);
        text
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only whole characters are ever written (see write_str).
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl Write for Text {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        let room = CAPACITY - self.len;
        let mut take = piece.len().min(room);
        while !piece.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&piece.as_bytes()[..take]);
        self.len += take;
        if take < piece.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// `": <strerror>"` when errno was set, nothing otherwise: the tail of a message about a
/// failed system or libevent call.
pub struct Cause(pub Option<Errno>);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(errno) => write!(f, ": {errno}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_kept_whole_when_they_fit() {
        let failure =
            Failure::message(format_args!("base:loop: the event base is already looping"));
        assert_eq!(
            failure.text(),
            "base:loop: the event base is already looping"
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(200);
        let failure = Failure::message(format_args!("{long}"));
        assert!(failure.text().len() <= CAPACITY);
        assert!(failure.text().chars().all(|c| c == 'é'));
        assert_eq!(failure.text().len(), CAPACITY / 2 * 2);
    }

    #[test]
    fn a_cause_reads_as_strerror() {
        assert_eq!(
            Cause(Some(Errno(libc::ENOMEM))).to_string(),
            ": Cannot allocate memory"
        );
        assert_eq!(Cause(None).to_string(), "");
    }
}
