//! The emergency reserve: a few blocks of memory that each thread sets aside, so that the
//! allocations libevent 2.1 makes without checking their result can be served when malloc has
//! nothing left. libevent.rs installs memory functions that forward to malloc/realloc/free
//! (once, at load) and fall back on this reserve when malloc fails; what it serves is chosen by
//! whoever armed it.
//!
//! # The invariant
//! - Nothing process-global changes after load: the reserve and the arming are per thread, so
//!   Lua states running the module on several threads never touch each other's reserve, and a
//!   state that moves between threads finds the reserve of the thread it runs on.
//! - The reserve serves an allocation only while armed on its thread, and only what the arming
//!   names: any small allocation (around one libevent call known to use one unchecked), or
//!   exactly one size (around libevent's loop, where only its deferred DNS reply callbacks are
//!   meant: other allocations there are checked, and must not drain the reserve).
//! - Every block comes from malloc, so libevent frees a served block with free() like any other.
//! - It is refilled (up to [`TARGET`] blocks) at safe points: before and after every armed
//!   call, and after every allocation of libevent's that malloc served (one block a time).
//!   Refilling only ever calls malloc; a failure leaves it short until the next safe point.
//! - A thread's blocks are freed when the thread ends.

use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;

/// Size of each block: room for the largest allocation served (libevent 2.1's deferred DNS
/// reply callback, 600 bytes on 64-bit systems; checked where that size is defined).
pub const BLOCK_SIZE: usize = 640;

/// Blocks each thread keeps: enough for the deferred DNS callbacks of several lookups ending
/// in one stretch of libevent's loop (one name server read, say) with malloc failing all along.
pub const TARGET: usize = 8;

/// What an armed reserve serves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Serve {
    Nothing,
    /// Any allocation of up to [`BLOCK_SIZE`] bytes.
    AnySmall,
    /// Allocations of exactly this many bytes.
    Exactly(usize),
}

/// A thread's blocks, linked through their first word.
struct Reserve {
    first: Cell<*mut c_void>,
    held: Cell<usize>,
    serve: Cell<Serve>,
}

impl Reserve {
    fn push(&self, block: *mut c_void) {
        // SAFETY: a block of BLOCK_SIZE bytes from malloc (aligned for a pointer), not in use.
        unsafe { *(block as *mut *mut c_void) = self.first.get() };
        self.first.set(block);
        self.held.set(self.held.get() + 1);
    }

    fn pop(&self) -> *mut c_void {
        let block = self.first.get();
        if !block.is_null() {
            // SAFETY: a block of the list: its first word links the next one.
            self.first.set(unsafe { *(block as *mut *mut c_void) });
            self.held.set(self.held.get() - 1);
        }
        block
    }

    /// Adds one block when below the target; false when malloc had none.
    fn add_one(&self) -> bool {
        // SAFETY: plain malloc, checked.
        let block = unsafe { libc::malloc(BLOCK_SIZE) };
        if block.is_null() {
            return false;
        }
        self.push(block);
        true
    }
}

impl Drop for Reserve {
    fn drop(&mut self) {
        loop {
            let block = self.pop();
            if block.is_null() {
                break;
            }
            // SAFETY: from malloc, owned by the list until popped.
            unsafe { libc::free(block) };
        }
    }
}

thread_local! {
    static RESERVE: Reserve = const {
        Reserve {
            first: Cell::new(ptr::null_mut()),
            held: Cell::new(0),
            serve: Cell::new(Serve::Nothing),
        }
    };
}

/// Tops the thread's reserve up to [`TARGET`] blocks as far as malloc allows; returns how many
/// it holds.
pub fn fill() -> usize {
    RESERVE
        .try_with(|reserve| {
            while reserve.held.get() < TARGET && reserve.add_one() {}
            reserve.held.get()
        })
        .unwrap_or(0)
}

/// Runs `call` with the thread's reserve filled and serving `serve` (the previous arming is
/// back afterwards, so armings nest), then fills it again.
pub fn armed<R>(serve: Serve, call: impl FnOnce() -> R) -> R {
    fill();
    let previous = RESERVE
        .try_with(|reserve| reserve.serve.replace(serve))
        .unwrap_or(Serve::Nothing);
    // Restored even if `call` panics: the arming must not outlive its call.
    struct Restore(Serve);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = RESERVE.try_with(|reserve| reserve.serve.set(self.0));
        }
    }
    let restore = Restore(previous);
    let result = call();
    drop(restore);
    fill();
    result
}

/// A block for an allocation of `size` bytes that malloc could not serve, when the thread's
/// reserve is armed for it and holds one; null otherwise. For the memory functions only.
pub fn take(size: usize) -> *mut c_void {
    RESERVE
        .try_with(|reserve| {
            let served = match reserve.serve.get() {
                Serve::Nothing => false,
                Serve::AnySmall => size <= BLOCK_SIZE,
                Serve::Exactly(wanted) => size == wanted,
            };
            if served {
                reserve.pop()
            } else {
                ptr::null_mut()
            }
        })
        .unwrap_or(ptr::null_mut())
}

/// After an allocation malloc served: one block back into a reserve below its target.
#[inline]
pub fn top_up_one() {
    let _ = RESERVE.try_with(|reserve| {
        if reserve.held.get() < TARGET {
            reserve.add_one();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> usize {
        RESERVE.with(|reserve| reserve.held.get())
    }

    #[test]
    fn serves_only_while_armed_and_refills_after() {
        assert_eq!(fill(), TARGET);
        assert!(take(16).is_null(), "not armed: nothing served");
        armed(Serve::AnySmall, || {
            let small = take(40);
            assert!(!small.is_null());
            assert_eq!(held(), TARGET - 1);
            assert!(take(BLOCK_SIZE + 1).is_null());
            armed(Serve::Nothing, || assert!(take(40).is_null()));
            let again = take(40);
            assert!(!again.is_null(), "the outer arming is back");
            // SAFETY: blocks from malloc, handed over.
            unsafe { libc::free(small) };
            // SAFETY: as above.
            unsafe { libc::free(again) };
        });
        assert_eq!(held(), TARGET, "refilled after the armed call");
        assert!(take(40).is_null());
    }

    #[test]
    fn armed_for_one_size_it_serves_that_size_only() {
        fill();
        armed(Serve::Exactly(600), || {
            assert!(take(599).is_null());
            assert!(take(40).is_null());
            let block = take(600);
            assert!(!block.is_null());
            // SAFETY: from malloc, handed over.
            unsafe { libc::free(block) };
        });
        assert_eq!(held(), TARGET);
    }

    #[test]
    fn each_thread_has_its_own_reserve() {
        fill();
        let other = std::thread::spawn(|| {
            let before = held();
            armed(Serve::AnySmall, || {
                let block = take(8);
                // SAFETY: from malloc.
                unsafe { libc::free(block) };
            });
            (before, held())
        });
        assert_eq!(other.join().ok(), Some((0, TARGET)));
        assert_eq!(held(), TARGET);
    }
}
