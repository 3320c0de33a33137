//! [`Shared`]: a reference-counted pointer whose allocation can fail.
//!
//! `Rc::new` aborts the process when memory runs out; a Lua module must raise an error instead.
//! The event base is the one value the module keeps in Rust's heap (events and bufferevents
//! each hold it, so that it outlives them whatever order Lua collects them in); this is the
//! same single-threaded counting as `Rc`, made with a fallible allocation.

use std::alloc::{alloc, dealloc, Layout};
use std::cell::Cell;
use std::ops::Deref;
use std::ptr::NonNull;

struct Inner<T> {
    owners: Cell<usize>,
    value: T,
}

/// A shared, reference-counted `T` (not `Send`: the module is single-threaded, like Lua).
pub struct Shared<T> {
    inner: NonNull<Inner<T>>,
}

impl<T> Shared<T> {
    /// Moves `value` into a new allocation; gives it back when memory is short.
    pub fn try_new(value: T) -> Result<Shared<T>, T> {
        let layout = Layout::new::<Inner<T>>();
        // SAFETY: Inner<T> is never zero-sized (it holds a counter); a null result means the
        // allocation failed, and is checked.
        let memory = unsafe { alloc(layout) } as *mut Inner<T>;
        let Some(inner) = NonNull::new(memory) else {
            return Err(value);
        };
        // SAFETY: fresh memory of Inner<T>'s layout, written once before any read.
        unsafe {
            inner.as_ptr().write(Inner {
                owners: Cell::new(1),
                value,
            })
        };
        Ok(Shared { inner })
    }

    /// Gives up this handle as a raw pointer that owns one count, for a C callback argument;
    /// [`Shared::from_raw`] takes it back.
    pub fn into_raw(this: Shared<T>) -> *const T {
        let value = &this.inner().value as *const T;
        std::mem::forget(this);
        value
    }

    /// Takes back a handle given up by [`Shared::into_raw`].
    ///
    /// # Safety
    /// `value` came from `into_raw` on a `Shared<T>` and is taken back once.
    pub unsafe fn from_raw(value: *const T) -> Shared<T> {
        let offset = std::mem::offset_of!(Inner<T>, value);
        // SAFETY: `value` points at the `value` field of a live Inner<T> (contract), so the
        // allocation starts `offset` bytes before it.
        let inner =
            unsafe { NonNull::new_unchecked((value as *const u8).sub(offset) as *mut Inner<T>) };
        Shared { inner }
    }

    fn inner(&self) -> &Inner<T> {
        // SAFETY: the allocation lives while any Shared points to it, and `self` is one.
        unsafe { self.inner.as_ref() }
    }
}

/// A copy of the handle held in `cell`, which keeps it: how an object reaches the base it holds
/// in a `Cell` (so that `__gc` can let go of it through a shared reference).
pub fn clone_from_cell<T>(cell: &std::cell::Cell<Option<Shared<T>>>) -> Option<Shared<T>> {
    let held = cell.take();
    cell.set(held.clone());
    held
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Shared<T> {
        let owners = &self.inner().owners;
        // Every owner lives in memory, so the count cannot reach usize::MAX; abort rather than
        // wrap should that ever be wrong (as Rc does).
        owners.set(
            owners
                .get()
                .checked_add(1)
                .unwrap_or_else(|| std::process::abort()),
        );
        Shared { inner: self.inner }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let owners = self.inner().owners.get() - 1;
        self.inner().owners.set(owners);
        if owners == 0 {
            // SAFETY: the last owner is going: nothing can reach the value any more. It is
            // dropped once, then its memory is freed with the layout it was allocated with.
            unsafe {
                std::ptr::drop_in_place(self.inner.as_ptr());
                dealloc(self.inner.as_ptr() as *mut u8, Layout::new::<Inner<T>>());
            }
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner().value
    }
}

#[cfg(test)]
mod tests {
    use super::Shared;
    use std::cell::Cell;
    use std::rc::Rc;

    struct Counted(Rc<Cell<u32>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn the_value_is_dropped_once_with_its_last_owner() {
        let drops = Rc::new(Cell::new(0));
        let first = Shared::try_new(Counted(drops.clone())).ok().unwrap();
        let second = first.clone();
        drop(first);
        assert_eq!(drops.get(), 0);
        drop(second);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn a_raw_handle_keeps_its_count() {
        let drops = Rc::new(Cell::new(0));
        let first = Shared::try_new(Counted(drops.clone())).ok().unwrap();
        let raw = Shared::into_raw(first.clone());
        drop(first);
        assert_eq!(drops.get(), 0);
        // SAFETY: from into_raw above, taken back once.
        drop(unsafe { Shared::from_raw(raw) });
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn deref_reaches_the_value() {
        let shared = Shared::try_new(41).ok().unwrap();
        assert_eq!(*shared.clone() + 1, 42);
    }
}
