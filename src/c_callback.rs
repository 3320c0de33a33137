//! The one way this crate writes a function that C calls back (libevent's callbacks, OpenSSL's
//! password callback): [`c_callback!`] makes the `extern "C"` function and runs its body under
//! [`guard`], so that a Rust panic stops in that frame instead of unwinding into C (whose
//! frames cannot be unwound through). A panic is a bug in this module; the panic hook has
//! written it to stderr, and the callback returns its fallback value.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`, or gives `fallback` if it panicked.
#[inline]
pub fn guard<R>(fallback: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// `c_callback! { fn name(args) { body } }` defines `extern "C" fn name(args)` whose body runs
/// under [`guard`]; `fn name(args) -> T, on panic fallback, { body }` for one that returns a
/// value (`fallback` when the body panicked). Attributes and doc comments go before `fn`.
macro_rules! c_callback {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $type:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis extern "C" fn $name($($arg: $type),*) {
            $crate::c_callback::guard((), || $body)
        }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $type:ty),* $(,)?) -> $ret:ty, on panic $fallback:expr, $body:block) => {
        $(#[$meta])*
        $vis extern "C" fn $name($($arg: $type),*) -> $ret {
            $crate::c_callback::guard($fallback, || $body)
        }
    };
}
pub(crate) use c_callback;

#[cfg(test)]
mod tests {
    use super::guard;

    #[test]
    fn a_panic_gives_the_fallback() {
        assert_eq!(
            guard(-1, || -> i32 {
                panic!("a bug (this test's panic, expected)")
            }),
            -1
        );
        assert_eq!(guard(-1, || 7), 7);
    }
}
